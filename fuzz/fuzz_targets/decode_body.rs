#![no_main]
//! The base64 transfer decoding of every EST request body.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(d) = est_proto::decode_body(data) {
        assert!(d.len() <= data.len());
        let again = est_proto::decode_body(est_proto::encode_body(&d).as_bytes()).unwrap();
        assert_eq!(again, d);
    }
});
