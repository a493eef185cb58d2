//! One job through the stages, without a broker: validate -> fetch -> check response -> extract -> dedup.
//!
//! Shared by `paperboy work` (which then publishes and acks) and `paperboy scrape` (which prints).
//! The decision is a value ([`Decision`]); nothing here publishes or acks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use url::Url;

use crate::config::{NearAction, Settings};
use crate::dedup::{canonical_url, fingerprint, url_key, Seen, UrlVerdict, Verdict};
use crate::extract::{self, ExtractError, Extracted, Page};
use crate::fetch::{FetchError, FetchedPage, Fetcher};
use crate::message::{
    now_rfc3339, validate_url, Article, Outcome, OutcomeKind, OUTCOME_SCHEMA_VERSION,
    SCHEMA_VERSION,
};

/// A decoded job with its id settled and its attempt count known.
#[derive(Debug, Clone)]
pub struct JobInput {
    pub job_id: String,
    pub url: String,
    pub meta: Option<Map<String, Value>>,
    /// 1 for the first delivery; raised by each retry.
    pub attempts: u32,
    /// Times the job was deferred so far (a deferral is not an attempt).
    pub deferrals: u32,
    /// Fetch even when the URL-seen filter remembers the URL.
    pub force: bool,
}

/// Deferrals a job gets while its host's robots.txt is unavailable (each `politeness.robots_error_ttl_s`
/// long) before it goes the way of other transient failures (retry tiers, then a failure outcome).
pub const MAX_ROBOTS_DEFERRALS: u32 = 6;

/// What became of a job. Exactly one per processing.
#[derive(Debug)]
pub enum Decision {
    /// Publish this article.
    Article(Box<Article>),
    /// Publish this outcome (duplicate, skipped, or permanent failure).
    Final(Outcome),
    /// A failure that may go away: retry later if attempts remain, else it becomes final.
    /// The outcome is what to publish when no attempt remains.
    Transient(Outcome),
    /// The host is not free for `wait`: park the job and try again later (not a failure, not a retry).
    Defer { wait: Duration, host: String },
}

impl Decision {
    /// Short label for logs and metrics.
    pub fn label(&self) -> String {
        match self {
            Decision::Article(_) => "article".into(),
            Decision::Final(o) | Decision::Transient(o) => o.routing_key(),
            Decision::Defer { .. } => "deferred".into(),
        }
    }
}

/// Time spent in each stage of one job (for metrics).
#[derive(Debug, Default, Clone)]
pub struct Timings {
    pub fetch: Option<Duration>,
    pub extract: Option<Duration>,
    pub bytes: usize,
    /// Host and time waited for its politeness slot, when the fetch waited at all.
    pub host_wait: Option<(String, Duration)>,
    /// The dedup store's verdict, when the job got that far.
    pub verdict: Option<Verdict>,
    /// The dedup store's running eviction total after this job.
    pub evictions: u64,
}

/// Runs jobs through fetch, extract and dedup.
pub struct Processor<F, S> {
    pub fetcher: Arc<F>,
    pub seen: Arc<S>,
    pub settings: Arc<Settings>,
    /// Extractions running at once: one per core. Extraction is CPU-bound, so more would only add
    /// contention, and the cap bounds the memory of parsed documents whatever `worker.concurrency` is.
    extract_permits: Arc<tokio::sync::Semaphore>,
}

impl<F, S> Clone for Processor<F, S> {
    fn clone(&self) -> Self {
        Self {
            fetcher: self.fetcher.clone(),
            seen: self.seen.clone(),
            settings: self.settings.clone(),
            extract_permits: self.extract_permits.clone(),
        }
    }
}

impl<F: Fetcher, S: Seen> Processor<F, S> {
    pub fn new(fetcher: Arc<F>, seen: Arc<S>, settings: Arc<Settings>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            fetcher,
            seen,
            settings,
            extract_permits: Arc::new(tokio::sync::Semaphore::new(cores)),
        }
    }

    /// Run the (CPU-bound) extractor on the blocking pool, at most one per core at a time.
    /// `Err` carries the text of a panic in the extractor.
    async fn extract(&self, page: FetchedPage) -> Result<Result<Extracted, ExtractError>, String> {
        let _permit = self
            .extract_permits
            .acquire()
            .await
            .map_err(|e| e.to_string())?;
        let max = self.settings.extract.max_html_bytes;
        tokio::task::spawn_blocking(move || extract_page(&page, max))
            .await
            .map_err(|e| format!("the extractor crashed on this page: {e}"))
    }

    /// Take one job to its decision.
    pub async fn process(&self, job: &JobInput) -> (Decision, Timings) {
        let outcome = |kind, reason: &str, detail: String| make_outcome(job, kind, reason, detail);
        let url = match validate_url(&job.url) {
            Ok(u) => u,
            Err(e) => {
                return (
                    Decision::Final(outcome(OutcomeKind::Failed, "invalid_url", e.to_string())),
                    Timings::default(),
                )
            }
        };
        let ttl = Duration::from_secs(self.settings.dedup.url_ttl_s);
        if ttl.is_zero() || job.force {
            return self.fetch_and_extract(job, &url).await;
        }
        // URL-seen filter: a URL another job fetched within dedup.url_ttl_s is not fetched again.
        let key = url_key(&canonical_url(&url));
        match self.seen.check_url(&key, &job.job_id, ttl).await {
            Ok(UrlVerdict::New) => {}
            Ok(UrlVerdict::Seen { first_job }) => {
                let detail = format!(
                    "{url} was taken by job {first_job} within dedup.url_ttl_s ({}s); send \"force\": true to fetch it again",
                    ttl.as_secs()
                );
                let d = Decision::Final(outcome(OutcomeKind::Skipped, "seen", detail));
                return (d, Timings::default());
            }
            Err(e) => {
                let d =
                    Decision::Transient(outcome(OutcomeKind::Failed, "dedup_store", e.to_string()));
                return (d, Timings::default());
            }
        }
        let (decision, timings) = self.fetch_and_extract(job, &url).await;
        // A job that ends in failure lets its URL be tried again by the next job that names it.
        let failed_for_good = match &decision {
            Decision::Final(o) => o.outcome == OutcomeKind::Failed,
            Decision::Transient(_) => job.attempts >= self.settings.retry.max_attempts,
            _ => false,
        };
        if failed_for_good {
            if let Err(e) = self.seen.forget_url(&key, &job.job_id).await {
                tracing::warn!(job_id = %job.job_id, error = %e, "could not forget the URL of a failed job");
            }
        }
        (decision, timings)
    }

    /// Fetch, check, extract and dedup one job whose URL is valid.
    async fn fetch_and_extract(&self, job: &JobInput, url: &Url) -> (Decision, Timings) {
        let mut timings = Timings::default();
        let outcome = |kind, reason: &str, detail: String| make_outcome(job, kind, reason, detail);
        let url = url.clone();
        let started = Instant::now();
        let fetched = self.fetcher.fetch(&url).await;
        timings.fetch = Some(started.elapsed());
        let page = match fetched {
            Ok(p) => p,
            Err(e) => {
                let robots_wait = Duration::from_secs(self.settings.politeness.robots_error_ttl_s);
                return (fetch_error_decision(job, e, robots_wait), timings);
            }
        };
        timings.bytes = page.body.len();
        // Redis round trips alone take a millisecond or two: only real waits count.
        if page.politeness_wait >= Duration::from_millis(10) {
            let host = url.host_str().unwrap_or_default().to_string();
            timings.host_wait = Some((host, page.politeness_wait));
        }
        if let Some(d) = check_response(job, &page) {
            return (d, timings);
        }
        // The body (and its share of fetch.max_buffered_bytes) goes to the extractor and is dropped
        // there; what follows needs only the page's metadata.
        let meta = page.without_body();
        let started = Instant::now();
        let extracted = self.extract(page).await;
        let page = meta;
        timings.extract = Some(started.elapsed());
        let (kind, reason, detail) = match extracted {
            Ok(Ok(x)) => {
                return self.dedup(job, &url, &page, x, timings).await;
            }
            Ok(Err(e @ ExtractError::TooLarge { .. })) => {
                (OutcomeKind::Failed, "too_large", e.to_string())
            }
            Ok(Err(e @ (ExtractError::Empty | ExtractError::NoContent(_)))) => {
                (OutcomeKind::Skipped, "no_content", e.to_string())
            }
            #[allow(unreachable_patterns)] // ExtractError is non-exhaustive
            Ok(Err(e)) => (OutcomeKind::Failed, "extract", e.to_string()),
            Err(crash) => (OutcomeKind::Failed, "extract", crash),
        };
        let mut o = outcome(kind, reason, format!("{}: {detail}", page.final_url));
        o.final_url = Some(page.final_url.to_string());
        o.http_status = Some(page.status);
        (Decision::Final(o), timings)
    }

    /// Build the article and ask the dedup store about it.
    async fn dedup(
        &self,
        job: &JobInput,
        url: &Url,
        page: &FetchedPage,
        extracted: Extracted,
        mut timings: Timings,
    ) -> (Decision, Timings) {
        let outcome = |kind, reason: &str, detail: String| make_outcome(job, kind, reason, detail);
        let fp = fingerprint(&extracted.text);
        let mut article = build_article(job, url, page, extracted, fp.hash.clone());
        let verdict = match self.seen.check_and_record(&fp, &job.job_id).await {
            Ok(v) => v,
            Err(e) => {
                return (
                    Decision::Transient(outcome(OutcomeKind::Failed, "dedup_store", e.to_string())),
                    timings,
                )
            }
        };
        let duplicate = |first: String, of_hash: &str| {
            let mut o = outcome(OutcomeKind::Duplicate, "duplicate", first);
            o.final_url = Some(page.final_url.to_string());
            o.http_status = Some(page.status);
            o.content_hash = Some(of_hash.to_string());
            Decision::Final(o)
        };
        timings.verdict = Some(verdict.clone());
        timings.evictions = self.seen.evictions();
        let d = match verdict {
            Verdict::New => Decision::Article(Box::new(article)),
            Verdict::Duplicate { first_job } => duplicate(
                format!("same text as job {first_job} (content hash {})", fp.hash),
                &fp.hash,
            ),
            Verdict::NearDuplicate { of_hash, distance } => match self.settings.dedup.near_action {
                NearAction::Drop => duplicate(
                    format!(
                        "near-duplicate (SimHash distance {distance}) of content hash {of_hash}"
                    ),
                    &of_hash,
                ),
                NearAction::Flag => {
                    article.near_duplicate_of = Some(of_hash);
                    Decision::Article(Box::new(article))
                }
            },
        };
        (d, timings)
    }
}

/// Extract from a fetched page, enforcing the size limit.
pub fn extract_page(page: &FetchedPage, max_html_bytes: usize) -> Result<Extracted, ExtractError> {
    if page.body.len() > max_html_bytes {
        return Err(ExtractError::TooLarge {
            size: page.body.len(),
            max: max_html_bytes,
        });
    }
    extract::extract(&Page {
        body: &page.body,
        url: Some(&page.final_url),
        content_type: page.content_type.as_deref(),
        content_language: page.content_language.as_deref(),
    })
}

/// An outcome for `job` with the common fields filled.
pub fn make_outcome(job: &JobInput, kind: OutcomeKind, reason: &str, detail: String) -> Outcome {
    Outcome {
        schema: OUTCOME_SCHEMA_VERSION.to_string(),
        job_id: job.job_id.clone(),
        url: job.url.clone(),
        outcome: kind,
        reason: reason.to_string(),
        detail,
        at: now_rfc3339(),
        final_url: None,
        http_status: None,
        content_hash: None,
        attempts: job.attempts,
        meta: job.meta.clone(),
    }
}

/// Map a fetch error to a decision: deferral, skip, transient or permanent failure.
///
/// An unavailable robots.txt (5xx, unreachable) keeps the host closed for `robots_wait`: the job is
/// deferred that long (up to [`MAX_ROBOTS_DEFERRALS`] times) rather than retried at once, because every
/// retry tier shorter than the wait would only hit the cached failure.
pub fn fetch_error_decision(job: &JobInput, e: FetchError, robots_wait: Duration) -> Decision {
    let detail = e.to_string();
    match e {
        FetchError::Deferred { wait, host } => Decision::Defer { wait, host },
        FetchError::RobotsUnavailable { ref url, .. } if job.deferrals < MAX_ROBOTS_DEFERRALS => {
            let host = Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            Decision::Defer {
                wait: robots_wait,
                host,
            }
        }
        FetchError::RobotsDisallowed { .. } | FetchError::CrawlDelayTooLong { .. } => {
            Decision::Final(make_outcome(job, OutcomeKind::Skipped, e.reason(), detail))
        }
        ref e if e.is_transient() => {
            Decision::Transient(make_outcome(job, OutcomeKind::Failed, e.reason(), detail))
        }
        e => Decision::Final(make_outcome(job, OutcomeKind::Failed, e.reason(), detail)),
    }
}

/// Turn an HTTP status and content type into a decision when they rule out extraction.
pub fn check_response(job: &JobInput, page: &FetchedPage) -> Option<Decision> {
    let status = page.status;
    let with_page = |mut o: Outcome| {
        o.final_url = Some(page.final_url.to_string());
        o.http_status = Some(status);
        o
    };
    if !(200..300).contains(&status) {
        let reason = format!("http_{status}");
        let detail = format!("{} answered HTTP {status}", page.final_url);
        let o = with_page(make_outcome(job, OutcomeKind::Failed, &reason, detail));
        // 408, 429 and 5xx may pass; other statuses will not change by asking again.
        return Some(if status == 408 || status == 429 || status >= 500 {
            Decision::Transient(o)
        } else {
            Decision::Final(o)
        });
    }
    if let Some(ct) = page.content_type.as_deref() {
        if !is_html_content_type(ct) {
            let detail = format!(
                "{} is {ct:?}, not HTML; only text/html and XHTML pages are extracted",
                page.final_url
            );
            return Some(Decision::Final(with_page(make_outcome(
                job,
                OutcomeKind::Skipped,
                "not_html",
                detail,
            ))));
        }
    }
    if page.body.iter().all(u8::is_ascii_whitespace) {
        let detail = format!(
            "{} answered HTTP {status} with an empty body",
            page.final_url
        );
        return Some(Decision::Final(with_page(make_outcome(
            job,
            OutcomeKind::Skipped,
            "no_content",
            detail,
        ))));
    }
    None
}

/// `text/html`, XHTML/XML, or a missing/generic type that may hold HTML.
pub fn is_html_content_type(ct: &str) -> bool {
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    // An absent or generic type may still be HTML (mislabelled servers); the extractor decides then.
    matches!(
        mime.as_str(),
        "" | "text/html"
            | "application/xhtml+xml"
            | "application/xml"
            | "text/xml"
            | "application/octet-stream"
    )
}

/// Assemble the article message; `content_hash` is [`crate::dedup::content_hash`] of `x.text`.
pub fn build_article(
    job: &JobInput,
    url: &Url,
    page: &FetchedPage,
    x: Extracted,
    content_hash: String,
) -> Article {
    let final_url = page.final_url.to_string();
    Article {
        schema: SCHEMA_VERSION.to_string(),
        job_id: job.job_id.clone(),
        url: url.to_string(),
        canonical_url: x.canonical_url.unwrap_or_else(|| final_url.clone()),
        final_url,
        fetched_at: page.fetched_at.clone(),
        http_status: page.status,
        title: x.title,
        authors: x.authors,
        published_at: x.published_at,
        modified_at: x.modified_at,
        language: x.language.unwrap_or_else(|| "und".to_string()),
        site_name: x.site_name,
        description: x.description,
        image: x.image,
        word_count: word_count(&x.text),
        text: x.text,
        content_hash,
        page_kind: x.page_kind,
        extraction_confidence: x.confidence,
        near_duplicate_of: None,
        meta: job.meta.clone(),
    }
}

/// Words in `text`: whitespace-separated tokens holding a letter or digit, where each Han, kana or
/// Hangul character counts as one word (those scripts do not separate words with spaces).
pub fn word_count(text: &str) -> usize {
    text.split_whitespace()
        .map(|tok| {
            let cjk = tok.chars().filter(|c| is_cjk(*c)).count();
            let rest = tok.chars().any(|c| c.is_alphanumeric() && !is_cjk(c));
            cjk + usize::from(rest)
        })
        .sum()
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// The same decision as [`Processor::process`] but shaped for printing (`scrape`): articles and
/// outcomes as JSON values.
pub fn decision_json(d: &Decision) -> Value {
    match d {
        Decision::Article(a) => serde_json::to_value(a).unwrap_or(Value::Null),
        Decision::Final(o) | Decision::Transient(o) => {
            serde_json::to_value(o).unwrap_or(Value::Null)
        }
        Decision::Defer { wait, host } => {
            serde_json::json!({"outcome": "deferred", "host": host, "wait_ms": wait.as_millis() as u64})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_types() {
        assert!(is_html_content_type("text/html; charset=utf-8"));
        assert!(is_html_content_type("application/xhtml+xml"));
        assert!(is_html_content_type(""));
        assert!(!is_html_content_type("application/pdf"));
        assert!(!is_html_content_type("image/png"));
        assert!(!is_html_content_type("text/plain"));
        assert!(!is_html_content_type("application/json"));
    }

    #[test]
    fn counts_words_in_every_script() {
        assert_eq!(word_count("Hello, world — again"), 3);
        assert_eq!(word_count("مرحبا بالعالم"), 2);
        assert_eq!(word_count("東京都"), 3);
        assert_eq!(word_count(""), 0);
    }

    fn job() -> JobInput {
        JobInput {
            deferrals: 0,
            job_id: "j".into(),
            url: "https://x.example/".into(),
            meta: None,
            attempts: 1,
            force: false,
        }
    }

    fn page(status: u16, ct: Option<&str>, body: &'static str) -> FetchedPage {
        FetchedPage {
            final_url: Url::parse("https://x.example/").unwrap(),
            status,
            content_type: ct.map(str::to_string),
            content_language: None,
            body: bytes::Bytes::from_static(body.as_bytes()),
            hold: Default::default(),
            fetched_at: now_rfc3339(),
            politeness_wait: Duration::ZERO,
        }
    }

    #[test]
    fn unavailable_robots_defers_then_retries() {
        let e = || FetchError::RobotsUnavailable {
            url: "https://x.example/robots.txt".into(),
            detail: "503".into(),
        };
        let wait = Duration::from_secs(600);
        match fetch_error_decision(&job(), e(), wait) {
            Decision::Defer { wait: w, host } => {
                assert_eq!((w, host.as_str()), (wait, "x.example"))
            }
            d => panic!("{d:?}"),
        }
        let mut j = job();
        j.deferrals = MAX_ROBOTS_DEFERRALS;
        assert!(matches!(
            fetch_error_decision(&j, e(), wait),
            Decision::Transient(_)
        ));
    }

    #[test]
    fn statuses_map_to_outcomes() {
        let j = job();
        assert!(check_response(&j, &page(200, Some("text/html"), "<p>x</p>")).is_none());
        match check_response(&j, &page(404, Some("text/html"), "nope")) {
            Some(Decision::Final(o)) => assert_eq!(o.routing_key(), "outcome.failed.http_404"),
            d => panic!("{d:?}"),
        }
        assert!(matches!(
            check_response(&j, &page(503, None, "")),
            Some(Decision::Transient(_))
        ));
        assert!(matches!(
            check_response(&j, &page(429, None, "")),
            Some(Decision::Transient(_))
        ));
        match check_response(&j, &page(200, Some("application/pdf"), "%PDF")) {
            Some(Decision::Final(o)) => assert_eq!(o.routing_key(), "outcome.skipped.not_html"),
            d => panic!("{d:?}"),
        }
        match check_response(&j, &page(200, Some("text/html"), "  \n")) {
            Some(Decision::Final(o)) => assert_eq!(o.reason, "no_content"),
            d => panic!("{d:?}"),
        }
    }
}
