//! The OCSP responder over HTTP (RFC 6960 Appendix A.1): `POST /ocsp` with a DER
//! `application/ocsp-request` body, or `GET /ocsp/<url-encoded base64 of the DER request>`;
//! answered with a DER `application/ocsp-response`. No authentication: OCSP answers are public
//! and signed. Every request that reaches the responder gets an OCSPResponse, with
//! malformedRequest when it cannot be read (RFC 6960 §2.3), also a GET path that is not
//! base64; only a wrong method (405), media type (415) or an oversized body (413) get an HTTP
//! error.
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use est_ca::OcspAnswer;
use est_proto::{OCSP_REQUEST_MEDIA_TYPE, OCSP_RESPONSE_MEDIA_TYPE};
use http::{HeaderValue, Method, StatusCode, header};

use crate::ServerError;
use crate::handlers::{EstState, read_body};

pub(crate) async fn ocsp(st: &EstState, req: Request) -> Result<Response, ServerError> {
    let method = req.method().clone();
    let (der, get) = if method == Method::GET || method == Method::HEAD {
        match est_proto::decode_ocsp_get_path(req.uri().path()) {
            Ok(der) => (der, true),
            Err(e) => {
                tracing::debug!(error = %e, "OCSP GET without a decodable request");
                return Ok(answer(
                    &OcspAnswer::unsuccessful(est_ca::OcspResponseStatus::MalformedRequest),
                    false,
                ));
            }
        }
    } else if method == Method::POST {
        if req.uri().path() != est_proto::OCSP_PATH {
            return Err(ServerError::new(
                StatusCode::NOT_FOUND,
                format!("POST OCSP requests to {}", est_proto::OCSP_PATH),
            ));
        }
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media = ct.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case(OCSP_REQUEST_MEDIA_TYPE) {
            return Err(ServerError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Type must be {OCSP_REQUEST_MEDIA_TYPE}, got \"{ct}\""),
            ));
        }
        (read_body(st, req).await?.to_vec(), false)
    } else {
        return Err(ServerError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET or POST for OCSP (RFC 6960 Appendix A.1)",
        )
        .with_header(header::ALLOW, HeaderValue::from_static("GET, POST")));
    };
    let a = st
        .ca
        .ocsp(&der)
        .await
        .ok_or_else(|| ServerError::new(StatusCode::NOT_FOUND, "no OCSP responder here"))?;
    Ok(answer(&a, get))
}

/// 200 with the OCSPResponse. A GET answer without a nonce may be cached until its
/// nextUpdate (RFC 5019 §6.2: max-age, public, no-transform, must-revalidate); anything else
/// is not to be stored.
fn answer(a: &OcspAnswer, get: bool) -> Response {
    let mut r = Response::new(Body::from(Bytes::from(a.der.clone())));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(OCSP_RESPONSE_MEDIA_TYPE),
    );
    let max_age = a
        .next_update
        .filter(|_| get && !a.has_nonce)
        .and_then(|t| t.duration_since(SystemTime::now()).ok())
        .map(|d| d.as_secs());
    let cache = match max_age {
        Some(secs) if secs > 0 => HeaderValue::from_str(&format!(
            "max-age={secs}, public, no-transform, must-revalidate"
        ))
        .unwrap_or(HeaderValue::from_static("no-store")),
        _ => HeaderValue::from_static("no-store"),
    };
    h.insert(header::CACHE_CONTROL, cache);
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use est_ca::OcspResponseStatus;

    use super::*;

    fn successful(next_in: Duration, has_nonce: bool) -> OcspAnswer {
        let now = SystemTime::now();
        OcspAnswer {
            der: vec![0x30, 0x00],
            status: OcspResponseStatus::Successful,
            produced_at: Some(now),
            next_update: Some(now + next_in),
            has_nonce,
        }
    }

    fn cache_control(r: &Response) -> String {
        r.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn only_get_answers_without_a_nonce_are_cacheable_until_next_update() {
        let r = answer(&successful(Duration::from_secs(3600), false), true);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/ocsp-response"
        );
        let cc = cache_control(&r);
        let secs: u64 = cc
            .strip_prefix("max-age=")
            .and_then(|s| s.split(',').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!((3590..=3600).contains(&secs), "{cc}");
        assert!(
            cc.ends_with("public, no-transform, must-revalidate"),
            "{cc}"
        );
        for (a, get) in [
            (successful(Duration::from_secs(3600), true), true),
            (successful(Duration::from_secs(3600), false), false),
            (successful(Duration::ZERO, false), true),
            (
                OcspAnswer::unsuccessful(OcspResponseStatus::MalformedRequest),
                true,
            ),
        ] {
            assert_eq!(cache_control(&answer(&a, get)), "no-store", "{a:?} {get}");
        }
    }
}
