//! Name policy: which subjects and SubjectAltNames an identity may request.
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::Name;

use crate::CaError;
use crate::csr::general_name_string;

/// The names a request asks for: every commonName of the subject and every SAN entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestedNames {
    pub common_names: Vec<String>,
    pub alt_names: Vec<String>,
}

impl RequestedNames {
    /// The names a (not yet verified) request asks for: its CN values and requested SANs.
    pub fn from_csr(req: &x509_cert::request::CertReq) -> Result<Self, CaError> {
        let san = crate::csr::requested_san(req)?;
        Self::from_request(&req.info.subject, san.as_ref())
    }

    pub fn from_request(subject: &Name, san: Option<&SubjectAltName>) -> Result<Self, CaError> {
        let mut common_names = Vec::new();
        for atv in subject.iter() {
            if atv.oid == const_oid::db::rfc4519::CN {
                let s = directory_string(&atv.value).ok_or_else(|| {
                    CaError::MalformedRequest("commonName is not a string".into())
                })?;
                common_names.push(s);
            }
        }
        let mut alt_names = Vec::new();
        if let Some(san) = san {
            for gn in san.0.iter() {
                match general_name_string(gn) {
                    Some(s) => alt_names.push(s),
                    None => {
                        return Err(CaError::NameNotAllowed(
                            "unsupported SubjectAltName type (DNS, IP, email and URI are allowed)"
                                .into(),
                        ));
                    }
                }
            }
        }
        Ok(Self {
            common_names,
            alt_names,
        })
    }
}

fn directory_string(any: &der::Any) -> Option<String> {
    use der::asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef};
    if let Ok(s) = any.decode_as::<Utf8StringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    if let Ok(s) = any.decode_as::<PrintableStringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    if let Ok(s) = any.decode_as::<Ia5StringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    None
}

/// A list of glob patterns (`*` matches any run of characters, matching is case-insensitive).
/// Every commonName and every SAN of a request must match at least one pattern; `*` alone allows
/// everything, an empty policy allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamePolicy {
    patterns: Vec<String>,
}

impl NamePolicy {
    pub fn new(patterns: Vec<String>) -> Self {
        Self {
            patterns: patterns
                .into_iter()
                .map(|p| p.to_ascii_lowercase())
                .collect(),
        }
    }

    pub fn any() -> Self {
        Self::new(vec!["*".into()])
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    pub fn check(&self, names: &RequestedNames) -> Result<(), CaError> {
        for n in names.common_names.iter().chain(names.alt_names.iter()) {
            let lower = n.to_ascii_lowercase();
            if !self
                .patterns
                .iter()
                .any(|p| glob(p.as_bytes(), lower.as_bytes()))
            {
                return Err(CaError::NameNotAllowed(format!(
                    "not authorized to request the name \"{n}\""
                )));
            }
        }
        Ok(())
    }
}

/// Iterative glob with `*` only; linear in practice, no recursion (hostile input is fine).
pub(crate) fn glob(p: &[u8], s: &[u8]) -> bool {
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

    #[test]
    fn policy() {
        let p = NamePolicy::new(vec!["*.Example.com".into(), "10.0.0.*".into()]);
        let ok = RequestedNames {
            common_names: vec!["a.example.com".into()],
            alt_names: vec!["10.0.0.7".into()],
        };
        assert!(p.check(&ok).is_ok());
        let bad = RequestedNames {
            common_names: vec!["evil.com".into()],
            alt_names: vec![],
        };
        assert!(p.check(&bad).is_err());
        assert!(NamePolicy::default().check(&ok).is_err());
        assert!(
            NamePolicy::default()
                .check(&RequestedNames::default())
                .is_ok()
        );
    }
}
