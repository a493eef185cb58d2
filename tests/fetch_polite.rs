//! PoliteFetcher against local servers: per-host intervals (one worker, and three workers sharing
//! Redis), Retry-After and backoff, robots.txt rules, crawl-delay, caching, concurrency per host.
//!
//! Redis tests use `redis://127.0.0.1:6379` (or `PAPERBOY_TEST_REDIS`), a random key prefix per test,
//! and delete their keys at the end; they are skipped with a message when Redis is not reachable.

mod common_fetch;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common_fetch::{redis, redis_cleanup, redis_prefix, settings, RedisKeys, Req, Resp, Server};
use paperboy::config::Settings;
use paperboy::fetch::{FetchError, FetchedPage, Fetcher, PoliteFetcher};
use url::Url;

const HOSTS: [(&str, &str); 4] = [
    ("h1.test", "127.0.0.2"),
    ("h2.test", "127.0.0.3"),
    ("h3.test", "127.0.0.4"),
    ("h4.test", "127.0.0.5"),
];

fn loopbacks() -> Vec<IpAddr> {
    HOSTS.iter().map(|(_, ip)| ip.parse().unwrap()).collect()
}

fn polite_settings(extra: &[(&str, &str)]) -> Settings {
    let mut base: Vec<(&str, &str)> = vec![
        ("PAPERBOY__POLITENESS__RESPECT_ROBOTS", "true"),
        ("PAPERBOY__POLITENESS__DEFER_THRESHOLD_MS", "20000"),
    ];
    base.extend_from_slice(extra);
    let mut s = settings(&base);
    for (h, ip) in HOSTS {
        s.fetch.resolve.insert(h.into(), ip.into());
    }
    s
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

/// Fetch like a worker would: a deferral is "republished" after its wait (here: slept, then retried).
async fn fetch_as_worker(f: &PoliteFetcher, u: &Url) -> Result<FetchedPage, FetchError> {
    loop {
        match f.fetch(u).await {
            Err(FetchError::Deferred { wait, .. }) => tokio::time::sleep(wait).await,
            other => return other,
        }
    }
}

/// [`fetch_as_worker`] on a task of its own.
fn spawn_fetch(
    f: &PoliteFetcher,
    u: Url,
) -> tokio::task::JoinHandle<Result<FetchedPage, FetchError>> {
    let f = f.clone();
    tokio::spawn(async move { fetch_as_worker(&f, &u).await })
}

/// Arrival times of page requests (robots.txt excluded) per Host header.
fn arrivals_by_host(reqs: &[Req]) -> BTreeMap<String, Vec<Instant>> {
    let mut m: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
    for r in reqs.iter().filter(|r| r.path != "/robots.txt") {
        m.entry(r.host.clone()).or_default().push(r.at);
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

/// Allowed shortfall of a single measured gap. The limiter decides when a request may start; between
/// that decision and the server's accept timestamp (taken on the server's own thread) any thread can be
/// descheduled, and on a busy 2-core machine (other builds running) that is tens of ms. Unloaded, gaps
/// are within a few ms of the interval. The slack is 25 ms (PAPERBOY_TEST_GAP_SLACK_MS) or twice the
/// worst wake-up lateness a probe measured on the same runtime during the test, whichever is larger;
/// the MEAN gap is held to the interval (no systematic shortfall).
fn slack() -> Duration {
    let ms = std::env::var("PAPERBOY_TEST_GAP_SLACK_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    Duration::from_millis(ms)
}

/// Measures how late sleeps wake up on this runtime while a test runs (scheduling noise).
struct NoiseProbe {
    max_late_us: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl NoiseProbe {
    fn start() -> Self {
        let max_late_us = Arc::new(AtomicU64::new(0));
        let m = max_late_us.clone();
        let task = tokio::spawn(async move {
            loop {
                let t = Instant::now();
                tokio::time::sleep(Duration::from_millis(5)).await;
                let late = t.elapsed().saturating_sub(Duration::from_millis(5));
                m.fetch_max(late.as_micros() as u64, Ordering::Relaxed);
            }
        });
        Self { max_late_us, task }
    }

    /// The slack for gap assertions of an `interval`, given the noise seen so far; at most a third of
    /// the interval (beyond that the measurement says nothing).
    fn slack(&self, interval: Duration) -> Duration {
        let late = Duration::from_micros(self.max_late_us.load(Ordering::Relaxed));
        slack().max(late * 2).min(interval / 3)
    }
}

impl Drop for NoiseProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The mean gap plus the slack spread over the gaps: only the first and last timestamps' noise can
/// shorten the mean, so a mean under `interval - slack / gaps` is a systematic shortfall.
fn mean_gap(times: &[Instant], slack: Duration) -> Duration {
    let gaps = times.len() as u32 - 1;
    (times[times.len() - 1] - times[0]) / gaps + slack / gaps
}

fn min_gap(times: &[Instant]) -> Duration {
    times
        .windows(2)
        .map(|w| w[1] - w[0])
        .min()
        .unwrap_or(Duration::MAX)
}

fn robots_ok(txt: &'static str) -> impl Fn(&Req) -> Resp + Send + Sync + 'static {
    move |r: &Req| {
        if r.path == "/robots.txt" {
            Resp::text(txt)
        } else {
            Resp::html(format!("<p>{}{}</p>", r.host, r.path))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_sharing_redis_keep_each_hosts_interval() {
    let probe = NoiseProbe::start();
    let Some(mut conn) = redis().await else {
        eprintln!("SKIPPED: Redis not reachable at 127.0.0.1:6379");
        return;
    };
    let prefix = redis_prefix("fleet");
    let _cleanup = RedisKeys(prefix.clone());
    let srv = Server::start_on(&loopbacks(), robots_ok("User-agent: *\nAllow: /\n")).await;
    let s = polite_settings(&[
        ("PAPERBOY__POLITENESS__MIN_DELAY_MS", "300"),
        ("PAPERBOY__REDIS__KEY_PREFIX", &prefix),
    ]);
    let mut workers = Vec::new();
    for _ in 0..3 {
        let c = redis().await.expect("redis");
        workers.push(PoliteFetcher::new(&s, Some(c)).unwrap());
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..20 {
        for (h, _) in HOSTS {
            tasks.push(spawn_fetch(
                &workers[(i + h.len()) % 3],
                url(&srv.url_for(h, &format!("/p/{i}"))),
            ));
        }
    }
    for t in tasks {
        let page = t.await.unwrap().expect("fetch");
        assert_eq!(page.status, 200);
    }
    let took = started.elapsed();
    let reqs = srv.requests();
    let by_host = arrivals_by_host(&reqs);
    assert_eq!(by_host.len(), 4);
    for (h, times) in &by_host {
        assert_eq!(times.len(), 20, "{h}");
        let gap = min_gap(times);
        let gaps: Vec<u128> = times
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect();
        eprintln!(
            "{h}: {gaps:?} (slack {:?})",
            probe.slack(Duration::from_millis(300))
        );
        assert!(
            gap >= Duration::from_millis(300) - probe.slack(Duration::from_millis(300)),
            "{h}: two requests {gap:?} apart (slack {:?})",
            probe.slack(Duration::from_millis(300))
        );
        assert!(
            mean_gap(times, probe.slack(Duration::from_millis(300))) >= Duration::from_millis(300),
            "{h}: mean gap {:?}",
            mean_gap(times, probe.slack(Duration::from_millis(300)))
        );
        let robots = reqs
            .iter()
            .filter(|r| &r.host == h && r.path == "/robots.txt")
            .count();
        assert_eq!(robots, 1, "{h}: robots.txt fetched {robots} times");
    }
    // Ideal: 20 requests 300 ms apart per host, hosts in parallel.
    let ideal = Duration::from_millis(20 * 300);
    assert!(took <= ideal.mul_f64(1.3), "took {took:?}, ideal {ideal:?}");
    redis_cleanup(&mut conn, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_without_redis_keeps_the_interval() {
    let probe = NoiseProbe::start();
    let srv = Server::start_on(&loopbacks()[..2], robots_ok("")).await;
    let s = polite_settings(&[("PAPERBOY__POLITENESS__MIN_DELAY_MS", "200")]);
    let f = PoliteFetcher::new(&s, None).unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..8 {
        for h in ["h1.test", "h2.test"] {
            tasks.push(spawn_fetch(&f, url(&srv.url_for(h, &format!("/{i}")))));
        }
    }
    for t in tasks {
        t.await.unwrap().expect("fetch");
    }
    let took = started.elapsed();
    for (h, times) in arrivals_by_host(&srv.requests()) {
        assert_eq!(times.len(), 8);
        assert!(
            min_gap(&times) >= Duration::from_millis(200) - probe.slack(Duration::from_millis(200)),
            "{h}: {:?}",
            min_gap(&times)
        );
        assert!(
            mean_gap(&times, probe.slack(Duration::from_millis(200))) >= Duration::from_millis(200),
            "{h}"
        );
    }
    assert!(took < Duration::from_millis(8 * 200 * 13 / 10), "{took:?}");
}

#[tokio::test]
async fn retry_after_seconds_blocks_the_host_and_defers_beyond_the_threshold() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h2 = hits.clone();
    let srv = Server::start_on(&loopbacks()[..1], move |r| match r.path.as_str() {
        "/robots.txt" => Resp::status(404),
        "/limited" if h2.fetch_add(1, Ordering::SeqCst) == 0 => {
            Resp::status(429).header("Retry-After", "1")
        }
        _ => Resp::html("ok"),
    })
    .await;
    let s = polite_settings(&[("PAPERBOY__POLITENESS__DEFER_THRESHOLD_MS", "5000")]);
    let f = PoliteFetcher::new(&s, None).unwrap();
    let page = f
        .fetch(&url(&srv.url_for("h1.test", "/limited")))
        .await
        .unwrap();
    assert_eq!(page.status, 429, "429 is returned as a page");
    // Under the threshold: slept in-process until the host is free again.
    let page = f
        .fetch(&url(&srv.url_for("h1.test", "/limited")))
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    let times = arrivals_by_host(&srv.requests())["h1.test"].clone();
    assert!(
        times[1] - times[0] >= Duration::from_millis(990),
        "{:?}",
        times[1] - times[0]
    );

    // Over the threshold: deferred at once, nothing fetched, nothing reserved.
    let s = polite_settings(&[("PAPERBOY__POLITENESS__DEFER_THRESHOLD_MS", "300")]);
    let srv = Server::start_on(&loopbacks()[..1], |r| match r.path.as_str() {
        "/robots.txt" => Resp::status(404),
        _ => Resp::status(503).header("Retry-After", "2"),
    })
    .await;
    let f = PoliteFetcher::new(&s, None).unwrap();
    let u = url(&srv.url_for("h1.test", "/x"));
    assert_eq!(f.fetch(&u).await.unwrap().status, 503);
    let t = Instant::now();
    match f.fetch(&u).await {
        Err(FetchError::Deferred { host, wait }) => {
            assert_eq!(host, "h1.test");
            assert!(
                wait > Duration::from_millis(1500) && wait <= Duration::from_secs(2),
                "{wait:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_millis(200));
    assert_eq!(srv.requests().iter().filter(|r| r.path == "/x").count(), 1);
}

#[tokio::test]
async fn retry_after_http_date_and_backoff_without_it() {
    let srv = Server::start_on(&loopbacks()[..2], |r| {
        match (r.host.as_str(), r.path.as_str()) {
            (_, "/robots.txt") => Resp::status(404),
            ("h1.test", "/first") => {
                let at = std::time::SystemTime::now() + Duration::from_secs(3);
                Resp::status(429).header("Retry-After", &httpdate::fmt_http_date(at))
            }
            ("h2.test", "/first") => Resp::status(503),
            _ => Resp::html("ok"),
        }
    })
    .await;
    let s = polite_settings(&[
        ("PAPERBOY__POLITENESS__DEFER_THRESHOLD_MS", "100"),
        ("PAPERBOY__POLITENESS__BACKOFF_BASE_MS", "1000"),
        ("PAPERBOY__POLITENESS__BACKOFF_MAX_MS", "8000"),
    ]);
    let f = PoliteFetcher::new(&s, None).unwrap();
    for h in ["h1.test", "h2.test"] {
        f.fetch(&url(&srv.url_for(h, "/first"))).await.unwrap();
    }
    // HTTP date ~3 s ahead (second resolution): deferred for 1-3 s.
    match f.fetch(&url(&srv.url_for("h1.test", "/next"))).await {
        Err(FetchError::Deferred { wait, .. }) => {
            assert!(
                wait >= Duration::from_millis(1000) && wait <= Duration::from_secs(3),
                "{wait:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    // 503 without Retry-After: first backoff step, base 1000 ms with jitter in [500, 1000].
    match f.fetch(&url(&srv.url_for("h2.test", "/next"))).await {
        Err(FetchError::Deferred { wait, .. }) => {
            assert!(
                wait >= Duration::from_millis(400) && wait <= Duration::from_millis(1000),
                "{wait:?}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn throttling_is_shared_between_workers_through_redis() {
    let Some(mut conn) = redis().await else {
        eprintln!("SKIPPED: Redis not reachable");
        return;
    };
    let prefix = redis_prefix("throttle");
    let _cleanup = RedisKeys(prefix.clone());
    let srv = Server::start_on(&loopbacks()[..1], |r| match r.path.as_str() {
        "/robots.txt" => Resp::status(404),
        _ => Resp::status(429).header("Retry-After", "3"),
    })
    .await;
    let s = polite_settings(&[
        ("PAPERBOY__POLITENESS__DEFER_THRESHOLD_MS", "500"),
        ("PAPERBOY__REDIS__KEY_PREFIX", &prefix),
    ]);
    let a = PoliteFetcher::new(&s, Some(redis().await.unwrap())).unwrap();
    let b = PoliteFetcher::new(&s, Some(redis().await.unwrap())).unwrap();
    let u = url(&srv.url_for("h1.test", "/a"));
    assert_eq!(a.fetch(&u).await.unwrap().status, 429);
    match b.fetch(&u).await {
        Err(FetchError::Deferred { wait, .. }) => {
            assert!(wait > Duration::from_millis(2500), "{wait:?}")
        }
        other => panic!("worker b must see worker a's block: {other:?}"),
    }
    assert_eq!(srv.requests().iter().filter(|r| r.path == "/a").count(), 1);
    redis_cleanup(&mut conn, &prefix).await;
}

#[tokio::test]
async fn robots_disallow_is_refused_without_fetching_the_page() {
    let srv = Server::start_on(
        &loopbacks()[..1],
        robots_ok("User-agent: *\nDisallow: /\n\nUser-agent: paperboy\nDisallow: /private\n"),
    )
    .await;
    let s = polite_settings(&[]);
    let f = PoliteFetcher::new(&s, None).unwrap();
    let err = f
        .fetch(&url(&srv.url_for("h1.test", "/private/a")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::RobotsDisallowed { .. }),
        "{err:?}"
    );
    assert_eq!(err.reason(), "robots");
    let page = f
        .fetch(&url(&srv.url_for("h1.test", "/public")))
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(srv.count("/private/a"), 0);
    assert_eq!(srv.count("/robots.txt"), 1, "cached per origin");
    // respect_robots = false: no robots.txt at all.
    let s = polite_settings(&[("PAPERBOY__POLITENESS__RESPECT_ROBOTS", "false")]);
    let f = PoliteFetcher::new(&s, None).unwrap();
    f.fetch(&url(&srv.url_for("h1.test", "/private/b")))
        .await
        .unwrap();
    assert_eq!(srv.count("/robots.txt"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_delay_is_honoured_and_capped() {
    let probe = NoiseProbe::start();
    let srv = Server::start_on(&loopbacks()[..2], |r| {
        match (r.host.as_str(), r.path.as_str()) {
            ("h1.test", "/robots.txt") => Resp::text("User-agent: *\nCrawl-delay: 0.4\n"),
            ("h2.test", "/robots.txt") => Resp::text("User-agent: *\nCrawl-delay: 30\n"),
            _ => Resp::html("ok"),
        }
    })
    .await;
    let s = polite_settings(&[
        ("PAPERBOY__POLITENESS__MIN_DELAY_MS", "100"),
        ("PAPERBOY__POLITENESS__MAX_CRAWL_DELAY_MS", "10000"),
    ]);
    let f = PoliteFetcher::new(&s, None).unwrap();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let f = f.clone();
        let u = url(&srv.url_for("h1.test", &format!("/{i}")));
        tasks.push(tokio::spawn(async move { f.fetch(&u).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let times = arrivals_by_host(&srv.requests())["h1.test"].clone();
    assert_eq!(times.len(), 4);
    let gaps: Vec<_> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        min_gap(&times) >= Duration::from_millis(400) - probe.slack(Duration::from_millis(400)),
        "{gaps:?}"
    );
    assert!(
        mean_gap(&times, probe.slack(Duration::from_millis(400))) >= Duration::from_millis(400),
        "{gaps:?}"
    );
    let err = f
        .fetch(&url(&srv.url_for("h2.test", "/x")))
        .await
        .unwrap_err();
    match &err {
        FetchError::CrawlDelayTooLong { host, delay } => {
            assert_eq!(host, "h2.test");
            assert_eq!(*delay, Duration::from_secs(30));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(err.reason(), "crawl_delay");
    assert_eq!(srv.count("/x"), 0);
}

#[tokio::test]
async fn robots_5xx_disallows_for_the_error_ttl_then_retries_and_4xx_allows() {
    let robots_hits = Arc::new(AtomicUsize::new(0));
    let rh = robots_hits.clone();
    let srv = Server::start_on(&loopbacks()[..2], move |r| {
        match (r.host.as_str(), r.path.as_str()) {
            ("h1.test", "/robots.txt") => {
                if rh.fetch_add(1, Ordering::SeqCst) == 0 {
                    Resp::status(500)
                } else {
                    Resp::text("User-agent: *\nAllow: /\n")
                }
            }
            ("h2.test", "/robots.txt") => Resp::status(404),
            _ => Resp::html("ok"),
        }
    })
    .await;
    let s = polite_settings(&[("PAPERBOY__POLITENESS__ROBOTS_ERROR_TTL_S", "1")]);
    let f = PoliteFetcher::new(&s, None).unwrap();
    let u = url(&srv.url_for("h1.test", "/a"));
    let err = f.fetch(&u).await.unwrap_err();
    assert!(
        matches!(err, FetchError::RobotsUnavailable { .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(err.reason(), "robots_unavailable");
    // Still cached as unavailable: no new robots.txt request.
    assert!(f.fetch(&u).await.is_err());
    assert_eq!(robots_hits.load(Ordering::SeqCst), 1);
    assert_eq!(srv.count("/a"), 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(f.fetch(&u).await.unwrap().status, 200);
    assert_eq!(robots_hits.load(Ordering::SeqCst), 2);
    // 404 robots.txt: everything allowed.
    assert_eq!(
        f.fetch(&url(&srv.url_for("h2.test", "/b")))
            .await
            .unwrap()
            .status,
        200
    );
}

#[tokio::test]
async fn robots_unreachable_is_unavailable_with_the_cause() {
    // Nothing listens on this port: the robots.txt fetch fails to connect.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = polite_settings(&[]);
    let f = PoliteFetcher::new(&s, None).unwrap();
    let err = f
        .fetch(&url(&format!("http://h1.test:{port}/a")))
        .await
        .unwrap_err();
    match &err {
        FetchError::RobotsUnavailable { detail, .. } => {
            assert!(detail.starts_with("connect"), "{detail}")
        }
        e => panic!("{e:?}"),
    }
    assert!(err.to_string().contains("connect"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_is_fetched_once_per_origin_by_three_workers_with_redis() {
    let Some(mut conn) = redis().await else {
        eprintln!("SKIPPED: Redis not reachable");
        return;
    };
    let prefix = redis_prefix("robots");
    let _cleanup = RedisKeys(prefix.clone());
    let srv = Server::start_on(&loopbacks()[..2], |r| {
        if r.path == "/robots.txt" {
            // Slow, so the workers really race for it.
            Resp::text("User-agent: *\nDisallow: /no\n").delay(Duration::from_millis(300))
        } else {
            Resp::html("ok")
        }
    })
    .await;
    let s = polite_settings(&[("PAPERBOY__REDIS__KEY_PREFIX", &prefix)]);
    let mut tasks = Vec::new();
    for w in 0..3 {
        let f = PoliteFetcher::new(&s, Some(redis().await.unwrap())).unwrap();
        for h in ["h1.test", "h2.test"] {
            for p in ["/yes", "/no"] {
                let f = f.clone();
                let u = url(&srv.url_for(h, &format!("{p}/{w}")));
                tasks.push(tokio::spawn(async move { (u.clone(), f.fetch(&u).await) }));
            }
        }
    }
    for t in tasks {
        let (u, r) = t.await.unwrap();
        if u.path().starts_with("/no") {
            assert!(
                matches!(r, Err(FetchError::RobotsDisallowed { .. })),
                "{u}: {r:?}"
            );
        } else {
            assert_eq!(r.unwrap().status, 200, "{u}");
        }
    }
    let reqs = srv.requests();
    for h in ["h1.test", "h2.test"] {
        let n = reqs
            .iter()
            .filter(|r| r.host == h && r.path == "/robots.txt")
            .count();
        assert_eq!(n, 1, "{h}: robots.txt fetched {n} times");
    }
    // The shared entry is in Redis under {prefix}{o:<origin>}:robots (hash-tagged per origin).
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}{{o:*}}:robots"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    redis_cleanup(&mut conn, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_host_does_not_delay_a_fast_host() {
    let srv = Server::start_on(&loopbacks()[..2], |r| {
        match (r.host.as_str(), r.path.as_str()) {
            (_, "/robots.txt") => Resp::status(404),
            ("h1.test", _) => Resp::html("slow").delay(Duration::from_millis(1500)),
            _ => Resp::html("fast"),
        }
    })
    .await;
    let s = polite_settings(&[("PAPERBOY__POLITENESS__MIN_DELAY_MS", "100")]);
    let f = PoliteFetcher::new(&s, None).unwrap();
    let started = Instant::now();
    let mut slow = Vec::new();
    for i in 0..3 {
        slow.push(spawn_fetch(
            &f,
            url(&srv.url_for("h1.test", &format!("/{i}"))),
        ));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut fast = Vec::new();
    for i in 0..8 {
        fast.push(spawn_fetch(
            &f,
            url(&srv.url_for("h2.test", &format!("/{i}"))),
        ));
    }
    for t in fast {
        t.await.unwrap().unwrap();
    }
    let fast_done = started.elapsed();
    assert!(
        fast_done < Duration::from_millis(1400),
        "fast host took {fast_done:?}"
    );
    for t in slow {
        t.await.unwrap().unwrap();
    }
    // max_concurrent_per_host = 1: the slow host's requests ran one after the other.
    assert!(started.elapsed() >= Duration::from_millis(4400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_per_host_is_respected() {
    let srv = Server::start_on(&loopbacks()[..1], |r| match r.path.as_str() {
        "/robots.txt" => Resp::status(404),
        _ => Resp::html("ok").delay(Duration::from_millis(300)),
    })
    .await;
    let s = polite_settings(&[
        ("PAPERBOY__POLITENESS__MIN_DELAY_MS", "0"),
        ("PAPERBOY__POLITENESS__MAX_CONCURRENT_PER_HOST", "2"),
    ]);
    let f = PoliteFetcher::new(&s, None).unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        tasks.push(spawn_fetch(
            &f,
            url(&srv.url_for("h1.test", &format!("/{i}"))),
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let times = arrivals_by_host(&srv.requests())["h1.test"].clone();
    assert_eq!(times.len(), 6);
    // At most 2 in flight: request i+2 starts after request i finished (300 ms).
    for w in times.windows(3) {
        assert!(
            w[2] - w[0] >= Duration::from_millis(290),
            "{:?}",
            w[2] - w[0]
        );
    }
}

/// A deferral reserves nothing: asking again right away is told the same wait, not a later one.
async fn assert_deferrals_waste_no_slot(a: &PoliteFetcher, b: &PoliteFetcher, srv: &Server) {
    let u = |p: &str| url(&srv.url_for("h1.test", p));
    assert_eq!(a.fetch(&u("/1")).await.unwrap().status, 200);
    let mut waits = Vec::new();
    for (i, f) in [a, b, a, b].into_iter().enumerate() {
        match f.fetch(&u(&format!("/d{i}"))).await {
            Err(FetchError::Deferred { host, wait }) => {
                assert_eq!(host, "h1.test");
                waits.push(wait);
            }
            other => panic!("{other:?}"),
        }
    }
    for w in &waits {
        assert!(
            *w > Duration::from_millis(1500) && *w <= Duration::from_secs(2),
            "{waits:?}"
        );
    }
    // Not 2 s, 4 s, 6 s...: nothing was reserved by the deferrals.
    assert!(waits[3] <= waits[0], "{waits:?}");
    // Another host (its own, shorter interval from politeness.hosts) is not affected.
    let page = a.fetch(&url(&srv.url_for("h2.test", "/x"))).await.unwrap();
    assert_eq!(page.status, 200);
    let page = a.fetch(&url(&srv.url_for("h2.test", "/y"))).await.unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(
        srv.requests()
            .iter()
            .filter(|r| r.path.starts_with("/d"))
            .count(),
        0
    );
}

fn deferral_settings(prefix: &str) -> Settings {
    let mut s = polite_settings(&[
        ("PAPERBOY__POLITENESS__MIN_DELAY_MS", "2000"),
        ("PAPERBOY__POLITENESS__DEFER_THRESHOLD_MS", "500"),
        ("PAPERBOY__REDIS__KEY_PREFIX", prefix),
    ]);
    s.politeness.hosts.insert(
        "h2.test".into(),
        paperboy::config::HostOverride {
            min_delay_ms: Some(100),
            max_concurrent_per_host: None,
        },
    );
    s
}

#[tokio::test]
async fn deferrals_waste_no_slot_in_process() {
    let srv = Server::start_on(&loopbacks()[..2], robots_ok("")).await;
    let s = deferral_settings("unused:");
    let f = PoliteFetcher::new(&s, None).unwrap();
    assert_deferrals_waste_no_slot(&f, &f, &srv).await;
}

#[tokio::test]
async fn deferrals_waste_no_slot_in_redis() {
    let Some(mut conn) = redis().await else {
        eprintln!("SKIPPED: Redis not reachable");
        return;
    };
    let prefix = redis_prefix("defer");
    let _cleanup = RedisKeys(prefix.clone());
    let srv = Server::start_on(&loopbacks()[..2], robots_ok("")).await;
    let s = deferral_settings(&prefix);
    let a = PoliteFetcher::new(&s, Some(redis().await.unwrap())).unwrap();
    let b = PoliteFetcher::new(&s, Some(redis().await.unwrap())).unwrap();
    assert_deferrals_waste_no_slot(&a, &b, &srv).await;
    redis_cleanup(&mut conn, &prefix).await;
}

#[tokio::test]
async fn private_hosts_are_blocked_before_robots_or_page() {
    let srv = Server::start(|_| Resp::html("secret")).await;
    let mut s = polite_settings(&[("PAPERBOY__FETCH__ALLOW_PRIVATE_NETWORKS", "false")]);
    s.fetch
        .resolve
        .insert("meta.test".into(), "169.254.169.254".into());
    let f = PoliteFetcher::new(&s, None).unwrap();
    for u in [
        srv.url("/a"),
        "http://meta.test/latest/meta-data/".to_string(),
    ] {
        let err = f.fetch(&url(&u)).await.unwrap_err();
        assert!(matches!(err, FetchError::Blocked { .. }), "{u}: {err:?}");
    }
    assert_eq!(srv.requests().len(), 0);
}

#[tokio::test]
async fn redirect_targets_are_checked_against_their_robots_txt() {
    let srv = Server::start_on(&loopbacks()[..2], |r| {
        let port = r.local.port();
        match (r.host.as_str(), r.path.as_str()) {
            ("h1.test", "/robots.txt") => Resp::text("User-agent: *\nDisallow: /secret\n"),
            ("h2.test", "/robots.txt") => Resp::text("User-agent: paperboy\nDisallow: /private\n"),
            ("h1.test", "/to-h2-private") => {
                Resp::redirect(301, &format!("http://h2.test:{port}/private/page"))
            }
            ("h1.test", "/to-h2-public") => {
                Resp::redirect(301, &format!("http://h2.test:{port}/public"))
            }
            ("h1.test", "/to-secret") => Resp::redirect(302, "/secret/x"),
            _ => Resp::html("ok"),
        }
    })
    .await;
    let s = polite_settings(&[]);
    let f = PoliteFetcher::new(&s, None).unwrap();
    let err = f
        .fetch(&url(&srv.url_for("h1.test", "/to-h2-private")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::RobotsDisallowed { ref url } if url.contains("h2.test")),
        "{err:?}"
    );
    let err = f
        .fetch(&url(&srv.url_for("h1.test", "/to-secret")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::RobotsDisallowed { .. }),
        "{err:?}"
    );
    let page = f
        .fetch(&url(&srv.url_for("h1.test", "/to-h2-public")))
        .await
        .unwrap();
    assert_eq!(page.final_url.host_str(), Some("h2.test"));
    let reqs = srv.requests();
    assert!(!reqs
        .iter()
        .any(|r| r.path.starts_with("/private") || r.path.starts_with("/secret")));
    assert_eq!(
        reqs.iter().filter(|r| r.path == "/robots.txt").count(),
        2,
        "one robots.txt per origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_hops_take_their_hosts_slots() {
    // A redirector on h1 sends every request to h2, and h2 redirects /same to /landing on itself:
    // every request that reaches a host must keep that host's interval, whichever hop made it.
    let probe = NoiseProbe::start();
    let srv = Server::start_on(&loopbacks()[..2], |r| {
        let port = r.local.port();
        match (r.host.as_str(), r.path.as_str()) {
            (_, "/robots.txt") => Resp::status(404),
            ("h1.test", p) if p.starts_with("/go/") => {
                Resp::redirect(302, &format!("http://h2.test:{port}/story{}", &p[3..]))
            }
            ("h2.test", p) if p.starts_with("/same/") => {
                Resp::redirect(301, &format!("/landing{}", &p[5..]))
            }
            _ => Resp::html("ok"),
        }
    })
    .await;
    let s = polite_settings(&[("PAPERBOY__POLITENESS__MIN_DELAY_MS", "300")]);
    let f = PoliteFetcher::new(&s, None).unwrap();
    let mut tasks = Vec::new();
    for i in 0..3 {
        tasks.push(spawn_fetch(
            &f,
            url(&srv.url_for("h1.test", &format!("/go/{i}"))),
        ));
        tasks.push(spawn_fetch(
            &f,
            url(&srv.url_for("h2.test", &format!("/same/{i}"))),
        ));
        tasks.push(spawn_fetch(
            &f,
            url(&srv.url_for("h2.test", &format!("/direct/{i}"))),
        ));
    }
    for t in tasks {
        let page = t.await.unwrap().expect("fetch");
        assert_eq!(page.final_url.host_str(), Some("h2.test"));
        assert_eq!(page.status, 200);
    }
    let by_host = arrivals_by_host(&srv.requests());
    let h2 = &by_host["h2.test"];
    // 3 redirected from h1, 3 /same plus their 3 /landing hops, 3 direct.
    assert_eq!(h2.len(), 12, "requests reaching h2");
    let slack = probe.slack(Duration::from_millis(300));
    for (h, times) in &by_host {
        assert!(
            min_gap(times) >= Duration::from_millis(300) - slack,
            "{h}: two requests {:?} apart (slack {slack:?})",
            min_gap(times)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_per_host_holds_across_workers_with_redis() {
    let Some(mut conn) = redis().await else {
        eprintln!("SKIPPED: Redis not reachable");
        return;
    };
    let prefix = redis_prefix("inflight");
    let _cleanup = RedisKeys(prefix.clone());
    let srv = Server::start_on(&loopbacks()[..1], |r| match r.path.as_str() {
        "/robots.txt" => Resp::status(404),
        _ => Resp::html("ok").delay(Duration::from_millis(300)),
    })
    .await;
    let s = polite_settings(&[
        ("PAPERBOY__POLITENESS__MIN_DELAY_MS", "0"),
        ("PAPERBOY__POLITENESS__MAX_CONCURRENT_PER_HOST", "1"),
        ("PAPERBOY__REDIS__KEY_PREFIX", &prefix),
    ]);
    let mut tasks = Vec::new();
    for w in 0..3 {
        let f = PoliteFetcher::new(&s, Some(redis().await.unwrap())).unwrap();
        for i in 0..2 {
            tasks.push(spawn_fetch(
                &f,
                url(&srv.url_for("h1.test", &format!("/{w}/{i}"))),
            ));
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let times = arrivals_by_host(&srv.requests())["h1.test"].clone();
    assert_eq!(times.len(), 6);
    // One in flight across the three workers: each request starts after the previous one's 300 ms.
    assert!(
        min_gap(&times) >= Duration::from_millis(290),
        "{:?}",
        min_gap(&times)
    );
    // Leases are given back.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let n: i64 = ::redis::cmd("ZCARD")
        .arg(format!("{prefix}{{h:h1.test}}:inflight"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 0);
    redis_cleanup(&mut conn, &prefix).await;
}
