//! The non-article path: pages that do not read as one article (forum threads, listings, product
//! and service pages) keep every block of their main area, not the single best-scored block.
//!
//! Used by [`super::extract`] only for pages that [`super::page_kind`] does not call an article, so
//! the article path is unchanged. Two steps, both O(n) over the arena:
//! 1. [`wide_root`]: the smallest ancestor of the article path's container that holds most of the
//!    page's non-link text (capped at `<main>` / `role=main` when there is one).
//! 2. Emission with [`prune_wide`]: item titles and teasers (links with long text) stay; only
//!    menus (link lists whose links are short) are pruned.

use super::content::Analysis;
use super::dom::*;

/// Share of the page's non-link text the wide root must hold.
const WIDE_SHARE: f32 = 0.7;

fn plain(an: &Analysis, i: usize) -> u32 {
    let a = &an.agg[i];
    a.chars - a.link_chars.min(a.chars)
}

/// The wide content root: the smallest non-excluded ancestor of `from` (or `from` itself) holding
/// at least [`WIDE_SHARE`] of the page's non-link text. A `<main>` / `role=main` element on the way
/// stops the climb.
pub fn wide_root(dom: &Dom<'_>, an: &Analysis, from: usize) -> usize {
    let n = dom.nodes.len();
    let total = plain(an, an.body) as f32;
    let mut c = from;
    loop {
        let node = &dom.nodes[c];
        if c == an.body
            || node.tag == Tag::Main
            || dom.attr(c, "role") == Some("main")
            || plain(an, c) as f32 >= WIDE_SHARE * total
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

/// Should this element be dropped on the wide path? Only menus: link-dense blocks whose links are
/// short (under 20 characters on average), so lists of item titles stay.
pub fn prune_wide(dom: &Dom<'_>, an: &Analysis, i: usize) -> bool {
    let node = &dom.nodes[i];
    let a = &an.agg[i];
    match node.tag {
        Tag::Ul
        | Tag::Ol
        | Tag::Dl
        | Tag::Menu
        | Tag::Table
        | Tag::Div
        | Tag::Section
        | Tag::Li
        | Tag::P => {
            a.chars > 0
                && a.link_density() > 0.6
                && a.links >= 3
                && a.link_chars < 20 * a.links
                && a.prose_chars * 2 < a.chars
        }
        _ => false,
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
