use super::*;
use aiguillage_bus::{headers::errors_value, headers::headers_with, publisher::long_string};
use serde_json::json;

fn now() -> OffsetDateTime {
    OffsetDateTime::parse("2026-11-29T12:00:00Z", &Rfc3339).unwrap()
}

fn valid_body() -> Vec<u8> {
    json!({
        "id": "portail:inscription-cantine:7",
        "commune": "44043",
        "form": "inscription-cantine",
        "submitted_at": "2026-11-28T10:12:00+01:00",
        "formdata": {"fields": {}}
    })
    .to_string()
    .into_bytes()
}

fn dead_headers() -> FieldTable {
    headers_with(
        None,
        vec![
            (
                aiguillage_bus::headers::HEADER_ATTEMPT,
                AMQPValue::LongUInt(3),
            ),
            (aiguillage_bus::headers::HEADER_STATUS, long_string("dead")),
            (
                aiguillage_bus::headers::HEADER_REASON,
                long_string("HTTP 503"),
            ),
            (
                aiguillage_bus::headers::HEADER_DEAD_AT,
                long_string("2026-11-29T09:55:00.000Z"),
            ),
            (
                aiguillage_bus::headers::HEADER_ROUTING_KEY,
                long_string("44043.inscription-cantine"),
            ),
            (
                aiguillage_bus::headers::HEADER_ERRORS,
                errors_value(vec!["a".into(), "b".into(), "c".into()]),
            ),
        ],
    )
}

#[test]
fn a_dead_letter_is_read_from_its_body_and_headers() {
    let headers = dead_headers();
    let letter = DeadLetter::read("famille", &valid_body(), Some(&headers), 1 << 20, now());
    assert_eq!(letter.id, "portail:inscription-cantine:7");
    assert_eq!(letter.commune, "44043");
    assert_eq!(letter.form, "inscription-cantine");
    assert_eq!(letter.connector, "famille");
    assert_eq!(letter.status, "dead");
    assert_eq!(letter.reason, "HTTP 503");
    assert_eq!(letter.attempts, 3);
    assert_eq!(letter.age_seconds, Some(2 * 3600 + 5 * 60));
    assert_eq!(letter.age.as_deref(), Some("2h 05m"));
    assert_eq!(letter.errors, ["a", "b", "c"]);
    assert!(letter.readable);
}

#[test]
fn an_unreadable_body_is_listed_with_the_routing_key_and_its_reason() {
    let headers = headers_with(
        None,
        vec![
            (
                aiguillage_bus::headers::HEADER_STATUS,
                long_string("rejected"),
            ),
            (
                aiguillage_bus::headers::HEADER_REASON,
                long_string("enveloppe invalide : le corps n'est pas du JSON valide"),
            ),
            (
                aiguillage_bus::headers::HEADER_ROUTING_KEY,
                long_string("44064.inscription-cantine"),
            ),
        ],
    );
    let letter = DeadLetter::read("famille", b"{not json", Some(&headers), 1 << 20, now());
    assert_eq!(letter.id, UNREADABLE);
    assert_eq!(letter.commune, "44064");
    assert_eq!(letter.form, "inscription-cantine");
    assert_eq!(letter.status, "rejected");
    assert!(letter.reason.contains("pas du JSON valide"));
    assert_eq!(letter.attempts, 1);
    assert_eq!(letter.age, None);
    assert!(!letter.readable);
}

#[test]
fn a_letter_dead_lettered_by_rabbitmq_says_so() {
    let mut death = FieldTable::default();
    death.insert("reason".into(), long_string("delivery_limit"));
    death.insert("time".into(), AMQPValue::Timestamp(1_795_942_800)); // 2026-11-29T09:00Z
    let headers = headers_with(
        None,
        vec![(
            aiguillage_bus::headers::HEADER_X_DEATH,
            AMQPValue::FieldArray(vec![AMQPValue::FieldTable(death)].into()),
        )],
    );
    let letter = DeadLetter::read("famille", &valid_body(), Some(&headers), 1 << 20, now());
    assert_eq!(letter.status, "dead");
    assert!(
        letter.reason.contains("limite de livraisons"),
        "{}",
        letter.reason
    );
    assert_eq!(letter.age.as_deref(), Some("3h 00m"));
}

#[test]
fn filters_combine_and_selections_must_be_explicit() {
    let headers = dead_headers();
    let letter = DeadLetter::read("famille", &valid_body(), Some(&headers), 1 << 20, now());
    let filter = |id: Option<&str>, commune: Option<&str>| Filter {
        id: id.map(str::to_owned),
        commune: commune.map(str::to_owned),
        ..Filter::default()
    };
    assert!(Filter::default().matches(&letter));
    assert!(filter(Some("portail:inscription-cantine:7"), Some("44043")).matches(&letter));
    assert!(!filter(Some("portail:inscription-cantine:7"), Some("44064")).matches(&letter));
    assert!(!filter(Some("other"), None).matches(&letter));

    assert!(matches!(
        Selection::for_replay(Filter::default(), false),
        Err(DeadError::NoReplaySelector)
    ));
    assert!(Selection::for_replay(Filter::default(), true).is_ok());
    assert!(matches!(
        Selection::for_discard(Filter::default()),
        Err(DeadError::NoDiscardSelector)
    ));
    assert!(Selection::for_discard(filter(Some("x"), None)).is_ok());

    let configured = vec!["famille".to_owned(), "urbanisme".to_owned()];
    assert_eq!(Filter::default().connectors(&configured).unwrap().len(), 2);
    let unknown = Filter {
        connector: Some("cityweb".into()),
        ..Filter::default()
    };
    let error = unknown.connectors(&configured).unwrap_err().to_string();
    assert!(error.contains("famille, urbanisme"), "{error}");
}

#[test]
fn an_unrouted_demarche_says_why_in_french_and_points_out_a_disagreeing_key() {
    use crate::routing::{CommunePattern, FormPattern, Route};
    let headers = headers_with(
        None,
        vec![(
            aiguillage_bus::headers::HEADER_ROUTING_KEY,
            long_string("44064.inscription-cantine"),
        )],
    );
    // The body says Clisson, the key Gorges.
    let letter = DeadLetter::read(UNROUTED, &valid_body(), Some(&headers), 1 << 20, now());
    let reason = unrouted_reason(&Router::default(), &letter);
    assert!(
        reason.starts_with(
            "aucune route ne prend le formulaire `inscription-cantine` de la commune 44043"
        ),
        "{reason}"
    );
    assert!(
        reason.contains("publiée sous la clé `44064.inscription-cantine`, qui ne correspond pas"),
        "{reason}"
    );
    let routed = Router::new(vec![Route {
        commune: CommunePattern::parse("44043").unwrap(),
        forms: vec![FormPattern::parse("inscription-*").unwrap()],
        connector: "famille".into(),
        mapping: None,
    }]);
    let reason = unrouted_reason(&routed, &letter);
    assert!(
        reason.starts_with("une route la prend désormais (famille) : rejouez-la"),
        "{reason}"
    );
    let table = render_unrouted_table(&[letter]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.lines().next().unwrap().ends_with("RAISON"), "{table}");
}

#[test]
fn ages_read_like_people_write_them() {
    assert_eq!(human_age(42), "42s");
    assert_eq!(human_age(12 * 60 + 5), "12m");
    assert_eq!(human_age(3 * 3600 + 5 * 60), "3h 05m");
    assert_eq!(human_age(2 * 86_400 + 4 * 3600), "2d 04h");
}

#[test]
fn the_table_aligns_columns_and_puts_the_reason_last() {
    let headers = dead_headers();
    let letter = DeadLetter::read("famille", &valid_body(), Some(&headers), 1 << 20, now());
    let table = render_table(&[letter]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("ID "));
    assert!(lines[0].ends_with("RAISON"));
    assert_eq!(lines[0].find("COMMUNE"), lines[1].find("44043"));
    assert!(lines[1].ends_with("HTTP 503"));
}

#[test]
fn a_replayed_copy_starts_over_with_its_history() {
    let mut headers = dead_headers();
    headers.insert(
        aiguillage_bus::headers::HEADER_DELIVERY_COUNT.into(),
        AMQPValue::LongLongInt(4),
    );
    let letter = DeadLetter::read("famille", &valid_body(), Some(&headers), 1 << 20, now());
    let properties = aiguillage_bus::publisher::persistent_json()
        .with_message_id(aiguillage_bus::publisher::short(&letter.id))
        .with_headers(headers);
    let replayed = replay_properties(&properties, &letter, "2026-11-29T12:00:00.000Z");
    let h = replayed.headers().as_ref();
    assert_eq!(aiguillage_bus::headers::attempt_of(h), 1);
    assert_eq!(aiguillage_bus::headers::errors_of(h).len(), 3);
    assert_eq!(
        aiguillage_bus::headers::header_text(h, aiguillage_bus::headers::HEADER_ROUTING_KEY)
            .as_deref(),
        Some("44043.inscription-cantine")
    );
    assert_eq!(
        aiguillage_bus::headers::header_text(h, aiguillage_bus::headers::HEADER_REPLAYED_AT)
            .as_deref(),
        Some("2026-11-29T12:00:00.000Z")
    );
    for gone in [
        aiguillage_bus::headers::HEADER_REASON,
        aiguillage_bus::headers::HEADER_STATUS,
        aiguillage_bus::headers::HEADER_DEAD_AT,
        aiguillage_bus::headers::HEADER_DELIVERY_COUNT,
    ] {
        assert!(!h.is_some_and(|h| h.contains_key(gone)), "{gone}");
    }
    assert_eq!(
        replayed.message_id().as_ref().map(|m| m.as_str()),
        Some(letter.id.as_str())
    );
}
