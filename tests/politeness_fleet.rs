//! Politeness across a fleet: 3 `paperboy work` processes sharing Redis keep each host's interval as one
//! worker would, without over-throttling; robots.txt is fetched once per origin for the whole fleet.

mod common;

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{article_html, cleanup_redis, FixtureServer, Route, TestBroker};

const HOSTS: usize = 4;
const PER_HOST: usize = 20;
const INTERVAL_MS: u64 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_keep_the_per_host_interval_together() {
    let mut sites = Vec::new();
    for h in 0..HOSTS {
        let mut routes = HashMap::new();
        for i in 0..PER_HOST {
            routes.insert(format!("/p/{i}"), Route::html(article_html(h * 1000 + i)));
        }
        routes.insert(
            "/robots.txt".into(),
            Route::new(200, "text/plain", b"User-agent: *\nAllow: /\n".to_vec()),
        );
        sites.push(FixtureServer::start_on(&format!("127.0.0.{}", h + 2), routes).await);
    }
    let redis = common::redis_url();
    let interval = INTERVAL_MS.to_string();
    let broker = TestBroker::with_env(
        "fleet",
        &[
            ("PAPERBOY__REDIS__URL", redis.as_str()),
            ("PAPERBOY__DEDUP__STORE", "redis"),
            ("PAPERBOY__POLITENESS__MIN_DELAY_MS", interval.as_str()),
            ("PAPERBOY__POLITENESS__MAX_CONCURRENT_PER_HOST", "1"),
            ("PAPERBOY__POLITENESS__DEFER_THRESHOLD_MS", "30000"),
            ("PAPERBOY__WORKER__CONCURRENCY", "32"),
        ],
    );
    broker.declare().await;
    let mut workers: Vec<Child> = (0..3)
        .map(|_| common::spawn_worker_process(&broker.env))
        .collect();
    // Let the workers connect, so the jobs spread over all three.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    for i in 0..PER_HOST {
        for (h, site) in sites.iter().enumerate() {
            broker
                .publish_job(&site.url(&format!("/p/{i}")), &format!("h{h}-{i}"))
                .await;
        }
    }
    let out = broker
        .outputs(HOSTS * PER_HOST, Duration::from_secs(60))
        .await;
    let run = started.elapsed();
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    assert_eq!(out.len(), HOSTS * PER_HOST, "not every job finished");
    assert!(
        out.iter().all(|m| m.routing_key.starts_with("article.")),
        "all pages are articles"
    );

    let ideal = Duration::from_millis(INTERVAL_MS * (PER_HOST as u64 - 1));
    // The limiter spaces request *starts* (on Redis' clock); the server sees arrivals, which also carry
    // each request's own send path (a new connection vs a pooled one, a worker thread waking late on a
    // loaded machine): arrivals 300 ms apart at the worker were seen 293 ms apart here under load 7.
    // 20 ms of that jitter is allowed; a real breach (two workers in one slot) shows as a gap near 0.
    let tolerance = Duration::from_millis(20);
    let mut worst_gap = Duration::MAX;
    let mut span = Duration::ZERO;
    for site in &sites {
        assert_eq!(
            site.hits_for("/robots.txt"),
            1,
            "robots.txt must be fetched once per origin for the fleet"
        );
        let times = site.arrivals(&["/p/"]);
        assert_eq!(times.len(), PER_HOST, "each page fetched once");
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            worst_gap = worst_gap.min(gap);
            assert!(
                gap + tolerance >= Duration::from_millis(INTERVAL_MS),
                "same-host gap {gap:?} < {INTERVAL_MS} ms"
            );
        }
        span = span.max(times[PER_HOST - 1] - times[0]);
    }
    println!("fleet: smallest same-host gap {worst_gap:?}, longest host span {span:?} (ideal {ideal:?}), whole run {run:?}");
    assert!(
        span.as_secs_f64() <= ideal.as_secs_f64() * 1.3,
        "over-throttled: {span:?} vs ideal {ideal:?}"
    );
    broker.cleanup().await;
    cleanup_redis(&broker.prefix).await;
}
