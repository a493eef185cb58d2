//! Benchmark fixture server: the corpus pages, served on many loopback hosts at once.
//!
//! usage: fixture_server [--hosts 64] [--port 0] [--first 2] [--ready-file FILE]
//!                       [--tls-cert PEM --tls-key PEM] DIR...
//!
//! Loads every `*.html.gz` / `*.html` of each DIR (sorted; DIRs in the order given), binds one listener
//! per address 127.0.0.<first> .. 127.0.0.<first+hosts-1>, all on one port (0 = pick a free one), and
//! serves:
//! - `/p/<index>` (any query string): page number `<index>` of the concatenated list, raw bytes,
//!   `text/html; charset=utf-8`;
//! - `/robots.txt`: allow all;
//! - `/__stats` (any host): JSON with, per host, the number of page requests, the first and last arrival
//!   (ms since the server started) and the smallest gap between consecutive page-request arrivals
//!   (for checking politeness), plus robots.txt hits; `/__reset` clears the log.
//!
//! With `--tls-cert`/`--tls-key` the same hosts also answer HTTPS on a second common port (a TLS front that
//! forwards each connection to the plain listener of its address); `/__stats` then counts the TLS
//! handshakes completed (`tls_handshakes`), so a benchmark can report handshakes per page.
//!
//! When ready it prints `ready port=<port> pages=<n> hosts=<h>` (plus ` tls_port=<port>` with TLS) on
//! stdout (and into `--ready-file`).
//! Single-threaded on purpose: it shares the 2 cores with what it measures. Stops on SIGTERM/SIGINT.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Response, StatusCode};
use bytes::Bytes;

struct Shared {
    pages: Vec<Bytes>,
    start: Instant,
    first: u8,
    /// Per host: arrival times (µs since start) of page requests.
    log: Vec<Mutex<Vec<u64>>>,
    robots: Vec<Mutex<u64>>,
    /// TLS handshakes completed by the HTTPS front.
    tls_handshakes: AtomicU64,
}

fn read_page(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let raw = std::fs::read(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: fixture_server [--hosts 64] [--port 0] [--first 2] [--ready-file FILE] \
         [--tls-cert PEM --tls-key PEM] DIR..."
    );
    std::process::exit(2)
}

fn main() {
    let mut hosts = 64usize;
    let mut port = 0u16;
    let mut first = 2u8;
    let mut ready_file: Option<PathBuf> = None;
    let (mut tls_cert, mut tls_key): (Option<PathBuf>, Option<PathBuf>) = (None, None);
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--hosts" => hosts = val().parse().unwrap_or_else(|_| usage()),
            "--port" => port = val().parse().unwrap_or_else(|_| usage()),
            "--first" => first = val().parse().unwrap_or_else(|_| usage()),
            "--ready-file" => ready_file = Some(PathBuf::from(val())),
            "--tls-cert" => tls_cert = Some(PathBuf::from(val())),
            "--tls-key" => tls_key = Some(PathBuf::from(val())),
            "-h" | "--help" => usage(),
            _ => dirs.push(PathBuf::from(a)),
        }
    }
    if dirs.is_empty() || hosts == 0 || first as usize + hosts > 255 {
        usage();
    }
    let tls = match (tls_cert, tls_key) {
        (Some(c), Some(k)) => Some(tls_acceptor(&c, &k)),
        (None, None) => None,
        _ => usage(),
    };
    let mut pages = Vec::new();
    for d in &dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(d)
            .unwrap_or_else(|e| {
                eprintln!("fixture_server: cannot read {}: {e}", d.display());
                std::process::exit(2)
            })
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p.to_string_lossy();
                n.ends_with(".html.gz") || n.ends_with(".html")
            })
            .collect();
        files.sort();
        for f in files {
            match read_page(&f) {
                Ok(b) => pages.push(Bytes::from(b)),
                Err(e) => eprintln!("fixture_server: skipping {}: {e}", f.display()),
            }
        }
    }
    if pages.is_empty() {
        eprintln!("fixture_server: no pages found");
        std::process::exit(2);
    }
    let shared = Arc::new(Shared {
        pages,
        start: Instant::now(),
        first,
        log: (0..hosts).map(|_| Mutex::new(Vec::new())).collect(),
        robots: (0..hosts).map(|_| Mutex::new(0)).collect(),
        tls_handshakes: AtomicU64::new(0),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(serve(shared, hosts, port, first, ready_file, tls));
}

/// A TLS server config from a PEM certificate chain and key.
fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("fixture_server: {what}: {e}");
        std::process::exit(2)
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .unwrap_or_else(|e| fail("--tls-cert", &e))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| fail("--tls-cert", &e));
    let key = PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| fail("--tls-key", &e));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| fail("TLS", &e))
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap_or_else(|e| fail("TLS certificate", &e));
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// The HTTPS front of one address: each connection's TLS is terminated here and its bytes forwarded to
/// the plain listener `plain` of the same address.
async fn tls_front(
    l: tokio::net::TcpListener,
    plain: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let conn = tokio::select! {
            c = l.accept() => c,
            _ = stop.cancelled() => return,
        };
        let Ok((s, _)) = conn else { continue };
        let (acceptor, shared) = (acceptor.clone(), shared.clone());
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(s).await else {
                return;
            };
            shared.tls_handshakes.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut back) = tokio::net::TcpStream::connect(plain).await {
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut back).await;
            }
        });
    }
}

async fn bind_all(
    hosts: usize,
    port: u16,
    first: u8,
) -> std::io::Result<(u16, Vec<tokio::net::TcpListener>)> {
    for _attempt in 0..20 {
        let addr0 = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, first)), port);
        let l0 = tokio::net::TcpListener::bind(addr0).await?;
        let p = l0.local_addr()?.port();
        let mut ls = vec![l0];
        let mut ok = true;
        for i in 1..hosts {
            let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, first + i as u8)), p);
            match tokio::net::TcpListener::bind(a).await {
                Ok(l) => ls.push(l),
                Err(e) if port == 0 => {
                    eprintln!("fixture_server: port {p} busy on {a} ({e}), trying another");
                    ok = false;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if ok {
            return Ok((p, ls));
        }
    }
    Err(std::io::Error::other("no common free port"))
}

async fn serve(
    shared: Arc<Shared>,
    hosts: usize,
    port: u16,
    first: u8,
    ready_file: Option<PathBuf>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let (port, listeners) = bind_all(hosts, port, first).await.unwrap_or_else(|e| {
        eprintln!("fixture_server: bind: {e}");
        std::process::exit(2)
    });
    let fronts = match &tls {
        Some(_) => Some(bind_all(hosts, 0, first).await.unwrap_or_else(|e| {
            eprintln!("fixture_server: bind (TLS): {e}");
            std::process::exit(2)
        })),
        None => None,
    };
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(shared.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tasks = Vec::new();
    for l in listeners {
        let app = app.clone();
        let s = stop.clone();
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(l, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await;
        }));
    }
    let mut line = format!(
        "ready port={port} pages={} hosts={hosts}",
        shared.pages.len()
    );
    if let (Some((tls_port, ls)), Some(acceptor)) = (fronts, tls) {
        for (i, l) in ls.into_iter().enumerate() {
            let plain =
                SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, first + i as u8)), port);
            tasks.push(tokio::spawn(tls_front(
                l,
                plain,
                acceptor.clone(),
                shared.clone(),
                stop.clone(),
            )));
        }
        line.push_str(&format!(" tls_port={tls_port}"));
    }
    println!("{line}");
    if let Some(f) = ready_file {
        std::fs::write(f, format!("{line}\n")).expect("ready file");
    }
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    stop.cancel();
    for t in tasks {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), t).await;
    }
}

fn host_index(shared: &Shared, req: &Request<Body>) -> Option<usize> {
    // The listener's own address is what the client dialled: take it from the Host header (always sent
    // by HTTP/1.1 clients), falling back to none.
    let host = req.headers().get("host")?.to_str().ok()?;
    let ip = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let ip: Ipv4Addr = ip.parse().ok()?;
    let o = ip.octets();
    if o[0] != 127 || o[3] < shared.first {
        return None;
    }
    let i = (o[3] - shared.first) as usize;
    (i < shared.log.len()).then_some(i)
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request<Body>) -> Response<Body> {
    let path = req.uri().path();
    let now_us = shared.start.elapsed().as_micros() as u64;
    if let Some(id) = path.strip_prefix("/p/") {
        let Some(page) = id.parse::<usize>().ok().and_then(|i| shared.pages.get(i)) else {
            return text(StatusCode::NOT_FOUND, "no such page");
        };
        if let Some(h) = host_index(&shared, &req) {
            shared.log[h].lock().unwrap().push(now_us);
        }
        return Response::builder()
            .status(200)
            .header("content-type", "text/html; charset=utf-8")
            .body(Body::from(page.clone()))
            .unwrap();
    }
    match path {
        "/robots.txt" => {
            if let Some(h) = host_index(&shared, &req) {
                *shared.robots[h].lock().unwrap() += 1;
            }
            Response::builder()
                .status(200)
                .header("content-type", "text/plain")
                .body(Body::from("User-agent: *\nAllow: /\n"))
                .unwrap()
        }
        "/__stats" => {
            let mut hosts = Vec::new();
            for (i, l) in shared.log.iter().enumerate() {
                let v = l.lock().unwrap();
                let mut sorted = v.clone();
                sorted.sort_unstable();
                let min_gap = sorted.windows(2).map(|w| w[1] - w[0]).min();
                hosts.push(serde_json::json!({
                    "host": format!("127.0.0.{}", shared.first as usize + i),
                    "requests": sorted.len(),
                    "robots": *shared.robots[i].lock().unwrap(),
                    "first_ms": sorted.first().map(|t| *t as f64 / 1e3),
                    "last_ms": sorted.last().map(|t| *t as f64 / 1e3),
                    "min_gap_ms": min_gap.map(|g| g as f64 / 1e3),
                }));
            }
            let body = serde_json::json!({
                "pages": shared.pages.len(),
                "hosts": hosts,
                "tls_handshakes": shared.tls_handshakes.load(Ordering::Relaxed),
            });
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap()
        }
        "/__reset" => {
            for l in &shared.log {
                l.lock().unwrap().clear();
            }
            for r in &shared.robots {
                *r.lock().unwrap() = 0;
            }
            shared.tls_handshakes.store(0, Ordering::Relaxed);
            text(StatusCode::OK, "reset")
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

fn text(status: StatusCode, s: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Body::from(s))
        .unwrap()
}
