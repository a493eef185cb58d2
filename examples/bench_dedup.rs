//! Cost of the Redis dedup store by size: µs per `check_and_record` and Redis bytes per remembered text.
//!
//! usage: bench_dedup [--texts 10000,100000,1000000] [--checks 2000] [--redis-url redis://…]
//!                    [--ttl-s 2592000] [--near-distance 3]
//!
//! Without `--redis-url` a private redis-server is started on a free loopback port (`--save ""
//! --appendonly no --hash-max-listpack-entries 512`) and killed at the end; with it, the server is used
//! as it is (keys under a throw-away prefix, deleted after each size; `INFO memory` then also counts
//! everything else on it). For each size N and for near-duplicates on (`--near-distance`) and off: fill
//! the store with N synthetic texts ([`RedisStore::fill_synthetic`]: the layout real checks write, in
//! pipelined bulk writes), read `used_memory` before and after, then time `--checks` sequential
//! `check_and_record` calls of each kind: new texts, exact duplicates (another job), near-duplicates
//! (2 SimHash bits flipped), redeliveries. Prints a markdown table; `[server]` is the mean CPU µs Redis
//! spent per check (`INFO commandstats`), which does not depend on the loopback round trip.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paperboy::dedup::{Fingerprint, RedisStore, Seen, Verdict};
use paperboy::redis_conn::RedisConn;

fn usage() -> ! {
    eprintln!(
        "usage: bench_dedup [--texts 10000,100000,1000000] [--checks 2000] [--redis-url URL] \
         [--ttl-s 2592000] [--near-distance 3]"
    );
    std::process::exit(2)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server() -> (Server, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("pb-bench-dedup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--hash-max-listpack-entries", "512"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, format!("redis://127.0.0.1:{port}"))
}

/// One section of `INFO`.
async fn info(conn: &mut RedisConn, section: &str) -> String {
    redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .unwrap()
}

async fn used_memory(conn: &mut RedisConn) -> u64 {
    info(conn, "memory")
        .await
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn delete_prefix(conn: &mut RedisConn, prefix: &str) {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(10_000)
            .query_async(conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(conn)
                .await
                .unwrap();
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
}

/// CPU µs Redis has spent in commands so far (`INFO commandstats`, every command but INFO itself):
/// the server's share of a check, free of the loopback round trip and of the client's scheduling.
async fn server_usec(conn: &mut RedisConn) -> u64 {
    info(conn, "commandstats")
        .await
        .lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info:"))
        .filter_map(|l| {
            l.split("usec=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Mean and p99 µs of `check_and_record` over `fps`, with the verdict each must give, and the mean
/// server µs per check ([`server_usec`]).
async fn time_checks(
    store: &RedisStore,
    conn: &mut RedisConn,
    fps: &[Fingerprint],
    job: impl Fn(usize) -> String,
    ok: impl Fn(&Verdict) -> bool,
) -> (f64, f64, f64) {
    let server_before = server_usec(conn).await;
    let mut us = Vec::with_capacity(fps.len());
    for (i, fp) in fps.iter().enumerate() {
        let t = Instant::now();
        let v = store.check_and_record(fp, &job(i)).await.unwrap();
        us.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(ok(&v), "unexpected verdict {v:?}");
    }
    let server = (server_usec(conn).await - server_before) as f64 / fps.len().max(1) as f64;
    us.sort_by(f64::total_cmp);
    let mean = us.iter().sum::<f64>() / us.len().max(1) as f64;
    let p99 = us[(us.len() * 99 / 100).min(us.len() - 1)];
    (mean, p99, server)
}

fn random_fps(n: usize, seed: u64) -> Vec<Fingerprint> {
    (0..n)
        .map(|i| Fingerprint {
            hash: paperboy::dedup::content_hash(&format!("bench-new-{seed}-{i}")),
            simhash: u64::from_le_bytes(
                blake3::hash(format!("sim-{seed}-{i}").as_bytes()).as_bytes()[..8]
                    .try_into()
                    .unwrap(),
            ),
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut sizes = vec![10_000usize, 100_000, 1_000_000];
    let (mut checks, mut url, mut ttl_s, mut near) =
        (2_000usize, None::<String>, 2_592_000u64, 3u32);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--texts" => {
                sizes = val()
                    .split(',')
                    .map(|s| s.trim().parse().unwrap_or_else(|_| usage()))
                    .collect()
            }
            "--checks" => checks = val().parse().unwrap_or_else(|_| usage()),
            "--redis-url" => url = Some(val()),
            "--ttl-s" => ttl_s = val().parse().unwrap_or_else(|_| usage()),
            "--near-distance" => near = val().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let (_server, url) = match url {
        Some(u) => (None, u),
        None => {
            let (s, u) = start_server();
            (Some(s), u)
        }
    };
    let client = redis::Client::open(url.as_str()).expect("redis url");
    let mut conn: RedisConn = redis::aio::ConnectionManager::new(client)
        .await
        .expect("connect to Redis")
        .into();
    let entries: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hash-max-listpack-entries")
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    eprintln!(
        "Redis at {url}; hash-max-listpack-entries = {:?}",
        entries.get(1)
    );
    let ttl = Duration::from_secs(ttl_s);
    println!(
        "| texts | near | bytes/text | fill s | new µs (p99) [server] | duplicate µs (p99) [server] | near-dup µs (p99) [server] | redelivery µs (p99) [server] | dropped band records |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &sizes {
        for near_distance in [near, 0] {
            let prefix = format!("bench-dedup-{}-{n}-{near_distance}:", std::process::id());
            let store = RedisStore::new(conn.clone(), &prefix, ttl, near_distance);
            let before = used_memory(&mut conn).await;
            let t = Instant::now();
            let kept = store
                .fill_synthetic(n, n as u64 ^ 0x5EED, checks.min(n))
                .await
                .unwrap();
            let fill_s = t.elapsed().as_secs_f64();
            let after = used_memory(&mut conn).await;
            let per_text = after.saturating_sub(before) as f64 / n as f64;
            let fresh = random_fps(checks, n as u64);
            let new = time_checks(
                &store,
                &mut conn,
                &fresh,
                |i| format!("new-{i}"),
                |v| *v == Verdict::New,
            )
            .await;
            let dup = time_checks(
                &store,
                &mut conn,
                &kept,
                |i| format!("dup-{i}"),
                |v| matches!(v, Verdict::Duplicate { .. }),
            )
            .await;
            let near_t = if near_distance > 0 {
                let nears: Vec<Fingerprint> = kept
                    .iter()
                    .enumerate()
                    .map(|(i, f)| Fingerprint {
                        hash: paperboy::dedup::content_hash(&format!("near-{n}-{i}")),
                        simhash: f.simhash ^ (1 << (i % 64)) ^ (1 << ((i + 17) % 64)),
                    })
                    .collect();
                let t = time_checks(
                    &store,
                    &mut conn,
                    &nears,
                    |i| format!("near-{i}"),
                    |v| matches!(v, Verdict::NearDuplicate { .. } | Verdict::New),
                )
                .await;
                format!("{:.1} ({:.0}) [{:.1}]", t.0, t.1, t.2)
            } else {
                "–".to_string()
            };
            let redo = time_checks(
                &store,
                &mut conn,
                &fresh,
                |i| format!("new-{i}"),
                |v| *v == Verdict::New,
            )
            .await;
            println!(
                "| {n} | {} | {per_text:.1} | {fill_s:.1} | {:.1} ({:.0}) [{:.1}] | {:.1} ({:.0}) [{:.1}] | {near_t} | {:.1} ({:.0}) [{:.1}] | {} |",
                if near_distance > 0 { format!("on ({near_distance})") } else { "off".into() },
                new.0,
                new.1,
                new.2,
                dup.0,
                dup.1,
                dup.2,
                redo.0,
                redo.1,
                redo.2,
                store.dropped_band_records()
            );
            delete_prefix(&mut conn, &prefix).await;
        }
    }
}
