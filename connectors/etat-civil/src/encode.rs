//! The Cityweb `demandeEtatCivil` XML of a [`DemandeActe`]
//! (`../shared/schemas/cityweb/etatcivil.xsd`), written with quick-xml in the schema's
//! element order.
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

use std::borrow::Cow;

use aiguillage_connector::charset::{self, Refused};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
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
    let mut xml = Xml {
        writer: Writer::new_with_indent(Vec::new(), b' ', 2),
        options,
    };
    xml.event(Event::Decl(BytesDecl::new(
        "1.0",
        Some(options.encoding.xml_name()),
        None,
    )))?;
    let mut root = BytesStart::new("demandeEtatCivil");
    root.push_attribute(("version", "1.0"));
    xml.event(Event::Start(root))?;

    xml.leaf("identifiant", "identifiant", &demande.identifiant)?;
    if let Some(demandeur) = &demande.demandeur {
        xml.open("demandeur")?;
        xml.code("qualiteDemandeur", demandeur.qualite_demandeur.code())?;
        // The certificate goes to the requester: the address is theirs.
        xml.individu(
            "individu",
            "demandeur.individu",
            &demandeur.individu,
            Some(&demande.adresse_livraison),
        )?;
        xml.close("demandeur")?;
    }
    xml.code("natureDocument", demande.nature_document.code())?;
    xml.code(
        "nbExemplaire",
        &demande.nombre_exemplaires.unwrap_or(1).to_string(),
    )?;
    xml.code("dateDemande", &date_time(&demande.date_demande)?)?;

    let evenement = &demande.evenement;
    xml.open("evenement")?;
    let own_address = demande
        .demandeur
        .is_none()
        .then_some(&demande.adresse_livraison);
    xml.individu(
        "interesse",
        "evenement.titulaire",
        &evenement.titulaire,
        own_address,
    )?;
    if let Some(conjoint) = &evenement.conjoint {
        xml.individu("conjoint", "evenement.conjoint", conjoint, None)?;
    }
    xml.code("natureEvenement", evenement.nature_evenement.code())?;
    if let Some(type_interesse) = evenement.type_interesse {
        xml.code("typeInteresse", type_interesse.code())?;
    }
    let dates = &evenement.date_evenement;
    xml.open("dateEvenement")?;
    xml.code("dateDebut", &format_day(dates.date_debut.first_day()))?;
    let end = match &dates.date_fin {
        Some(fin) => Some(fin.last_day()),
        None if !dates.date_debut.is_complete() => Some(dates.date_debut.last_day()),
        None => None,
    };
    if let Some(end) = end {
        xml.code("dateFin", &format_day(end))?;
    }
    xml.close("dateEvenement")?;
    xml.lieu(
        "lieuEvenement",
        "evenement.lieu_evenement",
        &evenement.lieu_evenement,
    )?;
    // Mandatory in the schema; no form asks for it.
    xml.event(Event::Empty(BytesStart::new("natureReconnaissance")))?;
    xml.close("evenement")?;

    if let Some(motif) = &demande.motif {
        xml.leaf("motif", "motif", motif)?;
    }
    xml.code(
        "origine",
        demande.origine.unwrap_or(crate::Origine::Internet).code(),
    )?;
    xml.close("demandeEtatCivil")?;

    let mut text = xml.writer.into_inner();
    text.push(b'\n');
    Ok(options.encoding.bytes(text))
}

/// `date_demande` as an `xs:dateTime`, normalised (`T`, upper-case `Z`, the offset kept).
fn date_time(text: &str) -> Result<String, FieldError> {
    let refuse = |reason: String| FieldError::new("date_demande", reason);
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|error| {
        refuse(format!(
            "`{}` is not an RFC 3339 date-time such as 2026-11-28T10:12:00+01:00 ({error})",
            text.escape_debug()
        ))
    })?;
    if parsed.year() < 1 {
        return Err(refuse(format!("`{text}`: years start at 0001")));
    }
    parsed
        .format(&Rfc3339)
        .map_err(|error| refuse(format!("`{text}` cannot be written: {error}")))
}

/// The writer and the options of one document.
struct Xml {
    writer: Writer<Vec<u8>>,
    options: EncodeOptions,
}

impl Xml {
    fn event(&mut self, event: Event<'_>) -> Result<(), FieldError> {
        // Writing into a Vec cannot fail; the error is mapped rather than unwrapped.
        self.writer
            .write_event(event)
            .map_err(|error| FieldError::new("", format!("cannot write the XML: {error}")))
    }

    fn open(&mut self, name: &str) -> Result<(), FieldError> {
        self.event(Event::Start(BytesStart::new(name)))
    }

    fn close(&mut self, name: &str) -> Result<(), FieldError> {
        self.event(Event::End(BytesEnd::new(name)))
    }

    /// An element holding a code of the connector's own (no escaping needed).
    fn code(&mut self, name: &str, code: &str) -> Result<(), FieldError> {
        self.open(name)?;
        self.event(Event::Text(BytesText::from_escaped(code)))?;
        self.close(name)
    }

    /// An element holding the text of `field`, checked, converted and escaped.
    fn leaf(&mut self, name: &str, field: &str, value: &str) -> Result<(), FieldError> {
        let text = self.text(field, value)?;
        self.open(name)?;
        self.event(Event::Text(BytesText::from_escaped(escape(&text))))?;
        self.close(name)
    }

    fn optional(
        &mut self,
        name: &str,
        field: &str,
        value: Option<&String>,
    ) -> Result<(), FieldError> {
        match value {
            Some(value) => self.leaf(name, field, value),
            None => Ok(()),
        }
    }

    /// The text of `field` in the file's character set.
    fn text<'a>(&self, field: &str, value: &'a str) -> Result<Cow<'a, str>, FieldError> {
        let options = &self.options;
        charset::convert(value, options.encoding, options.transliterate).map_err(|refused| {
            FieldError::new(
                field,
                match refused {
                    Refused::Control(c) => format!(
                        "contains the control character U+{:04X}, which an XML file cannot carry: remove it from the démarche",
                        u32::from(c)
                    ),
                    Refused::NoEquivalent(c) => format!(
                        "the character {c:?} (U+{:04X}) has no equivalent in ISO-8859-1, the encoding of the import files: correct the démarche, or set `encoding = \"utf-8\"` if the software reads it",
                        u32::from(c)
                    ),
                    Refused::NotInLatin1(c) => format!(
                        "the character {c:?} (U+{:04X}) is not in ISO-8859-1, the encoding of the import files, and `transliterate` is off: correct the démarche, or set `transliterate = true`",
                        u32::from(c)
                    ),
                },
            )
        })
    }

    fn lieu(&mut self, name: &str, field: &str, lieu: &Lieu) -> Result<(), FieldError> {
        self.open(name)?;
        self.leaf("ville", &format!("{field}.ville"), &lieu.ville)?;
        self.optional(
            "province",
            &format!("{field}.province"),
            lieu.province.as_ref(),
        )?;
        self.optional("pays", &format!("{field}.pays"), lieu.pays.as_ref())?;
        self.close(name)
    }

    fn adresse(&mut self, adresse: &Adresse) -> Result<(), FieldError> {
        const FIELD: &str = "adresse_livraison";
        self.open("adresse")?;
        self.leaf("ligneAdr1", "adresse_livraison.ligne1", &adresse.ligne1)?;
        self.optional(
            "ligneAdr2",
            "adresse_livraison.ligne2",
            adresse.ligne2.as_ref(),
        )?;
        self.optional(
            "codePostal",
            "adresse_livraison.code_postal",
            adresse.code_postal.as_ref(),
        )?;
        self.open("lieu")?;
        self.leaf("ville", &format!("{FIELD}.ville"), &adresse.ville)?;
        self.optional("pays", &format!("{FIELD}.pays"), adresse.pays.as_ref())?;
        self.close("lieu")?;
        self.optional(
            "mail",
            &format!("{FIELD}.courriel"),
            adresse.courriel.as_ref(),
        )?;
        self.optional(
            "tel",
            &format!("{FIELD}.telephone"),
            adresse.telephone.as_ref(),
        )?;
        self.close("adresse")
    }

    fn individu(
        &mut self,
        name: &str,
        field: &str,
        individu: &Individu,
        adresse: Option<&Adresse>,
    ) -> Result<(), FieldError> {
        self.open(name)?;
        self.open("noms")?;
        self.leaf("nomDeFamille", &format!("{field}.nom"), &individu.nom)?;
        self.optional(
            "nomUsage",
            &format!("{field}.nom_usage"),
            individu.nom_usage.as_ref(),
        )?;
        self.close("noms")?;
        self.optional(
            "prenoms",
            &format!("{field}.prenoms"),
            individu.prenoms.as_ref(),
        )?;
        if let Some(genre) = individu.genre {
            self.code("genre", genre.code())?;
        }
        if let Some(adresse) = adresse {
            self.adresse(adresse)?;
        }
        if let Some(sexe) = individu.sexe {
            self.code("sexe", sexe.code())?;
        }
        if let Some(pere) = &individu.pere {
            self.individu("pere", &format!("{field}.pere"), pere, None)?;
        }
        if let Some(mere) = &individu.mere {
            self.individu("mere", &format!("{field}.mere"), mere, None)?;
        }
        // The schema needs a date in `naissance`: a birthplace alone has no place there.
        if let Some(naissance) = &individu.naissance {
            if let Some(date) = &naissance.date {
                self.open("naissance")?;
                // xs:date, xs:gYear or xs:gYearMonth: the partial date as it is.
                self.code("date", &date.to_string())?;
                if let Some(lieu) = &naissance.lieu {
                    self.lieu("lieu", &format!("{field}.naissance.lieu"), lieu)?;
                }
                self.close("naissance")?;
            }
        }
        self.close(name)
    }
}

/// Escapes a checked text for element content.
fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'', '\r']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_quotes_and_carriage_returns() {
        assert_eq!(escape("a & b < c > d"), "a &amp; b &lt; c &gt; d");
        assert_eq!(escape("l'\"x\"\r\n"), "l&apos;&quot;x&quot;&#13;\n");
        assert!(matches!(escape("Hélène"), Cow::Borrowed(_)));
    }
}
