//! Body text that a page ships only in script data: JSON-LD `articleBody`, or the state object
//! a client-rendered page hydrates from (`<script type="application/json">`, `__NEXT_DATA__`).
//! Used only when the DOM itself holds (next to) no body text.

use super::dom::{Dom, Tag};
use super::text::{char_len, ends_like_sentence, normalize};
use serde_json::Value;

/// Largest script scanned for an embedded state object (bytes): state blobs of real pages are a
/// few hundred kB; beyond this the parse costs more than the page.
const MAX_STATE_BYTES: usize = 4 * 1024 * 1024;
/// Shortest string taken as a body from a state object (chars): shorter strings are teasers,
/// titles and labels.
const MIN_STATE_BODY_CHARS: u32 = 400;
/// Deepest nesting walked in a state object.
const MAX_STATE_DEPTH: usize = 64;
/// A state string reads as prose from this many words (a few sentences; a caption or a label is
/// shorter).
const PROSE_MIN_WORDS: usize = 60;

/// Paragraph text from a body string found in script data: HTML (`<p>…</p>`) or plain text with
/// line breaks between paragraphs.
pub fn body_text(raw: &str) -> String {
    if raw.contains("</p>") || raw.contains("<br") || raw.contains("</div>") {
        let doc = scraper::Html::parse_fragment(raw);
        let mut paras: Vec<String> = Vec::new();
        let mut cur = String::new();
        for node in doc.root_element().descendants() {
            if let Some(t) = node.value().as_text() {
                cur.push_str(t);
            } else if let Some(e) = node.value().as_element() {
                if matches!(
                    e.name(),
                    "p" | "br" | "div" | "h1" | "h2" | "h3" | "h4" | "li" | "blockquote"
                ) {
                    push_para(&mut paras, &mut cur);
                }
            }
        }
        push_para(&mut paras, &mut cur);
        return paras.join("\n\n");
    }
    let mut paras = Vec::new();
    for line in raw.split(['\n', '\r']) {
        let mut s = line.to_string();
        push_para(&mut paras, &mut s);
    }
    paras.join("\n\n")
}

fn push_para(paras: &mut Vec<String>, cur: &mut String) {
    let t = normalize(cur);
    if !t.is_empty() {
        paras.push(t);
    }
    cur.clear();
}

/// The longest prose string of the page's JSON state scripts (`type="application/json"` or a
/// `__NEXT_DATA__`-style id), as paragraph text, when it is at least [`MIN_STATE_BODY_CHARS`] long
/// and reads as sentences.
pub fn state_body(dom: &Dom<'_>) -> Option<String> {
    let mut best: Option<String> = None;
    let mut best_len = MIN_STATE_BODY_CHARS - 1;
    for (i, node) in dom.nodes.iter().enumerate() {
        if node.tag != Tag::Script {
            continue;
        }
        let json_type = dom
            .attr(i, "type")
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !json_type {
            continue;
        }
        for c in dom.children(i) {
            let raw = dom.nodes[c].text;
            if raw.len() > MAX_STATE_BYTES || raw.len() < MIN_STATE_BODY_CHARS as usize {
                continue;
            }
            let Ok(v) = serde_json::from_str::<Value>(raw) else {
                continue;
            };
            let mut stack = vec![(&v, 0usize)];
            while let Some((v, depth)) = stack.pop() {
                match v {
                    Value::String(s) if s.len() > best_len as usize => {
                        let text = body_text(s);
                        let len = char_len(&text);
                        if len > best_len && reads_as_prose(&text) {
                            best_len = len;
                            best = Some(text);
                        }
                    }
                    Value::Array(a) if depth < MAX_STATE_DEPTH => {
                        stack.extend(a.iter().map(|x| (x, depth + 1)))
                    }
                    Value::Object(o) if depth < MAX_STATE_DEPTH => {
                        stack.extend(o.values().map(|x| (x, depth + 1)))
                    }
                    _ => {}
                }
            }
        }
    }
    best
}

/// Prose, not code, a URL list or an encoded blob: several words, and most paragraphs end like
/// sentences.
fn reads_as_prose(text: &str) -> bool {
    let words = text.split_whitespace().count();
    let paras: Vec<&str> = text.split("\n\n").collect();
    let sentences = paras.iter().filter(|p| ends_like_sentence(p)).count();
    words >= PROSE_MIN_WORDS && sentences * 2 >= paras.len() && !text.contains("function(")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_and_plain_bodies_become_paragraphs() {
        assert_eq!(
            body_text("<p>One &amp; two.</p><p>Three <b>four</b>.</p>"),
            "One & two.\n\nThree four."
        );
        assert_eq!(body_text("One.\n\nTwo\nthree."), "One.\n\nTwo\n\nthree.");
    }

    #[test]
    fn longest_prose_string_of_a_json_state_script() {
        let para = "The council met on Monday and agreed to repair the old bridge before winter, after years of delay. ";
        let html = format!(
            "<html><body><div id=root></div><script type=application/json>{{\"a\":{{\"teaser\":\"Short.\",\
             \"body\":\"<p>{}</p><p>{}</p>\",\"css\":\"{}\"}}}}</script></body></html>",
            para.repeat(3),
            para.repeat(2),
            "x".repeat(2000)
        );
        let doc = scraper::Html::parse_document(&html);
        let dom = Dom::build(&doc, 10_000).unwrap();
        let t = state_body(&dom).expect("state body");
        assert!(t.starts_with("The council met"), "{t}");
        assert_eq!(t.split("\n\n").count(), 2, "{t}");
    }
}
