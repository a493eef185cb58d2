//! HTTP fetching: the client (timeouts, size caps, redirects, SSRF guard), robots.txt and per-host politeness.
//!
//! `fetch` never imports `amqp`. (Placeholder client: replaced by the fetch work.)

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use url::Url;

use crate::config::FetchSettings;

/// A response as fetched: any HTTP status (the worker decides what a status means).
#[derive(Debug, Clone)]
pub struct FetchedPage {
    /// The URL after redirects.
    pub final_url: Url,
    pub status: u16,
    pub content_type: Option<String>,
    pub content_language: Option<String>,
    /// Body, content-decoded (gzip/br/deflate), at most `fetch.max_body_bytes`.
    pub body: Bytes,
    /// When the response started (RFC 3339 UTC).
    pub fetched_at: String,
}

/// Why a fetch produced no response.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    #[error("{url} resolves to {addr}, a loopback/private/link-local address; set fetch.allow_private_networks = true to crawl it")]
    Blocked { url: String, addr: String },
    #[error("DNS lookup of {host} failed: {detail}")]
    Dns { host: String, detail: String },
    #[error("connecting to {url} failed: {detail}")]
    Connect { url: String, detail: String },
    #[error("TLS error talking to {url}: {detail}")]
    Tls { url: String, detail: String },
    #[error("{url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: body is over the {max}-byte cap (fetch.max_body_bytes)")]
    TooLarge { url: String, max: u64 },
    #[error("{url}: more than {max} redirects")]
    TooManyRedirects { url: String, max: u32 },
    #[error("{url}: redirect loop")]
    RedirectLoop { url: String },
    #[error("{url}: bad redirect target: {detail}")]
    BadRedirect { url: String, detail: String },
    #[error("{url}: reading the body failed: {detail}")]
    Body { url: String, detail: String },
    #[error("{url} is disallowed by robots.txt")]
    RobotsDisallowed { url: String },
    #[error(
        "{host} asks for a crawl-delay of {delay:?}, over the politeness.max_crawl_delay_ms cap"
    )]
    CrawlDelayTooLong { host: String, delay: Duration },
    #[error("{host} is not free for {wait:?}; deferred")]
    Deferred { host: String, wait: Duration },
}

impl FetchError {
    /// Short reason used in outcome routing keys (`outcome.failed.<reason>`).
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::Blocked { .. } => "blocked_address",
            FetchError::Dns { .. } => "dns",
            FetchError::Connect { .. } => "connect",
            FetchError::Tls { .. } => "tls",
            FetchError::Timeout { .. } => "timeout",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::TooManyRedirects { .. } => "too_many_redirects",
            FetchError::RedirectLoop { .. } => "redirect_loop",
            FetchError::BadRedirect { .. } => "bad_redirect",
            FetchError::Body { .. } => "body",
            FetchError::RobotsDisallowed { .. } => "robots",
            FetchError::CrawlDelayTooLong { .. } => "crawl_delay",
            FetchError::Deferred { .. } => "deferred",
        }
    }

    /// Whether trying again later may succeed (timeouts, connection and DNS errors).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            FetchError::Dns { .. }
                | FetchError::Connect { .. }
                | FetchError::Timeout { .. }
                | FetchError::Body { .. }
        )
    }
}

/// The fetch seam: the worker and `scrape` depend on this, tests may substitute a local server.
pub trait Fetcher: Send + Sync + 'static {
    fn fetch(&self, url: &Url) -> impl Future<Output = Result<FetchedPage, FetchError>> + Send;
}

/// Placeholder HTTP client (no politeness yet).
#[derive(Clone)]
pub struct PoliteFetcher {
    client: reqwest::Client,
    settings: FetchSettings,
}

impl PoliteFetcher {
    pub fn new(
        settings: &crate::config::Settings,
        _redis: Option<redis::aio::ConnectionManager>,
    ) -> Result<Self, FetchError> {
        let settings = &settings.fetch;
        let client = reqwest::Client::builder()
            .user_agent(settings.user_agent.clone())
            .connect_timeout(settings.connect_timeout())
            .timeout(settings.timeout())
            .redirect(reqwest::redirect::Policy::limited(
                settings.max_redirects as usize,
            ))
            .build()
            .map_err(|e| FetchError::Connect {
                url: String::new(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            client,
            settings: settings.clone(),
        })
    }
}

impl Fetcher for PoliteFetcher {
    async fn fetch(&self, url: &Url) -> Result<FetchedPage, FetchError> {
        let resp = self.client.get(url.clone()).send().await.map_err(|e| {
            if e.is_timeout() {
                FetchError::Timeout {
                    url: url.to_string(),
                    timeout: self.settings.timeout(),
                }
            } else {
                FetchError::Connect {
                    url: url.to_string(),
                    detail: e.to_string(),
                }
            }
        })?;
        let header = |n: reqwest::header::HeaderName| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let content_language = header(reqwest::header::CONTENT_LANGUAGE);
        let final_url = resp.url().clone();
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| FetchError::Body {
            url: url.to_string(),
            detail: e.to_string(),
        })?;
        Ok(FetchedPage {
            final_url,
            status,
            content_type,
            content_language,
            body,
            fetched_at: crate::message::now_rfc3339(),
        })
    }
}
