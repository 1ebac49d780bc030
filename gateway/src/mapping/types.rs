//! Field types of a mapping and the conversions a commune's data needs: French and ISO
//! dates, amounts with a comma or a point, booleans in French.

use std::fmt;

use serde_json::Value;

/// The type of an output field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    /// Text, optionally bounded.
    String,
    /// A whole number.
    Integer,
    /// A decimal amount, written with a point and `places` decimals (`"12.50"`), as text
    /// so that no binary rounding ever touches it.
    Decimal {
        /// Decimals kept (2 unless given).
        places: u32,
    },
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A date that may be incomplete: `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (état civil often
    /// knows only the year of an old event).
    PartialDate,
    /// A date and time, RFC 3339.
    DateTime,
    /// `true` or `false`.
    Boolean,
    /// One of a fixed list of values.
    Enum(Vec<String>),
}

impl FieldType {
    /// The names a mapping file can use.
    pub const NAMES: [&'static str; 8] = [
        "string",
        "integer",
        "decimal",
        "date",
        "partial-date",
        "datetime",
        "boolean",
        "enum",
    ];
}

/// A value that does not fit its type; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError(pub String);

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Converts a rendered (non-empty, trimmed) text to the field's type.
///
/// # Errors
///
/// A [`TypeError`] naming the expected forms.
pub fn convert(
    text: &str,
    field_type: &FieldType,
    max_length: Option<usize>,
) -> Result<Value, TypeError> {
    let value = match field_type {
        FieldType::String => Value::String(text.to_owned()),
        FieldType::Integer => {
            let compact: String = text
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '\u{202f}')
                .collect();
            let number = compact.parse::<i64>().map_err(|_| {
                TypeError(format!("`{}` n'est pas un nombre entier", shorten(text)))
            })?;
            Value::from(number)
        }
        FieldType::Decimal { places } => Value::String(decimal(text, *places)?),
        FieldType::Date => Value::String(date(text)?),
        FieldType::PartialDate => Value::String(partial_date(text)?),
        FieldType::DateTime => Value::String(datetime(text)?),
        FieldType::Boolean => Value::Bool(boolean(text)?),
        FieldType::Enum(values) => {
            if values.iter().any(|v| v == text) {
                Value::String(text.to_owned())
            } else {
                return Err(TypeError(format!(
                    "`{}` n'est pas une des valeurs permises ({})",
                    shorten(text),
                    values.join(", ")
                )));
            }
        }
    };
    if let (Some(max), Value::String(text)) = (max_length, &value) {
        let length = text.chars().count();
        if length > max {
            return Err(TypeError(format!(
                "`{}` a {length} caractères, plus que les {max} permis (le raccourcir avec `|truncate_chars({max})` si couper est acceptable)",
                shorten(text)
            )));
        }
    }
    Ok(value)
}

/// An amount read exactly, as an integer of units of 10^-scale: `12,5` → (125, 1).
/// The same spellings as the `decimal` type; at most 18 significant digits.
pub fn exact_decimal(text: &str) -> Result<(i128, u32), TypeError> {
    let invalid = || {
        TypeError(format!(
            "`{}` n'est pas un montant (écrire 12,50 ou 12.50)",
            shorten(text)
        ))
    };
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '\u{202f}' | '\u{a0}'))
        .collect();
    let compact = compact.trim_end_matches('€');
    let (negative, digits) = match compact.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, compact.strip_prefix('+').unwrap_or(compact)),
    };
    let (whole, fraction) = digits.split_once([',', '.']).unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
        || whole.trim_start_matches('0').len() + fraction.len() > 18
    {
        return Err(invalid());
    }
    let units: i128 = format!("{whole}{fraction}").parse().unwrap_or(0);
    let scale = u32::try_from(fraction.len()).map_err(|_| invalid())?;
    Ok((if negative { -units } else { units }, scale))
}

/// `(125, 1)` → `12.5`: an exact amount written with a decimal point.
pub fn format_exact(units: i128, scale: u32) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let digits = units.unsigned_abs().to_string();
    let scale = scale as usize;
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{sign}{whole}.{fraction}")
}

/// `12,50`, `12.5`, `1 234,5`, `-3` → `12.50`, `12.50`, `1234.50`, `-3.00` (with 2 places).
fn decimal(text: &str, places: u32) -> Result<String, TypeError> {
    let invalid = || {
        TypeError(format!(
            "`{}` n'est pas un montant (écrire 12,50 ou 12.50)",
            shorten(text)
        ))
    };
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '\u{202f}' | '\u{a0}'))
        .collect();
    let compact = compact.trim_end_matches('€');
    let (negative, digits) = match compact.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, compact.strip_prefix('+').unwrap_or(compact)),
    };
    let (whole, fraction) = match digits.split_once([',', '.']) {
        Some((whole, fraction)) => (whole, fraction),
        None => (digits, ""),
    };
    if whole.is_empty() && fraction.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
    {
        return Err(invalid());
    }
    let places = places as usize;
    if fraction.len() > places && fraction[places..].chars().any(|c| c != '0') {
        return Err(TypeError(format!(
            "`{}` a plus de {places} décimales (`places = {places}` dans le mapping)",
            shorten(text)
        )));
    }
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let mut fraction: String = fraction.chars().take(places).collect();
    while fraction.len() < places {
        fraction.push('0');
    }
    let sign = if negative && (whole != "0" || fraction.chars().any(|c| c != '0')) {
        "-"
    } else {
        ""
    };
    Ok(if places == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    })
}

/// `2026-11-28`, `28/11/2026`, `28-11-2026`, `28.11.2026` → `2026-11-28`, checked.
fn date(text: &str) -> Result<String, TypeError> {
    let invalid = || {
        TypeError(format!(
            "`{}` n'est pas une date (écrire 28/11/2026 ou 2026-11-28)",
            shorten(text)
        ))
    };
    // A date-time (`envelope.submitted_at`) gives its date, at its own offset.
    if let Ok(at) =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Ok(format!(
            "{:04}-{:02}-{:02}",
            at.year(),
            u8::from(at.month()),
            at.day()
        ));
    }
    let (year, month, day) = split_date(text).ok_or_else(invalid)?;
    let (Some(month), Some(day)) = (month, day) else {
        return Err(invalid());
    };
    check_date(year, month, day).map_err(|_| invalid())?;
    Ok(format!("{year:04}-{month:02}-{day:02}"))
}

/// A complete date, or a year, or a month: `1990`, `04/1990`, `1990-04`, `12/04/1990`.
fn partial_date(text: &str) -> Result<String, TypeError> {
    let invalid = || {
        TypeError(format!(
            "`{}` n'est ni une date, ni un mois, ni une année (écrire 12/04/1990, 04/1990 ou 1990)",
            shorten(text)
        ))
    };
    let (year, month, day) = split_date(text).ok_or_else(invalid)?;
    match (month, day) {
        (None, _) => Ok(format!("{year:04}")),
        (Some(month), None) if (1..=12).contains(&month) => Ok(format!("{year:04}-{month:02}")),
        (Some(month), Some(day)) => {
            check_date(year, month, day).map_err(|_| invalid())?;
            Ok(format!("{year:04}-{month:02}-{day:02}"))
        }
        _ => Err(invalid()),
    }
}

/// Year, month and day of an ISO (`Y-M-D`, `Y-M`, `Y`) or French (`D/M/Y`, `M/Y`) date.
fn split_date(text: &str) -> Option<(i32, Option<u8>, Option<u8>)> {
    let text = text.trim();
    let parts: Vec<&str> = text.split(['-', '/', '.']).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let number = |p: &str| p.parse::<u32>().ok();
    match parts.as_slice() {
        [y] if y.len() == 4 => Some((number(y)? as i32, None, None)),
        [y, m] if y.len() == 4 && m.len() <= 2 => {
            Some((number(y)? as i32, Some(number(m)? as u8), None))
        }
        [m, y] if y.len() == 4 && m.len() <= 2 => {
            Some((number(y)? as i32, Some(number(m)? as u8), None))
        }
        [y, m, d] if y.len() == 4 && m.len() <= 2 && d.len() <= 2 => Some((
            number(y)? as i32,
            Some(number(m)? as u8),
            Some(number(d)? as u8),
        )),
        [d, m, y] if y.len() == 4 && m.len() <= 2 && d.len() <= 2 => Some((
            number(y)? as i32,
            Some(number(m)? as u8),
            Some(number(d)? as u8),
        )),
        _ => None,
    }
}

fn check_date(year: i32, month: u8, day: u8) -> Result<time::Date, ()> {
    let month = time::Month::try_from(month).map_err(|_| ())?;
    time::Date::from_calendar_date(year, month, day).map_err(|_| ())
}

/// RFC 3339, or a French `28/11/2026 10:12` (taken as Europe/Paris standard offset is not
/// guessed: a local time without offset is refused rather than silently shifted).
fn datetime(text: &str) -> Result<String, TypeError> {
    use time::format_description::well_known::Rfc3339;
    match time::OffsetDateTime::parse(text, &Rfc3339) {
        Ok(at) => Ok(at.format(&Rfc3339).unwrap_or_else(|_| text.to_owned())),
        Err(_) => Err(TypeError(format!(
            "`{}` n'est pas une date et heure avec son décalage (écrire 2026-11-28T10:12:00+01:00)",
            shorten(text)
        ))),
    }
}

/// `true/false`, `oui/non`, `yes/no`, `1/0`, `on/off` (any case).
fn boolean(text: &str) -> Result<bool, TypeError> {
    match text.to_lowercase().as_str() {
        "true" | "oui" | "yes" | "1" | "on" | "vrai" => Ok(true),
        "false" | "non" | "no" | "0" | "off" | "faux" => Ok(false),
        _ => Err(TypeError(format!(
            "`{}` n'est pas une valeur oui/non (écrire oui ou non, true ou false)",
            shorten(text)
        ))),
    }
}

/// Values from démarches are quoted in messages, but bounded.
pub fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str, t: FieldType) -> Value {
        convert(text, &t, None).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn amounts_with_comma_or_point() {
        let two = FieldType::Decimal { places: 2 };
        assert_eq!(ok("12,50", two.clone()), "12.50");
        assert_eq!(ok("12.5", two.clone()), "12.50");
        assert_eq!(ok("1 234,5 €", two.clone()), "1234.50");
        assert_eq!(ok("-3", two.clone()), "-3.00");
        assert_eq!(ok("0,10", two.clone()), "0.10");
        assert_eq!(ok("12.500", two.clone()), "12.50");
        assert!(convert("12.505", &two, None)
            .unwrap_err()
            .0
            .contains("plus de 2 décimales"));
        assert!(convert("douze", &two, None)
            .unwrap_err()
            .0
            .contains("n'est pas un montant"));
        assert!(convert("1,2,3", &two, None).is_err());
        assert!(convert("-", &two, None).is_err());
    }

    #[test]
    fn french_and_iso_dates() {
        assert_eq!(ok("28/11/2026", FieldType::Date), "2026-11-28");
        assert_eq!(ok("2026-11-28", FieldType::Date), "2026-11-28");
        assert_eq!(ok("1/2/2024", FieldType::Date), "2024-02-01");
        assert_eq!(ok("29/02/2024", FieldType::Date), "2024-02-29");
        assert_eq!(
            ok("2026-11-28T23:30:00+01:00", FieldType::Date),
            "2026-11-28"
        );
        assert!(convert("29/02/2026", &FieldType::Date, None).is_err());
        assert!(convert("2026-13-01", &FieldType::Date, None).is_err());
        assert!(convert("1990", &FieldType::Date, None).is_err());
    }

    #[test]
    fn incomplete_dates() {
        assert_eq!(ok("1990", FieldType::PartialDate), "1990");
        assert_eq!(ok("04/1990", FieldType::PartialDate), "1990-04");
        assert_eq!(ok("1990-04", FieldType::PartialDate), "1990-04");
        assert_eq!(ok("12/04/1990", FieldType::PartialDate), "1990-04-12");
        assert!(convert("13/1990", &FieldType::PartialDate, None).is_err());
        assert!(convert("vers 1990", &FieldType::PartialDate, None).is_err());
    }

    #[test]
    fn other_types() {
        assert_eq!(ok("42", FieldType::Integer), 42);
        assert_eq!(ok("1 000", FieldType::Integer), 1000);
        assert!(convert("4.2", &FieldType::Integer, None).is_err());
        assert_eq!(ok("Oui", FieldType::Boolean), true);
        assert_eq!(ok("non", FieldType::Boolean), false);
        assert_eq!(
            ok("2026-11-28T10:12:00+01:00", FieldType::DateTime),
            "2026-11-28T10:12:00+01:00"
        );
        assert!(convert("28/11/2026 10:12", &FieldType::DateTime, None).is_err());
        let choice = FieldType::Enum(vec!["NAI".into(), "MAR".into()]);
        assert_eq!(ok("MAR", choice.clone()), "MAR");
        assert!(convert("DEC", &choice, None)
            .unwrap_err()
            .0
            .contains("NAI, MAR"));
    }

    #[test]
    fn max_length_counts_characters() {
        assert!(convert("Éléonore", &FieldType::String, Some(8)).is_ok());
        let error = convert("Éléonore", &FieldType::String, Some(7)).unwrap_err();
        assert!(error.0.contains("truncate_chars(7)"), "{error}");
    }
}
