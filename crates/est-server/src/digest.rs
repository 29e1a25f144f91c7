//! HTTP Digest authentication (RFC 7616; RFC 2617's MD5 for RFC 7030-era clients, EST-42):
//! parsing of the `Authorization: Digest` header and computation of the expected response.
//! Pure functions, no I/O: the server's nonce state lives in [`crate::nonce`].
use std::fmt;

use openssl::hash::{MessageDigest, hash};
use zeroize::Zeroizing;

/// The Digest algorithms we support (no `-sess` variants). `qop=auth` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Md5,
    Sha256,
    Sha512_256,
}

impl DigestAlgorithm {
    /// Every algorithm, strongest first.
    pub const ALL: [DigestAlgorithm; 3] = [Self::Sha256, Self::Sha512_256, Self::Md5];

    /// The token used in the `algorithm` parameter (RFC 7616 §6.1).
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
            Self::Sha512_256 => "SHA-512-256",
        }
    }

    /// Parses an `algorithm` token; case-insensitive (RFC 7616 §3.3).
    pub fn parse(token: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(token))
    }

    fn md(self) -> Option<MessageDigest> {
        match self {
            Self::Md5 => Some(MessageDigest::md5()),
            Self::Sha256 => Some(MessageDigest::sha256()),
            Self::Sha512_256 => MessageDigest::from_name("SHA512-256"),
        }
    }

    /// Lowercase hex of H(data).
    pub fn h(self, data: &[u8]) -> Result<String, DigestError> {
        let md = self.md().ok_or(DigestError::Crypto)?;
        let d = hash(md, data).map_err(|_| DigestError::Crypto)?;
        Ok(hex::encode(&*d))
    }

    /// HA1 = H(username ":" realm ":" password) (RFC 7616 §3.4.2), lowercase hex. This is what
    /// the server stores (encrypted) instead of the password.
    pub fn ha1(
        self,
        user: &str,
        realm: &str,
        password: &[u8],
    ) -> Result<Zeroizing<String>, DigestError> {
        let mut a1 = Zeroizing::new(Vec::with_capacity(
            user.len() + realm.len() + password.len() + 2,
        ));
        a1.extend_from_slice(user.as_bytes());
        a1.push(b':');
        a1.extend_from_slice(realm.as_bytes());
        a1.push(b':');
        a1.extend_from_slice(password);
        Ok(Zeroizing::new(self.h(&a1)?))
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an `Authorization: Digest` header was refused before any credential check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    #[error("not a Digest Authorization header")]
    NotDigest,
    #[error("malformed Digest parameters")]
    Malformed,
    #[error("missing Digest parameter {0}")]
    Missing(&'static str),
    #[error("duplicate Digest parameter {0}")]
    Duplicate(String),
    #[error("unsupported Digest algorithm")]
    UnsupportedAlgorithm,
    #[error("unsupported qop (only \"auth\")")]
    UnsupportedQop,
    #[error("invalid nonce count")]
    BadNonceCount,
    #[error("userhash is not supported")]
    UserhashUnsupported,
    #[error("digest computation failed")]
    Crypto,
}

/// The parameters of an `Authorization: Digest` header (RFC 7616 §3.4), validated: qop is
/// `auth`, nc is 8 hex digits, the algorithm is one we know.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    /// The client's response, lowercase hex as sent (compared in constant time).
    pub response: String,
    pub algorithm: DigestAlgorithm,
    pub cnonce: String,
    /// `nc` as sent (8 hex digits) and its value.
    pub nc_text: String,
    pub nc: u32,
    pub opaque: Option<String>,
}

impl fmt::Debug for DigestCredentials {
    // No response value in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestCredentials")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("uri", &self.uri)
            .field("algorithm", &self.algorithm)
            .field("nc", &self.nc)
            .finish_non_exhaustive()
    }
}

/// Upper bound on the header we are willing to parse (SEC-16).
const MAX_HEADER: usize = 8 * 1024;

/// Parses the value of an `Authorization` header with the Digest scheme: a comma-separated
/// list of `name=token` or `name="quoted string"` (backslash escapes, RFC 7230 §3.2.6),
/// in any order, with optional whitespace. Unknown parameters are ignored; duplicates refused.
pub fn parse_authorization(value: &[u8]) -> Result<DigestCredentials, DigestError> {
    if value.len() > MAX_HEADER {
        return Err(DigestError::Malformed);
    }
    let s = std::str::from_utf8(value).map_err(|_| DigestError::Malformed)?;
    let s = s.trim_start_matches([' ', '\t']);
    let (scheme, rest) = s.split_once([' ', '\t']).ok_or(DigestError::NotDigest)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(DigestError::NotDigest);
    }
    let params = parse_params(rest)?;
    let get = |name: &'static str| -> Option<String> {
        params
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|i| params[i].1.clone())
    };
    if get("userhash").is_some_and(|v| v.eq_ignore_ascii_case("true")) || get("username*").is_some()
    {
        return Err(DigestError::UserhashUnsupported);
    }
    let algorithm = match get("algorithm") {
        // RFC 7616 §3.4: absent means MD5.
        None => DigestAlgorithm::Md5,
        Some(a) => DigestAlgorithm::parse(&a).ok_or(DigestError::UnsupportedAlgorithm)?,
    };
    let qop = get("qop").ok_or(DigestError::Missing("qop"))?;
    if !qop.eq_ignore_ascii_case("auth") {
        return Err(DigestError::UnsupportedQop);
    }
    let nc_text = get("nc").ok_or(DigestError::Missing("nc"))?;
    if nc_text.len() != 8 || !nc_text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DigestError::BadNonceCount);
    }
    let nc = u32::from_str_radix(&nc_text, 16).map_err(|_| DigestError::BadNonceCount)?;
    if nc == 0 {
        return Err(DigestError::BadNonceCount);
    }
    let response = get("response").ok_or(DigestError::Missing("response"))?;
    Ok(DigestCredentials {
        username: get("username").ok_or(DigestError::Missing("username"))?,
        realm: get("realm").ok_or(DigestError::Missing("realm"))?,
        nonce: get("nonce").ok_or(DigestError::Missing("nonce"))?,
        uri: get("uri").ok_or(DigestError::Missing("uri"))?,
        response: response.to_ascii_lowercase(),
        algorithm,
        cnonce: get("cnonce").ok_or(DigestError::Missing("cnonce"))?,
        nc_text,
        nc,
        opaque: get("opaque"),
    })
}

/// `auth-param` list parser: returns (name, unescaped value) pairs.
fn parse_params(mut s: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out: Vec<(String, String)> = Vec::new();
    loop {
        s = s.trim_start_matches([' ', '\t', ',']);
        if s.is_empty() {
            return Ok(out);
        }
        let eq = s.find('=').ok_or(DigestError::Malformed)?;
        let name = s[..eq].trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(DigestError::Malformed);
        }
        s = s[eq + 1..].trim_start_matches([' ', '\t']);
        let value;
        if let Some(rest) = s.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = rest.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e)) => v.push(e),
                        None => return Err(DigestError::Malformed),
                    },
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c if c.is_control() && c != '\t' => return Err(DigestError::Malformed),
                    c => v.push(c),
                }
            }
            let end = end.ok_or(DigestError::Malformed)?;
            value = v;
            s = &rest[end + 1..];
        } else {
            let end = s.find([',', ' ', '\t']).unwrap_or(s.len());
            let token = &s[..end];
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
                return Err(DigestError::Malformed);
            }
            value = token.to_owned();
            s = &s[end..];
        }
        // Only separators may follow a value.
        let after = s.trim_start_matches([' ', '\t']);
        if !(after.is_empty() || after.starts_with(',')) {
            return Err(DigestError::Malformed);
        }
        if out.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
            return Err(DigestError::Duplicate(name.to_ascii_lowercase()));
        }
        out.push((name.to_owned(), value));
        if out.len() > 32 {
            return Err(DigestError::Malformed);
        }
    }
}

/// RFC 7230 `tchar` (token characters; `*` covers `username*`). Unquoted values are taken
/// more leniently (any visible character but `"`), as some clients send bare base64 nonces.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The expected `response` for qop=auth (RFC 7616 §3.4.1):
/// `H(HA1 ":" nonce ":" nc ":" cnonce ":" "auth" ":" H(method ":" uri))`.
pub fn expected_response(
    creds: &DigestCredentials,
    ha1_hex: &str,
    method: &str,
) -> Result<Zeroizing<String>, DigestError> {
    let ha2 = creds
        .algorithm
        .h(format!("{method}:{}", creds.uri).as_bytes())?;
    let kd = Zeroizing::new(format!(
        "{ha1_hex}:{}:{}:{}:auth:{ha2}",
        creds.nonce, creds.nc_text, creds.cnonce
    ));
    Ok(Zeroizing::new(creds.algorithm.h(kd.as_bytes())?))
}

/// Checks the client's response in constant time (openssl::memcmp::eq needs equal lengths).
pub fn response_matches(
    creds: &DigestCredentials,
    ha1_hex: &str,
    method: &str,
) -> Result<bool, DigestError> {
    let expected = expected_response(creds, ha1_hex, method)?;
    Ok(expected.len() == creds.response.len()
        && openssl::memcmp::eq(expected.as_bytes(), creds.response.as_bytes()))
}

/// Quotes a value for a challenge parameter (RFC 7230 quoted-string).
pub fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// One `WWW-Authenticate: Digest ...` challenge (RFC 7616 §3.3). The algorithm is quoted
/// although RFC 7616 makes it a token: Bouncy Castle's client (1.72) refuses unquoted values,
/// and quoted ones are read by every client we tried.
pub fn challenge(
    realm: &str,
    nonce: &str,
    opaque: &str,
    algorithm: DigestAlgorithm,
    stale: bool,
) -> String {
    let mut c = format!(
        "Digest realm={}, qop=\"auth\", algorithm=\"{}\", nonce={}, opaque={}",
        quote(realm),
        algorithm.name(),
        quote(nonce),
        quote(opaque)
    );
    if stale {
        c.push_str(", stale=true");
    }
    c
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 7616 §3.9.1: the same request answered with SHA-256 and with MD5.
    fn rfc7616_header(alg: &str, response: &str) -> String {
        format!(
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", \
             algorithm={alg}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
             cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
             response=\"{response}\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        )
    }

    #[test]
    fn rfc7616_example_sha256_and_md5() {
        for (alg, resp) in [
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let c = parse_authorization(rfc7616_header(alg, resp).as_bytes()).unwrap();
            assert_eq!(c.username, "Mufasa");
            assert_eq!(c.nc, 1);
            assert_eq!(
                c.opaque.as_deref(),
                Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
            );
            let ha1 = c
                .algorithm
                .ha1("Mufasa", "http-auth@example.org", b"Circle of Life")
                .unwrap();
            assert_eq!(
                expected_response(&c, &ha1, "GET").unwrap().as_str(),
                resp,
                "{alg}"
            );
            assert!(response_matches(&c, &ha1, "GET").unwrap());
            // Any change to the method, password or response fails.
            assert!(!response_matches(&c, &ha1, "POST").unwrap());
            let wrong = c
                .algorithm
                .ha1("Mufasa", "http-auth@example.org", b"Circle of life")
                .unwrap();
            assert!(!response_matches(&c, &wrong, "GET").unwrap());
        }
    }

    #[test]
    fn sha512_256_is_available_and_distinct() {
        let h = DigestAlgorithm::Sha512_256.h(b"abc").unwrap();
        // FIPS 180-4 SHA-512/256 test vector for "abc".
        assert_eq!(
            h,
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        );
    }

    #[test]
    fn quoted_strings_escapes_and_whitespace() {
        let v = br#"digest   username="a\"b\\c" ,realm="r, with comma",nonce=abc ,uri="/x?y=1",
            response="ABCDEF",qop="auth",nc=0000000a,cnonce="c",algorithm=sha-256,extra=ignored"#;
        let v: Vec<u8> = v.iter().copied().filter(|b| *b != b'\n').collect();
        let c = parse_authorization(&v).unwrap();
        assert_eq!(c.username, "a\"b\\c");
        assert_eq!(c.realm, "r, with comma");
        assert_eq!(c.nonce, "abc");
        assert_eq!(c.uri, "/x?y=1");
        assert_eq!(c.response, "abcdef");
        assert_eq!(c.nc, 10);
        assert_eq!(c.algorithm, DigestAlgorithm::Sha256);
        assert_eq!(c.opaque, None);
    }

    #[test]
    fn malformed_headers_are_refused() {
        let ok = "username=\"u\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"00\", qop=auth, nc=00000001, cnonce=\"c\"";
        assert!(parse_authorization(format!("Digest {ok}").as_bytes()).is_ok());
        assert_eq!(
            parse_authorization(b"Basic dXNlcjpwYXNz").unwrap_err(),
            DigestError::NotDigest
        );
        for (bad, why) in [
            (format!("Digest {ok}, realm=\"again\""), "duplicate"),
            (
                format!("Digest {ok}, x=\"unterminated"),
                "unterminated quote",
            ),
            (format!("Digest {ok}, x=\"bad\\"), "dangling escape"),
            (format!("Digest {ok}, =v"), "empty name"),
            (format!("Digest {ok}, a=b c"), "garbage after value"),
            (ok.replace("qop=auth", "qop=auth-int"), "qop"),
            (ok.replace("nc=00000001", "nc=1"), "short nc"),
            (ok.replace("nc=00000001", "nc=00000000"), "zero nc"),
            (ok.replace("nc=00000001", "nc=0000000g"), "non-hex nc"),
            (ok.replace(", cnonce=\"c\"", ""), "no cnonce"),
            (format!("{ok}, algorithm=MD5-sess"), "sess"),
            (format!("{ok}, userhash=true"), "userhash"),
            (format!("{ok}, bad\u{1}=x"), "control char"),
        ] {
            let h = if bad.starts_with("Digest") {
                bad
            } else {
                format!("Digest {bad}")
            };
            assert!(parse_authorization(h.as_bytes()).is_err(), "{why}: {h}");
        }
        assert!(parse_authorization(&[b'D'; 9000]).is_err());
        assert!(parse_authorization(b"Digest").is_err());
        assert!(parse_authorization(&[0xff, 0xfe]).is_err());
    }

    proptest::proptest! {
        /// SEC-16: hostile header bytes never panic the parser.
        #[test]
        fn arbitrary_bytes_never_panic(v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = parse_authorization(&v);
            let mut d = b"Digest ".to_vec();
            d.extend_from_slice(&v);
            let _ = parse_authorization(&d);
        }

        /// Any value survives quoting and parsing unchanged.
        #[test]
        fn quoted_values_round_trip(user in "[ -~]{0,40}", realm in "[ -~]{0,40}") {
            let h = format!(
                "Digest username={}, realm={}, nonce=\"n\", uri=\"/\", response=\"00\", qop=auth, nc=00000001, cnonce=\"c\"",
                quote(&user),
                quote(&realm)
            );
            let c = parse_authorization(h.as_bytes()).unwrap();
            proptest::prop_assert_eq!(c.username, user);
            proptest::prop_assert_eq!(c.realm, realm);
        }
    }

    #[test]
    fn challenge_quotes() {
        let c = challenge("est \"x\"", "n1", "o1", DigestAlgorithm::Md5, true);
        assert_eq!(
            c,
            "Digest realm=\"est \\\"x\\\"\", qop=\"auth\", algorithm=\"MD5\", nonce=\"n1\", opaque=\"o1\", stale=true"
        );
    }
}
