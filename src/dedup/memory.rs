//! PURE per-worker dedup store: bounded by entry count and age, oldest evicted first.
//!
//! std only (a `Mutex`, no runtime): the critical section is a few hash-map operations.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::hash::{hamming, Bands, Fingerprint};
use super::url::{UrlMemory, UrlVerdict};
use super::{DedupError, Seen, Validators, Verdict};
use crate::config::DedupSettings;

/// A URL's conditional-GET record: (recording job, validators, expiry).
type ValidatorsEntry = (Box<str>, Validators, Instant);

/// Remembers content hashes (and SimHashes in an LSH band index) in memory.
///
/// Bounded: at most `max_entries` hashes, none older than `ttl`; the band index only holds hashes that are
/// still remembered, so it is bounded by `max_entries × bands` too.
pub struct MemoryStore {
    /// Hashes remembered at most (`dedup.max_entries`).
    max_entries: usize,
    /// How long a hash is remembered (`dedup.ttl_s`).
    ttl: Duration,
    /// Near-duplicate distance (`dedup.near_distance`); 0 = exact only.
    near_distance: u32,
    /// Band layout for `near_distance`.
    bands: Bands,
    /// Entries evicted so far (by bound or by age), for the metrics.
    evictions: AtomicU64,
    inner: Mutex<Inner>,
    /// URL-seen filter (`dedup.url_ttl_s`), bounded by `max_entries` too.
    urls: Mutex<UrlMemory>,
    /// Conditional-GET validators by URL key: (recording job, validators, expiry), at most
    /// `max_entries` (expired ones dropped first, then any).
    validators: Mutex<HashMap<String, ValidatorsEntry>>,
}

struct Entry {
    /// Job that recorded the hash.
    job_id: Box<str>,
    /// Its verdict was NearDuplicate of this (hash, distance): returned again on redelivery.
    near: Option<(Arc<str>, u32)>,
    simhash: u64,
    /// Whether `simhash` is in the band index (only for `New` verdicts).
    indexed: bool,
    /// When it was recorded.
    at: Instant,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Arc<str>, Entry>,
    /// Insertion order = age order (entries are never refreshed): the front is evicted first.
    order: VecDeque<Arc<str>>,
    /// (band index, band bits) -> hashes whose SimHash has those bits.
    index: HashMap<(u32, u64), Vec<Arc<str>>>,
}

impl MemoryStore {
    /// A store holding at most `max_entries` hashes (at least 1) for at most `ttl`.
    pub fn new(max_entries: usize, ttl: Duration, near_distance: u32) -> MemoryStore {
        MemoryStore {
            max_entries: max_entries.max(1),
            ttl,
            near_distance,
            bands: Bands::for_distance(near_distance),
            evictions: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
            urls: Mutex::new(UrlMemory::new(max_entries)),
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// From `dedup.max_entries`, `dedup.ttl_s`, `dedup.near_distance`.
    pub fn from_settings(d: &DedupSettings) -> MemoryStore {
        MemoryStore::new(d.max_entries, Duration::from_secs(d.ttl_s), d.near_distance)
    }

    /// Entries evicted so far (bound or age).
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Hashes remembered now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Members of the band index now (≤ `len() × bands`).
    pub fn index_len(&self) -> usize {
        self.lock().index.values().map(Vec::len).sum()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent-enough state (worst case a stale index member).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`Seen::check_and_record`], synchronously, at the current time.
    pub fn check_and_record_now(&self, fp: &Fingerprint, job_id: &str) -> Verdict {
        self.check_and_record_at(fp, job_id, Instant::now())
    }

    /// [`Seen::check_and_record`] at time `now` (tests move the clock).
    pub fn check_and_record_at(&self, fp: &Fingerprint, job_id: &str, now: Instant) -> Verdict {
        let mut inner = self.lock();
        self.expire(&mut inner, now);

        if let Some(e) = inner.entries.get(fp.hash.as_str()) {
            if &*e.job_id == job_id {
                return match &e.near {
                    Some((of, d)) => Verdict::NearDuplicate {
                        of_hash: of.to_string(),
                        distance: *d,
                    },
                    None => Verdict::New,
                };
            }
            return Verdict::Duplicate {
                first_job: e.job_id.to_string(),
            };
        }

        let near = if self.near_distance > 0 {
            self.nearest(&inner, fp.simhash)
        } else {
            None
        };
        let key: Arc<str> = Arc::from(fp.hash.as_str());
        let indexed = near.is_none() && self.near_distance > 0;
        if indexed {
            for bk in self.bands.keys(fp.simhash) {
                inner.index.entry(bk).or_default().push(key.clone());
            }
        }
        inner.entries.insert(
            key.clone(),
            Entry {
                job_id: job_id.into(),
                near: near.clone(),
                simhash: fp.simhash,
                indexed,
                at: now,
            },
        );
        inner.order.push_back(key);
        while inner.entries.len() > self.max_entries {
            self.evict_front(&mut inner);
        }
        match near {
            Some((of, distance)) => Verdict::NearDuplicate {
                of_hash: of.to_string(),
                distance,
            },
            None => Verdict::New,
        }
    }

    /// The closest indexed hash within `near_distance` of `simhash` (ties: the earliest recorded).
    fn nearest(&self, inner: &Inner, simhash: u64) -> Option<(Arc<str>, u32)> {
        let mut best: Option<(Arc<str>, u32, Instant)> = None;
        for bk in self.bands.keys(simhash) {
            let Some(bucket) = inner.index.get(&bk) else {
                continue;
            };
            for h in bucket {
                let Some(e) = inner.entries.get(h) else {
                    continue;
                };
                let d = hamming(simhash, e.simhash);
                if d > self.near_distance {
                    continue;
                }
                let better = match &best {
                    None => true,
                    Some((_, bd, bat)) => d < *bd || (d == *bd && e.at < *bat),
                };
                if better {
                    best = Some((h.clone(), d, e.at));
                }
            }
        }
        best.map(|(h, d, _)| (h, d))
    }

    /// Drop entries older than the TTL (they are at the front).
    fn expire(&self, inner: &mut Inner, now: Instant) {
        while let Some(front) = inner.order.front() {
            let expired = inner
                .entries
                .get(front)
                .is_none_or(|e| now.saturating_duration_since(e.at) >= self.ttl);
            if !expired {
                break;
            }
            self.evict_front(inner);
        }
    }

    fn evict_front(&self, inner: &mut Inner) {
        let Some(key) = inner.order.pop_front() else {
            return;
        };
        let Some(entry) = inner.entries.remove(&key) else {
            return;
        };
        self.evictions.fetch_add(1, Ordering::Relaxed);
        if entry.indexed {
            for bk in self.bands.keys(entry.simhash) {
                if let Some(bucket) = inner.index.get_mut(&bk) {
                    bucket.retain(|h| !Arc::ptr_eq(h, &key));
                    if bucket.is_empty() {
                        inner.index.remove(&bk);
                    }
                }
            }
        }
    }
}

impl Seen for MemoryStore {
    fn check_and_record(
        &self,
        fp: &Fingerprint,
        job_id: &str,
    ) -> impl std::future::Future<Output = Result<Verdict, DedupError>> + Send {
        std::future::ready(Ok(self.check_and_record_now(fp, job_id)))
    }

    fn check_url(
        &self,
        key: &str,
        job_id: &str,
        ttl: Duration,
    ) -> impl std::future::Future<Output = Result<UrlVerdict, DedupError>> + Send {
        let mut urls = self.urls.lock().unwrap_or_else(|e| e.into_inner());
        let (verdict, evicted) = urls.check(key, job_id, ttl, Instant::now());
        self.evictions.fetch_add(evicted, Ordering::Relaxed);
        std::future::ready(Ok(verdict))
    }

    fn forget_url(
        &self,
        key: &str,
        job_id: &str,
    ) -> impl std::future::Future<Output = Result<(), DedupError>> + Send {
        let mut urls = self.urls.lock().unwrap_or_else(|e| e.into_inner());
        urls.forget(key, job_id);
        std::future::ready(Ok(()))
    }

    fn validators(
        &self,
        key: &str,
        job_id: &str,
        own: bool,
    ) -> impl std::future::Future<Output = Result<Option<Validators>, DedupError>> + Send {
        let map = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        let found = map
            .get(key)
            .filter(|(job, _, expires)| *expires > Instant::now() && (own || &**job != job_id))
            .map(|(_, v, _)| v.clone());
        std::future::ready(Ok(found))
    }

    fn record_validators(
        &self,
        key: &str,
        job_id: &str,
        v: &Validators,
        ttl: Duration,
    ) -> impl std::future::Future<Output = Result<(), DedupError>> + Send {
        let mut map = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if map.len() >= self.max_entries && !map.contains_key(key) {
            map.retain(|_, (_, _, expires)| *expires > now);
            if map.len() >= self.max_entries {
                // Still full of live entries: drop an eighth (any), so the scan is paid rarely.
                let drop: Vec<String> =
                    map.keys().take(self.max_entries / 8 + 1).cloned().collect();
                for k in &drop {
                    map.remove(k);
                }
                self.evictions
                    .fetch_add(drop.len() as u64, Ordering::Relaxed);
            }
        }
        map.insert(key.to_string(), (job_id.into(), v.clone(), now + ttl));
        std::future::ready(Ok(()))
    }

    fn evictions(&self) -> u64 {
        MemoryStore::evictions(self)
    }
}

#[cfg(test)]
mod tests {
    use super::super::hash::{fingerprint, tests::STORY};
    use super::*;

    fn fp(hash: &str, simhash: u64) -> Fingerprint {
        Fingerprint {
            hash: hash.to_string(),
            simhash,
        }
    }

    #[test]
    fn same_job_is_new_other_job_is_duplicate() {
        let s = MemoryStore::new(10, Duration::from_secs(60), 3);
        let f = fingerprint(STORY);
        assert_eq!(s.check_and_record_now(&f, "a"), Verdict::New);
        assert_eq!(
            s.check_and_record_now(&f, "a"),
            Verdict::New,
            "redelivery of the same job"
        );
        assert_eq!(
            s.check_and_record_now(&f, "b"),
            Verdict::Duplicate {
                first_job: "a".into()
            }
        );
    }

    #[test]
    fn near_duplicates_are_found_and_recorded_exactly() {
        let s = MemoryStore::new(10, Duration::from_secs(60), 3);
        assert_eq!(
            s.check_and_record_now(&fp("h1", 0xFFFF_0000_FFFF_0000), "a"),
            Verdict::New
        );
        let near = fp("h2", 0xFFFF_0000_FFFF_0007); // 3 bits away
        let v = s.check_and_record_now(&near, "b");
        assert_eq!(
            v,
            Verdict::NearDuplicate {
                of_hash: "h1".into(),
                distance: 3
            }
        );
        assert_eq!(
            s.check_and_record_now(&near, "b"),
            v,
            "redelivery repeats the verdict"
        );
        assert_eq!(
            s.check_and_record_now(&near, "c"),
            Verdict::Duplicate {
                first_job: "b".into()
            }
        );
        // 4 bits away from h1: not near at distance 3.
        assert_eq!(
            s.check_and_record_now(&fp("h3", 0xFFFF_0000_FFFF_000F), "d"),
            Verdict::New
        );
        // Near detection off: only exact.
        let off = MemoryStore::new(10, Duration::from_secs(60), 0);
        assert_eq!(off.check_and_record_now(&fp("h1", 1), "a"), Verdict::New);
        assert_eq!(off.check_and_record_now(&fp("h2", 1), "b"), Verdict::New);
        assert_eq!(off.index_len(), 0);
    }

    #[test]
    fn entries_expire_after_ttl() {
        let s = MemoryStore::new(10, Duration::from_secs(60), 3);
        let t0 = Instant::now();
        let f = fp("h1", 42);
        assert_eq!(s.check_and_record_at(&f, "a", t0), Verdict::New);
        assert!(matches!(
            s.check_and_record_at(&f, "b", t0 + Duration::from_secs(59)),
            Verdict::Duplicate { .. }
        ));
        assert_eq!(
            s.check_and_record_at(&f, "b", t0 + Duration::from_secs(61)),
            Verdict::New
        );
        assert_eq!(s.evictions(), 1);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn stays_bounded_over_many_distinct_jobs() {
        let s = MemoryStore::new(10_000, Duration::from_secs(3600), 3);
        let t0 = Instant::now();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..200_000u64 {
            // xorshift: spread SimHashes over all buckets, like real texts.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = s.check_and_record_at(&fp(&format!("h{i}"), x), &format!("j{i}"), t0);
            assert!(!matches!(v, Verdict::Duplicate { .. }));
            assert!(s.len() <= 10_000);
        }
        assert_eq!(s.len(), 10_000);
        assert!(s.index_len() <= 10_000 * 4, "{}", s.index_len());
        assert_eq!(s.evictions(), 190_000);
        assert!(s.lock().index.len() <= 40_000);
        // The newest are still remembered, the oldest are gone.
        assert!(s.lock().entries.contains_key("h199999"));
        assert!(!s.lock().entries.contains_key("h0"));
    }
}
