//! The Redis connection shared by politeness, robots.txt cache and dedup: redis:// or rediss://, and
//! the health of the commands sent on it.
//!
//! [`RedisConn`] is the one connection type every Redis user takes. It implements redis-rs'
//! `aio::ConnectionLike`, so scripts and commands run on it as on any redis-rs connection, and it records
//! every command's result in a shared [`RedisHealth`]: `/readyz` reports Redis degraded while commands
//! fail (not only when PING fails), and the limiter's fallbacks are counted there for `/metrics`.
//!
//! rediss:// verifies the server against the system trust store, or only against `redis.ca_file` when set.
//! Errors never carry the URL's password.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisFuture, RedisResult, Value};

use crate::config::{redact_url, RedisMode, Settings};
use crate::tls::{self, CaFileError};

/// After a failed command Redis counts as degraded at least this long, even if other commands succeed
/// meanwhile (one failing node of several, or a flapping connection, must still show).
pub const DEGRADED_HOLD: Duration = Duration::from_secs(5);

/// A command without an answer for this long fails (Redis answers in well under a millisecond).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// What the politeness limiter did when Redis failed (the `action` label of
/// `paperboy_redis_limiter_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimiterFallback {
    /// The job was not fetched; it goes back through the retry path (`politeness.redis_failure = "defer"`).
    Deferred,
    /// The job was fetched on this worker's own state (`politeness.redis_failure = "local"`).
    Local,
    /// A fetch's effect on the host (a 429 block, a success relaxing the backoff) could not be recorded.
    Unrecorded,
}

impl LimiterFallback {
    /// Every action, in label order.
    pub const ALL: [LimiterFallback; 3] = [
        LimiterFallback::Deferred,
        LimiterFallback::Local,
        LimiterFallback::Unrecorded,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            LimiterFallback::Deferred => "deferred",
            LimiterFallback::Local => "local",
            LimiterFallback::Unrecorded => "unrecorded",
        }
    }
}

/// How the commands on one [`RedisConn`] (and its clones) fare. Shared (`Arc`), lock-free.
#[derive(Debug, Default)]
pub struct RedisHealth {
    /// The last command answered with an error.
    failing: AtomicBool,
    /// When a command last failed (ms since the epoch; 0 = never).
    last_error_ms: AtomicU64,
    /// Commands that failed so far.
    command_errors: AtomicU64,
    /// Limiter fallbacks so far, by [`LimiterFallback`] (index = position in `ALL`).
    limiter: [AtomicU64; 3],
    /// Calls sent so far (each one round trip), by [`CALL_OPS`] index.
    calls: [AtomicU64; CALL_OPS.len()],
}

/// The `op` label of `paperboy_redis_calls_total`: the command of a call (a script run is `evalsha`;
/// a pipeline, one round trip, is `pipeline`; anything else is `other`).
pub const CALL_OPS: [&str; 11] = [
    "evalsha", "eval", "script", "get", "set", "mget", "hincrby", "zrem", "del", "pipeline",
    "other",
];

/// The [`CALL_OPS`] index of a command.
fn call_op(cmd: &Cmd) -> usize {
    let name = match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => name,
        _ => return CALL_OPS.len() - 1,
    };
    CALL_OPS[..CALL_OPS.len() - 2]
        .iter()
        .position(|op| op.as_bytes().eq_ignore_ascii_case(name))
        .unwrap_or(CALL_OPS.len() - 1)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl RedisHealth {
    /// Record one command's result. A missing script (`NOSCRIPT`, answered by loading it) is no failure.
    pub fn observe<T>(&self, result: &RedisResult<T>) {
        match result {
            Ok(_) => self.failing.store(false, Ordering::Relaxed),
            Err(e) if e.kind() == ErrorKind::NoScriptError => {}
            Err(_) => {
                self.command_errors.fetch_add(1, Ordering::Relaxed);
                self.last_error_ms.store(now_ms(), Ordering::Relaxed);
                self.failing.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Whether Redis is degraded now: the last command failed, or one failed within [`DEGRADED_HOLD`].
    pub fn degraded(&self) -> bool {
        if self.failing.load(Ordering::Relaxed) {
            return true;
        }
        let last = self.last_error_ms.load(Ordering::Relaxed);
        last != 0 && now_ms().saturating_sub(last) < DEGRADED_HOLD.as_millis() as u64
    }

    /// Commands that failed so far.
    pub fn command_errors(&self) -> u64 {
        self.command_errors.load(Ordering::Relaxed)
    }

    /// Count one limiter fallback.
    pub fn limiter_fallback(&self, action: LimiterFallback) {
        self.limiter[action as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Count one call (one round trip) of [`CALL_OPS`]`[op]`.
    fn count_call(&self, op: usize) {
        self.calls[op].fetch_add(1, Ordering::Relaxed);
    }

    /// Calls sent so far, by [`CALL_OPS`] index (`paperboy_redis_calls_total{op}`).
    pub fn calls(&self) -> [u64; CALL_OPS.len()] {
        std::array::from_fn(|i| self.calls[i].load(Ordering::Relaxed))
    }

    /// Limiter fallbacks of `action` so far.
    pub fn limiter_fallbacks(&self, action: LimiterFallback) -> u64 {
        self.limiter[action as usize].load(Ordering::Relaxed)
    }
}

/// The Redis connection every Redis user of paperboy takes. Cheap to clone (clones share the connection
/// and the [`RedisHealth`]); reconnects by itself.
#[derive(Clone)]
pub struct RedisConn {
    inner: Inner,
    health: Arc<RedisHealth>,
}

#[derive(Clone)]
enum Inner {
    /// One Redis (or a primary behind a fixed address).
    Single(ConnectionManager),
    /// Redis Cluster: commands routed by their key's hash slot, MOVED/ASK and slot changes followed.
    Cluster(ClusterConnection),
}

impl From<ConnectionManager> for RedisConn {
    fn from(c: ConnectionManager) -> Self {
        RedisConn {
            inner: Inner::Single(c),
            health: Arc::default(),
        }
    }
}

impl RedisConn {
    /// The health record shared by this connection and its clones.
    pub fn health(&self) -> &Arc<RedisHealth> {
        &self.health
    }

    /// Whether `other` is this connection or a clone of it (they share the [`RedisHealth`]).
    pub fn same_as(&self, other: &RedisConn) -> bool {
        Arc::ptr_eq(&self.health, &other.health)
    }

    /// PING, without touching the command health (the health watcher's own probe).
    pub async fn ping(&self) -> RedisResult<()> {
        let cmd = redis::cmd("PING");
        match self.inner.clone() {
            Inner::Single(mut c) => cmd.query_async::<()>(&mut c).await,
            Inner::Cluster(mut c) => cmd.query_async::<()>(&mut c).await,
        }
    }
}

impl redis::aio::ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.health.count_call(call_op(cmd));
        Box::pin(async move {
            let r = match &mut self.inner {
                Inner::Single(c) => c.req_packed_command(cmd).await,
                Inner::Cluster(c) => c.req_packed_command(cmd).await,
            };
            self.health.observe(&r);
            r
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.health.count_call(CALL_OPS.len() - 2);
        Box::pin(async move {
            let r = match &mut self.inner {
                Inner::Single(c) => c.req_packed_commands(cmd, offset, count).await,
                Inner::Cluster(c) => c.req_packed_commands(cmd, offset, count).await,
            };
            self.health.observe(&r);
            r
        })
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}

/// Why Redis cannot be used. Never carries the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisConnectError {
    #[error("redis.url {url} is not a valid Redis URL: {detail}")]
    Url { url: String, detail: String },
    #[error(transparent)]
    CaFile(#[from] CaFileError),
    #[error("connecting to Redis at {url} timed out after {timeout:?} (is Redis running? check redis.url)")]
    Timeout { url: String, timeout: Duration },
    #[error("cannot connect to Redis at {url}: {detail} ({hint})")]
    Connect {
        url: String,
        detail: String,
        hint: String,
    },
}

/// A client for `redis.url` (with `redis.ca_file` for rediss://); `None` when no URL is configured.
pub fn client(settings: &Settings) -> Result<Option<redis::Client>, RedisConnectError> {
    let Some(url) = settings.redis_url() else {
        return Ok(None);
    };
    tls::install_crypto_provider();
    let bad_url = |e: redis::RedisError| RedisConnectError::Url {
        url: redact_url(url),
        detail: e.to_string().replace(url, &redact_url(url)),
    };
    let ca_file = &settings.redis.ca_file;
    let client = if url.starts_with("rediss://") && !ca_file.is_empty() {
        let root_cert = tls::read_ca_file("redis.ca_file", ca_file)?;
        redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            },
        )
        .map_err(bad_url)?
    } else {
        redis::Client::open(url).map_err(bad_url)?
    };
    Ok(Some(client))
}

/// Connect to `redis.url` (within 10 s); `None` when no URL is configured.
///
/// With `redis.mode = "cluster"`, `redis.url` names one or more seed nodes (comma-separated).
pub async fn connect(settings: &Settings) -> Result<Option<RedisConn>, RedisConnectError> {
    if settings.redis.mode == RedisMode::Cluster {
        return connect_cluster(settings).await;
    }
    let Some(client) = client(settings)? else {
        return Ok(None);
    };
    let url = settings.redis_url().unwrap_or_default();
    let redacted = redact_url(url);
    let timeout = Duration::from_secs(10);
    let timed_out = |_| RedisConnectError::Timeout {
        url: redacted.clone(),
        timeout,
    };
    let failed = |e: redis::RedisError| {
        let detail = e.to_string().replace(url, &redacted);
        RedisConnectError::Connect {
            hint: tls::connect_hint(&detail, "redis.url", "redis.ca_file"),
            url: redacted.clone(),
            detail,
        }
    };
    // One plain attempt first: the connection manager retries a failing connect until the timeout, which
    // would hide why (refused, TLS, password).
    tokio::time::timeout(timeout, client.get_multiplexed_async_connection())
        .await
        .map_err(timed_out)?
        .map_err(failed)?;
    // A Redis that stops answering (not only one that is gone) fails commands after COMMAND_TIMEOUT, so
    // the limiter's fail-closed path and /readyz see it instead of jobs hanging until worker.job_timeout_ms.
    // Commands wait for a reconnect in progress: make it one attempt (the default retries with backoff,
    // which held every command ~2 s while Redis was down); a failed attempt fails the commands waiting for
    // it, and the next command starts a new one.
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(COMMAND_TIMEOUT)
        .set_connection_timeout(COMMAND_TIMEOUT)
        .set_number_of_retries(0);
    let conn = tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, config))
        .await
        .map_err(timed_out)?
        .map_err(failed)?;
    Ok(Some(RedisConn::from(conn)))
}

/// Connect to a Redis Cluster through the seed nodes of `redis.url` (within 10 s).
async fn connect_cluster(settings: &Settings) -> Result<Option<RedisConn>, RedisConnectError> {
    let Some(url) = settings.redis_url() else {
        return Ok(None);
    };
    tls::install_crypto_provider();
    let seeds: Vec<&str> = url.split(',').map(str::trim).collect();
    let redacted = seeds
        .iter()
        .map(|s| redact_url(s))
        .collect::<Vec<_>>()
        .join(",");
    let scrub = |e: &redis::RedisError| {
        let mut d = e.to_string();
        for s in &seeds {
            d = d.replace(s, &redact_url(s));
        }
        d
    };
    let mut builder = redis::cluster::ClusterClientBuilder::new(seeds.clone())
        .connection_timeout(COMMAND_TIMEOUT)
        .response_timeout(COMMAND_TIMEOUT)
        // A lost master is retried briefly (MOVED after a failover), then the command fails and the
        // limiter's fail-closed path takes over.
        .retries(3);
    let ca_file = &settings.redis.ca_file;
    if url.contains("rediss://") && !ca_file.is_empty() {
        let root_cert = tls::read_ca_file("redis.ca_file", ca_file)?;
        builder = builder.certs(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert),
        });
    }
    let client = builder.build().map_err(|e| RedisConnectError::Url {
        url: redacted.clone(),
        detail: scrub(&e),
    })?;
    let timeout = Duration::from_secs(10);
    let conn = tokio::time::timeout(timeout, client.get_async_connection())
        .await
        .map_err(|_| RedisConnectError::Timeout {
            url: redacted.clone(),
            timeout,
        })?
        .map_err(|e| {
            let detail = scrub(&e);
            RedisConnectError::Connect {
                hint: tls::connect_hint(&detail, "redis.url", "redis.ca_file"),
                url: redacted.clone(),
                detail,
            }
        })?;
    Ok(Some(RedisConn {
        inner: Inner::Cluster(conn),
        health: Arc::default(),
    }))
}

impl RedisConn {
    /// Whether this is a Redis Cluster connection (scripts then touch one hash slot per call).
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner, Inner::Cluster(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_degrades_on_errors_but_not_on_a_missing_script() {
        let h = RedisHealth::default();
        assert!(!h.degraded());
        h.observe::<()>(&Err(redis::RedisError::from((
            ErrorKind::NoScriptError,
            "NOSCRIPT",
        ))));
        assert!(!h.degraded() && h.command_errors() == 0);
        h.observe::<()>(&Err(redis::RedisError::from(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        ))));
        assert!(h.degraded());
        assert_eq!(h.command_errors(), 1);
        // A success clears "failing", but the error stays recent for DEGRADED_HOLD.
        h.observe(&Ok(()));
        assert!(h.degraded());
        h.last_error_ms.store(
            now_ms() - DEGRADED_HOLD.as_millis() as u64 - 1,
            Ordering::Relaxed,
        );
        assert!(!h.degraded());
        h.limiter_fallback(LimiterFallback::Deferred);
        h.limiter_fallback(LimiterFallback::Deferred);
        assert_eq!(h.limiter_fallbacks(LimiterFallback::Deferred), 2);
        assert_eq!(h.limiter_fallbacks(LimiterFallback::Local), 0);
    }

    #[test]
    fn calls_are_labelled_by_command() {
        let op = |c: &Cmd| CALL_OPS[call_op(c)];
        assert_eq!(op(redis::cmd("EVALSHA").arg("abc").arg(1)), "evalsha");
        assert_eq!(op(redis::cmd("get").arg("k")), "get");
        assert_eq!(op(redis::cmd("HGETALL").arg("k")), "other");
        assert_eq!(op(&Cmd::new()), "other");
        let h = RedisHealth::default();
        h.count_call(0);
        h.count_call(0);
        assert_eq!(h.calls()[0], 2);
    }
}
