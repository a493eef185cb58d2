//! Broker restart: a private RabbitMQ node (never the shared one) has its application stopped and started
//! again (`rabbitmqctl -n NODE stop_app` / `start_app`) twice while a `paperboy work` process is consuming:
//! for ~10 s (lapin's auto-recovery reconnects) and for ~25 s (longer than lapin keeps trying, so the
//! worker rebuilds its session). `/readyz` says 503 during each outage while `/healthz` stays 200,
//! readiness comes back, and jobs submitted before, during and after each outage end with exactly one
//! outcome each.

mod common;
mod private_services;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{article_routes, wait_for, FixtureServer, Message, TestBroker};
use private_services::{free_port, get, LoggedWorker, PrivateRabbit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_rides_out_broker_restarts() {
    /// Jobs per round: submitted before the outage, while the broker is down (the submitter retries until
    /// the broker takes them), and after the worker is ready again.
    const BEFORE: usize = 12;
    const DURING: usize = 4;
    const AFTER: usize = 4;
    const ROUND: usize = BEFORE + DURING + AFTER;
    /// Outage lengths: within lapin's recovery, then beyond it (the worker rebuilds after 15 s down).
    const OUTAGES: [Duration; 2] = [Duration::from_secs(10), Duration::from_secs(25)];
    const N: usize = ROUND * OUTAGES.len();
    let rabbit = tokio::task::block_in_place(|| PrivateRabbit::start(None));
    let site = FixtureServer::start(article_routes(N, Duration::from_millis(150))).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let url = rabbit.amqp_url();
    let mut broker = TestBroker::with_env(
        "restart",
        &[
            ("PAPERBOY__AMQP__URL", url.as_str()),
            ("PAPERBOY__WORKER__CONCURRENCY", "4"),
            ("PAPERBOY__METRICS__LISTEN", listen.as_str()),
        ],
    );
    broker.amqp_url = url.clone();
    broker.declare().await;
    let mut worker = LoggedWorker::spawn(&broker.env);
    let base = format!("http://{listen}");
    let readyz = || async { get(&format!("{base}/readyz")).await.map(|(s, _)| s) };
    let healthz = || async { get(&format!("{base}/healthz")).await.map(|(s, _)| s) };
    assert!(
        wait_for(Duration::from_secs(60), || async {
            readyz().await == Some(200)
        })
        .await,
        "worker never ready:\n{}",
        worker.log_text()
    );
    let page = |i: usize| (site.url(&format!("/p/{i}")), format!("job-{i}"));

    let mut message_ids: HashMap<String, HashSet<String>> = HashMap::new();
    let mut copies = 0;
    for (round, outage_len) in OUTAGES.into_iter().enumerate() {
        let first = round * ROUND;
        for i in first..first + BEFORE {
            let (u, id) = page(i);
            broker.publish_job(&u, &id).await;
        }
        // Some jobs done, others in flight or queued when the broker goes.
        let got = broker.outputs(3, Duration::from_secs(60)).await;
        assert_eq!(
            got.len(),
            3,
            "round {round}: worker not processing before the outage"
        );
        for m in &got {
            record(&mut message_ids, m);
            copies += 1;
        }

        tokio::task::block_in_place(|| rabbit.stop_app());
        let outage = Instant::now();
        let during = {
            let (url, queue) = (url.clone(), broker.settings.amqp.jobs_queue.clone());
            let jobs: Vec<(String, String)> = (first + BEFORE..first + BEFORE + DURING)
                .map(page)
                .collect();
            tokio::spawn(async move {
                for (u, id) in jobs {
                    while !publish_once(&url, &queue, &u, &id).await {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                }
            })
        };
        assert!(
            wait_for(Duration::from_secs(30), || async {
                readyz().await == Some(503)
            })
            .await,
            "round {round}: /readyz did not turn 503 during the outage:\n{}",
            worker.log_text()
        );
        let (_, body) = get(&format!("{base}/readyz")).await.unwrap();
        assert!(body.contains("\"broker_connected\":false"), "{body}");
        // /healthz answers 200 throughout (the process is alive), /readyz 503 (it cannot work).
        let mut samples = 0;
        while outage.elapsed() < outage_len {
            assert_eq!(
                healthz().await,
                Some(200),
                "/healthz must stay 200 during the outage"
            );
            assert_eq!(
                readyz().await,
                Some(503),
                "/readyz must stay 503 while the broker is down"
            );
            samples += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(
            !during.is_finished(),
            "a job was accepted while the broker was stopped"
        );
        tokio::task::block_in_place(|| rabbit.start_app());
        let down = outage.elapsed();
        assert!(
            wait_for(Duration::from_secs(120), || async {
                readyz().await == Some(200)
            })
            .await,
            "round {round}: worker not ready again after the broker came back:\n{}",
            worker.log_text()
        );
        println!(
            "round {round}: broker down {:.1} s ({samples} /healthz + /readyz samples), worker ready again {:.1} s after the outage began",
            down.as_secs_f64(),
            outage.elapsed().as_secs_f64()
        );
        tokio::time::timeout(Duration::from_secs(60), during)
            .await
            .expect("jobs submitted during the outage not accepted after it")
            .unwrap();
        for i in first + BEFORE + DURING..first + ROUND {
            let (u, id) = page(i);
            broker.publish_job(&u, &id).await;
        }

        // Every job of the round ends with exactly one outcome: an article, with one message_id however
        // often it was (re)published, and nothing else.
        let deadline = Instant::now() + Duration::from_secs(120);
        let done = |ids: &HashMap<String, HashSet<String>>| {
            (first..first + ROUND).all(|i| ids.contains_key(&format!("job-{i}")))
        };
        while !done(&message_ids) && Instant::now() < deadline {
            for m in broker.outputs(ROUND, Duration::from_secs(2)).await {
                record(&mut message_ids, &m);
                copies += 1;
            }
        }
        let missing: Vec<String> = (first..first + ROUND)
            .map(|i| format!("job-{i}"))
            .filter(|id| !message_ids.contains_key(id))
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: jobs without an outcome: {missing:?}\n{}",
            worker.log_text()
        );
    }
    // Late copies of redelivered jobs, if any, arrive within a confirm round-trip.
    for m in broker.outputs(N, Duration::from_secs(3)).await {
        record(&mut message_ids, &m);
        copies += 1;
    }
    assert_eq!(message_ids.len(), N, "outputs for jobs never submitted");
    for (id, ids) in &message_ids {
        assert_eq!(
            ids.len(),
            1,
            "{id} ended with more than one outcome: {ids:?}"
        );
    }
    assert!(worker.is_running(), "worker died:\n{}", worker.log_text());
    assert_eq!(broker.queue_len(&broker.settings.amqp.jobs_queue).await, 0);
    assert_eq!(
        broker
            .queue_len(&broker.settings.amqp.dead_letter_queue)
            .await,
        0
    );
    let log = worker.log_text();
    assert!(
        !log.contains(&rabbit.password),
        "the AMQP password is in the log"
    );
    assert!(
        log.contains("broker session lost; rebuilding"),
        "the 25 s outage should outlast lapin's recovery and rebuild the session:\n{log}"
    );
    for line in log
        .lines()
        .filter(|l| l.contains("paperboy::worker") && l.contains("broker"))
    {
        println!("worker: {line}");
    }
    println!("{N} jobs, {copies} output messages, one outcome each across both restarts");
    drop(worker);
    broker.cleanup().await;
}

fn record(message_ids: &mut HashMap<String, HashSet<String>>, m: &Message) {
    assert!(
        m.routing_key.starts_with("article."),
        "{}: {}",
        m.routing_key,
        m.body
    );
    let id = m.body["job_id"].as_str().unwrap().to_string();
    message_ids.entry(id).or_default().insert(m.message_id());
}

/// Publish one job with confirm on a fresh connection; false when the broker is not there.
async fn publish_once(url: &str, queue: &str, page: &str, id: &str) -> bool {
    use lapin::options::BasicPublishOptions;
    use lapin::{BasicProperties, Connection, ConnectionProperties};
    let Ok(conn) = Connection::connect(url, ConnectionProperties::default()).await else {
        return false;
    };
    let body = serde_json::json!({"url": page, "id": id}).to_string();
    let confirmed = async {
        let ch = conn.create_channel().await.ok()?;
        ch.confirm_select(Default::default()).await.ok()?;
        let c = ch
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body.as_bytes(),
                BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2),
            )
            .await
            .ok()?
            .await
            .ok()?;
        Some(matches!(c, lapin::Confirmation::Ack(None)))
    }
    .await
    .unwrap_or(false);
    let _ = conn.close(200, "bye".into()).await;
    confirmed
}
