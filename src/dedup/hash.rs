//! PURE fingerprints of article text: the exact content hash, a 64-bit SimHash for near-duplicates, and
//! the LSH band layout that makes near-duplicate lookup a constant number of bucket reads.
//!
//! No I/O, no async: the stores in [`super::memory`] and [`super::redis_store`] build on these.

use unicode_normalization::UnicodeNormalization;

/// Words in one SimHash shingle.
pub const SHINGLE_WORDS: usize = 3;
/// Lines shorter than these many tokens (headlines, bylines, "Share this", "Republished with permission",
/// copyright lines) are left out of the SimHash, the first cut that keeps at least [`MIN_BODY_TOKENS`]
/// tokens: they are where syndicated copies of one story differ. Body paragraphs are longer.
pub const LINE_CUTS: [usize; 2] = [16, 8];
/// Tokens a cut must keep to be used; a text without enough long lines is hashed whole.
pub const MIN_BODY_TOKENS: usize = 64;

/// The exact and the fuzzy fingerprint of one text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// `blake3:<hex>` of the normalised text ([`content_hash`]); equal texts modulo case, width and
    /// whitespace have equal hashes.
    pub hash: String,
    /// 64-bit SimHash over word shingles ([`simhash`]); near-identical texts differ in few bits.
    pub simhash: u64,
}

/// Both fingerprints of `text`.
pub fn fingerprint(text: &str) -> Fingerprint {
    // Fold once for both (folding is the costly part on long texts).
    let folded = fold(text);
    Fingerprint {
        hash: hash_folded(&folded),
        simhash: simhash_folded(&folded),
    }
}

/// Unicode NFKC, lower-cased (full case mapping). ASCII text takes a fast path: NFKC is the identity
/// there and full lower-casing is ASCII lower-casing.
fn fold(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.nfkc().flat_map(char::to_lowercase).collect()
}

/// The text as hashed: Unicode NFKC, lower-cased (full case mapping), whitespace runs collapsed to one
/// space, trimmed.
pub fn normalize(text: &str) -> String {
    collapse(&fold(text))
}

fn collapse(folded: &str) -> String {
    let mut out = String::with_capacity(folded.len());
    for word in folded.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// `blake3:<hex>` of the text, normalised (NFKC, case folded, whitespace collapsed).
pub fn content_hash(text: &str) -> String {
    hash_folded(&fold(text))
}

fn hash_folded(folded: &str) -> String {
    format!(
        "blake3:{}",
        blake3::hash(collapse(folded).as_bytes()).to_hex()
    )
}

/// Scripts written without spaces between words: each character is one token, so shingles become
/// character n-grams and the SimHash works for Chinese, Japanese, Thai, Lao, Khmer and Myanmar text.
fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF       // Thai, Lao
        | 0x1000..=0x109F     // Myanmar
        | 0x1780..=0x17FF     // Khmer
        | 0x3040..=0x30FF     // Hiragana, Katakana
        | 0x31F0..=0x31FF     // Katakana phonetic extensions
        | 0x3400..=0x4DBF     // CJK extension A
        | 0x4E00..=0x9FFF     // CJK unified ideographs
        | 0xF900..=0xFAFF     // CJK compatibility ideographs
        | 0x20000..=0x3FFFF) // CJK extensions B..
}

/// Tokens of one normalised line: alphanumeric words (marks kept, so Devanagari, Arabic … stay whole),
/// and single characters of unspaced scripts.
fn tokens(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in line.char_indices() {
        let wordy = c.is_alphanumeric() || is_mark(c);
        if wordy && is_unspaced_script(c) {
            if let Some(s) = start.take() {
                out.push(&line[s..i]);
            }
            out.push(&line[i..i + c.len_utf8()]);
        } else if wordy {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            out.push(&line[s..i]);
        }
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    out
}

/// Combining marks (Devanagari vowel signs, Arabic harakat …) belong to the word they are in.
fn is_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05C7 | 0x0610..=0x061A | 0x064B..=0x065F
        | 0x0670 | 0x06D6..=0x06ED | 0x0900..=0x0903 | 0x093A..=0x094F | 0x0951..=0x0957
        | 0x0962..=0x0963 | 0x0981..=0x0983 | 0x09BC..=0x09D7 | 0x0A01..=0x0A51 | 0x0A81..=0x0ACD
        | 0x0B01..=0x0B57 | 0x0B82..=0x0BD7 | 0x0C00..=0x0C56 | 0x0C81..=0x0CD6 | 0x0D00..=0x0D57
        | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF
        | 0x20D0..=0x20FF | 0x3099..=0x309A | 0xFE20..=0xFE2F)
}

/// 64-bit SimHash of the text over [`SHINGLE_WORDS`]-token shingles.
///
/// The text is normalised like [`content_hash`]; short lines are skipped when the rest is long enough
/// (see [`LINE_CUTS`]: they are the headline and boilerplate that differ between syndicated copies).
/// With `dedup.near_distance = 3`, two copies are found when their kept lines differ in about 1% of the
/// shingles (a few words in a 500-word story); a boilerplate paragraph of 16+ words in only one copy
/// counts like changed body text. Each shingle is hashed with BLAKE3 (stable across builds and machines: the value is
/// shared through Redis by the whole fleet). An empty text has SimHash 0.
pub fn simhash(text: &str) -> u64 {
    simhash_folded(&fold(text))
}

fn simhash_folded(folded: &str) -> u64 {
    let lines: Vec<Vec<&str>> = folded
        .lines()
        .map(tokens)
        .filter(|t| !t.is_empty())
        .collect();
    let kept =
        |cut: usize| -> usize { lines.iter().filter(|t| t.len() >= cut).map(Vec::len).sum() };
    let min_len = LINE_CUTS
        .into_iter()
        .find(|&cut| kept(cut) >= MIN_BODY_TOKENS)
        .unwrap_or(0);
    // Shingles run across line breaks of the kept lines, like across sentences.
    let stream: Vec<&str> = lines
        .iter()
        .filter(|t| t.len() >= min_len)
        .flat_map(|t| t.iter().copied())
        .collect();
    if stream.is_empty() {
        return 0;
    }
    let mut weights = [0i64; 64];
    let width = SHINGLE_WORDS.min(stream.len());
    let mut buf = String::new();
    for shingle in stream.windows(width) {
        buf.clear();
        for (i, t) in shingle.iter().enumerate() {
            if i > 0 {
                buf.push(' ');
            }
            buf.push_str(t);
        }
        let h = feature_hash(&buf);
        for (bit, w) in weights.iter_mut().enumerate() {
            if h >> bit & 1 == 1 {
                *w += 1;
            } else {
                *w -= 1;
            }
        }
    }
    weights
        .iter()
        .enumerate()
        .filter(|(_, w)| **w > 0)
        .fold(0u64, |acc, (bit, _)| acc | 1 << bit)
}

fn feature_hash(s: &str) -> u64 {
    let h = blake3::hash(s.as_bytes());
    let b = h.as_bytes();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Number of differing bits.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// How the 64 SimHash bits are cut into bands for the LSH index.
///
/// With `n` bands, two SimHashes within Hamming distance `k < n` agree exactly on at least one band
/// (pigeonhole), so looking up the fingerprint's `n` band buckets finds every near-duplicate within `k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bands {
    count: u32,
}

impl Bands {
    /// Fewest bands used (4 bands of 16 bits): more bits per band keeps buckets small.
    pub const MIN: u32 = 4;
    /// Most bands used (16 bands of 4 bits); distances of 16 and more are not guaranteed to be found.
    pub const MAX: u32 = 16;

    /// The layout that finds every near-duplicate within `distance`: `distance + 1` bands, at least
    /// [`Bands::MIN`], at most [`Bands::MAX`].
    pub fn for_distance(distance: u32) -> Bands {
        Bands {
            count: (distance + 1).clamp(Self::MIN, Self::MAX),
        }
    }

    /// Number of bands.
    pub fn count(self) -> u32 {
        self.count
    }

    /// Bits `(offset, width)` of band `i`; the widths differ by at most one and add up to 64.
    pub fn span(self, i: u32) -> (u32, u32) {
        let base = 64 / self.count;
        let extra = 64 % self.count;
        let offset = i * base + i.min(extra);
        let width = base + u32::from(i < extra);
        (offset, width)
    }

    /// The value of band `i` of `simhash`.
    pub fn band(self, simhash: u64, i: u32) -> u64 {
        let (offset, width) = self.span(i);
        (simhash >> offset) & ((1u64 << width) - 1)
    }

    /// `(band index, band value)` for every band of `simhash`.
    pub fn keys(self, simhash: u64) -> impl Iterator<Item = (u32, u64)> {
        (0..self.count).map(move |i| (i, self.band(simhash, i)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const STORY: &str = "The city council voted on Tuesday to approve a new plan for the riverside district, \
ending a debate that has lasted almost three years and divided residents across the town.\n\
Under the plan, the old warehouses along the river will be turned into housing, with a third of the new \
flats reserved for families on low incomes and the rest sold at market prices over the next decade.\n\
Supporters said the project would bring life back to an area that has been empty since the factories closed, \
while opponents warned that traffic on the narrow bridge would double and that the flood defences were not \
built for so many people.\n\
The mayor said construction could start next spring if the regional government signs off on the funding, \
which is expected to cover roughly half of the estimated cost of two hundred million euros.\n\
Residents will be able to comment on the detailed designs at a series of public meetings in the town hall \
during the coming months, and the council promised to publish every response it receives online.";

    #[test]
    fn content_hash_normalises_case_width_and_whitespace() {
        let a = content_hash("Hello   World\n\tagain");
        assert_eq!(a, content_hash("hello world again"));
        assert_eq!(a, content_hash("  HELLO WORLD AGAIN  "));
        // NFKC: full-width letters and ligatures fold to ASCII.
        assert_eq!(content_hash("ＨＥＬＬＯ ﬁne"), content_hash("hello fine"));
        assert_ne!(a, content_hash("hello world, again"));
        assert!(a.starts_with("blake3:") && a.len() == 7 + 64, "{a}");
    }

    #[test]
    fn tokens_split_words_and_unspaced_scripts() {
        assert_eq!(
            tokens("don't stop-me now"),
            vec!["don", "t", "stop", "me", "now"]
        );
        assert_eq!(tokens("東京都 abc"), vec!["東", "京", "都", "abc"]);
        assert_eq!(tokens("नमस्ते दुनिया"), vec!["नमस्ते", "दुनिया"]);
    }

    #[test]
    fn simhash_near_identical_is_close_unrelated_is_far() {
        let edited = STORY.replace("almost three years", "nearly three years");
        let d = hamming(simhash(STORY), simhash(&edited));
        assert!(d <= 3, "one word changed: distance {d}");
        let syndicated = format!(
            "Council backs riverside plan\nBy Staff Reporter | Share this article\n{STORY}\n\
             Copyright 2024 Other Site. All rights reserved."
        );
        let d = hamming(simhash(STORY), simhash(&syndicated));
        assert!(d <= 3, "headline + boilerplate lines: distance {d}");
        let other = "Scientists have found a new species of frog in the mountains of the north, a small green animal \
with bright orange feet that sings only at night during the rainy season and hides under moss the rest of the year.\n\
The team spent four months in the forest recording calls and collecting samples before they could be sure that \
the frog had never been described before by any other researchers in the region.";
        let d = hamming(simhash(STORY), simhash(other));
        assert!(d > 12, "unrelated texts: distance {d}");
        assert_eq!(simhash(""), 0);
        assert_eq!(simhash(STORY), simhash(&STORY.to_uppercase()));
    }

    #[test]
    fn simhash_works_for_cjk() {
        let zh = "市议会周二投票批准了河畔地区的新规划，结束了持续近三年、使全镇居民意见分歧的争论。\n\
根据该计划，沿河的旧仓库将被改造成住宅，其中三分之一的新公寓将留给低收入家庭，其余部分将在未来十年内以市场价格出售。\n\
支持者表示，自从工厂关闭以来，这一地区一直空无一人，该项目将为这里重新带来活力；反对者则警告说，狭窄桥梁上的交通量将翻一番，\
而且防洪设施并不是为这么多人设计的。\n\
市长说，如果地区政府批准资金，工程最早可以在明年春天开工，预计资金将覆盖约两亿欧元估算成本的一半左右。\n\
居民可以在未来几个月内在市政厅举行的一系列公开会议上对详细设计发表意见，市议会承诺将在网上公布收到的每一份意见。";
        let zh2 = zh.replace("近三年", "将近三年");
        let other = "科学家在北部山区发现了一种新的青蛙，这种绿色的小动物长着明亮的橙色脚，只在雨季的夜晚鸣叫，\
一年中其余时间都藏在苔藓下面。研究小组在森林里花了四个月时间录音和采集样本。";
        let near = hamming(simhash(zh), simhash(&zh2));
        let far = hamming(simhash(zh), simhash(other));
        assert!(near <= 3, "near {near}");
        assert!(far > 12, "far {far}");
    }

    #[test]
    fn bands_catch_every_flip_within_distance() {
        for k in 0..=20 {
            let b = Bands::for_distance(k);
            let total: u32 = (0..b.count()).map(|i| b.span(i).1).sum();
            assert_eq!(total, 64);
        }
        let b = Bands::for_distance(3);
        assert_eq!(b.count(), 4);
        let x = 0xDEAD_BEEF_0123_4567u64;
        // Flip 3 bits spread over three bands: the fourth band still matches exactly.
        let y = x ^ (1 << 1) ^ (1 << 20) ^ (1 << 40);
        let shared = b.keys(x).zip(b.keys(y)).filter(|(p, q)| p == q).count();
        assert!(shared >= 1);
        assert_eq!(b.band(x, 0), 0x4567);
        assert_eq!(b.band(x, 3), 0xDEAD);
    }
}
