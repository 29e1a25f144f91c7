//! Authorization rules for certificate-authenticated requesters that are not ordinary end
//! entities of this CA: registration authorities (id-kp-cmcRA, EST-48) and clients whose
//! certificate validated only to an implicit (third-party) trust anchor, such as a device's
//! manufacturer-installed IDevID (EST-28, SEC-2, SEC-23).
use der::Encode;
use der::asn1::ObjectIdentifier;
use x509_cert::Certificate;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::name::Name;

use crate::CaError;
use crate::authority::Names;

/// id-kp-cmcRA (RFC 6402 §2.10): the certificate holder is a registration authority.
pub const ID_KP_CMC_RA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.28");

/// X.520 serialNumber (2.5.4.5), the device serial number in IDevID subjects (IEEE 802.1AR).
const SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");

/// Whether the certificate carries id-kp-cmcRA in its extended key usage (EST-48).
pub fn is_registration_authority(cert: &Certificate) -> bool {
    matches!(
        cert.tbs_certificate().get_extension::<ExtendedKeyUsage>(),
        Ok(Some((_, eku))) if eku.0.contains(&ID_KP_CMC_RA)
    )
}

/// Which subject a client authenticated through an implicit trust anchor may request
/// (initial enrollment only, never renewal or anything else: SEC-23).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImplicitNameMapping {
    /// The CSR subject must equal the certificate's subject, byte for byte.
    SameSubject,
    /// The CSR subject must carry the certificate's serialNumber attribute(s) unchanged (the
    /// IDevID's device serial number); other attributes are free.
    SameSerialNumber,
}

impl ImplicitNameMapping {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "subject" => Some(Self::SameSubject),
            "serial-number" => Some(Self::SameSerialNumber),
            _ => None,
        }
    }

    /// Checks a CSR of an implicit-TA client; SubjectAltNames are never granted to it, since
    /// nothing vouches for them.
    pub(crate) fn check(self, cert: &Certificate, names: Names<'_>) -> Result<(), CaError> {
        if names.san.is_some_and(|s| !s.0.is_empty()) {
            return Err(CaError::NameNotAllowed(
                "a client authenticated by an implicit trust anchor may not request SubjectAltNames"
                    .into(),
            ));
        }
        let have = cert.tbs_certificate().subject();
        let want = names.subject;
        let ok = match self {
            Self::SameSubject => have.to_der()? == want.to_der()?,
            Self::SameSerialNumber => {
                let theirs = serial_numbers(have)?;
                !theirs.is_empty() && theirs == serial_numbers(want)?
            }
        };
        if ok {
            Ok(())
        } else {
            Err(CaError::NameNotAllowed(match self {
                Self::SameSubject => format!(
                    "the requested subject \"{want}\" must equal the client certificate's \"{have}\""
                ),
                Self::SameSerialNumber => format!(
                    "the requested subject \"{want}\" must keep the serialNumber of the client certificate's \"{have}\""
                ),
            }))
        }
    }
}

/// The values of every serialNumber attribute of a name, in order: the characters for the
/// ASCII-compatible string types (a device may encode PrintableString where its IDevID has
/// UTF8String), the whole DER otherwise.
fn serial_numbers(name: &Name) -> Result<Vec<Vec<u8>>, CaError> {
    use der::{Tag, Tagged};
    let mut out = Vec::new();
    for atv in name.iter() {
        if atv.oid == SERIAL_NUMBER {
            out.push(match atv.value.tag() {
                Tag::PrintableString | Tag::Utf8String | Tag::Ia5String => {
                    atv.value.value().to_vec()
                }
                _ => atv.value.to_der()?,
            });
        }
    }
    Ok(out)
}

/// One access rule of a label (EST-47): who it admits and which names they may request.
///
/// A user identity matches when `users` is non-empty and one pattern matches its name; a
/// certificate identity (explicit or implicit) matches when at least one `cert_*` list is set
/// and every set list has a matching entry. A rule with no identity condition admits every
/// authenticated requester. Patterns use `*` and are case-insensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRule {
    /// HTTP user names (Basic, Digest) and enrollment token ids (`tok_*` admits all tokens).
    pub users: Vec<String>,
    /// Client certificate subject, RFC 4514 string (e.g. `CN=*.devices.example,O=Acme`).
    pub cert_subjects: Vec<String>,
    /// Client certificate issuer, RFC 4514 string.
    pub cert_issuers: Vec<String>,
    /// A SubjectAltName value of the client certificate (DNS, IP, email, URI), as name
    /// patterns ([`crate::NamePolicy`]).
    pub cert_sans: Vec<String>,
    /// Names (CN and SAN values) the request may ask for; empty: any (the user's own
    /// `--allow-name` patterns still apply).
    pub names: Vec<String>,
}

/// Whether `value` matches one of `patterns` (`*` globs, ASCII case-insensitive).
pub fn any_glob(patterns: &[String], value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    patterns
        .iter()
        .any(|p| crate::names::glob(p.to_ascii_lowercase().as_bytes(), v.as_bytes()))
}

/// Whether the RFC 4514 string `dn` matches one of `patterns`, ASCII case-insensitive, where
/// `*` stays within one attribute value: it never matches the `,` or `+` between attributes
/// (a comma or plus inside a value is escaped, `\,`, and cannot be matched by `*` either). So
/// `CN=*.devices.example` admits `CN=a.devices.example` but not
/// `CN=x,OU=a.devices.example`: patterns compare attribute by attribute, not as raw suffixes.
/// A pattern of `*` alone admits every DN.
pub fn any_dn_glob(patterns: &[String], dn: &str) -> bool {
    let v = dn.to_ascii_lowercase();
    patterns.iter().any(|p| {
        p == "*"
            || crate::names::glob_with(p.to_ascii_lowercase().as_bytes(), v.as_bytes(), |b| {
                matches!(b, b',' | b'+' | b'\\')
            })
    })
}

impl AccessRule {
    fn admits(&self, identity: &crate::Identity) -> bool {
        use crate::Identity;
        let cert = match identity {
            Identity::User { name, .. }
            | Identity::Token { id: name, .. }
            | Identity::SharedSecret { ident: name, .. } => {
                return self.no_identity_condition() || any_glob(&self.users, name);
            }
            Identity::Certificate { cert, .. } | Identity::ImplicitCertificate { cert, .. } => cert,
        };
        if self.no_identity_condition() {
            return true;
        }
        let cert_conditions = [&self.cert_subjects, &self.cert_issuers, &self.cert_sans];
        if cert_conditions.iter().all(|c| c.is_empty()) {
            return false;
        }
        let tbs = cert.tbs_certificate();
        let subject_ok = self.cert_subjects.is_empty()
            || any_dn_glob(&self.cert_subjects, &tbs.subject().to_string());
        let issuer_ok = self.cert_issuers.is_empty()
            || any_dn_glob(&self.cert_issuers, &tbs.issuer().to_string());
        // SAN patterns are name patterns, compared with parsed names (not raw strings).
        let san_ok = self.cert_sans.is_empty() || {
            let sans = tbs
                .get_extension::<x509_cert::ext::pkix::SubjectAltName>()
                .ok()
                .flatten()
                .map(|(_, s)| s);
            let patterns = crate::NamePolicy::new(self.cert_sans.clone());
            sans.is_some_and(|s| s.0.iter().any(|gn| patterns.allows_general_name(gn)))
        };
        subject_ok && issuer_ok && san_ok
    }

    fn no_identity_condition(&self) -> bool {
        self.users.is_empty()
            && self.cert_subjects.is_empty()
            && self.cert_issuers.is_empty()
            && self.cert_sans.is_empty()
    }
}

/// The authorization policy of one label (EST-47): when it has rules, a request needs a rule
/// that admits its identity and allows every requested name. No rules: no label restriction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelPolicy {
    pub rules: Vec<AccessRule>,
}

impl LabelPolicy {
    pub fn authorize(
        &self,
        identity: &crate::Identity,
        names: &crate::RequestedNames,
    ) -> Result<(), CaError> {
        if self.rules.is_empty() {
            return Ok(());
        }
        let admitting: Vec<&AccessRule> =
            self.rules.iter().filter(|r| r.admits(identity)).collect();
        if admitting.is_empty() {
            return Err(CaError::NotAuthorized(format!(
                "{} is not authorized on this CA label",
                identity.requester()
            )));
        }
        let mut last = None;
        for rule in admitting {
            if rule.names.is_empty() {
                return Ok(());
            }
            match crate::NamePolicy::new(rule.names.clone()).check(names) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| CaError::NotAuthorized("not authorized".into())))
    }
}

#[cfg(test)]
mod tests {

    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dn_patterns_compare_attribute_by_attribute() {
        let p = vec!["CN=*.devices.example".to_string()];
        assert!(any_dn_glob(&p, "CN=a.devices.example"));
        assert!(any_dn_glob(&p, "cn=A.Devices.Example"));
        assert!(!any_dn_glob(&p, "CN=x,OU=a.devices.example"));
        assert!(!any_dn_glob(&p, "CN=x+OU=a.devices.example"));
        assert!(!any_dn_glob(&p, "CN=x\\,y.devices.example"));
        let q = vec!["CN=*,O=Acme".to_string()];
        assert!(any_dn_glob(&q, "CN=dev1,O=Acme"));
        assert!(!any_dn_glob(&q, "CN=dev1,OU=x,O=Acme"));
        // `*` alone still admits every subject.
        assert!(any_dn_glob(&["*".to_string()], "CN=a,O=b"));
    }
    use crate::{Identity, NamePolicy, RequestedNames};

    fn user(n: &str) -> Identity {
        Identity::User {
            name: n.into(),
            names: NamePolicy::any(),
        }
    }

    fn names(cn: &str) -> RequestedNames {
        let subject: x509_cert::name::Name = format!("CN={cn}").parse().unwrap();
        RequestedNames::from_request(&subject, None).unwrap()
    }

    #[test]
    fn label_policy_rules() {
        let p = LabelPolicy {
            rules: vec![
                AccessRule {
                    users: vec!["ops-*".into()],
                    names: vec!["*.ops.example".into()],
                    ..Default::default()
                },
                AccessRule {
                    users: vec!["admin".into()],
                    ..Default::default()
                },
            ],
        };
        assert!(p.authorize(&user("ops-1"), &names("a.ops.example")).is_ok());
        assert!(matches!(
            p.authorize(&user("ops-1"), &names("a.dev.example")),
            Err(CaError::NameNotAllowed(_))
        ));
        assert!(p.authorize(&user("admin"), &names("anything")).is_ok());
        assert!(matches!(
            p.authorize(&user("mallory"), &names("a.ops.example")),
            Err(CaError::NotAuthorized(_))
        ));
        assert!(
            LabelPolicy::default()
                .authorize(&user("x"), &names("y"))
                .is_ok()
        );
        // A rule without identity conditions admits everyone, within its names.
        let open = LabelPolicy {
            rules: vec![AccessRule {
                names: vec!["*.lab".into()],
                ..Default::default()
            }],
        };
        assert!(open.authorize(&user("x"), &names("a.lab")).is_ok());
        assert!(open.authorize(&user("x"), &names("a.prod")).is_err());
    }
}
