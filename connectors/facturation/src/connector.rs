//! The `facturation/pes` connector: check, number, encode, publish.

use std::sync::Arc;

use aiguillage_connector::holding::{FlushContext, Flushed, FlushedBatch, Held};
use aiguillage_connector::siret;
use aiguillage_connector::{
    async_trait, Attachment, ConfigError, Connector, ConnectorError, Context, Document, Receipt,
    Setup,
};
use aiguillage_connector_file_drop::name::{Template, Values};
use aiguillage_connector_file_drop::transport::{self, Published, Transport};

use crate::encode::{encode, Bordereau, Collectivite, EncodeOptions, Piece, PieceJointe};
use crate::grouping::{self, Plan};
use crate::{PesConfig, Titre};

/// How long a flush keeps its claim on a batch before another instance may take it over.
const LEASE: std::time::Duration = std::time::Duration::from_secs(300);

/// How often the gateway asks a grouping connector to write the batches that are due.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Delivers titres de recette as PES V2 files. Built from a [`PesConfig`].
///
/// A delivery reads and checks the titre (a permanent failure names the field and the
/// Treasury's rule), takes its bordereau and titre numbers from the gateway's durable
/// numbering (the same numbers on every retry of the envelope), writes the PES file and
/// publishes it with the shared file transport: atomically, never replacing a file, and a
/// redelivery of the same envelope finds its file and succeeds without writing another.
#[derive(Debug)]
pub struct PesConnector {
    transport: Arc<dyn Transport>,
    file_name: String,
    collectivite: Collectivite,
    options: EncodeOptions,
    pj_attachment: Option<String>,
    pj_max_bytes: usize,
    grouping: Option<Plan>,
}

impl PesConnector {
    /// Checks `config` and builds the connector.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on `id_coll` (not a SIRET), `cod_col`, `cod_bud`, `id_post`,
    /// `libelle`, `file_name`, `directory` (empty, missing or not writable when local) or
    /// an `sftp` key.
    pub fn new(config: PesConfig, setup: &Setup) -> Result<Self, ConfigError> {
        if !siret::is_valid(&config.id_coll) {
            return Err(ConfigError::invalid(
                "id_coll",
                format!(
                    "`{}` n'est pas un SIRET (14 chiffres dont la clé est juste) : recopier sans espaces le SIRET de la collectivité du budget tel que le Trésor l'a enregistré",
                    config.id_coll.escape_debug()
                ),
            ));
        }
        let alphanumeric = |text: &str| text.bytes().all(|b| b.is_ascii_alphanumeric());
        if config.cod_col.is_empty()
            || config.cod_col.len() > 3
            || !alphanumeric(&config.cod_col)
            || config.cod_col.bytes().all(|b| b == b'0')
        {
            return Err(ConfigError::invalid(
                "cod_col",
                format!(
                    "`{}` : le code collectivité compte 1 à 3 lettres ou chiffres, pas seulement des zéros, tel que le Trésor l'a attribué",
                    config.cod_col.escape_debug()
                ),
            ));
        }
        if config.cod_bud.is_empty() || config.cod_bud.len() > 2 || !alphanumeric(&config.cod_bud) {
            return Err(ConfigError::invalid(
                "cod_bud",
                format!(
                    "`{}` : le code budget compte 1 ou 2 lettres ou chiffres (`00` pour le budget principal)",
                    config.cod_bud.escape_debug()
                ),
            ));
        }
        if config.id_post.is_empty() || config.id_post.len() > 7 || !alphanumeric(&config.id_post) {
            return Err(ConfigError::invalid(
                "id_post",
                format!(
                    "`{}` : le codique du poste comptable compte au plus 7 lettres ou chiffres, par exemple 044012",
                    config.id_post.escape_debug()
                ),
            ));
        }
        if let Some(libelle) = &config.libelle {
            let length = libelle.chars().count();
            if length == 0 || length > 38 || libelle.chars().any(char::is_control) {
                return Err(ConfigError::invalid(
                    "libelle",
                    "le libellé de la collectivité et du budget compte 1 à 38 caractères sur une seule ligne",
                ));
            }
        }
        if config
            .pj_attachment
            .as_ref()
            .is_some_and(|name| name.trim().is_empty())
        {
            return Err(ConfigError::invalid(
                "pj_attachment",
                "vide : nommer la pièce jointe qui est le PDF de la facture (telle que le mapping la transmet, par exemple `facture`), ou retirer la clé",
            ));
        }
        if config.pj_max_bytes == 0 {
            return Err(ConfigError::invalid(
                "pj_max_bytes",
                "0 : la taille maximale, en octets, d'un PDF joint en PJ (5242880 par défaut)",
            ));
        }
        let grouping = match &config.grouping {
            None => None,
            Some(grouping) => {
                if config.pj_attachment.is_some() {
                    return Err(ConfigError::invalid(
                        "grouping",
                        "les titres regroupés ne peuvent pas encore porter leur PDF (`pj_attachment`) : retirer l'un des deux",
                    ));
                }
                Some(
                    Plan::new(grouping)
                        .map_err(|reason| ConfigError::invalid("grouping", reason))?,
                )
            }
        };
        let sample = numbered_name(&config.file_name, 2026, 1);
        Template::parse(&sample, true)
            .map_err(|error| ConfigError::invalid("file_name", error.to_string()))?;
        // The software takes imported files away: the journal keeps a redelivery after a
        // crash from writing one again.
        let transport = transport::build_with(&config.directory, config.sftp, setup, true)?;
        Ok(Self {
            transport,
            file_name: config.file_name,
            collectivite: Collectivite {
                id_coll: config.id_coll,
                cod_col: config.cod_col,
                cod_bud: config.cod_bud,
                id_post: config.id_post,
                libelle: config.libelle,
            },
            options: EncodeOptions {
                encoding: config.encoding,
                transliterate: config.transliterate,
            },
            pj_attachment: config.pj_attachment,
            pj_max_bytes: config.pj_max_bytes,
            grouping,
        })
    }

    /// Where the files go: the resolved directory, or `sftp://user@host:port/path`.
    pub fn location(&self) -> String {
        self.transport.location()
    }

    /// The numbering sequence of bordereaux for `exercice`: one per collectivité, budget
    /// and year, as the Treasury checks them.
    pub fn bordereau_sequence(&self, exercice: u16) -> String {
        format!(
            "pes/bordereau/{}/{}/{exercice}",
            self.collectivite.id_coll, self.collectivite.cod_bud
        )
    }

    /// The numbering sequence of titres for `exercice`.
    pub fn titre_sequence(&self, exercice: u16) -> String {
        format!(
            "pes/titre/{}/{}/{exercice}",
            self.collectivite.id_coll, self.collectivite.cod_bud
        )
    }

    /// Reads and checks the titre of `document`.
    ///
    /// # Errors
    ///
    /// A permanent [`ConnectorError`] naming the field at fault.
    pub fn read(&self, document: &Document, ctx: &Context) -> Result<Titre, ConnectorError> {
        let titre = Titre::from_document(document).map_err(|error| {
            ConnectorError::permanent(format!(
                "le titre de recette ne peut pas être émis : {error}"
            ))
        })?;
        if titre.reference != ctx.envelope_id() {
            return Err(ConnectorError::permanent(format!(
                "le titre de recette ne peut pas être émis : champ `reference` : `{}` n'est pas l'identifiant de l'enveloppe `{}` (le mapping doit écrire `{{{{ envelope.id }}}}`, pour qu'une nouvelle tentative émette le même titre)",
                titre.reference.escape_debug(),
                ctx.envelope_id()
            )));
        }
        Ok(titre)
    }

    /// The bill's PDF to embed as `PES_PJ`, when `pj_attachment` is set and the démarche
    /// has that attachment.
    ///
    /// # Errors
    ///
    /// A permanent [`ConnectorError`] when the attachment is not a PDF (by its declared
    /// type and by its bytes) or is larger than `pj_max_bytes`.
    pub fn pdf<'c>(&self, ctx: &'c Context) -> Result<Option<&'c Attachment>, ConnectorError> {
        let Some(name) = &self.pj_attachment else {
            return Ok(None);
        };
        let Some(file) = ctx.attachments().iter().find(|a| &a.field == name) else {
            return Ok(None);
        };
        let refuse = |reason: String| {
            ConnectorError::permanent(format!(
                "le titre de recette ne peut pas être émis : pièce jointe `{name}` ({}) : {reason}",
                file.filename.escape_debug()
            ))
        };
        if !file.content_type.eq_ignore_ascii_case("application/pdf")
            || !file.content.starts_with(b"%PDF-")
        {
            return Err(refuse(format!(
                "déclarée `{}`, et {} : la pièce justificative PES d'une facture doit être un PDF (corriger le workflow qui la produit, ou retirer `pj_attachment`)",
                file.content_type.escape_debug(),
                if file.content.starts_with(b"%PDF-") {
                    "son contenu est un PDF"
                } else {
                    "son contenu n'est pas un PDF"
                }
            )));
        }
        if file.content.len() > self.pj_max_bytes {
            return Err(refuse(format!(
                "{} octets, plus que les {} de `pj_max_bytes`",
                file.content.len(),
                self.pj_max_bytes
            )));
        }
        Ok(Some(file))
    }

    /// The piece justificative of titre `id_pce` made of `pdf`: its `IdUnique` names the
    /// collectivité, budget, exercice and titre, so it is unique for the Treasury and the
    /// same on every retry.
    pub fn piece_jointe(&self, titre: &Titre, id_pce: u64, pdf: &Attachment) -> PieceJointe {
        let exercice = titre.exercice();
        PieceJointe {
            id_unique: format!(
                "{}B{}E{exercice:04}T{id_pce:08}",
                self.collectivite.id_coll, self.collectivite.cod_bud
            ),
            nom: pj_name(&pdf.filename, exercice, id_pce),
            description: titre.objet.clone(),
            mime_type: "application/pdf".into(),
            content: pdf.content.clone(),
        }
    }

    /// The file (path relative to the directory) and its bytes for `titre`, numbered
    /// `id_bord` and `id_pce`, with its PDF embedded when there is one.
    ///
    /// # Errors
    ///
    /// A permanent [`ConnectorError`]: a text that cannot be written, a number beyond the
    /// PES's digits.
    pub fn prepare(
        &self,
        titre: &Titre,
        id_bord: u64,
        id_pce: u64,
        pdf: Option<&Attachment>,
        ctx: &Context,
    ) -> Result<(String, Vec<u8>), ConnectorError> {
        let exercice = titre.exercice();
        let (relative, nom_fic) = self.name(
            exercice,
            id_bord,
            &Values {
                id: ctx.envelope_id(),
                commune: ctx.commune(),
                form: ctx.form(),
                connector: ctx.connector(),
            },
        )?;
        let pj = pdf.map(|pdf| self.piece_jointe(titre, id_pce, pdf));
        let bordereau = Bordereau {
            nom_fic,
            exercice,
            id_bord,
            date: titre.date_emission.clone(),
            pieces: vec![Piece {
                id_pce,
                titre,
                pj: pj.as_ref(),
            }],
        };
        let bytes = encode(&self.collectivite, &bordereau, self.options).map_err(|error| {
            ConnectorError::permanent(format!(
                "le titre de recette ne peut pas être émis : {error}"
            ))
        })?;
        Ok((relative, bytes))
    }
}

impl PesConnector {
    /// The file's path relative to the directory, and its `NomFic`.
    fn name(
        &self,
        exercice: u16,
        id_bord: u64,
        values: &Values<'_>,
    ) -> Result<(String, String), ConnectorError> {
        let template = Template::parse(&numbered_name(&self.file_name, exercice, id_bord), true)
            .map_err(|error| ConnectorError::permanent(error.to_string()))?;
        let relative = template
            .render(values)
            .map_err(|error| ConnectorError::permanent(error.to_string()))?;
        let nom_fic = relative.rsplit('/').next().unwrap_or(&relative);
        let nom_fic: String = nom_fic.chars().take(100).collect();
        Ok((relative, nom_fic))
    }

    /// Holds the checked `titre` for its bordereau: numbered (`IdPce`) now, written by a
    /// later flush.
    async fn hold(
        &self,
        plan: &Plan,
        titre: &Titre,
        document: &Document,
        ctx: &Context,
    ) -> Result<Receipt, ConnectorError> {
        let exercice = titre.exercice();
        let id_pce = ctx
            .numbering()?
            .number(&self.titre_sequence(exercice), ctx.envelope_id())
            .await?;
        let batch = plan.batch(exercice, id_pce, time::OffsetDateTime::now_utc());
        let held = Held {
            owner: ctx.envelope_id().to_owned(),
            commune: ctx.commune().to_owned(),
            form: ctx.form().to_owned(),
            item: serde_json::json!({ "document": document, "id_pce": id_pce }),
        };
        let holding = ctx.holding()?;
        let holder = match holding.hold(&batch, &held).await {
            Ok(holder) => holder,
            // Sealed while this titre was on its way (a retry): the late batch.
            Err(_) => {
                holding
                    .hold(&format!("{batch}{}", grouping::LATE), &held)
                    .await?
            }
        };
        ctx.span().in_scope(|| {
            tracing::debug!(batch = %holder, titre = id_pce, "titre de recette held for its bordereau");
        });
        Ok(Receipt::held())
    }

    /// Writes the bordereau of the sealed `batch` holding `items`.
    async fn write_batch(
        &self,
        batch: &str,
        items: &[Held],
        ctx: &FlushContext,
    ) -> Result<FlushedBatch, ConnectorError> {
        let broken = |owner: &str, reason: String| {
            ConnectorError::permanent(format!(
                "lot `{batch}` : le titre retenu pour `{owner}` est illisible : {reason}"
            ))
        };
        let mut titres = Vec::with_capacity(items.len());
        for held in items {
            let titre = Titre::from_document(&held.item["document"])
                .map_err(|error| broken(&held.owner, error.to_string()))?;
            let id_pce = held.item["id_pce"]
                .as_u64()
                .ok_or_else(|| broken(&held.owner, "pas d'`id_pce`".into()))?;
            titres.push((id_pce, titre, held));
        }
        titres.sort_by_key(|(id_pce, _, _)| *id_pce);
        let Some((_, first, first_held)) = titres.first() else {
            return Ok(FlushedBatch {
                batch: batch.to_owned(),
                demarches: Vec::new(),
            });
        };
        let exercice = grouping::exercice_of(batch).unwrap_or_else(|| first.exercice());
        // One bordereau number per batch, the same on every retry of the flush.
        let id_bord = ctx
            .numbering()
            .number(&self.bordereau_sequence(exercice), &format!("lot:{batch}"))
            .await?;
        let id = format!("lot-{batch}");
        let (relative, nom_fic) = self.name(
            exercice,
            id_bord,
            &Values {
                id: &id,
                commune: &first_held.commune,
                form: &first_held.form,
                connector: ctx.connector(),
            },
        )?;
        let date = titres
            .iter()
            .map(|(_, titre, _)| titre.date_emission.clone())
            .max()
            .unwrap_or_default();
        let bordereau = Bordereau {
            nom_fic,
            exercice,
            id_bord,
            date,
            pieces: titres
                .iter()
                .map(|(id_pce, titre, _)| Piece {
                    id_pce: *id_pce,
                    titre,
                    pj: None,
                })
                .collect(),
        };
        let bytes = encode(&self.collectivite, &bordereau, self.options).map_err(|error| {
            ConnectorError::permanent(format!("le lot `{batch}` ne peut pas être écrit : {error}"))
        })?;
        self.transport.publish(&relative, bytes).await?;
        tracing::info!(file = %relative, exercice, bordereau = id_bord, titres = titres.len(), "bordereau of grouped titres dropped");
        Ok(FlushedBatch {
            batch: batch.to_owned(),
            demarches: titres
                .iter()
                .map(|(id_pce, _, held)| Flushed {
                    owner: held.owner.clone(),
                    commune: held.commune.clone(),
                    form: held.form.clone(),
                    reference: Some(format!("{exercice}-B{id_bord}-T{id_pce}")),
                })
                .collect(),
        })
    }
}

/// `NomPJ`: the attachment's own name when it is a plain `….pdf` name of at most 100
/// characters (the portal names its bills `facture-32-1204.pdf`), else
/// `titre-{exercice}-{id_pce}.pdf`. The name comes from outside: no path, no control
/// character, nothing outside ISO-8859-1.
fn pj_name(filename: &str, exercice: u16, id_pce: u64) -> String {
    let base = filename.rsplit(['/', '\\']).next().unwrap_or("");
    let plain = base.chars().count() <= 100
        && base.len() > 4
        && base.to_ascii_lowercase().ends_with(".pdf")
        && !base.starts_with('.')
        && base
            .chars()
            .all(|c| !c.is_control() && u32::from(c) <= 0xFF && c != '"');
    if plain {
        base.to_owned()
    } else {
        format!("titre-{exercice}-{id_pce}.pdf")
    }
}

/// `template` with `{exercice}` and `{bordereau}` replaced by their digits.
fn numbered_name(template: &str, exercice: u16, id_bord: u64) -> String {
    template
        .replace("{exercice}", &format!("{exercice:04}"))
        .replace("{bordereau}", &format!("{id_bord:07}"))
}

#[async_trait]
impl Connector for PesConnector {
    fn check(&self, document: &Document, ctx: &Context) -> Result<(), ConnectorError> {
        let titre = self.read(document, ctx)?;
        let pdf = self.pdf(ctx)?;
        self.prepare(&titre, 1, 1, pdf, ctx).map(|_| ())
    }

    async fn deliver(&self, document: &Document, ctx: &Context) -> Result<Receipt, ConnectorError> {
        // Every check before any number is taken: a refused titre consumes none.
        let titre = self.read(document, ctx)?;
        let pdf = self.pdf(ctx)?;
        // The texts too: written once with placeholder numbers, so that a titre whose
        // file cannot be written is refused without leaving a gap in the sequences.
        self.prepare(&titre, 1, 1, pdf, ctx)?;
        if let Some(plan) = &self.grouping {
            return self.hold(plan, &titre, document, ctx).await;
        }
        let exercice = titre.exercice();
        let numbering = ctx.numbering()?;
        let id_bord = numbering
            .number(&self.bordereau_sequence(exercice), ctx.envelope_id())
            .await?;
        let id_pce = numbering
            .number(&self.titre_sequence(exercice), ctx.envelope_id())
            .await?;
        let (relative, bytes) = self.prepare(&titre, id_bord, id_pce, pdf, ctx)?;
        let outcome = self.transport.publish(&relative, bytes).await?;
        ctx.span().in_scope(|| match outcome {
            Published::Written => {
                tracing::debug!(file = %relative, exercice, bordereau = id_bord, titre = id_pce, "titre de recette dropped");
            }
            Published::AlreadyThere => {
                tracing::debug!(file = %relative, "titre de recette already dropped with the same content");
            }
        });
        Ok(Receipt::with_reference(format!(
            "{exercice}-B{id_bord}-T{id_pce}"
        )))
    }

    async fn health(&self) -> Result<(), ConnectorError> {
        self.transport.probe().await
    }

    fn flush_every(&self) -> Option<std::time::Duration> {
        self.grouping.as_ref().map(|_| FLUSH_EVERY)
    }

    async fn flush(&self, ctx: &FlushContext) -> Result<Vec<FlushedBatch>, ConnectorError> {
        let Some(plan) = &self.grouping else {
            return Ok(Vec::new());
        };
        let now = time::OffsetDateTime::now_utc();
        let mut written = Vec::new();
        for pending in ctx.holding().pending().await? {
            if !plan.due(&pending, now) {
                continue;
            }
            let Some(items) = ctx.holding().claim(&pending.batch, LEASE).await? else {
                continue;
            };
            match self.write_batch(&pending.batch, &items, ctx).await {
                Ok(batch) => written.push(batch),
                // Kept sealed and tried again at the next flush; the others go on.
                Err(error) => {
                    tracing::warn!(batch = %pending.batch, error = %error.report(), "bordereau not written: tried again");
                }
            }
        }
        Ok(written)
    }
}
