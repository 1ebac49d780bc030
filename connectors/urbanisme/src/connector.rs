//! The `urbanisme/dossier` connector: read, validate, package, publish.

use std::path::PathBuf;
use std::sync::Arc;

use aiguillage_connector::transport::{self, Published, Transport};
use aiguillage_connector::{
    async_trait, ConfigError, Connector, ConnectorError, Context, Document, Receipt, Setup,
};

use crate::mail::{Claim, Mailing};
use crate::package::{self, Package, PackageFormat};
use crate::validate::{self, Limits, ValidDossier};
use crate::{Depot, UrbanismeConfig};

/// How packages reach the instruction service, chosen by the configuration.
#[derive(Debug)]
enum Delivery {
    /// The package is published into a directory, locally or over SFTP.
    FileDrop(Arc<dyn Transport>),
    /// The package is attached to a mail, or, when too large, published into the
    /// directory and the mail says where.
    Mail {
        mailing: Box<Mailing>,
        transport: Arc<dyn Transport>,
    },
}

/// Delivers deposits as dossier packages. Built from an [`UrbanismeConfig`].
///
/// A delivery reads the document (a permanent failure names the key), validates it with
/// its attachments (a permanent failure lists every violation), writes the package in a
/// temporary work directory and publishes it: atomically, never replacing a file, and a
/// redelivery of the same envelope finds its identical package and writes nothing.
#[derive(Debug)]
pub struct UrbanismeConnector {
    delivery: Delivery,
    format: PackageFormat,
    limits: Limits,
    work_directory: PathBuf,
}

impl UrbanismeConnector {
    /// Checks `config` and builds the connector.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on `directory` (empty, missing or not writable when local), on an
    /// `sftp` key, on `work_directory` (not a directory) or on a limit of zero.
    pub fn new(config: UrbanismeConfig, setup: &Setup) -> Result<Self, ConfigError> {
        if config.max_piece_bytes == 0 {
            return Err(ConfigError::invalid(
                "max_piece_bytes",
                "doit être supérieur à 0",
            ));
        }
        if config.max_package_bytes == 0 {
            return Err(ConfigError::invalid(
                "max_package_bytes",
                "doit être supérieur à 0",
            ));
        }
        let work_directory = match &config.work_directory {
            Some(directory) => setup.resolve(directory),
            None => std::env::temp_dir(),
        };
        if !work_directory.is_dir() {
            return Err(ConfigError::invalid(
                "work_directory",
                format!(
                    "{} n'est pas un répertoire : le créer, ou retirer la clé pour utiliser le répertoire temporaire du système",
                    work_directory.display()
                ),
            ));
        }
        // The service takes imported packages away: the journal keeps a redelivery after
        // a crash from writing one again.
        let transport = transport::build_with(&config.directory, config.sftp, setup, true)?;
        let delivery = match config.mail {
            None => Delivery::FileDrop(transport),
            Some(mail) => {
                if config.package != PackageFormat::Zip {
                    return Err(ConfigError::invalid(
                        "package",
                        "avec `mail`, le paquet doit être un zip (il est joint au mail) : retirer `package` ou le régler sur \"zip\"",
                    ));
                }
                Delivery::Mail {
                    mailing: Box::new(Mailing::new(mail, setup)?),
                    transport,
                }
            }
        };
        Ok(Self {
            delivery,
            format: config.package,
            limits: Limits {
                max_piece_bytes: config.max_piece_bytes,
                max_package_bytes: config.max_package_bytes,
            },
            work_directory,
        })
    }

    /// Where the packages go: the resolved directory, or `sftp://user@host:port/path`.
    pub fn location(&self) -> String {
        match &self.delivery {
            Delivery::FileDrop(transport) => transport.location(),
            Delivery::Mail { mailing, transport } => format!(
                "{} (paquets trop gros pour être joints : {})",
                mailing.location(),
                transport.location()
            ),
        }
    }

    /// Reads and validates `document` with the context's attachments.
    ///
    /// # Errors
    ///
    /// A permanent [`ConnectorError`]: the key at fault when the document does not have
    /// the deposit's shape, otherwise every violation found.
    pub fn validate<'a>(
        &self,
        document: &Document,
        ctx: &'a Context,
    ) -> Result<ValidDossier<'a>, ConnectorError> {
        let depot = Depot::from_document(document).map_err(|error| {
            ConnectorError::permanent(format!(
                "dossier refusé : le document n'a pas la forme d'un dépôt : {error}"
            ))
        })?;
        validate::validate(
            document,
            depot,
            ctx.envelope_id(),
            ctx.attachments(),
            self.limits,
        )
        .map_err(|violations| ConnectorError::permanent(violations.to_string()))
    }

    /// Writes the package of a validated dossier in a new temporary work directory
    /// (removed when the [`Package`] is dropped).
    ///
    /// # Errors
    ///
    /// A transient [`ConnectorError`] when the work directory cannot be written (full
    /// disk, permissions).
    pub fn package(
        &self,
        document: &Document,
        dossier: &ValidDossier<'_>,
    ) -> Result<Package, ConnectorError> {
        package::build(document, dossier, self.format, &self.work_directory)
            .map_err(|error| ConnectorError::transient(error.to_string()).with_source(error))
    }
}

/// Publishes every file of `package`, in order (a directory's `manifest.json` last), and
/// says whether anything was written. Each file is streamed from the work directory: the
/// package is never held in memory.
async fn publish_package(
    transport: &dyn Transport,
    package: &Package,
) -> Result<Published, ConnectorError> {
    let mut outcome = Published::AlreadyThere;
    for (relative, path) in package.files() {
        if transport.publish_file(&relative, &path).await? == Published::Written {
            outcome = Published::Written;
        }
    }
    Ok(outcome)
}

/// Mails `package`: attached when it is small enough, otherwise published into the
/// directory first (so that the mail never names a package that is not there). A dossier
/// this process has mailed already is not mailed again.
async fn mail_package(
    mailing: &Mailing,
    transport: &dyn Transport,
    dossier: &ValidDossier<'_>,
    package: &Package,
) -> Result<Published, ConnectorError> {
    let guard = match mailing.claim_or_wait(&dossier.dossier).await? {
        Claim::Send(guard) => guard,
        Claim::AlreadySent | Claim::InFlight => return Ok(Published::AlreadyThere),
    };
    let result = async {
        let size = tokio::fs::metadata(package.path())
            .await
            .map_err(|error| {
                ConnectorError::transient(format!(
                    "impossible de lire le paquet {} dans le répertoire de travail : {error}",
                    package.name()
                ))
            })?
            .len();
        if size <= mailing.attach_max_bytes() {
            // At most `attach_max_bytes` (10 MiB by default) in memory: SMTP sends a
            // message whole, and the mail library builds it in memory anyway.
            let bytes = tokio::fs::read(package.path()).await.map_err(|error| {
                ConnectorError::transient(format!(
                    "impossible de lire le paquet {} dans le répertoire de travail : {error}",
                    package.name()
                ))
            })?;
            mailing.send(dossier, package, Some(&bytes), None).await
        } else {
            publish_package(transport, package).await?;
            let location = format!(
                "{}/{}",
                transport.location().trim_end_matches('/'),
                package.name()
            );
            mailing.send(dossier, package, None, Some(&location)).await
        }
    }
    .await;
    guard.settle(result.is_ok());
    result.map(|()| Published::Written)
}

#[async_trait]
impl Connector for UrbanismeConnector {
    fn check(&self, document: &Document, ctx: &Context) -> Result<(), ConnectorError> {
        // The package is not written: only what `validate` refuses is a refusal of the
        // document; a work directory that cannot be written is the machine's problem.
        self.validate(document, ctx).map(|_| ())
    }

    async fn deliver(&self, document: &Document, ctx: &Context) -> Result<Receipt, ConnectorError> {
        let dossier = self.validate(document, ctx)?;
        // Written synchronously: the pièces are borrowed from the context (moving them to
        // a blocking thread would copy them), and the work directory is local.
        let package = self.package(document, &dossier)?;
        let outcome = match &self.delivery {
            Delivery::FileDrop(transport) => publish_package(transport.as_ref(), &package).await?,
            Delivery::Mail { mailing, transport } => {
                mail_package(mailing, transport.as_ref(), &dossier, &package).await?
            }
        };
        ctx.span().in_scope(|| match outcome {
            Published::Written => tracing::debug!(
                dossier = %dossier.dossier,
                package = %package.name(),
                "urbanisme dossier delivered"
            ),
            Published::AlreadyThere => tracing::debug!(
                dossier = %dossier.dossier,
                package = %package.name(),
                "urbanisme dossier already delivered with the same content"
            ),
        });
        // The AEE's data: the portal acknowledges the deposit to the citizen with them.
        Ok(Receipt::with_reference(dossier.dossier.clone())
            .with_detail("dossier", dossier.dossier.clone())
            .with_detail("date_depot", dossier.date_depot.clone()))
    }

    async fn health(&self) -> Result<(), ConnectorError> {
        match &self.delivery {
            Delivery::FileDrop(transport) => transport.probe().await,
            Delivery::Mail { mailing, transport } => {
                mailing.probe().await?;
                transport.probe().await
            }
        }
    }
}
