//! Redis Cluster (`redis.mode = "cluster"`): a 3-master cluster started here (redis-server
//! --cluster-enabled on free loopback ports, `redis-cli --cluster create`), 3 `paperboy work` processes
//! on it. The fleet keeps each host's interval as one worker would, robots.txt is fetched once per
//! origin, and exact duplicates are found across workers; no job fails on CROSSSLOT or MOVED. Prints the
//! Redis commands per job (INFO commandstats summed over the masters).

mod common;
mod private_services;

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{article_html, FixtureServer, Route, TestBroker};
use private_services::RedisCluster;

const HOSTS: usize = 4;
const PER_HOST: usize = 10;
const COPIES: usize = 6;
const INTERVAL_MS: u64 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_on_a_redis_cluster_keep_politeness_and_find_duplicates() {
    let cluster = RedisCluster::start(3);
    let mut sites = Vec::new();
    for h in 0..HOSTS {
        let mut routes = HashMap::new();
        for i in 0..PER_HOST {
            routes.insert(format!("/p/{i}"), Route::html(article_html(h * 1000 + i)));
        }
        // The same text under several URLs (and hosts): one article, the rest exact duplicates.
        for c in 0..COPIES {
            routes.insert(format!("/same/{c}"), Route::html(article_html(999_999)));
        }
        routes.insert(
            "/robots.txt".into(),
            Route::new(200, "text/plain", b"User-agent: *\nAllow: /\n".to_vec()),
        );
        sites.push(FixtureServer::start_on(&format!("127.0.0.{}", h + 2), routes).await);
    }
    let seeds = cluster.seeds();
    let interval = INTERVAL_MS.to_string();
    let broker = TestBroker::with_env(
        "cluster",
        &[
            ("PAPERBOY__REDIS__MODE", "cluster"),
            ("PAPERBOY__REDIS__URL", seeds.as_str()),
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
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = cluster.command_calls();
    let started = Instant::now();
    let mut jobs = 0;
    for i in 0..PER_HOST {
        for (h, site) in sites.iter().enumerate() {
            broker
                .publish_job(&site.url(&format!("/p/{i}")), &format!("h{h}-{i}"))
                .await;
            jobs += 1;
        }
    }
    for c in 0..COPIES {
        let site = &sites[c % HOSTS];
        broker
            .publish_job(&site.url(&format!("/same/{c}")), &format!("same-{c}"))
            .await;
        jobs += 1;
    }
    let out = broker.outputs(jobs, Duration::from_secs(90)).await;
    let run = started.elapsed();
    let after = cluster.command_calls();
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    broker.cleanup().await;
    let mut delta: Vec<(String, u64)> = after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(k, v)| {
            *v > 0
                && !matches!(
                    k.as_str(),
                    "info"
                        | "cluster|info"
                        | "cluster|slots"
                        | "cluster|shards"
                        | "cluster|nodes"
                        | "ping"
                )
        })
        .collect();
    delta.sort_by_key(|d| std::cmp::Reverse(d.1));
    let total: u64 = delta.iter().map(|(_, v)| v).sum();
    println!(
        "cluster: {jobs} jobs in {run:?}; Redis commands per job {:.2} ({delta:?})",
        total as f64 / jobs as f64
    );

    let keys: Vec<&str> = out.iter().map(|m| m.routing_key.as_str()).collect();
    assert_eq!(out.len(), jobs, "not every job finished: {keys:?}");
    let articles = keys.iter().filter(|k| k.starts_with("article.")).count();
    let duplicates = keys
        .iter()
        .filter(|k| k.starts_with("outcome.duplicate"))
        .count();
    assert_eq!(
        (articles, duplicates),
        (HOSTS * PER_HOST + 1, COPIES - 1),
        "one article per distinct text, the copies duplicates: {keys:?}"
    );
    let tolerance = Duration::from_millis(20);
    for site in &sites {
        assert_eq!(
            site.hits_for("/robots.txt"),
            1,
            "robots.txt once per origin for the fleet"
        );
        let times = site.arrivals(&["/p/", "/same/"]);
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap + tolerance >= Duration::from_millis(INTERVAL_MS),
                "same-host gap {gap:?} < {INTERVAL_MS} ms"
            );
        }
    }
}
