//! Broker side: connections with auto-recovery, topology, publish-with-confirm, header helpers.
//!
//! `amqp` never imports `fetch` or `extract`.

mod publisher;
mod topology;

use std::time::Duration;

use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connect, Connection, ConnectionProperties};

use crate::config::{redact_url, Settings};
use crate::tls;

pub use publisher::Publisher;
pub use topology::{Topology, DELAY_TIERS_MS, SHARD_EXCHANGE_TYPE};

/// Header carrying the attempt number of a job (1 = first try).
pub const HEADER_ATTEMPT: &str = "x-paperboy-attempt";
/// Header on dead letters: why the job was dead-lettered (`undecodable`, `failed.<reason>`, …).
pub const HEADER_REASON: &str = "x-paperboy-reason";
/// Header on dead letters: the error in words.
pub const HEADER_ERROR: &str = "x-paperboy-error";
/// Header on dead letters: the last HTTP status seen, when there was one.
pub const HEADER_HTTP_STATUS: &str = "x-paperboy-http-status";
/// Header on dead letters: the job id.
pub const HEADER_JOB_ID: &str = "x-paperboy-job-id";
/// Header on deferred jobs: how many times the job was deferred.
pub const HEADER_DEFERRALS: &str = "x-paperboy-deferrals";

/// Broker errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AmqpError {
    #[error("cannot connect to the broker at {url}: {detail} ({hint})")]
    Connect {
        url: String,
        detail: String,
        /// What to check: the broker, `amqp.ca_file` or the host name (see [`tls::connect_hint`]).
        hint: String,
    },
    #[error(transparent)]
    CaFile(#[from] tls::CaFileError),
    #[error("cannot open a channel: {0}")]
    Channel(String),
    #[error("cannot declare {what}: {detail}. If it exists with other arguments, delete it or choose another name in the config")]
    Declare { what: String, detail: String },
    #[error("the broker refused (nack) the message to {exchange:?} / {routing_key}")]
    Nack {
        exchange: String,
        routing_key: String,
    },
    #[error("the message to {exchange:?} / {routing_key} was unroutable ({reply}): no queue is bound for it")]
    Unroutable {
        exchange: String,
        routing_key: String,
        reply: String,
    },
    #[error("no confirm from the broker within {0:?}")]
    ConfirmTimeout(Duration),
    #[error("publishing failed: {0}")]
    Publish(String),
    #[error("consuming failed: {0}")]
    Consume(String),
}

/// TCP reconnect attempts lapin makes (exponential, at most 5 s apart) before giving up; the worker's
/// supervisor then rebuilds the whole session, so a broker that is down for long is waited for.
const RECONNECT_ATTEMPTS: usize = 4;

/// Connect to `amqp.url` with lapin's auto-recovery (reconnect, then replay channels, QoS, consumers and
/// confirms). amqps:// trusts the system store plus `amqp.ca_file`; reconnects reuse the same TLS set-up.
pub async fn connect(settings: &Settings, name: &str) -> Result<Connection, AmqpError> {
    let with_frames = with_frame_max(settings.amqp_url());
    let url = with_frames.as_deref().unwrap_or(settings.amqp_url());
    tls::install_crypto_provider();
    let tls_config = OwnedTLSConfig {
        identity: None,
        cert_chain: match settings.amqp.ca_file.as_str() {
            "" => None,
            path => Some(
                String::from_utf8_lossy(&tls::read_ca_file("amqp.ca_file", path)?).into_owned(),
            ),
        },
    };
    let props = ConnectionProperties::default()
        .enable_auto_recover()
        .configure_backoff(|b| {
            b.with_max_times(RECONNECT_ATTEMPTS)
                .with_max_delay(Duration::from_secs(5))
        })
        .with_connection_name(LongString::from(name));
    let connect_error = |detail: String| AmqpError::Connect {
        hint: tls::connect_hint(&detail, "amqp.url", "amqp.ca_file"),
        url: redact_url(url),
        detail,
    };
    let runtime = lapin::runtime::default_runtime()
        .map_err(|e| connect_error(format!("no async runtime: {e}")))?;
    url.connect_with_config(props, tls_config, runtime)
        .await
        .map_err(|e| connect_error(scrub(&e.to_string(), url)))
}

/// lapin keeps 2 x 32 frames of `frame_max` per connection as I/O buffers, and RabbitMQ offers 128 KiB
/// frames: 8 MiB per connection. Unless the URL sets `frame_max`, ask for 16 KiB frames (2 MiB per
/// connection; larger messages are split into more frames).
const FRAME_MAX: u32 = 16 * 1024;

pub(crate) fn with_frame_max(url: &str) -> Option<String> {
    let mut u = url::Url::parse(url).ok()?;
    if u.query_pairs().any(|(k, _)| k == "frame_max") {
        return None;
    }
    u.query_pairs_mut()
        .append_pair("frame_max", &FRAME_MAX.to_string());
    Some(u.to_string())
}

/// Remove a URL (with its password) from an error text.
fn scrub(text: &str, url: &str) -> String {
    if url.is_empty() {
        return text.to_string();
    }
    text.replace(url, &redact_url(url))
}

/// Properties of every message paperboy publishes: persistent, JSON, with a stable id.
pub fn json_properties(message_id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_message_id(ShortString::from(message_id))
        .with_app_id(ShortString::from("paperboy"))
        .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64)
}

/// A string header value.
pub fn header_str(props: &BasicProperties, name: &str) -> Option<String> {
    let headers = props.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

/// An integer header value (any integer width).
pub fn header_u32(props: &BasicProperties, name: &str) -> Option<u32> {
    let headers = props.headers().as_ref()?;
    let v: i64 = match headers.inner().get(name)? {
        AMQPValue::ShortShortInt(v) => (*v).into(),
        AMQPValue::ShortShortUInt(v) => (*v).into(),
        AMQPValue::ShortInt(v) => (*v).into(),
        AMQPValue::ShortUInt(v) => (*v).into(),
        AMQPValue::LongInt(v) => (*v).into(),
        AMQPValue::LongUInt(v) => (*v).into(),
        AMQPValue::LongLongInt(v) => *v,
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).trim().parse().ok()?,
        _ => return None,
    };
    u32::try_from(v).ok()
}

/// Copy `props`' headers and set `entries` on them.
pub fn with_headers(props: &BasicProperties, entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut table = props.headers().clone().unwrap_or_default();
    for (k, v) in entries {
        table.insert(ShortString::from(*k), v.clone());
    }
    table
}

/// A long-string header value.
pub fn string_value(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

#[cfg(test)]
mod frame_max_tests {
    use super::with_frame_max;

    #[test]
    fn frame_max_is_added_unless_the_url_sets_it() {
        assert_eq!(
            with_frame_max("amqp://guest:guest@127.0.0.1:5672/%2f").as_deref(),
            Some("amqp://guest:guest@127.0.0.1:5672/%2f?frame_max=16384")
        );
        assert_eq!(
            with_frame_max("amqps://u:p@mq.example/vh?heartbeat=10").as_deref(),
            Some("amqps://u:p@mq.example/vh?heartbeat=10&frame_max=16384")
        );
        assert_eq!(
            with_frame_max("amqp://127.0.0.1/%2f?frame_max=131072"),
            None
        );
    }
}
