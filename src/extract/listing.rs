//! The wide path for pages that are not one article (forum threads, listings, product, service
//! and collection pages): keep every block of the main area, not the single best-scored block.
//!
//! [`wide_text`] is tried after the article path. Pages whose metadata says article (JSON-LD article
//! type, og:type=article, a publication date) take it only when the article path's container sits
//! in repeated records ([`in_records`]: posts of a thread, sections of a page), or when the article
//! path found next to nothing and the page drops comment-flagged containers (threads whose posts
//! carry comment classes), or when the article path found under 2,500 chars and the wide text is
//! over three times longer (an index page typed Article, a thread of which the article path found
//! one post); their article path is otherwise unchanged. The wide text replaces the
//! article path's only when it is over [`MARGIN`] (1.2) times as long. Steps, each O(n) over the arena:
//! 1. A second analysis ([`content::Prepared::analyse`], reusing the page's preparation) in which
//!    bylines, dates, tags, captions, page headers and blocks hidden by attribute or style are
//!    content ([`WIDE_KEEP`]), and, for threads, comment containers too.
//! 2. [`wide_root`]: the smallest ancestor of the container that holds most of the page's
//!    non-link text (stopping at `<main>` / `role=main`); when the article path found only an
//!    intro (under [`INTRO_BELOW`] chars), most of all its text, linked item titles included.
//! 3. Emission with [`content::prune_wide`]: item titles (links, linked headings) stay; only menus (link
//!    lists whose links are short) are pruned.
//!
//! On a single-item page (a product) lists of item cards under the wide root ([`drop_item_cards`]:
//! related and recommended items) are excluded before emission.

use super::content::{self, Analysis, Prepared};
use super::dom::*;
use super::{clean, text};

/// Class/id hints that are not boilerplate on the wide path: the authors, dates, tags and captions
/// of posts and listed items and page headers (a service page's hero); with `F_HIDDEN`, blocks
/// hidden by attribute or inline style (tabs and accordions of service and product pages) are
/// content too, while class hiding (`sr-only`, `visually-hidden`) still excludes.
const WIDE_KEEP: u32 = F_BYLINE | F_META | F_TAGS | F_CAPTION | F_HIDDEN | F_HEADER;

/// Share of the page's non-link text the wide root must hold.
const WIDE_SHARE: f32 = 0.7;

/// The text the wide root's share is measured in: all of it (item titles are links) or the
/// non-link text only.
fn measure(an: &Analysis, i: usize, links_count: bool) -> u32 {
    if links_count {
        an.agg[i].chars
    } else {
        plain(an, i)
    }
}

fn plain(an: &Analysis, i: usize) -> u32 {
    let a = &an.agg[i];
    a.chars - a.link_chars.min(a.chars)
}

/// The wide content root: the smallest non-excluded ancestor of `from` (or `from` itself) holding
/// at least [`WIDE_SHARE`] of the page's non-link text, or with `links_count` of all its text. A
/// `<main>` / `role=main` element on the way stops the climb.
pub fn wide_root(dom: &Dom<'_>, an: &Analysis, from: usize, links_count: bool) -> usize {
    let n = dom.nodes.len();
    let total = measure(an, an.body, links_count) as f32;
    let mut c = from;
    loop {
        let node = &dom.nodes[c];
        if c == an.body
            || node.tag == Tag::Main
            || dom.attr(c, "role") == Some("main")
            || measure(an, c, links_count) as f32 >= WIDE_SHARE * total
        {
            return c;
        }
        let p = node.parent as usize;
        if p >= n || an.excluded[p] || matches!(dom.nodes[p].tag, Tag::Html | Tag::Document) {
            return c;
        }
        c = p;
    }
}

/// Does the page drop a comment-flagged container that holds text (a thread of posts)?
pub fn has_dropped_comments(dom: &Dom<'_>, an: &Analysis) -> bool {
    let n = dom.nodes.len();
    let mut i = an.body;
    while i < n {
        let node = &dom.nodes[i];
        if node.flags & F_COMMENT != 0 && an.excluded[i] && !node.tag.is_junk() {
            return true;
        }
        i += 1;
    }
    false
}

/// What the article path found: its analysis, its containers and the length of its text
/// (non-whitespace chars).
#[derive(Clone, Copy)]
pub struct ArticlePath<'a> {
    pub an: &'a Analysis,
    pub roots: &'a [usize],
    pub text_len: u32,
    /// A root holds the story's headline and its text ([`content::holds_story`]): the page is
    /// one story, whatever else it shows around it.
    pub whole_story: bool,
}

/// Shortest wide text taken (non-whitespace chars), even over an empty article path: less is a
/// script-rendered page's chrome (a search box, a logo).
const WIDE_MIN_CHARS: u32 = 50;
/// Article-path text below which it is an intro to the items (a listing's lead paragraph holds
/// most of the page's non-link text when the item titles are links): the wide root is then
/// climbed by all text, links included.
const INTRO_BELOW: u32 = 1000;
/// Article-path text under which a page whose metadata says article, outside repeated records,
/// is tried on the wide path: it may be a listing whose intro is all the article path found, or
/// a thread of which it found one post.
const ARTICLE_PART_BELOW: u32 = 2500;
/// How much longer than the text it replaces the wide text must be.
const MARGIN: f32 = 1.2;
/// How much longer than the article path's text that page's wide text must be (a short article's
/// related links add less).
const PART_MARGIN: f32 = 3.0;
/// Non-article text below which comment-flagged containers are tried as the content.
const COMMENTS_AS_CONTENT_BELOW: u32 = 2000;
/// The same for pages whose metadata says article: their article path found next to nothing.
const ARTICLE_COMMENTS_BELOW: u32 = 500;

/// The wide path's text, when it gives clearly more (over [`MARGIN`]) than the article path's.
/// With `is_article` (the metadata says article) only when the container sits in repeated
/// records, when the article path found under [`ARTICLE_PART_BELOW`] chars and the wide text is
/// over [`PART_MARGIN`] times longer, or when the article path found under
/// [`ARTICLE_COMMENTS_BELOW`] chars. When the result is still short and the page drops
/// comment-flagged containers, those are tried as the content (forum posts).
pub fn wide_text(
    dom: &Dom<'_>,
    prep: &Prepared,
    article: ArticlePath<'_>,
    title: Option<&str>,
    is_article: bool,
    single_item: bool,
) -> Option<String> {
    let ArticlePath {
        an,
        roots,
        text_len: current_len,
        whole_story,
    } = article;
    let &first = roots.first()?;
    // The wide path never fires on a page that holds one story, however short: what it would add
    // is the page around the story (a river of headlines, the next article).
    if is_article && whole_story {
        return None;
    }
    let in_rec = is_article && in_records(dom, an, first);
    // A page whose metadata says article but whose article path found only a part of it (a
    // listing's intro, one post of a thread) takes the wide text only when that is far longer.
    let part_only = is_article && !in_rec && current_len < ARTICLE_PART_BELOW;
    let records = !is_article || in_rec || part_only;
    let margin = if part_only { PART_MARGIN } else { MARGIN };
    // An article's comments are never its content; a page whose metadata says article but whose
    // article path found next to nothing is a thread whose posts carry comment classes.
    let comments_below = if is_article {
        ARTICLE_COMMENTS_BELOW
    } else {
        COMMENTS_AS_CONTENT_BELOW
    };
    let comments = current_len < comments_below && has_dropped_comments(dom, an);
    if !records && !comments {
        return None;
    }
    // The emitted text is at most the root's characters: skip emitting and cleaning when that
    // cannot beat `over` by [`MARGIN`].
    let render = |an: &Analysis, from: usize, over: u32| {
        let root = wide_root(dom, an, from, current_len < INTRO_BELOW);
        (an.agg[root].chars as f32 > MARGIN * over as f32)
            .then(|| clean::finish(content::emit(dom, an, &[root], title, true), title))
    };
    let mut best = None;
    // Under WIDE_MIN_CHARS the wide path has found page chrome, not content.
    let mut best_len = current_len.max(WIDE_MIN_CHARS);
    if records {
        let mut wide_an = prep.analyse(dom, WIDE_KEEP);
        if single_item {
            let root = wide_root(dom, &wide_an, first, current_len < INTRO_BELOW);
            drop_item_cards(dom, &mut wide_an, root);
        }
        if let Some(wt) = render(&wide_an, first, best_len) {
            let wl = text::char_len(&wt);
            if wl as f32 > margin * best_len as f32 {
                best = Some(wt);
                best_len = wl;
            }
        }
    }
    if best_len < COMMENTS_AS_CONTENT_BELOW && comments {
        let an2 = prep.analyse(dom, WIDE_KEEP | F_COMMENT);
        let r = content::select_root(dom, &an2, None);
        if !is_article || in_records(dom, &an2, r) {
            if let Some(t2) = render(&an2, r, best_len) {
                if text::char_len(&t2) as f32 > MARGIN * best_len as f32 {
                    best = Some(t2);
                }
            }
        }
    }
    best
}

/// Link-dense blocks of long links (lists of item cards: related and recommended items) on a
/// single-item page (a product): they are not the item's content, so they are excluded under
/// `root`, unless together they hold over [`CARDS_SHARE`] of its text (then they are the content).
/// Menus (short links) are left to [`content::prune_wide`].
fn drop_item_cards(dom: &Dom<'_>, an: &mut Analysis, root: usize) {
    let end = dom.nodes[root].end as usize;
    // Images under each node of the root's subtree (indexed from `root`).
    let mut imgs = vec![0u32; end - root];
    for k in (root + 1..end).rev() {
        if matches!(dom.nodes[k].tag, Tag::Img | Tag::Picture) {
            imgs[k - root] += 1;
        }
        let p = dom.nodes[k].parent as usize;
        if p >= root && p < end {
            imgs[p - root] += imgs[k - root];
        }
    }
    let mut cards_at = Vec::new();
    let mut card_chars = 0;
    let mut i = root + 1;
    while i < end {
        let node = &dom.nodes[i];
        let a = &an.agg[i];
        let cards = matches!(
            node.tag,
            Tag::Ul | Tag::Ol | Tag::Div | Tag::Section | Tag::Aside
        ) && !an.excluded[i]
            && a.links >= CARD_MIN_ITEMS
            && a.prose_chars * 2 < a.chars
            && is_card_list(dom, an, i, |c| imgs[c - root] > 0);
        if cards {
            cards_at.push(i);
            card_chars += a.chars;
            i = node.end as usize;
        } else {
            i += 1;
        }
    }
    // Cards that hold most of the text are the page's content (a collection).
    if card_chars as f32 <= CARDS_SHARE * an.agg[root].chars as f32 {
        for c in cards_at {
            an.excluded[c] = true;
        }
    }
}

/// Largest share of the wide root's text that card lists may hold to be dropped.
const CARDS_SHARE: f32 = 0.5;

/// Longest average text (chars) of the cards of a card list.
const CARD_CHARS: u32 = 300;
/// Shortest average text of the cards: an item card names its item (shorter ones are tiles of a
/// menu).
const CARD_MIN_CHARS: u32 = 20;
/// A list of item cards has at least this many children with a link and an image.
const CARD_MIN_ITEMS: u32 = 3;
/// [`in_records`]: a sibling record holds this many chars of non-link text (a teaser, not a label)…
const RECORD_MIN_CHARS: u32 = 50;
/// …and records are looked for up to this many levels above the article path's container.
const RECORD_MAX_LEVELS: usize = 8;

/// Are the children of `i` item cards: three or more children with text, two thirds of them or
/// more holding a link and an image (`has_img`), of [`CARD_MIN_CHARS`] to [`CARD_CHARS`] each on
/// average?
fn is_card_list(dom: &Dom<'_>, an: &Analysis, i: usize, has_img: impl Fn(usize) -> bool) -> bool {
    let (mut with_text, mut linked, mut chars) = (0u32, 0u32, 0u32);
    for c in dom.children(i) {
        let a = &an.agg[c];
        if an.excluded[c] || a.chars == 0 {
            continue;
        }
        with_text += 1;
        chars += a.chars;
        if a.links > 0 && has_img(c) {
            linked += 1;
        }
    }
    linked >= CARD_MIN_ITEMS
        && 3 * linked >= 2 * with_text
        && chars <= CARD_CHARS * with_text
        && chars >= CARD_MIN_CHARS * with_text
}

/// First class token of an element (its record signature together with the tag).
fn first_class<'a>(dom: &Dom<'a>, i: usize) -> Option<&'a str> {
    dom.attr(i, "class")?.split_ascii_whitespace().next()
}

/// Is `root` inside (or one of) two or more sibling records: elements with the same tag and first
/// class, each holding 50 or more chars of non-link text, together at least 1.5 times the text of
/// the record that holds `root`? Looks up to 8 levels above `root`.
pub fn in_records(dom: &Dom<'_>, an: &Analysis, root: usize) -> bool {
    let n = dom.nodes.len();
    let mut x = root;
    for _ in 0..RECORD_MAX_LEVELS {
        let p = dom.nodes[x].parent as usize;
        if x == an.body || p >= n {
            return false;
        }
        if let Some(sig) = first_class(dom, x) {
            let tag = dom.nodes[x].tag;
            let (mut count, mut sum) = (0u32, 0u32);
            for c in dom.children(p) {
                if an.excluded[c] || dom.nodes[c].tag != tag || first_class(dom, c) != Some(sig) {
                    continue;
                }
                let t = plain(an, c);
                if t >= RECORD_MIN_CHARS {
                    count += 1;
                    sum += t;
                }
            }
            if count >= 2 && 2 * sum >= 3 * plain(an, x) {
                return true;
            }
        }
        x = p;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::{extract, Page};

    fn text(html: &str) -> String {
        extract(&Page {
            body: html.as_bytes(),
            url: None,
            content_type: None,
            content_language: None,
        })
        .expect("extracts")
        .text
    }

    fn sentence(topic: &str, n: usize) -> String {
        (0..n)
            .map(|k| format!("We explain {topic} in detail, step {k}, with care and plain words."))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A service page: several sections of short blocks. The article path keeps the best
    /// section only; the wide path keeps them all.
    #[test]
    fn service_page_keeps_every_section() {
        let mut body = String::from(
            "<nav><a href='/'>Home</a> <a href='/a'>About</a> <a href='/c'>Contact</a></nav><div id='page'>",
        );
        for (k, topic) in ["audits", "payroll", "cloud moves"].iter().enumerate() {
            body.push_str(&format!(
                "<section class='band{k}'><h2>Our {topic}</h2><div><p>{}</p></div>\
                 <div class='cards'><div><h3>Fast {topic}</h3><span>Done within {k} weeks.</span></div>\
                 <div><h3>Safe {topic}</h3><span>Checked {k} times.</span></div></div></section>",
                sentence(topic, 2 + 2 * k)
            ));
        }
        body.push_str("</div><footer>Company footer text here</footer>");
        let t = text(&format!("<html><body>{body}</body></html>"));
        for needle in ["Our audits", "Fast payroll", "Safe cloud moves", "step 5"] {
            assert!(t.contains(needle), "{needle} missing from {t}");
        }
        assert!(!t.contains("Company footer"), "{t}");
        assert!(!t.contains("Contact"), "{t}");
    }

    /// A listing: item titles are linked headings and stay; a menu of short links inside the
    /// same container is dropped.
    #[test]
    fn listing_keeps_item_titles_and_drops_menus() {
        let mut items = String::new();
        for k in 0..8 {
            items.push_str(&format!(
                "<li class='item'><h3><a href='/s/{k}'>A rather long headline about story number {k}</a></h3>\
                 <span> Score {k}</span></li>"
            ));
        }
        let html = format!(
            "<html><body><div id='wrap'><ul class='tabs'><li><a href='/x'>Top</a></li>\
             <li><a href='/y'>New</a></li><li><a href='/z'>Old</a></li></ul>\
             <ul class='list'>{items}</ul></div></body></html>"
        );
        let t = text(&html);
        for k in 0..8 {
            assert!(t.contains(&format!("story number {k}")), "{t}");
        }
        assert!(!t.contains("Top\n"), "{t}");
        assert!(!t.contains("Old"), "{t}");
    }

    /// A river of articles whose titles and teasers sit in each `<article>`'s own `<header>`: on
    /// the wide path those headers are the items, not the site's header (which stays out).
    #[test]
    fn river_of_articles_keeps_their_headers() {
        let mut items = String::new();
        for k in 0..6 {
            items.push_str(&format!(
                "<article class='river'><header><h2><a href='/a/{k}'>A rather long headline about story number {k}</a></h2>\
                 <p><a href='/a/{k}'>The teaser of story {k} tells what happened and why it matters to readers.</a></p>\
                 </header></article>"
            ));
        }
        let html = format!(
            "<html><body><header class='site'><a href='/'>Home</a> <a href='/n'>News</a> <a href='/s'>Sports</a></header>\
             <main><h1>Headphones</h1><section>{items}</section></main></body></html>"
        );
        let t = text(&html);
        for k in 0..6 {
            assert!(t.contains(&format!("story number {k}")), "{t}");
            assert!(t.contains(&format!("The teaser of story {k}")), "{t}");
        }
        assert!(!t.contains("Sports"), "{t}");
    }

    /// A listing whose items are only linked titles under a short intro: the intro holds all the
    /// non-link text, so the wide root is climbed by all text and the item titles are kept.
    #[test]
    fn listing_of_linked_titles_under_an_intro() {
        let mut items = String::new();
        for k in 0..12 {
            items.push_str(&format!(
                "<div class='card'><h3><a href='/r/{k}'>A rather long recipe title for dish number {k}</a></h3></div>"
            ));
        }
        let t = text(&format!(
            "<html><body><div id='wrap'><div class='intro'><p>{}</p></div>\
             <div class='grid'>{items}</div></div></body></html>",
            sentence("air fryers", 3)
        ));
        for k in [0, 5, 10] {
            assert!(t.contains(&format!("dish number {k}")), "{t}");
        }
    }

    /// An index page whose metadata says article: the article path finds only the short intro, the
    /// wide text (the linked entries) is far longer and is taken.
    #[test]
    fn article_typed_index_page_keeps_its_entries() {
        let mut items = String::new();
        for k in 0..30 {
            items.push_str(&format!(
                "<li><a href='/w/{k}'>Programming language number {k}</a></li>"
            ));
        }
        let t = text(&format!(
            "<html><head><meta property='og:type' content='article'></head><body>\
             <div id='content'><div class='intro'><p>{}</p></div><ul>{items}</ul></div>\
             </body></html>",
            sentence("languages", 3)
        ));
        for k in [0, 15, 28] {
            assert!(t.contains(&format!("language number {k}")), "{t}");
        }
    }

    /// A forum thread whose posts carry comment classes: on a page that is not an article they
    /// are the content, usernames included.
    #[test]
    fn forum_posts_with_comment_classes_are_content() {
        let mut posts = String::new();
        for (k, user) in ["alice", "bob", "carol", "dave"].iter().enumerate() {
            posts.push_str(&format!(
                "<div class='comment-item'><div class='user'>{user}</div>\
                 <div class='comment-text'><p>{}</p></div></div>",
                sentence(&format!("reply {k}"), 2)
            ));
        }
        let t = text(&format!(
            "<html><body><h1>Which telescope?</h1><div class='thread'>{posts}</div></body></html>"
        ));
        for needle in ["alice", "reply 0", "dave", "reply 3"] {
            assert!(t.contains(needle), "{needle} missing from {t}");
        }
    }

    /// A page that reads as an article (og:type article) whose best block is one post of a
    /// thread: the repeated records lead to the wide path, every post is kept.
    #[test]
    fn article_like_thread_keeps_every_post() {
        let mut posts = String::new();
        for (k, user) in ["alice", "bob", "carol"].iter().enumerate() {
            posts.push_str(&format!(
                "<div class='message post-{k}'><div class='user-cell'>{user}</div>\
                 <div class='message-inner'><div class='bbwrap'><p>{}</p><p>{}</p></div></div></div>",
                sentence(&format!("point {k}"), 8 - k),
                sentence(&format!("detail {k}"), 8 - k)
            ));
        }
        let t = text(&format!(
            "<html><head><meta property='og:type' content='article'></head><body>\
             <div class='thread'>{posts}</div></body></html>"
        ));
        for needle in ["point 0", "detail 1", "carol", "point 2"] {
            assert!(t.contains(needle), "{needle} missing from {t}");
        }
    }

    /// A script-rendered thread with a visible excerpt of over 250 chars: the whole thread in its
    /// `<noscript>` crawler copy wins on a page that is not an article.
    #[test]
    fn noscript_thread_read_on_the_wide_path() {
        let mut posts = String::new();
        for (k, user) in ["alice", "bob", "carol", "dave"].iter().enumerate() {
            posts.push_str(&format!(
                "<div id='post_{k}' class='topic-body crawler-post'><span class='creator'>{user}</span>\
                 <div class='post' itemprop='text'><p>{}</p></div></div>",
                sentence(&format!("answer {k}"), 3)
            ));
        }
        let t = text(&format!(
            "<html><body><div id='app'><div class='excerpt'><p>{}</p></div></div>\
             <noscript><div id='main-outlet'><h1>Which telescope?</h1>{posts}</div></noscript>\
             </body></html>",
            sentence("the excerpt", 5)
        ));
        for needle in ["answer 0", "bob", "answer 3"] {
            assert!(t.contains(needle), "{needle} missing from {t}");
        }
    }

    /// On the wide path the authors and dates of posts (byline/date classes) and a tab hidden by
    /// inline style are content.
    #[test]
    fn wide_path_keeps_bylines_and_hidden_tabs() {
        let mut posts = String::new();
        for (k, user) in ["alice", "bob", "carol"].iter().enumerate() {
            posts.push_str(&format!(
                "<div class='entry'><span class='author-name'>{user}</span>\
                 <span class='post-date'>day {k}</span><p>{}</p></div>",
                sentence(&format!("reply {k}"), 2)
            ));
        }
        let t = text(&format!(
            "<html><body><div class='thread'>{posts}\
             <div class='tab' style='display: none'><p>Shipping: {}</p></div></div></body></html>",
            sentence("shipping", 1)
        ));
        for needle in ["alice", "day 1", "carol", "reply 2", "Shipping:"] {
            assert!(t.contains(needle), "{needle} missing from {t}");
        }
    }

    /// A page whose metadata says article but whose article path finds next to nothing, and whose
    /// posts carry comment classes: the posts are the content.
    #[test]
    fn article_metadata_thread_with_comment_classes() {
        let mut posts = String::new();
        for (k, user) in ["alice", "bob", "carol"].iter().enumerate() {
            posts.push_str(&format!(
                "<article class='ipsComment cPost'><div class='user'>{user}</div>\
                 <div class='cPost_contentWrap'><p>{}</p></div></article>",
                sentence(&format!("reply {k}"), 3)
            ));
        }
        let t = text(&format!(
            "<html><head><meta property='og:type' content='article'></head><body>\
             <div class='install'><p>Add this app to your home screen.</p></div>\
             <div class='thread'>{posts}</div></body></html>"
        ));
        for needle in ["alice", "reply 0", "carol", "reply 2"] {
            assert!(t.contains(needle), "{needle} missing from {t}");
        }
    }

    /// A script-rendered page whose only text is hidden chrome: the wide path, which reads
    /// style-hidden blocks, takes nothing under its floor, so the page stays empty.
    #[test]
    fn hidden_chrome_of_an_empty_page_is_not_content() {
        let r = extract(&Page {
            body: b"<html><body><div style='display:none'><h1>Shop</h1>\
                    <ul><li><a href='#k'>I am shopping for...</a></li></ul></div>\
                    <div id='root'></div></body></html>",
            url: None,
            content_type: None,
            content_language: None,
        });
        assert!(
            matches!(r, Err(super::super::ExtractError::NoContent(_))),
            "{:?}",
            r.map(|x| x.text)
        );
    }

    /// A single product (one JSON-LD `Product`): the related-items carousel (cards with a link, an
    /// image and a name) is dropped from the wide text; the description and specs stay.
    #[test]
    fn product_page_drops_related_item_cards() {
        let mut cards = String::new();
        for k in 0..5 {
            cards.push_str(&format!(
                "<li class='cell'><a href='/p/{k}'><img src='/i/{k}.jpg' alt=''></a>\
                 <span>Another rather similar thing number {k}</span><span>$ {k}9.00</span></li>"
            ));
        }
        let specs: String = (0..6)
            .map(|k| format!("<li>Spec line {k}: value {k}</li>"))
            .collect();
        let html = format!(
            "<html><head><script type='application/ld+json'>\
             {{\"@context\":\"https://schema.org\",\"@type\":\"Product\",\"name\":\"Widget\"}}\
             </script></head><body><div id='page'><h1>Widget</h1>\
             <form><select><option>S</option></select><button>Add</button></form>\
             <div class='desc'><p>{}</p></div><ul class='specs'>{specs}</ul>\
             <div class='band'><h2>You may like</h2><ul class='row'>{cards}</ul></div>\
             <div class='shipping'><p>{}</p></div></div></body></html>",
            sentence("the widget", 3),
            sentence("delivery", 1)
        );
        let t = text(&html);
        for needle in ["step 2", "Spec line 5", "value 3"] {
            assert!(t.contains(needle), "{needle} missing from {t}");
        }
        assert!(!t.contains("similar thing"), "{t}");
    }
}
