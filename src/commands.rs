//! The CLI subcommands other than `work`: `submit`, `tail`, `scrape`, `extract`.
//!
//! Each takes validated settings and explicit readers/writers so tests can drive it.

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::ExchangeKind;
use serde_json::{json, Value};
use url::Url;

use crate::amqp::{self, json_properties, AmqpError, Publisher, Topology};
use crate::config::Settings;
use crate::dedup::Seen;
use crate::extract::{self, Page};
use crate::fetch::Fetcher;
use crate::message::{new_job_id, validate_url, Job};
use crate::pipeline::{decision_json, Decision, JobInput, Processor};

/// Publishes in flight at once while submitting.
const SUBMIT_WINDOW: usize = 512;

/// What `submit` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SubmitReport {
    pub confirmed: usize,
    pub invalid: usize,
    pub failed: usize,
}

/// One line of submit input: a URL or a problem with its line number.
fn parse_submit_lines(input: impl BufRead, err: &mut dyn Write) -> (Vec<String>, usize) {
    let mut urls = Vec::new();
    let mut invalid = 0;
    for (n, line) in input.lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                let _ = writeln!(err, "line {}: unreadable ({e}); skipped", n + 1);
                invalid += 1;
                continue;
            }
        };
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match validate_url(t) {
            Ok(u) => urls.push(u.to_string()),
            Err(e) => {
                let _ = writeln!(err, "line {}: {e}; skipped", n + 1);
                invalid += 1;
            }
        }
    }
    (urls, invalid)
}

/// Publish one job per URL (arguments first, then lines of `input`) with confirms.
pub async fn submit(
    settings: &Settings,
    kind: Option<crate::message::JobKind>,
    args: &[String],
    input: Option<Box<dyn BufRead + Send>>,
    err: &mut (dyn Write + Send),
) -> Result<SubmitReport, AmqpError> {
    let (mut urls, mut invalid) = parse_submit_lines(std::io::Cursor::new(args.join("\n")), err);
    if let Some(input) = input {
        let (more, bad) = parse_submit_lines(input, err);
        urls.extend(more);
        invalid += bad;
    }
    let conn = amqp::connect(settings, "paperboy-submit").await?;
    let publisher = Publisher::open(
        &conn,
        Duration::from_millis(settings.amqp.confirm_timeout_ms),
    )
    .await?;
    let topology = Topology::from_settings(settings);
    topology.declare(publisher.channel()).await?;

    let bar = (urls.len() >= 1000).then(|| {
        let pb = indicatif::ProgressBar::with_draw_target(
            Some(urls.len() as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} jobs confirmed ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let mut report = SubmitReport {
        invalid,
        ..Default::default()
    };
    let mut pending = FuturesUnordered::new();
    let mut iter = urls.into_iter();
    loop {
        while pending.len() < SUBMIT_WINDOW {
            let Some(url) = iter.next() else { break };
            let job = Job {
                id: Some(new_job_id()),
                kind,
                ..Job::for_url(url.clone())
            };
            let body = serde_json::to_vec(&job).expect("job serializes");
            let props = json_properties(job.id.as_deref().unwrap_or_default());
            let publisher = publisher.clone();
            let (exchange, key) = topology.job_route(&url);
            pending.push(async move {
                let res = publisher.publish(&exchange, &key, &body, props).await;
                (url, res)
            });
        }
        let Some((url, res)) = pending.next().await else {
            break;
        };
        match res {
            Ok(()) => report.confirmed += 1,
            Err(e) => {
                let _ = writeln!(err, "{url}: not confirmed: {e}");
                report.failed += 1;
            }
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let _ = conn.close(200, ShortString::from("bye")).await;
    Ok(report)
}

/// Bind a temporary exclusive queue to the output exchange and print each message as one JSON line.
/// Stops after `max` messages or `idle` without a message, when given.
pub async fn tail(
    settings: &Settings,
    pattern: &str,
    max: Option<usize>,
    idle: Option<Duration>,
    out: &mut (dyn Write + Send),
) -> Result<usize, AmqpError> {
    let conn = amqp::connect(settings, "paperboy-tail").await?;
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| AmqpError::Channel(e.to_string()))?;
    let exchange = settings.amqp.output_exchange.as_str();
    ch.exchange_declare(
        ShortString::from(exchange),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .map_err(|e| AmqpError::Declare {
        what: format!("exchange {exchange}"),
        detail: e.to_string(),
    })?;
    let q = ch
        .queue_declare(
            ShortString::from(""),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| AmqpError::Declare {
            what: "temporary queue".into(),
            detail: e.to_string(),
        })?;
    ch.queue_bind(
        q.name().clone(),
        ShortString::from(exchange),
        ShortString::from(pattern),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(|e| AmqpError::Declare {
        what: format!("binding {exchange} -> {} ({pattern})", q.name()),
        detail: e.to_string(),
    })?;
    let mut consumer = ch
        .basic_consume(
            q.name().clone(),
            ShortString::from("paperboy-tail"),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| AmqpError::Consume(e.to_string()))?;
    // Tell a human (and scripts waiting for it) that we are bound and listening.
    tracing::info!(exchange, pattern, "tailing");
    let mut n = 0;
    loop {
        if max.is_some_and(|m| n >= m) {
            break;
        }
        let next = match idle {
            Some(d) => match tokio::time::timeout(d, consumer.next()).await {
                Ok(x) => x,
                Err(_) => break,
            },
            None => consumer.next().await,
        };
        let delivery = match next {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                ch.wait_for_recovery(e)
                    .await
                    .map_err(|e| AmqpError::Consume(e.to_string()))?;
                continue;
            }
            None => break,
        };
        let line = match serde_json::from_slice::<Value>(&delivery.data) {
            Ok(v) => v.to_string(),
            Err(_) => json!({
                "routing_key": delivery.routing_key.as_str(),
                "body": String::from_utf8_lossy(&delivery.data),
            })
            .to_string(),
        };
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            break; // broken pipe: the reader went away
        }
        n += 1;
    }
    let _ = conn.close(200, ShortString::from("bye")).await;
    Ok(n)
}

/// Fetch, extract and print each URL without a broker; a feed or sitemap prints its `expanded`
/// outcome and then the articles of its items. Returns (articles, other outcomes).
pub async fn scrape<F: Fetcher, S: Seen>(
    processor: &Processor<F, S>,
    urls: &[String],
    concurrency: usize,
    out: &mut (dyn Write + Send),
) -> (usize, usize) {
    let run = |job: JobInput| async move {
        loop {
            match processor.process(&job).await.0 {
                // No broker to park the job on: wait here.
                Decision::Defer { wait, .. } => tokio::time::sleep(wait).await,
                d => return d,
            }
        }
    };
    let mut queue: std::collections::VecDeque<JobInput> = urls
        .iter()
        .map(|u| JobInput::new(new_job_id(), u.clone()))
        .collect();
    let mut running = FuturesUnordered::new();
    let (mut articles, mut others) = (0, 0);
    loop {
        while running.len() < concurrency.max(1) {
            let Some(job) = queue.pop_front() else { break };
            running.push(run(job));
        }
        let Some(d) = running.next().await else { break };
        match &d {
            Decision::Article(_) => articles += 1,
            Decision::Expand { children, .. } => {
                others += 1;
                queue.extend(children.iter().map(|c| {
                    JobInput::from_job(c.clone(), c.id.clone().unwrap_or_else(new_job_id))
                }));
            }
            _ => others += 1,
        }
        if writeln!(out, "{}", decision_json(&d)).is_err() {
            break;
        }
    }
    (articles, others)
}

/// Read a saved page (`.gz` files are gunzipped).
pub fn read_page(path: &Path) -> std::io::Result<Vec<u8>> {
    let raw = std::fs::read(path)?;
    if path.extension().is_some_and(|e| e == "gz") || raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Extract one saved page into a JSON object with `source` (the path as given).
pub fn extract_file(source: &str, url: Option<&Url>, max_html_bytes: usize) -> Value {
    let body = match read_page(Path::new(source)) {
        Ok(b) => b,
        Err(e) => return json!({"source": source, "error": format!("cannot read {source}: {e}")}),
    };
    if body.len() > max_html_bytes {
        return json!({"source": source, "error": format!("{source} is {} bytes, over extract.max_html_bytes ({max_html_bytes})", body.len())});
    }
    let r = extract::extract(&Page {
        body: &body,
        url,
        content_type: None,
        content_language: None,
    });
    // A page without body text still has its metadata: printed with an empty text and the error.
    let (x, error) = match r {
        Ok(x) => (x, None),
        Err(e) => match e.partial() {
            Some(x) => (x.clone(), Some(e.to_string())),
            None => return json!({"source": source, "error": e.to_string()}),
        },
    };
    let mut line = json!({
            "source": source,
            "url": url.map(Url::as_str),
            "canonical_url": x.canonical_url,
            "title": x.title,
            "authors": x.authors,
            "published_at": x.published_at,
            "modified_at": x.modified_at,
            "language": x.language.as_deref().unwrap_or("und"),
            "site_name": x.site_name,
            "description": x.description,
            "image": x.image,
            "word_count": crate::pipeline::word_count(&x.text),
            "content_hash": (!x.text.is_empty()).then(|| crate::dedup::content_hash(&x.text)),
            "page_kind": x.page_kind,
            "extraction_confidence": x.confidence,
            "charset": x.charset,
            "text": x.text,
    });
    if let Some(e) = error {
        line["error"] = json!(e);
    }
    line
}

/// A header value as JSON (strings decoded as UTF-8, tables and arrays recursively).
pub fn amqp_value_json(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Float(f) => json!(f),
        AMQPValue::Double(f) => json!(f),
        AMQPValue::Timestamp(t) => json!(t),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::ByteArray(b) => json!(String::from_utf8_lossy(b.as_slice())),
        AMQPValue::FieldArray(a) => {
            Value::Array(a.as_slice().iter().map(amqp_value_json).collect())
        }
        AMQPValue::FieldTable(t) => table_json(t),
        AMQPValue::DecimalValue(d) => json!(format!("{d:?}")),
        AMQPValue::Void => Value::Null,
    }
}

fn table_json(t: &FieldTable) -> Value {
    Value::Object(
        t.inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), amqp_value_json(v)))
            .collect(),
    )
}

/// A channel for reading the dead-letter queue, and the queue's name.
async fn dead_letter_channel(
    conn: &lapin::Connection,
    settings: &Settings,
) -> Result<(lapin::Channel, ShortString), AmqpError> {
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| AmqpError::Channel(e.to_string()))?;
    Ok((
        ch,
        ShortString::from(settings.amqp.dead_letter_queue.as_str()),
    ))
}

/// The next dead letter, unacknowledged (None when the queue is empty).
async fn next_dead_letter(
    ch: &lapin::Channel,
    queue: &ShortString,
) -> Result<Option<lapin::message::BasicGetMessage>, AmqpError> {
    ch.basic_get(queue.clone(), BasicGetOptions { no_ack: false })
        .await
        .map_err(|e| AmqpError::Consume(e.to_string()))
}

/// Print up to `max` dead letters as JSON lines (`headers`, `body`) without removing them: they are read
/// unacknowledged and go back to the queue when the channel closes.
pub async fn dlq_list(
    settings: &Settings,
    max: usize,
    out: &mut (dyn Write + Send),
) -> Result<usize, AmqpError> {
    let conn = amqp::connect(settings, "paperboy-dlq").await?;
    let (ch, queue) = dead_letter_channel(&conn, settings).await?;
    let mut n = 0;
    while n < max {
        let Some(m) = next_dead_letter(&ch, &queue).await? else {
            break;
        };
        let d = &m.delivery;
        let body = serde_json::from_slice::<Value>(&d.data)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&d.data).into_owned()));
        let headers = d
            .properties
            .headers()
            .as_ref()
            .map(table_json)
            .unwrap_or(Value::Null);
        if writeln!(out, "{}", json!({"headers": headers, "body": body})).is_err() {
            break;
        }
        n += 1;
    }
    // Closing the channel returns every unacked message to the queue, in order.
    let _ = ch.close(200, ShortString::from("bye")).await;
    let _ = conn.close(200, ShortString::from("bye")).await;
    Ok(n)
}

/// Move up to `max` dead letters back to the jobs queue (attempt count reset), each acked only after its
/// republish is confirmed. Undecodable bodies are moved too: fix them first, or purge the queue.
pub async fn dlq_replay(settings: &Settings, max: usize) -> Result<usize, AmqpError> {
    let conn = amqp::connect(settings, "paperboy-dlq").await?;
    let publisher = Publisher::open(
        &conn,
        Duration::from_millis(settings.amqp.confirm_timeout_ms),
    )
    .await?;
    let (ch, queue) = dead_letter_channel(&conn, settings).await?;
    let mut n = 0;
    while n < max {
        let Some(m) = next_dead_letter(&ch, &queue).await? else {
            break;
        };
        let d = &m.delivery;
        let id = d
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(new_job_id);
        let props = json_properties(&id).with_content_type(
            d.properties
                .content_type()
                .clone()
                .unwrap_or_else(|| ShortString::from("application/json")),
        );
        publisher
            .publish("", &settings.amqp.jobs_queue, &d.data, props)
            .await?;
        d.acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(|e| AmqpError::Consume(e.to_string()))?;
        n += 1;
    }
    let _ = conn.close(200, ShortString::from("bye")).await;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_lines_skip_comments_and_report_bad_lines() {
        let input =
            "https://a.example/1\n\n# comment\nnot a url\nftp://x/y\n  https://b.example/2  \n";
        let mut err = Vec::new();
        let (urls, invalid) = parse_submit_lines(std::io::Cursor::new(input), &mut err);
        assert_eq!(urls, vec!["https://a.example/1", "https://b.example/2"]);
        assert_eq!(invalid, 2);
        let err = String::from_utf8(err).unwrap();
        assert!(err.contains("line 4:") && err.contains("line 5:"), "{err}");
    }
}
