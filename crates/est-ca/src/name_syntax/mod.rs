//! What RFC 5280 lets a CA put into a certificate's names, checked before anything is issued
//! (SEC-11: "validate every requested name, name form ... against policy").
//!
//! Parsing yields typed names ([`DnsName`], [`Mailbox`], [`Uri`]) that the name policy
//! compares label by label (see [`crate::NamePolicy`]); a name that does not parse is refused
//! with a reason that names the rule, and never reaches the policy or the signer.
//!
//! The rules:
//! - dNSName: preferred name syntax (RFC 5280 §4.2.1.6, RFC 1034 §3.5 as relaxed by RFC 1123
//!   §2.1): ASCII letters, digits and hyphens, labels of 1..=63 octets not starting or ending
//!   with a hyphen, at most 253 octets, no empty label (so no leading dot, `..` or trailing
//!   dot), fully qualified (two labels or more) with a top-level label of two characters or
//!   more ending in a letter (RFC 1123 §2.1; an address belongs in an iPAddress). A
//!   wildcard `*` only as the whole leftmost label with two labels after it, and only where
//!   the profile allows it (`allow_wildcard`).
//! - rfc822Name: a Mailbox `local@domain` (RFC 5280 §4.2.1.6, RFC 5321 §4.1.2): a dot-atom
//!   local part of at most 64 octets, a domain per the dNSName rules, at most 254 octets.
//! - uniformResourceIdentifier: an absolute URI (RFC 3986 §4.3): a scheme, `:` and a
//!   non-empty rest, only characters RFC 3986 allows unencoded (no space, control or non-ASCII
//!   character), `%` followed by two hex digits; with an authority, a host that is a domain
//!   name or an IP address (RFC 5280 §4.2.1.6), no userinfo, a numeric port.
//! - iPAddress: exactly 4 (IPv4) or 16 (IPv6) octets (RFC 5280 §4.2.1.6).
//! - other GeneralName forms (otherName, directoryName, ediPartyName, registeredID): refused.
//! - the SubjectAltName extension: at least one name, at most [`MAX_SAN_ENTRIES`].
//! - the subject: the upper bounds of RFC 5280 Appendix A (commonName 64, organizationName 64,
//!   ... ), PrintableString or UTF8String for DirectoryString attributes (§4.1.2.4), no empty
//!   value and no control character; an empty subject only together with a SubjectAltName,
//!   which is then marked critical (§4.1.2.6, §4.2.1.6; see `profile.rs`).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

use crate::CaError;

mod subject;

use subject::check_subject;
pub(crate) use subject::{COMMON_NAME, attribute_text};

/// At most this many entries in one SubjectAltName: a bound that keeps hostile requests cheap.
pub const MAX_SAN_ENTRIES: usize = 1024;
/// At most this many attributes in a subject.
pub const MAX_SUBJECT_ATTRIBUTES: usize = 64;
/// At most this many octets in a URI name (RFC 3986 sets no bound; this keeps logs sane).
const MAX_URI_LEN: usize = 4096;

/// Per-profile switches of the name rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NameRules {
    /// A wildcard dNSName (`*.example.com`) may be issued.
    pub allow_wildcard: bool,
    /// The requested SubjectAltName ends up in the certificate (the profile copies it).
    pub san_copied: bool,
}

impl NameRules {
    /// The checks that do not depend on a profile (before the name policy sees a request):
    /// a wildcard is syntax here, the profile decides on it at issuance.
    pub(crate) const SYNTAX: Self = Self {
        allow_wildcard: true,
        san_copied: true,
    };
}

/// Checks the subject and SubjectAltName a certificate would carry against RFC 5280.
pub(crate) fn check_names(
    subject: &Name,
    san: Option<&SubjectAltName>,
    rules: NameRules,
) -> Result<(), CaError> {
    check_subject(subject, rules)?;
    if let Some(san) = san {
        check_san(san, rules)?;
    }
    if subject.is_empty() {
        if san.is_none() {
            return Err(invalid(
                "an empty subject is only allowed together with a SubjectAltName (RFC 5280 §4.1.2.6)",
            ));
        }
        if !rules.san_copied {
            return Err(invalid(
                "an empty subject needs a SubjectAltName, and this CA's profile does not copy the requested one (RFC 5280 §4.1.2.6)",
            ));
        }
    }
    Ok(())
}

fn invalid(m: impl Into<String>) -> CaError {
    CaError::InvalidName(m.into())
}

/// A value quoted for a message: escaped (NUL, newline and other controls visible) and cut
/// after 64 characters, so a 10,000-character name does not flood the response or the log.
pub(crate) fn shown(s: &str) -> String {
    const MAX: usize = 64;
    let mut cut: String = s.chars().take(MAX).collect();
    let more = s.chars().count() > MAX;
    if more {
        cut.push('…');
    }
    format!("{cut:?}")
}

// --- SubjectAltName ---------------------------------------------------------------------

/// One name of a SubjectAltName, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SanName {
    Dns(DnsName),
    Email(Mailbox),
    Uri(Uri),
    Ip(IpAddr),
}

fn check_san(san: &SubjectAltName, rules: NameRules) -> Result<(), CaError> {
    for gn in parse_san(san)? {
        if let SanName::Dns(d) = &gn
            && d.wildcard
            && !rules.allow_wildcard
        {
            return Err(invalid(format!(
                "dNSName {}: a wildcard name is not allowed by this CA's profile",
                shown(d.as_str())
            )));
        }
    }
    Ok(())
}

/// Every name of a SubjectAltName, each checked (the wildcard left to the profile).
pub(crate) fn parse_san(san: &SubjectAltName) -> Result<Vec<SanName>, CaError> {
    if san.0.is_empty() {
        return Err(invalid(
            "the SubjectAltName extension is empty (RFC 5280 §4.2.1.6: at least one name)",
        ));
    }
    if san.0.len() > MAX_SAN_ENTRIES {
        return Err(invalid(format!(
            "the SubjectAltName has {} names; at most {MAX_SAN_ENTRIES} are accepted",
            san.0.len()
        )));
    }
    san.0.iter().map(parse_general_name).collect()
}

/// One GeneralName of a SubjectAltName, checked (a wildcard dNSName is syntax here).
pub(crate) fn parse_general_name(gn: &GeneralName) -> Result<SanName, CaError> {
    match gn {
        GeneralName::DnsName(s) => dns_name(s.as_str(), true)
            .map(SanName::Dns)
            .map_err(|r| invalid(format!("dNSName {}: {r}", shown(s.as_str())))),
        GeneralName::Rfc822Name(s) => mailbox(s.as_str())
            .map(SanName::Email)
            .map_err(|r| invalid(format!("rfc822Name {}: {r}", shown(s.as_str())))),
        GeneralName::UniformResourceIdentifier(s) => uri(s.as_str())
            .map(SanName::Uri)
            .map_err(|r| invalid(format!("URI {}: {r}", shown(s.as_str())))),
        GeneralName::IpAddress(o) => ip_address(o.as_bytes()).map(SanName::Ip).ok_or_else(|| {
            invalid(format!(
                "iPAddress of {} octets: it must have 4 (IPv4) or 16 (IPv6) (RFC 5280 §4.2.1.6)",
                o.as_bytes().len()
            ))
        }),
        GeneralName::OtherName(_)
        | GeneralName::DirectoryName(_)
        | GeneralName::EdiPartyName(_)
        | GeneralName::RegisteredId(_) => Err(invalid(
            "unsupported SubjectAltName type (dNSName, iPAddress, rfc822Name and URI are allowed)",
        )),
    }
}

/// An iPAddress value of a certificate: 4 or 16 octets (8 and 32 are name-constraint forms).
pub(crate) fn ip_address(b: &[u8]) -> Option<IpAddr> {
    if let Ok(a) = <[u8; 4]>::try_from(b) {
        Some(IpAddr::V4(Ipv4Addr::from(a)))
    } else if let Ok(a) = <[u8; 16]>::try_from(b) {
        Some(IpAddr::V6(Ipv6Addr::from(a)))
    } else {
        None
    }
}

// --- dNSName ----------------------------------------------------------------------------

/// A domain name in preferred name syntax, lower-cased; `wildcard` when its leftmost label is
/// `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DnsName {
    name: String,
    pub(crate) wildcard: bool,
}

impl DnsName {
    pub(crate) fn as_str(&self) -> &str {
        &self.name
    }

    /// The labels, leftmost first (a wildcard is the label `*`).
    pub(crate) fn labels(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.name.split('.')
    }
}

/// Parses a dNSName; `wildcard` admits `*` as the whole leftmost label.
pub(crate) fn dns_name(s: &str, wildcard: bool) -> Result<DnsName, String> {
    dns_name_with(s, wildcard, true)
}

/// A commonName that is written like a host name (`dev2`, `a.example`, `*.a.example`): LDH
/// labels, not necessarily fully qualified. For the name policy only: a commonName is text.
pub(crate) fn host_like(s: &str) -> Option<DnsName> {
    dns_name_with(s, true, false).ok()
}

fn dns_name_with(s: &str, wildcard: bool, fqdn: bool) -> Result<DnsName, String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    if !s.is_ascii() {
        return Err(
            "is not ASCII (an internationalized name must be given as A-labels, xn--..., RFC 5280 §7.2)"
                .into(),
        );
    }
    let mut is_wildcard = false;
    let mut count = 0usize;
    for (i, label) in s.split('.').enumerate() {
        count += 1;
        if label.is_empty() {
            return Err(
                "has an empty label (a leading, trailing or doubled dot; RFC 1034 §3.5)".into(),
            );
        }
        if label == "*" {
            if i == 0 && wildcard {
                is_wildcard = true;
                continue;
            }
            return Err(if wildcard {
                "has a wildcard that is not the whole leftmost label".into()
            } else {
                "has a wildcard where none is allowed".into()
            });
        }
        dns_label(label)?;
    }
    if s.len() > 253 {
        return Err(format!(
            "is {} octets long; at most 253 are allowed (RFC 1034 §3.1)",
            s.len()
        ));
    }
    if is_wildcard && count < 3 {
        return Err("has a wildcard with fewer than two labels after it".into());
    }
    if !fqdn {
        return Ok(DnsName {
            name: s.to_ascii_lowercase(),
            wildcard: is_wildcard,
        });
    }
    if count < 2 {
        return Err(
            "is not fully qualified (a single label; a certificate names hosts by their domain names)"
                .into(),
        );
    }
    let tld = s.rsplit('.').next().unwrap_or_default();
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            "has an all-numeric rightmost label (an IP address belongs in an iPAddress name)"
                .into(),
        );
    }
    // RFC 1123 §2.1: "the highest-level component label will be alphabetic"; top-level labels
    // (IDN ones included, xn--...) end with a letter and have two characters or more.
    if tld.len() < 2 || !tld.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!(
            "has the top-level label {tld:?}, which is not a top-level domain (RFC 1123 §2.1)"
        ));
    }
    Ok(DnsName {
        name: s.to_ascii_lowercase(),
        wildcard: is_wildcard,
    })
}

/// One LDH label of 1..=63 octets, not starting or ending with a hyphen.
fn dns_label(label: &str) -> Result<(), String> {
    for b in label.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            continue;
        }
        return Err(match b {
            0 => "contains a NUL character".into(),
            b'/' => "contains a slash".into(),
            b' ' => "contains a space".into(),
            b'*' => "has a wildcard that is not the whole leftmost label".into(),
            c if c.is_ascii_control() => format!("contains the control character 0x{c:02x}"),
            c => format!(
                "contains {:?}; a label has only letters, digits and hyphens (RFC 1034 §3.5)",
                char::from(c)
            ),
        });
    }
    if label.len() > 63 {
        return Err(format!(
            "has a label of {} octets; at most 63 are allowed (RFC 1034 §3.1)",
            label.len()
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("has a label that starts or ends with a hyphen (RFC 1034 §3.5)".into());
    }
    Ok(())
}

// --- rfc822Name -------------------------------------------------------------------------

/// An email address `local@domain`; the domain lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mailbox {
    pub(crate) local: String,
    pub(crate) domain: DnsName,
}

/// RFC 5321 §4.1.2 Mailbox with a dot-atom local part (no quoted string, no address
/// literal), as RFC 5280 §4.2.1.6 asks of an rfc822Name.
pub(crate) fn mailbox(s: &str) -> Result<Mailbox, String> {
    if !s.is_ascii() {
        return Err(
            "is not ASCII (internationalized addresses need SmtpUTF8Mailbox, RFC 9598)".into(),
        );
    }
    if let Some(c) = s.bytes().find(u8::is_ascii_control) {
        return Err(format!("contains the control character 0x{c:02x}"));
    }
    if s.len() > 254 {
        return Err(format!(
            "is {} octets long; at most 254 are allowed (RFC 5321 §4.5.3.1)",
            s.len()
        ));
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return Err("has no \"@\": it must be a mailbox, local@domain (RFC 5280 §4.2.1.6)".into());
    };
    if local.is_empty() || local.len() > 64 {
        return Err("has a local part that is empty or longer than 64 octets".into());
    }
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b);
    if local
        .split('.')
        .any(|atom| atom.is_empty() || !atom.bytes().all(atext))
    {
        return Err(
            "has a local part that is not a dot-atom (quoted local parts are not supported)".into(),
        );
    }
    let domain = dns_name(domain, false).map_err(|r| format!("has a domain that {r}"))?;
    Ok(Mailbox {
        local: local.to_owned(),
        domain,
    })
}

// --- uniformResourceIdentifier ----------------------------------------------------------

/// The host of a URI with an authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UriHost {
    Dns(DnsName),
    Ip(IpAddr),
}

/// An absolute URI, split for matching: scheme (lower-cased), the authority's host and port
/// when there is one, and what follows (path, query, fragment; or the whole scheme-specific
/// part of a URI without authority).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Uri {
    pub(crate) scheme: String,
    pub(crate) host: Option<UriHost>,
    pub(crate) port: Option<u16>,
    pub(crate) rest: String,
}

pub(crate) fn uri(s: &str) -> Result<Uri, String> {
    if s.len() > MAX_URI_LEN {
        return Err(format!("is longer than {MAX_URI_LEN} octets"));
    }
    uri_characters(s)?;
    let Some((scheme, rest)) = s.split_once(':') else {
        return Err("has no scheme (RFC 5280 §4.2.1.6: not a relative URI)".into());
    };
    let mut sb = scheme.bytes();
    if !sb.next().is_some_and(|b| b.is_ascii_alphabetic())
        || !sb.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return Err("has no valid scheme (RFC 3986 §3.1)".into());
    }
    if rest.is_empty() {
        return Err("has no scheme-specific part (RFC 5280 §4.2.1.6)".into());
    }
    let scheme = scheme.to_ascii_lowercase();
    let Some(after) = rest.strip_prefix("//") else {
        return Ok(Uri {
            scheme,
            host: None,
            port: None,
            rest: rest.to_owned(),
        });
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, path) = after.split_at(end);
    if authority.contains('@') {
        return Err("has userinfo in its authority, which is not accepted".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((lit, tail)) = v6.split_once(']') else {
            return Err("has an unterminated IP literal".into());
        };
        let ip: Ipv6Addr = lit
            .parse()
            .map_err(|_| "has an IP literal that is not an IPv6 address".to_string())?;
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':').ok_or("has junk after its IP literal")?),
        };
        (UriHost::Ip(IpAddr::V6(ip)), port)
    } else {
        let (h, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if h.is_empty() {
            return Err("has an authority without a host (RFC 5280 §4.2.1.6)".into());
        }
        let host = match h.parse::<Ipv4Addr>() {
            Ok(ip) => UriHost::Ip(IpAddr::V4(ip)),
            Err(_) => UriHost::Dns(dns_name(h, false).map_err(|r| format!("has a host that {r}"))?),
        };
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|_| p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or("has a port that is not a number from 0 to 65535")?,
        ),
    };
    Ok(Uri {
        scheme,
        host: Some(host),
        port,
        rest: path.to_owned(),
    })
}

/// Only characters RFC 3986 §2 allows in a URI, `%` always followed by two hex digits.
fn uri_characters(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let ok = c.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&c);
        if c == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            if !hex {
                return Err("has a \"%\" not followed by two hex digits (RFC 3986 §2.1)".into());
            }
            i += 3;
            continue;
        }
        if !ok {
            return Err(match c {
                b' ' => "contains a space".into(),
                c if c.is_ascii_control() => format!("contains the control character 0x{c:02x}"),
                c if !c.is_ascii() => "is not ASCII (RFC 3986 §2: percent-encode it)".into(),
                c => format!(
                    "contains {:?}, which RFC 3986 §2 does not allow unencoded",
                    char::from(c)
                ),
            });
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::str::FromStr;

    use der::asn1::{Ia5String, OctetString};

    use super::*;

    fn dns(s: &str) -> Result<DnsName, String> {
        dns_name(s, true)
    }

    #[test]
    fn dns_names_in_preferred_syntax() {
        for ok in [
            "a.example",
            "A.Example.COM",
            "a.xn--p1ai",
            "xn--bcher-kva.example",
            "1a.example",
            "a-b.example",
            &format!("{}.example", "a".repeat(63)),
        ] {
            assert!(dns(ok).is_ok(), "{ok}");
        }
        assert_eq!(dns("A.Example").unwrap().as_str(), "a.example");
        let long = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        assert_eq!(long.len(), 253);
        assert!(dns(&long).is_ok());
        for (bad, why) in [
            ("", "empty"),
            ("evil.example\0.allowed.example", "NUL"),
            ("evil.example/.allowed.example", "slash"),
            (".allowed.example", "empty label"),
            ("a..allowed.example", "empty label"),
            ("allowed.example.", "empty label"),
            ("x y.allowed.example", "space"),
            ("x\ny.example", "control"),
            ("under_score.example", "letters, digits"),
            ("-a.example", "hyphen"),
            ("a-.example", "hyphen"),
            ("b\u{fc}cher.example", "ASCII"),
            ("10.0.0.1", "all-numeric"),
            ("localhost", "fully qualified"),
            ("a.example1", "top-level"),
            ("a.b", "top-level"),
            ("a.*.example", "leftmost"),
            ("*a.example.com", "leftmost"),
            ("*.example", "two labels"),
            ("*", "two labels"),
        ] {
            let e = dns(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let e = dns(&format!("{}.example", "a".repeat(64))).unwrap_err();
        assert!(e.contains("63"), "{e}");
        let e = dns(&format!("{long}a")).unwrap_err();
        assert!(e.contains("253"), "{e}");
        // Wildcards: syntax only as the whole leftmost label, and only where asked for.
        let w = dns("*.allowed.example").unwrap();
        assert!(w.wildcard);
        assert!(dns_name("*.allowed.example", false).is_err());
    }

    #[test]
    fn mailboxes() {
        let m = mailbox("Alice.B+tag@Mail.Example").unwrap();
        assert_eq!(
            (m.local.as_str(), m.domain.as_str()),
            ("Alice.B+tag", "mail.example")
        );
        for (bad, why) in [
            ("alice.example", "no \"@\""),
            ("@example.com", "local part"),
            ("a..b@example.com", "dot-atom"),
            ("\"a b\"@example.com", "dot-atom"),
            ("a@b@example.com", "dot-atom"),
            ("a@example..com", "domain"),
            ("a@*.example.com", "domain"),
            ("a\n@example.com", "control"),
            ("a@[10.0.0.1]", "domain"),
        ] {
            let e = mailbox(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn uris() {
        let u = uri("HTTPS://Host.Example:8443/a/b?c=d#e").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(
            u.host,
            Some(UriHost::Dns(dns_name("host.example", false).unwrap()))
        );
        assert_eq!(u.port, Some(8443));
        assert_eq!(u.rest, "/a/b?c=d#e");
        assert!(
            uri("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
                .unwrap()
                .host
                .is_none()
        );
        assert!(uri("spiffe://trust.example/ns/a/sa/b").is_ok());
        assert!(uri("https://[2001:db8::1]:443/").is_ok());
        assert!(uri("https://10.0.0.1/x%20y").is_ok());
        for (bad, why) in [
            ("https://a.example/\nx", "control"),
            ("https://a.example/x y", "space"),
            ("https://a.example/<x>", "unencoded"),
            ("https://a.example/%zz", "hex"),
            ("relative/path", "no scheme"),
            ("1http://a.example/", "valid scheme"),
            ("https:", "scheme-specific"),
            ("https:///path", "without a host"),
            ("https://allowed.example@evil.example/", "userinfo"),
            ("https://a.example:99999/", "port"),
            ("https://a..example/", "host"),
            ("https://[::1/", "unterminated"),
            ("https://b\u{fc}cher.example/", "ASCII"),
        ] {
            let e = uri(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    fn san(names: Vec<GeneralName>) -> SubjectAltName {
        SubjectAltName(names)
    }

    fn dns_gn(s: &str) -> GeneralName {
        GeneralName::DnsName(Ia5String::new(s).unwrap())
    }

    #[test]
    fn subject_alt_names() {
        let rules = NameRules {
            allow_wildcard: false,
            san_copied: true,
        };
        let subject = Name::from_str("CN=a.example").unwrap();
        let ok = san(vec![
            dns_gn("a.example"),
            GeneralName::IpAddress(OctetString::new([10, 0, 0, 1]).unwrap()),
            GeneralName::IpAddress(OctetString::new([0u8; 16]).unwrap()),
            GeneralName::Rfc822Name(Ia5String::new("a@example.com").unwrap()),
            GeneralName::UniformResourceIdentifier(Ia5String::new("https://a.example/").unwrap()),
        ]);
        check_names(&subject, Some(&ok), rules).unwrap();
        let reason = |s: SubjectAltName, r: NameRules| match check_names(&subject, Some(&s), r) {
            Err(CaError::InvalidName(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(reason(san(vec![]), rules).contains("empty"));
        let five = GeneralName::IpAddress(OctetString::new([1, 2, 3, 4, 5]).unwrap());
        assert!(reason(san(vec![five]), rules).contains("5 octets"));
        let eight = GeneralName::IpAddress(OctetString::new([0u8; 8]).unwrap());
        assert!(reason(san(vec![eight]), rules).contains("8 octets"));
        let rid = GeneralName::RegisteredId("1.2.3.4".parse().unwrap());
        assert!(reason(san(vec![rid]), rules).contains("unsupported"));
        let dn = GeneralName::DirectoryName(subject.clone());
        assert!(reason(san(vec![dn]), rules).contains("unsupported"));
        let many = san((0..=MAX_SAN_ENTRIES)
            .map(|i| dns_gn(&format!("h{i}.example")))
            .collect());
        assert!(reason(many, rules).contains("at most 1024"));
        // The wildcard is the profile's decision.
        let w = san(vec![dns_gn("*.allowed.example")]);
        assert!(reason(w.clone(), rules).contains("profile"));
        check_names(
            &subject,
            Some(&w),
            NameRules {
                allow_wildcard: true,
                ..rules
            },
        )
        .unwrap();
    }

    #[test]
    fn empty_subject_needs_a_copied_san() {
        let empty = Name::default();
        let s = san(vec![dns_gn("a.example")]);
        check_names(&empty, Some(&s), NameRules::SYNTAX).unwrap();
        assert!(matches!(
            check_names(&empty, None, NameRules::SYNTAX),
            Err(CaError::InvalidName(m)) if m.contains("4.1.2.6")
        ));
        let no_copy = NameRules {
            san_copied: false,
            ..NameRules::SYNTAX
        };
        assert!(matches!(
            check_names(&empty, Some(&s), no_copy),
            Err(CaError::InvalidName(m)) if m.contains("does not copy")
        ));
    }

    #[test]
    fn shown_values_are_escaped_and_cut() {
        assert_eq!(shown("a\0b"), "\"a\\0b\"");
        assert!(shown(&"x".repeat(10_000)).len() < 80);
    }
}
