//! `/metrics`, `/healthz` and `/readyz` read from a running `paperboy work` process.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{wait_for, FixtureServer, TestBroker};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get(url: &str) -> Option<(u16, String)> {
    let r = reqwest::get(url).await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_serves_metrics_health_and_readiness() {
    let site = FixtureServer::standard().await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let broker = TestBroker::with_env(
        "metrics",
        &[
            ("PAPERBOY__METRICS__LISTEN", listen.as_str()),
            ("PAPERBOY__REDIS__URL", &common::redis_url()),
            ("PAPERBOY__DEDUP__MAX_ENTRIES", "1"),
            // Jobs for one host 300 ms apart: the second waits for its slot, and that is counted.
            ("PAPERBOY__POLITENESS__MIN_DELAY_MS", "300"),
        ],
    );
    broker.declare().await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paperboy"));
    for (k, v) in &broker.env {
        cmd.env(k, v);
    }
    let mut worker = cmd.arg("work").stderr(Stdio::null()).spawn().unwrap();
    let base = format!("http://{listen}");

    assert!(
        wait_for(Duration::from_secs(20), || async {
            matches!(get(&format!("{base}/readyz")).await, Some((200, _)))
        })
        .await,
        "worker never became ready"
    );
    let (status, body) = get(&format!("{base}/healthz")).await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("ok"));
    let (_, ready) = get(&format!("{base}/readyz")).await.unwrap();
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["ready"], true, "{ready}");

    broker.publish_job(&site.url("/news"), "m-1").await;
    broker.publish_job(&site.url("/missing"), "m-2").await;
    assert_eq!(broker.outputs(2, Duration::from_secs(20)).await.len(), 2);
    // A second article with room for one entry: the first hash is evicted, and so is the first seen URL
    // (taken over by /missing, whose record is then forgotten as it failed for good): 2 evictions.
    broker.publish_job(&site.url("/other"), "m-3").await;
    assert_eq!(broker.outputs(1, Duration::from_secs(20)).await.len(), 1);
    let (status, metrics) = get(&format!("{base}/metrics")).await.unwrap();
    assert_eq!(status, 200);
    for needle in [
        "paperboy_jobs_total{kind=\"article\",reason=\"\"} 2",
        "paperboy_dedup_evictions_total 2",
        "paperboy_jobs_total{kind=\"failed\",reason=\"http_404\"} 1",
        "paperboy_fetch_duration_seconds_count 3",
        "paperboy_extract_duration_seconds_count 2",
        "paperboy_publish_confirm_duration_seconds_count 3",
        "paperboy_jobs_in_flight 0",
        "paperboy_host_waits_total{host=\"127.0.0.1\"}",
    ] {
        assert!(
            metrics.contains(needle),
            "missing {needle:?} in:\n{metrics}"
        );
    }

    let _ = worker.kill();
    let _ = worker.wait();
    broker.cleanup().await;
}

/// A job whose host is busy for longer than `politeness.defer_threshold_ms` goes through the delay queue,
/// and `/metrics` counts it by host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferrals_are_counted() {
    let site = FixtureServer::standard().await;
    let listen = format!("127.0.0.1:{}", free_port());
    let broker = TestBroker::with_env(
        "metrics-defer",
        &[
            ("PAPERBOY__METRICS__LISTEN", listen.as_str()),
            ("PAPERBOY__POLITENESS__MIN_DELAY_MS", "2000"),
            ("PAPERBOY__POLITENESS__DEFER_THRESHOLD_MS", "100"),
        ],
    );
    broker.declare().await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paperboy"));
    for (k, v) in &broker.env {
        cmd.env(k, v);
    }
    let mut worker = cmd.arg("work").stderr(Stdio::null()).spawn().unwrap();
    let base = format!("http://{listen}");

    broker.publish_job(&site.url("/news"), "d-1").await;
    broker.publish_job(&site.url("/other"), "d-2").await;
    let needle = "paperboy_host_deferrals_total{host=\"127.0.0.1\"} 1";
    let counted = wait_for(Duration::from_secs(20), || async {
        get(&format!("{base}/metrics"))
            .await
            .is_some_and(|(_, m)| m.contains(needle))
    })
    .await;
    // The deferred job still ends in its article.
    let outputs = broker.outputs(2, Duration::from_secs(30)).await;
    let _ = worker.kill();
    let _ = worker.wait();
    broker.cleanup().await;
    assert!(counted, "no {needle:?} in /metrics");
    assert_eq!(outputs.len(), 2);
}
