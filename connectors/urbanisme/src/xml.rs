//! `dossier.xml`: the content of `dossier.json` in XML, for instruction software that
//! imports XML. Namespace [`NAMESPACE`], root `<dossier>` (attributes `format`, `version`
//! and `dossier`, the identifier), then one element per key in the order of
//! `schema/dossier.xsd`; lists are wrapped (`<parcelles><parcelle>…`). UTF-8, indented.
//!
//! Written with quick-xml through the small `XmlWriter` below (the SDK will gain shared
//! XML helpers; this module is where to switch to them).

use std::io;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use crate::document::{Adresse, Civilite, Demandeur, Parcelle, TypeDemandeur};
use crate::json::{Digest, FORMAT, VERSION};
use crate::validate::ValidDossier;

/// The namespace of `dossier.xml`.
pub const NAMESPACE: &str = "urn:aiguillage:urbanisme:dossier:1";

/// The XML Schema of `dossier.xml`, as shipped.
pub const XSD: &str = include_str!("../schema/dossier.xsd");

/// Writes elements holding text; every text is escaped, `\r` included (a parser would
/// otherwise turn it into `\n`).
struct XmlWriter {
    inner: Writer<Vec<u8>>,
}

impl XmlWriter {
    fn new() -> io::Result<Self> {
        let mut inner = Writer::new_with_indent(Vec::new(), b' ', 2);
        inner.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        Ok(Self { inner })
    }

    fn start(&mut self, name: &str) -> io::Result<()> {
        self.inner.write_event(Event::Start(BytesStart::new(name)))
    }

    fn start_with(&mut self, name: &str, attributes: &[(&str, &str)]) -> io::Result<()> {
        let mut start = BytesStart::new(name);
        for attribute in attributes {
            start.push_attribute(*attribute);
        }
        self.inner.write_event(Event::Start(start))
    }

    fn end(&mut self, name: &str) -> io::Result<()> {
        self.inner.write_event(Event::End(BytesEnd::new(name)))
    }

    fn text(&mut self, name: &str, text: &str) -> io::Result<()> {
        self.start(name)?;
        self.inner
            .write_event(Event::Text(BytesText::from_escaped(escape(text))))?;
        self.end(name)
    }

    fn optional(&mut self, name: &str, text: Option<&str>) -> io::Result<()> {
        match text {
            Some(text) => self.text(name, text),
            None => Ok(()),
        }
    }

    fn finish(self) -> Vec<u8> {
        let mut bytes = self.inner.into_inner();
        bytes.push(b'\n');
        bytes
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

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
/// Only an I/O error of the in-memory buffer, which does not happen.
pub fn to_bytes(dossier: &ValidDossier<'_>, digests: &[Digest]) -> io::Result<Vec<u8>> {
    let d = &dossier.depot;
    let mut w = XmlWriter::new()?;
    let version = VERSION.to_string();
    w.start_with(
        "dossier",
        &[
            ("xmlns", NAMESPACE),
            ("format", FORMAT),
            ("version", &version),
            ("dossier", &dossier.dossier),
        ],
    )?;
    w.text("identifiant", &d.identifiant)?;
    w.optional("reference_portail", d.reference_portail.as_deref())?;
    // As written in the document: its RFC 3339 shape is XML's dateTime (checked).
    w.text("date_depot", &dossier.date_depot)?;
    w.text("commune", &d.commune)?;
    w.text("type_dossier", &d.type_dossier)?;
    w.start("cerfa")?;
    w.text("numero", &d.cerfa.numero)?;
    w.optional("revision", d.cerfa.revision.as_deref())?;
    w.end("cerfa")?;
    w.start("demandeurs")?;
    for demandeur in &d.demandeurs {
        write_demandeur(&mut w, demandeur)?;
    }
    w.end("demandeurs")?;
    let t = &d.terrain;
    w.start("terrain")?;
    w.text("commune_insee", &t.commune_insee)?;
    w.optional("superficie", t.superficie.as_deref())?;
    w.start("adresse")?;
    w.optional("numero", t.adresse.numero.as_deref())?;
    w.optional("voie", t.adresse.voie.as_deref())?;
    w.optional("lieu_dit", t.adresse.lieu_dit.as_deref())?;
    w.text("code_postal", &t.adresse.code_postal)?;
    w.text("localite", &t.adresse.localite)?;
    w.end("adresse")?;
    w.start("parcelles")?;
    for (parcelle, reference) in t.parcelles.iter().zip(&dossier.references) {
        write_parcelle(&mut w, parcelle, reference)?;
    }
    w.end("parcelles")?;
    w.end("terrain")?;
    w.start("projet")?;
    w.text("description", &d.projet.description)?;
    w.end("projet")?;
    w.start("surfaces")?;
    w.text("existante", &d.surfaces.existante)?;
    w.text("creee", &d.surfaces.creee)?;
    w.text("supprimee", &d.surfaces.supprimee)?;
    w.end("surfaces")?;
    w.start("pieces")?;
    for ((piece, valid), digest) in d.pieces.iter().zip(&dossier.pieces).zip(digests) {
        w.start("piece")?;
        w.text("code", &piece.code)?;
        w.text("libelle", &piece.libelle)?;
        w.text("fichier", &piece.fichier)?;
        w.text("chemin", &valid.chemin)?;
        w.text("type_media", valid.media_type.as_str())?;
        w.text("taille", &digest.taille.to_string())?;
        w.text("sha512", &digest.sha512)?;
        w.end("piece")?;
    }
    w.end("pieces")?;
    w.end("dossier")?;
    Ok(w.finish())
}

fn write_demandeur(w: &mut XmlWriter, d: &Demandeur) -> io::Result<()> {
    w.start("demandeur")?;
    w.text(
        "type",
        match d.type_demandeur {
            TypeDemandeur::Particulier => "particulier",
            TypeDemandeur::PersonneMorale => "personne_morale",
        },
    )?;
    w.optional("civilite", d.civilite.map(civilite))?;
    w.optional("nom", d.nom.as_deref())?;
    w.optional("prenom", d.prenom.as_deref())?;
    w.optional("date_naissance", d.date_naissance.as_deref())?;
    w.optional("commune_naissance", d.commune_naissance.as_deref())?;
    w.optional("denomination", d.denomination.as_deref())?;
    w.optional("siret", d.siret.as_deref())?;
    if let Some(r) = &d.representant {
        w.start("representant")?;
        w.optional("civilite", r.civilite.map(civilite))?;
        w.optional("nom", r.nom.as_deref())?;
        w.optional("prenom", r.prenom.as_deref())?;
        w.end("representant")?;
    }
    write_adresse(w, &d.adresse)?;
    w.optional("courriel", d.courriel.as_deref())?;
    w.optional("telephone", d.telephone.as_deref())?;
    w.end("demandeur")
}

fn write_adresse(w: &mut XmlWriter, a: &Adresse) -> io::Result<()> {
    w.start("adresse")?;
    w.text("ligne1", &a.ligne1)?;
    w.optional("ligne2", a.ligne2.as_deref())?;
    w.optional("code_postal", a.code_postal.as_deref())?;
    w.text("ville", &a.ville)?;
    w.text("pays", &a.pays)?;
    w.end("adresse")
}

fn write_parcelle(w: &mut XmlWriter, p: &Parcelle, reference: &str) -> io::Result<()> {
    w.start("parcelle")?;
    w.text("prefixe", &p.prefixe)?;
    w.text("section", &p.section)?;
    w.text("numero", &p.numero.to_string())?;
    w.optional("surface", p.surface.as_deref())?;
    w.text("reference", reference)?;
    w.end("parcelle")
}
