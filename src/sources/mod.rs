//! PURE: news sources (feeds and sitemaps) into the page URLs they list.
//!
//! - [`detect`]: is this body a feed or a sitemap? (content type and root element; gzip looked into)
//! - [`expand`]: parse it into [`Item`]s (pages to fetch) and child sitemaps, applying [`Limits`]
//!   (items per source, bytes after decompression, item age, other hosts).
//! - [`feed`]: RSS 2.0 / RSS 1.0 / Atom / JSON Feed through `feed-rs`.
//! - [`sitemap`]: sitemap, sitemap index and Google News sitemap through a streaming `quick-xml` reader.
//!
//! No network, no broker: the pipeline fetches the source and turns the [`Expansion`] into child jobs.

pub mod feed;
pub mod sitemap;

use std::io::Read;

use url::Url;

/// What a job points at, when it is not an article page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// RSS, Atom or JSON Feed.
    Feed,
    /// Sitemap, sitemap index or news sitemap.
    Sitemap,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Feed => "feed",
            SourceKind::Sitemap => "sitemap",
        }
    }
}

/// One page a source lists, with what the source says about it (fills gaps in the article later).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item {
    /// Absolute http(s) URL of the page.
    pub url: String,
    pub title: Option<String>,
    /// RFC 3339 UTC.
    pub published_at: Option<String>,
    pub authors: Vec<String>,
}

/// What a source expands to, and what was left out and why.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expansion {
    /// Pages to fetch, newest first where the source dates them (at most `Limits::max_items`).
    pub items: Vec<Item>,
    /// Child sitemaps of a sitemap index (at most `Limits::max_items`).
    pub sitemaps: Vec<String>,
    /// Entries the source lists in all (pages and child sitemaps), before any limit.
    pub listed: usize,
    /// Entries older than `Limits::max_age_s`.
    pub too_old: usize,
    /// Entries on another host, left out because the limits do not allow other hosts.
    pub other_host: usize,
    /// Entries beyond `Limits::max_items` (the oldest ones).
    pub over_limit: usize,
    /// Entries whose URL is missing, unparsable or not http(s).
    pub invalid: usize,
}

/// Bounds on one source.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Pages (or child sitemaps) taken from one source.
    pub max_items: usize,
    /// Bytes of the source after decompression.
    pub max_bytes: usize,
    /// Entries dated older than this many seconds are left out; 0 = no age limit.
    pub max_age_s: u64,
    /// Items of a feed may be on other hosts than the feed's.
    pub feed_other_hosts: bool,
    /// Entries of a sitemap may be on other hosts than the sitemap's.
    pub sitemap_other_hosts: bool,
    /// "Now", as Unix seconds (the age limit is measured from it).
    pub now_s: i64,
}

/// Why a source gave nothing to fetch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceError {
    #[error("{url} is an HTML page, not a feed or sitemap{}", discovered_hint(.feeds))]
    HtmlPage { url: String, feeds: Vec<String> },
    #[error("{url} is neither a feed nor a sitemap (content type {content_type:?}); send RSS, Atom, JSON Feed or a sitemap, or send the URL without \"kind\" to extract it as a page")]
    Unrecognised { url: String, content_type: String },
    #[error("{url} is not well-formed: {detail}")]
    Malformed { url: String, detail: String },
    #[error("{url} is over {max} bytes after decompression (feed.max_bytes)")]
    TooLarge { url: String, max: usize },
}

impl SourceError {
    /// Outcome reason.
    pub fn reason(&self) -> &'static str {
        match self {
            SourceError::HtmlPage { .. } | SourceError::Unrecognised { .. } => "not_a_source",
            SourceError::Malformed { .. } => "bad_source",
            SourceError::TooLarge { .. } => "too_large",
        }
    }
}

fn discovered_hint(feeds: &[String]) -> String {
    if feeds.is_empty() {
        "; send it without \"kind\" to extract it as an article".to_string()
    } else {
        format!(
            "; the page names these feeds, send one of them: {}",
            feeds.join(", ")
        )
    }
}

/// Gzip magic number.
const GZIP: [u8; 2] = [0x1f, 0x8b];
/// Bytes looked at to find the root element.
const SNIFF: usize = 4096;

/// `body` decompressed when it is gzip (a `.xml.gz` sitemap), at most `max` bytes.
pub fn decompressed<'a>(
    body: &'a [u8],
    max: usize,
    url: &str,
) -> Result<std::borrow::Cow<'a, [u8]>, SourceError> {
    if !body.starts_with(&GZIP) {
        if body.len() > max {
            return Err(SourceError::TooLarge {
                url: url.to_string(),
                max,
            });
        }
        return Ok(std::borrow::Cow::Borrowed(body));
    }
    let mut out = Vec::new();
    let mut reader = flate2::read::MultiGzDecoder::new(body).take(max as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|e| SourceError::Malformed {
            url: url.to_string(),
            detail: format!("gzip data does not decompress: {e}"),
        })?;
    if out.len() > max {
        return Err(SourceError::TooLarge {
            url: url.to_string(),
            max,
        });
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Feed or sitemap, judged by the content type and the root element (after gunzipping a peek of a
/// gzip body). `None`: anything else (an HTML page, an image, ...).
pub fn detect(content_type: Option<&str>, body: &[u8]) -> Option<SourceKind> {
    let mime = content_type
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if mime == "application/feed+json" {
        return Some(SourceKind::Feed);
    }
    let mut peek = Vec::new();
    let head: &[u8] = if body.starts_with(&GZIP) {
        let _ = flate2::read::MultiGzDecoder::new(body)
            .take(SNIFF as u64)
            .read_to_end(&mut peek);
        &peek
    } else {
        &body[..body.len().min(SNIFF)]
    };
    match root_element(head) {
        Some(Root::Xml(name)) => match name.as_str() {
            "rss" | "feed" | "rdf" => Some(SourceKind::Feed),
            "urlset" | "sitemapindex" => Some(SourceKind::Sitemap),
            _ => None,
        },
        Some(Root::Json) if is_json_feed(head) => Some(SourceKind::Feed),
        _ => None,
    }
}

enum Root {
    /// Local name of the first element, lowercased.
    Xml(String),
    Json,
}

/// The first element's local name (past the BOM, XML declaration, comments, doctype and
/// processing instructions), or JSON when the body starts with `{`.
fn root_element(head: &[u8]) -> Option<Root> {
    let text = String::from_utf8_lossy(head);
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    if rest.starts_with('{') {
        return Some(Root::Json);
    }
    loop {
        rest = rest.trim_start();
        let after = rest.strip_prefix('<')?;
        if let Some(r) = after.strip_prefix("!--") {
            rest = &r[r.find("-->")? + 3..];
        } else if after.starts_with("!DOCTYPE") && after[..after.find('>')?].contains('[') {
            // A doctype with an internal subset: its declarations hold '>' too.
            rest = &after[after.find("]>")? + 2..];
        } else if after.starts_with('?') || after.starts_with('!') {
            rest = &after[after.find('>')? + 1..];
        } else {
            let name: String = after
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
                .collect();
            let local = name.rsplit(':').next().unwrap_or(&name);
            return Some(Root::Xml(local.to_ascii_lowercase()));
        }
    }
}

fn is_json_feed(head: &[u8]) -> bool {
    memchr::memmem::find(head, b"jsonfeed.org/version").is_some()
}

/// Parse a source of `kind` fetched from `base`.
pub fn expand(
    kind: SourceKind,
    body: &[u8],
    base: &Url,
    limits: &Limits,
) -> Result<Expansion, SourceError> {
    let body = decompressed(body, limits.max_bytes, base.as_str())?;
    let (entries, sitemaps, cut) = match kind {
        SourceKind::Feed => {
            let (entries, cut) = feed::parse(&body, base)?;
            (entries, Vec::new(), cut)
        }
        SourceKind::Sitemap => sitemap::parse(&body, base)?,
    };
    let other_hosts = match kind {
        SourceKind::Feed => limits.feed_other_hosts,
        SourceKind::Sitemap => limits.sitemap_other_hosts,
    };
    let mut x = apply_limits(entries, sitemaps, base, other_hosts, limits);
    x.listed += cut;
    x.over_limit += cut;
    Ok(x)
}

/// Keep the entries the limits allow; count the others by why they were left out.
fn apply_limits(
    entries: Vec<Item>,
    sitemaps: Vec<Item>,
    base: &Url,
    other_hosts: bool,
    limits: &Limits,
) -> Expansion {
    let mut x = Expansion {
        listed: entries.len() + sitemaps.len(),
        ..Default::default()
    };
    let oldest = (limits.max_age_s > 0).then(|| limits.now_s - limits.max_age_s as i64);
    let keep = |list: Vec<Item>, x: &mut Expansion| -> Vec<Item> {
        let mut kept = Vec::new();
        for mut item in list {
            let Some(url) = page_url(&item.url, base) else {
                x.invalid += 1;
                continue;
            };
            if !other_hosts && !same_site(&url, base) {
                x.other_host += 1;
                continue;
            }
            let at = item.published_at.as_deref().and_then(unix_seconds);
            if let (Some(oldest), Some(at)) = (oldest, at) {
                if at < oldest {
                    x.too_old += 1;
                    continue;
                }
            }
            item.url = url.to_string();
            kept.push((at, item));
        }
        // Newest first; undated entries after the dated ones, in the source's order.
        kept.sort_by_key(|(at, _)| std::cmp::Reverse(at.unwrap_or(i64::MIN)));
        if kept.len() > limits.max_items {
            x.over_limit += kept.len() - limits.max_items;
            kept.truncate(limits.max_items);
        }
        kept.into_iter().map(|(_, i)| i).collect()
    };
    x.items = keep(entries, &mut x);
    x.sitemaps = keep(sitemaps, &mut x).into_iter().map(|i| i.url).collect();
    x
}

/// An entry's URL resolved against the source's, when it is http(s) with a host and no credentials.
fn page_url(raw: &str, base: &Url) -> Option<Url> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let mut url = base.join(raw).ok()?;
    url.set_fragment(None);
    crate::message::validate_url(url.as_str()).ok()
}

/// Same host, ignoring a leading `www.`.
fn same_site(a: &Url, b: &Url) -> bool {
    let host = |u: &Url| {
        let h = u.host_str().unwrap_or_default().to_ascii_lowercase();
        h.strip_prefix("www.").map(str::to_string).unwrap_or(h)
    };
    host(a) == host(b)
}

/// Unix seconds of an entry's date (the parsers give RFC 3339, see [`w3c_datetime`]).
fn unix_seconds(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
}

/// A W3C datetime (sitemaps: `2024-05-01`, `2024-05-01T10:00+02:00`, `2024-05-01T10:00:00Z`) as
/// RFC 3339 UTC, when it parses: the extractor's date normaliser, then UTC (a bare date is midnight).
pub fn w3c_datetime(s: &str) -> Option<String> {
    let normal = crate::extract::normalize_date(s)?;
    let utc = match chrono::DateTime::parse_from_rfc3339(&normal) {
        Ok(t) => t.with_timezone(&chrono::Utc),
        Err(_) => chrono::NaiveDate::parse_from_str(&normal, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)?
            .and_utc(),
    };
    Some(utc.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Feed links an HTML page announces (`<link rel="alternate" type="application/rss+xml" href>`),
/// resolved against `base`: the hint when a feed job points at a page.
pub fn discover_feeds(html: &[u8], base: &Url) -> Vec<String> {
    let doc = scraper::Html::parse_document(&String::from_utf8_lossy(
        &html[..html.len().min(256 * 1024)],
    ));
    let sel = scraper::Selector::parse("link[rel~=alternate][href]").expect("valid selector");
    doc.select(&sel)
        .filter(|l| {
            let t = l
                .value()
                .attr("type")
                .unwrap_or_default()
                .to_ascii_lowercase();
            t.contains("rss") || t.contains("atom") || t.contains("feed+json")
        })
        .filter_map(|l| base.join(l.value().attr("href")?).ok())
        .map(|u| u.to_string())
        .take(5)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_items: 3,
            max_bytes: 1 << 20,
            max_age_s: 0,
            feed_other_hosts: true,
            sitemap_other_hosts: false,
            now_s: 1_700_000_000,
        }
    }

    #[test]
    fn detects_roots_past_prologs() {
        let d = |b: &str| detect(None, b.as_bytes());
        assert_eq!(
            d("\u{feff}<?xml version=\"1.0\"?>\n<!-- x --><rss version=\"2.0\">"),
            Some(SourceKind::Feed)
        );
        assert_eq!(
            d("<feed xmlns=\"http://www.w3.org/2005/Atom\">"),
            Some(SourceKind::Feed)
        );
        assert_eq!(d("<rdf:RDF xmlns:rdf=\"x\">"), Some(SourceKind::Feed));
        assert_eq!(
            d("<!DOCTYPE rss [<!ENTITY a \"b\"> <!ENTITY c \"&a;\">]>\n<rss>"),
            Some(SourceKind::Feed)
        );
        assert_eq!(
            d("<?xml version=\"1.0\"?><?xml-stylesheet href=\"s.xsl\"?><urlset>"),
            Some(SourceKind::Sitemap)
        );
        assert_eq!(d("<sitemapindex xmlns=\"x\">"), Some(SourceKind::Sitemap));
        assert_eq!(
            d("{\"version\": \"https://jsonfeed.org/version/1.1\", \"items\": []}"),
            Some(SourceKind::Feed)
        );
        assert_eq!(d("{\"a\": 1}"), None);
        assert_eq!(d("<!DOCTYPE html><html><body>"), None);
        assert_eq!(d("plain text"), None);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"<urlset><url><loc>http://a/</loc></url></urlset>")
            .unwrap();
        assert_eq!(
            detect(Some("application/gzip"), &gz.finish().unwrap()),
            Some(SourceKind::Sitemap)
        );
    }

    #[test]
    fn gzip_is_bounded_after_decompression() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &vec![b' '; 100_000]).unwrap();
        let gz = gz.finish().unwrap();
        assert!(gz.len() < 1000);
        assert_eq!(
            decompressed(&gz, 50_000, "http://a/s.xml.gz"),
            Err(SourceError::TooLarge {
                url: "http://a/s.xml.gz".into(),
                max: 50_000
            })
        );
        assert_eq!(decompressed(&gz, 100_000, "u").unwrap().len(), 100_000);
    }

    #[test]
    fn limits_keep_the_newest_items_and_count_the_rest() {
        let base = Url::parse("https://news.example/feed.xml").unwrap();
        let item = |u: &str, d: Option<&str>| Item {
            url: u.into(),
            published_at: d.map(str::to_string),
            ..Default::default()
        };
        let entries = vec![
            item("/a", Some("2023-11-01T00:00:00Z")),
            item("https://www.news.example/b", Some("2023-11-14T00:00:00Z")),
            item("https://other.example/c", Some("2023-11-13T00:00:00Z")),
            item("/d", None),
            item("mailto:x@y", None),
            item("/e", Some("2023-11-10T00:00:00Z")),
        ];
        let mut l = limits();
        l.feed_other_hosts = false;
        l.max_age_s = 10 * 86400; // now is 2023-11-14T22:13:20Z
        let x = apply_limits(entries, Vec::new(), &base, false, &l);
        let urls: Vec<_> = x.items.iter().map(|i| i.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://www.news.example/b",
                "https://news.example/e",
                "https://news.example/d"
            ]
        );
        assert_eq!(
            (x.listed, x.too_old, x.other_host, x.invalid, x.over_limit),
            (6, 1, 1, 1, 0)
        );
        l.max_items = 1;
        let x = apply_limits(
            vec![item("/x", None), item("/y", None)],
            Vec::new(),
            &base,
            true,
            &l,
        );
        assert_eq!((x.items.len(), x.over_limit), (1, 1));
        assert_eq!(x.items[0].url, "https://news.example/x");
    }

    #[test]
    fn w3c_datetimes() {
        assert_eq!(
            w3c_datetime("2024-05-01").as_deref(),
            Some("2024-05-01T00:00:00Z")
        );
        assert_eq!(
            w3c_datetime("2024-05-01T10:00+02:00").as_deref(),
            Some("2024-05-01T08:00:00Z")
        );
        assert_eq!(
            w3c_datetime("2024-05-01T10:00:00.5Z").as_deref(),
            Some("2024-05-01T10:00:00Z")
        );
        assert_eq!(w3c_datetime("yesterday"), None);
    }

    #[test]
    fn discovers_feed_links_in_pages() {
        let base = Url::parse("https://news.example/world/").unwrap();
        let html = br#"<html><head><link rel="alternate" type="application/rss+xml" href="/rss.xml">
            <link rel="alternate" hreflang="fr" href="/fr/"><link rel="stylesheet" href="s.css"></head></html>"#;
        assert_eq!(
            discover_feeds(html, &base),
            ["https://news.example/rss.xml"]
        );
    }
}
