//! PURE article extraction: page bytes + URL + HTTP headers -> [`Extracted`].
//!
//! No tokio, lapin or reqwest here. (Placeholder implementation: replaced by the real extractor.)

use crate::message::PageKind;
use url::Url;

/// One page as fetched (or read from disk).
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    /// Raw body bytes, already content-decoded (gzip etc.) but not charset-decoded.
    pub body: &'a [u8],
    /// The page's URL (after redirects), used to resolve relative links and for the site name.
    pub url: Option<&'a Url>,
    /// HTTP `Content-Type` header, for its charset.
    pub content_type: Option<&'a str>,
    /// HTTP `Content-Language` header.
    pub content_language: Option<&'a str>,
}

/// What the extractor found in a page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    pub title: Option<String>,
    pub authors: Vec<String>,
    /// RFC 3339, offset kept.
    pub published_at: Option<String>,
    pub modified_at: Option<String>,
    /// BCP 47 tag, or `None` when unknown.
    pub language: Option<String>,
    pub site_name: Option<String>,
    pub description: Option<String>,
    /// Absolute URL of the lead image.
    pub image: Option<String>,
    /// Absolute canonical URL (`<link rel=canonical>`, og:url), when the page gives one.
    pub canonical_url: Option<String>,
    /// Body text, paragraphs separated by one blank line.
    pub text: String,
    pub page_kind: PageKind,
    /// The charset the body was decoded with (WHATWG name, e.g. `windows-1256`).
    pub charset: String,
}

/// Why a page yields no article.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum ExtractError {
    #[error("the page is empty")]
    Empty,
    #[error("the page has no extractable text")]
    NoContent,
    #[error("the page is {size} bytes, over the extractor's {max}-byte limit")]
    TooLarge { size: usize, max: usize },
}

/// Extract the article from a page.
pub fn extract(page: &Page<'_>) -> Result<Extracted, ExtractError> {
    if page.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ExtractError::Empty);
    }
    let (text, _, _) = encoding_rs::UTF_8.decode(page.body);
    let doc = scraper::Html::parse_document(&text);
    let sel_p = scraper::Selector::parse("p").expect("static selector");
    let sel_t = scraper::Selector::parse("title").expect("static selector");
    let paras: Vec<String> = doc
        .select(&sel_p)
        .map(|p| {
            p.text()
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|s| !s.is_empty())
        .collect();
    if paras.is_empty() {
        return Err(ExtractError::NoContent);
    }
    Ok(Extracted {
        title: doc
            .select(&sel_t)
            .next()
            .map(|t| t.text().collect::<String>().trim().to_string()),
        text: paras.join("\n\n"),
        charset: "UTF-8".into(),
        ..Default::default()
    })
}
