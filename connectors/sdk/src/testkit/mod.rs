//! The conformance test kit (feature `testkit`): the standard checks every connector must
//! pass, run from the connector crate's own tests against a target the author provides
//! (or the kit's [`HttpStub`] for a connector that calls an HTTP API).
//!
//! ```no_run
//! # async fn example(connector: std::sync::Arc<dyn aiguillage_connector::Connector>) {
//! use aiguillage_connector::testkit::{HttpStub, Kit};
//!
//! let stub = HttpStub::start().await;
//! // … build the connector with `stub.url()` as its target URL and a timeout of 2 s …
//! Kit::new(connector, &stub)
//!     .sample(serde_json::json!({ "nom": "Durand", "prenom": "Anne" }))
//!     .timeout(std::time::Duration::from_secs(2))
//!     .run()
//!     .await
//!     .assert_passed();
//! # }
//! ```
//!
//! Each check says in plain words what failed and how to fix it. A check the target cannot
//! stage (a file directory cannot "answer 503") is skipped, and the report says so.

mod directory;
mod french;
mod http_stub;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::Value;

pub use directory::{Complete, DirectoryTarget};
pub use french::{assert_french, english_in};
pub use http_stub::HttpStub;

use crate::{Attachment, Connector, ConnectorError, Context, Document};

/// How the target should answer the next delivery, staged by [`Target::stage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// Accept it (the default).
    Accept,
    /// Fail in a way that may go away (an HTTP 503, a connection reset, a full disk).
    Transient,
    /// Refuse it for good (an HTTP 422 "invalid document").
    Permanent,
    /// Never answer (a hung server): the connector's timeout must end the delivery.
    Hang,
}

/// The target a connector delivers to, as the kit sees it: what took effect there, and
/// how to make it misbehave.
#[async_trait]
pub trait Target: Send + Sync {
    /// How many times the démarche whose idempotency key is `key` took effect at the
    /// target (a record created, a file published). A target that honours an idempotency
    /// key counts one effect however often it receives the key.
    async fn effects(&self, key: &str) -> usize;

    /// Whether an incomplete effect of `key` is visible at the target (a truncated file,
    /// half a record). The default says no: override it when the target can tell.
    async fn partial(&self, _key: &str) -> bool {
        false
    }

    /// The attachments' bytes the target received with `key`, in order; `None` when the
    /// target does not take attachments (the check is then skipped).
    async fn attachments(&self, _key: &str) -> Option<Vec<Vec<u8>>> {
        None
    }

    /// Makes the target answer the next delivery as `answer` says. Returns `false` when
    /// this target cannot stage it (the checks that need it are skipped).
    async fn stage(&self, answer: Answer) -> bool;
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The connector behaves as it must.
    Passed,
    /// It does not: what happened and how to fix it.
    Failed(String),
    /// The check could not run against this target, and why.
    Skipped(String),
}

/// One check of the kit and its verdict.
#[derive(Debug, Clone)]
pub struct Check {
    /// Its name, e.g. `idempotent`.
    pub name: &'static str,
    /// What it found.
    pub verdict: Verdict,
}

/// What the kit found, check by check.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every check, in the order run.
    pub checks: Vec<Check>,
}

impl Report {
    /// The checks that failed.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|check| matches!(check.verdict, Verdict::Failed(_)))
            .collect()
    }

    /// The verdict of the check named `name`, if it ran.
    pub fn verdict(&self, name: &str) -> Option<&Verdict> {
        self.checks
            .iter()
            .find(|check| check.name == name)
            .map(|check| &check.verdict)
    }

    /// Panics with the whole report when a check failed: call it at the end of the
    /// connector's conformance test.
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(
            self.failures().is_empty(),
            "the connector fails the conformance kit:\n{self}"
        );
    }

    /// Panics as [`Report::assert_passed`] does, and also when one of `checks` did not
    /// pass (skipped, or not run): for a target that can stage them.
    #[track_caller]
    pub fn assert_passed_including(&self, checks: &[&str]) {
        self.assert_passed();
        for name in checks {
            assert_eq!(self.verdict(name), Some(&Verdict::Passed), "{name}: {self}");
        }
    }
}

/// A connector of kind `C` built from the configuration table `config` as the gateway
/// builds it (instance `conformance`, configuration directory `.`), for a conformance
/// test; panics when the configuration is refused.
#[track_caller]
pub fn build<C: crate::ConnectorConfig>(config: Value) -> Arc<dyn Connector> {
    crate::ConnectorKind::of::<C>()
        .build(
            config,
            &crate::Setup::new("conformance", std::path::Path::new(".")),
        )
        .unwrap_or_else(|error| panic!("a valid configuration: {error}"))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            match &check.verdict {
                Verdict::Passed => writeln!(f, "  passed   {}", check.name)?,
                Verdict::Failed(why) => writeln!(f, "  FAILED   {}: {why}", check.name)?,
                Verdict::Skipped(why) => writeln!(f, "  skipped  {}: {why}", check.name)?,
            }
        }
        Ok(())
    }
}

/// The checks of the kit, with their settings.
pub struct Kit<'t> {
    connector: Arc<dyn Connector>,
    target: &'t dyn Target,
    sample: Sample,
    timeout: Duration,
    hostile_cases: u32,
    prepare: Prepare,
    attachments: Option<Vec<Attachment>>,
}

/// Makes the sample document for an idempotency key (see [`Kit::sample_for`]).
pub type Sample = Arc<dyn Fn(&str) -> Document + Send + Sync>;

/// Completes each context the kit makes (see [`Kit::prepare`]).
pub type Prepare = Arc<dyn Fn(Context) -> Context + Send + Sync>;

/// Gives each démarche of a run its own idempotency key.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// How much longer than its configured timeout a delivery may take to give up.
const TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

impl<'t> Kit<'t> {
    /// The kit for `connector`, which delivers to `target`.
    pub fn new(connector: Arc<dyn Connector>, target: &'t dyn Target) -> Self {
        Self {
            connector,
            target,
            sample: Arc::new(|_| serde_json::json!({})),
            timeout: Duration::from_secs(30),
            hostile_cases: 64,
            prepare: Arc::new(|ctx| ctx),
            attachments: None,
        }
    }

    /// A document the connector accepts (as the route's mapping would make it); the
    /// hostile documents are made from it. Default: `{}`.
    pub fn sample(mut self, document: Document) -> Self {
        self.sample = Arc::new(move |_| document.clone());
        self
    }

    /// The sample document for each idempotency key, for a connector that checks that the
    /// document names its envelope (the mapping writes `{{ envelope.id }}` into it).
    pub fn sample_for(mut self, sample: impl Fn(&str) -> Document + Send + Sync + 'static) -> Self {
        self.sample = Arc::new(sample);
        self
    }

    /// The timeout the connector was configured with: a delivery to a target that never
    /// answers must end within it (plus a 5 s margin). Default: 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Gives each context what the connector needs from the gateway, e.g.
    /// `|ctx| ctx.with_numbering(numbering.clone())` for a connector that numbers what it
    /// writes ([`crate::numbering::MemoryNumbering`] stands in for the gateway's store).
    pub fn prepare(mut self, prepare: impl Fn(Context) -> Context + Send + Sync + 'static) -> Self {
        self.prepare = Arc::new(prepare);
        self
    }

    /// The attachments the "attachments intact" check sends, for a connector that takes
    /// only some files (named after what the sample lists, of some media types). Default:
    /// a 70,000-byte binary file holding every byte value and a short UTF-8 text with
    /// line breaks and a NUL, which a careless conversion would change.
    pub fn attachments(mut self, attachments: Vec<Attachment>) -> Self {
        self.attachments = Some(attachments);
        self
    }

    /// How many hostile documents are tried (default 64).
    pub fn hostile_cases(mut self, cases: u32) -> Self {
        self.hostile_cases = cases;
        self
    }

    /// Runs every check and reports each one.
    pub async fn run(&self) -> Report {
        let mut checks = Vec::new();
        checks.push(check("accepts the sample", self.accepts_sample().await));
        checks.push(check("idempotent", self.idempotent().await));
        checks.push(check(
            "transient failures are transient",
            self.classifies(Answer::Transient).await,
        ));
        checks.push(check(
            "refusals are permanent",
            self.classifies(Answer::Permanent).await,
        ));
        checks.push(check("timeout honoured", self.honours_timeout().await));
        checks.push(check("cancellation safe", self.cancellation_safe().await));
        checks.push(check("attachments intact", self.attachments_intact().await));
        checks.push(check(
            "no panic on hostile documents",
            self.survives_hostile_documents().await,
        ));
        Report { checks }
    }

    fn context(&self, attempt: u32) -> Context {
        let key = format!(
            "testkit:conformance:{}",
            NEXT_KEY.fetch_add(1, Ordering::Relaxed)
        );
        self.with_key(&key, attempt)
    }

    fn with_key(&self, key: &str, attempt: u32) -> Context {
        (self.prepare)(Context::new(key, "44043", "conformance", "testkit").with_attempt(attempt))
    }

    /// Delivers the sample made for the context's key.
    async fn deliver(&self, ctx: &Context) -> Result<crate::Receipt, ConnectorError> {
        let document = (self.sample)(ctx.idempotency_key());
        self.connector.deliver(&document, ctx).await
    }

    async fn accepts_sample(&self) -> Verdict {
        self.target.stage(Answer::Accept).await;
        let ctx = self.context(1);
        match self.deliver(&ctx).await {
            Ok(_) => match self.target.effects(ctx.idempotency_key()).await {
                1 => Verdict::Passed,
                n => Verdict::Failed(format!(
                    "the sample was delivered once and took effect {n} times at the target: \
                     the connector must make exactly one effect per delivery"
                )),
            },
            Err(error) => Verdict::Failed(format!(
                "the sample document was refused ({}): give the kit a document your \
                 connector accepts with `Kit::sample`, or fix the connector",
                error.report()
            )),
        }
    }

    async fn idempotent(&self) -> Verdict {
        self.target.stage(Answer::Accept).await;
        let first = self.context(1);
        let again = self.with_key(first.envelope_id(), 2);
        for ctx in [&first, &again] {
            if let Err(error) = self.deliver(ctx).await {
                return Verdict::Failed(format!(
                    "delivering the same envelope again failed ({}): a redelivery of a \
                     démarche the target already has must succeed (and change nothing)",
                    error.report()
                ));
            }
        }
        match self.target.effects(first.idempotency_key()).await {
            1 => Verdict::Passed,
            n => Verdict::Failed(format!(
                "the same envelope delivered twice took effect {n} times at the target: pass \
                 `ctx.idempotency_key()` to the target (an `Idempotency-Key` header, a file \
                 name, an external reference) so that it applies the démarche once"
            )),
        }
    }

    async fn classifies(&self, answer: Answer) -> Verdict {
        if !self.target.stage(answer).await {
            return Verdict::Skipped(format!("this target cannot stage a {answer:?} answer"));
        }
        let ctx = self.context(1);
        let result = self.deliver(&ctx).await;
        self.target.stage(Answer::Accept).await;
        match (answer, result) {
            (Answer::Transient, Err(error)) if !error.is_permanent() => Verdict::Passed,
            (Answer::Permanent, Err(error)) if error.is_permanent() => Verdict::Passed,
            (Answer::Transient, Err(error)) => Verdict::Failed(format!(
                "the target failed in a way that goes away (e.g. HTTP 503, connection \
                 reset) and the connector called it permanent (\"{}\"): the démarche would \
                 go to the dead letters instead of being retried; return \
                 `ConnectorError::transient` (or `retry_after`) for such failures",
                error.report()
            )),
            (_, Err(error)) => Verdict::Failed(format!(
                "the target refused the document for good (e.g. HTTP 422) and the connector \
                 called it transient (\"{}\"): the démarche would be retried until its \
                 attempts run out; return `ConnectorError::permanent` for refusals",
                error.report()
            )),
            (_, Ok(_)) => Verdict::Failed(format!(
                "the target answered {answer:?} and the connector reported the démarche \
                 delivered: check the target's answer before returning a receipt"
            )),
        }
    }

    async fn honours_timeout(&self) -> Verdict {
        if !self.target.stage(Answer::Hang).await {
            return Verdict::Skipped("this target cannot stage a hung server".into());
        }
        let ctx = self.context(1);
        let started = Instant::now();
        let limit = self.timeout + TIMEOUT_MARGIN;
        let result = tokio::time::timeout(limit, self.deliver(&ctx)).await;
        self.target.stage(Answer::Accept).await;
        match result {
            Err(_) => Verdict::Failed(format!(
                "a delivery to a target that never answers was still waiting after {:?} \
                 (configured timeout {:?}): bound every call to the target with the \
                 configured timeout",
                started.elapsed(),
                self.timeout
            )),
            Ok(Ok(_)) => Verdict::Failed(
                "a target that never answered was reported delivered: a delivery is \
                 delivered only once the target said so"
                    .into(),
            ),
            Ok(Err(error)) if error.is_permanent() => Verdict::Failed(format!(
                "a timeout was reported as permanent (\"{}\"): a target that does not answer \
                 in time may answer later, so return `ConnectorError::transient`",
                error.report()
            )),
            Ok(Err(_)) => Verdict::Passed,
        }
    }

    async fn cancellation_safe(&self) -> Verdict {
        self.target.stage(Answer::Accept).await;
        // Dropped at different moments: before it starts, while connecting, in the middle.
        for after in [0u64, 1, 2, 5, 10, 20] {
            let ctx = self.context(1);
            let key = ctx.idempotency_key().to_owned();
            let _ = tokio::time::timeout(Duration::from_millis(after), self.deliver(&ctx)).await;
            // Whatever the dropped future left running has a moment to settle.
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.target.partial(&key).await {
                return Verdict::Failed(format!(
                    "a delivery dropped after {after} ms left an incomplete effect at the \
                     target: write to a temporary place and publish in one step (rename), \
                     or use the target's transactions"
                ));
            }
            if let Err(error) = self.deliver(&ctx).await {
                return Verdict::Failed(format!(
                    "after a delivery was dropped after {after} ms, delivering the same \
                     envelope again failed ({}): a retry after a cancelled delivery must \
                     complete it",
                    error.report()
                ));
            }
            let effects = self.target.effects(&key).await;
            if effects != 1 {
                return Verdict::Failed(format!(
                    "a delivery dropped after {after} ms and then retried took effect \
                     {effects} times: the retry must complete the démarche exactly once \
                     (pass the idempotency key to the target)"
                ));
            }
        }
        Verdict::Passed
    }

    async fn attachments_intact(&self) -> Verdict {
        self.target.stage(Answer::Accept).await;
        let attachments = self.attachments.clone().unwrap_or_else(|| {
            // Every byte value, and text that a careless conversion would change.
            let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
            let text = "Pièce jointe : été\r\n\u{0}fin".as_bytes().to_vec();
            vec![
                Attachment::new("justificatif", "scan.pdf", "application/pdf", binary),
                Attachment::new("note", "note.txt", "text/plain", text),
            ]
        });
        let sent: Vec<Vec<u8>> = attachments.iter().map(|a| a.content.clone()).collect();
        let ctx = self.context(1).with_attachments(attachments);
        if let Err(error) = self.deliver(&ctx).await {
            return Verdict::Failed(format!(
                "the sample with {} attachments was refused ({})",
                sent.len(),
                error.report()
            ));
        }
        match self.target.attachments(ctx.idempotency_key()).await {
            None => Verdict::Skipped("this target does not take attachments".into()),
            Some(received) if received == sent => Verdict::Passed,
            Some(received) => Verdict::Failed(format!(
                "the target received {} attachments of {:?} bytes instead of the {} sent \
                 ({:?} bytes), or different bytes: pass `ctx.attachments()` through \
                 unchanged (no text conversion of binary content)",
                received.len(),
                received.iter().map(Vec::len).collect::<Vec<_>>(),
                sent.len(),
                sent.iter().map(Vec::len).collect::<Vec<_>>()
            )),
        }
    }

    async fn survives_hostile_documents(&self) -> Verdict {
        self.target.stage(Answer::Accept).await;
        // First the classic troublemakers, each tried for certain; then random ones.
        let count = fixed_hostile_documents(&(self.sample)("testkit:hostile")).len();
        for n in 0..count {
            let connector = self.connector.clone();
            let ctx = self.context(1);
            // Made from the sample for this context's key, as the mapping would.
            let (what, document) =
                fixed_hostile_documents(&(self.sample)(ctx.idempotency_key())).swap_remove(n);
            let delivered = tokio::spawn(async move {
                let _ = connector.deliver(&document, &ctx).await;
            })
            .await;
            if matches!(&delivered, Err(error) if error.is_panic()) {
                return Verdict::Failed(format!(
                    "the connector panicked on the sample with {what}: a document comes \
                     from citizens; refuse what you cannot handle with \
                     `ConnectorError::permanent`, naming the field, never panic (no \
                     `unwrap`, indexing or byte slicing of its texts)"
                ));
            }
        }
        let mut runner = TestRunner::new(ProptestConfig {
            cases: self.hostile_cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        let handle = tokio::runtime::Handle::current();
        // One key for every random case: the document still names its envelope.
        let key = format!(
            "testkit:hostile:{}",
            NEXT_KEY.fetch_add(1, Ordering::Relaxed)
        );
        let sample = (self.sample)(&key);
        let connector = self.connector.clone();
        let prepare = self.prepare.clone();
        // The property runs on a thread of its own, each case on the test's runtime: a
        // panic in `deliver` is caught there (as a failed case) and shrunk.
        let outcome = tokio::task::spawn_blocking(move || {
            // Made here: proptest's strategies cannot move between threads.
            runner.run(&hostile_document(sample), |document| {
                let connector = connector.clone();
                let ctx = prepare(Context::new(&key, "44043", "conformance", "testkit"));
                let delivered = handle.block_on(tokio::spawn(async move {
                    let _ = connector.deliver(&document, &ctx).await;
                }));
                match delivered {
                    Err(error) if error.is_panic() => {
                        Err(TestCaseError::fail("the connector panicked"))
                    }
                    _ => Ok(()),
                }
            })
        })
        .await;
        match outcome {
            Ok(Ok(())) => Verdict::Passed,
            Ok(Err(failure)) => Verdict::Failed(format!(
                "the connector panicked on a hostile document ({failure}): a document comes \
                 from citizens; refuse what you cannot handle with \
                 `ConnectorError::permanent`, naming the field, never panic (no `unwrap`, \
                 indexing or slicing on its values)"
            )),
            Err(error) => {
                Verdict::Failed(format!("the hostile-document check itself failed: {error}"))
            }
        }
    }
}

/// Makes one hostile text (a function: some are long).
type MakeText = fn() -> String;

/// The hostile texts every connector meets one day.
const HOSTILE_TEXTS: [(&str, MakeText); 5] = [
    ("every text empty", String::new),
    ("every text 100,000 characters long", || "x".repeat(100_000)),
    ("control characters in every text", || {
        "\u{0}\u{1}\u{1b}[31m\r\n\t".into()
    }),
    ("markup and path characters in every text", || {
        "'\"<>&]]>{{ }}%s%n../../etc/passwd".into()
    }),
    ("unusual Unicode in every text", || {
        "\u{202e}\u{fffd}\u{10ffff}🇫🇷 Œuvre – ’ é".into()
    }),
];

/// The sample made hostile in each classic way, with what was done to it.
fn fixed_hostile_documents(sample: &Value) -> Vec<(String, Value)> {
    let mut documents = Vec::new();
    for (what, text) in HOSTILE_TEXTS {
        let mut document = sample.clone();
        replace_every_text(&mut document, &Value::String(text()));
        documents.push((what.to_owned(), document));
    }
    for number in [
        serde_json::json!(u64::MAX),
        serde_json::json!(-1),
        serde_json::json!(1e308),
    ] {
        let mut document = sample.clone();
        replace_every_leaf(&mut document, &|leaf| leaf.is_number(), &number);
        documents.push((format!("every number replaced by {number}"), document));
    }
    for path in leaf_paths(sample) {
        let mut document = sample.clone();
        if let Some(slot) = document.pointer_mut(&path) {
            *slot = Value::Null;
        }
        documents.push((format!("`{path}` null"), document));
    }
    for (what, document) in [
        ("an empty object", serde_json::json!({})),
        ("a list instead of an object", serde_json::json!([])),
        ("a text instead of an object", serde_json::json!("démarche")),
        ("null instead of an object", Value::Null),
    ] {
        documents.push((format!("{what} as the whole document"), document));
    }
    documents
}

fn check(name: &'static str, verdict: Verdict) -> Check {
    Check { name, verdict }
}

/// Documents made from `sample`: each text replaced by a hostile one, numbers by extreme
/// ones, or whole documents of arbitrary JSON.
fn hostile_document(sample: Value) -> impl Strategy<Value = Value> {
    let texts = prop_oneof![
        Just(String::new()),
        Just("x".repeat(100_000)),
        Just("\u{0}\u{1}\u{1b}[31m\r\n\t".to_string()),
        Just("'\"<>&]]>{{ }}%s%n../../etc/passwd".to_string()),
        Just("\u{202e}\u{fffd}\u{10ffff}🇫🇷 Œuvre – ’".to_string()),
        ".{0,64}",
    ];
    let numbers = prop_oneof![
        Just(serde_json::json!(0)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(i64::MIN)),
        Just(serde_json::json!(1e308)),
        Just(serde_json::json!(-0.000001)),
    ];
    let leaves = prop_oneof![
        texts.clone().prop_map(Value::String),
        numbers,
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
    ];
    let arbitrary = leaves.clone().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    });
    let paths = leaf_paths(&sample);
    let mutated = if paths.is_empty() {
        Just(sample.clone()).boxed()
    } else {
        (prop::sample::select(paths), leaves, any::<bool>())
            .prop_map(move |(path, leaf, all)| {
                let mut document = sample.clone();
                if all {
                    replace_every_text(&mut document, &leaf);
                } else if let Some(slot) = document.pointer_mut(&path) {
                    *slot = leaf;
                }
                document
            })
            .boxed()
    };
    prop_oneof![3 => mutated, 1 => arbitrary]
}

/// JSON pointers to every leaf of `value`.
fn leaf_paths(value: &Value) -> Vec<String> {
    fn walk(value: &Value, path: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    walk(child, format!("{path}/{escaped}"), out);
                }
            }
            Value::Array(items) => {
                for (n, child) in items.iter().enumerate() {
                    walk(child, format!("{path}/{n}"), out);
                }
            }
            _ => out.push(path),
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

/// Replaces every text of `value` by `leaf` when it is a text (a long text everywhere).
fn replace_every_text(value: &mut Value, leaf: &Value) {
    if leaf.is_string() {
        replace_every_leaf(value, &Value::is_string, leaf);
    }
}

/// Replaces every leaf of `value` that `which` picks by `leaf`.
fn replace_every_leaf(value: &mut Value, which: &dyn Fn(&Value) -> bool, leaf: &Value) {
    match value {
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| replace_every_leaf(v, which, leaf)),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| replace_every_leaf(v, which, leaf)),
        other if which(other) => *other = leaf.clone(),
        _ => {}
    }
}
