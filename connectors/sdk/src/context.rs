use std::fmt;
use std::sync::Arc;

use crate::holding::Holding;
use crate::numbering::Numbering;
use crate::ConnectorError;

/// What a connector knows about the démarche it delivers, besides the document.
#[derive(Debug, Clone)]
pub struct Context {
    envelope_id: String,
    commune: String,
    form: String,
    connector: String,
    attempt: u32,
    attachments: Vec<Attachment>,
    span: tracing::Span,
    numbering: Option<Arc<dyn Numbering>>,
    holding: Option<Arc<dyn Holding>>,
}

impl Context {
    /// A context for the first attempt at delivering envelope `envelope_id`.
    pub fn new(
        envelope_id: impl Into<String>,
        commune: impl Into<String>,
        form: impl Into<String>,
        connector: impl Into<String>,
    ) -> Self {
        Self {
            envelope_id: envelope_id.into(),
            commune: commune.into(),
            form: form.into(),
            connector: connector.into(),
            attempt: 1,
            attachments: Vec::new(),
            span: tracing::Span::none(),
            numbering: None,
            holding: None,
        }
    }

    /// Sets the attempt number (1 for the first delivery).
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt.max(1);
        self
    }

    /// Sets the attachments (the démarche's files).
    #[must_use]
    pub fn with_attachments(mut self, attachments: Vec<Attachment>) -> Self {
        self.attachments = attachments;
        self
    }

    /// Sets the tracing span of this delivery.
    #[must_use]
    pub fn with_span(mut self, span: tracing::Span) -> Self {
        self.span = span;
        self
    }

    /// Sets the durable numbering (the gateway gives its store's).
    #[must_use]
    pub fn with_numbering(mut self, numbering: Arc<dyn Numbering>) -> Self {
        self.numbering = Some(numbering);
        self
    }

    /// Sets the durable holding of items for later batches (the gateway gives its store's,
    /// scoped to the connector).
    #[must_use]
    pub fn with_holding(mut self, holding: Arc<dyn Holding>) -> Self {
        self.holding = Some(holding);
        self
    }

    /// The durable holding of items for later batches (see [`crate::holding`]).
    ///
    /// # Errors
    ///
    /// [`ConnectorError::Permanent`] when the host gave none: the gateway always does.
    pub fn holding(&self) -> Result<&dyn Holding, ConnectorError> {
        self.holding.as_deref().ok_or_else(|| {
            ConnectorError::permanent(
                "ce connecteur met de côté ce qu'il livre pour des lots ultérieurs, mais aucune mise en attente ne lui a été fournie",
            )
        })
    }

    /// The durable sequences of numbers kept by the gateway (see [`crate::numbering`]).
    ///
    /// # Errors
    ///
    /// [`ConnectorError::Permanent`] when the host gave none (a test harness that did not
    /// call [`Context::with_numbering`]): the gateway always does.
    pub fn numbering(&self) -> Result<&dyn Numbering, ConnectorError> {
        self.numbering.as_deref().ok_or_else(|| {
            ConnectorError::permanent(
                "ce connecteur numérote ce qu'il livre, mais aucune numérotation ne lui a été fournie",
            )
        })
    }

    /// The envelope id: globally unique, stable across redeliveries.
    pub fn envelope_id(&self) -> &str {
        &self.envelope_id
    }

    /// The key the target must use to apply this démarche once: the envelope id.
    pub fn idempotency_key(&self) -> &str {
        &self.envelope_id
    }

    /// The commune's 5-character INSEE code.
    pub fn commune(&self) -> &str {
        &self.commune
    }

    /// The portal's form slug.
    pub fn form(&self) -> &str {
        &self.form
    }

    /// The name of the connector instance (its `[[connectors]]` `name`).
    pub fn connector(&self) -> &str {
        &self.connector
    }

    /// The attempt number, 1 for the first delivery.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The démarche's files.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    /// The tracing span of this delivery (envelope id, commune, form, connector, attempt):
    /// events logged inside it carry those fields.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }
}

/// A file of the démarche (a w.c.s. file field), decoded.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attachment {
    /// The form field it comes from.
    pub field: String,
    /// The file name the citizen gave (untrusted: never use it as a path as is).
    pub filename: String,
    /// The declared content type, e.g. `application/pdf`.
    pub content_type: String,
    /// The file's bytes.
    pub content: Vec<u8>,
}

impl Attachment {
    /// An attachment from its field, file name, content type and bytes.
    pub fn new(
        field: impl Into<String>,
        filename: impl Into<String>,
        content_type: impl Into<String>,
        content: Vec<u8>,
    ) -> Self {
        Self {
            field: field.into(),
            filename: filename.into(),
            content_type: content_type.into(),
            content,
        }
    }
}

// The content is never printed: it may be a scanned identity document.
impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("field", &self.field)
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("len", &self.content.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_debug_does_not_print_the_content() {
        let file = Attachment::new("piece", "id.pdf", "application/pdf", b"SECRET".to_vec());
        let text = format!("{file:?}");
        assert!(text.contains("len: 6"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn attempt_is_at_least_one() {
        let ctx = Context::new("a:b:1", "44043", "f", "c").with_attempt(0);
        assert_eq!(ctx.attempt(), 1);
        assert_eq!(ctx.idempotency_key(), "a:b:1");
    }
}
