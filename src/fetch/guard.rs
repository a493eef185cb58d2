//! SSRF guard: which IP addresses a crawler must never connect to (PURE: no I/O).
//!
//! Refused unless `fetch.allow_private_networks`: loopback, unspecified, private (RFC 1918, fc00::/7),
//! link-local (169.254/16 incl. the 169.254.169.254 cloud metadata address, fe80::/10), CGNAT
//! (100.64/10), multicast, broadcast, documentation, benchmarking, reserved and "this network" ranges,
//! IETF protocol assignments (192.0.0/24), 6to4 relay anycast, and the IPv4-mapped / IPv4-compatible /
//! NAT64 / 6to4 forms of those in IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused (used in errors and logs).
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// True when a connection to `ip` must be refused (SSRF guard).
pub fn is_forbidden(ip: IpAddr) -> bool {
    forbidden_reason(ip).is_some()
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "this-network"),
        ([10, 0, 0, 0], 8, "private"),
        ([100, 64, 0, 0], 10, "cgnat"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 0, 0, 0], 24, "ietf-protocol"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([192, 88, 99, 0], 24, "6to4-relay"),
        ([192, 168, 0, 0], 16, "private"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved"),
        ([255, 255, 255, 255], 32, "broadcast"),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    let bits = u128::from(ip);
    let in_v6 = |net: u128, prefix: u32| {
        let mask = if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - prefix)
        };
        (bits & mask) == (net & mask)
    };
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // IPv4-mapped ::ffff:a.b.c.d and the deprecated IPv4-compatible ::a.b.c.d: judge the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] {
        return forbidden_v4(Ipv4Addr::from((bits & 0xffff_ffff) as u32));
    }
    // NAT64 well-known prefix 64:ff9b::/96 embeds an IPv4 address.
    if in_v6(0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96) {
        return forbidden_v4(Ipv4Addr::from((bits & 0xffff_ffff) as u32));
    }
    // 6to4 2002::/16 embeds an IPv4 address in bits 16..48.
    if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        );
        if let Some(why) = forbidden_v4(v4) {
            return Some(why);
        }
    }
    const RANGES: &[(u128, u32, &str)] = &[
        (0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48, "nat64-local"),
        (0x0100_0000_0000_0000_0000_0000_0000_0000, 64, "discard"),
        (
            0x2001_0000_0000_0000_0000_0000_0000_0000,
            23,
            "ietf-protocol",
        ),
        (
            0x2001_0db8_0000_0000_0000_0000_0000_0000,
            32,
            "documentation",
        ),
        (
            0x3fff_0000_0000_0000_0000_0000_0000_0000,
            20,
            "documentation",
        ),
        (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7, "unique-local"),
        (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10, "link-local"),
        (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10, "site-local"),
        (0xff00_0000_0000_0000_0000_0000_0000_0000, 8, "multicast"),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| in_v6(*net, *prefix))
        .map(|(_, _, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_internal_v4() {
        for a in [
            "0.0.0.0",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.0.0.2",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(is_forbidden(ip(a)), "{a} must be refused");
        }
    }

    #[test]
    fn allows_public_v4() {
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "169.253.0.1",
        ] {
            assert!(!is_forbidden(ip(a)), "{a} must be allowed");
        }
    }

    #[test]
    fn refuses_internal_v6_and_mapped() {
        for a in [
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "::10.1.2.3",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:0001::1",
            "2002:a9fe:a9fe::",
        ] {
            assert!(is_forbidden(ip(a)), "{a} must be refused");
        }
    }

    #[test]
    fn allows_public_v6() {
        for a in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert!(!is_forbidden(ip(a)), "{a} must be allowed");
        }
    }

    #[test]
    fn reasons_are_named() {
        assert_eq!(forbidden_reason(ip("169.254.169.254")), Some("link-local"));
        assert_eq!(forbidden_reason(ip("100.64.1.1")), Some("cgnat"));
        assert_eq!(forbidden_reason(ip("::ffff:192.168.0.1")), Some("private"));
        assert_eq!(forbidden_reason(ip("1.1.1.1")), None);
    }
}
