//! PURE: RSS 0.x / 1.0 / 2.0, Atom and JSON Feed entries as [`Item`]s, through `feed-rs`.
//!
//! `feed-rs` resolves only XML's predefined entities (an entity bomb stays unexpanded text) and
//! accepts the dates feeds really carry (RFC 822 with odd zones, RFC 3339).

use url::Url;

use super::{Item, SourceError};

/// Entries parsed at most from one XML feed, whatever `feed.max_items` is: `feed-rs` builds every
/// entry in memory (about 1 KB each), so a feed of a million tiny items is cut here first.
pub const MAX_PARSED_ENTRIES: usize = 20_000;

/// Entries of the feed in `body`, in the feed's order, and how many entries past
/// [`MAX_PARSED_ENTRIES`] were cut unread.
pub fn parse(body: &[u8], base: &Url) -> Result<(Vec<Item>, usize), SourceError> {
    let (body, cut) = cut_entries(body, MAX_PARSED_ENTRIES);
    let feed = feed_rs::parser::Builder::new()
        .base_uri(Some(base.as_str()))
        .build()
        .parse(&body[..])
        .map_err(|e| SourceError::Malformed {
            url: base.to_string(),
            detail: format!("not a readable RSS, Atom or JSON feed ({e})"),
        })?;
    let items = feed
        .entries
        .into_iter()
        .map(|e| {
            // The page: the alternate link (Atom), else the first link; RSS puts <link> first.
            let url = e
                .links
                .iter()
                .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
                .or_else(|| e.links.first())
                .map(|l| l.href.clone())
                // An RSS item without <link> whose <guid> is a permalink URL.
                .or_else(|| e.id.starts_with("http").then(|| e.id.clone()))
                .unwrap_or_default();
            let title = e
                .title
                .map(|t| t.content.trim().to_string())
                .filter(|t| !t.is_empty());
            let published_at = e
                .published
                .or(e.updated)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            let authors = e
                .authors
                .iter()
                .filter_map(|p| p.name.as_deref().map(str::trim))
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            Item {
                url,
                title,
                published_at,
                authors,
            }
        })
        .collect();
    Ok((items, cut))
}

/// An XML feed with more than `max` `<item>` / `<entry>` elements cut before the next one and closed
/// again (`</channel></rss>`, `</feed>` or `</rdf:RDF>`); the count of entries cut.
fn cut_entries(body: &[u8], max: usize) -> (std::borrow::Cow<'_, [u8]>, usize) {
    if body.first().is_some_and(|b| *b == b'{') {
        return (body.into(), 0);
    }
    let starts = |tag: &'static [u8]| {
        memchr::memmem::find_iter(body, tag).filter(move |&i| {
            body.get(i + tag.len())
                .is_some_and(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/')
        })
    };
    let (items, entries) = (starts(b"<item").count(), starts(b"<entry").count());
    let (tag, count, close): (&'static [u8], usize, &[u8]) = if items >= entries {
        let close: &[u8] = if memchr::memmem::find(body, b"<rdf:RDF").is_some() {
            b"</rdf:RDF>"
        } else {
            b"</channel></rss>"
        };
        (b"<item", items, close)
    } else {
        (b"<entry", entries, b"</feed>")
    };
    if count <= max {
        return (body.into(), 0);
    }
    let at = starts(tag).nth(max).unwrap_or(body.len());
    let mut out = body[..at].to_vec();
    out.extend_from_slice(close);
    (out.into(), count - max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://news.example/feed.xml").unwrap()
    }

    #[test]
    fn rss2_items() {
        let xml = br#"<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
            <title>News</title>
            <item><title> Storm hits coast </title><link>https://news.example/a/storm</link>
              <pubDate>Tue, 14 Nov 2023 10:00:00 GMT</pubDate><dc:creator>Ana Lima</dc:creator></item>
            <item><guid isPermaLink="true">https://news.example/a/guid-only</guid></item>
            </channel></rss>"#;
        let (items, _) = parse(xml, &base()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].url, "https://news.example/a/storm");
        assert_eq!(items[0].title.as_deref(), Some("Storm hits coast"));
        assert_eq!(
            items[0].published_at.as_deref(),
            Some("2023-11-14T10:00:00Z")
        );
        assert_eq!(items[0].authors, ["Ana Lima"]);
        assert_eq!(items[1].url, "https://news.example/a/guid-only");
    }

    #[test]
    fn atom_and_json_feed() {
        let atom = br#"<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>x</id><updated>2023-11-14T00:00:00Z</updated>
            <entry><title>One</title><id>1</id><link rel="enclosure" href="/a.mp3"/><link rel="alternate" href="/one"/>
            <updated>2023-11-14T09:00:00+01:00</updated><author><name>Bo</name></author></entry></feed>"#;
        let (items, _) = parse(atom, &base()).unwrap();
        assert_eq!(items[0].url, "https://news.example/one");
        assert_eq!(
            items[0].published_at.as_deref(),
            Some("2023-11-14T08:00:00Z")
        );
        let json = br#"{"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": [
            {"id": "1", "url": "https://news.example/j1", "title": "J one", "date_published": "2023-11-14T10:00:00Z",
             "authors": [{"name": "Cy"}]}]}"#;
        let (items, _) = parse(json, &base()).unwrap();
        assert_eq!(items[0].url, "https://news.example/j1");
        assert_eq!(items[0].authors, ["Cy"]);
    }

    #[test]
    fn entity_bombs_stay_unexpanded_and_garbage_is_malformed() {
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
            <rss version="2.0"><channel><title>&lol3;</title><item><title>&lol3;</title><link>https://news.example/b</link></item></channel></rss>"#;
        let (items, _) = parse(bomb, &base()).unwrap();
        assert!(items[0].title.as_deref().unwrap_or_default().len() < 100);
        assert!(matches!(
            parse(b"<rss><channel><item>", &base()),
            Err(SourceError::Malformed { .. })
        ));
    }
}
