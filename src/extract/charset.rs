//! Charset detection and decoding: BOM, then HTTP `Content-Type`, then `<meta charset>` /
//! `http-equiv`, then chardetng when nothing is declared or the declaration is plainly wrong.

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252, X_USER_DEFINED};
use std::borrow::Cow;

/// How many bytes of the document are scanned for a `<meta>` charset declaration.
const META_SCAN: usize = 16 * 1024;

/// Decode `body` to text. Returns the text and the encoding used.
pub fn decode<'a>(
    body: &'a [u8],
    content_type: Option<&str>,
    tld: Option<&[u8]>,
) -> (Cow<'a, str>, &'static Encoding) {
    // 1. BOM wins.
    if let Some((enc, bom_len)) = Encoding::for_bom(body) {
        let (text, _) = enc.decode_without_bom_handling(&body[bom_len..]);
        return (text, enc);
    }
    // 2. HTTP charset, 3. meta charset.
    let declared = content_type
        .and_then(charset_from_content_type)
        .or_else(|| meta_charset(&body[..body.len().min(META_SCAN)]));
    let declared = declared.map(fix_declared);
    match declared {
        Some(enc) => {
            if let Some(text) = enc.decode_without_bom_handling_and_without_replacement(body) {
                // A legacy single-byte declaration over bytes that are valid, non-ASCII UTF-8 is
                // almost always a wrong (server-default) declaration.
                if enc != UTF_8 && is_single_byte(enc) && has_utf8_multibyte(body) {
                    if let Ok(s) = std::str::from_utf8(body) {
                        return (Cow::Borrowed(s), UTF_8);
                    }
                }
                return (text, enc);
            }
            // The declared encoding does not fit every byte. A few stray bytes in an otherwise
            // well-formed page (one bad byte in a UTF-8 article) must not re-decode the whole page
            // in a guessed legacy charset: the declaration wins, with U+FFFD for the bad bytes.
            let (text, _) = enc.decode_without_bom_handling(body);
            if !plainly_wrong(&text) {
                return (text, enc);
            }
            // The declaration is plainly wrong for these bytes: ask the detector.
            let guess = detect(body, tld);
            if guess != enc {
                if let Some(text) = guess.decode_without_bom_handling_and_without_replacement(body)
                {
                    return (text, guess);
                }
            }
            let (text, _) = enc.decode_without_bom_handling(body);
            (text, enc)
        }
        None => {
            if let Ok(s) = std::str::from_utf8(body) {
                return (Cow::Borrowed(s), UTF_8);
            }
            let guess = detect(body, tld);
            let (text, _) = guess.decode_without_bom_handling(body);
            (text, guess)
        }
    }
}

/// Decoding errors (U+FFFD) a declared charset may produce and still win, whatever the page.
const TOLERATED_ERRORS: usize = 3;
/// Above [`TOLERATED_ERRORS`], the declaration still wins while at most one non-ASCII character in
/// this many is a decoding error: a page in another charset read as UTF-8 turns nearly every
/// non-ASCII byte into U+FFFD, a UTF-8 page with a few damaged bytes only a small share.
const ERRORS_PER_NON_ASCII: usize = 20;

/// Is a text decoded with a declared charset plainly wrong (many U+FFFD among its non-ASCII
/// characters) rather than a good decoding with a few stray bytes?
fn plainly_wrong(text: &str) -> bool {
    let (mut errors, mut non_ascii) = (0usize, 0usize);
    for c in text.chars().filter(|c| !c.is_ascii()) {
        non_ascii += 1;
        errors += usize::from(c == '\u{FFFD}');
    }
    errors > TOLERATED_ERRORS && errors * ERRORS_PER_NON_ASCII > non_ascii
}

fn detect(body: &[u8], tld: Option<&[u8]>) -> &'static Encoding {
    let mut det = chardetng::EncodingDetector::new();
    // The detector needs only a sample; cap the work on huge pages.
    let sample = &body[..body.len().min(256 * 1024)];
    det.feed(sample, sample.len() == body.len());
    det.guess(tld, true)
}

/// Per the HTML standard: UTF-16 declared in a document that parsed as ASCII-compatible is UTF-8,
/// x-user-defined is windows-1252.
fn fix_declared(enc: &'static Encoding) -> &'static Encoding {
    if enc == UTF_16LE || enc == UTF_16BE {
        UTF_8
    } else if enc == X_USER_DEFINED {
        WINDOWS_1252
    } else {
        enc
    }
}

fn is_single_byte(enc: &'static Encoding) -> bool {
    enc.is_single_byte()
}

fn has_utf8_multibyte(body: &[u8]) -> bool {
    body.windows(2)
        .any(|w| (0xC2..=0xF4).contains(&w[0]) && (0x80..=0xBF).contains(&w[1]))
}

/// `text/html; charset="windows-1256"` -> windows-1256.
pub fn charset_from_content_type(ct: &str) -> Option<&'static Encoding> {
    let lower = ct.to_ascii_lowercase();
    let i = lower.find("charset")?;
    let rest = lower[i + 7..].trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let rest = rest.trim_start_matches(['"', '\'']);
    let end = rest
        .find(|c: char| c == '"' || c == '\'' || c == ';' || c.is_whitespace())
        .unwrap_or(rest.len());
    Encoding::for_label(&rest.as_bytes()[..end])
}

/// Find `<meta charset=...>` or `<meta http-equiv=content-type content="...; charset=...">`.
pub fn meta_charset(head: &[u8]) -> Option<&'static Encoding> {
    let mut i = 0;
    while let Some(pos) = find_ci(&head[i..], b"<meta") {
        let start = i + pos + 5;
        let end = head[start..]
            .iter()
            .position(|&b| b == b'>')
            .map_or(head.len(), |e| start + e);
        let tag = &head[start..end];
        if let Some(c) = find_ci(tag, b"charset") {
            let mut rest = &tag[c + 7..];
            while let [b, r @ ..] = rest {
                if b.is_ascii_whitespace() {
                    rest = r;
                } else {
                    break;
                }
            }
            if let [b'=', r @ ..] = rest {
                let mut v = r;
                while let [b, r @ ..] = v {
                    if b.is_ascii_whitespace() || *b == b'"' || *b == b'\'' {
                        v = r;
                    } else {
                        break;
                    }
                }
                let len = v
                    .iter()
                    .position(|&b| {
                        b == b'"' || b == b'\'' || b == b';' || b == b'/' || b.is_ascii_whitespace()
                    })
                    .unwrap_or(v.len());
                if let Some(enc) = Encoding::for_label(&v[..len]) {
                    return Some(enc);
                }
            }
        }
        i = end;
        if i >= head.len() {
            break;
        }
    }
    None
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Pages whose text is UTF-8 that was decoded as Latin-1 / windows-1252 once and saved as UTF-8 again
/// ("isnâ€™t", "â\u{80}\u{99}") are repaired when they hold at least this many such sequences: a
/// few could be real text ("Ã©" in a character table), three or more are a double-encoded page.
/// The count only opens the repair: it changes nothing but runs that read back as one valid UTF-8
/// sequence, which real accented text almost never forms ("náš" counts, but stays as it is).
/// On the dev pages, 25 wcxb-dev pages were double-encoded (3-156 sequences each).
const DOUBLE_ENCODED_MIN: usize = 3;

/// windows-1252's characters for the bytes 0x80-0x9F (the five unassigned ones map to themselves).
const CP1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
];

/// The byte a character stands for when UTF-8 was read as Latin-1 or windows-1252 (U+0080-U+00FF
/// and windows-1252's characters for 0x80-0x9F).
fn mis_decoded_byte(c: char) -> Option<u8> {
    match c as u32 {
        u @ 0x80..=0xFF => u8::try_from(u).ok(),
        _ => CP1252_HIGH
            .iter()
            .position(|&x| x == c)
            .and_then(|i| u8::try_from(0x80 + i).ok()),
    }
}

/// Count the places in `s` where a UTF-8 lead byte read as Latin-1 (U+00C2-U+00F4) is followed by a
/// continuation byte read as Latin-1 or windows-1252 (bytes `C3 82..B4`, then `C2 80..BF`, or the
/// first byte of a windows-1252 special: `C5`, `C6`, `CB`, `E2`), up to `enough`.
fn double_encoded_marks(s: &str, enough: usize) -> usize {
    let b = s.as_bytes();
    let mut n = 0;
    for i in memchr::memchr_iter(0xC3, b) {
        let (Some(&l), Some(&c)) = (b.get(i + 1), b.get(i + 2)) else {
            break;
        };
        let cont = match c {
            0xC2 => b.get(i + 3).is_some_and(|x| (0x80..=0xBF).contains(x)),
            0xC5 | 0xC6 | 0xCB | 0xE2 => true,
            _ => false,
        };
        if (0x82..=0xB4).contains(&l) && cont {
            n += 1;
            if n >= enough {
                break;
            }
        }
    }
    n
}

/// Repair double-encoded UTF-8 (see [`DOUBLE_ENCODED_MIN`]): every character run that, read back as
/// the bytes it was decoded from, is one valid multi-byte UTF-8 sequence becomes that character;
/// everything else stays as it is (a page mixing repaired and real accented text keeps the latter).
pub fn repair_double_encoded(text: Cow<'_, str>) -> Cow<'_, str> {
    if double_encoded_marks(&text, DOUBLE_ENCODED_MIN) < DOUBLE_ENCODED_MIN {
        return text;
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let need = match c as u32 {
            0xC2..=0xDF => 1,
            0xE0..=0xEF => 2,
            0xF0..=0xF4 => 3,
            _ => 0,
        };
        if need > 0 && i + need < chars.len() {
            let mut bytes = [0u8; 4];
            bytes[0] = c as u8;
            let ok = (1..=need).all(|k| {
                mis_decoded_byte(chars[i + k])
                    .filter(|b| (0x80..=0xBF).contains(b))
                    .map(|b| bytes[k] = b)
                    .is_some()
            });
            if let Some(r) = ok
                .then(|| std::str::from_utf8(&bytes[..=need]).ok())
                .flatten()
            {
                out.push_str(r);
                i += need + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_encoded_utf8_is_repaired_and_real_accents_are_kept() {
        let fix = |s: &str| repair_double_encoded(Cow::Borrowed(s)).into_owned();
        // Read as Latin-1 (C1 controls) and as windows-1252 ("â€™").
        assert_eq!(
            fix("isn\u{e2}\u{80}\u{99}t, it\u{e2}\u{80}\u{99}s, caf\u{c3}\u{a9}"),
            "isn’t, it’s, café"
        );
        assert_eq!(fix("isnâ€™t — itâ€™s “noâ€? â€”"), "isn’t — it’s “noâ€? —");
        // Real text: left alone (too few marks, and accents that are no UTF-8 sequence).
        assert_eq!(
            fix("Ã© is how é looks when misread"),
            "Ã© is how é looks when misread"
        );
        assert_eq!(
            fix("für Straße, ça va, São Paulo, déjà"),
            "für Straße, ça va, São Paulo, déjà"
        );
        // A repaired page keeps its real accents.
        assert_eq!(
            fix("déjà vu: donâ€™t, wonâ€™t, canâ€™t"),
            "déjà vu: don’t, won’t, can’t"
        );
    }

    #[test]
    fn content_type_charset() {
        assert_eq!(
            charset_from_content_type("text/html; charset=\"Windows-1256\""),
            Some(encoding_rs::WINDOWS_1256)
        );
        assert_eq!(charset_from_content_type("text/html"), None);
    }

    #[test]
    fn meta_forms() {
        assert_eq!(
            meta_charset(b"<META charset='euc-kr'>"),
            Some(encoding_rs::EUC_KR)
        );
        assert_eq!(
            meta_charset(
                b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=shift_jis\">"
            ),
            Some(encoding_rs::SHIFT_JIS)
        );
        assert_eq!(meta_charset(b"<meta name=x content=y>"), None);
    }

    #[test]
    fn declared_utf8_with_one_stray_byte_stays_utf8() {
        let mut bytes =
            "Müller sagte, die Straße sei gesperrt. Überall Staus, größere Verzögerungen."
                .as_bytes()
                .to_vec();
        bytes.extend_from_slice(b" stray \xE9 byte.");
        let (text, enc) = decode(&bytes, Some("text/html; charset=utf-8"), Some(b"de"));
        assert_eq!(enc, UTF_8);
        assert!(text.contains("Müller") && text.contains("Straße"), "{text}");
        assert!(text.contains("stray \u{FFFD} byte"), "{text}");
    }

    #[test]
    fn declared_utf8_but_invalid_is_detected() {
        let (bytes, _, _) = encoding_rs::WINDOWS_1251
            .encode("Привет, как дела? Это проверка кодировки текста на русском языке.");
        let (text, enc) = decode(&bytes, Some("text/html; charset=utf-8"), None);
        assert_eq!(enc, encoding_rs::WINDOWS_1251);
        assert!(text.contains("Привет"));
    }
}
