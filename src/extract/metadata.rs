//! Metadata: JSON-LD (every block, `@graph`, arrays), OpenGraph / `article:*`, Dublin Core,
//! `<meta name=…>`, `<time datetime>`, visible bylines. Precedence is documented in
//! `docs/extraction.md`.

use super::dom::*;
use super::text::{char_len, fold, normalize};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;
use url::Url;

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

#[derive(Debug, Default)]
pub struct Ld {
    pub types: Vec<String>,
    pub headline: Option<String>,
    pub authors: Vec<String>,
    /// Organization authors: used only when no person is named anywhere.
    pub org_authors: Vec<String>,
    /// Author and date of a Q&A `Question` (forum threads): used when no article object has them.
    pub question_authors: Vec<String>,
    pub question_published: Option<String>,
    pub published: Option<String>,
    pub modified: Option<String>,
    pub language: Option<String>,
    pub publisher: Option<String>,
    pub image: Option<String>,
    pub description: Option<String>,
    pub body: Option<String>,
    pub site_name: Option<String>,
    /// Whether the fields came from an article-typed object.
    pub is_article: bool,
}

const ARTICLE_TYPES: &[&str] = &[
    "article",
    "newsarticle",
    "blogposting",
    "reportagenewsarticle",
    "analysisnewsarticle",
    "opinionnewsarticle",
    "reviewnewsarticle",
    "backgroundnewsarticle",
    "askpublicnewsarticle",
    "scholarlyarticle",
    "techarticle",
    "socialmediaposting",
    "liveblogposting",
    "report",
    "posting",
    "review",
    "satiricalarticle",
    "medicalscholarlyarticle",
    "advertisercontentarticle",
    "discussionforumposting",
];

pub fn is_article_type(t: &str) -> bool {
    let l = t.to_ascii_lowercase();
    let l = l.rsplit('/').next().unwrap_or(&l);
    ARTICLE_TYPES.contains(&l)
}

pub fn collect(dom: &Dom<'_>, excluded: &[bool]) -> Meta {
    let mut m = Meta::default();
    let n = dom.nodes.len();
    let mut buf = String::new();
    let mut ld_objs: Vec<Value> = Vec::new();
    let mut first_h1: Option<usize> = None;
    for i in 0..n {
        let node = &dom.nodes[i];
        if node.tag == Tag::Text {
            if m.text_bylines.len() < 4 && node.text.len() < 80 {
                if let Some(segs) = text_byline(dom, i) {
                    m.text_bylines.push(segs);
                }
            }
            continue;
        }
        let Some(e) = node.elem else { continue };
        match node.tag {
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
                    buf.clear();
                    dom.text_of(i, &mut buf);
                    let t = normalize(&buf);
                    if !t.is_empty() {
                        m.title_tag = Some(t);
                    }
                }
            }
            Tag::Meta => {
                let key = e
                    .attr("property")
                    .or(e.attr("name"))
                    .or(e.attr("itemprop"))
                    .or(e.attr("http-equiv"));
                if let (Some(k), Some(v)) = (key, e.attr("content")) {
                    let v = normalize(v);
                    if !v.is_empty() && k.len() < 80 {
                        m.metas.push((k.trim().to_ascii_lowercase(), v));
                    }
                }
            }
            Tag::Link => {
                if m.canonical.is_none() {
                    if let Some(rel) = e.attr("rel") {
                        if rel
                            .split_ascii_whitespace()
                            .any(|r| r.eq_ignore_ascii_case("canonical"))
                        {
                            m.canonical = e.attr("href").map(|s| s.trim().to_string());
                        }
                    }
                }
            }
            Tag::Script => {
                if e.attr("type")
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/ld+json"))
                {
                    buf.clear();
                    for c in dom.children(i) {
                        buf.push_str(dom.nodes[c].text);
                    }
                    if buf.len() < 2_000_000 {
                        let s = buf
                            .trim()
                            .trim_start_matches("<!--")
                            .trim_end_matches("-->")
                            .trim();
                        if let Ok(v) = serde_json::from_str::<Value>(s) {
                            ld_objs.push(v);
                        }
                    }
                }
            }
            Tag::H1
            // Layout classes ("right-rail", "sidebar-width") often carry sidebar words: only
            // comments and related-story lists veto the headline.
                if first_h1.is_none() && !in_zone(dom, i, F_COMMENT | F_RELATED) =>
            {
                first_h1 = Some(i);
                buf.clear();
                dom.text_of(i, &mut buf);
                let t = normalize(&buf);
                if !excluded[i] && !t.is_empty() && t.len() < 500 {
                    m.h1.push(t);
                }
            }
            Tag::H1 if !excluded[i] && m.h1.len() < 8 => {
                buf.clear();
                dom.text_of(i, &mut buf);
                let t = normalize(&buf);
                if !t.is_empty() && t.len() < 500 {
                    m.h1.push(t);
                }
            }
            Tag::Time => {
                if m.time_dates.len() < 8 {
                    if let Some(d) = e.attr("datetime") {
                        m.time_dates.push(d.trim().to_string());
                    }
                }
            }
            _ => {}
        }
        // Microdata dates on any element: <abbr itemprop="datePublished" title="2024-…">.
        if node.tag != Tag::Meta
            && m.time_dates.len() < 8
            && e.attr("itemprop") == Some("datePublished")
        {
            if let Some(d) = e.attr("datetime").or(e.attr("content")).or(e.attr("title")) {
                m.time_dates.insert(0, d.trim().to_string());
            }
        }
        // Visible dates: <time> text and date/byline-flagged elements.
        if m.date_texts.len() < 12
            && (node.tag == Tag::Time || node.flags & F_BYLINE != 0)
            && !matches!(node.tag, Tag::Meta | Tag::Link | Tag::Script)
            && node.end as usize - i < 40
            && !in_zone(dom, i, F_COMMENT | F_RELATED)
        {
            buf.clear();
            dom.text_of(i, &mut buf);
            let t = normalize(&buf);
            // Only texts with a digit can hold a date: bylines without one would crowd them out.
            if t.len() < 160 && t.bytes().any(|b| b.is_ascii_digit()) {
                // Sidebar-flagged ones ("widget" page builders, "post-sidebar" meta columns) are
                // a last resort: real sidebars list other posts' dates.
                if in_zone(dom, i, F_SIDEBAR) {
                    if m.sidebar_date_texts.len() < 4 {
                        m.sidebar_date_texts.push(t);
                    }
                } else {
                    m.date_texts.push(t);
                }
            }
        }
        // Visible bylines: rel=author links, itemprop=author, byline/author classes.
        if m.bylines.len() < 8 && !matches!(node.tag, Tag::Meta | Tag::Link | Tag::Script) {
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
                if a < 60 && !in_comment(dom, i) {
                    let segs = segments(dom, i);
                    if !segs.is_empty() {
                        m.bylines.push(segs);
                    }
                }
            } else if node.tag == Tag::A
                && m.author_links.len() < 4
                && e.attr("href").is_some_and(is_author_href)
                && node.end as usize - i < 20
                && !in_zone(dom, i, F_COMMENT | F_SIDEBAR | F_RELATED | F_NAV | F_FOOTER)
                && !in_page_header(dom, i)
            {
                let segs = segments(dom, i);
                if !segs.is_empty() {
                    m.author_links.push(segs);
                }
            }
        }
    }
    if let Some(h) = first_h1 {
        near_title(dom, h, &mut m.near_title_texts);
    }
    let mut stack = ld_objs;
    let mut guard = 0;
    while let Some(v) = stack.pop() {
        guard += 1;
        if guard > 10_000 {
            break;
        }
        match v {
            Value::Array(a) => stack.extend(a),
            Value::Object(mut o) => {
                if let Some(g) = o.remove("@graph") {
                    stack.push(g);
                }
                read_ld_object(&o, &mut m.ld);
                // Nested mainEntity / mainEntityOfPage objects can be the article.
                if let Some(me) = o.remove("mainEntity") {
                    if me.is_object() || me.is_array() {
                        stack.push(me);
                    }
                }
            }
            _ => {}
        }
    }
    m
}

/// Is the nearest microdata item around `i` (an ancestor with `itemscope`) an article, a forum
/// post or a question?
fn in_article_item(dom: &Dom<'_>, i: usize) -> bool {
    let n = dom.nodes.len();
    let mut j = dom.nodes[i].parent as usize;
    let mut steps = 0;
    while j < n && steps < 60 {
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
    let end = (dom.nodes[i].end as usize).min(i + 200);
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
    if dom.nodes[i].end as usize - i < 20 {
        buf.clear();
        dom.text_of(i, &mut buf);
        let t = normalize(&buf);
        return (!t.is_empty() && char_len(&t) <= 60).then_some(t);
    }
    None
}

fn in_comment(dom: &Dom<'_>, i: usize) -> bool {
    in_zone(dom, i, F_COMMENT | F_SIDEBAR | F_RELATED)
}

/// Is `i` inside an element flagged with any of `mask` (or a nav/aside/footer tag when the mask
/// asks for navigation or footers)?
fn in_zone(dom: &Dom<'_>, mut i: usize, mask: u32) -> bool {
    let n = dom.nodes.len();
    let tags = mask & (F_NAV | F_FOOTER) != 0;
    let mut steps = 0;
    while i < n && steps < 40 {
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
fn in_page_header(dom: &Dom<'_>, mut i: usize) -> bool {
    let n = dom.nodes.len();
    let mut header = false;
    let mut steps = 0;
    while i < n && steps < 60 {
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

/// The text of a subtree as separate segments, one per non-empty text node (plus
/// `<meta itemprop="name" content>` inside microdata authors). At most 12.
fn segments(dom: &Dom<'_>, i: usize) -> Vec<String> {
    let end = dom.nodes[i].end as usize;
    let mut out = Vec::new();
    let mut j = i + 1;
    while j < end && out.len() < 12 {
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
    Regex::new(r"(?i)^(?:written\s+by|posted\s+by|published\s+by|reported\s+by|story\s+by|words\s+by|text\s+by|article\s+by|recipe\s+by|by|via|author|authors|the\s+author|von|par|por|di|door|av|af|autor|autorin|auteur|autore|автор|作者)\s*[:：]?$").expect("static regex")
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
    if t.len() <= 24 && BY_LABEL.is_match(t) {
        let stop = (i + 12).min(dom.nodes.len());
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
                || (p < dom.nodes.len() && j >= dom.nodes[p].end as usize + 8)
            {
                break;
            }
        }
        return (!out.is_empty() && !in_comment(dom, i)).then_some(out);
    }
    let rest = BY_PREFIX.find(t).map(|m| &t[m.end()..])?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let capitalised = (2..=4).contains(&words.len())
        && words
            .iter()
            .all(|w| w.chars().next().is_some_and(|c| c.is_uppercase()));
    (capitalised && !in_comment(dom, i)).then(|| vec![t.to_string()])
}

/// Short texts right after the first `<h1>` (then right before it): where a page shows its date.
fn near_title(dom: &Dom<'_>, h1: usize, out: &mut Vec<String>) {
    let n = dom.nodes.len();
    let after = dom.nodes[h1].end as usize;
    let mut j = after;
    let mut seen = 0;
    while j < n && seen < 80 && out.len() < 6 {
        let node = &dom.nodes[j];
        if node.tag == Tag::Text {
            let t = node.text.trim();
            if !t.is_empty() && t.len() < 120 && t.bytes().any(|b| b.is_ascii_digit()) {
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
    while j > 0 && seen < 40 && out.len() < 8 {
        j -= 1;
        seen += 1;
        let node = &dom.nodes[j];
        if node.tag == Tag::Text && !dom.nodes[node.parent as usize].tag.is_junk() {
            let t = node.text.trim();
            if !t.is_empty() && t.len() < 120 && t.bytes().any(|b| b.is_ascii_digit()) {
                out.push(normalize(t));
            }
        }
    }
}

fn ld_types(o: &serde_json::Map<String, Value>) -> Vec<String> {
    match o.get("@type") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => vec![],
    }
}

fn ld_str(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => {
            let t = normalize(&html_unescape(s));
            (!t.is_empty()).then_some(t)
        }
        Value::Array(a) => a.iter().find_map(|x| ld_str(Some(x))),
        Value::Object(o) => ld_str(o.get("name").or(o.get("@value")).or(o.get("url"))),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn ld_image(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Array(a) => a.iter().find_map(|x| ld_image(Some(x))),
        Value::Object(o) => ld_image(o.get("url").or(o.get("contentUrl"))),
        _ => None,
    }
}

fn ld_people(v: Option<&Value>, out: &mut Vec<String>, orgs: &mut Vec<String>) {
    let Some(v) = v else { return };
    match v {
        Value::String(s) => out.push(normalize(&html_unescape(s))),
        Value::Array(a) => {
            for x in a.iter().take(20) {
                ld_people(Some(x), out, orgs);
            }
        }
        Value::Object(o) => {
            let types = ld_types(o);
            if types.iter().any(|t| t.ends_with("Organization")) {
                if let Some(n) = ld_str(o.get("name")) {
                    orgs.push(n);
                }
                return;
            }
            if let Some(n) = ld_str(o.get("name")) {
                out.push(n);
            } else if let (Some(g), Some(f)) =
                (ld_str(o.get("givenName")), ld_str(o.get("familyName")))
            {
                out.push(format!("{g} {f}"));
            }
        }
        _ => {}
    }
}

fn read_ld_object(o: &serde_json::Map<String, Value>, ld: &mut Ld) {
    let types = ld_types(o);
    let is_article = types.iter().any(|t| is_article_type(t));
    ld.types.extend(types.iter().cloned());
    let is_site = types
        .iter()
        .any(|t| t == "WebSite" || t == "Organization" || t == "NewsMediaOrganization");
    if is_site && ld.site_name.is_none() {
        ld.site_name = ld_str(o.get("name"));
    }
    let is_page = types.iter().any(|t| t.ends_with("Page"));
    // Article objects override anything read from non-article objects.
    let take = is_article && !ld.is_article;
    if types.iter().any(|t| t.eq_ignore_ascii_case("question")) {
        if ld.question_authors.is_empty() {
            let mut orgs = Vec::new();
            ld_people(o.get("author"), &mut ld.question_authors, &mut orgs);
            ld.question_authors.extend(orgs);
        }
        if ld.question_published.is_none() {
            ld.question_published = ld_str(o.get("datePublished"));
        }
    }
    if !(is_article || ld.is_article || is_page) {
        if ld.language.is_none() {
            ld.language = ld_str(o.get("inLanguage"));
        }
        return;
    }
    if take {
        ld.is_article = true;
        ld.headline = None;
        ld.authors.clear();
        ld.org_authors.clear();
        ld.published = None;
        ld.modified = None;
        ld.body = None;
    }
    if !is_article && ld.is_article {
        return;
    }
    if ld.headline.is_none() {
        ld.headline = ld_str(o.get("headline")).or_else(|| {
            if is_article {
                ld_str(o.get("name"))
            } else {
                None
            }
        });
    }
    if ld.authors.is_empty() && ld.org_authors.is_empty() {
        ld_people(
            o.get("author").or(o.get("creator")),
            &mut ld.authors,
            &mut ld.org_authors,
        );
    }
    if ld.published.is_none() {
        ld.published = ld_str(o.get("datePublished")).or_else(|| ld_str(o.get("dateCreated")));
    }
    if ld.modified.is_none() {
        ld.modified = ld_str(o.get("dateModified"));
    }
    if ld.language.is_none() {
        ld.language = ld_str(o.get("inLanguage"));
    }
    if ld.publisher.is_none() {
        ld.publisher = ld_str(o.get("publisher"));
    }
    if ld.image.is_none() {
        ld.image = ld_image(o.get("image").or(o.get("thumbnailUrl")));
    }
    if ld.description.is_none() {
        ld.description = ld_str(o.get("description"));
    }
    if ld.body.is_none() {
        if let Some(Value::String(b)) = o.get("articleBody") {
            ld.body = Some(b.clone());
        }
    }
}

/// Decode the character references that JSON-LD and doubly escaped attributes carry: numeric
/// (`&#038;`, `&#x2019;`) and the common named ones. Unknown names are kept as written.
pub fn html_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let decoded = rest[1..]
            .find(';')
            .filter(|&e| e > 0 && e <= 10)
            .and_then(|e| Some((char_reference(&rest[1..=e])?, e + 2)));
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character a reference names (`name` is what sits between `&` and `;`).
fn char_reference(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        "lt" => '<',
        "gt" => '>',
        "nbsp" => ' ',
        "rsquo" => '’',
        "lsquo" => '‘',
        "rdquo" => '”',
        "ldquo" => '“',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "bull" => '•',
        "middot" => '·',
        "raquo" => '»',
        "laquo" => '«',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        _ => return None,
    })
}

impl Meta {
    pub fn get(&self, keys: &[&str]) -> Option<&str> {
        for k in keys {
            if let Some((_, v)) = self.metas.iter().find(|(kk, _)| kk == k) {
                return Some(v);
            }
        }
        None
    }
}

// ---------- title ----------

const SEPARATORS: &[&str] = &[
    " | ", " – ", " — ", " - ", " · ", " • ", " :: ", " » ", " « ", " || ", " // ", " ~ ", " — ",
    " | ", "|",
];

/// Remove a " | Site" style suffix (or "Site | " prefix).
pub fn strip_site(title: &str, site: Option<&str>, host: Option<&str>) -> String {
    let t = title.trim();
    for sep in SEPARATORS {
        if let Some(pos) = t.rfind(sep) {
            let (head, tail) = (&t[..pos], &t[pos + sep.len()..]);
            let (head, tail) = (head.trim(), tail.trim());
            if head.is_empty() || tail.is_empty() {
                continue;
            }
            if matches_site(tail, site, host) {
                return strip_site(head, site, host);
            }
            // Prefix form: "Site | Title".
            if let Some(p) = t.find(sep) {
                let (h, rest) = (t[..p].trim(), t[p + sep.len()..].trim());
                if !rest.is_empty() && matches_site(h, site, host) {
                    return strip_site(rest, site, host);
                }
            }
            // Unknown site: drop a short tail when the head is clearly longer.
            let tail_words = tail.split_whitespace().count();
            let head_words = head.split_whitespace().count();
            if tail_words <= 4
                && head_words >= tail_words * 2
                && head_words >= 3
                && sep.trim() != "-"
                && sep.trim() != "–"
            {
                return head.to_string();
            }
            if tail_words <= 3 && head_words >= 4 && char_len(tail) <= 30 {
                return head.to_string();
            }
        }
    }
    t.to_string()
}

fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn matches_site(part: &str, site: Option<&str>, host: Option<&str>) -> bool {
    let p = squash(part);
    if p.is_empty() {
        return false;
    }
    if let Some(s) = site {
        let s = squash(s);
        if !s.is_empty() && (p == s || p.contains(&s) || s.contains(&p)) {
            return true;
        }
    }
    if let Some(h) = host {
        let h = h.trim_start_matches("www.");
        let label = h.split('.').next().unwrap_or(h);
        let sq = squash(label);
        if sq.len() >= 3 && (p == sq || p.contains(&sq) || (sq.contains(&p) && p.len() >= 4)) {
            return true;
        }
        if p == squash(h) {
            return true;
        }
    }
    false
}

/// Separators after which a short trailing segment is dropped even when it does not name the site:
/// "Page | Section", "Topic - Product Docs". Bare "|" is left out ("A|B" is often one name).
const TAIL_SEPARATORS: &[&str] = &[
    " | ", " – ", " — ", " - ", " · ", " • ", " » ", " :: ", " // ",
];

/// [`strip_site`], then, when that leaves the title whole, drop trailing segments of up to six
/// words ("Project layout — Flask Documentation (3.1.x)", "Electrical - Overview | Occupational Safety
/// and Health Administration") as long as two words remain: a page's own name comes first.
pub fn strip_tail(title: &str, site: Option<&str>, host: Option<&str>) -> String {
    let t = strip_site(title, site, host);
    if t != title.trim() {
        return t;
    }
    for sep in TAIL_SEPARATORS {
        if let Some(pos) = t.rfind(sep) {
            let (head, tail) = (t[..pos].trim(), t[pos + sep.len()..].trim());
            if head.split_whitespace().count() >= 2 && tail.split_whitespace().count() <= 6 {
                return strip_tail(head, site, host);
            }
        }
    }
    t
}

/// Heading text without the permalink marks that documentation generators append ("Usage¶",
/// "Setup #", icon-font glyphs from the private use area).
fn heading_text(h: &str) -> &str {
    h.trim_end_matches(|c: char| {
        matches!(c, '¶' | '#' | '§' | '🔗')
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || c.is_whitespace()
    })
}

pub fn title(m: &Meta, host: Option<&str>) -> Option<String> {
    let site = site_name(m);
    let og = m.get(&["og:title", "twitter:title"]);
    let ld = m.ld.headline.as_deref();
    let tag = m.title_tag.as_deref();
    // A single h1 that matches (part of) the other titles is the cleanest form.
    let candidates: Vec<&str> = [og, ld, tag].into_iter().flatten().collect();
    if let Some(h1) = m.h1.first() {
        let h1 = html_unescape(heading_text(h1));
        let fh = fold(&h1);
        // An h1 that is the site's name (a blog's masthead) is not the page's title.
        let is_site = site.as_deref().is_some_and(|s| squash(s) == squash(&h1));
        if !fh.is_empty()
            && !is_site
            && candidates.iter().any(|c| fold(c).contains(&fh))
            && char_len(&h1) >= 4
        {
            // Headings carry the same "Title – Subtitle" / "Title | Site" tails as <title>.
            let t = strip_tail(&h1, site.as_deref(), host);
            return Some(if char_len(&t) >= 4 { t } else { h1 });
        }
    }
    // An article object's headline is written for the article alone; og:title and <title> often
    // carry a site or section name.
    let raw = if m.ld.is_article {
        ld.or(og)
    } else {
        og.or(ld)
    };
    let raw = raw.or(tag).or(m.h1.first().map(String::as_str))?;
    let t = strip_tail(&html_unescape(raw), site.as_deref(), host);
    // A headline stored with its quotation marks: "\"What is Git?\"".
    let t = match t.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) if !inner.contains('"') => inner.trim().to_string(),
        _ => t,
    };
    (!t.is_empty()).then_some(t)
}

pub fn site_name(m: &Meta) -> Option<String> {
    m.get(&["og:site_name", "application-name", "twitter:site"])
        .map(|s| s.trim_start_matches('@').to_string())
        .or_else(|| m.ld.site_name.clone())
        .or_else(|| m.ld.publisher.clone())
}

// ---------- authors ----------

static BY_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:written\s+by|posted\s+by|published\s+by|reported\s+by|story\s+by|words\s+by|text\s+by|article\s+by|recipe\s+by|by|from|author|autor|auteur|von|par|por|di|door|av|af|автор|作者)\s*[:：]?\s+").expect("static regex")
});
static SPLIT_NAMES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\s*(?:,|;|&|\band\b|\bund\b|\bet\b|\by\b|\be\b|\|| و )\s*")
        .expect("static regex")
});
/// Strings that are not a byline name: links, handles, dates and reading times.
static NOT_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(https?://|www\.|@|\.com\b|\.org\b|\.net\b|\bupdated\b|\bpublished\b|\bminutes?\b|\bmin\b|\bread\b)").expect("static regex")
});

static TIME_OF_DAY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d{1,2}:\d{2}\b").expect("static regex"));

fn looks_like_name(name: &str) -> bool {
    let chars = char_len(name);
    if !(2..=50).contains(&chars) || NOT_NAME.is_match(name) {
        return false;
    }
    if !name.chars().next().is_some_and(char::is_alphanumeric) || BY_LABEL.is_match(name) {
        return false;
    }
    // A few digits are fine ("98 Buck Social", "E-RYT 200"), and any number of them in a one-word
    // handle ("user3080392"); a date, a time or a count is not.
    let digits = name.chars().filter(char::is_ascii_digit).count();
    let handle = !name.contains(char::is_whitespace);
    if !name.chars().any(char::is_alphabetic)
        || (digits > 3 && !handle)
        || (digits > 0 && (date_in_text(name).is_some() || TIME_OF_DAY.is_match(name)))
    {
        return false;
    }
    name.split_whitespace().count() <= 6
}

pub fn clean_authors(raw: &[String], site: Option<&str>) -> Vec<String> {
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
            if !looks_like_name(name) {
                continue;
            }
            if !out.iter().any(|o| fold(o) == fold(name)) {
                out.push(name.to_string());
            }
        }
        if out.len() >= 10 {
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
    if joined && char_len(&whole) <= 60 {
        let a = clean_authors(std::slice::from_ref(&whole), None);
        if !a.is_empty() && a.iter().all(|n| n.split_whitespace().count() <= 4) {
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
        if BY_LABEL.is_match(s) || char_len(s) > 60 {
            continue;
        }
        let a = clean_authors(std::slice::from_ref(s), None);
        if !a.is_empty() {
            return a;
        }
    }
    vec![]
}

/// The page's authors: the first source (in the order below) that names anyone. A structured
/// source that names only the site or its publisher ("USA TODAY", "Cleveland Clinic") gives way
/// to a visible byline element that names someone else.
pub fn authors(m: &Meta) -> Vec<String> {
    let a = authors_from(m);
    let owners: Vec<String> = [site_name(m), m.ld.publisher.clone()]
        .into_iter()
        .flatten()
        .map(|s| squash(&s))
        .filter(|s| !s.is_empty())
        .collect();
    if !a.is_empty() && a.iter().all(|n| owners.contains(&squash(n))) {
        for segs in &m.bylines {
            let b = byline_names(segs);
            if !b.is_empty() {
                if b.iter().all(|n| owners.contains(&squash(n))) {
                    break;
                }
                return b;
            }
        }
    }
    a
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

// ---------- dates ----------

static URL_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"/((?:19|20)\d{2})[/-](0?[1-9]|1[0-2])[/-](0?[1-9]|[12]\d|3[01])(?:/|\b)")
        .expect("static regex")
});
static TEXT_DATE: LazyLock<Regex> = LazyLock::new(|| {
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
    if w.chars().count() < 3 {
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
    if s.is_empty() || s.len() > 64 {
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
    if d.year() < 1995 || d > today + chrono::Duration::days(2) {
        return None;
    }
    Some(out)
}

pub fn dates(m: &Meta, url: Option<&Url>) -> (Option<String>, Option<String>) {
    let published_keys = [
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
    let modified_keys = [
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
    let mut published =
        m.ld.published
            .as_deref()
            .or(m.ld.question_published.as_deref())
            .and_then(normalize_date);
    if let Some(ld) = &published {
        // JSON-LD and the page's publish meta tags disagree: the one whose day the page shows
        // (and the other's it does not) wins.
        let day = |d: &str| d.get(..10).map(str::to_string);
        let metas: Vec<String> = published_keys
            .iter()
            .filter_map(|k| m.get(&[k]).and_then(normalize_date))
            .filter(|d| day(d) != day(ld))
            .collect();
        if !metas.is_empty() {
            let shown: Vec<String> = m
                .date_texts
                .iter()
                .chain(&m.near_title_texts)
                .filter_map(|t| date_in_text(t))
                .collect();
            if !shown.iter().any(|s| Some(s.as_str()) == ld.get(..10)) {
                if let Some(d) = metas
                    .into_iter()
                    .find(|d| shown.iter().any(|s| Some(s.as_str()) == d.get(..10)))
                {
                    published = Some(d);
                }
            }
        }
    }
    if published.is_none() {
        for k in published_keys {
            if let Some(v) = m.get(&[k]) {
                if let Some(d) = normalize_date(v) {
                    published = Some(d);
                    break;
                }
            }
        }
    }
    if published.is_none() {
        // Other site-specific meta names: "published", "w-published-date", "article_date"…
        published = m
            .metas
            .iter()
            .filter(|(k, _)| {
                (k.contains("publish") && !k.contains("publisher"))
                    || k.ends_with("date")
                    || k.ends_with("_date")
            })
            .find_map(|(_, v)| normalize_date(v).or_else(|| date_in_text(v)));
    }
    if published.is_none() {
        // The first `<time>` can be a "latest reply" box: the one whose day is shown right by the
        // h1 comes first.
        let times: Vec<String> = m
            .time_dates
            .iter()
            .filter_map(|t| normalize_date(t).or_else(|| date_in_text(t)))
            .collect();
        let shown = m.near_title_texts.iter().find_map(|t| date_in_text(t));
        published = shown
            .and_then(|s| times.iter().find(|t| t.get(..10) == Some(s.as_str())))
            .or(times.first())
            .cloned();
    }
    if published.is_none() {
        published = m.date_texts.iter().find_map(|t| date_in_text(t));
    }
    if published.is_none() {
        published = m.near_title_texts.iter().find_map(|t| date_in_text(t));
    }
    if published.is_none() {
        if let Some(u) = url {
            if let Some(c) = URL_DATE.captures(u.path()) {
                let d = NaiveDate::from_ymd_opt(
                    c[1].parse().unwrap_or(0),
                    c[2].parse().unwrap_or(0),
                    c[3].parse().unwrap_or(0),
                );
                if let Some(d) = d {
                    published = valid(d.format("%Y-%m-%d").to_string(), d);
                }
            }
        }
    }
    let mut modified = m.ld.modified.as_deref().and_then(normalize_date);
    if modified.is_none() {
        for k in modified_keys {
            if let Some(v) = m.get(&[k]) {
                if let Some(d) = normalize_date(v) {
                    modified = Some(d);
                    break;
                }
            }
        }
    }
    // As htmldate does, the modification date is the reserve for the publication date.
    if published.is_none() {
        published = modified.clone();
    }
    if published.is_none() {
        published = m.sidebar_date_texts.iter().find_map(|t| date_in_text(t));
    }
    (published, modified)
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn site_suffix() {
        assert_eq!(
            strip_site("Big news today | The Daily", Some("The Daily"), None),
            "Big news today"
        );
        assert_eq!(
            strip_site("Big news today - Example", None, Some("www.example.com")),
            "Big news today"
        );
        assert_eq!(
            strip_site("Self-driving cars arrive", None, None),
            "Self-driving cars arrive"
        );
    }

    #[test]
    fn trailing_segments_and_permalink_marks() {
        assert_eq!(
            strip_tail("Project layout — Flask Documentation (3.1.x)", None, None),
            "Project layout"
        );
        assert_eq!(
            strip_tail(
                "Electrical - Overview | Occupational Safety and Health Administration",
                None,
                None
            ),
            "Electrical - Overview"
        );
        // One word would be left, or the tail is a long subtitle: kept whole.
        assert_eq!(strip_tail("Flexbox - Guide", None, None), "Flexbox - Guide");
        assert_eq!(
            strip_tail(
                "I Tried Amp — and It May Replace My Gym Membership for Good",
                None,
                None
            ),
            "I Tried Amp — and It May Replace My Gym Membership for Good"
        );
        assert_eq!(
            html_unescape("M&#038;A &bull; Q&amp;A &#x2019; &unknown; & more"),
            "M&A • Q&A ’ &unknown; & more"
        );
        assert_eq!(heading_text("Advanced Usage¶"), "Advanced Usage");
        assert_eq!(heading_text("Playbooks\u{f0c1}"), "Playbooks");
        let m = Meta {
            title_tag: Some("Advanced Usage — Requests 2.33 documentation".into()),
            h1: vec!["Advanced Usage¶".into()],
            ..Meta::default()
        };
        assert_eq!(title(&m, None).as_deref(), Some("Advanced Usage"));
        // An h1 that matches the other titles loses its tail the same way.
        let m = Meta {
            title_tag: Some("Gym Workouts for Beginners — Strength Training - Gold's Gym".into()),
            h1: vec!["Gym Workouts for Beginners — Strength Training".into()],
            ..Meta::default()
        };
        assert_eq!(
            title(&m, None).as_deref(),
            Some("Gym Workouts for Beginners")
        );
        // A masthead h1 that names the site is skipped; quotes around a headline are dropped.
        let m = Meta {
            title_tag: Some("A brief intro to git • Cory Doe".into()),
            h1: vec!["Cory Doe".into()],
            metas: vec![("og:site_name".into(), "Cory Doe".into())],
            ..Meta::default()
        };
        assert_eq!(title(&m, None).as_deref(), Some("A brief intro to git"));
        let mut m = Meta::default();
        m.ld.headline = Some("\"What is Git?\"".into());
        assert_eq!(title(&m, None).as_deref(), Some("What is Git?"));
        // An article's JSON-LD headline comes before og:title.
        let mut m = Meta {
            metas: vec![(
                "og:title".into(),
                "Big news: the vote, explained (updated)".into(),
            )],
            ..Meta::default()
        };
        m.ld.headline = Some("Big news: the vote".into());
        m.ld.is_article = true;
        assert_eq!(title(&m, None).as_deref(), Some("Big news: the vote"));
    }

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
