#![no_main]
//! Request paths and labels.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = est_proto::parse_path(s) {
            if let Some(l) = p.label {
                assert!(est_proto::validate_label(&l).is_ok());
            }
        }
    }
});
