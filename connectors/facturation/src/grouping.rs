//! Which bordereau a grouped titre goes into, and when a bordereau is due: the batch keys
//! of the gateway's holding (see `aiguillage_connector::holding`).
//!
//! Keys start with the exercice (a bordereau holds the titres of one exercice) and sort
//! in time: `2026-P20261129T170000Z` (the period cut at that instant, UTC) or
//! `2026-N00000003` (the third bordereau of `titres` titres, by `IdPce`). A titre whose
//! bordereau was sealed while it was on its way (a retry) goes into `<key>-late`, written
//! at the next flush.

use std::time::Duration;

use aiguillage_connector::holding::PendingBatch;
use time::OffsetDateTime;

use crate::config::Grouping;

/// The suffix of a batch for titres that missed their sealed bordereau.
pub const LATE: &str = "-late";

/// A checked grouping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// A bordereau every `every`, cut at `at` seconds after midnight UTC.
    Period {
        /// The period.
        every: Duration,
        /// The cut's time of day, in seconds after midnight UTC.
        at: u32,
    },
    /// A bordereau every `titres` titres, or once its first titre waited `max_wait`.
    Count {
        /// Titres per bordereau.
        titres: u32,
        /// The longest a titre waits.
        max_wait: Duration,
    },
}

impl Plan {
    /// Checks `grouping`.
    ///
    /// # Errors
    ///
    /// What is wrong with it, for a [`ConfigError`](aiguillage_connector::ConfigError) on
    /// `grouping`.
    pub fn new(grouping: &Grouping) -> Result<Self, String> {
        match (grouping.every, grouping.titres) {
            (Some(every), None) => {
                if grouping.max_wait.is_some() {
                    return Err("`max_wait` va avec `titres`, pas avec `every`".into());
                }
                if every < Duration::from_secs(60) {
                    return Err(format!(
                        "`every` vaut {every:?} : un bordereau par minute au plus (par exemple \"1d\")"
                    ));
                }
                let at = match grouping.at.as_deref() {
                    None => 0,
                    Some(text) => parse_time_of_day(text).ok_or_else(|| {
                        format!(
                            "`at` vaut `{}` : une heure de la journée telle que \"17:00\" (UTC)",
                            text.escape_debug()
                        )
                    })?,
                };
                Ok(Self::Period { every, at })
            }
            (None, Some(titres)) => {
                if grouping.at.is_some() {
                    return Err("`at` va avec `every`, pas avec `titres`".into());
                }
                if titres == 0 || titres > 99_999 {
                    return Err(format!(
                        "`titres` vaut {titres} : de 1 à 99999 titres par bordereau (NbrPce)"
                    ));
                }
                Ok(Self::Count {
                    titres,
                    max_wait: grouping.max_wait.unwrap_or(Duration::from_secs(86_400)),
                })
            }
            _ => Err(
                "indiquer soit `every` (avec `at`) : `{ every = \"1d\", at = \"17:00\" }`, soit `titres` : `{ titres = 50 }`"
                    .into(),
            ),
        }
    }

    /// The batch of titre `id_pce` of `exercice`, delivered at `now`.
    pub fn batch(&self, exercice: u16, id_pce: u64, now: OffsetDateTime) -> String {
        match self {
            Self::Period { every, at } => {
                let cut = next_cut(now, *every, *at);
                format!(
                    "{exercice:04}-P{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                    cut.year(),
                    u8::from(cut.month()),
                    cut.day(),
                    cut.hour(),
                    cut.minute(),
                    cut.second()
                )
            }
            Self::Count { titres, .. } => {
                let titres = u64::from(*titres);
                format!("{exercice:04}-N{:08}", id_pce.div_ceil(titres))
            }
        }
    }

    /// Whether `pending` is due at `now`.
    pub fn due(&self, pending: &PendingBatch, now: OffsetDateTime) -> bool {
        if pending.sealed || pending.batch.ends_with(LATE) {
            return true;
        }
        match self {
            Self::Period { .. } => cut_of(&pending.batch).is_none_or(|cut| now >= cut),
            Self::Count { titres, max_wait } => {
                if pending.items >= u64::from(*titres) {
                    return true;
                }
                let opened = OffsetDateTime::parse(
                    &pending.opened_at,
                    &time::format_description::well_known::Rfc3339,
                );
                opened.map_or(true, |opened| now - opened >= *max_wait)
            }
        }
    }
}

/// The exercice of a batch key.
pub fn exercice_of(batch: &str) -> Option<u16> {
    batch.get(..4)?.parse().ok()
}

/// The cut instant of a period key.
fn cut_of(batch: &str) -> Option<OffsetDateTime> {
    let text = batch.get(6..21)?;
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<u32>().ok();
    let date = time::Date::from_calendar_date(
        i32::try_from(number(0..4)?).ok()?,
        time::Month::try_from(u8::try_from(number(4..6)?).ok()?).ok()?,
        u8::try_from(number(6..8)?).ok()?,
    )
    .ok()?;
    let time = time::Time::from_hms(
        u8::try_from(number(9..11)?).ok()?,
        u8::try_from(number(11..13)?).ok()?,
        u8::try_from(number(13..15)?).ok()?,
    )
    .ok()?;
    Some(date.with_time(time).assume_utc())
}

/// The first cut strictly after `now`: cuts fall at `at` and every `every` from there.
fn next_cut(now: OffsetDateTime, every: Duration, at: u32) -> OffsetDateTime {
    let midnight = now.replace_time(time::Time::MIDNIGHT);
    // An anchor before now: yesterday's cut.
    let anchor = midnight + Duration::from_secs(u64::from(at)) - Duration::from_secs(86_400);
    let elapsed = (now - anchor).whole_seconds().max(0) as u64;
    let every = every.as_secs().max(1);
    anchor + Duration::from_secs((elapsed / every + 1) * every)
}

fn parse_time_of_day(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours < 24 && minutes < 60).then_some(hours * 3600 + minutes * 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn period() -> Plan {
        Plan::Period {
            every: Duration::from_secs(86_400),
            at: 17 * 3600,
        }
    }

    #[test]
    fn a_daily_bordereau_is_cut_at_its_time() {
        let plan = period();
        assert_eq!(
            plan.batch(2026, 1, datetime!(2026-11-29 10:00 UTC)),
            "2026-P20261129T170000Z"
        );
        assert_eq!(
            plan.batch(2026, 1, datetime!(2026-11-29 17:00 UTC)),
            "2026-P20261130T170000Z",
            "at the cut: the next one"
        );
        assert_eq!(
            plan.batch(2026, 1, datetime!(2026-11-29 18:00 UTC)),
            "2026-P20261130T170000Z"
        );
        let pending = |batch: &str| PendingBatch {
            batch: batch.into(),
            items: 3,
            sealed: false,
            opened_at: "2026-11-29T10:00:00.000Z".into(),
        };
        assert!(!plan.due(
            &pending("2026-P20261129T170000Z"),
            datetime!(2026-11-29 16:59 UTC)
        ));
        assert!(plan.due(
            &pending("2026-P20261129T170000Z"),
            datetime!(2026-11-29 17:00 UTC)
        ));
        assert_eq!(exercice_of("2026-P20261129T170000Z"), Some(2026));
    }

    #[test]
    fn a_bordereau_of_titres_is_due_full_or_old() {
        let plan = Plan::new(&Grouping::titres(3)).unwrap();
        assert_eq!(
            plan.batch(2026, 1, OffsetDateTime::now_utc()),
            "2026-N00000001"
        );
        assert_eq!(
            plan.batch(2026, 3, OffsetDateTime::now_utc()),
            "2026-N00000001"
        );
        assert_eq!(
            plan.batch(2026, 4, OffsetDateTime::now_utc()),
            "2026-N00000002"
        );
        let pending = |items| PendingBatch {
            batch: "2026-N00000001".into(),
            items,
            sealed: false,
            opened_at: "2026-11-29T10:00:00.000Z".into(),
        };
        assert!(!plan.due(&pending(2), datetime!(2026-11-29 10:30 UTC)));
        assert!(plan.due(&pending(3), datetime!(2026-11-29 10:30 UTC)));
        assert!(plan.due(&pending(2), datetime!(2026-11-30 10:00 UTC)));
    }

    #[test]
    fn wrong_groupings_are_refused() {
        let mut grouping = Grouping::titres(0);
        assert!(Plan::new(&grouping).is_err());
        grouping.titres = None;
        assert!(Plan::new(&grouping).is_err(), "neither");
        grouping.every = Some(Duration::from_secs(86_400));
        grouping.at = Some("25:00".into());
        assert!(Plan::new(&grouping).unwrap_err().contains("`at`"));
        grouping.at = Some("17:00".into());
        assert_eq!(Plan::new(&grouping).unwrap(), period());
    }
}
