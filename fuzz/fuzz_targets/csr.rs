#![no_main]
//! PKCS#10 requests as the server receives them: structure, challengePassword, and the whole
//! verification path of the CA core (signature, key classification, SAN).
use der::Decode;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(req) = x509_cert::request::CertReq::from_der(data) {
        let _ = est_proto::challenge_password(&req);
    }
    let _ = est_ca::VerifiedCsr::verify(data, false);
});
