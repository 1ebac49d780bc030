//! The tables kept as data: the dossier types (their CERFA forms and required pièces) and
//! the label of every pièce code, read from `data/types.toml` and `data/pieces.toml`
//! (embedded in the binary, parsed once). See those files for what each entry means.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// The table of dossier types, as shipped.
pub const TYPES_TOML: &str = include_str!("../data/types.toml");

/// The labels of the pièce codes, as shipped.
pub const PIECES_TOML: &str = include_str!("../data/pieces.toml");

/// A dossier type: its code, label, CERFA forms and required pièces.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TypeDossier {
    /// The code `type_dossier` gives (`DP`, `PCMI`, `CUa`).
    pub code: String,
    /// What it is, in words.
    pub libelle: String,
    /// The CERFA numbers known for it.
    pub cerfa: Vec<String>,
    /// The pièce codes every dossier of the type must hold.
    pub pieces_obligatoires: Vec<String>,
}

/// Both tables.
#[derive(Debug)]
pub struct Tables {
    types: Vec<TypeDossier>,
    pieces: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypesFile {
    types: Vec<TypeDossier>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PiecesFile {
    pieces: BTreeMap<String, String>,
}

impl Tables {
    /// Reads the tables from their TOML texts.
    ///
    /// # Errors
    ///
    /// The TOML error, naming the key at fault.
    pub fn parse(types: &str, pieces: &str) -> Result<Self, toml::de::Error> {
        let types: TypesFile = toml::from_str(types)?;
        let pieces: PiecesFile = toml::from_str(pieces)?;
        Ok(Self {
            types: types.types,
            pieces: pieces.pieces,
        })
    }

    /// The shipped tables, parsed on first use.
    pub fn shipped() -> &'static Tables {
        static TABLES: OnceLock<Tables> = OnceLock::new();
        TABLES.get_or_init(|| {
            // The tables are part of the binary, and the crate's tests parse them: a
            // failure here is a build that shipped a broken data file.
            Self::parse(TYPES_TOML, PIECES_TOML)
                .expect("the urbanisme tables data/*.toml are valid (checked by the tests)")
        })
    }

    /// Every dossier type, in the table's order.
    pub fn types(&self) -> &[TypeDossier] {
        &self.types
    }

    /// The dossier type of `code` (exact match: `CUa`, not `CUA`).
    pub fn type_dossier(&self, code: &str) -> Option<&TypeDossier> {
        self.types.iter().find(|t| t.code == code)
    }

    /// The label of the pièce `code`, when the table knows it.
    pub fn libelle(&self, code: &str) -> Option<&str> {
        self.pieces.get(code).map(String::as_str)
    }

    /// The codes of every dossier type, for messages (`DP, DPMI, …`).
    pub fn known_types(&self) -> String {
        self.types
            .iter()
            .map(|t| t.code.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// What is wrong with the tables themselves (empty when they are consistent).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for t in &self.types {
            if !seen.insert(t.code.as_str()) {
                problems.push(format!("type {} is listed twice", t.code));
            }
            if t.code.is_empty() || !t.code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                problems.push(format!("type code `{}` is not [A-Za-z0-9]+", t.code));
            }
            if t.cerfa.is_empty() {
                problems.push(format!("type {} has no CERFA number", t.code));
            }
            for cerfa in &t.cerfa {
                if cerfa.is_empty() || !cerfa.bytes().all(|b| b.is_ascii_digit()) {
                    problems.push(format!("type {}: CERFA `{cerfa}` is not digits", t.code));
                }
            }
            if t.pieces_obligatoires.is_empty() {
                problems.push(format!("type {} requires no pièce", t.code));
            }
            for code in &t.pieces_obligatoires {
                if self.libelle(code).is_none() {
                    problems.push(format!(
                        "type {} requires {code}, which has no label in pieces.toml",
                        t.code
                    ));
                }
            }
        }
        for (code, libelle) in &self.pieces {
            if code.is_empty()
                || !code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            {
                problems.push(format!("pièce code `{code}` is not [A-Z0-9]+"));
            }
            if libelle.trim().is_empty() {
                problems.push(format!("pièce {code} has an empty label"));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_tables_are_consistent() {
        let tables = Tables::parse(TYPES_TOML, PIECES_TOML).unwrap();
        assert_eq!(tables.problems(), Vec::<String>::new());
    }

    #[test]
    fn every_type_of_the_document_contract_is_in_the_table() {
        let tables = Tables::shipped();
        for code in ["DP", "DPMI", "PC", "PCMI", "PA", "PD", "CUa", "CUb"] {
            let t = tables
                .type_dossier(code)
                .unwrap_or_else(|| panic!("{code}"));
            assert!(!t.cerfa.is_empty(), "{code}");
        }
        assert_eq!(tables.types().len(), 8);
        assert!(tables.type_dossier("CUA").is_none());
    }

    #[test]
    fn the_cerfa_numbers_of_the_spec() {
        let tables = Tables::shipped();
        for (code, cerfa) in [
            ("DP", "13404"),
            ("DP", "16702"),
            ("DPMI", "13703"),
            ("PCMI", "13406"),
            ("PC", "13409"),
            ("PA", "13409"),
            ("PD", "13405"),
            ("CUa", "13410"),
            ("CUb", "13410"),
        ] {
            assert!(
                tables
                    .type_dossier(code)
                    .unwrap()
                    .cerfa
                    .iter()
                    .any(|c| c == cerfa),
                "{code} {cerfa}"
            );
        }
    }

    #[test]
    fn the_fixtures_are_complete() {
        let tables = Tables::shipped();
        let dp = &tables.type_dossier("DP").unwrap().pieces_obligatoires;
        assert!(dp
            .iter()
            .all(|c| ["DP1", "DP4", "DP7"].contains(&c.as_str())));
        let pcmi = &tables.type_dossier("PCMI").unwrap().pieces_obligatoires;
        assert!(pcmi.iter().all(|c| [
            "PCMI1", "PCMI2", "PCMI3", "PCMI4", "PCMI5", "PCMI6", "PCMI7", "PCMI8"
        ]
        .contains(&c.as_str())));
    }

    #[test]
    fn inconsistencies_are_found() {
        let tables = Tables::parse(
            "[[types]]\ncode = \"XX\"\nlibelle = \"x\"\ncerfa = []\npieces_obligatoires = [\"XX1\"]\n",
            "[pieces]\nxx2 = \"\"\n",
        )
        .unwrap();
        let problems = tables.problems().join("\n");
        assert!(
            problems.contains("type XX has no CERFA number"),
            "{problems}"
        );
        assert!(
            problems.contains("requires XX1, which has no label"),
            "{problems}"
        );
        assert!(problems.contains("pièce code `xx2`"), "{problems}");
        assert!(problems.contains("empty label"), "{problems}");
    }
}
