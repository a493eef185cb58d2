//! PURE article extraction: page bytes + URL + HTTP headers -> [`Extracted`].
//!
//! No tokio, lapin or reqwest here. Pipeline (see `docs/extraction.md`):
//! charset ([`charset`]) -> NFC ([`text::nfc`]) -> scraper parse -> pre-order arena with class/id
//! flags ([`dom`]) -> exclusion + one reverse aggregation pass ([`content::Prepared`]) -> the story's
//! headline ([`content::title_anchor`]) -> container choice + emission ([`content`]) -> line clean-up
//! ([`clean`]) -> fallbacks when the container missed the text: the second opinion (every prose
//! paragraph), `<noscript>`, for pages that are not one article the wide path ([`listing`]), script
//! data ([`script_data`]) -> metadata by field ([`metadata`]) and language ([`lang`]) -> how far to
//! trust the text: agreement with the second opinion, scored ([`confidence`]).
//!
//! Everything is iterative: no recursion over the DOM, so deep documents cannot overflow the stack.
//! Work is bounded by [`MAX_BODY_BYTES`], [`MAX_NODES`] and [`MAX_DEPTH`].

// Index loops over the arena read several parallel arrays; match arms keep their guards readable.
#![allow(clippy::needless_range_loop, clippy::collapsible_match)]
// The pipeline above is documented for the maintainer: its stages are private modules.
#![allow(rustdoc::private_intra_doc_links)]

mod charset;
mod clean;
mod confidence;
mod content;
mod dom;
mod lang;
mod listing;
mod metadata;
mod script_data;
mod text;

use crate::message::PageKind;
use url::Url;

pub use charset::{charset_from_content_type, meta_charset};
pub use confidence::Signals;
pub use metadata::normalize_date;

/// Largest body the extractor accepts (bytes).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Largest number of DOM nodes processed.
pub const MAX_NODES: usize = 1_500_000;
/// Deepest element nesting accepted (checked on the raw markup before parsing: the HTML parser's
/// scope checks are quadratic in nesting depth).
pub const MAX_DEPTH: usize = 4_000;
/// Largest nesting work accepted: the sum, over all start tags, of the nesting depth they open at
/// (estimated on the raw markup before parsing). The parser's scope checks walk the open-element
/// stack, so a page that repeats many tags deep down (a million `<p>` under 4,000 `<div>`s) costs
/// depth x tags even under [`MAX_DEPTH`]. The most demanding page of both benchmark sets needs
/// ~770,000 (and nests 180 deep).
pub const MAX_NESTING_WORK: usize = 20_000_000;

/// Body text (chars) under which the article path is taken to have missed the body: the paragraph-only
/// fallback, `<noscript>` and script data are tried. One short paragraph; measured on both dev sets.
const SCRIPT_BODY_BELOW: u32 = 250;

/// A fallback text (the page's prose paragraphs, `<noscript>`, script data) replaces the article
/// path's only when it is over this many times as long: one that barely adds is the same text or
/// chrome.
const FALLBACK_GAIN: usize = 2;

/// Is a fallback text of `fallback` chars worth taking over `current` chars ([`FALLBACK_GAIN`])?
fn much_longer(fallback: usize, current: usize) -> bool {
    fallback > FALLBACK_GAIN * current.max(1)
}

/// A `<noscript>` block is a readable copy of the page (not a tracking pixel) from this many bytes
/// of markup with paragraphs.
const NOSCRIPT_DOC_MIN_BYTES: usize = 500;

/// [`page_kind`]: this many `<article>` elements (teasers) make a page a listing…
const LISTING_MIN_ARTICLES: usize = 4;
/// …as does a container whose text is over this share links with under
/// [`LISTING_MAX_PARAS`] paragraphs (a list of links, not a story).
const LISTING_LINK_DENSITY: f32 = 0.4;
const LISTING_MAX_PARAS: u32 = 3;
/// A page without article metadata is an article when its text holds this many prose paragraphs
/// (of [`PROSE_PARA_MIN_CHARS`]+ chars, ending like a sentence) under [`ARTICLE_MAX_LINK_DENSITY`].
const ARTICLE_MIN_PROSE_PARAS: usize = 3;
const PROSE_PARA_MIN_CHARS: u32 = 80;
const ARTICLE_MAX_LINK_DENSITY: f32 = 0.2;

/// One page as fetched (or read from disk).
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    /// Raw body bytes, already content-decoded (gzip etc.) but not charset-decoded.
    pub body: &'a [u8],
    /// The page's URL (after redirects), used to resolve relative links and for the site name.
    pub url: Option<&'a Url>,
    /// HTTP `Content-Type` header, for its charset.
    pub content_type: Option<&'a str>,
    /// HTTP `Content-Language` header.
    pub content_language: Option<&'a str>,
}

/// What the extractor found in a page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    pub title: Option<String>,
    pub authors: Vec<String>,
    /// RFC 3339, offset kept. A page that gives only a day yields the full-date form `YYYY-MM-DD`.
    pub published_at: Option<String>,
    pub modified_at: Option<String>,
    /// BCP 47 tag, or `None` when unknown.
    pub language: Option<String>,
    pub site_name: Option<String>,
    pub description: Option<String>,
    /// Absolute URL of the lead image.
    pub image: Option<String>,
    /// Absolute canonical URL (`<link rel=canonical>`, og:url), when the page gives one.
    pub canonical_url: Option<String>,
    /// Body text, paragraphs separated by one blank line.
    pub text: String,
    pub page_kind: PageKind,
    /// The charset the body was decoded with (WHATWG name, e.g. `windows-1256`).
    pub charset: String,
    /// How far to trust `text` (0–1, see [`confidence`]): under 0.5 the text is often wrong,
    /// over 0.8 it is almost always right. 0 for a page without body text.
    pub confidence: f32,
    /// What the confidence was computed from.
    pub signals: Signals,
}

/// Why a page yields no article.
#[derive(Debug, thiserror::Error, PartialEq, Clone)]
#[non_exhaustive]
pub enum ExtractError {
    #[error("the page is empty")]
    Empty,
    /// No body text was found. The page's metadata (title, authors, dates, language, image…) is
    /// still read: the boxed [`Extracted`] carries it, with an empty `text`.
    #[error("the page has no extractable text")]
    NoContent(Box<Extracted>),
    #[error("the page is {size} bytes, over the extractor's {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("the page has {nodes} or more DOM nodes, over the extractor's limit of {max}")]
    TooManyNodes { nodes: usize, max: usize },
    #[error(
        "the page nests elements {depth} or more levels deep, over the extractor's limit of {max}"
    )]
    TooDeep { depth: usize, max: usize },
    #[error(
        "the page repeats tags deep in its nesting: {work} or more nesting steps to parse, over the extractor's limit of {max}"
    )]
    TooComplex { work: usize, max: usize },
    #[error("the page is not HTML text (binary content: {0})")]
    Binary(&'static str),
}

impl ExtractError {
    /// What was read of a page that has no body text: its metadata, with an empty `text`.
    pub fn partial(&self) -> Option<&Extracted> {
        match self {
            ExtractError::NoContent(x) => Some(x),
            _ => None,
        }
    }
}

/// Extract the article from a page.
pub fn extract(page: &Page<'_>) -> Result<Extracted, ExtractError> {
    let body = page.body;
    if body.len() > MAX_BODY_BYTES {
        return Err(ExtractError::TooLarge {
            size: body.len(),
            max: MAX_BODY_BYTES,
        });
    }
    if body.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
        return Err(ExtractError::Empty);
    }
    if let Some(kind) = binary_kind(body) {
        return Err(ExtractError::Binary(kind));
    }
    let tld = page
        .url
        .and_then(|u| u.host_str())
        .and_then(|h| h.rsplit('.').next())
        .map(str::as_bytes);
    let (html_text, encoding) = charset::decode(body, page.content_type, tld);
    let html_text = text::nfc(charset::repair_double_encoded(html_text));
    let nest = nesting(&html_text, MAX_DEPTH, MAX_NESTING_WORK);
    if nest.depth > MAX_DEPTH {
        return Err(ExtractError::TooDeep {
            depth: nest.depth,
            max: MAX_DEPTH,
        });
    }
    if nest.work > MAX_NESTING_WORK {
        return Err(ExtractError::TooComplex {
            work: nest.work,
            max: MAX_NESTING_WORK,
        });
    }
    let doc = scraper::Html::parse_document(&html_text);
    let dom = dom::Dom::build(&doc, MAX_NODES).map_err(|e| ExtractError::TooManyNodes {
        nodes: e.0,
        max: MAX_NODES,
    })?;
    let prep = content::Prepared::new(&dom);
    let an = prep.analyse(&dom, 0);
    // Parsed at most once, when a fallback below asks for it.
    let noscript_cell = std::cell::OnceCell::new();
    let noscript = || noscript_cell.get_or_init(|| noscript_doc(&dom)).as_ref();
    let mut meta = metadata::collect(&dom, &an.excluded);
    if metadata::authors(&meta).is_empty() {
        // Script-rendered pages (forum software's crawler views) keep their bylines in the
        // readable version inside <noscript> too.
        if let Some(inner) = noscript().and_then(noscript_meta) {
            if !metadata::authors(&inner).is_empty() {
                meta.take_authors_from(inner);
            }
        }
    }
    let host = page.url.and_then(|u| u.host_str());
    let title = metadata::title(&meta, host);

    let anchor = content::title_anchor(&dom, &an, title.as_deref());
    let roots = [content::select_root(&dom, &an, anchor)];
    let mut paras = content::emit(&dom, &an, &roots, title.as_deref(), false);
    let mut used_wild = false;
    // The container holds the story's headline and its text: a short story, not a page whose
    // container missed the text.
    let whole_story = roots
        .iter()
        .any(|&r| content::holds_story(&dom, &an, r, anchor));
    // The second opinion: every prose paragraph of the page outside boilerplate. A fallback when
    // the container missed the text, and the measure of agreement behind the confidence.
    let wild = content::wild_paragraphs(&dom, &an);
    let wild_paras = content::emit(&dom, &an, &wild, title.as_deref(), false);
    if content::para_chars(&paras) < SCRIPT_BODY_BELOW as usize
        && !whole_story
        && much_longer(
            content::para_chars(&wild_paras),
            content::para_chars(&paras),
        )
    {
        paras = wild_paras.clone();
        used_wild = true;
    }
    let second_opinion = clean::finish(wild_paras, title.as_deref());
    let mut fallback = used_wild;
    let mut text = clean::finish(paras, title.as_deref());
    if text::char_len(&text) < SCRIPT_BODY_BELOW {
        // Pages rendered by script ship their readable version inside <noscript>.
        if let Some(t) = noscript().and_then(|d| noscript_text(d, title.as_deref(), false)) {
            if much_longer(text::char_len(&t) as usize, text::char_len(&text) as usize) {
                text = t;
                fallback = true;
            }
        }
    }
    let page_kind = page_kind(&dom, &an, &meta, &roots, used_wild, &text);
    if let Some(t) = listing::wide_text(
        &dom,
        &prep,
        listing::ArticlePath {
            an: &an,
            roots: &roots,
            text_len: text::char_len(&text),
            whole_story,
        },
        title.as_deref(),
        // A discussion thread's replies are its content, whatever else its metadata says.
        page_kind == PageKind::Article && article_metadata(&meta) && !thread_metadata(&meta),
        page_kind != PageKind::Listing && single_item(&meta),
    ) {
        text = t;
        fallback = true;
    }
    if page_kind != PageKind::Article {
        // Forum crawler views in <noscript> hold the whole thread: read them on the wide path too.
        if let Some(t) = noscript().and_then(|d| noscript_text(d, title.as_deref(), true)) {
            if much_longer(text::char_len(&t) as usize, text::char_len(&text) as usize) {
                text = t;
                fallback = true;
            }
        }
    }
    if text::char_len(&text) < SCRIPT_BODY_BELOW {
        // Client-rendered pages: the body is only in script data (JSON-LD articleBody, a JSON
        // state object the page hydrates from).
        let script = meta
            .ld
            .body
            .as_deref()
            .map(|b| script_data::body_text(&metadata::html_unescape(b)))
            .filter(|t| !t.is_empty())
            .or_else(|| script_data::state_body(&dom));
        if let Some(t) = script {
            if much_longer(text::char_len(&t) as usize, text::char_len(&text) as usize) {
                text = t;
                fallback = true;
            }
        }
    }
    if fallback {
        text = clean::once_each_line(&text);
    }
    if text.trim().is_empty() {
        // No body text, but the page's metadata is still worth having (client-rendered pages
        // ship their title, authors and dates in the head): the error carries it.
        text.clear();
        let partial = page_metadata(page, &meta, title, text, page_kind, encoding);
        return Err(ExtractError::NoContent(Box::new(partial)));
    }
    let (agree_precision, agree_recall) = confidence::agreement(&text, &second_opinion);
    let (length, sentences) = confidence::shape(&text);
    let links = roots.iter().fold((0u32, 0u32), |acc, &r| {
        (acc.0 + an.agg[r].chars, acc.1 + an.agg[r].link_chars)
    });
    let signals = confidence::Signals {
        agree_precision,
        agree_recall,
        length,
        sentences,
        link_density: links.1 as f32 / links.0.max(1) as f32,
        article: f32::from(u8::from(page_kind == PageKind::Article)),
        fallback: f32::from(u8::from(fallback)),
        whole_story: f32::from(u8::from(whole_story)),
        coverage: (text::char_len(&text) as f32 / prep.page_chars().max(1) as f32).min(1.0),
        balance: {
            let (a, b) = (text::char_len(&text), text::char_len(&second_opinion));
            a.min(b) as f32 / a.max(b).max(1) as f32
        },
    };
    let mut x = page_metadata(page, &meta, title, text, page_kind, encoding);
    x.confidence = confidence::confidence(&signals);
    x.signals = signals;
    Ok(x)
}

/// Everything but the body text comes from the page's metadata: assemble the result.
fn page_metadata(
    page: &Page<'_>,
    meta: &metadata::Meta,
    title: Option<String>,
    text: String,
    page_kind: PageKind,
    encoding: &'static encoding_rs::Encoding,
) -> Extracted {
    let site_name = metadata::site_name(meta);
    let authors = metadata::authors(meta);
    let (published_at, modified_at) =
        metadata::dates(meta, page.url, page_kind == PageKind::Listing);
    let declared = [
        meta.html_lang.clone(),
        meta.ld.language.clone(),
        page.content_language.map(String::from),
        meta.get(&["og:locale", "content-language", "language", "dc.language"])
            .map(String::from),
    ];
    let language = lang::decide(&declared, &text);
    let description = meta
        .get(&["og:description", "description", "twitter:description"])
        .map(metadata::html_unescape)
        .or_else(|| meta.ld.description.clone());
    let image = meta
        .get(&[
            "og:image",
            "og:image:url",
            "og:image:secure_url",
            "twitter:image",
            "twitter:image:src",
        ])
        .map(String::from)
        .or_else(|| meta.ld.image.clone())
        .and_then(|h| metadata::absolute(page.url, &h));
    let canonical_url = meta
        .canonical
        .clone()
        .or_else(|| meta.get(&["og:url"]).map(String::from))
        .and_then(|h| metadata::absolute(page.url, &h));
    Extracted {
        title,
        authors,
        published_at,
        modified_at,
        language,
        site_name,
        description,
        image,
        canonical_url,
        text,
        page_kind,
        charset: encoding.name().to_string(),
        confidence: 0.0,
        signals: Signals::default(),
    }
}

/// The largest `<noscript>` block that holds markup ([`NOSCRIPT_DOC_MIN_BYTES`] with paragraphs), parsed:
/// pages rendered by script ship their readable version there (forum crawler views), and the
/// parser keeps it as raw text.
fn noscript_doc(dom: &dom::Dom<'_>) -> Option<scraper::Html> {
    let mut best: Option<&str> = None;
    for (i, node) in dom.nodes.iter().enumerate() {
        if node.tag != dom::Tag::Noscript {
            continue;
        }
        for c in dom.children(i) {
            let t = dom.nodes[c].text;
            if t.len() > NOSCRIPT_DOC_MIN_BYTES
                && t.contains("<p")
                && best.is_none_or(|b| t.len() > b.len())
            {
                best = Some(t);
            }
        }
    }
    Some(scraper::Html::parse_document(best?))
}

/// The metadata of a [`noscript_doc`] (its author sources are what the page itself may lack).
fn noscript_meta(doc: &scraper::Html) -> Option<metadata::Meta> {
    let inner = dom::Dom::build(doc, MAX_NODES).ok()?;
    // Nothing is excluded: only the author sources are read, and those check their zones.
    Some(metadata::collect(&inner, &vec![false; inner.nodes.len()]))
}

/// The main text of a [`noscript_doc`], extracted as a page of its own (`wide`: as a page that is
/// not an article, see [`listing`]).
fn noscript_text(doc: &scraper::Html, title: Option<&str>, wide: bool) -> Option<String> {
    let inner = dom::Dom::build(doc, MAX_NODES).ok()?;
    let prep = content::Prepared::new(&inner);
    let an = prep.analyse(&inner, 0);
    let anchor = content::title_anchor(&inner, &an, title);
    let roots = [content::select_root(&inner, &an, anchor)];
    let paras = content::emit(&inner, &an, &roots, title, false);
    let mut text = clean::finish(paras, title);
    if wide {
        let article = listing::ArticlePath {
            an: &an,
            roots: &roots,
            text_len: text::char_len(&text),
            whole_story: false,
        };
        if let Some(t) = listing::wide_text(&inner, &prep, article, title, false, false) {
            text = t;
        }
    }
    (!text.is_empty()).then_some(text)
}

/// Does the page's metadata say it is an article (JSON-LD article type, og:type=article or a
/// publication date)?
fn article_metadata(meta: &metadata::Meta) -> bool {
    meta.ld.is_article
        || meta.ld.published.is_some()
        || meta
            .get(&["og:type"])
            .is_some_and(|t| t.eq_ignore_ascii_case("article"))
}

/// Does the page's metadata say it is a discussion thread (JSON-LD `DiscussionForumPosting` or
/// `QAPage`), whose replies are its content?
fn thread_metadata(meta: &metadata::Meta) -> bool {
    meta.ld.types.iter().any(|t| {
        let t = t.rsplit('/').next().unwrap_or(t);
        t.eq_ignore_ascii_case("DiscussionForumPosting") || t.eq_ignore_ascii_case("QAPage")
    })
}

/// Does the page's metadata say it shows one item (a product): exactly one JSON-LD `Product`
/// and no item list?
fn single_item(meta: &metadata::Meta) -> bool {
    let ty = |n: &str| {
        meta.ld
            .types
            .iter()
            .filter(|t| t.eq_ignore_ascii_case(n))
            .count()
    };
    ty("product") == 1 && ty("itemlist") == 0 && ty("collectionpage") == 0
}

fn page_kind(
    dom: &dom::Dom<'_>,
    an: &content::Analysis,
    meta: &metadata::Meta,
    roots: &[usize],
    used_wild: bool,
    text: &str,
) -> PageKind {
    let types: Vec<String> = meta
        .ld
        .types
        .iter()
        .map(|t| t.to_ascii_lowercase())
        .collect();
    let has = |names: &[&str]| types.iter().any(|t| names.contains(&t.as_str()));
    if has(&[
        "product",
        "qapage",
        "discussionforumposting",
        "faqpage",
        "softwareapplication",
        "recipe",
        "event",
        "course",
        "jobposting",
    ]) && !meta.ld.is_article
    {
        return PageKind::Other;
    }
    if has(&["collectionpage", "itemlist", "searchresultspage"]) && !meta.ld.is_article {
        return PageKind::Listing;
    }
    let articles = content::article_count(dom, an);
    let agg = roots.iter().fold((0u32, 0u32, 0u32), |acc, &r| {
        let a = &an.agg[r];
        (acc.0 + a.chars, acc.1 + a.link_chars, acc.2 + a.paras)
    });
    // No text at all (a client-rendered shell) says nothing about links.
    let ld = if agg.0 == 0 {
        0.0
    } else {
        agg.1 as f32 / agg.0 as f32
    };
    if articles >= LISTING_MIN_ARTICLES || (ld > LISTING_LINK_DENSITY && agg.2 < LISTING_MAX_PARAS)
    {
        return PageKind::Listing;
    }
    let og_article = meta
        .get(&["og:type"])
        .is_some_and(|t| t.eq_ignore_ascii_case("article"));
    let prose_paras = text
        .split("\n\n")
        .filter(|p| text::char_len(p) >= PROSE_PARA_MIN_CHARS && text::ends_like_sentence(p))
        .count();
    if meta.ld.is_article || og_article || meta.ld.published.is_some() {
        return PageKind::Article;
    }
    if prose_paras >= ARTICLE_MIN_PROSE_PARAS && !used_wild && ld < ARTICLE_MAX_LINK_DENSITY {
        return PageKind::Article;
    }
    PageKind::Other
}

/// Reject obvious binary payloads (images, archives, PDFs) and text with many NUL/control bytes.
fn binary_kind(body: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"%PDF", "PDF"),
        (b"\x89PNG", "PNG image"),
        (b"\xFF\xD8\xFF", "JPEG image"),
        (b"GIF8", "GIF image"),
        (b"PK\x03\x04", "ZIP archive"),
        (b"\x1F\x8B", "gzip data"),
        (b"RIFF", "RIFF media"),
        (b"\x00\x00\x01\x00", "icon"),
        (b"wOF", "web font"),
    ];
    for (m, k) in MAGIC {
        if body.starts_with(m) {
            return Some(k);
        }
    }
    // UTF-16 with BOM is text; otherwise count control bytes in a sample.
    if body.starts_with(b"\xFF\xFE") || body.starts_with(b"\xFE\xFF") {
        return None;
    }
    let sample = &body[..body.len().min(8192)];
    let ctrl = sample
        .iter()
        .filter(|&&b| b < 0x09 || (0x0E..0x20).contains(&b) && b != 0x1B)
        .count();
    if ctrl * 10 > sample.len() {
        return Some("control bytes");
    }
    None
}

/// Nesting estimated on the raw markup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Nesting {
    /// Deepest nesting reached.
    depth: usize,
    /// Sum of the nesting depth at every start tag.
    work: usize,
}

/// HTML elements that a `/>` does not close (the parser ignores the slash on non-void HTML
/// elements: `<div/>` opens a div). Other names with `/>` are taken as self-closing (SVG/MathML).
fn slash_ignored(name: &[u8]) -> bool {
    matches!(
        name,
        b"div"
            | b"section"
            | b"article"
            | b"main"
            | b"header"
            | b"footer"
            | b"nav"
            | b"aside"
            | b"ul"
            | b"ol"
            | b"dl"
            | b"table"
            | b"form"
            | b"fieldset"
            | b"blockquote"
            | b"center"
            | b"figure"
            | b"details"
            | b"h1"
            | b"h2"
            | b"h3"
            | b"h4"
            | b"h5"
            | b"h6"
    )
}

/// Cheap upper estimate of element nesting on the raw markup: counts start tags of non-void
/// elements minus end tags, and sums the depth at every start tag. Stops counting once `max_depth`
/// or `max_work` is exceeded. Linear: every search moves forward (memchr/memmem), and an
/// unterminated comment or raw-text element ends the scan (the parser treats the rest of the
/// document as its content too).
fn nesting(html: &str, max_depth: usize, max_work: usize) -> Nesting {
    let b = html.as_bytes();
    let mut depth: usize = 0;
    let mut max = 0;
    let mut work: usize = 0;
    let mut i = 0;
    let n = b.len();
    // Position of the next `>` at or after `i` (None: there is none left), cached so that many
    // start tags without a `>` cannot make the self-closing check quadratic.
    let mut next_gt: Option<usize> = Some(0);
    while i < n {
        let Some(off) = memchr::memchr(b'<', &b[i..]) else {
            break;
        };
        i += off + 1;
        if i >= n {
            break;
        }
        let c = b[i];
        if c == b'/' {
            // End tag: closes one level, unless it is one of the names never counted as open.
            let start = i + 1;
            let mut k = start;
            while k < n && b[k].is_ascii_alphanumeric() {
                k += 1;
            }
            let (lower, len) = ascii_lower(&b[start..k]);
            if !uncounted(&lower[..len]) {
                depth = depth.saturating_sub(1);
            }
            continue;
        }
        if c == b'!' || c == b'?' {
            // Comments/doctype: skip to the end of the comment.
            if b[i..].starts_with(b"!--") {
                match memchr::memmem::find(&b[i..], b"-->") {
                    Some(e) => i += e + 3,
                    None => break,
                }
            }
            continue;
        }
        if !c.is_ascii_alphabetic() {
            continue;
        }
        let start = i;
        while i < n && b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let name = &b[start..i];
        let (lower, len) = ascii_lower(name);
        let nm = &lower[..len];
        work += depth;
        if work > max_work {
            return Nesting { depth: max, work };
        }
        if uncounted(nm) {
            continue;
        }
        if matches!(nm, b"script" | b"style" | b"textarea" | b"title") {
            // Raw text: skip to the matching end tag.
            match find_end_tag(&b[i..], nm) {
                Some(e) => i += e + 2 + nm.len(),
                None => break,
            }
            continue;
        }
        // Self-closing syntax.
        if next_gt.is_some_and(|g| g < i) {
            next_gt = memchr::memchr(b'>', &b[i..]).map(|g| i + g);
        }
        if let Some(g) = next_gt {
            if g > i && b[g - 1] == b'/' && !slash_ignored(nm) {
                continue;
            }
        }
        depth += 1;
        if depth > max {
            max = depth;
            if max > max_depth {
                break;
            }
        }
    }
    Nesting { depth: max, work }
}

/// Tag name, ASCII-lowercased, truncated to 12 bytes (every name matched here is shorter; a
/// truncated longer name matches none of them).
fn ascii_lower(name: &[u8]) -> ([u8; 12], usize) {
    let mut a = [0u8; 12];
    for (k, ch) in name.iter().take(12).enumerate() {
        a[k] = ch.to_ascii_lowercase();
    }
    (a, name.len().min(12))
}

/// Void elements and elements the parser closes implicitly (`<p>`, `<li>`, `<td>`…): never counted
/// as open, and their end tags close nothing.
fn uncounted(name: &[u8]) -> bool {
    matches!(
        name,
        b"area"
            | b"base"
            | b"br"
            | b"col"
            | b"embed"
            | b"hr"
            | b"img"
            | b"input"
            | b"link"
            | b"meta"
            | b"source"
            | b"track"
            | b"wbr"
            | b"param"
            | b"p"
            | b"li"
            | b"td"
            | b"tr"
            | b"option"
            | b"dt"
            | b"dd"
            | b"th"
    )
}

/// Offset of the first `</name` (ASCII case-insensitive; `name` is lowercase) in `hay`.
fn find_end_tag(hay: &[u8], name: &[u8]) -> Option<usize> {
    let mut k = 0;
    while let Some(off) = memchr::memchr(b'<', &hay[k..]) {
        let at = k + off;
        let rest = &hay[at + 1..];
        if rest.len() > name.len()
            && rest[0] == b'/'
            && rest[1..=name.len()].eq_ignore_ascii_case(name)
        {
            return Some(at);
        }
        k = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(html: &str) -> Result<Extracted, ExtractError> {
        extract(&Page {
            body: html.as_bytes(),
            url: None,
            content_type: None,
            content_language: None,
        })
    }

    #[test]
    fn empty_is_error() {
        assert_eq!(run("  \n "), Err(ExtractError::Empty));
    }

    #[test]
    fn no_content_keeps_the_metadata() {
        let html = r#"<html lang="en"><head><title>Launch day | Example</title>
            <meta property="og:site_name" content="Example">
            <meta name="author" content="Jane Doe">
            <meta property="article:published_time" content="2024-05-03T10:00:00+02:00">
            </head><body><div id="root"></div><script>render()</script></body></html>"#;
        let err = run(html).unwrap_err();
        assert_eq!(err.to_string(), "the page has no extractable text");
        let x = err.partial().expect("metadata of a page without text");
        assert_eq!(x.title.as_deref(), Some("Launch day"));
        assert_eq!(x.authors, vec!["Jane Doe"]);
        assert_eq!(x.published_at.as_deref(), Some("2024-05-03T10:00:00+02:00"));
        assert_eq!(x.language.as_deref(), Some("en"));
        assert!(x.text.is_empty());
        assert!(ExtractError::Empty.partial().is_none());
    }

    #[test]
    fn microdata_author_of_a_forum_post() {
        let post = "<p>I have an old projector and would like to replace it with one that handles \
            4K well, without spending too much on it this year.</p>"
            .repeat(3);
        let html = format!(
            r#"<html><head><title>Projector advice</title></head><body>
            <div class="sidebar-layout">
              <div itemscope itemtype="https://schema.org/DiscussionForumPosting">
                <div itemprop="author" itemscope itemtype="https://schema.org/Person">
                  <span itemprop="name">JosephF</span><span>J</span></div>
                <div class="message-body">{post}</div>
              </div>
              <div itemscope itemtype="https://schema.org/Comment">
                <div itemprop="author" itemscope itemtype="https://schema.org/Person">
                  <span itemprop="name">Replier</span></div><p>Get the Epson.</p>
              </div>
            </div>
            <aside class="related"><article itemscope itemtype="https://schema.org/Article">
              <div itemprop="author" itemscope itemtype="https://schema.org/Person">
              <span itemprop="name">Other Writer</span></div></article></aside>
            </body></html>"#
        );
        let x = run(&html).unwrap_or_else(|e| e.partial().expect("metadata").clone());
        assert_eq!(x.authors, vec!["JosephF"]);
    }

    #[test]
    fn dated_texts_are_not_crowded_out_by_bylines() {
        let body = "<p>Choosing an electric bike for your commute depends on range, motor power \
            and the hills on your way to work, so start from the trip you make most days.</p>"
            .repeat(4);
        let names = r#"<span class="author-name">Shop Team</span>"#.repeat(5);
        let html = format!(
            r#"<html><head><title>How to choose an e-bike</title></head><body>
            <div class="elementor-widget-wrap">{names}
              <span class="post-date"><time>December 3, 2025</time></span></div>
            <article>{body}</article></body></html>"#
        );
        let x = run(&html).expect("text");
        assert_eq!(x.published_at.as_deref(), Some("2025-12-03"));
    }

    #[test]
    fn shown_date_breaks_a_tie_between_json_ld_and_meta() {
        let body = "<p>Streaming services change their prices and catalogues every few months, \
            so we test them again and update this guide with what we found this time.</p>"
            .repeat(4);
        let page = |shown: &str| {
            format!(
                r#"<html><head><title>Best streaming services</title>
                <meta name="date" content="November 25, 2025">
                <script type="application/ld+json">{{"@type":"NewsArticle",
                "headline":"Best streaming services","datePublished":"2024-08-29T10:00:00Z"}}</script>
                </head><body><article><h1>Best streaming services</h1>
                <div class="info">{shown}</div>{body}</article></body></html>"#
            )
        };
        let x = run(&page("Nov 25, 2025 5:00 am PST")).expect("text");
        assert_eq!(x.published_at.as_deref(), Some("2025-11-25"));
        // Nothing shown, or the JSON-LD day shown: JSON-LD stays first.
        let x = run(&page("")).expect("text");
        assert_eq!(x.published_at.as_deref(), Some("2024-08-29T10:00:00Z"));
        let x = run(&page("Aug 29, 2024")).expect("text");
        assert_eq!(x.published_at.as_deref(), Some("2024-08-29T10:00:00Z"));
    }

    #[test]
    fn time_shown_by_the_title_beats_a_latest_reply_box() {
        let post = "<p>Which graphics card gives the best value for a 1440p monitor this year, \
            and is it worth waiting for the next generation before buying one?</p>"
            .repeat(3);
        let html = format!(
            r#"<html><head><title>GPU comparison</title></head><body>
            <div class="latest">Last reply <time datetime="2024-11-02T01:58:19-0400">1:58 AM</time></div>
            <h1>GPU comparison</h1><div>ridwan123</div><div>Nov 1, 2024</div>
            <article><time datetime="2024-11-01T15:45:44-0400"></time>{post}</article>
            </body></html>"#
        );
        let x = run(&html).expect("text");
        assert_eq!(x.published_at.as_deref(), Some("2024-11-01T15:45:44-04:00"));
    }

    fn depth(html: &str) -> usize {
        nesting(html, 4000, usize::MAX).depth
    }

    #[test]
    fn depth_estimate() {
        assert_eq!(depth("<div><p>a<p>b</div><br><img/>"), 1);
        assert!(depth(&"<div>".repeat(10_000)) > 4000);
        // The slash does not close a non-void HTML element; it does close SVG elements.
        assert!(depth(&"<div/>".repeat(10_000)) > 4000);
        assert_eq!(
            depth(&format!("<svg>{}</svg>", "<path d=''/>".repeat(10_000))),
            1
        );
        // Raw text and comments hide tags; unterminated ones end the scan.
        assert_eq!(depth("<script>if (a<b) { x = '<div>'; }</script><div>"), 1);
        assert_eq!(depth("<div><!-- <div><div>"), 1);
        assert_eq!(depth("<div><title><div><div>"), 1);
    }

    #[test]
    fn nesting_work_is_the_sum_of_start_tag_depths() {
        assert_eq!(
            nesting("<div><div><p></p><p></p></div></div>", 100, 1000).work,
            5
        );
        let deep = format!("{}{}", "<div>".repeat(1000), "<p>".repeat(100_000));
        let n = nesting(&deep, 4000, 1_000_000);
        assert!(n.work > 1_000_000, "{n:?}");
    }

    #[test]
    fn pathological_nesting_is_refused_before_parsing() {
        let selfclosed = "<div/>".repeat(100_000);
        assert!(matches!(
            run(&selfclosed),
            Err(ExtractError::TooDeep { .. })
        ));
        let repeated = format!("{}{}", "<div>".repeat(3_000), "<p>x</p>".repeat(10_000));
        assert!(matches!(
            run(&repeated),
            Err(ExtractError::TooComplex { .. })
        ));
    }
}
