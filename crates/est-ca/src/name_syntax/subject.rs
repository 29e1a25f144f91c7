//! The subject of a certificate: the upper bounds of RFC 5280 Appendix A, the string types of
//! §4.1.2.4, no empty value and no control character.
use const_oid::ObjectIdentifier;
use der::{Tag, Tagged};
use x509_cert::name::Name;

use super::{MAX_SUBJECT_ATTRIBUTES, NameRules, host_like, invalid, mailbox, shown};
use crate::CaError;

/// The string type(s) and upper bound (in characters) of an attribute (RFC 5280 App. A).
#[derive(Debug, Clone, Copy)]
enum Syntax {
    /// DirectoryString: PrintableString or UTF8String for new certificates (§4.1.2.4).
    Directory(usize),
    Printable(usize),
    Ia5(usize),
    /// X520countryName: PrintableString SIZE (2), an ISO 3166 alpha-2 code.
    Country,
    /// emailAddress: IA5String SIZE (1..255), a mailbox.
    Email,
}

const fn oid(s: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(s)
}

/// RFC 5280 Appendix A (ub-* values) and RFC 4519 for the attribute types it does not bound.
const ATTRIBUTES: &[(ObjectIdentifier, &str, Syntax)] = &[
    (oid("2.5.4.3"), "commonName", Syntax::Directory(64)),
    (oid("2.5.4.4"), "surname", Syntax::Directory(32768)),
    (oid("2.5.4.5"), "serialNumber", Syntax::Printable(64)),
    (oid("2.5.4.6"), "countryName", Syntax::Country),
    (oid("2.5.4.7"), "localityName", Syntax::Directory(128)),
    (
        oid("2.5.4.8"),
        "stateOrProvinceName",
        Syntax::Directory(128),
    ),
    (oid("2.5.4.9"), "streetAddress", Syntax::Directory(128)),
    (oid("2.5.4.10"), "organizationName", Syntax::Directory(64)),
    (
        oid("2.5.4.11"),
        "organizationalUnitName",
        Syntax::Directory(64),
    ),
    (oid("2.5.4.12"), "title", Syntax::Directory(64)),
    (oid("2.5.4.17"), "postalCode", Syntax::Directory(40)),
    (oid("2.5.4.41"), "name", Syntax::Directory(32768)),
    (oid("2.5.4.42"), "givenName", Syntax::Directory(32768)),
    (oid("2.5.4.43"), "initials", Syntax::Directory(32768)),
    (
        oid("2.5.4.44"),
        "generationQualifier",
        Syntax::Directory(32768),
    ),
    (oid("2.5.4.46"), "dnQualifier", Syntax::Printable(64)),
    (oid("2.5.4.65"), "pseudonym", Syntax::Directory(128)),
    (
        oid("2.5.4.97"),
        "organizationIdentifier",
        Syntax::Directory(64),
    ),
    (
        oid("0.9.2342.19200300.100.1.25"),
        "domainComponent",
        Syntax::Ia5(63),
    ),
    (
        oid("0.9.2342.19200300.100.1.1"),
        "userId",
        Syntax::Directory(256),
    ),
    (oid("1.2.840.113549.1.9.1"), "emailAddress", Syntax::Email),
];

pub(crate) const COMMON_NAME: ObjectIdentifier = oid("2.5.4.3");

/// An attribute type not in the table: any of the usual string types, bounded.
const OTHER_ATTRIBUTE_MAX: usize = 256;

pub(super) fn check_subject(subject: &Name, rules: NameRules) -> Result<(), CaError> {
    let mut count = 0usize;
    for rdn in subject.iter_rdn() {
        if rdn.is_empty() {
            return Err(invalid(
                "the subject has an empty RelativeDistinguishedName",
            ));
        }
        for atv in rdn.iter() {
            count += 1;
            if count > MAX_SUBJECT_ATTRIBUTES {
                return Err(invalid(format!(
                    "the subject has more than {MAX_SUBJECT_ATTRIBUTES} attributes"
                )));
            }
            check_attribute(atv.oid, &atv.value)?;
            // A commonName with a `*` follows the profile as a wildcard dNSName does: without
            // `allow_wildcard`, no `*` at all (`*`, `*.com`, `a*.example`, `*.example.` are
            // not wildcard domain names, but a relying party matching CNs may take them as
            // such); with it, only a well-formed wildcard name.
            if atv.oid == COMMON_NAME
                && let Some(text) = attribute_text(&atv.value)
                && text.contains('*')
                && (!rules.allow_wildcard || !host_like(text).is_some_and(|d| d.wildcard))
            {
                return Err(invalid(if rules.allow_wildcard {
                    "subject commonName: a `*` is allowed only as the whole leftmost label of a wildcard domain name"
                } else {
                    "subject commonName: a wildcard name is not allowed by this CA's profile"
                }));
            }
        }
    }
    Ok(())
}

fn check_attribute(oid: ObjectIdentifier, value: &der::Any) -> Result<(), CaError> {
    let known = ATTRIBUTES.iter().find(|(o, _, _)| *o == oid);
    let (name, syntax) = match known {
        Some((_, n, s)) => ((*n).to_string(), Some(*s)),
        None => (oid.to_string(), None),
    };
    let bad = |m: String| invalid(format!("subject {name}: {m}"));
    let tag = value.tag();
    let text = attribute_text(value).ok_or_else(|| {
        bad(format!(
            "a {tag} value is not accepted (PrintableString or UTF8String, RFC 5280 §4.1.2.4)"
        ))
    })?;
    let (allowed, max): (&[Tag], usize) = match syntax {
        Some(Syntax::Directory(n)) => (&[Tag::PrintableString, Tag::Utf8String], n),
        Some(Syntax::Printable(n)) => (&[Tag::PrintableString], n),
        Some(Syntax::Ia5(n)) => (&[Tag::Ia5String], n),
        Some(Syntax::Country) => (&[Tag::PrintableString], 2),
        Some(Syntax::Email) => (&[Tag::Ia5String], 255),
        None => (
            &[Tag::PrintableString, Tag::Utf8String, Tag::Ia5String],
            OTHER_ATTRIBUTE_MAX,
        ),
    };
    if !allowed.contains(&tag) {
        let want: Vec<String> = allowed.iter().map(|t| t.to_string()).collect();
        return Err(bad(format!(
            "must be a {} (RFC 5280 App. A), not a {tag}",
            want.join(" or ")
        )));
    }
    if text.is_empty() {
        return Err(bad("is empty".into()));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(bad(format!(
            "{} contains the control character U+{:04X}",
            shown(text),
            u32::from(c)
        )));
    }
    let chars = text.chars().count();
    if chars > max {
        return Err(bad(format!(
            "is {chars} characters long; at most {max} are allowed (RFC 5280 App. A)"
        )));
    }
    match syntax {
        Some(Syntax::Country) if chars != 2 || !text.bytes().all(|b| b.is_ascii_uppercase()) => {
            Err(bad(format!(
                "{} is not a two-letter ISO 3166 code",
                shown(text)
            )))
        }
        Some(Syntax::Email) => mailbox(text)
            .map(|_| ())
            .map_err(|r| bad(format!("{} {r}", shown(text)))),
        _ => Ok(()),
    }
}

/// The characters of a string-typed attribute value (PrintableString, UTF8String, IA5String;
/// the decoders check each type's character set).
pub(crate) fn attribute_text(value: &der::Any) -> Option<&str> {
    use der::asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef};
    let bytes = value.value();
    let s = std::str::from_utf8(bytes).ok()?;
    match value.tag() {
        Tag::Utf8String => Utf8StringRef::new(s).ok().map(|_| s),
        Tag::PrintableString => PrintableStringRef::new(s).ok().map(|_| s),
        Tag::Ia5String => Ia5StringRef::new(s).ok().map(|_| s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn atv_name(parts: &[(&str, Tag, &[u8])]) -> Name {
        use der::Encode;
        use x509_cert::attr::AttributeTypeAndValue;
        use x509_cert::name::{RdnSequence, RelativeDistinguishedName};
        let rdns: Vec<RelativeDistinguishedName> = parts
            .iter()
            .map(|(o, tag, v)| {
                let atv = AttributeTypeAndValue {
                    oid: o.parse().unwrap(),
                    value: der::Any::new(*tag, *v).unwrap(),
                };
                let mut rdn = RelativeDistinguishedName::default();
                rdn.insert(atv).unwrap();
                rdn
            })
            .collect();
        let der = RdnSequence::from(rdns).to_der().unwrap();
        <Name as der::Decode>::from_der(&der).unwrap()
    }

    #[test]
    fn subject_bounds_and_string_types() {
        let rules = NameRules::SYNTAX;
        let check = |parts: &[(&str, Tag, &[u8])]| check_subject(&atv_name(parts), rules);
        let u = Tag::Utf8String;
        let p = Tag::PrintableString;
        let cn64 = "a".repeat(64);
        check(&[
            ("2.5.4.6", p, b"DE"),
            ("2.5.4.10", u, "Bücher GmbH".as_bytes()),
            ("2.5.4.3", u, cn64.as_bytes()),
            ("2.5.4.5", p, b"SN-0042"),
            ("1.2.840.113549.1.9.1", Tag::Ia5String, b"a@example.com"),
        ])
        .unwrap();
        let reason = |parts: &[(&str, Tag, &[u8])]| match check(parts) {
            Err(CaError::InvalidName(m)) => m,
            other => panic!("{other:?}"),
        };
        let cn65 = "a".repeat(65);
        assert!(reason(&[("2.5.4.3", u, cn65.as_bytes())]).contains("at most 64"));
        let cn10k = "a".repeat(10_000);
        let m = reason(&[("2.5.4.3", u, cn10k.as_bytes())]);
        assert!(m.contains("10000 characters") && m.len() < 200, "{m}");
        assert!(reason(&[("2.5.4.3", u, b"a\0b")]).contains("U+0000"));
        assert!(reason(&[("2.5.4.3", u, b"a\nb")]).contains("U+000A"));
        assert!(reason(&[("2.5.4.3", u, "a\u{85}b".as_bytes())]).contains("U+0085"));
        assert!(reason(&[("2.5.4.3", u, b"")]).contains("empty"));
        assert!(reason(&[("2.5.4.3", Tag::TeletexString, b"x")]).contains("not accepted"));
        assert!(reason(&[("2.5.4.3", Tag::BmpString, b"\0x")]).contains("not accepted"));
        assert!(
            reason(&[("2.5.4.3", Tag::Ia5String, b"x")]).contains("PrintableString or UTF8String")
        );
        assert!(reason(&[("2.5.4.6", p, b"DEU")]).contains("at most 2"));
        assert!(reason(&[("2.5.4.6", p, b"de")]).contains("ISO 3166"));
        assert!(reason(&[("2.5.4.6", u, b"DE")]).contains("PrintableString"));
        assert!(reason(&[("2.5.4.5", u, b"SN-1")]).contains("PrintableString"));
        let l129 = "l".repeat(129);
        assert!(reason(&[("2.5.4.7", u, l129.as_bytes())]).contains("at most 128"));
        assert!(reason(&[("2.5.4.11", u, cn65.as_bytes())]).contains("at most 64"));
        assert!(reason(&[("1.2.840.113549.1.9.1", Tag::Ia5String, b"nobody")]).contains("@"));
        let many: Vec<(&str, Tag, &[u8])> = (0..65).map(|_| ("2.5.4.11", u, &b"x"[..])).collect();
        assert!(reason(&many).contains("more than 64"));
        // An unknown attribute type: any usual string type, bounded, no controls.
        check(&[("1.2.3.4", Tag::Ia5String, b"x")]).unwrap();
        assert!(reason(&[("1.2.3.4", Tag::Integer, b"\x01")]).contains("not accepted"));
    }
}
