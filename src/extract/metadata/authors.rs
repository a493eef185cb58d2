//! Authors: what the DOM shows (byline elements, "By" labels, author profile links, microdata
//! authors), cleaning raw strings into names, and the choice between the sources (JSON-LD, meta
//! tags, visible bylines).

use super::dates::{date_in_text, TEXT_DATE};
use super::entities::html_unescape;
use super::jsonld::is_article_type;
use super::title::{site_name, squash};
use super::{in_comment, in_page_header, in_zone, Meta};
use crate::extract::dom::*;
use crate::extract::text::{char_len, fold, normalize};
use regex::Regex;
use scraper::node::Element;
use std::sync::LazyLock;

/// "By" label texts kept per page: the first few are the story's, later ones are teasers'.
const MAX_TEXT_BYLINES: usize = 4;
/// A text node longer than this (bytes) is a sentence, not a "By …" label.
const MAX_BYLINE_TEXT_BYTES: usize = 80;
/// Byline elements kept per page (rel/itemprop/class author): later ones sit in teasers.
const MAX_BYLINES: usize = 8;
/// A byline element spanning more nodes than this is an author box or a whole card, not a byline.
const MAX_BYLINE_NODES: usize = 60;
/// Author profile links kept per page.
const MAX_AUTHOR_LINKS: usize = 4;
/// A profile link spanning more nodes than this wraps a card (avatar, bio), not a name.
const MAX_AUTHOR_LINK_NODES: usize = 20;
/// How far up the tree the enclosing microdata item is looked for.
const ITEM_MAX_DEPTH: usize = 60;
/// How many nodes inside a microdata author are searched for its `itemprop="name"`.
const MICRODATA_SCAN_NODES: usize = 200;
/// A microdata author without a name property is read as text only when it is this small…
const MICRODATA_TEXT_MAX_NODES: usize = 20;
/// …and its text, like any single byline read whole, is at most this long (chars).
const MAX_BYLINE_CHARS: u32 = 60;
/// Text segments kept per byline element.
const MAX_SEGMENTS: usize = 12;
/// A "By" / "Written by" label on its own is at most this long (bytes).
const MAX_LABEL_BYTES: usize = 24;
/// Nodes after a label searched for the name it introduces…
const LABEL_LOOKAHEAD_NODES: usize = 12;
/// …stopping this many nodes past the label's parent.
const LABEL_PAST_PARENT_NODES: usize = 8;
/// "By Jane Doe" in one text node: the name has 2 to 4 capitalised words.
const INLINE_NAME_WORDS: std::ops::RangeInclusive<usize> = 2..=4;
/// A name is 2 to 50 chars…
const NAME_CHARS: std::ops::RangeInclusive<u32> = 2..=50;
/// …of at most 6 words…
const MAX_NAME_WORDS: usize = 6;
/// …with at most 3 digits unless it is a one-word handle ("E-RYT 200" yes, "March 3 2024" no).
const MAX_NAME_DIGITS: usize = 3;
/// A trailing number is cut only after a name of at least this many words.
const MIN_WORDS_BEFORE_COUNT: usize = 2;
/// An all-caps name with at least this many letters is a masthead or account ("NB", "USA TODAY").
const MIN_CAPS_BRAND_LETTERS: usize = 2;
/// A person's name, as told from an account or brand name: 2 to 4 words.
const PERSON_NAME_WORDS: std::ops::RangeInclusive<usize> = 2..=4;
/// Names kept from one source: longer lists are credits or tag clouds.
const MAX_NAMES: usize = 10;
/// A byline read whole must give names of at most 4 words each (else it held a role or a title).
const MAX_WHOLE_BYLINE_NAME_WORDS: usize = 4;

/// A text node that is a "By" label (or "By Jane Doe"): kept in [`Meta::text_bylines`].
pub(super) fn read_text_byline(dom: &Dom<'_>, i: usize, m: &mut Meta) {
    if m.text_bylines.len() < MAX_TEXT_BYLINES && dom.nodes[i].text.len() < MAX_BYLINE_TEXT_BYTES {
        if let Some(segs) = text_byline(dom, i) {
            m.text_bylines.push(segs);
        }
    }
}

/// Visible bylines: rel=author links, itemprop=author, byline/author classes; the microdata
/// author of an article item; links to author profiles.
pub(super) fn read_byline(dom: &Dom<'_>, i: usize, e: &Element, m: &mut Meta) {
    let node = &dom.nodes[i];
    if m.bylines.len() >= MAX_BYLINES || matches!(node.tag, Tag::Meta | Tag::Link | Tag::Script) {
        return;
    }
    let rel_author =
        attr(e, "rel").is_some_and(|r| r.split_ascii_whitespace().any(|x| x == "author"));
    let ip_author = attr(e, "itemprop") == Some("author");
    let cls_author = node.flags & F_BYLINE != 0
        && attr(e, "class").or(attr(e, "id")).is_some_and(|c| {
            let l = c.to_ascii_lowercase();
            l.contains("author") || l.contains("byline")
        });
    if ip_author
        && m.micro_author.is_none()
        && in_article_item(dom, i)
        && !in_zone(dom, i, F_COMMENT | F_RELATED)
    {
        m.micro_author = microdata_name(dom, i);
    }
    if rel_author || ip_author || cls_author {
        let a = node.end as usize - i;
        if a < MAX_BYLINE_NODES && !in_comment(dom, i) {
            let segs = segments(dom, i);
            if !segs.is_empty() {
                m.bylines.push(segs);
            }
        }
    } else if node.tag == Tag::A
        && m.author_links.len() < MAX_AUTHOR_LINKS
        && e.attr("href").is_some_and(is_author_href)
        && node.end as usize - i < MAX_AUTHOR_LINK_NODES
        && !in_zone(dom, i, F_COMMENT | F_SIDEBAR | F_RELATED | F_NAV | F_FOOTER)
        && !in_page_header(dom, i)
    {
        let segs = segments(dom, i);
        if !segs.is_empty() {
            m.author_links.push(segs);
        }
    }
}

/// Is the nearest microdata item around `i` (an ancestor with `itemscope`) an article, a forum
/// post or a question?
fn in_article_item(dom: &Dom<'_>, i: usize) -> bool {
    let n = dom.nodes.len();
    let mut j = dom.nodes[i].parent as usize;
    let mut steps = 0;
    while j < n && steps < ITEM_MAX_DEPTH {
        if let Some(e) = dom.nodes[j].elem {
            if e.attr("itemscope").is_some() {
                return e.attr("itemtype").is_some_and(|t| {
                    let t = t.trim();
                    is_article_type(t) || t.rsplit('/').next() == Some("Question")
                });
            }
        }
        j = dom.nodes[j].parent as usize;
        steps += 1;
    }
    false
}

/// The `itemprop="name"` inside a microdata person (a `<meta content>` or an element's text),
/// else the element's own short text.
fn microdata_name(dom: &Dom<'_>, i: usize) -> Option<String> {
    let end = (dom.nodes[i].end as usize).min(i + MICRODATA_SCAN_NODES);
    let mut buf = String::new();
    for j in i + 1..end {
        let Some(e) = dom.nodes[j].elem else { continue };
        if e.attr("itemprop") != Some("name") {
            continue;
        }
        let t = match e.attr("content") {
            Some(c) => normalize(c),
            None => {
                buf.clear();
                dom.text_of(j, &mut buf);
                normalize(&buf)
            }
        };
        if !t.is_empty() {
            return Some(t);
        }
    }
    if dom.nodes[i].end as usize - i < MICRODATA_TEXT_MAX_NODES {
        buf.clear();
        dom.text_of(i, &mut buf);
        let t = normalize(&buf);
        return (!t.is_empty() && char_len(&t) <= MAX_BYLINE_CHARS).then_some(t);
    }
    None
}

/// The text of a subtree as separate segments, one per non-empty text node (plus
/// `<meta itemprop="name" content>` inside microdata authors). At most 12.
fn segments(dom: &Dom<'_>, i: usize) -> Vec<String> {
    let end = dom.nodes[i].end as usize;
    let mut out = Vec::new();
    let mut j = i + 1;
    while j < end && out.len() < MAX_SEGMENTS {
        let n = &dom.nodes[j];
        if n.tag == Tag::Text {
            let t = normalize(n.text);
            if !t.is_empty() {
                out.push(t);
            }
        } else if n.tag == Tag::Meta {
            if let Some(e) = n.elem {
                if e.attr("itemprop") == Some("name") {
                    if let Some(c) = e.attr("content") {
                        let t = normalize(c);
                        if !t.is_empty() {
                            out.push(t);
                        }
                    }
                }
            }
        } else if n.tag.is_junk() {
            j = n.end as usize;
            continue;
        }
        j += 1;
    }
    out
}

/// A path that names an author or member profile: `/author/jane-doe`, `/members/jd.12/`, `/u/jd`.
fn is_author_href(href: &str) -> bool {
    let path = href
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let mut parts = path.split('/').skip(usize::from(!href.starts_with('/')));
    while let Some(p) = parts.next() {
        let p = p.to_ascii_lowercase();
        if matches!(
            p.as_str(),
            "author"
                | "authors"
                | "autor"
                | "autoren"
                | "auteur"
                | "auteurs"
                | "autore"
                | "writer"
                | "writers"
                | "members"
                | "member"
                | "u"
                | "user"
                | "users"
                | "profile"
                | "profiles"
                | "contributor"
                | "contributors"
        ) {
            return parts.next().is_some_and(|slug| !slug.is_empty());
        }
    }
    false
}

static BY_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:written\s+by|posted\s+by|published\s+by|reported\s+by|story\s+by|words\s+by|text\s+by|article\s+by|recipe\s+by|authored\s+by|about\s+the\s+authors?|author\s+spotlight|meet\s+the\s+authors?|by|via|author|authors|the\s+author|von|par|por|di|door|av|af|autor|autorin|auteur|autore|автор|作者)\s*[:：]?$").expect("static regex")
});

/// A short visible "By" / "Written by" label: the segments that follow it (up to 12 nodes on),
/// or a text node that is itself "By Jane Doe" with a capitalised name.
fn text_byline(dom: &Dom<'_>, i: usize) -> Option<Vec<String>> {
    let t = dom.nodes[i].text.trim();
    let p = dom.nodes[i].parent as usize;
    if p >= dom.nodes.len() || dom.nodes[p].tag.is_junk() {
        return None;
    }
    let first = t.chars().next()?;
    if !first.is_alphabetic() || t.len() < 2 {
        return None;
    }
    if t.len() <= MAX_LABEL_BYTES && BY_LABEL.is_match(t) {
        let stop = (i + LABEL_LOOKAHEAD_NODES).min(dom.nodes.len());
        let mut out = Vec::new();
        for j in i + 1..stop {
            let n = &dom.nodes[j];
            if n.tag == Tag::Text {
                let s = normalize(n.text);
                if !s.is_empty() {
                    out.push(s);
                    break;
                }
            } else if n.tag.is_junk()
                || n.tag.is_heading()
                || (p < dom.nodes.len() && j >= dom.nodes[p].end as usize + LABEL_PAST_PARENT_NODES)
            {
                break;
            }
        }
        return (!out.is_empty() && !in_comment(dom, i)).then_some(out);
    }
    let rest = BY_PREFIX.find(t).map(|m| &t[m.end()..])?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let capitalised = INLINE_NAME_WORDS.contains(&words.len())
        && words
            .iter()
            .all(|w| w.chars().next().is_some_and(|c| c.is_uppercase()));
    (capitalised && !in_comment(dom, i)).then(|| vec![t.to_string()])
}

static BY_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:(?:view\s+all\s+|more\s+)?(?:posts|articles|stories)\s+by|read\s+more\s+(?:about|from|by)|learn\s+more\s+about|written\s+by|posted\s+by|published\s+by|reported\s+by|story\s+by|words\s+by|text\s+by|article\s+by|recipe\s+by|by|from|author|autor|auteur|von|par|por|di|door|av|af|автор|作者)\s*[:：]?\s+").expect("static regex")
});
static SPLIT_NAMES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\s*(?:,|;|&|\band\b|\bund\b|\bet\b|\by\b|\be\b|\|| و )\s*")
        .expect("static regex")
});
/// Strings that are not a byline name: links, handles, dates and reading times.
static NOT_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(https?://|www\.|@|\.com\b|\.org\b|\.net\b|\bupdated\b|\bpublished\b|\bminutes?\b|\bmin\b|\bread\b)").expect("static regex")
});

/// Interface texts that sit in byline and author-box markup but name nobody: account links, share
/// buttons, social networks, forum role badges.
static UI_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:sign\s*in|sign\s*up|sign\s*out|log\s*in|log\s*out|register|subscribe(?:\s+now)?|my\s+account|account|profile|e-?mail|share|follow(?:\s+us)?|print|menu|search|home|comments?|reply|topic\s+author|sponsored|advertisement|promoted|partner\s+content|original\s+poster|op|facebook|twitter|instagram|linkedin|youtube|pinterest|tiktok|whatsapp|reddit|rss)$").expect("static regex")
});
/// A date without a year ("Jun 2", "March 14th"): a dateline fragment, not a name.
static YEARLESS_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?$").expect("static regex")
});
/// A name followed by a count ("Jane Doe 651": a post or follower counter beside a forum name).
static TRAILING_COUNT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\D+?)\s+\d+$").expect("static regex"));

static TIME_OF_DAY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d{1,2}:\d{2}\b").expect("static regex"));

fn looks_like_name(name: &str) -> bool {
    let chars = char_len(name);
    if !NAME_CHARS.contains(&chars) || NOT_NAME.is_match(name) {
        return false;
    }
    if !name.chars().next().is_some_and(char::is_alphanumeric)
        || BY_LABEL.is_match(name)
        || UI_TEXT.is_match(name)
        || YEARLESS_DATE.is_match(name)
    {
        return false;
    }
    // A label whose name part is elsewhere: "Authored by", "Reviewed By", "Photos by".
    if name
        .rsplit(char::is_whitespace)
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("by"))
    {
        return false;
    }
    // A few digits are fine ("98 Buck Social", "E-RYT 200"), and any number of them in a one-word
    // handle ("user3080392"); a date, a time or a count is not.
    let digits = name.chars().filter(char::is_ascii_digit).count();
    let handle = !name.contains(char::is_whitespace);
    if !name.chars().any(char::is_alphabetic)
        || (digits > MAX_NAME_DIGITS && !handle)
        || (digits > 0 && (date_in_text(name).is_some() || TIME_OF_DAY.is_match(name)))
    {
        return false;
    }
    name.split_whitespace().count() <= MAX_NAME_WORDS
}

/// "Jane Doe 651" -> "Jane Doe": a trailing count after a name of at least two words (a one-word
/// head keeps its number: "E-RYT 200", "Jun 2" are read whole).
fn without_count(name: &str) -> &str {
    match TRAILING_COUNT.captures(name).and_then(|c| c.get(1)) {
        Some(head) if head.as_str().split_whitespace().count() >= MIN_WORDS_BEFORE_COUNT => {
            head.as_str().trim()
        }
        _ => name,
    }
}

pub(super) fn clean_authors(raw: &[String], site: Option<&str>) -> Vec<String> {
    let _ = site;
    let mut out: Vec<String> = Vec::new();
    for r in raw {
        let r = html_unescape(r);
        let r = r.trim();
        if r.starts_with("http") {
            // article:author is often a profile URL, not a name.
            continue;
        }
        let r = TEXT_DATE.replace_all(r, " ");
        let r = BY_PREFIX.replace(r.trim(), "");
        // Cut "for Site", "| Site", " - Role" tails.
        let mut r = r.to_string();
        for cut in [
            " for ",
            " on behalf of",
            " | ",
            " - ",
            " – ",
            " — ",
            " · ",
            " • ",
            "\n",
        ] {
            if let Some(p) = r.find(cut) {
                r.truncate(p);
            }
        }
        for part in SPLIT_NAMES.split(&r) {
            let name = part
                .trim()
                .trim_matches(|c: char| !c.is_alphanumeric() && c != '.' && c != '\'' && c != ')')
                .trim();
            let name = without_count(name);
            if !looks_like_name(name) {
                continue;
            }
            if !out.iter().any(|o| fold(o) == fold(name)) {
                out.push(name.to_string());
            }
        }
        if out.len() >= MAX_NAMES {
            break;
        }
    }
    out
}

/// Names from one visible byline: its whole text when short ("By Jane Doe and John Smith"),
/// else the first segment that is a name (skipping "Written by" labels, dates, roles).
fn byline_names(segs: &[String]) -> Vec<String> {
    // The whole text only when the segments are one line or joined by connectors ("Jane Doe",
    // " and ", "John Smith"); separate blocks ("Jane Doe", "Senior Mason") are read one by one.
    let connector = |s: &String| {
        let t = s.trim();
        t.is_empty()
            || SPLIT_NAMES
                .find(t)
                .is_some_and(|m| m.start() == 0 && m.end() == t.len())
    };
    let joined = segs.len() == 1
        || segs.iter().skip(1).any(connector)
        || segs.first().is_some_and(|s| BY_LABEL.is_match(s.trim()));
    let whole = segs.join(" ");
    if joined && char_len(&whole) <= MAX_BYLINE_CHARS {
        let a = clean_authors(std::slice::from_ref(&whole), None);
        if !a.is_empty()
            && a.iter()
                .all(|n| n.split_whitespace().count() <= MAX_WHOLE_BYLINE_NAME_WORDS)
        {
            return a;
        }
    }
    // "Post", "by", "galitsyn": the name is what the label introduces.
    for (k, s) in segs.iter().enumerate() {
        if let (true, Some(next)) = (BY_LABEL.is_match(s.trim()), segs.get(k + 1)) {
            let a = clean_authors(std::slice::from_ref(next), None);
            if !a.is_empty() {
                return a;
            }
        }
    }
    for s in segs {
        // A segment ending in a colon labels what follows ("Connect with Ray via:").
        if BY_LABEL.is_match(s) || char_len(s) > MAX_BYLINE_CHARS || s.trim_end().ends_with(':') {
            continue;
        }
        let a = clean_authors(std::slice::from_ref(s), None);
        if !a.is_empty() {
            return a;
        }
    }
    vec![]
}

/// The page's authors: the first source (in the order below) that names anyone. A source that
/// names only an account or brand (the site, its publisher, a JSON-LD Organization, an all-caps
/// name: "USA TODAY", "Cleveland Clinic") gives way to a person named elsewhere on the page: a
/// visible byline element that names someone else, else a "By" label or profile link that names
/// a person.
pub fn authors(m: &Meta) -> Vec<String> {
    let a = authors_from(m);
    let owners: Vec<String> = [site_name(m), m.ld.publisher.clone()]
        .into_iter()
        .flatten()
        .chain(m.ld.org_authors.iter().cloned())
        .map(|s| squash(&s))
        .filter(|s| !s.is_empty())
        .collect();
    let brand = |n: &String| owners.contains(&squash(n)) || is_caps_brand(n);
    if a.is_empty() || !a.iter().all(brand) {
        return a;
    }
    for segs in &m.bylines {
        let b = byline_names(segs);
        if b.is_empty() {
            continue;
        }
        if !b.iter().all(brand) {
            return b;
        }
        // The byline names the brand, then maybe the person ("Acme Beds", "Reviewed by", "Jane
        // Doe"): read it again without the brand.
        let rest: Vec<String> = segs
            .iter()
            .filter(|s| !owners.contains(&squash(s)))
            .cloned()
            .collect();
        let b = byline_names(&rest);
        if !b.is_empty() && !b.iter().all(brand) {
            return b;
        }
        break;
    }
    // A JSON-LD person is the page's own word (a personal site is named after its author): only
    // an account or brand named elsewhere gives way to a "By" label or profile link.
    if !clean_authors(&m.ld.authors, None).is_empty() {
        return a;
    }
    for segs in m.text_bylines.iter().chain(&m.author_links) {
        let b = byline_names(segs);
        if !b.is_empty() && b.iter().all(|n| !brand(n) && is_person_name(n)) {
            return b;
        }
    }
    a
}

/// An all-caps name of letters ("USA TODAY", "ALLIN ONE"): a masthead or account, not a person.
fn is_caps_brand(n: &str) -> bool {
    n.chars().filter(|c| c.is_alphabetic()).count() >= MIN_CAPS_BRAND_LETTERS
        && !n.chars().any(char::is_lowercase)
}

/// Shaped like a person's name: 2 to 4 words, each capitalised (particles such as "van", "de"
/// aside), not all caps.
fn is_person_name(n: &str) -> bool {
    const PARTICLES: &[&str] = &[
        "van", "von", "der", "den", "de", "da", "di", "du", "la", "le", "bin", "al",
    ];
    let words: Vec<&str> = n.split_whitespace().collect();
    PERSON_NAME_WORDS.contains(&words.len())
        && !is_caps_brand(n)
        && words
            .iter()
            .all(|w| w.chars().next().is_some_and(char::is_uppercase) || PARTICLES.contains(w))
}

fn authors_from(m: &Meta) -> Vec<String> {
    let a = clean_authors(&m.ld.authors, None);
    if !a.is_empty() {
        return a;
    }
    if let Some(name) = &m.micro_author {
        let a = clean_authors(std::slice::from_ref(name), None);
        if !a.is_empty() {
            return a;
        }
    }
    let metas: Vec<String> = m
        .metas
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "author"
                    | "authors"
                    | "article:author"
                    | "article:author_name"
                    | "dc.creator"
                    | "dc:creator"
                    | "dcterms.creator"
                    | "parsely-author"
                    | "sailthru.author"
                    | "byl"
                    | "citation_author"
                    | "dc.contributor"
                    | "creator"
            )
        })
        .map(|(_, v)| v.clone())
        .collect();
    let a = clean_authors(&metas, None);
    if !a.is_empty() {
        return a;
    }
    // Yoast and similar plugins: "twitter:label1" = "Written by", "twitter:data1" = the name.
    if m.get(&["twitter:label1"]).is_some() {
        if let Some(d) = m.get(&["twitter:data1"]) {
            let a = clean_authors(&[d.to_string()], None);
            if !a.is_empty() {
                return a;
            }
        }
    }
    let a = clean_authors(&m.ld.org_authors, None);
    if !a.is_empty() {
        return a;
    }
    let a = clean_authors(&m.ld.question_authors, None);
    if !a.is_empty() {
        return a;
    }
    for group in [&m.bylines, &m.text_bylines, &m.author_links] {
        for segs in group.iter() {
            let a = byline_names(segs);
            if !a.is_empty() {
                return a;
            }
        }
    }
    vec![]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn author_cleanup() {
        assert_eq!(
            clean_authors(&["By Jane Doe and John Smith".into()], None),
            vec!["Jane Doe", "John Smith"]
        );
        assert_eq!(
            clean_authors(&["Jane Doe | The Daily".into()], None),
            vec!["Jane Doe"]
        );
        assert_eq!(
            clean_authors(&["Text by Hunter Dukes".into()], None),
            vec!["Hunter Dukes"]
        );
        assert_eq!(
            clean_authors(&["Author Isaiah Shelton".into()], None),
            vec!["Isaiah Shelton"]
        );
        assert_eq!(
            clean_authors(&["Niko Matsakis on behalf of the Rust team".into()], None),
            vec!["Niko Matsakis"]
        );
        assert_eq!(
            byline_names(&["Recipe by".to_string(), "PJ Hamel".to_string()]),
            vec!["PJ Hamel"]
        );
        assert!(clean_authors(&["https://example.com/jane".into()], None).is_empty());
        // Team and desk names are kept (sites credit them); dates and reading times are not.
        assert_eq!(
            clean_authors(&["News Desk".into()], None),
            vec!["News Desk"]
        );
        assert!(clean_authors(&["March 3, 2024".into()], None).is_empty());
        assert!(clean_authors(&["5 min read".into()], None).is_empty());
    }

    #[test]
    fn byline_segments_and_profile_links() {
        let segs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            byline_names(&segs(&["Written by", "Jane Doe"])),
            vec!["Jane Doe"]
        );
        assert_eq!(
            byline_names(&segs(&["Jane Doe", "August 28, 2025", "5 min read"])),
            vec!["Jane Doe"]
        );
        assert_eq!(
            byline_names(&segs(&["By ", "Jane Doe", " and ", "John Smith"])),
            vec!["Jane Doe", "John Smith"]
        );
        assert_eq!(
            byline_names(&segs(&["Post", "by", "galitsyn"])),
            vec!["galitsyn"]
        );
        assert_eq!(
            byline_names(&segs(&["via", "scvalex", "1 year ago"])),
            vec!["scvalex"]
        );
        assert_eq!(
            byline_names(&segs(&["user3080392", "user3080392", "193"])),
            vec!["user3080392"]
        );
        assert!(byline_names(&segs(&["Thu   6:40 pm"])).is_empty());
        // A structured author that is the site gives way to a byline naming a person.
        let mut m = Meta {
            metas: vec![("og:site_name".into(), "USA TODAY".into())],
            bylines: vec![segs(&["Brian Truitt"])],
            ..Meta::default()
        };
        m.ld.authors = vec!["USA TODAY".into()];
        assert_eq!(authors(&m), vec!["Brian Truitt"]);
        m.bylines = vec![segs(&["USA Today"])];
        assert_eq!(authors(&m), vec!["USA TODAY"]);
        assert!(is_author_href("/author/jane-doe/"));
        assert!(is_author_href("https://forum.example/members/jd.123/"));
        assert!(is_author_href("/u/jd"));
        assert!(!is_author_href("/author/"));
        assert!(!is_author_href("https://author.example/news/x"));
    }
}
