//! PURE: sitemaps (`<urlset>`), sitemap indexes (`<sitemapindex>`) and Google News sitemaps
//! (`<news:news>` inside `<url>`), read as a stream with `quick-xml`: no tree is built, so a 50 MB,
//! 50,000-URL sitemap costs its entries, not its markup.
//!
//! Only XML's predefined entities and character references are resolved: a DTD's own entities (an
//! entity bomb) are left as they are, so they cannot expand.

use quick_xml::events::Event;
use quick_xml::Reader;
use url::Url;

use super::{w3c_datetime, Item, SourceError};

/// Which element's text is being read.
#[derive(Clone, Copy, PartialEq)]
enum Field {
    Loc,
    Lastmod,
    NewsTitle,
    NewsDate,
    Other,
}

/// Entries kept at most from one sitemap (the protocol allows 50,000); later ones are only counted.
pub const MAX_KEPT_ENTRIES: usize = 50_000;

/// (pages, child sitemaps) listed by the sitemap in `body`, in document order, and the count of
/// entries past [`MAX_KEPT_ENTRIES`] that were only counted.
pub fn parse(body: &[u8], base: &Url) -> Result<(Vec<Item>, Vec<Item>, usize), SourceError> {
    let text = String::from_utf8_lossy(body);
    let mut reader = Reader::from_str(&text);
    let malformed = |detail: String| SourceError::Malformed {
        url: base.to_string(),
        detail,
    };
    let (mut pages, mut sitemaps) = (Vec::new(), Vec::new());
    let mut cut = 0;
    // The <url> or <sitemap> being read, and whether it is a <sitemap>.
    let mut entry: Option<(Item, bool)> = None;
    let mut field = Field::Other;
    let mut value = String::new();
    let mut root: Option<String> = None;
    loop {
        let ev = reader.read_event().map_err(|e| {
            malformed(format!(
                "XML error at byte {}: {e}",
                reader.error_position()
            ))
        })?;
        match ev {
            Event::Start(e) => {
                let name = e.local_name().into_inner().to_ascii_lowercase();
                if root.is_none() {
                    if name != "urlset" && name != "sitemapindex" {
                        return Err(malformed(format!(
                            "root element <{name}> is not <urlset> or <sitemapindex>"
                        )));
                    }
                    root = Some(name);
                    continue;
                }
                match name.as_str() {
                    "url" => entry = Some((Item::default(), false)),
                    "sitemap" => entry = Some((Item::default(), true)),
                    _ if entry.is_some() => {
                        // <news:title> and <news:publication_date> live in <news:news>.
                        field = match name.as_str() {
                            "loc" => Field::Loc,
                            "lastmod" => Field::Lastmod,
                            "title" => Field::NewsTitle,
                            "publication_date" => Field::NewsDate,
                            _ => Field::Other,
                        };
                        value.clear();
                    }
                    _ => {}
                }
            }
            Event::Text(t) if field != Field::Other => value.push_str(&t.xml10_content()),
            Event::CData(t) if field != Field::Other => value.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if field != Field::Other => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    value.push(c);
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(r.as_ref()) {
                    value.push_str(s);
                }
                // Other entities (declared in a DTD) are dropped: never expanded.
            }
            Event::End(e) => {
                let name = e.local_name().into_inner().to_ascii_lowercase();
                match name.as_str() {
                    "url" | "sitemap" => {
                        if let Some((item, is_index)) = entry.take() {
                            if pages.len() + sitemaps.len() >= MAX_KEPT_ENTRIES {
                                cut += 1;
                            } else if is_index {
                                sitemaps.push(item);
                            } else {
                                pages.push(item);
                            }
                        }
                    }
                    _ => {
                        if let Some((item, _)) = entry.as_mut() {
                            let v = value.trim();
                            match field {
                                Field::Loc => item.url = v.to_string(),
                                // The news date is the publication; lastmod only when there is none.
                                Field::NewsDate => {
                                    item.published_at = w3c_datetime(v).or(item.published_at.take())
                                }
                                Field::Lastmod if item.published_at.is_none() => {
                                    item.published_at = w3c_datetime(v)
                                }
                                Field::NewsTitle if !v.is_empty() => {
                                    item.title = Some(v.to_string())
                                }
                                _ => {}
                            }
                        }
                        field = Field::Other;
                        value.clear();
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if root.is_none() {
        return Err(malformed("no <urlset> or <sitemapindex> element".into()));
    }
    Ok((pages, sitemaps, cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://news.example/sitemap.xml").unwrap()
    }

    #[test]
    fn urlset_with_news_entries() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>https://news.example/a?x=1&amp;y=2</loc><lastmod>2023-11-01</lastmod>
    <news:news><news:publication><news:name>N</news:name><news:language>en</news:language></news:publication>
      <news:publication_date>2023-11-14T10:00:00+01:00</news:publication_date><news:title>Storm &#8211; live</news:title></news:news></url>
  <url><loc> https://news.example/b </loc><lastmod>2023-11-02T08:00Z</lastmod></url>
  <url><loc><![CDATA[https://news.example/c]]></loc></url>
</urlset>"#;
        let (pages, maps, _) = parse(xml, &base()).unwrap();
        assert!(maps.is_empty());
        assert_eq!(pages.len(), 3);
        assert_eq!(pages[0].url, "https://news.example/a?x=1&y=2");
        assert_eq!(pages[0].title.as_deref(), Some("Storm \u{2013} live"));
        assert_eq!(
            pages[0].published_at.as_deref(),
            Some("2023-11-14T09:00:00Z")
        );
        assert_eq!(pages[1].url, "https://news.example/b");
        assert_eq!(pages[2].url, "https://news.example/c");
    }

    #[test]
    fn index_lists_child_sitemaps() {
        let xml = br#"<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <sitemap><loc>https://news.example/s1.xml.gz</loc><lastmod>2023-11-14</lastmod></sitemap>
            <sitemap><loc>https://news.example/s2.xml</loc></sitemap></sitemapindex>"#;
        let (pages, maps, _) = parse(xml, &base()).unwrap();
        assert!(pages.is_empty());
        assert_eq!(
            maps.iter().map(|m| m.url.as_str()).collect::<Vec<_>>(),
            [
                "https://news.example/s1.xml.gz",
                "https://news.example/s2.xml"
            ]
        );
    }

    #[test]
    fn bad_documents_are_malformed() {
        for bad in [
            &b"<urlset><url><loc>x</url></urlset>"[..],
            b"<html><body>",
            b"",
            b"<urlset><url>",
        ] {
            let r = parse(bad, &base());
            // An unclosed urlset at EOF is tolerated by the stream reader only if it yielded entries.
            if let Ok((pages, _, _)) = &r {
                assert!(pages.is_empty(), "{:?}", String::from_utf8_lossy(bad));
            }
        }
        assert!(matches!(
            parse(b"<urlset><url><loc>x</url></urlset>", &base()),
            Err(SourceError::Malformed { .. })
        ));
        assert!(matches!(
            parse(b"<html><body>", &base()),
            Err(SourceError::Malformed { .. })
        ));
    }

    #[test]
    fn dtd_entities_are_not_expanded() {
        let xml = br#"<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
            <urlset><url><loc>https://news.example/&b;x</loc></url></urlset>"#;
        let (pages, _, _) = parse(xml, &base()).unwrap();
        assert_eq!(pages[0].url, "https://news.example/x");
    }
}
