//! The circuit breaker of one connector: after `failures` consecutive transient failures
//! it opens, deliveries pause (the démarches wait in the queue, unacknowledged or not yet
//! delivered to the gateway) and the target's health check is probed with backoff; when
//! it answers, one delivery is let through (half-open) and its result closes or reopens it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::config::BreakerPolicy;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Deliveries flow.
    Closed,
    /// Deliveries are paused; the health check is probed.
    Open,
    /// The target answered its health check: one delivery decides.
    HalfOpen,
}

impl BreakerState {
    /// Lowercase name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    consecutive: u32,
}

/// A connector's breaker, shared by its deliveries; it outlives bus sessions.
#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    inner: Mutex<Inner>,
    opened: AtomicU64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive: 0,
            }),
            opened: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state stays consistent whatever panicked while holding it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    /// How many times it opened since the gateway started.
    pub fn times_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// The target answered (delivered, or refused the document: it is up). Returns true
    /// when this closed the breaker.
    pub fn record_success(&self) -> bool {
        let mut inner = self.lock();
        inner.consecutive = 0;
        let was_open = inner.state != BreakerState::Closed;
        inner.state = BreakerState::Closed;
        was_open
    }

    /// A transient failure. Returns true when this opened the breaker.
    pub fn record_failure(&self) -> bool {
        let mut inner = self.lock();
        inner.consecutive = inner.consecutive.saturating_add(1);
        let open = match inner.state {
            BreakerState::Closed => {
                self.policy.failures > 0 && inner.consecutive >= self.policy.failures
            }
            BreakerState::HalfOpen => true,
            BreakerState::Open => false,
        };
        if open {
            inner.state = BreakerState::Open;
            self.opened.fetch_add(1, Ordering::Relaxed);
        }
        open
    }

    /// The health check answered: let one delivery through.
    pub fn half_open(&self) {
        let mut inner = self.lock();
        if inner.state == BreakerState::Open {
            inner.state = BreakerState::HalfOpen;
        }
    }

    /// The delay before health probe number `probe` (0 for the first).
    pub fn probe_delay(&self, probe: u32) -> Duration {
        let factor = 1u32.checked_shl(probe.min(20)).unwrap_or(u32::MAX);
        self.policy
            .probe_initial
            .saturating_mul(factor)
            .min(self.policy.probe_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32) -> Breaker {
        Breaker::new(BreakerPolicy {
            failures,
            probe_initial: Duration::from_secs(1),
            probe_max: Duration::from_secs(10),
        })
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(3);
        assert!(!b.record_failure());
        assert!(!b.record_failure());
        b.record_success();
        assert!(!b.record_failure());
        assert!(!b.record_failure());
        assert!(b.record_failure(), "third consecutive failure opens");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.record_failure(), "already open");
        assert_eq!(b.times_opened(), 1);
    }

    #[test]
    fn half_open_decides_on_one_result() {
        let b = breaker(2);
        b.record_failure();
        b.record_failure();
        b.half_open();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.record_failure(), "a failure while half-open reopens");
        b.half_open();
        assert!(b.record_success(), "a success while half-open closes");
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.times_opened(), 2);
    }

    #[test]
    fn zero_never_opens() {
        let b = breaker(0);
        for _ in 0..100 {
            assert!(!b.record_failure());
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn probes_back_off_to_the_maximum() {
        let b = breaker(1);
        assert_eq!(b.probe_delay(0), Duration::from_secs(1));
        assert_eq!(b.probe_delay(2), Duration::from_secs(4));
        assert_eq!(b.probe_delay(30), Duration::from_secs(10));
    }
}
