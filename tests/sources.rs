//! Feeds and sitemaps as jobs, URLs seen before skipped, unchanged sources not downloaded again.
//!
//! - Over the real broker: a feed polled three times while items are added, then once unchanged
//!   (304): each article is fetched once, each poll ends in one `outcome.expanded` with its counts,
//!   and the unchanged poll ends as `outcome.skipped.not_modified`.
//! - Without a broker (the pipeline as `paperboy work` runs it): Atom, JSON Feed, a sitemap index with
//!   a gzipped news sitemap, the limits (depth, other hosts, age), and bad input (malformed XML, an
//!   entity bomb, a feed of a million items, an HTML page sent as a feed, a gzip bomb).

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use common::{article_html, start_worker, TestBroker};
use paperboy::config::Settings;
use paperboy::dedup::MemoryStore;
use paperboy::fetch::PoliteFetcher;
use paperboy::message::{Job, JobKind};
use paperboy::pipeline::{Decision, JobInput, Processor};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

/// One route: content type, body, and an ETag (answered with 304 when the request names it).
#[derive(Clone)]
struct Page {
    content_type: String,
    body: Vec<u8>,
    etag: Option<String>,
}

/// (path, If-None-Match) of one request.
type Seen = (String, Option<String>);

/// A site whose routes tests change while it runs; every request is recorded with its
/// `If-None-Match` header.
#[derive(Clone)]
struct Site {
    addr: std::net::SocketAddr,
    routes: Arc<Mutex<HashMap<String, Page>>>,
    requests: Arc<Mutex<Vec<Seen>>>,
}

impl Site {
    async fn start() -> Site {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let site = Site {
            addr: listener.local_addr().unwrap(),
            routes: Arc::default(),
            requests: Arc::default(),
        };
        let s = site.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let s = s.clone();
            async move {
                let path = req.uri().path().to_string();
                let inm = req
                    .headers()
                    .get("if-none-match")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                s.requests.lock().unwrap().push((path.clone(), inm.clone()));
                let page = s.routes.lock().unwrap().get(&path).cloned();
                match page {
                    Some(p) if p.etag.is_some() && p.etag == inm => Response::builder()
                        .status(304)
                        .header("etag", p.etag.unwrap())
                        .body(Body::empty())
                        .unwrap(),
                    Some(p) => {
                        let mut b = Response::builder()
                            .status(200)
                            .header("content-type", p.content_type);
                        if let Some(e) = p.etag {
                            b = b.header("etag", e);
                        }
                        b.body(Body::from(p.body)).unwrap()
                    }
                    None => Response::builder()
                        .status(404)
                        .body(Body::from("no"))
                        .unwrap(),
                }
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        site
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, path: &str, content_type: &str, body: Vec<u8>, etag: Option<&str>) {
        self.routes.lock().unwrap().insert(
            path.to_string(),
            Page {
                content_type: content_type.into(),
                body,
                etag: etag.map(str::to_string),
            },
        );
    }

    fn hits(&self, path: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }

    /// Article pages `/p/0` .. `/p/{n-1}`.
    fn articles(&self, n: usize) {
        for i in 0..n {
            self.set(
                &format!("/p/{i}"),
                "text/html; charset=utf-8",
                article_html(i),
                None,
            );
        }
    }
}

fn fixture(name: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    String::from_utf8(common::fixture(&format!("sources/{name}")))
        .unwrap()
        .replace("{{NOW}}", &now)
}

/// The RSS fixture listing `/p/0` .. `/p/{n-1}`, each with a title, a recent date and an author.
fn rss(n: usize) -> Vec<u8> {
    let now = chrono::Utc::now();
    let items: String = (0..n)
        .map(|i| {
            let at = (now - chrono::Duration::minutes(i as i64)).to_rfc2822();
            format!("<item><title>Feed title {i}</title><link>/p/{i}</link><pubDate>{at}</pubDate><dc:creator>Feed Author {i}</dc:creator></item>")
        })
        .collect();
    fixture("rss.xml").replace("{{ITEMS}}", &items).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polled_feed_fetches_each_article_once_and_an_unchanged_feed_not_at_all() {
    let broker = TestBroker::new("sources_poll");
    poll(&broker, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polled_feed_fetches_each_article_once_across_two_workers_on_redis() {
    let url = common::redis_url();
    let broker = TestBroker::with_env(
        "sources_poll_redis",
        &[
            ("PAPERBOY__REDIS__URL", url.as_str()),
            ("PAPERBOY__DEDUP__STORE", "redis"),
        ],
    );
    poll(&broker, 2).await;
    common::cleanup_redis(&broker.settings.redis.key_prefix).await;
}

async fn poll(broker: &TestBroker, workers: usize) {
    let site = Site::start().await;
    site.articles(4);
    broker.declare().await;
    let mut running = Vec::new();
    for _ in 0..workers {
        running.push(if workers == 1 {
            start_worker(&broker.settings).await
        } else {
            common::start_fleet_worker(&broker.settings).await
        });
    }
    let feed = site.url("/feed.xml");
    let mut fetched_articles = Vec::new();
    // Three polls while items are added (the feed changes, so its ETag does too), then one unchanged.
    for (poll, n) in [(1, 2), (2, 3), (3, 4)] {
        site.set(
            "/feed.xml",
            "application/rss+xml",
            rss(n),
            Some(&format!("\"v{n}\"")),
        );
        let id = format!("poll-{poll}");
        broker
            .publish_raw(
                json!({"url": feed, "kind": "feed", "id": id, "meta": {"desk": "world"}})
                    .to_string()
                    .as_bytes(),
                "application/json",
            )
            .await;
        let new = if poll == 1 { 2 } else { 1 };
        let msgs = broker.outputs(1 + new, T).await;
        assert_eq!(
            msgs.len(),
            1 + new,
            "poll {poll}: {:?}",
            msgs.iter().map(|m| &m.routing_key).collect::<Vec<_>>()
        );
        let expanded: Vec<_> = msgs
            .iter()
            .filter(|m| m.routing_key == "outcome.expanded")
            .collect();
        assert_eq!(expanded.len(), 1, "poll {poll}");
        let x = &expanded[0].body;
        assert_eq!(x["job_id"], id.as_str());
        assert_eq!(x["expansion"]["source"], "feed");
        assert_eq!(x["expansion"]["items"], n);
        assert_eq!(x["expansion"]["new"], new);
        assert_eq!(x["expansion"]["seen"], n - new);
        for a in msgs
            .iter()
            .filter(|m| m.routing_key.starts_with("article."))
        {
            // The page has a title and no date or byline: the feed's fill the gaps; meta passes on.
            let i: usize = a.body["url"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                a.body["title"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("Story {i}")),
                "page title wins"
            );
            assert_eq!(a.body["authors"], json!([format!("Feed Author {i}")]));
            assert!(a.body["published_at"].is_string());
            assert_eq!(a.body["meta"]["desk"], "world");
            fetched_articles.push(i);
        }
    }
    fetched_articles.sort();
    assert_eq!(fetched_articles, [0, 1, 2, 3]);
    for i in 0..4 {
        assert_eq!(
            site.hits(&format!("/p/{i}")),
            1,
            "article {i} fetched more than once"
        );
    }
    // Unchanged feed: the worker sends the ETag of the last poll and gets 304.
    broker
        .publish_raw(
            json!({"url": feed, "kind": "feed", "id": "poll-4"})
                .to_string()
                .as_bytes(),
            "application/json",
        )
        .await;
    let msgs = broker.outputs(1, T).await;
    assert_eq!(msgs[0].routing_key, "outcome.skipped.not_modified");
    assert_eq!(msgs[0].body["http_status"], 304);
    let last = site
        .requests
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(p, _)| p == "/feed.xml")
        .cloned();
    assert_eq!(last.unwrap().1.as_deref(), Some("\"v4\""));
    // A feed sent without "kind" is recognised from its root element.
    site.set("/feed.xml", "text/xml", rss(4), Some("\"v4b\""));
    broker.publish_raw(feed.as_bytes(), "text/plain").await;
    let msgs = broker.outputs(1, T).await;
    assert_eq!(msgs[0].routing_key, "outcome.expanded");
    assert_eq!(msgs[0].body["expansion"]["seen"], 4);
    for (stop, worker) in running {
        stop.cancel();
        let _ = worker.await;
    }
    broker.cleanup().await;
}

fn settings(extra: &[(&str, &str)]) -> Settings {
    let mut env: Vec<(String, String)> = vec![
        (
            "PAPERBOY__FETCH__ALLOW_PRIVATE_NETWORKS".into(),
            "true".into(),
        ),
        ("PAPERBOY__POLITENESS__MIN_DELAY_MS".into(), "0".into()),
        (
            "PAPERBOY__POLITENESS__MAX_CONCURRENT_PER_HOST".into(),
            "8".into(),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::load_with_env(None, env).unwrap()
}

fn processor(s: Settings) -> Processor<PoliteFetcher, MemoryStore> {
    let s = Arc::new(s);
    let fetcher = PoliteFetcher::new(&s, None).unwrap();
    Processor::new(
        Arc::new(fetcher),
        Arc::new(MemoryStore::from_settings(&s.dedup)),
        s,
    )
}

async fn run(p: &Processor<PoliteFetcher, MemoryStore>, job: Job) -> Decision {
    let id = job.id.clone().unwrap_or_else(|| "job".into());
    p.process(&JobInput::from_job(job, id)).await.0
}

fn job(url: String, kind: Option<JobKind>) -> Job {
    Job {
        id: Some(format!("j-{url}")),
        kind,
        ..Job::for_url(url)
    }
}

/// (routing key, expansion counts, child URLs and kinds) of a decision.
fn expanded(d: &Decision) -> (Value, Vec<(String, Option<JobKind>, u32)>) {
    match d {
        Decision::Expand { children, outcome } => (
            serde_json::to_value(&outcome.expansion).unwrap(),
            children
                .iter()
                .map(|c| {
                    (
                        c.url.rsplit('/').next().unwrap().to_string(),
                        c.kind,
                        c.depth,
                    )
                })
                .collect(),
        ),
        other => panic!("not expanded: {}", other.label()),
    }
}

fn label(d: &Decision) -> String {
    d.label()
}

#[tokio::test]
async fn atom_json_feed_and_a_sitemap_index_with_a_gzipped_news_sitemap() {
    let site = Site::start().await;
    let p = processor(settings(&[]));
    site.set(
        "/atom",
        "application/atom+xml",
        fixture("atom.xml").into_bytes(),
        None,
    );
    site.set(
        "/feed.json",
        "application/feed+json",
        fixture("feed.json").into_bytes(),
        None,
    );
    let (x, kids) = expanded(&run(&p, job(site.url("/atom"), None)).await);
    assert_eq!(
        (x["source"].as_str(), kids),
        (Some("feed"), vec![("10".into(), Some(JobKind::Page), 0)])
    );
    let d = run(&p, job(site.url("/feed.json"), Some(JobKind::Feed))).await;
    if let Decision::Expand { children, .. } = &d {
        assert_eq!(
            children[0].item.as_ref().unwrap().title.as_deref(),
            Some("JSON story one")
        );
        assert_eq!(
            children[0].parent.as_deref(),
            Some(site.url("/feed.json").as_str())
        );
    }
    assert_eq!(expanded(&d).1.len(), 1);

    // Index -> two child sitemap jobs (depth 1); the gzipped news sitemap -> its story with its title.
    site.set(
        "/sitemap.xml",
        "application/xml",
        fixture("sitemap-index.xml").into_bytes(),
        None,
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, fixture("sitemap-news.xml").as_bytes()).unwrap();
    site.set(
        "/sitemap-news.xml.gz",
        "application/gzip",
        gz.finish().unwrap(),
        None,
    );
    site.set(
        "/sitemap-pages.xml",
        "application/xml",
        fixture("sitemap-pages.xml").into_bytes(),
        None,
    );
    let (x, kids) = expanded(&run(&p, job(site.url("/sitemap.xml"), Some(JobKind::Sitemap))).await);
    assert_eq!(x["sitemaps"], 2);
    assert_eq!(
        kids,
        vec![
            ("sitemap-news.xml.gz".into(), Some(JobKind::Sitemap), 1),
            ("sitemap-pages.xml".into(), Some(JobKind::Sitemap), 1)
        ]
    );
    let news = Job {
        depth: 1,
        ..job(site.url("/sitemap-news.xml.gz"), Some(JobKind::Sitemap))
    };
    let d = run(&p, news).await;
    if let Decision::Expand { children, .. } = &d {
        assert_eq!(
            children[0].item.as_ref().unwrap().title.as_deref(),
            Some("News sitemap story")
        );
    }
    assert_eq!(expanded(&d).1, vec![("12".into(), Some(JobKind::Page), 0)]);
    // Other host left out (sitemap_other_hosts = false), the 2001 entry too old, the rest kept.
    let (x, kids) = expanded(&run(&p, job(site.url("/sitemap-pages.xml"), None)).await);
    assert_eq!(
        (x["other_host"].as_u64(), x["too_old"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(kids, vec![("13".into(), Some(JobKind::Page), 0)]);
    // At the depth limit an index emits no child sitemaps.
    let deep = Job {
        depth: 2,
        ..job(site.url("/sitemap.xml"), Some(JobKind::Sitemap))
    };
    let (x, kids) = expanded(&run(&p, deep).await);
    assert_eq!((x["over_limit"].as_u64(), kids.len()), (Some(2), 0));
}

#[tokio::test]
async fn bad_sources_end_in_clear_outcomes() {
    let site = Site::start().await;
    let p = processor(settings(&[("PAPERBOY__FEED__MAX_BYTES", "2000000")]));
    let outcome = |d: &Decision| match d {
        Decision::Final(o) => (o.routing_key(), o.detail.clone()),
        other => panic!("not a final outcome: {}", other.label()),
    };
    site.set(
        "/malformed",
        "application/rss+xml",
        common::fixture("sources/malformed.xml"),
        None,
    );
    let (key, detail) = outcome(&run(&p, job(site.url("/malformed"), Some(JobKind::Feed))).await);
    assert_eq!(key, "outcome.failed.bad_source", "{detail}");

    // An entity bomb: nothing expands; the one item still comes out, its title unexpanded.
    site.set(
        "/bomb",
        "application/rss+xml",
        common::fixture("sources/bomb.xml"),
        None,
    );
    let d = run(&p, job(site.url("/bomb"), Some(JobKind::Feed))).await;
    if let Decision::Expand { children, .. } = &d {
        let title = children[0]
            .item
            .as_ref()
            .and_then(|i| i.title.clone())
            .unwrap_or_default();
        assert!(title.len() < 64, "entity expanded: {} bytes", title.len());
    }
    assert_eq!(expanded(&d).1.len(), 1);

    // A million items (27 MB) is over feed.max_bytes here: refused before parsing.
    let mut big = String::from("<rss version=\"2.0\"><channel><title>Big</title>");
    for i in 0..1_000_000 {
        big.push_str(&format!("<item><link>/p/{i}</link></item>"));
    }
    big.push_str("</channel></rss>");
    site.set(
        "/million",
        "application/rss+xml",
        big.clone().into_bytes(),
        None,
    );
    assert_eq!(
        label(&run(&p, job(site.url("/million"), Some(JobKind::Feed))).await),
        "outcome.failed.too_large"
    );
    // Within the byte limit, the million items are cut unread and feed.max_items kept (newest first).
    let p_big = processor(settings(&[
        ("PAPERBOY__FEED__MAX_ITEMS", "50"),
        ("PAPERBOY__DEDUP__URL_TTL_S", "0"),
    ]));
    let (x, kids) = expanded(&run(&p_big, job(site.url("/million"), Some(JobKind::Feed))).await);
    assert_eq!(
        (x["items"].as_u64(), x["over_limit"].as_u64(), kids.len()),
        (Some(1_000_000), Some(999_950), 50)
    );

    // An HTML page sent as a feed: skipped, naming the feed the page announces.
    site.set("/page", "text/html", br#"<html><head><link rel="alternate" type="application/rss+xml" href="/rss"></head><body><p>Hi</p></body></html>"#.to_vec(), None);
    let (key, detail) = outcome(&run(&p, job(site.url("/page"), Some(JobKind::Feed))).await);
    assert_eq!(key, "outcome.skipped.not_a_source");
    assert!(detail.contains(&site.url("/rss")), "{detail}");
    // An image sent as a sitemap.
    site.set("/img", "image/png", b"\x89PNG\r\n".to_vec(), None);
    assert_eq!(
        label(&run(&p, job(site.url("/img"), Some(JobKind::Sitemap))).await),
        "outcome.skipped.not_a_source"
    );

    // A gzip bomb: 1 KB that would decompress to 100 MB stops at feed.max_bytes.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, b"<urlset>").unwrap();
    std::io::Write::write_all(&mut gz, &vec![b' '; 100_000_000]).unwrap();
    site.set(
        "/bomb.xml.gz",
        "application/gzip",
        gz.finish().unwrap(),
        None,
    );
    assert_eq!(
        label(&run(&p, job(site.url("/bomb.xml.gz"), Some(JobKind::Sitemap))).await),
        "outcome.failed.too_large"
    );

    // Feed items on other hosts are allowed by default, refused with feed.allow_other_hosts = false.
    let other = "<rss version=\"2.0\"><channel><title>T</title><item><link>http://elsewhere.test/a</link></item></channel></rss>";
    site.set(
        "/other",
        "application/rss+xml",
        other.as_bytes().to_vec(),
        None,
    );
    assert_eq!(
        expanded(&run(&p, job(site.url("/other"), Some(JobKind::Feed))).await)
            .1
            .len(),
        1
    );
    let strict = processor(settings(&[("PAPERBOY__FEED__ALLOW_OTHER_HOSTS", "false")]));
    let (x, kids) = expanded(&run(&strict, job(site.url("/other"), Some(JobKind::Feed))).await);
    assert_eq!((x["other_host"].as_u64(), kids.len()), (Some(1), 0));
}

#[tokio::test]
async fn a_redelivered_feed_emits_the_same_children_and_a_page_304_is_not_modified() {
    let site = Site::start().await;
    site.articles(2);
    site.set("/feed.xml", "application/rss+xml", rss(2), None);
    let p = processor(settings(&[]));
    let first = JobInput::from_job(
        job(site.url("/feed.xml"), Some(JobKind::Feed)),
        "feed-1".into(),
    );
    let ids = |d: &Decision| match d {
        Decision::Expand { children, .. } => children
            .iter()
            .map(|c| c.id.clone().unwrap())
            .collect::<Vec<_>>(),
        _ => panic!("not expanded"),
    };
    let a = ids(&p.process(&first).await.0);
    // The same message again (the worker died before the ack): the same child ids, all emitted.
    let mut again = first.clone();
    again.redelivered = true;
    assert_eq!(ids(&p.process(&again).await.0), a);
    // The same body as a new message (a re-poll with a fixed id): nothing new.
    assert!(ids(&p.process(&first).await.0).is_empty());

    // A page with an ETag, sent again with "force": 304 -> not_modified; its own redelivery is not.
    site.set(
        "/p/0",
        "text/html; charset=utf-8",
        article_html(0),
        Some("\"a0\""),
    );
    let page = |id: &str| {
        JobInput::from_job(
            Job {
                force: true,
                ..job(site.url("/p/0"), None)
            },
            id.into(),
        )
    };
    let l = label(&p.process(&page("x")).await.0);
    assert_eq!(l, "article");
    assert_eq!(
        label(&p.process(&page("y")).await.0),
        "outcome.skipped.not_modified"
    );
    let mut redelivered = page("x");
    redelivered.redelivered = true;
    assert_eq!(
        label(&p.process(&redelivered).await.0),
        "article",
        "a redelivery must not be ended by its own validators"
    );
}
