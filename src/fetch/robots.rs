//! PURE robots.txt rules (RFC 9309) with `texting_robots`: what a robots.txt answer means, whether a URL
//! may be fetched, the crawl-delay, and the cache entry format shared through Redis. No I/O here; the
//! fetching and caching live in `robots_cache`.

use std::sync::Arc;
use std::time::Duration;

use texting_robots::Robot;
use url::Url;

/// RFC 9309: crawlers must parse at least 500 KiB; the rest is ignored.
pub const MAX_ROBOTS_BYTES: u64 = 500 * 1024;

/// The product token matched against `User-agent:` lines: the User-Agent's first word before `/`.
pub fn product_token(user_agent: &str) -> String {
    let first = user_agent.split_whitespace().next().unwrap_or("");
    let token = first.split('/').next().unwrap_or("");
    if token.is_empty() {
        "*".to_string()
    } else {
        token.to_string()
    }
}

/// The robots.txt URL of `url`'s origin.
pub fn robots_url(url: &Url) -> Option<Url> {
    let mut u = url.clone();
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return None;
    }
    u.set_path("/robots.txt");
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Some(u)
}

/// The cache key of an origin: `scheme://host:port`.
pub fn origin_key(url: &Url) -> Option<String> {
    Some(format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?
    ))
}

/// What fetching robots.txt produced, as cached (locally and in Redis).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RobotsBody {
    /// 4xx, redirect trouble, or an empty file: everything allowed.
    AllowAll,
    /// 5xx, 429 or unreachable (with what happened): nothing allowed until the entry expires
    /// (`politeness.robots_error_ttl_s`).
    Unavailable(String),
    /// A 2xx answer's body (at most [`MAX_ROBOTS_BYTES`]).
    Text(Vec<u8>),
}

/// How long a [`RobotsBody`] is cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RobotsTtl {
    /// `politeness.robots_ttl_s`.
    Normal,
    /// `politeness.robots_error_ttl_s`.
    Error,
}

impl RobotsBody {
    /// Interpret an HTTP answer to a robots.txt request.
    pub fn from_status(status: u16, body: &[u8]) -> (RobotsBody, RobotsTtl) {
        match status {
            200..=299 => {
                let cap = (MAX_ROBOTS_BYTES as usize).min(body.len());
                (RobotsBody::Text(body[..cap].to_vec()), RobotsTtl::Normal)
            }
            // 429 is "come back later", as a 5xx (the conservative choice).
            429 | 500..=599 => (
                RobotsBody::Unavailable(format!("robots.txt answered {status}")),
                RobotsTtl::Error,
            ),
            // 4xx: unavailable -> allow all. 1xx/3xx leftovers (no Location): nothing usable, allow.
            _ => (RobotsBody::AllowAll, RobotsTtl::Normal),
        }
    }

    /// Serialized form (Redis value).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            RobotsBody::AllowAll => b"A".to_vec(),
            RobotsBody::Unavailable(why) => {
                let mut v = b"U".to_vec();
                v.extend_from_slice(why.as_bytes());
                v
            }
            RobotsBody::Text(t) => {
                let mut v = Vec::with_capacity(t.len() + 1);
                v.push(b'T');
                v.extend_from_slice(t);
                v
            }
        }
    }

    pub fn decode(v: &[u8]) -> Option<RobotsBody> {
        match v.split_first()? {
            (b'A', _) => Some(RobotsBody::AllowAll),
            (b'U', rest) => Some(RobotsBody::Unavailable(
                String::from_utf8_lossy(rest).into_owned(),
            )),
            (b'T', rest) => Some(RobotsBody::Text(rest.to_vec())),
            _ => None,
        }
    }

    /// Rules for our product token.
    pub fn rules(&self, token: &str) -> RobotsRules {
        match self {
            RobotsBody::AllowAll => RobotsRules::AllowAll,
            RobotsBody::Unavailable(why) => RobotsRules::Unavailable(Arc::from(why.as_str())),
            RobotsBody::Text(t) => match Robot::new(token, t) {
                Ok(r) => RobotsRules::Parsed(Arc::new(r)),
                // texting_robots is forgiving; a file it cannot parse at all is treated as absent.
                Err(_) => RobotsRules::AllowAll,
            },
        }
    }
}

/// Parsed rules for one origin.
#[derive(Debug, Clone)]
pub enum RobotsRules {
    AllowAll,
    /// Why robots.txt is unavailable.
    Unavailable(Arc<str>),
    Parsed(Arc<Robot>),
}

/// The decision for one URL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Allowed {
        crawl_delay: Option<Duration>,
    },
    Disallowed,
    /// robots.txt could not be fetched (5xx/unreachable): do not crawl for now.
    Unavailable,
}

impl RobotsRules {
    /// What made robots.txt unavailable, for errors and logs.
    pub fn unavailable_detail(&self) -> &str {
        match self {
            RobotsRules::Unavailable(why) => why,
            _ => "",
        }
    }

    pub fn check(&self, url: &Url) -> Verdict {
        match self {
            RobotsRules::AllowAll => Verdict::Allowed { crawl_delay: None },
            RobotsRules::Unavailable(_) => Verdict::Unavailable,
            RobotsRules::Parsed(r) => {
                // Match on path and query only (what RFC 9309 rules are about).
                let mut target = url.path().to_string();
                if let Some(q) = url.query() {
                    target.push('?');
                    target.push_str(q);
                }
                if r.allowed(&target) {
                    Verdict::Allowed {
                        crawl_delay: crawl_delay(r),
                    }
                } else {
                    Verdict::Disallowed
                }
            }
        }
    }
}

fn crawl_delay(r: &Robot) -> Option<Duration> {
    r.delay
        .filter(|d| d.is_finite() && *d > 0.0)
        .map(|d| Duration::from_secs_f64(f64::from(d).min(86_400.0 * 365.0)))
}

/// A cached entry with its expiry on the caller's clock.
#[derive(Debug, Clone)]
pub struct CachedRules {
    pub rules: RobotsRules,
    pub expires_at_ms: u64,
}

impl CachedRules {
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    const TXT: &[u8] = b"User-agent: *\nDisallow: /private\nCrawl-delay: 2\n\n\
User-agent: paperboy\nDisallow: /no-bots\nAllow: /no-bots/but-this\nCrawl-delay: 0.5\n\n\
User-agent: otherbot\nDisallow: /\n";

    #[test]
    fn product_token_is_first_word_before_slash() {
        assert_eq!(
            product_token("paperboy/0.1 (+https://x.example/bot)"),
            "paperboy"
        );
        assert_eq!(product_token("MyBot"), "MyBot");
        assert_eq!(product_token("  "), "*");
    }

    #[test]
    fn our_group_wins_over_star() {
        let rules = RobotsBody::Text(TXT.to_vec()).rules("paperboy");
        assert_eq!(
            rules.check(&u("https://n.example/no-bots/x")),
            Verdict::Disallowed
        );
        assert_eq!(
            rules.check(&u("https://n.example/no-bots/but-this/page")),
            Verdict::Allowed {
                crawl_delay: Some(Duration::from_millis(500))
            }
        );
        // /private is only disallowed for `*`, and our group replaces it.
        assert!(matches!(
            rules.check(&u("https://n.example/private")),
            Verdict::Allowed { .. }
        ));
        let star = RobotsBody::Text(TXT.to_vec()).rules("somebot");
        assert_eq!(
            star.check(&u("https://n.example/private/a?b=1")),
            Verdict::Disallowed
        );
        assert_eq!(
            star.check(&u("https://n.example/public")),
            Verdict::Allowed {
                crawl_delay: Some(Duration::from_secs(2))
            }
        );
        let other = RobotsBody::Text(TXT.to_vec()).rules("otherbot");
        assert_eq!(other.check(&u("https://n.example/")), Verdict::Disallowed);
        // robots.txt itself is always allowed.
        assert!(matches!(
            other.check(&u("https://n.example/robots.txt")),
            Verdict::Allowed { .. }
        ));
    }

    #[test]
    fn query_and_wildcards_are_matched() {
        let rules =
            RobotsBody::Text(b"User-agent: *\nDisallow: /*?print=\nDisallow: /*.pdf$\n".to_vec())
                .rules("paperboy");
        assert_eq!(
            rules.check(&u("https://n.example/a?print=1")),
            Verdict::Disallowed
        );
        assert_eq!(
            rules.check(&u("https://n.example/x.pdf")),
            Verdict::Disallowed
        );
        assert!(matches!(
            rules.check(&u("https://n.example/x.pdf.html")),
            Verdict::Allowed { .. }
        ));
    }

    #[test]
    fn statuses_map_to_rfc_9309_meaning() {
        assert_eq!(
            RobotsBody::from_status(404, b""),
            (RobotsBody::AllowAll, RobotsTtl::Normal)
        );
        assert_eq!(
            RobotsBody::from_status(403, b""),
            (RobotsBody::AllowAll, RobotsTtl::Normal)
        );
        assert_eq!(
            RobotsBody::from_status(503, b""),
            (
                RobotsBody::Unavailable("robots.txt answered 503".into()),
                RobotsTtl::Error
            )
        );
        assert_eq!(RobotsBody::from_status(429, b"").1, RobotsTtl::Error);
        let (b, t) = RobotsBody::from_status(200, b"User-agent: *\nDisallow: /");
        assert_eq!(t, RobotsTtl::Normal);
        assert_eq!(
            b.rules("paperboy").check(&u("http://h.example/a")),
            Verdict::Disallowed
        );
        assert_eq!(
            RobotsBody::Unavailable("x".into())
                .rules("paperboy")
                .check(&u("http://h.example/a")),
            Verdict::Unavailable
        );
        let (b, _) = RobotsBody::from_status(200, b"");
        assert_eq!(
            b.rules("paperboy").check(&u("http://h.example/a")),
            Verdict::Allowed { crawl_delay: None }
        );
    }

    #[test]
    fn body_is_capped_at_500_kib() {
        let big = vec![b'#'; 600 * 1024];
        match RobotsBody::from_status(200, &big).0 {
            RobotsBody::Text(t) => assert_eq!(t.len() as u64, MAX_ROBOTS_BYTES),
            b => panic!("{b:?}"),
        }
    }

    #[test]
    fn encoding_round_trips() {
        for b in [
            RobotsBody::AllowAll,
            RobotsBody::Unavailable("connect: refused".into()),
            RobotsBody::Unavailable(String::new()),
            RobotsBody::Text(TXT.to_vec()),
            RobotsBody::Text(vec![]),
        ] {
            assert_eq!(RobotsBody::decode(&b.encode()), Some(b));
        }
        assert_eq!(RobotsBody::decode(b""), None);
        assert_eq!(RobotsBody::decode(b"Z"), None);
    }

    #[test]
    fn origin_and_robots_url() {
        let x = u("https://User:pw@News.Example.com/a/b?c#d");
        assert_eq!(origin_key(&x).unwrap(), "https://news.example.com:443");
        assert_eq!(
            robots_url(&x).unwrap().as_str(),
            "https://news.example.com/robots.txt"
        );
        assert_eq!(
            origin_key(&u("http://h.test:8080/")).unwrap(),
            "http://h.test:8080"
        );
        assert!(robots_url(&u("ftp://h.test/")).is_none());
    }

    #[test]
    fn cache_expiry_uses_explicit_now() {
        let c = CachedRules {
            rules: RobotsRules::AllowAll,
            expires_at_ms: 1000,
        };
        assert!(c.is_fresh(999));
        assert!(!c.is_fresh(1000));
    }
}
