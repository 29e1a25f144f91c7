//! Name policy: which subjects and SubjectAltNames an identity may request.
//!
//! Requested names are parsed first ([`crate::name_syntax`]: a name RFC 5280 forbids is refused
//! before any policy sees it), then compared with the policy's patterns by kind and label by
//! label, never as raw strings: `*.allowed.example` cannot be satisfied by
//! `evil.example\0.allowed.example`, `evilallowed.example` or `.allowed.example`.
//!
//! Pattern forms (ASCII case-insensitive), documented in docs/configuration.md:
//! - `*` alone: every name of every kind.
//! - a domain pattern, e.g. `*.example.com`, `dev-*-x.example.com`, `**.example.com`: matched
//!   label by label from the right against dNSNames and domain-name commonNames. A label `*`
//!   matches exactly one whole label (a requested wildcard label only under it); `*` inside a
//!   label matches any run of characters within that label; a leftmost `**` matches one or
//!   more labels.
//! - an IP pattern: an address (`10.0.0.7`, `2001:db8::1`), IPv4 with `*` octets
//!   (`10.0.0.*`), or a CIDR prefix (`10.0.0.0/8`, `2001:db8::/32`): iPAddress SANs and
//!   commonNames that are IP addresses.
//! - an email pattern `local@domain`: the local part a `*` glob, the domain a domain pattern.
//! - a URI pattern `scheme://host[:port][rest]`: scheme equal, host a domain or IP pattern,
//!   port equal (`:*` any; none: the URI has none), rest a `*` glob of path, query and fragment
//!   (none: empty or `/`). Any other pattern with a `:` (`urn:uuid:*`) is a `*` glob of the
//!   whole URI.
//! - anything else: a commonName that is neither a domain name nor an IP address, compared
//!   whole.
use std::net::IpAddr;

use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

use crate::CaError;
use crate::name_syntax::{
    self, COMMON_NAME, DnsName, Mailbox, NameRules, SanName, Uri, UriHost, attribute_text,
    host_like, shown,
};

/// One requested name, parsed, with its original form for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requested {
    shown: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dns(DnsName),
    Ip(IpAddr),
    Email(Mailbox),
    Uri(Uri, String),
    /// A commonName that is neither a domain name nor an IP address (e.g. `Acme Sensor`).
    Text(String),
}

/// The names a request asks for: every commonName of the subject and every SAN entry, each
/// checked against RFC 5280 ([`crate::name_syntax`]) while being read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestedNames {
    names: Vec<Requested>,
}

impl RequestedNames {
    /// The names a (not yet verified) request asks for: its CN values and requested SANs.
    pub fn from_csr(req: &x509_cert::request::CertReq) -> Result<Self, CaError> {
        let san = crate::csr::requested_san(req)?;
        Self::from_request(&req.info.subject, san.as_ref())
    }

    /// Reads and checks the names; `Err(CaError::InvalidName)` for a name RFC 5280 forbids
    /// (the profile's wildcard switch is applied at issuance).
    pub fn from_request(subject: &Name, san: Option<&SubjectAltName>) -> Result<Self, CaError> {
        name_syntax::check_names(subject, san, NameRules::SYNTAX)?;
        let mut names = Vec::new();
        for atv in subject.iter().filter(|a| a.oid == COMMON_NAME) {
            let text = attribute_text(&atv.value)
                .ok_or_else(|| CaError::MalformedRequest("commonName is not a string".into()))?;
            names.push(Requested {
                shown: text.to_owned(),
                kind: common_name_kind(text),
            });
        }
        if let Some(san) = san {
            for (gn, parsed) in san.0.iter().zip(name_syntax::parse_san(san)?) {
                names.push(Requested {
                    shown: crate::csr::general_name_string(gn).unwrap_or_default(),
                    kind: san_kind(parsed, gn),
                });
            }
        }
        Ok(Self { names })
    }

    /// Every name, as requested (for messages and logs).
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| n.shown.as_str())
    }
}

fn common_name_kind(text: &str) -> Kind {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Kind::Ip(ip);
    }
    match host_like(text) {
        Some(d) => Kind::Dns(d),
        None => Kind::Text(text.to_ascii_lowercase()),
    }
}

fn san_kind(parsed: SanName, gn: &GeneralName) -> Kind {
    match parsed {
        SanName::Dns(d) => Kind::Dns(d),
        SanName::Ip(ip) => Kind::Ip(ip),
        SanName::Email(m) => Kind::Email(m),
        SanName::Uri(u) => {
            let full = match gn {
                GeneralName::UniformResourceIdentifier(s) => s.as_str().to_ascii_lowercase(),
                _ => String::new(),
            };
            Kind::Uri(u, full)
        }
    }
}

/// A domain pattern: labels leftmost first, after an optional leading `**`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DnsPattern {
    labels: Vec<String>,
    any_depth: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum IpPattern {
    Exact(IpAddr),
    V4Octets([Option<u8>; 4]),
    Prefix(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Dns(DnsPattern),
    Ip(IpPattern),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    None,
    Any,
    Is(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Dns(DnsPattern),
    Ip(IpPattern),
    Email {
        local: String,
        domain: DnsPattern,
    },
    Uri {
        scheme: String,
        host: HostPattern,
        port: PortPattern,
        rest: String,
    },
    UriGlob(String),
    Text(String),
}

impl Pattern {
    /// Parses a (lower-cased) pattern; `Err` says why a pattern with a `*` is unusable.
    fn parse(p: &str) -> Result<Self, String> {
        if p == "*" {
            return Ok(Self::Any);
        }
        if let Some(ip) = ip_pattern(p) {
            return Ok(Self::Ip(ip));
        }
        if let Some((scheme, rest)) = p.split_once("://") {
            return uri_pattern(scheme, rest);
        }
        if let Some((local, domain)) = p.rsplit_once('@') {
            return Ok(Self::Email {
                local: local.to_owned(),
                domain: dns_pattern(domain)
                    .ok_or_else(|| format!("{p:?}: the domain is not a domain pattern"))?,
            });
        }
        if p.contains(':') {
            return Ok(Self::UriGlob(p.to_owned()));
        }
        if let Some(d) = dns_pattern(p) {
            return Ok(Self::Dns(d));
        }
        if p.contains('*') {
            return Err(format!(
                "{p:?}: a `*` may only stand for labels of a domain name, octets of an IPv4 address, or parts of an email address or URI"
            ));
        }
        Ok(Self::Text(p.to_owned()))
    }

    fn matches(&self, n: &Kind) -> bool {
        match (self, n) {
            (Self::Any, _) => true,
            (Self::Dns(p), Kind::Dns(d)) => dns_matches(p, d),
            (Self::Ip(p), Kind::Ip(ip)) => ip_matches(p, *ip),
            (Self::Email { local, domain }, Kind::Email(m)) => {
                glob(local.as_bytes(), m.local.to_ascii_lowercase().as_bytes())
                    && dns_matches(domain, &m.domain)
            }
            (
                Self::Uri {
                    scheme,
                    host,
                    port,
                    rest,
                },
                Kind::Uri(u, _),
            ) => {
                let host_ok = match (host, &u.host) {
                    (HostPattern::Dns(p), Some(UriHost::Dns(d))) => dns_matches(p, d),
                    (HostPattern::Ip(p), Some(UriHost::Ip(ip))) => ip_matches(p, *ip),
                    _ => false,
                };
                let port_ok = match port {
                    PortPattern::None => u.port.is_none(),
                    PortPattern::Any => true,
                    PortPattern::Is(n) => u.port == Some(*n),
                };
                let r = u.rest.to_ascii_lowercase();
                let rest_ok = if rest.is_empty() {
                    r.is_empty() || r == "/"
                } else {
                    glob(rest.as_bytes(), r.as_bytes())
                };
                *scheme == u.scheme && host_ok && port_ok && rest_ok
            }
            (Self::UriGlob(p), Kind::Uri(_, full)) => glob(p.as_bytes(), full.as_bytes()),
            (Self::Text(p), Kind::Text(t)) => p == t,
            _ => false,
        }
    }
}

/// `labels` of LDH characters and `*`, an optional leftmost `**`.
fn dns_pattern(p: &str) -> Option<DnsPattern> {
    let (any_depth, rest) = match p.strip_prefix("**.") {
        Some(r) => (true, r),
        None => (false, p),
    };
    let labels: Vec<String> = rest.split('.').map(str::to_owned).collect();
    let label_ok = |l: &String| {
        !l.is_empty()
            && !l.contains("**")
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*')
    };
    (!rest.is_empty() && labels.iter().all(label_ok)).then_some(DnsPattern { labels, any_depth })
}

fn ip_pattern(p: &str) -> Option<IpPattern> {
    if let Ok(ip) = p.parse::<IpAddr>() {
        return Some(IpPattern::Exact(ip));
    }
    if let Some((net, len)) = p.split_once('/') {
        let net: IpAddr = net.parse().ok()?;
        let len: u8 = len.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        return (len <= max).then_some(IpPattern::Prefix(net, len));
    }
    let parts: Vec<&str> = p.split('.').collect();
    if parts.len() != 4 || !p.contains('*') {
        return None;
    }
    let mut octets = [None; 4];
    for (o, part) in octets.iter_mut().zip(parts) {
        *o = match part {
            "*" => None,
            n if n.bytes().all(|b| b.is_ascii_digit()) => Some(n.parse().ok()?),
            _ => return None,
        };
    }
    Some(IpPattern::V4Octets(octets))
}

fn uri_pattern(scheme: &str, rest: &str) -> Result<Pattern, String> {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, t)) => (h, t.strip_prefix(':')),
            None => (authority, None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let bad = || format!("{scheme}://{rest:?}: not a URI pattern (scheme://host[:port][path])");
    let host = match ip_pattern(host) {
        Some(ip) => HostPattern::Ip(ip),
        None => HostPattern::Dns(dns_pattern(host).ok_or_else(bad)?),
    };
    let port = match port {
        None => PortPattern::None,
        Some("*") => PortPattern::Any,
        Some(n) => PortPattern::Is(n.parse().map_err(|_| bad())?),
    };
    Ok(Pattern::Uri {
        scheme: scheme.to_owned(),
        host,
        port,
        rest: tail.to_owned(),
    })
}

/// Label by label from the right; a requested wildcard label only under a whole-label `*` or
/// the leading `**`.
fn dns_matches(p: &DnsPattern, name: &DnsName) -> bool {
    let mut pl = p.labels.iter().rev();
    let mut nl = name.labels().rev();
    loop {
        match (pl.next(), nl.next()) {
            (Some(p), Some(n)) => {
                let ok = if n == "*" {
                    p == "*"
                } else {
                    glob(p.as_bytes(), n.as_bytes())
                };
                if !ok {
                    return false;
                }
            }
            (None, None) => return !p.any_depth,
            (None, Some(_)) => return p.any_depth,
            (Some(_), None) => return false,
        }
    }
}

fn ip_matches(p: &IpPattern, ip: IpAddr) -> bool {
    match (p, ip) {
        (IpPattern::Exact(a), b) => *a == b,
        (IpPattern::V4Octets(o), IpAddr::V4(v4)) => o
            .iter()
            .zip(v4.octets())
            .all(|(p, b)| p.is_none_or(|p| p == b)),
        (IpPattern::Prefix(IpAddr::V4(net), len), IpAddr::V4(v4)) => {
            prefix_eq(&net.octets(), &v4.octets(), *len)
        }
        (IpPattern::Prefix(IpAddr::V6(net), len), IpAddr::V6(v6)) => {
            prefix_eq(&net.octets(), &v6.octets(), *len)
        }
        _ => false,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], len: u8) -> bool {
    let (whole, bits) = (usize::from(len / 8), len % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if bits == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - bits);
    a[whole] & mask == b[whole] & mask
}

/// A list of name patterns (see the module documentation). Every commonName and every SAN of a
/// request must match at least one pattern; `*` alone allows everything, an empty policy
/// allows nothing. A pattern that cannot be used (see [`NamePolicy::check_pattern`]) matches
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamePolicy {
    patterns: Vec<String>,
    parsed: Vec<Pattern>,
}

impl NamePolicy {
    pub fn new(patterns: Vec<String>) -> Self {
        let patterns: Vec<String> = patterns
            .into_iter()
            .map(|p| p.to_ascii_lowercase())
            .collect();
        let parsed = patterns
            .iter()
            .filter_map(|p| Pattern::parse(p).ok())
            .collect();
        Self { patterns, parsed }
    }

    pub fn any() -> Self {
        Self::new(vec!["*".into()])
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `pattern` is usable; the reason when not (for configuration and `user add`).
    pub fn check_pattern(pattern: &str) -> Result<(), String> {
        Pattern::parse(&pattern.to_ascii_lowercase()).map(|_| ())
    }

    pub fn check(&self, names: &RequestedNames) -> Result<(), CaError> {
        for n in &names.names {
            if !self.parsed.iter().any(|p| p.matches(&n.kind)) {
                return Err(CaError::NameNotAllowed(format!(
                    "not authorized to request the name {}",
                    shown(&n.shown)
                )));
            }
        }
        Ok(())
    }

    /// Whether one SubjectAltName entry (of a client certificate) matches a pattern.
    pub(crate) fn allows_general_name(&self, gn: &GeneralName) -> bool {
        let Ok(parsed) = name_syntax::parse_general_name(gn) else {
            return false;
        };
        let kind = san_kind(parsed, gn);
        self.parsed.iter().any(|p| p.matches(&kind))
    }
}

/// Iterative glob with `*` only; linear in practice, no recursion (hostile input is fine).
pub(crate) fn glob(p: &[u8], s: &[u8]) -> bool {
    glob_with(p, s, |_| false)
}

/// [`glob`] whose stars never absorb a byte for which `barrier` holds (e.g. the `,` between
/// the attributes of a DN, see [`crate::authz::any_dn_glob`]).
pub(crate) fn glob_with(p: &[u8], s: &[u8], barrier: impl Fn(u8) -> bool) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            pi += 1;
            mark = si;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some(st) = star {
            if barrier(s[mark]) {
                return false;
            }
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::str::FromStr;

    use der::asn1::{Ia5String, OctetString};

    use super::*;

    #[test]
    fn globbing() {
        assert!(glob(b"*", b"anything"));
        assert!(glob(b"*.example.com", b"a.example.com"));
        assert!(!glob(b"*.example.com", b"example.com"));
        assert!(glob(b"dev-*-x", b"dev-12-x"));
        assert!(!glob(b"dev-*-x", b"dev-12-y"));
        assert!(glob(b"", b""));
        assert!(!glob(b"", b"a"));
    }

    fn req(cn: Option<&str>, sans: Vec<GeneralName>) -> RequestedNames {
        let subject = match cn {
            Some(cn) => Name::from_str(&format!("CN={cn}")).unwrap(),
            None => Name::default(),
        };
        let san = (!sans.is_empty()).then_some(SubjectAltName(sans));
        RequestedNames::from_request(&subject, san.as_ref()).unwrap()
    }

    fn dns(s: &str) -> GeneralName {
        GeneralName::DnsName(Ia5String::new(s).unwrap())
    }

    fn allows(patterns: &[&str], n: &RequestedNames) -> bool {
        NamePolicy::new(patterns.iter().map(|s| s.to_string()).collect())
            .check(n)
            .is_ok()
    }

    #[test]
    fn domain_patterns_match_label_by_label() {
        let p = ["*.Allowed.example"];
        assert!(allows(&p, &req(Some("a.allowed.example"), vec![])));
        assert!(allows(&p, &req(None, vec![dns("A.ALLOWED.EXAMPLE")])));
        for n in [
            "allowed.example",
            "evilallowed.example",
            "a.b.allowed.example",
            "evil.example",
        ] {
            assert!(!allows(&p, &req(None, vec![dns(n)])), "{n}");
        }
        assert!(!allows(&p, &req(Some("allowedexample"), vec![])));
        // A requested wildcard only under a whole-label `*` (or `**`).
        let w = req(None, vec![dns("*.allowed.example")]);
        assert!(allows(&p, &w));
        assert!(allows(&["**.allowed.example"], &w));
        assert!(!allows(&["a*.allowed.example"], &w));
        assert!(!allows(&["a.allowed.example"], &w));
        // Any depth with `**`, but not the bare suffix.
        let deep = req(None, vec![dns("a.b.allowed.example")]);
        assert!(allows(&["**.allowed.example"], &deep));
        assert!(!allows(
            &["**.allowed.example"],
            &req(None, vec![dns("allowed.example")])
        ));
        // Intra-label globs stay inside their label.
        assert!(allows(
            &["dev-*-x.example"],
            &req(Some("dev-12-x.example"), vec![])
        ));
        assert!(!allows(
            &["dev-*-x.example"],
            &req(Some("dev-1.2-x.example"), vec![])
        ));
        assert!(allows(&["*"], &deep));
        assert!(!allows(&[], &deep));
        assert!(allows(&[], &RequestedNames::default()));
    }

    #[test]
    fn ip_email_uri_and_text_patterns() {
        let ip = |b: &[u8]| GeneralName::IpAddress(OctetString::new(b).unwrap());
        let v4 = req(None, vec![ip(&[10, 0, 0, 7])]);
        assert!(allows(&["10.0.0.*"], &v4));
        assert!(allows(&["10.0.0.0/8"], &v4));
        assert!(allows(&["10.0.0.7"], &v4));
        assert!(!allows(&["10.0.1.*"], &v4));
        assert!(!allows(&["10.0.0.0/30"], &v4));
        assert!(!allows(&["*.0.0.7"], &req(None, vec![ip(&[10, 0, 0, 8])])));
        let mut v6 = [0u8; 16];
        v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        assert!(allows(&["2001:db8::/32"], &req(None, vec![ip(&v6)])));
        assert!(!allows(&["10.0.0.*"], &req(None, vec![ip(&v6)])));
        // A CN that is an IP address is matched as one; a domain pattern does not match it.
        assert!(allows(&["10.0.0.*"], &req(Some("10.0.0.9"), vec![])));
        assert!(!allows(&["*.0.9"], &req(Some("10.0.0.9"), vec![])));

        let email = |s: &str| GeneralName::Rfc822Name(Ia5String::new(s).unwrap());
        let e = req(None, vec![email("Alice@Mail.Example")]);
        assert!(allows(&["*@mail.example"], &e));
        assert!(allows(&["alice@*.example"], &e));
        assert!(!allows(&["*@example"], &e));
        assert!(
            !allows(&["*.example"], &e),
            "a domain pattern is not an email pattern"
        );

        let uri = |s: &str| GeneralName::UniformResourceIdentifier(Ia5String::new(s).unwrap());
        let u = req(None, vec![uri("spiffe://trust.example/ns/a/sa/b")]);
        assert!(allows(&["spiffe://trust.example/*"], &u));
        assert!(!allows(&["spiffe://trust.example"], &u));
        assert!(!allows(&["spiffe://*.trust.example/*"], &u));
        assert!(!allows(&["https://trust.example/*"], &u));
        assert!(allows(
            &["https://*.example"],
            &req(None, vec![uri("https://a.example/")])
        ));
        assert!(!allows(
            &["https://*.example"],
            &req(None, vec![uri("https://a.example:8443/")])
        ));
        assert!(allows(
            &["https://*.example:*/*"],
            &req(None, vec![uri("https://a.example:8443/x")])
        ));
        assert!(!allows(
            &["https://*.example/*"],
            &req(None, vec![uri("https://evil.test/.a.example/")])
        ));
        assert!(allows(
            &["urn:uuid:*"],
            &req(None, vec![uri("urn:uuid:1234")])
        ));

        let text = req(Some("Acme Sensor"), vec![]);
        assert!(allows(&["acme sensor"], &text));
        assert!(!allows(&["acme"], &text));
        assert!(allows(&["*"], &text));
        // A single-label commonName is matched as a host name.
        assert!(allows(&["dev2"], &req(Some("dev2"), vec![])));
        assert!(allows(&["dev*"], &req(Some("Dev2"), vec![])));
    }

    #[test]
    fn requested_names_are_checked_while_read() {
        let subject = Name::from_str("CN=a.example").unwrap();
        for bad in [
            "evil.example\0.allowed.example",
            ".allowed.example",
            "a..b",
            "x y.example",
        ] {
            let san = SubjectAltName(vec![dns(bad)]);
            assert!(
                matches!(
                    RequestedNames::from_request(&subject, Some(&san)),
                    Err(CaError::InvalidName(_))
                ),
                "{bad:?}"
            );
        }
        let names = req(Some("a.example"), vec![dns("b.example")]);
        assert_eq!(names.iter().collect::<Vec<_>>(), ["a.example", "b.example"]);
        let e = NamePolicy::new(vec!["c.example".into()])
            .check(&names)
            .unwrap_err();
        assert!(e.to_string().contains("\"a.example\""), "{e}");
    }

    #[test]
    fn unusable_patterns_are_reported() {
        for ok in [
            "*",
            "*.a.example",
            "**.a.example",
            "dev-*-x",
            "10.0.0.*",
            "10.0.0.0/8",
            "*@a.example",
            "https://*.a.example/*",
            "urn:uuid:*",
            "Acme Sensor",
        ] {
            assert!(NamePolicy::check_pattern(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a.**.example",
            "*.a example",
            "x*y z",
            "https://a b/",
            "a@b c",
        ] {
            assert!(NamePolicy::check_pattern(bad).is_err(), "{bad}");
        }
    }
}
