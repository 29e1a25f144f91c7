#![no_main]
//! PKCS#10 requests as the server receives them: structure, challengePassword, and the whole
//! verification path of the CA core (signature, key classification, SAN), the name checks
//! and the name policy.
use der::Decode;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(req) = x509_cert::request::CertReq::from_der(data) {
        let _ = est_proto::challenge_password(&req);
        // The RFC 5280 name checks and the label-by-label policy, on any names at all.
        if let Ok(names) = est_ca::RequestedNames::from_csr(&req) {
            let policy = est_ca::NamePolicy::new(vec![
                "*.a.example".into(),
                "**.b.example".into(),
                "dev-*-x.example".into(),
                "10.0.0.*".into(),
                "2001:db8::/32".into(),
                "*@a.example".into(),
                "https://*.a.example:*/*".into(),
                "urn:uuid:*".into(),
            ]);
            let _ = policy.check(&names);
        }
    }
    let _ = est_ca::VerifiedCsr::verify(data, false);
});
