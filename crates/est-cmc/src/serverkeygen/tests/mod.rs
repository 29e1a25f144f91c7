//! Tests of the server-side key generation draft: DER of every type ([`types`]), each SKGD
//! check ([`checks`]), and full seal → open round trips (ktri, kari, pwri, [`round_trip`]),
//! with OpenSSL as an independent reader. This module holds the small test PKI they share.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use der::{Any, Decode, Encode};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509, X509NameBuilder};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::name::Name;
use zeroize::Zeroizing;

use super::client::{
    ID_SKG_REQUEST, build_request, default_capabilities, placeholder_request, read_response,
};
use super::server::{
    AuthenticatedName, DeliveryPlan, ShroudKey, ShroudOwner, SkgRequest, bad_shared_secret,
    check_request_names, check_shroud_certificate, names_match, read_requests,
};
use super::*;
use crate::client::{RequestOptions, RequestSigner, SharedSecret, sign_request};
use crate::types::{
    BodyPartReference, CmcFailInfo, CmcStatus, OtherStatusInfo, PkiData, PkiResponse,
    TaggedAttribute,
};
use crate::{FullPkiRequest, RequestPolicy, ResponseBuilder};

// ---- a small test PKI -------------------------------------------------------------------

fn p256() -> PKey<Private> {
    let g = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&g).unwrap()).unwrap()
}

fn rsa() -> PKey<Private> {
    PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap()
}

struct Ca {
    key: PKey<Private>,
    cert: X509,
}

fn x509_name(cn: &str) -> openssl::x509::X509Name {
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_text("CN", cn).unwrap();
    n.build()
}

fn ca(cn: &str) -> Ca {
    let key = p256();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&x509_name(cn)).unwrap();
    b.set_issuer_name(&x509_name(cn)).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .digital_signature()
            .build()
            .unwrap(),
    )
    .unwrap();
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    Ca {
        key,
        cert: b.build(),
    }
}

/// Which KeyUsage a leaf gets.
#[derive(Clone, Copy)]
enum Ku {
    Encipherment,
    Agreement,
    SignatureOnly,
}

fn leaf<T: HasPublic>(ca: &Ca, cn: &str, key: &PKeyRef<T>, ku: Ku, serial: u32) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&x509_name(cn)).unwrap();
    b.set_issuer_name(ca.cert.subject_name()).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(10).unwrap())
        .unwrap();
    let mut k = KeyUsage::new();
    k.critical().digital_signature();
    match ku {
        Ku::Encipherment => {
            k.key_encipherment();
        }
        Ku::Agreement => {
            k.key_agreement();
        }
        Ku::SignatureOnly => {}
    }
    b.append_extension(k.build().unwrap()).unwrap();
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(Some(&ca.cert), None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(&ca.key, MessageDigest::sha256()).unwrap();
    b.build()
}

fn to_cert(x: &X509) -> Certificate {
    Certificate::from_der(&x.to_der().unwrap()).unwrap()
}

fn store(ca: &Ca) -> X509Store {
    let mut s = X509StoreBuilder::new().unwrap();
    s.add_cert(ca.cert.clone()).unwrap();
    s.build()
}

fn rust_name(cn: &str) -> Name {
    Name::from_der(&x509_name(cn).to_der().unwrap()).unwrap()
}

fn p256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: est_cms::oids::ID_EC_PUBLIC_KEY,
        parameters: Some(Any::encode_from(&est_cms::oids::SECP256R1).unwrap()),
    }
}

fn opts() -> RequestOptions {
    RequestOptions::random().unwrap()
}

/// A ServerKeyGenRequest PKIData for `cn`, wanting a P-256 key.
fn request_pki(
    oids: &SkgOids,
    cn: &str,
    shroud: &Shroud,
    identity: Option<SharedSecret>,
) -> PkiData {
    let mut o = opts();
    o.identity = identity;
    build_request(
        &o,
        oids,
        placeholder_request(rust_name(cn), p256_algorithm(), &[]).unwrap(),
        shroud,
        default_capabilities(oids, shroud),
    )
    .unwrap()
}

/// The PKIData with the ServerKeyGenRequest control replaced by `edit(request)`.
fn edited(
    oids: &SkgOids,
    pki: &PkiData,
    mut edit: impl FnMut(&mut ServerKeyGenRequest),
) -> PkiData {
    let mut pki = pki.clone();
    for c in pki.control_sequence.iter_mut() {
        if c.attr_type == oids.server_key_gen_request {
            let mut r: ServerKeyGenRequest = control_value(c).unwrap();
            edit(&mut r);
            *c = TaggedAttribute::single(c.body_part_id, c.attr_type.clone(), &r).unwrap();
        }
    }
    pki
}

fn only_request(pki: &PkiData, oids: &SkgOids) -> Result<SkgRequest, server::SkgFailure> {
    let mut v = read_requests(pki, oids).unwrap();
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn der_file(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl CLI");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `openssl cms -decrypt` of a DER EnvelopedData for the recipient certificate and key.
fn openssl_decrypt_for(d: &TempDir, enveloped: &[u8], cert: &X509, key: &PKey<Private>) -> Vec<u8> {
    let env_f = der_file(&d.0, "env.der", enveloped);
    let cert_f = der_file(&d.0, "client.pem", &cert.to_pem().unwrap());
    let key_f = der_file(&d.0, "client.key", &key.private_key_to_pem_pkcs8().unwrap());
    openssl(&[
        "cms", "-decrypt", "-inform", "DER", "-in", &env_f, "-recip", &cert_f, "-inkey", &key_f,
        "-binary",
    ])
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "est-cmc-skg-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

mod checks;
mod round_trip;
mod types;
