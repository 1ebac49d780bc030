//! Who may obtain which document of which act: the rules of delivery of civil-status
//! documents (décret n° 2017-890 du 6 mai 2017, art. 30 to 32), checked before the request
//! reaches the software, which would otherwise bounce it days later.
//!
//! The rules are one table of data, [`RULES`], printed as is in
//! `docs/connectors/etat-civil.md`: the first row whose acts and documents match the
//! request decides. A refusal is a permanent failure whose message names the rule.

use std::fmt;

use crate::document::{DemandeActe, NatureDocument, NatureEvenement, QualiteDemandeur};

/// Who asks, as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// The person the act is about (no `demandeur` in the document).
    Titulaire,
    /// Their spouse.
    Conjoint,
    /// A parent or grandparent.
    Ascendant,
    /// A child or grandchild.
    Descendant,
    /// A guardian or curator.
    RepresentantLegal,
    /// A notary or a lawyer, acting for a client.
    ProfessionnelDuDroit,
    /// Anyone else: a brother or sister, a cousin, an heir, a genealogist.
    Autre,
}

impl Requester {
    /// The category of the document's requester.
    pub fn of(demande: &DemandeActe) -> Self {
        match demande.demandeur.as_ref().map(|d| d.qualite_demandeur) {
            None => Self::Titulaire,
            Some(QualiteDemandeur::Conjoint) => Self::Conjoint,
            Some(
                QualiteDemandeur::Pere | QualiteDemandeur::Mere | QualiteDemandeur::GrandParent,
            ) => Self::Ascendant,
            Some(QualiteDemandeur::Enfant | QualiteDemandeur::PetitEnfant) => Self::Descendant,
            Some(QualiteDemandeur::RepresentantLegal) => Self::RepresentantLegal,
            Some(QualiteDemandeur::Notaire | QualiteDemandeur::Avocat) => {
                Self::ProfessionnelDuDroit
            }
            Some(QualiteDemandeur::FrereSoeur | QualiteDemandeur::Autre) => Self::Autre,
        }
    }

    /// The category in words, for messages and the documentation.
    pub fn label(self) -> &'static str {
        match self {
            Self::Titulaire => "la personne concernée par l'acte",
            Self::Conjoint => "son conjoint",
            Self::Ascendant => "un ascendant",
            Self::Descendant => "un descendant",
            Self::RepresentantLegal => "son représentant légal",
            Self::ProfessionnelDuDroit => "un notaire ou un avocat",
            Self::Autre => "toute autre personne",
        }
    }
}

/// Who a rule lets obtain the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Anyone who asks.
    Anyone,
    /// Only these requesters.
    Only(&'static [Requester]),
    /// Nobody: the document does not exist for this act.
    Nobody,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Its name, quoted in refusals (`filiation-naissance`).
    pub name: &'static str,
    /// The acts it covers.
    pub acts: &'static [NatureEvenement],
    /// The documents it covers.
    pub documents: &'static [NatureDocument],
    /// Who may obtain them.
    pub allowed: Allowed,
    /// The rule in words, with its legal basis.
    pub text: &'static str,
}

/// The people who may obtain a document that shows filiation (art. 30 of the décret).
const FAMILY: &[Requester] = &[
    Requester::Titulaire,
    Requester::Conjoint,
    Requester::Ascendant,
    Requester::Descendant,
    Requester::RepresentantLegal,
    Requester::ProfessionnelDuDroit,
];

use NatureDocument::{Cpi, Extaf, Extpl, Extsf};
use NatureEvenement::{Dec, Mar, Nai, Rec};

/// The rules, first match wins.
pub const RULES: &[Rule] = &[
    Rule {
        name: "filiation-naissance",
        acts: &[Nai, Rec],
        documents: &[Cpi, Extaf, Extpl],
        allowed: Allowed::Only(FAMILY),
        text: "la copie intégrale, l'extrait avec filiation ou l'extrait plurilingue d'un acte de naissance ou de reconnaissance n'est délivré qu'à la personne, son conjoint, ses ascendants ou descendants, son représentant légal, ou un notaire ou un avocat agissant pour elle (décret 2017-890, art. 30) ; toute autre personne doit obtenir l'autorisation du procureur de la République, ou demander un extrait sans filiation",
    },
    Rule {
        name: "filiation-mariage",
        acts: &[Mar],
        documents: &[Cpi, Extaf, Extpl],
        allowed: Allowed::Only(FAMILY),
        text: "la copie intégrale, l'extrait avec filiation ou l'extrait plurilingue d'un acte de mariage n'est délivré qu'aux époux, à leurs ascendants ou descendants, à leur représentant légal, ou à un notaire ou un avocat agissant pour eux (décret 2017-890, art. 30) ; toute autre personne demande un extrait sans filiation",
    },
    Rule {
        name: "sans-filiation",
        acts: &[Nai, Mar, Rec],
        documents: &[Extsf],
        allowed: Allowed::Anyone,
        text: "l'extrait sans filiation est délivré à toute personne (décret 2017-890, art. 31)",
    },
    Rule {
        name: "deces",
        acts: &[Dec],
        documents: &[Cpi, Extpl],
        allowed: Allowed::Anyone,
        text: "la copie intégrale ou l'extrait plurilingue d'un acte de décès est délivré à toute personne (décret 2017-890, art. 32)",
    },
    Rule {
        name: "deces-pas-d-extrait",
        acts: &[Dec],
        documents: &[Extaf, Extsf],
        allowed: Allowed::Nobody,
        text: "un acte de décès n'a pas d'extrait : demander une copie intégrale (ou un extrait plurilingue)",
    },
];

/// A request that the rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct Refusal {
    /// The rule that refuses it.
    pub rule: &'static str,
    /// What was asked.
    pub document: NatureDocument,
    /// Of which act.
    pub act: NatureEvenement,
    /// By whom.
    pub requester: Requester,
    /// The capacity the document gives, if any.
    pub qualite: Option<QualiteDemandeur>,
    /// The rule's text.
    pub text: &'static str,
}

impl Refusal {
    fn message(&self) -> String {
        let who = match self.qualite {
            Some(qualite) => format!("`{qualite}` ({})", self.requester.label()),
            None => self.requester.label().to_owned(),
        };
        format!(
            "la règle légale `{}` refuse la demande {} d'un acte de {} faite par {who} : {}",
            self.rule,
            of_document(self.document),
            act_name(self.act),
            self.text
        )
    }
}

/// Checks the request against [`RULES`].
///
/// # Errors
///
/// A [`Refusal`] naming the rule when the requester may not obtain the document.
pub fn check(demande: &DemandeActe) -> Result<(), Refusal> {
    let act = demande.evenement.nature_evenement;
    let document = demande.nature_document;
    let requester = Requester::of(demande);
    let Some(rule) = RULES
        .iter()
        .find(|rule| rule.acts.contains(&act) && rule.documents.contains(&document))
    else {
        // Every (act, document) pair has a row (tested): nothing to refuse on.
        return Ok(());
    };
    let allowed = match rule.allowed {
        Allowed::Anyone => true,
        Allowed::Only(who) => who.contains(&requester),
        Allowed::Nobody => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(Refusal {
            rule: rule.name,
            document,
            act,
            requester,
            qualite: demande.demandeur.as_ref().map(|d| d.qualite_demandeur),
            text: rule.text,
        })
    }
}

/// The document in words.
pub fn document_name(document: NatureDocument) -> &'static str {
    match document {
        NatureDocument::Cpi => "copie intégrale",
        NatureDocument::Extaf => "extrait avec filiation",
        NatureDocument::Extsf => "extrait sans filiation",
        NatureDocument::Extpl => "extrait plurilingue",
    }
}

/// "de copie intégrale", "d'extrait …": the document after « la demande ».
fn of_document(document: NatureDocument) -> String {
    match document {
        NatureDocument::Cpi => format!("de {}", document_name(document)),
        _ => format!("d'{}", document_name(document)),
    }
}

/// The act in words.
pub fn act_name(act: NatureEvenement) -> &'static str {
    match act {
        NatureEvenement::Nai => "naissance",
        NatureEvenement::Mar => "mariage",
        NatureEvenement::Dec => "décès",
        NatureEvenement::Rec => "reconnaissance",
    }
}

/// The table in Markdown, as the documentation shows it (kept equal by a test).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| règle | actes | documents | qui peut les obtenir | pourquoi |\n|---|---|---|---|---|\n",
    );
    for rule in RULES {
        let acts: Vec<_> = rule.acts.iter().map(|a| format!("`{a}`")).collect();
        let documents: Vec<_> = rule.documents.iter().map(|d| format!("`{d}`")).collect();
        let who = match rule.allowed {
            Allowed::Anyone => "toute personne".to_owned(),
            Allowed::Nobody => "personne".to_owned(),
            Allowed::Only(who) => who.iter().map(|r| r.label()).collect::<Vec<_>>().join(", "),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {who} | {} |\n",
            rule.name,
            acts.join(" "),
            documents.join(" "),
            rule.text
        ));
    }
    out
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_act_and_document_has_exactly_one_rule() {
        for act in NatureEvenement::ALL {
            for document in NatureDocument::ALL {
                let rules: Vec<_> = RULES
                    .iter()
                    .filter(|r| r.acts.contains(act) && r.documents.contains(document))
                    .map(|r| r.name)
                    .collect();
                assert_eq!(rules.len(), 1, "{act} {document}: {rules:?}");
            }
        }
    }

    #[test]
    fn every_capacity_has_a_category() {
        // A new capacity in the document must be placed in the rules on purpose.
        assert_eq!(QualiteDemandeur::ALL.len(), 11);
    }
}

#[cfg(test)]
mod print {
    /// `cargo test -p aiguillage-connector-etat-civil print_table -- --ignored --nocapture`
    /// prints the table for the documentation.
    #[test]
    #[ignore]
    fn print_table() {
        println!("{}", super::markdown_table());
    }
}
