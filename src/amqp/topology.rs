//! The broker topology paperboy needs, declared idempotently at start.
//!
//! - jobs queue: quorum, `x-delivery-limit`, dead-letters to the DLX (poison jobs);
//! - output exchange: topic, durable; plus an optional catch-all queue bound with `#`;
//! - dead-letter exchange (fanout) and dead-letter queue (quorum);
//! - retry tiers `<jobs_queue>.retry.<ms>` and deferral tiers `<delay_queue>.<ms>` (default `<jobs_queue>.delay.<ms>`): durable queues with a
//!   message TTL that dead-letter back to the jobs queue through the default exchange;
//! - with `amqp.shards = N`: a consistent-hash exchange `<jobs_queue>.shards` (routing key = the job URL's
//!   host) over N quorum shard queues `<jobs_queue>.shard.<i>`, each bound with weight 1 (the
//!   `rabbitmq_consistent_hash_exchange` plugin). Retried and deferred jobs come back through the jobs queue.

use std::time::Duration;

use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};

use super::AmqpError;
use crate::config::Settings;

/// Deferral tiers: a job deferred for `wait` goes to the smallest tier not shorter than `wait`.
pub const DELAY_TIERS_MS: [u64; 7] = [1_000, 5_000, 15_000, 60_000, 300_000, 600_000, 1_200_000];

/// Names and arguments of every queue and exchange.
#[derive(Debug, Clone)]
pub struct Topology {
    pub jobs_queue: String,
    pub output_exchange: String,
    /// Catch-all queue bound with `#` (None = none declared).
    pub output_queue: Option<String>,
    /// `x-max-length` of the catch-all queue (None = unbounded).
    pub output_queue_max_length: Option<u64>,
    pub dead_letter_exchange: String,
    pub dead_letter_queue: String,
    pub delivery_limit: u32,
    pub delay_queue: String,
    /// Retry tier delays (ms).
    pub retry_tiers_ms: Vec<u64>,
    /// Number of host-partitioned shard queues (0 = none).
    pub shards: u16,
}

/// The exchange type of the shard router (the broker's consistent-hash plugin).
pub const SHARD_EXCHANGE_TYPE: &str = "x-consistent-hash";

impl Topology {
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            jobs_queue: s.amqp.jobs_queue.clone(),
            output_exchange: s.amqp.output_exchange.clone(),
            output_queue: Some(s.amqp.output_queue.clone()).filter(|q| !q.is_empty()),
            output_queue_max_length: Some(s.amqp.output_queue_max_length).filter(|n| *n > 0),
            dead_letter_exchange: s.amqp.dead_letter_exchange.clone(),
            dead_letter_queue: s.amqp.dead_letter_queue.clone(),
            delivery_limit: s.amqp.delivery_limit,
            delay_queue: if s.amqp.delay_queue.is_empty() {
                format!("{}.delay", s.amqp.jobs_queue)
            } else {
                s.amqp.delay_queue.clone()
            },
            retry_tiers_ms: s.retry.tiers_ms.clone(),
            shards: s.amqp.shards,
        }
    }

    /// The exchange that routes jobs to shard queues by host (meaningful when `shards > 0`).
    pub fn shard_exchange(&self) -> String {
        format!("{}.shards", self.jobs_queue)
    }

    /// The name of shard queue `i`.
    pub fn shard_queue(&self, i: u16) -> String {
        format!("{}.shard.{i}", self.jobs_queue)
    }

    /// Where a job for `url` is published: with shards, the shard exchange with the URL's host as routing
    /// key (all of a host's jobs reach one shard queue); without, the jobs queue.
    pub fn job_route(&self, url: &str) -> (String, String) {
        if self.shards == 0 {
            return (String::new(), self.jobs_queue.clone());
        }
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        (self.shard_exchange(), host)
    }

    /// Every shard queue.
    pub fn shard_queues(&self) -> Vec<String> {
        (0..self.shards).map(|i| self.shard_queue(i)).collect()
    }

    /// The retry queue for the `n`-th retry (0-based); later retries reuse the last tier.
    pub fn retry_queue(&self, n: usize) -> String {
        let ms = self.retry_tiers_ms[n.min(self.retry_tiers_ms.len() - 1)];
        format!("{}.retry.{ms}", self.jobs_queue)
    }

    /// The deferral queue for a wait: the smallest tier not shorter than `wait` (the longest one at most).
    pub fn delay_queue_for(&self, wait: Duration) -> String {
        let ms = wait.as_millis() as u64;
        let tier = DELAY_TIERS_MS
            .iter()
            .copied()
            .find(|t| *t >= ms)
            .unwrap_or(DELAY_TIERS_MS[DELAY_TIERS_MS.len() - 1]);
        format!("{}.{tier}", self.delay_queue)
    }

    /// Quorum; bounded by `output_queue_max_length` with `reject-publish`, so a full queue refuses (the
    /// publisher sees a nack, the job is requeued) instead of dropping articles or filling the disk.
    fn output_queue_args(&self) -> FieldTable {
        let mut t = FieldTable::default();
        t.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        if let Some(n) = self.output_queue_max_length {
            t.insert(
                "x-max-length".into(),
                AMQPValue::LongLongInt(i64::try_from(n).unwrap_or(i64::MAX)),
            );
            t.insert(
                "x-overflow".into(),
                AMQPValue::LongString("reject-publish".into()),
            );
        }
        t
    }

    fn jobs_queue_args(&self) -> FieldTable {
        let mut t = FieldTable::default();
        t.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        t.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(self.delivery_limit as i32),
        );
        t.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from(self.dead_letter_exchange.as_str())),
        );
        t
    }

    fn ttl_queue_args(&self, ttl_ms: u64) -> FieldTable {
        let mut t = FieldTable::default();
        t.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(ttl_ms as i64),
        );
        t.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        t.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(LongString::from(self.jobs_queue.as_str())),
        );
        t
    }

    /// Every TTL queue: (name, ttl).
    fn ttl_queues(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .retry_tiers_ms
            .iter()
            .map(|ms| (format!("{}.retry.{ms}", self.jobs_queue), *ms))
            .collect();
        v.extend(
            DELAY_TIERS_MS
                .iter()
                .map(|ms| (format!("{}.{ms}", self.delay_queue), *ms)),
        );
        v.dedup();
        v
    }

    /// Declare everything (idempotent: the same names and arguments are a no-op).
    pub async fn declare(&self, ch: &Channel) -> Result<(), AmqpError> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let ex_durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let declare_err = |what: String| {
            move |e: lapin::Error| AmqpError::Declare {
                what,
                detail: e.to_string(),
            }
        };

        ch.exchange_declare(
            ShortString::from(self.dead_letter_exchange.as_str()),
            ExchangeKind::Fanout,
            ex_durable,
            FieldTable::default(),
        )
        .await
        .map_err(declare_err(format!(
            "exchange {}",
            self.dead_letter_exchange
        )))?;
        let mut quorum = FieldTable::default();
        quorum.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        ch.queue_declare(
            ShortString::from(self.dead_letter_queue.as_str()),
            durable,
            quorum.clone(),
        )
        .await
        .map_err(declare_err(format!("queue {}", self.dead_letter_queue)))?;
        ch.queue_bind(
            ShortString::from(self.dead_letter_queue.as_str()),
            ShortString::from(self.dead_letter_exchange.as_str()),
            ShortString::from(""),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(declare_err(format!(
            "binding {} -> {}",
            self.dead_letter_exchange, self.dead_letter_queue
        )))?;

        ch.queue_declare(
            ShortString::from(self.jobs_queue.as_str()),
            durable,
            self.jobs_queue_args(),
        )
        .await
        .map_err(declare_err(format!("queue {}", self.jobs_queue)))?;

        ch.exchange_declare(
            ShortString::from(self.output_exchange.as_str()),
            ExchangeKind::Topic,
            ex_durable,
            FieldTable::default(),
        )
        .await
        .map_err(declare_err(format!("exchange {}", self.output_exchange)))?;
        if let Some(q) = &self.output_queue {
            ch.queue_declare(
                ShortString::from(q.as_str()),
                durable,
                self.output_queue_args(),
            )
            .await
            .map_err(declare_err(format!("queue {q}")))?;
            ch.queue_bind(
                ShortString::from(q.as_str()),
                ShortString::from(self.output_exchange.as_str()),
                ShortString::from("#"),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(declare_err(format!(
                "binding {} -> {q}",
                self.output_exchange
            )))?;
        }
        for (name, ttl) in self.ttl_queues() {
            ch.queue_declare(
                ShortString::from(name.as_str()),
                durable,
                self.ttl_queue_args(ttl),
            )
            .await
            .map_err(declare_err(format!("queue {name}")))?;
        }
        if self.shards > 0 {
            self.declare_shards(ch).await?;
        }
        Ok(())
    }

    /// The shard router and its queues. A broker without the consistent-hash plugin refuses the exchange
    /// type: the error says how to enable it.
    async fn declare_shards(&self, ch: &Channel) -> Result<(), AmqpError> {
        let exchange = self.shard_exchange();
        ch.exchange_declare(
            ShortString::from(exchange.as_str()),
            ExchangeKind::Custom(SHARD_EXCHANGE_TYPE.into()),
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| AmqpError::Declare {
            what: format!("exchange {exchange} (type {SHARD_EXCHANGE_TYPE})"),
            detail: format!(
                "{e}; amqp.shards needs the broker's consistent-hash exchange plugin: \
                 rabbitmq-plugins enable rabbitmq_consistent_hash_exchange (or set amqp.shards = 0)"
            ),
        })?;
        for q in self.shard_queues() {
            ch.queue_declare(
                ShortString::from(q.as_str()),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                self.jobs_queue_args(),
            )
            .await
            .map_err(|e| AmqpError::Declare {
                what: format!("queue {q}"),
                detail: e.to_string(),
            })?;
            // The routing key of a consistent-hash binding is the queue's weight.
            ch.queue_bind(
                ShortString::from(q.as_str()),
                ShortString::from(exchange.as_str()),
                ShortString::from("1"),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| AmqpError::Declare {
                what: format!("binding {exchange} -> {q}"),
                detail: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Delete everything this topology declared (tests, and `paperboy` operators tearing down a test setup).
    pub async fn delete(&self, ch: &Channel) -> Result<(), AmqpError> {
        let mut queues = vec![self.jobs_queue.clone(), self.dead_letter_queue.clone()];
        queues.extend(self.output_queue.clone());
        queues.extend(self.ttl_queues().into_iter().map(|(n, _)| n));
        queues.extend(self.shard_queues());
        for q in queues {
            ch.queue_delete(ShortString::from(q.as_str()), QueueDeleteOptions::default())
                .await
                .map_err(|e| AmqpError::Declare {
                    what: format!("queue {q} (delete)"),
                    detail: e.to_string(),
                })?;
        }
        let mut exchanges = vec![
            self.output_exchange.clone(),
            self.dead_letter_exchange.clone(),
        ];
        if self.shards > 0 {
            exchanges.push(self.shard_exchange());
        }
        for ex in &exchanges {
            ch.exchange_delete(ShortString::from(ex.as_str()), Default::default())
                .await
                .map_err(|e| AmqpError::Declare {
                    what: format!("exchange {ex} (delete)"),
                    detail: e.to_string(),
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo() -> Topology {
        Topology {
            jobs_queue: "j".into(),
            output_exchange: "o".into(),
            output_queue: None,
            output_queue_max_length: None,
            dead_letter_exchange: "dlx".into(),
            dead_letter_queue: "dlq".into(),
            delivery_limit: 5,
            delay_queue: "d".into(),
            retry_tiers_ms: vec![100, 1000],
            shards: 0,
        }
    }

    #[test]
    fn jobs_route_by_host_when_sharded() {
        let mut t = topo();
        assert_eq!(t.job_route("https://a.example/x"), ("".into(), "j".into()));
        t.shards = 4;
        assert_eq!(
            t.job_route("https://News.Example:8443/x?y"),
            ("j.shards".into(), "news.example".into())
        );
        assert_eq!(
            t.shard_queues(),
            ["j.shard.0", "j.shard.1", "j.shard.2", "j.shard.3"]
        );
    }

    #[test]
    fn tiers() {
        let t = topo();
        assert_eq!(t.retry_queue(0), "j.retry.100");
        assert_eq!(t.retry_queue(1), "j.retry.1000");
        assert_eq!(t.retry_queue(7), "j.retry.1000");
        assert_eq!(t.delay_queue_for(Duration::from_millis(5200)), "d.15000");
        assert_eq!(t.delay_queue_for(Duration::from_millis(5000)), "d.5000");
        assert_eq!(t.delay_queue_for(Duration::from_secs(100_000)), "d.1200000");
        assert_eq!(t.ttl_queues().len(), 2 + DELAY_TIERS_MS.len());
    }

    #[test]
    fn pipelines_with_other_jobs_queues_share_no_ttl_queue() {
        let with_jobs = |q: &str| {
            let env = [("PAPERBOY__AMQP__JOBS_QUEUE".to_string(), q.to_string())];
            Topology::from_settings(&Settings::load_with_env(None, env).unwrap())
        };
        let (a, b) = (with_jobs("news.jobs"), with_jobs("blogs.jobs"));
        assert_eq!(
            a.delay_queue_for(Duration::from_secs(1)),
            "news.jobs.delay.1000"
        );
        let names = |t: &Topology| {
            t.ttl_queues()
                .into_iter()
                .map(|(name, _)| name)
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert!(names(&a).is_disjoint(&names(&b)));
        assert_eq!(a.output_queue_max_length, Some(100_000));
    }
}
