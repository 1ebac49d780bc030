//! Delivery by e-mail: the package attached to a mail to the instruction service, or,
//! above a size limit, dropped in the connector's `directory` and the mail saying where.
//!
//! The mail carries everything an agent needs to register the dossier without opening the
//! package (identifier, type, deposit date, applicants, land, pièces with their SHA-512),
//! and a Message-ID derived from the dossier identifier: every delivery of one envelope
//! sends the same Message-ID, so that a mail sent again after a crash (between the
//! server's acceptance and the gateway's record) is recognisable as the same one.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use aiguillage_connector::mail::{Mail, MailConfig, Mailer};
use aiguillage_connector::{ConfigError, ConnectorError, Setup};
use serde::Deserialize;
use serde_json::Value;

use crate::package::Package;
use crate::tables::Tables;
use crate::validate::ValidDossier;

/// Default of `mail.attach_max_bytes`: 10 MiB, which most mail servers take (their
/// limits are often 20–25 MiB, and base64 adds a third).
pub const DEFAULT_ATTACH_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// How many dossiers a connector remembers having mailed (a few hundred bytes each).
const REMEMBERED: usize = 10_000;

/// The `mail` table of an `urbanisme/dossier` connector: the SMTP server (the SDK's
/// [`MailConfig`] keys), plus `to` and `attach_max_bytes`.
///
/// ```toml
/// [connectors.mail]
/// host = "smtp.agglo.example"
/// user = "aiguillage"
/// password_file = "/etc/aiguillage/smtp-password"
/// from = "Aiguillage <aiguillage@agglo.example>"
/// to = "ads@agglo.example"               # or a list
/// attach_max_bytes = 10485760            # default, 10 MiB
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MailDelivery {
    /// The SMTP server and the sender.
    pub server: MailConfig,
    /// The instruction service's addresses. Required, at least one.
    pub to: Vec<String>,
    /// The largest package attached, in bytes; a larger one is dropped in `directory`.
    pub attach_max_bytes: u64,
}

// `MailConfig` refuses unknown keys; `to` and `attach_max_bytes` are taken out of the table
// first, so that a misspelt key is still refused (serde's `flatten` would ignore it).
impl<'de> Deserialize<'de> for MailDelivery {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = serde_json::Map::<String, Value>::deserialize(deserializer)?;
        let to = match table.remove("to") {
            Some(Value::String(address)) => vec![address],
            Some(Value::Array(addresses)) => addresses
                .into_iter()
                .map(|address| match address {
                    Value::String(address) => Ok(address),
                    other => Err(D::Error::custom(format!(
                        "`to` : une adresse est un texte, pas {other}"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`to` : une adresse ou une liste d'adresses, pas {other}"
                )))
            }
            None => return Err(D::Error::missing_field("to")),
        };
        let attach_max_bytes = match table.remove("attach_max_bytes") {
            None => DEFAULT_ATTACH_MAX_BYTES,
            Some(value) => value.as_u64().ok_or_else(|| {
                D::Error::custom(format!(
                    "`attach_max_bytes` : un nombre d'octets, pas {value}"
                ))
            })?,
        };
        let server = MailConfig::deserialize(Value::Object(table)).map_err(D::Error::custom)?;
        Ok(Self {
            server,
            to,
            attach_max_bytes,
        })
    }
}

/// The mailer of a connector, with what it remembers having sent.
#[derive(Debug)]
pub(crate) struct Mailing {
    mailer: Mailer,
    to: Vec<String>,
    attach_max_bytes: u64,
    /// How long a delivery waits for another one mailing the same dossier.
    wait: Duration,
    sent: Mutex<Sent>,
}

/// Dossiers being mailed now, and those mailed recently by this process.
#[derive(Debug, Default)]
struct Sent {
    in_flight: HashSet<String>,
    recent: VecDeque<String>,
    recent_set: HashSet<String>,
}

/// What the delivery should do with a dossier's mail.
pub(crate) enum Claim<'a> {
    /// Send it, then settle the guard (dropped unsettled, e.g. when the delivery is
    /// cancelled, it frees the dossier for another attempt).
    Send(SendGuard<'a>),
    /// This process mailed it already: a redelivery, nothing to send.
    AlreadySent,
    /// Another delivery of the same dossier is sending it now.
    InFlight,
}

/// The right to send one dossier's mail, held while it is sent.
pub(crate) struct SendGuard<'a> {
    mailing: &'a Mailing,
    dossier: String,
    settled: bool,
}

impl SendGuard<'_> {
    /// Remembers the dossier as mailed when `sent_ok`, frees it otherwise.
    pub(crate) fn settle(mut self, sent_ok: bool) {
        self.mailing.settle(&self.dossier, sent_ok);
        self.settled = true;
    }
}

impl Drop for SendGuard<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.mailing.settle(&self.dossier, false);
        }
    }
}

impl Mailing {
    pub(crate) fn new(delivery: MailDelivery, setup: &Setup) -> Result<Self, ConfigError> {
        if delivery.to.is_empty() {
            return Err(ConfigError::invalid(
                "mail.to",
                "aucune adresse : indiquer l'adresse du service instructeur",
            ));
        }
        if let Some(bad) = delivery.to.iter().find(|a| !a.contains('@')) {
            return Err(ConfigError::invalid(
                "mail.to",
                format!("`{bad}` n'est pas une adresse électronique"),
            ));
        }
        if delivery.attach_max_bytes == 0 {
            return Err(ConfigError::invalid(
                "mail.attach_max_bytes",
                "doit être supérieur à 0",
            ));
        }
        // Long enough for the other delivery's mail to be sent or to time out.
        let wait = delivery.server.timeout * 2 + Duration::from_secs(5);
        Ok(Self {
            wait,
            mailer: Mailer::new(delivery.server, setup)?,
            to: delivery.to,
            attach_max_bytes: delivery.attach_max_bytes,
            sent: Mutex::new(Sent::default()),
        })
    }

    pub(crate) fn attach_max_bytes(&self) -> u64 {
        self.attach_max_bytes
    }

    pub(crate) fn location(&self) -> String {
        format!("{} vers {}", self.mailer.location(), self.to.join(", "))
    }

    pub(crate) async fn probe(&self) -> Result<(), ConnectorError> {
        self.mailer.probe().await
    }

    /// Claims the sending of `dossier`'s mail. Two deliveries of one envelope at the same
    /// time (the portal published it twice) must not both send.
    pub(crate) fn claim(&self, dossier: &str) -> Claim<'_> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        if sent.recent_set.contains(dossier) {
            return Claim::AlreadySent;
        }
        if !sent.in_flight.insert(dossier.to_owned()) {
            return Claim::InFlight;
        }
        Claim::Send(SendGuard {
            mailing: self,
            dossier: dossier.to_owned(),
            settled: false,
        })
    }

    /// Claims the sending of `dossier`'s mail, waiting while another delivery sends it:
    /// when that one succeeds this one has nothing to send, when it fails this one tries.
    ///
    /// # Errors
    ///
    /// A transient [`ConnectorError`] when the other delivery has not finished within
    /// twice the mail timeout.
    pub(crate) async fn claim_or_wait(&self, dossier: &str) -> Result<Claim<'_>, ConnectorError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            match self.claim(dossier) {
                Claim::InFlight if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Claim::InFlight => {
                    return Err(ConnectorError::transient(format!(
                        "le mail du dossier {dossier} est encore en cours d'envoi par une autre livraison de la même démarche après {:?}",
                        self.wait
                    )))
                }
                claim => return Ok(claim),
            }
        }
    }

    /// Ends a claim: remembered as sent when `sent_ok`, free to try again otherwise.
    fn settle(&self, dossier: &str, sent_ok: bool) {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.in_flight.remove(dossier);
        if sent_ok && sent.recent_set.insert(dossier.to_owned()) {
            sent.recent.push_back(dossier.to_owned());
            if sent.recent.len() > REMEMBERED {
                if let Some(oldest) = sent.recent.pop_front() {
                    sent.recent_set.remove(&oldest);
                }
            }
        }
    }

    /// Sends the dossier's mail: with the zip attached (`attached`), or saying where the
    /// package was dropped (`dropped_at`).
    pub(crate) async fn send(
        &self,
        dossier: &ValidDossier<'_>,
        package: &Package,
        attached: Option<&[u8]>,
        dropped_at: Option<&str>,
    ) -> Result<(), ConnectorError> {
        let mut mail = Mail::new(message_id(&dossier.dossier), subject(dossier))
            .text(summary(dossier, package, attached, dropped_at));
        for address in &self.to {
            mail = mail.to(address.clone());
        }
        if let Some(bytes) = attached {
            mail = mail.attach(package.name(), "application/zip", bytes);
        }
        self.mailer.send(&mail).await
    }
}

/// The Message-ID of a dossier's mail: the same for every delivery of the envelope.
pub fn message_id(dossier: &str) -> String {
    format!("<{dossier}@aiguillage>")
}

fn subject(dossier: &ValidDossier<'_>) -> String {
    format!(
        "Dépôt {} {} — commune {}",
        dossier.depot.type_dossier, dossier.dossier, dossier.depot.commune
    )
}

/// The mail's text, in French for the agents of the instruction service.
fn summary(
    dossier: &ValidDossier<'_>,
    package: &Package,
    attached: Option<&[u8]>,
    dropped_at: Option<&str>,
) -> String {
    let depot = &dossier.depot;
    let mut text = String::new();
    let mut line = |label: &str, value: &str| {
        let _ = writeln!(text, "{label} : {value}");
    };
    line("Dossier", &dossier.dossier);
    line(
        "Type",
        &format!("{} — {}", depot.type_dossier, dossier.type_dossier.libelle),
    );
    let cerfa = match &depot.cerfa.revision {
        Some(revision) => format!("{}*{revision}", depot.cerfa.numero),
        None => depot.cerfa.numero.clone(),
    };
    line("CERFA", &cerfa);
    line("Date de dépôt", &dossier.date_depot);
    if let Some(reference) = &depot.reference_portail {
        line("Référence sur le portail", reference);
    }
    line("Commune", &depot.commune);
    line("Identifiant de la démarche", &depot.identifiant);
    for (n, demandeur) in depot.demandeurs.iter().enumerate() {
        let name = match (&demandeur.denomination, &demandeur.nom) {
            (Some(denomination), _) => match &demandeur.siret {
                Some(siret) => format!("{denomination} (SIRET {siret})"),
                None => denomination.clone(),
            },
            (None, nom) => [demandeur.prenom.as_deref(), nom.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
        };
        let adresse = &demandeur.adresse;
        let where_ = [
            Some(adresse.ligne1.as_str()),
            adresse.code_postal.as_deref(),
            Some(adresse.ville.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        let label = if n == 0 { "Demandeur" } else { "Co-demandeur" };
        line(label, &format!("{name}, {where_}"));
    }
    let terrain = &depot.terrain;
    let address = [
        terrain.adresse.numero.as_deref(),
        terrain.adresse.voie.as_deref(),
        terrain.adresse.lieu_dit.as_deref(),
        Some(terrain.adresse.code_postal.as_str()),
        Some(terrain.adresse.localite.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    line("Terrain", &address);
    line("Parcelles", &dossier.references.join(", "));
    text.push_str("\nPièces :\n");
    let files: BTreeMap<&str, &crate::Fichier> = package
        .manifest()
        .fichiers
        .iter()
        .map(|f| (f.chemin.as_str(), f))
        .collect();
    for piece in &dossier.pieces {
        let libelle = Tables::shipped().libelle(&piece.code).unwrap_or("");
        match files.get(piece.chemin.as_str()) {
            Some(file) => {
                let _ = writeln!(
                    text,
                    "- {} {libelle} : {} ({} octets, SHA-512 {})",
                    piece.code, file.chemin, file.taille, file.sha512
                );
            }
            None => {
                let _ = writeln!(text, "- {} {libelle} : {}", piece.code, piece.chemin);
            }
        }
    }
    text.push('\n');
    match (attached, dropped_at) {
        (Some(bytes), _) => {
            let _ = writeln!(
                text,
                "Le dossier complet est joint : {} ({} octets, SHA-512 {}).",
                package.name(),
                bytes.len(),
                crate::package::digest(bytes).sha512
            );
        }
        (None, Some(location)) => {
            let _ = writeln!(
                text,
                "Le dossier complet, trop volumineux pour être joint, est déposé ici : {location}"
            );
        }
        (None, None) => {}
    }
    text.push_str(
        "Son fichier manifest.json donne la taille et l'empreinte SHA-512 de chaque fichier : \
         vérifiez-les avant l'import (sha512sum).\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(extra: Value) -> Value {
        let mut table = json!({
            "host": "smtp.agglo.example",
            "from": "aiguillage@agglo.example",
            "to": "ads@agglo.example",
        });
        table
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        table
    }

    #[test]
    fn to_and_the_attachment_limit_are_read_beside_the_server_keys() {
        let delivery: MailDelivery = serde_json::from_value(table(json!({}))).unwrap();
        assert_eq!(delivery.to, ["ads@agglo.example"]);
        assert_eq!(delivery.attach_max_bytes, DEFAULT_ATTACH_MAX_BYTES);
        assert_eq!(delivery.server.host, "smtp.agglo.example");
        let delivery: MailDelivery = serde_json::from_value(table(json!({
            "to": ["a@agglo.example", "b@agglo.example"], "attach_max_bytes": 1000
        })))
        .unwrap();
        assert_eq!(delivery.to.len(), 2);
        assert_eq!(delivery.attach_max_bytes, 1000);
    }

    #[test]
    fn a_misspelt_key_is_still_refused() {
        let error = serde_json::from_value::<MailDelivery>(table(json!({"atach_max_bytes": 1})))
            .unwrap_err();
        assert!(error.to_string().contains("atach_max_bytes"), "{error}");
        let error = serde_json::from_value::<MailDelivery>(json!({
            "host": "smtp.agglo.example", "from": "aiguillage@agglo.example"
        }))
        .unwrap_err();
        assert!(error.to_string().contains("missing field `to`"), "{error}");
        let error = serde_json::from_value::<MailDelivery>(table(json!({"to": 3}))).unwrap_err();
        assert!(error.to_string().contains("`to`"), "{error}");
    }

    fn mailing() -> Mailing {
        let delivery: MailDelivery = serde_json::from_value(table(json!({}))).unwrap();
        Mailing::new(delivery, &Setup::new("ads", "/nonexistent")).unwrap()
    }

    #[test]
    fn the_same_dossier_is_mailed_once_even_when_delivered_twice_at_once() {
        let mailing = mailing();
        let Claim::Send(first) = mailing.claim("44043-DP-1") else {
            panic!("the first delivery sends")
        };
        assert!(matches!(mailing.claim("44043-DP-1"), Claim::InFlight));
        // A failed send frees the dossier for the retry.
        first.settle(false);
        let Claim::Send(retry) = mailing.claim("44043-DP-1") else {
            panic!("the retry sends")
        };
        retry.settle(true);
        assert!(matches!(mailing.claim("44043-DP-1"), Claim::AlreadySent));
        assert!(matches!(mailing.claim("44043-DP-2"), Claim::Send(_)));
    }

    #[test]
    fn a_cancelled_delivery_frees_its_dossier() {
        let mailing = mailing();
        let claim = mailing.claim("44043-DP-1");
        assert!(matches!(claim, Claim::Send(_)));
        drop(claim);
        assert!(matches!(mailing.claim("44043-DP-1"), Claim::Send(_)));
    }

    #[tokio::test]
    async fn a_concurrent_delivery_waits_for_the_first_and_sends_nothing() {
        let mailing = mailing();
        let Claim::Send(first) = mailing.claim("44043-DP-1") else {
            panic!("the first delivery sends")
        };
        let (second, ()) = tokio::join!(mailing.claim_or_wait("44043-DP-1"), async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            first.settle(true);
        });
        assert!(matches!(second, Ok(Claim::AlreadySent)));
    }

    #[test]
    fn message_ids_are_stable_per_dossier() {
        assert_eq!(
            message_id("44043-DP-3f9a1c0b7e2d"),
            "<44043-DP-3f9a1c0b7e2d@aiguillage>"
        );
    }
}
