//! Test PKI made with the openssl crate: a root, leaves of every key type, conversions.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]
use der::Decode;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509, X509NameBuilder};
use x509_cert::Certificate;

pub fn rsa() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}
pub fn ec(nid: Nid) -> PKey<Private> {
    PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap()).unwrap()
}
pub fn p256() -> PKey<Private> {
    ec(Nid::X9_62_PRIME256V1)
}
pub fn p384() -> PKey<Private> {
    ec(Nid::SECP384R1)
}
pub fn ed25519() -> PKey<Private> {
    PKey::generate_ed25519().unwrap()
}

fn name(cn: &str) -> openssl::x509::X509Name {
    let mut b = X509NameBuilder::new().unwrap();
    b.append_entry_by_text("CN", cn).unwrap();
    b.build()
}

/// A self-signed P-256 CA.
pub fn root(cn: &str) -> (PKey<Private>, X509) {
    let key = p256();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name(cn)).unwrap();
    b.set_issuer_name(&name(cn)).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .unwrap(),
    )
    .unwrap();
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (key, b.build())
}

/// An end-entity certificate for `key`, issued by the root, with a SKI extension.
pub fn leaf(root: &(PKey<Private>, X509), key: &PKey<Private>, cn: &str) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name(cn)).unwrap();
    b.set_issuer_name(root.1.subject_name()).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().build().unwrap())
        .unwrap();
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(Some(&root.1), None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(&root.0, MessageDigest::sha256()).unwrap();
    b.build()
}

pub fn to_cert(x: &X509) -> Certificate {
    Certificate::from_der(&x.to_der().unwrap()).unwrap()
}

pub fn store(roots: &[&X509]) -> X509Store {
    let mut b = X509StoreBuilder::new().unwrap();
    for r in roots {
        b.add_cert((*r).clone()).unwrap();
    }
    b.build()
}

pub fn ski_of(x: &X509) -> Vec<u8> {
    x.subject_key_id().unwrap().as_slice().to_vec()
}
