//! Hostile documents and attachments never make the connector panic: each is delivered or
//! refused (permanently, with a message).

mod common;

use std::sync::Arc;

use aiguillage_connector::{Attachment, Connector};
use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(null)),
        Just(json!("")),
        Just(json!("x".repeat(10_000))),
        Just(json!("\u{0}\u{1b}[31m\r\n")),
        Just(json!("../../etc/passwd")),
        Just(json!("\u{202e}\u{fffe}🇫🇷")),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(u64::MAX)),
        Just(json!(1e308)),
        Just(json!([])),
        Just(json!({})),
        ".{0,20}".prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
    ]
}

fn pointers(value: &Value, path: String, out: &mut Vec<String>) {
    out.push(path.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                pointers(child, format!("{path}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (n, child) in items.iter().enumerate() {
                pointers(child, format!("{path}/{n}"), out);
            }
        }
        _ => {}
    }
}

fn hostile_attachments() -> impl Strategy<Value = Vec<(String, String, Vec<u8>)>> {
    let field = prop_oneof![
        Just("DP1".to_string()),
        Just("DP4".to_string()),
        Just("dp1".to_string()),
        Just("".to_string()),
        ".{0,8}"
    ];
    let content_type = prop_oneof![
        Just("application/pdf".to_string()),
        Just("image/png".to_string()),
        Just("".to_string()),
        ".{0,20}"
    ];
    let content = prop_oneof![
        Just(b"%PDF-".to_vec()),
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..64)
    ];
    prop::collection::vec((field, content_type, content), 0..5)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hostile_documents_never_panic(
        which in any::<prop::sample::Index>(),
        replacement in leaf(),
        attachments in hostile_attachments(),
        keep_fixture_files in any::<bool>(),
    ) {
        let mut document = fixture("dp-sci-ravalement");
        let mut paths = Vec::new();
        pointers(&document, String::new(), &mut paths);
        let path = which.get(&paths).clone();
        if path.is_empty() {
            document = replacement;
        } else if let Some(slot) = document.pointer_mut(&path) {
            *slot = replacement;
        }
        let attachments: Vec<Attachment> = if keep_fixture_files {
            fixture_attachments("dp-sci-ravalement")
        } else {
            attachments
                .into_iter()
                .map(|(field, content_type, content)| Attachment::new(field, "f", content_type, content))
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let connector: Arc<dyn Connector> = connector(dir.path(), json!({}));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let ctx = context("clisson-sevre-maine:depot-declaration-prealable:212", attachments);
        match runtime.block_on(connector.deliver(&document, &ctx)) {
            Ok(receipt) => prop_assert!(receipt.reference.is_some()),
            Err(error) => {
                prop_assert!(error.is_permanent(), "{}", error.report());
                prop_assert!(error.to_string().starts_with("dossier refusé"), "{}", error);
                prop_assert!(error.to_string().len() < 4000, "a short message");
            }
        }
    }
}
