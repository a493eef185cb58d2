//! The worker: consume URL jobs, take each to exactly one outcome, publish it with confirm, then ack.
//!
//! The only module that sees every stage. Delivery guarantees:
//! - a job is acked only after what it produced (article, outcome, retry copy, deferral copy or dead
//!   letter) is confirmed by the broker;
//! - when publishing fails the job is nacked back to the queue (the quorum queue's delivery limit
//!   dead-letters a job that can never be published);
//! - on shutdown consuming stops, in-flight jobs get `worker.shutdown_grace_ms` to finish, and whatever
//!   is unfinished stays unacked so the broker redelivers it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Connection};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::amqp::{
    self, header_u32, json_properties, string_value, with_headers, AmqpError, Publisher, Topology,
    HEADER_ATTEMPT, HEADER_DEFERRALS, HEADER_ERROR, HEADER_HTTP_STATUS, HEADER_JOB_ID,
    HEADER_REASON,
};
use crate::config::Settings;
use crate::dedup::Seen;
use crate::fetch::Fetcher;
use crate::message::{Job, Outcome};
use crate::metrics::{Health, Metrics};
use crate::pipeline::{make_outcome, Decision, JobInput, Processor};

/// How often the worker looks at its broker connections (for `/readyz` and to notice a stalled recovery).
const CONNECTION_CHECK: Duration = Duration::from_millis(250);
/// How long the connections may stay down while lapin recovers them before the session is rebuilt from
/// scratch. lapin makes up to `amqp::RECONNECT_ATTEMPTS` attempts (about 12 s) and then stops silently.
const RECOVERY_WAIT: Duration = Duration::from_secs(15);

/// Child-job publishes of one feed or sitemap in flight at once.
const CHILD_PUBLISHES_AT_ONCE: usize = 256;

/// A worker process's consuming loop, rebuilt by [`Worker::run`] after broker failures.
pub struct Worker<F, S> {
    processor: Processor<F, S>,
    settings: Arc<Settings>,
    topology: Topology,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// What one job's handling ended with (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Published and acked; the label says what was published.
    Acked(String),
    /// Publish failed; the job went back to the queue.
    Requeued(String),
    /// The delivery's channel died before the ack; the broker redelivers it.
    AckLost,
}

impl<F: Fetcher, S: Seen> Worker<F, S> {
    pub fn new(
        processor: Processor<F, S>,
        settings: Arc<Settings>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Self {
        let topology = Topology::from_settings(&settings);
        Self {
            processor,
            settings,
            topology,
            metrics,
            health,
        }
    }

    /// Run until `shutdown` is cancelled, reconnecting (with backoff) whenever the broker session is lost
    /// beyond what lapin's auto-recovery repairs.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), AmqpError> {
        let mut backoff = Duration::from_millis(500);
        let mut sessions = 0u64;
        loop {
            sessions += 1;
            if sessions > 1 {
                self.metrics.reconnected("amqp");
            }
            let started = Instant::now();
            match self.run_session(&shutdown).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.health.set_broker_connected(false);
                    self.health.set_consumer_running(false);
                    if shutdown.is_cancelled() {
                        return Ok(());
                    }
                    if started.elapsed() > Duration::from_secs(60) {
                        // The session ran fine for a while: this is a new outage, start backing off afresh.
                        backoff = Duration::from_millis(500);
                    }
                    warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "broker session lost; rebuilding");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// One broker session: connect, declare, consume until shutdown or an unrecoverable error.
    async fn run_session(&self, shutdown: &CancellationToken) -> Result<(), AmqpError> {
        let consume_conn = amqp::connect(&self.settings, "paperboy-worker-consume").await?;
        let publish_conn = amqp::connect(&self.settings, "paperboy-worker-publish").await?;
        let confirm_timeout = Duration::from_millis(self.settings.amqp.confirm_timeout_ms);
        let publisher = Publisher::open(&publish_conn, confirm_timeout).await?;
        self.topology.declare(publisher.channel()).await?;
        self.health.set_broker_connected(true);

        let channel = consume_conn
            .create_channel()
            .await
            .map_err(|e| AmqpError::Channel(e.to_string()))?;
        let prefetch = self.settings.worker.concurrency;
        channel
            .basic_qos(prefetch, BasicQosOptions { global: false })
            .await
            .map_err(|e| AmqpError::Channel(format!("basic.qos: {e}")))?;
        // The jobs queue, and the shard queues this worker takes (amqp.shards / amqp.consume_shards). The
        // prefetch is per consumer; `slots` keeps the jobs processed at once at worker.concurrency.
        let mut queues = vec![(self.topology.jobs_queue.clone(), false)];
        queues.extend(self.consumed_shards().into_iter().map(|q| (q, true)));
        let mut tags = Vec::new();
        let mut streams = Vec::new();
        for (queue, shard) in &queues {
            let consumer = channel
                .basic_consume(
                    ShortString::from(queue.as_str()),
                    ShortString::from(format!("paperboy-{}", uuid::Uuid::new_v4())),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| AmqpError::Consume(format!("queue {queue}: {e}")))?;
            tags.push(consumer.tag());
            let shard = *shard;
            streams.push(consumer.map(move |d| (shard, d)).boxed());
        }
        let mut consumer = futures_util::stream::select_all(streams);
        let slots = Arc::new(tokio::sync::Semaphore::new(prefetch as usize));
        let hold = Duration::from_millis(self.settings.politeness.shard_hold_ms);
        self.health.set_consumer_running(true);
        info!(queues = ?queues.iter().map(|(q, _)| q.as_str()).collect::<Vec<_>>(), prefetch, "consuming");

        let tracker = TaskTracker::new();
        // lapin's auto-recovery neither tells the consumer stream that the connection is down nor, when it
        // gives up reconnecting, that it stopped trying: watch both connections for /readyz, and rebuild the
        // session when they stay down longer than lapin's recovery can take.
        let mut watch = tokio::time::interval(CONNECTION_CHECK);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut down_since: Option<Instant> = None;
        let result = loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break Ok(()),
                _ = watch.tick() => {
                    let up = consume_conn.status().connected() && publish_conn.status().connected();
                    self.health.set_broker_connected(up);
                    match (up, down_since) {
                        (true, None) => {}
                        (true, Some(since)) => {
                            down_since = None;
                            self.metrics.reconnected("amqp");
                            info!(down_ms = since.elapsed().as_millis() as u64, "broker connection recovered");
                        }
                        (false, None) => {
                            down_since = Some(Instant::now());
                            warn!(reconnecting = consume_conn.status().reconnecting(), "broker connection lost; lapin is reconnecting");
                        }
                        (false, Some(since)) if since.elapsed() > RECOVERY_WAIT => {
                            break Err(AmqpError::Consume(format!(
                                "the broker connection did not recover within {RECOVERY_WAIT:?}"
                            )));
                        }
                        (false, Some(_)) => {}
                    }
                }
                next = consumer.next() => match next {
                    Some((shard, Ok(delivery))) => {
                        let ctx = JobContext { processor: self.processor.clone(), publisher: publisher.clone(), topology: self.topology.clone(), settings: self.settings.clone(), metrics: self.metrics.clone(), patience: shard.then_some(hold) };
                        let slots = slots.clone();
                        tracker.spawn(async move {
                            let Ok(_slot) = slots.acquire_owned().await else { return };
                            ctx.handle(delivery).await;
                        });
                    }
                    Some((_, Err(e))) => {
                        warn!(error = %e, "consumer error; waiting for lapin recovery");
                        self.health.set_broker_connected(false);
                        down_since.get_or_insert_with(Instant::now);
                        match tokio::time::timeout(RECOVERY_WAIT, channel.wait_for_recovery(e)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => break Err(AmqpError::Consume(e.to_string())),
                            Err(_) => break Err(AmqpError::Consume(format!(
                                "the consumer did not recover within {RECOVERY_WAIT:?}"
                            ))),
                        }
                    }
                    None => break Err(AmqpError::Consume("the broker cancelled the consumer (queue deleted?)".into())),
                }
            }
        };
        self.health.set_consumer_running(false);
        // Stop taking deliveries; what is prefetched but not started is released when the channel closes.
        for tag in tags {
            let _ = channel
                .basic_cancel(tag, BasicCancelOptions::default())
                .await;
        }
        tracker.close();
        let grace = Duration::from_millis(self.settings.worker.shutdown_grace_ms);
        if result.is_ok() {
            info!(
                in_flight = tracker.len(),
                grace_ms = grace.as_millis() as u64,
                "draining"
            );
        }
        let drained = tokio::select! {
            _ = tracker.wait() => true,
            _ = tokio::time::sleep(grace) => false,
        };
        if !drained {
            warn!(
                unfinished = tracker.len(),
                "grace period over; unfinished jobs stay unacked and will be redelivered"
            );
        }
        close(&consume_conn).await;
        close(&publish_conn).await;
        result
    }
}

impl<F, S> Worker<F, S> {
    /// The shard queues this worker consumes: `amqp.consume_shards`, or all of them when it is empty.
    fn consumed_shards(&self) -> Vec<String> {
        let picked = &self.settings.amqp.consume_shards;
        (0..self.topology.shards)
            .filter(|i| picked.is_empty() || picked.contains(i))
            .map(|i| self.topology.shard_queue(i))
            .collect()
    }
}

async fn close(conn: &Connection) {
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        conn.close(200, ShortString::from("bye")),
    )
    .await;
}

/// Everything one job's task needs.
struct JobContext<F, S> {
    processor: Processor<F, S>,
    publisher: Publisher,
    topology: Topology,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    /// For jobs from a shard queue: how long they may wait in this worker for their host
    /// (`politeness.shard_hold_ms`) instead of `politeness.defer_threshold_ms`.
    patience: Option<Duration>,
}

impl<F: Fetcher, S: Seen> JobContext<F, S> {
    async fn handle(self, delivery: Delivery) -> Handled {
        let _in_flight = self.metrics.job_started();
        let props = delivery.properties.clone();
        let result = match Job::decode(
            &delivery.data,
            props.content_type().as_ref().map(|c| c.as_str()),
        ) {
            Err(e) => {
                warn!(error = %e, "undecodable job; dead-lettering");
                let headers = with_headers(
                    &props,
                    &[
                        (HEADER_REASON, string_value("undecodable")),
                        (HEADER_ERROR, string_value(&e.to_string())),
                    ],
                );
                self.dead_letter_body(&delivery.data, headers)
                    .await
                    .map(|_| "dead_letter.undecodable".to_string())
            }
            Ok(job) => {
                let input = job_input(job, &delivery);
                self.process_and_publish(&input, &delivery).await
            }
        };
        match result {
            Ok(label) => match delivery.acker.ack(BasicAckOptions::default()).await {
                Ok(true) => Handled::Acked(label),
                Ok(false) | Err(_) => {
                    warn!(
                        label,
                        "ack not delivered (channel gone); the broker will redeliver this job"
                    );
                    Handled::AckLost
                }
            },
            Err(e) => {
                error!(error = %e, "publishing the job's result failed; requeueing the job");
                // Avoid a hot loop when the broker keeps refusing: the delivery limit ends it eventually.
                tokio::time::sleep(Duration::from_millis(500)).await;
                let _ = delivery
                    .acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    })
                    .await;
                Handled::Requeued(e.to_string())
            }
        }
    }

    async fn process_and_publish(
        &self,
        job: &JobInput,
        delivery: &Delivery,
    ) -> Result<String, AmqpError> {
        let job_timeout = Duration::from_millis(self.settings.worker.job_timeout_ms);
        let process = self.processor.process(job);
        let processed = match self.patience {
            Some(p) => {
                tokio::time::timeout(job_timeout, crate::fetch::with_patience(p, process)).await
            }
            None => tokio::time::timeout(job_timeout, process).await,
        };
        let decision = match processed {
            Ok((d, trace)) => {
                if let Some(took) = trace.fetch {
                    self.metrics.fetched(took, trace.bytes as u64);
                }
                if let Some((host, waited)) = &trace.host_wait {
                    self.metrics.host_waited(host, *waited);
                }
                if let Some(took) = trace.extract {
                    self.metrics.extracted(took);
                }
                if let Some(v) = &trace.verdict {
                    self.metrics.dedup_verdict(v);
                    self.metrics.dedup_evictions_total(trace.evictions);
                }
                d
            }
            Err(_) => Decision::Transient(make_outcome(
                job,
                crate::message::OutcomeKind::Failed,
                "job_timeout",
                format!("processing took longer than worker.job_timeout_ms ({job_timeout:?})"),
            )),
        };
        let label = decision.label();
        info!(job_id = %job.job_id, url = %job.url, attempt = job.attempts, outcome = %label, "job done");
        match decision {
            Decision::Article(article) => {
                let body = serde_json::to_vec(&article).expect("article serializes");
                self.publish(
                    &self.topology.output_exchange,
                    &article.routing_key(),
                    &body,
                    json_properties(&article.message_id()),
                )
                .await?;
                self.metrics.job_finished("article", "");
            }
            Decision::Final(outcome) => {
                self.publish_outcome(&outcome).await?;
                self.metrics
                    .job_finished(outcome.outcome.as_str(), &outcome.reason);
            }
            Decision::Transient(outcome) => {
                if job.attempts < self.settings.retry.max_attempts {
                    let queue = self.topology.retry_queue(job.attempts as usize - 1);
                    debug!(job_id = %job.job_id, queue, reason = %outcome.reason, "retrying later");
                    self.republish_job(job, &queue, job.attempts + 1, &delivery.properties)
                        .await?;
                    self.metrics.job_finished("retried", &outcome.reason);
                    return Ok(format!("retry.{}", outcome.reason));
                }
                self.publish_outcome(&outcome).await?;
                let headers = with_headers(
                    &delivery.properties,
                    &[
                        (
                            HEADER_REASON,
                            string_value(&format!("failed.{}", outcome.reason)),
                        ),
                        (HEADER_ERROR, string_value(&outcome.detail)),
                        (HEADER_ATTEMPT, AMQPValue::LongInt(job.attempts as i32)),
                        (HEADER_JOB_ID, string_value(&job.job_id)),
                        (
                            HEADER_HTTP_STATUS,
                            outcome
                                .http_status
                                .map_or(AMQPValue::Void, |s| AMQPValue::LongInt(s.into())),
                        ),
                    ],
                );
                self.dead_letter_body(&job_body(job), headers).await?;
                self.metrics.job_finished("failed", &outcome.reason);
            }
            Decision::Expand { children, outcome } => {
                // Every child confirmed, then the outcome; only then is the parent acked. A
                // redelivered parent emits the same child ids again.
                let routes: Vec<_> = children
                    .iter()
                    .map(|c| {
                        let id = c.id.clone().unwrap_or_default();
                        let body = serde_json::to_vec(c).expect("job serializes");
                        (self.topology.job_route(&c.url), body, json_properties(&id))
                    })
                    .collect();
                for chunk in routes.chunks(CHILD_PUBLISHES_AT_ONCE) {
                    futures_util::future::try_join_all(chunk.iter().map(
                        |((exchange, key), body, props)| {
                            self.publisher.publish(exchange, key, body, props.clone())
                        },
                    ))
                    .await?;
                }
                self.metrics.children_published(children.len() as u64);
                self.publish_outcome(&outcome).await?;
                self.metrics
                    .job_finished(outcome.outcome.as_str(), &outcome.reason);
            }
            Decision::Defer { wait, host } => {
                let queue = self.topology.delay_queue_for(wait);
                debug!(job_id = %job.job_id, host, wait_ms = wait.as_millis() as u64, queue, "deferred");
                let deferrals = header_u32(&delivery.properties, HEADER_DEFERRALS).unwrap_or(0) + 1;
                let props = BasicProperties::default().with_headers(with_headers(
                    &delivery.properties,
                    &[(HEADER_DEFERRALS, AMQPValue::LongInt(deferrals as i32))],
                ));
                self.republish_job(job, &queue, job.attempts, &props)
                    .await?;
                self.metrics.host_deferred(&host);
            }
        }
        Ok(label)
    }

    /// Publish with confirm, timing the confirm.
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<(), AmqpError> {
        let started = Instant::now();
        self.publisher
            .publish(exchange, routing_key, body, props)
            .await?;
        self.metrics.publish_confirmed(started.elapsed());
        Ok(())
    }

    async fn publish_outcome(&self, outcome: &Outcome) -> Result<(), AmqpError> {
        let body = serde_json::to_vec(outcome).expect("outcome serializes");
        self.publish(
            &self.topology.output_exchange,
            &outcome.routing_key(),
            &body,
            json_properties(&outcome.message_id()),
        )
        .await
    }

    /// Put the job (with its id settled) on `queue` with the given attempt number.
    async fn republish_job(
        &self,
        job: &JobInput,
        queue: &str,
        attempt: u32,
        props: &BasicProperties,
    ) -> Result<(), AmqpError> {
        let headers = with_headers(
            props,
            &[(HEADER_ATTEMPT, AMQPValue::LongInt(attempt as i32))],
        );
        let props = json_properties(&job.job_id).with_headers(headers);
        self.publisher
            .publish("", queue, &job_body(job), props)
            .await
    }

    async fn dead_letter_body(&self, body: &[u8], headers: FieldTable) -> Result<(), AmqpError> {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_headers(headers);
        self.publish(&self.topology.dead_letter_exchange, "", body, props)
            .await
    }
}

/// The job as JSON with its id filled in, so retries and deferrals keep the same id.
fn job_body(job: &JobInput) -> Vec<u8> {
    serde_json::to_vec(&job.to_job()).expect("job serializes")
}

/// Settle the job id and attempt number of a delivery.
///
/// A job without an id gets one that is the same on every redelivery: the AMQP `message_id` when the
/// sender set one, else a UUID v5 of the body.
pub fn job_input(job: Job, delivery: &Delivery) -> JobInput {
    let props = &delivery.properties;
    let job_id = job.id.clone().unwrap_or_else(|| {
        props
            .message_id()
            .as_ref()
            .map(|m| m.as_str().to_string())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| {
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, &delivery.data).to_string()
            })
    });
    let mut input = JobInput::from_job(job, job_id);
    input.attempts = header_u32(props, HEADER_ATTEMPT).unwrap_or(1).max(1);
    input.deferrals = header_u32(props, HEADER_DEFERRALS).unwrap_or(0);
    input.redelivered = delivery.redelivered;
    input
}
