//! Metadata: JSON-LD (every block, `@graph`, arrays), OpenGraph / `article:*`, Dublin Core,
//! `<meta name=…>`, `<time datetime>`, visible bylines. Precedence is documented in
//! `docs/extraction.md`.
//!
//! [`collect`] walks the DOM once and keeps the raw material of every field in a [`Meta`]; the
//! fields are then decided one by one, each in its own module:
//! - [`jsonld`]: reading JSON-LD blocks into [`Ld`] (article objects win over page objects).
//! - [`title`]: the title (h1 vs og:title / headline / `<title>`, site-name tails) and site name.
//! - [`authors`]: byline elements, "By" labels, profile links, and the choice between sources.
//! - [`dates`]: visible date texts, date parsing in several languages, and the published /
//!   modified choice.
//! - [`entities`]: HTML character references left in JSON-LD and attributes.

mod authors;
mod dates;
mod entities;
mod jsonld;
mod title;

pub use authors::authors;
pub use dates::{dates, normalize_date};
pub use entities::html_unescape;
pub use jsonld::Ld;
pub use title::{site_name, title};

use super::dom::*;
use super::text::normalize;
use scraper::node::Element;
use serde_json::Value;
use url::Url;

/// `<meta>` keys longer than this are not names but junk (inline data, broken markup).
const MAX_META_KEY_BYTES: usize = 80;
/// A JSON-LD block larger than this is an embedded app state, not page metadata: not parsed.
const MAX_JSONLD_BYTES: usize = 2_000_000;
/// An `<h1>` longer than this is a wrapped block of text, not a headline.
const MAX_H1_BYTES: usize = 500;
/// `<h1>`s kept beyond the first: listings repeat one per item, and only the first few matter.
const MAX_H1S: usize = 8;
/// How far up the tree a zone (comment, sidebar…) is looked for: deeper flags are layout noise.
const ZONE_MAX_DEPTH: usize = 40;
/// How far up the tree a `<header>` (and the `<article>`/`<main>` that excuses it) is looked for.
const HEADER_MAX_DEPTH: usize = 60;

#[derive(Debug, Default)]
pub struct Meta {
    pub html_lang: Option<String>,
    pub title_tag: Option<String>,
    pub h1: Vec<String>,
    /// (key lowercased, content) from `<meta name|property|itemprop|http-equiv>`.
    pub metas: Vec<(String, String)>,
    pub canonical: Option<String>,
    pub ld: Ld,
    pub time_dates: Vec<String>,
    /// Short visible texts of `<time>` and date/byline-flagged elements.
    pub date_texts: Vec<String>,
    /// Date texts inside sidebar-flagged elements: used only when nothing else gives a date.
    pub sidebar_date_texts: Vec<String>,
    /// Text nodes that are a date alone or with a short label ("Posted on April 13, 2023", a forum
    /// post's "2025-11-01 15:14:37"), anywhere outside comments, related lists, sidebars, navigation
    /// and footers, in document order: a last resort when nothing else dates the page (not on a
    /// listing).
    pub standalone_date_texts: Vec<String>,
    /// Short texts just after (then just before) the first `<h1>`, where a date usually sits.
    pub near_title_texts: Vec<String>,
    /// Byline elements (rel=author, itemprop=author, author/byline classes), each as its text
    /// segments (one per text node), in document order.
    pub bylines: Vec<Vec<String>>,
    /// Visible "By …" / "Written by" label texts, each with the segments that follow the label.
    pub text_bylines: Vec<Vec<String>>,
    /// Links to an author or member profile (`/author/jane-doe`, `/members/jd.12/`).
    pub author_links: Vec<Vec<String>>,
    /// Name of the first microdata `itemprop="author"` of an article or forum post
    /// (`itemscope itemtype=".../DiscussionForumPosting"`): structured data like JSON-LD, so read
    /// even in a side column (forum layouts often flag the thread so); not in related-story cards.
    pub micro_author: Option<String>,
}

impl Meta {
    /// Take `other`'s author sources (bylines, "By" labels, profile links, microdata author) in
    /// place of this page's, which gave no author.
    pub fn take_authors_from(&mut self, other: Meta) {
        self.bylines = other.bylines;
        self.text_bylines = other.text_bylines;
        self.author_links = other.author_links;
        self.micro_author = other.micro_author;
    }

    pub fn get(&self, keys: &[&str]) -> Option<&str> {
        for k in keys {
            if let Some((_, v)) = self.metas.iter().find(|(kk, _)| kk == k) {
                return Some(v);
            }
        }
        None
    }
}

/// State of the one pass over the DOM besides what goes into [`Meta`].
#[derive(Default)]
struct Walk {
    /// Parsed JSON-LD blocks, read into [`Ld`] after the pass.
    ld_blocks: Vec<Value>,
    /// The first `<h1>` outside comments and related lists: dates are looked for around it.
    first_h1: Option<usize>,
    /// Scratch space for element texts.
    buf: String,
}

/// One pass over the DOM: every field's raw material, then JSON-LD read into [`Ld`].
pub fn collect(dom: &Dom<'_>, excluded: &[bool]) -> Meta {
    let mut m = Meta::default();
    let mut w = Walk::default();
    for i in 0..dom.nodes.len() {
        let node = &dom.nodes[i];
        if node.tag == Tag::Text {
            authors::read_text_byline(dom, i, &mut m);
            dates::read_standalone_date(dom, i, &mut m);
            continue;
        }
        let Some(e) = node.elem else { continue };
        read_element(dom, i, e, excluded, &mut m, &mut w);
        dates::read_microdata_date(node.tag, e, &mut m);
        dates::read_visible_date(dom, i, &mut m, &mut w.buf);
        authors::read_byline(dom, i, e, &mut m);
    }
    if let Some(h) = w.first_h1 {
        dates::near_title(dom, h, &mut m.near_title_texts);
    }
    jsonld::read_all(w.ld_blocks, &mut m.ld);
    m
}

/// What an element says by its tag: `<html lang>`, `<title>`, `<meta>`, canonical `<link>`,
/// JSON-LD `<script>`, `<h1>`, `<time datetime>`.
fn read_element(
    dom: &Dom<'_>,
    i: usize,
    e: &Element,
    excluded: &[bool],
    m: &mut Meta,
    w: &mut Walk,
) {
    let buf = &mut w.buf;
    match dom.nodes[i].tag {
        Tag::Html => {
            if m.html_lang.is_none() {
                m.html_lang = e
                    .attr("lang")
                    .or(e.attr("xml:lang"))
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty());
            }
        }
        Tag::Title => {
            if m.title_tag.is_none() {
                let t = text_of(dom, i, buf);
                if !t.is_empty() {
                    m.title_tag = Some(t);
                }
            }
        }
        Tag::Meta => read_meta_tag(e, m),
        Tag::Link => {
            if m.canonical.is_none() && is_canonical(e) {
                m.canonical = e.attr("href").map(|s| s.trim().to_string());
            }
        }
        Tag::Script => {
            if let Some(v) = jsonld_block(dom, i, e, buf) {
                w.ld_blocks.push(v);
            }
        }
        Tag::H1
        // Layout classes ("right-rail", "sidebar-width") often carry sidebar words: only
        // comments and related-story lists veto the headline.
            if w.first_h1.is_none() && !in_zone(dom, i, F_COMMENT | F_RELATED) =>
        {
            w.first_h1 = Some(i);
            let t = text_of(dom, i, buf);
            if !excluded[i] && !t.is_empty() && t.len() < MAX_H1_BYTES {
                m.h1.push(t);
            }
        }
        Tag::H1 if !excluded[i] && m.h1.len() < MAX_H1S => {
            let t = text_of(dom, i, buf);
            if !t.is_empty() && t.len() < MAX_H1_BYTES {
                m.h1.push(t);
            }
        }
        Tag::Time => dates::read_time_datetime(e, m),
        _ => {}
    }
}

/// The normalised text of the subtree at `i` (`buf` is scratch space).
fn text_of(dom: &Dom<'_>, i: usize, buf: &mut String) -> String {
    buf.clear();
    dom.text_of(i, buf);
    normalize(buf)
}

/// `<meta property|name|itemprop|http-equiv=… content=…>` as a (lowercased key, value) pair.
fn read_meta_tag(e: &Element, m: &mut Meta) {
    let key = e
        .attr("property")
        .or(e.attr("name"))
        .or(e.attr("itemprop"))
        .or(e.attr("http-equiv"));
    if let (Some(k), Some(v)) = (key, e.attr("content")) {
        let v = normalize(v);
        if !v.is_empty() && k.len() < MAX_META_KEY_BYTES {
            m.metas.push((k.trim().to_ascii_lowercase(), v));
        }
    }
}

fn is_canonical(e: &Element) -> bool {
    e.attr("rel").is_some_and(|rel| {
        rel.split_ascii_whitespace()
            .any(|r| r.eq_ignore_ascii_case("canonical"))
    })
}

/// The parsed JSON of a `<script type="application/ld+json">` (HTML comment marks around it are
/// tolerated); `None` for other scripts, oversized blocks and invalid JSON.
fn jsonld_block(dom: &Dom<'_>, i: usize, e: &Element, buf: &mut String) -> Option<Value> {
    if !e
        .attr("type")
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/ld+json"))
    {
        return None;
    }
    buf.clear();
    for c in dom.children(i) {
        buf.push_str(dom.nodes[c].text);
    }
    if buf.len() >= MAX_JSONLD_BYTES {
        return None;
    }
    let s = buf
        .trim()
        .trim_start_matches("<!--")
        .trim_end_matches("-->")
        .trim();
    serde_json::from_str::<Value>(s).ok()
}

pub(super) fn in_comment(dom: &Dom<'_>, i: usize) -> bool {
    in_zone(dom, i, F_COMMENT | F_SIDEBAR | F_RELATED)
}

/// Is `i` inside an element flagged with any of `mask` (or a nav/aside/footer tag when the mask
/// asks for navigation or footers)?
pub(super) fn in_zone(dom: &Dom<'_>, mut i: usize, mask: u32) -> bool {
    let n = dom.nodes.len();
    let tags = mask & (F_NAV | F_FOOTER) != 0;
    let mut steps = 0;
    while i < n && steps < ZONE_MAX_DEPTH {
        let node = &dom.nodes[i];
        if node.flags & mask != 0 {
            return true;
        }
        if tags && matches!(node.tag, Tag::Nav | Tag::Footer | Tag::Aside) {
            return true;
        }
        i = node.parent as usize;
        steps += 1;
    }
    false
}

/// Inside a `<header>` that is not itself inside an `<article>` or `<main>` (the site's header).
pub(super) fn in_page_header(dom: &Dom<'_>, mut i: usize) -> bool {
    let n = dom.nodes.len();
    let mut header = false;
    let mut steps = 0;
    while i < n && steps < HEADER_MAX_DEPTH {
        let node = &dom.nodes[i];
        match node.tag {
            Tag::Header => header = true,
            Tag::Article | Tag::Main => return false,
            _ => {}
        }
        i = node.parent as usize;
        steps += 1;
    }
    header
}

pub fn absolute(url: Option<&Url>, href: &str) -> Option<String> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    match url {
        Some(base) => base.join(href).ok().map(|u| u.to_string()),
        None => Url::parse(href).ok().map(|u| u.to_string()),
    }
}
