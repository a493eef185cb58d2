//! Connection reuse and the DNS cache of the client, against servers on loopback: a keep-alive HTTP
//! server that counts the connections it accepts, and a tiny DNS server that counts the queries it
//! answers (and answers with the TTL and address the test gives it).

mod common_fetch;
mod private_services;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common_fetch::settings;
use paperboy::fetch::client::AddressPolicy;
use paperboy::fetch::{FetchError, Fetcher, HttpClient};
use private_services::TestCerts;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use url::Url;

/// HTTP/1.1 with keep-alive (plain, or HTTPS with a test CA's certificate): every request answered with a
/// short page, connections kept open. Counts accepted connections (= TLS handshakes for HTTPS).
struct KeepAliveServer {
    port: u16,
    scheme: &'static str,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl KeepAliveServer {
    async fn start() -> Self {
        Self::start_with(None).await
    }

    /// HTTPS with `certs`' server certificate (valid for 127.0.0.1).
    async fn start_tls(certs: &TestCerts) -> Self {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(&certs.cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&certs.key).unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Self::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (c, r) = (connections.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve_keep_alive(s, r).await,
                        Some(a) => {
                            if let Ok(s) = a.accept(s).await {
                                serve_keep_alive(s, r).await
                            }
                        }
                    }
                });
            }
        });
        Self {
            port,
            scheme,
            connections,
            requests,
        }
    }

    fn url(&self, host: &str) -> Url {
        Url::parse(&format!("{}://{host}:{}/page", self.scheme, self.port)).unwrap()
    }
}

/// Answer every request on `s` until the client closes it.
async fn serve_keep_alive<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, requests: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let Ok(n) = s.read(&mut tmp).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&tmp[..n]);
        while let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..i + 4);
            requests.fetch_add(1, Ordering::SeqCst);
            let body = "<html><body><p>kept alive</p></body></html>";
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            if s.write_all(format!("{head}{body}").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

#[tokio::test]
async fn a_hosts_next_pages_reuse_its_connection_by_default() {
    let srv = KeepAliveServer::start().await;
    let c = HttpClient::new(&settings(&[]).fetch).unwrap();
    for _ in 0..3 {
        c.fetch(&srv.url("127.0.0.1")).await.unwrap();
    }
    assert_eq!(srv.requests.load(Ordering::SeqCst), 3);
    assert_eq!(
        srv.connections.load(Ordering::SeqCst),
        1,
        "3 pages, one connection"
    );
}

#[tokio::test]
async fn idle_connections_close_after_the_idle_timeout_or_when_turned_off() {
    let srv = KeepAliveServer::start().await;
    let c =
        HttpClient::new(&settings(&[("PAPERBOY__FETCH__IDLE_TIMEOUT_MS", "200")]).fetch).unwrap();
    c.fetch(&srv.url("127.0.0.1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.fetch(&srv.url("127.0.0.1")).await.unwrap();
    assert_eq!(
        srv.connections.load(Ordering::SeqCst),
        2,
        "closed when idle"
    );

    let srv = KeepAliveServer::start().await;
    let off = settings(&[("PAPERBOY__FETCH__MAX_IDLE_CONNECTIONS_PER_HOST", "0")]);
    let c = HttpClient::new(&off.fetch).unwrap();
    for _ in 0..3 {
        c.fetch(&srv.url("127.0.0.1")).await.unwrap();
    }
    assert_eq!(srv.connections.load(Ordering::SeqCst), 3);
}

/// HTTPS through a test CA (`fetch.ca_file`): with keep-alive one TLS handshake serves a host's pages;
/// with it off every page pays one. Without the CA the page fails as a TLS error naming the fix.
#[tokio::test]
async fn https_pages_of_a_host_share_one_tls_handshake() {
    let certs = TestCerts::generate();
    let ca = certs.ca.to_str().unwrap().to_string();
    let pages = 5;
    for (idle, handshakes) in [("1", 1), ("0", pages)] {
        let srv = KeepAliveServer::start_tls(&certs).await;
        let s = settings(&[
            ("PAPERBOY__FETCH__CA_FILE", ca.as_str()),
            ("PAPERBOY__FETCH__MAX_IDLE_CONNECTIONS_PER_HOST", idle),
        ]);
        let c = HttpClient::new(&s.fetch).unwrap();
        for _ in 0..pages {
            let page = c.fetch(&srv.url("127.0.0.1")).await.unwrap();
            assert_eq!(page.status, 200);
        }
        assert_eq!(srv.requests.load(Ordering::SeqCst), pages);
        assert_eq!(
            srv.connections.load(Ordering::SeqCst),
            handshakes,
            "TLS handshakes for {pages} pages with max_idle_connections_per_host = {idle}"
        );
    }
    let srv = KeepAliveServer::start_tls(&certs).await;
    let c = HttpClient::new(&settings(&[]).fetch).unwrap();
    let e = c.fetch(&srv.url("127.0.0.1")).await.unwrap_err();
    assert!(matches!(e, FetchError::Tls { .. }), "{e:?}");
}

/// A DNS server on loopback (UDP): A queries for the names it knows are answered with their address and
/// TTL, everything else with an empty answer. Counts the A queries per name.
struct DnsServer {
    port: u16,
    queries: Arc<Mutex<HashMap<String, usize>>>,
}

impl DnsServer {
    async fn start(names: &[(&str, Ipv4Addr, u32)]) -> Self {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = sock.local_addr().unwrap().port();
        let names: HashMap<String, (Ipv4Addr, u32)> = names
            .iter()
            .map(|(n, ip, ttl)| (n.to_string(), (*ip, *ttl)))
            .collect();
        let queries: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let q = queries.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                if let Some(reply) = answer(&buf[..n], &names, &q) {
                    let _ = sock.send_to(&reply, from).await;
                }
            }
        });
        Self { port, queries }
    }

    fn queries_for(&self, name: &str) -> usize {
        self.queries.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

/// The reply to one query (RFC 1035 wire format): the header and question echoed, one A record when the
/// question is an A query for a known name.
fn answer(
    q: &[u8],
    names: &HashMap<String, (Ipv4Addr, u32)>,
    counts: &Mutex<HashMap<String, usize>>,
) -> Option<Vec<u8>> {
    let mut i = 12;
    let mut labels = Vec::new();
    while *q.get(i)? != 0 {
        let len = q[i] as usize;
        labels.push(String::from_utf8_lossy(q.get(i + 1..i + 1 + len)?).to_ascii_lowercase());
        i += 1 + len;
    }
    let qtype = u16::from_be_bytes([*q.get(i + 1)?, *q.get(i + 2)?]);
    let question_end = i + 5;
    let name = labels.join(".");
    let known = names.get(&name).filter(|_| qtype == 1);
    if qtype == 1 {
        *counts.lock().unwrap().entry(name).or_default() += 1;
    }
    let mut r = Vec::with_capacity(64);
    r.extend_from_slice(&q[..2]); // id
    r.extend_from_slice(&[0x81, 0x80]); // response, recursion desired + available, NOERROR
    r.extend_from_slice(&[0, 1, 0, u8::from(known.is_some()), 0, 0, 0, 0]);
    r.extend_from_slice(q.get(12..question_end)?);
    if let Some((ip, ttl)) = known {
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]); // name pointer, type A, class IN
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&[0, 4]);
        r.extend_from_slice(&ip.octets());
    }
    Some(r)
}

fn dns_settings(dns: &DnsServer, extra: &[(&str, &str)]) -> paperboy::config::Settings {
    let server = format!("127.0.0.1:{}", dns.port);
    let mut env = vec![
        // Every fetch opens a connection, so every fetch resolves: what is left is the cache.
        ("PAPERBOY__FETCH__MAX_IDLE_CONNECTIONS_PER_HOST", "0"),
    ];
    env.extend_from_slice(extra);
    let mut s = settings(&env);
    s.fetch.dns_servers = vec![server];
    s
}

#[tokio::test]
async fn dns_answers_are_cached_for_their_ttl() {
    let srv = KeepAliveServer::start().await;
    let dns = DnsServer::start(&[("news.test", Ipv4Addr::LOCALHOST, 1)]).await;
    let s = dns_settings(&dns, &[("PAPERBOY__FETCH__DNS_MIN_TTL_S", "1")]);
    let c = HttpClient::new(&s.fetch).unwrap();
    for _ in 0..3 {
        c.fetch(&srv.url("news.test")).await.unwrap();
    }
    assert_eq!(srv.connections.load(Ordering::SeqCst), 3);
    assert_eq!(
        dns.queries_for("news.test"),
        1,
        "3 connections, one look-up"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.fetch(&srv.url("news.test")).await.unwrap();
    assert_eq!(
        dns.queries_for("news.test"),
        2,
        "looked up again once the TTL ran out"
    );
}

#[tokio::test]
async fn cached_addresses_still_pass_the_ssrf_guard() {
    let srv = KeepAliveServer::start().await;
    let dns = DnsServer::start(&[
        ("inner.test", Ipv4Addr::LOCALHOST, 300),
        ("pub.test", Ipv4Addr::new(127, 0, 0, 2), 300),
    ])
    .await;
    let only_127_0_0_2: AddressPolicy = Arc::new(|ip: IpAddr| {
        (ip != IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))).then_some("not public in this test")
    });
    let s = dns_settings(&dns, &[]);
    let c = HttpClient::with_address_policy(&s.fetch, Some(only_127_0_0_2)).unwrap();
    for _ in 0..2 {
        let err = c.fetch(&srv.url("inner.test")).await.unwrap_err();
        assert!(matches!(err, FetchError::Blocked { .. }), "{err:?}");
    }
    assert_eq!(
        dns.queries_for("inner.test"),
        1,
        "the second answer came from the cache"
    );
    assert_eq!(srv.connections.load(Ordering::SeqCst), 0, "never connected");
    // The guard lets the allowed address through (nothing listens on 127.0.0.2: a connect error).
    let err = c.fetch(&srv.url("pub.test")).await.unwrap_err();
    assert!(!matches!(err, FetchError::Blocked { .. }), "{err:?}");
}
