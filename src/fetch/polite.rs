//! [`PoliteFetcher`]: robots.txt, then the host's next slot (deferring long waits), then the fetch, then
//! the answer's effect on the host (429/503 block it; other answers relax the backoff).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use url::Url;

use super::client::{HopCheck, HttpClient, OverCap};
use super::limiter::{url_check_alone, Acquired, HostPermits, HostRequest, Limiter, LocalLimiter};
use super::limits::{
    is_throttle_status, parse_retry_after, Backoff, Clock, MonotonicClock, Reservation,
};
use super::redis_limiter::RedisLimiter;
use super::robots::{product_token, Verdict};
use super::robots_cache::RobotsCache;
use super::{FetchError, FetchedPage, Fetcher};
use crate::config::{PolitenessSettings, Settings};
use crate::dedup::UrlCheck;
use crate::redis_conn::RedisConn;

tokio::task_local! {
    /// How long the current job may wait for its host before it is deferred, when the worker set it
    /// (jobs from shard queues, see [`with_patience`]); otherwise `politeness.defer_threshold_ms`.
    static PATIENCE: Duration;
}

/// Run `f` (one job's processing) letting its fetches wait up to `patience` for their host's turn
/// before deferring. The worker uses it for jobs from host-partitioned shard queues: few workers hold a
/// shard's hosts, so a host's jobs can queue in the worker (bounded by the prefetch) instead of
/// bouncing through the deferral queues.
pub async fn with_patience<F: std::future::Future>(patience: Duration, f: F) -> F::Output {
    PATIENCE.scope(patience, f).await
}

/// The current job's patience for its host.
fn patience(p: &PolitenessSettings) -> Duration {
    PATIENCE
        .try_with(|d| *d)
        .unwrap_or(Duration::from_millis(p.defer_threshold_ms))
}

/// The fetcher the worker uses: robots.txt and per-host politeness around [`HttpClient`]. Cheap to
/// clone (shared state).
#[derive(Clone)]
pub struct PoliteFetcher {
    inner: Arc<Inner>,
}

struct Inner {
    client: HttpClient,
    politeness: PolitenessSettings,
    robots: RobotsCache,
    limiter: Limiter,
    permits: HostPermits,
    shared: bool,
}

impl std::fmt::Debug for PoliteFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoliteFetcher")
            .field("client", &self.inner.client)
            .field("shared_state", &self.inner.shared)
            .finish_non_exhaustive()
    }
}

impl PoliteFetcher {
    /// Build from settings. With `redis`, robots.txt and per-host slots/backoff are shared by every
    /// worker using the same Redis and `redis.key_prefix`; without it they live in this process.
    pub fn new(settings: &Settings, redis: Option<RedisConn>) -> Result<Self, FetchError> {
        Self::with_client(HttpClient::new(&settings.fetch)?, settings, redis)
    }

    /// As [`PoliteFetcher::new`] around a given client (tests, custom address policies).
    pub fn with_client(
        client: HttpClient,
        settings: &Settings,
        redis: Option<RedisConn>,
    ) -> Result<Self, FetchError> {
        let p = settings.politeness.clone();
        let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::default());
        let backoff = Backoff {
            base_ms: p.backoff_base_ms,
            max_ms: p.backoff_max_ms,
        };
        let prefix = settings.redis.key_prefix.clone();
        let robots = RobotsCache::new(
            client.clone(),
            product_token(&settings.fetch.user_agent),
            Duration::from_secs(p.robots_ttl_s),
            Duration::from_secs(p.robots_error_ttl_s),
            clock.clone(),
            redis.clone().map(|c| (c, prefix.clone())),
        );
        let shared = redis.is_some();
        let limiter = Limiter::new(
            LocalLimiter::new(clock, backoff),
            redis.map(|c| RedisLimiter::new(c, prefix, backoff)),
            p.redis_failure,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                politeness: p,
                robots,
                limiter,
                permits: HostPermits::default(),
                shared,
            }),
        })
    }

    /// Every redirect hop is a request of its own to its host: its target must be allowed by its
    /// origin's robots.txt (fetched and cached like any other) and it takes that host's next slot,
    /// waiting up to the deferral threshold (a longer wait defers the job, as for the first request).
    /// So a redirector cannot make us hit a site faster than its interval, and neither can a
    /// same-host redirect (http -> https, trailing slash). Hops take no concurrency permit: the
    /// first request's permit covers the chain.
    fn hop_check(&self) -> Box<HopCheck> {
        let inner = self.inner.clone();
        Box::new(move |next: Url| {
            let inner = inner.clone();
            Box::pin(async move {
                let Some(host) = next.host_str().map(|h| h.to_ascii_lowercase()) else {
                    return Ok(()); // the client refuses a hop without a host
                };
                let interval = inner.robots_interval(&next, &host).await?;
                let threshold = patience(&inner.politeness);
                inner.take_slot(&host, interval, threshold).await
            })
        })
    }

    /// The plain hardened client inside.
    pub fn client(&self) -> &HttpClient {
        &self.inner.client
    }
}

impl Inner {
    /// The interval between requests to `host`: its configured delay, raised to robots.txt's
    /// crawl-delay; or the error that stops the request (disallowed, robots.txt unavailable,
    /// crawl-delay over the cap).
    async fn robots_interval(&self, url: &Url, host: &str) -> Result<Duration, FetchError> {
        let p = &self.politeness;
        let interval = p.min_delay_for(host);
        if !p.respect_robots {
            return Ok(interval);
        }
        let rules = self.robots.rules_for(url).await?;
        match rules.check(url) {
            Verdict::Allowed { crawl_delay: None } => Ok(interval),
            Verdict::Allowed {
                crawl_delay: Some(cd),
            } => {
                if cd > Duration::from_millis(p.max_crawl_delay_ms) {
                    tracing::info!(host = %host, crawl_delay_ms = cd.as_millis() as u64, max_ms = p.max_crawl_delay_ms, "crawl-delay over the cap; skipping");
                    return Err(FetchError::CrawlDelayTooLong {
                        host: host.to_string(),
                        delay: cd,
                    });
                }
                Ok(interval.max(cd))
            }
            Verdict::Disallowed => {
                tracing::info!(host = %host, url = %url, "disallowed by robots.txt");
                Err(FetchError::RobotsDisallowed {
                    url: url.to_string(),
                })
            }
            Verdict::Unavailable => {
                tracing::info!(host = %host, url = %url, detail = rules.unavailable_detail(), "robots.txt unavailable; not crawling the host for now");
                Err(FetchError::RobotsUnavailable {
                    url: url.to_string(),
                    detail: rules.unavailable_detail().to_string(),
                })
            }
        }
    }

    /// Wait for the host's next slot (this worker's, or the fleet's with Redis), or defer when it is
    /// further away than the threshold.
    async fn take_slot(
        &self,
        host: &str,
        interval: Duration,
        threshold: Duration,
    ) -> Result<(), FetchError> {
        match self.limiter.reserve(host, interval, threshold).await? {
            Reservation::Deferred { wait_ms } => Err(slot_deferred(host, wait_ms, interval)),
            Reservation::Granted { wait_ms } => {
                self.start_at(host, interval, threshold, wait_ms).await
            }
        }
    }

    /// Sleep `wait_ms` until a reserved slot, then record the start.
    async fn start_at(
        &self,
        host: &str,
        interval: Duration,
        threshold: Duration,
        wait_ms: u64,
    ) -> Result<(), FetchError> {
        if wait_ms > 0 {
            tracing::debug!(host = %host, wait_ms, interval_ms = interval.as_millis() as u64, "waiting for the host's slot");
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        }
        let threshold_ms = threshold.as_millis() as u64;
        // Keep the interval between actual starts (a late wake-up pushes the next start back) and
        // respect a block that arrived while we waited.
        loop {
            let wait_ms = self.limiter.try_start(host, interval).await?;
            if wait_ms == 0 {
                return Ok(());
            }
            if wait_ms > threshold_ms {
                tracing::info!(host = %host, wait_ms, cause = "blocked", "host blocked while waiting; deferring");
                return Err(FetchError::Deferred {
                    host: host.to_string(),
                    wait: Duration::from_millis(wait_ms),
                });
            }
            tracing::debug!(host = %host, wait_ms, "previous request started late; waiting");
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        }
    }
}

/// The deferral of a job whose host's slot is `wait_ms` away.
fn slot_deferred(host: &str, wait_ms: u64, interval: Duration) -> FetchError {
    tracing::info!(host = %host, wait_ms, interval_ms = interval.as_millis() as u64, cause = "slot", "host not free soon; deferring");
    FetchError::Deferred {
        host: host.to_string(),
        wait: Duration::from_millis(wait_ms),
    }
}

impl Fetcher for PoliteFetcher {
    /// Yes when the fleet's limiter is in Redis on the store's connection: the check then rides on
    /// the host's acquire call.
    fn runs_url_check(&self, check: &UrlCheck) -> bool {
        self.inner
            .limiter
            .redis_conn()
            .is_some_and(|conn| check.is_on(conn))
    }

    async fn fetch_with(
        &self,
        url: &Url,
        opts: super::FetchOptions,
    ) -> Result<FetchedPage, FetchError> {
        let me = &*self.inner;
        let p = &me.politeness;
        let Some(host) = url.host_str().map(|h| h.to_ascii_lowercase()) else {
            // No host: let the client produce its error.
            return me.client.fetch_with(url, opts).await;
        };

        // 1. robots.txt
        let interval = me.robots_interval(url, &host).await?;

        // 2. a concurrency permit for the host (this worker, then the fleet), then the host's next slot.
        // The job's URL check (when the caller gave it) rides on the fleet's acquire call, after
        // robots.txt: a robots-denied URL is skipped as such and not recorded as seen. It goes in a
        // call of its own when it cannot ride (its keys on another host, no Redis limiter) or when the
        // worker's permit for the host is not free at once: a seen URL is then skipped without
        // waiting for a fetch of the host to end.
        let waiting_since = tokio::time::Instant::now();
        let threshold = patience(p);
        let mut opts = opts;
        let mut check = opts.url_check.take();
        let url_text = url.as_str();
        let mut permit = None;
        if let Some(c) = &check {
            let rides =
                c.host() == host && me.limiter.redis_conn().is_some_and(|conn| c.is_on(conn));
            if rides {
                permit = me
                    .permits
                    .acquire(&host, p.max_concurrent_for(&host), Duration::ZERO)
                    .await;
            }
            if permit.is_none() {
                opts.validators = url_check_alone(c, url_text).await?;
                check = None;
            }
        }
        let permit = match permit {
            Some(held) => Some(held),
            None => {
                me.permits
                    .acquire(&host, p.max_concurrent_for(&host), threshold)
                    .await
            }
        };
        let Some(_permit) = permit else {
            let wait = threshold.max(interval);
            tracing::info!(host = %host, wait_ms = wait.as_millis() as u64, cause = "concurrency", "host busy; deferring");
            return Err(FetchError::Deferred { host, wait });
        };
        // With Redis the limit holds for the fleet: a lease per request in flight, expiring by itself
        // (fetch timeout + waits) if a worker dies holding it, taken with the slot in one call.
        let lease_for = me.client.settings().timeout() + threshold * 2 + Duration::from_secs(5);
        let req = HostRequest {
            url: url_text,
            host: &host,
            max: p.max_concurrent_for(&host),
            lease: lease_for,
            patience: threshold,
            interval,
            threshold,
        };
        let (acquired, found) = me.limiter.acquire(&req, check.as_ref()).await?;
        if check.is_some() {
            opts.validators = found;
        }
        opts.validators = opts.validators.filter(|v| !v.is_empty());
        let lease = match acquired {
            Acquired::Busy => {
                let wait = threshold.max(interval);
                tracing::info!(host = %host, wait_ms = wait.as_millis() as u64, cause = "fleet_concurrency", "host busy across the fleet; deferring");
                return Err(FetchError::Deferred { host, wait });
            }
            Acquired::Deferred { wait_ms } => return Err(slot_deferred(&host, wait_ms, interval)),
            Acquired::Slot {
                lease,
                wait_ms,
                started,
            } => {
                if !started {
                    me.start_at(&host, interval, threshold, wait_ms).await?;
                }
                lease
            }
        };

        // 3. the fetch, and what the answer says about the host.
        let politeness_wait = waiting_since.elapsed();
        let hop_check = self.hop_check();
        let (mut page, retry_after) = me
            .client
            .get_checked(
                url,
                opts.max_body.unwrap_or(me.client.settings().max_body_bytes),
                OverCap::Fail,
                Some(&*hop_check),
                opts.validators.as_ref(),
            )
            .await?;
        // After redirects the answer is the last hop's host's.
        let host = page
            .final_url
            .host_str()
            .map_or(host, |h| h.to_ascii_lowercase());
        if is_throttle_status(page.status) {
            let retry_after = retry_after
                .as_deref()
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let blocked_ms = me.limiter.throttled(&host, retry_after).await;
            tracing::warn!(
                host = %host,
                status = page.status,
                retry_after_ms = retry_after.map(|d| d.as_millis() as u64),
                blocked_ms,
                "host throttles us; backing off"
            );
        } else if page.status < 500 {
            me.limiter.succeeded_with(&host, lease).await;
        }
        page.politeness_wait = politeness_wait;
        Ok(page)
    }
}
