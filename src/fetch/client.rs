//! The hardened HTTP client: timeouts (connect and total, body included), manual redirects with a check
//! of every hop, a streaming body cap on decoded bytes, and the SSRF guard on resolved addresses with
//! the connection pinned to the checked addresses (no DNS rebinding between check and connect).

use std::collections::{BTreeMap, HashSet};
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use tokio::time::Instant;
use url::{Host, Url};

use super::dns::Dns;
use super::guard::forbidden_reason;
use super::{FetchError, FetchedPage, Fetcher};
use crate::config::FetchSettings;

/// Sent as `Accept`.
pub const ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
/// Sent as `Accept-Language` (no config key; any language, English preferred).
pub const ACCEPT_LANGUAGE: &str = "en;q=0.9,*;q=0.8";

/// What to do when a body is over the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverCap {
    /// Fail with [`FetchError::TooLarge`] (pages).
    Fail,
    /// Keep the first `max` bytes (robots.txt: RFC 9309 parses at least 500 KiB).
    Truncate,
}

/// A resolver error carrying the reason, recovered from reqwest's error chain to classify errors.
#[derive(Debug)]
struct BlockedAddr {
    host: String,
    addr: IpAddr,
    why: &'static str,
}

impl std::fmt::Display for BlockedAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves to {} ({}), refused by the SSRF guard",
            self.host, self.addr, self.why
        )
    }
}
impl StdError for BlockedAddr {}

#[derive(Debug)]
struct DnsFailure {
    host: String,
    detail: String,
}

impl std::fmt::Display for DnsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DNS lookup of {} failed: {}", self.host, self.detail)
    }
}
impl StdError for DnsFailure {}

/// DNS with `fetch.resolve` overrides and the SSRF guard. reqwest connects only to the addresses this
/// returns, so the checked address is the one connected to.
struct GuardedResolver {
    overrides: BTreeMap<String, IpAddr>,
    policy: Option<AddressPolicy>,
    dns: Arc<Dns>,
}

/// Decides which addresses are refused: `Some(reason)` refuses. The default is
/// [`guard::forbidden_reason`](super::guard::forbidden_reason) (none when `fetch.allow_private_networks`).
pub type AddressPolicy = Arc<dyn Fn(IpAddr) -> Option<&'static str> + Send + Sync>;

impl GuardedResolver {
    /// Keep the allowed addresses; fail with [`BlockedAddr`] when none is left.
    fn filter(
        host: &str,
        addrs: Vec<SocketAddr>,
        policy: Option<&AddressPolicy>,
    ) -> Result<Vec<SocketAddr>, Box<dyn StdError + Send + Sync>> {
        let Some(policy) = policy else {
            return Ok(addrs);
        };
        let mut first_refused = None;
        let ok: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match policy(a.ip()) {
                Some(why) => {
                    first_refused.get_or_insert((a.ip(), why));
                    false
                }
                None => true,
            })
            .collect();
        match (ok.is_empty(), first_refused) {
            (true, Some((addr, why))) => Err(Box::new(BlockedAddr {
                host: host.to_string(),
                addr,
                why,
            })),
            (true, None) => Err(Box::new(DnsFailure {
                host: host.to_string(),
                detail: "no address".into(),
            })),
            (false, refused) => {
                if let Some((addr, why)) = refused {
                    tracing::debug!(host, %addr, why, "dropped a refused address of a host");
                }
                Ok(ok)
            }
        }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let fixed = self.overrides.get(&host).copied();
        let policy = self.policy.clone();
        let dns = self.dns.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = match fixed {
                Some(ip) => vec![SocketAddr::new(ip, 0)],
                None => dns.lookup(&host).await.map_err(
                    |detail| -> Box<dyn StdError + Send + Sync> {
                        Box::new(DnsFailure {
                            host: host.clone(),
                            detail,
                        })
                    },
                )?,
            };
            let ok = Self::filter(&host, addrs, policy.as_ref())?;
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A check of a redirect target before it is requested (an error stops the fetch with that error).
pub(crate) type HopCheck = dyn Fn(Url) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), FetchError>> + Send>>
    + Send
    + Sync;

/// The hardened client, without politeness. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    settings: Arc<FetchSettings>,
    policy: Option<AddressPolicy>,
    /// Shared by every clone: bounds the bodies held in memory (`fetch.max_buffered_bytes`).
    budget: BodyBudget,
}

/// A byte budget for response bodies held in memory, shared by the clones of one [`HttpClient`].
///
/// A fetch takes its share before reading a body (the announced length, or a first guess it doubles
/// as the body grows) and gives it back when the last clone of the [`FetchedPage`] is dropped, i.e.
/// after extraction. Fetches never wait while holding a share (a growing body gives its share back,
/// then waits for the bigger one), so the budget cannot deadlock; a body bigger than the whole budget
/// takes all of it.
#[derive(Clone, Debug)]
struct BodyBudget {
    permits: Arc<tokio::sync::Semaphore>,
    /// The whole budget, KiB.
    total_kib: u32,
}

/// First share of a body whose decoded length is not announced (chunked or compressed).
const UNANNOUNCED_GUESS: u64 = 256 * 1024;

fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

impl BodyBudget {
    fn new(bytes: u64) -> Self {
        let total_kib = kib(bytes).max(1);
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// Wait for a share of `bytes` (at most the whole budget).
    async fn take(&self, bytes: u64) -> tokio::sync::OwnedSemaphorePermit {
        let n = kib(bytes).clamp(1, self.total_kib);
        self.permits
            .clone()
            .acquire_many_owned(n)
            .await
            .expect("the body budget's semaphore is never closed")
    }
}

/// The share of the body budget a [`FetchedPage`]'s body holds; released when the last clone of the
/// page is dropped. Pages built elsewhere (tests, saved pages) hold none: `BodyHold::default()`.
#[derive(Clone, Debug, Default)]
pub struct BodyHold(Option<Arc<tokio::sync::OwnedSemaphorePermit>>);

impl BodyHold {
    /// KiB of the budget held.
    pub fn kib(&self) -> usize {
        self.0.as_ref().map_or(0, |p| p.num_permits())
    }
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("user_agent", &self.settings.user_agent)
            .finish_non_exhaustive()
    }
}

/// Trust the CA certificates of `fetch.ca_file` beside the built-in web roots.
fn extra_roots(
    builder: reqwest::ClientBuilder,
    path: &str,
) -> Result<reqwest::ClientBuilder, FetchError> {
    let bad = |detail: String| FetchError::Connect {
        url: String::new(),
        detail,
    };
    let pem = crate::tls::read_ca_file("fetch.ca_file", path).map_err(|e| bad(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| bad(format!("fetch.ca_file = {path:?}: {e}")))?;
    Ok(certs
        .into_iter()
        .fold(builder, |b, c| b.add_root_certificate(c)))
}

impl HttpClient {
    /// Build the client from `fetch.*` settings.
    pub fn new(settings: &FetchSettings) -> Result<Self, FetchError> {
        let policy: Option<AddressPolicy> = if settings.allow_private_networks {
            None
        } else {
            Some(Arc::new(forbidden_reason))
        };
        Self::with_address_policy(settings, policy)
    }

    /// As [`HttpClient::new`] with an explicit address policy (`None` = allow every address). For tests
    /// that need a "public" address on loopback; `fetch.allow_private_networks` is ignored.
    #[doc(hidden)]
    pub fn with_address_policy(
        settings: &FetchSettings,
        policy: Option<AddressPolicy>,
    ) -> Result<Self, FetchError> {
        let mut overrides = BTreeMap::new();
        for (host, ip) in &settings.resolve {
            let ip: IpAddr = ip.parse().map_err(|_| FetchError::Dns {
                host: host.clone(),
                detail: format!("fetch.resolve: {ip:?} is not an IP address"),
            })?;
            overrides.insert(host.trim_end_matches('.').to_ascii_lowercase(), ip);
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT));
        headers.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static(ACCEPT_LANGUAGE),
        );
        let mut builder = reqwest::Client::builder();
        if !settings.ca_file.is_empty() {
            builder = extra_roots(builder, &settings.ca_file)?;
        }
        let client = builder
            .user_agent(settings.user_agent.clone())
            .default_headers(headers)
            .connect_timeout(settings.connect_timeout())
            .timeout(settings.timeout())
            .redirect(reqwest::redirect::Policy::none())
            // An idle connection keeps hyper's read buffer (it grows to ~400 KiB on large pages): reqwest's
            // default keeps every idle connection of every host for 90 s. Few and short-lived instead.
            .pool_max_idle_per_host(settings.max_idle_connections_per_host)
            .pool_idle_timeout(Duration::from_millis(settings.idle_timeout_ms))
            // A proxy would resolve the target itself and bypass the guard.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                overrides,
                policy: policy.clone(),
                dns: Arc::new(Dns::new(settings)?),
            }))
            .build()
            .map_err(|e| FetchError::Connect {
                url: String::new(),
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            client,
            settings: Arc::new(settings.clone()),
            policy,
            budget: BodyBudget::new(settings.max_buffered_bytes),
        })
    }

    /// The settings the client was built with.
    pub fn settings(&self) -> &FetchSettings {
        &self.settings
    }

    /// GET `url` following redirects, with the body capped at `max_body` bytes (decoded).
    pub async fn get(
        &self,
        url: &Url,
        max_body: u64,
        over_cap: OverCap,
    ) -> Result<FetchedPage, FetchError> {
        self.get_with_retry_after(url, max_body, over_cap)
            .await
            .map(|(page, _)| page)
    }

    /// As [`HttpClient::get`], also returning the final answer's `Retry-After` header.
    pub async fn get_with_retry_after(
        &self,
        url: &Url,
        max_body: u64,
        over_cap: OverCap,
    ) -> Result<(FetchedPage, Option<String>), FetchError> {
        self.get_checked(url, max_body, over_cap, None, None).await
    }

    /// As [`HttpClient::get_with_retry_after`]; `hop_check` is asked about every redirect target
    /// before it is requested (the polite layer checks robots.txt there); `validators` make the
    /// request conditional (a 304 comes back as a page with that status).
    pub(crate) async fn get_checked(
        &self,
        url: &Url,
        max_body: u64,
        over_cap: OverCap,
        hop_check: Option<&HopCheck>,
        validators: Option<&super::Validators>,
    ) -> Result<(FetchedPage, Option<String>), FetchError> {
        let total = self.settings.timeout();
        let deadline = Instant::now() + total;
        let fut = self.get_inner(url, max_body, over_cap, hop_check, validators);
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout {
                url: url.to_string(),
                timeout: total,
            }),
        }
    }

    async fn get_inner(
        &self,
        url: &Url,
        max_body: u64,
        over_cap: OverCap,
        hop_check: Option<&HopCheck>,
        validators: Option<&super::Validators>,
    ) -> Result<(FetchedPage, Option<String>), FetchError> {
        let max_redirects = self.settings.max_redirects;
        let mut current = url.clone();
        let mut seen: HashSet<String> = HashSet::new();
        seen.insert(without_fragment(&current));
        let mut hops = 0u32;
        loop {
            self.check_hop(&current)?;
            let mut req = self.client.get(current.clone());
            if let Some(v) = validators {
                if let Some(etag) = &v.etag {
                    req = req.header(header::IF_NONE_MATCH, etag.as_str());
                }
                if let Some(lm) = &v.last_modified {
                    req = req.header(header::IF_MODIFIED_SINCE, lm.as_str());
                }
            }
            let resp = req.send().await.map_err(|e| self.classify(&current, &e))?;
            let fetched_at = crate::message::now_rfc3339();
            let status = resp.status();
            if status.is_redirection() {
                if let Some(loc) = resp.headers().get(header::LOCATION) {
                    let next = redirect_target(&current, loc)?;
                    if !seen.insert(without_fragment(&next)) {
                        return Err(FetchError::RedirectLoop {
                            url: url.to_string(),
                        });
                    }
                    if hops >= max_redirects {
                        return Err(FetchError::TooManyRedirects {
                            url: url.to_string(),
                            max: max_redirects,
                        });
                    }
                    if let Some(check) = hop_check {
                        check(next.clone()).await?;
                    }
                    hops += 1;
                    tracing::debug!(from = %current, to = %next, hop = hops, "following redirect");
                    current = next;
                    continue;
                }
            }
            return self
                .read_page(current, resp, fetched_at, max_body, over_cap)
                .await;
        }
    }

    /// Per hop: only http(s); IP-literal hosts are checked here (reqwest does not resolve them).
    fn check_hop(&self, url: &Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::BadRedirect {
                url: url.to_string(),
                detail: format!("scheme {:?} is not http or https", url.scheme()),
            });
        }
        let Some(policy) = &self.policy else {
            return Ok(());
        };
        let ip = match url.host() {
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(Host::Domain(_)) => return Ok(()),
            None => {
                return Err(FetchError::BadRedirect {
                    url: url.to_string(),
                    detail: "no host".into(),
                })
            }
        };
        match policy(ip) {
            Some(why) => {
                tracing::warn!(url = %url, addr = %ip, why, "refused by the SSRF guard");
                Err(FetchError::Blocked {
                    url: url.to_string(),
                    addr: ip.to_string(),
                })
            }
            None => Ok(()),
        }
    }

    async fn read_page(
        &self,
        final_url: Url,
        mut resp: reqwest::Response,
        fetched_at: String,
        max_body: u64,
        over_cap: OverCap,
    ) -> Result<(FetchedPage, Option<String>), FetchError> {
        let header = |n: header::HeaderName| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let content_type = header(header::CONTENT_TYPE);
        let content_language = header(header::CONTENT_LANGUAGE);
        let validators = super::Validators {
            etag: header(header::ETAG),
            last_modified: header(header::LAST_MODIFIED),
        };
        let retry_after = header(header::RETRY_AFTER);
        let status = resp.status().as_u16();
        let too_large = || FetchError::TooLarge {
            url: final_url.to_string(),
            max: max_body,
        };
        // Without a content coding the announced length is the decoded length: fail early.
        if over_cap == OverCap::Fail
            && !resp.headers().contains_key(header::CONTENT_ENCODING)
            && resp.content_length().is_some_and(|n| n > max_body)
        {
            return Err(too_large());
        }
        // The share of the body budget is taken before the body is read, and the buffer is sized to
        // it: with the length announced, one allocation of the exact size.
        let announced = if resp.headers().contains_key(header::CONTENT_ENCODING) {
            None
        } else {
            resp.content_length()
        };
        let mut expected = announced.unwrap_or(UNANNOUNCED_GUESS).min(max_body);
        let mut share = self.budget.take(expected).await;
        let mut body: Vec<u8> = Vec::with_capacity(expected as usize);
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return Err(self.classify_body(&final_url, &e)),
            };
            let room = max_body.saturating_sub(body.len() as u64) as usize;
            let take = if chunk.len() > room {
                match over_cap {
                    OverCap::Fail => {
                        tracing::info!(url = %final_url, max = max_body, "body over the cap");
                        return Err(too_large());
                    }
                    OverCap::Truncate => room,
                }
            } else {
                chunk.len()
            };
            let needed = (body.len() + take) as u64;
            if needed > expected {
                // Longer than announced or guessed: give the share back, wait for twice as much.
                expected = needed.max(expected.saturating_mul(2)).min(max_body);
                drop(share);
                share = self.budget.take(expected).await;
                body.reserve_exact(expected as usize - body.len());
            }
            body.extend_from_slice(&chunk[..take]);
            if take < chunk.len() {
                break;
            }
        }
        // Keep only what the body uses: of the buffer (a guess or a doubling may have overshot) and of
        // the budget.
        body.shrink_to_fit();
        let used = kib(body.len() as u64).max(1) as usize;
        if share.num_permits() > used {
            drop(share.split(share.num_permits() - used));
        }
        let page = FetchedPage {
            final_url,
            status,
            content_type,
            content_language,
            body: Bytes::from(body),
            hold: BodyHold(Some(Arc::new(share))),
            fetched_at,
            politeness_wait: std::time::Duration::ZERO,
            validators,
        };
        Ok((page, retry_after))
    }

    fn classify(&self, url: &Url, e: &reqwest::Error) -> FetchError {
        let url_s = url.to_string();
        if let Some(b) = find_in_chain::<BlockedAddr>(e) {
            tracing::warn!(url = %url, addr = %b.addr, why = b.why, "refused by the SSRF guard");
            return FetchError::Blocked {
                url: url_s,
                addr: b.addr.to_string(),
            };
        }
        if let Some(d) = find_in_chain::<DnsFailure>(e) {
            return FetchError::Dns {
                host: d.host.clone(),
                detail: d.detail.clone(),
            };
        }
        if e.is_timeout() {
            let timeout = if e.is_connect() {
                self.settings.connect_timeout()
            } else {
                self.settings.timeout()
            };
            return FetchError::Timeout {
                url: url_s,
                timeout,
            };
        }
        if let Some(t) = find_in_chain::<rustls::Error>(e) {
            return FetchError::Tls {
                url: url_s,
                detail: t.to_string(),
            };
        }
        let detail = chain_text(e);
        if url.scheme() == "https" && looks_like_tls(&detail) {
            return FetchError::Tls { url: url_s, detail };
        }
        if e.is_connect() {
            FetchError::Connect { url: url_s, detail }
        } else if e.is_body() || e.is_decode() {
            FetchError::Body { url: url_s, detail }
        } else {
            // Protocol errors before a response (garbage instead of HTTP, reset): not reachable as HTTP.
            FetchError::Connect { url: url_s, detail }
        }
    }

    fn classify_body(&self, url: &Url, e: &reqwest::Error) -> FetchError {
        if e.is_timeout() {
            return FetchError::Timeout {
                url: url.to_string(),
                timeout: self.settings.timeout(),
            };
        }
        FetchError::Body {
            url: url.to_string(),
            detail: chain_text(e),
        }
    }
}

impl Fetcher for HttpClient {
    async fn fetch_with(
        &self,
        url: &Url,
        opts: super::FetchOptions,
    ) -> Result<FetchedPage, FetchError> {
        let max = opts.max_body.unwrap_or(self.settings.max_body_bytes);
        self.get_checked(url, max, OverCap::Fail, None, opts.validators.as_ref())
            .await
            .map(|(page, _)| page)
    }
}

/// The `Location` of a redirect resolved against the current URL; only http(s) targets.
fn redirect_target(current: &Url, loc: &HeaderValue) -> Result<Url, FetchError> {
    let bad = |detail: String| FetchError::BadRedirect {
        url: current.to_string(),
        detail,
    };
    let loc = loc
        .to_str()
        .map_err(|_| bad("Location is not ASCII".into()))?;
    let next = current
        .join(loc.trim())
        .map_err(|e| bad(format!("Location {loc:?}: {e}")))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(bad(format!(
            "Location {loc:?} has scheme {:?}, not http or https",
            next.scheme()
        )));
    }
    if next.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!("Location {loc:?} has no host")));
    }
    Ok(next)
}

fn without_fragment(u: &Url) -> String {
    let mut u = u.clone();
    u.set_fragment(None);
    u.to_string()
}

/// Walk the source chain, looking inside `io::Error`s too (their `source()` skips the inner error).
fn find_in_chain<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(t) = find_in_chain::<T>(inner) {
                    return Some(t);
                }
            }
        }
        cur = err.source();
    }
    None
}

fn chain_text(e: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

fn looks_like_tls(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    [
        "tls",
        "certificate",
        "handshake",
        "invalidcontenttype",
        "corrupt message",
    ]
    .iter()
    .any(|k| d.contains(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 0)
    }

    fn guard() -> AddressPolicy {
        Arc::new(forbidden_reason)
    }

    #[test]
    fn resolver_keeps_only_allowed_addresses() {
        let p = guard();
        let ok = GuardedResolver::filter("x", vec![sa("10.0.0.1"), sa("93.184.215.14")], Some(&p))
            .unwrap();
        assert_eq!(ok, vec![sa("93.184.215.14")]);
        let err =
            GuardedResolver::filter("x", vec![sa("127.0.0.1"), sa("::1")], Some(&p)).unwrap_err();
        let b = err.downcast_ref::<BlockedAddr>().expect("BlockedAddr");
        assert_eq!(b.addr, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(b.why, "loopback");
        assert!(GuardedResolver::filter("x", vec![], Some(&p))
            .unwrap_err()
            .downcast_ref::<DnsFailure>()
            .is_some());
        // Guard off: everything passes.
        assert_eq!(
            GuardedResolver::filter("x", vec![sa("127.0.0.1")], None).unwrap(),
            vec![sa("127.0.0.1")]
        );
    }

    #[test]
    fn redirect_targets() {
        let cur = Url::parse("https://a.example/x/y?q").unwrap();
        let t = |l: &str| redirect_target(&cur, &HeaderValue::from_str(l).unwrap());
        assert_eq!(t("/z").unwrap().as_str(), "https://a.example/z");
        assert_eq!(t("z").unwrap().as_str(), "https://a.example/x/z");
        assert_eq!(t("//b.example/").unwrap().as_str(), "https://b.example/");
        assert_eq!(
            t(" http://c.example/p ").unwrap().as_str(),
            "http://c.example/p"
        );
        for bad in [
            "ftp://x/",
            "javascript:alert(1)",
            "data:text/html,hi",
            "mailto:a@b",
            "http://",
        ] {
            assert!(
                matches!(t(bad), Err(FetchError::BadRedirect { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn fragments_do_not_distinguish_urls() {
        let a = Url::parse("http://h/p#1").unwrap();
        let b = Url::parse("http://h/p#2").unwrap();
        assert_eq!(without_fragment(&a), without_fragment(&b));
    }
}
