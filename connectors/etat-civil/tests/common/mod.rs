//! Helpers of the connector's tests: the Cityweb schema, `xmllint`, and an XML reader that
//! turns a file back into a document to compare with what was written.
#![allow(dead_code)]

use std::path::PathBuf;

use aiguillage_connector_etat_civil::DemandeActe;
use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::{json, Map, Value};

// The schemas, xmllint and the golden documents, shared with the end-to-end tests.
#[path = "../../../../tests/src/xmllint.rs"]
mod shared;

use shared::Schema;

/// The workspace's root (the directory with `tests/fixtures`).
pub fn workspace_root() -> PathBuf {
    shared::workspace_root()
}

/// Validates files with `xmllint --noout --nonet --schema`; the error output when one fails.
pub fn xmllint(files: &[PathBuf]) -> Result<(), String> {
    Schema::Cityweb.validate(files)
}

/// Validates one file's bytes.
pub fn validate_bytes(bytes: &[u8]) -> Result<(), String> {
    Schema::Cityweb.validate_bytes("demande.xml", bytes)
}

/// The golden documents of the shipped mapping: (name, document).
pub fn fixtures() -> Vec<(String, Value)> {
    shared::golden_documents("etat-civil", 4, |text| {
        serde_json::from_str(text).expect("a JSON document")
    })
}

/// The golden document `name`.
pub fn fixture(name: &str) -> Value {
    shared::named(fixtures(), name)
}

/// An element: its name, its text (leaves) and its children.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn text_of(&self, name: &str) -> Option<String> {
        self.child(name).map(|c| c.text.clone())
    }

    pub fn names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }
}

/// Parses a file (UTF-8, or ISO-8859-1 when `latin1`) into its root element.
pub fn parse(bytes: &[u8], latin1: bool) -> Node {
    let text: String = if latin1 {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8(bytes.to_vec()).expect("UTF-8")
    };
    let mut reader = Reader::from_str(&text);
    let mut stack: Vec<Node> = vec![Node {
        name: String::new(),
        text: String::new(),
        children: Vec::new(),
    }];
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(start) => stack.push(Node {
                name: start.name().as_ref().to_owned(),
                text: String::new(),
                children: Vec::new(),
            }),
            Event::Empty(start) => stack.last_mut().unwrap().children.push(Node {
                name: start.name().as_ref().to_owned(),
                text: String::new(),
                children: Vec::new(),
            }),
            Event::End(_) => {
                let mut node = stack.pop().unwrap();
                if !node.children.is_empty() {
                    node.text.clear();
                }
                stack.last_mut().unwrap().children.push(node);
            }
            Event::Text(text) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(&text.xml10_content()),
            Event::GeneralRef(reference) => {
                let c = if reference.is_char_ref() {
                    reference.resolve_char_ref().unwrap().unwrap()
                } else {
                    match &*reference {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => panic!("unknown entity {other}"),
                    }
                };
                stack.last_mut().unwrap().text.push(c);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut root = stack.pop().unwrap();
    assert_eq!(root.children.len(), 1, "one root element");
    root.children.pop().unwrap()
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<String>) {
    if let Some(value) = value {
        map.insert(key.into(), Value::String(value));
    }
}

fn lieu(node: &Node) -> Value {
    let mut map = Map::new();
    put(&mut map, "ville", node.text_of("ville"));
    put(&mut map, "province", node.text_of("province"));
    put(&mut map, "pays", node.text_of("pays"));
    Value::Object(map)
}

fn individu(node: &Node) -> Value {
    let mut map = Map::new();
    let noms = node.child("noms").expect("noms");
    put(&mut map, "nom", noms.text_of("nomDeFamille"));
    put(&mut map, "nom_usage", noms.text_of("nomUsage"));
    put(&mut map, "prenoms", node.text_of("prenoms"));
    put(&mut map, "genre", node.text_of("genre"));
    put(&mut map, "sexe", node.text_of("sexe"));
    if let Some(naissance) = node.child("naissance") {
        let mut n = Map::new();
        put(&mut n, "date", naissance.text_of("date"));
        if let Some(l) = naissance.child("lieu") {
            n.insert("lieu".into(), lieu(l));
        }
        map.insert("naissance".into(), Value::Object(n));
    }
    for parent in ["pere", "mere"] {
        if let Some(p) = node.child(parent) {
            map.insert(parent.into(), individu(p));
        }
    }
    Value::Object(map)
}

fn adresse(node: &Node) -> Value {
    let mut map = Map::new();
    put(&mut map, "ligne1", node.text_of("ligneAdr1"));
    put(&mut map, "ligne2", node.text_of("ligneAdr2"));
    put(&mut map, "code_postal", node.text_of("codePostal"));
    let l = node.child("lieu").expect("adresse/lieu");
    put(&mut map, "ville", l.text_of("ville"));
    put(&mut map, "pays", l.text_of("pays"));
    put(&mut map, "courriel", node.text_of("mail"));
    put(&mut map, "telephone", node.text_of("tel"));
    Value::Object(map)
}

/// The document a file stands for, in the canonical shape (dates as written in the
/// file: full days; `nombre_exemplaires` and `origine` always present).
pub fn read_back(root: &Node) -> DemandeActe {
    assert_eq!(root.name, "demandeEtatCivil");
    let mut doc = Map::new();
    put(&mut doc, "identifiant", root.text_of("identifiant"));
    put(&mut doc, "nature_document", root.text_of("natureDocument"));
    if let Some(n) = root.text_of("nbExemplaire") {
        doc.insert(
            "nombre_exemplaires".into(),
            json!(n.parse::<i64>().unwrap()),
        );
    }
    put(&mut doc, "date_demande", root.text_of("dateDemande"));
    put(&mut doc, "motif", root.text_of("motif"));
    put(&mut doc, "origine", root.text_of("origine"));
    let evenement = root.child("evenement").expect("evenement");
    let interesse = evenement.child("interesse").expect("interesse");
    let mut ev = Map::new();
    put(
        &mut ev,
        "nature_evenement",
        evenement.text_of("natureEvenement"),
    );
    put(
        &mut ev,
        "type_interesse",
        evenement.text_of("typeInteresse"),
    );
    let dates = evenement.child("dateEvenement").expect("dateEvenement");
    let mut d = Map::new();
    put(&mut d, "date_debut", dates.text_of("dateDebut"));
    put(&mut d, "date_fin", dates.text_of("dateFin"));
    ev.insert("date_evenement".into(), Value::Object(d));
    ev.insert(
        "lieu_evenement".into(),
        lieu(evenement.child("lieuEvenement").unwrap()),
    );
    ev.insert("titulaire".into(), individu(interesse));
    if let Some(c) = evenement.child("conjoint") {
        ev.insert("conjoint".into(), individu(c));
    }
    doc.insert("evenement".into(), Value::Object(ev));
    let address = if let Some(demandeur) = root.child("demandeur") {
        let ind = demandeur.child("individu").unwrap();
        doc.insert(
            "demandeur".into(),
            json!({"qualite_demandeur": demandeur.text_of("qualiteDemandeur"), "individu": individu(ind)}),
        );
        ind.child("adresse")
    } else {
        interesse.child("adresse")
    };
    doc.insert(
        "adresse_livraison".into(),
        adresse(address.expect("an address")),
    );
    DemandeActe::from_document(&Value::Object(doc)).expect("the file reads back as a document")
}

/// What `read_back` should give for `demande`: the file's normal form of it.
pub fn normal_form(demande: &DemandeActe) -> DemandeActe {
    use aiguillage_connector_etat_civil::PartialDate;
    let mut out = demande.clone();
    out.reference_portail = None;
    let instant = time::OffsetDateTime::parse(
        &demande.date_demande,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    out.date_demande = instant
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    out.nombre_exemplaires = Some(demande.nombre_exemplaires.unwrap_or(1));
    out.origine = Some(
        demande
            .origine
            .unwrap_or(aiguillage_connector_etat_civil::Origine::Internet),
    );
    let dates = &demande.evenement.date_evenement;
    let day = |(year, month, day): (u16, u8, u8)| PartialDate {
        year,
        month: Some(month),
        day: Some(day),
    };
    out.evenement.date_evenement.date_debut = day(dates.date_debut.first_day());
    out.evenement.date_evenement.date_fin = match &dates.date_fin {
        Some(fin) => Some(day(fin.last_day())),
        None if !dates.date_debut.is_complete() => Some(day(dates.date_debut.last_day())),
        None => None,
    };
    out
}
