//! Dedup store shared by every worker of the fleet, in Redis.
//!
//! Keys (all under `redis.key_prefix` + `dedup:`):
//! - `<prefix>dedup:blake3:<hex>` → the job id that recorded the hash (plus, for a near-duplicate,
//!   `\x1f<of_hash>\x1f<distance>`), with TTL `dedup.ttl_s`.
//! - `<prefix>dedup:band:<i>of<n>:<bits hex>` → list of `<simhash high 32 bits hex>:<low 32 bits hex>:
//!   <expires unix ms>:<hash>`, newest first, capped at [`BAND_BUCKET_CAP`], TTL refreshed on each push.
//!
//! A check is ONE round trip: one Lua script does the exact lookup, the band lookups (Hamming distance
//! in Lua), and the record, atomically. Two workers checking the same text at once get one `New` and one
//! `Duplicate`; two near-duplicates checked at once get one `New` and one `NearDuplicate`.
//! On a single Redis all keys of one check go to that script. On Redis Cluster (`redis.mode =
//! "cluster"`) the exact key and each band bucket live in slots of their own, so the check is split
//! into single-slot calls (see `check_per_slot`); with near-duplicates off it stays the one script on
//! one key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::{Script, Value};

use super::hash::{Bands, Fingerprint};
use super::url::UrlVerdict;
use super::{DedupError, Seen, Validators, Verdict};
use crate::config::{DedupSettings, RedisSettings};
use crate::redis_conn::RedisConn;

/// Members kept per band bucket: bounds memory and the work of one lookup even for crowded buckets.
pub const BAND_BUCKET_CAP: usize = 64;
/// Separates the job id from the near-duplicate verdict in an exact key's value.
const SEP: char = '\u{1f}';

/// KEYS[1] = exact key, KEYS[2..] = band buckets (none when near-duplicate detection is off).
/// ARGV: 1 job id, 2 ttl ms, 3 now ms, 4 bucket cap, 5 near distance, 6/7 simhash high/low 32 bits
/// (decimal), 8 content hash, 9 separator, 10 band member to push.
/// Returns {0, existing value} | {1, of_hash, distance} (near-duplicate, recorded) | {2} (new, recorded).
const CHECK_LUA: &str = r"
local old = redis.call('GET', KEYS[1])
if old then return {0, old} end
local k = tonumber(ARGV[5])
local hi, lo, now = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[3])
local function popcount(x)
  local c = 0
  while x ~= 0 do
    x = bit.band(x, x - 1)
    c = c + 1
  end
  return c
end
local best_h, best_d = nil, nil
if k > 0 then
  for i = 2, #KEYS do
    local members = redis.call('LRANGE', KEYS[i], 0, -1)
    for _, m in ipairs(members) do
      local mhi, mlo, exp, h = string.match(m, '^(%x+):(%x+):(%d+):(.+)$')
      if h and tonumber(exp) > now and h ~= ARGV[8] then
        local d = popcount(bit.bxor(tonumber(mhi, 16), hi)) + popcount(bit.bxor(tonumber(mlo, 16), lo))
        if d <= k and (best_d == nil or d < best_d) then
          best_h, best_d = h, d
        end
      end
    end
  end
end
if best_h then
  redis.call('SET', KEYS[1], ARGV[1] .. ARGV[9] .. best_h .. ARGV[9] .. best_d, 'PX', ARGV[2])
  return {1, best_h, best_d}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 2, #KEYS do
  redis.call('LPUSH', KEYS[i], ARGV[10])
  redis.call('LTRIM', KEYS[i], 0, tonumber(ARGV[4]) - 1)
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return {2}
";

/// Remembers content hashes and SimHash bands in Redis.
#[derive(Clone)]
pub struct RedisStore {
    /// Reconnects by itself; cheap to clone.
    conn: RedisConn,
    /// `redis.key_prefix` + `dedup:`.
    prefix: String,
    /// `dedup.ttl_s` in ms.
    ttl_ms: u64,
    /// `dedup.near_distance`; 0 = exact only.
    near_distance: u32,
    bands: Bands,
    script: Script,
}

impl RedisStore {
    /// A store writing keys under `key_prefix` + `dedup:`.
    pub fn new(conn: RedisConn, key_prefix: &str, ttl: Duration, near_distance: u32) -> RedisStore {
        RedisStore {
            conn,
            prefix: format!("{key_prefix}dedup:"),
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1),
            near_distance,
            bands: Bands::for_distance(near_distance),
            script: Script::new(CHECK_LUA),
        }
    }

    /// From `redis.key_prefix`, `dedup.ttl_s`, `dedup.near_distance`.
    pub fn from_settings(conn: RedisConn, r: &RedisSettings, d: &DedupSettings) -> RedisStore {
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
        if self.conn.is_cluster() && self.near_distance > 0 {
            return self.check_per_slot(fp, job_id).await;
        }
        let mut conn = self.conn.clone();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let (hi, lo) = (fp.simhash >> 32, fp.simhash & 0xFFFF_FFFF);
        let member = format!(
            "{hi:08x}:{lo:08x}:{}:{}",
            now_ms.saturating_add(self.ttl_ms),
            fp.hash
        );
        let mut inv = self.script.key(self.exact_key(&fp.hash));
        if self.near_distance > 0 {
            for (i, bits) in self.bands.keys(fp.simhash) {
                inv.key(self.band_key(i, bits));
            }
        }
        inv.arg(job_id)
            .arg(self.ttl_ms)
            .arg(now_ms)
            .arg(BAND_BUCKET_CAP)
            .arg(self.near_distance)
            .arg(hi)
            .arg(lo)
            .arg(&fp.hash)
            .arg(SEP.to_string())
            .arg(&member);
        let reply: Vec<Value> =
            inv.invoke_async(&mut conn)
                .await
                .map_err(|source| DedupError::Redis {
                    op: "check",
                    source,
                })?;
        let bad = |detail: String| DedupError::Reply {
            op: "check script",
            detail,
        };
        let code: i64 = reply
            .first()
            .map(redis::from_redis_value)
            .transpose()
            .map_err(|e| bad(e.to_string()))?
            .ok_or_else(|| bad("empty reply".into()))?;
        let field = |i: usize| -> Result<String, DedupError> {
            reply
                .get(i)
                .map(redis::from_redis_value::<String>)
                .transpose()
                .map_err(|e| bad(e.to_string()))?
                .ok_or_else(|| bad(format!("reply {code} without field {i}")))
        };
        match code {
            0 => Ok(Self::verdict_for_existing(&field(1)?, job_id)),
            1 => Ok(Verdict::NearDuplicate {
                of_hash: field(1)?,
                distance: field(2)?
                    .parse()
                    .map_err(|e| bad(format!("distance: {e}")))?,
            }),
            2 => Ok(Verdict::New),
            other => Err(bad(format!("unknown code {other}"))),
        }
    }
}

impl RedisStore {
    /// The near-duplicate check on Redis Cluster, where the exact key and the band buckets live in
    /// different slots: every call touches one slot. 1. GET the exact key (a redelivered job finds its
    /// own record, with its first verdict); 2. read the band buckets (concurrently, one per slot) and
    /// compare SimHashes here; 3. record the exact key with `SET NX GET` (whoever recorded it first
    /// wins, so two workers with one text still get one `New` and one `Duplicate`); 4. a new text is
    /// pushed to its buckets. Unlike the one-script check of a single Redis, two *near*-duplicates
    /// checked at the same moment may both be `New`; a crash between 3 and 4 leaves the text out of the
    /// band index (its exact record, and so the crash guarantee, stands).
    async fn check_per_slot(&self, fp: &Fingerprint, job_id: &str) -> Result<Verdict, DedupError> {
        let err = |op: &'static str| move |source| DedupError::Redis { op, source };
        let exact = self.exact_key(&fp.hash);
        let mut conn = self.conn.clone();
        let old: Option<String> = redis::cmd("GET")
            .arg(&exact)
            .query_async(&mut conn)
            .await
            .map_err(err("lookup"))?;
        if let Some(v) = old {
            return Ok(Self::verdict_for_existing(&v, job_id));
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let keys: Vec<String> = self
            .bands
            .keys(fp.simhash)
            .map(|(i, bits)| self.band_key(i, bits))
            .collect();
        let buckets = futures_util::future::try_join_all(keys.iter().map(|k| {
            let mut c = self.conn.clone();
            async move {
                redis::cmd("LRANGE")
                    .arg(k)
                    .arg(0)
                    .arg(-1)
                    .query_async::<Vec<String>>(&mut c)
                    .await
            }
        }))
        .await
        .map_err(err("band lookup"))?;
        let mut best: Option<(String, u32)> = None;
        for m in buckets.iter().flatten() {
            let mut parts = m.splitn(4, ':');
            let (Some(hi), Some(lo), Some(exp), Some(h)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(hi), Ok(lo), Ok(exp)) = (
                u64::from_str_radix(hi, 16),
                u64::from_str_radix(lo, 16),
                exp.parse::<u64>(),
            ) else {
                continue;
            };
            if exp <= now_ms || h == fp.hash {
                continue;
            }
            let d = super::hash::hamming((hi << 32) | lo, fp.simhash);
            if d <= self.near_distance && best.as_ref().is_none_or(|(_, bd)| d < *bd) {
                best = Some((h.to_string(), d));
            }
        }
        let value = match &best {
            Some((h, d)) => format!("{job_id}{SEP}{h}{SEP}{d}"),
            None => job_id.to_string(),
        };
        let prev: Option<String> = redis::cmd("SET")
            .arg(&exact)
            .arg(&value)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(self.ttl_ms)
            .query_async(&mut conn)
            .await
            .map_err(err("record"))?;
        if let Some(prev) = prev {
            return Ok(Self::verdict_for_existing(&prev, job_id));
        }
        if let Some((of_hash, distance)) = best {
            return Ok(Verdict::NearDuplicate { of_hash, distance });
        }
        let (hi, lo) = (fp.simhash >> 32, fp.simhash & 0xFFFF_FFFF);
        let member = format!(
            "{hi:08x}:{lo:08x}:{}:{}",
            now_ms.saturating_add(self.ttl_ms),
            fp.hash
        );
        futures_util::future::try_join_all(keys.iter().map(|k| {
            let mut c = self.conn.clone();
            let member = &member;
            async move {
                redis::pipe()
                    .cmd("LPUSH")
                    .arg(k)
                    .arg(member)
                    .ignore()
                    .cmd("LTRIM")
                    .arg(k)
                    .arg(0)
                    .arg(BAND_BUCKET_CAP - 1)
                    .ignore()
                    .cmd("PEXPIRE")
                    .arg(k)
                    .arg(self.ttl_ms)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            }
        }))
        .await
        .map_err(err("band record"))?;
        Ok(Verdict::New)
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

/// Forget a URL record only if the given job wrote it (KEYS[1] url key, ARGV[1] job id).
const FORGET_URL_LUA: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

impl RedisStore {
    /// URL-seen filter in one round trip and one key (`<prefix>dedup:url:<128-bit hash>`, any slot):
    /// `SET key job NX GET PX ttl` records the URL when absent and returns who recorded it otherwise.
    async fn check_url_now(
        &self,
        key: &str,
        job_id: &str,
        ttl: Duration,
    ) -> Result<UrlVerdict, DedupError> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let previous: Option<String> = redis::cmd("SET")
            .arg(format!("{}{key}", self.prefix))
            .arg(job_id)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|source| DedupError::Redis {
                op: "url check",
                source,
            })?;
        Ok(match previous {
            None => UrlVerdict::New,
            Some(first) if first == job_id => UrlVerdict::Own,
            Some(first_job) => UrlVerdict::Seen { first_job },
        })
    }

    async fn forget_url_now(&self, key: &str, job_id: &str) -> Result<(), DedupError> {
        static FORGET: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(FORGET_URL_LUA));
        let _: i64 = FORGET
            .key(format!("{}{key}", self.prefix))
            .arg(job_id)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|source| DedupError::Redis {
                op: "url forget",
                source,
            })?;
        Ok(())
    }
}

impl RedisStore {
    /// Conditional-GET validators: `<prefix>dedup:val:<128-bit URL hash>` = job id, ETag and
    /// Last-Modified joined by U+001F, with TTL `dedup.validators_ttl_s`. One GET, one SET (any slot).
    async fn validators_now(
        &self,
        key: &str,
        job_id: &str,
        own: bool,
    ) -> Result<Option<Validators>, DedupError> {
        let value: Option<String> = redis::cmd("GET")
            .arg(format!("{}val:{key}", self.prefix))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|source| DedupError::Redis {
                op: "validators lookup",
                source,
            })?;
        let Some(value) = value else { return Ok(None) };
        let mut parts = value.split(SEP);
        let (job, etag, modified) = (parts.next(), parts.next(), parts.next());
        if job == Some(job_id) && !own {
            return Ok(None);
        }
        let some = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
        Ok(Some(Validators {
            etag: some(etag),
            last_modified: some(modified),
        }))
    }

    async fn record_validators_now(
        &self,
        key: &str,
        job_id: &str,
        v: &Validators,
        ttl: Duration,
    ) -> Result<(), DedupError> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let clean = |s: &Option<String>| s.as_deref().unwrap_or_default().replace(SEP, "");
        let value = format!(
            "{job_id}{SEP}{}{SEP}{}",
            clean(&v.etag),
            clean(&v.last_modified)
        );
        let _: () = redis::cmd("SET")
            .arg(format!("{}val:{key}", self.prefix))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|source| DedupError::Redis {
                op: "validators record",
                source,
            })?;
        Ok(())
    }
}

impl Seen for RedisStore {
    fn check_and_record(
        &self,
        fp: &Fingerprint,
        job_id: &str,
    ) -> impl std::future::Future<Output = Result<Verdict, DedupError>> + Send {
        self.check(fp, job_id)
    }

    fn check_url(
        &self,
        key: &str,
        job_id: &str,
        ttl: Duration,
    ) -> impl std::future::Future<Output = Result<UrlVerdict, DedupError>> + Send {
        self.check_url_now(key, job_id, ttl)
    }

    fn forget_url(
        &self,
        key: &str,
        job_id: &str,
    ) -> impl std::future::Future<Output = Result<(), DedupError>> + Send {
        self.forget_url_now(key, job_id)
    }

    fn validators(
        &self,
        key: &str,
        job_id: &str,
        own: bool,
    ) -> impl std::future::Future<Output = Result<Option<Validators>, DedupError>> + Send {
        self.validators_now(key, job_id, own)
    }

    fn record_validators(
        &self,
        key: &str,
        job_id: &str,
        v: &Validators,
        ttl: Duration,
    ) -> impl std::future::Future<Output = Result<(), DedupError>> + Send {
        self.record_validators_now(key, job_id, v, ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        assert_eq!(decode_value("job-1"), ("job-1", None));
        let v = format!("job-1{SEP}blake3:ab{SEP}2");
        assert_eq!(decode_value(&v), ("job-1", Some(("blake3:ab", 2))));
    }
}
