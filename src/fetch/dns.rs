//! Name resolution for the fetcher: a caching stub resolver (hickory-resolver) that keeps each answer for
//! its DNS TTL (floored at `fetch.dns_min_ttl_s`), so a crawl does not pay one look-up per connection.
//!
//! Every address it returns, cached or fresh, still goes through the SSRF guard in [`super::client`]:
//! the cache sits below the guard, never beside it. `fetch.dns_cache_entries = 0` turns the cache off
//! (the system's `getaddrinfo` per connection, as before).

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::TokioResolver;

use super::FetchError;
use crate::config::FetchSettings;

/// How a host name becomes addresses.
pub struct Dns {
    mode: Mode,
}

enum Mode {
    /// `getaddrinfo` through tokio, per connection.
    System,
    /// The caching resolver, built on first use (it needs a running tokio runtime).
    Cached {
        servers: Vec<SocketAddr>,
        entries: u64,
        min_ttl: Duration,
        resolver: Box<OnceLock<Option<TokioResolver>>>,
    },
}

/// The port of `fetch.dns_servers` entries that name none.
const DNS_PORT: u16 = 53;

impl Dns {
    /// From `fetch.dns_*`; fails on a `dns_servers` entry that is not an address.
    pub fn new(settings: &FetchSettings) -> Result<Self, FetchError> {
        if settings.dns_cache_entries == 0 {
            return Ok(Self { mode: Mode::System });
        }
        let servers = settings
            .dns_servers
            .iter()
            .map(|s| parse_server(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            mode: Mode::Cached {
                servers,
                entries: settings.dns_cache_entries,
                min_ttl: Duration::from_secs(settings.dns_min_ttl_s),
                resolver: Box::new(OnceLock::new()),
            },
        })
    }

    /// The addresses of `host` (port 0), or why there are none.
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, String> {
        let resolver = match &self.mode {
            Mode::System => None,
            Mode::Cached {
                servers,
                entries,
                min_ttl,
                resolver,
            } => resolver
                .get_or_init(|| build(servers, *entries, *min_ttl))
                .as_ref(),
        };
        let Some(resolver) = resolver else {
            return tokio::net::lookup_host((host, 0))
                .await
                .map(|a| a.collect())
                .map_err(|e| e.to_string());
        };
        // A fully qualified name: no search-domain expansion of page hosts.
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        let ips = resolver
            .lookup_ip(fqdn.as_str())
            .await
            .map_err(|e| e.to_string())?;
        Ok(ips
            .iter()
            .map(|ip: IpAddr| SocketAddr::new(ip, 0))
            .collect())
    }
}

/// `ip` or `ip:port` (IPv6 as `[ip]:port`).
fn parse_server(s: &str) -> Result<SocketAddr, FetchError> {
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, DNS_PORT)))
        .map_err(|_| FetchError::Dns {
            host: s.to_string(),
            detail: format!(
                "fetch.dns_servers: {s:?} is not an IP address (\"10.0.0.2\" or \"10.0.0.2:53\")"
            ),
        })
}

/// The resolver: the given servers, else the system's configuration (`/etc/resolv.conf`, hosts file).
/// `None` (with a warning) when the system configuration cannot be read: then `getaddrinfo` is used.
fn build(servers: &[SocketAddr], entries: u64, min_ttl: Duration) -> Option<TokioResolver> {
    let builder = if servers.is_empty() {
        match TokioResolver::builder_tokio() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the system DNS configuration; DNS answers are not cached");
                return None;
            }
        }
    } else {
        let name_servers = servers
            .iter()
            .map(|a| {
                let conn = |mut c: ConnectionConfig| {
                    c.port = a.port();
                    c
                };
                NameServerConfig::new(
                    a.ip(),
                    true,
                    vec![conn(ConnectionConfig::udp()), conn(ConnectionConfig::tcp())],
                )
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            Default::default(),
        )
    };
    let mut builder = builder;
    let opts = builder.options_mut();
    opts.cache_size = entries;
    opts.positive_min_ttl = Some(min_ttl);
    match builder.build() {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(error = %e, "cannot build the DNS resolver; DNS answers are not cached");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse_with_and_without_port() {
        assert_eq!(
            parse_server("10.0.0.2").unwrap(),
            "10.0.0.2:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_server("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        let e = parse_server("dns.example").unwrap_err().to_string();
        assert!(e.contains("not an IP address"), "{e}");
    }
}
