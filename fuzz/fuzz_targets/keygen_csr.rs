#![no_main]
//! /serverkeygen requests: the key-type hint of the CA core and the key-delivery attributes
//! (DecryptKeyIdentifier, AsymmetricDecryptKeyIdentifier, SMIMECapabilities).
use der::Decode;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(req) = x509_cert::request::CertReq::from_der(data) {
        let _ = est_proto::key_delivery(&req);
        if let Ok(Some(caps)) = est_proto::smime_capabilities(&req) {
            let _ = est_cms::decode_smime_capabilities(&caps);
        }
    }
    if let Ok(csr) = est_ca::KeyGenCsr::parse(data) {
        let _ = csr.key_type();
    }
});
