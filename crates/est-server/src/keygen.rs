//! `/serverkeygen` (RFC 7030 §4.4): the request is a PKCS#10 like /simpleenroll; the answer is
//! `multipart/mixed` with the private key (plain PKCS#8, or CMS EnvelopedData for the client's
//! own key) and the certificate.
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use est_ca::{DeliveryRequest, EnrollRequest, KeyGenRequest, KeyPart};
use est_proto::{KeyDelivery, Operation, multipart};
use http::{HeaderValue, StatusCode, header};
use zeroize::Zeroizing;

use crate::ConnInfo;
use crate::error::ServerError;
use crate::handlers::{CERTS_ONLY, CsrRequest, EstState, Label, read_csr};

const PKCS8: &str = "application/pkcs8";
const SERVER_GENERATED_KEY: &str = "application/pkcs7-mime; smime-type=server-generated-key";

pub(crate) async fn server_keygen(
    st: &EstState,
    label: &Label,
    conn: &ConnInfo,
    req: Request,
) -> Result<Response, ServerError> {
    // SKG-1: off unless the label enables it.
    let Some(policy) = label.cfg.server_keygen else {
        return Err(ServerError::new(
            StatusCode::NOT_IMPLEMENTED,
            "/serverkeygen is not enabled for this CA label",
        ));
    };
    // SKG-2/6/7: authenticated, the /simpleenroll format, channel binding checked; over TLS
    // only (there is no other listener).
    let CsrRequest { identity, der, csr } =
        read_csr(st, label, conn, req, Operation::ServerKeyGen, false).await?;
    let delivery = match est_proto::key_delivery(&csr)
        .map_err(|e| ServerError::bad_request(e.to_string()))?
    {
        KeyDelivery::Plain if policy.require_encryption => {
            return Err(ServerError::bad_request(
                "this CA label delivers generated keys encrypted only: include a DecryptKeyIdentifier or AsymmetricDecryptKeyIdentifier attribute",
            ));
        }
        KeyDelivery::Plain => DeliveryRequest::Plain,
        KeyDelivery::SymmetricKey(id) => DeliveryRequest::Symmetric(id),
        KeyDelivery::AsymmetricKey(id) => DeliveryRequest::Asymmetric(id),
    };
    let caps =
        est_proto::smime_capabilities(&csr).map_err(|e| ServerError::bad_request(e.to_string()))?;
    let peer = conn.peer.to_string();
    let delivered = st
        .ca
        .server_keygen(KeyGenRequest {
            enroll: EnrollRequest {
                domain: &label.cfg.domain,
                csr_der: &der,
                identity: &identity,
                renewal: None,
                origin: est_ca::Origin {
                    source: &peer,
                    label: &label.cfg.name,
                },
            },
            delivery,
            smime_capabilities: caps.as_deref(),
        })
        .await?;
    let p7 = est_proto::certs_only_encode_der(&[&delivered.issued.der]).map_err(|e| {
        ServerError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding response: {e}"),
        )
    })?;
    let (key_type, key_b64) = match &delivered.key {
        KeyPart::Pkcs8(der) => (PKCS8, Zeroizing::new(est_proto::encode_body(der))),
        KeyPart::Enveloped(der) => (
            SERVER_GENERATED_KEY,
            Zeroizing::new(est_proto::encode_body(der)),
        ),
    };
    let cert_b64 = est_proto::encode_body(&p7);
    // SKG-15/16: key part first, then the certificate part.
    let body = Zeroizing::new(multipart::encode(&[
        (key_type, key_b64.as_str()),
        (CERTS_ONLY, cert_b64.as_str()),
    ]));
    let mut r = Response::new(Body::from(Bytes::from_owner(ZeroizingBody(body))));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&multipart::content_type())
            .map_err(|_| ServerError::new(StatusCode::INTERNAL_SERVER_ERROR, "bad content type"))?,
    );
    Ok(r)
}

/// A response body that clears itself when the last reference to it is dropped, i.e. after
/// hyper has written it (SKG-28: a plain PKCS#8 key travels in it).
struct ZeroizingBody(Zeroizing<String>);

impl AsRef<[u8]> for ZeroizingBody {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}
