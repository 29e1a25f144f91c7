/// The EST operations (RFC 7030 §3.2.2, Fig. 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    CaCerts,
    SimpleEnroll,
    SimpleReenroll,
    FullCmc,
    ServerKeyGen,
    CsrAttrs,
}

const ALL: [Operation; 6] = [
    Operation::CaCerts,
    Operation::SimpleEnroll,
    Operation::SimpleReenroll,
    Operation::FullCmc,
    Operation::ServerKeyGen,
    Operation::CsrAttrs,
];

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CaCerts => "cacerts",
            Self::SimpleEnroll => "simpleenroll",
            Self::SimpleReenroll => "simplereenroll",
            Self::FullCmc => "fullcmc",
            Self::ServerKeyGen => "serverkeygen",
            Self::CsrAttrs => "csrattrs",
        }
    }

    /// Operation names are matched exactly (they are lowercase in RFC 7030).
    pub fn from_segment(s: &str) -> Option<Self> {
        ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// EST-7: GET for /cacerts and /csrattrs, POST for every other operation.
    pub fn method(self) -> &'static str {
        match self {
            Self::CaCerts | Self::CsrAttrs => "GET",
            _ => "POST",
        }
    }

    /// The request media type (EST-8), `None` for GET operations.
    pub fn request_media_type(self) -> Option<&'static str> {
        match self {
            Self::SimpleEnroll | Self::SimpleReenroll | Self::ServerKeyGen => {
                Some("application/pkcs10")
            }
            Self::FullCmc => Some("application/pkcs7-mime"),
            Self::CaCerts | Self::CsrAttrs => None,
        }
    }
}

/// A parsed EST request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstPath {
    /// The CA label, `None` for the label-less form (EST-5).
    pub label: Option<String>,
    pub operation: Operation,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("not an EST path (EST is served under /.well-known/est/)")]
    NotEst,
    #[error("unknown EST operation \"{0}\"")]
    UnknownOperation(String),
    #[error("invalid CA label: {0}")]
    InvalidLabel(String),
}

const PREFIX: &str = "/.well-known/est/";

/// Parses `/.well-known/est/<op>` and `/.well-known/est/<label>/<op>` (EST-1, EST-3). A query
/// string is not part of `path`. Percent-encoded and other unusual characters are refused in
/// labels rather than decoded, so one label has exactly one spelling.
pub fn parse_path(path: &str) -> Result<EstPath, PathError> {
    let rest = path.strip_prefix(PREFIX).ok_or(PathError::NotEst)?;
    let segs: Vec<&str> = rest.split('/').collect();
    let (label, op) = match segs.as_slice() {
        [op] => (None, *op),
        [label, op] => (Some(*label), *op),
        _ => return Err(PathError::UnknownOperation(rest.chars().take(64).collect())),
    };
    let operation = Operation::from_segment(op)
        .ok_or_else(|| PathError::UnknownOperation(op.chars().take(64).collect()))?;
    if let Some(l) = label {
        validate_label(l)?;
    }
    Ok(EstPath {
        label: label.map(str::to_owned),
        operation,
    })
}

/// Where CRLs are served on the EST listener, outside `/.well-known/est/` (which RFC 7030
/// reserves for EST operations): `/crl/<ca>.crl`, DER over HTTP (RFC 5280 §4.2.1.13, RFC 2585
/// §3). [EXT]
pub const CRL_PATH_PREFIX: &str = "/crl/";

/// The path of CA `ca`'s CRL, `None` if the name cannot appear in a path as it is (see
/// [`parse_crl_path`]).
pub fn crl_path(ca: &str) -> Option<String> {
    is_path_name(ca).then(|| format!("{CRL_PATH_PREFIX}{ca}.crl"))
}

/// The CA name of a CRL path `/crl/<ca>.crl`, where `<ca>` is 1..=64 characters of
/// `[A-Za-z0-9._~-]`; `None` for any other path. As with labels, nothing is percent-decoded,
/// so one CA name has exactly one URL.
pub fn parse_crl_path(path: &str) -> Option<&str> {
    let name = path.strip_prefix(CRL_PATH_PREFIX)?.strip_suffix(".crl")?;
    is_path_name(name).then_some(name)
}

/// 1..=64 characters, each unreserved in URIs (RFC 3986 §2.3): `[A-Za-z0-9._~-]`.
fn is_path_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
}

/// A label is 1..=64 characters of `[A-Za-z0-9._~-]` and is not an operation name (EST-4).
pub fn validate_label(label: &str) -> Result<(), PathError> {
    if label.is_empty() || label.len() > 64 {
        return Err(PathError::InvalidLabel("must be 1 to 64 characters".into()));
    }
    if !is_path_name(label) {
        return Err(PathError::InvalidLabel(
            "only letters, digits and . _ ~ - are allowed".into(),
        ));
    }
    if ALL.iter().any(|o| o.as_str().eq_ignore_ascii_case(label)) {
        return Err(PathError::InvalidLabel(format!(
            "\"{label}\" is an operation name (EST-4)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn crl_paths() {
        assert_eq!(crl_path("default").as_deref(), Some("/crl/default.crl"));
        assert_eq!(parse_crl_path("/crl/default.crl"), Some("default"));
        assert_eq!(parse_crl_path("/crl/a.b-c_d~e.crl"), Some("a.b-c_d~e"));
        // A name may end in ".crl" itself: only the last suffix is the extension.
        assert_eq!(parse_crl_path("/crl/x.crl.crl"), Some("x.crl"));
        for p in [
            "/crl/.crl",
            "/crl/default",
            "/crl/default.der",
            "/crl/a/b.crl",
            "/crl/a%2Fb.crl",
            "/crl/a b.crl",
            "/crl//x.crl",
            "/.well-known/est/crl/default.crl",
            "/crls/default.crl",
        ] {
            assert_eq!(parse_crl_path(p), None, "{p}");
        }
        assert_eq!(
            parse_crl_path(&format!("/crl/{}.crl", "x".repeat(65))),
            None
        );
        assert_eq!(crl_path("Acme Issuing"), None);
        assert_eq!(crl_path(""), None);
    }

    #[test]
    fn table() {
        let ok = |p: &str, l: Option<&str>, o| {
            assert_eq!(
                parse_path(p).unwrap(),
                EstPath {
                    label: l.map(Into::into),
                    operation: o
                },
                "{p}"
            )
        };
        ok("/.well-known/est/cacerts", None, Operation::CaCerts);
        ok(
            "/.well-known/est/simpleenroll",
            None,
            Operation::SimpleEnroll,
        );
        ok(
            "/.well-known/est/arbitraryLabel1/simplereenroll",
            Some("arbitraryLabel1"),
            Operation::SimpleReenroll,
        );
        ok(
            "/.well-known/est/a.b-c_d~e/csrattrs",
            Some("a.b-c_d~e"),
            Operation::CsrAttrs,
        );
        let err = |p: &str| parse_path(p).unwrap_err();
        assert_eq!(err("/est/cacerts"), PathError::NotEst);
        assert_eq!(err("/.well-known/est"), PathError::NotEst);
        assert!(matches!(
            err("/.well-known/est/"),
            PathError::UnknownOperation(_)
        ));
        assert!(matches!(
            err("/.well-known/est/foo"),
            PathError::UnknownOperation(_)
        ));
        assert!(matches!(
            err("/.well-known/est/CACERTS"),
            PathError::UnknownOperation(_)
        ));
        assert!(matches!(
            err("/.well-known/est/cacerts/"),
            PathError::UnknownOperation(_)
        ));
        assert!(matches!(
            err("/.well-known/est/a/b/cacerts"),
            PathError::UnknownOperation(_)
        ));
        assert!(matches!(
            err("/.well-known/est/simpleenroll/cacerts"),
            PathError::InvalidLabel(_)
        ));
        assert!(matches!(
            err("/.well-known/est/FullCMC/cacerts"),
            PathError::InvalidLabel(_)
        ));
        assert!(matches!(
            err("/.well-known/est/a%2Fb/cacerts"),
            PathError::InvalidLabel(_)
        ));
        assert!(matches!(
            err("/.well-known/est//cacerts"),
            PathError::InvalidLabel(_)
        ));
        assert!(matches!(
            err(&format!("/.well-known/est/{}/cacerts", "x".repeat(65))),
            PathError::InvalidLabel(_)
        ));
    }

    #[test]
    fn methods() {
        assert_eq!(Operation::CaCerts.method(), "GET");
        assert_eq!(Operation::CsrAttrs.method(), "GET");
        assert_eq!(Operation::FullCmc.method(), "POST");
        assert_eq!(
            Operation::SimpleEnroll.request_media_type(),
            Some("application/pkcs10")
        );
    }
}
