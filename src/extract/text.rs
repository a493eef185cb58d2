//! Small text helpers: whitespace normalisation and character measures that work for every script.

/// What a block of emitted text is: the text form separates paragraphs, headings and blocks by a
/// blank line and consecutive list items by one newline; clean-up never drops preformatted text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParaKind {
    Para,
    Heading,
    Item,
    Pre,
}

/// One emitted block of text.
#[derive(Debug, Clone)]
pub struct Para {
    pub kind: ParaKind,
    pub text: String,
}

/// Append `s` to `out`, collapsing whitespace runs to one space (no leading space on an empty line,
/// never a space that was not in the source: inline elements are glued as written).
pub fn push_collapsed(out: &mut String, s: &str) {
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if matches!(c, '\u{200B}' | '\u{FEFF}' | '\u{00AD}') {
            continue;
        }
        if pending_space && !out.is_empty() && !out.ends_with(' ') && !out.ends_with('\n') {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    if pending_space && !out.is_empty() && !out.ends_with(' ') && !out.ends_with('\n') {
        out.push(' ');
    }
}

/// ASCII bytes that `char::is_whitespace` accepts (tab, LF, VT, FF, CR, space).
fn is_ascii_ws(b: u8) -> bool {
    matches!(b, 9..=13 | b' ')
}

/// Count of non-whitespace characters: a length measure that works for CJK (no spaces) too.
///
/// Counted on bytes (every byte that does not continue a UTF-8 sequence starts a char), which the
/// compiler vectorises; the few non-ASCII whitespace chars are then found by their lead bytes
/// (`0xC2`, `0xE1`, `0xE2`, `0xE3`). Called on every block and candidate text, so it is hot.
pub fn char_len(s: &str) -> u32 {
    let b = s.as_bytes();
    let (chars, ascii_ws) = b.iter().fold((0usize, 0usize), |(c, w), &x| {
        (
            c + usize::from((x as i8) >= -64),
            w + usize::from(is_ascii_ws(x)),
        )
    });
    let mut ws = ascii_ws;
    if chars != b.len() {
        for i in memchr::memchr3_iter(0xC2, 0xE2, 0xE3, b).chain(memchr::memchr_iter(0xE1, b)) {
            ws += usize::from(s[i..].chars().next().is_some_and(char::is_whitespace));
        }
    }
    (chars - ws) as u32
}

/// Commas in any script (Latin, Arabic, CJK full-width and ideographic).
pub fn commas(s: &str) -> u32 {
    if s.is_ascii() {
        return s.bytes().filter(|&b| b == b',').count() as u32;
    }
    s.chars()
        .filter(|c| matches!(c, ',' | '،' | '，' | '、'))
        .count() as u32
}

/// The text in Unicode normalisation form C (composed: "u" + U+0308 becomes "ü"), so every field
/// of an article compares and hashes the same whichever form the page was written in. The quick
/// check answers for almost every page without copying it.
pub fn nfc(s: std::borrow::Cow<'_, str>) -> std::borrow::Cow<'_, str> {
    use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};
    // An ASCII char is a starter that is NFC whatever surrounds it and resets the quick check's
    // state, so checking each run of non-ASCII chars alone answers as checking the whole text
    // would, and most of a page (its markup) is skipped as bytes.
    let b = s.as_bytes();
    let mut at = 0;
    let mut normal = true;
    while let Some(start) = next_non_ascii(b, at) {
        let end = b[start..]
            .iter()
            .position(u8::is_ascii)
            .map_or(b.len(), |n| start + n);
        if is_nfc_quick(s[start..end].chars()) != IsNormalized::Yes {
            normal = false;
            break;
        }
        at = end;
    }
    if normal {
        return s;
    }
    std::borrow::Cow::Owned(s.nfc().collect())
}

/// The first non-ASCII byte at or after `from`, eight bytes at a time.
fn next_non_ascii(b: &[u8], from: usize) -> Option<usize> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while i + 8 <= b.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        if u64::from_ne_bytes(w) & HIGH != 0 {
            break;
        }
        i += 8;
    }
    b[i..].iter().position(|x| !x.is_ascii()).map(|n| i + n)
}

/// Whitespace-normalised copy.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_collapsed(&mut out, s);
    out.truncate(out.trim_end().len());
    out
}

/// Case- and whitespace-folded key for comparisons.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        if w.is_ascii() {
            let at = out.len();
            out.push_str(w);
            out[at..].make_ascii_lowercase();
        } else {
            out.extend(w.chars().flat_map(char::to_lowercase));
        }
    }
    out
}

/// Does the line end like a sentence (any script)?
pub fn ends_like_sentence(s: &str) -> bool {
    let t = s.trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '\'' | '”' | '’' | '»' | ')' | '」' | '』')
    });
    t.ends_with(['.', '!', '?', '…', '。', '！', '？', '؟', '।', ':', ';'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_keeps_inline_glue() {
        let mut s = String::new();
        push_collapsed(&mut s, "  H");
        push_collapsed(&mut s, "ong   Kong\n\t is ");
        push_collapsed(&mut s, "big");
        assert_eq!(s, "Hong Kong is big");
    }

    #[test]
    fn nfc_composes_only_what_needs_it() {
        use std::borrow::Cow;
        for (s, want) in [
            ("<p>plain ascii</p>", None),
            ("<p>déjà vu — ’quoted’ 日本語 Ελληνικά</p>", None),
            ("<p>Mu\u{308}ller</p>", Some("<p>Müller</p>")),
            ("<b>x</b> a\u{323}\u{302} y", Some("<b>x</b> \u{1EAD} y")),
            (
                "ok é then \u{212B}ngstr\u{F6}m",
                Some("ok é then \u{C5}ngstr\u{F6}m"),
            ),
            // A lone combining mark is a "maybe" for the quick check: normalised (to itself).
            ("\u{0301}", Some("\u{0301}")),
        ] {
            match (nfc(Cow::Borrowed(s)), want) {
                (Cow::Borrowed(b), None) => assert_eq!(b, s),
                (Cow::Owned(o), Some(w)) => assert_eq!(o, w, "{s:?}"),
                (got, want) => panic!("{s:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn cjk_length() {
        assert_eq!(char_len("日本語 の テキスト"), 8);
    }

    #[test]
    fn ascii_fast_paths_agree_with_the_char_walk() {
        for s in [
            "",
            " a\tb\nc\x0Bd\x0Ce\rf ",
            "a, b,, c",
            "\x1C\x1Fx",
            "x\u{A0}y, z，、",
            "\u{85}a\u{1680}b\u{2000}\u{200A}\u{2028}\u{2029}\u{202F}\u{205F}\u{3000}c\u{200B}’é日",
            "ÂáâáƒÁ\u{E1}\u{C2}",
        ] {
            let slow_len = s.chars().filter(|c| !c.is_whitespace()).count() as u32;
            let slow_commas = s
                .chars()
                .filter(|c| matches!(c, ',' | '،' | '，' | '、'))
                .count() as u32;
            assert_eq!(char_len(s), slow_len, "{s:?}");
            assert_eq!(commas(s), slow_commas, "{s:?}");
        }
    }
}
