//! The SIRET check: 14 digits and the Luhn key, as INSEE computes it.
//!
//! Shared by the connectors that read a company's SIRET (the collectivité of a PES
//! titre, a company filing an urbanisme application).
//!
//! ```
//! use aiguillage_connector::siret;
//!
//! assert!(siret::is_valid("21440043800005"));
//! assert!(!siret::is_valid("21440043800006")); // the key is wrong
//! assert!(!siret::is_valid("214 400 438 00005")); // spaces are the caller's to remove
//! ```

/// Whether `siret` is 14 digits with a valid key.
///
/// The key is Luhn's, except for the establishments of La Poste (SIREN `356000000`), whose
/// digits must add up to a multiple of 5.
pub fn is_valid(siret: &str) -> bool {
    if siret.len() != 14 || !siret.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let digits: Vec<u32> = siret.bytes().map(|b| u32::from(b - b'0')).collect();
    if siret.starts_with("356000000") && siret != "35600000000048" {
        return digits.iter().sum::<u32>() % 5 == 0;
    }
    luhn(&digits)
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, &digit)| {
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                digit
            }
        })
        .sum();
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sirets() {
        assert!(is_valid("73282932000074"));
        assert!(is_valid("44306184100047"));
        assert!(is_valid("21440043800005"));
        // La Poste: the digits add up to a multiple of 5.
        assert!(is_valid("35600000000048"));
        assert!(is_valid("35600000049837"));
        assert!(!is_valid("35600000049838"));
        // The key is wrong.
        assert!(!is_valid("73282932000075"));
        assert!(!is_valid("21490999900017"));
        assert!(!is_valid("7328293200007"));
        assert!(!is_valid("7328293200007a"));
        assert!(!is_valid(""));
    }
}
