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
pub fn char_len(s: &str) -> u32 {
    if s.is_ascii() {
        let ws = s.bytes().filter(|&b| is_ascii_ws(b)).count();
        return (s.len() - ws) as u32;
    }
    s.chars().filter(|c| !c.is_whitespace()).count() as u32
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
    // ASCII is NFC whatever follows it, so the check starts at the first non-ASCII byte (a char
    // boundary): most of a page's markup is ASCII.
    let Some(first) = s.bytes().position(|b| !b.is_ascii()) else {
        return s;
    };
    if is_nfc_quick(s[first..].chars()) == IsNormalized::Yes {
        return s;
    }
    std::borrow::Cow::Owned(s.nfc().collect())
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
