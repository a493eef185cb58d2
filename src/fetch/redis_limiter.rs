//! Fleet-wide per-host state in Redis: the next-slot reservation and the Retry-After/backoff block run
//! as Lua scripts on Redis' own clock (`TIME`), so any number of workers keep one host's interval as
//! one worker would. Key: `{prefix}{h:<host>}` (hash-tagged: one Redis Cluster slot per host, shared
//! with the in-flight leases `{prefix}{h:<host>}:inflight`), a hash with `next`, `blocked` (ms since the epoch on
//! Redis' clock), `last` (the last start) and `failures`. The arithmetic is the one in
//! [`super::limits`], transcribed.
//!
//! Calls per fetch in the common case (host free): [`ACQUIRE_BODY`] (the job's URL-seen check and
//! validators lookup when the dedup store is on the same connection, lease, slot, start) before, and
//! [`FINISH_LUA`] (lease release + backoff relax) after a successful answer. A slot in the future adds
//! one [`START_LUA`] after the sleep; a busy host adds a lease poll every 50 ms; a redirect hop takes
//! [`RESERVE_LUA`] + [`START_LUA`]; a throttling answer HINCRBY + [`BLOCK_LUA`] and a ZREM.

use std::time::Duration;

use super::limiter::HostRequest;
use super::limits::{Backoff, Reservation};
use crate::dedup::redis_store::URL_CHECK_LUA;
use crate::dedup::{host_tag, UrlCheck, UrlChecked};
use crate::redis_conn::{RedisConn, RedisHealth};

/// `slot = max(now, next, blocked)`; when `slot - now <= threshold`: `next = slot + interval`.
/// Returns `{granted (0/1), wait_ms}`.
const RESERVE_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local threshold = tonumber(ARGV[2])
local keep = tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'next', 'blocked')
local nxt = tonumber(v[1]) or 0
local blocked = tonumber(v[2]) or 0
local slot = math.max(now, nxt, blocked)
local wait = slot - now
if wait > threshold then
  return {0, wait}
end
redis.call('HSET', KEYS[1], 'next', string.format('%.0f', slot + interval))
redis.call('PEXPIRE', KEYS[1], wait + interval + keep)
return {1, wait}
";

/// Start now when `now >= max(last + interval, blocked)` (then `last = now`, returns `{0, last}`);
/// else return `{wait, 0}` with the remaining wait.
const START_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'last', 'blocked')
local last = tonumber(v[1])
local earliest = tonumber(v[2]) or 0
if last then
  earliest = math.max(earliest, last + interval)
end
if earliest > now then
  return {earliest - now, 0}
end
-- TIME is truncated to whole ms: record the start rounded up.
redis.call('HSET', KEYS[1], 'last', string.format('%.0f', now + 1))
local ttl = redis.call('PTTL', KEYS[1])
if ttl < interval + keep then
  redis.call('PEXPIRE', KEYS[1], interval + keep)
end
return {0, now + 1}
";

/// `blocked = max(blocked, now + delay)`. Returns the delay.
const BLOCK_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local delay = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked')) or 0
local untl = now + delay
if untl > blocked then
  redis.call('HSET', KEYS[1], 'blocked', string.format('%.0f', untl))
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < delay + keep then
  redis.call('PEXPIRE', KEYS[1], delay + keep)
end
return delay
";

/// Fleet-wide concurrency (a sorted set of leases scored by their expiry; expired leases, of a worker
/// that died holding one, are dropped first), slot and start in one call (the common case: one round
/// trip before a fetch), with the job's URL-seen check and validators lookup first when KEYS[3..4] are
/// given (`url_check` of [`URL_CHECK_LUA`], composed in front: their keys carry the host's hash tag).
/// KEYS[1] host state, KEYS[2] leases, [3] URL-seen key, [4] validators key; ARGV 1 max leases,
/// 2 lease ms, 3 token, 4 interval, 5 threshold, 6 keep, [7 job id, 8 URL TTL ms, 9 read validators].
/// Returns {code, wait, started, seen, first job, found, validators}: code 3 the URL was taken by
/// another job (nothing else done: no lease, no slot) | 0 no lease free (nothing else changed: poll
/// again, without the URL check) | 2 slot further than the threshold (defer) | 1 lease taken and slot
/// reserved (`next` moved on); with `started` > 0 the start is also recorded (`last` = `started`, ms
/// on Redis' clock, as [`START_LUA`]), else (0) wait, then [`START_LUA`]. The last four are the URL
/// check's (0 and '' without).
const ACQUIRE_BODY: &str = r"
local seen, first, found, val = 0, '', 0, ''
if #KEYS > 2 then
  seen, first, found, val = url_check(KEYS[3], KEYS[4], ARGV[7], ARGV[8], ARGV[9])
  if seen == 1 and first ~= ARGV[7] then
    return {3, 0, 0, seen, first, found, val}
  end
end
local function reply(code, wait, started)
  return {code, wait, started, seen, first, found, val}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local interval, threshold, keep = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= max then
  return reply(0, 0, 0)
end
local v = redis.call('HMGET', KEYS[1], 'next', 'blocked', 'last')
local nxt = tonumber(v[1]) or 0
local blocked = tonumber(v[2]) or 0
local slot = math.max(now, nxt, blocked)
local wait = slot - now
if wait > threshold then
  return reply(2, wait, 0)
end
redis.call('ZADD', KEYS[2], now + lease, ARGV[3])
redis.call('PEXPIRE', KEYS[2], lease)
redis.call('HSET', KEYS[1], 'next', string.format('%.0f', slot + interval))
redis.call('PEXPIRE', KEYS[1], wait + interval + keep)
if wait == 0 then
  local last = tonumber(v[3])
  if not last or last + interval <= now then
    redis.call('HSET', KEYS[1], 'last', string.format('%.0f', now + 1))
    return reply(1, 0, now + 1)
  end
end
return reply(1, wait, 0)
";

/// A fetch's end when it succeeded: give the lease back (KEYS[2], token ARGV[1]) and relax the
/// backoff by one step (KEYS[1]), in one call.
const FINISH_LUA: &str = r"
redis.call('ZREM', KEYS[2], ARGV[1])
local f = tonumber(redis.call('HGET', KEYS[1], 'failures')) or 0
if f > 0 then
  redis.call('HINCRBY', KEYS[1], 'failures', -1)
end
return 0
";

/// What [`RedisLimiter::acquire`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AcquireReply {
    /// The URL check found the URL taken by this other job: nothing taken.
    Seen { first_job: String },
    /// Every fleet-wide lease of the host is taken.
    Busy,
    /// The host's slot is further away than the threshold (ms).
    Deferred(u64),
    /// Lease taken, slot reserved `wait_ms` from now; `started`: the start is recorded too.
    Leased { wait_ms: u64, started: bool },
}

/// One success relaxes the backoff by one step.
const RELAX_LUA: &str = r"
local f = tonumber(redis.call('HGET', KEYS[1], 'failures')) or 0
if f > 0 then
  return redis.call('HINCRBY', KEYS[1], 'failures', -1)
end
return 0
";

/// Pause between attempts to give back a lease whose release failed.
const RELEASE_RETRY: Duration = Duration::from_millis(500);

/// Redis-backed host state.
#[derive(Clone)]
pub(crate) struct RedisLimiter {
    conn: RedisConn,
    prefix: String,
    backoff: Backoff,
    reserve: redis::Script,
    start: redis::Script,
    block: redis::Script,
    relax: redis::Script,
    acquire: redis::Script,
    finish: redis::Script,
}

/// Log a request start the fleet's limiter granted, at `start_ms` on Redis' clock (ms since the
/// epoch): the instants the interval is kept between, whatever delay a worker then adds before its
/// request reaches the host. Debug level, target `paperboy::politeness`
/// (`RUST_LOG=paperboy::politeness=debug` gives an audit trail of every start, fleet-wide comparable).
fn log_start(host: &str, start_ms: i64) {
    tracing::debug!(target: "paperboy::politeness", host = %host, start_ms, "host start granted");
}

impl RedisLimiter {
    pub(crate) fn new(conn: RedisConn, prefix: String, backoff: Backoff) -> Self {
        Self {
            conn,
            prefix,
            backoff,
            reserve: redis::Script::new(RESERVE_LUA),
            start: redis::Script::new(START_LUA),
            block: redis::Script::new(BLOCK_LUA),
            relax: redis::Script::new(RELAX_LUA),
            acquire: redis::Script::new(&format!("{URL_CHECK_LUA}{ACQUIRE_BODY}")),
            finish: redis::Script::new(FINISH_LUA),
        }
    }

    /// The health record of the connection (fallbacks are counted there).
    pub(crate) fn health(&self) -> &std::sync::Arc<RedisHealth> {
        self.conn.health()
    }

    /// The connection (the fetcher folds a dedup store's URL check into its acquire only on the same).
    pub(crate) fn conn(&self) -> &RedisConn {
        &self.conn
    }

    /// `{prefix}{h:<host>}` ([`host_tag`]): the hash tag keeps a host's state and leases, and its URLs'
    /// URL-seen and validators records, in one Redis Cluster slot.
    fn key(&self, host: &str) -> String {
        format!("{}{}", self.prefix, host_tag(host))
    }

    /// `{prefix}{h:<host>}:inflight`, in the slot of [`RedisLimiter::key`].
    fn inflight_key(&self, host: &str) -> String {
        format!("{}{}:inflight", self.prefix, host_tag(host))
    }

    /// How long host state outlives its last use (so the failure count survives between throttles).
    fn keep_ms(&self) -> u64 {
        self.backoff.max_ms.saturating_add(60_000)
    }

    pub(crate) async fn reserve(
        &self,
        host: &str,
        interval: Duration,
        threshold: Duration,
    ) -> Result<Reservation, redis::RedisError> {
        let mut conn = self.conn.clone();
        let (granted, wait_ms): (i64, i64) = self
            .reserve
            .key(self.key(host))
            .arg(interval.as_millis() as u64)
            .arg(threshold.as_millis() as u64)
            .arg(self.keep_ms())
            .invoke_async(&mut conn)
            .await?;
        let wait_ms = wait_ms.max(0) as u64;
        Ok(if granted == 1 {
            Reservation::Granted { wait_ms }
        } else {
            Reservation::Deferred { wait_ms }
        })
    }

    /// 0 = start now (recorded in Redis); else the remaining wait in ms.
    pub(crate) async fn try_start(
        &self,
        host: &str,
        interval: Duration,
    ) -> Result<u64, redis::RedisError> {
        let mut conn = self.conn.clone();
        let (wait, started): (i64, i64) = self
            .start
            .key(self.key(host))
            .arg(interval.as_millis() as u64)
            .arg(self.keep_ms())
            .invoke_async(&mut conn)
            .await?;
        if started > 0 {
            log_start(host, started);
        }
        Ok(wait.max(0) as u64)
    }

    /// Count a throttling answer and block the host; returns the delay applied.
    pub(crate) async fn throttled(
        &self,
        host: &str,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Result<u64, redis::RedisError> {
        let mut conn = self.conn.clone();
        let key = self.key(host);
        let failures: u32 = redis::cmd("HINCRBY")
            .arg(&key)
            .arg("failures")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        // The same rule as `HostState::throttled`, with the shared failure count.
        let delay_ms = match retry_after {
            Some(d) => d.min(super::limits::MAX_RETRY_AFTER).as_millis() as u64,
            None => self.backoff.delay_ms(failures, jitter),
        };
        let applied: i64 = self
            .block
            .key(&key)
            .arg(delay_ms)
            .arg(self.keep_ms())
            .invoke_async(&mut conn)
            .await?;
        Ok(applied.max(0) as u64)
    }

    /// Take a lease, reserve the host's slot and, when it is now, record the start: one call. With
    /// `check` (its keys on `host`'s hash tag) the job's URL-seen check and validators lookup run
    /// first in the same call; a URL another job took returns [`AcquireReply::Seen`] having taken
    /// nothing. The check's result comes back with every other reply.
    pub(crate) async fn acquire(
        &self,
        req: &HostRequest<'_>,
        token: &str,
        check: Option<&UrlCheck>,
    ) -> Result<(AcquireReply, Option<UrlChecked>), redis::RedisError> {
        let HostRequest {
            host,
            max,
            lease,
            interval,
            threshold,
            ..
        } = *req;
        let mut conn = self.conn.clone();
        let mut call = self.acquire.key(self.key(host));
        call.key(self.inflight_key(host))
            .arg(max)
            .arg(lease.as_millis() as u64)
            .arg(token)
            .arg(interval.as_millis() as u64)
            .arg(threshold.as_millis() as u64)
            .arg(self.keep_ms());
        if let Some(c) = check {
            let [seen_key, validators_key] = c.keys();
            let (job, ttl_ms, read) = c.args();
            call.key(seen_key)
                .key(validators_key)
                .arg(job)
                .arg(ttl_ms)
                .arg(read);
        }
        let (code, wait, started, seen, first, found, value): (
            i64,
            i64,
            i64,
            i64,
            String,
            i64,
            String,
        ) = call.invoke_async(&mut conn).await?;
        let checked = check.map(|c| c.parse(seen, first, found, &value));
        if code == 1 && started > 0 {
            log_start(host, started);
        }
        let wait_ms = wait.max(0) as u64;
        let reply = match code {
            1 => AcquireReply::Leased {
                wait_ms,
                started: started > 0,
            },
            2 => AcquireReply::Deferred(wait_ms),
            3 => match &checked {
                Some((crate::dedup::UrlVerdict::Seen { first_job }, _)) => AcquireReply::Seen {
                    first_job: first_job.clone(),
                },
                _ => AcquireReply::Busy,
            },
            _ => AcquireReply::Busy,
        };
        Ok((reply, checked))
    }

    /// A successful fetch's end: give the lease `token` back and relax the backoff, one call.
    pub(crate) async fn finish(&self, host: &str, token: &str) -> Result<(), redis::RedisError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .finish
            .key(self.key(host))
            .key(self.inflight_key(host))
            .arg(token)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Give a lease back (spawned, so it also runs when the fetch was cancelled). A release that fails
    /// (Redis down, a master failing over) is tried again every [`RELEASE_RETRY`] for up to
    /// `lease`: a lease left behind would keep the host's in-flight slot taken until it expires
    /// (fetch timeout + 2 × patience + 5 s), stalling the host long after Redis is back.
    pub(crate) fn release(&self, host: &str, token: String, lease: Duration) {
        let mut conn = self.conn.clone();
        let key = self.inflight_key(host);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let give_up = tokio::time::Instant::now() + lease;
                loop {
                    let r: Result<i64, _> = redis::cmd("ZREM")
                        .arg(&key)
                        .arg(&token)
                        .query_async(&mut conn)
                        .await;
                    let Err(e) = r else { return };
                    if tokio::time::Instant::now() + RELEASE_RETRY > give_up {
                        tracing::warn!(key, error = %e, "could not release an in-flight lease; it expires by itself");
                        return;
                    }
                    tracing::debug!(key, error = %e, "could not release an in-flight lease; trying again");
                    tokio::time::sleep(RELEASE_RETRY).await;
                }
            });
        }
    }

    pub(crate) async fn succeeded(&self, host: &str) -> Result<(), redis::RedisError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .relax
            .key(self.key(host))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}
