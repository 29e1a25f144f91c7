#![no_main]
//! CsrAttrs (what a client decodes from /csrattrs): decode, and re-encode what decoded.
use der::{Decode, Encode};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(a) = est_asn1::CsrAttrs::from_der(data) {
        let enc = a.to_der().unwrap();
        assert_eq!(est_asn1::CsrAttrs::from_der(&enc).unwrap(), a);
    }
});
