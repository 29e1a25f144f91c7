#![no_main]
//! EnvelopedData and AuthenticatedData as a server or client decrypts them: every recipient
//! kind against fixed secrets (the seeds in corpus/cms_decrypt use the same ones).
use est_cms::{RecipientSecret, decrypt, verify_authenticated};
use zeroize::Zeroizing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let secrets = [
        RecipientSecret::Password(Zeroizing::new(b"fuzz".to_vec())),
        RecipientSecret::Kek {
            key_id: b"fuzz".to_vec(),
            kek: Zeroizing::new((0u8..16).collect()),
        },
    ];
    for secret in &secrets {
        let _ = decrypt(data, secret);
        let _ = verify_authenticated(data, secret);
    }
});
