//! The machine's broker as the tests use it: its address, the names a test gives its
//! objects, and the sweep of the objects that killed runs left behind.
//!
//! A test's exchanges and queues are named after [`unique`]: `t-<unix seconds>-<pid>-<n>-<nanos>`
//! and a suffix after a dot. The seconds let [`sweep_stale`] recognise, at the start of a
//! suite, what a run killed more than a day ago (no panic, no `Drop`) left on the broker,
//! and remove only that: a name without that exact shape is never touched.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The prefixes that tests give [`unique`] for broker objects (scenarios, the compose
/// stack's names in tests/tests/deploy.rs): the only ones [`sweep_stale`] looks at.
pub const TEST_PREFIXES: [&str; 2] = ["t", "compose"];

/// How old a test's object must be before [`sweep_stale`] removes it: no test lasts a day,
/// so an object that old belongs to a run that was killed.
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The broker of the machine (override with `AIGUILLAGE_TEST_AMQP_URL`).
pub fn amqp_url() -> String {
    std::env::var("AIGUILLAGE_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The time since the epoch.
pub fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A name unique to this test run and call, stamped with the time it was made:
/// `{prefix}-{unix seconds}-{pid}-{counter}-{nanos, hex}`.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = now();
    format!(
        "{prefix}-{}-{}-{n}-{:x}",
        now.as_secs(),
        std::process::id(),
        now.subsec_nanos()
    )
}

/// When a broker object's name was made by [`unique`] with one of [`TEST_PREFIXES`]: its
/// stamp (unix seconds); `None` for any other name.
pub fn stamp_of(name: &str) -> Option<u64> {
    // The unique part ends at the first dot (`t-….demarches`, `t-….clisson.retry`).
    let head = name.split('.').next()?;
    let mut parts = head.split('-');
    let prefix = parts.next()?;
    if !TEST_PREFIXES.contains(&prefix) {
        return None;
    }
    let seconds = parts.next()?;
    let pid = parts.next()?;
    let counter = parts.next()?;
    let nanos = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let shaped = seconds.len() == 10
        && digits(seconds)
        && digits(pid)
        && digits(counter)
        && !nanos.is_empty()
        && nanos.bytes().all(|b| b.is_ascii_hexdigit())
        && parts.next().is_none();
    if shaped {
        seconds.parse().ok()
    } else {
        None
    }
}

/// The names among `names` that [`unique`] stamped more than [`STALE_AFTER`] before `now`
/// (unix seconds).
pub fn stale_names<'a>(names: impl IntoIterator<Item = &'a str>, now: u64) -> Vec<String> {
    names
        .into_iter()
        .filter(|name| {
            stamp_of(name).is_some_and(|stamp| now.saturating_sub(stamp) > STALE_AFTER.as_secs())
        })
        .map(str::to_owned)
        .collect()
}

/// The names of the broker's queues or exchanges (`what`: `queues`, `exchanges`) through
/// `rabbitmqctl` (the management API may not be enabled); `None` when it cannot tell.
fn list_names(what: &str) -> Option<Vec<String>> {
    let output = std::process::Command::new("rabbitmqctl")
        .args([
            &format!("list_{what}"),
            "name",
            "--no-table-headers",
            "--silent",
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| line.trim().to_owned())
            .filter(|line| !line.is_empty())
            .collect(),
    )
}

/// Removes the queues and exchanges that tests made more than a day ago (runs killed
/// before their clean-up); how many it removed. Once per test binary, and at most every
/// ten minutes on the machine (a marker file in the temporary directory), since listing
/// takes `rabbitmqctl` a second. Best effort: without `rabbitmqctl` it says so and goes on.
pub async fn sweep_stale() -> usize {
    static ONCE: tokio::sync::OnceCell<usize> = tokio::sync::OnceCell::const_new();
    *ONCE.get_or_init(sweep_stale_now).await
}

async fn sweep_stale_now() -> usize {
    let marker = std::env::temp_dir().join("aiguillage-tests-sweep");
    let recent = std::fs::metadata(&marker)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age < Duration::from_secs(600));
    if recent {
        return 0;
    }
    let _ = std::fs::write(&marker, b"");
    sweep(now().as_secs()).await
}

/// Removes the queues and exchanges that [`unique`] stamped more than [`STALE_AFTER`]
/// before `now` (unix seconds), whenever it last ran; how many it removed.
pub async fn sweep(now: u64) -> usize {
    let (Some(queues), Some(exchanges)) = (list_names("queues"), list_names("exchanges")) else {
        eprintln!("rabbitmqctl cannot list the broker's objects: no sweep of old test queues");
        return 0;
    };
    let queues = stale_names(queues.iter().map(String::as_str), now);
    let exchanges = stale_names(exchanges.iter().map(String::as_str), now);
    if queues.is_empty() && exchanges.is_empty() {
        return 0;
    }
    let Ok(connection) =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default()).await
    else {
        return 0;
    };
    let removed = delete_objects(&connection, &queues, &exchanges).await;
    let _ = connection.close(200, "swept".into()).await;
    removed
}

/// Deletes queues then exchanges (whatever their state); how many the broker removed.
pub async fn delete_objects(
    connection: &lapin::Connection,
    queues: &[String],
    exchanges: &[String],
) -> usize {
    let Ok(channel) = connection.create_channel().await else {
        return 0;
    };
    let mut removed = 0;
    for queue in queues {
        let deleted = channel
            .queue_delete(queue.as_str().into(), Default::default())
            .await;
        removed += usize::from(deleted.is_ok());
    }
    for exchange in exchanges {
        let deleted = channel
            .exchange_delete(exchange.as_str().into(), Default::default())
            .await;
        removed += usize::from(deleted.is_ok());
    }
    removed
}

/// Closes the broker connections whose name contains `marker` (a scenario's prefix names
/// its gateway's connection) with `rabbitmqctl close_connection`; how many were closed.
pub fn close_connections_named(marker: &str) -> usize {
    let output = std::process::Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "--no-table-headers",
            "--silent",
            "pid",
            "client_properties",
        ])
        .output()
        .expect("rabbitmqctl (the tests run on the machine's RabbitMQ)");
    let listing = String::from_utf8_lossy(&output.stdout);
    let mut closed = 0;
    for line in listing.lines().filter(|line| line.contains(marker)) {
        let pid = line.split_whitespace().next().unwrap_or_default();
        let status = std::process::Command::new("rabbitmqctl")
            .args(["close_connection", pid, "closed by an end-to-end test"])
            .status()
            .expect("rabbitmqctl close_connection");
        assert!(status.success());
        closed += 1;
    }
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unique_name_carries_its_stamp() {
        let name = unique("t");
        let stamp = stamp_of(&format!("{name}.demarches")).expect("a stamped name");
        assert!(now().as_secs().abs_diff(stamp) < 5);
        assert!(stamp_of(&unique("compose")).is_some());
        assert!(stamp_of(&unique("mot-de-passe")).is_none());
    }

    #[test]
    fn only_test_names_older_than_a_day_are_stale() {
        let now = 1_800_000_000;
        let old = now - 2 * 24 * 3600;
        let fresh = now - 3600;
        let names = [
            format!("t-{old}-12-0-1f.demarches"),
            format!("t-{old}-12-0-1f.clisson-famille.retry"),
            format!("compose-{old}-9-3-abc.status"),
            format!("t-{fresh}-12-1-2a.demarches"),
            // Not a test's: no prefix of ours, no stamp, another shape.
            format!("aiguillage-{old}-12-0-1f.demarches"),
            "aiguillage.demarches".to_owned(),
            "t.demarches".to_owned(),
            format!("t-{old}.demarches"),
            format!("t-{old}-12-0-zz.demarches"),
            "amq.topic".to_owned(),
        ];
        let stale = stale_names(names.iter().map(String::as_str), now);
        assert_eq!(stale, names[..3].to_vec());
    }
}
