//! One hand-written page per failure class of issue 11 (classes of pages that went wrong on pages
//! nobody tuned the extractor for). Each test names what must be in the text and what must not.
//! Authors (class 7) are in `tests/extract_authors.rs`.

use paperboy::extract::{extract, Extracted, Page};
use paperboy::message::PageKind;
use url::Url;

fn page(name: &str, content_type: &str) -> Extracted {
    let body = std::fs::read(format!(
        "{}/tests/fixtures/extract/classes/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    let url = Url::parse("https://news.example/2025/story").unwrap();
    extract(&Page {
        body: &body,
        url: Some(&url),
        content_type: Some(content_type),
        content_language: None,
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn html(name: &str) -> Extracted {
    page(name, "text/html")
}

#[track_caller]
fn has(x: &Extracted, wanted: &[&str], unwanted: &[&str]) {
    for w in wanted {
        assert!(x.text.contains(w), "missing {w:?} in:\n{}", x.text);
    }
    for u in unwanted {
        assert!(!x.text.contains(u), "leaked {u:?} in:\n{}", x.text);
    }
}

// 1. Short articles are not swallowed by a page-wide root.

#[test]
fn short_story_beside_a_river_of_headlines_is_taken_alone() {
    let x = html("short-story-river.html");
    has(
        &x,
        &[
            "The Mill Lane bridge was closed",
            "shortly after seven o'clock.",
        ],
        &[
            "Latest news",
            "robotics prize",
            "Pupils from Hill Road",
            "Market Street",
        ],
    );
    assert_eq!(x.page_kind, PageKind::Article);
}

#[test]
fn short_story_is_not_joined_to_the_site_address_block() {
    let x = html("short-story-address.html");
    has(
        &x,
        &[
            "Maria Lopez opened her café",
            "hand the business to her daughter",
        ],
        &[
            "Church Walk",
            "independent community newspaper",
            "Advertising enquiries",
        ],
    );
}

// 2. Bodies split across siblings.

#[test]
fn collapsed_read_more_continuation_is_part_of_the_body() {
    let x = html("split-read-more.html");
    has(
        &x,
        &[
            "More than four hundred volunteers",
            "started by a group of anglers",
            "second clean-up in the autumn",
        ],
        &["Read more", "Copyright"],
    );
}

#[test]
fn nested_sections_with_code_keep_every_step() {
    let x = html("split-nested-sections.html");
    has(
        &x,
        &[
            "Most date bugs",
            "Keep the offset",
            "DateTime::parse_from_rfc3339(s)?;",
            "t.with_timezone(&user_zone);",
            "same instant in its own local time",
            "With these two habits",
        ],
        &["Time zones in tests"],
    );
}

/// A discussion thread (JSON-LD `DiscussionForumPosting`, so its metadata says article) whose
/// every post carries comment classes, with short replies (no run of similar records): the posts
/// are the content, not the sign-in box left once comments are dropped.
#[test]
fn thread_posts_with_comment_classes_are_the_body() {
    let x = html("thread-posts-as-comments.html");
    has(
        &x,
        &[
            "did not finish paying their orders",
            "Payment modules keep tables of their own.",
            "That was it, the bank transfer stayed.",
        ],
        &["Create an account", "Sign In Now"],
    );
}

// 3. Too much.

#[test]
fn next_article_appended_by_infinite_scroll_is_left_out() {
    let x = html("too-much-next-article.html");
    has(
        &x,
        &["Repairs to the storm-damaged harbour wall", "compensation"],
        &["Seaside festival", "sandcastle", "Next article"],
    );
}

#[test]
fn player_labels_and_gallery_captions_are_left_out() {
    let x = html("too-much-player-labels.html");
    has(
        &x,
        &["Thousands of homes", "another band of rain"],
        &[
            "4 Min Read",
            "Text size",
            "Caption settings",
            "Captions off",
            "Play Video",
            "Image 1 of 12",
        ],
    );
}

// 4. Boilerplate lines; a credit line that belongs to the story stays.

#[test]
fn reprint_promo_counter_pingback_and_comment_lines_leak_no_more() {
    let x = html("boilerplate-lines.html");
    has(
        &x,
        &[
            "Ministers agreed on Thursday",
            "restoring wetlands",
            "Additional reporting by Priya Shah in Leeds.",
        ],
        &[
            "personal, non-commercial use",
            "Subscribe now",
            "1,234 views",
            "Pingback",
            "Comments are closed",
            "Leave a Reply",
            "email address will not be published",
            "Most read",
            "Council tax to rise",
        ],
    );
}

// 5. Charset: a declared charset with one stray byte wins.

#[test]
fn declared_utf8_with_one_stray_byte_is_read_as_utf8() {
    let x = page("charset-stray-byte.html", "text/html; charset=utf-8");
    assert_eq!(x.charset, "UTF-8");
    has(
        &x,
        &[
            "La fête du village, prévue samedi",
            "près de l'église",
            "heures \u{FFFD} pour",
        ],
        &["fÃªte", "Ã©"],
    );
    assert_eq!(x.title.as_deref(), Some("La fête du village déplacée"));
}

/// A page whose UTF-8 was once read as windows-1252 and saved as UTF-8 again ("cafÃ©", "wouldnâ€™t")
/// is read as its writer wrote it.
#[test]
fn double_encoded_utf8_is_repaired() {
    let x = html("charset-double-encoded.html");
    has(
        &x,
        &[
            "the café on the corner didn’t change its menu",
            "“We’re a neighbourhood place,” she said — the crème brûlée stays at €4",
        ],
        &["Ã", "â€"],
    );
    assert_eq!(x.title.as_deref(), Some("The café that wouldn’t close"));
}

// 6. Unicode form: NFC out, whatever form the page was written in.

#[test]
fn decomposed_text_comes_out_composed() {
    let x = html("decomposed-unicode.html");
    assert!(
        !x.text.contains('\u{0308}'),
        "combining diaeresis left in {}",
        x.text
    );
    has(&x, &["Die Brücke über die alte Mühle", "Fußgänger"], &[]);
    assert_eq!(x.title.as_deref(), Some("Brücke über die Mühle gesperrt"));
}

// 8. Text only in script data.

#[test]
fn json_ld_article_body_is_the_text_of_an_empty_shell() {
    let x = html("script-data-only.html");
    assert_eq!(x.page_kind, PageKind::Article);
    assert_eq!(x.text.split("\n\n").count(), 3, "{}", x.text);
    has(
        &x,
        &["Night trains will return", "price of a hotel room"],
        &[],
    );
}

#[test]
fn embedded_state_object_body_is_the_text_of_an_empty_shell() {
    let x = html("script-state-only.html");
    has(
        &x,
        &[
            "The town hall clock is ticking again",
            "ceremony in the council chamber",
        ],
        &["A short teaser", "<p>"],
    );
    assert_eq!(x.text.split("\n\n").count(), 4, "{}", x.text);
}

/// A product page (not an article: it goes down the wide path) whose details block is rendered
/// twice, once for wide screens and once, hidden, for phones: the text says each line once.
#[test]
fn responsive_copies_of_a_block_are_said_once() {
    let x = html("too-much-responsive-copies.html");
    has(
        &x,
        &[
            "rock plate and a grippy outsole",
            "6 mm heel-to-toe",
            "drains fast after a river crossing",
        ],
        &[],
    );
    for line in ["Regular width", "280 g per shoe", "Overview"] {
        assert_eq!(
            x.text.matches(line).count(),
            1,
            "{line:?} twice in:\n{}",
            x.text
        );
    }
}
