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
