//! OCSP over HTTP (RFC 6960 Appendix A.1): where the responder is served, its media types,
//! and the GET form of a request (`/ocsp/` + the URL-encoded base64 of the DER request).
use crate::decode_body;

/// The responder's URL path. POST goes to it; GET appends `/` and the encoded request. It lives
/// beside EST, not under `/.well-known/est` (RFC 7030 reserves that for EST), like the CRLs,
/// and answers for every CA of the server: the CertID names the issuer.
pub const OCSP_PATH: &str = "/ocsp";

/// Media type of a DER OCSPRequest (RFC 6960 Appendix C.1).
pub const OCSP_REQUEST_MEDIA_TYPE: &str = "application/ocsp-request";
/// Media type of a DER OCSPResponse (RFC 6960 Appendix C.2).
pub const OCSP_RESPONSE_MEDIA_TYPE: &str = "application/ocsp-response";

/// Longest encoded request taken in a GET path: the 16 CertIDs est-ca accepts with SHA-512
/// hashes and a nonce fit in well under this.
pub const OCSP_GET_MAX_LEN: usize = 8192;

/// Whether `path` is the responder's: `/ocsp` itself or below it.
pub fn is_ocsp_path(path: &str) -> bool {
    path == OCSP_PATH
        || path
            .strip_prefix(OCSP_PATH)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Why a GET path holds no request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcspGetError {
    #[error("GET requests go to {OCSP_PATH}/<url-encoded base64 of the DER OCSPRequest>")]
    NoRequest,
    #[error("the encoded request is longer than {OCSP_GET_MAX_LEN} characters")]
    TooLong,
    #[error("bad percent-encoding in the request path")]
    Percent,
    #[error("the request path is not base64: {0}")]
    Base64(String),
}

/// The DER request of a GET path (RFC 6960 Appendix A.1): what follows `/ocsp/`,
/// percent-decoded (`%2F`, `%2B`, `%3D` as clients send them, `/` and `+` as others leave
/// them), then base64; also the URL-safe alphabet (`-`, `_`) and without padding, which some
/// clients produce.
pub fn decode_ocsp_get_path(path: &str) -> Result<Vec<u8>, OcspGetError> {
    let encoded = path
        .strip_prefix(OCSP_PATH)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|r| !r.is_empty())
        .ok_or(OcspGetError::NoRequest)?;
    if encoded.len() > OCSP_GET_MAX_LEN {
        return Err(OcspGetError::TooLong);
    }
    let mut b64 = Vec::with_capacity(encoded.len());
    let mut bytes = encoded.bytes();
    while let Some(b) = bytes.next() {
        let c = match b {
            b'%' => {
                let hi = bytes.next().and_then(hex_digit);
                let lo = bytes.next().and_then(hex_digit);
                match (hi, lo) {
                    (Some(h), Some(l)) => h << 4 | l,
                    _ => return Err(OcspGetError::Percent),
                }
            }
            other => other,
        };
        b64.push(match c {
            b'-' => b'+',
            b'_' => b'/',
            c => c,
        });
    }
    decode_body(&b64).map_err(|e| OcspGetError::Base64(e.to_string()))
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ocsp_paths() {
        assert!(is_ocsp_path("/ocsp"));
        assert!(is_ocsp_path("/ocsp/"));
        assert!(is_ocsp_path("/ocsp/MAo%3D"));
        assert!(!is_ocsp_path("/ocspx"));
        assert!(!is_ocsp_path("/.well-known/est/ocsp"));
        assert!(!is_ocsp_path("/crl/default.crl"));
    }

    #[test]
    fn get_paths_decode_in_every_spelling() {
        // base64 of ff fb ff: "//v/"; of fb ef be: "++++"; of 00: "AA==".
        for (path, want) in [
            ("/ocsp/%2F%2Fv%2F", vec![0xff, 0xfb, 0xff]),
            ("/ocsp//%2fv/", vec![0xff, 0xfb, 0xff]),
            ("/ocsp/__v_", vec![0xff, 0xfb, 0xff]),
            ("/ocsp/++++", vec![0xfb, 0xef, 0xbe]),
            ("/ocsp/%2B%2B%2b%2B", vec![0xfb, 0xef, 0xbe]),
            ("/ocsp/----", vec![0xfb, 0xef, 0xbe]),
            ("/ocsp/AA%3D%3D", vec![0x00]),
            ("/ocsp/AA==", vec![0x00]),
            ("/ocsp/AA", vec![0x00]),
        ] {
            assert_eq!(decode_ocsp_get_path(path).unwrap(), want, "{path}");
        }
    }

    #[test]
    fn bad_get_paths_are_refused() {
        for (path, err) in [
            ("/ocsp", OcspGetError::NoRequest),
            ("/ocsp/", OcspGetError::NoRequest),
            ("/crl/x", OcspGetError::NoRequest),
            ("/ocsp/AA%3", OcspGetError::Percent),
            ("/ocsp/AA%zz", OcspGetError::Percent),
            ("/ocsp/%", OcspGetError::Percent),
        ] {
            assert_eq!(decode_ocsp_get_path(path), Err(err), "{path}");
        }
        assert!(matches!(
            decode_ocsp_get_path("/ocsp/A!B"),
            Err(OcspGetError::Base64(_))
        ));
        let long = format!("/ocsp/{}", "A".repeat(OCSP_GET_MAX_LEN + 4));
        assert_eq!(decode_ocsp_get_path(&long), Err(OcspGetError::TooLong));
    }
}
