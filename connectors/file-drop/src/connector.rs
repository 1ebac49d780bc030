//! The `file-drop` connector: writes each document as a JSON file, atomically and at most
//! once per name.

use std::sync::Arc;

use aiguillage_connector::{
    async_trait, ConfigError, Connector, ConnectorError, Context, Document, Receipt, Setup,
};

use crate::name::{Template, Values};
use crate::transport::{self, Published, Transport};
use crate::FileDropConfig;

/// Delivers démarches as JSON files into a directory. Built from a [`FileDropConfig`].
///
/// Each file is written under a hidden temporary name, synced, then published under its
/// final name with a hard link, which never replaces an existing file: a consumer never
/// sees a partial file, and a file is never overwritten. Delivering the same envelope
/// again finds the same name with the same bytes and succeeds without writing; a
/// different document under an existing name is refused as a permanent failure.
///
/// If the consumer removes a file before a redelivery of its envelope, the redelivery
/// writes it again: the directory cannot remember what it no longer holds.
#[derive(Debug)]
pub struct FileDropConnector {
    transport: Arc<dyn Transport>,
    template: Template,
    pretty: bool,
}

impl FileDropConnector {
    /// Checks `config` and builds the connector.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on `file_name` for a template that is refused (unknown placeholder,
    /// unbalanced brace, no `{id}`, `/` without `create_subdirectories`, a hidden or too
    /// long name), on `directory` when it is empty, missing, not a directory, not
    /// writable or on a filesystem without hard links, or on an `sftp` key.
    pub fn new(config: FileDropConfig, setup: &Setup) -> Result<Self, ConfigError> {
        let template = Template::parse(&config.file_name, config.create_subdirectories)
            .map_err(|error| ConfigError::invalid("file_name", error.to_string()))?;
        let transport = transport::build(&config.directory, config.sftp, setup)?;
        Ok(Self {
            transport,
            template,
            pretty: config.pretty,
        })
    }

    /// Where the files are dropped: the resolved directory, or `sftp://user@host:port/path`.
    pub fn location(&self) -> String {
        self.transport.location()
    }
}

#[async_trait]
impl Connector for FileDropConnector {
    async fn deliver(&self, document: &Document, ctx: &Context) -> Result<Receipt, ConnectorError> {
        let values = Values {
            id: ctx.envelope_id(),
            commune: ctx.commune(),
            form: ctx.form(),
            connector: ctx.connector(),
        };
        let relative = self
            .template
            .render(&values)
            .map_err(|error| ConnectorError::permanent(error.to_string()))?;
        let bytes = encode(document, self.pretty)?;
        let outcome = self.transport.publish(&relative, bytes).await?;
        ctx.span().in_scope(|| match outcome {
            Published::Written => tracing::debug!(file = %relative, "file dropped"),
            Published::AlreadyThere => {
                tracing::debug!(file = %relative, "file already dropped with the same content");
            }
        });
        Ok(Receipt::with_reference(relative))
    }

    async fn health(&self) -> Result<(), ConnectorError> {
        self.transport.probe().await
    }
}

/// The document as written: JSON, UTF-8, ending with a newline.
fn encode(document: &Document, pretty: bool) -> Result<Vec<u8>, ConnectorError> {
    let encoded = if pretty {
        serde_json::to_vec_pretty(document)
    } else {
        serde_json::to_vec(document)
    };
    let mut bytes = encoded.map_err(|error| {
        ConnectorError::permanent("le document n'a pas pu être encodé en JSON").with_source(error)
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_end_with_a_newline() {
        let document = serde_json::json!({"a": [1, 2]});
        assert_eq!(encode(&document, false).unwrap(), b"{\"a\":[1,2]}\n");
        let pretty = String::from_utf8(encode(&document, true).unwrap()).unwrap();
        assert!(pretty.starts_with("{\n  \"a\": [\n"), "{pretty}");
        assert!(pretty.ends_with("}\n"));
    }
}
