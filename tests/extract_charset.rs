//! Charset chain: fixtures encoded with Python codecs (windows-1256, windows-1251, GBK, GB18030,
//! Shift_JIS, EUC-KR, ISO-8859-2/7, undeclared UTF-8 and undeclared legacy encodings).

use paperboy::extract::{extract, Extracted, Page};

fn dir() -> String {
    format!(
        "{}/tests/fixtures/extract/charset",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn run(name: &str, content_type: Option<&str>) -> (Extracted, String) {
    let body = std::fs::read(format!("{}/{name}", dir())).expect("fixture");
    let expected = std::fs::read_to_string(format!("{}/{name}.txt", dir())).expect("expected text");
    let x = extract(&Page {
        body: &body,
        url: None,
        content_type,
        content_language: None,
    })
    .expect(name);
    (x, expected)
}

fn check(name: &str, charset: &str, lang: &str) {
    let (x, expected) = run(name, Some("text/html"));
    assert_eq!(x.text, expected.trim(), "{name}");
    assert_eq!(x.charset, charset, "{name}");
    assert_eq!(x.language.as_deref(), Some(lang), "{name}");
}

#[test]
fn declared_in_meta() {
    check("windows-1256_ar.html", "windows-1256", "ar");
    check("windows-1251_ru.html", "windows-1251", "ru");
    check("gbk_zh.html", "GBK", "zh");
    check("gb18030_zh.html", "gb18030", "zh");
    check("shift_jis_ja.html", "Shift_JIS", "ja");
    check("euc-kr_ko.html", "EUC-KR", "ko");
    check("iso-8859-2_pl.html", "ISO-8859-2", "pl");
    check("iso-8859-7_el.html", "ISO-8859-7", "el");
}

#[test]
fn undeclared_utf8() {
    check("utf-8_undeclared_fa.html", "UTF-8", "fa");
    check("utf-8_undeclared_he.html", "UTF-8", "he");
}

#[test]
fn undeclared_legacy_is_detected() {
    check("windows-1256_undeclared_ar.html", "windows-1256", "ar");
    check("windows-1251_undeclared_ru.html", "windows-1251", "ru");
    check("shift_jis_undeclared_ja.html", "Shift_JIS", "ja");
}

#[test]
fn http_charset_is_used() {
    let (x, expected) = run(
        "windows-1256_undeclared_ar.html",
        Some("text/html; charset=windows-1256"),
    );
    assert_eq!(x.text, expected.trim());
    assert_eq!(x.charset, "windows-1256");
}

#[test]
fn http_utf8_that_is_plainly_wrong_falls_back_to_detection() {
    let (x, expected) = run(
        "windows-1251_undeclared_ru.html",
        Some("text/html; charset=utf-8"),
    );
    assert_eq!(x.text, expected.trim());
    assert_eq!(x.charset, "windows-1251");
}

#[test]
fn bom_wins_over_declarations() {
    let para = "Ceci est un paragraphe en français, avec des accents : é, è, à, ç, ô et œ, pour vérifier le décodage.";
    let html = format!(
        "<html><head><meta charset=\"windows-1252\"></head><body><p>{para}</p></body></html>"
    );
    let mut body = vec![0xEF, 0xBB, 0xBF];
    body.extend_from_slice(html.as_bytes());
    let x = extract(&Page {
        body: &body,
        url: None,
        content_type: Some("text/html; charset=iso-8859-1"),
        content_language: None,
    })
    .unwrap();
    assert_eq!(x.text, para);
    assert_eq!(x.charset, "UTF-8");
}

#[test]
fn entities_are_decoded() {
    let html = "<html><body><article><p>Caf&eacute; &amp; cr&egrave;me &#8212; &#x41;&lt;B&gt; &quot;quoted&quot; text that is long enough to count as a paragraph.</p></article></body></html>";
    let x = extract(&Page {
        body: html.as_bytes(),
        url: None,
        content_type: None,
        content_language: None,
    })
    .unwrap();
    assert_eq!(
        x.text,
        "Café & crème — A<B> \"quoted\" text that is long enough to count as a paragraph."
    );
}
