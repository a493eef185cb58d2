//! One job through the stages, without a broker: validate -> fetch -> check response -> extract -> dedup.
//!
//! Shared by `paperboy work` (which then publishes and acks) and `paperboy scrape` (which prints).
//! The decision is a value ([`Decision`]); nothing here publishes or acks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use url::Url;

use crate::config::{NearAction, Settings};
use crate::dedup::{fingerprint, url_key, Seen, UrlVerdict, Verdict};
use crate::extract::{self, ExtractError, Extracted, Page};
use crate::fetch::{FetchError, FetchOptions, FetchedPage, Fetcher, Validators};
use crate::message::{
    now_rfc3339, validate_url, Article, ExpansionCounts, ItemMeta, Job, JobKind, Outcome,
    OutcomeKind, OUTCOME_SCHEMA_VERSION, SCHEMA_VERSION,
};
use crate::sources::{self, SourceError, SourceKind};

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
    /// Page, feed or sitemap; `None`: recognised from the answer.
    pub kind: Option<JobKind>,
    /// The feed or sitemap that emitted this job.
    pub parent: Option<String>,
    /// What that source said about the page (fills gaps in the article).
    pub item: Option<ItemMeta>,
    /// Sitemap-index levels above this job.
    pub depth: u32,
    /// The broker delivered this message before (the worker may have died after recording what the
    /// job did): records of this job are then its own, not another poll's.
    pub redelivered: bool,
}

impl JobInput {
    /// A first delivery of a page-or-source job for `url` with nothing else set.
    pub fn new(job_id: impl Into<String>, url: impl Into<String>) -> JobInput {
        JobInput::from_job(Job::for_url(url), job_id.into())
    }

    /// `job` on its first delivery, with its id settled to `job_id`.
    pub fn from_job(job: Job, job_id: String) -> JobInput {
        JobInput {
            job_id,
            url: job.url,
            meta: job.meta,
            attempts: 1,
            deferrals: 0,
            force: job.force,
            kind: job.kind,
            parent: job.parent,
            item: job.item,
            depth: job.depth,
            redelivered: false,
        }
    }

    /// The job as it goes back on a queue (retry, deferral), its id filled in.
    pub fn to_job(&self) -> Job {
        Job {
            url: self.url.clone(),
            id: Some(self.job_id.clone()),
            meta: self.meta.clone(),
            force: self.force,
            kind: self.kind,
            parent: self.parent.clone(),
            item: self.item.clone(),
            depth: self.depth,
        }
    }
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
    /// A feed or sitemap: publish these child jobs, then the `expanded` outcome.
    Expand {
        children: Vec<Job>,
        outcome: Outcome,
    },
}

impl Decision {
    /// Short label for logs and metrics.
    pub fn label(&self) -> String {
        match self {
            Decision::Article(_) => "article".into(),
            Decision::Final(o) | Decision::Transient(o) => o.routing_key(),
            Decision::Defer { .. } => "deferred".into(),
            Decision::Expand { outcome, .. } => outcome.routing_key(),
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
        // Feeds and sitemaps are polled again by design: the URL-seen filter applies to their items.
        let source_job = matches!(job.kind, Some(JobKind::Feed | JobKind::Sitemap));
        let key = url_key(&url);
        // URL-seen filter: a URL another job fetched within dedup.url_ttl_s is not fetched again.
        // The conditional-GET lookup goes with it (the same key's slot; one call with Redis).
        let url_ttl = (!(ttl.is_zero() || job.force || source_job)).then_some(ttl);
        // A redelivered job's own validators stay unused: its first delivery may have died before
        // publishing what the page held.
        let own = (self.settings.dedup.validators_ttl_s > 0)
            .then_some(!(job.redelivered || job.attempts > 1));
        // With the store and the fetcher's limiter on one Redis connection the check rides on the
        // fetcher's acquire call for the host (after robots.txt; no lease or slot for a seen URL);
        // otherwise it is a call of its own, here.
        let any_check = url_ttl.is_some() || own.is_some();
        let ride = any_check
            .then(|| self.seen.url_check(&key, &job.job_id, url_ttl, own))
            .flatten()
            .filter(|c| self.fetcher.runs_url_check(c));
        let mut validators = None;
        if ride.is_none() && any_check {
            let (checked, found) = self
                .seen
                .check_url_and_validators(&key, &job.job_id, url_ttl, own)
                .await;
            // A validators error costs a full download, not the job.
            validators = match found {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(job_id = %job.job_id, error = %e, "conditional GET: validators lookup failed; fetching in full");
                    None
                }
            };
            if url_ttl.is_some() {
                match checked {
                    Ok(UrlVerdict::New | UrlVerdict::Own) => {}
                    Ok(UrlVerdict::Seen { first_job }) => {
                        let d = Decision::Final(seen_outcome(job, &url, &first_job, ttl));
                        return (d, Timings::default());
                    }
                    Err(e) => {
                        let d = Decision::Transient(outcome(
                            OutcomeKind::Failed,
                            "dedup_store",
                            e.to_string(),
                        ));
                        return (d, Timings::default());
                    }
                }
            }
        }
        let fetch = Fetch {
            key: &key,
            validators: validators.filter(|v| !v.is_empty()),
            check: ride,
        };
        if url_ttl.is_none() {
            return self.fetch_and_extract(job, &url, fetch).await;
        }
        let (decision, timings) = self.fetch_and_extract(job, &url, fetch).await;
        // A job that ends in failure lets its URL be tried again by the next job that names it; so does
        // a job that turned out to be a feed or sitemap (it will be polled again).
        let forget = match &decision {
            Decision::Final(o) => o.outcome == OutcomeKind::Failed,
            Decision::Transient(_) => job.attempts >= self.settings.retry.max_attempts,
            Decision::Expand { .. } => true,
            _ => false,
        };
        if forget {
            if let Err(e) = self.seen.forget_url(&key, &job.job_id).await {
                tracing::warn!(job_id = %job.job_id, error = %e, "could not forget the URL of a job");
            }
        }
        (decision, timings)
    }

    /// Remember the answer's validators for the next fetch of the URL (when it sent any).
    async fn record_validators(&self, job: &JobInput, key: &str, page: &FetchedPage) {
        let ttl = Duration::from_secs(self.settings.dedup.validators_ttl_s);
        if ttl.is_zero() || page.validators.is_empty() {
            return;
        }
        if let Err(e) = self
            .seen
            .record_validators(key, &job.job_id, &page.validators, ttl)
            .await
        {
            tracing::warn!(job_id = %job.job_id, error = %e, "conditional GET: could not record validators");
        }
    }

    /// Fetch one job whose URL is valid (conditionally, with the validators of `fetch`, or those its
    /// URL check finds), then expand it (a feed or sitemap) or extract and dedup it.
    async fn fetch_and_extract(
        &self,
        job: &JobInput,
        url: &Url,
        fetch: Fetch<'_>,
    ) -> (Decision, Timings) {
        let mut timings = Timings::default();
        let outcome = |kind, reason: &str, detail: String| make_outcome(job, kind, reason, detail);
        let url = url.clone();
        let vkey = fetch.key;
        let source_job = matches!(job.kind, Some(JobKind::Feed | JobKind::Sitemap));
        let opts = FetchOptions {
            validators: fetch.validators,
            max_body: source_job.then_some(self.settings.feed.max_bytes as u64),
            url_check: fetch.check,
        };
        let started = Instant::now();
        let fetched = self.fetcher.fetch_with(&url, opts).await;
        timings.fetch = Some(started.elapsed());
        let page = match fetched {
            Ok(p) => p,
            Err(FetchError::UrlSeen { first_job, .. }) => {
                let ttl = Duration::from_secs(self.settings.dedup.url_ttl_s);
                let d = Decision::Final(seen_outcome(job, &url, &first_job, ttl));
                return (d, Timings::default());
            }
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
        if page.status == 304 {
            let detail = format!(
                "{} answered 304 Not Modified to the validators of its last fetch",
                page.final_url
            );
            let mut o = outcome(OutcomeKind::Skipped, "not_modified", detail);
            o.final_url = Some(page.final_url.to_string());
            o.http_status = Some(304);
            return (Decision::Final(o), timings);
        }
        if let Some(d) = check_status(job, &page) {
            return (d, timings);
        }
        let detected = sources::detect(page.content_type.as_deref(), &page.body);
        let source = match (job.kind, detected) {
            (Some(JobKind::Page), _) | (None, None) => None,
            (_, Some(kind)) => Some(Ok(kind)),
            (_, None) => Some(Err(not_a_source(&page))),
        };
        if let Some(kind) = source {
            let d = match kind {
                Ok(kind) => self.expand(job, &page, kind).await,
                Err(e) => Decision::Final(source_outcome(job, &page, &e)),
            };
            if matches!(d, Decision::Expand { .. }) {
                self.record_validators(job, vkey, &page).await;
            }
            return (d, timings);
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
                let (d, timings) = self.dedup(job, &url, &page, x, timings).await;
                if matches!(d, Decision::Article(_) | Decision::Final(_)) {
                    self.record_validators(job, vkey, &page).await;
                }
                return (d, timings);
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

    /// Parse a fetched feed or sitemap (on the blocking pool, under an extraction permit) and turn
    /// it into child jobs: one page job per item not seen within `dedup.url_ttl_s`, one sitemap job
    /// per child sitemap above `feed.max_sitemap_depth`.
    async fn expand(&self, job: &JobInput, page: &FetchedPage, kind: SourceKind) -> Decision {
        let feed = &self.settings.feed;
        let limits = feed.limits(chrono::Utc::now().timestamp());
        let (body, base) = (page.body.clone(), page.final_url.clone());
        let parsed = {
            let _permit = self.extract_permits.acquire().await;
            tokio::task::spawn_blocking(move || sources::expand(kind, &body, &base, &limits)).await
        };
        let x = match parsed {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return Decision::Final(source_outcome(job, page, &e)),
            Err(crash) => {
                return Decision::Final(make_outcome(
                    job,
                    OutcomeKind::Failed,
                    "bad_source",
                    format!("the {} parser crashed: {crash}", kind.as_str()),
                ))
            }
        };
        let mut counts = ExpansionCounts {
            source: kind.as_str().to_string(),
            items: x.listed,
            too_old: x.too_old,
            other_host: x.other_host,
            over_limit: x.over_limit,
            invalid: x.invalid,
            ..Default::default()
        };
        let sitemaps = if job.depth < feed.max_sitemap_depth {
            x.sitemaps
        } else {
            counts.over_limit += x.sitemaps.len();
            Vec::new()
        };
        let ttl = Duration::from_secs(self.settings.dedup.url_ttl_s);
        // Own records are the children of an earlier delivery of this very job (it died before they
        // were all confirmed): emit them again. On a first delivery they are a re-poll's.
        let retake_own = job.redelivered || job.attempts > 1;
        let child = |url: String, kind: JobKind, item: Option<ItemMeta>, depth: u32| Job {
            id: Some(child_job_id(&job.job_id, &url)),
            url,
            meta: job.meta.clone(),
            force: false,
            kind: Some(kind),
            parent: Some(job.url.clone()),
            item,
            depth,
        };
        let candidates: Vec<Job> = x
            .items
            .into_iter()
            .map(|item| {
                let meta = ItemMeta {
                    title: item.title,
                    published_at: item.published_at,
                    authors: item.authors,
                };
                child(item.url, JobKind::Page, meta.non_empty(), 0)
            })
            .collect();
        let mut children = Vec::new();
        for chunk in candidates.chunks(URL_CHECKS_AT_ONCE) {
            let checked = futures_util::future::try_join_all(
                chunk.iter().map(|c| self.item_is_new(c, ttl, retake_own)),
            )
            .await;
            match checked {
                Ok(fresh) => {
                    for (c, new) in chunk.iter().zip(fresh) {
                        if new {
                            children.push(c.clone());
                        } else {
                            counts.seen += 1;
                        }
                    }
                }
                Err(e) => {
                    return Decision::Transient(make_outcome(
                        job,
                        OutcomeKind::Failed,
                        "dedup_store",
                        e.to_string(),
                    ))
                }
            }
        }
        counts.sitemaps = sitemaps.len();
        children.extend(
            sitemaps
                .into_iter()
                .map(|u| child(u, JobKind::Sitemap, None, job.depth + 1)),
        );
        counts.new = children.len();
        let detail = format!(
            "{} {}: {} entries, {} new jobs, {} already seen, {} too old, {} on other hosts, {} over the limits, {} without a usable URL",
            kind.as_str(),
            page.final_url,
            counts.items,
            counts.new,
            counts.seen,
            counts.too_old,
            counts.other_host,
            counts.over_limit,
            counts.invalid
        );
        let mut o = make_outcome(job, OutcomeKind::Expanded, "expanded", detail);
        o.final_url = Some(page.final_url.to_string());
        o.http_status = Some(page.status);
        o.expansion = Some(counts);
        Decision::Expand {
            children,
            outcome: o,
        }
    }

    /// Whether a source's child page job is to be published: its URL not taken by another job within
    /// `dedup.url_ttl_s` (recorded now for the child), or taken by the child itself on an earlier
    /// delivery of the parent when `retake_own`.
    async fn item_is_new(
        &self,
        child: &Job,
        ttl: Duration,
        retake_own: bool,
    ) -> Result<bool, crate::dedup::DedupError> {
        if ttl.is_zero() {
            return Ok(true);
        }
        let Ok(url) = Url::parse(&child.url) else {
            return Ok(false);
        };
        let id = child.id.as_deref().unwrap_or_default();
        Ok(match self.seen.check_url(&url_key(&url), id, ttl).await? {
            UrlVerdict::New => true,
            UrlVerdict::Own => retake_own,
            UrlVerdict::Seen { .. } => false,
        })
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

/// How [`Processor::fetch_and_extract`] fetches: the URL's store key ([`url_key`]), the validators
/// found by the job's own URL check, or the check for the fetcher to run ([`Seen::url_check`]).
struct Fetch<'a> {
    key: &'a str,
    validators: Option<Validators>,
    check: Option<crate::dedup::UrlCheck>,
}

/// The outcome of a job whose URL another job took within `ttl` (`dedup.url_ttl_s`).
fn seen_outcome(job: &JobInput, url: &Url, first_job: &str, ttl: Duration) -> Outcome {
    let detail = format!(
        "{url} was taken by job {first_job} within dedup.url_ttl_s ({}s); send \"force\": true to fetch it again",
        ttl.as_secs()
    );
    make_outcome(job, OutcomeKind::Skipped, "seen", detail)
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
        expansion: None,
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

/// URL-seen checks of one feed's items in flight at once.
const URL_CHECKS_AT_ONCE: usize = 32;

/// The id of the job a source emits for `url`: the same for every delivery of the parent.
pub fn child_job_id(parent_id: &str, url: &str) -> String {
    let joined = format!("{parent_id}\u{1f}{url}");
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, joined.as_bytes()).to_string()
}

/// Why a feed or sitemap job's answer is not one.
fn not_a_source(page: &FetchedPage) -> SourceError {
    let url = page.final_url.to_string();
    let ct = page.content_type.as_deref().unwrap_or("");
    let head = &page.body[..page.body.len().min(4096)];
    let html = ct.to_ascii_lowercase().contains("html")
        || memchr::memmem::find(&head.to_ascii_lowercase(), b"<html").is_some();
    if html {
        SourceError::HtmlPage {
            feeds: sources::discover_feeds(&page.body, &page.final_url),
            url,
        }
    } else {
        SourceError::Unrecognised {
            url,
            content_type: ct.to_string(),
        }
    }
}

/// The outcome of a feed or sitemap that gave nothing to fetch.
fn source_outcome(job: &JobInput, page: &FetchedPage, e: &SourceError) -> Outcome {
    let kind = match e {
        SourceError::HtmlPage { .. } | SourceError::Unrecognised { .. } => OutcomeKind::Skipped,
        _ => OutcomeKind::Failed,
    };
    let mut o = make_outcome(job, kind, e.reason(), e.to_string());
    o.final_url = Some(page.final_url.to_string());
    o.http_status = Some(page.status);
    o
}

/// Turn an HTTP status into a decision when it rules out using the answer.
pub fn check_status(job: &JobInput, page: &FetchedPage) -> Option<Decision> {
    let status = page.status;
    if !(200..300).contains(&status) {
        let reason = format!("http_{status}");
        let detail = format!("{} answered HTTP {status}", page.final_url);
        let mut o = make_outcome(job, OutcomeKind::Failed, &reason, detail);
        o.final_url = Some(page.final_url.to_string());
        o.http_status = Some(status);
        // 408, 429 and 5xx may pass; other statuses will not change by asking again.
        return Some(if status == 408 || status == 429 || status >= 500 {
            Decision::Transient(o)
        } else {
            Decision::Final(o)
        });
    }
    None
}

/// Turn an HTTP status and content type into a decision when they rule out extraction.
pub fn check_response(job: &JobInput, page: &FetchedPage) -> Option<Decision> {
    let status = page.status;
    let with_page = |mut o: Outcome| {
        o.final_url = Some(page.final_url.to_string());
        o.http_status = Some(status);
        o
    };
    if let Some(d) = check_status(job, page) {
        return Some(d);
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
    // What the feed or sitemap said about the page fills what the page itself does not state.
    let item = job.item.clone().unwrap_or_default();
    let title = x.title.or(item.title);
    let published_at = x.published_at.or(item.published_at);
    let authors = if x.authors.is_empty() {
        item.authors
    } else {
        x.authors
    };
    Article {
        schema: SCHEMA_VERSION.to_string(),
        job_id: job.job_id.clone(),
        url: url.to_string(),
        canonical_url: x.canonical_url.unwrap_or_else(|| final_url.clone()),
        final_url,
        fetched_at: page.fetched_at.clone(),
        http_status: page.status,
        title,
        authors,
        published_at,
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
        Decision::Expand { outcome, .. } => serde_json::to_value(outcome).unwrap_or(Value::Null),
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
        JobInput::new("j", "https://x.example/")
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
            validators: Default::default(),
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
