//! Dedup store shared by every worker of the fleet, in Redis: compact, bounded, flat cost at any size.
//!
//! # Layout (all keys under `redis.key_prefix` + `dedup:`; binary values, big-endian)
//!
//! Time is cut into slices of `dedup.ttl_s / 8` ([`SLICES`]); slice `c = now_ms / width_ms`. Every key
//! below belongs to one slice, gets `PEXPIREAT (c + 1) * width + ttl` when written, and a check looks at
//! the 9 live slices `c, c-1 … c-8`. A text is remembered at least `ttl`, at most `ttl + ttl/8`.
//!
//! - Exact: `{x<B>}:<c>` (B = first 16 bits of the BLAKE3 content hash, 4 hex digits: [`EXACT_BUCKETS`]
//!   = 65,536 buckets), a HASH. Field = the next 6 bytes of the content hash; value = 6 bytes of
//!   BLAKE3(job id), + 6 bytes of the earlier text's content hash + 1 byte distance when the verdict was
//!   `NearDuplicate`. 16-20 B per text inside a listpack (needs `hash-max-listpack-entries` ≥ the
//!   entries per bucket and slice, see README; `-value` 64 is plenty).
//! - Near-duplicates (only with `dedup.near_distance > 0`): per LSH band `i` of `n` and band value
//!   `bits`, `{b<i>of<n>:<bits hex>}:<c>`, a STRING of fixed-width records: the SimHash without the band's
//!   bits (6 bytes for 4 bands of 16 bits), and in band 0 only ([`REF_BAND`]) + 6 bytes of the content
//!   hash; on Redis Cluster every record ends with a 2-byte stamp (see Round trips). Only `New` texts
//!   are indexed. A slice bucket holds at most `band_cap` records ([`BAND_CAP`]
//!   by default): a record that does not fit is not added and counted in [`Seen::evictions`]
//!   (`paperboy_dedup_evictions_total`), so a lookup reads at most `9 × band_cap` records per band
//!   whatever the data size.
//! - The reference a near-duplicate names (`blake3:<12 hex>` of the earlier text) is kept once, in
//!   band 0. A match found in another band gives the earlier text's full SimHash (band bits from the
//!   key, the rest from the record); its band-0 record (same SimHash) gives the hash. That second
//!   lookup happens only for near-duplicates whose band 0 differs from their original's. When the
//!   original's band-0 record is not there (its bucket was full), the text is taken as `New`.
//!
//! Per remembered text with 4 bands: 16 B exact + 12 B + 3 × 6 B band records = 46 B of payload (54 B
//! on Redis Cluster: + 2 B of stamp per band record), plus
//! the per-key overhead of at most 9 × (65,536 + 4 × 65,536) keys, which is amortised over the texts
//! (see README for the measured bytes per text).
//!
//! Collisions: an exact match needs 64 bits of content hash to agree (16 in the key, 48 in the field):
//! with M texts remembered, a new text is wrongly called a duplicate with probability ≈ M / 2^64
//! (5 × 10⁻¹⁰ at 10 billion). Two job ids share a 48-bit hash with probability 2^-48: a duplicate is then
//! taken for a redelivery and published again. `Verdict::Duplicate::first_job` is the 12-hex-digit
//! job hash `#<hex>` ([`RedisStore::job_ref`]) and `NearDuplicate::of_hash` is `blake3:<12 hex digits>`
//! (the first 48 bits of the earlier text's hash, [`RedisStore::short_hash`]).
//!
//! # Round trips
//!
//! Every script call touches the keys of ONE hash tag, so one slot on Redis Cluster.
//! - `dedup.near_distance = 0`: one script on the exact slot: look up the 9 slices, record if absent.
//!   One round trip, single Redis and cluster alike.
//! - Near-duplicates on a single Redis, optimistic recording: one script looks up the exact slices
//!   and, when the text is absent, records it as `New` (exact record + band records, within the cap)
//!   and returns the band records that were there before it; SimHashes are compared in Rust (the cost
//!   of a Lua scan grew with the bucket size). Scripts run one at a time on one Redis, so of two
//!   near-duplicates checked at once the second always sees the first's records: the first to record
//!   is the original. Only when the text turns out to be a near-duplicate does a second script amend
//!   its record (verdict = near-duplicate of X) and take its band records out again. One round trip
//!   for a new text and for an exact duplicate, two for a near-duplicate. Between the two calls a
//!   near-duplicate's band records are visible: a text checked in that moment that is near it (and not
//!   near its original) is flagged as its near-duplicate, and the records count against the cap.
//! - Near-duplicates on Redis Cluster: the band buckets of one text are on different slots, so the
//!   check is the exact check-and-record (record as `New` when absent) and one lookup-and-append per
//!   band ([`BAND_LUA_BODY`]), all five at once: one round trip. Each band call returns the records
//!   there before the text's own and the node's clock; records carry the time they were appended
//!   ([`STAMP_BYTES`]). Two texts checked at the same moment may each find the other (in different
//!   bands), and a group of three or more may find each other in a cycle: all would drop. So an earlier
//!   text counts only in the lowest band the two SimHashes share (one bucket: of the two, only the later
//!   one there sees the other) and, when appended less than [`SETTLED_AFTER_MS`] before, only if it is
//!   the lower of the two (SimHash, then hash), a total order: no pair and no cycle can all drop
//!   (`counts_as_earlier`; `tests/dedup_cluster.rs` fails in most runs with either rule left out). The
//!   cost: a near-duplicate checked within 1 s of its original is found only when its SimHash is the
//!   higher one. A near-duplicate then amends its exact record and takes its band records out (one
//!   call per slot, at once: one more round trip, and one before it to find the original's hash when
//!   the match was outside [`REF_BAND`]). An exact duplicate adds no band record when its text's is
//!   there (same record); when it is not there (its text was a near-duplicate, or dropped at the cap)
//!   the duplicate's record stays. A crash after the band calls leaves the text's band records in
//!   place: its redelivery finds its own record in each band and reads only the records before it.
//!
//! Crash guarantee: the exact record holds the job hash and its verdict, so a redelivered job (same job
//! id) finds its own record and gets `New` again, or the same `NearDuplicate`. A job that crashed
//! between the two calls of a near-duplicate left a `New` record: its redelivery gets, with its own
//! record, the band records that were there before it (older slices, and its slice up to its own
//! record), so it finds the same original and amends the record as the first delivery would have.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::{Script, Value};

use super::hash::{Bands, Fingerprint};
use super::url::UrlVerdict;
use super::{DedupError, Seen, Validators, Verdict};
use crate::config::{DedupSettings, RedisSettings};
use crate::redis_conn::RedisConn;

/// Time slices per TTL: keys of a slice expire together, `ttl / SLICES` after its last write at most.
pub const SLICES: u64 = 8;
/// Exact buckets (first 16 bits of the content hash).
pub const EXACT_BUCKETS: u32 = 1 << 16;
/// Bytes of content hash in the exact field (after the 2 bytes of the bucket).
pub const FIELD_BYTES: usize = 6;
/// Bytes of BLAKE3(job id) in an exact value.
pub const JOB_BYTES: usize = 6;
/// Bytes of content hash kept in a band record and in a near verdict.
pub const SHORT_HASH_BYTES: usize = 6;
/// Default records per band bucket and slice (192 × 12 B = 2.3 KB per band-0 bucket, 1.2 KB others).
pub const BAND_CAP: usize = 192;
/// The band whose records also carry the content hash (the reference a near-duplicate names): one copy
/// per text instead of one per band (46 B of payload per text instead of 64 with 4 bands). The scripts
/// read it as the first band.
pub const REF_BAND: u32 = 0;
/// Bytes of the stamp that ends every band record on Redis Cluster: the append time on the node's
/// clock in [`STAMP_UNIT_MS`] units, modulo 2^16 (wraps every ~109 minutes). It tells a settled
/// earlier text from one checked at about the same moment (see [`SETTLED_AFTER_MS`]).
pub const STAMP_BYTES: usize = 2;
/// Unit of a band record's stamp (Redis Cluster).
pub const STAMP_UNIT_MS: u64 = 100;
/// On Redis Cluster a text's band lookups and appends run as one call per band, concurrently, so two
/// texts checked at the same moment can each see the other in a different band. A match appended at
/// least this long before the check (on the bucket's own clock) counts as earlier; a closer one only
/// when its SimHash is lower (a total order, so no group of near-duplicates can all drop each other).
/// 1 s is far above the spread of one check's calls (< 5 ms on a loaded loopback cluster) plus the
/// clock skew of NTP-synced nodes; the cost is that near-duplicates checked within 1 s of their
/// original are found only when their SimHash is the higher one.
pub const SETTLED_AFTER_MS: u64 = 1_000;
/// Lua: the 1-based position of `rec` in `str` at a multiple of `width` (records of `width` bytes that
/// start with `rec`), or nil.
const FIND_ALIGNED_LUA: &str = r"
local function find_aligned(str, rec, width)
  local from = 1
  while true do
    local at = string.find(str, rec, from, true)
    if not at then return nil end
    if (at - 1) % width == 0 then return at end
    from = at + 1
  end
end
";

/// The check/record script over one hash tag (or, on a single Redis, all keys of a check).
///
/// KEYS: `ARGV[1]` exact slice keys (newest first; the first is the current slice), then `ARGV[2]`
/// bands × `ARGV[1]` band slice keys (per band, newest first).
/// ARGV: 1 slices, 2 bands, 3 op (`lookup` | `record` | `check`), 4 exact field, 5 exact value (for
/// `check`: the job's `New` value), 6 PEXPIREAT ms of the current slice, 7 band cap in records, 8.. per
/// band the band record of the text (band records differ in width: [`REF_BAND`]'s carries the hash).
/// Returns {0, value} (exact hit; for `check` not the job's own `New` record) | {1} (lookup: absent) |
/// {2, 0} (record: recorded) | {3, dropped, records per band…} (check: absent, now recorded with its
/// band records; the records are those there before it, `dropped` = band records over the cap) |
/// {4, 0, records per band…} (check: the job's own `New` record, a redelivery; the records are those
/// there before its own: older slices, and its slice up to its own record).
const CHECK_LUA_BODY: &str = r"
local s, nb, op = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local own = 0
for i = 1, s do
  local v = redis.call('HGET', KEYS[i], ARGV[4])
  if v then
    if op == 'check' and v == ARGV[5] then
      own = i
      break
    end
    return {0, v}
  end
end
if op == 'lookup' then return {1} end
if op == 'record' then
  redis.call('HSET', KEYS[1], ARGV[4], ARGV[5])
  redis.call('PEXPIREAT', KEYS[1], ARGV[6])
  return {2, 0}
end
local out = {own > 0 and 4 or 3, 0}
for b = 0, nb - 1 do
  local rec, parts = ARGV[8 + b], {}
  for j = math.max(own, 1), s do
    local v = redis.call('GET', KEYS[s + b * s + j])
    if v then
      if j == own then
        local at = find_aligned(v, rec, #rec)
        if at then v = string.sub(v, 1, at - 1) end
      end
      parts[#parts + 1] = v
    end
  end
  out[#out + 1] = table.concat(parts)
end
if own > 0 then return out end
redis.call('HSET', KEYS[1], ARGV[4], ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
local cap = tonumber(ARGV[7])
for b = 0, nb - 1 do
  local k, rec = KEYS[s + b * s + 1], ARGV[8 + b]
  local cur = redis.call('GET', k) or ''
  if #cur + #rec <= cap * #rec then
    redis.call('SET', k, cur .. rec, 'PXAT', ARGV[6])
  else
    out[2] = out[2] + 1
  end
end
return out
";

/// The amend script of a text that turned out to be a near-duplicate after [`CHECK_LUA_BODY`]
/// recorded it as new (single Redis). KEYS as there, then (when the verdict's hash is to be found) the
/// slice keys of the original's [`REF_BAND`] bucket. ARGV: 1 slices, 2 bands, 3 exact field, 4 the
/// job's `New` value, 5 the verdict's tail (short hash + distance byte, or the distance byte alone when
/// the hash is to be found), 6.. per band the band record of the text, then (to find the hash) the
/// original's reference-band remainder. Finds the hash (the first reference-band record with that
/// remainder), rewrites the job's own exact record (where it still holds `New` for the job) and removes
/// the text's band records (a near-duplicate is not indexed). Returns {records amended (0/1), band
/// records removed, verdict tail} or {0, 0, ''} when the original's hash is not there (nothing done).
const AMEND_LUA_BODY: &str = r"
local s, nb = tonumber(ARGV[1]), tonumber(ARGV[2])
local tail = ARGV[5]
if #tail == 1 then
  local rem = ARGV[6 + nb]
  local width = #ARGV[6]
  local found = nil
  for j = 1, s do
    local v = redis.call('GET', KEYS[s + nb * s + j]) or ''
    for at = 1, #v - width + 1, width do
      if string.sub(v, at, at + #rem - 1) == rem then
        found = string.sub(v, at + #rem, at + width - 1)
        break
      end
    end
    if found then break end
  end
  if not found then return {0, 0, ''} end
  tail = found .. tail
end
local amended = 0
for i = 1, s do
  if redis.call('HGET', KEYS[i], ARGV[3]) == ARGV[4] then
    redis.call('HSET', KEYS[i], ARGV[3], ARGV[4] .. tail)
    amended = 1
    break
  end
end
local removed = 0
for b = 0, nb - 1 do
  local rec = ARGV[6 + b]
  for j = 1, s do
    local k = KEYS[s + b * s + j]
    local cur = redis.call('GET', k)
    local at = cur and find_aligned(cur, rec, #rec)
    if at then
      local rest = string.sub(cur, 1, at - 1) .. string.sub(cur, at + #rec)
      if #rest == 0 then
        redis.call('DEL', k)
      else
        redis.call('SET', k, rest, 'KEEPTTL')
      end
      removed = removed + 1
      break
    end
  end
end
return {amended, removed, tail}
";

/// One band of a near-duplicate check on Redis Cluster: lookup and append in one call on the band's
/// slot. KEYS: the band bucket's slice keys, current first. ARGV: 1 the text's band record without its
/// stamp, 2 cap in records, 3 PEXPIREAT ms of the current slice, 4 [`STAMP_UNIT_MS`]. Records are
/// `#ARGV[1]` + [`STAMP_BYTES`] wide. When a record starting with ARGV[1] is there (the job's own, a
/// redelivery; or an exact duplicate's) nothing is added and the records returned are those before
/// it (older slices, and its slice up to it); else the text's record (stamped now) is appended unless
/// the bucket is full, and the records returned are all those there before. GET + SET rather than
/// APPEND: APPEND over-allocates (up to 2×) for later growth. Returns {now stamp, 0 present | 1
/// appended | 2 dropped (full), records}.
const BAND_LUA_BODY: &str = r"
local rec, cap = ARGV[1], tonumber(ARGV[2])
local w = #rec + 2
local t = redis.call('TIME')
local now = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / tonumber(ARGV[4])) % 65536
local vals, own = {}, 0
for j = 1, #KEYS do
  local v = redis.call('GET', KEYS[j]) or ''
  vals[j] = v
  if own == 0 and #v > 0 then
    local at = find_aligned(v, rec, w)
    if at then
      own = j
      vals[j] = string.sub(v, 1, at - 1)
    end
  end
end
local flag = 0
if own == 0 then
  if #vals[1] + w <= cap * w then
    redis.call('SET', KEYS[1], vals[1] .. rec .. string.char(math.floor(now / 256), now % 256), 'PXAT', ARGV[3])
    flag = 1
  else
    flag = 2
  end
end
local parts = {}
for j = math.max(own, 1), #KEYS do parts[#parts + 1] = vals[j] end
return {now, flag, table.concat(parts)}
";

/// Take a near-duplicate's record out of one band bucket on Redis Cluster (KEYS: the bucket's slice
/// keys; ARGV 1 the record without its stamp, 2 the stamped width): the first record starting with
/// ARGV[1]. Returns 1 removed, 0 not there.
const REMOVE_LUA_BODY: &str = r"
local w = tonumber(ARGV[2])
for j = 1, #KEYS do
  local cur = redis.call('GET', KEYS[j])
  local at = cur and find_aligned(cur, ARGV[1], w)
  if at then
    local rest = string.sub(cur, 1, at - 1) .. string.sub(cur, at + w)
    if #rest == 0 then
      redis.call('DEL', KEYS[j])
    else
      redis.call('SET', KEYS[j], rest, 'KEEPTTL')
    end
    return 1
  end
end
return 0
";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The first 8 bytes of a content hash (`blake3:<hex>`); any other string is hashed with BLAKE3 first.
pub fn hash_prefix(hash: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    if let Some(hex) = hash.strip_prefix("blake3:").filter(|h| h.len() >= 16) {
        let ok = (0..8).all(|i| {
            u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("zz"), 16)
                .map(|b| out[i] = b)
                .is_ok()
        });
        if ok {
            return out;
        }
    }
    out.copy_from_slice(&blake3::hash(hash.as_bytes()).as_bytes()[..8]);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where one check's keys are, for one point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckKeys {
    /// Exact slice keys, current slice first (one hash tag).
    pub exact: Vec<String>,
    /// Per band, its slice keys, current slice first (one hash tag per band).
    pub bands: Vec<Vec<String>>,
    /// PEXPIREAT of the current slice's keys.
    pub expire_at_ms: u64,
}

/// Remembers content hashes and SimHash bands in Redis, compactly (see the module doc).
#[derive(Clone)]
pub struct RedisStore {
    /// Reconnects by itself; cheap to clone.
    conn: RedisConn,
    /// `redis.key_prefix` + `dedup:`.
    prefix: String,
    /// `dedup.ttl_s` in ms.
    ttl_ms: u64,
    /// `ttl_ms / SLICES`, at least 1.
    width_ms: u64,
    /// `dedup.near_distance`; 0 = exact only.
    near_distance: u32,
    bands: Bands,
    /// Records per band bucket and slice.
    band_cap: usize,
    /// Band records not added because their bucket was full.
    dropped: Arc<AtomicU64>,
    /// [`CHECK_LUA_BODY`].
    script: Script,
    /// [`AMEND_LUA_BODY`]: a near-duplicate's record amended after the check (single Redis).
    amend: Script,
    /// Band records end with a [`STAMP_BYTES`] stamp (Redis Cluster: checked per band, concurrently).
    stamped: bool,
    /// [`BAND_LUA_BODY`]: one band's lookup and append on its own slot (Redis Cluster).
    band: Script,
    /// [`REMOVE_LUA_BODY`]: a near-duplicate's record taken out of one band (Redis Cluster).
    remove: Script,
}

/// The nearest earlier text a check found among the band records.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Near {
    /// Its full SimHash (band bits from the bucket's key, the rest from the record).
    simhash: u64,
    distance: u32,
    /// Its short hash, when the match was read in [`REF_BAND`] (else it is looked up there).
    hash: Option<[u8; SHORT_HASH_BYTES]>,
}

/// What one band call of a Redis Cluster check ([`BAND_LUA_BODY`]) did and found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BandReply {
    /// The node's clock when it ran, in [`STAMP_UNIT_MS`] units modulo 2^16.
    now: u16,
    /// 0 the text's record was there already, 1 appended, 2 dropped (bucket full).
    flag: i64,
    /// The records there before the text's own.
    records: Vec<u8>,
}

/// What the exact record of a text says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    job: [u8; JOB_BYTES],
    near: Option<([u8; SHORT_HASH_BYTES], u32)>,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut v = self.job.to_vec();
        if let Some((of, d)) = self.near {
            v.extend_from_slice(&of);
            v.push(u8::try_from(d).unwrap_or(u8::MAX));
        }
        v
    }

    fn decode(v: &[u8]) -> Option<Record> {
        let job = v.get(..JOB_BYTES)?.try_into().ok()?;
        let near = match v.len() - JOB_BYTES {
            0 => None,
            n if n == SHORT_HASH_BYTES + 1 => Some((
                v[JOB_BYTES..JOB_BYTES + SHORT_HASH_BYTES].try_into().ok()?,
                u32::from(v[JOB_BYTES + SHORT_HASH_BYTES]),
            )),
            _ => return None,
        };
        Some(Record { job, near })
    }
}

impl RedisStore {
    /// A store writing keys under `key_prefix` + `dedup:`.
    pub fn new(conn: RedisConn, key_prefix: &str, ttl: Duration, near_distance: u32) -> RedisStore {
        let ttl_ms = u64::try_from(ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(SLICES);
        let stamped = conn.is_cluster();
        RedisStore {
            conn,
            prefix: format!("{key_prefix}dedup:"),
            ttl_ms,
            width_ms: (ttl_ms / SLICES).max(1),
            near_distance,
            bands: Bands::for_distance(near_distance),
            band_cap: BAND_CAP,
            dropped: Arc::default(),
            script: Script::new(&format!("{FIND_ALIGNED_LUA}{CHECK_LUA_BODY}")),
            amend: Script::new(&format!("{FIND_ALIGNED_LUA}{AMEND_LUA_BODY}")),
            stamped,
            band: Script::new(&format!("{FIND_ALIGNED_LUA}{BAND_LUA_BODY}")),
            remove: Script::new(&format!("{FIND_ALIGNED_LUA}{REMOVE_LUA_BODY}")),
        }
    }

    /// Records per band bucket and slice (default [`BAND_CAP`], at least 1).
    pub fn with_band_cap(mut self, cap: usize) -> RedisStore {
        self.band_cap = cap.max(1);
        self
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

    /// How a job id appears in `Verdict::Duplicate::first_job`: `#` + 12 hex digits of BLAKE3(job id).
    pub fn job_ref(job_id: &str) -> String {
        format!("#{}", hex(&job_hash(job_id)))
    }

    /// How a content hash appears in `Verdict::NearDuplicate::of_hash`: `blake3:` + its first 12 hex
    /// digits.
    pub fn short_hash(hash: &str) -> String {
        format!("blake3:{}", hex(&hash_prefix(hash)[..SHORT_HASH_BYTES]))
    }

    /// Band records not added so far because their bucket and slice was full.
    pub fn dropped_band_records(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Bytes of one stored record of band `band`: the SimHash remainder, in [`REF_BAND`] the short
    /// hash, and on Redis Cluster the stamp.
    pub fn band_record_bytes(&self, band: u32) -> usize {
        self.rem_bytes()
            + if band == REF_BAND {
                SHORT_HASH_BYTES
            } else {
                0
            }
            + if self.stamped { STAMP_BYTES } else { 0 }
    }

    fn rem_bytes(&self) -> usize {
        let narrowest = 64 / self.bands.count();
        (64 - narrowest as usize).div_ceil(8)
    }

    fn remainder(&self, simhash: u64, i: u32) -> u64 {
        remainder(self.bands, simhash, i)
    }

    /// Band `i`'s remainder of `simhash` in its stored big-endian width.
    fn remainder_bytes(&self, simhash: u64, i: u32) -> Vec<u8> {
        self.remainder(simhash, i).to_be_bytes()[8 - self.rem_bytes()..].to_vec()
    }

    fn band_record(&self, fp: &Fingerprint, i: u32) -> Vec<u8> {
        let mut r = self.remainder_bytes(fp.simhash, i);
        if i == REF_BAND {
            r.extend_from_slice(&hash_prefix(&fp.hash)[..SHORT_HASH_BYTES]);
        }
        r
    }

    /// The slice keys of band `i`'s bucket for band value `bits` at slice `c` (current slice first).
    fn band_keys(&self, i: u32, bits: u64, c: u64) -> Vec<String> {
        let tag = format!(
            "{}{{b{}of{}:{:x}}}",
            self.prefix,
            i,
            self.bands.count(),
            bits
        );
        (0..=SLICES)
            .map(|back| format!("{tag}:{}", c.saturating_sub(back)))
            .collect()
    }

    /// Where the reference of an earlier text with SimHash `simhash` is: the slice keys of its
    /// [`REF_BAND`] bucket, and the remainder its record there starts with.
    fn ref_lookup(&self, simhash: u64, now_ms: u64) -> (Vec<String>, Vec<u8>) {
        let bits = self.bands.band(simhash, REF_BAND);
        (
            self.band_keys(REF_BAND, bits, now_ms / self.width_ms),
            self.remainder_bytes(simhash, REF_BAND),
        )
    }

    /// The keys of a check of `fp` at `now_ms`.
    pub fn keys_at(&self, fp: &Fingerprint, now_ms: u64) -> CheckKeys {
        let c = now_ms / self.width_ms;
        let slices = (0..=SLICES).map(|back| c.saturating_sub(back));
        let hp = hash_prefix(&fp.hash);
        let bucket = format!("{}{{x{}}}", self.prefix, hex(&hp[..2]));
        let exact = slices.map(|s| format!("{bucket}:{s}")).collect();
        let bands = if self.near_distance > 0 {
            self.bands
                .keys(fp.simhash)
                .map(|(i, bits)| self.band_keys(i, bits, c))
                .collect()
        } else {
            Vec::new()
        };
        CheckKeys {
            exact,
            bands,
            expire_at_ms: (c + 1) * self.width_ms + self.ttl_ms,
        }
    }

    /// The keys of a check of `fp` now.
    pub fn keys(&self, fp: &Fingerprint) -> CheckKeys {
        self.keys_at(fp, now_ms())
    }

    fn field(fp: &Fingerprint) -> Vec<u8> {
        hash_prefix(&fp.hash)[2..2 + FIELD_BYTES].to_vec()
    }

    /// The verdict an existing exact record means for `job_id`.
    fn verdict_for_existing(value: &[u8], job_id: &str) -> Result<Verdict, DedupError> {
        let rec = Record::decode(value).ok_or_else(|| DedupError::Reply {
            op: "check script",
            detail: format!("exact record of {} bytes", value.len()),
        })?;
        if rec.job != job_hash(job_id) {
            return Ok(Verdict::Duplicate {
                first_job: format!("#{}", hex(&rec.job)),
            });
        }
        Ok(match rec.near {
            Some((of, distance)) => Verdict::NearDuplicate {
                of_hash: format!("blake3:{}", hex(&of)),
                distance,
            },
            None => Verdict::New,
        })
    }

    /// The nearest indexed text within `near_distance` among the band records (not `fp` itself):
    /// its SimHash, the distance, and its short hash when its record was read in [`REF_BAND`] (a
    /// match in the reference band wins over an equally near one elsewhere).
    ///
    /// With `stamps` (Redis Cluster: per band, the node's clock when the band was read) an earlier
    /// text counts only in the lowest band the two SimHashes share (of two texts checked at once, the
    /// later one in that bucket sees the earlier one, never both each other) and, when it was
    /// appended less than [`SETTLED_AFTER_MS`] before, only if its SimHash (then its hash) is lower.
    fn nearest(
        &self,
        fp: &Fingerprint,
        records: &[Vec<u8>],
        stamps: Option<&[u16]>,
    ) -> Option<Near> {
        let own = &hash_prefix(&fp.hash)[..SHORT_HASH_BYTES];
        let rb = self.rem_bytes();
        let mut best: Option<Near> = None;
        for (i, recs) in records.iter().enumerate() {
            let i = i as u32;
            let mine = self.remainder(fp.simhash, i);
            for r in recs.chunks_exact(self.band_record_bytes(i)) {
                let mut buf = [0u8; 8];
                buf[8 - rb..].copy_from_slice(&r[..rb]);
                let rem = u64::from_be_bytes(buf);
                let d = (rem ^ mine).count_ones();
                let hash: Option<[u8; SHORT_HASH_BYTES]> = (i == REF_BAND)
                    .then(|| r[rb..rb + SHORT_HASH_BYTES].try_into().ok())
                    .flatten();
                if d > self.near_distance
                    || hash.is_some_and(|h| h == own)
                    || best.as_ref().is_some_and(|b| d >= b.distance)
                {
                    continue;
                }
                let simhash = rejoin(self.bands, rem, i, self.bands.band(fp.simhash, i));
                if let Some(now) = stamps {
                    let stamp = u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]]);
                    let age_ms = u64::from(now[i as usize].wrapping_sub(stamp)) * STAMP_UNIT_MS;
                    let theirs = (simhash, hash.as_ref().map(|h| &h[..]));
                    if !counts_as_earlier(self.bands, (fp.simhash, own), theirs, i, age_ms) {
                        continue;
                    }
                }
                best = Some(Near {
                    simhash,
                    distance: d,
                    hash,
                });
            }
        }
        best
    }

    /// One call of [`CHECK_LUA_BODY`] (arguments as documented there).
    fn invocation(
        &self,
        op: &str,
        exact: &[String],
        bands: &[Vec<String>],
        fp: &Fingerprint,
        value: &[u8],
        expire_at_ms: u64,
    ) -> redis::ScriptInvocation<'_> {
        let mut inv = self.script.prepare_invoke();
        for k in exact.iter().chain(bands.iter().flatten()) {
            inv.key(k);
        }
        inv.arg(exact.len().max(bands.first().map_or(0, Vec::len)))
            .arg(bands.len())
            .arg(op)
            .arg(Self::field(fp))
            .arg(value)
            .arg(expire_at_ms)
            .arg(self.band_cap);
        for i in 0..bands.len() {
            inv.arg(self.band_record(fp, i as u32));
        }
        inv
    }

    async fn run(&self, inv: redis::ScriptInvocation<'_>) -> Result<Vec<Value>, DedupError> {
        inv.invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_err("check"))
    }

    /// Record `value` as the exact record of `fp` unless one exists (one script call on the exact slot).
    async fn record_exact(
        &self,
        keys: &CheckKeys,
        fp: &Fingerprint,
        value: &[u8],
    ) -> Result<Vec<Value>, DedupError> {
        let inv = self.invocation("record", &keys.exact, &[], fp, value, keys.expire_at_ms);
        self.run(inv).await
    }

    async fn check(&self, fp: &Fingerprint, job_id: &str) -> Result<Verdict, DedupError> {
        let job = job_hash(job_id);
        let new_value = Record { job, near: None }.encode();
        let keys_now = now_ms();
        let keys = self.keys_at(fp, keys_now);
        if self.near_distance == 0 {
            return match parse(&self.record_exact(&keys, fp, &new_value).await?)? {
                Reply::Exact(v) => Self::verdict_for_existing(&v, job_id),
                _ => Ok(Verdict::New),
            };
        }
        if self.conn.is_cluster() {
            return self.check_per_slot(fp, job_id).await;
        }
        // One call: the exact lookup, and when absent the record as `New` with its band records, which
        // returns the band records there before it (scripts run one at a time, so of two concurrent
        // near-duplicates the second sees the first's records). A redelivery finds its own `New`
        // record and gets the band records there before it, so it reaches the same verdict.
        let inv = self.invocation(
            "check",
            &keys.exact,
            &keys.bands,
            fp,
            &new_value,
            keys.expire_at_ms,
        );
        let (fresh, dropped, records) = match parse(&self.run(inv).await?)? {
            Reply::Exact(v) => return Self::verdict_for_existing(&v, job_id),
            Reply::Bands {
                fresh,
                dropped,
                records,
            } => (fresh, dropped, records),
            _ => return Err(bad("check: unexpected reply".into())),
        };
        let verdict = match self.nearest(fp, &records, None) {
            Some(near) => {
                self.amend_near(fp, &keys, keys_now, &new_value, &near)
                    .await?
            }
            None => Verdict::New,
        };
        if fresh && verdict == Verdict::New {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        Ok(verdict)
    }

    /// The [`AMEND_LUA_BODY`] call that writes a near-duplicate's verdict into `fp`'s exact record
    /// (`new_value` is the record it was given as `New`; `of` the original's short hash when known,
    /// else the script finds it from the reference lookup keys and remainder the caller adds last)
    /// and, `with_bands` (single Redis), takes its band records out in the same call.
    fn amend_invocation(
        &self,
        fp: &Fingerprint,
        keys: &CheckKeys,
        with_bands: bool,
        new_value: &[u8],
        of: Option<&[u8]>,
        distance: u32,
    ) -> redis::ScriptInvocation<'_> {
        let mut tail = of.map(<[u8]>::to_vec).unwrap_or_default();
        tail.push(u8::try_from(distance).unwrap_or(u8::MAX));
        let band_keys: &[Vec<String>] = if with_bands { &keys.bands } else { &[] };
        let mut inv = self.amend.prepare_invoke();
        for k in keys.exact.iter().chain(band_keys.iter().flatten()) {
            inv.key(k);
        }
        inv.arg(keys.exact.len())
            .arg(band_keys.len())
            .arg(Self::field(fp))
            .arg(new_value)
            .arg(tail);
        for i in 0..band_keys.len() {
            inv.arg(self.band_record(fp, i as u32));
        }
        inv
    }

    /// A near-duplicate found by the single-Redis check (the rare case): a second call finds the
    /// original's hash in its reference band record when the match was elsewhere, writes the verdict
    /// into the text's record and takes its band records out again (near-duplicates are not indexed).
    /// `New` when the original's reference record is gone (its bucket was full).
    async fn amend_near(
        &self,
        fp: &Fingerprint,
        keys: &CheckKeys,
        keys_now: u64,
        new_value: &[u8],
        near: &Near,
    ) -> Result<Verdict, DedupError> {
        let mut inv = self.amend_invocation(
            fp,
            keys,
            true,
            new_value,
            near.hash.as_ref().map(|h| &h[..]),
            near.distance,
        );
        let lookup = near
            .hash
            .is_none()
            .then(|| self.ref_lookup(near.simhash, keys_now));
        if let Some((ks, rem)) = &lookup {
            for k in ks {
                inv.key(k);
            }
            inv.arg(rem.as_slice());
        }
        let (_, _, tail): (i64, i64, Vec<u8>) = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_err("near-duplicate record"))?;
        Ok(match tail.get(..SHORT_HASH_BYTES) {
            Some(of) => Verdict::NearDuplicate {
                of_hash: format!("blake3:{}", hex(of)),
                distance: near.distance,
            },
            None => Verdict::New,
        })
    }

    /// The values of `keys` (one slot) concatenated, absent keys skipped: one MGET.
    async fn records_of(&self, keys: &[String]) -> Result<Vec<u8>, redis::RedisError> {
        let parts: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(parts.into_iter().flatten().flatten().collect())
    }

    /// One band's lookup and append on Redis Cluster ([`BAND_LUA_BODY`], one call on the band's slot).
    async fn band_call(
        &self,
        keys: &[String],
        record: Vec<u8>,
        expire_at_ms: u64,
    ) -> Result<BandReply, DedupError> {
        let (now, flag, records): (i64, i64, Vec<u8>) = self
            .band
            .key(keys)
            .arg(record)
            .arg(self.band_cap)
            .arg(expire_at_ms)
            .arg(STAMP_UNIT_MS)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_err("band check"))?;
        Ok(BandReply {
            now: u16::try_from(now.rem_euclid(1 << 16)).unwrap_or(0),
            flag,
            records,
        })
    }

    /// Take the text's records out of the bands where `take` says so (Redis Cluster, one call per band,
    /// concurrently): a near-duplicate is not indexed.
    async fn remove_band_records(
        &self,
        fp: &Fingerprint,
        keys: &CheckKeys,
        take: impl Fn(&BandReply) -> bool,
        replies: &[BandReply],
    ) -> Result<(), DedupError> {
        let own = keys.bands.iter().zip(replies).enumerate();
        futures_util::future::try_join_all(own.filter(|(_, (_, r))| take(r)).map(
            |(i, (ks, _))| {
                let mut c = self.conn.clone();
                let i = i as u32;
                let (rec, width) = (self.band_record(fp, i), self.band_record_bytes(i));
                async move {
                    self.remove
                        .key(ks)
                        .arg(rec)
                        .arg(width)
                        .invoke_async::<i64>(&mut c)
                        .await
                }
            },
        ))
        .await
        .map_err(redis_err("band record removal"))?;
        Ok(())
    }

    /// The near-duplicate check on Redis Cluster, every call on one slot (see the module doc): the
    /// exact check-and-record and one lookup-and-append per band, all at once (one round trip); a
    /// near-duplicate then amends its exact record and takes its band records out (one more, and one
    /// before that to find its original's hash when the match was outside [`REF_BAND`]).
    async fn check_per_slot(&self, fp: &Fingerprint, job_id: &str) -> Result<Verdict, DedupError> {
        let new_value = Record {
            job: job_hash(job_id),
            near: None,
        }
        .encode();
        let keys_now = now_ms();
        let keys = self.keys_at(fp, keys_now);
        let exact =
            self.run(self.invocation("check", &keys.exact, &[], fp, &new_value, keys.expire_at_ms));
        let bands =
            futures_util::future::try_join_all(keys.bands.iter().enumerate().map(|(i, ks)| {
                self.band_call(ks, self.band_record(fp, i as u32), keys.expire_at_ms)
            }));
        let (exact, mut replies) = futures_util::future::try_join(exact, bands).await?;
        let fresh = match parse(&exact)? {
            Reply::Exact(v) => {
                let verdict = Self::verdict_for_existing(&v, job_id)?;
                // A redelivered near-duplicate put its band records back: out again. (A duplicate's
                // appended records stay: they may be the only ones of its text, which is indexed.)
                if matches!(verdict, Verdict::NearDuplicate { .. }) {
                    self.remove_band_records(fp, &keys, |r| r.flag == 1, &replies)
                        .await?;
                }
                return Ok(verdict);
            }
            Reply::Bands { fresh, .. } => fresh,
            _ => return Err(bad("check: unexpected reply".into())),
        };
        // The records go to `nearest`; the replies keep their flags and stamps.
        let records: Vec<Vec<u8>> = replies
            .iter_mut()
            .map(|r| std::mem::take(&mut r.records))
            .collect();
        let stamps: Vec<u16> = replies.iter().map(|r| r.now).collect();
        let mut best = None;
        if let Some(near) = self.nearest(fp, &records, Some(&stamps)) {
            best = match near.hash {
                Some(h) => Some((h, near.distance)),
                // Matched outside the reference band: the original's hash is in its record there
                // (one more call, near-duplicates only; a full bucket may have dropped it: then new).
                None => {
                    let (ks, rem) = self.ref_lookup(near.simhash, keys_now);
                    let recs = self
                        .records_of(&ks)
                        .await
                        .map_err(redis_err("band lookup"))?;
                    find_ref(&recs, &rem, self.band_record_bytes(REF_BAND))
                        .map(|h| (h, near.distance))
                }
            };
        }
        let Some((of, distance)) = best else {
            if fresh {
                let dropped = replies.iter().filter(|r| r.flag == 2).count() as u64;
                self.dropped.fetch_add(dropped, Ordering::Relaxed);
            }
            return Ok(Verdict::New);
        };
        let amend = self.amend_invocation(fp, &keys, false, &new_value, Some(&of), distance);
        let amended = async {
            amend
                .invoke_async::<(i64, i64, Vec<u8>)>(&mut self.conn.clone())
                .await
                .map_err(redis_err("near-duplicate record"))
        };
        // Its own records: those it appended, and on a redelivery those found in place.
        let removed = self.remove_band_records(
            fp,
            &keys,
            |r| r.flag == 1 || (!fresh && r.flag == 0),
            &replies,
        );
        futures_util::future::try_join(amended, removed).await?;
        Ok(Verdict::NearDuplicate {
            of_hash: format!("blake3:{}", hex(&of)),
            distance,
        })
    }

    /// Benchmarks: remember `n` synthetic texts (random content hashes and SimHashes from `seed`) in the
    /// same layout as [`Seen::check_and_record`] would, in pipelined bulk writes (one HSET per exact
    /// bucket, one SET per band bucket, in batches). Returns the fingerprints of the first `keep` texts
    /// (to check duplicates of). Band buckets are filled up to the cap, like real records.
    pub async fn fill_synthetic(
        &self,
        n: usize,
        seed: u64,
        keep: usize,
    ) -> Result<Vec<Fingerprint>, DedupError> {
        use std::collections::HashMap;
        let now = now_ms();
        let mut rng = SplitMix(seed);
        type Entries = Vec<(Vec<u8>, Vec<u8>)>;
        let mut exact: HashMap<String, Entries> = HashMap::new();
        let mut bands: HashMap<String, Vec<u8>> = HashMap::new();
        let mut kept = Vec::with_capacity(keep);
        let mut expire_at = 0;
        for t in 0..n {
            let h = (rng.next(), rng.next(), rng.next(), rng.next());
            let fp = Fingerprint {
                hash: format!("blake3:{:016x}{:016x}{:016x}{:016x}", h.0, h.1, h.2, h.3),
                simhash: rng.next(),
            };
            let keys = self.keys_at(&fp, now);
            expire_at = keys.expire_at_ms;
            let job = job_hash(&format!("fill-{seed}-{t}"));
            exact
                .entry(keys.exact[0].clone())
                .or_default()
                .push((Self::field(&fp), job.to_vec()));
            for (i, ks) in keys.bands.iter().enumerate() {
                let mut rec = self.band_record(&fp, i as u32);
                rec.resize(self.band_record_bytes(i as u32), 0);
                let b = bands.entry(ks[0].clone()).or_default();
                if b.len() + rec.len() <= self.band_cap * rec.len() {
                    b.extend_from_slice(&rec);
                }
            }
            if kept.len() < keep {
                kept.push(fp);
            }
        }
        let err = redis_err("fill");
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        let mut queued = 0;
        for (k, entries) in exact {
            for chunk in entries.chunks(512) {
                let mut cmd = redis::cmd("HSET");
                cmd.arg(&k);
                for (f, v) in chunk {
                    cmd.arg(f).arg(v);
                }
                pipe.add_command(cmd).ignore();
                queued += 1;
            }
            pipe.cmd("PEXPIREAT").arg(&k).arg(expire_at).ignore();
            if queued >= 256 {
                pipe.query_async::<()>(&mut conn).await.map_err(err)?;
                pipe = redis::pipe();
                queued = 0;
            }
        }
        for (k, v) in bands {
            pipe.cmd("SET")
                .arg(&k)
                .arg(v)
                .arg("PXAT")
                .arg(expire_at)
                .ignore();
            queued += 1;
            if queued >= 1024 {
                pipe.query_async::<()>(&mut conn).await.map_err(err)?;
                pipe = redis::pipe();
                queued = 0;
            }
        }
        if queued > 0 {
            pipe.query_async::<()>(&mut conn).await.map_err(err)?;
        }
        Ok(kept)
    }
}

/// The SimHash without band `i`'s bits (the bits above shift down).
fn remainder(bands: Bands, simhash: u64, i: u32) -> u64 {
    let (offset, width) = bands.span(i);
    let low = simhash & ((1u64 << offset) - 1);
    let high = simhash.checked_shr(offset + width).unwrap_or(0);
    low | high.checked_shl(offset).unwrap_or(0)
}

/// The SimHash whose band `i` is `bits` and whose other bits are `rem` (inverse of [`remainder`]).
fn rejoin(bands: Bands, rem: u64, i: u32, bits: u64) -> u64 {
    let (offset, width) = bands.span(i);
    let low = rem & ((1u64 << offset) - 1);
    let high = rem.checked_shr(offset).unwrap_or(0);
    low | bits << offset | high.checked_shl(offset + width).unwrap_or(0)
}

/// Whether an earlier text found in band `band` of a Redis Cluster check counts as the original of the
/// text checked: `mine` and `theirs` are (SimHash, short hash; theirs only when read in [`REF_BAND`]),
/// `age_ms` how long before the check its record was appended. Only in the lowest band the two share
/// (so of two texts checked at once only the later one in that bucket sees the other), and when
/// appended less than [`SETTLED_AFTER_MS`] before, only when it is the lower of the two (SimHash, then
/// hash): both drops of a pair, and drop cycles among texts checked at once, are then impossible.
fn counts_as_earlier(
    bands: Bands,
    mine: (u64, &[u8]),
    theirs: (u64, Option<&[u8]>),
    band: u32,
    age_ms: u64,
) -> bool {
    let lowest_shared =
        (0..bands.count()).find(|&b| bands.band(theirs.0, b) == bands.band(mine.0, b));
    let lower = theirs.0 < mine.0 || (theirs.0 == mine.0 && theirs.1.is_some_and(|h| h < mine.1));
    lowest_shared == Some(band) && (age_ms >= SETTLED_AFTER_MS || lower)
}

/// The short hash in the first [`REF_BAND`] record (remainder + short hash [+ stamp], `width` bytes
/// each, concatenated in `records`) that starts with the remainder `rem`.
fn find_ref(records: &[u8], rem: &[u8], width: usize) -> Option<[u8; SHORT_HASH_BYTES]> {
    records
        .chunks_exact(width)
        .find(|r| r.starts_with(rem))
        .and_then(|r| {
            r.get(rem.len()..rem.len() + SHORT_HASH_BYTES)?
                .try_into()
                .ok()
        })
}

/// Deterministic 64-bit generator for [`RedisStore::fill_synthetic`].
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn job_hash(job_id: &str) -> [u8; JOB_BYTES] {
    let mut out = [0u8; JOB_BYTES];
    out.copy_from_slice(&blake3::hash(job_id.as_bytes()).as_bytes()[..JOB_BYTES]);
    out
}

/// Maps a Redis error to [`DedupError::Redis`] for `op`.
fn redis_err(op: &'static str) -> impl Fn(redis::RedisError) -> DedupError + Copy {
    move |source| DedupError::Redis { op, source }
}

fn bad(detail: String) -> DedupError {
    DedupError::Reply {
        op: "check script",
        detail,
    }
}

/// A reply of [`CHECK_LUA_BODY`].
enum Reply {
    /// An exact record (not the job's own `New` one for `check`).
    Exact(Vec<u8>),
    /// `lookup`: no exact record.
    Absent,
    /// `record`: recorded.
    Recorded,
    /// `check`: no exact record of another job; the band records there before the text's own.
    Bands {
        /// Recorded by this call (false: the job's own `New` record was there, a redelivery).
        fresh: bool,
        /// The text's band records not added because their bucket was full.
        dropped: u64,
        /// Per band, the records of its live slices.
        records: Vec<Vec<u8>>,
    },
}

fn parse(reply: &[Value]) -> Result<Reply, DedupError> {
    let int = |v: &Value| -> Result<i64, DedupError> {
        redis::from_redis_value(v).map_err(|e| bad(e.to_string()))
    };
    let bytes = |v: &Value| -> Result<Vec<u8>, DedupError> {
        redis::from_redis_value(v).map_err(|e| bad(e.to_string()))
    };
    let code = int(reply.first().ok_or_else(|| bad("empty reply".into()))?)?;
    match code {
        0 => Ok(Reply::Exact(bytes(
            reply
                .get(1)
                .ok_or_else(|| bad("hit without value".into()))?,
        )?)),
        1 => Ok(Reply::Absent),
        2 => Ok(Reply::Recorded),
        3 | 4 => Ok(Reply::Bands {
            fresh: code == 3,
            dropped: reply.get(1).map(int).transpose()?.unwrap_or(0).max(0) as u64,
            records: reply
                .get(2..)
                .unwrap_or_default()
                .iter()
                .map(bytes)
                .collect::<Result<_, _>>()?,
        }),
        other => Err(bad(format!("unknown code {other}"))),
    }
}

/// Forget a URL record only if the given job wrote it (KEYS[1] url key, ARGV[1] job id).
const FORGET_URL_LUA: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/// Lua: a job's URL-seen check and validators lookup, shared by [`URL_AND_VALIDATORS_BODY`] (on its
/// own) and the fetcher's acquire script (`src/fetch/redis_limiter.rs`, in the same call as the host's
/// lease and slot). `url_check(seen key, validators key, job id, URL TTL ms (0: no URL check), read
/// the validators ('1'/'0'))` records the URL for the job when absent (`SET NX GET PX`) and returns
/// `seen (0/1), first job, found (0/1), validators value`; the validators of a URL another job
/// recorded are not read (that job is skipped).
pub(crate) const URL_CHECK_LUA: &str = r"
local function url_check(ukey, vkey, job, ttl, read)
  local seen, first, found, val = 0, '', 0, ''
  if tonumber(ttl) > 0 then
    local prev = redis.call('SET', ukey, job, 'NX', 'GET', 'PX', ttl)
    if prev then
      seen, first = 1, prev
      if prev ~= job then return seen, first, found, val end
    end
  end
  if read == '1' then
    local v = redis.call('GET', vkey)
    if v then found, val = 1, v end
  end
  return seen, first, found, val
end
";

/// [`URL_CHECK_LUA`] on its own: KEYS[1] URL-seen key, KEYS[2] validators key; ARGV 1 job id, 2 URL
/// TTL ms (0: no URL check), 3 read the validators (1/0). Returns {seen, first job, found, value}.
const URL_AND_VALIDATORS_BODY: &str = r"
local seen, first, found, val = url_check(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
return {seen, first, found, val}
";

/// Separates the job id, ETag and Last-Modified in a validators value.
const VALIDATORS_SEP: char = '\u{1f}';

/// Marks the URL-seen key after the host's hash tag: `<prefix>dedup:{h:<host>}:u:<hash>`.
const SEEN_MARK: &str = "u";
/// Marks the validators key after the host's hash tag: `<prefix>dedup:{h:<host>}:v:<hash>`.
const VALIDATORS_MARK: &str = "v";

/// One job's URL-seen check and validators lookup, as keys and arguments ([`Seen::url_check`]): run
/// by [`UrlCheck::run`] on its own (one call), or by the fetcher inside its host's acquire script on
/// the same connection (the keys carry the host's hash tag, `{h:<host>}`, so they share the limiter's
/// slot), which then takes no lease and no slot for a URL another job took.
#[derive(Clone)]
pub struct UrlCheck {
    /// The store's connection: the fetcher folds the check into its own call only on the same one.
    conn: RedisConn,
    /// The host of the keys' hash tag (lowercased).
    host: String,
    seen_key: String,
    validators_key: String,
    job_id: String,
    /// URL-seen TTL in ms; 0: no URL-seen check (`force`, feeds and sitemaps, `dedup.url_ttl_s = 0`).
    ttl_ms: u64,
    /// Read the validators: `None` not at all, `Some(own)` as [`Seen::validators`].
    own: Option<bool>,
}

impl std::fmt::Debug for UrlCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlCheck")
            .field("seen_key", &self.seen_key)
            .field("job_id", &self.job_id)
            .field("ttl_ms", &self.ttl_ms)
            .field("own", &self.own)
            .finish_non_exhaustive()
    }
}

/// What a [`UrlCheck`] found: the URL verdict and the validators to send.
pub type UrlChecked = (UrlVerdict, Option<Validators>);

impl UrlCheck {
    /// Whether `conn` is the store's connection (a clone of it).
    pub fn is_on(&self, conn: &RedisConn) -> bool {
        self.conn.same_as(conn)
    }

    /// The host whose hash tag the keys carry.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// KEYS of [`URL_CHECK_LUA`]: the URL-seen and the validators key.
    pub(crate) fn keys(&self) -> [&str; 2] {
        [&self.seen_key, &self.validators_key]
    }

    /// ARGV of [`URL_CHECK_LUA`]: job id, URL TTL ms, read the validators.
    pub(crate) fn args(&self) -> (&str, u64, &'static str) {
        let read = if self.own.is_some() { "1" } else { "0" };
        (&self.job_id, self.ttl_ms, read)
    }

    /// The meaning of [`URL_CHECK_LUA`]'s reply.
    pub(crate) fn parse(&self, seen: i64, first: String, found: i64, value: &str) -> UrlChecked {
        let verdict = match (seen, first) {
            (0, _) => UrlVerdict::New,
            (_, first) if first == self.job_id => UrlVerdict::Own,
            (_, first_job) => UrlVerdict::Seen { first_job },
        };
        let validators = match self.own {
            Some(own) if found == 1 && !matches!(verdict, UrlVerdict::Seen { .. }) => {
                parse_validators(value, &self.job_id, own)
            }
            _ => None,
        };
        (verdict, validators)
    }

    /// The check on its own, in one script call on the keys' slot.
    pub async fn run(&self) -> Result<UrlChecked, redis::RedisError> {
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
            Script::new(&format!("{URL_CHECK_LUA}{URL_AND_VALIDATORS_BODY}"))
        });
        let (job, ttl_ms, read) = self.args();
        let (seen, first, found, value): (i64, String, i64, String) = SCRIPT
            .key(&self.seen_key)
            .key(&self.validators_key)
            .arg(job)
            .arg(ttl_ms)
            .arg(read)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(self.parse(seen, first, found, &value))
    }
}

impl RedisStore {
    /// The Redis key of a store key ([`super::url_key`], `{h:<host>}:<hash>`) marked `mark`:
    /// `<prefix>dedup:{h:<host>}:<mark>:<hash>`. A key of another shape is used as it is, after the
    /// prefix and the mark.
    fn url_record_key(&self, key: &str, mark: &str) -> String {
        url_record_key(&self.prefix, key, mark)
    }

    /// The URL-seen key of `key`: `<prefix>dedup:{h:<host>}:u:<128-bit hash>`, in the slot of the host's
    /// politeness state.
    fn url_key(&self, key: &str) -> String {
        self.url_record_key(key, SEEN_MARK)
    }

    /// The validators key of `key`: `<prefix>dedup:{h:<host>}:v:<128-bit hash>`, in the same slot.
    fn validators_key(&self, key: &str) -> String {
        self.url_record_key(key, VALIDATORS_MARK)
    }

    /// [`Seen::url_check`]: the keys and arguments of a job's check.
    pub fn url_check_for(
        &self,
        key: &str,
        job_id: &str,
        ttl: Option<Duration>,
        own: Option<bool>,
    ) -> UrlCheck {
        UrlCheck {
            conn: self.conn.clone(),
            host: key_host(key).to_string(),
            seen_key: self.url_key(key),
            validators_key: self.validators_key(key),
            job_id: job_id.to_string(),
            ttl_ms: ttl.map_or(0, |t| {
                u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
            }),
            own,
        }
    }

    /// URL-seen filter in one round trip and one key ([`RedisStore::url_key`]): `SET key job NX GET PX
    /// ttl` records the URL when absent and returns who recorded it otherwise.
    async fn check_url_now(
        &self,
        key: &str,
        job_id: &str,
        ttl: Duration,
    ) -> Result<UrlVerdict, DedupError> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let previous: Option<String> = redis::cmd("SET")
            .arg(self.url_key(key))
            .arg(job_id)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_err("url check"))?;
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
            .key(self.url_key(key))
            .arg(job_id)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_err("url forget"))?;
        Ok(())
    }

    /// Conditional-GET validators: [`RedisStore::validators_key`] = job id, ETag and Last-Modified
    /// joined by U+001F, with TTL `dedup.validators_ttl_s`. One GET, one SET; a job's lookup goes with
    /// its URL-seen check in one script ([`Seen::check_url_and_validators`]), or in the fetcher's
    /// acquire ([`Seen::url_check`]).
    async fn validators_now(
        &self,
        key: &str,
        job_id: &str,
        own: bool,
    ) -> Result<Option<Validators>, DedupError> {
        let value: Option<String> = redis::cmd("GET")
            .arg(self.validators_key(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_err("validators lookup"))?;
        Ok(value.and_then(|v| parse_validators(&v, job_id, own)))
    }

    /// [`Seen::check_url_and_validators`] in one script call on one slot.
    async fn check_url_and_validators_now(
        &self,
        key: &str,
        job_id: &str,
        ttl: Option<Duration>,
        own: Option<bool>,
    ) -> super::UrlAndValidators {
        match self.url_check_for(key, job_id, ttl, own).run().await {
            Ok((verdict, validators)) => (Ok(verdict), Ok(validators)),
            Err(e) => {
                let detail = format!("failed with the URL check: {e}");
                (
                    Err(redis_err("url check")(e)),
                    Err(DedupError::Reply {
                        op: "validators lookup",
                        detail,
                    }),
                )
            }
        }
    }
}

/// [`RedisStore::url_record_key`] under `prefix`.
fn url_record_key(prefix: &str, key: &str, mark: &str) -> String {
    match key.rsplit_once("}:") {
        Some((tag, hash)) => format!("{prefix}{tag}}}:{mark}:{hash}"),
        None => format!("{prefix}{mark}:{key}"),
    }
}

/// The host in the hash tag of a store key ([`super::url_key`]; empty for a key without one).
fn key_host(key: &str) -> &str {
    key.strip_prefix("{h:")
        .and_then(|k| k.rsplit_once("}:"))
        .map_or("", |(host, _)| host)
}

/// A validators value (job id, ETag, Last-Modified joined by U+001F): `None` when it is `job_id`'s
/// own and `own` is not allowed.
fn parse_validators(value: &str, job_id: &str, own: bool) -> Option<Validators> {
    let mut parts = value.split(VALIDATORS_SEP);
    let (job, etag, modified) = (parts.next(), parts.next(), parts.next());
    if job == Some(job_id) && !own {
        return None;
    }
    let some = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
    Some(Validators {
        etag: some(etag),
        last_modified: some(modified),
    })
}

impl RedisStore {
    async fn record_validators_now(
        &self,
        key: &str,
        job_id: &str,
        v: &Validators,
        ttl: Duration,
    ) -> Result<(), DedupError> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        const SEP: char = VALIDATORS_SEP;
        let clean = |s: &Option<String>| s.as_deref().unwrap_or_default().replace(SEP, "");
        let value = format!(
            "{job_id}{SEP}{}{SEP}{}",
            clean(&v.etag),
            clean(&v.last_modified)
        );
        let _: () = redis::cmd("SET")
            .arg(self.validators_key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_err("validators record"))?;
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

    fn check_url_and_validators(
        &self,
        key: &str,
        job_id: &str,
        ttl: Option<Duration>,
        own: Option<bool>,
    ) -> impl std::future::Future<Output = super::UrlAndValidators> + Send {
        self.check_url_and_validators_now(key, job_id, ttl, own)
    }

    fn url_check(
        &self,
        key: &str,
        job_id: &str,
        ttl: Option<Duration>,
        own: Option<bool>,
    ) -> Option<UrlCheck> {
        Some(self.url_check_for(key, job_id, ttl, own))
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

    /// Band records not added because their bucket and slice was full.
    fn evictions(&self) -> u64 {
        self.dropped_band_records()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let r = Record {
            job: job_hash("job-1"),
            near: None,
        };
        assert_eq!(r.encode().len(), JOB_BYTES);
        assert_eq!(Record::decode(&r.encode()), Some(r));
        let r = Record {
            job: job_hash("job-1"),
            near: Some(([1, 2, 3, 4, 5, 6], 3)),
        };
        assert_eq!(r.encode().len(), JOB_BYTES + SHORT_HASH_BYTES + 1);
        assert_eq!(Record::decode(&r.encode()), Some(r));
        assert_eq!(Record::decode(&[1, 2, 3]), None);
    }

    /// A worker that crashed between the two calls of a near-duplicate's check (after the first): the
    /// redelivered job finds its own `New` record with the band records there before it, gets the
    /// verdict a full check gives, and its band records are taken out. Real Redis (REDIS_URL).
    #[tokio::test]
    async fn a_near_duplicate_redelivered_after_the_first_call_gets_its_verdict() {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let client = redis::Client::open(url).expect("REDIS_URL");
        let conn: RedisConn = redis::aio::ConnectionManager::new(client)
            .await
            .expect("Redis must run for this test (REDIS_URL, default redis://127.0.0.1:6379)")
            .into();
        let prefix = format!("paperboy-test-{}:", uuid::Uuid::new_v4().simple());
        let store = RedisStore::new(conn.clone(), &prefix, Duration::from_secs(600), 3);
        let a = Fingerprint {
            hash: format!("blake3:{}", "a1".repeat(32)),
            simhash: 0x0123_4567_89AB_CDEF,
        };
        // Two bits of band 0 apart: shares bands 1-3 with `a`.
        let b = Fingerprint {
            hash: format!("blake3:{}", "b2".repeat(32)),
            simhash: a.simhash ^ 0b101,
        };
        let outcome = async {
            assert_eq!(store.check(&a, "job-a").await.unwrap(), Verdict::New);
            let keys = store.keys(&b);
            let value = Record {
                job: job_hash("job-b"),
                near: None,
            }
            .encode();
            let inv = store.invocation(
                "check",
                &keys.exact,
                &keys.bands,
                &b,
                &value,
                keys.expire_at_ms,
            );
            let first = parse(&store.run(inv).await.unwrap()).unwrap();
            assert!(
                matches!(first, Reply::Bands { fresh: true, .. }),
                "the first call recorded b"
            );
            let band_bytes = || async {
                let mut total = 0;
                for ks in &keys.bands {
                    let parts: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                        .arg(ks)
                        .query_async(&mut conn.clone())
                        .await
                        .unwrap();
                    total += parts.into_iter().flatten().map(|p| p.len()).sum::<usize>();
                }
                total
            };
            let (rec0, rec) = (store.band_record_bytes(0), store.band_record_bytes(1));
            assert_eq!((rec0, rec), (12, 6), "the hash only in band 0's records");
            assert_eq!(
                band_bytes().await,
                3 * rec + rec0 + 3 * rec,
                "a's 3 shared + b's 4 records"
            );
            let want = Verdict::NearDuplicate {
                of_hash: RedisStore::short_hash(&a.hash),
                distance: 2,
            };
            assert_eq!(store.check(&b, "job-b").await.unwrap(), want);
            assert_eq!(band_bytes().await, 3 * rec, "b's band records taken out");
            assert_eq!(store.check(&b, "job-b").await.unwrap(), want, "amended");
            assert_eq!(
                store.check(&b, "job-c").await.unwrap(),
                Verdict::Duplicate {
                    first_job: RedisStore::job_ref("job-b")
                }
            );
            assert_eq!(store.check(&a, "job-a").await.unwrap(), Verdict::New);
        };
        let outcome =
            futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn.clone())
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<i64, _> = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut conn.clone())
                .await;
        }
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    /// URL-seen and validators keys carry the host's hash tag, the one of the limiter's keys
    /// (`<prefix>{h:<host>}`), so one script can touch them all on Redis Cluster.
    #[test]
    fn url_record_keys_carry_the_hosts_hash_tag() {
        let url = url::Url::parse("https://News.Example/a?utm_source=x").unwrap();
        let key = super::super::url_key(&url);
        let hash = key.rsplit_once(':').unwrap().1;
        assert_eq!(
            url_record_key("p:dedup:", &key, SEEN_MARK),
            format!("p:dedup:{{h:news.example}}:u:{hash}")
        );
        assert_eq!(
            url_record_key("p:dedup:", &key, VALIDATORS_MARK),
            format!("p:dedup:{{h:news.example}}:v:{hash}")
        );
        assert_eq!(key_host(&key), "news.example");
        let v6 = super::super::url_key(&url::Url::parse("http://[::1]:8080/").unwrap());
        assert_eq!(key_host(&v6), "[::1]");
        assert!(url_record_key("p:", &v6, SEEN_MARK).starts_with("p:{h:[::1]}:u:"));
        assert_eq!(key_host("other"), "");
        assert_eq!(url_record_key("p:", "other", SEEN_MARK), "p:u:other");
    }

    /// A band record's remainder and the bucket's band bits give back the full SimHash, for every band
    /// layout; the reference band's record is found by its remainder.
    #[test]
    fn remainder_and_band_bits_rejoin_to_the_simhash() {
        for distance in [3, 4, 7, 15] {
            let bands = Bands::for_distance(distance);
            for sim in [0u64, u64::MAX, 0x0123_4567_89AB_CDEF, 1 << 63 | 1] {
                for i in 0..bands.count() {
                    let rem = remainder(bands, sim, i);
                    assert_eq!(
                        rejoin(bands, rem, i, bands.band(sim, i)),
                        sim,
                        "{distance} {i}"
                    );
                }
            }
        }
        let recs: Vec<u8> = [
            &[1u8, 2, 3][..],
            &[0xa1; SHORT_HASH_BYTES],
            &[4, 5, 6],
            &[0xb2; SHORT_HASH_BYTES],
        ]
        .concat();
        assert_eq!(
            find_ref(&recs, &[4, 5, 6], 9),
            Some([0xb2; SHORT_HASH_BYTES])
        );
        assert_eq!(
            find_ref(&recs, &[1, 2, 3], 9),
            Some([0xa1; SHORT_HASH_BYTES])
        );
        assert_eq!(
            find_ref(&recs, &[0xa1, 0xa1, 0xa1], 9),
            None,
            "aligned to records only"
        );
    }

    /// Redis Cluster arbitration: a match counts only in the lowest band both SimHashes share, and
    /// when it is recent only if it is the lower one; so of any two texts at most one drops the other.
    #[test]
    fn a_match_counts_in_the_lowest_shared_band_and_recent_ones_by_order() {
        let bands = Bands::for_distance(3);
        let base = 0x0123_4567_89AB_CDEFu64;
        // Differs in band 0 only (bit 3): shares bands 1-3, lowest shared band 1.
        let other = base ^ 1 << 3;
        let (h1, h2) = ([1u8; SHORT_HASH_BYTES], [2u8; SHORT_HASH_BYTES]);
        let old = SETTLED_AFTER_MS;
        assert!(counts_as_earlier(bands, (base, &h1), (other, None), 1, old));
        assert!(
            !counts_as_earlier(bands, (base, &h1), (other, None), 2, old),
            "not the lowest shared band"
        );
        assert!(
            !counts_as_earlier(bands, (base, &h1), (other, None), 0, old),
            "a band not shared"
        );
        // Recent: only the lower SimHash counts, so exactly one of the pair drops the other.
        let (lo, hi) = (base.min(other), base.max(other));
        assert!(counts_as_earlier(bands, (hi, &h1), (lo, None), 1, 0));
        assert!(!counts_as_earlier(bands, (lo, &h1), (hi, None), 1, 0));
        assert!(
            counts_as_earlier(bands, (lo, &h1), (hi, None), 1, old),
            "settled: any order"
        );
        // Same SimHash (every band shared, so band 0 with the hash): the lower hash is the earlier.
        assert!(counts_as_earlier(
            bands,
            (base, &h2),
            (base, Some(&h1)),
            0,
            0
        ));
        assert!(!counts_as_earlier(
            bands,
            (base, &h1),
            (base, Some(&h2)),
            0,
            0
        ));
        // For every pair of recent texts, at most one counts the other, whatever band they met in.
        let mut rng = SplitMix(7);
        for _ in 0..2000 {
            let a = rng.next();
            let b = a ^ 1 << (rng.next() % 64) ^ 1 << (rng.next() % 64) ^ 1 << (rng.next() % 64);
            for band in 0..4 {
                let ab = counts_as_earlier(bands, (a, &h1), (b, None), band, 0);
                let ba = counts_as_earlier(bands, (b, &h2), (a, None), band, 0);
                assert!(!(ab && ba), "{a:x} {b:x} band {band}");
            }
        }
    }

    #[test]
    fn hash_prefix_reads_hex_and_hashes_anything_else() {
        let h = format!("blake3:0102030405060708{}", "0".repeat(48));
        assert_eq!(hash_prefix(&h), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_ne!(hash_prefix("other"), [0; 8]);
        assert_eq!(RedisStore::short_hash(&h), "blake3:010203040506");
    }
}
