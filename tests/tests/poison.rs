//! Poison input: every kind of message that is not a valid envelope is dead-lettered with
//! a precise reason, the gateway logs one line and keeps going, and a valid démarche
//! published right after is delivered.

use std::time::Duration;

use aiguillage_tests::rest_target::RestTarget;
use aiguillage_tests::{count_status, envelope, header_text, Scenario, StoreKind};
use serde_json::{json, Value};

const LIMIT: usize = 16 * 1024;

/// Publishes `body`, then a valid démarche; checks the dead letter and the events.
async fn poison(body: Vec<u8>, reason: &str, salvaged_id: Option<&str>) {
    let target = RestTarget::start().await;
    let mut scenario = Scenario::new(StoreKind::Sqlite).await;
    scenario
        .bus_key(&format!("max_message_bytes = {LIMIT}"))
        .rest("famille", &target.url("accept/famille"), "")
        .route("44043", &["inscription-*"], "famille");
    let (mut events, running) = scenario.launch().await;

    scenario
        .publish_unchecked("44043.inscription-cantine", &body)
        .await;
    let valid = envelope(&scenario.prefix, "44043", "inscription-cantine", 1);
    scenario.publish(std::slice::from_ref(&valid)).await;

    let want = if salvaged_id.is_some() { 2 } else { 1 };
    let seen = events
        .wait_until(Duration::from_secs(30), |seen| seen.len() >= want)
        .await;
    assert_eq!(
        count_status(seen, "delivered"),
        1,
        "the valid démarche after the poison is delivered"
    );
    assert_eq!(target.effect_count(), 1);
    assert_eq!(target.effects()[0].key, valid["id"].as_str().unwrap());
    match salvaged_id {
        Some(id) => {
            let rejected = events.with_status("rejected");
            assert_eq!(
                rejected.len(),
                1,
                "a rejected event when the id is readable"
            );
            assert_eq!(rejected[0]["id"], id);
            assert!(rejected[0]["error"].as_str().unwrap().contains(reason));
        }
        None => assert_eq!(
            count_status(events.settle(Duration::from_millis(300)).await, "rejected"),
            0
        ),
    }

    let dead = scenario.drain(&scenario.bus().dead_queue("famille")).await;
    assert_eq!(dead.len(), 1, "the poison is kept once in the dead letters");
    let kept_reason = header_text(&dead[0].1, "x-aiguillage-reason");
    assert!(
        kept_reason.contains(reason),
        "reason `{kept_reason}` should contain `{reason}`"
    );
    assert_eq!(header_text(&dead[0].1, "x-aiguillage-status"), "rejected");
    assert_eq!(
        header_text(&dead[0].1, "x-aiguillage-routing-key"),
        "44043.inscription-cantine"
    );

    scenario.finish(running).await;
}

fn valid_body() -> Value {
    envelope("poison", "44043", "inscription-cantine", 99)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json() {
    poison(
        br#"{"id": "x", "commune": "#.to_vec(),
        "le corps n'est pas du JSON valide",
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8() {
    poison(
        b"{\"id\": \"\xff\xfe\"}".to_vec(),
        "pas de l'UTF-8 valide (octet invalide à la position 8)",
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_that_is_not_an_envelope() {
    poison(
        b"[1, 2, 3]".to_vec(),
        "l'enveloppe doit être un objet JSON, reçu un tableau",
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_field() {
    let mut body = valid_body();
    body.as_object_mut().unwrap().remove("formdata");
    poison(
        body.to_string().into_bytes(),
        "le champ `formdata` de l'enveloppe manque",
        Some("poison:inscription-cantine:99"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistyped_field() {
    let mut body = valid_body();
    body["submitted_at"] = json!(1_764_321_120);
    poison(
        body.to_string().into_bytes(),
        "`submitted_at` de l'enveloppe doit être un texte, reçu un nombre",
        Some("poison:inscription-cantine:99"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_commune() {
    let mut body = valid_body();
    body["commune"] = json!("Clisson");
    poison(
        body.to_string().into_bytes(),
        "`Clisson` n'est pas un code INSEE de 5 caractères",
        Some("poison:inscription-cantine:99"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_the_size_limit() {
    let mut body = valid_body();
    body["formdata"]["fields"]["commentaire"] = json!("x".repeat(LIMIT));
    let size = body.to_string().len();
    poison(
        body.to_string().into_bytes(),
        &format!("message de {size} octets, au-delà de la limite de {LIMIT} octets"),
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json() {
    let depth = 5000;
    let body = format!(
        "{{\"id\": \"x\", \"formdata\": {}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    poison(body.into_bytes(), "recursion limit exceeded", None).await;
}
