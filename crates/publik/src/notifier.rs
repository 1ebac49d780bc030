// Over 600 lines: the notifier's loop, its HTTP call and its answer classification read as one story; the classification can move out in phase B.
//! The notifier: sends each démarche's final status back to its portal, so that the
//! citizen and the agents see it on the démarche.
//!
//! One notifier per portal with `notify.enabled`, on its own connection. It consumes its
//! own durable quorum queue, `<prefix>.publik.<portal>`, bound to the status exchange for
//! each configured form and each status that has a trigger (`*.<form>.delivered`…). For
//! each status event it calls the w.c.s. API of the démarche,
//! `POST <url>/api/forms/<form>/<number>/jump/trigger/<trigger>/`, signed with the Publik
//! scheme, with the status event as its JSON body (w.c.s. keeps it as the trigger's data:
//! `form_trigger_<trigger>_content_reference` in the workflow).
//!
//! A trigger is a jump trigger of the démarche's current status
//! (`…/jump/trigger/<trigger>/`) or, written `{ hook = "…" }`, a global action's
//! webservice trigger (`…/hooks/<trigger>/`), which w.c.s. runs whatever the status.
//!
//! - 2xx: done; the store records that this status was taken, then the event is
//!   acknowledged;
//! - no answer, 408, 429, 5xx, and the 403 w.c.s. answers while the démarche is still
//!   running its workflow actions (`Formdata currently processing actions.`: the moment
//!   right after its webhook action called the gateway, when a fast connector's status
//!   arrives): the portal cannot take it now; the event goes to a retry queue
//!   (`….retry.<delay>`, the delay doubling from `retry_initial` to `retry_max_delay`, then
//!   at that pace for as long as it takes) and comes back to be sent again: an outage of
//!   the portal loses nothing;
//! - 404 when the store shows that this status was already taken: the trigger was applied
//!   (a crash between the portal's 2xx and the acknowledgement, then a second call that
//!   finds the démarche moved on); acknowledged, counted as `already_applied`;
//! - any other answer (403 signature or roles, 404 no such démarche or no such trigger in
//!   its current status…): retrying would not help; the event goes to `….dead` with the
//!   reason, in French, for the operator.
//!
//! Each move to another queue is published with a confirm before the original is
//! acknowledged: a crash in between gives a second call, never a lost status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, QueueBindOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::Channel;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info, warn};

use super::config::{NotifyConfig, Portal, PublikConfig, NOTIFIED_STATUSES};
use super::config::{Trigger, TriggerKind};
use super::signature::{Algo, Signer};
use crate::Metrics;
use crate::SentStatuses;
use aiguillage_bus::BusConfig;
use aiguillage_bus::Publisher;

/// Starts a notifier for each portal that has one; each stops when `stop` turns true.
/// `store` keeps which statuses each portal took (see [`Outcome::AlreadyApplied`]).
pub fn spawn_all(
    bus: &BusConfig,
    publik: &PublikConfig,
    store: &SentStatuses,
    stop: &watch::Receiver<bool>,
    metrics: &Metrics,
) -> Vec<JoinHandle<()>> {
    publik
        .portals
        .iter()
        .filter(|portal| portal.notify.is_some())
        .map(|portal| {
            tokio::spawn(run(
                bus.clone(),
                portal.clone(),
                store.clone(),
                stop.clone(),
                metrics.clone(),
            ))
        })
        .collect()
}

/// What became of one status event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The portal took it (2xx).
    Sent,
    /// The portal answered 404, and the store shows it had taken this status before: the
    /// trigger was applied already (the call is a second one).
    AlreadyApplied(String),
    /// Nothing to send for it (another portal's démarche, or no trigger for its status).
    Skipped(String),
    /// The portal was unavailable: try again later.
    Retry(String),
    /// The portal refused it, or it is unusable: to the dead letters.
    Refused(String),
}

/// Everything a delivery needs.
struct Context {
    bus: BusConfig,
    portal: Arc<Portal>,
    notify: NotifyConfig,
    client: reqwest::Client,
    publisher: Publisher,
    store: SentStatuses,
    metrics: Metrics,
}

async fn run(
    bus: BusConfig,
    portal: Arc<Portal>,
    store: SentStatuses,
    mut stop: watch::Receiver<bool>,
    metrics: Metrics,
) {
    let Some(notify) = portal.notify.clone() else {
        return;
    };
    let client = match reqwest::Client::builder().timeout(notify.timeout).build() {
        Ok(client) => client,
        Err(error) => {
            warn!(portal = %portal.name, %error, "the notifier cannot build its HTTP client: statuses stay queued");
            return;
        }
    };
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            break;
        }
        let started = Instant::now();
        match session(&bus, &portal, &notify, &client, &store, &mut stop, &metrics).await {
            Ok(()) => break,
            Err(reason) => {
                if started.elapsed() > Duration::from_secs(30) {
                    failures = 0;
                }
                let delay = aiguillage_bus::publisher::reconnect_delay(failures);
                failures = failures.saturating_add(1);
                warn!(portal = %portal.name, error = %reason, retry_in_ms = delay.as_millis() as u64, "notifier session ended: reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => break,
                }
            }
        }
    }
    debug!(portal = %portal.name, "notifier stopped");
}

async fn session(
    bus_config: &BusConfig,
    portal: &Arc<Portal>,
    notify: &NotifyConfig,
    client: &reqwest::Client,
    store: &SentStatuses,
    stop: &mut watch::Receiver<bool>,
    metrics: &Metrics,
) -> Result<(), String> {
    let connection = aiguillage_bus::publisher::connect(
        bus_config,
        &format!(
            "aiguillage-publik-notifier {} {}",
            bus_config.queue_prefix, portal.name
        ),
    )
    .await
    .map_err(|e| e.to_string())?;
    let result = consume(
        &connection,
        bus_config,
        portal,
        notify,
        Tools {
            client,
            store,
            metrics,
        },
        stop,
    )
    .await;
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        connection.close(200, "notifier stopping".into()),
    )
    .await;
    result
}

/// What a session hands to each delivery, beside the portal.
struct Tools<'a> {
    client: &'a reqwest::Client,
    store: &'a SentStatuses,
    metrics: &'a Metrics,
}

async fn consume(
    connection: &lapin::Connection,
    bus_config: &BusConfig,
    portal: &Arc<Portal>,
    notify: &NotifyConfig,
    tools: Tools<'_>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let Tools {
        client,
        store,
        metrics,
    } = tools;
    let setup = connection
        .create_channel()
        .await
        .map_err(|e| format!("cannot open a channel: {e}"))?;
    declare(&setup, bus_config, portal, notify).await?;
    let _ = setup.close(200, "declared".into()).await;
    let publisher = Publisher::open(connection)
        .await
        .map_err(|e| e.to_string())?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| format!("cannot open a channel: {e}"))?;
    channel
        .basic_qos(notify.concurrency, BasicQosOptions::default())
        .await
        .map_err(|e| format!("cannot set the prefetch: {e}"))?;
    let queue = portal.notify_queue(bus_config);
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            aiguillage_bus::publisher::short(&format!("aiguillage-notifier-{}", portal.name)),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("cannot consume `{queue}`: {e}"))?;
    info!(portal = %portal.name, %queue, "notifier consuming the status events");
    let context = Arc::new(Context {
        bus: bus_config.clone(),
        portal: portal.clone(),
        notify: notify.clone(),
        client: client.clone(),
        publisher,
        store: store.clone(),
        metrics: metrics.clone(),
    });
    let mut tasks = JoinSet::new();
    let result = loop {
        tokio::select! {
            _ = stop.changed() => break Ok(()),
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    tasks.spawn(handle(context.clone(), delivery));
                }
                Some(Err(error)) => break Err(format!("the consumer of `{queue}` failed: {error}")),
                None => break Err(format!("the consumer of `{queue}` ended")),
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    };
    // Calls in flight finish (each within the HTTP timeout); what is not acknowledged then
    // is delivered again by the broker.
    let _ = tokio::time::timeout(notify.timeout + Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    result
}

/// Declares the notifier's queues (idempotent) and binds its queue for each configured
/// form and status with a trigger.
async fn declare(
    channel: &Channel,
    bus_config: &BusConfig,
    portal: &Portal,
    notify: &NotifyConfig,
) -> Result<(), String> {
    aiguillage_bus::topology::declare_status_exchange(channel, bus_config)
        .await
        .map_err(|e| e.to_string())?;
    let queue = portal.notify_queue(bus_config);
    let dead = portal.notify_dead_queue(bus_config);
    declare_quorum(channel, &dead, FieldTable::default()).await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongUInt(bus_config.delivery_limit),
    );
    arguments.insert(
        "x-dead-letter-exchange".into(),
        aiguillage_bus::publisher::long_string(""),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        aiguillage_bus::publisher::long_string(&dead),
    );
    arguments.insert(
        "x-dead-letter-strategy".into(),
        aiguillage_bus::publisher::long_string("at-least-once"),
    );
    arguments.insert(
        "x-overflow".into(),
        aiguillage_bus::publisher::long_string("reject-publish"),
    );
    declare_quorum(channel, &queue, arguments).await?;
    for delay in notify.tiers() {
        let mut arguments = FieldTable::default();
        let ttl = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
        arguments.insert("x-message-ttl".into(), AMQPValue::LongUInt(ttl));
        arguments.insert(
            "x-dead-letter-exchange".into(),
            aiguillage_bus::publisher::long_string(""),
        );
        arguments.insert(
            "x-dead-letter-routing-key".into(),
            aiguillage_bus::publisher::long_string(&queue),
        );
        arguments.insert(
            "x-dead-letter-strategy".into(),
            aiguillage_bus::publisher::long_string("at-least-once"),
        );
        arguments.insert(
            "x-overflow".into(),
            aiguillage_bus::publisher::long_string("reject-publish"),
        );
        declare_quorum(
            channel,
            &portal.notify_retry_queue(bus_config, delay),
            arguments,
        )
        .await?;
    }
    for rule in portal.forms.values() {
        for status in NOTIFIED_STATUSES {
            if rule.triggers.get(status).is_none() {
                continue;
            }
            let key = format!("*.{}.{status}", rule.slug);
            channel
                .queue_bind(
                    queue.as_str().into(),
                    bus_config.status_exchange.as_str().into(),
                    key.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| format!("cannot bind `{queue}` with `{key}`: {e}"))?;
        }
    }
    Ok(())
}

/// A durable quorum queue, declared as the connectors' queues are (bus.rs).
async fn declare_quorum(
    channel: &Channel,
    name: &str,
    arguments: FieldTable,
) -> Result<(), String> {
    aiguillage_bus::topology::declare_quorum_queue(channel, name, arguments)
        .await
        .map_err(|e| e.to_string())
}

async fn handle(context: Arc<Context>, delivery: Delivery) {
    let headers = delivery.properties.headers().as_ref();
    let attempt = aiguillage_bus::headers::attempt_of(headers);
    let outcome = notify_one(&context, &delivery.data, attempt).await;
    let id = serde_json::from_slice::<Value>(&delivery.data)
        .ok()
        .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let portal = &context.portal.name;
    let result = match &outcome {
        Outcome::Sent => "sent",
        Outcome::AlreadyApplied(_) => "already_applied",
        Outcome::Skipped(_) => "skipped",
        Outcome::Retry(_) => "retried",
        Outcome::Refused(_) => "refused",
    };
    context.metrics.publik_notification(portal, result);
    let moved = match &outcome {
        Outcome::Sent => {
            info!(demarche.id = %id, %portal, attempt, "status sent to the portal");
            Ok(())
        }
        Outcome::AlreadyApplied(reason) => {
            info!(demarche.id = %id, %portal, attempt, %reason, "status already applied on the portal: this call was a second one");
            Ok(())
        }
        Outcome::Skipped(reason) => {
            debug!(demarche.id = %id, %portal, %reason, "status event not sent to the portal");
            Ok(())
        }
        Outcome::Retry(reason) => {
            let tiers = context.notify.tiers();
            let index = (attempt.saturating_sub(1) as usize).min(tiers.len().saturating_sub(1));
            let delay = tiers
                .get(index)
                .copied()
                .unwrap_or(context.notify.retry_max_delay);
            warn!(demarche.id = %id, %portal, attempt, %reason, retry_in_ms = delay.as_millis() as u64, "the portal did not take the status: trying again later");
            let mut errors = aiguillage_bus::headers::errors_of(headers);
            errors.push(reason.clone());
            let headers = aiguillage_bus::headers::headers_with(
                headers,
                vec![
                    (
                        aiguillage_bus::headers::HEADER_ATTEMPT,
                        AMQPValue::LongUInt(attempt.saturating_add(1)),
                    ),
                    (
                        aiguillage_bus::headers::HEADER_ERRORS,
                        aiguillage_bus::headers::errors_value(errors),
                    ),
                ],
            );
            let queue = context.portal.notify_retry_queue(&context.bus, delay);
            context
                .publisher
                .publish(
                    "",
                    &queue,
                    &delivery.data,
                    aiguillage_bus::headers::forwarded_properties(&delivery.properties, headers),
                    true,
                )
                .await
        }
        Outcome::Refused(reason) => {
            warn!(demarche.id = %id, %portal, attempt, %reason, "the portal refused the status: kept in the notifier's dead letters");
            let headers = aiguillage_bus::headers::headers_with(
                headers,
                vec![
                    (
                        aiguillage_bus::headers::HEADER_REASON,
                        aiguillage_bus::publisher::long_string(reason),
                    ),
                    (
                        aiguillage_bus::headers::HEADER_DEAD_AT,
                        aiguillage_bus::publisher::long_string(&aiguillage_bus::now_text()),
                    ),
                ],
            );
            let queue = context.portal.notify_dead_queue(&context.bus);
            context
                .publisher
                .publish(
                    "",
                    &queue,
                    &delivery.data,
                    aiguillage_bus::headers::forwarded_properties(&delivery.properties, headers),
                    true,
                )
                .await
        }
    };
    match moved {
        Ok(()) => {
            let _ = delivery.ack(BasicAckOptions::default()).await;
        }
        Err(error) => {
            // Not moved: it stays in the queue and comes back.
            warn!(demarche.id = %id, %portal, %error, "cannot move the status event: it stays queued");
            let _ = delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await;
        }
    }
}

/// The w.c.s. API URL of a démarche's trigger: `…/jump/trigger/<name>/` for a jump
/// trigger, `…/hooks/<name>/` for a global action's.
pub fn trigger_url(base: &url::Url, form: &str, number: &str, trigger: &Trigger) -> String {
    let encode = |segment: &str| super::signature::form_encode(segment).replace('+', "%20");
    let api = match trigger.kind {
        TriggerKind::Jump => "jump/trigger",
        TriggerKind::Hook => "hooks",
    };
    format!(
        "{}/api/forms/{}/{}/{api}/{}/",
        base.as_str().trim_end_matches('/'),
        encode(form),
        encode(number),
        encode(&trigger.name)
    )
}

/// w.c.s.'s `err_desc` while the démarche runs its workflow actions (`wcs/wf/jump.py`,
/// `wcs/forms/workflows.py`): the call is refused only for now. w.c.s. answers it in the
/// portal's language when a translation exists, so the English words are looked for, and
/// the French ones too.
fn is_processing_actions(err_desc: &str) -> bool {
    let text = err_desc.to_lowercase();
    text.contains("currently processing actions")
        || (text.contains("en cours") && text.contains("traitement"))
}

/// What the portal answered to a trigger call, as the notifier classifies it.
fn classify(code: u16, err_desc: &str, url: &str) -> Answer {
    let detail = if err_desc.is_empty() {
        String::new()
    } else {
        format!(" : « {} »", err_desc.chars().take(200).collect::<String>())
    };
    match code {
        200..=299 => Answer::Taken,
        403 if is_processing_actions(err_desc) => Answer::Later(format!(
            "le portail exécute encore les actions du workflow de la démarche ({url} a répondu 403{detail}) : nouvel essai plus tard"
        )),
        403 => Answer::Refused(format!(
            "le portail refuse l'appel ({url} a répondu 403{detail}) : vérifier la clé, l'orig et les rôles autorisés du déclencheur"
        )),
        404 => Answer::NotFound(format!(
            "la démarche ou le déclencheur n'existe pas dans son statut actuel ({url} a répondu 404{detail})"
        )),
        408 | 429 | 500..=599 => Answer::Later(format!(
            "le portail est indisponible ({url} a répondu {code}{detail}) : nouvel essai plus tard"
        )),
        _ => Answer::Refused(format!("le portail refuse l'appel ({url} a répondu {code}{detail})")),
    }
}

/// The portal's answer, classified.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// 2xx.
    Taken,
    /// Not now: try again later.
    Later(String),
    /// 404: applied already, or refused for good, as the store tells.
    NotFound(String),
    /// Refused for good.
    Refused(String),
}

/// Sends one status event to the portal.
async fn notify_one(context: &Context, body: &[u8], attempt: u32) -> Outcome {
    let event: Value = match serde_json::from_slice(body) {
        Ok(event) => event,
        Err(error) => {
            return Outcome::Refused(format!(
                "ce n'est pas un événement de statut (JSON invalide : {error})"
            ))
        }
    };
    let (Some(id), Some(status)) = (
        event.get("id").and_then(Value::as_str),
        event.get("status").and_then(Value::as_str),
    ) else {
        return Outcome::Refused(
            "ce n'est pas un événement de statut : ni `id` ni `status`".into(),
        );
    };
    let connector = event
        .get("connector")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let portal = &context.portal;
    let Some(rest) = id.strip_prefix(&format!("{}:", portal.name)) else {
        return Outcome::Skipped(format!("a démarche of another portal (`{id}`)"));
    };
    let Some((form, number)) = rest.split_once(':') else {
        return Outcome::Refused(format!(
            "l'identifiant `{id}` n'est pas de la forme `{}:<formulaire>:<numéro>`",
            portal.name
        ));
    };
    let Some(rule) = portal.forms.get(form) else {
        return Outcome::Skipped(format!("the form `{form}` is not configured"));
    };
    let Some(trigger) = rule.triggers.get(status) else {
        return Outcome::Skipped(format!("no trigger for `{status}`"));
    };
    let Some(base) = &portal.url else {
        return Outcome::Refused("le portail n'a pas d'`url` dans la configuration".into());
    };
    let url = trigger_url(base, form, number, trigger);
    let signed = Signer {
        orig: Some(&context.notify.orig),
        key: &context.notify.secret,
        algo: Algo::Sha256,
    }
    .sign_url(&url);
    let sent = context
        .client
        .post(signed)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body.to_vec())
        .send()
        .await;
    let response = match sent {
        Err(error) => {
            return Outcome::Retry(format!(
                "pas de réponse de {url} (essai {attempt}) : {error}"
            ))
        }
        Ok(response) => response,
    };
    let code = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let err_desc = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("err_desc").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    match classify(code, &err_desc, &url) {
        Answer::Taken => {
            // Kept so that a second call's 404 is known for what it is; if it cannot be
            // written, the status was still taken: only that later 404 would be kept aside.
            if let Err(error) = context
                .store
                .record_notification(id, connector, status, &portal.name)
                .await
            {
                warn!(demarche.id = %id, portal = %portal.name, %error, "the status was taken by the portal but the store could not record it");
            }
            Outcome::Sent
        }
        Answer::Later(reason) => Outcome::Retry(reason),
        Answer::Refused(reason) => Outcome::Refused(reason),
        Answer::NotFound(reason) => {
            match context
                .store
                .notification_sent_at(id, connector, status)
                .await
            {
                Ok(Some(sent_at)) => Outcome::AlreadyApplied(format!(
                    "déjà appliqué : le portail a pris ce statut le {sent_at}, et répond maintenant 404 (la démarche a changé de statut)"
                )),
                Ok(None) => Outcome::Refused(reason),
                Err(error) => Outcome::Retry(format!(
                    "{reason} ; le registre ne peut être lu pour savoir si ce statut a déjà été pris ({error}) : nouvel essai plus tard"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests;
