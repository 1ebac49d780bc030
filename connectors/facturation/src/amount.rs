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
                "`{text}`: the Treasury takes no amount of zero or less (Base_Montant > 0)"
            ));
        }
        let cents = value.unsigned_abs();
        if cents > u128::from(MAX_CENTS) {
            return Err(format!(
                "`{text}`: more than the 14 digits a PES amount can have"
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
            "`{}` is not a decimal amount such as 41.60 (digits, a point, at most 2 decimals)",
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
            "`{text}` has more than 2 decimals: the PES counts in cents (round it in the mapping)"
        ));
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() > 20 {
        return Err(format!(
            "`{text}`: more than the 14 digits a PES amount can have"
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
            "`{text}`: a VAT rate is a percentage between 0 and 999.99"
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
            .contains("more than 2 decimals"));
        assert!(Cents::parse_positive("-3.00")
            .unwrap_err()
            .contains("zero or less"));
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
