//! Arbitrary bytes into the extractor's public entry. The first byte picks the HTTP context
//! (Content-Type charset, page URL, Content-Language) so charset detection, declared-charset
//! decoding and URL resolution are all exercised; the rest is the body.
//! The extractor must never panic, overflow the stack or run unbounded on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paperboy::extract::{extract, Page};
use std::sync::LazyLock;
use url::Url;

const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some("text/html"),
    Some("text/html; charset=utf-8"),
    Some("text/html; charset=windows-1251"),
    Some("text/html; charset=shift_jis"),
    Some("text/html; charset=utf-16le"),
    Some("text/html; charset=\"gb18030\""),
    Some("application/xhtml+xml; charset=iso-8859-7"),
];

static URL: LazyLock<Url> =
    LazyLock::new(|| Url::parse("https://news.example.co.uk/world/2024/05/17/story.html").unwrap());

fuzz_target!(|data: &[u8]| {
    let (ctx, body) = match data.split_first() {
        Some((&c, rest)) => (c, rest),
        None => (0, data),
    };
    let page = Page {
        body,
        content_type: CONTENT_TYPES[(ctx & 7) as usize],
        url: (ctx & 8 != 0).then(|| &*URL),
        content_language: (ctx & 16 != 0).then_some("de-DE, en"),
    };
    if let Ok(x) = extract(&page) {
        assert!(!x.text.trim().is_empty(), "Ok with empty text");
    }
});
