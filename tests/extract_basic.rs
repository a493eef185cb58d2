//! End-to-end extractor tests on small hand-written fixtures.

use paperboy::extract::{extract, Page};
use paperboy::message::PageKind;
use url::Url;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/extract/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

#[test]
fn plain_news_page_gives_exactly_its_body() {
    let body = fixture("plain_news.html");
    let url = Url::parse("https://gazette.example/news/park").unwrap();
    let x = extract(&Page {
        body: &body,
        url: Some(&url),
        content_type: Some("text/html"),
        content_language: None,
    })
    .unwrap();
    let expected = "The city council voted seven to two on Tuesday night to turn the old freight yard along the river into a public park, ending a debate that has lasted almost a decade.\n\n\
The plan includes a playground, a community garden and a cycle path linking the park to the town centre. Work is expected to start next spring and take about eighteen months.\n\n\
Councillor Jane Okafor, who proposed the plan, said residents had \u{201c}waited long enough\u{201d} for green space on the east side of town.\n\n\
Opponents argued that the land should be sold to developers to pay for road repairs, but their amendment was defeated.";
    assert_eq!(x.text, expected);
    assert_eq!(
        x.title.as_deref(),
        Some("Council approves new riverside park")
    );
    assert_eq!(x.authors, vec!["Alice Martin".to_string()]);
    assert_eq!(x.published_at.as_deref(), Some("2024-05-14T08:15:00+01:00"));
    assert_eq!(x.modified_at.as_deref(), Some("2024-05-14T10:00:00+01:00"));
    assert_eq!(x.language.as_deref(), Some("en-GB"));
    assert_eq!(x.site_name.as_deref(), Some("Riverton Gazette"));
    assert_eq!(
        x.image.as_deref(),
        Some("https://gazette.example/images/park.jpg")
    );
    assert_eq!(
        x.canonical_url.as_deref(),
        Some("https://gazette.example/2024/05/14/riverside-park")
    );
    assert_eq!(x.page_kind, PageKind::Article);
    assert_eq!(x.charset, "UTF-8");
}

/// A page whose only date is a lone date text (no metadata, no `<time>`, no date-flagged element,
/// no `<h1>` to look by) is dated by it; a date in the comments is not the page's.
#[test]
fn a_lone_date_text_dates_a_page_that_has_no_other_date() {
    let body = fixture("lone_date.html");
    let url = Url::parse("https://blog.example/river-park").unwrap();
    let page = |body: &[u8]| {
        extract(&Page {
            body,
            url: Some(&url),
            content_type: Some("text/html"),
            content_language: None,
        })
        .unwrap()
    };
    assert_eq!(page(&body).published_at.as_deref(), Some("2024-04-08"));
    // Without it, the comment's date does not stand in.
    let html = String::from_utf8(body).unwrap();
    let without = html.replace("<p class=\"small-print\">April 8, 2024</p>", "");
    assert_eq!(page(without.as_bytes()).published_at, None);
}
