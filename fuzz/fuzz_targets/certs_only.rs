#![no_main]
//! certs-only responses (/cacerts, enrollment responses) as a client decodes them.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(certs) = est_proto::certs_only_decode(data) {
        let _ = est_proto::certs_only_encode(&certs);
    }
});
