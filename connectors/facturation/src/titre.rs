//! The canonical « titre de recette » (docs/documents.md, section « Facturation ») as Rust
//! types, read from the mapped document, and the checks the Treasury (Hélios) would
//! otherwise make long after the citizen left the portal: every refusal names the field.

use serde::Deserialize;

use crate::amount::{self, Cents};

/// A document the connector cannot write, with the field at fault (dotted path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("champ `{field}` : {reason}")]
pub struct FieldError {
    /// The field, e.g. `lignes[1].montant_ht` (empty for the document itself).
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

/// A bill to be issued as one titre de recette.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Titre {
    /// The envelope id: one titre per reference, whatever the retries.
    pub reference: String,
    /// The démarche number on the portal, for messages.
    #[serde(default)]
    pub reference_portail: Option<String>,
    /// The service billed (`dechetterie`, `cantine`, `piscine`…).
    pub service: String,
    /// Object of the titre (`ObjPce`).
    pub objet: String,
    /// `YYYY-MM-DD`: the bordereau's date and, by its year, the exercice.
    pub date_emission: String,
    /// Due date, not written in the PES (the Treasury sets it).
    #[serde(default)]
    pub date_echeance: Option<String>,
    /// Budget imputation, the same on every line.
    pub imputation: Imputation,
    /// The private person who owes.
    pub debiteur: Debiteur,
    /// What is billed: at least one line.
    pub lignes: Vec<Ligne>,
}

/// Budget imputation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Imputation {
    /// Compte par nature (`Nature`), digits.
    pub nature: String,
    /// Fonction (`Fonction`), digits.
    #[serde(default)]
    pub fonction: Option<String>,
    /// Code produit local (`CodProdLoc`), 1 to 4 letters or digits.
    pub code_produit: String,
}

/// The debtor, a private person (`CatTiers` 01).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debiteur {
    /// `M` or `MME`.
    pub civilite: String,
    /// Family name.
    pub nom: String,
    /// First name.
    pub prenom: String,
    /// The family's file number in the commune's software (`RefTiers`).
    #[serde(default)]
    pub reference_tiers: Option<String>,
    /// E-mail, not written in the PES.
    #[serde(default)]
    pub courriel: Option<String>,
    /// Postal address.
    pub adresse: Adresse,
}

/// The debtor's address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adresse {
    /// Number and street (`Adr2`).
    pub ligne: String,
    /// Building, residence, BP (`Adr3`).
    #[serde(default)]
    pub complement: Option<String>,
    /// 5 digits (`CP`).
    pub code_postal: String,
    /// Town (`Ville`).
    pub ville: String,
    /// Country; `FRANCE` when absent.
    #[serde(default)]
    pub pays: Option<String>,
}

/// One line billed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ligne {
    /// What is billed (`ObjLignePce`).
    pub libelle: String,
    /// Quantity, shown in `libelle`.
    pub quantite: String,
    /// Unit price, shown in `libelle`.
    pub prix_unitaire: String,
    /// Amount before VAT (`MtHT`), a decimal string > 0.
    pub montant_ht: String,
    /// VAT rate in percent (`TxTva`).
    #[serde(default)]
    pub taux_tva: Option<String>,
}

impl Titre {
    /// Reads and checks the mapped document.
    ///
    /// # Errors
    ///
    /// A [`FieldError`] naming the first field that is missing, unknown, of the wrong type,
    /// or that the Treasury would refuse.
    pub fn from_document(document: &serde_json::Value) -> Result<Self, FieldError> {
        let titre: Self = serde_path_to_error::deserialize(document).map_err(|error| {
            let path = error.path().to_string();
            let field = if path == "." { String::new() } else { path };
            FieldError::new(
                field,
                aiguillage_connector::reason::serde_reason(&error.into_inner()),
            )
        })?;
        titre.check()?;
        Ok(titre)
    }

    /// The year of `date_emission`: the exercice when the titre is sent alone.
    pub fn exercice(&self) -> u16 {
        // Checked by `from_document`.
        self.date_emission[..4].parse().unwrap_or(0)
    }

    /// The amount of each line, in cents.
    pub fn montants(&self) -> Vec<Cents> {
        self.lignes
            .iter()
            .map(|ligne| Cents::parse_positive(&ligne.montant_ht).unwrap_or(Cents(0)))
            .collect()
    }

    /// The titre's amount: the sum of its lines.
    pub fn total(&self) -> Cents {
        Cents(self.montants().iter().map(|c| c.0).sum())
    }

    fn check(&self) -> Result<(), FieldError> {
        let required = [
            ("reference", &self.reference),
            ("objet", &self.objet),
            ("service", &self.service),
            ("debiteur.nom", &self.debiteur.nom),
            ("debiteur.prenom", &self.debiteur.prenom),
            ("debiteur.adresse.ligne", &self.debiteur.adresse.ligne),
            ("debiteur.adresse.ville", &self.debiteur.adresse.ville),
        ];
        for (field, value) in required {
            if value.trim().is_empty() {
                return Err(FieldError::new(
                    field,
                    "est vide : le Trésor public refuse un titre sans lui",
                ));
            }
        }
        check_date("date_emission", &self.date_emission)?;
        if let Some(date) = &self.date_echeance {
            check_date("date_echeance", date)?;
        }
        match self.debiteur.civilite.as_str() {
            "M" | "MME" => {}
            other => {
                return Err(FieldError::new(
                    "debiteur.civilite",
                    format!(
                    "`{}` : la DGFiP prend `M` ou `MME` pour une personne physique (`MLLE` est refusé)",
                    other.escape_debug()
                ),
                ))
            }
        }
        let adresse = &self.debiteur.adresse;
        if adresse.code_postal.len() != 5
            || !adresse.code_postal.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(FieldError::new(
                "debiteur.adresse.code_postal",
                format!(
                    "`{}` n'est pas un code postal français de 5 chiffres",
                    adresse.code_postal.escape_debug()
                ),
            ));
        }
        if let Some(pays) = &adresse.pays {
            if !pays.trim().eq_ignore_ascii_case("FRANCE") {
                return Err(FieldError::new(
                    "debiteur.adresse.pays",
                    format!(
                        "`{}` : un débiteur domicilié à l'étranger demande le code pays INSEE (CodPays), que le document ne porte pas ; émettre ce titre dans le logiciel financier",
                        pays.escape_debug()
                    ),
                ));
            }
        }
        let imputation = &self.imputation;
        digits(
            "imputation.nature",
            &imputation.nature,
            12,
            "un compte par nature comme 7067",
        )?;
        if let Some(fonction) = &imputation.fonction {
            digits(
                "imputation.fonction",
                fonction,
                10,
                "une fonction comme 251",
            )?;
        }
        let code = &imputation.code_produit;
        if code.is_empty()
            || code.len() > 4
            || !code.bytes().all(|b| b.is_ascii_alphanumeric())
            || code.bytes().all(|b| b == b'0')
        {
            return Err(FieldError::new(
                "imputation.code_produit",
                format!(
                    "`{}` : un code produit local a 1 à 4 lettres ou chiffres (pas seulement des zéros)",
                    code.escape_debug()
                ),
            ));
        }
        if self.lignes.is_empty() {
            return Err(FieldError::new(
                "lignes",
                "aucune ligne : un titre en demande au moins une",
            ));
        }
        if self.lignes.len() > 999_999 {
            return Err(FieldError::new("lignes", "plus de 999999 lignes"));
        }
        let mut total = Cents(0);
        for (index, ligne) in self.lignes.iter().enumerate() {
            if ligne.libelle.trim().is_empty() {
                return Err(FieldError::new(
                    format!("lignes[{index}].libelle"),
                    "est vide",
                ));
            }
            let montant = Cents::parse_positive(&ligne.montant_ht)
                .map_err(|reason| FieldError::new(format!("lignes[{index}].montant_ht"), reason))?;
            let quantite = amount::parse_quantum(&ligne.quantite)
                .map_err(|reason| FieldError::new(format!("lignes[{index}].quantite"), reason))?;
            let prix = amount::parse_quantum(&ligne.prix_unitaire).map_err(|reason| {
                FieldError::new(format!("lignes[{index}].prix_unitaire"), reason)
            })?;
            // The line amount is computed by the mapping, but the connector holds it to
            // the rule (rounded once, to the cent, half away from zero): a mapping that
            // rounds the unit price first, or a float somewhere upstream, is caught here
            // rather than by the Treasury or the citizen.
            let attendu = amount::line_amount(quantite, prix).ok_or_else(|| {
                FieldError::new(
                    format!("lignes[{index}].montant_ht"),
                    "quantite × prix_unitaire dépasse les 14 chiffres d'un montant PES",
                )
            })?;
            if montant != attendu {
                return Err(FieldError::new(
                    format!("lignes[{index}].montant_ht"),
                    format!(
                        "`{}` n'est pas quantite × prix_unitaire arrondi au centime : {} × {} = {attendu} (le mapping écrit `{{{{ quantite|multiply(tarif)|round_decimal(2) }}}}`, arrondi une seule fois)",
                        ligne.montant_ht.escape_debug(),
                        ligne.quantite.escape_debug(),
                        ligne.prix_unitaire.escape_debug(),
                    ),
                ));
            }
            total = total.checked_add(montant).ok_or_else(|| {
                FieldError::new(
                    "lignes",
                    "le total dépasse les 14 chiffres d'un montant PES",
                )
            })?;
            if let Some(rate) = &ligne.taux_tva {
                amount::parse_rate(rate).map_err(|reason| {
                    FieldError::new(format!("lignes[{index}].taux_tva"), reason)
                })?;
            }
        }
        Ok(())
    }
}

fn digits(field: &str, value: &str, max: usize, what: &str) -> Result<(), FieldError> {
    if value.is_empty()
        || value.len() > max
        || !value.bytes().all(|b| b.is_ascii_digit())
        || value.bytes().all(|b| b == b'0')
    {
        return Err(FieldError::new(
            field,
            format!(
                "`{}` n'est pas {what} : 1 à {max} chiffres, pas seulement des zéros",
                value.escape_debug()
            ),
        ));
    }
    Ok(())
}

fn check_date(field: &str, text: &str) -> Result<(), FieldError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).map_err(|_| {
        FieldError::new(
            field,
            format!(
                "`{}` n'est pas une date comme 2026-11-28",
                text.escape_debug()
            ),
        )
    })?;
    if date.year() < 1000 {
        return Err(FieldError::new(
            field,
            format!("`{text}` : année invraisemblable"),
        ));
    }
    Ok(())
}
