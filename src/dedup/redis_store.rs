//! Dedup store shared by every worker of the fleet, in Redis.
//!
//! Keys (all under `redis.key_prefix` + `dedup:`):
//! - `<prefix>dedup:blake3:<hex>` → the job id that recorded the hash (plus, for a near-duplicate,
//!   `\x1f<of_hash>\x1f<distance>`), with TTL `dedup.ttl_s`; written atomically (set-if-absent in a Lua
//!   script that returns the existing value otherwise).
//! - `<prefix>dedup:band:<i>of<n>:<bits hex>` → list of `<simhash hex>:<expires unix ms>:<hash>`, newest
//!   first, capped at [`BAND_BUCKET_CAP`], TTL refreshed on each push.
//!
//! A check costs one round trip when the hash is known (pipelined GET + band reads), two otherwise
//! (+ the atomic record script), whatever the fleet's size.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;
use redis::{Script, Value};

use super::hash::{hamming, Bands, Fingerprint};
use super::{DedupError, Seen, Verdict};
use crate::config::{DedupSettings, RedisSettings};

/// Members kept per band bucket: bounds memory and the work of one lookup even for crowded buckets.
pub const BAND_BUCKET_CAP: usize = 64;
/// Separates the job id from the near-duplicate verdict in an exact key's value.
const SEP: char = '\u{1f}';

/// Set the exact key if absent (returning the existing value otherwise), and on success push the member
/// onto each band bucket given as further keys. Atomic: two workers recording the same hash at once get
/// one `nil` (recorded) and one existing value.
const RECORD_LUA: &str = r"
local old = redis.call('GET', KEYS[1])
if old then return old end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 2, #KEYS do
  redis.call('LPUSH', KEYS[i], ARGV[3])
  redis.call('LTRIM', KEYS[i], 0, tonumber(ARGV[4]) - 1)
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return false
";

/// Remembers content hashes and SimHash bands in Redis.
#[derive(Clone)]
pub struct RedisStore {
    /// Reconnects by itself; cheap to clone.
    conn: ConnectionManager,
    /// `redis.key_prefix` + `dedup:`.
    prefix: String,
    /// `dedup.ttl_s` in ms.
    ttl_ms: u64,
    /// `dedup.near_distance`; 0 = exact only.
    near_distance: u32,
    bands: Bands,
    record: Script,
}

impl RedisStore {
    /// A store writing keys under `key_prefix` + `dedup:`.
    pub fn new(
        conn: ConnectionManager,
        key_prefix: &str,
        ttl: Duration,
        near_distance: u32,
    ) -> RedisStore {
        RedisStore {
            conn,
            prefix: format!("{key_prefix}dedup:"),
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1),
            near_distance,
            bands: Bands::for_distance(near_distance),
            record: Script::new(RECORD_LUA),
        }
    }

    /// From `redis.key_prefix`, `dedup.ttl_s`, `dedup.near_distance`.
    pub fn from_settings(
        conn: ConnectionManager,
        r: &RedisSettings,
        d: &DedupSettings,
    ) -> RedisStore {
        RedisStore::new(
            conn,
            &r.key_prefix,
            Duration::from_secs(d.ttl_s),
            d.near_distance,
        )
    }

    /// The key holding `hash`.
    pub fn exact_key(&self, hash: &str) -> String {
        format!("{}{}", self.prefix, hash)
    }

    fn band_key(&self, i: u32, bits: u64) -> String {
        format!(
            "{}band:{}of{}:{:x}",
            self.prefix,
            i,
            self.bands.count(),
            bits
        )
    }

    /// The verdict an existing exact key's value means for `job_id`.
    fn verdict_for_existing(value: &str, job_id: &str) -> Verdict {
        let (first_job, near) = decode_value(value);
        if first_job != job_id {
            return Verdict::Duplicate {
                first_job: first_job.to_string(),
            };
        }
        match near {
            Some((of, distance)) => Verdict::NearDuplicate {
                of_hash: of.to_string(),
                distance,
            },
            None => Verdict::New,
        }
    }

    async fn check(&self, fp: &Fingerprint, job_id: &str) -> Result<Verdict, DedupError> {
        let mut conn = self.conn.clone();
        let exact = self.exact_key(&fp.hash);
        let band_keys: Vec<String> = if self.near_distance > 0 {
            self.bands
                .keys(fp.simhash)
                .map(|(i, bits)| self.band_key(i, bits))
                .collect()
        } else {
            Vec::new()
        };

        // Round trip 1: the exact key and every band bucket.
        let mut pipe = redis::pipe();
        pipe.get(&exact);
        for k in &band_keys {
            pipe.lrange(k, 0, -1);
        }
        let replies: Vec<Value> =
            pipe.query_async(&mut conn)
                .await
                .map_err(|source| DedupError::Redis {
                    op: "lookup",
                    source,
                })?;
        let mut replies = replies.into_iter();
        let existing: Option<String> =
            redis::from_owned_redis_value(replies.next().unwrap_or(Value::Nil)).map_err(|e| {
                DedupError::Reply {
                    op: "GET",
                    detail: e.to_string(),
                }
            })?;
        if let Some(v) = existing {
            return Ok(Self::verdict_for_existing(&v, job_id));
        }

        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut best: Option<(String, u32)> = None;
        for reply in replies {
            let members: Vec<String> =
                redis::from_owned_redis_value(reply).map_err(|e| DedupError::Reply {
                    op: "LRANGE",
                    detail: e.to_string(),
                })?;
            for m in &members {
                let Some((sim, expires, hash)) = decode_member(m) else {
                    continue;
                };
                if expires <= now_ms || hash == fp.hash {
                    continue;
                }
                let d = hamming(sim, fp.simhash);
                if d <= self.near_distance && best.as_ref().is_none_or(|(_, bd)| d < *bd) {
                    best = Some((hash.to_string(), d));
                }
            }
        }

        // Round trip 2: record atomically; bands only for a New verdict.
        let value = match &best {
            Some((of, d)) => format!("{job_id}{SEP}{of}{SEP}{d}"),
            None => job_id.to_string(),
        };
        let member = format!(
            "{:016x}:{}:{}",
            fp.simhash,
            now_ms.saturating_add(self.ttl_ms),
            fp.hash
        );
        let mut inv = self.record.key(&exact);
        if best.is_none() {
            for k in &band_keys {
                inv.key(k);
            }
        }
        inv.arg(&value)
            .arg(self.ttl_ms)
            .arg(&member)
            .arg(BAND_BUCKET_CAP);
        let raced: Option<String> =
            inv.invoke_async(&mut conn)
                .await
                .map_err(|source| DedupError::Redis {
                    op: "record",
                    source,
                })?;
        if let Some(v) = raced {
            // Another worker recorded the same hash between our two round trips.
            return Ok(Self::verdict_for_existing(&v, job_id));
        }
        Ok(match best {
            Some((of_hash, distance)) => Verdict::NearDuplicate { of_hash, distance },
            None => Verdict::New,
        })
    }
}

/// `job_id` or `job_id \x1f of_hash \x1f distance`.
fn decode_value(v: &str) -> (&str, Option<(&str, u32)>) {
    let mut parts = v.rsplitn(3, SEP);
    let last = parts.next().unwrap_or_default();
    match (parts.next(), parts.next(), last.parse::<u32>()) {
        (Some(of), Some(job), Ok(d)) => (job, Some((of, d))),
        _ => (v, None),
    }
}

/// `<simhash hex>:<expires ms>:<hash>`.
fn decode_member(m: &str) -> Option<(u64, u64, &str)> {
    let mut parts = m.splitn(3, ':');
    let sim = u64::from_str_radix(parts.next()?, 16).ok()?;
    let expires = parts.next()?.parse().ok()?;
    Some((sim, expires, parts.next()?))
}

impl Seen for RedisStore {
    fn check_and_record(
        &self,
        fp: &Fingerprint,
        job_id: &str,
    ) -> impl std::future::Future<Output = Result<Verdict, DedupError>> + Send {
        self.check(fp, job_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_members_round_trip() {
        assert_eq!(decode_value("job-1"), ("job-1", None));
        let v = format!("job-1{SEP}blake3:ab{SEP}2");
        assert_eq!(decode_value(&v), ("job-1", Some(("blake3:ab", 2))));
        assert_eq!(
            decode_member("00000000000000ff:1700000000000:blake3:cd"),
            Some((255, 1_700_000_000_000, "blake3:cd"))
        );
        assert_eq!(decode_member("zz:1:h"), None);
    }
}
