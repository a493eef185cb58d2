//! Nothing lost: graceful shutdown, kill -9 and redelivery, dead-letter inspection and replay, hostile
//! job messages, secrets kept out of errors. Real RabbitMQ, real HTTP, the built binary.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{start_worker, wait_for, FixtureServer, Route, TestBroker};

const T: Duration = Duration::from_secs(30);

fn bin(env: &[(String, String)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_paperboy"));
    c.env_remove("RUST_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
}

async fn wait_exit(mut p: Proc, timeout: Duration) -> std::process::ExitStatus {
    tokio::time::timeout(
        timeout,
        tokio::task::spawn_blocking(move || p.0.wait().unwrap()),
    )
    .await
    .expect("process did not exit in time")
    .unwrap()
}

fn slow_site_routes() -> HashMap<String, Route> {
    let mut routes = HashMap::new();
    let mut slow = Route::html(common::fixture("pages/news.html"));
    slow.delay = Duration::from_secs(2);
    routes.insert("/slow".to_string(), slow);
    let mut very = Route::html(common::fixture("pages/other.html"));
    very.delay = Duration::from_secs(4);
    routes.insert("/very-slow".to_string(), very);
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_jobs_then_exits_zero() {
    let site = FixtureServer::start(slow_site_routes()).await;
    let broker = TestBroker::new("sigterm");
    broker.declare().await;
    let worker = Proc(
        bin(&broker.env)
            .arg("work")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    broker.publish_job(&site.url("/slow"), "slow-1").await;
    assert!(
        wait_for(T, || async { site.hits_for("/slow") == 1 }).await,
        "job never fetched"
    );
    signal(&worker.0, "-TERM");
    let status = wait_exit(worker, T).await;
    assert!(status.success(), "{status:?}");
    let out = broker.outputs(1, Duration::from_secs(5)).await;
    assert_eq!(
        out.len(),
        1,
        "the in-flight job's article must be published before exit"
    );
    assert_eq!(out[0].body["job_id"], "slow-1");
    assert_eq!(
        broker.queue_len(&broker.settings.amqp.jobs_queue).await,
        0,
        "and acked"
    );
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_jobs_stay_queued_after_grace_and_after_kill() {
    let site = FixtureServer::start(slow_site_routes()).await;
    let broker = TestBroker::with_env("grace", &[("PAPERBOY__WORKER__SHUTDOWN_GRACE_MS", "500")]);
    broker.declare().await;

    // Grace too short: exit 0, the job stays in the queue for another worker.
    let worker = Proc(
        bin(&broker.env)
            .arg("work")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    broker
        .publish_job(&site.url("/very-slow"), "very-slow-1")
        .await;
    assert!(wait_for(T, || async { site.hits_for("/very-slow") == 1 }).await);
    signal(&worker.0, "-TERM");
    assert!(wait_exit(worker, T).await.success());
    assert!(
        wait_for(T, || async {
            broker.queue_len(&broker.settings.amqp.jobs_queue).await == 1
        })
        .await,
        "unfinished job must be back in the queue"
    );

    // kill -9 in the middle of a job: the broker redelivers it to the next worker.
    let worker = Proc(
        bin(&broker.env)
            .arg("work")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for(T, || async { site.hits_for("/very-slow") == 2 }).await);
    signal(&worker.0, "-KILL");
    let _ = wait_exit(worker, T).await;
    let (stop, handle) = start_worker(&broker.settings).await;
    let out = broker.outputs(1, Duration::from_secs(40)).await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].body["job_id"], "very-slow-1");
    assert!(out[0].routing_key.starts_with("article."));
    assert!(
        wait_for(T, || async {
            broker.queue_len(&broker.settings.amqp.jobs_queue).await == 0
        })
        .await
    );
    stop.cancel();
    handle.await.unwrap();
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_job_messages_each_end_in_a_clear_outcome() {
    let broker = TestBroker::with_env(
        "hostile",
        &[("PAPERBOY__POLITENESS__RESPECT_ROBOTS", "false")],
    );
    broker.declare().await;
    let (stop, handle) = start_worker(&broker.settings).await;
    let long = format!("https://example.com/{}", "a".repeat(10_000));
    let cases: Vec<(&str, String)> = vec![
        ("empty-url", r#"{"id":"empty-url","url":""}"#.into()),
        ("file", r#"{"id":"file","url":"file:///etc/passwd"}"#.into()),
        ("ftp", r#"{"id":"ftp","url":"ftp://example.com/x"}"#.into()),
        (
            "data",
            r#"{"id":"data","url":"data:text/html,<p>x</p>"}"#.into(),
        ),
        ("js", r#"{"id":"js","url":"javascript:alert(1)"}"#.into()),
        (
            "creds",
            r#"{"id":"creds","url":"http://user:pw@example.com/"}"#.into(),
        ),
        ("long", format!(r#"{{"id":"long","url":"{long}"}}"#)),
        (
            "loopback",
            r#"{"id":"loopback","url":"http://127.0.0.1:9/x"}"#.into(),
        ),
    ];
    // The loopback case needs the guard on: use a second worker config? No: this worker allows private
    // networks (tests), so that case must end as a connection failure outcome instead.
    for (_, body) in &cases {
        broker
            .publish_raw(body.as_bytes(), "application/json")
            .await;
    }
    for body in [
        "{\"id\":\"no-url\"}",
        "[1,2,3]",
        "\u{0}\u{1}binary",
        "two words here",
    ] {
        broker
            .publish_raw(body.as_bytes(), "application/json")
            .await;
    }
    let out = broker.outputs(cases.len(), T).await;
    let by_id: HashMap<String, String> = out
        .iter()
        .map(|m| {
            (
                m.body["job_id"].as_str().unwrap().to_string(),
                m.routing_key.clone(),
            )
        })
        .collect();
    for (id, _) in &cases[..7] {
        assert_eq!(
            by_id.get(*id).map(String::as_str),
            Some("outcome.failed.invalid_url"),
            "{id}: {by_id:?}"
        );
    }
    assert!(
        by_id["loopback"].starts_with("outcome.failed."),
        "{by_id:?}"
    );
    // Four undecodable bodies, plus the loopback job once its retries ran out (connection refused is
    // transient); they may arrive in any order.
    let dead = broker
        .take(&broker.settings.amqp.dead_letter_queue, 5, T)
        .await;
    let reasons: Vec<String> = dead
        .iter()
        .map(|d| d.header("x-paperboy-reason").unwrap_or_default())
        .collect();
    assert_eq!(
        reasons.iter().filter(|r| *r == "undecodable").count(),
        4,
        "undecodable bodies go to the dead-letter queue: {reasons:?}"
    );
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(reasons.iter().any(|r| r == "failed.connect"), "{reasons:?}");
    assert!(
        wait_for(T, || async {
            broker.queue_len(&broker.settings.amqp.jobs_queue).await == 0
        })
        .await
    );
    stop.cancel();
    handle.await.unwrap();
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_can_be_listed_and_replayed() {
    let site = FixtureServer::standard().await;
    let broker = TestBroker::new("dlq");
    broker.declare().await;
    // Two dead letters: an undecodable body and a job that ran out of attempts (simulated by publishing
    // straight to the dead-letter exchange, as the worker does).
    let (conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let job = serde_json::json!({"url": site.url("/news"), "id": "replayed"}).to_string();
    for body in [job.as_bytes(), b"garbage".as_slice()] {
        ch.basic_publish(
            broker.settings.amqp.dead_letter_exchange.as_str().into(),
            "".into(),
            Default::default(),
            body,
            lapin::BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let _ = conn.close(200, "bye".into()).await;
    let dlq = broker.settings.amqp.dead_letter_queue.clone();
    assert!(wait_for(T, || async { broker.queue_len(&dlq).await == 2 }).await);

    let env = broker.env.clone();
    let out =
        tokio::task::spawn_blocking(move || bin(&env).args(["dlq", "list"]).output().unwrap())
            .await
            .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["body"]["id"], "replayed");
    assert_eq!(lines[1]["body"], "garbage");
    assert!(
        wait_for(T, || async { broker.queue_len(&dlq).await == 2 }).await,
        "list must not remove"
    );

    let env = broker.env.clone();
    let out = tokio::task::spawn_blocking(move || {
        bin(&env)
            .args(["dlq", "replay", "--max", "1"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 dead letters replayed"));
    assert_eq!(broker.queue_len(&dlq).await, 1);
    assert_eq!(broker.queue_len(&broker.settings.amqp.jobs_queue).await, 1);
    let (stop, handle) = start_worker(&broker.settings).await;
    let out = broker.outputs(1, T).await;
    assert_eq!(out[0].body["job_id"], "replayed");
    assert!(out[0].routing_key.starts_with("article."));
    stop.cancel();
    handle.await.unwrap();
    broker.cleanup().await;
}

#[test]
fn passwords_never_reach_errors_or_logs() {
    let env = vec![
        (
            "PAPERBOY__AMQP__URL".to_string(),
            "amqp://user:supersecret@127.0.0.1:1/%2f".to_string(),
        ),
        ("RUST_LOG".to_string(), "debug".to_string()),
    ];
    let out = bin(&env)
        .args(["submit", "https://example.com/"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("cannot connect"), "{all}");
    assert!(!all.contains("supersecret"), "password leaked: {all}");

    let env = vec![
        (
            "PAPERBOY__REDIS__URL".to_string(),
            "redis://:hunter2@127.0.0.1:1/".to_string(),
        ),
        (
            "PAPERBOY__AMQP__URL".to_string(),
            "amqp://user:supersecret@127.0.0.1:1/%2f".to_string(),
        ),
    ];
    let out = bin(&env).arg("work").output().unwrap();
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("hunter2") && !all.contains("supersecret"),
        "password leaked: {all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_job_that_keeps_killing_workers_is_dead_lettered() {
    let site = FixtureServer::start(slow_site_routes()).await;
    let broker = TestBroker::with_env("poison", &[("PAPERBOY__AMQP__DELIVERY_LIMIT", "1")]);
    broker.declare().await;
    broker
        .publish_job(&site.url("/very-slow"), "poison-1")
        .await;
    // Each worker takes the job and "crashes" (SIGKILL) in the middle of it.
    for n in 1..=2 {
        let worker = Proc(
            bin(&broker.env)
                .arg("work")
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        assert!(
            wait_for(T, || async { site.hits_for("/very-slow") == n }).await,
            "delivery {n} never fetched"
        );
        signal(&worker.0, "-KILL");
        let _ = wait_exit(worker, T).await;
    }
    let dead = broker
        .take(&broker.settings.amqp.dead_letter_queue, 1, T)
        .await;
    assert_eq!(
        dead.len(),
        1,
        "the broker's delivery limit must dead-letter the poison job"
    );
    assert_eq!(dead[0].body["id"], "poison-1");
    assert_eq!(broker.queue_len(&broker.settings.amqp.jobs_queue).await, 0);
    broker.cleanup().await;
}
