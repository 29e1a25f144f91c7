//! `multipart/mixed` (RFC 2046 §5.1) as /serverkeygen uses it (SKG-15, SKG-16): the server writes
//! two base64 parts; the client finds its parts by Content-Type, ignoring preamble, epilogue and
//! part order, and tolerating LF line ends.

/// One body part: its Content-Type and its (still base64) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub content_type: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("multipart: {0}")]
pub struct MultipartError(String);

fn err(s: &str) -> MultipartError {
    MultipartError(s.to_string())
}

/// The boundary we write (SKG-16). A delimiter line starts with `--`, and `-` is not in the
/// base64 alphabet, so no line of a base64 body can be mistaken for one. No MIME tspecials
/// either, so the Content-Type parameter needs no quoting (RFC 2045 §5.1).
pub const BOUNDARY: &str = "estuary-boundary-9f7c";

/// The Content-Type header of a body written by [`encode`].
pub fn content_type() -> String {
    format!("multipart/mixed; boundary={BOUNDARY}")
}

/// Writes `parts` (each body already base64 text) with CRLF line ends. Every part also carries
/// `Content-Transfer-Encoding: base64` for RFC 7030-era clients (EST-11).
pub fn encode(parts: &[(&str, &str)]) -> String {
    // Sized up front: a body may carry a private key, and a growing String would leave copies
    // of it behind in freed memory.
    let size: usize = parts
        .iter()
        .map(|(ct, body)| ct.len() + body.len() + BOUNDARY.len() + 64)
        .sum::<usize>()
        + BOUNDARY.len()
        + 8;
    let mut out = String::with_capacity(size);
    for (ct, body) in parts {
        out.push_str("--");
        out.push_str(BOUNDARY);
        out.push_str("\r\nContent-Type: ");
        out.push_str(ct);
        out.push_str("\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        out.push_str(body);
        if !body.ends_with('\n') {
            out.push_str("\r\n");
        }
    }
    out.push_str("--");
    out.push_str(BOUNDARY);
    out.push_str("--\r\n");
    out
}

/// At most this many parts are read (SEC-16): /serverkeygen has two.
const MAX_PARTS: usize = 16;

/// Splits a multipart body at `boundary`. Delimiter lines are `--boundary` (with optional
/// trailing white space) at the start of a line; the preamble before the first and the epilogue
/// after `--boundary--` are ignored; CRLF and bare LF are both accepted.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, MultipartError> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(err("boundary must be 1 to 70 characters (RFC 2046)"));
    }
    let text = std::str::from_utf8(body).map_err(|_| err("body is not text"))?;
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    let mut closed = false;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(rest) = line.strip_prefix(delim.as_str()) {
            let rest = rest.trim_end_matches([' ', '\t']);
            if rest.is_empty() || rest == "--" {
                if let Some(lines) = current.take() {
                    parts.push(parse_part(&lines)?);
                    if parts.len() > MAX_PARTS {
                        return Err(err("too many parts"));
                    }
                }
                if rest == "--" {
                    closed = true;
                    break;
                }
                current = Some(Vec::new());
                continue;
            }
        }
        if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    if !closed {
        return Err(err("no closing boundary"));
    }
    Ok(parts)
}

fn parse_part(lines: &[&str]) -> Result<Part, MultipartError> {
    let blank = lines
        .iter()
        .position(|l| l.is_empty())
        .ok_or_else(|| err("a part has no blank line after its headers"))?;
    let mut content_type = None;
    for h in &lines[..blank] {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| err("malformed part header"))?;
        if name.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_string());
        }
    }
    // RFC 2046 §5.1.1: a part without Content-Type is text/plain.
    let content_type = content_type.unwrap_or_else(|| "text/plain".into());
    let mut body = Vec::new();
    for l in &lines[blank + 1..] {
        body.extend_from_slice(l.as_bytes());
        body.push(b'\n');
    }
    Ok(Part { content_type, body })
}

/// The first part whose media type essence is `essence` and, when given, whose `smime-type`
/// parameter equals `smime_type` (case-insensitive).
pub fn find_part<'a>(
    parts: &'a [Part],
    essence: &str,
    smime_type: Option<&str>,
) -> Option<&'a Part> {
    parts.iter().find(|p| {
        crate::MediaType::parse(&p.content_type).is_some_and(|mt| {
            mt.essence.eq_ignore_ascii_case(essence)
                && smime_type.is_none_or(|s| {
                    mt.param("smime-type")
                        .is_some_and(|v| v.eq_ignore_ascii_case(s))
                })
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rfc7030_a4_response_vector() {
        let body = include_bytes!("../tests/vectors/a4-serverkeygen-response.multipart");
        let mt =
            crate::MediaType::parse("multipart/mixed ; boundary=estServerExampleBoundary").unwrap();
        let parts = parse(body, mt.param("boundary").unwrap()).unwrap();
        assert_eq!(parts.len(), 2);
        let key = find_part(&parts, "application/pkcs8", None).unwrap();
        let der = crate::decode_body(&key.body).unwrap();
        assert_eq!(der.len(), 1218);
        let certs = find_part(&parts, "application/pkcs7-mime", Some("certs-only")).unwrap();
        let p7 = crate::decode_body(&certs.body).unwrap();
        assert_eq!(crate::certs_only_decode(&p7).unwrap().len(), 1);
        // Bare LF works too.
        let lf: Vec<u8> = body.iter().copied().filter(|&b| b != b'\r').collect();
        assert_eq!(parse(&lf, "estServerExampleBoundary").unwrap(), parts);
    }

    #[test]
    fn round_trip_and_order_independence() {
        let body = encode(&[
            ("application/pkcs8", "QUJD\r\n"),
            ("application/pkcs7-mime; smime-type=certs-only", "REVG"),
        ]);
        let parts = parse(body.as_bytes(), BOUNDARY).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            crate::decode_body(&find_part(&parts, "application/pkcs8", None).unwrap().body)
                .unwrap(),
            b"ABC"
        );
        assert!(find_part(&parts, "application/pkcs7-mime", Some("CERTS-ONLY")).is_some());
        assert!(
            find_part(
                &parts,
                "application/pkcs7-mime",
                Some("server-generated-key")
            )
            .is_none()
        );
        let mt = crate::MediaType::parse(&content_type()).unwrap();
        assert_eq!(mt.param("boundary"), Some(BOUNDARY));
    }

    #[test]
    fn malformed_is_an_error_not_a_panic() {
        for b in [
            &b""[..],
            b"--x\r\n",
            b"--x\r\nContent-Type: a/b\r\nAAAA\r\n--x--",
            b"--x\r\nno colon\r\n\r\nAAAA\r\n--x--",
            b"\xff\xfe",
        ] {
            assert!(parse(b, "x").is_err(), "{b:?}");
        }
        assert!(parse(b"--x--", "").is_err());
        let many = "--x\r\n\r\nA\r\n".repeat(20) + "--x--";
        assert!(parse(many.as_bytes(), "x").is_err());
    }
}
