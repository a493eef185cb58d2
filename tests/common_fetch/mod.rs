//! A hand-rolled HTTP/1.1 test server on loopback: full control over timing and bytes on the wire
//! (slow drip, garbage, gzip bombs), one listener per loopback address, request log with arrival times.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// Host header without the port, lowercased.
    pub host: String,
    /// The local address the client connected to.
    pub local: SocketAddr,
    pub headers: BTreeMap<String, String>,
    /// When the connection was accepted (one request per connection).
    pub at: Instant,
}

/// What the server sends back.
pub enum Resp {
    /// A normal response (Content-Length set unless `chunked`).
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        chunked: bool,
        delay: Duration,
    },
    /// Headers announcing `len` bytes, then one byte every `every`.
    Drip { len: usize, every: Duration },
    /// These bytes, verbatim, then close.
    Raw(Vec<u8>),
}

impl Resp {
    pub fn status(status: u16) -> Self {
        Resp::Full {
            status,
            headers: vec![],
            body: vec![],
            chunked: false,
            delay: Duration::ZERO,
        }
    }
    pub fn html(body: impl Into<Vec<u8>>) -> Self {
        Resp::status(200)
            .header("Content-Type", "text/html; charset=utf-8")
            .body(body)
    }
    pub fn text(body: impl Into<Vec<u8>>) -> Self {
        Resp::status(200)
            .header("Content-Type", "text/plain")
            .body(body)
    }
    pub fn redirect(status: u16, location: &str) -> Self {
        Resp::status(status).header("Location", location)
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        if let Resp::Full { headers, .. } = &mut self {
            headers.push((k.to_string(), v.to_string()));
        }
        self
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        if let Resp::Full { body, .. } = &mut self {
            *body = b.into();
        }
        self
    }
    pub fn chunked(mut self) -> Self {
        if let Resp::Full { chunked, .. } = &mut self {
            *chunked = true;
        }
        self
    }
    /// Wait this long before answering.
    pub fn delay(mut self, d: Duration) -> Self {
        if let Resp::Full { delay, .. } = &mut self {
            *delay = d;
        }
        self
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Resp + Send + Sync>;

/// A running server; dropped = stopped.
pub struct Server {
    pub port: u16,
    pub addrs: Vec<IpAddr>,
    log: Arc<Mutex<Vec<Req>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Server {
    /// Listen on 127.0.0.1 (random port).
    pub async fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Server {
        Self::start_on(&["127.0.0.1".parse().unwrap()], handler).await
    }

    /// Listen on each of `addrs` (all loopback), same port on all.
    pub async fn start_on(
        addrs: &[IpAddr],
        handler: impl Fn(&Req) -> Resp + Send + Sync + 'static,
    ) -> Server {
        for a in addrs {
            assert!(a.is_loopback(), "test servers listen on loopback only");
        }
        let handler: Handler = Arc::new(handler);
        let log = Arc::new(Mutex::new(Vec::new()));
        'attempt: for _ in 0..20 {
            let first = TcpListener::bind(SocketAddr::new(addrs[0], 0))
                .await
                .expect("bind");
            let port = first.local_addr().unwrap().port();
            let mut listeners = vec![first];
            for a in &addrs[1..] {
                match TcpListener::bind(SocketAddr::new(*a, port)).await {
                    Ok(l) => listeners.push(l),
                    Err(_) => continue 'attempt,
                }
            }
            // The server runs on its own thread and runtime, so its timestamps do not depend on how
            // busy the runtime of the code under test is.
            let (handler2, log2) = (handler.clone(), log.clone());
            let std_listeners: Vec<std::net::TcpListener> = listeners
                .into_iter()
                .map(|l| l.into_std().expect("into_std"))
                .collect();
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("server runtime");
                rt.block_on(async move {
                    for l in std_listeners {
                        let l = TcpListener::from_std(l).expect("from_std");
                        tokio::spawn(accept_loop(l, handler2.clone(), log2.clone()));
                    }
                    let _ = stop_rx.await;
                });
            });
            let tasks = vec![tokio::spawn(async move {
                // Dropping the sender (when the Server is dropped and this task aborted) stops the thread.
                let _keep = stop_tx;
                std::future::pending::<()>().await;
            })];
            return Server {
                port,
                addrs: addrs.to_vec(),
                log,
                tasks,
            };
        }
        panic!("could not bind the same port on {addrs:?}");
    }

    /// On 127.0.0.1: write `bytes` as soon as a client connects (without reading), then close.
    pub async fn start_raw(bytes: Vec<u8>) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    continue;
                };
                let bytes = bytes.clone();
                tokio::spawn(async move {
                    let _ = s.write_all(&bytes).await;
                    let mut sink = [0u8; 4096];
                    // Keep reading briefly so the client sees our bytes before the close.
                    let _ =
                        tokio::time::timeout(Duration::from_millis(200), s.read(&mut sink)).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        Server {
            port,
            addrs: vec!["127.0.0.1".parse().unwrap()],
            log: Arc::new(Mutex::new(Vec::new())),
            tasks: vec![task],
        }
    }

    /// `http://127.0.0.1:port{path}` (first address).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{}{}", self.addrs[0], self.port, path)
    }

    /// `http://{host}:port{path}`.
    pub fn url_for(&self, host: &str, path: &str) -> String {
        format!("http://{}:{}{}", host, self.port, path)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }

    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }
}

async fn accept_loop(l: TcpListener, handler: Handler, log: Arc<Mutex<Vec<Req>>>) {
    loop {
        let Ok((stream, _)) = l.accept().await else {
            continue;
        };
        let at = Instant::now();
        let (h, log) = (handler.clone(), log.clone());
        tokio::spawn(async move {
            let _ = serve(stream, at, h, log).await;
        });
    }
}

async fn serve(
    mut s: TcpStream,
    at: Instant,
    handler: Handler,
    log: Arc<Mutex<Vec<Req>>>,
) -> std::io::Result<()> {
    let local = s.local_addr()?;
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let mut headers = BTreeMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let host = headers
        .get("host")
        .map(|h| {
            h.rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(h)
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let req = Req {
        method,
        path,
        host,
        local,
        headers,
        at,
    };
    log.lock().unwrap().push(req.clone());
    match handler(&req) {
        Resp::Full {
            status,
            headers,
            body,
            chunked,
            delay,
        } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
            for (k, v) in &headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            if chunked {
                out.push_str("Transfer-Encoding: chunked\r\n\r\n");
                s.write_all(out.as_bytes()).await?;
                for c in body.chunks(16 * 1024) {
                    s.write_all(format!("{:x}\r\n", c.len()).as_bytes()).await?;
                    s.write_all(c).await?;
                    s.write_all(b"\r\n").await?;
                }
                s.write_all(b"0\r\n\r\n").await?;
            } else {
                out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
                s.write_all(out.as_bytes()).await?;
                s.write_all(&body).await?;
            }
        }
        Resp::Drip { len, every } => {
            let out = format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: {len}\r\n\r\n"
            );
            s.write_all(out.as_bytes()).await?;
            for _ in 0..len {
                tokio::time::sleep(every).await;
                s.write_all(b"x").await?;
                s.flush().await?;
            }
        }
        Resp::Raw(bytes) => {
            s.write_all(&bytes).await?;
        }
    }
    s.flush().await?;
    let _ = s.shutdown().await;
    Ok(())
}

/// Settings for tests: defaults, private networks allowed, politeness off, short timeouts.
pub fn settings(extra: &[(&str, &str)]) -> paperboy::config::Settings {
    let mut env: Vec<(String, String)> = vec![
        (
            "PAPERBOY__FETCH__ALLOW_PRIVATE_NETWORKS".into(),
            "true".into(),
        ),
        ("PAPERBOY__FETCH__TIMEOUT_MS".into(), "5000".into()),
        ("PAPERBOY__FETCH__CONNECT_TIMEOUT_MS".into(), "2000".into()),
        ("PAPERBOY__POLITENESS__MIN_DELAY_MS".into(), "0".into()),
    ];
    for (k, v) in extra {
        env.push((k.to_string(), v.to_string()));
    }
    paperboy::config::Settings::load_with_env(None, env).expect("test settings")
}

/// A unique prefix for Redis keys of one test.
pub fn redis_prefix(test: &str) -> String {
    format!("paperboy-test:{test}:{}:", uuid::Uuid::new_v4().simple())
}

/// A Redis connection manager, or `None` (test skipped) when Redis is not reachable.
pub async fn redis() -> Option<paperboy::redis_conn::RedisConn> {
    let url = std::env::var("PAPERBOY_TEST_REDIS").unwrap_or("redis://127.0.0.1:6379".into());
    let client = redis::Client::open(url).ok()?;
    tokio::time::timeout(
        Duration::from_secs(3),
        redis::aio::ConnectionManager::new(client),
    )
    .await
    .ok()?
    .ok()
    .map(Into::into)
}

/// Deletes every key under its prefix when dropped, even when the test panicked.
pub struct RedisKeys(pub String);

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let url = std::env::var("PAPERBOY_TEST_REDIS").unwrap_or("redis://127.0.0.1:6379".into());
        let Ok(client) = redis::Client::open(url) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.0))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// Delete every key under `prefix`.
pub async fn redis_cleanup(conn: &mut paperboy::redis_conn::RedisConn, prefix: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(conn).await;
    }
}
