//! One pre-order arena over scraper's tree: every node gets an index, each subtree is the contiguous
//! range `i..end`. Per element: tag, parent, class/id hint flags. Built iteratively (no recursion),
//! so arbitrarily deep documents cannot overflow the stack. React-streamed segments (hidden
//! `S:x` divs at the end of the body) are put back in place of their `B:x`/`P:x` placeholders.

use aho_corasick::AhoCorasick;
use ego_tree::NodeRef;
use scraper::node::Element;
use scraper::{Html, Node as SNode};
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Tag {
    Text,
    Document,
    Html,
    Head,
    Body,
    Title,
    Meta,
    Link,
    Script,
    Style,
    Noscript,
    Template,
    Svg,
    Math,
    Iframe,
    Object,
    Embed,
    Canvas,
    Video,
    Audio,
    Picture,
    Img,
    A,
    P,
    Div,
    Section,
    Article,
    Main,
    Header,
    Footer,
    Nav,
    Aside,
    Form,
    Button,
    Input,
    Select,
    Textarea,
    Label,
    Option,
    H1,
    H2,
    H3,
    H4,
    H5,
    H6,
    Ul,
    Ol,
    Li,
    Dl,
    Dt,
    Dd,
    Blockquote,
    Pre,
    Table,
    Tr,
    Td,
    Th,
    Caption,
    Figure,
    Figcaption,
    Br,
    Hr,
    Time,
    Address,
    Dialog,
    Menu,
    Details,
    Summary,
    Center,
    Span,
    /// Any other element (inline formatting and unknown tags).
    Other,
}

impl Tag {
    fn from_name(n: &str) -> Tag {
        use Tag::*;
        match n {
            "html" => Html,
            "head" => Head,
            "body" => Body,
            "title" => Title,
            "meta" => Meta,
            "link" => Link,
            "script" => Script,
            "style" => Style,
            "noscript" => Noscript,
            "template" => Template,
            "svg" => Svg,
            "math" => Math,
            "iframe" | "frame" | "frameset" => Iframe,
            "object" | "applet" => Object,
            "embed" => Embed,
            "canvas" => Canvas,
            "video" => Video,
            "audio" => Audio,
            "picture" => Picture,
            "img" => Img,
            "a" => A,
            "p" => P,
            "div" => Div,
            "section" => Section,
            "article" => Article,
            "main" => Main,
            "header" => Header,
            "footer" => Footer,
            "nav" => Nav,
            "aside" => Aside,
            "form" => Form,
            "button" => Button,
            "input" => Input,
            "select" => Select,
            "textarea" => Textarea,
            "label" => Label,
            "option" | "optgroup" | "datalist" => Option,
            "h1" => H1,
            "h2" => H2,
            "h3" => H3,
            "h4" => H4,
            "h5" => H5,
            "h6" => H6,
            "ul" => Ul,
            "ol" => Ol,
            "li" => Li,
            "dl" => Dl,
            "dt" => Dt,
            "dd" => Dd,
            "blockquote" => Blockquote,
            "pre" | "listing" | "plaintext" | "xmp" => Pre,
            "table" => Table,
            "tr" => Tr,
            "td" => Td,
            "th" => Th,
            "caption" => Caption,
            "figure" => Figure,
            "figcaption" => Figcaption,
            "br" => Br,
            "hr" => Hr,
            "time" => Time,
            "address" => Address,
            "dialog" => Dialog,
            "menu" => Menu,
            "details" => Details,
            "summary" => Summary,
            "center" => Center,
            "span" => Span,
            _ => Other,
        }
    }

    pub fn is_heading(self) -> bool {
        matches!(
            self,
            Tag::H1 | Tag::H2 | Tag::H3 | Tag::H4 | Tag::H5 | Tag::H6
        )
    }

    /// Elements that start a new line/paragraph in the output.
    pub fn is_block(self) -> bool {
        use Tag::*;
        !matches!(
            self,
            Text | A | Span | Other | Img | Time | Label | Br | Picture | Input | Button | Select
        )
    }

    /// Removed with their content wherever they are.
    pub fn is_junk(self) -> bool {
        use Tag::*;
        matches!(
            self,
            Head | Title
                | Meta
                | Link
                | Script
                | Style
                | Noscript
                | Template
                | Svg
                | Math
                | Iframe
                | Object
                | Embed
                | Canvas
                | Video
                | Audio
                | Button
                | Input
                | Select
                | Textarea
                | Option
                | Dialog
        )
    }
}

// Class/id hint flags.
/// A class or id token longer than this is no word of a hint ("comment", "sidebar"): hashed or
/// generated names ("css-1x2y3z…") are skipped.
const HINT_TOKEN_MAX_BYTES: usize = 13;
/// A class or id value longer than this (utility-class soup) is not read for hints at all.
const HINT_ATTR_MAX_BYTES: usize = 400;
/// An inline style longer than this is not read for hiding (`display:none` sits in short ones).
const STYLE_MAX_BYTES: usize = 500;

pub const F_COMMENT: u32 = 1 << 0;
pub const F_SHARE: u32 = 1 << 1;
pub const F_NEWSLETTER: u32 = 1 << 2;
pub const F_COOKIE: u32 = 1 << 3;
pub const F_RELATED: u32 = 1 << 4;
pub const F_NAV: u32 = 1 << 5;
pub const F_SIDEBAR: u32 = 1 << 6;
pub const F_AD: u32 = 1 << 7;
pub const F_FOOTER: u32 = 1 << 8;
pub const F_TAGS: u32 = 1 << 9;
pub const F_BYLINE: u32 = 1 << 10;
pub const F_CAPTION: u32 = 1 << 11;
pub const F_HIDDEN: u32 = 1 << 12;
pub const F_BODY: u32 = 1 << 13;
pub const F_CONTENT: u32 = 1 << 14;
pub const F_TITLE: u32 = 1 << 15;
pub const F_HEADER: u32 = 1 << 16;
pub const F_META: u32 = 1 << 17;
pub const F_POPUP: u32 = 1 << 18;

/// Flags that mark boilerplate.
pub const F_BOILER: u32 = F_COMMENT
    | F_SHARE
    | F_NEWSLETTER
    | F_COOKIE
    | F_RELATED
    | F_NAV
    | F_SIDEBAR
    | F_AD
    | F_FOOTER
    | F_TAGS
    | F_BYLINE
    | F_CAPTION
    | F_HIDDEN
    | F_HEADER
    | F_META
    | F_POPUP;

/// Substring patterns (matched anywhere in a lowercased class/id value).
const SUBSTR: &[(&str, u32)] = &[
    ("comment", F_COMMENT),
    ("disqus", F_COMMENT),
    ("respond", F_COMMENT),
    ("share", F_SHARE),
    ("social", F_SHARE),
    ("sharing", F_SHARE),
    ("newsletter", F_NEWSLETTER),
    ("subscribe", F_NEWSLETTER),
    ("signup", F_NEWSLETTER),
    ("sign-up", F_NEWSLETTER),
    ("cookie", F_COOKIE),
    ("consent", F_COOKIE),
    ("gdpr", F_COOKIE),
    ("related", F_RELATED),
    ("recommend", F_RELATED),
    ("more-stories", F_RELATED),
    ("read-more", F_RELATED),
    ("readmore", F_RELATED),
    ("also-read", F_RELATED),
    ("most-popular", F_RELATED),
    ("mostpopular", F_RELATED),
    ("most-read", F_RELATED),
    ("trending", F_RELATED),
    ("outbrain", F_AD),
    ("taboola", F_AD),
    ("advert", F_AD),
    ("sponsor", F_AD),
    ("dfp", F_AD),
    ("breadcrumb", F_NAV),
    ("pagination", F_NAV),
    ("navbar", F_NAV),
    ("sidebar", F_SIDEBAR),
    ("widget", F_SIDEBAR),
    ("byline", F_BYLINE),
    ("author", F_BYLINE),
    ("dateline", F_BYLINE),
    ("timestamp", F_BYLINE),
    ("caption", F_CAPTION),
    ("credit", F_CAPTION),
    ("sr-only", F_HIDDEN),
    ("visually-hidden", F_HIDDEN),
    ("screen-reader", F_HIDDEN),
    ("articlebody", F_BODY),
    ("article-body", F_BODY),
    ("article_body", F_BODY),
    ("article__body", F_BODY),
    ("article-content", F_BODY),
    ("article_content", F_BODY),
    ("article__content", F_BODY),
    ("articlecontent", F_BODY),
    ("article-text", F_BODY),
    ("articletext", F_BODY),
    ("entry-content", F_BODY),
    ("entry_content", F_BODY),
    ("post-content", F_BODY),
    ("post_content", F_BODY),
    ("postcontent", F_BODY),
    ("post-body", F_BODY),
    ("post_body", F_BODY),
    ("postbody", F_BODY),
    ("post-entry", F_BODY),
    ("story-body", F_BODY),
    ("storybody", F_BODY),
    ("story-content", F_BODY),
    ("story-text", F_BODY),
    ("body-text", F_BODY),
    ("bodytext", F_BODY),
    ("text-body", F_BODY),
    ("main-content", F_CONTENT),
    ("maincontent", F_CONTENT),
    ("page-content", F_CONTENT),
    ("rich-text", F_BODY),
    ("richtext", F_BODY),
    ("wysiwyg", F_BODY),
    ("mw-parser-output", F_BODY),
    ("field-body", F_BODY),
    ("field--name-body", F_BODY),
    ("blog-content", F_BODY),
    ("blog-post-content", F_BODY),
    ("news-content", F_BODY),
    ("news-text", F_BODY),
    ("content-body", F_BODY),
    ("article-detail", F_CONTENT),
    ("headline", F_TITLE),
    ("popup", F_POPUP),
    ("modal", F_POPUP),
    ("overlay", F_POPUP),
    ("paywall", F_POPUP),
];

/// Exact tokens (class/id values split on `-`, `_` and spaces): a `match`, which compiles to a
/// length switch instead of a linear scan of string comparisons.
fn token_flag(tok: &str) -> u32 {
    match tok {
        "ad" => F_AD,
        "ads" => F_AD,
        "adv" => F_AD,
        "advertisement" => F_AD,
        "promo" => F_AD,
        "promotion" => F_AD,
        "banner" => F_AD,
        "nav" => F_NAV,
        "navigation" => F_NAV,
        "menu" => F_NAV,
        "pager" => F_NAV,
        "skip" => F_NAV,
        "footer" => F_FOOTER,
        "foot" => F_FOOTER,
        "copyright" => F_FOOTER,
        "header" => F_HEADER,
        "masthead" => F_HEADER,
        "topbar" => F_HEADER,
        "toolbar" => F_NAV,
        "tags" => F_TAGS,
        "tag" => F_TAGS,
        "tagged" => F_TAGS,
        "keywords" => F_TAGS,
        "topics" => F_TAGS,
        "categories" => F_TAGS,
        "meta" => F_META,
        "metadata" => F_META,
        "info" => F_META,
        "date" => F_BYLINE,
        "time" => F_BYLINE,
        "aside" => F_SIDEBAR,
        "rail" => F_SIDEBAR,
        "sidebar" => F_SIDEBAR,
        "side" => F_SIDEBAR,
        "follow" => F_SHARE,
        "content" => F_CONTENT,
        "article" => F_CONTENT,
        "story" => F_CONTENT,
        "post" => F_CONTENT,
        "entry" => F_CONTENT,
        "main" => F_CONTENT,
        "text" => F_CONTENT,
        "body" => F_CONTENT,
        "title" => F_TITLE,
        _ => 0,
    }
}

static AC: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(SUBSTR.iter().map(|(p, _)| *p)).expect("static patterns"));

/// Whole class/id words that hide an element on screen. Only whole words: parts of longer names
/// say something else ("field-label-hidden" hides a label, not the field; "hidden-xs" hides on
/// phones only; "no-print"/"hidden-print" are visible on screen).
fn whole_word_flag(v: &str) -> u32 {
    match v {
        "hidden" | "hide" | "is-hidden" | "u-hidden" | "d-none" | "invisible" | "print-only"
        | "visible-print" | "show-for-print" | "printonly" => F_HIDDEN,
        _ => 0,
    }
}

/// Class values that label a state or a taxonomy term rather than the element's role: `has-comments`,
/// `no-sidebar`, `is-sticky` (states) and `tag-<slug>`, `category-<slug>` (the post's terms, which
/// CMSs put on the article element: `tag-social-media` says nothing about a share bar). Their words
/// give no hint. Whole-word hiding classes (`is-hidden`) are still read.
fn is_label_class(v: &str) -> bool {
    const PREFIXES: [&str; 5] = ["has-", "no-", "is-", "tag-", "category-"];
    whole_word_flag(v) == 0 && PREFIXES.iter().any(|p| v.starts_with(p))
}

/// Flags from one class/id value (already lowercased).
fn value_flags(v: &str) -> u32 {
    let mut f = whole_word_flag(v);
    for m in AC.find_overlapping_iter(v) {
        f |= SUBSTR[m.pattern().as_usize()].1;
    }
    // Page builders call every block a widget (`elementor-widget-text-editor`): no sidebar hint.
    if v.starts_with("elementor-") {
        f &= !F_SIDEBAR;
    }
    // An embedded post (`social-media-embed`, `twitter-embed`) is quoted content, not a share bar.
    if f & F_SHARE != 0 && v.contains("embed") {
        f &= !F_SHARE;
    }
    for tok in v.split(|c: char| c == '-' || c == '_' || c.is_whitespace()) {
        if !tok.is_empty() && tok.len() <= HINT_TOKEN_MAX_BYTES {
            f |= token_flag(tok);
        }
    }
    f
}

/// Value of a plain (no namespace, no prefix) attribute: the same lookup as scraper's
/// `Element::attr`, without interning `name` as an atom on every call (hashing plus, for names
/// outside the static set, a global lock).
pub fn attr<'a>(e: &'a Element, name: &str) -> Option<&'a str> {
    e.attrs
        .iter()
        .find(|(q, _)| q.prefix.is_none() && q.ns.is_empty() && &*q.local == name)
        .map(|(_, v)| &**v)
}

fn element_flags(e: &Element, lower: &mut String) -> u32 {
    // One pass over the attributes instead of one lookup per name.
    let (mut class, mut id, mut style, mut role, mut itemprop) = (None, None, None, None, None);
    let mut f = 0;
    for (q, v) in &e.attrs {
        if q.prefix.is_some() || !q.ns.is_empty() {
            continue;
        }
        let v: &str = v;
        match &*q.local {
            "class" => class = Some(v),
            "id" => id = Some(v),
            "hidden" => f |= F_HIDDEN,
            "aria-hidden" if v == "true" => f |= F_HIDDEN,
            "style" => style = Some(v),
            "role" => role = Some(v),
            "itemprop" => itemprop = Some(v),
            _ => {}
        }
    }
    for v in [class, id].into_iter().flatten() {
        if v.len() > HINT_ATTR_MAX_BYTES {
            continue;
        }
        lower.clear();
        lower.push_str(v);
        lower.make_ascii_lowercase();
        // CamelCase ids ("articleBody") are covered by lowercasing + substrings.
        for part in lower.split_ascii_whitespace() {
            if !is_label_class(part) {
                f |= value_flags(part);
            }
        }
    }
    if let Some(s) = style {
        if s.len() < STYLE_MAX_BYTES {
            let s: String = s
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_lowercase();
            if s.contains("display:none") || s.contains("visibility:hidden") {
                f |= F_HIDDEN;
            }
        }
    }
    if let Some(r) = role {
        f |= match r {
            "navigation" | "menu" | "menubar" => F_NAV,
            "complementary" => F_SIDEBAR,
            "banner" => F_HEADER,
            "contentinfo" => F_FOOTER,
            "dialog" | "alertdialog" => F_POPUP,
            "main" => F_CONTENT,
            "article" => F_CONTENT,
            _ => 0,
        };
    }
    if let Some(ip) = itemprop {
        if ip.contains("articleBody") || ip == "text" || ip.contains("reviewBody") {
            f |= F_BODY;
        }
        if ip == "author" || ip == "datePublished" || ip == "dateModified" {
            f |= F_BYLINE;
        }
    }
    // A body hint on the same element outweighs weak boilerplate words ("content-meta" etc.).
    f
}

/// React streaming (`renderToPipeableStream`) sends the slow parts of a page last, each in a
/// `<div hidden id="S:x">` that a script moves to its placeholder `<template id="B:x">` or
/// `<template id="P:x">`. Without scripts that content is hidden at the end of the body: the segments
/// (key `x`, node) whose placeholder is in the page, so the arena can put them back in place.
/// Pages without placeholders cost one pass over the nodes' tags.
fn react_segments(html: &Html) -> Vec<(&str, NodeRef<'_, SNode>)> {
    let mut keys: HashSet<&str> = HashSet::new();
    for n in html.tree.nodes() {
        if let Some(e) = n.value().as_element() {
            if e.name() == "template" {
                if let Some(k) = attr(e, "id").and_then(placeholder_key) {
                    keys.insert(k);
                }
            }
        }
    }
    if keys.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<(&str, NodeRef<'_, SNode>)> = Vec::new();
    for n in html.tree.nodes() {
        if let Some(e) = n.value().as_element() {
            if e.name() == "div" && attr(e, "hidden").is_some() {
                if let Some(k) = attr(e, "id").and_then(|id| id.strip_prefix("S:")) {
                    // The first segment of a key wins (`remove`: later duplicates stay hidden).
                    if keys.remove(k) {
                        out.push((k, n));
                    }
                }
            }
        }
    }
    out
}

/// The segment key of a React placeholder template id (`B:3`, `P:a` -> `3`, `a`).
fn placeholder_key(id: &str) -> Option<&str> {
    id.strip_prefix("B:").or_else(|| id.strip_prefix("P:"))
}

struct Builder<'a> {
    nodes: Vec<Node<'a>>,
    stack: Vec<u32>,
    lower: String,
    max_nodes: usize,
    total: usize,
}

impl<'a> Builder<'a> {
    /// Open a node; `shown` clears the hidden flag (a streamed segment put back in place).
    fn open(&mut self, n: NodeRef<'a, SNode>, shown: bool) -> Result<(), TooManyNodes> {
        let (tag, text, elem, mut flags) = match n.value() {
            SNode::Document | SNode::Fragment => (Tag::Document, "", None, 0),
            SNode::Text(t) => (Tag::Text, &**t, None, 0),
            SNode::Element(e) => {
                let tag = Tag::from_name(e.name());
                (tag, "", Some(e), element_flags(e, &mut self.lower))
            }
            _ => (Tag::Other, "", None, 0),
        };
        if shown {
            flags &= !F_HIDDEN;
        }
        let idx = self.nodes.len() as u32;
        let parent = self.stack.last().copied().unwrap_or(u32::MAX);
        self.nodes.push(Node {
            tag,
            parent,
            end: idx + 1,
            flags,
            text,
            elem,
        });
        if self.nodes.len() > self.max_nodes {
            return Err(TooManyNodes(self.total));
        }
        self.stack.push(idx);
        Ok(())
    }

    fn close(&mut self) {
        if let Some(i) = self.stack.pop() {
            self.nodes[i as usize].end = self.nodes.len() as u32;
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    pub tag: Tag,
    pub parent: u32,
    /// Exclusive end of the subtree.
    pub end: u32,
    pub flags: u32,
    /// Text of a text node ("" for elements).
    pub text: &'a str,
    pub elem: Option<&'a Element>,
}

pub struct Dom<'a> {
    pub nodes: Vec<Node<'a>>,
}

/// The document is too complex to process within bounds.
#[derive(Debug)]
pub struct TooManyNodes(pub usize);

impl<'a> Dom<'a> {
    pub fn build(html: &'a Html, max_nodes: usize) -> Result<Dom<'a>, TooManyNodes> {
        let segments = react_segments(html);
        let mut b = Builder {
            nodes: Vec::with_capacity(html.tree.nodes().len().min(max_nodes)),
            stack: Vec::with_capacity(64),
            lower: String::new(),
            max_nodes,
            total: html.tree.nodes().len(),
        };
        if segments.is_empty() {
            for edge in html.tree.root().traverse() {
                match edge {
                    ego_tree::iter::Edge::Open(n) => b.open(n, false)?,
                    ego_tree::iter::Edge::Close(_) => b.close(),
                }
            }
        } else {
            // Pre-order walk that puts each streamed segment where its placeholder is.
            enum Step<'b> {
                Open(NodeRef<'b, SNode>, bool),
                Close,
            }
            let index: HashMap<&str, usize> = segments
                .iter()
                .enumerate()
                .map(|(t, (k, _))| (*k, t))
                .collect();
            let moved: HashSet<ego_tree::NodeId> = segments.iter().map(|(_, s)| s.id()).collect();
            let mut placed = vec![false; segments.len()];
            let mut work = vec![Step::Open(html.tree.root(), false)];
            while let Some(step) = work.pop() {
                match step {
                    Step::Close => b.close(),
                    Step::Open(n, injected) => {
                        if !injected && moved.contains(&n.id()) {
                            continue;
                        }
                        b.open(n, injected)?;
                        let target = n
                            .value()
                            .as_element()
                            .filter(|e| e.name() == "template")
                            .and_then(|e| attr(e, "id"))
                            .and_then(placeholder_key)
                            .and_then(|k| index.get(k).copied());
                        if let Some(t) = target.filter(|&t| !placed[t]) {
                            placed[t] = true;
                            work.push(Step::Open(segments[t].1, true));
                        }
                        work.push(Step::Close);
                        for c in n.children().rev() {
                            work.push(Step::Open(c, false));
                        }
                    }
                }
            }
        }
        Ok(Dom { nodes: b.nodes })
    }

    pub fn attr(&self, i: usize, name: &str) -> Option<&'a str> {
        self.nodes[i].elem.and_then(|e| attr(e, name))
    }

    /// Children of `i`, in order.
    pub fn children(&self, i: usize) -> Children<'_, 'a> {
        Children {
            dom: self,
            next: i + 1,
            end: self.nodes[i].end as usize,
        }
    }

    /// Concatenated raw text of the subtree (skipping scripts etc.).
    pub fn text_of(&self, i: usize, out: &mut String) {
        let end = self.nodes[i].end as usize;
        let mut j = i + 1;
        while j < end {
            let n = &self.nodes[j];
            if n.tag == Tag::Text {
                out.push_str(n.text);
                j += 1;
            } else if n.tag.is_junk() {
                j = n.end as usize;
            } else {
                j += 1;
            }
        }
    }
}

pub struct Children<'d, 'a> {
    dom: &'d Dom<'a>,
    next: usize,
    end: usize,
}

impl Iterator for Children<'_, '_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.next >= self.end {
            return None;
        }
        let i = self.next;
        self.next = self.dom.nodes[i].end as usize;
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_from_classes() {
        assert_ne!(value_flags("social-share-bar") & F_SHARE, 0);
        assert_ne!(value_flags("entry-content") & F_BODY, 0);
        assert_ne!(value_flags("ad") & F_AD, 0);
        assert_eq!(value_flags("headroom") & F_AD, 0);
        assert_eq!(value_flags("shadow") & F_AD, 0);
        assert_ne!(value_flags("sidebar-widget") & F_SIDEBAR, 0);
        assert_eq!(value_flags("elementor-widget-text-editor") & F_SIDEBAR, 0);
        assert_eq!(value_flags("social-media-embed") & F_SHARE, 0);
        assert_ne!(value_flags("social-share") & F_SHARE, 0);
    }

    fn flags_of(html: &str, tag: Tag) -> u32 {
        let doc = Html::parse_document(html);
        let dom = Dom::build(&doc, 1000).expect("small page");
        let node = dom.nodes.iter().find(|n| n.tag == tag).expect("element");
        node.flags
    }

    #[test]
    fn react_streamed_segments_are_put_back_at_their_placeholders() {
        let html = "<body><main><p>Intro</p><template id=\"B:0\"></template><p>Outro</p></main>\
                    <div hidden id=\"S:0\"><p>Streamed <template id=\"P:1\"></template></p></div>\
                    <div hidden id=\"S:1\">part</div><div hidden id=\"S:9\">kept hidden</div></body>";
        let doc = Html::parse_document(html);
        let dom = Dom::build(&doc, 1000).expect("small page");
        let texts: Vec<&str> = dom
            .nodes
            .iter()
            .filter(|n| n.tag == Tag::Text)
            .map(|n| n.text)
            .collect();
        assert_eq!(
            texts,
            ["Intro", "Streamed ", "part", "Outro", "kept hidden"]
        );
        let main = dom
            .nodes
            .iter()
            .position(|n| n.tag == Tag::Main)
            .expect("main");
        let streamed = dom
            .nodes
            .iter()
            .position(|n| n.text == "Streamed ")
            .expect("segment");
        assert!(streamed < dom.nodes[main].end as usize);
        // The segment is shown; a hidden div without a placeholder stays hidden.
        let seg = dom.nodes[streamed].parent as usize;
        assert_eq!(
            dom.nodes[dom.nodes[seg].parent as usize].flags & F_HIDDEN,
            0
        );
        let other = dom
            .nodes
            .iter()
            .position(|n| n.text == "kept hidden")
            .expect("div");
        assert_ne!(
            dom.nodes[dom.nodes[other].parent as usize].flags & F_HIDDEN,
            0
        );
    }

    #[test]
    fn state_and_taxonomy_classes_give_no_hint() {
        // A blog post element that lists its terms and states: not a comment section or share bar.
        let f = flags_of(
            "<article class=\"post hentry tag-social-media category-tips has-comments no-sidebar\">x</article>",
            Tag::Article,
        );
        assert_eq!(f & F_BOILER, 0, "{f:x}");
        assert_ne!(
            flags_of("<div class=\"comments has-replies\">x</div>", Tag::Div) & F_COMMENT,
            0
        );
        assert_ne!(
            flags_of("<div class=\"is-hidden\">x</div>", Tag::Div) & F_HIDDEN,
            0
        );
        // Drupal marks published entities: a state, not a date line.
        assert_eq!(value_flags("paragraph-published") & F_BYLINE, 0);
    }
}
