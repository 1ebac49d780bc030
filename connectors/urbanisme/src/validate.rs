//! The checks a deposit must pass before anything is written: every violation is
//! collected, so that the one permanent error lists all that is wrong with the dossier
//! (a citizen or an agent fixes them in one go), not only the first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aiguillage_connector::{siret, Attachment};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::cadastre;
use crate::document::{Demandeur, Depot, TypeDemandeur};
use crate::quote::quote;
use crate::tables::{Tables, TypeDossier};

/// The media types a pièce may have, with their extension and the bytes they start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `application/pdf`, `.pdf`, starts with `%PDF-`.
    Pdf,
    /// `image/jpeg`, `.jpg`, starts with `FF D8 FF`.
    Jpeg,
    /// `image/png`, `.png`, starts with `89 50 4E 47`.
    Png,
}

impl MediaType {
    /// The media type of a declared content type (parameters and case ignored), if allowed.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/pdf" => Some(Self::Pdf),
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(Self::Jpeg),
            "image/png" => Some(Self::Png),
            _ => None,
        }
    }

    /// Its name in the package (`application/pdf`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }

    /// The extension of its files, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }

    /// The bytes every file of the type starts with.
    pub fn magic(self) -> &'static [u8] {
        match self {
            Self::Pdf => b"%PDF-",
            Self::Jpeg => &[0xFF, 0xD8, 0xFF],
            Self::Png => &[0x89, 0x50, 0x4E, 0x47],
        }
    }

    /// What a file of the type is called in messages.
    fn name(self) -> &'static str {
        match self {
            Self::Pdf => "un PDF",
            Self::Jpeg => "une image JPEG",
            Self::Png => "une image PNG",
        }
    }
}

/// The size limits (the connector's `max_piece_bytes` and `max_package_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest pièce, in bytes.
    pub max_piece_bytes: u64,
    /// The largest sum of the pièces of a dossier, in bytes.
    pub max_package_bytes: u64,
}

/// Everything wrong with a deposit: each violation in words, in the document's order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Violations(pub Vec<String>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "dossier refusé : {one}"),
            many => {
                write!(f, "dossier refusé, {} problèmes : ", many.len())?;
                for (n, violation) in many.iter().enumerate() {
                    if n > 0 {
                        f.write_str(" ; ")?;
                    }
                    write!(f, "{}) {violation}", n + 1)?;
                }
                Ok(())
            }
        }
    }
}

/// A pièce that passed the checks: its file is borrowed from the delivery's attachment,
/// never copied.
#[derive(Debug, Clone)]
pub struct ValidPiece<'a> {
    /// Its code (`DP1`).
    pub code: String,
    /// Its media type.
    pub media_type: MediaType,
    /// Its path in the package, `pieces/<CODE>.<ext>`.
    pub chemin: String,
    /// Its bytes (the attachment's).
    pub content: &'a [u8],
}

/// A deposit that passed every check, ready to be packaged.
#[derive(Debug, Clone)]
pub struct ValidDossier<'a> {
    /// The deposit.
    pub depot: Depot,
    /// Its type, from the table.
    pub type_dossier: &'static TypeDossier,
    /// The dossier identifier, `{commune}-{type_dossier}-{h}` (see [`dossier_id`]).
    pub dossier: String,
    /// The deposit date as the document writes it (RFC 3339).
    pub date_depot: String,
    /// The reference of each parcel, in the document's order.
    pub references: Vec<String>,
    /// The pièces, in the document's order.
    pub pieces: Vec<ValidPiece<'a>>,
}

/// The dossier identifier of envelope `envelope_id`: `{commune}-{type_dossier}-{h}`, `h`
/// the first 12 lowercase hex digits of the SHA-256 of the envelope id. Stable across
/// deliveries of the envelope, and made of `[A-Za-z0-9-]` only once `commune` and
/// `type_dossier` are checked.
pub fn dossier_id(commune: &str, type_dossier: &str, envelope_id: &str) -> String {
    let digest = Sha256::digest(envelope_id.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{commune}-{type_dossier}-{hex}")
}

/// Checks `depot` (read from `document`) against the envelope, its attachments and the
/// limits.
///
/// # Errors
///
/// [`Violations`], listing every problem found.
pub fn validate<'a>(
    document: &serde_json::Value,
    depot: Depot,
    envelope_id: &str,
    attachments: &'a [Attachment],
    limits: Limits,
) -> Result<ValidDossier<'a>, Violations> {
    let tables = Tables::shipped();
    let mut v = Vec::new();

    if depot.identifiant != envelope_id {
        v.push(format!(
            "identifiant {} : ce n'est pas l'id de l'enveloppe `{}` (la mapping doit écrire `{{{{ envelope.id }}}}`)",
            quote(&depot.identifiant),
            envelope_id.escape_debug()
        ));
    }
    check_texts(document, "", &mut v);
    check_date_depot(document, depot.date_depot, &mut v);
    if !cadastre::is_commune_insee(&depot.commune) {
        v.push(format!(
            "commune {} : code INSEE de 5 caractères attendu (chiffres, ou 2A/2B et 3 chiffres)",
            quote(&depot.commune)
        ));
    }
    let type_dossier = tables.type_dossier(&depot.type_dossier);
    match type_dossier {
        None => v.push(format!(
            "type_dossier {} inconnu (connus : {})",
            quote(&depot.type_dossier),
            tables.known_types()
        )),
        Some(t) => {
            if !is_digits(&depot.cerfa.numero, 1, 10) {
                v.push(format!(
                    "cerfa.numero {} : des chiffres attendus (`13406`)",
                    quote(&depot.cerfa.numero)
                ));
            } else if !t.cerfa.contains(&depot.cerfa.numero) {
                // CERFA numbers change: a new one is accepted, and said.
                tracing::info!(
                    type_dossier = %t.code,
                    cerfa = %depot.cerfa.numero,
                    "cerfa number not in the table for this dossier type, accepted"
                );
            }
        }
    }
    if depot.demandeurs.is_empty() {
        v.push("demandeurs : au moins un demandeur attendu".into());
    }
    for (n, demandeur) in depot.demandeurs.iter().enumerate() {
        check_demandeur(n + 1, demandeur, &mut v);
    }

    // The land and its parcels.
    let terrain = &depot.terrain;
    let commune_ok = cadastre::is_commune_insee(&terrain.commune_insee);
    if !commune_ok {
        v.push(format!(
            "terrain.commune_insee {} : code INSEE de 5 caractères attendu (chiffres, ou 2A/2B et 3 chiffres)",
            quote(&terrain.commune_insee)
        ));
    }
    if !is_digits(&terrain.adresse.code_postal, 5, 5) {
        v.push(format!(
            "terrain.adresse.code_postal {} : 5 chiffres attendus",
            quote(&terrain.adresse.code_postal)
        ));
    }
    if let Some(superficie) = &terrain.superficie {
        check_decimal("terrain.superficie", superficie, &mut v);
    }
    if terrain.parcelles.is_empty() {
        v.push("terrain.parcelles : au moins une parcelle cadastrale attendue".into());
    }
    let mut references = Vec::new();
    for (n, parcelle) in terrain.parcelles.iter().enumerate() {
        match cadastre::reference(&terrain.commune_insee, parcelle) {
            Ok(reference) => references.push(reference),
            Err(problems) => {
                for problem in problems {
                    v.push(format!("parcelle {} : {problem}", n + 1));
                }
            }
        }
        if let Some(surface) = &parcelle.surface {
            check_decimal(&format!("parcelle {} : surface", n + 1), surface, &mut v);
        }
    }
    check_decimal("surfaces.existante", &depot.surfaces.existante, &mut v);
    check_decimal("surfaces.creee", &depot.surfaces.creee, &mut v);
    check_decimal("surfaces.supprimee", &depot.surfaces.supprimee, &mut v);

    let pieces = check_pieces(&depot, type_dossier, attachments, limits, &mut v);

    if !v.is_empty() {
        return Err(Violations(v));
    }
    let type_dossier = type_dossier.expect("no violation means the type was found");
    Ok(ValidDossier {
        dossier: dossier_id(&depot.commune, &type_dossier.code, envelope_id),
        date_depot: document
            .get("date_depot")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        depot,
        type_dossier,
        references,
        pieces,
    })
}

fn check_pieces<'a>(
    depot: &Depot,
    type_dossier: Option<&TypeDossier>,
    attachments: &'a [Attachment],
    limits: Limits,
    v: &mut Vec<String>,
) -> Vec<ValidPiece<'a>> {
    let tables = Tables::shipped();
    let codes: BTreeSet<&str> = depot.pieces.iter().map(|p| p.code.as_str()).collect();
    if let Some(t) = type_dossier {
        let missing: Vec<String> = t
            .pieces_obligatoires
            .iter()
            .filter(|code| !codes.contains(code.as_str()))
            .map(|code| format!("{code} ({})", tables.libelle(code).unwrap_or("?")))
            .collect();
        if !missing.is_empty() {
            let s = if missing.len() > 1 { "s" } else { "" };
            v.push(format!(
                "pièce{s} obligatoire{s} manquante{s} pour un {} : {}",
                t.code,
                missing.join(", ")
            ));
        }
    }
    let mut by_field: BTreeMap<&str, Vec<&'a Attachment>> = BTreeMap::new();
    for attachment in attachments {
        by_field
            .entry(attachment.field.as_str())
            .or_default()
            .push(attachment);
    }
    let mut seen = BTreeSet::new();
    let mut pieces = Vec::new();
    let mut total: u64 = 0;
    for piece in &depot.pieces {
        let code = piece.code.as_str();
        if code.is_empty()
            || code.len() > 16
            || !code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            v.push(format!(
                "pièce {} : code de 1 à 16 lettres majuscules ou chiffres attendu (`DP1`)",
                quote(code)
            ));
            continue;
        }
        if !seen.insert(code) {
            v.push(format!(
                "pièce {code} : listée plusieurs fois dans `pieces`"
            ));
            continue;
        }
        let files = by_field.get(code).map(Vec::as_slice).unwrap_or_default();
        let file = match files {
            [] => {
                v.push(format!(
                    "pièce {code} : aucun fichier joint de ce nom (le fichier de {} manque)",
                    quote(&piece.fichier)
                ));
                continue;
            }
            [file] => *file,
            more => {
                v.push(format!(
                    "pièce {code} : {} fichiers joints de ce nom, un seul attendu",
                    more.len()
                ));
                continue;
            }
        };
        let size = file.content.len() as u64;
        total = total.saturating_add(size);
        if size > limits.max_piece_bytes {
            v.push(format!(
                "pièce {code} : {size} octets, plus que la limite de {} octets par pièce",
                limits.max_piece_bytes
            ));
        }
        let Some(media_type) = MediaType::from_content_type(&file.content_type) else {
            v.push(format!(
                "pièce {code} : type {} refusé (PDF, JPEG ou PNG attendus)",
                quote(&file.content_type)
            ));
            continue;
        };
        if !file.content.starts_with(media_type.magic()) {
            v.push(format!(
                "pièce {code} : déclarée {} mais le contenu n'en est pas {} (fichier {})",
                media_type.as_str(),
                media_type.name(),
                quote(&file.filename)
            ));
            continue;
        }
        pieces.push(ValidPiece {
            code: code.to_owned(),
            media_type,
            chemin: format!("pieces/{code}.{}", media_type.extension()),
            content: &file.content,
        });
    }
    for (field, files) in &by_field {
        if !seen.contains(field) && !codes.contains(field) {
            v.push(format!(
                "fichier joint {} ({}) : aucune pièce de ce code dans `pieces`",
                quote(field),
                quote(&files[0].filename)
            ));
        }
    }
    if total > limits.max_package_bytes {
        v.push(format!(
            "les pièces font {total} octets, plus que la limite de {} octets par dossier",
            limits.max_package_bytes
        ));
    }
    pieces
}

fn check_demandeur(n: usize, d: &Demandeur, v: &mut Vec<String>) {
    let at = format!("demandeur {n}");
    match d.type_demandeur {
        TypeDemandeur::Particulier => {
            if d.nom.is_none() {
                v.push(format!("{at} : `nom` obligatoire pour un particulier"));
            }
            if d.prenom.is_none() {
                v.push(format!("{at} : `prenom` obligatoire pour un particulier"));
            }
        }
        TypeDemandeur::PersonneMorale => {
            if d.denomination.is_none() {
                v.push(format!(
                    "{at} : `denomination` obligatoire pour une personne morale"
                ));
            }
            match &d.siret {
                None => v.push(format!(
                    "{at} : `siret` obligatoire pour une personne morale"
                )),
                Some(s) if !siret::is_valid(s) => v.push(format!(
                    "{at} : SIRET {} invalide (14 chiffres dont la clé de Luhn attendus)",
                    quote(s)
                )),
                Some(_) => {}
            }
            if d.representant
                .as_ref()
                .and_then(|r| r.nom.as_ref())
                .is_none()
            {
                v.push(format!(
                    "{at} : `representant.nom` obligatoire pour une personne morale"
                ));
            }
        }
    }
    if let Some(date) = &d.date_naissance {
        if !is_date(date) {
            v.push(format!(
                "{at} : date_naissance {} : date AAAA-MM-JJ attendue",
                quote(date)
            ));
        }
    }
    if let Some(code_postal) = &d.adresse.code_postal {
        if d.adresse.pays.trim().eq_ignore_ascii_case("france") && !is_digits(code_postal, 5, 5) {
            v.push(format!(
                "{at} : adresse.code_postal {} : 5 chiffres attendus en France",
                quote(code_postal)
            ));
        }
    }
}

/// Every text of the document is non-empty and can be written in XML 1.0 (no control
/// character but tab and line breaks, no U+FFFE/U+FFFF).
fn check_texts(value: &serde_json::Value, path: &str, v: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) => {
            let at = if path.is_empty() { "." } else { path };
            if text.trim().is_empty() {
                v.push(format!("{at} : texte vide"));
            } else if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
                v.push(format!(
                    "{at} : caractère interdit U+{:04X} (caractère de contrôle)",
                    u32::from(c)
                ));
            }
        }
        serde_json::Value::Array(items) => {
            for (n, item) in items.iter().enumerate() {
                check_texts(item, &format!("{path}[{n}]"), v);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                check_texts(item, &child, v);
            }
        }
        _ => {}
    }
}

/// The SDK XML writer's rule, so that what passes here is never refused while the package
/// is written (a C1 control such as U+007F is legal XML 1.0 but refused by the writer).
fn is_xml_char(c: char) -> bool {
    aiguillage_connector::charset::is_writable(c)
}

/// The deposit date as written: RFC 3339 with `T` and an offset (what XML's `dateTime`
/// also reads), and a year a zip entry can carry (1980–2107).
fn check_date_depot(document: &serde_json::Value, parsed: OffsetDateTime, v: &mut Vec<String>) {
    let text = document
        .get("date_depot")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let b = text.as_bytes();
    let shape = b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (text.ends_with('Z') || matches!(b[b.len() - 6], b'+' | b'-'));
    if !shape {
        v.push(format!(
            "date_depot {} : date et heure RFC 3339 attendues (`2026-11-27T14:31:09+01:00`)",
            quote(text)
        ));
    } else if !(1980..=2107).contains(&parsed.year()) {
        v.push(format!(
            "date_depot {} : année hors de 1980–2107",
            quote(text)
        ));
    }
}

fn check_decimal(at: &str, value: &str, v: &mut Vec<String>) {
    let ok = match value.split_once('.') {
        Some((units, cents)) => is_digits(units, 1, 15) && is_digits(cents, 2, 2),
        None => false,
    };
    if !ok {
        v.push(format!(
            "{at} {} : nombre décimal à 2 décimales attendu (`312.00`)",
            quote(value)
        ));
    }
}

fn is_digits(value: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
}

fn is_date(value: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    value.len() == 10 && time::Date::parse(value, &format).is_ok_and(|date| date.year() >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_the_xml_writer_would_refuse_are_refused_here_first() {
        // U+007F and the C1 controls are legal XML 1.0 but refused by the SDK's writer: a
        // deposit carrying one must be refused as a dossier, not fail while it is written.
        for c in ['\u{1}', '\u{7f}', '\u{85}', '\u{9f}', '\u{fffe}'] {
            let mut problems = Vec::new();
            let text = format!("12 rue{c} des Tilleuls");
            check_texts(
                &serde_json::json!({ "adresse": { "ligne1": text } }),
                "",
                &mut problems,
            );
            assert_eq!(
                problems,
                [format!(
                    "adresse.ligne1 : caractère interdit U+{:04X} (caractère de contrôle)",
                    u32::from(c)
                )]
            );
        }
        let mut problems = Vec::new();
        check_texts(
            &serde_json::json!({ "nom": "Éloïse\tŒuvre\n" }),
            "",
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn dossier_ids_are_stable_and_safe() {
        let id = dossier_id(
            "44043",
            "DP",
            "clisson-sevre-maine:depot-declaration-prealable:212",
        );
        assert_eq!(
            id,
            dossier_id(
                "44043",
                "DP",
                "clisson-sevre-maine:depot-declaration-prealable:212"
            )
        );
        assert!(id.starts_with("44043-DP-"), "{id}");
        assert_eq!(id.len(), "44043-DP-".len() + 12);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        // SHA-256("abc") starts ba7816bf8f01.
        assert_eq!(dossier_id("44043", "CUa", "abc"), "44043-CUa-ba7816bf8f01");
    }

    #[test]
    fn media_types() {
        assert_eq!(
            MediaType::from_content_type("Application/PDF; charset=binary"),
            Some(MediaType::Pdf)
        );
        assert_eq!(MediaType::from_content_type("text/plain"), None);
        assert_eq!(MediaType::Png.extension(), "png");
    }

    #[test]
    fn violations_are_numbered() {
        let one = Violations(vec!["a".into()]).to_string();
        assert_eq!(one, "dossier refusé : a");
        let two = Violations(vec!["a".into(), "b".into()]).to_string();
        assert_eq!(two, "dossier refusé, 2 problèmes : 1) a ; 2) b");
    }

    #[test]
    fn decimals_and_dates() {
        let mut v = Vec::new();
        for good in ["0.00", "312.00", "755.50"] {
            check_decimal("x", good, &mut v);
        }
        assert!(v.is_empty(), "{v:?}");
        for bad in ["312", "312.0", "312,00", "-1.00", ".50", "1.000"] {
            check_decimal("x", bad, &mut v);
        }
        assert_eq!(v.len(), 6, "{v:?}");
        assert!(is_date("1992-05-14"));
        assert!(!is_date("1992-02-30"));
        assert!(!is_date("14/05/1992"));
    }
}
