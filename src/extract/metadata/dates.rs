//! Dates: what the DOM shows (`<time>`, date/byline-flagged elements, texts by the headline),
//! parsing dates written in several languages and formats, and the choice of the published and
//! modified dates between JSON-LD, meta tags, visible texts and the URL.

use super::{in_zone, Meta};
use crate::extract::dom::*;
use crate::extract::text::normalize;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use regex::Regex;
use scraper::node::Element;
use std::sync::LazyLock;
use url::Url;

/// A shown day this many days before the metadata's is an earlier publication ([`shown_earlier`]);
/// one day is a time-zone question, and the dev pages mean the UTC day as often as the local one
/// (3 pages of one, 2 of the other, measured with 1).
const MIN_SHOWN_EARLIER_DAYS: i64 = 2;
/// Length of the day part of a normalised date (`YYYY-MM-DD`).
const DAY_LEN: usize = 10;
/// `<time datetime>` and microdata dates kept per page: later ones belong to comments or teasers.
const MAX_TIME_DATES: usize = 8;
/// Visible date texts kept per page.
const MAX_DATE_TEXTS: usize = 12;
/// Visible date texts from sidebar-flagged elements kept per page (a last resort).
const MAX_SIDEBAR_DATE_TEXTS: usize = 4;
/// Standalone date texts kept per page (a last resort; the first usually dates the page).
const MAX_STANDALONE_DATE_TEXTS: usize = 4;
/// A standalone date text is at most this long (bytes): a date, a time, a short label…
const MAX_STANDALONE_DATE_BYTES: usize = 48;
/// …and at most this many words ("Last updated: November 13, 2025" has 5).
const MAX_STANDALONE_DATE_WORDS: usize = 6;
/// A date element spanning more nodes than this is a whole block, not a dateline.
const MAX_DATE_ELEMENT_NODES: usize = 40;
/// A date text longer than this (bytes) is a paragraph that happens to hold a date.
const MAX_DATE_TEXT_BYTES: usize = 160;
/// Nodes after the first `<h1>` searched for a dateline…
const AFTER_TITLE_NODES: usize = 80;
/// …keeping at most this many texts…
const AFTER_TITLE_TEXTS: usize = 6;
/// …then nodes before it…
const BEFORE_TITLE_NODES: usize = 40;
/// …up to this many texts in all.
const NEAR_TITLE_TEXTS: usize = 8;
/// A text by the headline longer than this (bytes) is prose, not a dateline.
const MAX_NEAR_TITLE_TEXT_BYTES: usize = 120;
/// A date string longer than this is not one date.
const MAX_DATE_STRING_BYTES: usize = 64;
/// A month abbreviation has at least this many letters ("ago", "dez", "okt").
const MIN_MONTH_ABBREV_CHARS: usize = 3;
/// No web page is older than this year: earlier "dates" are historical years in the text.
const MIN_YEAR: i32 = 1995;
/// Dates up to this many days ahead are kept (time zones, scheduled posts); later ones are wrong.
const MAX_FUTURE_DAYS: i64 = 2;

/// `<time datetime>`: a machine-readable date.
pub(super) fn read_time_datetime(e: &Element, m: &mut Meta) {
    if m.time_dates.len() < MAX_TIME_DATES {
        if let Some(d) = e.attr("datetime") {
            m.time_dates.push(d.trim().to_string());
        }
    }
}

/// Microdata dates on any element: `<abbr itemprop="datePublished" title="2024-…">`, put first.
pub(super) fn read_microdata_date(tag: Tag, e: &Element, m: &mut Meta) {
    if tag != Tag::Meta
        && m.time_dates.len() < MAX_TIME_DATES
        && e.attr("itemprop") == Some("datePublished")
    {
        if let Some(d) = e.attr("datetime").or(e.attr("content")).or(e.attr("title")) {
            m.time_dates.insert(0, d.trim().to_string());
        }
    }
}

/// Visible dates: `<time>` text and date/byline-flagged elements (`buf` is scratch space).
pub(super) fn read_visible_date(dom: &Dom<'_>, i: usize, m: &mut Meta, buf: &mut String) {
    let node = &dom.nodes[i];
    if m.date_texts.len() < MAX_DATE_TEXTS
        && (node.tag == Tag::Time || node.flags & F_BYLINE != 0)
        && !matches!(node.tag, Tag::Meta | Tag::Link | Tag::Script)
        && node.end as usize - i < MAX_DATE_ELEMENT_NODES
        && !in_zone(dom, i, F_COMMENT | F_RELATED)
    {
        buf.clear();
        dom.text_of(i, buf);
        let t = normalize(buf);
        // Only texts with a digit can hold a date: bylines without one would crowd them out.
        if t.len() < MAX_DATE_TEXT_BYTES && t.bytes().any(|b| b.is_ascii_digit()) {
            // Sidebar-flagged ones ("widget" page builders, "post-sidebar" meta columns) are
            // a last resort: real sidebars list other posts' dates.
            if in_zone(dom, i, F_SIDEBAR) {
                if m.sidebar_date_texts.len() < MAX_SIDEBAR_DATE_TEXTS {
                    m.sidebar_date_texts.push(t);
                }
            } else {
                m.date_texts.push(t);
            }
        }
    }
}

/// A text node that is a date alone or with a short label, outside comments, related lists,
/// sidebars (their dates are other texts'), navigation and footers ("Site last updated: …"): kept
/// for [`dates`]' last resort.
pub(super) fn read_standalone_date(dom: &Dom<'_>, i: usize, m: &mut Meta) {
    if m.standalone_date_texts.len() >= MAX_STANDALONE_DATE_TEXTS {
        return;
    }
    let t = dom.nodes[i].text.trim();
    if t.is_empty()
        || t.len() > MAX_STANDALONE_DATE_BYTES
        || !t.bytes().any(|b| b.is_ascii_digit())
        || t.split_whitespace().count() > MAX_STANDALONE_DATE_WORDS
        || dom.nodes[dom.nodes[i].parent as usize].tag.is_junk()
        || in_zone(dom, i, F_COMMENT | F_RELATED | F_SIDEBAR | F_NAV | F_FOOTER)
    {
        return;
    }
    if date_in_text(t).is_some() {
        m.standalone_date_texts.push(normalize(t));
    }
}

/// Short texts right after the first `<h1>` (then right before it): where a page shows its date.
pub(super) fn near_title(dom: &Dom<'_>, h1: usize, out: &mut Vec<String>) {
    let n = dom.nodes.len();
    let after = dom.nodes[h1].end as usize;
    let mut j = after;
    let mut seen = 0;
    while j < n && seen < AFTER_TITLE_NODES && out.len() < AFTER_TITLE_TEXTS {
        let node = &dom.nodes[j];
        if node.tag == Tag::Text {
            let t = node.text.trim();
            if !t.is_empty()
                && t.len() < MAX_NEAR_TITLE_TEXT_BYTES
                && t.bytes().any(|b| b.is_ascii_digit())
            {
                out.push(normalize(t));
            }
        } else if node.tag.is_junk() {
            j = node.end as usize;
            continue;
        }
        j += 1;
        seen += 1;
    }
    let mut j = h1;
    let mut seen = 0;
    while j > 0 && seen < BEFORE_TITLE_NODES && out.len() < NEAR_TITLE_TEXTS {
        j -= 1;
        seen += 1;
        let node = &dom.nodes[j];
        if node.tag == Tag::Text && !dom.nodes[node.parent as usize].tag.is_junk() {
            let t = node.text.trim();
            if !t.is_empty()
                && t.len() < MAX_NEAR_TITLE_TEXT_BYTES
                && t.bytes().any(|b| b.is_ascii_digit())
            {
                out.push(normalize(t));
            }
        }
    }
}

static URL_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"/((?:19|20)\d{2})[/-](0?[1-9]|1[0-2])[/-](0?[1-9]|[12]\d|3[01])(?:/|\b)")
        .expect("static regex")
});
pub(super) static TEXT_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)((?:19|20)\d{2}-\d{1,2}-\d{1,2}|(?:19|20)\d{2}[./]\d{1,2}[./]\d{1,2}\b)",
        r"|((?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{2})",
        r"|(\d{1,2}(?:st|nd|rd|th)?\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?,?\s+(?:19|20)\d{2})",
        r"|(\d{1,2}[./]\d{1,2}[./](?:19|20)\d{2}|\d{1,2}-\d{1,2}-(?:19|20)\d{2}\b)"
    ))
    .expect("static regex")
});

/// Month names (and common short forms) in the languages we see most: de, fr, es, it, pt, nl,
/// sv/da/no, pl, tr, id, ru, uk. English is handled by `TEXT_DATE`.
const MONTHS: &[(&str, u32)] = &[
    ("januar", 1),
    ("jänner", 1),
    ("janvier", 1),
    ("enero", 1),
    ("gennaio", 1),
    ("janeiro", 1),
    ("januari", 1),
    ("stycznia", 1),
    ("ocak", 1),
    ("января", 1),
    ("січня", 1),
    ("janv", 1),
    ("februar", 2),
    ("février", 2),
    ("fevrier", 2),
    ("febrero", 2),
    ("febbraio", 2),
    ("fevereiro", 2),
    ("februari", 2),
    ("lutego", 2),
    ("şubat", 2),
    ("февраля", 2),
    ("лютого", 2),
    ("févr", 2),
    ("märz", 3),
    ("maerz", 3),
    ("mars", 3),
    ("marzo", 3),
    ("março", 3),
    ("maart", 3),
    ("marca", 3),
    ("mart", 3),
    ("maret", 3),
    ("марта", 3),
    ("березня", 3),
    ("april", 4),
    ("avril", 4),
    ("abril", 4),
    ("aprile", 4),
    ("kwietnia", 4),
    ("nisan", 4),
    ("апреля", 4),
    ("квітня", 4),
    ("mai", 5),
    ("mayo", 5),
    ("maggio", 5),
    ("maio", 5),
    ("mei", 5),
    ("maj", 5),
    ("maja", 5),
    ("mayıs", 5),
    ("мая", 5),
    ("травня", 5),
    ("juni", 6),
    ("juin", 6),
    ("junio", 6),
    ("giugno", 6),
    ("junho", 6),
    ("czerwca", 6),
    ("haziran", 6),
    ("июня", 6),
    ("червня", 6),
    ("juli", 7),
    ("juillet", 7),
    ("julio", 7),
    ("luglio", 7),
    ("julho", 7),
    ("lipca", 7),
    ("temmuz", 7),
    ("июля", 7),
    ("липня", 7),
    ("juil", 7),
    ("august", 8),
    ("août", 8),
    ("aout", 8),
    ("agosto", 8),
    ("augustus", 8),
    ("augusti", 8),
    ("sierpnia", 8),
    ("ağustos", 8),
    ("agustus", 8),
    ("августа", 8),
    ("серпня", 8),
    ("september", 9),
    ("septembre", 9),
    ("septiembre", 9),
    ("setiembre", 9),
    ("settembre", 9),
    ("setembro", 9),
    ("września", 9),
    ("eylül", 9),
    ("сентября", 9),
    ("вересня", 9),
    ("oktober", 10),
    ("octobre", 10),
    ("octubre", 10),
    ("ottobre", 10),
    ("outubro", 10),
    ("października", 10),
    ("ekim", 10),
    ("октября", 10),
    ("жовтня", 10),
    ("november", 11),
    ("novembre", 11),
    ("noviembre", 11),
    ("novembro", 11),
    ("listopada", 11),
    ("kasım", 11),
    ("ноября", 11),
    ("листопада", 11),
    ("dezember", 12),
    ("décembre", 12),
    ("decembre", 12),
    ("diciembre", 12),
    ("dicembre", 12),
    ("dezembro", 12),
    ("december", 12),
    ("grudnia", 12),
    ("aralık", 12),
    ("desember", 12),
    ("декабря", 12),
    ("грудня", 12),
    ("déc", 12),
];

static INTL_DMY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d{1,2})(?:\.|º|er)?(?:\s+(?:de\s+)?|-)(\p{L}+)\.?(?:,?\s+(?:de\s+)?|-)((?:19|20)\d{2})\b")
        .expect("static regex")
});
static INTL_MDY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\p{L}+)\.?\s+(\d{1,2}),?\s+((?:19|20)\d{2})\b").expect("static regex")
});

fn month_number(word: &str) -> Option<u32> {
    let w = word.to_lowercase();
    if let Some((_, m)) = MONTHS.iter().find(|(n, _)| *n == w) {
        return Some(*m);
    }
    // Abbreviations ("ago", "dez", "okt"): a prefix of 3+ letters that names one month only.
    if w.chars().count() < MIN_MONTH_ABBREV_CHARS {
        return None;
    }
    let mut found = None;
    for (n, m) in MONTHS {
        if n.starts_with(&w) {
            if found.is_some_and(|f| f != *m) {
                return None;
            }
            found = Some(*m);
        }
    }
    found
}

/// "3. März 2024", "12 de marzo de 2024", "1er août 2023", "5 мая 2021", "März 3, 2024".
fn date_in_text_intl(s: &str) -> Option<String> {
    if !s.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let (d, mo, y) = if let Some(c) = INTL_DMY
        .captures_iter(s)
        .find(|c| month_number(&c[2]).is_some())
    {
        (c[1].parse().ok()?, month_number(&c[2])?, c[3].parse().ok()?)
    } else {
        let c = INTL_MDY
            .captures_iter(s)
            .find(|c| month_number(&c[1]).is_some())?;
        (c[2].parse().ok()?, month_number(&c[1])?, c[3].parse().ok()?)
    };
    let date = NaiveDate::from_ymd_opt(y, mo, d)?;
    valid(date.format("%Y-%m-%d").to_string(), date)
}

static ORDINAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d)(?:st|nd|rd|th)\b").expect("static regex"));

/// Find a date inside visible text ("Published March 3, 2024 at 10:00").
pub fn date_in_text(s: &str) -> Option<String> {
    let Some(c) = TEXT_DATE.captures(s) else {
        return date_in_text_intl(s);
    };
    if let Some(m) = c.get(1) {
        // 2024-03-05, and the dotted or slashed forms of East Asian and Nordic pages (2024.03.05).
        let parts: Vec<&str> = m.as_str().split(['-', '.', '/']).collect();
        let d = NaiveDate::from_ymd_opt(
            parts[0].parse().ok()?,
            parts[1].parse().ok()?,
            parts[2].parse().ok()?,
        )?;
        return valid(d.format("%Y-%m-%d").to_string(), d);
    }
    if let Some(m) = c.get(2).or(c.get(3)) {
        // Drop ordinal suffixes after digits only ("3rd" -> "3"; "August" stays whole).
        let cleaned = ORDINAL
            .replace_all(m.as_str(), "$1")
            .replace(['.', ','], " ");
        let cleaned = cleaned
            .split_whitespace()
            .map(|w| {
                if w.eq_ignore_ascii_case("sept") {
                    "Sep"
                } else {
                    w
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        for f in ["%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y"] {
            if let Ok(d) = NaiveDate::parse_from_str(&cleaned, f) {
                return valid(d.format("%Y-%m-%d").to_string(), d);
            }
        }
        return None;
    }
    if let Some(m) = c.get(4) {
        let parts: Vec<u32> = m
            .as_str()
            .split(['.', '/', '-'])
            .filter_map(|x| x.parse().ok())
            .collect();
        if parts.len() != 3 {
            return None;
        }
        // Hyphens join day and month in either order ("11-29-2024" in US forums, "29-11-2024"
        // elsewhere): only an unambiguous one is read.
        if m.as_str().contains('-') && parts[0] <= 12 && parts[1] <= 12 && parts[0] != parts[1] {
            return None;
        }
        // Day first unless impossible (the common order outside the US); US order when the
        // first number cannot be a day-of-month ambiguity-free month.
        let (d, mo) = if parts[1] > 12 {
            (parts[1], parts[0])
        } else {
            (parts[0], parts[1])
        };
        let date = NaiveDate::from_ymd_opt(parts[2] as i32, mo, d)?;
        return valid(date.format("%Y-%m-%d").to_string(), date);
    }
    None
}

static ISO_IN_TEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"((?:19|20)\d{2})-(\d{2})-(\d{2})").expect("static regex"));

/// Normalise a date string to RFC 3339 (offset kept). Date-only values become `YYYY-MM-DD`.
pub fn normalize_date(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || s.len() > MAX_DATE_STRING_BYTES {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return valid(
            d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            d.date_naive(),
        );
    }
    let fixed = fix_offset(s);
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S %z",
        "%Y-%m-%d %H:%M%z",
        "%Y-%m-%dT%H:%M:%S%.f %z",
    ] {
        if let Ok(d) = DateTime::<FixedOffset>::parse_from_str(&fixed, f) {
            return valid(
                d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                d.date_naive(),
            );
        }
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return valid(
            d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            d.date_naive(),
        );
    }
    // Local times without offset: keep the date only (we do not invent a zone).
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            let _ = NaiveTime::MIN;
            return valid(d.date().format("%Y-%m-%d").to_string(), d.date());
        }
    }
    for f in [
        "%Y-%m-%d",
        "%Y/%m/%d",
        "%Y%m%d",
        "%d.%m.%Y",
        "%B %d, %Y",
        "%b %d, %Y",
        "%d %B %Y",
        "%d %b %Y",
        "%A, %B %d, %Y",
        "%a, %d %b %Y",
        "%b. %d, %Y",
        // Citation metadata (PubMed, Highwire): "2023 Jan 7".
        "%Y %b %d",
        "%Y %B %d",
    ] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return valid(d.format("%Y-%m-%d").to_string(), d);
        }
    }
    // Last resort: an ISO date at the start of the string.
    if let Some(c) = ISO_IN_TEXT.captures(s) {
        if c.get(0).is_some_and(|m| m.start() == 0) {
            let d = NaiveDate::from_ymd_opt(
                c[1].parse().ok()?,
                c[2].parse().ok()?,
                c[3].parse().ok()?,
            )?;
            return valid(d.format("%Y-%m-%d").to_string(), d);
        }
    }
    None
}

/// "+0100" offsets and "Z" are fine for chrono's %z only as "+01:00"/"+0100"; map "Z" and "UTC".
fn fix_offset(s: &str) -> String {
    let mut t = s.to_string();
    if let Some(x) = t.strip_suffix('Z') {
        t = format!("{x}+00:00");
    } else if let Some(x) = t.strip_suffix(" UTC").or(t.strip_suffix(" GMT")) {
        t = format!("{x} +0000");
    }
    t
}

fn valid(out: String, d: NaiveDate) -> Option<String> {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    if d.year() < MIN_YEAR || d > today + chrono::Duration::days(MAX_FUTURE_DAYS) {
        return None;
    }
    Some(out)
}

/// `<meta>` keys that name the publication date, in order of trust.
const PUBLISHED_KEYS: &[&str] = &[
    "article:published_time",
    "article:published",
    "og:published_time",
    "datepublished",
    "published_time",
    "publishdate",
    "publish-date",
    "publish_date",
    "pubdate",
    "date",
    "dc.date.issued",
    "dc.date",
    "dcterms.date",
    "dcterms.issued",
    "dcterms.created",
    "dc.date.created",
    "sailthru.date",
    "parsely-pub-date",
    "article.published",
    "article_date_original",
    "original-publish-date",
    "cxenseparse:recs:publishtime",
    "date_published",
    "citation_publication_date",
    "citation_date",
    "release_date",
    "og:article:published_time",
    "datecreated",
    "created",
];

/// `<meta>` keys that name the modification date, in order of trust.
const MODIFIED_KEYS: &[&str] = &[
    "article:modified_time",
    "og:updated_time",
    "datemodified",
    "modified_time",
    "dcterms.modified",
    "last-modified",
    "lastmod",
    "article.updated",
    "og:article:modified_time",
];

/// The page's (published, modified) dates. Published: JSON-LD (checked against the meta tags and
/// the visible dates), then known meta tags, other date-like meta tags, `<time datetime>`, visible
/// date texts, texts by the headline, the URL, the modification date, standalone date texts
/// anywhere (not on a `listing`: there a lone date is an item's), sidebar dates.
pub fn dates(m: &Meta, url: Option<&Url>, listing: bool) -> (Option<String>, Option<String>) {
    let modified = modified_date(m);
    let published = ld_published(m)
        .or_else(|| first_meta_date(m, PUBLISHED_KEYS))
        .or_else(|| loose_meta_date(m))
        .or_else(|| time_element_date(m))
        .or_else(|| m.date_texts.iter().find_map(|t| date_in_text(t)))
        .or_else(|| m.near_title_texts.iter().find_map(|t| date_in_text(t)))
        .or_else(|| url.and_then(url_date))
        // As htmldate does, the modification date is the reserve for the publication date.
        .or_else(|| modified.clone())
        .or_else(|| {
            if listing {
                return None;
            }
            m.standalone_date_texts.iter().find_map(|t| date_in_text(t))
        })
        .or_else(|| m.sidebar_date_texts.iter().find_map(|t| date_in_text(t)));
    (
        shown_earlier(m, shown_over_hidden(m, published, modified.as_deref())),
        modified,
    )
}

/// A page whose metadata dates it days later than the day its dateline (or the text by its
/// headline) shows, and that does not show the metadata's day, was republished: the day it shows
/// first is its publication day.
fn shown_earlier(m: &Meta, published: Option<String>) -> Option<String> {
    let p = published?;
    let Some(pday) = day(&p) else {
        return Some(p);
    };
    let shown = shown_days(m);
    if shown.iter().any(|s| s == pday) {
        return Some(p);
    }
    let days = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
    match shown.into_iter().next() {
        Some(s)
            if days(&s)
                .zip(days(pday))
                .is_some_and(|(a, b)| (b - a).num_days() >= MIN_SHOWN_EARLIER_DAYS) =>
        {
            Some(s)
        }
        _ => Some(p),
    }
}

/// A page that shows its modification day ("Updated October 8, 2025") by the headline or in its
/// dateline, and not the publication day its metadata holds, dates itself by what it shows.
fn shown_over_hidden(
    m: &Meta,
    published: Option<String>,
    modified: Option<&str>,
) -> Option<String> {
    let (Some(p), Some(md)) = (published.as_deref(), modified) else {
        return published;
    };
    if day(p) == day(md) {
        return published;
    }
    let texts = || m.date_texts.iter().chain(&m.near_title_texts);
    let shown = shown_days(m);
    let is_shown = |d: &str| shown.iter().any(|s| Some(s.as_str()) == day(d));
    // Shown as an update: the text that holds the day says so.
    let shown_as_update = texts().any(|t| {
        let l = t.to_lowercase();
        (l.contains("updat") || l.contains("modified")) && date_in_text(t).as_deref() == day(md)
    });
    if shown_as_update && !is_shown(p) {
        return Some(md.to_string());
    }
    published
}

/// The days the page shows in its datelines and by its headline, in that order.
fn shown_days(m: &Meta) -> Vec<String> {
    m.date_texts
        .iter()
        .chain(&m.near_title_texts)
        .filter_map(|t| date_in_text(t))
        .collect()
}

/// The day part (`YYYY-MM-DD`) of a normalised date.
fn day(d: &str) -> Option<&str> {
    d.get(..DAY_LEN)
}

/// JSON-LD's publication date (an article's, else a question's). When the page's publish meta
/// tags disagree with it, the one whose day the page shows (and the other's it does not) wins.
fn ld_published(m: &Meta) -> Option<String> {
    let ld =
        m.ld.published
            .as_deref()
            .or(m.ld.question_published.as_deref())
            .and_then(normalize_date)?;
    let metas: Vec<String> = PUBLISHED_KEYS
        .iter()
        .filter_map(|k| m.get(&[k]).and_then(normalize_date))
        .filter(|d| day(d) != day(&ld))
        .collect();
    if metas.is_empty() {
        return Some(ld);
    }
    let shown = shown_days(m);
    if shown.iter().any(|s| Some(s.as_str()) == day(&ld)) {
        return Some(ld);
    }
    metas
        .into_iter()
        .find(|d| shown.iter().any(|s| Some(s.as_str()) == day(d)))
        .or(Some(ld))
}

/// The first of `keys` whose meta tag holds a date.
fn first_meta_date(m: &Meta, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| m.get(&[k]).and_then(normalize_date))
}

/// Other site-specific meta names: "published", "w-published-date", "article_date"…
fn loose_meta_date(m: &Meta) -> Option<String> {
    m.metas
        .iter()
        .filter(|(k, _)| {
            (k.contains("publish") && !k.contains("publisher"))
                || k.ends_with("date")
                || k.ends_with("_date")
        })
        .find_map(|(_, v)| normalize_date(v).or_else(|| date_in_text(v)))
}

/// A `<time datetime>` (or microdata) date. The first one can be a "latest reply" box: the one
/// whose day is shown right by the h1 comes first.
fn time_element_date(m: &Meta) -> Option<String> {
    let times: Vec<String> = m
        .time_dates
        .iter()
        .filter_map(|t| normalize_date(t).or_else(|| date_in_text(t)))
        .collect();
    let shown = m.near_title_texts.iter().find_map(|t| date_in_text(t));
    shown
        .and_then(|s| times.iter().find(|t| day(t) == Some(s.as_str())))
        .or(times.first())
        .cloned()
}

/// A `/2024/03/05/` date in the URL's path.
fn url_date(u: &Url) -> Option<String> {
    let c = URL_DATE.captures(u.path())?;
    let d = NaiveDate::from_ymd_opt(
        c[1].parse().unwrap_or(0),
        c[2].parse().unwrap_or(0),
        c[3].parse().unwrap_or(0),
    )?;
    valid(d.format("%Y-%m-%d").to_string(), d)
}

/// JSON-LD's modification date, else the first modified meta tag.
fn modified_date(m: &Meta) -> Option<String> {
    m.ld.modified
        .as_deref()
        .and_then(normalize_date)
        .or_else(|| first_meta_date(m, MODIFIED_KEYS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_update_day_wins_over_hidden_publication_day() {
        let mut m = Meta {
            date_texts: vec!["Updated October 8, 2025".into()],
            ..Meta::default()
        };
        m.ld.published = Some("2024-11-22T22:28:12Z".into());
        m.ld.modified = Some("2025-10-08T21:33:14Z".into());
        assert_eq!(
            dates(&m, None, false).0.as_deref(),
            Some("2025-10-08T21:33:14Z")
        );
        // The publication day is shown too: it stays.
        m.date_texts.push("Published November 22, 2024".into());
        assert_eq!(
            dates(&m, None, false).0.as_deref(),
            Some("2024-11-22T22:28:12Z")
        );
        // A modification day the page does not show as an update changes nothing.
        m.date_texts = vec!["October 8, 2025".into()];
        assert_eq!(
            dates(&m, None, false).0.as_deref(),
            Some("2024-11-22T22:28:12Z")
        );
    }

    #[test]
    fn a_day_shown_days_before_the_metadata_day_is_the_publication_day() {
        let mut m = Meta {
            date_texts: vec!["By Shauna Mitchell".into(), "August 25, 2024".into()],
            ..Meta::default()
        };
        m.ld.published = Some("2025-06-24T10:00:00Z".into());
        // Republished: the page shows its first day, not the metadata's.
        assert_eq!(dates(&m, None, false).0.as_deref(), Some("2024-08-25"));
        // The metadata's day is shown too: it stays.
        m.near_title_texts.push("Updated June 24, 2025".into());
        assert_eq!(
            dates(&m, None, false).0.as_deref(),
            Some("2025-06-24T10:00:00Z")
        );
        // One day apart is a time zone's doing, not a republication; a later shown day is no
        // publication either.
        for shown in ["June 23, 2025", "July 1, 2025"] {
            m.near_title_texts.clear();
            m.date_texts = vec![shown.into()];
            assert_eq!(
                dates(&m, None, false).0.as_deref(),
                Some("2025-06-24T10:00:00Z"),
                "{shown}"
            );
        }
    }

    #[test]
    fn dates_normalise() {
        assert_eq!(
            normalize_date("2019-05-03T10:00:00+02:00").as_deref(),
            Some("2019-05-03T10:00:00+02:00")
        );
        assert_eq!(
            normalize_date("2019-05-03T10:00:00Z").as_deref(),
            Some("2019-05-03T10:00:00Z")
        );
        assert_eq!(
            normalize_date("2019-05-03T10:00:00.000+0200").as_deref(),
            Some("2019-05-03T10:00:00+02:00")
        );
        assert_eq!(normalize_date("2019-05-03").as_deref(), Some("2019-05-03"));
        assert_eq!(
            normalize_date("Fri, 03 May 2019 10:00:00 GMT").as_deref(),
            Some("2019-05-03T10:00:00Z")
        );
        assert_eq!(normalize_date("May 3, 2019").as_deref(), Some("2019-05-03"));
        assert_eq!(normalize_date("garbage"), None);
        assert_eq!(
            date_in_text("Published March 3rd, 2024 at 10:00").as_deref(),
            Some("2024-03-03")
        );
        assert_eq!(
            date_in_text("Updated 14 Nov 2023").as_deref(),
            Some("2023-11-14")
        );
        assert_eq!(date_in_text("13/11/2025").as_deref(), Some("2025-11-13"));
        // Month names that end in "st"/"th" letters must survive ordinal removal.
        assert_eq!(
            date_in_text("August 28, 2025 • 5 min read").as_deref(),
            Some("2025-08-28")
        );
        assert_eq!(
            date_in_text("Posted on 1st August 2024").as_deref(),
            Some("2024-08-01")
        );
        assert_eq!(
            date_in_text("Veröffentlicht am 3. März 2024").as_deref(),
            Some("2024-03-03")
        );
        assert_eq!(
            date_in_text("12 de marzo de 2024").as_deref(),
            Some("2024-03-12")
        );
        assert_eq!(date_in_text("1er août 2023").as_deref(), Some("2023-08-01"));
        assert_eq!(date_in_text("5 мая 2021").as_deref(), Some("2021-05-05"));
        assert_eq!(
            date_in_text("7 Ekim 2022 tarihinde").as_deref(),
            Some("2022-10-07")
        );
        assert_eq!(date_in_text("vor 3 Tagen"), None);
        // Dotted year-first dates, unambiguous hyphenated month-day-year, citation dates.
        assert_eq!(
            date_in_text("Essay - Published: 2025.12.17 |").as_deref(),
            Some("2025-12-17")
        );
        assert_eq!(
            date_in_text("11-29-2024, 09:03 AM").as_deref(),
            Some("2024-11-29")
        );
        assert_eq!(date_in_text("03-09-2026"), None);
        assert_eq!(normalize_date("2023 Jan 7").as_deref(), Some("2023-01-07"));
        // Abbreviated month names of other languages, hyphenated.
        assert_eq!(
            date_in_text("By: FlowGuard EMEA on 04-ago-2021 5:11:10").as_deref(),
            Some("2021-08-04")
        );
        assert_eq!(date_in_text("3 dez. 2024").as_deref(), Some("2024-12-03"));
    }
}
