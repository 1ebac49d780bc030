//! The variables of one démarche, as a mapping reads them.
//!
//! Paths are resolved in two steps, because a mapping reads dozens of form fields per
//! démarche and the form data is a sorted map of some hundred keys: looking each one up
//! costs about ten string comparisons. When a mapping is loaded, each variable path gets
//! its root (`fields`, `form`, an alias of a `for_each`…) and, for a form field, a slot
//! ([`Slots`]). When it is applied, one merged walk over the sorted form fields fills every
//! slot at once, and a path is then an index plus the keys below it.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{json, ROOTS};
use aiguillage_bus::envelope::Envelope;

/// A variable path of a mapping (`fields.enfants.0.nom`), resolved when it was loaded.
#[derive(Debug, Clone)]
pub(super) struct VarPath {
    root: Root,
    /// The keys below the root (below the field, for a form field).
    keys: Vec<String>,
    /// The path as written, for messages.
    text: String,
}

#[derive(Debug, Clone, Copy)]
enum Root {
    /// `envelope`: the envelope's own fields (id, commune, form, submitted_at).
    Envelope,
    /// `form`: the whole form data.
    Form,
    /// `fields` alone.
    Fields,
    /// `fields.<name>`: the form field in this slot.
    Field(usize),
    /// `user` or `workflow`: that member of the form data.
    Member(&'static str),
    /// The item of the `for_each` at this depth (0 is the outermost).
    Alias(usize),
}

impl VarPath {
    /// The path as written.
    pub(super) fn text(&self) -> &str {
        &self.text
    }
}

/// The form fields that a mapping reads, one slot each, collected while it is loaded.
#[derive(Debug, Clone, Default)]
pub(super) struct Slots {
    names: Vec<String>,
    /// Slot numbers in the order of their names: the order of the form data's keys.
    sorted: Vec<usize>,
}

impl Slots {
    /// Resolves the root of `parts` (a root name or an alias of `aliases`, innermost
    /// last); `None` for a name that is neither.
    pub(super) fn path(&mut self, parts: Vec<String>, aliases: &[String]) -> Option<VarPath> {
        let text = parts.join(".");
        let mut parts = parts.into_iter();
        let first = parts.next()?;
        let mut keys: Vec<String> = parts.collect();
        let root = if let Some(depth) = aliases.iter().rposition(|a| *a == first) {
            Root::Alias(depth)
        } else {
            match first.as_str() {
                "envelope" => Root::Envelope,
                "form" => Root::Form,
                "fields" if keys.is_empty() => Root::Fields,
                "fields" => Root::Field(self.slot(keys.remove(0))),
                "user" => Root::Member("user"),
                "workflow" => Root::Member("workflow"),
                _ => return None,
            }
        };
        debug_assert!(ROOTS.contains(&first.as_str()) || matches!(root, Root::Alias(_)));
        Some(VarPath { root, keys, text })
    }

    fn slot(&mut self, name: String) -> usize {
        if let Some(slot) = self.names.iter().position(|n| *n == name) {
            return slot;
        }
        let slot = self.names.len();
        let at = self
            .sorted
            .partition_point(|&s| self.names[s].as_str() < name.as_str());
        self.names.push(name);
        self.sorted.insert(at, slot);
        slot
    }

    /// The value of each slot in `fields`: one walk over both sorted key lists.
    fn fill<'a>(&self, fields: Option<&'a Map<String, Value>>) -> Vec<Option<&'a Value>> {
        let mut values = vec![None; self.names.len()];
        let Some(fields) = fields else {
            return values;
        };
        let mut wanted = self.sorted.iter().peekable();
        let mut entries = fields.iter();
        let mut entry = entries.next();
        while let (Some(&&slot), Some((key, value))) = (wanted.peek(), entry) {
            match self.names[slot].as_str().cmp(key.as_str()) {
                std::cmp::Ordering::Less => {
                    wanted.next();
                }
                std::cmp::Ordering::Equal => {
                    values[slot] = Some(value);
                    wanted.next();
                }
                std::cmp::Ordering::Greater => entry = entries.next(),
            }
        }
        values
    }
}

/// The variables of one démarche, inside the `for_each` items being mapped.
pub(super) struct Scope<'a> {
    envelope: &'a Envelope,
    head: &'a Value,
    fields: &'a [Option<&'a Value>],
    /// The innermost `for_each` item (its alias and value) and the scope around it.
    item: Option<(&'a str, &'a Value, &'a Scope<'a>)>,
    depth: usize,
    context: OnceCell<minijinja::Value>,
}

/// What a [`Scope`] borrows, made once per démarche.
pub(super) struct Frame<'a> {
    envelope: &'a Envelope,
    head: Value,
    fields: Vec<Option<&'a Value>>,
}

impl<'a> Frame<'a> {
    pub(super) fn new(envelope: &'a Envelope, slots: &Slots) -> Self {
        Self {
            envelope,
            head: serde_json::json!({
                "id": envelope.id,
                "commune": envelope.commune,
                "form": envelope.form,
                "submitted_at": envelope.submitted_at_text(),
            }),
            fields: slots.fill(envelope.formdata.get("fields").and_then(Value::as_object)),
        }
    }

    pub(super) fn scope(&self) -> Scope<'_> {
        Scope {
            envelope: self.envelope,
            head: &self.head,
            fields: &self.fields,
            item: None,
            depth: 0,
            context: OnceCell::new(),
        }
    }
}

impl<'a> Scope<'a> {
    /// The scope inside a `for_each` item.
    pub(super) fn with<'b>(&'b self, alias: &'b str, value: &'b Value) -> Scope<'b>
    where
        'a: 'b,
    {
        Scope {
            envelope: self.envelope,
            head: self.head,
            fields: self.fields,
            item: Some((alias, value, self)),
            depth: self.depth + 1,
            context: OnceCell::new(),
        }
    }

    /// The value at `path`, if the démarche has one.
    pub(super) fn resolve(&self, path: &VarPath) -> Option<&'a Value> {
        let start = match path.root {
            Root::Envelope => self.head,
            Root::Form => {
                let (member, rest) = path.keys.split_first()?;
                return descend(self.envelope.formdata.get(member)?, rest);
            }
            Root::Fields => self.envelope.formdata.get("fields")?,
            Root::Field(slot) => self.fields[slot]?,
            Root::Member(name) => self.envelope.formdata.get(name)?,
            Root::Alias(depth) => self.item_at(depth)?,
        };
        descend(start, &path.keys)
    }

    fn item_at(&self, depth: usize) -> Option<&'a Value> {
        let mut scope = self;
        loop {
            let (_, value, outer) = scope.item?;
            if scope.depth == depth + 1 {
                return Some(value);
            }
            scope = outer;
        }
    }

    /// The template context, built once per scope and only if a template needs it; the
    /// form data is wrapped, not converted.
    pub(super) fn context(&self) -> minijinja::Value {
        self.context
            .get_or_init(|| {
                let formdata = &self.envelope.formdata;
                let mut base: BTreeMap<String, minijinja::Value> = BTreeMap::new();
                base.insert("envelope".into(), json::standalone(self.head));
                base.insert("form".into(), json::JsonNode::root(formdata.clone()));
                for name in ["fields", "user", "workflow"] {
                    base.insert(name.into(), json::JsonNode::member(formdata, name));
                }
                // Innermost last: an inner alias hides an outer one of the same name.
                let mut items = Vec::new();
                let mut scope = self;
                while let Some((alias, value, outer)) = scope.item {
                    items.push((alias, value));
                    scope = outer;
                }
                for (alias, value) in items.into_iter().rev() {
                    base.insert(alias.to_owned(), json::standalone(value));
                }
                minijinja::Value::from(base)
            })
            .clone()
    }
}

/// The value at `path` below `value` (keys of objects, indexes of lists).
fn descend<'v>(mut value: &'v Value, path: &[String]) -> Option<&'v Value> {
    for key in path {
        value = match value {
            Value::Object(map) => map.get(key)?,
            Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The merged walk needs the form data's keys in sorted order: serde_json's map is a
    /// `BTreeMap` unless its `preserve_order` feature is turned on by some dependency.
    #[test]
    fn form_data_keys_iterate_in_sorted_order() {
        let map: Map<String, Value> = serde_json::from_str(r#"{"b": 1, "a": 2, "c": 3}"#).unwrap();
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "b", "c"]);
    }

    #[test]
    fn slots_find_every_field_whatever_the_order_they_were_asked_in() {
        let mut slots = Slots::default();
        let wanted = ["nom", "absent", "a", "prenoms", "nom_usage", "zzz", "nom"];
        let paths: Vec<VarPath> = wanted
            .iter()
            .map(|name| {
                slots
                    .path(vec!["fields".into(), (*name).into()], &[])
                    .unwrap()
            })
            .collect();
        let fields: Map<String, Value> = serde_json::from_str(
            r#"{"a": "1", "nom": "Durand", "nom_usage": "", "prenoms": "Léa", "x": "y"}"#,
        )
        .unwrap();
        let values = slots.fill(Some(&fields));
        let found: Vec<Option<&str>> = paths
            .iter()
            .map(|p| match p.root {
                Root::Field(slot) => values[slot].and_then(Value::as_str),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            found,
            [
                Some("Durand"),
                None,
                Some("1"),
                Some("Léa"),
                Some(""),
                None,
                Some("Durand")
            ]
        );
    }
}
