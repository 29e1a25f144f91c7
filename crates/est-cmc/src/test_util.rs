//! Test helpers shared by the unit tests of this crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use der::Decode;
use openssl::pkey::{PKey, Private};
use x509_cert::Certificate;

/// A fresh P-256 key and a self-signed certificate for it (CN=client, serial 7, valid a day),
/// with basicConstraints cA when `ca` and these EKU OIDs (or names OpenSSL knows) when given.
pub(crate) fn self_signed(ca: bool, eku: &[&str]) -> (PKey<Private>, Certificate) {
    use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage};
    let key = PKey::ec_gen("prime256v1").unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "client").unwrap();
    let name = name.build();
    let mut b = openssl::x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    let serial = openssl::bn::BigNum::from_u32(7)
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
    }
    if !eku.is_empty() {
        let mut e = ExtendedKeyUsage::new();
        for k in eku {
            e.other(k);
        }
        b.append_extension(e.build().unwrap()).unwrap();
    }
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let cert = Certificate::from_der(&b.build().to_der().unwrap()).unwrap();
    (key, cert)
}
