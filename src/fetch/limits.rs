//! PURE per-host politeness arithmetic: next-slot reservation, backoff, Retry-After. No tokio, no Redis:
//! every function takes the current time explicitly (milliseconds on some clock, or a `SystemTime`).
//!
//! The same arithmetic runs in-process (`LocalLimiter`) and, transcribed to Lua, in
//! Redis (`redis_limiter`) where the clock is Redis' own `TIME`.

use std::time::{Duration, SystemTime};

/// Longest Retry-After honoured; a larger value is clamped (a broken or hostile header must not block
/// a host for years).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

/// A source of "now" in milliseconds (monotonic for the in-process limiter).
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

/// Milliseconds since the clock was created, from `std::time::Instant`.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    base: std::time::Instant,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self {
            base: std::time::Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }
}

/// Politeness state of one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostState {
    /// Earliest start of the next request (the slot after the last one reserved).
    pub next_ms: u64,
    /// No request before this (Retry-After / backoff after a 429 or 503).
    pub blocked_until_ms: u64,
    /// Consecutive throttling answers (429/503) not yet relaxed by successes.
    pub failures: u32,
    /// When the last request actually started.
    pub last_start_ms: u64,
}

/// The result of asking for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The slot is ours: start the request after waiting this long.
    Granted { wait_ms: u64 },
    /// The host is not free for `wait_ms` (over the defer threshold); nothing was reserved.
    Deferred { wait_ms: u64 },
}

impl HostState {
    /// How long until a request could start, without reserving anything.
    pub fn peek_wait(&self, now_ms: u64) -> u64 {
        self.next_ms.max(self.blocked_until_ms).max(now_ms) - now_ms
    }

    /// Reserve the next slot: `slot = max(now, next, blocked)`, `next = slot + interval`, wait
    /// `slot - now`. When the wait is over `threshold_ms` nothing is reserved (deferrals waste no slot).
    pub fn reserve(&mut self, now_ms: u64, interval_ms: u64, threshold_ms: u64) -> Reservation {
        let slot = self.next_ms.max(self.blocked_until_ms).max(now_ms);
        let wait_ms = slot - now_ms;
        if wait_ms > threshold_ms {
            return Reservation::Deferred { wait_ms };
        }
        self.next_ms = slot.saturating_add(interval_ms);
        Reservation::Granted { wait_ms }
    }

    /// Just before sending, after waiting for a reserved slot: start now when the previous request
    /// started at least `interval_ms` ago and the host is not blocked (then record this start and return
    /// 0); else return how much longer to wait. This keeps the interval between ACTUAL starts even when a
    /// task wakes late for its slot (a late start pushes the next one back instead of shrinking the gap),
    /// and makes waiters respect a block that arrived after they reserved.
    pub fn try_start(&mut self, now_ms: u64, interval_ms: u64) -> u64 {
        let earliest = if self.last_start_ms == 0 {
            self.blocked_until_ms
        } else {
            self.last_start_ms
                .saturating_add(interval_ms)
                .max(self.blocked_until_ms)
        };
        if earliest > now_ms {
            return earliest - now_ms;
        }
        // Clocks here are whole milliseconds (truncated): record the start rounded up so the next start
        // is never less than the interval after this one.
        self.last_start_ms = now_ms + 1;
        0
    }

    /// A 429/503 answer: count it and block the host for `retry_after` when given, else for the
    /// backoff delay. Returns the delay applied.
    pub fn throttled(
        &mut self,
        now_ms: u64,
        retry_after: Option<Duration>,
        backoff: &Backoff,
        jitter: f64,
    ) -> u64 {
        self.failures = self.failures.saturating_add(1);
        let delay_ms = match retry_after {
            Some(d) => d.min(MAX_RETRY_AFTER).as_millis() as u64,
            None => backoff.delay_ms(self.failures, jitter),
        };
        self.blocked_until_ms = self.blocked_until_ms.max(now_ms.saturating_add(delay_ms));
        delay_ms
    }

    /// A normal answer: relax the backoff one step.
    pub fn succeeded(&mut self) {
        self.failures = self.failures.saturating_sub(1);
    }

    /// Nothing left to remember (the entry can be dropped).
    pub fn is_idle(&self, now_ms: u64, interval_ms: u64) -> bool {
        self.failures == 0
            && self.next_ms <= now_ms
            && self.blocked_until_ms <= now_ms
            && self.last_start_ms.saturating_add(interval_ms) <= now_ms
    }
}

/// Exponential backoff with jitter: `d = min(cap, base * 2^(failures-1))`, delay in `[d/2, d]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Backoff {
    /// The delay after the `failures`-th consecutive throttling answer; `jitter` in `[0, 1]`.
    pub fn delay_ms(&self, failures: u32, jitter: f64) -> u64 {
        if failures == 0 {
            return 0;
        }
        let exp = (failures - 1).min(62);
        let d = self
            .base_ms
            .saturating_mul(1u64 << exp)
            .min(self.max_ms)
            .max(self.base_ms.min(self.max_ms));
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let half = d / 2;
        half + ((d - half) as f64 * jitter).round() as u64
    }
}

/// Parse a `Retry-After` value: delay-seconds or an HTTP date (relative to `now`). A date in the past
/// is a zero delay; unparsable values are `None`. Clamped to [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = v.parse().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// Whether a status makes the polite layer back off (429 Too Many Requests, 503 Service Unavailable).
pub fn is_throttle_status(status: u16) -> bool {
    matches!(status, 429 | 503)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_by_the_interval() {
        let mut s = HostState::default();
        let now = 10_000;
        assert_eq!(
            s.reserve(now, 300, 5000),
            Reservation::Granted { wait_ms: 0 }
        );
        assert_eq!(
            s.reserve(now, 300, 5000),
            Reservation::Granted { wait_ms: 300 }
        );
        assert_eq!(
            s.reserve(now + 100, 300, 5000),
            Reservation::Granted { wait_ms: 500 }
        );
        assert_eq!(s.next_ms, now + 900);
        // After an idle period the slot is "now" again.
        assert_eq!(
            s.reserve(now + 5000, 300, 5000),
            Reservation::Granted { wait_ms: 0 }
        );
        assert_eq!(s.next_ms, now + 5300);
    }

    #[test]
    fn many_callers_keep_one_interval() {
        // N reservations at the same instant get waits 0, i, 2i, ...
        let mut s = HostState::default();
        let waits: Vec<u64> = (0..5)
            .map(|_| match s.reserve(0, 250, u64::MAX) {
                Reservation::Granted { wait_ms } => wait_ms,
                r => panic!("{r:?}"),
            })
            .collect();
        assert_eq!(waits, vec![0, 250, 500, 750, 1000]);
    }

    #[test]
    fn deferral_does_not_consume_a_slot() {
        let mut s = HostState {
            next_ms: 8000,
            ..Default::default()
        };
        assert_eq!(
            s.reserve(1000, 300, 5000),
            Reservation::Deferred { wait_ms: 7000 }
        );
        assert_eq!(s.next_ms, 8000, "a deferral must not move next");
        assert_eq!(s.peek_wait(1000), 7000);
        assert_eq!(
            s.reserve(3000, 300, 5000),
            Reservation::Granted { wait_ms: 5000 }
        );
        assert_eq!(s.next_ms, 8300);
    }

    #[test]
    fn zero_interval_is_off() {
        let mut s = HostState::default();
        for _ in 0..3 {
            assert_eq!(s.reserve(42, 0, 0), Reservation::Granted { wait_ms: 0 });
        }
    }

    #[test]
    fn late_starts_push_the_next_start_back() {
        let mut s = HostState::default();
        // Slots reserved at 1000: starts planned at 1000 and 1300.
        assert_eq!(
            s.reserve(1000, 300, 5000),
            Reservation::Granted { wait_ms: 0 }
        );
        assert_eq!(
            s.reserve(1000, 300, 5000),
            Reservation::Granted { wait_ms: 300 }
        );
        // The first task wakes 20 ms late and starts at 1020 (recorded rounded up: 1021).
        assert_eq!(s.try_start(1020, 300), 0);
        assert_eq!(s.last_start_ms, 1021);
        // The second wakes on time at 1300: it must wait until 1321.
        assert_eq!(s.try_start(1300, 300), 21);
        assert_eq!(s.try_start(1321, 300), 0);
        // A block that arrived after the reservation is respected too.
        s.blocked_until_ms = 2000;
        assert_eq!(s.try_start(1700, 300), 300);
        assert_eq!(s.try_start(2000, 300), 0);
        assert!(!s.is_idle(2100, 300));
        assert!(s.is_idle(2301, 300));
    }

    #[test]
    fn blocked_host_waits_until_unblocked() {
        let b = Backoff {
            base_ms: 1000,
            max_ms: 60_000,
        };
        let mut s = HostState::default();
        let applied = s.throttled(1000, Some(Duration::from_secs(3)), &b, 0.5);
        assert_eq!(applied, 3000);
        assert_eq!(s.blocked_until_ms, 4000);
        assert_eq!(
            s.reserve(2000, 100, 5000),
            Reservation::Granted { wait_ms: 2000 }
        );
        assert_eq!(s.next_ms, 4100);
        // A shorter block never shortens an existing one.
        s.throttled(2000, Some(Duration::from_secs(1)), &b, 0.5);
        assert_eq!(s.blocked_until_ms, 4000);
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_range() {
        let b = Backoff {
            base_ms: 2000,
            max_ms: 10_000,
        };
        assert_eq!(b.delay_ms(0, 1.0), 0);
        assert_eq!(b.delay_ms(1, 1.0), 2000);
        assert_eq!(b.delay_ms(1, 0.0), 1000);
        assert_eq!(b.delay_ms(2, 1.0), 4000);
        assert_eq!(b.delay_ms(3, 1.0), 8000);
        assert_eq!(b.delay_ms(4, 1.0), 10_000);
        assert_eq!(b.delay_ms(100, 1.0), 10_000);
        assert_eq!(b.delay_ms(100, 0.0), 5000);
        for j in [0.0, 0.1, 0.5, 0.99, 1.0, f64::NAN, -3.0, 7.0] {
            let d = b.delay_ms(2, j);
            assert!((2000..=4000).contains(&d), "{j}: {d}");
        }
    }

    #[test]
    fn backoff_grows_on_throttles_and_relaxes_on_successes() {
        let b = Backoff {
            base_ms: 1000,
            max_ms: 100_000,
        };
        let mut s = HostState::default();
        assert_eq!(s.throttled(0, None, &b, 1.0), 1000);
        assert_eq!(s.throttled(0, None, &b, 1.0), 2000);
        assert_eq!(s.throttled(0, None, &b, 1.0), 4000);
        assert_eq!(s.failures, 3);
        assert_eq!(s.blocked_until_ms, 4000);
        s.succeeded();
        s.succeeded();
        assert_eq!(s.failures, 1);
        assert_eq!(s.throttled(10_000, None, &b, 1.0), 2000);
        s.succeeded();
        s.succeeded();
        s.succeeded();
        assert_eq!(s.failures, 0);
        assert!(s.is_idle(20_000, 100));
        assert!(!s.is_idle(11_000, 100));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        // Obsolete formats are accepted too (RFC 850, asctime).
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:10 2015", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn throttle_statuses() {
        assert!(is_throttle_status(429));
        assert!(is_throttle_status(503));
        assert!(!is_throttle_status(500));
        assert!(!is_throttle_status(200));
    }
}
