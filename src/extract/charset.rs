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

#[cfg(test)]
mod tests {
    use super::*;

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
