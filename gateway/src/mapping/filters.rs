//! The template environment of mappings: Django/Jinja syntax (minijinja), sandboxed (no
//! loader, so no file access; no environment access; a fuel limit so that no template can
//! loop for long), with the filters the domain needs.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};

use aiguillage_bus::is_insee_code;

/// Code tables of a mapping: table name → portal value → the software's code.
pub type Tables = Arc<BTreeMap<String, BTreeMap<String, String>>>;

/// Instructions one render may execute: generous for any real mapping, small enough that
/// a runaway loop ends at once.
const FUEL: u64 = 100_000;

/// An environment with the mapping filters and the sandbox settings.
pub fn environment(tables: Tables) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_fuel(Some(FUEL));
    // `none` renders as nothing, like a missing field, not as the word "none".
    env.set_formatter(|out, state, value| {
        let value = if value.is_none() {
            &Value::UNDEFINED
        } else {
            value
        };
        minijinja::escape_formatter(out, state, value)
    });
    env.add_filter("strip_accents", strip_accents);
    env.add_filter("truncate_chars", truncate_chars);
    env.add_filter("digits", digits);
    env.add_filter("insee", insee);
    env.add_filter("postal_code", postal_code);
    env.add_filter("date_format", date_format);
    env.add_filter("multiply", multiply);
    env.add_filter("round_decimal", round_decimal);
    env.add_filter("code", move |value: String, table: String| {
        code(&tables, &value, &table)
    });
    env
}

/// The code of `value` in code table `table`.
pub(super) fn code(tables: &Tables, value: &str, table: &str) -> Result<String, Error> {
    let Some(codes) = tables.get(table) else {
        return Err(invalid(format!(
            "pas de table de codes `{table}` dans ce mapping"
        )));
    };
    codes.get(value.trim()).cloned().ok_or_else(|| {
        invalid(format!(
            "`{}` n'est pas dans la table de codes `{table}` (connus : {})",
            super::types::shorten(value),
            known(codes)
        ))
    })
}

/// The keys of a code table, for messages.
pub fn known(codes: &BTreeMap<String, String>) -> String {
    let mut keys: Vec<&str> = codes.keys().map(String::as_str).collect();
    if keys.len() > 12 {
        keys.truncate(12);
        keys.push("…");
    }
    keys.join(", ")
}

/// Marks an error as a filter's own refusal, worded in French for the agent; the engine's
/// errors, in English, are quoted instead (`refusal_message`).
#[derive(Debug, thiserror::Error)]
#[error("refus d'un filtre du mapping")]
pub(super) struct Refusal;

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message).with_source(Refusal)
}

/// The text of an amount given to a filter: a number or a text (`12,50`).
fn amount(value: &minijinja::Value) -> Result<(i128, u32), Error> {
    let text = match value.as_str() {
        Some(text) => text.to_owned(),
        None => value.to_string(),
    };
    super::types::exact_decimal(&text).map_err(|super::types::TypeError(message)| invalid(message))
}

/// `{{ quantite|multiply(tarif) }}`: the exact product of two amounts (`3 × 12,50` →
/// `37.50`), with every decimal kept: no binary rounding ever touches money. Round it with
/// `round_decimal`.
pub(super) fn multiply(value: minijinja::Value, other: minijinja::Value) -> Result<String, Error> {
    let (a, scale_a) = amount(&value)?;
    let (b, scale_b) = amount(&other)?;
    let product = a
        .checked_mul(b)
        .ok_or_else(|| invalid("le produit est trop grand".into()))?;
    Ok(super::types::format_exact(product, scale_a + scale_b))
}

/// `{{ montant|round_decimal(2) }}`: an amount rounded to `places` decimals, half away from
/// zero as in accounting (`18.495` → `18.50`), exactly.
pub(super) fn round_decimal(value: minijinja::Value, places: u32) -> Result<String, Error> {
    if places > 18 {
        return Err(invalid(format!(
            "round_decimal({places}) : 18 décimales au plus"
        )));
    }
    let (units, scale) = amount(&value)?;
    if scale <= places {
        let factor = 10i128.pow(places - scale);
        return Ok(super::types::format_exact(units * factor, places));
    }
    let divisor = 10i128.pow(scale - places);
    let (quotient, remainder) = (units / divisor, units % divisor);
    let rounded = if remainder.abs() * 2 >= divisor {
        quotient + units.signum()
    } else {
        quotient
    };
    Ok(super::types::format_exact(rounded, places))
}

/// `Élodie Lefèvre-Œuf` → `Elodie Lefevre-OEuf`: ASCII for software that takes nothing else.
pub(super) fn strip_accents(value: String) -> String {
    deunicode::deunicode(&value)
}

/// The first `n` characters (not bytes), for fixed-width targets.
pub(super) fn truncate_chars(value: String, n: usize) -> String {
    value.chars().take(n).collect()
}

/// Only the digits: `06 12-34.56.78` → `0612345678`.
pub(super) fn digits(value: String) -> String {
    value.chars().filter(char::is_ascii_digit).collect()
}

/// The value, checked to be an INSEE commune code.
pub(super) fn insee(value: String) -> Result<String, Error> {
    let code = value.trim().to_owned();
    if code.is_empty() || is_insee_code(&code) {
        Ok(code)
    } else {
        Err(invalid(format!(
            "`{code}` n'est pas un code commune INSEE (5 caractères, par exemple 44043)"
        )))
    }
}

/// The value, checked to be a French postal code.
pub(super) fn postal_code(value: String) -> Result<String, Error> {
    let code: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    if code.is_empty() || (code.len() == 5 && code.chars().all(|c| c.is_ascii_digit())) {
        Ok(code)
    } else {
        Err(invalid(format!(
            "`{}` n'est pas un code postal (5 chiffres, par exemple 44190)",
            value.trim()
        )))
    }
}

/// A date (`28/11/2026` or `2026-11-28`) written with `%d`, `%m`, `%Y`, `%y`:
/// `{{ fields.date|date_format("%d%m%Y") }}`.
pub(super) fn date_format(value: String, format: String) -> Result<String, Error> {
    if value.trim().is_empty() {
        return Ok(String::new());
    }
    let iso = super::types::convert(value.trim(), &super::types::FieldType::Date, None)
        .map_err(|error| invalid(error.to_string()))?;
    let iso = iso.as_str().unwrap_or_default().to_owned();
    let (year, rest) = iso.split_at(4);
    let (month, day) = (&rest[1..3], &rest[4..6]);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(day),
            Some('m') => out.push_str(month),
            Some('Y') => out.push_str(year),
            Some('y') => out.push_str(&year[2..]),
            Some('%') => out.push('%'),
            other => {
                return Err(invalid(format!(
                    "directive de format de date inconnue `%{}` (employer %d, %m, %Y, %y)",
                    other.map(String::from).unwrap_or_default()
                )))
            }
        }
    }
    Ok(out)
}

/// Filters and tests that mapping authors use, for "did you mean" hints: the mapping
/// filters and the engine's common built-ins.
const KNOWN_FILTERS: &[&str] = &[
    "strip_accents",
    "truncate_chars",
    "digits",
    "insee",
    "postal_code",
    "date_format",
    "code",
    "upper",
    "lower",
    "trim",
    "title",
    "capitalize",
    "default",
    "replace",
    "join",
    "length",
    "first",
    "last",
    "select",
    "reject",
    "map",
    "int",
    "float",
    "round",
    "abs",
    "list",
    "string",
    "sort",
    "unique",
    "min",
    "max",
    "sum",
    "bool",
    "tojson",
    "indent",
    "reverse",
    "items",
    "dictsort",
    "attr",
    "batch",
    "slice",
    "format",
    "urlencode",
    "split",
    "lines",
];
const KNOWN_TESTS: &[&str] = &[
    "defined",
    "undefined",
    "none",
    "true",
    "false",
    "number",
    "integer",
    "float",
    "string",
    "sequence",
    "mapping",
    "iterable",
    "odd",
    "even",
    "divisibleby",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "in",
    "startingwith",
    "endingwith",
    "containing",
    "boolean",
    "filter",
    "test",
];

/// The known filter or test name closest to a misspelt one (at most two edits away).
pub(super) fn closest(kind: super::NameKind, word: &str) -> Option<&'static str> {
    let known = match kind {
        super::NameKind::Filter => KNOWN_FILTERS,
        super::NameKind::Test => KNOWN_TESTS,
    };
    known
        .iter()
        .map(|k| (edit_distance(k, word), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, ctx: Value) -> Result<String, Error> {
        let mut tables = BTreeMap::new();
        tables.insert(
            "nature".to_owned(),
            BTreeMap::from([("Copie intégrale".to_owned(), "CPI".to_owned())]),
        );
        environment(Arc::new(tables)).render_str(template, ctx)
    }

    #[test]
    fn domain_filters() {
        let ctx = Value::from(minijinja::value::Serde(serde_json::json!({
            "nom": "Lefèvre-Œuf d'Aubigné", "tel": "06 12-34.56.78", "date": "28/11/2026",
            "nature": "Copie intégrale", "cp": "44 190", "insee": "44043"
        })));
        assert_eq!(
            render("{{ nom|strip_accents|upper }}", ctx.clone()).unwrap(),
            "LEFEVRE-OEUF D'AUBIGNE"
        );
        assert_eq!(
            render("{{ nom|truncate_chars(7) }}", ctx.clone()).unwrap(),
            "Lefèvre"
        );
        assert_eq!(
            render("{{ tel|digits }}", ctx.clone()).unwrap(),
            "0612345678"
        );
        assert_eq!(
            render("{{ date|date_format('%Y%m%d') }}", ctx.clone()).unwrap(),
            "20261128"
        );
        assert_eq!(
            render("{{ nature|code('nature') }}", ctx.clone()).unwrap(),
            "CPI"
        );
        assert_eq!(
            render("{{ cp|postal_code }}", ctx.clone()).unwrap(),
            "44190"
        );
        assert_eq!(render("{{ insee|insee }}", ctx.clone()).unwrap(), "44043");
    }

    #[test]
    fn filter_errors_say_why() {
        let ctx = Value::from(minijinja::value::Serde(
            serde_json::json!({"x": "Copie", "cp": "4419", "c": "Clisson"}),
        ));
        let error = render("{{ x|code('nature') }}", ctx.clone()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("n'est pas dans la table de codes `nature` (connus : Copie intégrale)"),
            "{error}"
        );
        assert!(render("{{ cp|postal_code }}", ctx.clone())
            .unwrap_err()
            .to_string()
            .contains("n'est pas un code postal"));
        assert!(render("{{ c|insee }}", ctx)
            .unwrap_err()
            .to_string()
            .contains("n'est pas un code commune INSEE"));
    }

    #[test]
    fn missing_values_render_as_nothing() {
        let ctx = Value::from(minijinja::value::Serde(serde_json::json!({"a": null})));
        assert_eq!(
            render("[{{ a }}][{{ b }}][{{ b.c.d }}]", ctx).unwrap(),
            "[][][]"
        );
    }

    #[test]
    fn the_sandbox_holds() {
        let ctx = Value::from(minijinja::value::Serde(serde_json::json!({})));
        // No loader: a template cannot read files.
        assert!(render("{% include '/etc/passwd' %}", ctx.clone()).is_err());
        assert!(render("{% import '/etc/hostname' as h %}", ctx.clone()).is_err());
        // No function reaches the environment or the process.
        assert!(render("{{ env('HOME') }}", ctx.clone()).is_err());
        // A runaway loop runs out of fuel.
        let error = render(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            ctx,
        )
        .unwrap_err();
        assert!(error.to_string().to_lowercase().contains("fuel"), "{error}");
    }
}
