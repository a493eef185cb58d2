//! Fail closed: a `paperboy work` process on a private redis-server that the test kills mid-run. With
//! `politeness.redis_failure = "defer"` (the default) no page is fetched while the fleet-wide limiter is
//! gone, the jobs go through the retry tiers and all end as articles once Redis is back, each page fetched
//! once; `/readyz` is 503 while Redis is down and the fallbacks are counted in
//! `paperboy_redis_limiter_errors_total{action="deferred"}`. With `"local"` the worker keeps fetching on
//! its own limits, counted as `action="local"`. With the shared dedup store on the same Redis the
//! URL check runs inside the acquire script; killing Redis then fails that combined call closed too.

mod common;
mod private_services;

use std::time::{Duration, Instant};

use common::{article_routes, wait_for, FixtureServer, TestBroker};
use private_services::{free_port, RedisServer};

const PAGES: usize = 30;
const INTERVAL_MS: u64 = 200;

async fn get(url: &str) -> Option<(u16, String)> {
    let r = reqwest::get(url).await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

/// The value of one sample line of `/metrics` (0 when absent).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Page requests (`/p/…`) the site saw at or after `since`.
fn pages_since(site: &FixtureServer, since: Instant) -> usize {
    site.hits
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, t)| p.starts_with("/p/") && *t >= since)
        .count()
}

struct Run {
    site: FixtureServer,
    redis: RedisServer,
    broker: TestBroker,
    worker: std::process::Child,
    base: String,
}

async fn start(test: &str, mode: &str, extra: &[(&str, &str)]) -> Run {
    let site = FixtureServer::start(article_routes(PAGES, Duration::ZERO)).await;
    let redis = RedisServer::start();
    let listen = format!("127.0.0.1:{}", free_port());
    let url = redis.url();
    let interval = INTERVAL_MS.to_string();
    let mut env = vec![
        ("PAPERBOY__REDIS__URL", url.as_str()),
        ("PAPERBOY__POLITENESS__REDIS_FAILURE", mode),
        ("PAPERBOY__POLITENESS__MIN_DELAY_MS", interval.as_str()),
        ("PAPERBOY__POLITENESS__MAX_CONCURRENT_PER_HOST", "1"),
        ("PAPERBOY__POLITENESS__DEFER_THRESHOLD_MS", "30000"),
        ("PAPERBOY__POLITENESS__RESPECT_ROBOTS", "false"),
        // Enough retry time to outlast the outage: 1 + 2 + 4 + 4 + 4 s.
        ("PAPERBOY__RETRY__TIERS_MS", "1000,2000,4000"),
        ("PAPERBOY__RETRY__MAX_ATTEMPTS", "6"),
        ("PAPERBOY__METRICS__LISTEN", listen.as_str()),
    ];
    env.extend_from_slice(extra);
    let broker = TestBroker::with_env(test, &env);
    broker.declare().await;
    let worker = common::spawn_worker_process(&broker.env);
    let base = format!("http://{listen}");
    assert!(
        wait_for(Duration::from_secs(20), || async {
            matches!(get(&format!("{base}/readyz")).await, Some((200, _)))
        })
        .await,
        "worker never became ready"
    );
    for i in 0..PAGES {
        broker
            .publish_job(&site.url(&format!("/p/{i}")), &format!("{test}-{i}"))
            .await;
    }
    // Let a few pages through with Redis up.
    assert!(
        wait_for(Duration::from_secs(20), || async {
            site.hits_for_prefix("/p/") >= 5
        })
        .await,
        "no pages fetched with Redis up"
    );
    Run {
        site,
        redis,
        broker,
        worker,
        base,
    }
}

/// Kill the run's Redis and wait until `/readyz` says so (503). Returns the moment after which no page
/// may be fetched (a request whose slot was taken just before the kill may still arrive).
async fn kill_redis(run: &mut Run) -> Instant {
    run.redis.kill();
    let killed = Instant::now() + Duration::from_millis(100);
    assert!(
        wait_for(Duration::from_secs(10), || async {
            matches!(get(&format!("{}/readyz", run.base)).await, Some((503, _)))
        })
        .await,
        "/readyz did not turn 503 with Redis down"
    );
    killed
}

/// Every job finished, each as an article.
#[track_caller]
fn assert_all_articles(out: &[common::Message]) {
    assert_eq!(
        out.len(),
        PAGES,
        "not every job finished after Redis returned"
    );
    assert!(
        out.iter().all(|m| m.routing_key.starts_with("article.")),
        "every job ends as an article: {:?}",
        out.iter().map(|m| &m.routing_key).collect::<Vec<_>>()
    );
}

trait PrefixHits {
    fn hits_for_prefix(&self, prefix: &str) -> usize;
}

impl PrefixHits for FixtureServer {
    fn hits_for_prefix(&self, prefix: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_is_fetched_without_the_fleet_limiter_and_jobs_finish_after_redis_returns() {
    let mut run = start("failclosed", "defer", &[]).await;
    let killed = kill_redis(&mut run).await;
    let readyz = || async { get(&format!("{}/readyz", run.base)).await };
    let (_, body) = readyz().await.unwrap();
    assert!(body.contains("\"redis\""), "{body}");
    // Keep Redis down a while: jobs keep arriving (retries), none may be fetched.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = pages_since(&run.site, killed);
    let (status, _) = readyz().await.unwrap();
    let (_, metrics) = get(&format!("{}/metrics", run.base)).await.unwrap();
    let deferred = sample(
        &metrics,
        "paperboy_redis_limiter_errors_total{action=\"deferred\"}",
    );
    let local = sample(
        &metrics,
        "paperboy_redis_limiter_errors_total{action=\"local\"}",
    );
    let command_errors = sample(&metrics, "paperboy_redis_command_errors_total");
    let before = run.site.hits_for_prefix("/p/");
    run.redis.restart();
    let restarted = Instant::now();
    let out = run.broker.outputs(PAGES, Duration::from_secs(60)).await;
    let ready_again = wait_for(Duration::from_secs(20), || async {
        matches!(readyz().await, Some((200, _)))
    })
    .await;
    let _ = run.worker.kill();
    let _ = run.worker.wait();
    run.broker.cleanup().await;

    println!(
        "fail closed: {before} pages before/while down, {during} during the outage, {deferred} deferred, \
         {command_errors} failed commands, all {} jobs done {:.1} s after Redis returned",
        out.len(),
        restarted.elapsed().as_secs_f64()
    );
    assert_eq!(during, 0, "pages fetched while the fleet limiter was down");
    assert_eq!(status, 503, "/readyz must stay 503 while Redis is down");
    assert!(deferred >= 1.0, "deferrals not counted:\n{metrics}");
    assert_eq!(local, 0.0, "no local fallback under defer");
    assert!(command_errors >= 1.0, "{metrics}");
    assert_all_articles(&out);
    for i in 0..PAGES {
        assert_eq!(
            run.site.hits_for(&format!("/p/{i}")),
            1,
            "/p/{i} fetched once"
        );
    }
    assert!(
        ready_again,
        "/readyz did not return to 200 after Redis came back"
    );
    // The interval held throughout (before and after the outage).
    let times = run.site.arrivals(&["/p/"]);
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap + Duration::from_millis(20) >= Duration::from_millis(INTERVAL_MS),
            "same-host gap {gap:?} < {INTERVAL_MS} ms"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_keeps_fetching_on_the_workers_own_limits_and_counts_it() {
    let mut run = start("faillocal", "local", &[]).await;
    run.redis.kill();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = pages_since(&run.site, killed);
    let (status, _) = get(&format!("{}/readyz", run.base)).await.unwrap();
    let (_, metrics) = get(&format!("{}/metrics", run.base)).await.unwrap();
    run.redis.restart();
    let out = run.broker.outputs(PAGES, Duration::from_secs(60)).await;
    let _ = run.worker.kill();
    let _ = run.worker.wait();
    run.broker.cleanup().await;
    println!("local: {during} pages fetched in 3 s without Redis");
    assert!(during >= 1, "local mode fetches on: {during}");
    assert_eq!(status, 503, "/readyz reports Redis even in local mode");
    assert!(
        sample(
            &metrics,
            "paperboy_redis_limiter_errors_total{action=\"local\"}"
        ) >= 1.0,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "paperboy_redis_limiter_errors_total{action=\"deferred\"}"
        ),
        0.0
    );
    assert_eq!(out.len(), PAGES);
}

/// The shared dedup store on the same Redis: each job's URL-seen check and validators lookup run inside
/// the host's acquire script (one combined call). Redis killed mid-run: the combined call fails, so no
/// page is fetched while Redis is down (a URL whose state is unknown is not fetched), the jobs are
/// retried, and every one ends as exactly one article once Redis is back. Redis keeps nothing on disk,
/// so the one job that may have been in flight at the kill (one request per host at a time) is fetched
/// again: its content check failed before it could publish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn combined_url_check_and_acquire_fail_closed_when_redis_dies() {
    let mut run = start(
        "failcombined",
        "defer",
        &[
            ("PAPERBOY__DEDUP__STORE", "redis"),
            ("PAPERBOY__DEDUP__NEAR_DISTANCE", "0"),
        ],
    )
    .await;
    let killed = kill_redis(&mut run).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = pages_since(&run.site, killed);
    let (_, metrics) = get(&format!("{}/metrics", run.base)).await.unwrap();
    let command_errors = sample(&metrics, "paperboy_redis_command_errors_total");
    run.redis.restart();
    let out = run.broker.outputs(PAGES, Duration::from_secs(60)).await;
    // Nothing more arrives: each job ended once.
    let late = run.broker.outputs(1, Duration::from_secs(2)).await;
    let _ = run.worker.kill();
    let _ = run.worker.wait();
    run.broker.cleanup().await;
    let twice = (0..PAGES)
        .filter(|i| run.site.hits_for(&format!("/p/{i}")) == 2)
        .count();
    println!(
        "combined call, Redis killed: {during} pages fetched during the outage, {command_errors} failed commands, {} jobs done, {twice} page(s) fetched twice",
        out.len()
    );
    assert_eq!(during, 0, "pages fetched while Redis was down");
    assert!(command_errors >= 1.0, "{metrics}");
    assert_all_articles(&out);
    assert!(
        late.is_empty(),
        "a job ended twice: {:?}",
        late.iter().map(|m| &m.routing_key).collect::<Vec<_>>()
    );
    let mut ids: Vec<String> = out
        .iter()
        .map(|m| m.body["job_id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), PAGES, "one article per job");
    for i in 0..PAGES {
        let hits = run.site.hits_for(&format!("/p/{i}"));
        assert!((1..=2).contains(&hits), "/p/{i} fetched {hits} times");
    }
    assert!(
        twice <= 1,
        "{twice} pages fetched twice (at most the one in flight at the kill)"
    );
}

/// Commands fail at once while Redis is gone (a reconnect is one attempt, not minutes of backoff that
/// every command would wait for), and work again as soon as it is back.
#[tokio::test]
async fn commands_fail_at_once_while_redis_is_down_and_work_again_after() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let s = TestBroker::with_env("probe", &[("PAPERBOY__REDIS__URL", url.as_str())]).settings;
    let mut c = paperboy::redis_conn::connect(&s).await.unwrap().unwrap();
    redis.kill();
    for _ in 0..5 {
        let t = Instant::now();
        let r: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut c).await;
        assert!(r.is_err());
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
    assert!(c.health().degraded() && c.health().command_errors() == 5);
    redis.restart();
    let r: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
    assert_eq!(r, "PONG");
}
