#![no_main]
//! HTTP Digest headers (RFC 7616), both directions: `Authorization: Digest` as the server
//! parses it (and the response computation on what parses), and `WWW-Authenticate`
//! challenges as the client parses them (and the answer it computes).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(c) = est_proto::digest::parse_authorization(data) {
        let _ = est_proto::digest::response_matches(&c, "00", "POST");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for c in est_proto::digest::parse_challenges(text.split('\n')) {
            let _ = est_proto::digest::authorization(&c, "u", b"p", "POST", "/x", 1, "cn");
        }
    }
});
