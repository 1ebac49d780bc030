use std::time::Duration;

/// A boxed error, the `source` of a [`ConnectorError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a delivery failed, and so what the gateway does with the démarche.
///
/// The variant is the decision; the message is for the operator (it appears in status
/// events, the store and the dead letters): say what the target answered and what would
/// fix it, never a secret or the document itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// A failure that may go away by itself (timeout, connection refused, HTTP 5xx, full
    /// disk): the gateway retries later with backoff.
    #[error("{message}")]
    Transient {
        /// What happened, for the operator.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A failure that the same document will always meet (refused as invalid, unknown
    /// commune, mapping error): the démarche goes to the dead letters at once.
    #[error("{message}")]
    Permanent {
        /// What happened, for the operator.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The target asked to be called again after a delay (HTTP 429 or 503 with
    /// `Retry-After`): retried like a transient failure, not before `after`.
    #[error("{message} (nouvel essai dans {} s)", after.as_secs())]
    RetryAfter {
        /// What happened, for the operator.
        message: String,
        /// The delay the target asked for.
        after: Duration,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl ConnectorError {
    /// A transient failure: it will be retried.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient {
            message: message.into(),
            source: None,
        }
    }

    /// A permanent failure: the démarche goes to the dead letters.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent {
            message: message.into(),
            source: None,
        }
    }

    /// A failure to retry no sooner than `after`.
    pub fn retry_after(message: impl Into<String>, after: Duration) -> Self {
        Self::RetryAfter {
            message: message.into(),
            after,
            source: None,
        }
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, error: impl Into<BoxError>) -> Self {
        let slot = match &mut self {
            Self::Transient { source, .. }
            | Self::Permanent { source, .. }
            | Self::RetryAfter { source, .. } => source,
        };
        *slot = Some(error.into());
        self
    }

    /// True when retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent { .. })
    }

    /// The delay the target asked for, if it asked for one.
    pub fn retry_after_delay(&self) -> Option<Duration> {
        match self {
            Self::RetryAfter { after, .. } => Some(*after),
            _ => None,
        }
    }

    /// The message with its chain of sources, on one line (`message : cause : cause`, with
    /// the space French puts before a colon: this is the reason a commune agent reads).
    pub fn report(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(error) = source {
            let text = error.to_string();
            if !out.contains(&text) {
                out.push_str(" : ");
                out.push_str(&text);
            }
            source = error.source();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_the_variant() {
        assert!(ConnectorError::permanent("refused").is_permanent());
        assert!(!ConnectorError::transient("timeout").is_permanent());
        let later = ConnectorError::retry_after("busy", Duration::from_secs(30));
        assert!(!later.is_permanent());
        assert_eq!(later.retry_after_delay(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn the_retry_delay_is_told_in_french() {
        // The message becomes a status-event `error` a commune agent reads.
        let later = ConnectorError::retry_after("cible occupée", Duration::from_secs(30));
        assert_eq!(later.to_string(), "cible occupée (nouvel essai dans 30 s)");
    }

    #[test]
    fn report_includes_the_sources_once() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device");
        let error = ConnectorError::transient("le fichier n'a pas pu être écrit").with_source(io);
        assert_eq!(
            error.report(),
            "le fichier n'a pas pu être écrit : no space left on device"
        );
    }
}
