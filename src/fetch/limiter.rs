//! Per-host limiters: in-process ([`LocalLimiter`], per worker) or shared in Redis (failing closed while
//! Redis is unreachable, or falling back to the in-process one when configured so), and per-host
//! concurrency permits (per worker).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::limits::{Backoff, Clock, HostState, Reservation};
use super::redis_limiter::{AcquireReply, RedisLimiter};
use super::{FetchError, Validators};
use crate::config::RedisFailure;
use crate::dedup::{UrlCheck, UrlVerdict};
use crate::redis_conn::{LimiterFallback, RedisConn};

const MAX_HOSTS: usize = 100_000;

/// In-process host state (one worker).
pub(crate) struct LocalLimiter {
    clock: Arc<dyn Clock>,
    backoff: Backoff,
    hosts: Mutex<HashMap<String, HostState>>,
}

impl LocalLimiter {
    pub(crate) fn new(clock: Arc<dyn Clock>, backoff: Backoff) -> Self {
        Self {
            clock,
            backoff,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn with_host<T>(&self, host: &str, f: impl FnOnce(&mut HostState, u64) -> T) -> T {
        let now = self.clock.now_ms();
        let mut m = self.hosts.lock().unwrap();
        if m.len() >= MAX_HOSTS && !m.contains_key(host) {
            // Entries idle for a long time (an hour covers any sane interval).
            m.retain(|_, s| !s.is_idle(now, 3_600_000));
        }
        let s = m.entry(host.to_string()).or_default();
        f(s, now)
    }

    pub(crate) fn reserve(
        &self,
        host: &str,
        interval: Duration,
        threshold: Duration,
    ) -> Reservation {
        self.with_host(host, |s, now| {
            s.reserve(
                now,
                interval.as_millis() as u64,
                threshold.as_millis() as u64,
            )
        })
    }

    pub(crate) fn try_start(&self, host: &str, interval: Duration) -> u64 {
        self.with_host(host, |s, now| s.try_start(now, interval.as_millis() as u64))
    }

    pub(crate) fn throttled(&self, host: &str, retry_after: Option<Duration>, jitter: f64) -> u64 {
        let backoff = self.backoff;
        self.with_host(host, |s, now| {
            s.throttled(now, retry_after, &backoff, jitter)
        })
    }

    pub(crate) fn succeeded(&self, host: &str) {
        self.with_host(host, |s, _| s.succeeded())
    }
}

/// The limiter a [`super::PoliteFetcher`] uses: the fleet's state in Redis when configured, else this
/// worker's. When Redis fails, `politeness.redis_failure` decides: `defer` (default) refuses the fetch
/// ([`FetchError::LimiterUnavailable`], retried later), `local` falls back to this worker's state. Every
/// such event is counted in the connection's [`RedisHealth`] (`paperboy_redis_limiter_errors_total`).
pub(crate) struct Limiter {
    local: LocalLimiter,
    redis: Option<RedisLimiter>,
    on_failure: RedisFailure,
}

impl Limiter {
    pub(crate) fn new(
        local: LocalLimiter,
        redis: Option<RedisLimiter>,
        on_failure: RedisFailure,
    ) -> Self {
        Self {
            local,
            redis,
            on_failure,
        }
    }

    /// A Redis error before a fetch: `Err` (the fetch must not happen) under `defer`, `Ok` (use this
    /// worker's state) under `local`. Logged and counted either way.
    fn before_fetch(
        &self,
        r: &RedisLimiter,
        host: &str,
        what: &'static str,
        e: &redis::RedisError,
    ) -> Result<(), FetchError> {
        match self.on_failure {
            RedisFailure::Defer => {
                r.health().limiter_fallback(LimiterFallback::Deferred);
                tracing::warn!(host, error = %e, what, "Redis limiter unavailable; not fetching (politeness.redis_failure = \"defer\"), the job is retried later");
                Err(FetchError::LimiterUnavailable {
                    host: host.to_string(),
                    detail: e.to_string(),
                })
            }
            RedisFailure::Local => {
                r.health().limiter_fallback(LimiterFallback::Local);
                tracing::warn!(host, error = %e, what, "Redis limiter unavailable; using this worker's own state (politeness.redis_failure = \"local\")");
                Ok(())
            }
        }
    }

    /// A Redis error after a fetch (its effect on the host is lost): logged and counted; under `local`
    /// the worker's own state records it.
    fn after_fetch(
        &self,
        r: &RedisLimiter,
        host: &str,
        what: &'static str,
        e: &redis::RedisError,
    ) -> bool {
        let local = self.on_failure == RedisFailure::Local;
        r.health().limiter_fallback(if local {
            LimiterFallback::Local
        } else {
            LimiterFallback::Unrecorded
        });
        tracing::warn!(host, error = %e, what, local, "Redis limiter unavailable; this fetch's effect on the host is not shared with the fleet");
        local
    }

    pub(crate) async fn reserve(
        &self,
        host: &str,
        interval: Duration,
        threshold: Duration,
    ) -> Result<Reservation, FetchError> {
        if let Some(r) = &self.redis {
            match r.reserve(host, interval, threshold).await {
                Ok(res) => return Ok(res),
                Err(e) => self.before_fetch(r, host, "reserve", &e)?,
            }
        }
        Ok(self.local.reserve(host, interval, threshold))
    }

    /// 0 = start now (recorded); else wait this many ms and ask again.
    pub(crate) async fn try_start(
        &self,
        host: &str,
        interval: Duration,
    ) -> Result<u64, FetchError> {
        if let Some(r) = &self.redis {
            match r.try_start(host, interval).await {
                Ok(w) => return Ok(w),
                Err(e) => self.before_fetch(r, host, "start", &e)?,
            }
        }
        Ok(self.local.try_start(host, interval))
    }

    /// The Redis connection of the fleet's state, if any.
    pub(crate) fn redis_conn(&self) -> Option<&RedisConn> {
        self.redis.as_ref().map(RedisLimiter::conn)
    }

    /// Before a fetch: one of the host's fleet-wide in-flight leases (with Redis, waiting up to
    /// `patience` for one) and its next slot, in one Redis call when the host is free. Without Redis (or
    /// with Redis failing under `local`) this worker's own slot, and no lease (per-worker permits only);
    /// `Err` when Redis fails under `defer`.
    ///
    /// `check` (the job's URL-seen check and validators lookup, keys on `host`'s hash tag, only with
    /// Redis on the store's connection) rides on the first call: a URL another job took ends here in
    /// [`FetchError::UrlSeen`] with nothing taken; a failure of that call ends in
    /// [`FetchError::UrlCheckFailed`] under either `politeness.redis_failure` (the URL's state is
    /// unknown: fail closed, as a dedup store error does). The lease polls of a busy host go without it.
    /// Returns the validators the check found.
    pub(crate) async fn acquire(
        &self,
        req: &HostRequest<'_>,
        mut check: Option<&UrlCheck>,
    ) -> Result<(Acquired, Option<Validators>), FetchError> {
        let HostRequest {
            url,
            host,
            lease,
            patience,
            interval,
            threshold,
            ..
        } = *req;
        let Some(r) = &self.redis else {
            let validators = match check {
                Some(c) => url_check_alone(c, url).await?,
                None => None,
            };
            return Ok((self.acquire_local(host, interval, threshold), validators));
        };
        let token = uuid::Uuid::new_v4().simple().to_string();
        let give_up = tokio::time::Instant::now() + patience;
        let mut validators = None;
        loop {
            let reply = r.acquire(req, &token, check).await;
            if let Some(c) = check.take() {
                match &reply {
                    Ok((_, Some((_, v)))) => validators = v.clone(),
                    Ok(_) => {}
                    Err(e) => return Err(url_check_failed(c, url, e)),
                }
            }
            match reply.map(|(a, _)| a) {
                Ok(AcquireReply::Seen { first_job }) => {
                    return Err(FetchError::UrlSeen {
                        url: url.to_string(),
                        first_job,
                    })
                }
                Ok(AcquireReply::Leased { wait_ms, started }) => {
                    let lease = Some(Box::new(FleetLease {
                        redis: r.clone(),
                        host: host.to_string(),
                        token,
                        lease,
                    }));
                    let slot = Acquired::Slot {
                        lease,
                        wait_ms,
                        started,
                    };
                    return Ok((slot, validators));
                }
                Ok(AcquireReply::Deferred(wait_ms)) => {
                    return Ok((Acquired::Deferred { wait_ms }, validators))
                }
                Ok(AcquireReply::Busy) => {}
                Err(e) => {
                    self.before_fetch(r, host, "acquire", &e)?;
                    return Ok((self.acquire_local(host, interval, threshold), validators));
                }
            }
            if tokio::time::Instant::now() + LEASE_POLL > give_up {
                return Ok((Acquired::Busy, validators));
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
    }

    fn acquire_local(&self, host: &str, interval: Duration, threshold: Duration) -> Acquired {
        match self.local.reserve(host, interval, threshold) {
            Reservation::Granted { wait_ms } => Acquired::Slot {
                lease: None,
                wait_ms,
                started: false,
            },
            Reservation::Deferred { wait_ms } => Acquired::Deferred { wait_ms },
        }
    }

    /// A fetch answered (not throttled, under 500) by `host`: relax its backoff and, when the lease
    /// was taken on that same host, give it back in the same call.
    pub(crate) async fn succeeded_with(&self, host: &str, lease: Option<Box<FleetLease>>) {
        if let (Some(r), Some(mut l)) = (&self.redis, lease) {
            if l.host == host {
                match r.finish(host, &l.token).await {
                    Ok(()) => {
                        l.token.clear(); // given back: nothing left for Drop
                        return;
                    }
                    Err(e) => {
                        // Drop retries the release; the relax is lost (or kept locally).
                        if self.after_fetch(r, host, "succeeded", &e) {
                            self.local.succeeded(host);
                        }
                        return;
                    }
                }
            }
        }
        self.succeeded(host).await
    }

    pub(crate) async fn throttled(&self, host: &str, retry_after: Option<Duration>) -> u64 {
        let jitter: f64 = rand::random();
        if let Some(r) = &self.redis {
            match r.throttled(host, retry_after, jitter).await {
                Ok(d) => return d,
                Err(e) => {
                    if !self.after_fetch(r, host, "throttled", &e) {
                        return 0;
                    }
                }
            }
        }
        self.local.throttled(host, retry_after, jitter)
    }

    pub(crate) async fn succeeded(&self, host: &str) {
        if let Some(r) = &self.redis {
            match r.succeeded(host).await {
                Ok(()) => return,
                Err(e) => {
                    if !self.after_fetch(r, host, "succeeded", &e) {
                        return;
                    }
                }
            }
        }
        self.local.succeeded(host)
    }
}

const LEASE_POLL: Duration = Duration::from_millis(50);

/// One request's politeness figures for its host, as [`Limiter::acquire`] takes them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostRequest<'a> {
    /// The URL requested (for errors).
    pub(crate) url: &'a str,
    /// Its host, lowercased.
    pub(crate) host: &'a str,
    /// Requests in flight to the host at most (fleet-wide with Redis).
    pub(crate) max: u32,
    /// How long a fleet-wide lease lasts if its worker dies holding it.
    pub(crate) lease: Duration,
    /// How long to wait for a lease of a busy host.
    pub(crate) patience: Duration,
    /// The interval between requests to the host.
    pub(crate) interval: Duration,
    /// A slot further away than this defers the job.
    pub(crate) threshold: Duration,
}

/// A job's URL check in a call of its own (no Redis limiter on the store's connection here, or the
/// host's permit was not free): a URL another job took is [`FetchError::UrlSeen`]; returns the
/// validators found.
pub(crate) async fn url_check_alone(
    check: &UrlCheck,
    url: &str,
) -> Result<Option<Validators>, FetchError> {
    match check.run().await {
        Ok((UrlVerdict::Seen { first_job }, _)) => Err(FetchError::UrlSeen {
            url: url.to_string(),
            first_job,
        }),
        Ok((_, validators)) => Ok(validators),
        Err(e) => Err(url_check_failed(check, url, &e)),
    }
}

/// The job's URL check of `url` failed: the URL's state is unknown, so it is not fetched.
fn url_check_failed(check: &UrlCheck, url: &str, e: &redis::RedisError) -> FetchError {
    tracing::warn!(host = check.host(), url, error = %e, "URL-seen check failed; not fetching, the job is retried later");
    FetchError::UrlCheckFailed {
        url: url.to_string(),
        detail: e.to_string(),
    }
}

/// What [`Limiter::acquire`] got.
pub(crate) enum Acquired {
    /// Every fleet-wide lease of the host stayed taken for the whole patience.
    Busy,
    /// The host's slot is further away than the threshold.
    Deferred { wait_ms: u64 },
    /// The slot is `wait_ms` away (reserved); `started`: the start is recorded too (no
    /// [`Limiter::try_start`] needed). `lease`: the fleet-wide lease, with Redis.
    Slot {
        lease: Option<Box<FleetLease>>,
        wait_ms: u64,
        started: bool,
    },
}

/// A fleet-wide in-flight lease; dropping it gives it back.
pub(crate) struct FleetLease {
    redis: RedisLimiter,
    host: String,
    token: String,
    /// How long the lease lasts in Redis (a failed release is retried that long at most).
    lease: Duration,
}

impl Drop for FleetLease {
    fn drop(&mut self) {
        if self.token.is_empty() {
            return;
        }
        self.redis
            .release(&self.host, std::mem::take(&mut self.token), self.lease);
    }
}

/// Requests in flight per host, in this worker.
#[derive(Default)]
pub(crate) struct HostPermits {
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A held permit; dropping it frees the slot (and forgets idle hosts).
pub(crate) struct HostPermit<'a> {
    owner: &'a HostPermits,
    host: String,
    sem: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for HostPermit<'_> {
    fn drop(&mut self) {
        self.permit.take();
        let mut m = self.owner.hosts.lock().unwrap();
        // The map's reference and ours: nobody else holds or waits for this host.
        if Arc::strong_count(&self.sem) <= 2 {
            m.remove(&self.host);
        }
    }
}

impl HostPermits {
    /// Wait at most `patience` for one of the host's `max` permits.
    pub(crate) async fn acquire(
        &self,
        host: &str,
        max: u32,
        patience: Duration,
    ) -> Option<HostPermit<'_>> {
        let sem = {
            let mut m = self.hosts.lock().unwrap();
            m.entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(max.max(1) as usize)))
                .clone()
        };
        let mut guard = HostPermit {
            owner: self,
            host: host.to_string(),
            sem: sem.clone(),
            permit: None,
        };
        match tokio::time::timeout(patience, sem.acquire_owned()).await {
            Ok(Ok(p)) => {
                guard.permit = Some(p);
                Some(guard)
            }
            _ => None,
        }
    }
}
