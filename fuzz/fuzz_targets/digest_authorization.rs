#![no_main]
//! `Authorization: Digest` headers (RFC 7616), and the response computation on what parses.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(c) = est_server::digest::parse_authorization(data) {
        let _ = est_server::digest::response_matches(&c, "00", "POST");
    }
});
