//! Text form and boilerplate rules on small inline pages.

use paperboy::extract::{extract, Page};

fn text(html: &str) -> String {
    extract(&Page {
        body: html.as_bytes(),
        url: None,
        content_type: None,
        content_language: None,
    })
    .expect("extracts")
    .text
}

const P1: &str = "The first paragraph of the story is long enough to be real prose, and it has commas, clauses and a full stop.";
const P2: &str = "The second paragraph continues the story with more detail about what happened, who was involved and why it matters.";

#[test]
fn inline_elements_are_glued_without_spaces() {
    let t = text(&format!("<html><body><article><p><span class=dropcap>H</span>ong Kong is a city. {P1}</p><p>{P2}</p></article></body></html>"));
    assert!(t.starts_with("Hong Kong is a city."), "{t}");
}

#[test]
fn headings_and_list_items_on_their_own_lines() {
    let t = text(&format!("<html><body><article><p>{P1}</p><h2>A subheading</h2><p>{P2}</p><ul><li>First point of the list</li><li>Second point of the list</li></ul><p>{P1} Again.</p></article></body></html>"));
    assert!(t.contains("\n\nA subheading\n\n"), "{t}");
    assert!(
        t.contains("First point of the list\nSecond point of the list"),
        "{t}"
    );
}

#[test]
fn boilerplate_inside_body_is_removed() {
    let t = text(&format!(
        "<html><body><article><div class=entry-content>\
         <p>By Jane Reporter</p><p>March 3, 2024</p>\
         <p>{P1}</p>\
         <div class=social-share><a href=#>Facebook</a><a href=#>Twitter</a></div>\
         <p>Read also: <a href=/x>Another story entirely</a></p>\
         <p>Join our WhatsApp channel for the latest updates</p>\
         <div class=newsletter-signup><p>Sign up for our newsletter to get the news in your inbox.</p></div>\
         <p>{P2}</p>\
         <div class=video-error>Please try again later.</div>\
         <div class=tags><a href=/t/a>economy</a> <a href=/t/b>politics</a></div>\
         </div></article>\
         <div id=comments><p>Reader comment that should not be in the text at all, even though it is long.</p></div>\
         <footer>© 2024 Example News. All rights reserved.</footer></body></html>"
    ));
    assert_eq!(t, format!("{P1}\n\n{P2}"));
}

#[test]
fn rtl_and_cjk_pages_extract() {
    let ar = "أعلنت الحكومة اليوم عن خطة جديدة لدعم الأسر في مواجهة ارتفاع الأسعار، وقال الوزير إن الإجراءات ستدخل حيز التنفيذ الشهر المقبل.";
    let zh = "政府今天宣布了一项支持家庭应对物价上涨的新计划，部长表示这些措施将于下个月生效。";
    let t = text(&format!("<html lang=ar><body><nav><a href=/>الرئيسية</a></nav><article><p>{ar}</p><p>{ar} 2</p></article><div class=share>شارك</div></body></html>"));
    assert_eq!(t, format!("{ar}\n\n{ar} 2"));
    let t = text(&format!("<html lang=zh><body><div class=menu><a href=/>首页</a><a href=/n>新闻</a></div><div class=content><p>{zh}</p><p>{zh}</p></div></body></html>"));
    assert_eq!(t, zh);
}
