//! Which addresses a request may connect to: the rule that keeps a
//! download (and every redirect hop) away from cloud metadata services and,
//! unless the API itself is local, from loopback and private networks.

use std::net::IpAddr;

use url::Url;

/// Which addresses a download (and each of its redirect hops) may connect
/// to, by the literal address in its URL.
///
/// Link-local (cloud metadata services live at 169.254.169.254), multicast,
/// broadcast and unspecified addresses are always refused. Loopback and
/// private addresses are allowed only when the API itself is on one (a
/// simulator on 127.0.0.1, a service on a private network) or by an explicit
/// opt-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AddressPolicy {
    pub allow_local: bool,
}

impl AddressPolicy {
    /// Whether `url` may be fetched; `Err` says why not.
    pub(crate) fn check(&self, url: &Url) -> std::result::Result<(), String> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(d)) => {
                if !self.allow_local && d.eq_ignore_ascii_case("localhost") {
                    return Err(format!("{d} is a loopback host"));
                }
                return Ok(());
            }
            None => return Err("the URL has no host".into()),
        };
        let ip = canonical(ip);
        if is_never_reachable(ip) {
            return Err(format!(
                "{ip} is a link-local, multicast or unspecified address"
            ));
        }
        let local = match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
            IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        };
        if local && !self.allow_local {
            return Err(format!(
                "{ip} is a loopback or private address and the API is not on one \
                 (allow_local_downloads(true) to permit it)"
            ));
        }
        Ok(())
    }

    /// The policy that fits a base URL: local addresses are allowed when the
    /// API itself is on one.
    pub(crate) fn for_base_url(base: &Url) -> AddressPolicy {
        let allow_local = match base.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_private(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        AddressPolicy { allow_local }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Addresses no request of the client may reach: link-local (cloud
/// metadata services), multicast, broadcast, unspecified.
fn is_never_reachable(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            v4.is_link_local() || v4.is_multicast() || v4.is_broadcast() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            v6.is_multicast() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Resolves host names as the system does, without the addresses no
/// request may reach: a name that points at the metadata service gets no
/// connection, whatever the URL looked like.
pub(crate) struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<std::net::SocketAddr> =
                found.filter(|a| !is_never_reachable(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{host} resolves only to link-local, multicast or unspecified addresses"
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn downloads_never_reach_link_local_or_unspecified_addresses() {
        let strict = AddressPolicy { allow_local: false };
        let open = AddressPolicy { allow_local: true };
        for bad in [
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]/x",
            "http://0.0.0.0/x",
            "http://224.0.0.1/x",
            "http://[::ffff:169.254.169.254]/x",
            "http://255.255.255.255/x",
        ] {
            assert!(strict.check(&url(bad)).is_err(), "{bad}");
            assert!(open.check(&url(bad)).is_err(), "{bad}");
        }
        for local in [
            "http://127.0.0.1:9/x",
            "http://10.0.0.8/x",
            "http://localhost/x",
            "http://[::1]/x",
        ] {
            assert!(strict.check(&url(local)).is_err(), "{local}");
            assert!(open.check(&url(local)).is_ok(), "{local}");
        }
        assert!(strict.check(&url("https://cdn.example.com/a.png")).is_ok());
        assert!(strict.check(&url("https://93.184.216.34/a.png")).is_ok());
    }

    #[test]
    fn resolved_addresses_are_screened_too() {
        for never in [
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "fe80::1",
            "::ffff:169.254.1.1",
        ] {
            assert!(is_never_reachable(never.parse().unwrap()), "{never}");
        }
        for fine in [
            "127.0.0.1",
            "10.1.2.3",
            "93.184.216.34",
            "::1",
            "2001:db8::1",
        ] {
            assert!(!is_never_reachable(fine.parse().unwrap()), "{fine}");
        }
    }

    #[tokio::test]
    async fn the_resolver_keeps_ordinary_names() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let addrs: Vec<_> = GuardedResolver.resolve(name).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
        assert!(!addrs.is_empty());
    }

    #[test]
    fn local_downloads_follow_the_base_url() {
        assert!(AddressPolicy::for_base_url(&url("http://127.0.0.1:8787")).allow_local);
        assert!(AddressPolicy::for_base_url(&url("http://192.168.1.5:80")).allow_local);
        assert!(!AddressPolicy::for_base_url(&url("https://vision-agent.api.reka.ai")).allow_local);
    }
}
