#![no_main]
//! SMIMECapabilities from a client's CSR: decode, re-encode byte-equal, choose algorithms.
use der::Encode;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(caps) = est_cms::decode_smime_capabilities(data) {
        let enc = caps.to_der().unwrap();
        assert_eq!(est_cms::decode_smime_capabilities(&enc).unwrap(), caps);
        let _ = est_cms::pick_content_encryption(Some(&caps));
        let _ = est_cms::pick_key_wrap(Some(&caps));
        let _ = est_cms::pick_key_transport(Some(&caps));
    }
});
