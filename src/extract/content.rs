//! Main-content selection and text emission over the [`Dom`] arena.
//!
//! 1. Exclusion (top-down): junk tags, hidden nodes, structural boilerplate (nav, aside, footer…) and
//!    class/id boilerplate hints, each guarded so that a wrapper holding most of the page is kept.
//! 2. One reverse aggregation pass: characters, link characters, prose characters, commas, links,
//!    paragraphs per subtree.
//! 3. Container: class/id body hints, `<article>`, `<main>` checked against a Readability-style score;
//!    then siblings that hold prose are merged.
//! 4. Emission: one walk over the chosen ranges, pruning link-dense blocks, into paragraphs (on the
//!    wide path of [`super::listing`], only menus are pruned).

use super::dom::*;
use super::text::{char_len, commas, fold, push_collapsed};
use super::text::{Para, ParaKind};

#[derive(Debug, Clone, Copy, Default)]
pub struct Agg {
    pub chars: u32,
    pub link_chars: u32,
    pub prose_chars: u32,
    pub commas: u32,
    pub links: u32,
    pub paras: u32,
    pub has_body_hint: bool,
}

impl Agg {
    fn add(&mut self, o: &Agg) {
        self.chars += o.chars;
        self.link_chars += o.link_chars;
        self.prose_chars += o.prose_chars;
        self.commas += o.commas;
        self.links += o.links;
        self.paras += o.paras;
        self.has_body_hint |= o.has_body_hint;
    }
    pub fn link_density(&self) -> f32 {
        if self.chars == 0 {
            0.0
        } else {
            self.link_chars as f32 / self.chars as f32
        }
    }
}

pub struct Analysis {
    pub excluded: Vec<bool>,
    pub agg: Vec<Agg>,
    pub body: usize,
}

// Thresholds. Unless said otherwise they come from round 1 (Readability's and trafilatura's
// published values, kept where they held on both dev sets) and are judged out of fold with
// `scripts/extract-quality.sh --folds 5` (docs/extraction.md).

/// A `<p>` counts as a real paragraph from this many chars (shorter ones are labels).
const PARA_MIN_CHARS: u32 = 50;
/// ... and under this link density (over it, a paragraph of links).
const PARA_MAX_LINK_DENSITY: f32 = 0.5;
/// Class/id pruning that leaves under 1/7 of the text is undone (trafilatura's guard).
const PRUNED_SHARE_DIVISOR: u32 = 7;
/// ... on pages with at least this much text (smaller pages have too little to judge by).
const PRUNE_GUARD_MIN_CHARS: u32 = 200;
/// A block whose only hint is a `header` class is an intro from this many chars...
const INTRO_MIN_CHARS: u32 = 200;
/// Link density under which text is prose, not a menu or link list.
const PROSE_MAX_LINK_DENSITY: f32 = 0.25;
/// A boilerplate-hinted wrapper holding more than this share of the page is the page.
const WRAPPER_KEEP_SHARE: f32 = 0.6;
/// The same for forms (an ASP.NET page wraps everything in one `<form>`), stricter.
const FORM_KEEP_SHARE: f32 = 0.5;
/// Readability's class weight: body hints add it to a container's score, boilerplate hints remove it.
const CLASS_WEIGHT: f32 = 25.0;
/// Readability scores paragraphs from this many chars.
const SCORED_MIN_CHARS: u32 = 25;
/// Readability: one point per this many chars of a paragraph...
const SCORE_CHARS_PER_POINT: f32 = 100.0;
/// ... up to this many points.
const SCORE_LENGTH_CAP: f32 = 3.0;
/// A paragraph's score goes to this many ancestors (the parent in full, the grandparent half,
/// level l a 1/(3l) share), as in Readability.js: a body split into nested sections still
/// gathers at their common container.
const SCORED_ANCESTOR_LEVELS: usize = 5;
/// A hinted container is taken when it holds at least this share of the best-scored node's prose...
const HINTED_MIN_PROSE_SHARE: f32 = 0.5;
/// ... at least this many chars...
const HINTED_MIN_CHARS: u32 = 100;
/// ... and is not mostly links.
const HINTED_MAX_LINK_DENSITY: f32 = 0.5;
/// A split body is looked for this many levels up at most.
const SPLIT_MAX_LEVELS: usize = 12;
/// The ancestor of a split body holds 1.5 times the container's prose plus this much.
const SPLIT_MIN_EXTRA_PROSE: u32 = 500;
/// What it adds is under this share of link text...
const SPLIT_MAX_LINK_DENSITY: f32 = 0.4;
/// ... and at least this share of paragraph text.
const SPLIT_MIN_PROSE_SHARE: f32 = 0.4;
/// A list whose links average this many chars reads as titles (a list of documents), not a menu.
const TITLE_LINK_CHARS: u32 = 15;
/// Link blocks under this many chars are pruned even with one link.
const LINK_BLOCK_SHORT_CHARS: u32 = 200;
/// A link-dense block with this many links is pruned whatever its length.
const LINK_BLOCK_MIN_LINKS: u32 = 2;
/// A short paragraph over this link density is a link, not text.
const LINK_PARA_DENSITY: f32 = 0.8;
/// A figure or caption under this much prose is an image credit.
const CAPTION_MAX_PROSE: u32 = 100;
/// The paragraph-only fallback takes paragraphs from this many chars.
const WILD_MIN_CHARS: u32 = 20;

/// Per-text-node context flags computed top-down.
const IN_LINK: u8 = 1;
const IN_PROSE: u8 = 2;

fn context_bits(dom: &Dom<'_>) -> Vec<u8> {
    let n = dom.nodes.len();
    let mut bits = vec![0u8; n];
    for i in 1..n {
        let node = &dom.nodes[i];
        let p = node.parent as usize;
        let mut b = if p < n { bits[p] } else { 0 };
        match node.tag {
            Tag::A => b |= IN_LINK,
            Tag::P | Tag::Blockquote | Tag::Pre => b |= IN_PROSE,
            _ => {}
        }
        bits[i] = b;
    }
    bits
}

/// (non-whitespace chars, commas) of every text node outside `hard` exclusions, measured once for
/// both aggregation passes (the soft exclusions only remove more).
fn text_measures(dom: &Dom<'_>, hard: &[bool]) -> Vec<(u32, u32)> {
    dom.nodes
        .iter()
        .zip(hard)
        .map(|(node, &h)| {
            if node.tag == Tag::Text && !h {
                (char_len(node.text), commas(node.text))
            } else {
                (0, 0)
            }
        })
        .collect()
}

fn aggregate(dom: &Dom<'_>, excluded: &[bool], bits: &[u8], measures: &[(u32, u32)]) -> Vec<Agg> {
    let n = dom.nodes.len();
    let mut agg = vec![Agg::default(); n];
    for i in (0..n).rev() {
        let node = &dom.nodes[i];
        if excluded[i] {
            continue;
        }
        match node.tag {
            Tag::Text => {
                let (c, cm) = measures[i];
                let a = &mut agg[i];
                a.chars = c;
                a.commas = cm;
                if bits[i] & IN_LINK != 0 {
                    a.link_chars = c;
                }
                if bits[i] & IN_PROSE != 0 {
                    a.prose_chars = c;
                }
            }
            Tag::A => agg[i].links += 1,
            Tag::P
                if agg[i].chars >= PARA_MIN_CHARS
                    && agg[i].link_density() < PARA_MAX_LINK_DENSITY =>
            {
                agg[i].paras += 1
            }
            _ => {}
        }
        if node.flags & F_BODY != 0 {
            agg[i].has_body_hint = true;
        }
        let p = node.parent as usize;
        if p < n {
            let a = agg[i];
            agg[p].add(&a);
        }
    }
    agg
}

fn find_body(dom: &Dom<'_>) -> usize {
    dom.nodes
        .iter()
        .position(|n| n.tag == Tag::Body)
        .unwrap_or(0)
}

/// What every analysis of a page shares, whatever hints it keeps: the hard exclusions (junk tags),
/// text measures and the aggregates before soft exclusions. Built once per page; the wide path's
/// second and third analyses reuse it.
pub struct Prepared {
    bits: Vec<u8>,
    hard: Vec<bool>,
    measures: Vec<(u32, u32)>,
    raw: Vec<Agg>,
    body: usize,
}

impl Prepared {
    pub fn new(dom: &Dom<'_>) -> Self {
        let n = dom.nodes.len();
        let bits = context_bits(dom);
        // Pass 1: hard exclusions only.
        let mut hard = vec![false; n];
        for i in 0..n {
            let node = &dom.nodes[i];
            let p = node.parent as usize;
            let inherited = p < n && hard[p];
            hard[i] = inherited || node.tag.is_junk();
        }
        let measures = text_measures(dom, &hard);
        let raw = aggregate(dom, &hard, &bits, &measures);
        let body = find_body(dom);
        Prepared {
            bits,
            hard,
            measures,
            raw,
            body,
        }
    }

    /// Characters of the page's text outside scripts, styles and other junk tags.
    pub fn page_chars(&self) -> u32 {
        self.raw[self.body].chars
    }

    /// The analysis with the class/id hints in `keep` not counted as boilerplate (`F_COMMENT`:
    /// forum threads, whose posts carry comment classes; `F_BYLINE`: the authors and dates of
    /// posts and listed items).
    pub fn analyse(&self, dom: &Dom<'_>, keep: u32) -> Analysis {
        let Prepared {
            bits,
            hard,
            measures,
            raw,
            body,
        } = self;
        let body = *body;
        let total = raw[body].chars.max(1);
        let excluded = soft_exclusions(dom, hard, raw, total, true, keep);
        let agg = aggregate(dom, &excluded, bits, measures);
        // As trafilatura does: undo the class/id pruning when it removed more than 6/7 of the text
        // (page builders whose every block says "widget", CMS taxonomy classes on the article).
        if agg[body].chars * PRUNED_SHARE_DIVISOR < total && total >= PRUNE_GUARD_MIN_CHARS {
            let structural_only = soft_exclusions(dom, hard, raw, total, false, keep);
            let a2 = aggregate(dom, &structural_only, bits, measures);
            if a2[body].chars > agg[body].chars {
                return Analysis {
                    excluded: structural_only,
                    agg: a2,
                    body,
                };
            }
        }
        Analysis {
            excluded,
            agg,
            body,
        }
    }
}

/// A modal dialog (`<dialog>`, `role=dialog`/`alertdialog`, or `aria-modal=true` on a popup): a policy, a cart or
/// a sign-up form laid over the page, never its main content, however much text it holds.
/// `role=dialog` sets the popup flag, so other elements skip the attribute lookups.
fn is_modal(dom: &Dom<'_>, i: usize) -> bool {
    let node = &dom.nodes[i];
    if node.tag == Tag::Dialog {
        return true;
    }
    node.flags & F_POPUP != 0
        && (dom.attr(i, "aria-modal") == Some("true")
            || dom.attr(i, "role").is_some_and(|r| {
                r.eq_ignore_ascii_case("dialog") || r.eq_ignore_ascii_case("alertdialog")
            }))
}

fn hidden_by_attr(dom: &Dom<'_>, i: usize) -> bool {
    dom.attr(i, "hidden").is_some()
        || dom.attr(i, "aria-hidden") == Some("true")
        || dom.attr(i, "style").is_some_and(|s| {
            let s = s.to_ascii_lowercase();
            s.contains("none") && s.replace(' ', "").contains("display:none")
                || s.contains("hidden") && s.replace(' ', "").contains("visibility:hidden")
        })
}

/// Is `i` the header of an `<article>` (its parent or grandparent) that is one of a list of
/// `<article>` siblings (a listing's items)?
fn in_article(dom: &Dom<'_>, i: usize) -> bool {
    let n = dom.nodes.len();
    let mut p = dom.nodes[i].parent as usize;
    for _ in 0..2 {
        if p >= n {
            return false;
        }
        if dom.nodes[p].tag == Tag::Article {
            let list = dom.nodes[p].parent as usize;
            return list < n
                && dom
                    .children(list)
                    .filter(|&c| c != p && dom.nodes[c].tag == Tag::Article)
                    .take(1)
                    .count()
                    == 1;
        }
        p = dom.nodes[p].parent as usize;
    }
    false
}

/// Pass 2: soft exclusions (structural tags, hidden nodes and, with `hints`, class/id boilerplate
/// hints), each guarded so that a wrapper holding most of the page is kept.
fn soft_exclusions(
    dom: &Dom<'_>,
    hard: &[bool],
    raw: &[Agg],
    total: u32,
    hints: bool,
    keep: u32,
) -> Vec<bool> {
    let mask = !keep;
    let n = dom.nodes.len();
    let mut excluded = hard.to_vec();
    for i in 0..n {
        if excluded[i] {
            continue;
        }
        let node = &dom.nodes[i];
        let p = node.parent as usize;
        if p < n && excluded[p] {
            excluded[i] = true;
            continue;
        }
        if node.tag == Tag::Text {
            continue;
        }
        let structural = match node.tag {
            // With header hints kept (the wide path), the header of an `<article>` among other
            // `<article>`s is an item's title and teaser in a listing, not the site's header.
            Tag::Header => keep & F_HEADER == 0 || !in_article(dom, i),
            Tag::Nav | Tag::Aside | Tag::Footer | Tag::Menu | Tag::Figcaption | Tag::Form => true,
            _ => false,
        };
        // Without hints, a class saying "hidden" ("field-label-hidden") no longer counts: only the
        // `hidden` / `aria-hidden` attributes and inline styles do.
        let flags = node.flags & mask;
        // `keep` with F_HIDDEN: hiding by attribute or inline style (tabs, accordions) no longer
        // counts, hiding by class ("sr-only", "visually-hidden") still does.
        let hidden = node.flags & F_HIDDEN != 0
            && !matches!(node.tag, Tag::Html | Tag::Body)
            && if keep & F_HIDDEN != 0 {
                hints && !hidden_by_attr(dom, i)
            } else {
                hints || hidden_by_attr(dom, i)
            };
        // A block hidden by attribute or inline style that holds paragraphs of link-free prose is
        // the collapsed rest of the story ("read more"), not chrome: menus and duplicated link
        // lists hidden for small screens are link text.
        if !structural && collapsed_prose(dom, &raw[i], i) {
            continue;
        }
        // Without hints, only comment sections still count as boilerplate.
        let boiler = if hints { F_BOILER } else { F_COMMENT };
        let hinted = flags & boiler != 0
            && flags & F_BODY == 0
            && !matches!(node.tag, Tag::Html | Tag::Body | Tag::Main);
        if !(structural || hinted || hidden) {
            if is_modal(dom, i) {
                excluded[i] = true;
            }
            continue;
        }
        let a = &raw[i];
        if is_modal(dom, i) {
            excluded[i] = true;
            continue;
        }
        // Never drop a wrapper that holds the article body hint or most of the page.
        if a.has_body_hint && flags & F_COMMENT == 0 {
            continue;
        }
        // A block whose only hint is a "header" class and that holds link-poor text (an article's
        // intro or standfirst in `hub--header`, `listicle-header`) is no site header: those are links.
        if !structural
            && !hidden
            && node.flags & F_BOILER == F_HEADER
            && a.chars >= INTRO_MIN_CHARS
            && a.link_density() < PROSE_MAX_LINK_DENSITY
        {
            continue;
        }
        let share = a.chars as f32 / total as f32;
        let limit = if node.tag == Tag::Form {
            FORM_KEEP_SHARE
        } else {
            WRAPPER_KEEP_SHARE
        };
        // In the retry without hints (pruning left under 1/7 of the text) a comment-hinted wrapper
        // that holds most of the page is the page ("commentOnSelection" around a post, a thread).
        if share > limit && (flags & F_COMMENT == 0 || !hints) {
            continue;
        }
        // Header inside an article often holds nothing but title/byline: dropping is right.
        excluded[i] = true;
    }
    excluded
}

/// Paragraphs (of 50+ chars) from which a hidden block is prose.
const COLLAPSED_MIN_PARAS: u32 = 2;
/// Link density under which a hidden block's text is prose.
const COLLAPSED_MAX_LINK_DENSITY: f32 = 0.1;

/// Is block `i`, hidden by attribute or inline style only, a collapsed part of the text?
fn collapsed_prose(dom: &Dom<'_>, a: &Agg, i: usize) -> bool {
    a.paras >= COLLAPSED_MIN_PARAS
        && a.link_density() < COLLAPSED_MAX_LINK_DENSITY
        && a.prose_chars * 2 >= a.chars
        && dom.nodes[i].flags & F_BOILER & !F_HIDDEN == 0
        && hidden_by_attr(dom, i)
}

fn class_weight(flags: u32) -> f32 {
    let mut w = 0.0;
    if flags & (F_BODY | F_CONTENT) != 0 {
        w += CLASS_WEIGHT;
    }
    if flags & F_BOILER != 0 {
        w -= CLASS_WEIGHT;
    }
    w
}

fn tag_base(tag: Tag) -> f32 {
    match tag {
        Tag::Div | Tag::Article | Tag::Main | Tag::Section => 5.0,
        Tag::Pre | Tag::Td | Tag::Blockquote => 3.0,
        Tag::Address | Tag::Ol | Tag::Ul | Tag::Dl | Tag::Dd | Tag::Dt | Tag::Li | Tag::Form => {
            -3.0
        }
        t if t.is_heading() || t == Tag::Th => -5.0,
        _ => 0.0,
    }
}

/// Readability-style scores (0 = never scored).
fn readability_scores(dom: &Dom<'_>, an: &Analysis) -> Vec<f32> {
    let n = dom.nodes.len();
    let mut score = vec![0.0f32; n];
    let mut init = vec![false; n];
    for i in 0..n {
        let node = &dom.nodes[i];
        if an.excluded[i]
            || !matches!(
                node.tag,
                Tag::P | Tag::Pre | Tag::Td | Tag::Blockquote | Tag::Li | Tag::Div | Tag::Section
            )
        {
            continue;
        }
        let a = &an.agg[i];
        if a.chars < SCORED_MIN_CHARS {
            continue;
        }
        if matches!(node.tag, Tag::Div | Tag::Section | Tag::Li) {
            // Only "paragraph-like" divs: text directly inside, no block children.
            let has_block_child = dom.children(i).any(|c| dom.nodes[c].tag.is_block());
            if has_block_child {
                continue;
            }
        }
        let s =
            1.0 + a.commas as f32 + (a.chars as f32 / SCORE_CHARS_PER_POINT).min(SCORE_LENGTH_CAP);
        let mut anc = node.parent as usize;
        let mut level = 0;
        while anc < n && level < SCORED_ANCESTOR_LEVELS {
            let an_node = &dom.nodes[anc];
            if matches!(an_node.tag, Tag::Document | Tag::Html) {
                break;
            }
            if !init[anc] {
                init[anc] = true;
                score[anc] = tag_base(an_node.tag) + class_weight(an_node.flags);
            }
            let div = match level {
                0 => 1.0,
                1 => 2.0,
                l => l as f32 * 3.0,
            };
            score[anc] += s / div;
            anc = an_node.parent as usize;
            level += 1;
        }
    }
    for i in 0..n {
        if init[i] {
            score[i] *= 1.0 - an.agg[i].link_density();
        } else {
            score[i] = f32::NEG_INFINITY;
        }
    }
    score
}

fn is_ancestor(dom: &Dom<'_>, a: usize, d: usize) -> bool {
    a <= d && d < dom.nodes[a].end as usize
}

/// Average link text (chars) under which a link-dense block is a menu on the wide path.
const MENU_LINK_CHARS: u32 = 10;
/// Link density over which a block is link-dense (menus, link lists).
const LINK_DENSE: f32 = 0.6;
/// A menu has at least this many links (one or two links in a block are a call to action).
const MENU_MIN_LINKS: u32 = 3;

/// Should this block (a list, table, div, section, list item or paragraph: the caller matches the
/// tag) be dropped on the wide path ([`super::listing`])? Only menus: link-dense blocks whose
/// links are short (under [`MENU_LINK_CHARS`] on average), so lists of item titles stay.
pub fn prune_wide(an: &Analysis, i: usize) -> bool {
    let a = &an.agg[i];
    a.chars > 0
        && a.link_density() > LINK_DENSE
        && a.links >= MENU_MIN_LINKS
        && a.link_chars < MENU_LINK_CHARS * a.links
        && a.prose_chars * 2 < a.chars
}

/// The story's own headline: the first heading (not excluded) whose text is the page's title. It
/// anchors the story in the page: the container is not widened past a block that holds it, and
/// a block that holds another headline of its rank is another story (a river of headlines, the
/// next article of an infinite scroll, a series page).
#[derive(Debug, Clone, Copy)]
pub struct Anchor {
    pub node: usize,
    pub level: u8,
}

/// Headings longer than this (chars) are not compared with the title (a heading is one line).
const HEADLINE_MAX_CHARS: u32 = 400;

pub fn title_anchor(dom: &Dom<'_>, an: &Analysis, title: Option<&str>) -> Option<Anchor> {
    let title_fold = fold(title?);
    if title_fold.is_empty() {
        return None;
    }
    let mut s = String::new();
    let mut i = an.body;
    while i < dom.nodes.len() {
        let node = &dom.nodes[i];
        if an.excluded[i] {
            i = node.end as usize;
            continue;
        }
        if let Some(level) = heading_level(node.tag) {
            if an.agg[i].chars <= HEADLINE_MAX_CHARS {
                s.clear();
                dom.text_of(i, &mut s);
                if fold(&s) == title_fold {
                    return Some(Anchor { node: i, level });
                }
            }
            i = node.end as usize;
            continue;
        }
        i += 1;
    }
    None
}

fn heading_level(t: Tag) -> Option<u8> {
    Some(match t {
        Tag::H1 => 1,
        Tag::H2 => 2,
        Tag::H3 => 3,
        Tag::H4 => 4,
        Tag::H5 => 5,
        Tag::H6 => 6,
        _ => return None,
    })
}

/// Linked headings (a teaser's title) from which a block is a list of other stories.
const TEASER_HEADINGS: u32 = 2;
/// Prose (chars in paragraphs) from which the block holding the headline is the whole story: a
/// short story is not widened into the page around it.
const STORY_MIN_PROSE: u32 = 200;

/// Does the subtree of `i` hold another story's headline: a heading (not excluded, not the
/// anchor) of the anchor's rank or higher, or [`TEASER_HEADINGS`] linked headings (teasers)?
fn holds_other_headline(dom: &Dom<'_>, an: &Analysis, i: usize, anchor: Anchor) -> bool {
    let end = dom.nodes[i].end as usize;
    let mut teasers = 0;
    let mut j = i;
    while j < end {
        let node = &dom.nodes[j];
        if an.excluded[j] {
            j = node.end as usize;
            continue;
        }
        if let Some(level) = heading_level(node.tag) {
            let a = &an.agg[j];
            if j != anchor.node && a.chars > 0 {
                if level <= anchor.level {
                    return true;
                }
                if a.link_chars * 2 > a.chars {
                    teasers += 1;
                    if teasers >= TEASER_HEADINGS {
                        return true;
                    }
                }
            }
            j = node.end as usize;
            continue;
        }
        j += 1;
    }
    false
}

/// Text (chars) beside the headline and the body that a story's block may hold (byline, date,
/// standfirst, share labels) and still be that one story.
const STORY_SLACK_CHARS: u32 = 300;

/// Is root `c` the whole story: it holds at least [`STORY_MIN_PROSE`] of prose, and the smallest
/// block that holds both it and the story's headline holds little else ([`STORY_SLACK_CHARS`])?
pub fn holds_story(dom: &Dom<'_>, an: &Analysis, c: usize, anchor: Option<Anchor>) -> bool {
    let Some(a) = anchor else {
        return false;
    };
    if an.agg[c].prose_chars < STORY_MIN_PROSE {
        return false;
    }
    let n = dom.nodes.len();
    let mut l = c;
    while !is_ancestor(dom, l, a.node) {
        l = dom.nodes[l].parent as usize;
        if l >= n || an.excluded[l] {
            return false;
        }
    }
    let headline = if l == c { 0 } else { an.agg[a.node].chars };
    an.agg[l].chars <= an.agg[c].chars + headline + STORY_SLACK_CHARS
}

/// May the container grow from `c` to its ancestor `p`? Not when `c` holds the story's headline
/// and its text already (a short story in a page of other things), nor when what `p` adds holds
/// another story's headline.
fn may_widen(dom: &Dom<'_>, an: &Analysis, c: usize, p: usize, anchor: Option<Anchor>) -> bool {
    let Some(a) = anchor else {
        return true;
    };
    if holds_story(dom, an, c, anchor) {
        return false;
    }
    !dom.children(p)
        .filter(|&s| !is_ancestor(dom, s, c))
        .any(|s| holds_other_headline(dom, an, s, a))
}

/// Pick the content root: the best hinted container (or the best-scored node), widened to a body
/// split over several blocks. Sibling blocks are not merged: merging prose or well-scored siblings
/// of the container (Readability's step) lowered word F1 on every fold (articles +0.0018 mean of 5
/// folds without it, all pages +0.0012, aeb-dev +0.0004), and neither did climbing to a parent
/// holding more prose (no page changed): both were removed.
pub fn select_root(dom: &Dom<'_>, an: &Analysis, anchor: Option<Anchor>) -> usize {
    let n = dom.nodes.len();
    let scores = readability_scores(dom, an);
    let mut best_r = None;
    let mut best_s = f32::NEG_INFINITY;
    for i in 0..n {
        if scores[i] > best_s && !an.excluded[i] {
            best_s = scores[i];
            best_r = Some(i);
        }
    }
    let body = an.body;
    let Some(r) = best_r else {
        return body;
    };
    let r_prose = an.agg[r].prose_chars.max(an.agg[r].chars / 2);

    // Hinted containers in tiers.
    let mut chosen = None;
    let tiers: [&dyn Fn(usize) -> bool; 3] = [
        &|i| dom.nodes[i].flags & F_BODY != 0,
        &|i| dom.nodes[i].tag == Tag::Article,
        &|i| {
            dom.nodes[i].tag == Tag::Main
                || (dom.nodes[i].flags & F_CONTENT != 0 && dom.attr(i, "role") == Some("main"))
        },
    ];
    for tier in tiers {
        let mut best: Option<usize> = None;
        for i in 0..n {
            if an.excluded[i] || !tier(i) {
                continue;
            }
            if best.is_none_or(|b| an.agg[i].chars > an.agg[b].chars) {
                best = Some(i);
            }
        }
        if let Some(b) = best {
            let a = &an.agg[b];
            let enough = a.prose_chars.max(a.chars / 2) as f32
                >= HINTED_MIN_PROSE_SHARE * r_prose as f32
                || is_ancestor(dom, b, r);
            if enough && a.chars >= HINTED_MIN_CHARS && a.link_density() < HINTED_MAX_LINK_DENSITY {
                chosen = Some(b);
                break;
            }
        }
    }
    let c = chosen.unwrap_or(r);
    expand_split_body(dom, an, c, anchor)
}

/// A body split in several blocks (one `rich-text` block per section, page builders, accordions):
/// the container picked holds only one of them. Move up to the nearest ancestor (12 levels at most)
/// that holds over 1.5 times its prose plus 500 characters, when that ancestor is not link-heavy and
/// what it adds is largely prose (under 40% link text, at least 40% inside paragraphs); repeat from
/// there. The first ancestor with that much more prose decides: if it fails, the container stays.
fn expand_split_body(dom: &Dom<'_>, an: &Analysis, mut c: usize, anchor: Option<Anchor>) -> usize {
    let n = dom.nodes.len();
    'outer: loop {
        let a = &an.agg[c];
        let mut p = dom.nodes[c].parent as usize;
        let mut steps = 0;
        while p < n && steps < SPLIT_MAX_LEVELS {
            let node = &dom.nodes[p];
            if matches!(node.tag, Tag::Body | Tag::Html | Tag::Document) || an.excluded[p] {
                break;
            }
            let pa = &an.agg[p];
            if pa.prose_chars * 2 >= 3 * a.prose_chars + 2 * SPLIT_MIN_EXTRA_PROSE {
                let extra = pa.chars - a.chars;
                let extra_links = pa.link_chars - a.link_chars;
                let extra_prose = pa.prose_chars - a.prose_chars;
                if pa.link_density() < SPLIT_MAX_LINK_DENSITY
                    && (extra_links as f32) < SPLIT_MAX_LINK_DENSITY * extra as f32
                    && (extra_prose as f32) >= SPLIT_MIN_PROSE_SHARE * extra as f32
                    && may_widen(dom, an, c, p, anchor)
                {
                    c = p;
                    continue 'outer;
                }
                break;
            }
            p = node.parent as usize;
            steps += 1;
        }
        return c;
    }
}

/// A list inside the content whose links read as titles (15+ characters a link on average: "Home
/// Repair Program Flier", "Shop Men's at adidas.com") is part of the text; menus link single words.
/// A table of contents (links to `#anchors` on the page) repeats the headings: not kept.
fn descriptive_link_list(dom: &Dom<'_>, i: usize, a: &Agg) -> bool {
    matches!(dom.nodes[i].tag, Tag::Ul | Tag::Ol | Tag::Li)
        && a.link_chars >= TITLE_LINK_CHARS * a.links.max(1)
        && !mostly_anchor_links(dom, i)
}

fn mostly_anchor_links(dom: &Dom<'_>, i: usize) -> bool {
    let end = dom.nodes[i].end as usize;
    let (mut links, mut anchors) = (0u32, 0u32);
    for j in i + 1..end {
        if dom.nodes[j].tag == Tag::A {
            links += 1;
            if dom.attr(j, "href").is_some_and(|h| h.starts_with('#')) {
                anchors += 1;
            }
        }
    }
    anchors * 2 > links
}

/// Should this element (inside the content) be dropped? `wide`: the non-article path, which keeps
/// link lists unless they look like menus ([`prune_wide`]).
fn prune(dom: &Dom<'_>, an: &Analysis, i: usize, title_fold: &str, wide: bool) -> bool {
    let node = &dom.nodes[i];
    let a = &an.agg[i];
    let ld = a.link_density();
    match node.tag {
        Tag::Ul
        | Tag::Ol
        | Tag::Dl
        | Tag::Menu
        | Tag::Table
        | Tag::Div
        | Tag::Section
        | Tag::Li
        | Tag::P
            if wide =>
        {
            return prune_wide(an, i);
        }
        Tag::Ul
        | Tag::Ol
        | Tag::Dl
        | Tag::Menu
        | Tag::Table
        | Tag::Div
        | Tag::Section
        | Tag::Li => {
            if a.chars > 0
                && ld > LINK_DENSE
                && (a.links >= LINK_BLOCK_MIN_LINKS || a.chars < LINK_BLOCK_SHORT_CHARS)
                && a.prose_chars * 2 < a.chars
                && !descriptive_link_list(dom, i, a)
            {
                return true;
            }
        }
        Tag::P => {
            if a.chars > 0 && ld > LINK_PARA_DENSITY && a.chars < LINK_BLOCK_SHORT_CHARS {
                return true;
            }
        }
        // A figure is an image with its caption, unless it wraps a table or code (WordPress puts
        // every table in `<figure class="wp-block-table">`).
        Tag::Figure => return a.prose_chars < CAPTION_MAX_PROSE && !holds_table_or_code(dom, i),
        Tag::Caption => return a.prose_chars < CAPTION_MAX_PROSE,
        t if t.is_heading() => {
            if !title_fold.is_empty() && a.chars < HEADLINE_MAX_CHARS {
                let mut s = String::new();
                dom.text_of(i, &mut s);
                if fold(&s) == title_fold {
                    return true;
                }
            }
            // On the wide path a linked heading is an item's title.
            if ld > LINK_DENSE && !wide {
                return true;
            }
        }
        _ => {}
    }
    false
}

fn holds_table_or_code(dom: &Dom<'_>, i: usize) -> bool {
    let end = dom.nodes[i].end as usize;
    dom.nodes[i + 1..end]
        .iter()
        .any(|n| matches!(n.tag, Tag::Table | Tag::Pre))
}

/// Emit the text of the chosen roots as paragraphs (`wide`: with the non-article path's pruning).
pub fn emit(
    dom: &Dom<'_>,
    an: &Analysis,
    roots: &[usize],
    title: Option<&str>,
    wide: bool,
) -> Vec<Para> {
    let title_fold = title.map(fold).unwrap_or_default();
    let mut out: Vec<Para> = Vec::new();
    let mut cur = String::new();
    let mut cur_kind = ParaKind::Para;
    // Open blocks: (end, tag, paragraph kind inside it), so the current kind is the top's.
    let mut stack: Vec<(u32, Tag, ParaKind)> = Vec::new();
    let mut pre_depth = 0usize;

    fn flush(out: &mut Vec<Para>, cur: &mut String, kind: ParaKind) {
        let t = cur.trim();
        if !t.is_empty() {
            out.push(Para {
                kind,
                text: t.to_string(),
            });
        }
        cur.clear();
    }

    for &root in roots {
        let end = dom.nodes[root].end as usize;
        let mut j = root;
        while j < end {
            while let Some(&(e, t, _)) = stack.last() {
                if e as usize <= j {
                    stack.pop();
                    if t == Tag::Pre {
                        pre_depth = pre_depth.saturating_sub(1);
                    }
                    flush(&mut out, &mut cur, cur_kind);
                    cur_kind = stack_kind(&stack);
                } else {
                    break;
                }
            }
            let node = &dom.nodes[j];
            if an.excluded[j] {
                j = node.end as usize;
                continue;
            }
            match node.tag {
                Tag::Text => {
                    if pre_depth > 0 {
                        cur.push_str(node.text);
                    } else {
                        push_collapsed(&mut cur, node.text);
                    }
                }
                Tag::Br => {
                    let t = cur.trim_end().len();
                    cur.truncate(t);
                    if !cur.is_empty() {
                        cur.push('\n');
                    }
                }
                Tag::Td | Tag::Th => {
                    if !cur.is_empty() && !cur.ends_with([' ', '\n']) {
                        cur.push(' ');
                    }
                }
                t if t.is_block() && t != Tag::Document => {
                    if j != root && prune(dom, an, j, &title_fold, wide) {
                        j = node.end as usize;
                        continue;
                    }
                    flush(&mut out, &mut cur, cur_kind);
                    if t == Tag::Pre {
                        pre_depth += 1;
                    }
                    let kind = own_kind(t).unwrap_or_else(|| stack_kind(&stack));
                    stack.push((node.end, t, kind));
                    cur_kind = kind;
                }
                _ => {}
            }
            j += 1;
        }
        while let Some((_, t, _)) = stack.pop() {
            if t == Tag::Pre {
                pre_depth = pre_depth.saturating_sub(1);
            }
        }
        flush(&mut out, &mut cur, cur_kind);
        cur_kind = ParaKind::Para;
    }
    out
}

/// The paragraph kind a block sets for its content, if it sets one.
fn own_kind(t: Tag) -> Option<ParaKind> {
    if t == Tag::Pre {
        Some(ParaKind::Pre)
    } else if t.is_heading() {
        Some(ParaKind::Heading)
    } else if matches!(t, Tag::Li | Tag::Dt | Tag::Dd) {
        Some(ParaKind::Item)
    } else if matches!(t, Tag::P | Tag::Blockquote) {
        Some(ParaKind::Para)
    } else {
        None
    }
}

/// Kind inside the innermost open block that sets one (O(1): each entry carries it).
fn stack_kind(stack: &[(u32, Tag, ParaKind)]) -> ParaKind {
    stack.last().map_or(ParaKind::Para, |&(_, _, k)| k)
}

/// Paragraph-only fallback: every non-excluded `<p>`/`<pre>`/`<blockquote>` of the body.
pub fn wild_paragraphs(dom: &Dom<'_>, an: &Analysis) -> Vec<usize> {
    let n = dom.nodes.len();
    let mut roots = Vec::new();
    let mut i = an.body;
    while i < n {
        let node = &dom.nodes[i];
        if an.excluded[i] {
            i = node.end as usize;
            continue;
        }
        if matches!(node.tag, Tag::P | Tag::Pre | Tag::Blockquote) {
            let a = &an.agg[i];
            if a.chars >= WILD_MIN_CHARS && a.link_density() < PARA_MAX_LINK_DENSITY {
                roots.push(i);
            }
            i = node.end as usize;
            continue;
        }
        i += 1;
    }
    roots
}

/// Count top-level `<article>` elements (teasers on listing pages).
pub fn article_count(dom: &Dom<'_>, an: &Analysis) -> usize {
    let n = dom.nodes.len();
    let mut i = 0;
    let mut count = 0;
    while i < n {
        let node = &dom.nodes[i];
        if node.tag == Tag::Article && !an.excluded[i] {
            count += 1;
            i = node.end as usize;
        } else {
            i += 1;
        }
    }
    count
}

pub fn para_chars(paras: &[Para]) -> usize {
    paras.iter().map(|p| char_len(&p.text) as usize).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn main_text(html: &str) -> String {
        let doc = scraper::Html::parse_document(html);
        let dom = Dom::build(&doc, 100_000).expect("small page");
        let an = Prepared::new(&dom).analyse(&dom, 0);
        let roots = [select_root(&dom, &an, None)];
        let paras = emit(&dom, &an, &roots, None, false);
        paras
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn prose(tag: &str, n: usize) -> String {
        let s = format!(
            "Paragraph {tag} {n} tells the story at some length, with commas, details and quotes, so that it reads like prose. "
        );
        format!("<p>{}</p>", s.repeat(2))
    }

    #[test]
    fn a_modal_dialog_is_never_the_content_however_long() {
        let mut policy = String::new();
        for k in 0..12 {
            policy.push_str(&prose("policy", k));
        }
        let html = format!(
            "<html><body><main><h1>Wool Runner</h1>{}{}</main>\
             <div id=modal-refund role=dialog aria-modal=true class='fixed inset-0'><div class=prose>{policy}</div></div>\
             <section role=alertdialog>{}</section></body></html>",
            prose("product", 0),
            prose("product", 1),
            prose("alert", 0)
        );
        let t = main_text(&html);
        assert!(t.contains("Paragraph product 1"), "{t}");
        assert!(!t.contains("Paragraph policy"), "{t}");
        assert!(!t.contains("Paragraph alert"), "{t}");
    }

    #[test]
    fn table_wrapped_in_a_figure_is_kept_and_image_figures_are_not() {
        let html = format!(
            "<html><body><article>{}<figure class=wp-block-table><table><tr><th>Rank</th><th>Company</th></tr>\
             <tr><td>1</td><td>State Farm</td></tr></table></figure><figure><img src=a.jpg><span>Photo by Someone</span></figure>{}</article></body></html>",
            prose("lead", 0),
            prose("tail", 1)
        );
        let t = main_text(&html);
        assert!(t.contains("Rank Company"), "{t}");
        assert!(t.contains("1 State Farm"), "{t}");
        assert!(!t.contains("Photo by"), "{t}");
    }

    #[test]
    fn list_of_titled_links_in_the_body_is_kept_and_a_menu_is_not() {
        let html = format!(
            "<html><body><article>{}<ul><li><a href=/a>Home Repair Program Flier</a></li>\
             <li><a href=/b>Window Replacement Program Fact Sheet</a></li></ul>\
             <ul><li><a href=/>Home</a></li><li><a href=/n>News</a></li><li><a href=/c>Contact</a></li></ul>{}</article></body></html>",
            prose("lead", 0),
            prose("tail", 1)
        );
        let t = main_text(&html);
        assert!(t.contains("Home Repair Program Flier"), "{t}");
        assert!(!t.contains("Contact"), "{t}");
        // A table of contents links the page's own headings.
        let toc = html
            .replace("href=/a", "href=#a")
            .replace("href=/b", "href=#b");
        let t = main_text(&toc);
        assert!(!t.contains("Home Repair Program Flier"), "{t}");
    }

    #[test]
    fn teaser_block_beside_the_article_is_not_merged() {
        let mut teasers = String::new();
        for k in 0..8 {
            teasers.push_str(&format!(
                "<p><a href=/t{k}>Another story number {k} with a long title</a> A short summary, of that story, in one line.</p>"
            ));
        }
        let mut body = String::new();
        for k in 0..4 {
            body.push_str(&prose("body", k));
        }
        let html = format!(
            "<html><body><div id=wrap><div class=story>{body}</div><div class=more>{teasers}</div></div></body></html>"
        );
        let t = main_text(&html);
        assert!(t.contains("Paragraph body 3"), "{t}");
        assert!(!t.contains("Another story"), "{t}");
    }

    #[test]
    fn post_wrapped_in_a_comment_hinted_div_is_kept_when_it_is_the_page() {
        let mut body = String::new();
        for k in 0..4 {
            body.push_str(&prose("post", k));
        }
        let html = format!(
            "<html><body><nav><a href=/>Home</a></nav><div class=commentOnSelection>{body}</div></body></html>"
        );
        let t = main_text(&html);
        assert!(t.contains("Paragraph post 3"), "{t}");
    }

    #[test]
    fn intro_in_a_header_classed_block_is_kept_and_a_link_header_is_not() {
        let mut body = String::new();
        for k in 0..3 {
            body.push_str(&prose("body", k));
        }
        let html = format!(
            "<html><body><div class=site-header><a href=/>Home</a> <a href=/n>News</a> <a href=/s>Sports</a></div>\
             <article><div class=story__header><h1>Title</h1>{}{}</div>{body}</article></body></html>",
            prose("intro", 0),
            prose("intro", 1)
        );
        let t = main_text(&html);
        assert!(t.contains("Paragraph intro 0"), "{t}");
        assert!(t.contains("Paragraph body 2"), "{t}");
        assert!(!t.contains("Sports"), "{t}");
    }

    #[test]
    fn body_split_in_several_rich_text_blocks_is_taken_whole() {
        let mut sections = String::new();
        for k in 0..4 {
            sections.push_str(&format!(
                "<section><h2>Step {k}</h2><div><div class=\"rich-text\">{}{}</div></div></section>",
                prose("part", k),
                prose("more", k)
            ));
        }
        let html = format!(
            "<html><body><nav><a href=/>Home</a><a href=/a>About</a></nav><main><div class=wrap>{sections}</div></main>\
             <footer>Contact us</footer></body></html>"
        );
        let t = main_text(&html);
        for k in 0..4 {
            assert!(t.contains(&format!("Paragraph part {k}")), "{t}");
            assert!(t.contains(&format!("Step {k}")), "{t}");
        }
        assert!(!t.contains("Contact us"), "{t}");
    }
}
