//! The outbound address guard: which peers an HTTP destination may reach.
//!
//! A destination URL is operator config, but what its name resolves to is
//! not: DNS can point a harmless-looking host at the cloud metadata service
//! (169.254.169.254 hands out credentials) or at a private network. So the
//! check runs on addresses, not names, twice on every new connection: the
//! resolver drops refused addresses before connecting (so a name that
//! resolves to both a public and a forbidden address still works), and the
//! connected socket's peer address is checked again (hyper-util skips DNS
//! for IP-literal URLs, and a resolver can change its mind between calls).
//! IP-literal URLs are also checked when the config loads.
//!
//! Always refused, unless allowed explicitly: cloud metadata, link-local,
//! unspecified ("this network"), multicast, broadcast and reserved
//! addresses. With `server.deny_private_destinations` also: loopback,
//! RFC 1918, shared CGNAT space, unique local IPv6, documentation,
//! benchmarking and IETF protocol ranges. IPv4-mapped (`::ffff:a.b.c.d`),
//! IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`), 6to4 and
//! Teredo IPv6 addresses are judged as the IPv4 address they carry. An address in
//! `server.allow_destination_addresses` or the destination's
//! `allow_addresses` is let through whatever its class.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use serde::Deserialize;
use tokio::net::TcpStream;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An allow-list entry: a CIDR range (`"169.254.170.2/32"`, `"fd00::/8"`)
/// or a single address (`"127.0.0.1"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange(pub IpNet);

impl AddressRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

impl std::str::FromStr for AddressRange {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            // 10.0.0.1/8 is almost certainly a typo for 10.0.0.0/8; take the
            // network the operator evidently meant rather than refuse.
            return Ok(Self(net.trunc()));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self(IpNet::from(ip)));
        }
        Err(format!(
            "{raw:?} is not an address range: expected an address or CIDR, e.g. \"169.254.170.2/32\" or \"fd00::/8\""
        ))
    }
}

impl<'de> Deserialize<'de> for AddressRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Why an address is special.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Class {
    // Refused unless allowed.
    Metadata,
    LinkLocal,
    Unspecified,
    Multicast,
    Broadcast,
    Reserved,
    // Refused with `deny_private_destinations`.
    Loopback,
    Private,
    SharedCgnat,
    UniqueLocal,
    SiteLocal,
    Documentation,
    Benchmarking,
    ProtocolAssignments,
}

impl Class {
    /// Refused even without `deny_private_destinations`.
    pub fn always_refused(self) -> bool {
        matches!(
            self,
            Class::Metadata
                | Class::LinkLocal
                | Class::Unspecified
                | Class::Multicast
                | Class::Broadcast
                | Class::Reserved
        )
    }

    fn describe(self) -> &'static str {
        match self {
            Class::Metadata => "a cloud metadata address",
            Class::LinkLocal => "a link-local address",
            Class::Unspecified => "an unspecified (\"this network\") address",
            Class::Multicast => "a multicast address",
            Class::Broadcast => "the broadcast address",
            Class::Reserved => "a reserved address",
            Class::Loopback => "a loopback address",
            Class::Private => "a private (RFC 1918) address",
            Class::SharedCgnat => "a shared (carrier-grade NAT, RFC 6598) address",
            Class::UniqueLocal => "a unique local (fc00::/7) address",
            Class::SiteLocal => "a site-local (fec0::/10) address",
            Class::Documentation => "a documentation address",
            Class::Benchmarking => "a benchmarking (RFC 2544) address",
            Class::ProtocolAssignments => "an IETF protocol assignment (192.0.0.0/24) address",
        }
    }
}

/// Well-known instance metadata endpoints. Most sit in link-local space and
/// would be refused anyway; the others are ordinary-looking addresses.
const METADATA_V4: [Ipv4Addr; 6] = [
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack, DigitalOcean…
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task credentials
    Ipv4Addr::new(169, 254, 170, 23),  // AWS EKS pod identity
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
    Ipv4Addr::new(192, 0, 0, 192),     // Oracle Cloud
    Ipv4Addr::new(168, 63, 129, 16),   // Azure WireServer
];
const METADATA_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254), // AWS IMDS over IPv6
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),  // AWS EKS pod identity
];

/// The IPv4 address an IPv6 address stands for, if any: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, but not `::` or `::1`),
/// the NAT64 well-known prefix (`64:ff9b::a.b.c.d`), 6to4 (`2002:aabb:ccdd::/48`
/// carries `a.b.c.d`) and Teredo (`2001:0::/32`, whose last 32 bits are the
/// client's IPv4 address inverted). Each of these ends up at the IPv4 host,
/// so it is judged as that host.
pub fn normalise(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let embedded = || Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    if s[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback() {
        return IpAddr::V4(embedded());
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(embedded());
    }
    if s[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2])));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        return IpAddr::V4(Ipv4Addr::from(!u32::from(embedded())));
    }
    ip
}

/// What kind of special address `ip` is (after [`normalise`]), or `None`
/// for an ordinary public address.
pub fn classify(ip: IpAddr) -> Option<Class> {
    match normalise(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> Option<Class> {
    let c = if METADATA_V4.contains(&ip) {
        Class::Metadata
    } else if ip.is_broadcast() {
        Class::Broadcast
    } else if in_v4(ip, [0, 0, 0, 0], 8) {
        // Connecting to 0.0.0.0 reaches the local host on Linux.
        Class::Unspecified
    } else if in_v4(ip, [169, 254, 0, 0], 16) {
        Class::LinkLocal
    } else if in_v4(ip, [224, 0, 0, 0], 4) {
        Class::Multicast
    } else if in_v4(ip, [240, 0, 0, 0], 4) {
        Class::Reserved
    } else if in_v4(ip, [127, 0, 0, 0], 8) {
        Class::Loopback
    } else if in_v4(ip, [10, 0, 0, 0], 8)
        || in_v4(ip, [172, 16, 0, 0], 12)
        || in_v4(ip, [192, 168, 0, 0], 16)
    {
        Class::Private
    } else if in_v4(ip, [100, 64, 0, 0], 10) {
        Class::SharedCgnat
    } else if in_v4(ip, [192, 0, 0, 0], 24) {
        Class::ProtocolAssignments
    } else if in_v4(ip, [192, 0, 2, 0], 24)
        || in_v4(ip, [198, 51, 100, 0], 24)
        || in_v4(ip, [203, 0, 113, 0], 24)
    {
        Class::Documentation
    } else if in_v4(ip, [198, 18, 0, 0], 15) {
        Class::Benchmarking
    } else {
        return None;
    };
    Some(c)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Class> {
    let s = ip.segments();
    let c = if METADATA_V6.contains(&ip) {
        Class::Metadata
    } else if ip.is_unspecified() {
        Class::Unspecified
    } else if ip.is_loopback() {
        Class::Loopback
    } else if s[0] & 0xff00 == 0xff00 {
        Class::Multicast
    } else if s[0] & 0xffc0 == 0xfe80 {
        Class::LinkLocal
    } else if s[0] & 0xffc0 == 0xfec0 {
        Class::SiteLocal
    } else if s[0] & 0xfe00 == 0xfc00 {
        Class::UniqueLocal
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        Class::Documentation
    } else {
        return None;
    };
    Some(c)
}

/// The rule set of one destination: the server-wide switches plus its own
/// allow-list.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    deny_private: bool,
    allow: Vec<AddressRange>,
}

impl AddressPolicy {
    /// `server_allow` and `destination_allow` are merged: either lets an
    /// address through.
    pub fn new(
        deny_private: bool,
        server_allow: &[AddressRange],
        destination_allow: &[AddressRange],
    ) -> Self {
        Self {
            deny_private,
            allow: server_allow
                .iter()
                .chain(destination_allow)
                .copied()
                .collect(),
        }
    }

    /// `Ok` if a connection to `ip` may be made.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        let norm = normalise(ip);
        if self
            .allow
            .iter()
            .any(|a| a.contains(ip) || a.contains(norm))
        {
            return Ok(());
        }
        match classify(ip) {
            Some(class) if class.always_refused() || self.deny_private => Err(Refused {
                addr: ip,
                class,
                host: None,
            }),
            _ => Ok(()),
        }
    }

    /// The check for a URL host when the config loads: IP literals only
    /// (names are checked on every connect, since DNS answers change).
    pub fn check_host(&self, host: &str) -> Result<(), Refused> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.check(ip),
            Err(_) => Ok(()),
        }
    }
}

/// A connection the policy forbids. Not worth retrying: the same address
/// will be refused next time, so the event is dead-lettered at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub addr: IpAddr,
    pub class: Class,
    /// The name that resolved to `addr`, when there was one.
    pub host: Option<String>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("refused: ")?;
        match &self.host {
            Some(h) => write!(f, "{h} resolves to {}, which is ", self.addr)?,
            None => write!(f, "{} is ", self.addr)?,
        }
        f.write_str(self.class.describe())?;
        if !self.class.always_refused() {
            f.write_str(" and server.deny_private_destinations is on")?;
        }
        f.write_str(
            "; allow it with server.allow_destination_addresses or the destination's allow_addresses",
        )
    }
}

impl std::error::Error for Refused {}

/// The refusal somewhere in an error's source chain, if there is one.
pub fn find_refusal<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

/// DNS through the system resolver, with refused addresses removed. When
/// every address a name has is refused, resolution fails with the refusal.
#[derive(Clone)]
pub struct GuardedResolver {
    inner: GaiResolver,
    policy: Arc<AddressPolicy>,
}

impl Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let lookup = self.inner.call(name.clone());
        let policy = self.policy.clone();
        Box::pin(async move {
            let mut refused = None;
            let kept: Vec<SocketAddr> = lookup
                .await?
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(r) => {
                        refused.get_or_insert(r);
                        false
                    }
                })
                .collect();
            match refused {
                Some(mut r) if kept.is_empty() => {
                    r.host = Some(name.as_str().to_owned());
                    Err(Box::new(r) as BoxError)
                }
                _ => Ok(kept.into_iter()),
            }
        })
    }
}

/// hyper-util's TCP connector, resolving through [`GuardedResolver`] and
/// checking the connected peer address before handing the socket on.
#[derive(Clone)]
pub struct GuardedConnector {
    inner: HttpConnector<GuardedResolver>,
    policy: Arc<AddressPolicy>,
}

impl GuardedConnector {
    /// `configure` sets the TCP options (timeouts, nodelay) on the inner
    /// connector.
    pub fn new(
        policy: AddressPolicy,
        configure: impl FnOnce(&mut HttpConnector<GuardedResolver>),
    ) -> Self {
        let policy = Arc::new(policy);
        let mut inner = HttpConnector::new_with_resolver(GuardedResolver {
            inner: GaiResolver::new(),
            policy: policy.clone(),
        });
        configure(&mut inner);
        Self { inner, policy }
    }
}

impl Service<http::Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let policy = self.policy.clone();
        Box::pin(async move {
            let io = connecting.await?;
            let peer = io.inner().peer_addr()?;
            // The socket is dropped (closed) before a byte is written.
            policy.check(peer.ip())?;
            Ok(io)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn class(s: &str) -> Option<Class> {
        classify(ip(s))
    }

    #[test]
    fn every_always_refused_range_is_classified() {
        for (addr, want) in [
            ("169.254.169.254", Class::Metadata),
            ("169.254.170.2", Class::Metadata),
            ("100.100.100.200", Class::Metadata),
            ("192.0.0.192", Class::Metadata),
            ("168.63.129.16", Class::Metadata),
            ("fd00:ec2::254", Class::Metadata),
            ("169.254.0.1", Class::LinkLocal),
            ("169.254.255.255", Class::LinkLocal),
            ("fe80::1", Class::LinkLocal),
            ("febf:ffff::1", Class::LinkLocal),
            ("0.0.0.0", Class::Unspecified),
            ("0.1.2.3", Class::Unspecified),
            ("::", Class::Unspecified),
            ("224.0.0.1", Class::Multicast),
            ("239.255.255.250", Class::Multicast),
            ("ff02::1", Class::Multicast),
            ("255.255.255.255", Class::Broadcast),
            ("240.0.0.1", Class::Reserved),
            ("255.255.255.254", Class::Reserved),
        ] {
            assert_eq!(class(addr), Some(want), "{addr}");
            assert!(want.always_refused(), "{addr}");
        }
    }

    #[test]
    fn every_private_range_is_classified() {
        for (addr, want) in [
            ("127.0.0.1", Class::Loopback),
            ("127.255.255.254", Class::Loopback),
            ("::1", Class::Loopback),
            ("10.0.0.1", Class::Private),
            ("10.255.255.255", Class::Private),
            ("172.16.0.1", Class::Private),
            ("172.31.255.255", Class::Private),
            ("192.168.1.1", Class::Private),
            ("100.64.0.1", Class::SharedCgnat),
            ("100.127.255.255", Class::SharedCgnat),
            ("fc00::1", Class::UniqueLocal),
            ("fd12:3456::1", Class::UniqueLocal),
            ("fd00:ec2::253", Class::UniqueLocal),
            ("fec0::1", Class::SiteLocal),
            ("192.0.2.1", Class::Documentation),
            ("198.51.100.7", Class::Documentation),
            ("203.0.113.9", Class::Documentation),
            ("2001:db8::1", Class::Documentation),
            ("198.18.0.1", Class::Benchmarking),
            ("198.19.255.255", Class::Benchmarking),
            ("192.0.0.8", Class::ProtocolAssignments),
        ] {
            assert_eq!(class(addr), Some(want), "{addr}");
            assert!(!want.always_refused(), "{addr}");
        }
    }

    #[test]
    fn public_addresses_and_range_edges_are_ordinary() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "9.255.255.255",
            "11.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "223.255.255.255",
            "126.255.255.255",
            "128.0.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "192.0.1.0",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "fbff::1",
            "fe00::1",
        ] {
            assert_eq!(class(addr), None, "{addr}");
        }
    }

    #[test]
    fn ipv6_forms_that_carry_an_ipv4_address_are_judged_as_it() {
        for (addr, want) in [
            ("::ffff:169.254.169.254", Some(Class::Metadata)),
            ("::ffff:a9fe:a9fe", Some(Class::Metadata)),
            ("::169.254.169.254", Some(Class::Metadata)),
            ("64:ff9b::169.254.169.254", Some(Class::Metadata)),
            ("::ffff:127.0.0.1", Some(Class::Loopback)),
            ("::127.0.0.1", Some(Class::Loopback)),
            ("::ffff:10.1.2.3", Some(Class::Private)),
            ("::ffff:0.0.0.0", Some(Class::Unspecified)),
            ("::ffff:255.255.255.255", Some(Class::Broadcast)),
            ("::ffff:224.0.0.1", Some(Class::Multicast)),
            ("64:ff9b::10.0.0.1", Some(Class::Private)),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::8.8.8.8", None),
            // 6to4: 2002:a9fe:a9fe:: is 169.254.169.254's network.
            ("2002:a9fe:a9fe::1", Some(Class::Metadata)),
            ("2002:7f00:1::", Some(Class::Loopback)),
            ("2002:0a00:0001:ffff::1", Some(Class::Private)),
            ("2002:0808:0808::1", None),
            // Teredo: the client's address inverted in the last 32 bits.
            (
                "2001:0:4136:e378:8000:63bf:5601:5601",
                Some(Class::Metadata),
            ),
            (
                "2001:0:4136:e378:8000:63bf:80ff:fffe",
                Some(Class::Loopback),
            ),
            ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", None),
            // Not IPv4-compatible: the IPv6 meanings win.
            ("::", Some(Class::Unspecified)),
            ("::1", Some(Class::Loopback)),
        ] {
            assert_eq!(class(addr), want, "{addr}");
        }
        assert_eq!(
            normalise(ip("::ffff:1.2.3.4")),
            ip("1.2.3.4"),
            "mapped forms normalise"
        );
        assert_eq!(normalise(ip("2001:4860::1")), ip("2001:4860::1"));
    }

    #[test]
    fn policy_refuses_always_refused_ranges_but_not_private_by_default() {
        let p = AddressPolicy::default();
        assert!(p.check(ip("169.254.169.254")).is_err());
        assert!(p.check(ip("::ffff:169.254.169.254")).is_err());
        assert!(p.check(ip("fe80::1")).is_err());
        assert!(p.check(ip("127.0.0.1")).is_ok());
        assert!(p.check(ip("10.0.0.1")).is_ok());
        assert!(p.check(ip("8.8.8.8")).is_ok());
    }

    #[test]
    fn deny_private_refuses_loopback_and_private_ranges() {
        let p = AddressPolicy::new(true, &[], &[]);
        for a in [
            "127.0.0.1",
            "::1",
            "10.0.0.1",
            "100.64.0.1",
            "fd00::1",
            "::ffff:192.168.0.1",
        ] {
            assert!(p.check(ip(a)).is_err(), "{a}");
        }
        assert!(p.check(ip("8.8.8.8")).is_ok());
        assert!(p.check(ip("2606:4700:4700::1111")).is_ok());
    }

    #[test]
    fn allow_list_overrides_any_class_including_mapped_forms() {
        let ecs: AddressRange = "169.254.170.2/32".parse().unwrap_or_else(|e| panic!("{e}"));
        let lo: AddressRange = "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}"));
        let p = AddressPolicy::new(true, &[ecs], &[lo]);
        assert!(p.check(ip("169.254.170.2")).is_ok());
        assert!(p.check(ip("::ffff:169.254.170.2")).is_ok());
        assert!(p.check(ip("127.0.0.1")).is_ok());
        assert!(p.check(ip("127.0.0.2")).is_err());
        assert!(p.check(ip("169.254.169.254")).is_err());
    }

    #[test]
    fn refusals_explain_themselves() {
        let p = AddressPolicy::new(true, &[], &[]);
        let r = p.check(ip("169.254.169.254")).expect_err("metadata");
        assert_eq!(
            r.to_string(),
            "refused: 169.254.169.254 is a cloud metadata address; allow it with \
             server.allow_destination_addresses or the destination's allow_addresses"
        );
        let mut r = p.check(ip("127.0.0.1")).expect_err("loopback");
        r.host = Some("localhost".into());
        let msg = r.to_string();
        assert!(
            msg.starts_with("refused: localhost resolves to 127.0.0.1, which is a loopback address and server.deny_private_destinations is on"),
            "{msg}"
        );
    }

    #[test]
    fn host_check_reads_ip_literals_only() {
        let p = AddressPolicy::default();
        assert!(p.check_host("169.254.169.254").is_err());
        assert!(p.check_host("[::ffff:169.254.169.254]").is_err());
        assert!(p.check_host("[fd00:ec2::254]").is_err());
        assert!(p.check_host("metadata.google.internal").is_ok());
        assert!(p.check_host("example.com").is_ok());
    }

    async fn connect(policy: AddressPolicy, url: &str) -> Result<SocketAddr, BoxError> {
        let mut c = GuardedConnector::new(policy, |_| {});
        std::future::poll_fn(|cx| c.poll_ready(cx)).await?;
        let uri: http::Uri = url.parse()?;
        let io = c.call(uri).await?;
        Ok(io.inner().peer_addr()?)
    }

    async fn listener() -> (tokio::net::TcpListener, u16) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
        (l, port)
    }

    #[tokio::test]
    async fn ip_literal_connects_are_checked_on_the_peer_address() {
        // hyper-util never asks the resolver about an IP literal: only the
        // peer check stands between it and the socket.
        let (_l, port) = listener().await;
        let url = format!("http://127.0.0.1:{port}/");
        let err = connect(AddressPolicy::new(true, &[], &[]), &url)
            .await
            .expect_err("loopback with deny_private");
        let r = find_refusal(&*err).unwrap_or_else(|| panic!("not a refusal: {err}"));
        assert_eq!(r.addr, ip("127.0.0.1"));
        assert_eq!(r.host, None);
        let peer = connect(AddressPolicy::default(), &url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(peer.port(), port);
    }

    #[tokio::test]
    async fn names_are_checked_on_what_they_resolve_to() {
        let (_l, port) = listener().await;
        let url = format!("http://localhost:{port}/");
        let err = connect(AddressPolicy::new(true, &[], &[]), &url)
            .await
            .expect_err("localhost with deny_private");
        let r = find_refusal(&*err).unwrap_or_else(|| panic!("not a refusal: {err}"));
        assert_eq!(r.host.as_deref(), Some("localhost"));
        assert_eq!(r.class, Class::Loopback);
        // Allowing only 127.0.0.1 filters out ::1 (if localhost has it)
        // and the connection goes to the allowed address.
        let only_v4: AddressRange = "127.0.0.1/32".parse().unwrap_or_else(|e| panic!("{e}"));
        let peer = connect(AddressPolicy::new(true, &[], &[only_v4]), &url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(peer.ip(), ip("127.0.0.1"));
    }

    #[test]
    fn ranges_parse_cidr_or_single_addresses() {
        let r: AddressRange = "10.0.0.1/8".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.0.to_string(), "10.0.0.0/8");
        let r: AddressRange = "::1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.0.to_string(), "::1/128");
        let e = "10.0.0.0/33"
            .parse::<AddressRange>()
            .expect_err("bad prefix");
        assert!(e.contains("10.0.0.0/33"), "{e}");
        assert!("localhost".parse::<AddressRange>().is_err());
    }
}
