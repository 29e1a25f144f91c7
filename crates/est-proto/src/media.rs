use crate::Operation;

/// A parsed media type: lowercase essence and parameters (names lowercased, values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub essence: String,
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// Parses `type/subtype *(; name=value)`, tolerating white space around `;` and `=` (as in
    /// `multipart/mixed ; boundary=x`, SKG-16) and quoted values. `None` when malformed.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        let (t, sub) = essence.split_once('/')?;
        if t.is_empty() || sub.is_empty() || essence.contains(char::is_whitespace) {
            return None;
        }
        let mut params = Vec::new();
        for p in parts {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let (k, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v);
            params.push((k.trim().to_ascii_lowercase(), v.to_string()));
        }
        Some(Self { essence, params })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Whether a request's Content-Type fits the operation: the essence must match (case-insensitive,
/// extra parameters ignored, EST-13); for /fullcmc a missing smime-type is accepted, a present one
/// must be CMC-request (EST-96).
pub fn content_type_matches(op: Operation, content_type: &str) -> bool {
    let Some(expected) = op.request_media_type() else {
        return true;
    };
    let Some(mt) = MediaType::parse(content_type) else {
        return false;
    };
    if mt.essence != expected {
        return false;
    }
    match op {
        Operation::FullCmc => mt
            .param("smime-type")
            .is_none_or(|v| v.eq_ignore_ascii_case("CMC-request")),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_and_match() {
        let m = MediaType::parse("multipart/mixed ; boundary=estServerExampleBoundary").unwrap();
        assert_eq!(m.essence, "multipart/mixed");
        assert_eq!(m.param("Boundary"), Some("estServerExampleBoundary"));
        let m = MediaType::parse("Application/PKCS7-MIME; smime-type=\"certs-only\"").unwrap();
        assert_eq!(m.param("smime-type"), Some("certs-only"));
        assert!(MediaType::parse("nonsense").is_none());
        assert!(content_type_matches(
            Operation::SimpleEnroll,
            "application/pkcs10"
        ));
        assert!(content_type_matches(
            Operation::SimpleEnroll,
            "Application/PKCS10; charset=x"
        ));
        assert!(!content_type_matches(
            Operation::SimpleEnroll,
            "application/pkcs7-mime"
        ));
        assert!(!content_type_matches(Operation::SimpleEnroll, ""));
        assert!(content_type_matches(
            Operation::FullCmc,
            "application/pkcs7-mime"
        ));
        assert!(content_type_matches(
            Operation::FullCmc,
            "application/pkcs7-mime; smime-type=CMC-request"
        ));
        assert!(!content_type_matches(
            Operation::FullCmc,
            "application/pkcs7-mime; smime-type=certs-only"
        ));
    }
}
