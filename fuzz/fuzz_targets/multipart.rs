#![no_main]
//! multipart/mixed bodies as the client receives them from /serverkeygen (SKG-16).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let boundary = "estuary-boundary-9f7c";
    if let Ok(parts) = est_proto::multipart::parse(data, boundary) {
        assert!(parts.len() <= 16);
        let _ = est_proto::multipart::find_part(&parts, "application/pkcs8", None);
        let _ = est_proto::multipart::find_part(&parts, "application/pkcs7-mime", Some("certs-only"));
    }
});
