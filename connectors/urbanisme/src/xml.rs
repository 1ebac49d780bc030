//! `dossier.xml`: the content of `dossier.json` in XML, for instruction software that
//! imports XML. Namespace [`NAMESPACE`], root `<dossier>` (attributes `format`, `version`
//! and `dossier`, the identifier), then one element per key in the order of
//! `schema/dossier.xsd`; lists are wrapped (`<parcelles><parcelle>…`). UTF-8, indented.
//!
//! Written with the SDK's XML writer ([`aiguillage_connector::xml`]), which escapes every
//! text and keeps the elements balanced.

use aiguillage_connector::xml::{self, Encoding, XmlError, XmlOptions, XmlWriter};

use crate::document::{Adresse, Civilite, Demandeur, Parcelle, TypeDemandeur};
use crate::json::{Digest, FORMAT, VERSION};
use crate::validate::ValidDossier;

/// The namespace of `dossier.xml`.
pub const NAMESPACE: &str = "urn:aiguillage:urbanisme:dossier:1";

/// The XML Schema of `dossier.xml`, as shipped.
pub const XSD: &str = include_str!("../schema/dossier.xsd");

fn civilite(c: Civilite) -> &'static str {
    match c {
        Civilite::M => "M",
        Civilite::Mme => "Mme",
    }
}

/// The bytes of `dossier.xml` for `dossier` (`digests`: one per pièce, in order).
///
/// # Errors
///
/// An [`XmlError`] naming the element of a text XML cannot carry (a control character);
/// validation refuses those before, so it means a check is missing there.
pub fn to_bytes(dossier: &ValidDossier<'_>, digests: &[Digest]) -> Result<Vec<u8>, XmlError> {
    let d = &dossier.depot;
    let version = VERSION.to_string();
    let attributes = [
        ("xmlns", NAMESPACE),
        ("format", FORMAT),
        ("version", version.as_str()),
        ("dossier", dossier.dossier.as_str()),
    ];
    xml::document(
        XmlOptions::new(Encoding::Utf8),
        "dossier",
        &attributes,
        |w| {
            w.text_element("identifiant", &d.identifiant)?;
            w.optional_text_element("reference_portail", d.reference_portail.as_deref())?;
            // As written in the document: its RFC 3339 shape is XML's dateTime (checked).
            w.text_element("date_depot", &dossier.date_depot)?;
            w.text_element("commune", &d.commune)?;
            w.text_element("type_dossier", &d.type_dossier)?;
            w.element("cerfa", |w| {
                w.text_element("numero", &d.cerfa.numero)?;
                w.optional_text_element("revision", d.cerfa.revision.as_deref())
            })?;
            w.element("demandeurs", |w| {
                d.demandeurs
                    .iter()
                    .try_for_each(|demandeur| write_demandeur(w, demandeur))
            })?;
            let t = &d.terrain;
            w.element("terrain", |w| {
                w.text_element("commune_insee", &t.commune_insee)?;
                w.optional_text_element("superficie", t.superficie.as_deref())?;
                w.element("adresse", |w| {
                    w.optional_text_element("numero", t.adresse.numero.as_deref())?;
                    w.optional_text_element("voie", t.adresse.voie.as_deref())?;
                    w.optional_text_element("lieu_dit", t.adresse.lieu_dit.as_deref())?;
                    w.text_element("code_postal", &t.adresse.code_postal)?;
                    w.text_element("localite", &t.adresse.localite)
                })?;
                w.element("parcelles", |w| {
                    t.parcelles.iter().zip(&dossier.references).try_for_each(
                        |(parcelle, reference)| write_parcelle(w, parcelle, reference),
                    )
                })
            })?;
            w.element("projet", |w| {
                w.text_element("description", &d.projet.description)
            })?;
            w.element("surfaces", |w| {
                w.text_element("existante", &d.surfaces.existante)?;
                w.text_element("creee", &d.surfaces.creee)?;
                w.text_element("supprimee", &d.surfaces.supprimee)
            })?;
            w.element("pieces", |w| {
                for ((piece, valid), digest) in d.pieces.iter().zip(&dossier.pieces).zip(digests) {
                    w.element("piece", |w| {
                        w.text_element("code", &piece.code)?;
                        w.text_element("libelle", &piece.libelle)?;
                        w.text_element("fichier", &piece.fichier)?;
                        w.text_element("chemin", &valid.chemin)?;
                        w.text_element("type_media", valid.media_type.as_str())?;
                        w.text_element("taille", &digest.taille.to_string())?;
                        w.text_element("sha512", &digest.sha512)
                    })?;
                }
                Ok::<(), XmlError>(())
            })
        },
    )
}

fn write_demandeur(w: &mut XmlWriter, d: &Demandeur) -> Result<(), XmlError> {
    w.element("demandeur", |w| {
        w.text_element(
            "type",
            match d.type_demandeur {
                TypeDemandeur::Particulier => "particulier",
                TypeDemandeur::PersonneMorale => "personne_morale",
            },
        )?;
        w.optional_text_element("civilite", d.civilite.map(civilite))?;
        w.optional_text_element("nom", d.nom.as_deref())?;
        w.optional_text_element("prenom", d.prenom.as_deref())?;
        w.optional_text_element("date_naissance", d.date_naissance.as_deref())?;
        w.optional_text_element("commune_naissance", d.commune_naissance.as_deref())?;
        w.optional_text_element("denomination", d.denomination.as_deref())?;
        w.optional_text_element("siret", d.siret.as_deref())?;
        if let Some(r) = &d.representant {
            w.element("representant", |w| {
                w.optional_text_element("civilite", r.civilite.map(civilite))?;
                w.optional_text_element("nom", r.nom.as_deref())?;
                w.optional_text_element("prenom", r.prenom.as_deref())
            })?;
        }
        write_adresse(w, &d.adresse)?;
        w.optional_text_element("courriel", d.courriel.as_deref())?;
        w.optional_text_element("telephone", d.telephone.as_deref())
    })
}

fn write_adresse(w: &mut XmlWriter, a: &Adresse) -> Result<(), XmlError> {
    w.element("adresse", |w| {
        w.text_element("ligne1", &a.ligne1)?;
        w.optional_text_element("ligne2", a.ligne2.as_deref())?;
        w.optional_text_element("code_postal", a.code_postal.as_deref())?;
        w.text_element("ville", &a.ville)?;
        w.text_element("pays", &a.pays)
    })
}

fn write_parcelle(w: &mut XmlWriter, p: &Parcelle, reference: &str) -> Result<(), XmlError> {
    w.element("parcelle", |w| {
        w.text_element("prefixe", &p.prefixe)?;
        w.text_element("section", &p.section)?;
        w.text_element("numero", &p.numero.to_string())?;
        w.optional_text_element("surface", p.surface.as_deref())?;
        w.text_element("reference", reference)
    })
}
