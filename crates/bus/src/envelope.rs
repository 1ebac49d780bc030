//! The envelope: what the portal publishes for each démarche (bus contract).

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::ids::{FormSlug, InseeCode};

/// Longest accepted envelope id.
pub const MAX_ID_LEN: usize = 255;

/// A démarche as published on the bus, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Globally unique id, the idempotency key (`{portal}:{form}:{number}`).
    pub id: String,
    /// INSEE code of the commune.
    pub commune: InseeCode,
    /// Form slug.
    pub form: FormSlug,
    /// When the citizen submitted it.
    pub submitted_at: OffsetDateTime,
    /// The form data as w.c.s. exports it (shared: templates read it without copying).
    pub formdata: std::sync::Arc<Map<String, Value>>,
}

/// Why a message is not a valid envelope. Each reason is specific enough for an operator
/// to find the culprit without reading the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Larger than `bus.max_message_bytes`.
    #[error(
        "message de {size} octets, au-delà de la limite de {limit} octets (bus.max_message_bytes)"
    )]
    TooLarge {
        /// Body size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not UTF-8.
    #[error("le corps n'est pas de l'UTF-8 valide (octet invalide à la position {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// Not JSON (or nested beyond the parser's limit).
    #[error("le corps n'est pas du JSON valide : {0}")]
    InvalidJson(String),
    /// JSON, but not an object.
    #[error("l'enveloppe doit être un objet JSON, reçu {0}")]
    NotAnObject(&'static str),
    /// A field is missing.
    #[error("le champ `{0}` de l'enveloppe manque")]
    Missing(&'static str),
    /// A field has the wrong JSON type.
    #[error("le champ `{field}` de l'enveloppe doit être {expected}, reçu {got}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What it is.
        got: &'static str,
    },
    /// A field has a value out of its domain.
    #[error("le champ `{field}` de l'enveloppe est invalide : {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// What can be read from a message even when it is not a valid envelope: enough to emit
/// a `rejected` status event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Salvage {
    /// The `id` field, when it is a usable string.
    pub id: Option<String>,
    /// The `commune` field, when it is a string.
    pub commune: Option<String>,
    /// The `form` field, when it is a string.
    pub form: Option<String>,
}

/// A message refused as an envelope: why, and what could be read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Why it is not a valid envelope.
    pub error: EnvelopeError,
    /// What could be read anyway.
    pub salvage: Salvage,
}

impl Envelope {
    /// The démarche number people see (w.c.s.'s `formdata.display_id`, e.g. `12-42`), when
    /// the form data has one (text, or a number written as text); at most 64 characters.
    pub fn display_id(&self) -> Option<String> {
        let text = match self.formdata.get("display_id")? {
            Value::String(text) => text.trim().to_owned(),
            Value::Number(number) => number.to_string(),
            _ => return None,
        };
        (!text.is_empty() && text.chars().count() <= 64).then_some(text)
    }

    /// Parses and checks a message body.
    ///
    /// # Errors
    ///
    /// A [`Rejection`] saying exactly what is wrong, with what could be salvaged.
    pub fn parse(body: &[u8], max_bytes: usize) -> Result<Self, Box<Rejection>> {
        Self::parse_inner(body, max_bytes)
            .map_err(|(error, salvage)| Box::new(Rejection { error, salvage }))
    }

    #[allow(clippy::result_large_err)] // boxed once, in `parse`
    fn parse_inner(body: &[u8], max_bytes: usize) -> Result<Self, (EnvelopeError, Salvage)> {
        if body.len() > max_bytes {
            return Err((
                EnvelopeError::TooLarge {
                    size: body.len(),
                    limit: max_bytes,
                },
                Salvage::default(),
            ));
        }
        if let Err(error) = std::str::from_utf8(body) {
            return Err((
                EnvelopeError::NotUtf8 {
                    offset: error.valid_up_to(),
                },
                Salvage::default(),
            ));
        }
        // serde_json stops at 128 levels of nesting: hostile depth is an error, not a
        // stack overflow.
        let value: Value = serde_json::from_slice(body).map_err(|error| {
            (
                EnvelopeError::InvalidJson(error.to_string()),
                Salvage::default(),
            )
        })?;
        let Value::Object(mut object) = value else {
            return Err((
                EnvelopeError::NotAnObject(type_name(&value)),
                Salvage::default(),
            ));
        };
        let salvage = Salvage {
            id: object
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty() && id.len() <= MAX_ID_LEN)
                .map(str::to_owned),
            commune: object
                .get("commune")
                .and_then(Value::as_str)
                .map(str::to_owned),
            form: object
                .get("form")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        #[allow(clippy::result_large_err)]
        let fail = |error| Err((error, salvage.clone()));

        let id = match take_string(&mut object, "id") {
            Ok(id) => id,
            Err(error) => return fail(error),
        };
        if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
            return fail(EnvelopeError::Invalid {
                field: "id",
                reason: format!("de 1 à {MAX_ID_LEN} caractères, sans caractère de contrôle"),
            });
        }
        let commune = match take_string(&mut object, "commune") {
            Ok(commune) => commune,
            Err(error) => return fail(error),
        };
        let Some(commune) = InseeCode::parse(commune.as_str()) else {
            return fail(EnvelopeError::Invalid {
                field: "commune",
                reason: format!(
                    "`{}` n'est pas un code INSEE de 5 caractères",
                    shorten(&commune)
                ),
            });
        };
        let form = match take_string(&mut object, "form") {
            Ok(form) => form,
            Err(error) => return fail(error),
        };
        let Some(form) = FormSlug::parse(form.as_str()) else {
            return fail(EnvelopeError::Invalid {
                field: "form",
                reason: format!(
                    "`{}` n'est pas un identifiant de formulaire (minuscules, chiffres, `-`, `_`)",
                    shorten(&form)
                ),
            });
        };
        let submitted_at = match take_string(&mut object, "submitted_at") {
            Ok(raw) => match OffsetDateTime::parse(&raw, &Rfc3339) {
                Ok(at) => at,
                Err(error) => {
                    return fail(EnvelopeError::Invalid {
                        field: "submitted_at",
                        reason: format!(
                            "`{}` n'est pas une date-heure RFC 3339 ({error})",
                            shorten(&raw)
                        ),
                    })
                }
            },
            Err(error) => return fail(error),
        };
        let formdata = match object.remove("formdata") {
            Some(Value::Object(map)) => map,
            Some(other) => {
                return fail(EnvelopeError::WrongType {
                    field: "formdata",
                    expected: "un objet",
                    got: type_name(&other),
                })
            }
            None => return fail(EnvelopeError::Missing("formdata")),
        };
        Ok(Self {
            id,
            commune,
            form,
            submitted_at,
            formdata: std::sync::Arc::new(formdata),
        })
    }

    /// `submitted_at` as the contract writes it (RFC 3339).
    pub fn submitted_at_text(&self) -> String {
        self.submitted_at.format(&Rfc3339).unwrap_or_default()
    }

    /// The envelope as JSON, as the contract writes it, its form data moved out of it
    /// (copied only if it is shared): `formdata` is left empty.
    pub fn take_value(&mut self) -> Value {
        let formdata = std::mem::take(&mut self.formdata);
        let formdata =
            std::sync::Arc::try_unwrap(formdata).unwrap_or_else(|shared| (*shared).clone());
        let mut object = Map::with_capacity(5);
        object.insert("id".into(), Value::String(self.id.clone()));
        object.insert("commune".into(), Value::String(self.commune.to_string()));
        object.insert("form".into(), Value::String(self.form.to_string()));
        object.insert(
            "submitted_at".into(),
            Value::String(self.submitted_at_text()),
        );
        object.insert("formdata".into(), Value::Object(formdata));
        Value::Object(object)
    }

    /// The envelope as JSON, as the contract writes it.
    pub fn to_value(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "commune": self.commune,
            "form": self.form,
            "submitted_at": self.submitted_at_text(),
            "formdata": &*self.formdata,
        })
    }
}

fn take_string(
    object: &mut Map<String, Value>,
    field: &'static str,
) -> Result<String, EnvelopeError> {
    match object.remove(field) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(EnvelopeError::WrongType {
            field,
            expected: "un texte",
            got: type_name(&other),
        }),
        None => Err(EnvelopeError::Missing(field)),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "un booléen",
        Value::Number(_) => "un nombre",
        Value::String(_) => "un texte",
        Value::Array(_) => "un tableau",
        Value::Object(_) => "un objet",
    }
}

/// Values from outside are quoted in reasons, but bounded.
fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.escape_debug().to_string()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{}…", head.escape_debug())
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    fn valid() -> Value {
        serde_json::json!({
            "id": "clisson-sevre-maine:demande-acte-naissance:42",
            "commune": "44043",
            "form": "demande-acte-naissance",
            "submitted_at": "2026-11-28T10:12:00+01:00",
            "formdata": {"id": 42, "fields": {"nom": "Durand"}}
        })
    }

    fn parse(value: &Value) -> Result<Envelope, (EnvelopeError, Salvage)> {
        Envelope::parse(value.to_string().as_bytes(), 1 << 20).map_err(|r| (r.error, r.salvage))
    }

    fn parse_bytes(body: &[u8], max: usize) -> Result<Envelope, (EnvelopeError, Salvage)> {
        Envelope::parse(body, max).map_err(|r| (r.error, r.salvage))
    }

    #[test]
    fn the_display_id_is_read_as_text_when_there_is_one() {
        let mut value = valid();
        assert_eq!(parse(&value).unwrap().display_id(), None);
        value["formdata"]["display_id"] = " 12-42 ".into();
        assert_eq!(
            parse(&value).unwrap().display_id().as_deref(),
            Some("12-42")
        );
        value["formdata"]["display_id"] = 1242.into();
        assert_eq!(parse(&value).unwrap().display_id().as_deref(), Some("1242"));
        value["formdata"]["display_id"] = "x".repeat(65).into();
        assert_eq!(parse(&value).unwrap().display_id(), None);
    }

    #[test]
    fn a_valid_envelope_parses() {
        let envelope = parse(&valid()).unwrap();
        assert_eq!(envelope.commune, "44043");
        assert_eq!(envelope.formdata["id"], 42);
        assert_eq!(
            envelope.to_value()["submitted_at"],
            "2026-11-28T10:12:00+01:00"
        );
    }

    #[test]
    fn each_defect_has_its_reason() {
        let cases: Vec<(Value, &str)> = vec![
            (
                serde_json::json!([1]),
                "doit être un objet JSON, reçu un tableau",
            ),
            (
                {
                    let mut v = valid();
                    v.as_object_mut().unwrap().remove("id");
                    v
                },
                "`id` de l'enveloppe manque",
            ),
            (
                {
                    let mut v = valid();
                    v["id"] = 7.into();
                    v
                },
                "`id` de l'enveloppe doit être un texte, reçu un nombre",
            ),
            (
                {
                    let mut v = valid();
                    v["commune"] = "Clisson".into();
                    v
                },
                "`Clisson` n'est pas un code INSEE de 5 caractères",
            ),
            (
                {
                    let mut v = valid();
                    v["form"] = "../x".into();
                    v
                },
                "n'est pas un identifiant de formulaire",
            ),
            (
                {
                    let mut v = valid();
                    v["submitted_at"] = "28/11/2026".into();
                    v
                },
                "n'est pas une date-heure RFC 3339",
            ),
            (
                {
                    let mut v = valid();
                    v["formdata"] = "x".into();
                    v
                },
                "`formdata` de l'enveloppe doit être un objet, reçu un texte",
            ),
        ];
        for (value, expected) in cases {
            let (error, _) = parse(&value).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "{error} !~ {expected}"
            );
        }
    }

    #[test]
    fn the_id_is_salvaged_from_an_invalid_envelope() {
        let mut value = valid();
        value["commune"] = "nowhere".into();
        let (_, salvage) = parse(&value).unwrap_err();
        assert_eq!(
            salvage.id.as_deref(),
            Some("clisson-sevre-maine:demande-acte-naissance:42")
        );
        assert_eq!(salvage.form.as_deref(), Some("demande-acte-naissance"));
    }

    #[test]
    fn hostile_bodies_are_refused_without_panic() {
        let (error, _) = parse_bytes(b"\xff\xfe{}", 100).unwrap_err();
        assert_eq!(error, EnvelopeError::NotUtf8 { offset: 0 });
        let (error, _) = parse_bytes(b"{\"id\": ", 100).unwrap_err();
        assert!(matches!(error, EnvelopeError::InvalidJson(_)));
        let deep = "[".repeat(100_000);
        let (error, _) = parse_bytes(deep.as_bytes(), 1 << 20).unwrap_err();
        assert!(error.to_string().contains("recursion limit"), "{error}");
        let (error, _) = parse_bytes(&[b' '; 101], 100).unwrap_err();
        assert_eq!(
            error,
            EnvelopeError::TooLarge {
                size: 101,
                limit: 100
            }
        );
    }
}
