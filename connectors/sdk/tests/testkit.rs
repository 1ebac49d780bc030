//! The conformance kit tested on itself: a well-made connector passes every check, and each
//! deliberately broken one fails the check that names its defect, with a message that says
//! how to fix it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

#[cfg(feature = "batching")]
use aiguillage_connector::holding::{Batching, FlushContext, FlushedBatch};
use aiguillage_connector::testkit::{Answer, HttpStub, Kit, Report, Target, Verdict};
use aiguillage_connector::{async_trait, Connector, ConnectorError, Context, Document, Receipt};

/// A request the API applied: the idempotency key sent (if any), the document, the
/// attachments' bytes.
type Applied = (Option<String>, Document, Vec<Vec<u8>>);

/// A business software's API in memory: it answers like an HTTP API would (a status code),
/// applies a démarche once per idempotency key, and keeps the attachments it received.
#[derive(Default)]
struct Api {
    answer: Mutex<Option<Answer>>,
    applied: Mutex<Vec<Applied>>,
}

impl Api {
    /// The API call: `Err(status)` on failure; never returns while a hang is staged.
    async fn call(
        &self,
        key: Option<&str>,
        document: &Document,
        files: Vec<Vec<u8>>,
    ) -> Result<(), u16> {
        let answer = self.answer.lock().unwrap().unwrap_or(Answer::Accept);
        match answer {
            Answer::Transient => return Err(503),
            Answer::Permanent => return Err(422),
            Answer::Hang => std::future::pending::<()>().await,
            _ => {}
        }
        let mut applied = self.applied.lock().unwrap();
        let seen = key.is_some_and(|key| applied.iter().any(|(k, _, _)| k.as_deref() == Some(key)));
        if !seen {
            applied.push((key.map(str::to_owned), document.clone(), files));
        }
        Ok(())
    }
}

/// The API seen by the kit: a démarche sent without a key is recognised by the key the
/// connectors below put in the document.
#[async_trait]
impl Target for Api {
    async fn effects(&self, key: &str) -> usize {
        self.applied
            .lock()
            .unwrap()
            .iter()
            .filter(|(sent, document, _)| match sent {
                Some(sent) => sent == key,
                None => document["reference"] == key,
            })
            .count()
    }

    async fn attachments(&self, key: &str) -> Option<Vec<Vec<u8>>> {
        let applied = self.applied.lock().unwrap();
        let found = applied
            .iter()
            .find(|(sent, _, _)| sent.as_deref() == Some(key))
            .map(|(_, _, files)| files.clone())
            .unwrap_or_default();
        Some(found)
    }

    async fn stage(&self, answer: Answer) -> bool {
        *self.answer.lock().unwrap() = Some(answer);
        true
    }
}

/// The defects the connector under test can be given.
#[derive(Clone, Copy, PartialEq)]
enum Defect {
    None,
    /// Does not send the idempotency key.
    NotIdempotent,
    /// Calls every failure permanent, a 503 included.
    MisclassifiesUnavailable,
    /// Slices the first 10 characters of `nom` by bytes, and panics on long texts.
    PanicsOnLongText,
    /// Waits for the API without a timeout.
    NoTimeout,
    /// Drops the attachments' last byte.
    TruncatesAttachments,
    /// Batches, and asks to be flushed every zero seconds.
    FlushesWithoutPause,
    /// Batches, well.
    Batches,
}

struct ApiConnector {
    api: Arc<Api>,
    defect: Defect,
}

#[async_trait]
impl Connector for ApiConnector {
    async fn deliver(&self, document: &Document, ctx: &Context) -> Result<Receipt, ConnectorError> {
        let mut body = document.clone();
        if let Some(object) = body.as_object_mut() {
            object.insert("reference".into(), ctx.idempotency_key().into());
        }
        if self.defect == Defect::PanicsOnLongText {
            if let Some(text) = document
                .as_object()
                .and_then(|o| o.values().find_map(|v| v.as_str()))
            {
                assert!(text.len() < 10_000, "text too long");
            }
        }
        let key = (self.defect != Defect::NotIdempotent).then(|| ctx.idempotency_key());
        let files = ctx
            .attachments()
            .iter()
            .map(|a| {
                let mut bytes = a.content.clone();
                if self.defect == Defect::TruncatesAttachments {
                    bytes.pop();
                }
                bytes
            })
            .collect();
        let call = self.api.call(key, &body, files);
        let answered = if self.defect == Defect::NoTimeout {
            Ok(call.await)
        } else {
            tokio::time::timeout(Duration::from_millis(300), call).await
        };
        match answered {
            Err(_) => Err(ConnectorError::transient("no answer within 300 ms")),
            Ok(Ok(())) => Ok(Receipt::with_reference(ctx.idempotency_key())),
            Ok(Err(status)) if self.defect == Defect::MisclassifiesUnavailable => {
                Err(ConnectorError::permanent(format!("HTTP {status}")))
            }
            Ok(Err(status)) if status >= 500 => {
                Err(ConnectorError::transient(format!("HTTP {status}")))
            }
            Ok(Err(status)) => Err(ConnectorError::permanent(format!("HTTP {status}"))),
        }
    }

    #[cfg(feature = "batching")]
    fn batching(&self) -> Option<&dyn Batching> {
        matches!(self.defect, Defect::Batches | Defect::FlushesWithoutPause)
            .then_some(self as &dyn Batching)
    }
}

/// Delivers at once (nothing is ever held): the batching check needs only the extension.
#[cfg(feature = "batching")]
#[async_trait]
impl Batching for ApiConnector {
    fn flush_every(&self) -> Duration {
        if self.defect == Defect::FlushesWithoutPause {
            Duration::ZERO
        } else {
            Duration::from_secs(1)
        }
    }

    async fn flush(&self, ctx: &FlushContext) -> Result<Vec<FlushedBatch>, ConnectorError> {
        ctx.holding().pending().await.map(|_| Vec::new())
    }
}

async fn run(defect: Defect) -> Report {
    let api = Arc::new(Api::default());
    let connector = Arc::new(ApiConnector {
        api: api.clone(),
        defect,
    });
    Kit::new(connector, api.as_ref())
        .sample(serde_json::json!({ "nom": "Durand", "prenom": "Anne", "montant": "12.50" }))
        .timeout(Duration::from_millis(300))
        .hostile_cases(32)
        .run()
        .await
}

fn failure(report: &Report, check: &str) -> String {
    match report.verdict(check) {
        Some(Verdict::Failed(why)) => why.clone(),
        other => panic!("the check `{check}` should have failed, it gave {other:?}:\n{report}"),
    }
}

#[tokio::test]
async fn a_well_made_connector_passes_every_check() {
    let report = run(Defect::None).await;
    report.assert_passed();
    assert!(
        report.checks.iter().all(|c| c.verdict == Verdict::Passed),
        "nothing skipped against a target that stages everything:\n{report}"
    );
}

#[tokio::test]
async fn a_connector_that_forgets_the_idempotency_key_fails_idempotence() {
    let report = run(Defect::NotIdempotent).await;
    let why = failure(&report, "idempotent");
    assert!(why.contains("took effect 2 times"), "{why}");
    assert!(why.contains("ctx.idempotency_key()"), "{why}");
}

#[tokio::test]
async fn a_connector_that_calls_a_503_permanent_fails_classification() {
    let report = run(Defect::MisclassifiesUnavailable).await;
    let why = failure(&report, "transient failures are transient");
    assert!(why.contains("called it permanent"), "{why}");
    assert!(why.contains("ConnectorError::transient"), "{why}");
    assert_eq!(
        report.verdict("refusals are permanent"),
        Some(&Verdict::Passed)
    );
}

#[tokio::test]
async fn a_connector_that_panics_on_a_long_text_fails_the_hostile_documents() {
    let report = run(Defect::PanicsOnLongText).await;
    let why = failure(&report, "no panic on hostile documents");
    assert!(why.contains("panicked"), "{why}");
    assert!(why.contains("never panic"), "{why}");
}

#[tokio::test]
async fn a_connector_without_a_timeout_fails_the_timeout_check() {
    let report = run(Defect::NoTimeout).await;
    let why = failure(&report, "timeout honoured");
    assert!(why.contains("still waiting"), "{why}");
}

#[tokio::test]
async fn a_connector_that_alters_attachments_fails_the_attachment_check() {
    let report = run(Defect::TruncatesAttachments).await;
    let why = failure(&report, "attachments intact");
    assert!(why.contains("different bytes"), "{why}");
}

#[cfg(feature = "batching")]
#[tokio::test]
async fn a_batching_connector_is_checked_and_one_flushing_without_pause_fails() {
    let report = run(Defect::Batches).await;
    report.assert_passed();
    assert_eq!(
        report.verdict("batching well formed"),
        Some(&Verdict::Passed),
        "{report}"
    );
    let report = run(Defect::FlushesWithoutPause).await;
    let why = failure(&report, "batching well formed");
    assert!(why.contains("flush_every is zero"), "{why}");
    assert!(
        run(Defect::None)
            .await
            .verdict("batching well formed")
            .is_none(),
        "a connector that does not batch has no batching check"
    );
}

#[tokio::test]
async fn the_http_stub_applies_a_key_once_and_answers_what_is_staged() {
    let stub = HttpStub::start().await;
    let client = std::net::TcpStream::connect(
        stub.url()
            .trim_start_matches("http://")
            .trim_end_matches("/demarches"),
    )
    .expect("the stub listens");
    drop(client);
    let post = |key: &'static str| {
        let url = stub.url();
        async move {
            let address = url
                .trim_start_matches("http://")
                .trim_end_matches("/demarches")
                .to_owned();
            let request = format!(
                "POST /demarches HTTP/1.1\r\nHost: {address}\r\nIdempotency-Key: {key}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            );
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
                .await
                .unwrap();
            let mut answer = String::new();
            tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answer)
                .await
                .unwrap();
            answer
        }
    };
    assert!(post("a").await.starts_with("HTTP/1.1 201"));
    assert!(post("a").await.starts_with("HTTP/1.1 201"));
    assert_eq!(stub.effects("a").await, 1);
    stub.stage(Answer::Transient).await;
    assert!(post("b").await.starts_with("HTTP/1.1 503"));
    stub.stage(Answer::Permanent).await;
    assert!(post("b").await.starts_with("HTTP/1.1 422"));
    assert_eq!(stub.effects("b").await, 0);
    assert_eq!(stub.applied(), 1);
}
