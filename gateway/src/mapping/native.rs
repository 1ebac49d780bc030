//! Native evaluation of the simple templates most mappings are made of:
//! `{{ fields.nom|upper }}`, `{{ fields.a or fields.b }}`, `{{ (fields.x or '')|code('t') }}`.
//! They give exactly what the template engine gives, without its per-render cost (a
//! mapping has dozens of fields, and the engine costs microseconds each). Anything
//! outside this subset, or a value that is not text, goes to the engine.

use std::borrow::Cow;

use minijinja::Error;
use serde_json::Value;

use super::filters::{self, Tables};

/// A parsed `{{ operand or operand … | filter | filter … }}`.
#[derive(Debug, Clone)]
pub(super) struct Pipeline {
    operands: Vec<Operand>,
    filters: Vec<Filter>,
}

#[derive(Debug, Clone)]
enum Operand {
    Path(Vec<String>),
    Literal(String),
}

#[derive(Debug, Clone)]
enum Filter {
    Upper,
    Lower,
    Trim,
    StripAccents,
    Digits,
    TruncateChars(usize),
    Code(String),
    Insee,
    PostalCode,
    DateFormat(String),
    Default(String),
}

/// A value while it goes through the pipeline.
enum Current<'v> {
    Nothing,
    Text(Cow<'v, str>),
    Other(&'v Value),
}

impl Current<'_> {
    fn is_true(&self) -> bool {
        match self {
            Self::Nothing => false,
            Self::Text(text) => !text.is_empty(),
            Self::Other(Value::Bool(b)) => *b,
            Self::Other(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Self::Other(Value::Array(items)) => !items.is_empty(),
            Self::Other(Value::Object(map)) => !map.is_empty(),
            Self::Other(_) => false,
        }
    }
}

impl Pipeline {
    /// Parses a template if it is one expression of the native subset.
    pub(super) fn parse(source: &str) -> Option<Self> {
        let inner = source.trim().strip_prefix("{{")?.strip_suffix("}}")?;
        if inner.contains("{{")
            || inner.contains("}}")
            || inner.contains("{%")
            || inner.starts_with('-')
            || inner.ends_with('-')
        {
            return None;
        }
        let mut parser = Cursor { text: inner, at: 0 };
        let operands = parser.or_expression()?;
        let mut filters = Vec::new();
        while parser.eat('|') {
            filters.push(parser.filter()?);
        }
        parser.skip_spaces();
        (parser.at == inner.len()).then_some(Self { operands, filters })
    }

    /// Evaluates; `Ok(None)` when the value is not text and the engine must decide.
    ///
    /// # Errors
    ///
    /// A filter's error (a value not in a code table…), worded as the engine words it.
    pub(super) fn eval<'v>(
        &self,
        resolve: impl Fn(&[String]) -> Option<&'v Value>,
        tables: &Tables,
    ) -> Result<Option<String>, Error> {
        let mut current = Current::Nothing;
        for operand in &self.operands {
            current = match operand {
                Operand::Literal(text) => Current::Text(Cow::Owned(text.clone())),
                Operand::Path(path) => match resolve(path) {
                    None | Some(Value::Null) => Current::Nothing,
                    Some(Value::String(text)) => Current::Text(Cow::Borrowed(text.as_str())),
                    Some(other) => Current::Other(other),
                },
            };
            if current.is_true() {
                break;
            }
        }
        let mut text: String = match current {
            Current::Nothing => {
                if let Some(Filter::Default(default)) = self.filters.first() {
                    default.clone()
                } else {
                    String::new()
                }
            }
            Current::Text(text) => text.into_owned(),
            Current::Other(Value::Number(n)) if self.filters.is_empty() => n.to_string(),
            Current::Other(_) => return Ok(None),
        };
        for filter in &self.filters {
            text = match filter {
                Filter::Upper => text.to_uppercase(),
                Filter::Lower => text.to_lowercase(),
                Filter::Trim => text.trim().to_owned(),
                Filter::StripAccents => filters::strip_accents(text),
                Filter::Digits => filters::digits(text),
                Filter::TruncateChars(n) => filters::truncate_chars(text, *n),
                Filter::Code(table) => filters::code(tables, &text, table)?,
                Filter::Insee => filters::insee(text)?,
                Filter::PostalCode => filters::postal_code(text)?,
                Filter::DateFormat(format) => filters::date_format(text, format.clone())?,
                // Applied above, to nothing only, as the engine does.
                Filter::Default(_) => text,
            };
        }
        Ok(Some(text))
    }
}

struct Cursor<'t> {
    text: &'t str,
    at: usize,
}

impl Cursor<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn skip_spaces(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_spaces();
        if self.rest().starts_with(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> Option<&str> {
        self.skip_spaces();
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|(i, c)| {
                !(c.is_ascii_alphanumeric() || *c == '_') || (*i == 0 && c.is_ascii_digit())
            })
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        if len == 0 {
            return None;
        }
        let word = &self.text[self.at..self.at + len];
        self.at += len;
        Some(word)
    }

    fn string(&mut self) -> Option<String> {
        self.skip_spaces();
        let quote = self
            .rest()
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')?;
        let body = &self.rest()[1..];
        let end = body.find(quote)?;
        let value = body[..end].to_owned();
        if value.contains('\\') {
            return None;
        }
        self.at += end + 2;
        Some(value)
    }

    fn or_expression(&mut self) -> Option<Vec<Operand>> {
        let mut operands = self.operand()?;
        loop {
            let save = self.at;
            match self.word() {
                Some("or") => operands.extend(self.operand()?),
                _ => {
                    self.at = save;
                    return Some(operands);
                }
            }
        }
    }

    fn operand(&mut self) -> Option<Vec<Operand>> {
        if self.eat('(') {
            let inner = self.or_expression()?;
            return self.eat(')').then_some(inner);
        }
        if let Some(text) = self.string() {
            return Some(vec![Operand::Literal(text)]);
        }
        let first = self.word()?;
        if matches!(
            first,
            "or" | "and" | "not" | "is" | "in" | "if" | "else" | "true" | "false" | "none"
        ) {
            return None;
        }
        let mut path = vec![first.to_owned()];
        while self.rest().starts_with('.') {
            self.at += 1;
            let rest = self.rest();
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if len == 0 {
                return None;
            }
            path.push(rest[..len].to_owned());
            self.at += len;
        }
        Some(vec![Operand::Path(path)])
    }

    fn filter(&mut self) -> Option<Filter> {
        let name = self.word()?.to_owned();
        let argument = if self.eat('(') {
            self.skip_spaces();
            let value = match self.string() {
                Some(text) => Argument::Text(text),
                None => {
                    let rest = self.rest();
                    let len = rest
                        .find(|c: char| !c.is_ascii_digit())
                        .unwrap_or(rest.len());
                    let number = rest[..len].parse().ok()?;
                    self.at += len;
                    Argument::Number(number)
                }
            };
            if !self.eat(')') {
                return None;
            }
            Some(value)
        } else {
            None
        };
        Some(match (name.as_str(), argument) {
            ("upper", None) => Filter::Upper,
            ("lower", None) => Filter::Lower,
            ("trim", None) => Filter::Trim,
            ("strip_accents", None) => Filter::StripAccents,
            ("digits", None) => Filter::Digits,
            ("insee", None) => Filter::Insee,
            ("postal_code", None) => Filter::PostalCode,
            ("truncate_chars", Some(Argument::Number(n))) => Filter::TruncateChars(n),
            ("code", Some(Argument::Text(table))) => Filter::Code(table),
            ("date_format", Some(Argument::Text(format))) => Filter::DateFormat(format),
            ("default", Some(Argument::Text(text))) if self.is_first_filter() => {
                Filter::Default(text)
            }
            _ => return None,
        })
    }

    /// `default` is native only right after the value (later, the engine's rules differ).
    fn is_first_filter(&self) -> bool {
        self.text[..self.at].matches('|').count() == 1
    }
}

enum Argument {
    Text(String),
    Number(usize),
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    /// The native result must be exactly the engine's.
    #[test]
    fn native_and_engine_agree() {
        let fields = serde_json::json!({
            "nom": "Lefèvre", "vide": "", "nul": null, "n": 3, "b": true, "liste": ["a"],
            "date": "28/11/2026", "nature": "Copie intégrale", "cp": "44 190", "espaces": "  x  "
        });
        let mut tables = BTreeMap::new();
        tables.insert(
            "nature".to_owned(),
            BTreeMap::from([("Copie intégrale".to_owned(), "CPI".to_owned())]),
        );
        let tables: Tables = Arc::new(tables);
        let env = filters::environment(tables.clone());
        let root = Arc::new(serde_json::Map::from_iter([(
            "fields".to_owned(),
            fields.clone(),
        )]));
        let ctx = minijinja::Value::from(BTreeMap::from([(
            "fields".to_owned(),
            super::super::json::JsonNode::member(&root, "fields"),
        )]));
        let cases = [
            "{{ fields.nom }}",
            "{{ fields.nom|upper }}",
            "{{ fields.nom|lower|strip_accents }}",
            "{{ fields.absent|upper }}",
            "{{ fields.nul|upper }}",
            "{{ fields.vide or fields.nom }}",
            "{{ fields.absent or fields.nul or 'défaut' }}",
            "{{ (fields.absent or '')|upper }}",
            "{{ fields.n }}",
            "{{ fields.b }}",
            "{{ fields.date|date_format('%Y%m%d') }}",
            "{{ fields.nature|code('nature') }}",
            "{{ fields.cp|postal_code }}",
            "{{ fields.nom|truncate_chars(3) }}",
            "{{ fields.absent|default('x') }}",
            "{{ fields.vide|default('x') }}",
            "{{ fields.espaces|trim }}",
            "{{fields.nom|upper}}",
            "{{ fields.n or 'x' }}",
        ];
        for case in cases {
            let pipeline = Pipeline::parse(case).unwrap_or_else(|| panic!("{case} is native"));
            let resolve = |path: &[String]| {
                let mut value = fields.get(&path[1])?;
                for key in &path[2..] {
                    value = value.get(key)?;
                }
                Some(value)
            };
            let engine = env.render_str(case, ctx.clone()).unwrap();
            match pipeline.eval(resolve, &tables).unwrap() {
                Some(native) => assert_eq!(native, engine, "{case}"),
                // The engine writes booleans its own way (`True`): it keeps them.
                None => assert_eq!(case, "{{ fields.b }}", "only booleans fall back"),
            }
        }
    }

    #[test]
    fn the_rest_goes_to_the_engine() {
        for case in [
            "{% if fields.a %}x{% endif %}",
            "{{ fields.a }} {{ fields.b }}",
            "{{ fields.a == 'x' }}",
            "{{ fields.a|join(', ') }}",
            "{{ fields.a and fields.b }}",
            "{{- fields.a }}",
            "{{ fields.a|default('x')|upper|default('y') }}",
            "{{ 'a' ~ fields.b }}",
            "{{ fields['a'] }}",
            "{{ not fields.a }}",
        ] {
            assert!(
                Pipeline::parse(case).is_none(),
                "{case} must go to the engine"
            );
        }
    }
}
