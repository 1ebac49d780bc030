//! The démarche as templates see it: the form data wrapped, not copied. A template reads
//! a handful of fields out of a few kilobytes of form data; converting it all for each
//! démarche cost more than the rendering itself.

use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr};
use serde_json::{Map, Value};

/// A node of the form data, by its path from the root.
#[derive(Debug)]
pub struct JsonNode {
    root: Arc<Map<String, Value>>,
    path: Vec<Step>,
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

enum Node<'a> {
    Root(&'a Map<String, Value>),
    Value(&'a Value),
}

impl JsonNode {
    /// The whole form data.
    pub fn root(root: Arc<Map<String, Value>>) -> minijinja::Value {
        minijinja::Value::from_object(Self {
            root,
            path: Vec::new(),
        })
    }

    /// A top-level member of the form data (`fields`, `user`…), as a template value.
    pub fn member(root: &Arc<Map<String, Value>>, key: &str) -> minijinja::Value {
        match root.get(key) {
            Some(value) => convert(root, vec![Step::Key(key.to_owned())], value),
            None => minijinja::Value::UNDEFINED,
        }
    }

    fn node(&self) -> Option<Node<'_>> {
        let mut node = Node::Root(&self.root);
        for step in &self.path {
            let next = match (&node, step) {
                (Node::Root(map), Step::Key(key)) => map.get(key)?,
                (Node::Value(Value::Object(map)), Step::Key(key)) => map.get(key)?,
                (Node::Value(Value::Array(items)), Step::Index(i)) => items.get(*i)?,
                _ => return None,
            };
            node = Node::Value(next);
        }
        Some(node)
    }

    fn child(&self, step: Step, value: &Value) -> minijinja::Value {
        let mut path = self.path.clone();
        path.push(step);
        convert(&self.root, path, value)
    }
}

/// Scalars become template scalars; `null` becomes undefined, so that a missing field and
/// an empty one behave the same (`{{ fields.x|upper }}` gives nothing, not `NONE`).
fn convert(root: &Arc<Map<String, Value>>, path: Vec<Step>, value: &Value) -> minijinja::Value {
    match value {
        Value::Null => minijinja::Value::UNDEFINED,
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                minijinja::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                minijinja::Value::from(u)
            } else {
                minijinja::Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(_) | Value::Object(_) => minijinja::Value::from_object(JsonNode {
            root: root.clone(),
            path,
        }),
    }
}

/// A value outside the form data (an item of a `for_each` list, the envelope's head).
pub fn standalone(value: &Value) -> minijinja::Value {
    match value {
        Value::Array(_) | Value::Object(_) => {
            let mut root = Map::new();
            root.insert("v".to_owned(), value.clone());
            JsonNode::member(&Arc::new(root), "v")
        }
        scalar => convert(&Arc::new(Map::new()), Vec::new(), scalar),
    }
}

impl Object for JsonNode {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.node() {
            Some(Node::Value(Value::Array(_))) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        match self.node()? {
            Node::Root(map) | Node::Value(Value::Object(map)) => {
                let key = key.as_str()?;
                map.get(key)
                    .map(|value| self.child(Step::Key(key.to_owned()), value))
            }
            Node::Value(Value::Array(items)) => {
                let index = key.as_usize()?;
                items
                    .get(index)
                    .map(|value| self.child(Step::Index(index), value))
            }
            Node::Value(_) => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.node() {
            Some(Node::Root(map)) | Some(Node::Value(Value::Object(map))) => {
                let keys: Vec<minijinja::Value> = map
                    .keys()
                    .map(|k| minijinja::Value::from(k.as_str()))
                    .collect();
                Enumerator::Iter(Box::new(keys.into_iter()))
            }
            Some(Node::Value(Value::Array(items))) => {
                let values: Vec<minijinja::Value> = items
                    .iter()
                    .enumerate()
                    .map(|(i, value)| self.child(Step::Index(i), value))
                    .collect();
                Enumerator::Iter(Box::new(values.into_iter()))
            }
            _ => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        match self.node()? {
            Node::Root(map) | Node::Value(Value::Object(map)) => Some(map.len()),
            Node::Value(Value::Array(items)) => Some(items.len()),
            Node::Value(_) => Some(0),
        }
    }
}
