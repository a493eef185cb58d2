//! Typed settings: `config/default.toml` (built in) -> `--config FILE` -> `PAPERBOY__SECTION__KEY` env vars.
//!
//! [`Settings::load`] reads and validates once at start; every error names the key, the value and what is
//! expected.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// The built-in defaults (the file is also the configuration reference).
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
/// Environment variable prefix; sections and keys are separated by `__`.
pub const ENV_PREFIX: &str = "PAPERBOY";

/// A configuration problem a user can fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(String),
    #[error("invalid configuration: `{key}` = {value}: {expected}")]
    Invalid {
        key: &'static str,
        value: String,
        expected: String,
    },
}

fn default_shard_hold_ms() -> u64 {
    60_000
}

fn invalid(
    key: &'static str,
    value: impl std::fmt::Display,
    expected: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        expected: expected.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub amqp: AmqpSettings,
    pub worker: WorkerSettings,
    pub retry: RetrySettings,
    pub fetch: FetchSettings,
    pub politeness: PolitenessSettings,
    pub redis: RedisSettings,
    pub dedup: DedupSettings,
    pub extract: ExtractSettings,
    pub feed: FeedSettings,
    pub metrics: MetricsSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpSettings {
    /// Broker URL; secret because it carries the password.
    pub url: SecretString,
    pub jobs_queue: String,
    pub output_exchange: String,
    /// Catch-all queue bound to the output exchange (empty = none).
    pub output_queue: String,
    /// Most articles and outcomes the catch-all queue holds (0 = no bound); when full the broker refuses
    /// further publishes (`x-overflow = reject-publish`) and the jobs wait in the jobs queue.
    pub output_queue_max_length: u64,
    pub dead_letter_exchange: String,
    pub dead_letter_queue: String,
    /// Quorum queue `x-delivery-limit`.
    pub delivery_limit: u32,
    /// Prefix of the deferral queues (empty = `<jobs_queue>.delay`, so pipelines on one vhost never share them).
    pub delay_queue: String,
    pub confirm_timeout_ms: u64,
    /// PEM file of CA certificates trusted for amqps:// in addition to the system store (empty = none).
    pub ca_file: String,
    /// Host-partitioned shard queues behind a consistent-hash exchange (0 = none).
    #[serde(default)]
    pub shards: u16,
    /// The shard queues this worker consumes (empty = all).
    #[serde(default)]
    pub consume_shards: Vec<u16>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    pub concurrency: u16,
    pub shutdown_grace_ms: u64,
    pub job_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    pub tiers_ms: Vec<u64>,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchSettings {
    pub user_agent: String,
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    pub max_body_bytes: u64,
    pub max_redirects: u32,
    pub allow_private_networks: bool,
    /// Host -> IP overrides.
    #[serde(default)]
    pub resolve: BTreeMap<String, String>,
    /// Response bodies held in memory at once by the worker (being read or waiting for extraction).
    pub max_buffered_bytes: u64,
    /// Idle keep-alive connections kept per host (each holds a read buffer of up to ~400 KiB).
    pub max_idle_connections_per_host: usize,
    /// An idle keep-alive connection is closed after this long unused (ms).
    pub idle_timeout_ms: u64,
    /// DNS answers cached (0 = no cache: the system resolver per connection).
    pub dns_cache_entries: u64,
    /// Name servers (`ip` or `ip:port`); empty = the system's (`/etc/resolv.conf`, hosts file).
    pub dns_servers: Vec<String>,
    /// DNS answers are kept at least this long (s), whatever their TTL.
    pub dns_min_ttl_s: u64,
    /// PEM file of extra CA certificates trusted for page fetches (beside the built-in web roots); empty = none.
    #[serde(default)]
    pub ca_file: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolitenessSettings {
    pub min_delay_ms: u64,
    pub max_concurrent_per_host: u32,
    pub defer_threshold_ms: u64,
    /// How long a job from a shard queue may wait in the worker for its host before it is deferred (ms).
    #[serde(default = "default_shard_hold_ms")]
    pub shard_hold_ms: u64,
    pub respect_robots: bool,
    pub robots_ttl_s: u64,
    pub robots_error_ttl_s: u64,
    pub max_crawl_delay_ms: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// What a worker does when the fleet-wide limiter (Redis) fails: `defer` (the job is retried later,
    /// never fetched without the fleet's limits) or `local` (fetch on this worker's own limits).
    #[serde(default)]
    pub redis_failure: RedisFailure,
    /// Host or domain -> override; the longest matching suffix wins.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostOverride>,
}

/// `redis.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One Redis server (optionally with replicas behind one address).
    #[default]
    Single,
    /// Redis Cluster: keys spread over the masters by hash slot; every script touches one slot.
    Cluster,
}

/// `politeness.redis_failure`: what the fleet-wide limiter does when Redis fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RedisFailure {
    /// Fail closed: the job is not fetched and goes back through the retry path (`failed.redis_limiter`
    /// once its attempts are used up).
    #[default]
    Defer,
    /// Fall back to this worker's own limits (a fleet of N workers may then hit a host N times as often).
    Local,
}

impl<'de> Deserialize<'de> for RedisFailure {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = String::deserialize(d)?;
        match v.as_str() {
            "defer" => Ok(RedisFailure::Defer),
            "local" => Ok(RedisFailure::Local),
            other => Err(serde::de::Error::custom(format!(
                "politeness.redis_failure = {other:?} is not a choice: use \"defer\" (default: a job is retried later, never fetched without the fleet-wide limiter) or \"local\" (fall back to each worker's own limits while Redis fails)"
            ))),
        }
    }
}

/// Per host/domain politeness override.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostOverride {
    pub min_delay_ms: Option<u64>,
    pub max_concurrent_per_host: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// Empty = embedded mode. Secret because it may carry a password.
    pub url: SecretString,
    pub key_prefix: String,
    /// `single` (one Redis, or a primary behind one address) or `cluster` (Redis Cluster; `url` is one
    /// seed node or a comma-separated list of them).
    #[serde(default)]
    pub mode: RedisMode,
    /// PEM file of CA certificates trusted for rediss:// instead of the system store (empty = system store).
    pub ca_file: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DedupStoreKind {
    Memory,
    Redis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupSettings {
    pub store: DedupStoreKind,
    pub max_entries: usize,
    pub ttl_s: u64,
    /// SimHash Hamming distance for near-duplicates (0 = off).
    pub near_distance: u32,
    pub near_action: NearAction,
    /// URL-seen filter: how long a fetched URL is remembered (0 = off).
    pub url_ttl_s: u64,
    /// Conditional GET: how long a URL's `ETag` / `Last-Modified` are kept (0 = off).
    pub validators_ttl_s: u64,
}

/// Feed and sitemap jobs (`kind = "feed" | "sitemap"`, or recognised from the answer).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSettings {
    /// Pages (and child sitemaps) taken from one source, newest first.
    pub max_items: usize,
    /// Bytes of one source after decompression (the fetch cap for feed and sitemap jobs).
    pub max_bytes: usize,
    /// Items dated older than this are left out (0 = no age limit).
    pub max_item_age_s: u64,
    /// Sitemap-index levels followed below the job a user sent.
    pub max_sitemap_depth: u32,
    /// Feed items may link to other hosts than the feed's (feeds often live on a CDN host).
    pub allow_other_hosts: bool,
    /// Sitemap entries may be on other hosts than the sitemap's (the protocol says they may not).
    pub sitemap_other_hosts: bool,
}

impl FeedSettings {
    /// The limits of one source expanded at `now_s` (Unix seconds).
    pub fn limits(&self, now_s: i64) -> crate::sources::Limits {
        crate::sources::Limits {
            max_items: self.max_items,
            max_bytes: self.max_bytes,
            max_age_s: self.max_item_age_s,
            feed_other_hosts: self.allow_other_hosts,
            sitemap_other_hosts: self.sitemap_other_hosts,
            now_s,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NearAction {
    Flag,
    Drop,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractSettings {
    pub max_html_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    pub listen: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
}

impl Settings {
    /// Defaults, then `file` (when given), then `PAPERBOY__*` variables from the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given explicitly (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Load(format!(
                    "config file {} does not exist (pass an existing TOML file to --config)",
                    path.display()
                )));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let vars: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("retry.tiers_ms")
                .try_parsing(true)
                .source(Some(vars)),
        );
        let cfg = builder
            .build()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        let settings: Settings = cfg.try_deserialize().map_err(|e| {
            ConfigError::Load(format!("{e} (see config/default.toml for every key)"))
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Check every value once; errors name the key, the value and what is expected.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let amqp_url = self.amqp.url.expose_secret();
        match Url::parse(amqp_url) {
            Ok(u) if matches!(u.scheme(), "amqp" | "amqps") => {}
            _ => {
                return Err(invalid(
                    "amqp.url",
                    redact_url(amqp_url),
                    "an amqp:// or amqps:// URL such as amqp://guest:guest@127.0.0.1:5672/%2f",
                ))
            }
        }
        for (key, v) in [
            ("amqp.jobs_queue", &self.amqp.jobs_queue),
            ("amqp.output_exchange", &self.amqp.output_exchange),
            ("amqp.dead_letter_exchange", &self.amqp.dead_letter_exchange),
            ("amqp.dead_letter_queue", &self.amqp.dead_letter_queue),
        ] {
            if v.trim().is_empty() || v.len() > 255 {
                return Err(invalid(
                    key,
                    format!("{v:?}"),
                    "a non-empty name of at most 255 bytes",
                ));
            }
        }
        if self.amqp.delay_queue.len() > 255 - ".1200000".len() {
            return Err(invalid(
                "amqp.delay_queue",
                format!("{:?}", self.amqp.delay_queue),
                "empty (derived from amqp.jobs_queue) or a prefix of at most 247 bytes",
            ));
        }
        if self.amqp.confirm_timeout_ms == 0 {
            return Err(invalid("amqp.confirm_timeout_ms", 0, "a timeout above 0"));
        }
        if let Some(bad) = self
            .amqp
            .consume_shards
            .iter()
            .find(|i| **i >= self.amqp.shards)
        {
            return Err(invalid(
                "amqp.consume_shards",
                format!("{:?}", self.amqp.consume_shards),
                format!(
                    "shard numbers below amqp.shards ({}); {bad} is not one (empty = all shards)",
                    self.amqp.shards
                ),
            ));
        }
        if self.amqp.shards > 0 && self.politeness.shard_hold_ms >= self.worker.job_timeout_ms {
            return Err(invalid(
                "politeness.shard_hold_ms",
                self.politeness.shard_hold_ms,
                format!(
                    "less than worker.job_timeout_ms ({}): a job waiting for its host must still have time to be fetched",
                    self.worker.job_timeout_ms
                ),
            ));
        }
        if self.worker.concurrency == 0 {
            return Err(invalid(
                "worker.concurrency",
                0,
                "at least 1 (jobs processed at once)",
            ));
        }
        if self.worker.job_timeout_ms == 0 {
            return Err(invalid("worker.job_timeout_ms", 0, "a timeout above 0"));
        }
        if self.retry.max_attempts == 0 {
            return Err(invalid(
                "retry.max_attempts",
                0,
                "at least 1 (the first try counts)",
            ));
        }
        if self.retry.tiers_ms.is_empty() || self.retry.tiers_ms.contains(&0) {
            return Err(invalid(
                "retry.tiers_ms",
                format!("{:?}", self.retry.tiers_ms),
                "a non-empty list of delays above 0 ms, e.g. [5000, 30000, 300000]",
            ));
        }
        if self.fetch.user_agent.trim().is_empty() {
            return Err(invalid(
                "fetch.user_agent",
                "\"\"",
                "a User-Agent such as \"paperboy/0.1 (+https://your.site/bot)\"",
            ));
        }
        if self.fetch.timeout_ms == 0 || self.fetch.connect_timeout_ms == 0 {
            return Err(invalid(
                "fetch.timeout_ms",
                format!(
                    "{}/{}",
                    self.fetch.timeout_ms, self.fetch.connect_timeout_ms
                ),
                "timeouts above 0 (fetch.timeout_ms and fetch.connect_timeout_ms)",
            ));
        }
        if self.fetch.max_body_bytes < 1024 {
            return Err(invalid(
                "fetch.max_body_bytes",
                self.fetch.max_body_bytes,
                "at least 1024 bytes",
            ));
        }
        if self.fetch.max_buffered_bytes < 1 << 20 {
            return Err(invalid(
                "fetch.max_buffered_bytes",
                self.fetch.max_buffered_bytes,
                "at least 1048576 bytes (1 MiB)",
            ));
        }
        for (host, ip) in &self.fetch.resolve {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(invalid(
                    "fetch.resolve",
                    format!("{host} = {ip:?}"),
                    "an IP address for each host name",
                ));
            }
        }
        if self.politeness.max_concurrent_per_host == 0 {
            return Err(invalid(
                "politeness.max_concurrent_per_host",
                0,
                "at least 1",
            ));
        }
        if self.politeness.backoff_base_ms > self.politeness.backoff_max_ms {
            return Err(invalid(
                "politeness.backoff_base_ms",
                self.politeness.backoff_base_ms,
                format!(
                    "at most politeness.backoff_max_ms ({})",
                    self.politeness.backoff_max_ms
                ),
            ));
        }
        for (host, o) in &self.politeness.hosts {
            if o.max_concurrent_per_host == Some(0) {
                return Err(invalid(
                    "politeness.hosts.*.max_concurrent_per_host",
                    format!("{host}: 0"),
                    "at least 1",
                ));
            }
        }
        let redis_url = self.redis.url.expose_secret();
        if !redis_url.is_empty() {
            let urls: Vec<&str> = match self.redis.mode {
                RedisMode::Single => vec![redis_url],
                RedisMode::Cluster => redis_url.split(',').map(str::trim).collect(),
            };
            for one in urls {
                match Url::parse(one) {
                    Ok(u) if matches!(u.scheme(), "redis" | "rediss" | "redis+unix" | "unix") => {}
                    _ => {
                        return Err(invalid(
                            "redis.url",
                            redact_url(one),
                            match self.redis.mode {
                                RedisMode::Single => "empty (embedded mode) or a redis:// / rediss:// URL such as redis://127.0.0.1:6379 (several comma-separated seed URLs need redis.mode = \"cluster\")",
                                RedisMode::Cluster => "with redis.mode = \"cluster\": one seed node or comma-separated seed nodes, each a redis:// / rediss:// URL such as redis://10.0.0.1:7000,redis://10.0.0.2:7000",
                            },
                        ));
                    }
                }
            }
        }
        if self.redis.key_prefix.contains(['{', '}']) {
            return Err(invalid(
                "redis.key_prefix",
                format!("{:?}", self.redis.key_prefix),
                "a prefix without { or }: paperboy puts its own hash tags ({h:<host>}) after it",
            ));
        }
        for (key, file) in [
            ("amqp.ca_file", &self.amqp.ca_file),
            ("redis.ca_file", &self.redis.ca_file),
            ("fetch.ca_file", &self.fetch.ca_file),
        ] {
            if !file.is_empty() && !Path::new(file).is_file() {
                return Err(invalid(
                    key,
                    format!("{file:?}"),
                    "empty or the path of a PEM file of CA certificates (the file does not exist)",
                ));
            }
        }
        if self.dedup.store == DedupStoreKind::Redis && redis_url.is_empty() {
            return Err(invalid(
                "dedup.store",
                "\"redis\"",
                "`memory`, or set redis.url to use the shared Redis store",
            ));
        }
        if self.dedup.max_entries == 0 {
            return Err(invalid("dedup.max_entries", 0, "at least 1"));
        }
        if self.feed.max_items == 0 {
            return Err(invalid("feed.max_items", 0, "at least 1"));
        }
        if self.feed.max_bytes < 1024 {
            return Err(invalid(
                "feed.max_bytes",
                self.feed.max_bytes,
                "at least 1024 bytes",
            ));
        }
        if !self.metrics.listen.is_empty()
            && self.metrics.listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(invalid(
                "metrics.listen",
                format!("{:?}", self.metrics.listen),
                "empty (off) or an address such as 0.0.0.0:9090",
            ));
        }
        Ok(())
    }

    /// The broker URL (secret).
    pub fn amqp_url(&self) -> &str {
        self.amqp.url.expose_secret()
    }

    /// The Redis URL, when one is configured.
    pub fn redis_url(&self) -> Option<&str> {
        Some(self.redis.url.expose_secret()).filter(|s| !s.is_empty())
    }
}

impl FetchSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

impl PolitenessSettings {
    /// The override for `host`: the longest configured suffix of it (`a.b.example.com` matches
    /// `example.com`), if any.
    pub fn override_for(&self, host: &str) -> Option<&HostOverride> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let mut cur = host.as_str();
        loop {
            if let Some(o) = self.hosts.get(cur) {
                return Some(o);
            }
            match cur.split_once('.') {
                Some((_, rest)) if !rest.is_empty() => cur = rest,
                _ => return None,
            }
        }
    }

    /// Minimum interval between request starts to `host`.
    pub fn min_delay_for(&self, host: &str) -> Duration {
        let ms = self
            .override_for(host)
            .and_then(|o| o.min_delay_ms)
            .unwrap_or(self.min_delay_ms);
        Duration::from_millis(ms)
    }

    /// Requests in flight to `host` at once.
    pub fn max_concurrent_for(&self, host: &str) -> u32 {
        self.override_for(host)
            .and_then(|o| o.max_concurrent_per_host)
            .unwrap_or(self.max_concurrent_per_host)
    }
}

/// A URL with its password replaced by `***`, for logs and errors.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(s.amqp.jobs_queue, "paperboy.jobs");
        assert_eq!(s.worker.concurrency, 32);
        assert_eq!(s.dedup.store, DedupStoreKind::Memory);
        assert_eq!(s.politeness.redis_failure, RedisFailure::Defer);
        let local = Settings::load_with_env(
            None,
            env(&[("PAPERBOY__POLITENESS__REDIS_FAILURE", "local")]),
        )
        .unwrap();
        assert_eq!(local.politeness.redis_failure, RedisFailure::Local);
        assert_eq!(s.redis.mode, RedisMode::Single);
        let c = Settings::load_with_env(
            None,
            env(&[
                ("PAPERBOY__REDIS__MODE", "cluster"),
                (
                    "PAPERBOY__REDIS__URL",
                    "redis://127.0.0.1:7000,redis://127.0.0.1:7001",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(c.redis.mode, RedisMode::Cluster);
        let e = Settings::load_with_env(
            None,
            env(&[(
                "PAPERBOY__REDIS__URL",
                "redis://127.0.0.1:7000,redis://127.0.0.1:7001",
            )]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("redis.url") && e.contains("cluster"), "{e}");
        assert!(s.redis_url().is_none());
    }

    #[test]
    fn env_overrides_keys_with_underscores_and_lists() {
        let s = Settings::load_with_env(
            None,
            env(&[
                ("PAPERBOY__AMQP__JOBS_QUEUE", "q1"),
                ("PAPERBOY__WORKER__CONCURRENCY", "7"),
                ("PAPERBOY__FETCH__ALLOW_PRIVATE_NETWORKS", "true"),
                ("PAPERBOY__RETRY__TIERS_MS", "100,200"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.amqp.jobs_queue, "q1");
        assert_eq!(s.worker.concurrency, 7);
        assert!(s.fetch.allow_private_networks);
        assert_eq!(s.retry.tiers_ms, vec![100, 200]);
    }

    #[test]
    fn errors_name_key_value_and_expectation() {
        let e = Settings::load_with_env(None, env(&[("PAPERBOY__WORKER__CONCURRENCY", "0")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("worker.concurrency") && e.contains("at least 1"),
            "{e}"
        );
        let e =
            Settings::load_with_env(None, env(&[("PAPERBOY__AMQP__URL", "http://u:secret@h/")]))
                .unwrap_err()
                .to_string();
        assert!(e.contains("amqp.url") && !e.contains("secret"), "{e}");
        let e = Settings::load_with_env(None, env(&[("PAPERBOY__DEDUP__STORE", "redis")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dedup.store") && e.contains("redis.url"), "{e}");
        let e = Settings::load_with_env(None, env(&[("PAPERBOY__DEDUP__STORE", "disk")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("disk"), "{e}");
        let e = Settings::load_with_env(
            None,
            env(&[("PAPERBOY__POLITENESS__REDIS_FAILURE", "ignore")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("politeness.redis_failure")
                && e.contains("\"ignore\"")
                && e.contains("\"defer\"")
                && e.contains("\"local\""),
            "{e}"
        );
        let e = Settings::load_with_env(
            None,
            env(&[("PAPERBOY__REDIS__CA_FILE", "/nonexistent/ca.pem")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("redis.ca_file") && e.contains("does not exist"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[worker]\nconcurency = 3\n").unwrap();
        let e = Settings::load_with_env(Some(&p), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("concurency"), "{e}");
    }

    #[test]
    fn host_overrides_match_longest_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "[politeness.hosts.\"example.com\"]\nmin_delay_ms = 5000\n[politeness.hosts.\"news.example.com\"]\nmin_delay_ms = 100\n",
        )
        .unwrap();
        let s = Settings::load_with_env(Some(&p), env(&[])).unwrap();
        let p = &s.politeness;
        assert_eq!(
            p.min_delay_for("a.news.example.com"),
            Duration::from_millis(100)
        );
        assert_eq!(
            p.min_delay_for("www.example.com"),
            Duration::from_millis(5000)
        );
        assert_eq!(p.min_delay_for("other.org"), Duration::from_millis(1000));
    }
}
