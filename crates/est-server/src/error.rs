use axum::response::{IntoResponse, Response};
use est_ca::CaError;
use http::{HeaderValue, StatusCode, header};

/// A failure answered to the client: status, a short human-readable reason (text/plain, EST-19)
/// and extra headers. Built once, at the edge, from domain errors.
#[derive(Debug)]
pub struct ServerError {
    pub status: StatusCode,
    pub reason: String,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ServerError {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }
}

/// EST-90: 400 malformed/POP/binding/subject mismatch (and names RFC 5280 forbids), 403 refused by policy, 500 CA error,
/// 503 + Retry-After when the store is unavailable. Internal details go to the log only.
impl From<CaError> for ServerError {
    fn from(e: CaError) -> Self {
        match &e {
            CaError::MalformedRequest(_)
            | CaError::InvalidName(_)
            | CaError::BadCsrSignature
            | CaError::KeyNotAllowed(_)
            | CaError::SubjectMismatch(_)
            | CaError::NoRenewalTarget(_)
            | CaError::KeyReuse
            | CaError::KeyDelivery(_)
            | CaError::Revocation(_)
            | CaError::Replayed => ServerError::bad_request(e.to_string()),
            CaError::NameNotAllowed(_) | CaError::NotAuthorized(_) => {
                ServerError::new(StatusCode::FORBIDDEN, e.to_string())
            }
            CaError::Store(inner) => {
                tracing::error!(error = %inner, "store failure");
                ServerError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the certificate store is unavailable; try again later",
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("10"))
            }
            _ => {
                tracing::error!(error = %e, "CA failure");
                ServerError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal CA error")
            }
        }
    }
}

impl IntoResponse for ServerError {
    /// An empty reason gives an empty body (a bare 401 challenge, see `handlers::authenticate`).
    fn into_response(self) -> Response {
        let mut body = self.reason;
        if !body.is_empty() {
            body.push('\n');
        }
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        for (k, v) in self.headers {
            h.append(k, v);
        }
        resp
    }
}
