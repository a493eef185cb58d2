//! How far to trust an extraction: a second opinion on the body text and a small learned scorer.
//!
//! The second opinion is a different way of finding the text: every prose paragraph of the page
//! outside boilerplate ([`super::content::wild_paragraphs`], what paragraph-only extractors take).
//! Where the chosen text and the second opinion agree, the text is almost always right; where they
//! disagree, one of them took too much or too little. [`Signals`] measures that agreement and a
//! few sanity checks (length, link density, sentence shape, which path produced the text), and
//! [`confidence`] maps them to 0–1 with a logistic model whose weights are plain data
//! (`confidence.weights`, trained out of fold on the dev pages by `scripts/train-confidence.py`).

use super::text::{char_len, ends_like_sentence};
use foldhash::HashSet;
use std::sync::LazyLock;

/// What the scorer sees of one extraction (every value in 0–1).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Signals {
    /// Share of the text's words that the second opinion has too.
    pub agree_precision: f32,
    /// Share of the second opinion's words that the text has.
    pub agree_recall: f32,
    /// Length of the text: ln(1 + chars) / `LEN_SCALE`, capped at 1.
    pub length: f32,
    /// Share of the text's paragraphs of 80+ chars that end like sentences.
    pub sentences: f32,
    /// Link density of the chosen containers.
    pub link_density: f32,
    /// The page is an article (metadata or shape).
    pub article: f32,
    /// The text came from a fallback (paragraph-only, `<noscript>`, script data, the wide path).
    pub fallback: f32,
    /// The container holds the story's headline and its text.
    pub whole_story: f32,
    /// Share of the page's text (outside scripts and styles) that the text takes.
    pub coverage: f32,
    /// Shorter over longer of the text and the second opinion (chars).
    pub balance: f32,
}

/// ln(1 + chars) of a long article (~22,000 chars): the length signal saturates there.
const LEN_SCALE: f32 = 10.0;
/// Paragraphs at least this long (chars) count in [`Signals::sentences`]; shorter lines are
/// headings, list items and captions.
const SENTENCE_PARA_CHARS: u32 = 80;

impl Signals {
    pub fn as_array(&self) -> [f32; FEATURES] {
        [
            self.agree_precision,
            self.agree_recall,
            self.length,
            self.sentences,
            self.link_density,
            self.article,
            self.fallback,
            self.whole_story,
            self.coverage,
            self.balance,
            // Agreement both ways: the two opinions are the same text.
            self.agree_precision * self.agree_recall,
        ]
    }
}

/// Feature names, in [`Signals::as_array`] order (the weights file uses them).
pub const NAMES: [&str; FEATURES] = [
    "agree_precision",
    "agree_recall",
    "length",
    "sentences",
    "link_density",
    "article",
    "fallback",
    "whole_story",
    "coverage",
    "balance",
    "agree_both",
];

/// Inputs of the scorer.
pub const FEATURES: usize = 11;

/// Word agreement between a text and a second opinion: (share of `text`'s distinct words in
/// `other`, share of `other`'s distinct words in `text`). Two empty texts agree.
pub fn agreement(text: &str, other: &str) -> (f32, f32) {
    let a: HashSet<&str> = text.split_whitespace().collect();
    let b: HashSet<&str> = other.split_whitespace().collect();
    if a.is_empty() && b.is_empty() {
        return (1.0, 1.0);
    }
    let common = a.intersection(&b).count() as f32;
    (
        if a.is_empty() {
            0.0
        } else {
            common / a.len() as f32
        },
        if b.is_empty() {
            0.0
        } else {
            common / b.len() as f32
        },
    )
}

/// Length and sentence shape of a text.
pub fn shape(text: &str) -> (f32, f32) {
    let len = ((1.0 + char_len(text) as f32).ln() / LEN_SCALE).min(1.0);
    let (mut long, mut sentences) = (0u32, 0u32);
    for p in text.split("\n\n") {
        if char_len(p) >= SENTENCE_PARA_CHARS {
            long += 1;
            sentences += u32::from(ends_like_sentence(p));
        }
    }
    let share = if long == 0 {
        0.0
    } else {
        sentences as f32 / long as f32
    };
    (len, share)
}

struct Model {
    bias: f32,
    weights: [f32; FEATURES],
}

/// The trained weights, one `name value` per line (`#` comments), checked in as plain data.
const WEIGHTS: &str = include_str!("confidence.weights");

static MODEL: LazyLock<Model> = LazyLock::new(|| parse(WEIGHTS).expect("confidence.weights"));

fn parse(src: &str) -> Result<Model, String> {
    let mut m = Model {
        bias: 0.0,
        weights: [0.0; FEATURES],
    };
    for line in src.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("bad line {line:?}"))?;
        let v: f32 = value.trim().parse().map_err(|e| format!("{name}: {e}"))?;
        if name == "bias" {
            m.bias = v;
        } else {
            let i = NAMES
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| format!("unknown feature {name}"))?;
            m.weights[i] = v;
        }
    }
    Ok(m)
}

/// The confidence (0–1) that the text is the page's main text, rounded to two decimals.
pub fn confidence(s: &Signals) -> f32 {
    let m = &*MODEL;
    let z = m.bias
        + s.as_array()
            .iter()
            .zip(m.weights)
            .map(|(x, w)| x * w)
            .sum::<f32>();
    let p = 1.0 / (1.0 + (-z).exp());
    (p * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_is_shared_distinct_words() {
        assert_eq!(agreement("a b c d", "a b"), (0.5, 1.0));
        assert_eq!(agreement("", ""), (1.0, 1.0));
        assert_eq!(agreement("a", ""), (0.0, 0.0));
    }

    #[test]
    fn the_checked_in_weights_parse_and_rank_agreement_above_disagreement() {
        parse(WEIGHTS).expect("weights");
        let good = Signals {
            agree_precision: 1.0,
            agree_recall: 1.0,
            length: 0.8,
            sentences: 1.0,
            article: 1.0,
            coverage: 0.6,
            balance: 1.0,
            ..Signals::default()
        };
        let bad = Signals {
            agree_precision: 0.2,
            agree_recall: 0.1,
            length: 0.4,
            sentences: 0.2,
            link_density: 0.5,
            fallback: 1.0,
            coverage: 0.05,
            balance: 0.2,
            ..Signals::default()
        };
        let (g, b) = (confidence(&good), confidence(&bad));
        assert!((0.0..=1.0).contains(&g) && (0.0..=1.0).contains(&b));
        assert!(g > 0.8 && b < 0.5, "good {g} bad {b}");
    }

    #[test]
    fn bad_weight_lines_are_refused() {
        assert!(parse("nonsense 1.0").is_err());
        assert!(parse("bias x").is_err());
    }
}
