//! Authors (issue 11, failure class 7): one hand-written page per case under
//! `tests/fixtures/extract/classes/author-*.html`.

use paperboy::extract::{extract, Page};

fn authors_of(name: &str) -> Vec<String> {
    let body = std::fs::read(format!(
        "{}/tests/fixtures/extract/classes/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    let page = Page {
        body: &body,
        url: None,
        content_type: Some("text/html"),
        content_language: None,
    };
    extract(&page).expect("an article").authors
}

/// "Sign In" in author-flagged markup, and author-box link texts ("Email", "YouTube", "Connect
/// with Ray via:") are not names; "View all posts by Ray Ansari" names him.
#[test]
fn sign_in_and_author_box_links_are_not_names() {
    assert_eq!(authors_of("author-sign-in.html"), vec!["Ray Ansari"]);
}

/// A post or follower count beside a name is cut.
#[test]
fn trailing_count_is_cut() {
    assert_eq!(authors_of("author-count.html"), vec!["Jane Doe"]);
}

/// An author meta tag that names the site gives way to a person in a "By" label.
#[test]
fn brand_author_gives_way_to_person_in_by_label() {
    assert_eq!(authors_of("author-brand.html"), vec!["Meaghan Weeden"]);
}

/// A byline that names the brand, then the person: the person.
#[test]
fn brand_then_person_in_one_byline() {
    assert_eq!(
        authors_of("author-brand-byline.html"),
        vec!["Youval Meicler"]
    );
}

/// A script-rendered forum thread whose only byline is in its crawler view inside `<noscript>`
/// (forum software ships one): the thread's first poster, not a replier.
#[test]
fn author_of_a_crawler_view_in_noscript() {
    assert_eq!(authors_of("author-noscript-view.html"), vec!["quietfan42"]);
}
