//! The mapped deposit (docs/documents.md, « Urbanisme: dépôt ») as typed values.
//!
//! Every object refuses unknown keys: a key the connector does not know is a typo in a
//! mapping, and silently dropping it would lose part of an application. Reading checks the
//! shape and the types; the rules between values (required pièces, cadastral references,
//! SIRET, …) are [`mod@crate::validate`]'s.

use serde::Deserialize;
use time::OffsetDateTime;

/// A deposit as the mapping writes it: the application, its applicants, its land and the
/// list of its pièces (whose files are the delivery's attachments).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Depot {
    /// The envelope id.
    pub identifiant: String,
    /// The démarche number on the portal (`51-212`).
    #[serde(default)]
    pub reference_portail: Option<String>,
    /// When the application was filed: the legal deposit date.
    #[serde(with = "time::serde::rfc3339")]
    pub date_depot: OffsetDateTime,
    /// The commune the application is addressed to (INSEE code).
    pub commune: String,
    /// The kind of application (`DP`, `PCMI`, `CUa`…): a code of the table of dossier
    /// types ([`crate::tables`]), checked by [`mod@crate::validate`].
    pub type_dossier: String,
    /// The CERFA form.
    pub cerfa: Cerfa,
    /// The applicant and co-applicants (at least one).
    pub demandeurs: Vec<Demandeur>,
    /// The land.
    pub terrain: Terrain,
    /// The project.
    pub projet: Projet,
    /// Surfaces de plancher.
    pub surfaces: Surfaces,
    /// The pièces joined; their files are the attachments named after their codes.
    #[serde(default)]
    pub pieces: Vec<Piece>,
}

/// The CERFA form of the application.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Cerfa {
    /// Its number (`13406`).
    pub numero: String,
    /// Its revision (`10` for `13406*10`).
    #[serde(default)]
    pub revision: Option<String>,
}

/// A person or a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeDemandeur {
    /// A person.
    Particulier,
    /// A company, an association, a public body.
    PersonneMorale,
}

/// A person's civility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Civilite {
    /// Monsieur.
    M,
    /// Madame.
    Mme,
}

/// An applicant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Demandeur {
    /// A person or a company.
    #[serde(rename = "type")]
    pub type_demandeur: TypeDemandeur,
    /// A person's civility.
    #[serde(default)]
    pub civilite: Option<Civilite>,
    /// Family name (required for a person).
    #[serde(default)]
    pub nom: Option<String>,
    /// First name (required for a person).
    #[serde(default)]
    pub prenom: Option<String>,
    /// Date of birth, `YYYY-MM-DD`.
    #[serde(default)]
    pub date_naissance: Option<String>,
    /// Place of birth.
    #[serde(default)]
    pub commune_naissance: Option<String>,
    /// Company name (required for a company).
    #[serde(default)]
    pub denomination: Option<String>,
    /// SIRET (required for a company).
    #[serde(default)]
    pub siret: Option<String>,
    /// Who represents the company.
    #[serde(default)]
    pub representant: Option<Representant>,
    /// Postal address.
    pub adresse: Adresse,
    /// E-mail address.
    #[serde(default)]
    pub courriel: Option<String>,
    /// Telephone.
    #[serde(default)]
    pub telephone: Option<String>,
}

/// The person representing a company.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Representant {
    /// Civility.
    #[serde(default)]
    pub civilite: Option<Civilite>,
    /// Family name (required).
    #[serde(default)]
    pub nom: Option<String>,
    /// First name.
    #[serde(default)]
    pub prenom: Option<String>,
}

/// An applicant's postal address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Adresse {
    /// Number and street.
    pub ligne1: String,
    /// Complement.
    #[serde(default)]
    pub ligne2: Option<String>,
    /// Postal code.
    #[serde(default)]
    pub code_postal: Option<String>,
    /// Town.
    pub ville: String,
    /// Country.
    pub pays: String,
}

/// The land the application is about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Terrain {
    /// INSEE code of the commune of the land.
    pub commune_insee: String,
    /// Total area, m² (decimal).
    #[serde(default)]
    pub superficie: Option<String>,
    /// Address of the land.
    pub adresse: AdresseTerrain,
    /// The cadastral parcels (at least one).
    pub parcelles: Vec<Parcelle>,
}

/// The address of the land.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AdresseTerrain {
    /// Street number.
    #[serde(default)]
    pub numero: Option<String>,
    /// Street.
    #[serde(default)]
    pub voie: Option<String>,
    /// Lieu-dit.
    #[serde(default)]
    pub lieu_dit: Option<String>,
    /// Postal code, 5 digits.
    pub code_postal: String,
    /// Locality.
    pub localite: String,
}

/// A cadastral parcel as the form gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Parcelle {
    /// Prefix (up to 3 digits).
    pub prefixe: String,
    /// Section (1 or 2 characters).
    pub section: String,
    /// Number, 1–9999 (read wide so that an out-of-range number is named, not a type error).
    pub numero: i64,
    /// Area, m² (decimal).
    #[serde(default)]
    pub surface: Option<String>,
}

/// The project.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Projet {
    /// The project, in the applicant's words.
    pub description: String,
}

/// Surfaces de plancher, m² (decimals).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Surfaces {
    /// Existing.
    pub existante: String,
    /// Created.
    pub creee: String,
    /// Removed.
    pub supprimee: String,
}

/// A pièce of the dossier; its file is the attachment whose field is [`Piece::code`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Piece {
    /// The code in the CERFA's bordereau des pièces (`DP1`, `PCMI2`).
    pub code: String,
    /// What the pièce is.
    pub libelle: String,
    /// The file name the citizen gave (untrusted: never used as a path).
    pub fichier: String,
}

/// A document that does not have the deposit's shape: the key path at fault and why.
#[derive(Debug, thiserror::Error)]
#[error("champ `{path}` : {message}")]
pub struct ShapeError {
    /// The dotted key path (`terrain.parcelles[0].numero`), `.` for the whole document.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// The longest message of a [`ShapeError`], in characters.
const MAX_MESSAGE_CHARS: usize = 200;

impl Depot {
    /// Reads a mapped document.
    ///
    /// # Errors
    ///
    /// A [`ShapeError`] naming the key path of the first problem: a missing or unknown
    /// key, a value of the wrong type or outside its enumeration.
    pub fn from_document(document: &serde_json::Value) -> Result<Self, ShapeError> {
        serde_path_to_error::deserialize(document).map_err(|error| {
            let path = error.path().to_string();
            // serde quotes the value at fault: a hostile one may be huge, and a message
            // must not carry the document.
            let message = aiguillage_connector::reason::serde_reason(&error.into_inner());
            let message = match message.char_indices().nth(MAX_MESSAGE_CHARS) {
                Some((cut, _)) => format!("{}…", &message[..cut]),
                None => message,
            };
            ShapeError { path, message }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture() -> serde_json::Value {
        serde_json::from_str(include_str!(
            "../../../tests/fixtures/urbanisme/dp-sci-ravalement.expected.json"
        ))
        .unwrap()
    }

    #[test]
    fn reads_the_fixture() {
        let depot = Depot::from_document(&fixture()).unwrap();
        assert_eq!(depot.type_dossier, "DP");
        assert_eq!(depot.terrain.parcelles[0].numero, 245);
        assert_eq!(depot.pieces.len(), 3);
        assert_eq!(
            depot.demandeurs[0].type_demandeur,
            TypeDemandeur::PersonneMorale
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_its_path() {
        let mut document = fixture();
        document["terrain"]["parcelles"][0]["sectoin"] = json!("AB");
        let error = Depot::from_document(&document).unwrap_err();
        assert_eq!(error.path, "terrain.parcelles[0].sectoin");
        assert!(error.message.contains("champ `sectoin` inconnu"), "{error}");
    }

    #[test]
    fn a_huge_value_is_not_quoted_whole() {
        let mut document = fixture();
        document["terrain"]["parcelles"][0]["numero"] = json!("x".repeat(100_000));
        let error = Depot::from_document(&document).unwrap_err();
        assert!(error.message.chars().count() <= 201, "{error}");
        assert!(error.message.ends_with('…'), "{error}");
    }

    #[test]
    fn a_wrong_type_is_named_with_its_path() {
        let mut document = fixture();
        document["terrain"]["parcelles"][0]["numero"] = json!("245");
        let error = Depot::from_document(&document).unwrap_err();
        assert_eq!(error.path, "terrain.parcelles[0].numero");
    }
}
