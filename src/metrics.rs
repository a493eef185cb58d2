//! Every metric name in one place, the worker's health state, and the HTTP server for `/metrics`
//! (Prometheus/OpenMetrics text), `/healthz` (alive) and `/readyz` (broker + consumer + Redis).
//!
//! The worker holds one `Arc<Metrics>` and calls one method per event; nothing else names a metric.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use tokio_util::sync::CancellationToken;

use crate::dedup::Verdict;
use crate::redis_conn::{LimiterFallback, RedisConn, RedisHealth, CALL_OPS};

/// Prefix of every metric name.
pub const PREFIX: &str = "paperboy";
/// Content type of `/metrics` (OpenMetrics text, which Prometheus scrapes natively).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    /// `article`, `duplicate`, `skipped`, `failed`, `retried`, `deferred`, `dead_lettered` …
    kind: String,
    /// The outcome reason (`http_404`, `robots`, `not_html` …); the kind again for articles.
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DedupLabels {
    /// `exact` or `near`.
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RedisCallLabels {
    /// The command ([`CALL_OPS`]: `evalsha` for a script, `pipeline`, `other` …).
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimiterLabels {
    /// `deferred` (job not fetched, retried later), `local` (this worker's own limits used) or
    /// `unrecorded` (a fetch's effect on the host not shared).
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconnectLabels {
    /// `amqp` or `redis`.
    target: &'static str,
}

/// The worker's metrics. Names (all prefixed `paperboy_`):
///
/// | metric | type | labels |
/// | --- | --- | --- |
/// | `jobs_total` | counter | `kind`, `reason` |
/// | `fetch_duration_seconds` | histogram | |
/// | `fetched_bytes_total` | counter | |
/// | `extract_duration_seconds` | histogram | |
/// | `publish_confirm_duration_seconds` | histogram | |
/// | `host_waits_total` | counter | `host` |
/// | `host_wait_duration_seconds` | histogram | |
/// | `host_deferrals_total` | counter | `host` |
/// | `child_jobs_total` | counter | |
/// | `dedup_hits_total` | counter | `kind` = `exact` / `near` |
/// | `dedup_evictions_total` | counter | |
/// | `jobs_in_flight` | gauge | |
/// | `reconnects_total` | counter | `target` = `amqp` / `redis` |
/// | `redis_command_errors_total` | counter | |
/// | `redis_limiter_errors_total` | counter | `action` = `deferred` / `local` / `unrecorded` |
/// | `redis_calls_total` | counter | `op` = the command (`evalsha`, `get`, `set`, `pipeline` …) |
pub struct Metrics {
    registry: Registry,
    /// Finished jobs by outcome.
    jobs: Family<JobLabels, Counter>,
    /// Time of one HTTP fetch (robots.txt excluded), body included.
    fetch_seconds: Histogram,
    /// Body bytes fetched (after decompression).
    fetched_bytes: Counter,
    /// CPU time of one extraction.
    extract_seconds: Histogram,
    /// From publish to broker confirm.
    publish_confirm_seconds: Histogram,
    /// Jobs that waited for a host's politeness slot, by host.
    host_waits: Family<HostLabels, Counter>,
    /// How long those waits were.
    host_wait_seconds: Histogram,
    /// Jobs sent through the delay queue because their host was busy for too long, by host.
    host_deferrals: Family<HostLabels, Counter>,
    /// Child jobs published by feeds and sitemaps.
    child_jobs: Counter,
    /// Duplicates found, exact or near.
    dedup_hits: Family<DedupLabels, Counter>,
    /// Entries the memory dedup store evicted (bound or age).
    dedup_evictions: Counter,
    /// Last eviction total seen, to turn the store's running total into counter increments.
    dedup_evictions_seen: AtomicU64,
    /// Jobs being processed now.
    in_flight: Gauge,
    /// Connections re-established after a loss.
    reconnects: Family<ReconnectLabels, Counter>,
    /// Hosts given a label of their own so far (see [`MAX_LABELLED_HOSTS`]).
    labelled_hosts: Mutex<HashSet<String>>,
    /// Redis commands (politeness, robots.txt, dedup) that failed.
    redis_command_errors: Counter,
    /// Times the politeness limiter could not use Redis, by what it did instead.
    redis_limiter_errors: Family<LimiterLabels, Counter>,
    /// The Redis connection's running totals, copied into the two counters above at each scrape.
    redis_health: std::sync::OnceLock<Arc<RedisHealth>>,
    /// Totals already copied: command errors, then one per [`LimiterFallback::ALL`].
    redis_seen: [AtomicU64; 4],
    /// Redis calls (round trips) by command.
    redis_calls: Family<RedisCallLabels, Counter>,
    /// Call totals already copied, by [`CALL_OPS`] index.
    redis_calls_seen: [AtomicU64; CALL_OPS.len()],
}

/// Hosts that get a `host` label of their own; later hosts are counted under [`OTHER_HOSTS`]. A fleet
/// crawling millions of hosts would otherwise grow every worker's registry (and the scrape, and the
/// Prometheus series count) without bound; a thousand series per metric is what one scrape handles easily.
pub const MAX_LABELLED_HOSTS: usize = 1_000;
/// The `host` label of every host past [`MAX_LABELLED_HOSTS`].
pub const OTHER_HOSTS: &str = "_other";

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered and at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs",
            "Jobs finished, by outcome kind and reason",
            jobs.clone(),
        );
        // 10 ms .. ~82 s
        let fetch_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        registry.register_with_unit(
            "fetch_duration",
            "Time of one page fetch, body included",
            Unit::Seconds,
            fetch_seconds.clone(),
        );
        let fetched_bytes = Counter::default();
        registry.register_with_unit(
            "fetched",
            "Body bytes fetched (after decompression)",
            Unit::Bytes,
            fetched_bytes.clone(),
        );
        // 1 ms .. ~4 s
        let extract_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 13));
        registry.register_with_unit(
            "extract_duration",
            "Time of one extraction",
            Unit::Seconds,
            extract_seconds.clone(),
        );
        // 1 ms .. ~33 s (the confirm timeout is 30 s by default)
        let publish_confirm_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register_with_unit(
            "publish_confirm_duration",
            "Time from publish to broker confirm",
            Unit::Seconds,
            publish_confirm_seconds.clone(),
        );
        let host_waits = Family::<HostLabels, Counter>::default();
        registry.register(
            "host_waits",
            "Jobs that waited for a host's politeness slot",
            host_waits.clone(),
        );
        // 10 ms .. ~41 s
        let host_wait_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 13));
        registry.register_with_unit(
            "host_wait_duration",
            "Time jobs waited for a host's politeness slot",
            Unit::Seconds,
            host_wait_seconds.clone(),
        );
        let host_deferrals = Family::<HostLabels, Counter>::default();
        registry.register(
            "host_deferrals",
            "Jobs deferred through the delay queue because their host was busy",
            host_deferrals.clone(),
        );
        let dedup_hits = Family::<DedupLabels, Counter>::default();
        registry.register(
            "dedup_hits",
            "Duplicates found by the dedup store (exact or near)",
            dedup_hits.clone(),
        );
        let dedup_evictions = Counter::default();
        registry.register(
            "dedup_evictions",
            "Entries (content hashes, seen URLs) evicted by the memory dedup store (bound or age)",
            dedup_evictions.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "jobs_in_flight",
            "Jobs being processed now",
            in_flight.clone(),
        );
        let reconnects = Family::<ReconnectLabels, Counter>::default();
        registry.register(
            "reconnects",
            "Connections re-established after a loss",
            reconnects.clone(),
        );
        let child_jobs = Counter::default();
        registry.register(
            "child_jobs",
            "Child jobs published by feed and sitemap jobs (one per new item, one per child sitemap)",
            child_jobs.clone(),
        );
        let redis_command_errors = Counter::default();
        registry.register(
            "redis_command_errors",
            "Redis commands (politeness, robots.txt, dedup) that failed",
            redis_command_errors.clone(),
        );
        let redis_limiter_errors = Family::<LimiterLabels, Counter>::default();
        registry.register(
            "redis_limiter_errors",
            "Times the fleet-wide politeness limiter could not use Redis, by what the worker did instead (deferred = job not fetched and retried later; local = fetched on this worker's own limits; unrecorded = a fetch's effect on the host not shared)",
            redis_limiter_errors.clone(),
        );
        for a in LimiterFallback::ALL {
            let _ = redis_limiter_errors.get_or_create(&LimiterLabels { action: a.label() });
        }
        let redis_calls = Family::<RedisCallLabels, Counter>::default();
        registry.register(
            "redis_calls",
            "Redis calls sent (each one round trip: a command, a script run or a pipeline), by command",
            redis_calls.clone(),
        );
        // Label sets known in advance start at 0, so rate() works from the first scrape.
        for kind in ["exact", "near"] {
            let _ = dedup_hits.get_or_create(&DedupLabels { kind });
        }
        for target in ["amqp", "redis"] {
            let _ = reconnects.get_or_create(&ReconnectLabels { target });
        }
        Metrics {
            registry,
            jobs,
            fetch_seconds,
            fetched_bytes,
            extract_seconds,
            publish_confirm_seconds,
            host_waits,
            host_wait_seconds,
            host_deferrals,
            child_jobs,
            labelled_hosts: Mutex::new(HashSet::new()),
            dedup_hits,
            dedup_evictions,
            dedup_evictions_seen: AtomicU64::new(0),
            in_flight,
            reconnects,
            redis_command_errors,
            redis_limiter_errors,
            redis_health: std::sync::OnceLock::new(),
            redis_seen: Default::default(),
            redis_calls,
            redis_calls_seen: Default::default(),
        }
    }

    /// Report the Redis connection's command errors and limiter fallbacks (its [`RedisHealth`]) from now on.
    pub fn watch_redis(&self, health: Arc<RedisHealth>) {
        let _ = self.redis_health.set(health);
    }

    /// Copy the Redis connection's running totals into the counters.
    fn sync_redis(&self) {
        let Some(h) = self.redis_health.get() else {
            return;
        };
        let bump = |seen: &AtomicU64, total: u64, c: &Counter| {
            let before = seen.fetch_max(total, Ordering::Relaxed);
            if total > before {
                c.inc_by(total - before);
            }
        };
        bump(
            &self.redis_seen[0],
            h.command_errors(),
            &self.redis_command_errors,
        );
        for (i, a) in LimiterFallback::ALL.into_iter().enumerate() {
            let c = self
                .redis_limiter_errors
                .get_or_create(&LimiterLabels { action: a.label() });
            bump(&self.redis_seen[i + 1], h.limiter_fallbacks(a), &c);
        }
        for (i, n) in h.calls().into_iter().enumerate() {
            if n > 0 {
                let c = self
                    .redis_calls
                    .get_or_create(&RedisCallLabels { op: CALL_OPS[i] });
                bump(&self.redis_calls_seen[i], n, &c);
            }
        }
    }

    /// A job finished: `kind` is `article` or the outcome kind (`duplicate`, `skipped`, `failed`), or the
    /// worker's own (`retried`, `deferred`, `dead_lettered`); `reason` the outcome reason.
    pub fn job_finished(&self, kind: &str, reason: &str) {
        self.jobs
            .get_or_create(&JobLabels {
                kind: kind.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// A page was fetched in `took`, with `bytes` of body.
    pub fn fetched(&self, took: Duration, bytes: u64) {
        self.fetch_seconds.observe(took.as_secs_f64());
        self.fetched_bytes.inc_by(bytes);
    }

    /// An extraction took `took`.
    pub fn extracted(&self, took: Duration) {
        self.extract_seconds.observe(took.as_secs_f64());
    }

    /// A publish was confirmed by the broker `took` after it was sent.
    pub fn publish_confirmed(&self, took: Duration) {
        self.publish_confirm_seconds.observe(took.as_secs_f64());
    }

    /// A job waited `waited` for `host`'s politeness slot.
    pub fn host_waited(&self, host: &str, waited: Duration) {
        self.host_waits.get_or_create(&self.host_labels(host)).inc();
        self.host_wait_seconds.observe(waited.as_secs_f64());
    }

    /// `host` as a label: its own name for the first [`MAX_LABELLED_HOSTS`] hosts, [`OTHER_HOSTS`] after.
    fn host_labels(&self, host: &str) -> HostLabels {
        let mut seen = self
            .labelled_hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let own = seen.contains(host)
            || (seen.len() < MAX_LABELLED_HOSTS && seen.insert(host.to_string()));
        HostLabels {
            host: if own { host } else { OTHER_HOSTS }.to_string(),
        }
    }

    /// A job was deferred through the delay queue because `host` was busy.
    /// A feed or sitemap published `n` child jobs.
    pub fn children_published(&self, n: u64) {
        self.child_jobs.inc_by(n);
    }

    pub fn host_deferred(&self, host: &str) {
        self.host_deferrals
            .get_or_create(&self.host_labels(host))
            .inc();
    }

    /// Count a dedup verdict: `Duplicate` as an exact hit, `NearDuplicate` as a near hit, `New` not at all.
    pub fn dedup_verdict(&self, verdict: &Verdict) {
        let kind = match verdict {
            Verdict::New => return,
            Verdict::Duplicate { .. } => "exact",
            Verdict::NearDuplicate { .. } => "near",
        };
        self.dedup_hits.get_or_create(&DedupLabels { kind }).inc();
    }

    /// The dedup store's running eviction total (`Store::evictions()`); call it after each check.
    pub fn dedup_evictions_total(&self, total: u64) {
        let before = self
            .dedup_evictions_seen
            .fetch_max(total, Ordering::Relaxed);
        if total > before {
            self.dedup_evictions.inc_by(total - before);
        }
    }

    /// A job started; the in-flight gauge goes down when the guard drops (whatever way the job ends).
    #[must_use = "the job counts as in flight until the guard is dropped"]
    pub fn job_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.inc();
        InFlight(self.clone())
    }

    /// A connection to `target` (`"amqp"` or `"redis"`) was re-established.
    pub fn reconnected(&self, target: &'static str) {
        self.reconnects
            .get_or_create(&ReconnectLabels { target })
            .inc();
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        self.sync_redis();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts one job in flight until dropped (see [`Metrics::job_started`]).
pub struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

const REDIS_NOT_CONFIGURED: u8 = 0;
const REDIS_OK: u8 = 1;
const REDIS_DOWN: u8 = 2;

/// What `/readyz` reports. The worker flips these as connections come and go.
#[derive(Debug)]
pub struct Health {
    /// The AMQP connection is open.
    broker_connected: AtomicBool,
    /// The jobs consumer is registered and delivering.
    consumer_running: AtomicBool,
    /// Not configured / ok / down, as the last PING said.
    redis: AtomicU8,
    /// How the worker's own Redis commands fare: failing commands make Redis `degraded` even while PING
    /// answers (a failing cluster slot, a script error, a flapping connection).
    redis_commands: std::sync::OnceLock<Arc<RedisHealth>>,
}

/// The state `/readyz` reports, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub broker_connected: bool,
    pub consumer_running: bool,
    /// `ok`, `down` (PING fails), `degraded` (PING answers but commands fail or failed within the last
    /// few seconds) or `not_configured`.
    pub redis: &'static str,
    /// What keeps the worker from being ready (`broker`, `consumer`, `redis`); empty when ready.
    pub down: Vec<&'static str>,
}

impl Health {
    /// Nothing connected yet; Redis counts only when `redis_configured`.
    pub fn new(redis_configured: bool) -> Health {
        Health {
            broker_connected: AtomicBool::new(false),
            consumer_running: AtomicBool::new(false),
            redis: AtomicU8::new(if redis_configured {
                REDIS_DOWN
            } else {
                REDIS_NOT_CONFIGURED
            }),
            redis_commands: std::sync::OnceLock::new(),
        }
    }

    /// Count Redis as degraded while the commands on this connection fail (see [`RedisHealth::degraded`]).
    pub fn watch_redis_commands(&self, health: Arc<RedisHealth>) {
        let _ = self.redis_commands.set(health);
    }

    pub fn set_broker_connected(&self, up: bool) {
        self.broker_connected.store(up, Ordering::Relaxed);
    }

    pub fn set_consumer_running(&self, up: bool) {
        self.consumer_running.store(up, Ordering::Relaxed);
    }

    /// Redis answered (or not). Marks Redis as configured.
    pub fn set_redis_ok(&self, up: bool) {
        self.redis
            .store(if up { REDIS_OK } else { REDIS_DOWN }, Ordering::Relaxed);
    }

    /// `None` when Redis is not configured.
    pub fn redis_ok(&self) -> Option<bool> {
        match self.redis.load(Ordering::Relaxed) {
            REDIS_NOT_CONFIGURED => None,
            s => Some(s == REDIS_OK),
        }
    }

    /// The state now.
    pub fn readiness(&self) -> Readiness {
        let broker_connected = self.broker_connected.load(Ordering::Relaxed);
        let consumer_running = self.consumer_running.load(Ordering::Relaxed);
        let redis = self.redis_ok();
        let degraded =
            redis == Some(true) && self.redis_commands.get().is_some_and(|h| h.degraded());
        let mut down = Vec::new();
        if !broker_connected {
            down.push("broker");
        }
        if !consumer_running {
            down.push("consumer");
        }
        if redis == Some(false) || degraded {
            down.push("redis");
        }
        Readiness {
            ready: down.is_empty(),
            broker_connected,
            consumer_running,
            redis: match redis {
                None => "not_configured",
                Some(true) if degraded => "degraded",
                Some(true) => "ok",
                Some(false) => "down",
            },
            down,
        }
    }
}

/// PING Redis every `every` and record the answer in `health` until `shutdown` (for `/readyz`).
///
/// Also counts Redis as degraded while the connection's own commands fail.
pub async fn watch_redis(
    conn: RedisConn,
    health: Arc<Health>,
    every: Duration,
    shutdown: CancellationToken,
) {
    health.watch_redis_commands(conn.health().clone());
    loop {
        let ping = conn.ping();
        let ok = matches!(tokio::time::timeout(every, ping).await, Ok(Ok(_)));
        if health.redis_ok() != Some(ok) {
            tracing::info!(redis_ok = ok, "redis health changed");
        }
        health.set_redis_ok(ok);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz_handler))
        .with_state(AppState { metrics, health })
}

async fn metrics_handler(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        s.metrics.encode(),
    )
        .into_response()
}

async fn readyz_handler(State(s): State<AppState>) -> Response {
    let r = s.health.readiness();
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::to_string(&r).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Serve `/metrics`, `/healthz` and `/readyz` on `listen` until `shutdown` is cancelled.
pub async fn serve(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on metrics.listen = {listen}: {e}"),
        )
    })?;
    serve_on(listener, metrics, health, shutdown).await
}

/// As [`serve`], on a listener already bound (tests bind `127.0.0.1:0`).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    }
    axum::serve(listener, router(metrics, health))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_show_up_in_the_exposition() {
        let m = Arc::new(Metrics::new());
        m.job_finished("failed", "http_404");
        m.job_finished("article", "article");
        m.fetched(Duration::from_millis(120), 2048);
        m.extracted(Duration::from_millis(3));
        m.publish_confirmed(Duration::from_millis(2));
        m.host_waited("example.com", Duration::from_millis(900));
        m.host_deferred("example.com");
        m.dedup_verdict(&Verdict::Duplicate {
            first_job: "j".into(),
        });
        m.dedup_verdict(&Verdict::New);
        m.dedup_evictions_total(5);
        m.dedup_evictions_total(7);
        m.dedup_evictions_total(6); // stale total from a racing caller: ignored
        m.reconnected("amqp");
        let guard = m.job_started();
        let text = m.encode();
        for line in [
            "paperboy_jobs_total{kind=\"failed\",reason=\"http_404\"} 1",
            "paperboy_fetched_bytes_total 2048",
            "paperboy_fetch_duration_seconds_count 1",
            "paperboy_extract_duration_seconds_count 1",
            "paperboy_publish_confirm_duration_seconds_count 1",
            "paperboy_host_waits_total{host=\"example.com\"} 1",
            "paperboy_host_deferrals_total{host=\"example.com\"} 1",
            "paperboy_dedup_hits_total{kind=\"exact\"} 1",
            "paperboy_dedup_hits_total{kind=\"near\"} 0",
            "paperboy_dedup_evictions_total 7",
            "paperboy_jobs_in_flight 1",
            "paperboy_reconnects_total{target=\"amqp\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        drop(guard);
        assert!(m.encode().contains("paperboy_jobs_in_flight 0"));
    }

    #[test]
    fn host_labels_are_bounded() {
        let m = Metrics::new();
        for i in 0..MAX_LABELLED_HOSTS + 5 {
            m.host_deferred(&format!("h{i}.example"));
        }
        m.host_deferred("h0.example"); // labelled before the bound: keeps its label
        let text = m.encode();
        let series = text
            .lines()
            .filter(|l| l.starts_with("paperboy_host_deferrals_total{"))
            .count();
        assert_eq!(
            series,
            MAX_LABELLED_HOSTS + 1,
            "one series per labelled host plus _other"
        );
        assert!(
            text.contains("paperboy_host_deferrals_total{host=\"_other\"} 5"),
            "{text}"
        );
        assert!(text.contains("paperboy_host_deferrals_total{host=\"h0.example\"} 2"));
    }

    #[test]
    fn readiness_names_what_is_down() {
        let h = Health::new(true);
        let r = h.readiness();
        assert!(!r.ready);
        assert_eq!(r.down, vec!["broker", "consumer", "redis"]);
        h.set_broker_connected(true);
        h.set_consumer_running(true);
        h.set_redis_ok(true);
        assert!(h.readiness().ready);
        let h = Health::new(false);
        h.set_broker_connected(true);
        h.set_consumer_running(true);
        let r = h.readiness();
        assert!(r.ready && r.redis == "not_configured", "{r:?}");
    }

    #[test]
    fn failing_redis_commands_make_redis_degraded_and_are_counted() {
        let h = Health::new(true);
        h.set_broker_connected(true);
        h.set_consumer_running(true);
        h.set_redis_ok(true);
        let commands = Arc::new(RedisHealth::default());
        h.watch_redis_commands(commands.clone());
        let m = Metrics::new();
        m.watch_redis(commands.clone());
        assert!(h.readiness().ready);
        commands.observe::<()>(&Err(redis::RedisError::from(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        ))));
        commands.limiter_fallback(LimiterFallback::Deferred);
        let r = h.readiness();
        assert!(
            !r.ready && r.redis == "degraded" && r.down == vec!["redis"],
            "{r:?}"
        );
        let text = m.encode();
        assert!(
            text.contains("paperboy_redis_command_errors_total 1"),
            "{text}"
        );
        assert!(
            text.contains("paperboy_redis_limiter_errors_total{action=\"deferred\"} 1"),
            "{text}"
        );
        assert!(text.contains("paperboy_redis_limiter_errors_total{action=\"local\"} 0"));
        // Scraping again does not count twice.
        assert!(m.encode().contains("paperboy_redis_command_errors_total 1"));
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::new(false));
        let shutdown = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_on(
            listener,
            metrics.clone(),
            health.clone(),
            shutdown.clone(),
        ));
        let client = reqwest::Client::new();
        let get = |path: &str| {
            let req = client.get(format!("http://{addr}{path}"));
            async move {
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                let ct = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                (status, ct, r.text().await.unwrap())
            }
        };

        metrics.job_finished("skipped", "robots");
        let (status, ct, body) = get("/metrics").await;
        assert_eq!(status, 200);
        assert_eq!(ct.as_deref(), Some(METRICS_CONTENT_TYPE));
        assert!(body.contains("paperboy_jobs_total{kind=\"skipped\",reason=\"robots\"} 1"));
        assert!(body.trim_end().ends_with("# EOF"));

        let (status, _, body) = get("/healthz").await;
        assert_eq!((status, body.trim()), (200, "ok"));

        let (status, _, body) = get("/readyz").await;
        assert_eq!(status, 503);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["down"], serde_json::json!(["broker", "consumer"]));
        health.set_broker_connected(true);
        health.set_consumer_running(true);
        let (status, _, body) = get("/readyz").await;
        assert_eq!(status, 200, "{body}");

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("server stops on shutdown")
            .unwrap()
            .unwrap();
    }
}
