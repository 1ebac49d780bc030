//! Cadastral references: the commune's INSEE code, and the 14-character reference of a
//! parcel, `commune_insee(5) + prefixe(3) + section(2) + numero(4)`
//! (`44043` `000` `AB` `0245` → `44043000AB0245`).

use crate::document::Parcelle;
use crate::quote::quote;

/// Whether `code` is a commune's INSEE code: 5 digits, or `2A`/`2B` and 3 digits (Corsica).
pub fn is_commune_insee(code: &str) -> bool {
    let bytes = code.as_bytes();
    bytes.len() == 5
        && (bytes[..2].iter().all(u8::is_ascii_digit) || matches!(&bytes[..2], b"2A" | b"2B"))
        && bytes[2..].iter().all(u8::is_ascii_digit)
}

/// The 14-character reference of `parcelle` in the commune `commune_insee` (already
/// checked with [`is_commune_insee`]).
///
/// # Errors
///
/// Every problem of the parcel, each in words naming the value (prefix of more than 3
/// digits, section not 1–2 characters `A-Z 0-9` or `00`, number outside 1–9999).
pub fn reference(commune_insee: &str, parcelle: &Parcelle) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let prefixe = &parcelle.prefixe;
    if prefixe.is_empty() || prefixe.len() > 3 || !prefixe.bytes().all(|b| b.is_ascii_digit()) {
        problems.push(format!(
            "préfixe {} : 1 à 3 chiffres attendus (`000` en général)",
            quote(prefixe)
        ));
    }
    let section = &parcelle.section;
    if section.is_empty()
        || section.len() > 2
        || !section
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        problems.push(format!(
            "section {} : 1 ou 2 caractères A-Z ou 0-9 attendus (`AB`, `C`)",
            quote(section)
        ));
    } else if section.bytes().all(|b| b == b'0') {
        problems.push(format!(
            "section {} : la section `00` n'existe pas",
            quote(section)
        ));
    }
    if !(1..=9999).contains(&parcelle.numero) {
        problems.push(format!(
            "numéro {} : un nombre de 1 à 9999 attendu",
            parcelle.numero
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(format!(
        "{commune_insee}{prefixe:0>3}{section:0>2}{:04}",
        parcelle.numero
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parcelle(prefixe: &str, section: &str, numero: i64) -> Parcelle {
        Parcelle {
            prefixe: prefixe.into(),
            section: section.into(),
            numero,
            surface: None,
        }
    }

    #[test]
    fn references_are_padded() {
        assert_eq!(
            reference("44043", &parcelle("000", "AB", 245)).unwrap(),
            "44043000AB0245"
        );
        assert_eq!(
            reference("44043", &parcelle("12", "C", 7)).unwrap(),
            "440430120C0007"
        );
        assert_eq!(
            reference("2A004", &parcelle("0", "1", 9999)).unwrap(),
            "2A004000019999"
        );
    }

    #[test]
    fn malformed_parcels_are_named() {
        let problems = reference("44043", &parcelle("0001", "ABC", 0)).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("préfixe `0001`"), "{problems:?}");
        assert!(problems[1].contains("section `ABC`"), "{problems:?}");
        assert!(problems[2].contains("numéro 0"), "{problems:?}");
        for section in ["00", "0", "ab", "", "A-"] {
            assert!(
                reference("44043", &parcelle("000", section, 1)).is_err(),
                "{section}"
            );
        }
        assert!(reference("44043", &parcelle("000", "A", 10_000)).is_err());
    }

    #[test]
    fn insee_codes() {
        for good in ["44043", "2A004", "2B033", "97101"] {
            assert!(is_commune_insee(good), "{good}");
        }
        for bad in ["4404", "440430", "2C004", "2a004", "4404A", "", "ééé"] {
            assert!(!is_commune_insee(bad), "{bad}");
        }
    }
}
