//! Where each configuration key comes from, and how a problem is told to the operator.
//!
//! The file is parsed once with spans, so that every problem can point at its line and
//! column (`gateway.toml:12:5`), or name the environment variable that set the key. serde
//! stops at the first error of a table: [`deserialize_each`] removes the key at fault and
//! tries again, so that every problem of a section is found in one pass. Its messages are
//! reworded in French, with a "did you mean" for a misspelt key and a hint for an INSEE
//! code written as a number.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use aiguillage_bus::Problem;

/// Where a key of the configuration was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// In the file, 1-based line and column.
    File {
        /// The line, from 1.
        line: usize,
        /// The column in characters, from 1.
        column: usize,
    },
    /// By an environment variable, which overrides the file.
    Env(String),
}

/// A TOML syntax error, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The line, from 1.
    pub line: usize,
    /// The column in characters, from 1.
    pub column: usize,
    /// What the parser expected.
    pub message: String,
    /// The offending line, as written.
    pub excerpt: String,
    /// How to fix it, when we know (an INSEE code written without quotes).
    pub hint: Option<String>,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = self.line.to_string();
        let pad = " ".repeat(number.len());
        let caret = " ".repeat(self.column.saturating_sub(1));
        write!(
            f,
            "syntaxe TOML invalide : {}\n    {number} | {}\n    {pad} | {caret}^",
            self.message, self.excerpt
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n    {hint}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Spans {
    key: Range<usize>,
    value: Range<usize>,
}

/// The key paths of a configuration file and where each is written, and the keys that
/// environment variables override.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    text: String,
    spans: HashMap<String, Spans>,
    env: HashMap<String, String>,
}

impl Sources {
    /// Parses `text` as TOML and records where each key is.
    ///
    /// # Errors
    ///
    /// Every syntax error the parser finds, each with its line, column and excerpt.
    pub fn parse(text: &str) -> Result<Self, Vec<SyntaxError>> {
        let (document, errors) = toml::de::DeTable::parse_recoverable(text);
        if !errors.is_empty() {
            // The parser's recovery reports the consequences of a mistake too (an unclosed
            // list gives an error at each following token): the first error of each line
            // is the one that says what to fix there.
            let mut found: Vec<SyntaxError> = Vec::new();
            for error in &errors {
                let error = syntax_error(text, error);
                if !found.iter().any(|other| other.line == error.line) {
                    found.push(error);
                }
            }
            found.sort_by_key(|error| (error.line, error.column));
            return Err(found);
        }
        let mut sources = Self {
            text: text.to_owned(),
            ..Self::default()
        };
        sources.walk_table("", document.get_ref());
        Ok(sources)
    }

    fn walk_table(&mut self, prefix: &str, table: &toml::de::DeTable<'_>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            self.spans.insert(
                path.clone(),
                Spans {
                    key: key.span(),
                    value: value.span(),
                },
            );
            self.walk_value(&path, value.get_ref());
        }
    }

    fn walk_value(&mut self, path: &str, value: &toml::de::DeValue<'_>) {
        match value {
            toml::de::DeValue::Table(table) => self.walk_table(path, table),
            toml::de::DeValue::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{index}]");
                    self.spans.insert(
                        item_path.clone(),
                        Spans {
                            key: item.span(),
                            value: item.span(),
                        },
                    );
                    self.walk_value(&item_path, item.get_ref());
                }
            }
            _ => {}
        }
    }

    /// Records that `variable` sets the key `path` (e.g. `connectors[0].url`).
    pub fn record_env(&mut self, path: String, variable: String) {
        self.env.insert(path, variable);
    }

    /// Where the key of a problem was given: the environment variable that set it or one of
    /// the tables holding it, else its place in the file (the key itself for an unknown key,
    /// its value otherwise), else the nearest table holding it that the file writes.
    pub fn locate(&self, key: &str, unknown_key: bool) -> Option<Location> {
        let mut path = key;
        loop {
            if let Some(variable) = self.env.get(path) {
                return Some(Location::Env(variable.clone()));
            }
            path = match parent(path) {
                Some(parent) => parent,
                None => break,
            };
        }
        let mut path = key;
        let mut exact = true;
        loop {
            if let Some(spans) = self.spans.get(path) {
                let span = if exact && !unknown_key {
                    &spans.value
                } else {
                    &spans.key
                };
                let (line, column) = line_column(&self.text, span.start);
                return Some(Location::File { line, column });
            }
            exact = false;
            path = parent(path)?;
        }
    }
}

/// `connectors[0].auth` for `connectors[0].auth.token`, `connectors` for `connectors[0]`.
fn parent(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn syntax_error(text: &str, error: &toml::de::Error) -> SyntaxError {
    let offset = error.span().map_or(0, |span| span.start);
    let (line, column) = line_column(text, offset);
    let excerpt = text
        .lines()
        .nth(line - 1)
        .unwrap_or_default()
        .trim_end()
        .to_owned();
    let hint = commune_line(&excerpt).map(|(key, value)| {
        let what = if key == "communes" {
            "les codes INSEE"
        } else {
            "le code INSEE"
        };
        format!(
            "écrivez {key} = {} ; {}",
            quote_codes(value),
            insee_hint(what)
        )
    });
    SyntaxError {
        line,
        column,
        message: syntax_fr(error.message().trim_end()),
        excerpt,
        hint,
    }
}

/// The parser's message in French for the usual mistakes (the others stay as the parser
/// words them, e.g. `radix must be lowercase, expected …`). Mapping files use it too.
pub(crate) fn syntax_fr(message: &str) -> String {
    let description = message.split(", expected ").next().unwrap_or(message);
    let french = match description {
        "string values must be quoted" => "un texte doit être entre guillemets",
        "duplicate key" => "clé en double",
        "missing comma between array elements" => {
            "virgule manquante entre deux éléments de la liste"
        }
        "missing comma between key-value pairs" => "virgule manquante entre deux clés",
        "missing assignment between key-value pairs" => "`=` manquant après la clé",
        "unexpected leading zero" => "un nombre ne commence pas par un zéro",
        "unclosed array" => "liste non fermée",
        "unclosed array table" | "unclosed table" => "en-tête de table non fermé",
        "unclosed inline table" => "table en ligne non fermée",
        "invalid unquoted key" => "clé invalide",
        "missing value" | "missing value for key" | "key with no value" => "valeur manquante",
        "missing opening quote" => "guillemet ouvrant manquant",
        "invalid basic string" => "texte invalide (guillemet fermant manquant ?)",
        "extra comma in array" => "virgule en trop dans la liste",
        "unexpected `=` in array" => "`=` inattendu dans une liste",
        "unexpected content" | "unexpected key or value" => "contenu inattendu",
        "invalid value" => "valeur invalide",
        // Not translated: the parser's words, with what it expected.
        _ => return message.to_owned(),
    };
    french.to_owned()
}

/// `commune = 2A004` → (`commune`, `2A004`), for a line that sets `commune` or `communes`.
fn commune_line(line: &str) -> Option<(&'static str, &str)> {
    let (key, value) = line.split_once('=')?;
    let key = match key.trim() {
        "commune" => "commune",
        "communes" => "communes",
        _ => return None,
    };
    Some((key, value.trim()))
}

/// `2A004` → `"2A004"`, `[44043, 2A004]` → `["44043", "2A004"]`; quoted codes stay.
fn quote_codes(value: &str) -> String {
    let value = value.split('#').next().unwrap_or(value).trim();
    let quote = |code: &str| {
        let code = code.trim().trim_matches(['"', '\'']);
        format!("\"{code}\"")
    };
    match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        Some(list) => format!(
            "[{}]",
            list.split(',')
                .filter(|code| !code.trim().is_empty())
                .map(quote)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => quote(value),
    }
}

fn insee_hint(what: &str) -> String {
    format!(
        "mettez {what} entre guillemets, un code INSEE est un texte (en nombre, \"01001\" perdrait son zéro initial, et \"2A004\" n'en est pas un)"
    )
}

/// Deserialises `value` into `T`, adding a problem (keyed `prefix.path`) for each key at
/// fault. A key that is unknown or has a wrong value is removed and the rest tried again,
/// so that all the problems of a table are found at once; `None` when `T` cannot be made
/// without the keys at fault (a required key missing or wrong).
pub fn deserialize_each<T: DeserializeOwned>(
    mut value: Value,
    prefix: &str,
    label: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let mut removed: Vec<String> = Vec::new();
    // Each round removes one key, and a table has few: the bound only guards the loop.
    for _ in 0..64 {
        let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(parsed) => return Some(parsed),
            Err(error) => error,
        };
        let segments: Vec<Segment> = error.path().iter().cloned().collect();
        let path = join(prefix, &error.path().to_string());
        let raw = error.into_inner().to_string();
        if let Some(field) = missing_field(&raw) {
            // The key was there but wrong, and was removed: already told.
            if removed.contains(&join(&path, field)) {
                return None;
            }
        }
        // A nested table is named by its own path (`[publik.intake]`), not its section's.
        let label = if segments.len() > 1 {
            table_label(&path)
        } else {
            label.to_owned()
        };
        problems.push(Problem {
            key: path.clone(),
            message: explain(&path, &label, &raw, &[]),
        });
        if !remove(&mut value, &segments) {
            return None;
        }
        removed.push(path);
    }
    None
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path) {
        (_, ".") => prefix.to_owned(),
        (true, path) => path.to_owned(),
        (false, path) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, path) => format!("{prefix}.{path}"),
    }
}

fn missing_field(raw: &str) -> Option<&str> {
    raw.strip_prefix("missing field `")?.split('`').next()
}

/// Removes the key at `segments`; false when it is not a key of a table (an item of a
/// list, whose removal would renumber the others, or the whole value).
pub fn remove(value: &mut Value, segments: &[Segment]) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let Segment::Map { key } = last else {
        return false;
    };
    let mut node = value;
    for segment in parents {
        node = match (segment, node) {
            (Segment::Map { key }, Value::Object(map)) => match map.get_mut(key) {
                Some(next) => next,
                None => return false,
            },
            (Segment::Seq { index }, Value::Array(items)) => match items.get_mut(*index) {
                Some(next) => next,
                None => return false,
            },
            _ => return false,
        };
    }
    match node {
        Value::Object(map) => map.remove(key).is_some(),
        _ => false,
    }
}

/// Removes the key at a dotted path (`auth.token`); false when there is none.
pub fn remove_dotted(value: &mut Value, path: &str) -> bool {
    let segments: Vec<Segment> = path
        .split('.')
        .map(|key| Segment::Map {
            key: key.to_owned(),
        })
        .collect();
    remove(value, &segments)
}

/// The table holding `key`, as the operator writes it: `[bus]`, `[[routes]]`,
/// `[publik.intake]`, the top level.
pub fn table_label(key: &str) -> String {
    let Some(parent) = parent(key) else {
        return "au premier niveau du fichier".into();
    };
    let array = parent.ends_with(']');
    let name: String = parent
        .split('.')
        .map(|part| part.split('[').next().unwrap_or(part))
        .collect::<Vec<_>>()
        .join(".");
    if array {
        format!("dans [[{name}]] `{parent}`")
    } else {
        format!("dans [{name}]")
    }
}

/// serde's message for the key `key`, told in French with the fix: the closest known key
/// for an unknown one (`extra` are known keys serde did not list), quotes for an INSEE
/// code written as a number, nothing quoted from a secret.
pub fn explain(key: &str, label: &str, raw: &str, extra: &[&str]) -> String {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let mut known = quoted_names(expected);
        known.extend(extra.iter().map(|k| (*k).to_owned()));
        return match closest(name, &known) {
            Some(best) => format!("clé inconnue `{name}` {label} ; vouliez-vous dire `{best}` ?"),
            None if known.is_empty() => {
                format!("clé inconnue `{name}` {label} (cette table n'en accepte aucune)")
            }
            None => {
                known.sort();
                known.dedup();
                format!(
                    "clé inconnue `{name}` {label} (clés possibles : {})",
                    known.join(", ")
                )
            }
        };
    }
    if let Some(rest) = raw.strip_prefix("unknown variant `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known = quoted_names(expected);
        return match closest(name, &known) {
            Some(best) => format!("valeur inconnue `{name}` ; vouliez-vous dire `{best}` ?"),
            None => format!(
                "valeur inconnue `{name}` (valeurs possibles : {})",
                known.join(", ")
            ),
        };
    }
    if let Some(field) = missing_field(raw) {
        return format!("la clé `{field}` manque {label}");
    }
    let commune =
        leaf.split('[').next() == Some("commune") || leaf.split('[').next() == Some("communes");
    if commune && raw.starts_with("invalid type: integer `") {
        let number = raw
            .trim_start_matches("invalid type: integer `")
            .split('`')
            .next()
            .unwrap_or_default();
        let name = leaf.split('[').next().unwrap_or(leaf);
        return if leaf.contains('[') {
            format!(
                "`{number}` est écrit comme un nombre : écrivez \"{number}\" dans `{name}` ; {}",
                insee_hint("les codes INSEE")
            )
        } else {
            format!(
                "`{number}` est écrit comme un nombre : écrivez {name} = \"{number}\" ; {}",
                insee_hint("le code INSEE")
            )
        };
    }
    // serde quotes the offending value: never a secret's.
    let secretive = is_secret_key(key) || leaf == "auth" || key.contains(".auth.");
    if secretive && raw.starts_with("invalid") && raw.contains('`') {
        return "valeur invalide (non affichée : c'est un secret) ; donnez-la comme texte, ou par fichier".into();
    }
    if let Some(rest) = raw.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        return format!(
            "type incorrect : {}, alors qu'il faut {}",
            found_fr(found),
            expected_fr(expected)
        );
    }
    if let Some(rest) = raw.strip_prefix("invalid value: ") {
        return format!("valeur invalide : {rest}");
    }
    raw.to_owned()
}

fn found_fr(found: &str) -> String {
    let (kind, value) = found.split_once(' ').unwrap_or((found, ""));
    let value = if value.is_empty() {
        String::new()
    } else {
        format!(" {value}")
    };
    match kind {
        "integer" => format!("le nombre entier{value}"),
        "floating" => format!("le nombre{}", value.trim_start_matches(" point")),
        "string" => format!("le texte{value}"),
        "boolean" => format!("le booléen{value}"),
        "map" => "une table".into(),
        "sequence" => "une liste".into(),
        _ => found.to_owned(),
    }
}

fn expected_fr(expected: &str) -> String {
    match expected {
        "a string" | "a borrowed string" => "du texte (entre guillemets)".into(),
        "a boolean" => "un booléen (true ou false)".into(),
        "a sequence" => "une liste [ … ]".into(),
        "u8" | "u16" | "u32" | "u64" | "usize" | "i32" | "i64" => "un nombre entier positif".into(),
        "a duration" => "une durée, par exemple \"30s\" ou \"5m\"".into(),
        e if e.starts_with("struct ") || e == "a map" => "une table".into(),
        e => e.to_owned(),
    }
}

/// The names between backquotes in serde's "expected one of `a`, `b`".
fn quoted_names(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The known name closest to `name`, when it is close enough to be a typo: at most one
/// edit in three characters.
pub fn closest(name: &str, known: &[String]) -> Option<String> {
    let limit = (name.chars().count() / 3).max(1);
    known
        .iter()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.clone())
}

/// Edit distance in characters, a swap of two neighbours counting as one edit (`hots` is
/// one typo away from `host`): the optimal string alignment distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between the first i characters of a and the first j of b.
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Keys whose values are secrets: never quoted in messages, never guessed as numbers.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.rsplit('.').next().unwrap_or(key);
    ["password", "token", "secret", "value", "key"]
        .iter()
        .any(|word| key.contains(word))
        && !key.ends_with("_file")
}

#[cfg(test)]
mod tests;
