//! Amounts as the PES writes them, computed exactly: whole cents in integers, read from and
//! written to decimal strings with a point. No binary floating point touches an amount.

use std::fmt;

/// The largest amount the PES takes (`Base_Montant`: 14 digits, 2 of them decimals).
pub const MAX_CENTS: u64 = 99_999_999_999_999;

/// A positive amount in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cents(pub u64);

impl Cents {
    /// Reads a decimal string (`"41.60"`, `"8"`, `"3.5"`) of at most 2 significant
    /// decimals, strictly positive, within the PES's 14 digits.
    ///
    /// # Errors
    ///
    /// A message saying what is wrong: not a decimal, zero or negative, more than 2
    /// decimals, too large.
    pub fn parse_positive(text: &str) -> Result<Self, String> {
        let value = parse_signed(text)?;
        if value <= 0 {
            return Err(format!(
                "`{text}` : le Trésor public ne prend aucun montant nul ou négatif (Base_Montant > 0)"
            ));
        }
        let cents = value.unsigned_abs();
        if cents > u128::from(MAX_CENTS) {
            return Err(format!(
                "`{text}` : plus que les 14 chiffres d'un montant PES"
            ));
        }
        Ok(Self(cents as u64))
    }

    /// The sum, or `None` past [`MAX_CENTS`].
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0
            .checked_add(other.0)
            .filter(|&sum| sum <= MAX_CENTS)
            .map(Self)
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// A decimal string as hundredths, sign kept: `"-3.5"` → -350.
///
/// Digits beyond the second decimal must be zeros (`"1.500"` is 150; `"1.505"` is
/// refused: rounding is the mapping's business, not the connector's).
fn parse_signed(text: &str) -> Result<i128, String> {
    let not_decimal = || {
        format!(
            "`{}` n'est pas un montant décimal comme 41.60 (des chiffres, un point, 2 décimales au plus)",
            text.escape_debug()
        )
    };
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (unsigned, ""),
    };
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || (unsigned.ends_with('.')) {
        return Err(not_decimal());
    }
    if fraction.len() > 2 && fraction[2..].bytes().any(|b| b != b'0') {
        return Err(format!(
            "`{text}` a plus de 2 décimales : le PES compte en centimes (arrondir dans le mapping, `|round_decimal(2)`)"
        ));
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() > 20 {
        return Err(format!(
            "`{text}` : plus que les 14 chiffres d'un montant PES"
        ));
    }
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| not_decimal())?
    };
    let mut cents = whole * 100;
    let mut fraction_digits = fraction.bytes();
    if let Some(d) = fraction_digits.next() {
        cents += i128::from(d - b'0') * 10;
    }
    if let Some(d) = fraction_digits.next() {
        cents += i128::from(d - b'0');
    }
    Ok(if negative { -cents } else { cents })
}

/// Ten-thousandths in one unit: quantities and unit prices take up to 4 decimals (water by
/// the m³ at 0.0125, a quarter-hour of garderie at 0.333).
pub const QUANTUM: u64 = 10_000;

/// Reads a quantity or a unit price (`"7"`, `"0.333"`, `"12.5000"`): strictly positive, at
/// most 4 significant decimals, in ten-thousandths. Neither is written to the PES (only the
/// line amount is), so no other bound applies than what the product can hold.
///
/// # Errors
///
/// A message in French saying what is wrong.
pub fn parse_quantum(text: &str) -> Result<u64, String> {
    let not_decimal = || {
        format!(
            "`{}` n'est pas un nombre décimal comme 12.5 ou 0.333 (des chiffres, un point, 4 décimales au plus)",
            text.escape_debug()
        )
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || text.ends_with('.') {
        return Err(not_decimal());
    }
    if fraction.len() > 4 && fraction[4..].bytes().any(|b| b != b'0') {
        return Err(format!(
            "`{text}` a plus de 4 décimales : le tarif et la quantité en ont 4 au plus"
        ));
    }
    let whole = whole.trim_start_matches('0');
    // 12 whole digits: the product of two such values still fits a u128 many times over.
    if whole.len() > 12 {
        return Err(format!("`{text}` : plus de 12 chiffres avant la virgule"));
    }
    let mut units: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse::<u64>().map_err(|_| not_decimal())? * QUANTUM
    };
    let mut scale = QUANTUM / 10;
    for d in fraction.bytes().take(4) {
        units += u64::from(d - b'0') * scale;
        scale /= 10;
    }
    if units == 0 {
        return Err(format!(
            "`{text}` : une quantité ou un tarif nul ne se facture pas"
        ));
    }
    Ok(units)
}

/// The amount of a line, `quantite × prix_unitaire` (both in ten-thousandths), rounded once
/// to the cent, half away from zero as in accounting (`0.005` → `0.01`), exactly: the
/// product is an integer of 10^-8 units, never a float. `None` past [`MAX_CENTS`].
pub fn line_amount(quantite: u64, prix_unitaire: u64) -> Option<Cents> {
    let product = u128::from(quantite) * u128::from(prix_unitaire);
    // 10^-8 → 10^-2: the divisor is 10^6; both factors are positive, so half away from
    // zero is half up.
    let divisor = u128::from(QUANTUM * QUANTUM / 100);
    let cents = (product + divisor / 2) / divisor;
    u64::try_from(cents)
        .ok()
        .filter(|&c| c <= MAX_CENTS)
        .map(Cents)
}

/// A rate (`taux_tva`, `"20.00"`) in hundredths of a percent, strictly positive, within
/// the PES's 5 digits (`Base_Taux`).
///
/// # Errors
///
/// A message saying what is wrong.
pub fn parse_rate(text: &str) -> Result<u32, String> {
    let value = parse_signed(text)?;
    if !(0..=99_999).contains(&value) {
        return Err(format!(
            "`{text}` : un taux de TVA est un pourcentage entre 0 et 999.99"
        ));
    }
    Ok(value as u32)
}

/// The VAT of `ht` at `rate` (hundredths of a percent), rounded half up to the cent.
pub fn vat(ht: Cents, rate: u32) -> u64 {
    let product = u128::from(ht.0) * u128::from(rate);
    ((product + 5_000) / 10_000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_exactly() {
        for (text, cents) in [
            ("41.60", 4160),
            ("8", 800),
            ("3.5", 350),
            ("0.01", 1),
            ("1.500", 150),
            ("007.10", 710),
            ("999999999999.99", MAX_CENTS),
        ] {
            assert_eq!(Cents::parse_positive(text), Ok(Cents(cents)), "{text}");
        }
        assert_eq!(Cents(4160).to_string(), "41.60");
        assert_eq!(Cents(5).to_string(), "0.05");
    }

    #[test]
    fn amounts_the_treasury_refuses() {
        for text in [
            "0",
            "0.00",
            "-1.00",
            "1.005",
            "1,50",
            "",
            ".5",
            "5.",
            "1e3",
            "abc",
            "1000000000000.00",
            " 1.00",
        ] {
            assert!(Cents::parse_positive(text).is_err(), "{text:?} accepted");
        }
        assert!(Cents::parse_positive("1.005")
            .unwrap_err()
            .contains("plus de 2 décimales"));
        assert!(Cents::parse_positive("-3.00")
            .unwrap_err()
            .contains("nul ou négatif"));
    }

    #[test]
    fn quantities_and_unit_prices_take_four_decimals() {
        for (text, units) in [
            ("7", 70_000),
            ("0.333", 3_330),
            ("0.0125", 125),
            ("12.50000", 125_000),
            ("3.2", 32_000),
        ] {
            assert_eq!(parse_quantum(text), Ok(units), "{text}");
        }
        for text in ["0", "0.0000", "-1", "0.00005", "1,5", "", ".5", "5.", "1e3"] {
            assert!(parse_quantum(text).is_err(), "{text:?} accepted");
        }
        assert!(parse_quantum("0.00001")
            .unwrap_err()
            .contains("plus de 4 décimales"));
    }

    #[test]
    fn a_line_is_rounded_once_to_the_cent_half_away_from_zero() {
        let q = |t| parse_quantum(t).unwrap();
        // Garderie: 7 quarter-hours at 0.333 = 2.331 → 2.33.
        assert_eq!(line_amount(q("7"), q("0.333")), Some(Cents(233)));
        // Exactly half a cent goes up (1 × 0.005, 5 × 0.001); just under goes down
        // (3 × 0.0015 = 0.0045).
        assert_eq!(line_amount(q("1"), q("0.005")), Some(Cents(1)));
        assert_eq!(line_amount(q("5"), q("0.001")), Some(Cents(1)));
        assert_eq!(line_amount(q("3"), q("0.0015")), Some(Cents(0)));
        // Rounded once: rounding the unit price first would give 3 × 0.00 = 0 here.
        assert_eq!(line_amount(q("3"), q("0.0049")), Some(Cents(1)));
        assert_eq!(line_amount(q("13"), q("3.20")), Some(Cents(4160)));
        assert_eq!(line_amount(q("999999999999"), q("999999999999")), None);
    }

    proptest::proptest! {
        /// The rounded amount is the exact product's nearest cent, and a product exactly
        /// halfway between two cents goes to the larger one (away from zero).
        #[test]
        fn line_amount_is_the_nearest_cent_halves_up(
            quantite in 1u64..100_000_000,
            prix in 1u64..100_000_000,
        ) {
            let exact = u128::from(quantite) * u128::from(prix); // 10^-8 units
            let cents = u128::from(line_amount(quantite, prix).unwrap().0);
            let back = cents * 1_000_000;
            let distance = back.abs_diff(exact);
            proptest::prop_assert!(distance <= 500_000, "{exact} → {cents}");
            if distance == 500_000 {
                proptest::prop_assert!(back > exact, "half not away from zero: {exact} → {cents}");
            }
        }

        /// A product built to end in exactly half a cent always rounds up.
        #[test]
        fn exactly_half_a_cent_rounds_up(cents in 0u64..1_000_000_000) {
            // quantite 1, prix = cents + 0.005 (in ten-thousandths: cents × 100 + 50).
            let prix = cents * 100 + 50;
            proptest::prop_assert_eq!(line_amount(QUANTUM, prix), Some(Cents(cents + 1)));
        }
    }

    #[test]
    fn vat_rounds_half_up() {
        assert_eq!(parse_rate("20.00"), Ok(2000));
        assert_eq!(parse_rate("5.5"), Ok(550));
        assert_eq!(vat(Cents(4160), 2000), 832);
        // 0.25 × 5.5 % = 0.01375 → 0.01
        assert_eq!(vat(Cents(25), 550), 1);
        // 0.10 × 5 % = 0.005 → 0.01
        assert_eq!(vat(Cents(10), 500), 1);
    }
}
