//! robots.txt fetching and caching: once per origin per TTL, in-process (single flight per origin) and,
//! with Redis, shared by the fleet (`{prefix}{o:<origin>}:robots`), fetched by one worker at a time under a
//! short lock (`{prefix}{o:<origin>}:robots-lock`, `SET NX PX`) while the others poll for the result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use url::Url;

use super::client::{HttpClient, OverCap};
use super::limits::Clock;
use super::robots::{
    origin_key, robots_url, CachedRules, RobotsBody, RobotsRules, RobotsTtl, MAX_ROBOTS_BYTES,
};
use super::FetchError;
use crate::redis_conn::RedisConn;

const POLL: Duration = Duration::from_millis(50);
const MAX_LOCAL_ENTRIES: usize = 50_000;

const UNLOCK_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

pub(crate) struct RobotsCache {
    client: HttpClient,
    token: String,
    ttl: Duration,
    error_ttl: Duration,
    clock: Arc<dyn Clock>,
    local: Mutex<HashMap<String, CachedRules>>,
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    redis: Option<(RedisConn, String)>,
    unlock: redis::Script,
}

impl RobotsCache {
    pub(crate) fn new(
        client: HttpClient,
        token: String,
        ttl: Duration,
        error_ttl: Duration,
        clock: Arc<dyn Clock>,
        redis: Option<(RedisConn, String)>,
    ) -> Self {
        Self {
            client,
            token,
            ttl,
            error_ttl,
            clock,
            local: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            redis,
            unlock: redis::Script::new(UNLOCK_LUA),
        }
    }

    /// The rules for `url`'s origin, fetching robots.txt when not cached.
    pub(crate) async fn rules_for(&self, url: &Url) -> Result<RobotsRules, FetchError> {
        let (Some(origin), Some(robots)) = (origin_key(url), robots_url(url)) else {
            return Ok(RobotsRules::AllowAll);
        };
        if let Some(r) = self.cached(&origin) {
            return Ok(r);
        }
        // Single flight per origin inside this process.
        let gate = {
            let mut m = self.inflight.lock().unwrap();
            m.entry(origin.clone()).or_default().clone()
        };
        let result = {
            let _g = gate.lock().await;
            match self.cached(&origin) {
                Some(r) => Ok(r),
                None => self.load(&origin, &robots).await,
            }
        };
        {
            let mut m = self.inflight.lock().unwrap();
            // Ours and the map's: nobody else waits on it.
            if Arc::strong_count(&gate) <= 2 {
                m.remove(&origin);
            }
        }
        result
    }

    fn cached(&self, origin: &str) -> Option<RobotsRules> {
        let now = self.clock.now_ms();
        let m = self.local.lock().unwrap();
        m.get(origin)
            .filter(|c| c.is_fresh(now))
            .map(|c| c.rules.clone())
    }

    fn remember(&self, origin: &str, body: &RobotsBody, ttl: Duration) -> RobotsRules {
        let rules = body.rules(&self.token);
        let now = self.clock.now_ms();
        let mut m = self.local.lock().unwrap();
        if m.len() >= MAX_LOCAL_ENTRIES {
            m.retain(|_, c| c.is_fresh(now));
            if m.len() >= MAX_LOCAL_ENTRIES {
                m.clear();
            }
        }
        m.insert(
            origin.to_string(),
            CachedRules {
                rules: rules.clone(),
                expires_at_ms: now.saturating_add(ttl.as_millis() as u64),
            },
        );
        rules
    }

    fn ttl_of(&self, t: RobotsTtl) -> Duration {
        match t {
            RobotsTtl::Normal => self.ttl,
            RobotsTtl::Error => self.error_ttl,
        }
    }

    async fn load(&self, origin: &str, robots: &Url) -> Result<RobotsRules, FetchError> {
        if let Some((conn, prefix)) = &self.redis {
            match self.load_shared(conn.clone(), prefix, origin, robots).await {
                Ok(r) => return r,
                Err(e) => {
                    tracing::warn!(origin, error = %e, "Redis robots cache unavailable; fetching robots.txt locally");
                }
            }
        }
        let (body, ttl) = self.fetch(robots).await?;
        Ok(self.remember(origin, &body, self.ttl_of(ttl)))
    }

    /// With Redis: use the shared entry, or fetch it under the lock, or wait for whoever holds it.
    async fn load_shared(
        &self,
        mut conn: RedisConn,
        prefix: &str,
        origin: &str,
        robots: &Url,
    ) -> Result<Result<RobotsRules, FetchError>, redis::RedisError> {
        // Hash-tagged per origin: the entry and its lock share one Redis Cluster slot.
        let key = format!("{prefix}{{o:{origin}}}:robots");
        let lock_key = format!("{prefix}{{o:{origin}}}:robots-lock");
        let lock_ms = self.client.settings().timeout_ms.saturating_add(2000);
        let token = uuid::Uuid::new_v4().simple().to_string();
        let started = std::time::Instant::now();
        loop {
            if let Some((body, ttl)) = self.get_shared(&mut conn, &key).await? {
                return Ok(Ok(self.remember(origin, &body, ttl)));
            }
            let locked: Option<String> = redis::cmd("SET")
                .arg(&lock_key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(lock_ms)
                .query_async(&mut conn)
                .await?;
            if locked.is_some() {
                // Whoever held the lock before us may have stored the entry between our GET and SET NX.
                if let Some((body, ttl)) = self.get_shared(&mut conn, &key).await? {
                    self.release_lock(&mut conn, &lock_key, &token).await?;
                    return Ok(Ok(self.remember(origin, &body, ttl)));
                }
                let fetched = self.fetch(robots).await;
                let out = match fetched {
                    Ok((body, ttl)) => {
                        let ttl = self.ttl_of(ttl);
                        let _: () = redis::cmd("SET")
                            .arg(&key)
                            .arg(body.encode())
                            .arg("PX")
                            .arg((ttl.as_millis() as u64).max(1))
                            .query_async(&mut conn)
                            .await?;
                        Ok(self.remember(origin, &body, ttl))
                    }
                    Err(e) => Err(e),
                };
                self.release_lock(&mut conn, &lock_key, &token).await?;
                return Ok(out);
            }
            if started.elapsed() > Duration::from_millis(lock_ms + 1000) {
                tracing::warn!(
                    origin,
                    "waited too long for another worker's robots.txt fetch; fetching it here"
                );
                let (body, ttl) = match self.fetch(robots).await {
                    Ok(x) => x,
                    Err(e) => return Ok(Err(e)),
                };
                return Ok(Ok(self.remember(origin, &body, self.ttl_of(ttl))));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Release the fetch lock if `token` still holds it.
    async fn release_lock(
        &self,
        conn: &mut RedisConn,
        lock_key: &str,
        token: &str,
    ) -> Result<(), redis::RedisError> {
        let _: i64 = self
            .unlock
            .key(lock_key)
            .arg(token)
            .invoke_async(conn)
            .await?;
        Ok(())
    }

    /// The shared entry and its remaining lifetime, if any.
    async fn get_shared(
        &self,
        conn: &mut RedisConn,
        key: &str,
    ) -> Result<Option<(RobotsBody, Duration)>, redis::RedisError> {
        let (val, pttl): (Option<Vec<u8>>, i64) = redis::pipe()
            .get(key)
            .cmd("PTTL")
            .arg(key)
            .query_async(conn)
            .await?;
        Ok(val.as_deref().and_then(RobotsBody::decode).map(|body| {
            let ttl = if pttl > 0 {
                Duration::from_millis(pttl as u64)
            } else {
                self.ttl
            };
            (body, ttl)
        }))
    }

    /// GET robots.txt and interpret it. Guard refusals are returned as errors (the page would be
    /// refused too); other failures are "unavailable".
    async fn fetch(&self, robots: &Url) -> Result<(RobotsBody, RobotsTtl), FetchError> {
        let res = self
            .client
            .get(robots, MAX_ROBOTS_BYTES, OverCap::Truncate)
            .await;
        let out = match res {
            Ok(page) => RobotsBody::from_status(page.status, &page.body),
            Err(e @ FetchError::Blocked { .. }) => return Err(e),
            // RFC 9309 2.3.1.2: more redirects than followed -> unavailable (4xx-like) -> allow.
            Err(
                FetchError::TooManyRedirects { .. }
                | FetchError::RedirectLoop { .. }
                | FetchError::BadRedirect { .. },
            ) => (RobotsBody::AllowAll, RobotsTtl::Normal),
            Err(e) => {
                tracing::warn!(url = %robots, reason = e.reason(), error = %e, "robots.txt unreachable; host disallowed for now");
                (
                    RobotsBody::Unavailable(format!("{}: {e}", e.reason())),
                    RobotsTtl::Error,
                )
            }
        };
        tracing::info!(
            url = %robots,
            outcome = match &out.0 {
                RobotsBody::AllowAll => "allow_all",
                RobotsBody::Unavailable(_) => "unavailable",
                RobotsBody::Text(_) => "rules",
            },
            "fetched robots.txt"
        );
        Ok(out)
    }
}
