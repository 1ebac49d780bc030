//! The `etat-civil/cityweb` connector: check, encode, publish.

use std::sync::Arc;

use aiguillage_connector::name::{Template, Values};
use aiguillage_connector::transport::{self, Published, Transport};
use aiguillage_connector::{
    async_trait, ConfigError, Connector, ConnectorError, Context, Document, Receipt, Setup,
};

use crate::encode::{encode, EncodeOptions};
use crate::{rules, DemandeActe, EtatCivilConfig};

/// Delivers demandes d'acte as Cityweb XML files. Built from an [`EtatCivilConfig`].
///
/// A delivery reads the document (a permanent failure names the field at fault), checks
/// the legal rules (a permanent failure names the rule), writes the XML and publishes it
/// with the shared file transport: atomically, never replacing a file, and a redelivery of
/// the same envelope finds its file and succeeds without writing a second one.
#[derive(Debug)]
pub struct EtatCivilConnector {
    transport: Arc<dyn Transport>,
    template: Template,
    event_subdirectories: bool,
    options: EncodeOptions,
}

impl EtatCivilConnector {
    /// Checks `config` and builds the connector.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on `file_name` (a template that is refused), on `directory` (empty,
    /// missing or not writable when local) or on an `sftp` key.
    pub fn new(config: EtatCivilConfig, setup: &Setup) -> Result<Self, ConfigError> {
        let template = Template::parse(&config.file_name, true)
            .map_err(|error| ConfigError::invalid("file_name", error.to_string()))?;
        // The software takes imported files away: the journal keeps a redelivery after a
        // crash from writing one again.
        let transport = transport::build_with(&config.directory, config.sftp, setup, true)?;
        Ok(Self {
            transport,
            template,
            event_subdirectories: config.event_subdirectories,
            options: EncodeOptions {
                encoding: config.encoding,
                transliterate: config.transliterate,
            },
        })
    }

    /// Where the files go: the resolved directory, or `sftp://user@host:port/path`.
    pub fn location(&self) -> String {
        self.transport.location()
    }

    /// The file (path relative to the directory) and its bytes for `document`.
    ///
    /// # Errors
    ///
    /// A permanent [`ConnectorError`]: a field that cannot be written, a legal rule that
    /// refuses the request, an `identifiant` that is not the envelope id.
    pub fn prepare(
        &self,
        document: &Document,
        ctx: &Context,
    ) -> Result<(String, Vec<u8>), ConnectorError> {
        let demande = DemandeActe::from_document(document).map_err(|error| {
            ConnectorError::permanent(format!(
                "la demande d'acte ne peut pas être écrite : {error}"
            ))
        })?;
        if demande.identifiant != ctx.envelope_id() {
            return Err(ConnectorError::permanent(format!(
                "la demande d'acte ne peut pas être écrite : champ `identifiant` : `{}` n'est pas l'identifiant de l'enveloppe `{}` (le mapping doit écrire `{{{{ envelope.id }}}}`, pour qu'une nouvelle tentative réécrive le même fichier)",
                demande.identifiant.escape_debug(),
                ctx.envelope_id()
            )));
        }
        rules::check(&demande).map_err(|refusal| ConnectorError::permanent(refusal.to_string()))?;
        let bytes = encode(&demande, self.options).map_err(|error| {
            ConnectorError::permanent(format!(
                "la demande d'acte ne peut pas être écrite : {error}"
            ))
        })?;
        let name = self
            .template
            .render(&Values {
                id: ctx.envelope_id(),
                commune: ctx.commune(),
                form: ctx.form(),
                connector: ctx.connector(),
            })
            .map_err(|error| ConnectorError::permanent(error.to_string()))?;
        let relative = if self.event_subdirectories {
            format!("{}/{name}", demande.evenement.nature_evenement.code())
        } else {
            name
        };
        Ok((relative, bytes))
    }
}

#[async_trait]
impl Connector for EtatCivilConnector {
    fn check(&self, document: &Document, ctx: &Context) -> Result<(), ConnectorError> {
        self.prepare(document, ctx).map(|_| ())
    }

    async fn deliver(&self, document: &Document, ctx: &Context) -> Result<Receipt, ConnectorError> {
        let (relative, bytes) = self.prepare(document, ctx)?;
        let outcome = self.transport.publish(&relative, bytes).await?;
        ctx.span().in_scope(|| match outcome {
            Published::Written => tracing::debug!(file = %relative, "demande d'acte dropped"),
            Published::AlreadyThere => {
                tracing::debug!(file = %relative, "demande d'acte already dropped with the same content");
            }
        });
        Ok(Receipt::with_reference(relative))
    }

    async fn health(&self) -> Result<(), ConnectorError> {
        self.transport.probe().await
    }
}
