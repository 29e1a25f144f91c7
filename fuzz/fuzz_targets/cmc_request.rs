#![no_main]
//! A /fullcmc body as the server reads it: ContentInfo(SignedData(PKIData)), its controls and
//! requests, the outer signature and every POP (est-cmc never panics on any input).
use est_cmc::{FullPkiRequest, RequestPolicy};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(req) = FullPkiRequest::parse_signed(data, RequestPolicy::default()) {
        let _ = req.controls.unsupported_failure();
        let _ = req.verify_identity_proof(b"0123456789abcdef");
        let _ = req.verify_pop_link(b"0123456789abcdef");
    }
});
