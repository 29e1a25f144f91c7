//! HTTP Digest authentication (RFC 7616; RFC 2617's MD5 for RFC 7030-era clients, EST-42),
//! both sides: the server parses `Authorization: Digest` and computes the expected response;
//! the client parses `WWW-Authenticate: Digest` challenges and answers one
//! ([`parse_challenges`], [`authorization`]). Pure functions, no I/O: the server's nonce
//! state lives in est-server.
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

/// One `WWW-Authenticate: Digest` challenge, as a client reads it (RFC 7616 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: DigestAlgorithm,
    /// The server said the previous nonce had expired (retry with this one).
    pub stale: bool,
}

/// The Digest challenges among the `WWW-Authenticate` values `values` (each may hold one or
/// more challenges): those with qop `auth` and an algorithm we know (no `-sess`), strongest
/// first. Others (Basic, unknown schemes, malformed ones) are skipped.
pub fn parse_challenges<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<DigestChallenge> {
    let mut out = Vec::new();
    for v in values {
        // Challenges start with a scheme token; split on each "Digest " that starts one.
        let mut rest = v;
        while let Some(pos) = find_scheme(rest, "digest") {
            let after = &rest[pos + "digest".len()..];
            let end = next_scheme(after).unwrap_or(after.len());
            if let Some(c) = challenge_params(&after[..end]) {
                out.push(c);
            }
            rest = &after[end..];
        }
    }
    out.sort_by_key(|c| {
        DigestAlgorithm::ALL
            .iter()
            .position(|a| *a == c.algorithm)
            .unwrap_or(usize::MAX)
    });
    out
}

/// Whether a challenge of `scheme` (e.g. `basic`, case-insensitive) starts anywhere in the
/// `WWW-Authenticate` values (as a token, not inside a quoted string).
pub fn offers_scheme<'a>(values: impl IntoIterator<Item = &'a str>, scheme: &str) -> bool {
    let scheme = scheme.to_ascii_lowercase();
    values
        .into_iter()
        .any(|v| find_scheme(v, &scheme).is_some() || v.trim().eq_ignore_ascii_case(&scheme))
}

/// The position of `scheme` (case-insensitive) as a whole token followed by whitespace.
fn find_scheme(s: &str, scheme: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(scheme) {
        let at = from + i;
        let before_ok = at == 0
            || lower.as_bytes()[at - 1] == b','
            || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let after_ok = lower
            .as_bytes()
            .get(at + scheme.len())
            .is_some_and(|b| b.is_ascii_whitespace());
        if before_ok && after_ok && !inside_quotes(s, at) {
            return Some(at);
        }
        from = at + scheme.len();
    }
    None
}

fn inside_quotes(s: &str, at: usize) -> bool {
    let mut inside = false;
    let mut escaped = false;
    for b in s.as_bytes()[..at].iter() {
        match (escaped, *b) {
            (true, _) => escaped = false,
            (false, b'\\') if inside => escaped = true,
            (false, b'"') => inside = !inside,
            _ => {}
        }
    }
    inside
}

/// Where the next challenge (a `Basic` or `Digest` scheme token) starts in `s`.
fn next_scheme(s: &str) -> Option<usize> {
    [find_scheme(s, "digest"), find_scheme(s, "basic")]
        .into_iter()
        .flatten()
        .min()
}

fn challenge_params(s: &str) -> Option<DigestChallenge> {
    let params = parse_params(s.trim().trim_end_matches(',')).ok()?;
    let get = |n: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let algorithm = match get("algorithm") {
        Some(a) => DigestAlgorithm::parse(&a)?,
        None => DigestAlgorithm::Md5,
    };
    // qop=auth is what we answer; a challenge without qop (RFC 2069) is not accepted.
    let qop = get("qop")?;
    if !qop
        .split(',')
        .any(|q| q.trim().eq_ignore_ascii_case("auth"))
    {
        return None;
    }
    Some(DigestChallenge {
        realm: get("realm")?,
        nonce: get("nonce")?,
        opaque: get("opaque"),
        algorithm,
        stale: get("stale").is_some_and(|v| v.eq_ignore_ascii_case("true")),
    })
}

/// The `Authorization` value answering `c` for `method` and request-target `uri` with qop
/// `auth` (RFC 7616 §3.4): `nc` counts the uses of this nonce (1 for the first), `cnonce` is
/// the client's fresh nonce.
pub fn authorization(
    c: &DigestChallenge,
    user: &str,
    password: &[u8],
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> Result<Zeroizing<String>, DigestError> {
    let ha1 = c.algorithm.ha1(user, &c.realm, password)?;
    let creds = DigestCredentials {
        username: user.to_owned(),
        realm: c.realm.clone(),
        nonce: c.nonce.clone(),
        uri: uri.to_owned(),
        response: String::new(),
        algorithm: c.algorithm,
        cnonce: cnonce.to_owned(),
        nc_text: format!("{nc:08x}"),
        nc,
        opaque: c.opaque.clone(),
    };
    let response = expected_response(&creds, &ha1, method)?;
    let mut v = Zeroizing::new(format!(
        "Digest username={}, realm={}, uri={}, algorithm={}, nonce={}, nc={}, cnonce={}, qop=auth, response={}",
        quote(user),
        quote(&c.realm),
        quote(uri),
        c.algorithm.name(),
        quote(&c.nonce),
        creds.nc_text,
        quote(cnonce),
        quote(&response)
    ));
    if let Some(o) = &c.opaque {
        v.push_str(&format!(", opaque={}", quote(o)));
    }
    Ok(v)
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

    /// The client side answers what the server side accepts: challenges as our server sends
    /// them (Basic first, then Digest SHA-256 and MD5 in one header or several) are found,
    /// strongest first, and the answer verifies with the server's check.
    #[test]
    fn client_answers_a_server_challenge() {
        let sha = challenge("EST realm", "n1/+=", "op", DigestAlgorithm::Sha256, false);
        let md5 = challenge("EST realm", "n2", "op", DigestAlgorithm::Md5, true);
        let joined = format!("Basic realm=\"EST realm\", {md5}, {sha}");
        for values in [
            vec![joined.as_str()],
            vec!["Basic realm=\"x\"", md5.as_str(), sha.as_str()],
        ] {
            let cs = parse_challenges(values);
            assert_eq!(cs.len(), 2, "{cs:?}");
            assert_eq!(cs[0].algorithm, DigestAlgorithm::Sha256);
            assert_eq!(cs[0].nonce, "n1/+=");
            assert_eq!(cs[0].opaque.as_deref(), Some("op"));
            assert!(cs[1].stale && cs[1].algorithm == DigestAlgorithm::Md5);
        }
        let c = &parse_challenges([sha.as_str()])[0];
        let auth = authorization(
            c,
            "al\"ice",
            b"pw",
            "POST",
            "/.well-known/est/simpleenroll",
            1,
            "cn0",
        )
        .unwrap();
        let creds = parse_authorization(auth.as_bytes()).unwrap();
        assert_eq!(creds.username, "al\"ice");
        assert_eq!(creds.nc, 1);
        let ha1 = DigestAlgorithm::Sha256
            .ha1("al\"ice", "EST realm", b"pw")
            .unwrap();
        assert!(response_matches(&creds, &ha1, "POST").unwrap());
        assert!(!response_matches(&creds, &ha1, "GET").unwrap());
        assert!(offers_scheme([joined.as_str()], "basic"));
        assert!(!offers_scheme([sha.as_str()], "basic"));
        assert!(!offers_scheme(
            ["Digest realm=\"x, basic y\", qop=auth"],
            "basic"
        ));
        // A "digest" inside a quoted realm is not a scheme; no qop means no answer.
        let tricky = "Basic realm=\"a Digest realm=x\", Digest realm=\"r\", nonce=\"n\"";
        assert!(parse_challenges([tricky]).is_empty());
    }
}
