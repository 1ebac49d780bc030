//! Mapping: from an envelope to the document a connector delivers.
//!
//! For now every route uses the identity mapping (the whole envelope); the declarative
//! mapping engine plugs in here. Attachments (w.c.s. file fields: `filename`,
//! `content_type`, base64 `content`) are decoded for the connector in every case.

use aiguillage_connector::{Attachment, Document};
use base64::Engine as _;
use serde_json::Value;

use crate::envelope::Envelope;

/// A mapped démarche, ready for its connector.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The document to deliver.
    pub document: Document,
    /// The démarche's files.
    pub attachments: Vec<Attachment>,
}

/// A démarche this mapping cannot turn into a document: a permanent failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// A file field's content is not base64.
    #[error("file field `{field}`: content is not valid base64 ({reason})")]
    BadAttachment {
        /// The form field.
        field: String,
        /// Why.
        reason: String,
    },
}

/// The identity mapping: the document is the envelope as published.
///
/// # Errors
///
/// [`MappingError`] when a file field cannot be decoded.
pub fn identity(envelope: &Envelope) -> Result<Mapped, MappingError> {
    Ok(Mapped {
        document: envelope.to_value(),
        attachments: attachments(envelope)?,
    })
}

/// The file fields of the démarche (`formdata.fields.<name>` objects with `filename`,
/// `content_type` and `content`), decoded.
///
/// # Errors
///
/// [`MappingError::BadAttachment`] naming the field whose content is not base64.
pub fn attachments(envelope: &Envelope) -> Result<Vec<Attachment>, MappingError> {
    let Some(Value::Object(fields)) = envelope.formdata.get("fields") else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    for (name, value) in fields {
        let Value::Object(file) = value else { continue };
        let (Some(Value::String(filename)), Some(Value::String(content))) =
            (file.get("filename"), file.get("content"))
        else {
            continue;
        };
        let content_type = file
            .get("content_type")
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream");
        // w.c.s. may wrap long base64 lines.
        let compact: String = content
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|error| MappingError::BadAttachment {
                field: name.clone(),
                reason: error.to_string(),
            })?;
        files.push(Attachment::new(
            name.clone(),
            filename.clone(),
            content_type,
            bytes,
        ));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(fields: Value) -> Envelope {
        let body = serde_json::json!({
            "id": "p:f:1", "commune": "44043", "form": "f",
            "submitted_at": "2026-11-28T10:12:00+01:00",
            "formdata": {"fields": fields}
        });
        Envelope::parse(body.to_string().as_bytes(), 1 << 20).expect("valid")
    }

    #[test]
    fn file_fields_become_attachments() {
        let mapped = identity(&envelope(serde_json::json!({
            "nom": "Durand",
            "justificatif": {"filename": "id.pdf", "content_type": "application/pdf", "content": "JVBE\nRi0x"}
        })))
        .unwrap();
        assert_eq!(mapped.attachments.len(), 1);
        assert_eq!(mapped.attachments[0].content, b"%PDF-1");
        assert_eq!(mapped.attachments[0].field, "justificatif");
        assert_eq!(mapped.document["formdata"]["fields"]["nom"], "Durand");
    }

    #[test]
    fn bad_base64_names_the_field() {
        let error = identity(&envelope(serde_json::json!({
            "justificatif": {"filename": "id.pdf", "content_type": "application/pdf", "content": "@@@"}
        })))
        .unwrap_err();
        assert!(
            error.to_string().starts_with("file field `justificatif`"),
            "{error}"
        );
    }
}
