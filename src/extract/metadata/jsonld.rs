//! JSON-LD: every `<script type="application/ld+json">` block, `@graph` lists, arrays and nested
//! `mainEntity` objects, read into one [`Ld`]. An article-typed object overrides what page or site
//! objects said; site objects give the site name; a Q&A `Question` gives thread author and date.

use super::entities::html_unescape;
use crate::extract::text::normalize;
use serde_json::Value;

/// Objects visited across all blocks at most: a guard against huge or adversarial `@graph`s.
const MAX_LD_OBJECTS: usize = 10_000;
/// People read from one `author` array at most: credit lists longer than this are not bylines.
const MAX_LD_PEOPLE: usize = 20;

#[derive(Debug, Default)]
pub struct Ld {
    pub types: Vec<String>,
    pub headline: Option<String>,
    pub authors: Vec<String>,
    /// Organization authors: used only when no person is named anywhere.
    pub org_authors: Vec<String>,
    /// Author and date of a Q&A `Question` (forum threads): used when no article object has them.
    pub question_authors: Vec<String>,
    pub question_published: Option<String>,
    pub published: Option<String>,
    pub modified: Option<String>,
    pub language: Option<String>,
    pub publisher: Option<String>,
    pub image: Option<String>,
    pub description: Option<String>,
    pub body: Option<String>,
    pub site_name: Option<String>,
    /// Whether the fields came from an article-typed object.
    pub is_article: bool,
}

const ARTICLE_TYPES: &[&str] = &[
    "article",
    "newsarticle",
    "blogposting",
    "reportagenewsarticle",
    "analysisnewsarticle",
    "opinionnewsarticle",
    "reviewnewsarticle",
    "backgroundnewsarticle",
    "askpublicnewsarticle",
    "scholarlyarticle",
    "techarticle",
    "socialmediaposting",
    "liveblogposting",
    "report",
    "posting",
    "review",
    "satiricalarticle",
    "medicalscholarlyarticle",
    "advertisercontentarticle",
    "discussionforumposting",
];

pub(super) fn is_article_type(t: &str) -> bool {
    let l = t.to_ascii_lowercase();
    let l = l.rsplit('/').next().unwrap_or(&l);
    ARTICLE_TYPES.contains(&l)
}

fn ld_types(o: &serde_json::Map<String, Value>) -> Vec<String> {
    match o.get("@type") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => vec![],
    }
}

fn ld_str(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => {
            let t = normalize(&html_unescape(s));
            (!t.is_empty()).then_some(t)
        }
        Value::Array(a) => a.iter().find_map(|x| ld_str(Some(x))),
        Value::Object(o) => ld_str(o.get("name").or(o.get("@value")).or(o.get("url"))),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn ld_image(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Array(a) => a.iter().find_map(|x| ld_image(Some(x))),
        Value::Object(o) => ld_image(o.get("url").or(o.get("contentUrl"))),
        _ => None,
    }
}

fn ld_people(v: Option<&Value>, out: &mut Vec<String>, orgs: &mut Vec<String>) {
    let Some(v) = v else { return };
    match v {
        Value::String(s) => out.push(normalize(&html_unescape(s))),
        Value::Array(a) => {
            for x in a.iter().take(MAX_LD_PEOPLE) {
                ld_people(Some(x), out, orgs);
            }
        }
        Value::Object(o) => {
            let types = ld_types(o);
            if types.iter().any(|t| t.ends_with("Organization")) {
                if let Some(n) = ld_str(o.get("name")) {
                    orgs.push(n);
                }
                return;
            }
            if let Some(n) = ld_str(o.get("name")) {
                out.push(n);
            } else if let (Some(g), Some(f)) =
                (ld_str(o.get("givenName")), ld_str(o.get("familyName")))
            {
                out.push(format!("{g} {f}"));
            }
        }
        _ => {}
    }
}

fn read_ld_object(o: &serde_json::Map<String, Value>, ld: &mut Ld) {
    let types = ld_types(o);
    let is_article = types.iter().any(|t| is_article_type(t));
    ld.types.extend(types.iter().cloned());
    let is_site = types
        .iter()
        .any(|t| t == "WebSite" || t == "Organization" || t == "NewsMediaOrganization");
    if is_site && ld.site_name.is_none() {
        ld.site_name = ld_str(o.get("name"));
    }
    let is_page = types.iter().any(|t| t.ends_with("Page"));
    // Article objects override anything read from non-article objects.
    let take = is_article && !ld.is_article;
    if types.iter().any(|t| t.eq_ignore_ascii_case("question")) {
        if ld.question_authors.is_empty() {
            let mut orgs = Vec::new();
            ld_people(o.get("author"), &mut ld.question_authors, &mut orgs);
            ld.question_authors.extend(orgs);
        }
        if ld.question_published.is_none() {
            ld.question_published = ld_str(o.get("datePublished"));
        }
    }
    if !(is_article || ld.is_article || is_page) {
        if ld.language.is_none() {
            ld.language = ld_str(o.get("inLanguage"));
        }
        return;
    }
    if take {
        ld.is_article = true;
        ld.headline = None;
        ld.authors.clear();
        ld.org_authors.clear();
        ld.published = None;
        ld.modified = None;
        ld.body = None;
    }
    if !is_article && ld.is_article {
        return;
    }
    if ld.headline.is_none() {
        ld.headline = ld_str(o.get("headline")).or_else(|| {
            if is_article {
                ld_str(o.get("name"))
            } else {
                None
            }
        });
    }
    if ld.authors.is_empty() && ld.org_authors.is_empty() {
        ld_people(
            o.get("author").or(o.get("creator")),
            &mut ld.authors,
            &mut ld.org_authors,
        );
    }
    if ld.published.is_none() {
        ld.published = ld_str(o.get("datePublished")).or_else(|| ld_str(o.get("dateCreated")));
    }
    if ld.modified.is_none() {
        ld.modified = ld_str(o.get("dateModified"));
    }
    if ld.language.is_none() {
        ld.language = ld_str(o.get("inLanguage"));
    }
    if ld.publisher.is_none() {
        ld.publisher = ld_str(o.get("publisher"));
    }
    if ld.image.is_none() {
        ld.image = ld_image(o.get("image").or(o.get("thumbnailUrl")));
    }
    if ld.description.is_none() {
        ld.description = ld_str(o.get("description"));
    }
    if ld.body.is_none() {
        if let Some(Value::String(b)) = o.get("articleBody") {
            ld.body = Some(b.clone());
        }
    }
}

/// Read every parsed block (depth first, as a stack) into `ld`.
pub(super) fn read_all(blocks: Vec<Value>, ld: &mut Ld) {
    let mut stack = blocks;
    let mut guard = 0;
    while let Some(v) = stack.pop() {
        guard += 1;
        if guard > MAX_LD_OBJECTS {
            break;
        }
        match v {
            Value::Array(a) => stack.extend(a),
            Value::Object(mut o) => {
                if let Some(g) = o.remove("@graph") {
                    stack.push(g);
                }
                read_ld_object(&o, ld);
                // Nested mainEntity / mainEntityOfPage objects can be the article.
                if let Some(me) = o.remove("mainEntity") {
                    if me.is_object() || me.is_array() {
                        stack.push(me);
                    }
                }
            }
            _ => {}
        }
    }
}
