//! amqps:// and rediss:// end to end, against a private RabbitMQ node with a TLS listener and a private
//! TLS-only redis-server, both with certificates from a CA the test makes (openssl CLI). Also: TLS errors
//! say what to fix, and no password reaches the worker's log.

mod common;
mod private_services;

use std::time::Duration;

use common::{wait_for, FixtureServer, TestBroker};
use paperboy::config::Settings;
use paperboy::fetch::Fetcher;
use private_services::{free_port, get, LoggedWorker, PrivateRabbit, PrivateRedis, TestCerts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_runs_on_amqps_and_rediss_with_a_private_ca() {
    let certs = TestCerts::generate();
    let rabbit = tokio::task::block_in_place(|| PrivateRabbit::start(Some(&certs)));
    let redis = PrivateRedis::start(&certs);
    let site = FixtureServer::standard().await;
    let listen = format!("127.0.0.1:{}", free_port());
    let amqps = rabbit.amqps_url("127.0.0.1");
    let rediss = redis.url("127.0.0.1");
    let mut broker = TestBroker::with_env(
        "tls",
        &[
            ("PAPERBOY__AMQP__URL", amqps.as_str()),
            ("PAPERBOY__AMQP__CA_FILE", certs.ca_str()),
            ("PAPERBOY__REDIS__URL", rediss.as_str()),
            ("PAPERBOY__REDIS__CA_FILE", certs.ca_str()),
            ("PAPERBOY__DEDUP__STORE", "redis"),
            ("PAPERBOY__METRICS__LISTEN", listen.as_str()),
        ],
    );
    // The test itself talks to the node's plain listener; the worker only to the TLS ones.
    broker.amqp_url = rabbit.amqp_url();
    broker.declare().await;

    // Wrong trust and wrong host name fail with errors that say what to fix and carry no password.
    let no_ca = with(&broker.settings, |s| s.amqp.ca_file.clear());
    let e = paperboy::amqp::connect(&no_ca, "t").await.unwrap_err();
    let e = e.to_string();
    println!("amqps:// without the CA: {e}");
    assert!(e.contains("set amqp.ca_file"), "{e}");
    assert!(!e.contains(&rabbit.password), "{e}");
    let wrong_host = with(&broker.settings, |s| {
        s.amqp.url = rabbit.amqps_url("localhost").into()
    });
    let e = paperboy::amqp::connect(&wrong_host, "t")
        .await
        .unwrap_err()
        .to_string();
    println!("amqps:// to localhost: {e}");
    assert!(e.contains("does not name the host in amqp.url"), "{e}");
    assert!(!e.contains(&rabbit.password), "{e}");
    let no_ca = with(&broker.settings, |s| s.redis.ca_file.clear());
    let e = paperboy::redis_conn::connect(&no_ca)
        .await
        .err()
        .expect("rediss:// without the CA must fail")
        .to_string();
    println!("rediss:// without the CA: {e}");
    assert!(e.contains("set redis.ca_file"), "{e}");
    assert!(!e.contains(&redis.password), "{e}");
    let wrong_host = with(&broker.settings, |s| {
        s.redis.url = redis.url("localhost").into()
    });
    let e = paperboy::redis_conn::connect(&wrong_host)
        .await
        .err()
        .expect("rediss:// to a host the certificate does not name must fail")
        .to_string();
    println!("rediss:// to localhost: {e}");
    assert!(e.contains("does not name the host in redis.url"), "{e}");

    // The page fetcher (reqwest) still does TLS with ring installed as the process default (the connects
    // above installed it): against the broker's TLS port it gets as far as checking the certificate, which
    // it refuses because the test CA is not a web CA.
    assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    let fetcher = paperboy::fetch::HttpClient::new(&broker.settings.fetch).unwrap();
    let tls_url =
        url::Url::parse(&format!("https://127.0.0.1:{}/", rabbit.tls_port.unwrap())).unwrap();
    let e = fetcher.fetch(&tls_url).await.unwrap_err();
    println!("https:// to the broker's TLS port: {e}");
    assert!(
        matches!(e, paperboy::fetch::FetchError::Tls { .. })
            && e.to_string().contains("UnknownIssuer"),
        "{e:?}"
    );

    let mut worker = LoggedWorker::spawn(&broker.env);
    let base = format!("http://{listen}");
    let ready = wait_for(Duration::from_secs(60), || async {
        matches!(get(&format!("{base}/readyz")).await, Some((200, _)))
    })
    .await;
    assert!(ready, "worker never ready:\n{}", worker.log_text());
    let (_, body) = get(&format!("{base}/readyz")).await.unwrap();
    assert!(body.contains("\"redis\":\"ok\""), "{body}");

    // The same page under two URLs: an article, then a duplicate found through the rediss:// store.
    broker.publish_job(&site.url("/news"), "tls-1").await;
    let first = broker.outputs(1, Duration::from_secs(60)).await;
    assert_eq!(first.len(), 1, "no output:\n{}", worker.log_text());
    assert!(
        first[0].routing_key.starts_with("article."),
        "{}",
        first[0].routing_key
    );
    assert_eq!(first[0].body["job_id"], "tls-1");
    broker.publish_job(&site.url("/news-copy"), "tls-2").await;
    let second = broker.outputs(1, Duration::from_secs(60)).await;
    assert_eq!(second.len(), 1);
    assert_eq!(
        second[0].routing_key, "outcome.duplicate",
        "{}",
        second[0].body
    );
    let mut conn = paperboy::redis_conn::connect(&broker.settings)
        .await
        .unwrap()
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", broker.settings.redis.key_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "nothing written to the private Redis");

    assert!(worker.is_running(), "worker died:\n{}", worker.log_text());
    let log = worker.log_text();
    assert!(log.contains("consuming"), "{log}");
    for pw in [&rabbit.password, &redis.password] {
        assert!(
            !log.contains(pw.as_str()),
            "a password is in the log:\n{log}"
        );
    }
    drop(worker);
    broker.cleanup().await;
}

/// A copy of `settings` changed by `f`.
fn with(settings: &Settings, f: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = settings.clone();
    f(&mut s);
    s
}
