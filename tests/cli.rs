//! The binary's subcommands, run as processes: `--help`, `extract`, `scrape`, and a fleet of one:
//! `tail` + `work` + `submit` over the real RabbitMQ.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{FixtureServer, TestBroker};
use serde_json::Value;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_paperboy"));
    c.env_remove("RUST_LOG");
    c
}

fn with_env(mut c: Command, env: &[(String, String)]) -> Command {
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn json_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn help_lists_every_subcommand() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["work", "submit", "tail", "scrape", "extract"] {
        assert!(help.contains(cmd), "--help lacks {cmd}: {help}");
        let sub = bin().args([cmd, "--help"]).output().unwrap();
        assert!(sub.status.success(), "{cmd} --help failed");
    }
}

#[test]
fn bad_config_is_reported_with_key_and_expectation() {
    let out = bin()
        .args(["extract", "x.html"])
        .env("PAPERBOY__WORKER__CONCURRENCY", "zero")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("concurrency"), "{err}");
}

#[test]
fn extract_prints_one_line_per_file_and_goes_on_after_errors() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("news.html.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&page).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(&common::fixture("pages/news.html")).unwrap();
    gz.finish().unwrap();
    let page = page.to_str().unwrap().to_string();
    let plain = format!(
        "{}/tests/fixtures/pages/other.html",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = bin()
        .args([
            "extract",
            "--url",
            "https://daily.example/news/x",
            &page,
            "/nonexistent/page.html",
            &plain,
        ])
        .output()
        .unwrap();
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 3, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines[0]["source"], page);
    assert!(lines[0]["text"]
        .as_str()
        .unwrap()
        .contains("harbour bridge reopened"));
    assert_eq!(
        lines[0]["title"],
        "Harbour bridge reopens after two-year restoration"
    );
    assert_eq!(lines[1]["source"], "/nonexistent/page.html");
    assert!(lines[1]["error"].as_str().unwrap().contains("cannot read"));
    assert_eq!(lines[2]["source"], plain);
    assert!(lines[2]["text"]
        .as_str()
        .unwrap()
        .contains("central library"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed file makes the exit status 1"
    );
}

#[test]
fn parser_repair_warnings_only_show_at_debug() {
    // Text directly inside <table> makes html5ever foster-parent it and log a warning through `log`.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("table.html");
    std::fs::write(
        &page,
        "<html><body><table>stray words<tr><td>cell</td></tr></table>\
         <p>Enough words in a paragraph to make a body for the page.</p></body></html>",
    )
    .unwrap();
    let page = page.to_str().unwrap();
    let quiet = bin().args(["extract", page]).output().unwrap();
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(
        !stderr.contains("foster"),
        "parser noise at the default level: {stderr}"
    );
    assert_eq!(json_lines(&quiet.stdout).len(), 1);
    let debug = bin()
        .args(["extract", page])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&debug.stderr);
    assert!(
        stderr.contains("foster parenting"),
        "not shown at debug: {stderr}"
    );
}

#[test]
fn submit_dash_and_file_together_are_refused_before_connecting() {
    let out = bin()
        .args(["submit", "-", "--file", "urls.txt"])
        .env("PAPERBOY__AMQP__URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error exits with 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("choose one source"), "{err}");
}

#[test]
fn submit_refuses_an_unknown_kind_before_connecting() {
    let out = bin()
        .args([
            "submit",
            "--kind",
            "podcast",
            "https://news.example/feed.xml",
        ])
        .env("PAPERBOY__AMQP__URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error exits with 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("use page, feed or sitemap"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_needs_no_broker() {
    let site = FixtureServer::standard().await;
    let (news, missing) = (site.url("/news"), site.url("/missing"));
    let lines = scrape(vec![news, missing], 2).await;
    let article = lines
        .iter()
        .find(|l| l["schema"] == paperboy::message::SCHEMA_VERSION)
        .expect("an article");
    assert!(article["text"].as_str().unwrap().contains("harbour bridge"));
    let failure = lines
        .iter()
        .find(|l| l["outcome"] == "failed")
        .expect("a failure outcome");
    assert_eq!(failure["reason"], "http_404");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_follows_a_feed_to_its_articles() {
    let mut routes = common::article_routes(3, std::time::Duration::ZERO);
    let items: String = (0..3)
        .map(|i| format!("<item><title>T{i}</title><link>/p/{i}</link></item>"))
        .collect();
    let feed = format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>F</title>{items}</channel></rss>");
    routes.insert(
        "/feed.xml".into(),
        common::Route::new(200, "application/rss+xml", feed.into_bytes()),
    );
    let site = FixtureServer::start(routes).await;
    let lines = scrape(vec![site.url("/feed.xml")], 4).await;
    assert_eq!(lines[0]["outcome"], "expanded");
    assert_eq!(lines[0]["expansion"]["new"], 3);
    let articles = lines
        .iter()
        .filter(|l| l["schema"] == paperboy::message::SCHEMA_VERSION)
        .count();
    assert_eq!(articles, 3);
}

/// Run `paperboy scrape URLS` against loopback fixtures (no broker: `amqp.url` points at nothing) and
/// return its JSON lines, checking there are `expected` of them.
async fn scrape(urls: Vec<String>, expected: usize) -> Vec<serde_json::Value> {
    let out = tokio::task::spawn_blocking(move || {
        bin()
            .arg("scrape")
            .args(&urls)
            .env("PAPERBOY__FETCH__ALLOW_PRIVATE_NETWORKS", "true")
            .env("PAPERBOY__POLITENESS__MIN_DELAY_MS", "0")
            .env(
                "PAPERBOY__AMQP__URL",
                "amqp://nobody:secret@127.0.0.1:1/%2f",
            )
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let lines = json_lines(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(lines.len(), expected, "stderr: {err}");
    lines
}

struct Killer(Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sigterm(child: &Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_work_and_tail_as_processes() {
    let site = FixtureServer::standard().await;
    let broker = TestBroker::new("cli");
    broker.declare().await;
    let env = broker.env.clone();

    // tail first, so it is bound before anything is published.
    let mut tail = Killer(
        with_env(bin(), &env)
            .args([
                "tail",
                "--routing-key",
                "#",
                "--max",
                "3",
                "--idle-timeout",
                "30",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let tail_err = tail.0.stderr.take().unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        BufReader::new(tail_err)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("tailing"))
    });
    assert!(
        tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .unwrap()
            .unwrap(),
        "tail never bound"
    );

    let mut worker = Killer(
        with_env(bin(), &env)
            .arg("work")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let (a, b, c) = (site.url("/news"), site.url("/other"), site.url("/missing"));
    let env2 = env.clone();
    let submit = tokio::task::spawn_blocking(move || {
        let mut child = with_env(bin(), &env2)
            .args(["submit", &a, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let input = format!("# a comment\n\n{b}\nnot a url\n{c}\n");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&submit.stdout);
    let stderr = String::from_utf8_lossy(&submit.stderr);
    assert!(
        stdout.contains("3 jobs confirmed, 1 invalid lines"),
        "stdout: {stdout} stderr: {stderr}"
    );
    assert!(
        stderr.contains("line 4:"),
        "invalid line not reported with its number: {stderr}"
    );
    assert_eq!(
        submit.status.code(),
        Some(1),
        "an invalid line makes the exit status 1"
    );

    let tail_out = tokio::task::spawn_blocking(move || {
        let mut child = tail;
        let out = child.0.stdout.take().unwrap();
        let lines: Vec<String> = BufReader::new(out).lines().map_while(Result::ok).collect();
        let status = child.0.wait().unwrap();
        (lines, status)
    });
    let (lines, status) = tokio::time::timeout(Duration::from_secs(60), tail_out)
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    assert_eq!(lines.len(), 3, "{lines:?}");
    let values: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        values
            .iter()
            .filter(|v| v["schema"] == paperboy::message::SCHEMA_VERSION)
            .count(),
        2
    );
    assert_eq!(
        values.iter().filter(|v| v["reason"] == "http_404").count(),
        1
    );

    // Graceful stop: SIGTERM -> exit 0.
    sigterm(&worker.0);
    let status = tokio::task::spawn_blocking(move || worker.0.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "worker exit status {status:?}");
    assert_eq!(broker.queue_len(&broker.settings.amqp.jobs_queue).await, 0);
    broker.cleanup().await;
}
