#![no_main]
//! SignedData as a server (CMC) or client (server-side key generation) verifies it.
use est_cms::{VerifyOptions, verify};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let store = match openssl::x509::store::X509StoreBuilder::new() {
        Ok(b) => b.build(),
        Err(_) => return,
    };
    let sig_only = VerifyOptions {
        skip_chain_validation: true,
        ..Default::default()
    };
    let _ = verify(data, &store, &sig_only);
    let _ = verify(data, &store, &VerifyOptions::default());
});
