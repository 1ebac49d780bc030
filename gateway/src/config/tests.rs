use super::*;
use std::time::Duration;

#[test]
fn default_retry_policy_spreads_over_about_a_day() {
    let policy = RetryPolicy::default();
    let tiers = policy.tiers();
    let total: Duration = (1..policy.max_attempts)
        .map(|attempt| tiers[policy.tier_after(attempt, tiers.len())])
        .sum();
    assert!(total > Duration::from_secs(20 * 3600), "{total:?}");
    assert!(total < Duration::from_secs(26 * 3600), "{total:?}");
    assert_eq!(*tiers.last().unwrap(), Duration::from_secs(6 * 3600));
}

#[test]
fn tiers_stop_growing_at_max_delay() {
    let policy = RetryPolicy {
        max_attempts: 6,
        initial: Duration::from_millis(100),
        max_delay: Duration::from_millis(250),
    };
    assert_eq!(
        policy.tiers(),
        vec![
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(250)
        ]
    );
    assert_eq!(policy.tier_after(1, 3), 0);
    assert_eq!(policy.tier_after(5, 3), 2);
}

#[test]
fn retry_queues_are_named_by_their_delay() {
    let bus = BusConfig::default();
    assert_eq!(
        bus.retry_queue("famille", Duration::from_secs(300)),
        "aiguillage.famille.retry.5m"
    );
    assert_eq!(
        bus.retry_queue("famille", Duration::from_millis(1500)),
        "aiguillage.famille.retry.1500ms"
    );
    assert_eq!(
        bus.retry_queue("famille", Duration::from_secs(6 * 3600)),
        "aiguillage.famille.retry.6h"
    );
    assert_eq!(
        bus.retry_queue("famille", Duration::from_secs(90)),
        "aiguillage.famille.retry.90s"
    );
}

#[test]
fn redaction_hides_the_password() {
    assert_eq!(
        redact_url("amqp://guest:s3cret@127.0.0.1:5672/%2f"),
        "amqp://guest:***@127.0.0.1:5672/%2f"
    );
}

#[test]
fn connector_names_are_plain() {
    assert!(check_connector_name("clisson-cityweb").is_ok());
    assert!(check_connector_name("Clisson").is_err());
    assert!(check_connector_name("a.b").is_err());
    assert!(check_connector_name("").is_err());
    let reserved = check_connector_name("unrouted").unwrap_err();
    assert!(reserved.contains("réservé"), "{reserved}");
}
