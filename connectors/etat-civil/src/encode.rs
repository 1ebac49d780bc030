//! The Cityweb `demandeEtatCivil` XML of a [`DemandeActe`]
//! (`schemas/cityweb/etatcivil.xsd`), written with the SDK's XML writer
//! ([`aiguillage_connector::xml`]) in the schema's element order.
//!
//! Text is escaped for any input: `&`, `<`, `>` and quotes become entities, a carriage
//! return becomes `&#13;` (a parser would turn a raw one into a line feed), tabs and line
//! feeds are kept. Characters that XML 1.0 cannot carry at all (the other C0 controls,
//! U+FFFE, U+FFFF) and the C1 controls (U+007F to U+009F, never meant in a name and
//! usually the trace of a mis-decoded text) are refused with the field named: the file
//! would be rejected, or silently altered, by the software.
//!
//! In ISO-8859-1, a character outside that set is transliterated (`œ` → `oe`, `ł` → `l`,
//! `’` → `'`) when `transliterate` is on (the default), or refused with the field named
//! when it is off; a character without any transliteration (an emoji) is refused either
//! way.

use aiguillage_connector::xml::{self, XmlError, XmlOptions, XmlWriter};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::document::{format_day, Adresse, DemandeActe, FieldError, Individu, Lieu};

pub use aiguillage_connector::charset::Encoding;

/// How texts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// The file's encoding.
    pub encoding: Encoding,
    /// In ISO-8859-1, replace characters outside it by their closest Latin letters
    /// (`true`) or refuse the document (`false`).
    pub transliterate: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            encoding: Encoding::Utf8,
            transliterate: true,
        }
    }
}

/// The XML file of `demande`, in bytes of the chosen encoding.
///
/// # Errors
///
/// A [`FieldError`] naming a field whose text cannot be written (a control character, a
/// character outside ISO-8859-1 without transliteration) or a `date_demande` that is not
/// an RFC 3339 date-time.
pub fn encode(demande: &DemandeActe, options: EncodeOptions) -> Result<Vec<u8>, FieldError> {
    let xml_options = XmlOptions::new(options.encoding).transliterate(options.transliterate);
    xml::document(
        xml_options,
        "demandeEtatCivil",
        &[("version", "1.0")],
        |w| {
            leaf(w, "identifiant", "identifiant", &demande.identifiant)?;
            if let Some(demandeur) = &demande.demandeur {
                w.element("demandeur", |w| {
                    w.text_element("qualiteDemandeur", demandeur.qualite_demandeur.code())?;
                    // The certificate goes to the requester: the address is theirs.
                    individu(
                        w,
                        "individu",
                        "demandeur.individu",
                        &demandeur.individu,
                        Some(&demande.adresse_livraison),
                    )
                })?;
            }
            w.text_element("natureDocument", demande.nature_document.code())?;
            w.text_element(
                "nbExemplaire",
                &demande.nombre_exemplaires.unwrap_or(1).to_string(),
            )?;
            w.text_element("dateDemande", &date_time(&demande.date_demande)?)?;
            w.element("evenement", |w| evenement(w, demande))?;
            if let Some(motif) = &demande.motif {
                leaf(w, "motif", "motif", motif)?;
            }
            Ok(w.text_element(
                "origine",
                demande.origine.unwrap_or(crate::Origine::Internet).code(),
            )?)
        },
    )
}

fn evenement(w: &mut XmlWriter, demande: &DemandeActe) -> Result<(), FieldError> {
    let evenement = &demande.evenement;
    let own_address = demande
        .demandeur
        .is_none()
        .then_some(&demande.adresse_livraison);
    individu(
        w,
        "interesse",
        "evenement.titulaire",
        &evenement.titulaire,
        own_address,
    )?;
    if let Some(conjoint) = &evenement.conjoint {
        individu(w, "conjoint", "evenement.conjoint", conjoint, None)?;
    }
    w.text_element("natureEvenement", evenement.nature_evenement.code())?;
    if let Some(type_interesse) = evenement.type_interesse {
        w.text_element("typeInteresse", type_interesse.code())?;
    }
    let dates = &evenement.date_evenement;
    w.element("dateEvenement", |w| {
        w.text_element("dateDebut", &format_day(dates.date_debut.first_day()))?;
        let end = match &dates.date_fin {
            Some(fin) => Some(fin.last_day()),
            None if !dates.date_debut.is_complete() => Some(dates.date_debut.last_day()),
            None => None,
        };
        match end {
            Some(end) => w.text_element("dateFin", &format_day(end)),
            None => Ok(()),
        }
    })?;
    lieu(
        w,
        "lieuEvenement",
        "evenement.lieu_evenement",
        &evenement.lieu_evenement,
    )?;
    // Mandatory in the schema; no form asks for it.
    Ok(w.empty_element("natureReconnaissance", &[])?)
}

/// `date_demande` as an `xs:dateTime`, normalised (`T`, upper-case `Z`, the offset kept).
fn date_time(text: &str) -> Result<String, FieldError> {
    let refuse = |reason: String| FieldError::new("date_demande", reason);
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|error| {
        refuse(format!(
            "`{}` n'est pas une date et heure RFC 3339 comme 2026-11-28T10:12:00+01:00 ({error})",
            text.escape_debug()
        ))
    })?;
    if parsed.year() < 1 {
        return Err(refuse(format!("`{text}` : les années commencent à 0001")));
    }
    parsed
        .format(&Rfc3339)
        .map_err(|error| refuse(format!("`{text}` ne peut pas être écrit : {error}")))
}

// The markup is the SDK's: a refused text is reported under the démarche's field it came
// from, anything else under its element.
impl From<XmlError> for FieldError {
    fn from(error: XmlError) -> Self {
        FieldError::new("", error.to_string())
    }
}

/// An element holding the text of `field`, checked, converted and escaped.
fn leaf(w: &mut XmlWriter, name: &str, field: &str, value: &str) -> Result<(), FieldError> {
    w.text_element(name, value).map_err(|error| match error {
        XmlError::Character { .. } => FieldError::new(field, error.reason()),
        other => other.into(),
    })
}

fn optional(
    w: &mut XmlWriter,
    name: &str,
    field: &str,
    value: Option<&String>,
) -> Result<(), FieldError> {
    match value {
        Some(value) => leaf(w, name, field, value),
        None => Ok(()),
    }
}

fn lieu(w: &mut XmlWriter, name: &str, field: &str, lieu: &Lieu) -> Result<(), FieldError> {
    w.element(name, |w| {
        leaf(w, "ville", &format!("{field}.ville"), &lieu.ville)?;
        optional(
            w,
            "province",
            &format!("{field}.province"),
            lieu.province.as_ref(),
        )?;
        optional(w, "pays", &format!("{field}.pays"), lieu.pays.as_ref())
    })
}

fn adresse(w: &mut XmlWriter, adresse: &Adresse) -> Result<(), FieldError> {
    const FIELD: &str = "adresse_livraison";
    w.element("adresse", |w| {
        leaf(w, "ligneAdr1", "adresse_livraison.ligne1", &adresse.ligne1)?;
        optional(
            w,
            "ligneAdr2",
            "adresse_livraison.ligne2",
            adresse.ligne2.as_ref(),
        )?;
        optional(
            w,
            "codePostal",
            "adresse_livraison.code_postal",
            adresse.code_postal.as_ref(),
        )?;
        w.element("lieu", |w| {
            leaf(w, "ville", &format!("{FIELD}.ville"), &adresse.ville)?;
            optional(w, "pays", &format!("{FIELD}.pays"), adresse.pays.as_ref())
        })?;
        optional(
            w,
            "mail",
            &format!("{FIELD}.courriel"),
            adresse.courriel.as_ref(),
        )?;
        optional(
            w,
            "tel",
            &format!("{FIELD}.telephone"),
            adresse.telephone.as_ref(),
        )
    })
}

fn individu(
    w: &mut XmlWriter,
    name: &str,
    field: &str,
    individu: &Individu,
    adresse: Option<&Adresse>,
) -> Result<(), FieldError> {
    w.element(name, |w| {
        w.element("noms", |w| {
            leaf(w, "nomDeFamille", &format!("{field}.nom"), &individu.nom)?;
            optional(
                w,
                "nomUsage",
                &format!("{field}.nom_usage"),
                individu.nom_usage.as_ref(),
            )
        })?;
        optional(
            w,
            "prenoms",
            &format!("{field}.prenoms"),
            individu.prenoms.as_ref(),
        )?;
        if let Some(genre) = individu.genre {
            w.text_element("genre", genre.code())?;
        }
        if let Some(adresse_livraison) = adresse {
            self::adresse(w, adresse_livraison)?;
        }
        if let Some(sexe) = individu.sexe {
            w.text_element("sexe", sexe.code())?;
        }
        if let Some(pere) = &individu.pere {
            self::individu(w, "pere", &format!("{field}.pere"), pere, None)?;
        }
        if let Some(mere) = &individu.mere {
            self::individu(w, "mere", &format!("{field}.mere"), mere, None)?;
        }
        // The schema needs a date in `naissance`: a birthplace alone has no place there.
        if let Some(naissance) = &individu.naissance {
            if let Some(date) = &naissance.date {
                w.element("naissance", |w| {
                    // xs:date, xs:gYear or xs:gYearMonth: the partial date as it is.
                    w.text_element("date", &date.to_string())?;
                    match &naissance.lieu {
                        Some(lieu) => {
                            self::lieu(w, "lieu", &format!("{field}.naissance.lieu"), lieu)
                        }
                        None => Ok(()),
                    }
                })?;
            }
        }
        Ok(())
    })
}
