//! HTTP fetching: the client (timeouts, size caps, redirects, SSRF guard), robots.txt and per-host politeness.
//!
//! `fetch` never imports `amqp` or `worker`.
//!
//! - [`client`]: [`HttpClient`], the hardened client (timeouts, redirects checked hop by hop, body cap,
//!   SSRF guard on resolved addresses).
//! - `dns`: name resolution with a TTL-aware cache (below the SSRF guard).
//! - [`guard`]: PURE address classification for the SSRF guard.
//! - [`PoliteFetcher`]: robots.txt and per-host politeness around the client (what the worker uses).

pub mod client;
mod dns;
pub mod guard;
mod limiter;
pub mod limits;
mod polite;
mod redis_limiter;
pub mod robots;
mod robots_cache;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use url::Url;

pub use client::{BodyHold, HttpClient};
pub use polite::{with_patience, PoliteFetcher};

use crate::dedup::UrlCheck;

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
    /// The body's share of the memory budget (`fetch.max_buffered_bytes`), given back when the last
    /// clone of the page is dropped: drop the body as soon as it is no longer needed.
    pub hold: BodyHold,
    /// When the response started (RFC 3339 UTC).
    pub fetched_at: String,
    /// Time spent waiting for the host's politeness slot and concurrency permit before the request.
    pub politeness_wait: Duration,
    /// The answer's validators (`ETag`, `Last-Modified`), kept for the next conditional GET.
    pub validators: Validators,
}

/// Why a fetch produced no response.
impl FetchedPage {
    /// The page's metadata without its body (nor its share of the body budget).
    pub fn without_body(&self) -> FetchedPage {
        FetchedPage {
            body: Bytes::new(),
            hold: BodyHold::default(),
            ..self.clone()
        }
    }
}

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
    #[error("robots.txt for {url} is unavailable ({detail}); the host is not crawled for now (politeness.robots_error_ttl_s)")]
    RobotsUnavailable { url: String, detail: String },
    #[error("the fleet-wide politeness limiter (Redis) failed for {host}: {detail}; not fetched without it (politeness.redis_failure = \"defer\"), retried later (check Redis at redis.url)")]
    LimiterUnavailable { host: String, detail: String },
    #[error("{host} is not free for {wait:?}; deferred")]
    Deferred { host: String, wait: Duration },
    /// The URL check the fetch carried ([`FetchOptions::url_check`]) found the URL taken by another
    /// job: nothing was fetched, no lease or slot taken.
    #[error("{url} was taken by job {first_job}")]
    UrlSeen { url: String, first_job: String },
    /// The Redis call carrying the URL check failed: the URL's state is unknown, so it is not fetched
    /// (failing closed, as the dedup store does); retried later.
    #[error("dedup store: the URL-seen check of {url} failed: {detail} (is Redis reachable at redis.url?)")]
    UrlCheckFailed { url: String, detail: String },
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
            FetchError::RobotsUnavailable { .. } => "robots_unavailable",
            FetchError::CrawlDelayTooLong { .. } => "crawl_delay",
            FetchError::LimiterUnavailable { .. } => "redis_limiter",
            FetchError::Deferred { .. } => "deferred",
            FetchError::UrlSeen { .. } => "seen",
            FetchError::UrlCheckFailed { .. } => "dedup_store",
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
                | FetchError::RobotsUnavailable { .. }
                | FetchError::LimiterUnavailable { .. }
                | FetchError::UrlCheckFailed { .. }
        )
    }
}

/// A URL's validators from its last fetch, sent back as `If-None-Match` / `If-Modified-Since`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// How to fetch one URL, beyond the client's settings.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Ask for the page only if it changed since these validators (a 304 answer is then a page with
    /// status 304 and an empty body).
    pub validators: Option<Validators>,
    /// Body cap instead of `fetch.max_body_bytes` (feeds and sitemaps: `feed.max_bytes`).
    pub max_body: Option<u64>,
    /// The job's URL-seen check and validators lookup, to run in the host's acquire call (only given
    /// to a fetcher whose [`Fetcher::runs_url_check`] said yes): a URL another job took ends the
    /// fetch in [`FetchError::UrlSeen`] before any lease or slot is taken; the validators found are
    /// sent instead of [`FetchOptions::validators`].
    pub url_check: Option<UrlCheck>,
}

/// The fetch seam: the worker and `scrape` depend on this, tests may substitute a local server.
pub trait Fetcher: Send + Sync + 'static {
    fn fetch_with(
        &self,
        url: &Url,
        opts: FetchOptions,
    ) -> impl Future<Output = Result<FetchedPage, FetchError>> + Send;

    fn fetch(&self, url: &Url) -> impl Future<Output = Result<FetchedPage, FetchError>> + Send {
        self.fetch_with(url, FetchOptions::default())
    }

    /// Whether this fetcher runs `check` inside its own Redis call before the fetch (it is on the
    /// store's connection): then the caller passes it in [`FetchOptions::url_check`] instead of
    /// making a call of its own. Default: no.
    fn runs_url_check(&self, check: &UrlCheck) -> bool {
        let _ = check;
        false
    }
}
