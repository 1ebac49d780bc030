use super::*;
use time::macros::datetime;

#[test]
fn paris_local_times_get_their_offset() {
    let paris = Timezone::EuropeParis;
    let hour = |h: i8| UtcOffset::from_hms(h, 0, 0).unwrap();
    assert_eq!(paris.offset_of(datetime!(2026-11-28 10:12:00)), hour(1));
    assert_eq!(paris.offset_of(datetime!(2026-07-14 10:00:00)), hour(2));
    // 2026: summer time from Sunday 29 March 03:00 to Sunday 25 October 03:00 (local).
    assert_eq!(paris.offset_of(datetime!(2026-03-29 01:59:59)), hour(1));
    assert_eq!(paris.offset_of(datetime!(2026-03-29 03:00:00)), hour(2));
    assert_eq!(paris.offset_of(datetime!(2026-10-25 02:30:00)), hour(2));
    assert_eq!(paris.offset_of(datetime!(2026-10-25 03:00:00)), hour(1));
    assert_eq!(Timezone::parse("+04:00"), Some(Timezone::Fixed(hour(4))));
    assert_eq!(Timezone::parse("Mars/Olympus"), None);
}

#[test]
fn notify_tiers_double_up_to_the_maximum() {
    let notify = NotifyConfig {
        orig: "a".into(),
        secret: SecretString::from("k".to_owned()),
        concurrency: 1,
        timeout: Duration::from_secs(1),
        retry_initial: Duration::from_secs(10),
        retry_max_delay: Duration::from_secs(60),
    };
    assert_eq!(
        notify.tiers(),
        [10, 20, 40, 60].map(Duration::from_secs).to_vec()
    );
}
