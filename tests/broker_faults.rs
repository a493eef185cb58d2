//! Broker faults: the worker keeps going across `rabbitmqctl close_all_connections`.
//!
//! This test closes every connection on the broker, so it lives in its own test binary (cargo runs test
//! binaries one after another) and is its only test.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{article_routes, FixtureServer, TestBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_survives_close_all_connections() {
    const N: usize = 40;
    let site = FixtureServer::start(article_routes(N, Duration::from_millis(150))).await;
    let broker = TestBroker::with_env("faults", &[("PAPERBOY__WORKER__CONCURRENCY", "4")]);
    broker.declare().await;
    let mut worker = Command::new(env!("CARGO_BIN_EXE_paperboy"));
    for (k, v) in &broker.env {
        worker.env(k, v);
    }
    let mut worker = worker.arg("work").stderr(Stdio::null()).spawn().unwrap();

    for i in 0..N {
        broker
            .publish_job(&site.url(&format!("/p/{i}")), &format!("job-{i}"))
            .await;
    }
    let mut got = broker.outputs(5, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 5, "worker not processing before the fault");

    let st = Command::new("rabbitmqctl")
        .args(["close_all_connections", "paperboy fault test"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "rabbitmqctl: {}",
        String::from_utf8_lossy(&st.stderr)
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut ids: HashSet<String> = HashSet::new();
    let mut message_ids: HashMap<String, String> = HashMap::new();
    loop {
        for m in got.drain(..) {
            let id = m.body["job_id"].as_str().unwrap().to_string();
            assert!(
                m.routing_key.starts_with("article."),
                "{}: {}",
                m.routing_key,
                m.body
            );
            if let Some(prev) = message_ids.insert(id.clone(), m.message_id()) {
                assert_eq!(
                    prev,
                    m.message_id(),
                    "a repeated article must carry the same message_id"
                );
            }
            ids.insert(id);
        }
        if ids.len() == N || std::time::Instant::now() > deadline {
            break;
        }
        got = broker.outputs(N, Duration::from_secs(2)).await;
    }
    assert_eq!(ids.len(), N, "jobs lost across the connection drop");
    assert!(
        worker.try_wait().unwrap().is_none(),
        "worker died on the fault"
    );
    assert_eq!(broker.queue_len(&broker.settings.amqp.jobs_queue).await, 0);
    println!(
        "{N} jobs, {} distinct outputs after close_all_connections",
        ids.len()
    );
    let _ = worker.kill();
    let _ = worker.wait();
    broker.cleanup().await;
}
