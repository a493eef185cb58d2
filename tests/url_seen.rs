//! The URL-seen filter end to end over the real broker: a URL taken by one job is not fetched again by
//! the next (tracking parameters, fragment and host case make no difference) unless the job says
//! "force"; a job that fails for good lets the next job try again. Once with the memory store, once
//! with the Redis store (shared by two workers).

mod common;

use std::time::Duration;

use common::{
    cleanup_redis, redis_url, start_fleet_worker, start_worker, FixtureServer, TestBroker,
};

const T: Duration = Duration::from_secs(30);

async fn publish(broker: &TestBroker, body: serde_json::Value) {
    broker
        .publish_raw(body.to_string().as_bytes(), "application/json")
        .await;
}

/// Publish one job and return the routing key of the one message it produced.
async fn one(broker: &TestBroker, body: serde_json::Value) -> String {
    let id = body["id"].clone();
    publish(broker, body).await;
    let msgs = broker.outputs(1, T).await;
    assert_eq!(msgs.len(), 1, "job {id} produced no message");
    assert_eq!(msgs[0].body["job_id"], id);
    msgs[0].routing_key.clone()
}

async fn run(broker: &TestBroker, workers: usize) {
    let site = FixtureServer::standard().await;
    broker.declare().await;
    let mut running = Vec::new();
    for _ in 0..workers {
        running.push(
            if secrecy::ExposeSecret::expose_secret(&broker.settings.redis.url).is_empty() {
                start_worker(&broker.settings).await
            } else {
                start_fleet_worker(&broker.settings).await
            },
        );
    }
    let news = site.url("/news");
    assert!(one(broker, serde_json::json!({"url": news, "id": "a"}))
        .await
        .starts_with("article."));
    // The same page under tracking parameters, a fragment and an upper-case host: not fetched again.
    let variant = format!(
        "{}?utm_source=feed&fbclid=x#comments",
        news.replace("http://", "HTTP://")
    );
    assert_eq!(
        one(broker, serde_json::json!({"url": variant, "id": "b"})).await,
        "outcome.skipped.seen"
    );
    assert_eq!(
        one(broker, serde_json::json!({"url": news, "id": "c"})).await,
        "outcome.skipped.seen"
    );
    assert_eq!(site.hits_for("/news"), 1, "a seen URL was fetched again");
    // "force": fetched again; the text is the one job "a" published, so it is a duplicate.
    assert_eq!(
        one(
            broker,
            serde_json::json!({"url": news, "id": "d", "force": true})
        )
        .await,
        "outcome.duplicate"
    );
    assert_eq!(site.hits_for("/news"), 2);
    // A job that fails for good (404) forgets its URL: the next job fetches it again.
    let missing = site.url("/missing");
    for id in ["e", "f"] {
        assert_eq!(
            one(broker, serde_json::json!({"url": missing, "id": id})).await,
            "outcome.failed.http_404"
        );
    }
    assert_eq!(site.hits_for("/missing"), 2);
    for (stop, handle) in running {
        stop.cancel();
        let _ = handle.await;
    }
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seen_urls_are_not_fetched_again_memory_store() {
    let broker = TestBroker::new("urlseen-mem");
    run(&broker, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seen_urls_are_not_fetched_again_across_workers_redis_store() {
    let url = redis_url();
    let broker = TestBroker::with_env(
        "urlseen-redis",
        &[
            ("PAPERBOY__REDIS__URL", url.as_str()),
            ("PAPERBOY__DEDUP__STORE", "redis"),
        ],
    );
    run(&broker, 2).await;
    let prefix = broker.settings.redis.key_prefix.clone();
    cleanup_redis(&prefix).await;
}
