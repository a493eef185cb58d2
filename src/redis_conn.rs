//! The Redis connection shared by politeness, robots.txt cache and dedup: redis:// or rediss://.
//!
//! rediss:// verifies the server against the system trust store, or only against `redis.ca_file` when set.
//! Errors never carry the URL's password.

use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::config::{redact_url, Settings};
use crate::tls::{self, CaFileError};

/// Why Redis cannot be used. Never carries the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisConnectError {
    #[error("redis.url {url} is not a valid Redis URL: {detail}")]
    Url { url: String, detail: String },
    #[error(transparent)]
    CaFile(#[from] CaFileError),
    #[error("connecting to Redis at {url} timed out after {timeout:?} (is Redis running? check redis.url)")]
    Timeout { url: String, timeout: Duration },
    #[error("cannot connect to Redis at {url}: {detail} ({hint})")]
    Connect {
        url: String,
        detail: String,
        hint: String,
    },
}

/// A client for `redis.url` (with `redis.ca_file` for rediss://); `None` when no URL is configured.
pub fn client(settings: &Settings) -> Result<Option<redis::Client>, RedisConnectError> {
    let Some(url) = settings.redis_url() else {
        return Ok(None);
    };
    tls::install_crypto_provider();
    let bad_url = |e: redis::RedisError| RedisConnectError::Url {
        url: redact_url(url),
        detail: e.to_string().replace(url, &redact_url(url)),
    };
    let ca_file = &settings.redis.ca_file;
    let client = if url.starts_with("rediss://") && !ca_file.is_empty() {
        let root_cert = tls::read_ca_file("redis.ca_file", ca_file)?;
        redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            },
        )
        .map_err(bad_url)?
    } else {
        redis::Client::open(url).map_err(bad_url)?
    };
    Ok(Some(client))
}

/// Connect to `redis.url` (within 10 s); `None` when no URL is configured.
pub async fn connect(settings: &Settings) -> Result<Option<ConnectionManager>, RedisConnectError> {
    let Some(client) = client(settings)? else {
        return Ok(None);
    };
    let url = settings.redis_url().unwrap_or_default();
    let redacted = redact_url(url);
    let timeout = Duration::from_secs(10);
    let timed_out = |_| RedisConnectError::Timeout {
        url: redacted.clone(),
        timeout,
    };
    let failed = |e: redis::RedisError| {
        let detail = e.to_string().replace(url, &redacted);
        RedisConnectError::Connect {
            hint: tls::connect_hint(&detail, "redis.url", "redis.ca_file"),
            url: redacted.clone(),
            detail,
        }
    };
    // One plain attempt first: the connection manager retries a failing connect until the timeout, which
    // would hide why (refused, TLS, password).
    tokio::time::timeout(timeout, client.get_multiplexed_async_connection())
        .await
        .map_err(timed_out)?
        .map_err(failed)?;
    let conn = tokio::time::timeout(timeout, ConnectionManager::new(client))
        .await
        .map_err(timed_out)?
        .map_err(failed)?;
    Ok(Some(conn))
}
