//! Who an HTTP client is: the peer address, or, when the peer is one of the
//! configured `trusted_proxies`, the address the proxy says it forwarded
//! (`X-Forwarded-For`, read from the right, skipping trusted hops). The
//! lockout and the per-client viewer cap count this address; without it a
//! reverse proxy is one client and its 17th viewer is refused. A leaf, so
//! that the settings can hold the parsed list.

use std::net::IpAddr;

/// Networks whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyList(Vec<(IpAddr, u8)>);

impl ProxyList {
    /// `"10.0.0.2, 192.168.1.0/24, fd00::/8"`; empty: no proxy is trusted.
    pub fn parse(list: &str) -> Result<ProxyList, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, bits) = item.split_once('/').unwrap_or((item, ""));
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("{item:?} is not an IP address or network"))?;
            let ip = ip.to_canonical();
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = if bits.is_empty() {
                max
            } else {
                bits.parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("{item:?}: prefix length must be 0 to {max}"))?
            };
            nets.push((ip, bits));
        }
        Ok(ProxyList(nets))
    }

    /// As the settings show it: `10.0.0.2/32, 192.168.1.0/24`, or `none`.
    pub fn show(&self) -> String {
        if self.0.is_empty() {
            return "none".into();
        }
        let nets: Vec<String> = self
            .0
            .iter()
            .map(|(ip, bits)| format!("{ip}/{bits}"))
            .collect();
        nets.join(", ")
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
                u32::from(*n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
                u128::from(*n) & mask == u128::from(a) & mask
            }
            _ => false,
        })
    }

    /// The client behind `peer`: the rightmost untrusted `X-Forwarded-For`
    /// entry when `peer` is trusted, else `peer` itself. A header that does
    /// not parse counts as the proxy itself.
    pub fn client(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let peer = peer.map(|ip| ip.to_canonical())?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        let Some(list) = forwarded_for else {
            return Some(peer);
        };
        let mut client = peer;
        for hop in list.rsplit(',').map(str::trim) {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip.to_canonical();
                    if !self.trusts(client) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        Some(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let none = ProxyList::default();
        assert_eq!(none.client(ip("10.0.0.2"), Some("1.2.3.4")), ip("10.0.0.2"));
        let p = ProxyList::parse("10.0.0.2, 192.168.1.0/24").unwrap();
        assert_eq!(p.client(ip("10.0.0.2"), Some("1.2.3.4")), ip("1.2.3.4"));
        // A client cannot name itself past the proxy: the rightmost
        // untrusted hop is the one the proxy saw.
        assert_eq!(
            p.client(ip("10.0.0.2"), Some("6.6.6.6, 1.2.3.4, 192.168.1.7")),
            ip("1.2.3.4")
        );
        assert_eq!(p.client(ip("10.0.0.3"), Some("1.2.3.4")), ip("10.0.0.3"));
        assert_eq!(p.client(ip("10.0.0.2"), Some("junk")), ip("10.0.0.2"));
        assert_eq!(p.client(ip("10.0.0.2"), None), ip("10.0.0.2"));
        assert_eq!(p.client(ip("::ffff:10.0.0.2"), Some("::1")), ip("::1"));
        let v6 = ProxyList::parse("fd00::/8").unwrap();
        assert_eq!(
            v6.client(ip("fd12::1"), Some("2001:db8::5")),
            ip("2001:db8::5")
        );
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(ProxyList::parse("").unwrap().0.is_empty());
        assert!(ProxyList::parse("10.0.0.0/33").is_err());
        assert!(ProxyList::parse("proxy.lan").is_err());
        assert!(ProxyList::parse("fd00::/129").is_err());
        assert_eq!(ProxyList::parse("0.0.0.0/0").unwrap().0.len(), 1);
    }
}
