//! Chaos: 2,000 jobs, 3 worker processes sharing Redis, a worker killed with SIGKILL every few seconds
//! and restarted, all broker connections closed once. At the end every job has exactly one final outcome
//! (repeats only with the same message_id), the jobs and retry queues are empty, and the dead-letter
//! queue holds exactly the jobs designed to fail.
//!
//! It closes every broker connection, so it is the only test of its binary. Bounded to a few minutes.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{article_html, cleanup_redis, FixtureServer, Route, TestBroker};
use lapin::options::BasicGetOptions;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Fast,
    Slow,
    NotFound,
    ServerError,
    Flaky,
    DupA,
    DupB,
}

/// Take what is in `queue` now, tolerating connection drops (returns what it got).
async fn drain(queue: &str, max: usize) -> Vec<common::Message> {
    let mut out = Vec::new();
    let Ok(conn) = lapin::Connection::connect(&common::amqp_url(), Default::default()).await else {
        return out;
    };
    let Ok(ch) = conn.create_channel().await else {
        return out;
    };
    while out.len() < max {
        match ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
        {
            Ok(Some(m)) => out.push(common::Message {
                routing_key: m.delivery.routing_key.as_str().to_string(),
                body: serde_json::from_slice(&m.delivery.data).unwrap_or_default(),
                raw: m.delivery.data.clone(),
                properties: m.delivery.properties.clone(),
            }),
            _ => break,
        }
    }
    let _ = conn.close(200, "bye".into()).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_every_job_gets_exactly_one_outcome() {
    // --- the site -------------------------------------------------------------------------------------
    let plan: Vec<(Kind, usize)> = vec![
        (Kind::Fast, 1200),
        (Kind::Slow, 200),
        (Kind::NotFound, 150),
        (Kind::ServerError, 100),
        (Kind::Flaky, 150),
        (Kind::DupA, 100),
        (Kind::DupB, 100),
    ];
    let mut routes = HashMap::new();
    let mut kind_of: HashMap<String, Kind> = HashMap::new();
    let mut page = 0usize;
    for (kind, n) in &plan {
        for i in 0..*n {
            let path = format!("/{kind:?}/{i}").to_lowercase();
            let route = match kind {
                Kind::Fast => {
                    let mut r = Route::html(article_html(page));
                    r.delay = Duration::from_millis(60);
                    r
                }
                Kind::Slow => {
                    let mut r = Route::html(article_html(page));
                    r.delay = Duration::from_millis(300);
                    r
                }
                Kind::NotFound => {
                    Route::new(404, "text/html", b"<html><body>gone</body></html>".to_vec())
                }
                Kind::ServerError => {
                    Route::new(500, "text/html", b"<html><body>boom</body></html>".to_vec())
                }
                Kind::Flaky => {
                    let mut r = Route::html(article_html(page));
                    r.fail_first = 1;
                    r
                }
                // DupA i and DupB i serve the same story.
                Kind::DupA | Kind::DupB => Route::html(article_html(1_000_000 + i)),
            };
            page += 1;
            routes.insert(path.clone(), route);
            kind_of.insert(path, *kind);
        }
    }
    let site = FixtureServer::start(routes).await;
    let url_kind: HashMap<String, Kind> = kind_of.iter().map(|(p, k)| (site.url(p), *k)).collect();
    let total = url_kind.len();
    assert_eq!(total, 2000);

    // --- the fleet ------------------------------------------------------------------------------------
    let redis = common::redis_url();
    let broker = TestBroker::with_env(
        "chaos",
        &[
            ("PAPERBOY__REDIS__URL", redis.as_str()),
            ("PAPERBOY__DEDUP__STORE", "redis"),
            ("PAPERBOY__WORKER__CONCURRENCY", "6"),
            ("PAPERBOY__POLITENESS__MAX_CONCURRENT_PER_HOST", "16"),
            ("PAPERBOY__POLITENESS__RESPECT_ROBOTS", "false"),
            ("PAPERBOY__RETRY__TIERS_MS", "200,400"),
            ("PAPERBOY__RETRY__MAX_ATTEMPTS", "3"),
            ("PAPERBOY__AMQP__DELIVERY_LIMIT", "20"),
        ],
    );
    broker.declare().await;
    let env = broker.env.clone();
    let started = Instant::now();
    let mut workers: Vec<Child> = (0..3).map(|_| common::spawn_worker_process(&env)).collect();

    // --- submit everything with the CLI ------------------------------------------------------------------
    let list = tempfile::NamedTempFile::new().unwrap();
    let mut urls: Vec<&String> = url_kind.keys().collect();
    urls.sort();
    std::fs::write(
        list.path(),
        urls.iter().map(|u| format!("{u}\n")).collect::<String>(),
    )
    .unwrap();
    let (env2, path) = (env.clone(), list.path().to_path_buf());
    let submit = tokio::task::spawn_blocking(move || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_paperboy"));
        for (k, v) in &env2 {
            c.env(k, v);
        }
        c.args(["submit", "--file"]).arg(&path).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        String::from_utf8_lossy(&submit.stdout).contains("2000 jobs confirmed"),
        "{}",
        String::from_utf8_lossy(&submit.stderr)
    );

    // --- chaos while collecting ----------------------------------------------------------------------
    let mut by_url: HashMap<String, Vec<(String, String)>> = HashMap::new(); // url -> [(routing key, message id)]
    let mut kills = 0;
    let mut closed = false;
    let mut last_kill = Instant::now() - Duration::from_secs(1);
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while by_url.len() < total && Instant::now() < deadline {
        for m in drain(&broker.settings.amqp.output_queue, 5000).await {
            let url = m.body["url"].as_str().unwrap_or_default().to_string();
            by_url
                .entry(url)
                .or_default()
                .push((m.routing_key.clone(), m.message_id()));
        }
        if last_kill.elapsed() > Duration::from_secs(2) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed % 3) as usize;
            let _ = workers[i].kill(); // SIGKILL
            let _ = workers[i].wait();
            workers[i] = common::spawn_worker_process(&env);
            kills += 1;
            last_kill = Instant::now();
        }
        if !closed && by_url.len() > total / 3 {
            let st = Command::new("rabbitmqctl")
                .args(["close_all_connections", "chaos test"])
                .output()
                .unwrap();
            assert!(st.status.success());
            closed = true;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let elapsed = started.elapsed();
    // Let stragglers (repeats of already-counted jobs) arrive, then stop the fleet.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for m in drain(&broker.settings.amqp.output_queue, 5000).await {
        let url = m.body["url"].as_str().unwrap_or_default().to_string();
        by_url
            .entry(url)
            .or_default()
            .push((m.routing_key.clone(), m.message_id()));
    }
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }

    // --- verdict ---------------------------------------------------------------------------------------
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut repeats = 0;
    for (url, msgs) in &by_url {
        let ids: HashSet<&String> = msgs.iter().map(|(_, id)| id).collect();
        assert_eq!(ids.len(), 1, "{url} got different outcomes: {msgs:?}");
        repeats += msgs.len() - 1;
        let key = msgs[0].0.split('.').take(2).collect::<Vec<_>>().join(".");
        let key = if key.starts_with("outcome.failed") {
            msgs[0].0.clone()
        } else {
            key
        };
        *counts.entry(key).or_default() += 1;
        let kind = url_kind[url];
        let rk = &msgs[0].0;
        match kind {
            Kind::Fast | Kind::Slow | Kind::Flaky => {
                assert!(rk.starts_with("article."), "{url}: {rk}")
            }
            Kind::NotFound => assert_eq!(rk, "outcome.failed.http_404"),
            Kind::ServerError => assert_eq!(rk, "outcome.failed.http_500"),
            Kind::DupA | Kind::DupB => assert!(
                rk.starts_with("article.") || rk == "outcome.duplicate",
                "{rk}"
            ),
        }
    }
    let missing: Vec<&String> = url_kind
        .keys()
        .filter(|u| !by_url.contains_key(*u))
        .collect();
    println!(
        "chaos: {} jobs in {:.1}s, {kills} kills, connections closed: {closed}, outcomes: {counts:?}, repeated deliveries: {repeats}, missing: {}",
        total,
        elapsed.as_secs_f64(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "jobs without an outcome: {:?}",
        &missing[..missing.len().min(10)]
    );
    assert!(
        closed && kills >= 3,
        "the chaos did not happen ({kills} kills)"
    );
    // One article per duplicate pair.
    for i in 0..100 {
        let a = &by_url[&site.url(&format!("/dupa/{i}"))][0].0;
        let b = &by_url[&site.url(&format!("/dupb/{i}"))][0].0;
        let articles = [a, b].iter().filter(|k| k.starts_with("article.")).count();
        assert_eq!(articles, 1, "pair {i}: {a} / {b}");
    }
    assert_eq!(
        broker.queue_len(&broker.settings.amqp.jobs_queue).await,
        0,
        "jobs queue not empty"
    );
    let topo = broker.topology();
    for n in 0..2 {
        assert_eq!(
            broker.queue_len(&topo.retry_queue(n)).await,
            0,
            "retry queue not empty"
        );
    }
    let dead = drain(&broker.settings.amqp.dead_letter_queue, 10_000).await;
    let dead_urls: HashSet<String> = dead
        .iter()
        .map(|d| d.body["url"].as_str().unwrap_or_default().to_string())
        .collect();
    let designed: HashSet<String> = url_kind
        .iter()
        .filter(|(_, k)| **k == Kind::ServerError)
        .map(|(u, _)| u.clone())
        .collect();
    println!(
        "chaos: dead letters {} ({} distinct jobs)",
        dead.len(),
        dead_urls.len()
    );
    assert_eq!(
        dead_urls, designed,
        "dead letters must be exactly the always-failing jobs"
    );

    broker.cleanup().await;
    cleanup_redis(&broker.prefix).await;
}
