//! Wire types: the job paperboy consumes, the article and outcome messages it publishes.
//!
//! Serde only: no broker, no network. The JSON Schemas in `deploy/schema/` describe the same shapes;
//! `tests/schema.rs` checks that the two agree.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

/// Version string carried in every published message (`schema` field). Bumped on breaking changes.
pub const SCHEMA_VERSION: &str = "paperboy.article/1";
/// Version string of outcome messages.
pub const OUTCOME_SCHEMA_VERSION: &str = "paperboy.outcome/1";
/// Longest URL accepted in a job (bytes). Longer URLs are refused as `failed.invalid_url`.
pub const MAX_URL_LEN: usize = 8192;

/// A URL job as it arrives on the jobs queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The page to fetch.
    pub url: String,
    /// Caller's id, echoed as `job_id` in every message this job produces. Generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Arbitrary caller data, passed through untouched to the article / outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
    /// Fetch even when the URL-seen filter (`dedup.url_ttl_s`) remembers the URL.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// What the URL points at: `page`, `feed` or `sitemap`. Absent: recognised from the answer
    /// (a feed or sitemap by content type and root element, anything else is a page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<JobKind>,
    /// For a job emitted by a feed or sitemap: the source's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// For a job emitted by a feed or sitemap: what the source says about the page. Fills gaps in the
    /// article; never overrides what the page states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<ItemMeta>,
    /// Sitemap-index levels above this job (0 for a job sent by a user).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub depth: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What a job's URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// An article page: fetched and extracted.
    Page,
    /// An RSS, Atom or JSON feed: fetched and expanded into one page job per item.
    Feed,
    /// A sitemap, sitemap index or news sitemap: expanded into page jobs (and child sitemap jobs).
    Sitemap,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Page => "page",
            JobKind::Feed => "feed",
            JobKind::Sitemap => "sitemap",
        }
    }
}

/// What a feed or sitemap says about one of its items.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ItemMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
}

impl ItemMeta {
    /// `None` when the source said nothing about the item.
    pub fn non_empty(self) -> Option<ItemMeta> {
        (self.title.is_some() || self.published_at.is_some() || !self.authors.is_empty())
            .then_some(self)
    }
}

impl Job {
    /// A job for `url` with nothing else set.
    pub fn for_url(url: impl Into<String>) -> Job {
        Job {
            url: url.into(),
            id: None,
            meta: None,
            force: false,
            kind: None,
            parent: None,
            item: None,
            depth: 0,
        }
    }
}

/// Why a job body could not be turned into a [`Job`]. The text goes into the dead-letter header.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JobDecodeError {
    #[error("job body is empty: send {{\"url\": \"https://...\"}} or a bare URL as text/plain")]
    Empty,
    #[error("job body is not valid UTF-8: send UTF-8 JSON or a bare URL")]
    NotUtf8,
    #[error("job body is not valid JSON ({0}): send {{\"url\": \"https://...\", \"id\": \"...\", \"meta\": {{}}}}")]
    BadJson(String),
    #[error("job body is neither JSON nor a single URL: {0:?}")]
    NotAUrl(String),
}

impl Job {
    /// Decode a job body: JSON object, or a text body holding one bare URL.
    ///
    /// A body that decodes but carries a bad URL is *not* a decode error: it becomes a `failed.invalid_url`
    /// outcome so the sender learns about it (see [`validate_url`]).
    pub fn decode(body: &[u8], content_type: Option<&str>) -> Result<Job, JobDecodeError> {
        let text = std::str::from_utf8(body).map_err(|_| JobDecodeError::NotUtf8)?;
        let trimmed = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if trimmed.is_empty() {
            return Err(JobDecodeError::Empty);
        }
        let is_json_type = content_type.is_some_and(|c| c.contains("json"));
        if trimmed.starts_with('{') || is_json_type {
            let mut job: Job = serde_json::from_str(trimmed)
                .map_err(|e| JobDecodeError::BadJson(e.to_string()))?;
            if job.id.as_deref().is_some_and(|s| s.trim().is_empty()) {
                job.id = None;
            }
            return Ok(job);
        }
        // text/plain: exactly one token, the URL.
        if trimmed.split_whitespace().count() == 1 {
            return Ok(Job::for_url(trimmed));
        }
        let mut shown: String = trimmed.chars().take(80).collect();
        if shown.len() < trimmed.len() {
            shown.push('…');
        }
        Err(JobDecodeError::NotAUrl(shown))
    }
}

/// Why a job's URL is refused before any network access.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum UrlError {
    #[error("url is empty: a job needs an absolute http(s) URL")]
    Empty,
    #[error("url is {len} bytes long, over the {max}-byte limit")]
    TooLong { len: usize, max: usize },
    #[error("url {url:?} does not parse ({reason}): send an absolute http(s) URL")]
    Unparsable { url: String, reason: String },
    #[error("url scheme {scheme:?} is not fetched: only http and https are")]
    Scheme { scheme: String },
    #[error("url carries credentials (user:password@): remove them, paperboy does not send them")]
    Credentials,
    #[error("url has no host")]
    NoHost,
}

/// Parse and check a job URL: absolute http(s), no credentials, bounded length. IDN hosts are
/// converted to punycode by the parser.
pub fn validate_url(raw: &str) -> Result<Url, UrlError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(UrlError::Empty);
    }
    if raw.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong {
            len: raw.len(),
            max: MAX_URL_LEN,
        });
    }
    let url = Url::parse(raw).map_err(|e| UrlError::Unparsable {
        url: raw.chars().take(200).collect(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme {
            scheme: url.scheme().to_string(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::NoHost);
    }
    Ok(url)
}

/// Kind of page, as the extractor judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    /// A single news/blog article.
    #[default]
    Article,
    /// A page listing many items (home page, section front, search results).
    Listing,
    /// Anything else with main content (product, forum thread, documentation, service page).
    Other,
}

/// The article message published to the output exchange (routing key `article.<language>.<site>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Article {
    /// Always [`SCHEMA_VERSION`].
    pub schema: String,
    /// The job's id (caller-provided or generated).
    pub job_id: String,
    /// The URL as submitted.
    pub url: String,
    /// The URL after redirects.
    pub final_url: String,
    /// `<link rel=canonical>` / og:url when present, else `final_url`.
    pub canonical_url: String,
    /// When the page was fetched (RFC 3339, UTC).
    pub fetched_at: String,
    /// HTTP status of the final response.
    pub http_status: u16,
    pub title: Option<String>,
    pub authors: Vec<String>,
    /// RFC 3339 with the page's own offset kept.
    pub published_at: Option<String>,
    pub modified_at: Option<String>,
    /// BCP 47 tag (`en`, `ar`, `pt-BR`, `zh-Hans` …), or `und` when unknown.
    pub language: String,
    pub site_name: Option<String>,
    pub description: Option<String>,
    pub image: Option<String>,
    /// Body text: paragraphs separated by one blank line.
    pub text: String,
    pub word_count: usize,
    /// `blake3:<hex>` of the normalised text (see `dedup::content_hash`).
    pub content_hash: String,
    /// Whether this looks like a news article, a listing or something else.
    pub page_kind: PageKind,
    /// How far to trust `text` (0–1): under 0.5 often wrong, over 0.8 almost always right
    /// (calibrated out of fold on the dev pages; see docs/extraction.md).
    pub extraction_confidence: f32,
    /// Set when the article is a near-duplicate of an earlier one (content hash of that one; with the
    /// Redis dedup store its first 12 hex digits, see `dedup::redis_store`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub near_duplicate_of: Option<String>,
    /// From the job, untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// What became of a job that did not produce an article.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    Duplicate,
    Skipped,
    Failed,
    /// A feed or sitemap was turned into child jobs (see [`Outcome::expansion`]).
    Expanded,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Duplicate => "duplicate",
            OutcomeKind::Skipped => "skipped",
            OutcomeKind::Failed => "failed",
            OutcomeKind::Expanded => "expanded",
        }
    }
}

/// An outcome message (routing key `outcome.duplicate`, `outcome.skipped.<reason>`, `outcome.failed.<reason>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Always [`OUTCOME_SCHEMA_VERSION`].
    pub schema: String,
    pub job_id: String,
    pub url: String,
    pub outcome: OutcomeKind,
    /// Short machine-readable reason (`duplicate`, `not_html`, `http_404`, `robots`, `invalid_url` …).
    pub reason: String,
    /// Human-readable explanation.
    pub detail: String,
    /// When the outcome was decided (RFC 3339, UTC).
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// For duplicates: the content hash that was seen before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// Delivery attempts this job took (1 = first try).
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
    /// For `expanded` (and a source that hit a limit): what the feed or sitemap listed and what
    /// became of each entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expansion: Option<ExpansionCounts>,
}

/// What a feed or sitemap listed, and what became of each entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExpansionCounts {
    /// `feed` or `sitemap`.
    pub source: String,
    /// Entries the source lists (pages and child sitemaps).
    pub items: usize,
    /// Child jobs published: pages not seen within `dedup.url_ttl_s`, and child sitemaps.
    pub new: usize,
    /// Pages left out because another job took their URL within `dedup.url_ttl_s`.
    pub seen: usize,
    /// Child sitemap jobs among `new`.
    pub sitemaps: usize,
    /// Left out: older than `feed.max_item_age_s`.
    pub too_old: usize,
    /// Left out: on another host while `feed.allow_other_hosts` / `feed.sitemap_other_hosts` is false.
    pub other_host: usize,
    /// Left out: beyond `feed.max_items` (the oldest), or child sitemaps below `feed.max_sitemap_depth`.
    pub over_limit: usize,
    /// Left out: no usable http(s) URL.
    pub invalid: usize,
}

impl Outcome {
    /// The routing key: `outcome.duplicate`, `outcome.expanded` or `outcome.<kind>.<reason>`.
    pub fn routing_key(&self) -> String {
        match self.outcome {
            OutcomeKind::Duplicate => "outcome.duplicate".to_string(),
            OutcomeKind::Expanded => "outcome.expanded".to_string(),
            k => format!("outcome.{}.{}", k.as_str(), routing_word(&self.reason)),
        }
    }

    /// Stable message id: the same job and the same outcome always give the same id.
    pub fn message_id(&self) -> String {
        stable_id(&["outcome", &self.job_id, self.outcome.as_str(), &self.reason])
    }
}

impl Article {
    /// The routing key `article.<language>.<site>`.
    ///
    /// `<language>` is the primary BCP 47 subtag, lowercase (`und` when unknown). `<site>` is the host of
    /// `final_url`, lowercased, without a leading `www.`, with every `.` replaced by `_` (routing-key words
    /// are dot-separated), e.g. `article.en.example_co_uk`.
    pub fn routing_key(&self) -> String {
        let lang = self
            .language
            .split(['-', '_'])
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("und")
            .to_ascii_lowercase();
        format!(
            "article.{}.{}",
            routing_word(&lang),
            site_word(&self.final_url)
        )
    }

    /// Stable message id: derived from the job id and the content hash, so a redelivered job that
    /// publishes the same article again carries the same id, and consumers can drop the repeat.
    pub fn message_id(&self) -> String {
        stable_id(&["article", &self.job_id, &self.content_hash])
    }
}

/// The `<site>` word of a routing key for a URL (see [`Article::routing_key`]).
pub fn site_word(url: &str) -> String {
    let host = Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let word = routing_word(&host.replace('.', "_"));
    if word.is_empty() {
        "unknown".into()
    } else {
        word
    }
}

/// Keep routing-key words to `[a-z0-9_-]` so `*`/`#` bindings behave.
fn routing_word(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// UUID v5 over the parts, as a string: deterministic, collision-resistant, and a valid AMQP message id.
fn stable_id(parts: &[&str]) -> String {
    let joined = parts.join("\u{1f}");
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, joined.as_bytes()).to_string()
}

/// A fresh job id for jobs that arrive without one.
pub fn new_job_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Current time as RFC 3339 UTC with millisecond precision.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_json_and_bare_url() {
        let j = Job::decode(
            br#"{"url":"https://a.example/x","id":"42","meta":{"k":1}}"#,
            None,
        )
        .unwrap();
        assert_eq!(j.url, "https://a.example/x");
        assert_eq!(j.id.as_deref(), Some("42"));
        assert_eq!(j.meta.unwrap()["k"], 1);
        let j = Job::decode(b"  https://a.example/y\n", Some("text/plain")).unwrap();
        assert_eq!(j.url, "https://a.example/y");
        assert!(j.id.is_none());
    }

    #[test]
    fn rejects_garbage_bodies() {
        assert_eq!(Job::decode(b"", None), Err(JobDecodeError::Empty));
        assert_eq!(
            Job::decode(&[0xff, 0xfe, 0x00], None),
            Err(JobDecodeError::NotUtf8)
        );
        assert!(matches!(
            Job::decode(b"{not json", None),
            Err(JobDecodeError::BadJson(_))
        ));
        assert!(matches!(
            Job::decode(b"two words", None),
            Err(JobDecodeError::NotAUrl(_))
        ));
        assert!(matches!(
            Job::decode(br#"{"id":"x"}"#, None),
            Err(JobDecodeError::BadJson(_))
        ));
    }

    #[test]
    fn validates_urls() {
        assert!(validate_url("https://example.com/a").is_ok());
        assert_eq!(validate_url(" "), Err(UrlError::Empty));
        assert!(matches!(
            validate_url("ftp://x/y"),
            Err(UrlError::Scheme { .. })
        ));
        assert!(matches!(
            validate_url("javascript:alert(1)"),
            Err(UrlError::Scheme { .. })
        ));
        assert!(matches!(
            validate_url("file:///etc/passwd"),
            Err(UrlError::Scheme { .. })
        ));
        assert_eq!(
            validate_url("http://u:p@example.com/"),
            Err(UrlError::Credentials)
        );
        assert!(matches!(
            validate_url("not a url"),
            Err(UrlError::Unparsable { .. })
        ));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(matches!(validate_url(&long), Err(UrlError::TooLong { .. })));
        let idn = validate_url("https://bücher.example/").unwrap();
        assert_eq!(idn.host_str(), Some("xn--bcher-kva.example"));
    }

    #[test]
    fn routing_keys_and_ids_are_stable() {
        let a = Article {
            schema: SCHEMA_VERSION.into(),
            job_id: "j1".into(),
            url: "https://www.Example.co.uk/a".into(),
            final_url: "https://www.Example.co.uk/a".into(),
            canonical_url: "https://www.example.co.uk/a".into(),
            fetched_at: now_rfc3339(),
            http_status: 200,
            title: None,
            authors: vec![],
            published_at: None,
            modified_at: None,
            language: "pt-BR".into(),
            site_name: None,
            description: None,
            image: None,
            text: "x".into(),
            word_count: 1,
            content_hash: "blake3:00".into(),
            page_kind: PageKind::Article,
            extraction_confidence: 0.97,
            near_duplicate_of: None,
            meta: None,
        };
        assert_eq!(a.routing_key(), "article.pt.example_co_uk");
        assert_eq!(a.message_id(), a.clone().message_id());
        let mut b = a.clone();
        b.fetched_at = "2020-01-01T00:00:00Z".into();
        assert_eq!(
            a.message_id(),
            b.message_id(),
            "fetch time must not change the id"
        );
        b.content_hash = "blake3:01".into();
        assert_ne!(a.message_id(), b.message_id());
    }
}
