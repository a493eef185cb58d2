//! Extraction rules for common real-world page shapes, each on a small hand-written fixture.

use paperboy::extract::{extract, Extracted, Page};

fn run(name: &str) -> Extracted {
    let body = std::fs::read(format!(
        "{}/tests/fixtures/extract/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    extract(&Page {
        body: &body,
        url: None,
        content_type: Some("text/html"),
        content_language: None,
    })
    .expect("extracts")
}

/// Every block says "widget" and the article carries taxonomy/"hidden" classes: the class/id
/// pruning would remove all text, so it is undone and the body comes back without nav/footer.
#[test]
fn pruning_that_removes_nearly_everything_is_undone() {
    let x = run("builder_widgets.html");
    assert!(
        x.text.starts_with("A winter tent has to shed snow"),
        "{}",
        x.text
    );
    assert!(x.text.contains("vestibule large enough"));
    assert!(x.text.ends_with("carry it each day."), "{}", x.text);
    assert!(!x.text.contains("Outdoor Notes, 12 Hill Road"));
    assert!(!x.text.contains("Trips"));
}

/// Structured metadata first: the `<meta name="author">` wins even when it names a team, and
/// a date shown right under the headline is found although nothing marks it up.
#[test]
fn meta_author_may_name_a_team_and_a_date_under_the_headline_is_read() {
    let x = run("byline_segments.html");
    assert_eq!(x.authors, vec!["Stonecraft Team".to_string()]);
    assert_eq!(x.published_at.as_deref(), Some("2025-03-09"));
}

/// Without structured metadata, the author box is read segment by segment: the name, not the
/// name glued to the role that follows it.
#[test]
fn author_box_gives_the_name_segment() {
    let body = std::fs::read_to_string(format!(
        "{}/tests/fixtures/extract/byline_segments.html",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace("<meta name=\"author\" content=\"Stonecraft Team\">", "");
    let x = extract(&Page {
        body: body.as_bytes(),
        url: None,
        content_type: Some("text/html"),
        content_language: None,
    })
    .unwrap();
    assert_eq!(x.authors, vec!["Mara Lindqvist".to_string()]);
}

/// A bare "Written by" label followed by the name, and a `<time>` without `datetime`.
#[test]
fn written_by_label_and_plain_time_text() {
    let x = run("label_byline.html");
    assert_eq!(x.authors, vec!["Tomas Ferreira".to_string()]);
    assert_eq!(x.published_at.as_deref(), Some("2024-01-14"));
}

/// A script-rendered thread whose readable copy sits in `<noscript>`; author and date come from
/// the Q&A JSON-LD `Question`.
#[test]
fn noscript_copy_of_a_script_rendered_thread() {
    let x = run("noscript_forum.html");
    assert!(x.text.starts_with("I replaced the fan"), "{}", x.text);
    assert!(x.text.contains("reapply the thermal paste"));
    assert_eq!(x.authors, vec!["quietfan42".to_string()]);
    assert_eq!(x.published_at.as_deref(), Some("2024-06-02T09:15:00Z"));
}

/// A date shown only in a sidebar-flagged meta column is used when nothing else dates the page.
#[test]
fn sidebar_date_is_the_last_resort() {
    let html = r#"<!doctype html><html lang="en"><head><title>Pruning apple trees</title></head>
<body><div class="single-post-sidebar"><div class="single-post-date">July 8, 2025</div></div>
<article><p>Prune apple trees in late winter, when the buds are dormant and the shape of the tree is easy to see without leaves in the way.</p>
<p>Remove dead, crossing and inward-growing branches first, then thin the crown so light and air reach the fruiting spurs in summer.</p></article>
</body></html>"#;
    let x = extract(&Page {
        body: html.as_bytes(),
        url: None,
        content_type: Some("text/html"),
        content_language: None,
    })
    .unwrap();
    assert_eq!(x.published_at.as_deref(), Some("2025-07-08"));
}
