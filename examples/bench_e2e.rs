//! End-to-end benchmark driver (used by `scripts/bench-e2e.sh`).
//!
//! usage:
//!   bench_e2e run --urls FILE [--out FILE] [--timeout-s 900] [--window 1000] [--rate JOBS_PER_S]
//!   bench_e2e cleanup [--queue Q]... [--exchange X]...
//!
//! Settings (broker URL, queue and exchange names) come from the same `PAPERBOY__…` environment as the
//! workers. `run` declares the topology, starts consuming the catch-all output queue (`amqp.output_queue`),
//! publishes one JSON job per URL line — `{"url", "id": "bench-<k>", "meta": {"submitted_at_ms", "k"}}`,
//! persistent, pipelined with publisher confirms (at most `--window` unconfirmed; `--rate` paces the
//! submissions, 0 = as fast as the broker confirms) — and stops when every job has one result (article
//! or outcome; redeliveries counted once) or at the timeout. Latency = receipt of the result on the output
//! queue (the worker's publish was confirmed) minus `submitted_at_ms`. Prints a JSON summary (and writes it
//! to `--out`). `cleanup` deletes the run's topology plus any extra queues/exchanges named.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};
use serde_json::{json, Value};

use paperboy::amqp::Topology;
use paperboy::config::Settings;

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e3
}

fn usage() -> ! {
    eprintln!("usage: bench_e2e run --urls FILE [--out FILE] [--timeout-s 900] [--window 1000] [--rate R]\n       bench_e2e cleanup [--queue Q]... [--exchange X]...");
    std::process::exit(2)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_else(|| usage());
    let rest: Vec<String> = args.collect();
    let settings = Settings::load(None).unwrap_or_else(|e| {
        eprintln!("bench_e2e: settings: {e}");
        std::process::exit(2)
    });
    match cmd.as_str() {
        "run" => run(&settings, &rest).await,
        "cleanup" => cleanup(&settings, &rest).await,
        _ => usage(),
    }
}

async fn connect(settings: &Settings) -> Connection {
    Connection::connect(settings.amqp_url(), ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| {
            eprintln!("bench_e2e: cannot connect to the broker: {e}");
            std::process::exit(2)
        })
}

async fn cleanup(settings: &Settings, rest: &[String]) {
    let conn = connect(settings).await;
    let ch = conn.create_channel().await.expect("channel");
    let topo = Topology::from_settings(settings);
    // Only ever delete a benchmark's own names, never a real deployment's (e.g. the default paperboy.*).
    if !topo.jobs_queue.starts_with("bench.") {
        eprintln!(
            "bench_e2e: cleanup refuses to delete {} (only bench.* names)",
            topo.jobs_queue
        );
        std::process::exit(2);
    }
    if let Err(e) = topo.delete(&ch).await {
        eprintln!("bench_e2e: cleanup: {e}");
    }
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let Some(name) = it.next() else { usage() };
        let ch = conn.create_channel().await.expect("channel");
        let r = match a.as_str() {
            "--queue" => ch
                .queue_delete(ShortString::from(name.as_str()), Default::default())
                .await
                .map(|_| ()),
            "--exchange" => {
                ch.exchange_delete(ShortString::from(name.as_str()), Default::default())
                    .await
            }
            _ => usage(),
        };
        if let Err(e) = r {
            eprintln!("bench_e2e: cleanup {name}: {e}");
        }
    }
    let _ = conn.close(200, "bye".into()).await;
}

async fn run(settings: &Settings, rest: &[String]) {
    let mut urls_file = None;
    let mut out_file = None;
    let mut timeout = Duration::from_secs(900);
    let mut window = 1000usize;
    let mut rate = 0f64;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| usage());
        match a.as_str() {
            "--urls" => urls_file = Some(val()),
            "--out" => out_file = Some(val()),
            "--timeout-s" => {
                timeout = Duration::from_secs(val().parse().unwrap_or_else(|_| usage()))
            }
            "--window" => window = val().parse().unwrap_or_else(|_| usage()),
            "--rate" => rate = val().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let urls: Vec<String> = std::fs::read_to_string(urls_file.unwrap_or_else(|| usage()))
        .expect("read --urls")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let n = urls.len();
    let Some(out_queue) = Some(settings.amqp.output_queue.clone()).filter(|q| !q.is_empty()) else {
        eprintln!("bench_e2e: amqp.output_queue must be set (the driver reads results there)");
        std::process::exit(2)
    };

    let conn = connect(settings).await;
    let pub_ch = conn.create_channel().await.expect("channel");
    Topology::from_settings(settings)
        .declare(&pub_ch)
        .await
        .expect("declare topology");
    pub_ch
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let cons_ch = conn.create_channel().await.expect("channel");
    let mut consumer = cons_ch
        .basic_consume(
            ShortString::from(out_queue.as_str()),
            ShortString::from("bench-e2e"),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume output queue");

    let deadline = Instant::now() + timeout;
    let t0 = now_ms();
    let start = Instant::now();

    // Consumer: one result per job id.
    let collector = tokio::spawn(async move {
        let mut seen: HashSet<String> = HashSet::with_capacity(n);
        let mut lat: Vec<f64> = Vec::with_capacity(n);
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        let mut repeats = 0u64;
        let mut bytes = 0u64;
        let mut last = t0;
        while seen.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let d = match tokio::time::timeout(left, consumer.next()).await {
                Ok(Some(Ok(d))) => d,
                Ok(Some(Err(e))) => {
                    eprintln!("bench_e2e: consumer: {e}");
                    break;
                }
                Ok(None) | Err(_) => break,
            };
            let at = now_ms();
            let v: Value = serde_json::from_slice(&d.data).unwrap_or(Value::Null);
            let id = v["job_id"].as_str().unwrap_or("").to_string();
            if !id.starts_with("bench-") {
                continue;
            }
            if !seen.insert(id) {
                repeats += 1;
                continue;
            }
            bytes += d.data.len() as u64;
            last = at;
            if let Some(s) = v["meta"]["submitted_at_ms"].as_f64() {
                lat.push(at - s);
            }
            let rk = d.routing_key.as_str();
            let kind = if rk.starts_with("article.") {
                "article".to_string()
            } else {
                rk.to_string()
            };
            *kinds.entry(kind).or_default() += 1;
        }
        (seen.len(), lat, kinds, repeats, bytes, last)
    });

    // Publisher: pipelined confirms.
    let mut inflight = FuturesUnordered::new();
    let (mut confirmed, mut nacked) = (0usize, 0usize);
    for (k, url) in urls.iter().enumerate() {
        if rate > 0.0 {
            let due = Duration::from_secs_f64(k as f64 / rate);
            let el = start.elapsed();
            if due > el {
                tokio::time::sleep(due - el).await;
            }
        }
        while inflight.len() >= window {
            match inflight.next().await {
                Some(Ok(Confirmation::Ack(None))) => confirmed += 1,
                _ => nacked += 1,
            }
        }
        let body = json!({
            "url": url,
            "id": format!("bench-{k}"),
            "meta": {"submitted_at_ms": now_ms(), "k": k},
        })
        .to_string();
        let c = pub_ch
            .basic_publish(
                "".into(),
                ShortString::from(settings.amqp.jobs_queue.as_str()),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body.as_bytes(),
                BasicProperties::default()
                    .with_content_type(ShortString::from("application/json"))
                    .with_delivery_mode(2),
            )
            .await
            .expect("publish");
        inflight.push(c);
    }
    while let Some(c) = inflight.next().await {
        match c {
            Ok(Confirmation::Ack(None)) => confirmed += 1,
            _ => nacked += 1,
        }
    }
    let submit_s = start.elapsed().as_secs_f64();
    eprintln!("bench_e2e: {confirmed} jobs confirmed in {submit_s:.2} s ({nacked} not)");

    let (done, mut lat, kinds, repeats, bytes, last) = collector.await.expect("collector");
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let elapsed = ((last - t0) / 1e3).max(1e-9);
    let summary = json!({
        "jobs": n,
        "rate": rate,
        "confirmed": confirmed,
        "not_confirmed": nacked,
        "completed": done,
        "timed_out": done < n,
        "elapsed_s": elapsed,
        "submit_s": submit_s,
        "pages_per_s": done as f64 / elapsed,
        "latency_ms": {
            "p50": percentile(&lat, 50.0),
            "p90": percentile(&lat, 90.0),
            "p99": percentile(&lat, 99.0),
            "max": lat.last().copied().unwrap_or(f64::NAN),
        },
        "results": kinds,
        "redelivered_results": repeats,
        "result_bytes": bytes,
        "t0_ms": t0,
    });
    println!("{summary}");
    if let Some(f) = out_file {
        std::fs::write(f, summary.to_string()).expect("write --out");
    }
    let _ = conn.close(200, "bye".into()).await;
    if done < n {
        std::process::exit(1);
    }
}
