use base64::Engine;
use zeroize::Zeroizing;

/// Credentials from an `Authorization: Basic` header (RFC 7617). The user name may be empty
/// (EST-43). Returns `None` for another scheme or a malformed value.
pub(crate) fn parse_basic(value: &[u8]) -> Option<(String, Zeroizing<Vec<u8>>)> {
    let s = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = s.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?,
    );
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = std::str::from_utf8(&decoded[..colon]).ok()?.to_owned();
    let password = Zeroizing::new(decoded[colon + 1..].to_vec());
    Some((user, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic() {
        let (u, p) = parse_basic(b"Basic dXNlcjpwYXNzOndvcmQ=").unwrap();
        assert_eq!(u, "user");
        assert_eq!(&p[..], b"pass:word");
        let (u, p) = parse_basic(b"basic OnNlY3JldA==").unwrap();
        assert_eq!(u, "");
        assert_eq!(&p[..], b"secret");
        assert!(parse_basic(b"Digest abc").is_none());
        assert!(parse_basic(b"Basic !!!").is_none());
        assert!(parse_basic(b"Basic dXNlcg==").is_none());
    }
}
