//! Broker throughput of the jobs path with 1, 2, 4 … shard queues (`amqp.shards`).
//!
//! usage: bench_shards [--jobs 40000] [--hosts 1000] [--shards 1,2,4] [--publishers 2] [--window 500]
//!
//! For each shard count: declares paperboy's topology under a throw-away name (`bench.shards.<pid>.<n>`)
//! with that many shards, then at once publishes `--jobs` persistent job messages through the shard
//! exchange (routing key = one of `--hosts` host names; `--publishers` channels, each with at most
//! `--window` unconfirmed) and consumes them from every shard queue as a worker does (one channel, one
//! consumer per shard, prefetch 64 per consumer, manual acks). Reports jobs/s from the first publish to
//! the last ack, and the publish-confirm rate, then deletes the topology. Only the broker is measured: no
//! pages are fetched. Needs RabbitMQ (`AMQP_URL`, default amqp://guest:guest@127.0.0.1:5672/%2f) with the
//! rabbitmq_consistent_hash_exchange plugin.

use std::time::Instant;

use futures_util::stream::{FuturesUnordered, SelectAll};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties};

use paperboy::amqp::Topology;
use paperboy::config::Settings;

fn usage() -> ! {
    eprintln!("usage: bench_shards [--jobs 40000] [--hosts 1000] [--shards 1,2,4] [--publishers 2] [--window 500]");
    std::process::exit(2)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (mut jobs, mut hosts, mut publishers, mut window) =
        (40_000usize, 1_000usize, 2usize, 500usize);
    let mut shard_counts = vec![1u16, 2, 4];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--jobs" => jobs = val().parse().unwrap_or_else(|_| usage()),
            "--hosts" => hosts = val().parse().unwrap_or_else(|_| usage()),
            "--publishers" => publishers = val().parse().unwrap_or_else(|_| usage()),
            "--window" => window = val().parse().unwrap_or_else(|_| usage()),
            "--shards" => {
                shard_counts = val()
                    .split(',')
                    .map(|s| s.trim().parse().unwrap_or_else(|_| usage()))
                    .collect()
            }
            _ => usage(),
        }
    }
    let amqp = std::env::var("AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string());
    println!(
        "{:>7}{:>9}{:>12}{:>16}",
        "shards", "jobs", "jobs/s", "confirms/s"
    );
    for n in shard_counts {
        let name = format!("bench.shards.{}.{n}", std::process::id());
        let env = vec![
            ("PAPERBOY__AMQP__URL".to_string(), amqp.clone()),
            (
                "PAPERBOY__AMQP__JOBS_QUEUE".to_string(),
                format!("{name}.jobs"),
            ),
            (
                "PAPERBOY__AMQP__OUTPUT_EXCHANGE".to_string(),
                format!("{name}.out"),
            ),
            ("PAPERBOY__AMQP__OUTPUT_QUEUE".to_string(), String::new()),
            (
                "PAPERBOY__AMQP__DEAD_LETTER_EXCHANGE".to_string(),
                format!("{name}.dlx"),
            ),
            (
                "PAPERBOY__AMQP__DEAD_LETTER_QUEUE".to_string(),
                format!("{name}.dead"),
            ),
            ("PAPERBOY__AMQP__SHARDS".to_string(), n.to_string()),
        ];
        let settings = Settings::load_with_env(None, env).expect("settings");
        let topology = Topology::from_settings(&settings);
        let conn = Connection::connect(&amqp, ConnectionProperties::default())
            .await
            .expect("connect to RabbitMQ");
        let admin = conn.create_channel().await.unwrap();
        topology
            .declare(&admin)
            .await
            .expect("declare (is the consistent-hash plugin enabled?)");

        // The consumer side, as a worker: one channel, a consumer per shard queue.
        let ch = conn.create_channel().await.unwrap();
        ch.basic_qos(64, BasicQosOptions { global: false })
            .await
            .unwrap();
        let mut consumers = SelectAll::new();
        for q in topology.shard_queues() {
            let c = ch
                .basic_consume(
                    ShortString::from(q.as_str()),
                    ShortString::from(format!("bench-{q}")),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
            consumers.push(c);
        }
        let started = Instant::now();
        let consume = tokio::spawn(async move {
            let mut acked = 0usize;
            while acked < jobs {
                let Some(Ok(d)) = consumers.next().await else {
                    break;
                };
                d.acker.ack(BasicAckOptions::default()).await.unwrap();
                acked += 1;
            }
            acked
        });
        let exchange = topology.shard_exchange();
        let mut pubs = Vec::new();
        for p in 0..publishers {
            let pc = conn.create_channel().await.unwrap();
            pc.confirm_select(ConfirmSelectOptions::default())
                .await
                .unwrap();
            let exchange = exchange.clone();
            pubs.push(tokio::spawn(async move {
                let mut pending = FuturesUnordered::new();
                for k in (p..jobs).step_by(publishers) {
                    let host = format!("h{}.example", k % hosts);
                    let body = format!("{{\"url\":\"https://{host}/story/{k}\",\"id\":\"b-{k}\"}}");
                    let confirm = pc
                        .basic_publish(
                            ShortString::from(exchange.as_str()),
                            ShortString::from(host.as_str()),
                            BasicPublishOptions::default(),
                            body.as_bytes(),
                            BasicProperties::default().with_delivery_mode(2),
                        )
                        .await
                        .unwrap();
                    pending.push(confirm);
                    while pending.len() >= window {
                        pending.next().await.unwrap().unwrap();
                    }
                }
                while let Some(c) = pending.next().await {
                    c.unwrap();
                }
            }));
        }
        for p in pubs {
            p.await.unwrap();
        }
        let published = started.elapsed();
        let acked = consume.await.unwrap();
        let took = started.elapsed();
        println!(
            "{n:>7}{acked:>9}{:>12.0}{:>16.0}",
            acked as f64 / took.as_secs_f64(),
            jobs as f64 / published.as_secs_f64()
        );
        topology.delete(&admin).await.expect("delete topology");
        let _ = conn.close(200, ShortString::from("bye")).await;
    }
}
