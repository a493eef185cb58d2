//! End to end over the real RabbitMQ: an in-process worker consumes jobs, fetches from a local fixture
//! server, publishes articles/outcomes with confirms and acks.

mod common;

use std::time::Duration;

use common::{start_worker, wait_for, FixtureServer, TestBroker};

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn article_duplicate_404_and_dead_letter() {
    let site = FixtureServer::standard().await;
    let broker = TestBroker::new("e2e");
    broker.declare().await;
    let (stop, handle) = start_worker(&broker.settings).await;

    // 1. A plain news page: one article, the job acked.
    broker.publish_job(&site.url("/news"), "job-news").await;
    let msgs = broker.outputs(1, T).await;
    assert_eq!(msgs.len(), 1, "no article published");
    let a = &msgs[0];
    assert!(
        a.routing_key.starts_with("article.en."),
        "routing key {}",
        a.routing_key
    );
    assert_eq!(a.body["schema"], paperboy::message::SCHEMA_VERSION);
    assert_eq!(a.body["job_id"], "job-news");
    assert_eq!(a.body["url"], site.url("/news"));
    assert_eq!(a.body["http_status"], 200);
    let text = a.body["text"].as_str().unwrap();
    assert!(
        text.contains("The old harbour bridge reopened to traffic"),
        "{text}"
    );
    assert!(text.contains("before the summer festival."), "{text}");
    assert!(
        !text.contains("All rights reserved"),
        "footer leaked: {text}"
    );
    assert!(!text.contains("Sport"), "navigation leaked: {text}");
    assert!(
        text.contains("\n\n"),
        "paragraphs must be separated by a blank line"
    );
    assert!(a.body["content_hash"]
        .as_str()
        .unwrap()
        .starts_with("blake3:"));
    assert!(a.body["word_count"].as_u64().unwrap() > 50);
    // A clean one-story page: the second opinion agrees, so the text is trusted.
    let conf = a.body["extraction_confidence"].as_f64().unwrap();
    assert!((0.8..=1.0).contains(&conf), "extraction_confidence {conf}");
    assert_eq!(
        a.properties.content_type().as_ref().map(|c| c.as_str()),
        Some("application/json")
    );
    assert_eq!(
        *a.properties.delivery_mode(),
        Some(2),
        "articles must be persistent"
    );
    let article: paperboy::message::Article =
        serde_json::from_value(a.body.clone()).expect("article schema");
    assert_eq!(a.message_id(), article.message_id());
    assert!(
        wait_for(T, || async {
            broker.queue_len(&broker.settings.amqp.jobs_queue).await == 0
        })
        .await,
        "job not acked"
    );

    // 2. The same page under a second URL: the duplicate outcome.
    broker
        .publish_job(&site.url("/news-copy"), "job-copy")
        .await;
    let msgs = broker.outputs(1, T).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].routing_key, "outcome.duplicate");
    assert_eq!(msgs[0].body["job_id"], "job-copy");
    assert_eq!(msgs[0].body["outcome"], "duplicate");
    assert_eq!(msgs[0].body["content_hash"], a.body["content_hash"]);
    assert!(msgs[0].body["detail"]
        .as_str()
        .unwrap()
        .contains("job-news"));

    // 3. A 404: a failure outcome, no retry.
    broker.publish_job(&site.url("/missing"), "job-404").await;
    let msgs = broker.outputs(1, T).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].routing_key, "outcome.failed.http_404");
    assert_eq!(msgs[0].body["http_status"], 404);
    assert_eq!(msgs[0].body["url"], site.url("/missing"));
    assert_eq!(site.hits_for("/missing"), 1, "a 404 must not be retried");

    // 4. Non-HTML: a skip outcome.
    broker.publish_job(&site.url("/doc.pdf"), "job-pdf").await;
    let msgs = broker.outputs(1, T).await;
    assert_eq!(msgs[0].routing_key, "outcome.skipped.not_html");

    // 5. An undecodable job: to the dead-letter queue with a header saying why; no outcome.
    broker
        .publish_raw(b"{\"url\": broken json", "application/json")
        .await;
    let dead = broker
        .take(&broker.settings.amqp.dead_letter_queue, 1, T)
        .await;
    assert_eq!(dead.len(), 1, "undecodable job not dead-lettered");
    assert_eq!(
        dead[0].header("x-paperboy-reason").as_deref(),
        Some("undecodable")
    );
    assert!(dead[0]
        .header("x-paperboy-error")
        .unwrap()
        .contains("not valid JSON"));
    assert_eq!(dead[0].raw, b"{\"url\": broken json");

    // 6. A bare URL as text/plain, and an invalid URL: article / failure outcome with a generated id.
    broker
        .publish_raw(site.url("/other").as_bytes(), "text/plain")
        .await;
    broker
        .publish_raw(br#"{"url": "ftp://files.example/x"}"#, "application/json")
        .await;
    let mut msgs = broker.outputs(2, T).await;
    msgs.sort_by(|a, b| a.routing_key.cmp(&b.routing_key));
    assert_eq!(msgs.len(), 2);
    assert!(msgs[0].routing_key.starts_with("article.en."));
    assert!(!msgs[0].body["job_id"].as_str().unwrap().is_empty());
    assert_eq!(msgs[1].routing_key, "outcome.failed.invalid_url");
    assert!(msgs[1].body["detail"].as_str().unwrap().contains("ftp"));

    assert!(
        wait_for(T, || async {
            broker.queue_len(&broker.settings.amqp.jobs_queue).await == 0
        })
        .await
    );
    stop.cancel();
    tokio::time::timeout(T, handle)
        .await
        .expect("worker stops on cancel")
        .unwrap();
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_retry_then_dead_letter_with_headers() {
    use std::collections::HashMap;
    let mut routes = HashMap::new();
    routes.insert(
        "/down".to_string(),
        common::Route::new(503, "text/html", b"busy".to_vec()),
    );
    let site = FixtureServer::start(routes).await;
    let broker = TestBroker::new("retry");
    broker.declare().await;
    let (stop, handle) = start_worker(&broker.settings).await;

    broker.publish_job(&site.url("/down"), "job-down").await;
    let msgs = broker.outputs(1, T).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].routing_key, "outcome.failed.http_503");
    assert_eq!(msgs[0].body["attempts"], 3, "max_attempts is 3 in tests");
    assert_eq!(site.hits_for("/down"), 3);
    let dead = broker
        .take(&broker.settings.amqp.dead_letter_queue, 1, T)
        .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].header("x-paperboy-reason").as_deref(),
        Some("failed.http_503")
    );
    assert_eq!(dead[0].header("x-paperboy-attempt").as_deref(), Some("3"));
    assert_eq!(
        dead[0].header("x-paperboy-http-status").as_deref(),
        Some("503")
    );
    assert_eq!(dead[0].body["id"], "job-down");

    stop.cancel();
    tokio::time::timeout(T, handle).await.unwrap().unwrap();
    broker.cleanup().await;
}

/// Nobody consumes the catch-all queue and it is full: the broker refuses the next articles, and their
/// jobs wait (requeued) instead of the articles being dropped or the queue growing without bound. Once the
/// queue is drained the held-back articles arrive. (A quorum queue applies `reject-publish` once it is
/// over its limit, so it may hold one message more than `x-max-length`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_catch_all_queue_holds_jobs_back_instead_of_dropping_articles() {
    const PAGES: usize = 4;
    let site = FixtureServer::start(common::article_routes(PAGES, Duration::ZERO)).await;
    let broker = TestBroker::with_env(
        "bounded",
        &[("PAPERBOY__AMQP__OUTPUT_QUEUE_MAX_LENGTH", "1")],
    );
    broker.declare().await;
    let (stop, handle) = start_worker(&broker.settings).await;
    let out = broker.settings.amqp.output_queue.clone();

    for i in 0..PAGES {
        broker
            .publish_job(&site.url(&format!("/p/{i}")), &format!("b-{i}"))
            .await;
    }
    // Every page is fetched, but the queue stops taking articles near its bound.
    assert!(
        wait_for(T, || async {
            (0..PAGES).all(|i| site.hits_for(&format!("/p/{i}")) >= 1)
        })
        .await
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = broker.queue_len(&out).await;
    assert!(held <= 2, "the bound held: {held} articles queued");

    let mut ids: Vec<String> = Vec::new();
    while ids.len() < PAGES {
        let got = broker.outputs(1, T).await;
        assert_eq!(got.len(), 1, "a held-back job was lost; got {ids:?}");
        ids.push(got[0].body["job_id"].as_str().unwrap().to_string());
    }
    ids.sort();
    assert_eq!(
        ids,
        (0..PAGES).map(|i| format!("b-{i}")).collect::<Vec<_>>()
    );
    let dead = broker
        .queue_len(&broker.settings.amqp.dead_letter_queue)
        .await;
    assert_eq!(dead, 0);

    stop.cancel();
    let _ = handle.await;
    broker.cleanup().await;
}
