#![no_main]
//! OCSP requests (RFC 6960 §4.1) as the responder receives them: the DER decoder with its
//! limits (request count, nonce length, critical extensions), CertID matching against a CA
//! with every hash algorithm, and the GET form of Appendix A.1 (URL-encoded base64 in the
//! path) decoded then parsed.
use std::sync::OnceLock;

use der::{Decode, Encode};

fn ca() -> &'static x509_cert::Certificate {
    static CA: OnceLock<x509_cert::Certificate> = OnceLock::new();
    CA.get_or_init(|| {
        let pem = include_bytes!("../../crates/est-ca/tests/vectors/ocsp/ca.pem");
        let der = openssl::x509::X509::from_pem(pem)
            .and_then(|c| c.to_der())
            .unwrap_or_default();
        x509_cert::Certificate::from_der(&der).expect("the vector CA decodes")
    })
}

fn check(der: &[u8]) {
    if let Ok(req) = est_ca::parse_ocsp_request(der) {
        assert!(!req.cert_ids.is_empty() && req.cert_ids.len() <= est_ca::OCSP_MAX_REQUESTS);
        for id in &req.cert_ids {
            // A decoded CertID re-encodes to a CertID that decodes to itself.
            let again = id.to_der().expect("re-encode");
            assert_eq!(
                &est_asn1::ocsp::CertId::from_der(&again).expect("decode"),
                id
            );
            let _ = est_ca::cert_id_names_issuer(id, ca());
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(der) = est_proto::decode_ocsp_get_path(&format!("{}/{s}", est_proto::OCSP_PATH)) {
            check(&der);
        }
    }
});
