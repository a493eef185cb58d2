//! PURE URL-seen filter: the canonical form of a job's URL, the store key it is remembered under, and a
//! bounded in-memory record of URLs seen (for the memory store; Redis keeps its own with `SET NX GET EX`).
//!
//! Two jobs whose URLs differ only in ways that never change the page a server returns (scheme/host case,
//! default port, fragment, tracking parameters, query-key order) are the same URL here.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use url::Url;

/// Query parameters that only track where a click came from; dropped from the canonical URL.
/// Exact names (lowercase); every `utm_*` parameter is dropped too.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "igshid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "twclid",
    "ttclid",
    "li_fat_id",
    "s_cid",
    "cmpid",
    "wt_mc",
    "at_medium",
    "at_campaign",
];

fn is_tracking(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("utm_") || TRACKING_PARAMS.contains(&k.as_str())
}

/// The canonical form of `url`: scheme and host lowercased and the default port dropped (as [`Url`]
/// already does), the fragment dropped, tracking parameters removed, the remaining query pairs sorted by
/// key (pairs with the same key keep their order), and an empty query removed.
pub fn canonical_url(url: &Url) -> String {
    let mut u = url.clone();
    u.set_fragment(None);
    if u.query().is_some() {
        let mut pairs: Vec<(String, String)> = u
            .query_pairs()
            .filter(|(k, _)| !is_tracking(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        if pairs.is_empty() {
            u.set_query(None);
        } else {
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
    }
    u.into()
}

/// The hash tag of a host's Redis keys, `{h:<host>}` (`host` lowercased by the caller): the politeness
/// limiter's state and leases and the URL-seen and validators records of the host's URLs carry it, so
/// they are in one Redis Cluster slot and one script can touch them all (the fetcher's acquire).
pub fn host_tag(host: &str) -> String {
    format!("{{h:{host}}}")
}

/// The store key of a URL: its host's [`host_tag`], `:`, and 128 bits of the BLAKE3 hash of its
/// [`canonical_url`] in hex (fixed size whatever the URL's length). The host is the URL's own,
/// lowercased, as the fetcher's politeness limiter names it: two URLs that only differ in host case
/// have one key.
pub fn url_key(url: &Url) -> String {
    let hash = blake3::hash(canonical_url(url).as_bytes());
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    format!("{}:{}", host_tag(&host), &hash.to_hex()[..URL_HASH_HEX])
}

/// Hex digits of the URL hash in a [`url_key`] (128 bits).
pub const URL_HASH_HEX: usize = 32;

/// What the URL-seen filter says about a job's URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlVerdict {
    /// Not seen within the TTL. Now recorded.
    New,
    /// Recorded by this same job: a redelivered job, or a child job whose feed recorded its URL for it.
    /// The job goes on.
    Own,
    /// Another job recorded the URL within the TTL.
    Seen {
        /// The job that recorded it.
        first_job: String,
    },
}

/// URLs seen by this process: at most `max_entries`, none older than their TTL; oldest evicted first.
#[derive(Debug)]
pub struct UrlMemory {
    max_entries: usize,
    entries: HashMap<String, (Box<str>, Instant, Duration)>,
    /// Insertion order; may hold keys already removed or re-recorded (skipped when evicting).
    order: VecDeque<(String, Instant)>,
}

impl UrlMemory {
    /// A record of at most `max_entries` URLs (at least 1).
    pub fn new(max_entries: usize) -> UrlMemory {
        UrlMemory {
            max_entries: max_entries.max(1),
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Check `key` for `job_id` at `now`, recording it for `ttl` when new. Returns the verdict and how
    /// many entries were evicted to stay within the bound.
    pub fn check(
        &mut self,
        key: &str,
        job_id: &str,
        ttl: Duration,
        now: Instant,
    ) -> (UrlVerdict, u64) {
        if let Some((first, at, entry_ttl)) = self.entries.get(key) {
            if now.duration_since(*at) < *entry_ttl {
                if &**first == job_id {
                    return (UrlVerdict::Own, 0);
                }
                return (
                    UrlVerdict::Seen {
                        first_job: first.to_string(),
                    },
                    0,
                );
            }
        }
        self.entries
            .insert(key.to_string(), (job_id.into(), now, ttl));
        self.order.push_back((key.to_string(), now));
        (UrlVerdict::New, self.evict(now))
    }

    /// Forget `key` if `job_id` recorded it (a job that failed for good lets the URL be tried again).
    pub fn forget(&mut self, key: &str, job_id: &str) {
        if self
            .entries
            .get(key)
            .is_some_and(|(j, _, _)| &**j == job_id)
        {
            self.entries.remove(key);
        }
    }

    /// URLs remembered now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drop expired entries and the oldest beyond the bound; the count of live entries dropped.
    fn evict(&mut self, now: Instant) -> u64 {
        let mut evicted = 0;
        while let Some((key, at)) = self.order.front() {
            let live = self.entries.get(key).filter(|(_, t, _)| t == at);
            let over = self.entries.len() > self.max_entries;
            match live {
                // Stale order entry (forgotten or re-recorded since): just drop it.
                None => {}
                Some((_, t, ttl)) if now.duration_since(*t) >= *ttl || over => {
                    self.entries.remove(key);
                    evicted += 1;
                }
                Some(_) => break,
            }
            self.order.pop_front();
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        canonical_url(&Url::parse(s).unwrap())
    }

    #[test]
    fn case_port_fragment_and_tracking_are_not_part_of_the_url() {
        assert_eq!(
            canon("HTTPS://News.Example:443/a/B?utm_source=x&b=2&a=1&fbclid=z#top"),
            "https://news.example/a/B?a=1&b=2"
        );
        assert_eq!(
            canon("http://x.example:80/p?UTM_Medium=m"),
            "http://x.example/p"
        );
        assert_eq!(canon("http://x.example:8080/p?"), "http://x.example:8080/p");
        // Path case and repeated keys' order are kept: they can change the page.
        assert_eq!(
            canon("https://x.example/P?k=2&k=1"),
            "https://x.example/P?k=2&k=1"
        );
        assert_ne!(canon("https://x.example/p/"), canon("https://x.example/p"));
    }

    #[test]
    fn same_page_same_key_and_keys_are_fixed_size() {
        let key = |s: &str| url_key(&Url::parse(s).unwrap());
        let a = key("https://x.example/p?b=1&a=2&gclid=q");
        let b = key("https://X.example/p?a=2&b=1#c");
        assert_eq!(a, b);
        assert!(a.starts_with("{h:x.example}:"), "{a}");
        assert_eq!(a.len(), "{h:x.example}:".len() + URL_HASH_HEX);
        let long = format!("https://x.example/{}", "a".repeat(5000));
        assert_eq!(key(&long).len(), a.len());
        assert_ne!(a, key("https://x.example/q"));
        assert!(key("http://[::1]:8080/p").starts_with("{h:[::1]}:"));
    }

    #[test]
    fn seen_within_ttl_new_after_and_redelivery_goes_on() {
        let mut m = UrlMemory::new(10);
        let t0 = Instant::now();
        let ttl = Duration::from_secs(60);
        assert_eq!(m.check("k", "j1", ttl, t0).0, UrlVerdict::New);
        assert_eq!(m.check("k", "j1", ttl, t0).0, UrlVerdict::Own, "same job");
        assert_eq!(
            m.check("k", "j2", ttl, t0 + Duration::from_secs(59)).0,
            UrlVerdict::Seen {
                first_job: "j1".into()
            }
        );
        assert_eq!(
            m.check("k", "j2", ttl, t0 + Duration::from_secs(61)).0,
            UrlVerdict::New,
            "expired"
        );
        assert_eq!(
            m.check("k", "j3", ttl, t0 + Duration::from_secs(62)).0,
            UrlVerdict::Seen {
                first_job: "j2".into()
            }
        );
    }

    #[test]
    fn forget_only_by_the_recording_job_and_bound_holds() {
        let mut m = UrlMemory::new(3);
        let t0 = Instant::now();
        let ttl = Duration::from_secs(60);
        m.check("k", "j1", ttl, t0);
        m.forget("k", "other");
        assert!(matches!(
            m.check("k", "j2", ttl, t0).0,
            UrlVerdict::Seen { .. }
        ));
        m.forget("k", "j1");
        assert_eq!(m.check("k", "j2", ttl, t0).0, UrlVerdict::New);
        let mut evicted = 0;
        for i in 0..10 {
            evicted += m.check(&format!("u{i}"), "j", ttl, t0).1;
        }
        assert_eq!(m.len(), 3);
        assert_eq!(evicted, 8);
        assert_eq!(m.order.len(), 3);
    }
}
