//! Native evaluation of the simple templates most mappings are made of:
//! `{{ fields.nom|upper }}`, `{{ fields.a or fields.b }}`, `{{ (fields.x or '')|code('t') }}`,
//! `{{ a and b|code('t') != 'x' }}`, and `{% if … %}{{ … }}{% elif … %}…{% else %}…{% endif %}`
//! whose branches hold one expression. They give what the template engine gives (the
//! tests compare both), without its per-render cost: a mapping has dozens of fields, and
//! the engine costs microseconds each. Anything else, or a value that is not text (a
//! list, a number under a filter), goes to the engine.

use std::borrow::Cow;

use minijinja::Error;
use serde_json::Value;

use super::filters::{self, Tables};
use super::scope::VarPath;

/// A template of the native subset: text, `{{ expression }}`s and `{% if %}` blocks.
/// Its result is compared trimmed, as fields are.
#[derive(Debug, Clone)]
pub(super) struct Native(Vec<Part>);

#[derive(Debug, Clone)]
enum Part {
    /// Text outside tags, written as it is.
    Text(String),
    /// `{{ expression }}`.
    Expr(Expr),
    /// `{% if c %}…{% elif c %}…{% else %}…{% endif %}`: each branch's condition (none for
    /// `else`) and body.
    If(Vec<(Option<Expr>, Vec<Part>)>),
}

#[derive(Debug, Clone)]
pub(super) enum Expr {
    Path(VarPath),
    Literal(String),
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Equal(Box<Expr>, Box<Expr>, bool),
    Filtered(Box<Expr>, Vec<Filter>),
    /// `[a, b, …]|select|join(', ')`: the items that are not empty, joined.
    Joined(Vec<Expr>, String),
}

#[derive(Debug, Clone)]
pub(super) enum Filter {
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

/// A value while an expression is evaluated.
#[derive(Debug)]
enum V<'v> {
    Nothing,
    Text(Cow<'v, str>),
    Bool(bool),
    Other(&'v Value),
}

/// The engine must decide (a value outside what the native subset handles).
struct Fallback;

type Eval<T> = Result<Result<T, Fallback>, Error>;

impl V<'_> {
    fn is_true(&self) -> bool {
        match self {
            Self::Nothing => false,
            Self::Text(text) => !text.is_empty(),
            Self::Bool(b) => *b,
            Self::Other(Value::Bool(b)) => *b,
            Self::Other(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Self::Other(Value::Array(items)) => !items.is_empty(),
            Self::Other(Value::Object(map)) => !map.is_empty(),
            Self::Other(_) => false,
        }
    }
}

impl Native {
    /// Parses a template if it is in the native subset.
    ///
    /// `bind` resolves each variable path when the mapping is loaded (`None` for an
    /// unknown root: the engine decides).
    pub(super) fn parse(source: &str, bind: &mut Bind<'_>) -> Option<Self> {
        let (parts, rest) = parse_parts(source, bind)?;
        rest.is_empty().then_some(Self(parts))
    }

    /// Evaluates; `Ok(None)` when the engine must decide.
    ///
    /// # Errors
    ///
    /// A filter's error (a value not in a code table…), worded as the engine words it.
    pub(super) fn eval<'v>(
        &self,
        resolve: &dyn Fn(&VarPath) -> Option<&'v Value>,
        tables: &Tables,
    ) -> Result<Option<String>, Error> {
        // The common case, one expression, without a copy.
        if let [Part::Expr(expr)] = self.0.as_slice() {
            return Ok(eval(expr, resolve, tables)?.and_then(render).ok());
        }
        let mut out = String::new();
        Ok(write_parts(&self.0, resolve, tables, &mut out)?
            .ok()
            .map(|()| out))
    }
}

fn write_parts<'v>(
    parts: &[Part],
    resolve: &dyn Fn(&VarPath) -> Option<&'v Value>,
    tables: &Tables,
    out: &mut String,
) -> Eval<()> {
    for part in parts {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Expr(expr) => match eval(expr, resolve, tables)?.and_then(render) {
                Ok(text) => out.push_str(&text),
                Err(fallback) => return Ok(Err(fallback)),
            },
            Part::If(branches) => {
                for (condition, body) in branches {
                    let taken = match condition {
                        None => true,
                        Some(condition) => match eval(condition, resolve, tables)? {
                            Ok(value) => value.is_true(),
                            Err(fallback) => return Ok(Err(fallback)),
                        },
                    };
                    if taken {
                        if let Err(fallback) = write_parts(body, resolve, tables, out)? {
                            return Ok(Err(fallback));
                        }
                        break;
                    }
                }
            }
        }
    }
    Ok(Ok(()))
}

fn render(value: V<'_>) -> Result<String, Fallback> {
    match value {
        V::Nothing => Ok(String::new()),
        V::Text(text) => Ok(text.into_owned()),
        V::Bool(true) => Ok("True".into()),
        V::Bool(false) => Ok("False".into()),
        V::Other(Value::Number(n)) => Ok(n.to_string()),
        V::Other(_) => Err(Fallback),
    }
}

fn eval<'v>(
    expr: &Expr,
    resolve: &dyn Fn(&VarPath) -> Option<&'v Value>,
    tables: &Tables,
) -> Eval<V<'v>> {
    Ok(Ok(match expr {
        Expr::Literal(text) => V::Text(Cow::Owned(text.clone())),
        Expr::Path(path) => match resolve(path) {
            None | Some(Value::Null) => V::Nothing,
            Some(Value::String(text)) => V::Text(Cow::Borrowed(text.as_str())),
            Some(other) => V::Other(other),
        },
        Expr::Or(left, right) => {
            let left = match eval(left, resolve, tables)? {
                Ok(value) => value,
                Err(fallback) => return Ok(Err(fallback)),
            };
            if left.is_true() {
                left
            } else {
                return eval(right, resolve, tables);
            }
        }
        Expr::And(left, right) => {
            let left = match eval(left, resolve, tables)? {
                Ok(value) => value,
                Err(fallback) => return Ok(Err(fallback)),
            };
            if left.is_true() {
                return eval(right, resolve, tables);
            }
            left
        }
        Expr::Not(inner) => match eval(inner, resolve, tables)? {
            Ok(value) => V::Bool(!value.is_true()),
            Err(fallback) => return Ok(Err(fallback)),
        },
        Expr::Equal(left, right, equal) => {
            let (left, right) = match (eval(left, resolve, tables)?, eval(right, resolve, tables)?)
            {
                (Ok(left), Ok(right)) => (left, right),
                _ => return Ok(Err(Fallback)),
            };
            let same = match (&left, &right) {
                (V::Text(a), V::Text(b)) => a == b,
                (V::Nothing, V::Nothing) => true,
                (V::Nothing, V::Text(_)) | (V::Text(_), V::Nothing) => false,
                (V::Bool(a), V::Bool(b)) => a == b,
                _ => return Ok(Err(Fallback)),
            };
            V::Bool(same == *equal)
        }
        Expr::Joined(items, separator) => {
            let mut joined = String::new();
            for item in items {
                match eval(item, resolve, tables)? {
                    Ok(V::Nothing) => {}
                    Ok(V::Text(text)) if text.is_empty() => {}
                    Ok(V::Text(text)) => {
                        if !joined.is_empty() {
                            joined.push_str(separator);
                        }
                        joined.push_str(&text);
                    }
                    _ => return Ok(Err(Fallback)),
                }
            }
            V::Text(Cow::Owned(joined))
        }
        Expr::Filtered(inner, filter_list) => {
            let value = match eval(inner, resolve, tables)? {
                Ok(value) => value,
                Err(fallback) => return Ok(Err(fallback)),
            };
            let mut text = match value {
                V::Nothing => match filter_list.first() {
                    Some(Filter::Default(default)) => default.clone(),
                    _ => String::new(),
                },
                V::Text(text) => text.into_owned(),
                V::Bool(_) | V::Other(_) => return Ok(Err(Fallback)),
            };
            for filter in filter_list {
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
            V::Text(Cow::Owned(text))
        }
    }))
}

/// Resolves a variable path when the mapping is loaded.
pub(super) type Bind<'b> = dyn FnMut(Vec<String>) -> Option<VarPath> + 'b;

/// Text, expressions and `if` blocks, up to the end or to a tag that closes a block
/// (`elif`, `else`, `endif`), which is left in the rest. `None` outside the subset:
/// comments, whitespace control (`{%-`), other tags, filters or tests it does not know.
fn parse_parts<'s>(mut text: &'s str, bind: &mut Bind<'_>) -> Option<(Vec<Part>, &'s str)> {
    let mut parts = Vec::new();
    loop {
        let start = text.find('{').map_or(text.len(), |at| {
            // A lone `{` is text; look for the next tag.
            let mut at = at;
            while !matches!(text.get(at..at + 2), Some("{{" | "{%" | "{#") | None) {
                at = text[at + 1..]
                    .find('{')
                    .map_or(text.len(), |next| at + 1 + next);
            }
            at
        });
        let literal = &text[..start];
        if literal.contains("}}") || literal.contains("%}") || literal.contains("#}") {
            return None;
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal.to_owned()));
        }
        text = &text[start..];
        if text.is_empty() {
            return Some((parts, text));
        }
        if let Some(after) = text.strip_prefix("{{") {
            let end = after.find("}}")?;
            let inner = &after[..end];
            if inner.starts_with(['-', '+']) || inner.ends_with(['-', '+']) {
                return None;
            }
            parts.push(Part::Expr(parse_whole(inner, bind)?));
            text = &after[end + 2..];
            continue;
        }
        let (word, argument, rest) = tag(text)?;
        match word {
            "if" => {
                let mut branches = Vec::new();
                let mut condition = Some(parse_whole(argument, bind)?);
                let mut rest = rest;
                loop {
                    let (body, after) = parse_parts(rest, bind)?;
                    branches.push((condition.take(), body));
                    let (word, argument, after) = tag(after)?;
                    match word {
                        "endif" if argument.is_empty() => {
                            rest = after;
                            break;
                        }
                        "elif" if branches.last().is_some_and(|(c, _)| c.is_some()) => {
                            condition = Some(parse_whole(argument, bind)?);
                        }
                        "else"
                            if argument.is_empty()
                                && branches.last().is_some_and(|(c, _)| c.is_some()) => {}
                        _ => return None,
                    }
                    rest = after;
                }
                parts.push(Part::If(branches));
                text = rest;
            }
            "elif" | "else" | "endif" => return Some((parts, text)),
            _ => return None,
        }
    }
}

fn parse_whole(text: &str, bind: &mut Bind<'_>) -> Option<Expr> {
    let mut cursor = Cursor { text, at: 0, bind };
    let expr = cursor.or_expression()?;
    cursor.skip_spaces();
    (cursor.at == text.len()).then_some(expr)
}

/// The `{% word argument %}` at the start of `text`, and what follows it.
fn tag(text: &str) -> Option<(&str, &str, &str)> {
    let after = text.strip_prefix("{%")?;
    let end = after.find("%}")?;
    let inner = &after[..end];
    if inner.starts_with(['-', '+']) || inner.ends_with(['-', '+']) {
        return None;
    }
    let inner = inner.trim();
    let (word, argument) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
    Some((word, argument.trim(), &after[end + 2..]))
}

struct Cursor<'t, 'b> {
    text: &'t str,
    at: usize,
    bind: &'t mut Bind<'b>,
}

impl Cursor<'_, '_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn skip_spaces(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_spaces();
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn keyword(&mut self, word: &str) -> bool {
        self.skip_spaces();
        let rest = self.rest();
        if rest.starts_with(word)
            && !rest[word.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn identifier(&mut self) -> Option<String> {
        self.skip_spaces();
        let rest = self.rest();
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let word = rest[..len].to_owned();
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

    fn number(&mut self) -> Option<usize> {
        self.skip_spaces();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number = rest[..len].parse().ok()?;
        self.at += len;
        Some(number)
    }

    fn or_expression(&mut self) -> Option<Expr> {
        let mut left = self.and_expression()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and_expression()?));
        }
        Some(left)
    }

    fn and_expression(&mut self) -> Option<Expr> {
        let mut left = self.not_expression()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.not_expression()?));
        }
        Some(left)
    }

    fn not_expression(&mut self) -> Option<Expr> {
        if self.keyword("not") {
            return Some(Expr::Not(Box::new(self.not_expression()?)));
        }
        let left = self.filtered()?;
        if self.eat("==") {
            return Some(Expr::Equal(
                Box::new(left),
                Box::new(self.filtered()?),
                true,
            ));
        }
        if self.eat("!=") {
            return Some(Expr::Equal(
                Box::new(left),
                Box::new(self.filtered()?),
                false,
            ));
        }
        Some(left)
    }

    fn filtered(&mut self) -> Option<Expr> {
        let atom = self.atom()?;
        let mut filters = Vec::new();
        while self.eat("|") {
            let first = filters.is_empty();
            filters.push(self.filter(first)?);
        }
        Some(if filters.is_empty() {
            atom
        } else {
            Expr::Filtered(Box::new(atom), filters)
        })
    }

    fn atom(&mut self) -> Option<Expr> {
        if self.eat("[") {
            return self.joined_list();
        }
        if self.eat("(") {
            let inner = self.or_expression()?;
            return self.eat(")").then_some(inner);
        }
        if let Some(text) = self.string() {
            return Some(Expr::Literal(text));
        }
        let first = self.identifier()?;
        if matches!(
            first.as_str(),
            "or" | "and"
                | "not"
                | "is"
                | "in"
                | "if"
                | "else"
                | "true"
                | "false"
                | "none"
                | "True"
                | "False"
                | "None"
        ) {
            return None;
        }
        let mut path = vec![first];
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
        // A call or an index is the engine's business.
        if self.rest().starts_with('(') || self.rest().starts_with('[') {
            return None;
        }
        (self.bind)(path).map(Expr::Path)
    }

    /// `[a, b]|select|join('sep')`, after the `[`; other uses of a list are the engine's.
    fn joined_list(&mut self) -> Option<Expr> {
        let mut items = vec![self.or_expression()?];
        while self.eat(",") {
            items.push(self.or_expression()?);
        }
        if !(self.eat("]") && self.eat("|") && self.keyword("select") && self.eat("|")) {
            return None;
        }
        if !(self.keyword("join") && self.eat("(")) {
            return None;
        }
        let separator = self.string()?;
        if !self.eat(")") || self.rest().trim_start().starts_with('|') {
            return None;
        }
        Some(Expr::Joined(items, separator))
    }

    fn filter(&mut self, first: bool) -> Option<Filter> {
        let name = self.identifier()?;
        enum Argument {
            Text(String),
            Number(usize),
        }
        let argument = if self.eat("(") {
            let value = match self.string() {
                Some(text) => Argument::Text(text),
                None => Argument::Number(self.number()?),
            };
            if !self.eat(")") {
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
            // Native only right after the value (later, the engine's rules differ).
            ("default", Some(Argument::Text(text))) if first => Filter::Default(text),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests;
