//! The hardened client against a local server: redirects, caps, timeouts, SSRF guard, TLS errors.

mod common_fetch;

use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common_fetch::{settings, Resp, Server};
use paperboy::fetch::client::AddressPolicy;
use paperboy::fetch::{FetchError, Fetcher, HttpClient};
use url::Url;

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn client(extra: &[(&str, &str)]) -> HttpClient {
    HttpClient::new(&settings(extra).fetch).unwrap()
}

#[tokio::test]
async fn follows_relative_and_absolute_redirects_and_sends_headers() {
    let mut s = settings(&[]);
    s.fetch
        .resolve
        .insert("localhost-alias.test".into(), "127.0.0.1".into());
    let srv = Server::start_on(&["127.0.0.1".parse().unwrap()], move |r| {
        match r.path.as_str() {
            "/start" => Resp::redirect(301, "/middle"),
            "/middle" => Resp::redirect(
                302,
                &format!("http://localhost-alias.test:{}/end?x=1", r.local.port()),
            ),
            "/end?x=1" => Resp::html("<p>done</p>").header("Content-Language", "de"),
            _ => Resp::status(404),
        }
    })
    .await;
    let c = HttpClient::new(&s.fetch).unwrap();
    let page = c.fetch(&url(&srv.url("/start"))).await.unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(
        page.final_url.as_str(),
        format!("http://localhost-alias.test:{}/end?x=1", srv.port)
    );
    assert_eq!(&page.body[..], b"<p>done</p>");
    assert_eq!(page.content_language.as_deref(), Some("de"));
    assert!(page
        .content_type
        .as_deref()
        .unwrap()
        .starts_with("text/html"));
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 3);
    let h = &reqs[0].headers;
    assert!(h["user-agent"].starts_with("paperboy/"), "{h:?}");
    assert!(h["accept"].contains("text/html"), "{h:?}");
    assert!(h.contains_key("accept-language"), "{h:?}");
    assert_eq!(reqs[2].host, "localhost-alias.test");
}

#[tokio::test]
async fn redirect_loop_is_detected() {
    let srv = Server::start(|r| match r.path.as_str() {
        "/a" => Resp::redirect(302, "/b"),
        "/b" => Resp::redirect(307, "/a#frag"),
        _ => Resp::status(404),
    })
    .await;
    let err = client(&[]).fetch(&url(&srv.url("/a"))).await.unwrap_err();
    assert!(matches!(err, FetchError::RedirectLoop { .. }), "{err:?}");
    assert_eq!(err.reason(), "redirect_loop");
    assert_eq!(srv.requests().len(), 2);
}

#[tokio::test]
async fn too_many_redirects() {
    let srv = Server::start(|r| {
        let n: u32 = r.path.trim_start_matches("/n/").parse().unwrap_or(0);
        Resp::redirect(302, &format!("/n/{}", n + 1))
    })
    .await;
    let c = client(&[("PAPERBOY__FETCH__MAX_REDIRECTS", "3")]);
    let err = c.fetch(&url(&srv.url("/n/0"))).await.unwrap_err();
    assert!(
        matches!(err, FetchError::TooManyRedirects { max: 3, .. }),
        "{err:?}"
    );
    // The original request plus 3 followed redirects.
    assert_eq!(srv.requests().len(), 4);
}

#[tokio::test]
async fn exactly_max_redirects_is_fine() {
    let srv = Server::start(|r| {
        let n: u32 = r.path.trim_start_matches("/n/").parse().unwrap_or(0);
        if n == 3 {
            Resp::html("ok")
        } else {
            Resp::redirect(302, &format!("/n/{}", n + 1))
        }
    })
    .await;
    let c = client(&[("PAPERBOY__FETCH__MAX_REDIRECTS", "3")]);
    let page = c.fetch(&url(&srv.url("/n/0"))).await.unwrap();
    assert_eq!(page.status, 200);
    assert!(page.final_url.path().ends_with("/n/3"));
}

#[tokio::test]
async fn redirect_to_other_schemes_is_bad() {
    let srv = Server::start(|r| match r.path.as_str() {
        "/ftp" => Resp::redirect(301, "ftp://example.org/file"),
        "/js" => Resp::redirect(301, "javascript:alert(1)"),
        "/file" => Resp::redirect(301, "file:///etc/passwd"),
        _ => Resp::status(404),
    })
    .await;
    let c = client(&[]);
    for p in ["/ftp", "/js", "/file"] {
        let err = c.fetch(&url(&srv.url(p))).await.unwrap_err();
        assert!(
            matches!(err, FetchError::BadRedirect { .. }),
            "{p}: {err:?}"
        );
        assert_eq!(err.reason(), "bad_redirect");
    }
}

#[tokio::test]
async fn redirect_without_location_and_errors_are_pages() {
    let srv = Server::start(|r| match r.path.as_str() {
        "/304" => Resp::status(304),
        "/500" => Resp::status(500).body("oops"),
        _ => Resp::status(404),
    })
    .await;
    let c = client(&[]);
    assert_eq!(c.fetch(&url(&srv.url("/304"))).await.unwrap().status, 304);
    let p = c.fetch(&url(&srv.url("/500"))).await.unwrap();
    assert_eq!((p.status, &p.body[..]), (500, &b"oops"[..]));
    assert_eq!(c.fetch(&url(&srv.url("/x"))).await.unwrap().status, 404);
}

#[tokio::test]
async fn body_over_the_cap_fails_with_and_without_content_length() {
    let big = vec![b'a'; 2 * 1024 * 1024];
    let big2 = big.clone();
    let srv = Server::start(move |r| match r.path.as_str() {
        "/len" => Resp::html(big2.clone()),
        "/chunked" => Resp::html(big2.clone()).chunked(),
        "/small" => Resp::html(vec![b'b'; 1024 * 1024]).chunked(),
        _ => Resp::status(404),
    })
    .await;
    let c = client(&[("PAPERBOY__FETCH__MAX_BODY_BYTES", "1048576")]);
    for p in ["/len", "/chunked"] {
        let err = c.fetch(&url(&srv.url(p))).await.unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { max: 1048576, .. }),
            "{p}: {err:?}"
        );
        assert_eq!(err.reason(), "too_large");
    }
    // Exactly at the cap is fine.
    let page = c.fetch(&url(&srv.url("/small"))).await.unwrap();
    assert_eq!(page.body.len(), 1024 * 1024);
    drop(big);
}

#[tokio::test]
async fn bodies_hold_their_share_of_the_memory_budget_until_dropped() {
    let srv = Server::start(move |r| match r.path.as_str() {
        "/len" => Resp::html(vec![b'a'; 600 * 1024]),
        "/chunked" => Resp::html(vec![b'b'; 700 * 1024]).chunked(),
        "/big" => Resp::html(vec![b'c'; 3 * 1024 * 1024]),
        _ => Resp::status(404),
    })
    .await;
    // A 2 MiB budget; bodies up to 10 MiB.
    let c = client(&[("PAPERBOY__FETCH__MAX_BUFFERED_BYTES", "2097152")]);
    let a = c.fetch(&url(&srv.url("/len"))).await.unwrap();
    assert_eq!(a.hold.kib(), 600, "announced length");
    let b = c.fetch(&url(&srv.url("/chunked"))).await.unwrap();
    assert_eq!(b.body.len(), 700 * 1024);
    assert_eq!(
        b.hold.kib(),
        700,
        "guessed, doubled, then trimmed to the body"
    );
    // 1,300 KiB of 2,048 are held: a 3 MiB body needs the whole budget, so it waits for both pages.
    let c2 = c.clone();
    let big_url = url(&srv.url("/big"));
    let big = tokio::spawn(async move { c2.fetch(&big_url).await });
    while !srv.requests().iter().any(|r| r.path == "/big") {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!big.is_finished());
    drop((a, b));
    let big = tokio::time::timeout(Duration::from_secs(10), big)
        .await
        .expect("the budget is given back when pages are dropped")
        .unwrap()
        .unwrap();
    assert_eq!(big.body.len(), 3 * 1024 * 1024);
    assert_eq!(
        big.hold.kib(),
        2048,
        "a body over the budget takes all of it"
    );
    drop(big);
    let again = c.fetch(&url(&srv.url("/len"))).await.unwrap();
    assert_eq!(again.hold.kib(), 600);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn gzip_bomb_stops_at_the_cap_and_gzip_decodes() {
    let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
    assert!(bomb.len() < 200 * 1024, "bomb is {} bytes", bomb.len());
    let small = gzip(b"<html>hello gzip</html>");
    let srv = Server::start(move |r| match r.path.as_str() {
        "/bomb" => Resp::html(bomb.clone()).header("Content-Encoding", "gzip"),
        "/small" => Resp::html(small.clone()).header("Content-Encoding", "gzip"),
        _ => Resp::status(404),
    })
    .await;
    let c = client(&[("PAPERBOY__FETCH__MAX_BODY_BYTES", "1048576")]);
    let started = Instant::now();
    let err = c.fetch(&url(&srv.url("/bomb"))).await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let page = c.fetch(&url(&srv.url("/small"))).await.unwrap();
    assert_eq!(&page.body[..], b"<html>hello gzip</html>");
    assert!(srv.requests()[0]
        .headers
        .get("accept-encoding")
        .is_some_and(|v| v.contains("gzip")));
}

#[tokio::test]
async fn slow_drip_is_cut_by_the_total_timeout() {
    let srv = Server::start(|_| Resp::Drip {
        len: 100,
        every: Duration::from_millis(1000),
    })
    .await;
    let c = client(&[("PAPERBOY__FETCH__TIMEOUT_MS", "1500")]);
    let started = Instant::now();
    let err = c.fetch(&url(&srv.url("/drip"))).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(2500),
        "took {took:?}"
    );
}

#[tokio::test]
async fn slow_headers_time_out_too() {
    let srv = Server::start(|_| Resp::html("late").delay(Duration::from_secs(10))).await;
    let c = client(&[("PAPERBOY__FETCH__TIMEOUT_MS", "800")]);
    let started = Instant::now();
    let err = c.fetch(&url(&srv.url("/"))).await.unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(2000));
}

#[tokio::test]
async fn loopback_and_private_addresses_are_refused_without_connecting() {
    let srv = Server::start(|_| Resp::html("secret")).await;
    let mut s = settings(&[("PAPERBOY__FETCH__ALLOW_PRIVATE_NETWORKS", "false")]);
    s.fetch.resolve.insert("a.test".into(), "10.0.0.1".into());
    s.fetch
        .resolve
        .insert("meta.test".into(), "169.254.169.254".into());
    s.fetch.resolve.insert("lo.test".into(), "127.0.0.1".into());
    s.fetch.resolve.insert("v6.test".into(), "::1".into());
    let c = HttpClient::new(&s.fetch).unwrap();
    let port = srv.port;
    for u in [
        srv.url("/"),
        format!("http://lo.test:{port}/"),
        format!("http://localhost:{port}/"),
        "http://a.test/".to_string(),
        "http://meta.test/latest/meta-data/".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/".to_string(),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://v6.test:{port}/"),
        "http://100.64.0.1/".to_string(),
        format!("http://0.0.0.0:{port}/"),
    ] {
        let started = Instant::now();
        let err = c.fetch(&url(&u)).await.unwrap_err();
        assert!(matches!(err, FetchError::Blocked { .. }), "{u}: {err:?}");
        assert_eq!(err.reason(), "blocked_address");
        assert!(!err.is_transient());
        assert!(started.elapsed() < Duration::from_millis(500), "{u}");
    }
    assert_eq!(
        srv.requests().len(),
        0,
        "the guard must refuse before connecting"
    );
}

/// Treat 127.0.0.2 as "public" so a redirect from it to internal addresses can be exercised.
fn only_127_0_0_2_is_public() -> AddressPolicy {
    Arc::new(|ip: IpAddr| {
        if ip == "127.0.0.2".parse::<IpAddr>().unwrap() {
            None
        } else {
            Some("test-internal")
        }
    })
}

#[tokio::test]
async fn redirect_to_private_address_is_refused_on_each_hop() {
    let inner = Server::start(|_| Resp::html("internal")).await;
    let inner_port = inner.port;
    let srv = Server::start_on(&["127.0.0.2".parse().unwrap()], move |r| {
        match r.path.as_str() {
            "/to-literal" => Resp::redirect(302, &format!("http://127.0.0.1:{inner_port}/")),
            "/to-name" => Resp::redirect(302, &format!("http://inner.test:{inner_port}/")),
            "/to-metadata" => Resp::redirect(302, "http://169.254.169.254/latest/meta-data/"),
            "/to-mapped" => {
                Resp::redirect(302, &format!("http://[::ffff:127.0.0.1]:{inner_port}/"))
            }
            "/ok" => Resp::redirect(302, "/fine"),
            "/fine" => Resp::html("public"),
            _ => Resp::status(404),
        }
    })
    .await;
    let mut s = settings(&[]);
    s.fetch
        .resolve
        .insert("pub.test".into(), "127.0.0.2".into());
    s.fetch
        .resolve
        .insert("inner.test".into(), "127.0.0.1".into());
    let c = HttpClient::with_address_policy(&s.fetch, Some(only_127_0_0_2_is_public())).unwrap();
    let page = c
        .fetch(&url(&srv.url_for("pub.test", "/ok")))
        .await
        .unwrap();
    assert_eq!(&page.body[..], b"public");
    for p in ["/to-literal", "/to-name", "/to-metadata", "/to-mapped"] {
        let err = c
            .fetch(&url(&srv.url_for("pub.test", p)))
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Blocked { .. }), "{p}: {err:?}");
    }
    assert_eq!(
        inner.requests().len(),
        0,
        "internal server must not be reached"
    );
}

#[tokio::test]
async fn non_html_is_returned_with_its_content_type() {
    let srv = Server::start(|_| {
        Resp::status(200)
            .header("Content-Type", "application/pdf")
            .body(&b"%PDF-1.7 fake"[..])
    })
    .await;
    let page = client(&[]).fetch(&url(&srv.url("/doc.pdf"))).await.unwrap();
    assert_eq!(page.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(&page.body[..], b"%PDF-1.7 fake");
    assert!(page.content_language.is_none());
    assert!(!page.fetched_at.is_empty());
}

#[tokio::test]
async fn tls_to_a_plain_tcp_server_fails_fast() {
    let srv = Server::start_raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello garbage\r\n".to_vec(),
    )
    .await;
    let srv2 = Server::start_raw(vec![0xde; 64]).await;
    let c = client(&[("PAPERBOY__FETCH__TIMEOUT_MS", "3000")]);
    for port in [srv.port, srv2.port] {
        let started = Instant::now();
        let err = c
            .fetch(&url(&format!("https://127.0.0.1:{port}/")))
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Tls { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_millis(2500));
    }
}

#[tokio::test]
async fn refused_connection_is_transient() {
    // Bind then drop to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = client(&[]);
    let err = c
        .fetch(&url(&format!("http://127.0.0.1:{port}/")))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn the_total_timeout_covers_every_redirect_hop() {
    let srv = Server::start(|r| match r.path.as_str() {
        "/1" => Resp::redirect(302, "/2").delay(Duration::from_millis(600)),
        "/2" => Resp::redirect(302, "/3").delay(Duration::from_millis(600)),
        _ => Resp::html("late"),
    })
    .await;
    let c = client(&[("PAPERBOY__FETCH__TIMEOUT_MS", "1000")]);
    let started = Instant::now();
    let err = c.fetch(&url(&srv.url("/1"))).await.unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn truncating_get_keeps_the_first_bytes() {
    use paperboy::fetch::client::OverCap;
    let srv = Server::start(|_| Resp::text(vec![b'x'; 5000]).chunked()).await;
    let c = client(&[]);
    let page = c
        .get(&url(&srv.url("/robots.txt")), 1024, OverCap::Truncate)
        .await
        .unwrap();
    assert_eq!(page.body.len(), 1024);
    let err = c
        .get(&url(&srv.url("/robots.txt")), 1024, OverCap::Fail)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { max: 1024, .. }),
        "{err:?}"
    );
}
