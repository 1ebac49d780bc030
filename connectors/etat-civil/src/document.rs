//! The canonical « demande d'acte » (docs/documents.md, section « État civil ») as Rust
//! types, read from the mapped document with every refusal naming the field at fault.
//!
//! The mapping guarantees most of the shape; the connector checks again what the Cityweb
//! file needs (required texts not empty, real dates, at least one copy), because a
//! commune may write its own mapping and the software would otherwise bounce the file
//! long after the citizen left the portal.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A document the connector cannot write, with the field at fault (dotted path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("champ `{field}` : {reason}")]
pub struct FieldError {
    /// The field, e.g. `evenement.titulaire.nom` (empty for the document itself).
    pub field: String,
    /// What is wrong and what would fix it.
    pub reason: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A request for a copy or an extract of a civil-status act.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DemandeActe {
    /// The envelope id: unique and stable, the file's name and `identifiant`.
    pub identifiant: String,
    /// The démarche number on the portal, for messages only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_portail: Option<String>,
    /// When the citizen submitted the démarche (RFC 3339 with offset).
    pub date_demande: String,
    /// What is asked for.
    pub nature_document: NatureDocument,
    /// Copies asked, 1 or more (1 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nombre_exemplaires: Option<i64>,
    /// Why the citizen asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub motif: Option<String>,
    /// How the request arrived (`internet` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origine: Option<Origine>,
    /// The act: which event, when, where, about whom.
    pub evenement: Evenement,
    /// Who asks, when it is not the person the act is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demandeur: Option<Demandeur>,
    /// Where to send the certificate.
    pub adresse_livraison: Adresse,
}

/// The act asked about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Evenement {
    /// Birth, marriage, death or recognition.
    pub nature_evenement: NatureEvenement,
    /// Recognition only: whether the titulaire is the child or the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_interesse: Option<TypeInteresse>,
    /// When the event took place (a period when the exact date is unknown).
    pub date_evenement: DateEvenement,
    /// Where: the commune that holds the act.
    pub lieu_evenement: Lieu,
    /// The person the act is about.
    pub titulaire: Individu,
    /// The other spouse (marriage only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conjoint: Option<Individu>,
}

/// The date of the event, or the period searched.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DateEvenement {
    /// The date, or the start of the period (year or month when that is all that is known).
    pub date_debut: PartialDate,
    /// The end of the period searched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_fin: Option<PartialDate>,
}

/// Who asks, and in what capacity.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Demandeur {
    /// The requester's capacity, which the legal rules read.
    pub qualite_demandeur: QualiteDemandeur,
    /// The requester.
    pub individu: Individu,
}

/// A person: the titulaire, the spouse, a parent or the requester.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Individu {
    /// Family name (nom de naissance).
    pub nom: String,
    /// Name in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nom_usage: Option<String>,
    /// First names, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prenoms: Option<String>,
    /// Civility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genre: Option<Genre>,
    /// Sex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sexe: Option<Sexe>,
    /// Birth date and place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub naissance: Option<Naissance>,
    /// Father.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pere: Option<Box<Individu>>,
    /// Mother.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mere: Option<Box<Individu>>,
}

/// A birth: date (possibly incomplete) and place.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Naissance {
    /// Date of birth, possibly a year or a month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<PartialDate>,
    /// Place of birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lieu: Option<Lieu>,
}

/// A place.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Lieu {
    /// Commune or foreign city.
    pub ville: String,
    /// Département, province or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    /// Country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pays: Option<String>,
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Adresse {
    /// Number and street.
    pub ligne1: String,
    /// Office, firm, building, BP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ligne2: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_postal: Option<String>,
    /// Town.
    pub ville: String,
    /// Country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pays: Option<String>,
    /// E-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courriel: Option<String>,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telephone: Option<String>,
}

macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $code)] $variant),+
        }

        impl $name {
            /// Every value, in the order of the documentation.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The code written in the document and in the XML.
            pub fn code(self) -> &'static str {
                match self {
                    $(Self::$variant => $code),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

code_enum!(
    /// What is asked for.
    NatureDocument {
        /// Copie intégrale.
        Cpi = "CPI",
        /// Extrait avec filiation.
        Extaf = "EXTAF",
        /// Extrait sans filiation.
        Extsf = "EXTSF",
        /// Extrait plurilingue.
        Extpl = "EXTPL",
    }
);

code_enum!(
    /// The event of the act; also the sub-directory of the file.
    NatureEvenement {
        /// Naissance.
        Nai = "NAI",
        /// Mariage.
        Mar = "MAR",
        /// Décès.
        Dec = "DEC",
        /// Reconnaissance.
        Rec = "REC",
    }
);

code_enum!(
    /// How the request arrived.
    Origine {
        /// Filed by the citizen on the portal.
        Internet = "internet",
        /// Typed in by an agent at the counter.
        Guichet = "guichet",
        /// Typed in by an agent from a letter.
        Courrier = "courrier",
    }
);

code_enum!(
    /// Recognition acts: who the titulaire is.
    TypeInteresse {
        /// The recognised child.
        Reconnu = "reconnu",
        /// The parent who recognised.
        Auteur = "auteur",
    }
);

code_enum!(
    /// Civility.
    Genre {
        /// Monsieur.
        M = "M",
        /// Madame.
        Mme = "Mme",
        /// Mademoiselle.
        Mlle = "Mlle",
    }
);

code_enum!(
    /// Sex.
    Sexe {
        /// Féminin.
        F = "F",
        /// Masculin.
        M = "M",
        /// Indéterminé.
        Na = "NA",
    }
);

code_enum!(
    /// The requester's capacity (docs/documents.md, `demandeur`).
    QualiteDemandeur {
        /// Father.
        Pere = "pere",
        /// Mother.
        Mere = "mere",
        /// Spouse.
        Conjoint = "conjoint",
        /// Son or daughter.
        Enfant = "enfant",
        /// Grandparent.
        GrandParent = "grand-parent",
        /// Grandchild.
        PetitEnfant = "petit-enfant",
        /// Brother or sister.
        FrereSoeur = "frere-soeur",
        /// Guardian, curator.
        RepresentantLegal = "representant-legal",
        /// Notary.
        Notaire = "notaire",
        /// Lawyer.
        Avocat = "avocat",
        /// Anyone else (heir, genealogist, cousin…).
        Autre = "autre",
    }
);

/// A date of which only the year, or the year and month, may be known: `YYYY`,
/// `YYYY-MM` or `YYYY-MM-DD` (years 0001 to 9999, real calendar dates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartialDate {
    /// The year.
    pub year: u16,
    /// The month, when known.
    pub month: Option<u8>,
    /// The day, when known (then the month is known too).
    pub day: Option<u8>,
}

impl PartialDate {
    /// Parses `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    ///
    /// # Errors
    ///
    /// A message saying what is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let refuse = || {
            format!(
                "`{}` n'est ni une date, ni un mois, ni une année (écrire 1990-04-12, 1990-04 ou 1990)",
                text.escape_debug()
            )
        };
        let number = |part: &str, len: usize| -> Option<u16> {
            (part.len() == len && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().ok())
                .flatten()
        };
        let mut parts = text.split('-');
        let year = parts.next().and_then(|p| number(p, 4)).ok_or_else(refuse)?;
        if year == 0 {
            return Err(format!("`{text}` : l'année 0000 n'existe pas"));
        }
        let month = match parts.next() {
            None => None,
            Some(p) => Some(
                number(p, 2)
                    .filter(|m| (1..=12).contains(m))
                    .ok_or_else(refuse)? as u8,
            ),
        };
        let day = match parts.next() {
            None => None,
            Some(p) => {
                let month = month.ok_or_else(refuse)?;
                Some(
                    number(p, 2)
                        .filter(|&d| d >= 1 && d <= u16::from(days_in_month(year, month)))
                        .ok_or_else(|| format!("`{text}` n'est pas un jour du calendrier"))?
                        as u8,
                )
            }
        };
        if parts.next().is_some() {
            return Err(refuse());
        }
        Ok(Self { year, month, day })
    }

    /// True when year, month and day are known.
    pub fn is_complete(&self) -> bool {
        self.day.is_some()
    }

    /// The first day of the period (`1923` → 1923-01-01).
    pub fn first_day(&self) -> (u16, u8, u8) {
        (self.year, self.month.unwrap_or(1), self.day.unwrap_or(1))
    }

    /// The last day of the period (`1923` → 1923-12-31, `1924-02` → 1924-02-29).
    pub fn last_day(&self) -> (u16, u8, u8) {
        let month = self.month.unwrap_or(12);
        let day = self.day.unwrap_or_else(|| days_in_month(self.year, month));
        (self.year, month, day)
    }
}

/// `YYYY-MM-DD` of a day.
pub(crate) fn format_day((year, month, day): (u16, u8, u8)) -> String {
    format!("{year:04}-{month:02}-{day:02}")
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

impl fmt::Display for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if let Some(month) = self.month {
            write!(f, "-{month:02}")?;
        }
        if let Some(day) = self.day {
            write!(f, "-{day:02}")?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for PartialDate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for PartialDate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl DemandeActe {
    /// Reads the mapped document.
    ///
    /// # Errors
    ///
    /// A [`FieldError`] naming the first field that is missing, unknown, of the wrong
    /// type or out of its vocabulary.
    pub fn from_document(document: &serde_json::Value) -> Result<Self, FieldError> {
        check_requester_identity(document)?;
        let demande: Self = serde_path_to_error::deserialize(document).map_err(|error| {
            let path = error.path().to_string();
            let field = if path == "." { String::new() } else { path };
            FieldError::new(
                field,
                aiguillage_connector::reason::serde_reason(&error.into_inner()),
            )
        })?;
        demande.check()?;
        Ok(demande)
    }

    /// The checks beyond the shape: required texts not empty, a real number of copies, a
    /// period in order.
    fn check(&self) -> Result<(), FieldError> {
        let required = [
            ("identifiant", &self.identifiant),
            ("date_demande", &self.date_demande),
            (
                "evenement.lieu_evenement.ville",
                &self.evenement.lieu_evenement.ville,
            ),
            ("evenement.titulaire.nom", &self.evenement.titulaire.nom),
            ("adresse_livraison.ligne1", &self.adresse_livraison.ligne1),
            ("adresse_livraison.ville", &self.adresse_livraison.ville),
        ];
        for (field, value) in required {
            if value.trim().is_empty() {
                return Err(FieldError::new(field, "est vide : le logiciel en a besoin"));
            }
        }
        if let Some(count) = self.nombre_exemplaires {
            if count < 1 {
                return Err(FieldError::new(
                    "nombre_exemplaires",
                    format!("{count} exemplaires demandés : il en faut au moins 1"),
                ));
            }
            if count > i64::from(i32::MAX) {
                return Err(FieldError::new(
                    "nombre_exemplaires",
                    format!("{count} exemplaires demandés : ce n'est pas un nombre d'exemplaires"),
                ));
            }
        }
        let dates = &self.evenement.date_evenement;
        if let Some(fin) = &dates.date_fin {
            if fin.last_day() < dates.date_debut.first_day() {
                return Err(FieldError::new(
                    "evenement.date_evenement.date_fin",
                    format!(
                        "la période finit ({fin}) avant de commencer ({})",
                        dates.date_debut
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A requester who is not the titulaire must be named. Many forms ask only for the
/// relationship, and the shipped mapping then takes the portal account's identity; a
/// démarche typed in by an agent for someone without an account has neither, and the
/// agent must learn which field to fill rather than read serde's "missing field".
fn check_requester_identity(document: &serde_json::Value) -> Result<(), FieldError> {
    let Some(demandeur) = document.get("demandeur").filter(|d| d.is_object()) else {
        return Ok(());
    };
    let named = demandeur
        .pointer("/individu/nom")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|nom| !nom.trim().is_empty());
    if named
        || demandeur
            .pointer("/individu/nom")
            .is_some_and(|n| !n.is_null() && !n.is_string())
    {
        // A name of the wrong type is for serde to report, with its type.
        return Ok(());
    }
    Err(FieldError::new(
        "demandeur.individu.nom",
        "manquant : le demandeur n'est pas la personne concernée par l'acte et le document ne dit pas qui il est. Ni le formulaire (nom du demandeur) ni le compte du portail (`user`, absent d'une démarche saisie par un agent pour une personne sans compte) ne le donnent : remplir `demandeur.individu.nom` dans le mapping (docs/mappings.md), par exemple depuis un champ du formulaire que l'agent renseigne, puis rejouer la démarche",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_dates_parse_and_expand() {
        let year = PartialDate::parse("1923").unwrap();
        assert_eq!(format_day(year.first_day()), "1923-01-01");
        assert_eq!(format_day(year.last_day()), "1923-12-31");
        let month = PartialDate::parse("1924-02").unwrap();
        assert_eq!(format_day(month.last_day()), "1924-02-29");
        assert_eq!(
            format_day(PartialDate::parse("1900-02").unwrap().last_day()),
            "1900-02-28"
        );
        assert_eq!(
            format_day(PartialDate::parse("2000-02").unwrap().last_day()),
            "2000-02-29"
        );
        let day = PartialDate::parse("1990-04-12").unwrap();
        assert!(day.is_complete());
        assert_eq!(day.to_string(), "1990-04-12");
        for bad in [
            "",
            "90",
            "1990-4",
            "1990-13",
            "1990-02-30",
            "0000",
            "1990-01-01-01",
            "vers 1920",
            "1990-00",
            "+199",
        ] {
            assert!(PartialDate::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
