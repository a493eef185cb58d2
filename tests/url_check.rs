//! The URL-seen check and the validators lookup riding on the host's acquire call (dedup store and
//! politeness limiter in Redis on one connection): one Redis call before the fetch; a seen URL takes no
//! lease and no slot; robots.txt is asked first (a robots-denied URL is not recorded as seen); a
//! busy host's seen URL is skipped without waiting; a failed job forgets its URL; a redelivery goes
//! on without its own validators; validators are recorded and read under the new key names. And the
//! other combinations (Redis store with a per-worker limiter, memory store with the Redis limiter)
//! keep their separate check.
//!
//! Real Redis at `redis://127.0.0.1:6379` (or `PAPERBOY_TEST_REDIS`), a random key prefix per test;
//! skipped with a message when Redis is not reachable.

mod common_fetch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common_fetch::{redis, redis_prefix, settings, RedisKeys, Resp, Server};
use paperboy::config::Settings;
use paperboy::dedup::{url_key, MemoryStore, RedisStore, Seen};
use paperboy::fetch::PoliteFetcher;
use paperboy::pipeline::{Decision, JobInput, Processor};
use paperboy::redis_conn::RedisConn;
use url::Url;

const HOST: &str = "h1.test";
const IP: &str = "127.0.0.2";
/// The host's interval: long enough to see a slot taken (or not) in Redis.
const INTERVAL_MS: &str = "300";

/// A distinct article for `i` (long enough to be extracted).
fn article(i: usize) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><title>Story {i} about the harbour</title></head>\
         <body><article><h1>Story {i} about the harbour</h1>\
         <p>Story number {i} reports that the harbour near the station will be rebuilt next year after residents asked the city for years.</p>\
         <p>Officials said the work on the bridge {i} would start in spring and that the harbour stays open while crews are busy.</p>\
         <p>Neighbours of the station welcomed the plan, and the bridge committee promised regular updates on progress for story {i}.</p>\
         </article></body></html>"
    )
}

fn site() -> impl Fn(&common_fetch::Req) -> Resp + Send + Sync + 'static {
    |r| match r.path.as_str() {
        "/robots.txt" => Resp::text("User-agent: *\nDisallow: /private\n"),
        "/missing" => Resp::status(404),
        "/etag" if r.headers.get("if-none-match").map(String::as_str) == Some("\"v1\"") => {
            Resp::status(304)
        }
        "/etag" => Resp::html(article(1)).header("ETag", "\"v1\""),
        "/slow" => Resp::html(article(2)).delay(Duration::from_millis(1500)),
        p => Resp::html(article(
            p.len() * 7 + p.bytes().map(usize::from).sum::<usize>(),
        )),
    }
}

fn job_settings(prefix: &str, store: &str) -> Settings {
    let mut s = settings(&[
        ("PAPERBOY__POLITENESS__RESPECT_ROBOTS", "true"),
        ("PAPERBOY__POLITENESS__MIN_DELAY_MS", INTERVAL_MS),
        ("PAPERBOY__POLITENESS__MAX_CONCURRENT_PER_HOST", "1"),
        ("PAPERBOY__POLITENESS__DEFER_THRESHOLD_MS", "5000"),
        ("PAPERBOY__REDIS__KEY_PREFIX", prefix),
        ("PAPERBOY__DEDUP__STORE", store),
        ("PAPERBOY__REDIS__URL", "redis://127.0.0.1:6379"),
    ]);
    s.fetch.resolve.insert(HOST.into(), IP.into());
    s
}

fn label(d: &Decision) -> String {
    d.label()
}

/// Redis calls sent on `conn` so far.
fn calls(conn: &RedisConn) -> u64 {
    conn.health().calls().iter().sum()
}

async fn exists(conn: &RedisConn, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(&mut conn.clone())
        .await
        .unwrap()
        == 1
}

async fn keys(conn: &RedisConn, pattern: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut conn.clone())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_url_check_rides_on_the_acquire_and_a_seen_url_takes_no_lease_or_slot() {
    let Some(conn) = redis().await else {
        eprintln!("SKIPPED: Redis not reachable");
        return;
    };
    let prefix = redis_prefix("urlcheck");
    let _cleanup = RedisKeys(prefix.clone());
    let srv = Server::start_on(&[IP.parse().unwrap()], site()).await;
    let s = Arc::new(job_settings(&prefix, "redis"));
    let fetcher = PoliteFetcher::new(&s, Some(conn.clone())).unwrap();
    let store = RedisStore::from_settings(conn.clone(), &s.redis, &s.dedup);
    let p = Processor::new(Arc::new(fetcher), Arc::new(store), s.clone());
    let u = |path: &str| srv.url_for(HOST, path);
    let host_key = format!("{prefix}{{h:{HOST}}}");
    let seen_key = |path: &str| {
        let key = url_key(&Url::parse(&u(path)).unwrap());
        let (tag, hash) = key.rsplit_once(':').unwrap();
        format!("{prefix}dedup:{tag}:u:{hash}")
    };

    // First job: robots.txt fetched and cached, scripts loaded.
    let (d, _) = p.process(&JobInput::new("a", u("/a"))).await;
    assert!(label(&d).starts_with("article"), "{}", label(&d));
    assert!(exists(&conn, &seen_key("/a")).await, "URL-seen key");

    // A new URL on a free host: acquire + URL check in one call, then the dedup check and the
    // finish: 3 calls.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = calls(&conn);
    let (d, _) = p.process(&JobInput::new("b", u("/b"))).await;
    assert!(label(&d).starts_with("article"), "{}", label(&d));
    assert_eq!(calls(&conn) - before, 3, "calls for a new URL");
    // Right after it the host's slot is in the future: wait, then one start call more.
    let before = calls(&conn);
    let (d, _) = p.process(&JobInput::new("b2", u("/b2"))).await;
    assert!(label(&d).starts_with("article"), "{}", label(&d));
    // (A wake-up within the last millisecond of the interval takes one start call more.)
    let n = calls(&conn) - before;
    assert!(
        n == 4 || n == 5,
        "calls for a new URL waiting for its slot: {n}"
    );
    let at = |path: &str| srv.requests().iter().find(|r| r.path == path).unwrap().at;
    assert!(at("/b2") - at("/b") >= Duration::from_millis(290));

    // A seen URL: one call, no lease, no slot, no request.
    let next_before: Option<String> = redis::cmd("HGET")
        .arg(&host_key)
        .arg("next")
        .query_async(&mut conn.clone())
        .await
        .unwrap();
    let hits = srv.count("/a");
    let before = calls(&conn);
    let (d, _) = p.process(&JobInput::new("c", u("/a"))).await;
    assert_eq!(label(&d), "outcome.skipped.seen");
    assert_eq!(calls(&conn) - before, 1, "calls for a seen URL");
    assert_eq!(srv.count("/a"), hits, "a seen URL was fetched");
    let next_after: Option<String> = redis::cmd("HGET")
        .arg(&host_key)
        .arg("next")
        .query_async(&mut conn.clone())
        .await
        .unwrap();
    assert_eq!(next_before, next_after, "a seen URL took the host's slot");
    tokio::time::sleep(Duration::from_millis(100)).await; // lease releases run after the job
    let leases: i64 = redis::cmd("ZCARD")
        .arg(format!("{host_key}:inflight"))
        .query_async(&mut conn.clone())
        .await
        .unwrap();
    assert_eq!(leases, 0, "a lease left taken");

    // The job's own redelivery goes on (`Own`), fetching again.
    let mut again = JobInput::new("a", u("/a"));
    again.redelivered = true;
    let (d, _) = p.process(&again).await;
    assert!(label(&d).starts_with("article"), "{}", label(&d));
    assert_eq!(srv.count("/a"), hits + 1);

    // robots.txt first: a denied URL is skipped as such and not recorded as seen, so a later job
    // gets the robots verdict again (not "seen").
    for id in ["r1", "r2"] {
        let (d, _) = p.process(&JobInput::new(id, u("/private/x"))).await;
        assert_eq!(label(&d), "outcome.skipped.robots", "{id}");
    }
    assert!(!exists(&conn, &seen_key("/private/x")).await);

    // A job that fails for good forgets its URL: the next job fetches it again.
    for id in ["m1", "m2"] {
        let (d, _) = p.process(&JobInput::new(id, u("/missing"))).await;
        assert_eq!(label(&d), "outcome.failed.http_404", "{id}");
    }
    assert_eq!(srv.count("/missing"), 2);

    // Validators: recorded under `…dedup:{h:<host>}:v:<hash>` after an answer with an ETag, read
    // in the acquire call by the next job that fetches the URL ("force"), which gets a 304.
    let (d, _) = p.process(&JobInput::new("e1", u("/etag"))).await;
    assert!(label(&d).starts_with("article"), "{}", label(&d));
    let vkey = seen_key("/etag").replace(":u:", ":v:");
    assert!(exists(&conn, &vkey).await, "validators key {vkey}");
    assert!(keys(&conn, &format!("*{prefix}dedup:url:*"))
        .await
        .is_empty());
    let mut forced = JobInput::new("e2", u("/etag"));
    forced.force = true;
    tokio::time::sleep(Duration::from_millis(400)).await; // the host free again
    let before = calls(&conn);
    let (d, _) = p.process(&forced).await;
    assert_eq!(label(&d), "outcome.skipped.not_modified");
    assert_eq!(
        calls(&conn) - before,
        2,
        "acquire with the validators, finish"
    );
    // Job e1's redelivery does not send its own validators: fetched in full, published again.
    let mut own = JobInput::new("e1", u("/etag"));
    own.redelivered = true;
    let (d, _) = p.process(&own).await;
    assert!(label(&d).starts_with("article"), "{}", label(&d));

    // A busy host (the worker's permit taken by a slow fetch): a seen URL is skipped at once, in a
    // call of its own, not after the slow fetch.
    let slow = {
        let p = p.clone();
        let job = JobInput::new("s", u("/slow"));
        tokio::spawn(async move { p.process(&job).await.0.label() })
    };
    tokio::time::sleep(Duration::from_millis(700)).await; // the slow fetch is running
    let started = Instant::now();
    let (d, _) = p.process(&JobInput::new("c2", u("/a"))).await;
    assert_eq!(label(&d), "outcome.skipped.seen");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "a seen URL waited for the host: {:?}",
        started.elapsed()
    );
    // A new URL on the busy host waits for the permit, then fetches.
    let (d, _) = p.process(&JobInput::new("n", u("/n"))).await;
    assert!(label(&d).starts_with("article"), "{}", label(&d));
    assert!(slow.await.unwrap().starts_with("article"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_store_with_a_per_worker_limiter_and_a_memory_store_with_the_redis_limiter() {
    let Some(conn) = redis().await else {
        eprintln!("SKIPPED: Redis not reachable");
        return;
    };
    let prefix = redis_prefix("urlcheck-mixed");
    let _cleanup = RedisKeys(prefix.clone());
    let srv = Server::start_on(&[IP.parse().unwrap()], site()).await;
    let u = |path: &str| srv.url_for(HOST, path);

    // Redis store, limiter in this process: the check is a call of its own.
    let s = Arc::new(job_settings(&prefix, "redis"));
    let fetcher = PoliteFetcher::new(&s, None).unwrap();
    let store = RedisStore::from_settings(conn.clone(), &s.redis, &s.dedup);
    let p = Processor::new(Arc::new(fetcher), Arc::new(store), s.clone());
    let (d, _) = p.process(&JobInput::new("a", u("/a"))).await;
    assert!(label(&d).starts_with("article"), "{}", label(&d));
    let before = calls(&conn);
    let (d, _) = p.process(&JobInput::new("b", u("/a"))).await;
    assert_eq!(label(&d), "outcome.skipped.seen");
    assert_eq!(calls(&conn) - before, 1);

    // Memory store, limiter in Redis.
    let s = Arc::new(job_settings(&prefix, "memory"));
    let fetcher = PoliteFetcher::new(&s, Some(conn.clone())).unwrap();
    let p = Processor::new(
        Arc::new(fetcher),
        Arc::new(MemoryStore::from_settings(&s.dedup)),
        s.clone(),
    );
    for (id, want) in [("a", "article"), ("b", "outcome.skipped.seen")] {
        let (d, _) = p.process(&JobInput::new(id, u("/m"))).await;
        assert!(label(&d).starts_with(want), "{id}: {}", label(&d));
    }
    assert_eq!(srv.count("/m"), 1);

    // A Redis store on another connection than the limiter's: separate calls, same verdicts.
    let other = redis().await.unwrap();
    let s = Arc::new(job_settings(&prefix, "redis"));
    let fetcher = PoliteFetcher::new(&s, Some(conn.clone())).unwrap();
    let store = RedisStore::from_settings(other.clone(), &s.redis, &s.dedup);
    assert!(store
        .url_check(&url_key(&Url::parse(&u("/o")).unwrap()), "x", None, None)
        .is_some());
    let p = Processor::new(Arc::new(fetcher), Arc::new(store), s.clone());
    for (id, want) in [("a", "article"), ("b", "outcome.skipped.seen")] {
        let (d, _) = p.process(&JobInput::new(id, u("/o"))).await;
        assert!(label(&d).starts_with(want), "{id}: {}", label(&d));
    }
    assert_eq!(srv.count("/o"), 1);
}
