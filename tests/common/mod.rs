//! Shared test helpers: a fixture HTTP server on 127.0.0.1:0, throw-away broker names, an in-process
//! worker, and readers of what the worker published. Talks to the real RabbitMQ (AMQP_URL, default
//! amqp://guest:guest@127.0.0.1:5672/%2f).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use futures_util::StreamExt;
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use paperboy::amqp::Topology;
use paperboy::config::Settings;

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

/// One canned response.
#[derive(Clone)]
pub struct Route {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
    /// Answer 503 to the first `fail_first` requests for this path (flaky pages).
    pub fail_first: usize,
}

impl Route {
    pub fn html(body: Vec<u8>) -> Self {
        Self::new(200, "text/html; charset=utf-8", body)
    }
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type: content_type.into(),
            body,
            headers: vec![],
            delay: Duration::ZERO,
            fail_first: 0,
        }
    }
}

/// A local HTTP server answering from a route table, recording every request (path, arrival).
pub struct FixtureServer {
    pub addr: SocketAddr,
    pub hits: Arc<Mutex<Vec<(String, Instant)>>>,
    stop: CancellationToken,
}

impl FixtureServer {
    /// The standard fixture site: two articles, one under two URLs, a 404, a PDF, robots.txt allowing all.
    pub async fn standard() -> Self {
        let mut routes = HashMap::new();
        routes.insert("/news".to_string(), Route::html(fixture("pages/news.html")));
        routes.insert(
            "/news-copy".to_string(),
            Route::html(fixture("pages/news.html")),
        );
        routes.insert(
            "/other".to_string(),
            Route::html(fixture("pages/other.html")),
        );
        routes.insert(
            "/doc.pdf".to_string(),
            Route::new(200, "application/pdf", b"%PDF-1.4 fake".to_vec()),
        );
        routes.insert(
            "/robots.txt".to_string(),
            Route::new(200, "text/plain", b"User-agent: *\nAllow: /\n".to_vec()),
        );
        Self::start(routes).await
    }

    pub async fn start(routes: HashMap<String, Route>) -> Self {
        Self::start_on("127.0.0.1", routes).await
    }

    /// Serve `routes` on `ip` (any 127.x.y.z address is loopback), on a free port.
    pub async fn start_on(ip: &str, routes: HashMap<String, Route>) -> Self {
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .expect("bind fixture server");
        let addr = listener.local_addr().unwrap();
        let hits: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let routes = Arc::new(routes);
        let stop = CancellationToken::new();
        let (h, r) = (hits.clone(), routes.clone());
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let (hits, routes) = (h.clone(), r.clone());
            async move {
                let path = req.uri().path().to_string();
                let seen = {
                    let mut h = hits.lock().unwrap();
                    h.push((path.clone(), Instant::now()));
                    h.iter().filter(|(p, _)| *p == path).count()
                };
                match routes.get(&path) {
                    Some(route) if seen <= route.fail_first => Response::builder()
                        .status(503)
                        .header("content-type", "text/html")
                        .body(Body::from("<html><body>try again</body></html>"))
                        .unwrap(),
                    Some(route) => {
                        if !route.delay.is_zero() {
                            tokio::time::sleep(route.delay).await;
                        }
                        let mut b = Response::builder()
                            .status(route.status)
                            .header("content-type", route.content_type.as_str());
                        for (k, v) in &route.headers {
                            b = b.header(k.as_str(), v.as_str());
                        }
                        b.body(Body::from(route.body.clone())).unwrap()
                    }
                    None => Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .header("content-type", "text/html")
                        .body(Body::from("<html><body><h1>Not found</h1></body></html>"))
                        .unwrap(),
                }
            }
        });
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await;
        });
        Self { addr, hits, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits_for(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }

    /// Sorted arrival times of the requests whose path starts with one of `prefixes`.
    pub fn arrivals(&self, prefixes: &[&str]) -> Vec<Instant> {
        let mut times: Vec<Instant> = self
            .hits
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| prefixes.iter().any(|x| p.starts_with(x)))
            .map(|(_, t)| *t)
            .collect();
        times.sort();
        times
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Unique broker names for one test, the env vars that select them, and helpers to read results.
pub struct TestBroker {
    /// The broker the test itself talks to (default [`amqp_url`]; tests with a private broker set theirs).
    pub amqp_url: String,
    pub prefix: String,
    pub env: Vec<(String, String)>,
    pub settings: Settings,
}

impl TestBroker {
    pub fn new(test: &str) -> Self {
        Self::with_env(test, &[])
    }

    /// Test names plus extra `PAPERBOY__…` variables.
    pub fn with_env(test: &str, extra: &[(&str, &str)]) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("pbtest.{test}.{}", &id[..8]);
        let mut env: Vec<(String, String)> = vec![
            ("PAPERBOY__AMQP__URL".into(), amqp_url()),
            (
                "PAPERBOY__AMQP__JOBS_QUEUE".into(),
                format!("{prefix}.jobs"),
            ),
            (
                "PAPERBOY__AMQP__OUTPUT_EXCHANGE".into(),
                format!("{prefix}.out"),
            ),
            (
                "PAPERBOY__AMQP__OUTPUT_QUEUE".into(),
                format!("{prefix}.out"),
            ),
            (
                "PAPERBOY__AMQP__DEAD_LETTER_EXCHANGE".into(),
                format!("{prefix}.dlx"),
            ),
            (
                "PAPERBOY__AMQP__DEAD_LETTER_QUEUE".into(),
                format!("{prefix}.dead"),
            ),
            (
                "PAPERBOY__AMQP__DELAY_QUEUE".into(),
                format!("{prefix}.delay"),
            ),
            (
                "PAPERBOY__FETCH__ALLOW_PRIVATE_NETWORKS".into(),
                "true".into(),
            ),
            ("PAPERBOY__FETCH__TIMEOUT_MS".into(), "5000".into()),
            ("PAPERBOY__POLITENESS__MIN_DELAY_MS".into(), "0".into()),
            (
                "PAPERBOY__POLITENESS__MAX_CONCURRENT_PER_HOST".into(),
                "8".into(),
            ),
            ("PAPERBOY__POLITENESS__BACKOFF_BASE_MS".into(), "50".into()),
            ("PAPERBOY__POLITENESS__BACKOFF_MAX_MS".into(), "200".into()),
            ("PAPERBOY__RETRY__TIERS_MS".into(), "300,600".into()),
            ("PAPERBOY__RETRY__MAX_ATTEMPTS".into(), "3".into()),
            ("PAPERBOY__WORKER__CONCURRENCY".into(), "8".into()),
            ("PAPERBOY__WORKER__SHUTDOWN_GRACE_MS".into(), "5000".into()),
            ("PAPERBOY__REDIS__KEY_PREFIX".into(), format!("{prefix}:")),
        ];
        for (k, v) in extra {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.to_string()));
        }
        let settings = Settings::load_with_env(None, env.clone()).expect("test settings");
        Self {
            amqp_url: amqp_url(),
            prefix,
            env,
            settings,
        }
    }

    pub fn topology(&self) -> Topology {
        Topology::from_settings(&self.settings)
    }

    pub async fn channel(&self) -> (Connection, Channel) {
        let conn = Connection::connect(&self.amqp_url, ConnectionProperties::default())
            .await
            .expect("connect to RabbitMQ");
        let ch = conn.create_channel().await.unwrap();
        (conn, ch)
    }

    /// Declare the topology (as a worker would) so a test can publish before a worker starts.
    pub async fn declare(&self) {
        let (conn, ch) = self.channel().await;
        self.topology()
            .declare(&ch)
            .await
            .expect("declare topology");
        let _ = conn.close(200, "bye".into()).await;
    }

    /// Publish a raw job body to the jobs queue.
    pub async fn publish_raw(&self, body: &[u8], content_type: &str) {
        let (conn, ch) = self.channel().await;
        ch.confirm_select(Default::default()).await.unwrap();
        let c = ch
            .basic_publish(
                "".into(),
                ShortString::from(self.settings.amqp.jobs_queue.as_str()),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body,
                BasicProperties::default()
                    .with_content_type(ShortString::from(content_type))
                    .with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(
            matches!(c, lapin::Confirmation::Ack(None)),
            "job publish not confirmed: {c:?}"
        );
        let _ = conn.close(200, "bye".into()).await;
    }

    pub async fn publish_job(&self, url: &str, id: &str) {
        let body = serde_json::json!({"url": url, "id": id}).to_string();
        self.publish_raw(body.as_bytes(), "application/json").await;
    }

    /// Messages in `queue` right now.
    pub async fn queue_len(&self, queue: &str) -> u32 {
        let (conn, ch) = self.channel().await;
        let q = ch
            .queue_declare(
                ShortString::from(queue),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|q| q.message_count())
            .unwrap_or(u32::MAX);
        let _ = conn.close(200, "bye".into()).await;
        q
    }

    /// Take up to `n` messages from `queue`, waiting at most `timeout` in all.
    pub async fn take(&self, queue: &str, n: usize, timeout: Duration) -> Vec<Message> {
        let (conn, ch) = self.channel().await;
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n && Instant::now() < deadline {
            match ch
                .basic_get(ShortString::from(queue), BasicGetOptions { no_ack: true })
                .await
            {
                Ok(Some(m)) => out.push(Message {
                    routing_key: m.delivery.routing_key.as_str().to_string(),
                    body: serde_json::from_slice(&m.delivery.data).unwrap_or(Value::Null),
                    raw: m.delivery.data.clone(),
                    properties: m.delivery.properties.clone(),
                }),
                Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("basic.get {queue}: {e}"),
            }
        }
        let _ = conn.close(200, "bye".into()).await;
        out
    }

    /// Take `n` messages from the catch-all output queue.
    pub async fn outputs(&self, n: usize, timeout: Duration) -> Vec<Message> {
        self.take(&self.settings.amqp.output_queue, n, timeout)
            .await
    }

    /// Delete every queue and exchange of this test.
    pub async fn cleanup(&self) {
        let (conn, ch) = self.channel().await;
        let _ = self.topology().delete(&ch).await;
        let _ = conn.close(200, "bye".into()).await;
    }
}

/// A message read back from the broker.
#[derive(Debug, Clone)]
pub struct Message {
    pub routing_key: String,
    pub body: Value,
    pub raw: Vec<u8>,
    pub properties: BasicProperties,
}

impl Message {
    pub fn message_id(&self) -> String {
        self.properties
            .message_id()
            .as_ref()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        paperboy::amqp::header_str(&self.properties, name)
            .or_else(|| paperboy::amqp::header_u32(&self.properties, name).map(|n| n.to_string()))
    }
}

/// A worker running in this process until the returned token is cancelled.
pub async fn start_worker(settings: &Settings) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    start_worker_on(settings, None).await
}

/// An in-process worker on `redis.url` (politeness and, with `dedup.store = "redis"`, dedup shared with
/// every other worker on it), as `paperboy work` runs.
pub async fn start_fleet_worker(
    settings: &Settings,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let redis = paperboy::redis_conn::connect(settings)
        .await
        .expect("Redis must run for this test (REDIS_URL)");
    assert!(redis.is_some(), "start_fleet_worker needs redis.url");
    start_worker_on(settings, redis).await
}

async fn start_worker_on(
    settings: &Settings,
    redis: Option<paperboy::redis_conn::RedisConn>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    use paperboy::{dedup, fetch, pipeline, worker};
    let settings = Arc::new(settings.clone());
    let fetcher = fetch::PoliteFetcher::new(&settings, redis.clone()).expect("fetcher");
    let seen = dedup::build_store(&settings, redis)
        .await
        .expect("dedup store");
    let processor = pipeline::Processor::new(Arc::new(fetcher), Arc::new(seen), settings.clone());
    let metrics = Arc::new(paperboy::metrics::Metrics::new());
    let health = Arc::new(paperboy::metrics::Health::new(false));
    let w = worker::Worker::new(processor, settings, metrics, health);
    let token = CancellationToken::new();
    let t = token.clone();
    let handle = tokio::spawn(async move {
        w.run(t).await.expect("worker run");
    });
    (token, handle)
}

/// Wait until `f` holds or `timeout` passes; returns whether it held.
pub async fn wait_for<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Consume helper kept for tests that want a stream.
pub async fn first_delivery(
    ch: &Channel,
    queue: &str,
    timeout: Duration,
) -> Option<lapin::message::Delivery> {
    let mut c = ch
        .basic_consume(
            ShortString::from(queue),
            "t".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .ok()?;
    tokio::time::timeout(timeout, c.next()).await.ok()??.ok()
}

/// A distinct, plain news page for number `i` (every page has its own text, so none is a duplicate).
pub fn article_html(i: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "river", "council", "harbour", "festival", "library", "station", "market", "bridge",
        "school", "garden", "museum", "tram", "stadium", "clinic", "forest", "theatre",
    ];
    let w = |k: usize| WORDS[(i / 16usize.pow(k as u32)) % 16];
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Story {i} about the {a} | Fixture News</title></head>\
         <body><nav><a href=\"/\">Home</a></nav><article><h1>Story {i} about the {a}</h1>\
         <p>Story number {i} reports that the {a} near the {b} will be rebuilt next year after residents asked the city for years.</p>\
         <p>Officials said the work on the {c} would start in spring and that the {a} stays open while crews are busy.</p>\
         <p>Neighbours of the {b} welcomed the plan, and the {c} committee promised regular updates on progress for story {i}.</p>\
         </article><footer>Copyright Fixture News</footer></body></html>",
        a = w(0),
        b = w(1),
        c = w(2),
    )
    .into_bytes()
}

/// Routes `/p/0` .. `/p/{n-1}`, each a distinct article answered after `delay`.
pub fn article_routes(n: usize, delay: Duration) -> HashMap<String, Route> {
    (0..n)
        .map(|i| {
            let mut r = Route::html(article_html(i));
            r.delay = delay;
            (format!("/p/{i}"), r)
        })
        .collect()
}

/// Delete every Redis key under `prefix` (tests give each run its own prefix).
pub async fn cleanup_redis(prefix: &str) {
    let Ok(client) = redis::Client::open(redis_url()) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

/// `paperboy work` as a child process with `env`, its output discarded.
/// [`spawn_worker_process`] with the fleet limiter's start log (`paperboy::politeness` at debug, JSON)
/// written to `log`: read it back with [`granted_starts`].
#[allow(dead_code)]
pub fn spawn_worker_logging_starts(
    env: &[(String, String)],
    log: &std::path::Path,
) -> std::process::Child {
    worker_command(env)
        .env("RUST_LOG", "warn,paperboy::politeness=debug")
        .env("PAPERBOY__LOG__FORMAT", "json")
        .stderr(std::fs::File::create(log).expect("create the worker's log"))
        .spawn()
        .expect("start paperboy work")
}

/// The request starts the fleet's limiter granted, by host, sorted (ms on Redis' clock), from the
/// logs of workers started with [`spawn_worker_logging_starts`].
#[allow(dead_code)]
pub fn granted_starts(logs: &[std::path::PathBuf]) -> HashMap<String, Vec<u64>> {
    let mut starts: HashMap<String, Vec<u64>> = HashMap::new();
    for log in logs {
        let text = std::fs::read_to_string(log).expect("read a worker's log");
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let f = &v["fields"];
            if f["message"] != "host start granted" {
                continue;
            }
            let (Some(host), Some(ms)) = (f["host"].as_str(), f["start_ms"].as_u64()) else {
                panic!("a start line without host or start_ms: {line}");
            };
            starts.entry(host.to_string()).or_default().push(ms);
        }
    }
    for v in starts.values_mut() {
        v.sort_unstable();
    }
    starts
}

pub fn spawn_worker_process(env: &[(String, String)]) -> std::process::Child {
    worker_command(env)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start paperboy work")
}

/// `paperboy work` with `env` (and no inherited `RUST_LOG`), stdout discarded.
fn worker_command(env: &[(String, String)]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_paperboy"));
    c.env_remove("RUST_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.arg("work").stdout(std::process::Stdio::null());
    c
}
