//! Host-partitioned job shards (`amqp.shards`) on the real broker, through its consistent-hash exchange
//! plugin (enabled by the tests themselves, as by `.ci/run`): the jobs of one host always land on one shard queue, and a single-host
//! burst taken from a shard waits in the workers for the host's turn instead of bouncing through the
//! deferral queues.

mod common;
mod private_services;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Child;
use std::time::Duration;

use common::{article_routes, cleanup_redis, wait_for, FixtureServer, TestBroker};
use private_services::{free_port, get};

/// Enable the broker's consistent-hash exchange plugin (idempotent; a no-op when it is on).
fn consistent_hash_plugin() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let out = std::process::Command::new("rabbitmq-plugins")
            .args(["enable", "rabbitmq_consistent_hash_exchange"])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "rabbitmq-plugins enable failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("rabbitmq-plugins not runnable: {e}"),
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_of_one_host_always_land_on_one_shard() {
    consistent_hash_plugin();
    let broker = TestBroker::with_env("shard-route", &[("PAPERBOY__AMQP__SHARDS", "4")]);
    let hosts = 24;
    let per_host = 5;
    let urls: Vec<String> = (0..per_host)
        .flat_map(|i| (0..hosts).map(move |h| format!("http://Host{h}.test/p/{i}?n={h}-{i}")))
        .collect();
    let mut err = Vec::new();
    let report = paperboy::commands::submit(&broker.settings, None, &urls, None, &mut err)
        .await
        .expect("submit");
    assert_eq!(
        report.confirmed,
        urls.len(),
        "{}",
        String::from_utf8_lossy(&err)
    );
    assert_eq!(broker.queue_len(&broker.settings.amqp.jobs_queue).await, 0);

    let topology = broker.topology();
    let mut shards_of: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    let mut taken = 0;
    for i in 0..4 {
        let q = topology.shard_queue(i);
        let n = broker.queue_len(&q).await as usize;
        for m in broker.take(&q, n, Duration::from_secs(10)).await {
            let url = m.body["url"].as_str().unwrap().to_string();
            let host = url::Url::parse(&url)
                .unwrap()
                .host_str()
                .unwrap()
                .to_string();
            shards_of.entry(host).or_default().insert(i);
            taken += 1;
        }
    }
    broker.cleanup().await;
    assert_eq!(taken, urls.len(), "every job is in some shard queue");
    assert_eq!(shards_of.len(), hosts);
    for (host, shards) in &shards_of {
        assert_eq!(shards.len(), 1, "{host}'s jobs went to shards {shards:?}");
    }
    let used: BTreeSet<u16> = shards_of.values().flatten().copied().collect();
    assert!(used.len() >= 3, "24 hosts spread over the shards: {used:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_host_burst_from_a_shard_waits_in_the_workers_instead_of_being_republished() {
    consistent_hash_plugin();
    const JOBS: usize = 1000;
    const INTERVAL_MS: u64 = 20;
    let site = FixtureServer::start(article_routes(JOBS, Duration::ZERO)).await;
    let redis = common::redis_url();
    let interval = INTERVAL_MS.to_string();
    // 2 workers x 8 jobs at once: 16 of the host's jobs are held at a time, the last one 320 ms from its
    // slot, over the 100 ms deferral threshold. Taken from the plain queue every one of those would be
    // deferred, again and again; from a shard they wait (shard_hold_ms).
    let broker = TestBroker::with_env(
        "shard-burst",
        &[
            ("PAPERBOY__AMQP__SHARDS", "2"),
            ("PAPERBOY__REDIS__URL", redis.as_str()),
            ("PAPERBOY__POLITENESS__MIN_DELAY_MS", interval.as_str()),
            ("PAPERBOY__POLITENESS__MAX_CONCURRENT_PER_HOST", "1"),
            ("PAPERBOY__POLITENESS__DEFER_THRESHOLD_MS", "100"),
            ("PAPERBOY__POLITENESS__SHARD_HOLD_MS", "20000"),
            ("PAPERBOY__WORKER__CONCURRENCY", "8"),
            ("PAPERBOY__WORKER__JOB_TIMEOUT_MS", "60000"),
        ],
    );
    broker.declare().await;
    let listens: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let mut workers: Vec<Child> = listens
        .iter()
        .map(|l| {
            let mut env = broker.env.clone();
            env.push(("PAPERBOY__METRICS__LISTEN".into(), l.clone()));
            common::spawn_worker_process(&env)
        })
        .collect();
    for l in &listens {
        let ready = wait_for(Duration::from_secs(20), || async {
            get(&format!("http://{l}/readyz"))
                .await
                .is_some_and(|(s, _)| s == 200)
        })
        .await;
        assert!(ready, "worker on {l} not ready");
    }
    let urls: Vec<String> = (0..JOBS).map(|i| site.url(&format!("/p/{i}"))).collect();
    let mut err = Vec::new();
    let report = paperboy::commands::submit(&broker.settings, None, &urls, None, &mut err)
        .await
        .expect("submit");
    assert_eq!(report.confirmed, JOBS);

    let out = broker.outputs(JOBS, Duration::from_secs(120)).await;
    let mut deferrals = 0u64;
    for l in &listens {
        let (_, metrics) = get(&format!("http://{l}/metrics")).await.expect("metrics");
        deferrals += metrics
            .lines()
            .filter(|l| l.starts_with("paperboy_host_deferrals_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64;
    }
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    let arrivals = site.arrivals(&["/p/"]);
    broker.cleanup().await;
    cleanup_redis(&broker.prefix).await;

    println!(
        "{JOBS} jobs for one host from 2 shards: {deferrals} deferrals ({:.3} per job)",
        deferrals as f64 / JOBS as f64
    );
    assert_eq!(out.len(), JOBS, "every job ends");
    assert!(out.iter().all(|m| m.routing_key.starts_with("article.")));
    assert!(
        deferrals <= JOBS as u64 / 10,
        "{deferrals} deferrals for {JOBS} jobs: the burst bounced through the delay queues"
    );
    // Still polite: the requests span at least the host's intervals (starts are spaced on Redis' clock;
    // the server sees arrivals, so a little jitter at both ends is allowed).
    let span = *arrivals.last().unwrap() - arrivals[0];
    let ideal = Duration::from_millis(INTERVAL_MS * (JOBS as u64 - 1));
    assert!(
        span + Duration::from_millis(50) >= ideal,
        "{JOBS} requests in {span:?}, under the {ideal:?} the interval allows"
    );
}
