#![no_main]
//! Content-Type headers.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = est_proto::MediaType::parse(s);
        let _ = est_proto::content_type_matches(est_proto::Operation::SimpleEnroll, s);
        let _ = est_proto::content_type_matches(est_proto::Operation::FullCmc, s);
    }
});
