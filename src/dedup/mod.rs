//! Dedup: PURE content hashing (+ SimHash) and the [`Seen`] stores that remember what was published.
//!
//! - [`hash`]: PURE `content_hash`, `simhash`, `hamming`, LSH [`Bands`], [`Fingerprint`].
//! - [`memory`]: [`MemoryStore`], per worker, bounded by entries and age (PURE: std only).
//! - [`redis_store`]: [`RedisStore`], shared by the fleet.
//!
//! The worker calls [`fingerprint`] on the extracted text, then [`Seen::check_and_record`], and applies
//! `dedup.near_action` to a [`Verdict::NearDuplicate`] itself.

pub mod hash;
pub mod memory;
pub mod redis_store;
pub mod url;

use std::future::Future;
use std::time::Duration;

pub use hash::{content_hash, fingerprint, hamming, simhash, Bands, Fingerprint};
pub use memory::MemoryStore;
pub use redis_store::{RedisStore, UrlCheck, UrlChecked};
pub use url::{canonical_url, host_tag, url_key, UrlVerdict};

use crate::config::{DedupStoreKind, Settings};
pub use crate::fetch::Validators;

/// What the store says about a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not seen before (or seen before by this same job: a redelivery publishes again). Now recorded.
    New,
    /// The exact text was recorded before by another job.
    Duplicate {
        /// The job that recorded it first (the Redis store keeps only a hash of it:
        /// `#<12 hex digits>`, see [`RedisStore::job_ref`]).
        first_job: String,
    },
    /// Not seen exactly, but within `dedup.near_distance` bits of an earlier text. The exact hash is now
    /// recorded (a later exact copy is a [`Verdict::Duplicate`]); the SimHash is not added to the index, so
    /// chains of small edits stay anchored to the first version.
    NearDuplicate {
        /// Content hash of the earlier text (the Redis store: its first 12 hex digits,
        /// [`RedisStore::short_hash`]).
        of_hash: String,
        /// Hamming distance between the two SimHashes.
        distance: u32,
    },
}

/// The seam between the worker and a dedup store.
pub trait Seen: Send + Sync + 'static {
    /// Record `fp` for `job_id` if unseen. A hash already recorded BY THE SAME job_id returns New
    /// (a redelivered job must publish again, not be dropped as its own duplicate); if that job's first
    /// verdict was `NearDuplicate`, the same `NearDuplicate` is returned again, so a redelivery publishes
    /// exactly what the first delivery did.
    ///
    /// Exact check first; near-duplicate check only when `dedup.near_distance > 0`.
    fn check_and_record(
        &self,
        fp: &Fingerprint,
        job_id: &str,
    ) -> impl Future<Output = Result<Verdict, DedupError>> + Send;

    /// URL-seen filter: record `key` ([`url_key`] of the canonical URL) for `job_id` for `ttl` unless
    /// another job recorded it within its TTL. The same job finding its own record gets `New` (a
    /// redelivered job goes on).
    fn check_url(
        &self,
        key: &str,
        job_id: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<UrlVerdict, DedupError>> + Send;

    /// Forget `key` if `job_id` recorded it: a job that ends in failure lets its URL be tried again.
    fn forget_url(
        &self,
        key: &str,
        job_id: &str,
    ) -> impl Future<Output = Result<(), DedupError>> + Send;

    /// Conditional GET: the validators recorded for `key` ([`url_key`] of the canonical URL) by ANOTHER
    /// job, or by this job when `own` is allowed. A job's own record is not sent back on a redelivery:
    /// a 304 would then end the job without the article its first delivery never published.
    fn validators(
        &self,
        key: &str,
        job_id: &str,
        own: bool,
    ) -> impl Future<Output = Result<Option<Validators>, DedupError>> + Send;

    /// A job's URL-seen check ([`Seen::check_url`], skipped when `ttl` is `None`: `New`) and validators
    /// lookup ([`Seen::validators`] with `own`, skipped when `None`: no validators) together. The Redis
    /// store makes it one call (both keys share a slot); the default runs both concurrently.
    fn check_url_and_validators(
        &self,
        key: &str,
        job_id: &str,
        ttl: Option<Duration>,
        own: Option<bool>,
    ) -> impl Future<Output = UrlAndValidators> + Send {
        async move {
            let url = async {
                match ttl {
                    Some(t) => self.check_url(key, job_id, t).await,
                    None => Ok(UrlVerdict::New),
                }
            };
            let validators = async {
                match own {
                    Some(own) => self.validators(key, job_id, own).await,
                    None => Ok(None),
                }
            };
            futures_util::future::join(url, validators).await
        }
    }

    /// The job's URL-seen check and validators lookup (arguments as for
    /// [`Seen::check_url_and_validators`]) as a [`UrlCheck`] another Redis call can carry: the fetcher
    /// runs it in its host's acquire script when it is on the same Redis connection (one round trip
    /// for the check, the lease, the slot and the start). `None` (the default, a store outside Redis):
    /// the caller runs [`Seen::check_url_and_validators`].
    fn url_check(
        &self,
        key: &str,
        job_id: &str,
        ttl: Option<Duration>,
        own: Option<bool>,
    ) -> Option<UrlCheck> {
        let _ = (key, job_id, ttl, own);
        None
    }

    /// Remember `v` for `key` (recorded by `job_id`) for `ttl`.
    fn record_validators(
        &self,
        key: &str,
        job_id: &str,
        v: &Validators,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), DedupError>> + Send;

    /// Entries evicted so far to stay within the store's bounds; 0 for stores that expire keys
    /// themselves (Redis). Fed to the `paperboy_dedup_evictions_total` metric.
    fn evictions(&self) -> u64 {
        0
    }
}

/// What [`Seen::check_url_and_validators`] found: the URL verdict, the validators.
pub type UrlAndValidators = (
    Result<UrlVerdict, DedupError>,
    Result<Option<Validators>, DedupError>,
);

/// Why a dedup check failed. Never carries the Redis URL or password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DedupError {
    #[error("dedup store: Redis {op} failed: {source} (is Redis reachable at redis.url?)")]
    Redis {
        /// What the store was doing (`lookup`, `record`).
        op: &'static str,
        #[source]
        source: ::redis::RedisError,
    },
    #[error("dedup store: unexpected Redis reply to {op}: {detail}")]
    Reply { op: &'static str, detail: String },
}

/// The store chosen by `dedup.store`.
pub enum Store {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl Store {
    /// Entries evicted so far by the memory store (bound or age); for Redis, band records left out of
    /// a full bucket (Redis expires keys itself).
    /// Feed it to `Metrics::dedup_evictions_total`.
    pub fn evictions(&self) -> u64 {
        match self {
            Store::Memory(m) => m.evictions(),
            Store::Redis(r) => r.dropped_band_records(),
        }
    }

    /// `"memory"` or `"redis"`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }
}

impl Seen for Store {
    async fn check_and_record(
        &self,
        fp: &Fingerprint,
        job_id: &str,
    ) -> Result<Verdict, DedupError> {
        match self {
            Store::Memory(m) => m.check_and_record(fp, job_id).await,
            Store::Redis(r) => r.check_and_record(fp, job_id).await,
        }
    }

    async fn check_url(
        &self,
        key: &str,
        job_id: &str,
        ttl: Duration,
    ) -> Result<UrlVerdict, DedupError> {
        match self {
            Store::Memory(m) => m.check_url(key, job_id, ttl).await,
            Store::Redis(r) => r.check_url(key, job_id, ttl).await,
        }
    }

    async fn forget_url(&self, key: &str, job_id: &str) -> Result<(), DedupError> {
        match self {
            Store::Memory(m) => m.forget_url(key, job_id).await,
            Store::Redis(r) => r.forget_url(key, job_id).await,
        }
    }

    async fn validators(
        &self,
        key: &str,
        job_id: &str,
        own: bool,
    ) -> Result<Option<Validators>, DedupError> {
        match self {
            Store::Memory(m) => m.validators(key, job_id, own).await,
            Store::Redis(r) => r.validators(key, job_id, own).await,
        }
    }

    async fn check_url_and_validators(
        &self,
        key: &str,
        job_id: &str,
        ttl: Option<Duration>,
        own: Option<bool>,
    ) -> UrlAndValidators {
        match self {
            Store::Memory(m) => m.check_url_and_validators(key, job_id, ttl, own).await,
            Store::Redis(r) => r.check_url_and_validators(key, job_id, ttl, own).await,
        }
    }

    fn url_check(
        &self,
        key: &str,
        job_id: &str,
        ttl: Option<Duration>,
        own: Option<bool>,
    ) -> Option<UrlCheck> {
        match self {
            Store::Memory(m) => m.url_check(key, job_id, ttl, own),
            Store::Redis(r) => r.url_check(key, job_id, ttl, own),
        }
    }

    async fn record_validators(
        &self,
        key: &str,
        job_id: &str,
        v: &Validators,
        ttl: Duration,
    ) -> Result<(), DedupError> {
        match self {
            Store::Memory(m) => m.record_validators(key, job_id, v, ttl).await,
            Store::Redis(r) => r.record_validators(key, job_id, v, ttl).await,
        }
    }

    fn evictions(&self) -> u64 {
        Store::evictions(self)
    }
}

/// The store `dedup.store` names: `memory` (bounded by `dedup.max_entries` / `dedup.ttl_s`) or `redis`
/// (on the connection the caller made from `redis.url`).
///
/// `redis = None` with `dedup.store = "redis"` gives a memory store and a warning: a one-process command
/// (`scrape`) run with the fleet's settings still works, remembering only its own articles. The worker
/// always passes the connection (configuration validation makes `redis.url` required for `redis`).
pub async fn build_store(
    settings: &Settings,
    redis: Option<crate::redis_conn::RedisConn>,
) -> Result<Store, DedupError> {
    match (settings.dedup.store, redis) {
        (DedupStoreKind::Redis, Some(conn)) => Ok(Store::Redis(RedisStore::from_settings(
            conn,
            &settings.redis,
            &settings.dedup,
        ))),
        (DedupStoreKind::Redis, None) => {
            tracing::warn!(
                "dedup.store = \"redis\" but no Redis connection here: using a memory store for this process"
            );
            Ok(Store::Memory(MemoryStore::from_settings(&settings.dedup)))
        }
        (DedupStoreKind::Memory, _) => {
            Ok(Store::Memory(MemoryStore::from_settings(&settings.dedup)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn builds_memory_store_from_defaults_and_without_a_redis_connection() {
        let s = Settings::load_with_env(None, Vec::<(String, String)>::new()).unwrap();
        let store = build_store(&s, None).await.unwrap();
        assert_eq!(store.kind(), "memory");
        let fp = fingerprint("some text here");
        assert_eq!(
            store.check_and_record(&fp, "j1").await.unwrap(),
            Verdict::New
        );
        let s = Settings::load_with_env(
            None,
            vec![
                ("PAPERBOY__DEDUP__STORE".to_string(), "redis".to_string()),
                (
                    "PAPERBOY__REDIS__URL".to_string(),
                    "redis://:hunter2@127.0.0.1:6379".to_string(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(build_store(&s, None).await.unwrap().kind(), "memory");
    }
}
