//! Tests of the server-side key generation draft: DER of every type, each SKGD check, and
//! full seal → open round trips (ktri, kari, pwri), with OpenSSL as an independent reader.
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
    AuthenticatedName, DeliveryPlan, ShroudKey, SkgRequest, bad_shared_secret, check_request_names,
    check_shroud_certificate, names_match, read_requests,
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

// ---- OIDs and types ----------------------------------------------------------------------

#[test]
fn default_oids_are_under_the_estuary_arc() {
    let o = SkgOids::default();
    let a = SkgOids::ESTUARY_ARC;
    assert_eq!(o.server_key_gen_request.to_string(), format!("{a}.1.1"));
    assert_eq!(o.server_key_gen_response.to_string(), format!("{a}.1.2"));
    assert_eq!(o.shroud_with_public_key.to_string(), format!("{a}.2.1"));
    assert_eq!(o.shroud_with_shared_secret.to_string(), format!("{a}.2.2"));
    assert_eq!(o.cet_server_key_gen.to_string(), format!("{a}.3.1"));
    assert_eq!(SkgOids::under_arc(a).unwrap(), o);
    let other = SkgOids::under_arc("1.3.6.1.4.1.99999.7").unwrap();
    assert_eq!(
        other.cet_server_key_gen.to_string(),
        "1.3.6.1.4.1.99999.7.3.1"
    );
    assert!(SkgOids::under_arc("x").is_err());
    let dup = o.server_key_gen_request.clone();
    assert!(
        SkgOids::new(
            dup.clone(),
            dup,
            o.shroud_with_public_key.clone(),
            o.shroud_with_shared_secret.clone(),
            o.cet_server_key_gen.clone()
        )
        .is_err()
    );
}

/// EXPLICIT tagging (§2.14 item 9): certIdentifier is [1] around the SignerIdentifier CHOICE
/// (here the SEQUENCE of issuerAndSerialNumber, or the [0] of a subjectKeyIdentifier), bareKey
/// is [2] around its SEQUENCE.
#[test]
fn shroud_with_public_key_tags_are_explicit() {
    let ca = ca("Tag CA");
    let c = to_cert(&ca.cert);
    let ias = ShroudWithPublicKey::CertIdentifier(SignerIdentifier::IssuerAndSerialNumber(
        est_cms::issuer_and_serial(&c),
    ));
    let d = ias.to_der().unwrap();
    assert_eq!((d[0], d[2]), (0xa1, 0x30), "{d:02x?}");
    let ski = ShroudWithPublicKey::CertIdentifier(SignerIdentifier::SubjectKeyIdentifier(
        x509_cert::ext::pkix::SubjectKeyIdentifier(
            der::asn1::OctetString::new(vec![7; 20]).unwrap(),
        ),
    ));
    let d2 = ski.to_der().unwrap();
    assert_eq!((d2[0], d2[2]), (0xa1, 0x80), "{d2:02x?}");
    let bare = ShroudWithPublicKey::BareKey(BareKey {
        public_key: c.tbs_certificate().subject_public_key_info().clone(),
        ski: x509_cert::ext::pkix::SubjectKeyIdentifier(
            der::asn1::OctetString::new(vec![1, 2, 3]).unwrap(),
        ),
    });
    let d3 = bare.to_der().unwrap();
    assert_eq!((d3[0], d3[2]), (0xa2, 0x30), "{d3:02x?}");
    let whole = ShroudWithPublicKey::Certificate(c);
    for v in [ias, ski, bare, whole] {
        let der = v.to_der().unwrap();
        let back = ShroudWithPublicKey::from_der(&der).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.to_der().unwrap(), der);
    }
}

#[test]
fn request_and_response_types_round_trip_byte_equal() {
    let oids = SkgOids::default();
    let shroud = Shroud::SharedSecret("secret-7".into());
    let pki = request_pki(&oids, "dev.example", &shroud, None);
    let der = pki.to_der().unwrap();
    let back = PkiData::from_der(&der).unwrap();
    assert_eq!(back, pki);
    assert_eq!(back.to_der().unwrap(), der);
    let c = back
        .control_sequence
        .iter()
        .find(|c| c.attr_type == oids.server_key_gen_request)
        .unwrap();
    assert_eq!(c.body_part_id, ID_SKG_REQUEST);
    let r: ServerKeyGenRequest = control_value(c).unwrap();
    // SKGD-9: always encoded by our builder; archiveKey FALSE is encoded (not the default).
    assert!(r.alg_capabilities.is_some());
    assert!(!r.archive_key);
    let r_der = r.to_der().unwrap();
    assert_eq!(&r_der[r_der.len() - 3..], &[0x01, 0x01, 0x00]);
    // archiveKey TRUE is the DEFAULT and so omitted; absent algCapabilities decodes.
    let mut r2 = r.clone();
    r2.archive_key = true;
    r2.alg_capabilities = None;
    let d2 = r2.to_der().unwrap();
    assert!(d2.len() < r_der.len());
    let back2 = ServerKeyGenRequest::from_der(&d2).unwrap();
    assert!(back2.archive_key && back2.alg_capabilities.is_none());

    let ca = ca("Resp CA");
    let resp = ServerKeyGenResponse {
        cms_body_part_id: 9,
        request_body_part_id: ID_SKG_REQUEST,
        signer_identifier: SignerIdentifier::IssuerAndSerialNumber(est_cms::issuer_and_serial(
            &to_cert(&ca.cert),
        )),
    };
    let d = resp.to_der().unwrap();
    assert_eq!(ServerKeyGenResponse::from_der(&d).unwrap(), resp);

    let code = SkgErrorCode::BAD_SHARED_SECRET;
    let ext = code.extended_fail_info(&oids).unwrap();
    assert_eq!(
        ext.fail_info_value.to_der().unwrap(),
        vec![0x02, 0x01, 0x03]
    );
    assert_eq!(SkgErrorCode::from_extended(&ext, &oids), Some(code));
    assert_eq!(
        SkgErrorCode::from_extended(&ext, &SkgOids::under_arc("1.2.3").unwrap()),
        None
    );
    assert_eq!(code.name(), "badSharedSecret");
}

/// The request as an independent decoder sees it: `openssl asn1parse` shows the wide control
/// OID, id-alg-noSignature and the shroud OID.
#[test]
fn openssl_asn1parse_reads_the_request() {
    let oids = SkgOids::default();
    let pki = request_pki(
        &oids,
        "dev.example",
        &Shroud::SharedSecret("s1".into()),
        None,
    );
    let d = TempDir::new("asn1");
    let f = der_file(&d.0, "pki.der", &pki.to_der().unwrap());
    let dump = String::from_utf8(openssl(&["asn1parse", "-inform", "DER", "-in", &f])).unwrap();
    let a = SkgOids::ESTUARY_ARC;
    assert!(dump.contains(&format!(":{a}.1.1")), "{dump}");
    assert!(dump.contains(&format!(":{a}.2.2")), "{dump}");
    assert!(dump.contains(":id-alg-noSignature"), "{dump}");
    assert!(
        dump.contains("id-ecPublicKey") && dump.contains("prime256v1"),
        "{dump}"
    );
    assert!(dump.contains(":s1"), "{dump}");
}

// ---- server checks -----------------------------------------------------------------------

#[test]
fn no_control_means_no_request() {
    let pki = PkiData::default();
    assert!(read_requests(&pki, &SkgOids::default()).unwrap().is_empty());
}

#[test]
fn skgd1_only_controls() {
    let oids = SkgOids::default();
    let mut pki = request_pki(&oids, "a", &Shroud::SharedSecret("s".into()), None);
    pki.other_msg_sequence.push(crate::types::OtherMsg {
        body_part_id: 99,
        other_msg_type: crate::oids::REG_INFO.into(),
        other_msg_value: Any::encode_from(&der::asn1::Null).unwrap(),
    });
    let f = read_requests(&pki, &oids).unwrap_err();
    assert_eq!(f.fail_info, CmcFailInfo::BAD_REQUEST);
    assert!(f.reason.contains("SKGD-1"), "{}", f.reason);
}

#[test]
fn skgd2_body_part_id_zero() {
    let oids = SkgOids::default();
    let pki = request_pki(&oids, "a", &Shroud::SharedSecret("s".into()), None);
    let bad = edited(&oids, &pki, |r| {
        if let crate::TaggedRequest::Tcr(t) = &mut r.certificate_request {
            t.body_part_id = 4;
        }
    });
    let f = only_request(&bad, &oids).unwrap_err();
    assert_eq!(f.failure.fail_info, CmcFailInfo::BAD_REQUEST);
    assert_eq!(
        f.failure.body_list,
        vec![BodyPartReference::Id(ID_SKG_REQUEST)]
    );
    assert!(f.failure.reason.contains("SKGD-2"));
}

/// SKGD-3 (wanted algorithm from a zero-length SPKI) and SKGD-5 (id-alg-noSignature, no POP).
#[test]
fn skgd3_and_skgd5_placeholder_request_is_read_without_pop() {
    let oids = SkgOids::default();
    let pki = request_pki(
        &oids,
        "dev.example",
        &Shroud::SharedSecret("s".into()),
        None,
    );
    let r = only_request(&pki, &oids).unwrap();
    assert_eq!(r.wanted_algorithm, p256_algorithm());
    assert!(r.placeholder_key);
    assert_eq!(r.certificate_request.subject, rust_name("dev.example"));
    assert_eq!(r.body_part_id, ID_SKG_REQUEST);
    // A CSR signed with a real key but a wrong signature is accepted too (no POP, SKGD-5).
    let key = p256();
    let spki =
        spki::SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der().unwrap()).unwrap();
    let bad_sig = edited(&oids, &pki, |r| {
        if let crate::TaggedRequest::Tcr(t) = &mut r.certificate_request {
            t.certification_request.info.public_key = spki.clone();
            t.certification_request.algorithm = AlgorithmIdentifierOwned {
                oid: est_cms::oids::ECDSA_WITH_SHA256,
                parameters: None,
            };
            t.certification_request.signature =
                der::asn1::BitString::from_bytes(&[0x30, 0x00]).unwrap();
        }
    });
    let r2 = only_request(&bad_sig, &oids).unwrap();
    assert!(!r2.placeholder_key);
}

/// SKGD-5 with CRMF: no popo at all is accepted; certReqId 0 (SKGD-2).
#[test]
fn skgd5_crmf_without_popo() {
    let oids = SkgOids::default();
    let pki = request_pki(
        &oids,
        "dev.example",
        &Shroud::SharedSecret("s".into()),
        None,
    );
    let crmf = edited(&oids, &pki, |r| {
        let spki = match &r.certificate_request {
            crate::TaggedRequest::Tcr(t) => t.certification_request.info.public_key.clone(),
            _ => unreachable!(),
        };
        let cert_req = crate::crmf::CertRequest {
            cert_req_id: der::asn1::Int::new(&[0]).unwrap(),
            cert_template: crate::crmf::CertTemplate {
                subject: Some(rust_name("dev.example")),
                public_key: Some(spki),
                ..Default::default()
            },
            controls: None,
        };
        r.certificate_request =
            crate::TaggedRequest::Crm(crate::crmf::CertReqMsg::new(cert_req, None, None).unwrap());
    });
    let r = only_request(&crmf, &oids).unwrap();
    assert_eq!(r.certificate_request.form, crate::RequestForm::Crmf);
    assert!(r.placeholder_key);
}

#[test]
fn skgd7_unknown_shroud_method_is_bad_alg() {
    let oids = SkgOids::default();
    let pki = request_pki(&oids, "a", &Shroud::SharedSecret("s".into()), None);
    let bad = edited(&oids, &pki, |r| {
        r.shroud_method.algorithm = oids.shroud_with_public_key.child(7)
    });
    let f = only_request(&bad, &oids).unwrap_err();
    assert_eq!(f.failure.fail_info, CmcFailInfo::BAD_ALG);
    assert!(f.failure.reason.contains("SKGD-7"));
    // SKGD-6: parameters are mandatory.
    let none = edited(&oids, &pki, |r| r.shroud_method.parameters = None);
    let f = only_request(&none, &oids).unwrap_err();
    assert_eq!(f.failure.fail_info, CmcFailInfo::BAD_REQUEST);
    // Parameters of the wrong type for the method.
    let wrong = edited(&oids, &pki, |r| {
        r.shroud_method.algorithm = oids.shroud_with_public_key.clone()
    });
    assert_eq!(
        only_request(&wrong, &oids).unwrap_err().failure.fail_info,
        CmcFailInfo::BAD_REQUEST
    );
}

/// SKGD-10, SKGD-25: archiveKey TRUE (and absent, its default) is archiveNotSupported, sent
/// as an extendedFailInfo plus a badRequest failInfo for the same body part (CMC-41).
#[test]
fn skgd10_archive_key_is_archive_not_supported() {
    let oids = SkgOids::default();
    let pki = request_pki(&oids, "a", &Shroud::SharedSecret("s".into()), None);
    let archive = edited(&oids, &pki, |r| r.archive_key = true);
    let f = only_request(&archive, &oids).unwrap_err();
    assert_eq!(f.code, Some(SkgErrorCode::ARCHIVE_NOT_SUPPORTED));
    assert_eq!(f.failure.fail_info, CmcFailInfo::BAD_REQUEST);

    let mut b = ResponseBuilder::new(&crate::Controls::default()).unwrap();
    f.report(&mut b, &oids).unwrap();
    let resp = PkiResponse::from_der(&b.to_der().unwrap()).unwrap();
    let statuses: Vec<crate::CmcStatusInfoV2> = resp
        .control_sequence
        .iter()
        .map(|c| c.attr_values.iter().next().unwrap().decode_as().unwrap())
        .collect();
    assert_eq!(statuses.len(), 2);
    for s in &statuses {
        assert_eq!(s.status, CmcStatus::FAILED);
        assert_eq!(s.body_list, vec![BodyPartReference::Id(ID_SKG_REQUEST)]);
    }
    match (&statuses[0].other_info, &statuses[1].other_info) {
        (Some(OtherStatusInfo::ExtendedFailInfo(e)), Some(OtherStatusInfo::FailInfo(fi))) => {
            assert_eq!(e.fail_info_oid, oids.cet_server_key_gen);
            assert_eq!(
                SkgErrorCode::from_extended(e, &oids),
                Some(SkgErrorCode::ARCHIVE_NOT_SUPPORTED)
            );
            assert_eq!(*fi, CmcFailInfo::BAD_REQUEST);
        }
        other => panic!("{other:?}"),
    }
}

/// SKGD-8: no supported content-encryption, key-transport/agreement or (SKGD-15) password
/// algorithms in algCapabilities is badAlg; absent algCapabilities uses defaults (SKGD-9).
#[test]
fn skgd8_capabilities_decide_the_algorithms() {
    let oids = SkgOids::default();
    let pki = request_pki(&oids, "a", &Shroud::SharedSecret("s".into()), None);
    let cap = |o: const_oid::ObjectIdentifier| SkgCapability {
        capability_id: o.into(),
        parameters: None,
    };
    let no_aes = edited(&oids, &pki, |r| {
        r.alg_capabilities = Some(vec![
            cap(const_oid::ObjectIdentifier::new_unwrap(
                "1.2.840.113549.3.7",
            )),
            cap(est_cms::oids::ID_PBKDF2),
            cap(est_cms::oids::ID_ALG_PWRI_KEK),
        ])
    });
    let f = only_request(&no_aes, &oids).unwrap_err();
    assert_eq!(f.failure.fail_info, CmcFailInfo::BAD_ALG);
    assert!(f.failure.reason.contains("SKGD-8"));
    let no_kdf = edited(&oids, &pki, |r| {
        r.alg_capabilities = Some(vec![cap(est_cms::oids::AES128_CBC)])
    });
    let f = only_request(&no_kdf, &oids).unwrap_err();
    assert_eq!(f.failure.fail_info, CmcFailInfo::BAD_ALG);
    assert!(f.failure.reason.contains("SKGD-15"));
    // The client's order decides: AES-128 first.
    let aes128 = edited(&oids, &pki, |r| {
        r.alg_capabilities = Some(vec![
            cap(est_cms::oids::AES128_CBC),
            cap(est_cms::oids::ID_PBKDF2),
            cap(est_cms::oids::ID_ALG_PWRI_KEK),
            cap(est_cms::oids::AES256_CBC),
        ])
    });
    let r = only_request(&aes128, &oids).unwrap();
    assert_eq!(r.content_encryption, est_cms::ContentEncryption::Aes128Cbc);
    let absent = edited(&oids, &pki, |r| r.alg_capabilities = None);
    let r = only_request(&absent, &oids).unwrap();
    assert_eq!(r.content_encryption, est_cms::ContentEncryption::Aes256Cbc);
    assert!(r.capabilities.is_none());

    // A public-key shroud to an RSA key with only ECDH listed: badAlg when planning.
    let key = rsa();
    let ca = ca("Caps CA");
    let cert = to_cert(&leaf(&ca, "a", &key, Ku::Encipherment, 5));
    let pk = Shroud::PublicKey(ShroudWithPublicKey::Certificate(cert));
    let pki = request_pki(&oids, "a", &pk, None);
    let ecdh_only = edited(&oids, &pki, |r| {
        r.alg_capabilities = Some(vec![
            cap(est_cms::oids::AES256_CBC),
            cap(est_cms::oids::DH_SINGLE_PASS_STD_DH_SHA256KDF),
        ])
    });
    let r = only_request(&ecdh_only, &oids).unwrap();
    let sk = r.shroud_key(&[]).unwrap();
    let f = DeliveryPlan::new(&r, &sk, None).unwrap_err();
    assert_eq!(f.failure.fail_info, CmcFailInfo::BAD_ALG);
}

/// SKGD-16: the request's subject must be the authenticated one (ChangeSubjectName for
/// another); a mismatch is badIdentity.
#[test]
fn skgd16_names_must_match_the_authenticated_identity() {
    let oids = SkgOids::default();
    let pki = request_pki(
        &oids,
        "dev.example",
        &Shroud::SharedSecret("s".into()),
        None,
    );
    let r = only_request(&pki, &oids).unwrap();
    let ok = rust_name("dev.example");
    check_request_names(
        &r,
        AuthenticatedName {
            subject: &ok,
            san: None,
        },
    )
    .unwrap();
    let other = rust_name("someone.else");
    let f = check_request_names(
        &r,
        AuthenticatedName {
            subject: &other,
            san: None,
        },
    )
    .unwrap_err();
    assert_eq!(f.fail_info, CmcFailInfo::BAD_IDENTITY);
    assert!(f.reason.contains("SKGD-16"));
}

/// SKGD-12, SKGD-13: the protecting certificate validates, is the client's, and can encrypt.
#[test]
fn skgd12_skgd13_shroud_certificate_checks() {
    let oids = SkgOids::default();
    let ca1 = ca("Good CA");
    let key = rsa();
    let good = to_cert(&leaf(&ca1, "dev.example", &key, Ku::Encipherment, 7));
    let sign_only = to_cert(&leaf(&ca1, "dev.example", &key, Ku::SignatureOnly, 8));
    let foreign_ca = ca("Other CA");
    let foreign = to_cert(&leaf(&foreign_ca, "dev.example", &key, Ku::Encipherment, 9));
    let trust = store(&ca1);
    let pki = request_pki(
        &oids,
        "dev.example",
        &Shroud::PublicKey(ShroudWithPublicKey::Certificate(good.clone())),
        None,
    );
    let r = only_request(&pki, &oids).unwrap();
    let me = rust_name("dev.example");
    check_shroud_certificate(&r, &good, &[], &trust, &me).unwrap();
    for (cert, what) in [(&sign_only, "SKGD-13"), (&foreign, "SKGD-12")] {
        let f = check_shroud_certificate(&r, cert, &[], &trust, &me).unwrap_err();
        assert_eq!(f.code, Some(SkgErrorCode::BAD_CERTIFICATE), "{what}");
        assert!(f.failure.reason.contains(what), "{}", f.failure.reason);
    }
    let f = check_shroud_certificate(&r, &good, &[], &trust, &rust_name("x")).unwrap_err();
    assert_eq!(f.code, Some(SkgErrorCode::BAD_CERTIFICATE));
    assert!(names_match(&good, &sign_only));
    assert!(!names_match(&good, &to_cert(&ca1.cert)));
    // certIdentifier must name a certificate of the request's SignedData.
    let by_id = Shroud::PublicKey(ShroudWithPublicKey::CertIdentifier(
        SignerIdentifier::IssuerAndSerialNumber(est_cms::issuer_and_serial(&good)),
    ));
    let r = only_request(&request_pki(&oids, "dev.example", &by_id, None), &oids).unwrap();
    assert!(matches!(
        r.shroud_key(std::slice::from_ref(&good)).unwrap(),
        ShroudKey::Certificate(c) if c == good
    ));
    let f = r.shroud_key(&[sign_only]).unwrap_err();
    assert_eq!(f.code, Some(SkgErrorCode::BAD_CERTIFICATE));
}

#[test]
fn skgd15_missing_or_foreign_secret_is_bad_shared_secret() {
    let oids = SkgOids::default();
    let r = only_request(
        &request_pki(&oids, "a", &Shroud::SharedSecret("s".into()), None),
        &oids,
    )
    .unwrap();
    let k = r.shroud_key(&[]).unwrap();
    let f = DeliveryPlan::new(&r, &k, None).unwrap_err();
    assert_eq!(f.code, Some(SkgErrorCode::BAD_SHARED_SECRET));
    assert_eq!(bad_shared_secret(&r), f);
}

// ---- full round trips --------------------------------------------------------------------

/// The server half for a request already authenticated: read, plan, generate P-256, issue,
/// seal, respond (signed by the CA, carrying the issued certificate). Returns the response
/// DER and the EnvelopedData.
fn serve(
    pki: &PkiData,
    controls: &crate::Controls,
    pool: &[Certificate],
    ca: &Ca,
    secret: Option<Zeroizing<Vec<u8>>>,
) -> (Vec<u8>, Vec<u8>, PKey<Private>) {
    let oids = SkgOids::default();
    let r = only_request(pki, &oids).unwrap();
    let shroud_key = r.shroud_key(pool).unwrap();
    let plan = DeliveryPlan::new(&r, &shroud_key, secret).unwrap();
    assert_eq!(r.wanted_algorithm, p256_algorithm());
    let generated = p256();
    let issued = to_cert(&leaf(ca, "dev.example", &generated, Ku::SignatureOnly, 100));
    let generator = est_cms::OpensslSigner::new(ca.key.clone(), to_cert(&ca.cert)).unwrap();
    let enveloped = plan.seal(&generated, &generator, &[]).unwrap();
    let mut b = ResponseBuilder::new(controls).unwrap();
    plan.add_to_response(&mut b, &oids, &enveloped, &issued)
        .unwrap();
    b.success(&[r.body_part_id]).unwrap();
    assert!(!b.simple_suffices());
    let response = est_cms::sign(
        crate::oids::CT_PKI_RESPONSE,
        &b.to_der().unwrap(),
        &generator,
        &[issued],
    )
    .unwrap();
    (response, enveloped, generated)
}

fn check_received(
    response: &[u8],
    ca: &Ca,
    secret: &est_cms::RecipientSecret,
    generated: &PKey<Private>,
) {
    let oids = SkgOids::default();
    let got = read_response(response, &store(ca), &oids, secret).unwrap();
    assert_eq!(got.keys.len(), 1);
    let k = &got.keys[0];
    assert!(k.key.public_eq(generated));
    assert_eq!(k.request_body_part_id, ID_SKG_REQUEST);
    assert_eq!(k.generator, to_cert(&ca.cert));
    assert!(got.errors.is_empty());
    assert_eq!(
        got.summary.status_of(ID_SKG_REQUEST).map(|s| s.status),
        Some(CmcStatus::SUCCESS)
    );
}

/// The decrypted content (ContentInfo(SignedData)) verifies with OpenSSL against the CA and
/// yields an AsymmetricKeyPackage with the generated key.
fn openssl_checks_inner(d: &TempDir, inner: &[u8], ca: &Ca, generated: &PKey<Private>) {
    let inner_f = der_file(&d.0, "inner.der", inner);
    let ca_f = der_file(&d.0, "ca.pem", &ca.cert.to_pem().unwrap());
    let akp_f = d.0.join("akp.der").to_string_lossy().into_owned();
    openssl(&[
        "cms", "-verify", "-inform", "DER", "-in", &inner_f, "-CAfile", &ca_f, "-binary", "-out",
        &akp_f,
    ]);
    let akp = std::fs::read(&akp_f).unwrap();
    let keys = est_cms::decode_key_package(&akp).unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].to_pkey().unwrap().public_eq(generated));
    assert!(
        keys[0].public_key.is_some(),
        "v2 OneAsymmetricKey (SKGD-18)"
    );
}

/// ktri: the client's RSA certificate as `certificate` shroud, the request signed with it
/// (SignedData, SKGD-17), parsed by [`FullPkiRequest`], answered, opened; OpenSSL decrypts.
#[test]
fn round_trip_ktri_certificate() {
    let oids = SkgOids::default();
    let ca = ca("KTRI CA");
    let client_key = rsa();
    let client_x = leaf(&ca, "dev.example", &client_key, Ku::Encipherment, 2);
    let client = to_cert(&client_x);
    let shroud = Shroud::PublicKey(ShroudWithPublicKey::Certificate(client.clone()));
    let pki = request_pki(&oids, "dev.example", &shroud, None);
    let signer = est_cms::OpensslSigner::new(client_key.clone(), client.clone()).unwrap();
    let der = sign_request(&pki, &RequestSigner::Certificate(&signer)).unwrap();

    let mut req = FullPkiRequest::parse(&der, RequestPolicy::default()).unwrap();
    let crate::OuterSigner::Certificate { cert, pool } = &req.signer else {
        panic!("signed with the client certificate");
    };
    assert_eq!(**cert, client);
    // The wide control is not "unsupported" once the caller takes it (CMC-9).
    assert_eq!(
        req.controls.take_unsupported(&oids.server_key_gen_request),
        vec![ID_SKG_REQUEST]
    );
    assert!(req.controls.unsupported_failure().is_none());
    let r = only_request(&req.pki_data, &oids).unwrap();
    check_request_names(
        &r,
        AuthenticatedName {
            subject: cert.tbs_certificate().subject(),
            san: None,
        },
    )
    .unwrap();
    check_shroud_certificate(
        &r,
        &client,
        pool,
        &store(&ca),
        cert.tbs_certificate().subject(),
    )
    .unwrap();
    let (response, enveloped, generated) = serve(&req.pki_data, &req.controls, pool, &ca, None);

    let secret = est_cms::RecipientSecret::PrivateKey {
        key: client_key.clone(),
        cert: Some(client.clone()),
        ski: None,
    };
    check_received(&response, &ca, &secret, &generated);
    let summary = crate::client::verify_response(&response, &store(&ca)).unwrap();
    assert_eq!(summary.summary.transaction_id, req.controls.transaction_id);

    let d = TempDir::new("ktri");
    let env_f = der_file(&d.0, "env.der", &enveloped);
    let cert_f = der_file(&d.0, "client.pem", &client_x.to_pem().unwrap());
    let key_f = der_file(
        &d.0,
        "client.key",
        &client_key.private_key_to_pem_pkcs8().unwrap(),
    );
    let inner = openssl(&[
        "cms", "-decrypt", "-inform", "DER", "-in", &env_f, "-recip", &cert_f, "-inkey", &key_f,
        "-binary",
    ]);
    openssl_checks_inner(&d, &inner, &ca, &generated);
}

/// ktri to a bareKey: rid is the given ski (SKGD-14).
#[test]
fn round_trip_ktri_bare_key() {
    let oids = SkgOids::default();
    let ca = ca("Bare CA");
    let client_key = rsa();
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(&client_key.public_key_to_der().unwrap())
        .unwrap();
    let ski = vec![0xb5; 20];
    let shroud = Shroud::PublicKey(ShroudWithPublicKey::BareKey(BareKey {
        public_key: spki,
        ski: x509_cert::ext::pkix::SubjectKeyIdentifier(
            der::asn1::OctetString::new(ski.clone()).unwrap(),
        ),
    }));
    let pki = request_pki(&oids, "dev.example", &shroud, None);
    let (response, enveloped, generated) = serve(&pki, &crate::Controls::default(), &[], &ca, None);
    let env = cms::content_info::ContentInfo::from_der(&enveloped).unwrap();
    let ed: cms::enveloped_data::EnvelopedData = env.content.decode_as().unwrap();
    match ed.recip_infos.0.iter().next().unwrap() {
        cms::enveloped_data::RecipientInfo::Ktri(k) => match &k.rid {
            cms::enveloped_data::RecipientIdentifier::SubjectKeyIdentifier(s) => {
                assert_eq!(s.0.as_bytes(), ski.as_slice())
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    let secret = est_cms::RecipientSecret::PrivateKey {
        key: client_key,
        cert: None,
        ski: Some(ski),
    };
    check_received(&response, &ca, &secret, &generated);
}

/// kari: an EC client certificate; OpenSSL decrypts.
#[test]
fn round_trip_kari_certificate() {
    let oids = SkgOids::default();
    let ca = ca("KARI CA");
    let client_key = p256();
    let client_x = leaf(&ca, "dev.example", &client_key, Ku::Agreement, 3);
    let client = to_cert(&client_x);
    let shroud = Shroud::PublicKey(ShroudWithPublicKey::Certificate(client.clone()));
    let pki = request_pki(&oids, "dev.example", &shroud, None);
    let r = only_request(&pki, &oids).unwrap();
    check_shroud_certificate(&r, &client, &[], &store(&ca), &rust_name("dev.example")).unwrap();
    let (response, enveloped, generated) = serve(&pki, &crate::Controls::default(), &[], &ca, None);
    let env = cms::content_info::ContentInfo::from_der(&enveloped).unwrap();
    let ed: cms::enveloped_data::EnvelopedData = env.content.decode_as().unwrap();
    assert!(matches!(
        ed.recip_infos.0.iter().next().unwrap(),
        cms::enveloped_data::RecipientInfo::Kari(_)
    ));
    let secret = est_cms::RecipientSecret::PrivateKey {
        key: client_key.clone(),
        cert: Some(client),
        ski: None,
    };
    check_received(&response, &ca, &secret, &generated);

    let d = TempDir::new("kari");
    let env_f = der_file(&d.0, "env.der", &enveloped);
    let cert_f = der_file(&d.0, "client.pem", &client_x.to_pem().unwrap());
    let key_f = der_file(
        &d.0,
        "client.key",
        &client_key.private_key_to_pem_pkcs8().unwrap(),
    );
    let inner = openssl(&[
        "cms", "-decrypt", "-inform", "DER", "-in", &env_f, "-recip", &cert_f, "-inkey", &key_f,
        "-binary",
    ]);
    openssl_checks_inner(&d, &inner, &ca, &generated);
}

/// pwri: ShroudWithSharedSecret, the request an AuthenticatedData under Identification ‖
/// secret (SKGD-17); the key under the named secret; OpenSSL decrypts with -pwri_password.
#[test]
fn round_trip_pwri_shared_secret() {
    let oids = SkgOids::default();
    let ca = ca("PWRI CA");
    let ident = SharedSecret {
        ident: "device-42".into(),
        secret: Zeroizing::new(b"identification secret".to_vec()),
    };
    let shroud = Shroud::SharedSecret("key-secret-1".into());
    let pki = request_pki(&oids, "dev.example", &shroud, Some(ident.clone()));
    let der = sign_request(&pki, &RequestSigner::SharedSecret(&ident)).unwrap();
    let req = FullPkiRequest::parse(&der, RequestPolicy::default()).unwrap();
    req.verify_mac(&ident.secret).unwrap();
    assert_eq!(
        req.controls
            .identification
            .as_ref()
            .map(|(_, s)| s.as_str()),
        Some("device-42")
    );
    let r = only_request(&req.pki_data, &oids).unwrap();
    let ShroudKey::SharedSecret(name) = r.shroud_key(&[]).unwrap() else {
        panic!("shared secret");
    };
    assert_eq!(name, "key-secret-1");
    let key_secret = b"correct horse battery staple".to_vec();
    let (response, enveloped, generated) = serve(
        &req.pki_data,
        &req.controls,
        &[],
        &ca,
        Some(Zeroizing::new(key_secret.clone())),
    );
    let secret = est_cms::RecipientSecret::Password(Zeroizing::new(key_secret.clone()));
    check_received(&response, &ca, &secret, &generated);
    // The wrong secret opens nothing.
    let wrong = est_cms::RecipientSecret::Password(Zeroizing::new(b"nope".to_vec()));
    assert!(read_response(&response, &store(&ca), &oids, &wrong).is_err());

    let d = TempDir::new("pwri");
    let env_f = der_file(&d.0, "env.der", &enveloped);
    let inner = openssl(&[
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        &env_f,
        "-pwri_password",
        std::str::from_utf8(&key_secret).unwrap(),
        "-binary",
    ]);
    openssl_checks_inner(&d, &inner, &ca, &generated);
}

/// SKGD-24: a response whose key does not match the certificate named is refused.
#[test]
fn skgd24_key_must_match_the_certificate() {
    let oids = SkgOids::default();
    let ca = ca("Mismatch CA");
    let shroud = Shroud::SharedSecret("k".into());
    let pki = request_pki(&oids, "dev.example", &shroud, None);
    let r = only_request(&pki, &oids).unwrap();
    let secret = b"s3cret".to_vec();
    let plan = DeliveryPlan::new(
        &r,
        &r.shroud_key(&[]).unwrap(),
        Some(Zeroizing::new(secret.clone())),
    )
    .unwrap();
    let generated = p256();
    let other = p256();
    let issued = to_cert(&leaf(&ca, "dev.example", &other, Ku::SignatureOnly, 50));
    let generator = est_cms::OpensslSigner::new(ca.key.clone(), to_cert(&ca.cert)).unwrap();
    let env = plan.seal(&generated, &generator, &[]).unwrap();
    let mut b = ResponseBuilder::new(&crate::Controls::default()).unwrap();
    plan.add_to_response(&mut b, &oids, &env, &issued).unwrap();
    let resp = est_cms::sign(
        crate::oids::CT_PKI_RESPONSE,
        &b.to_der().unwrap(),
        &generator,
        &[issued],
    )
    .unwrap();
    let e = read_response(
        &resp,
        &store(&ca),
        &oids,
        &est_cms::RecipientSecret::Password(Zeroizing::new(secret)),
    )
    .unwrap_err();
    assert!(e.contains("SKGD-24"), "{e}");
    // And a response signed by an untrusted CA is refused before anything is decrypted.
    let untrusted = self::ca("Untrusted");
    let e = read_response(
        &resp,
        &store(&untrusted),
        &oids,
        &est_cms::RecipientSecret::Password(Zeroizing::new(b"x".to_vec())),
    )
    .unwrap_err();
    assert!(e.contains("SKGD-24"), "{e}");
}

/// SKGD-21: two ServerKeyGenRequests in one PKIData get two keys, each in its own
/// EnvelopedData entry named by its own ServerKeyGenResponse; SKGD-20: Content Hints in the
/// outer SignedData; SKGD-23: transactionId echoed, recipientNonce = the request's
/// senderNonce, a fresh senderNonce.
#[test]
fn skgd20_skgd21_skgd23_two_keys_hints_and_nonces() {
    let oids = SkgOids::default();
    let ca = ca("Multi CA");
    let shroud = Shroud::SharedSecret("multi".into());
    let mut pki = request_pki(&oids, "dev.example", &shroud, None);
    let mut second = pki.control_sequence.last().unwrap().clone();
    second.body_part_id = ID_SKG_REQUEST + 1;
    pki.control_sequence.push(second);
    let controls = crate::Controls::read(&pki).unwrap();
    let requests: Vec<SkgRequest> = read_requests(&pki, &oids)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(requests.len(), 2);
    let secret = b"multi secret".to_vec();
    let generator = est_cms::OpensslSigner::new(ca.key.clone(), to_cert(&ca.cert)).unwrap();
    let mut b = ResponseBuilder::new(&controls).unwrap();
    let mut issued_all = Vec::new();
    let mut generated = Vec::new();
    let mut entries = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let plan = DeliveryPlan::new(
            r,
            &r.shroud_key(&[]).unwrap(),
            Some(Zeroizing::new(secret.clone())),
        )
        .unwrap();
        let k = p256();
        let issued = to_cert(&leaf(
            &ca,
            "dev.example",
            &k,
            Ku::SignatureOnly,
            60 + i as u32,
        ));
        let env = plan.seal(&k, &generator, &[]).unwrap();
        entries.push(plan.add_to_response(&mut b, &oids, &env, &issued).unwrap());
        issued_all.push(issued);
        generated.push(k);
    }
    assert_ne!(entries[0], entries[1]);
    let opts = est_cms::SignOptions {
        signed_attributes: vec![key_package_content_hints().unwrap()],
        ..Default::default()
    };
    let resp = est_cms::sign_with(
        crate::oids::CT_PKI_RESPONSE,
        &b.to_der().unwrap(),
        &generator,
        &issued_all,
        &opts,
    )
    .unwrap();
    let got = read_response(
        &resp,
        &store(&ca),
        &oids,
        &est_cms::RecipientSecret::Password(Zeroizing::new(secret)),
    )
    .unwrap();
    assert_eq!(got.keys.len(), 2);
    for (k, g) in got.keys.iter().zip(&generated) {
        assert!(k.key.public_eq(g));
    }
    assert_eq!(
        got.keys
            .iter()
            .map(|k| k.request_body_part_id)
            .collect::<Vec<_>>(),
        vec![ID_SKG_REQUEST, ID_SKG_REQUEST + 1]
    );
    assert_eq!(got.summary.transaction_id, controls.transaction_id);
    assert_eq!(got.summary.recipient_nonce, controls.sender_nonce);
    assert!(
        got.summary
            .sender_nonce
            .as_ref()
            .is_some_and(|n| n.len() >= 16)
    );
    assert_ne!(got.summary.sender_nonce, controls.sender_nonce);
    // The hint is a signed attribute naming id-ct-KP-aKeyPackage.
    let v = est_cms::verify(&resp, &store(&ca), &est_cms::VerifyOptions::default()).unwrap();
    let attrs = v.signer_infos[0].signed_attrs.as_ref().unwrap();
    let hint = attrs.iter().find(|a| a.oid == ID_AA_CONTENT_HINT).unwrap();
    let h: ContentHints = hint.values.iter().next().unwrap().decode_as().unwrap();
    assert_eq!(h.content_type, est_cms::oids::ID_CT_KP_A_KEY_PACKAGE);
}

/// SKGD-14 for an EC bare key: kari with rKeyId = the given ski.
#[test]
fn skgd14_kari_bare_key_uses_rkeyid() {
    let oids = SkgOids::default();
    let ca = ca("EC Bare CA");
    let client_key = p256();
    let ski = vec![0xec; 20];
    let shroud = Shroud::PublicKey(ShroudWithPublicKey::BareKey(BareKey {
        public_key: spki::SubjectPublicKeyInfoOwned::from_der(
            &client_key.public_key_to_der().unwrap(),
        )
        .unwrap(),
        ski: x509_cert::ext::pkix::SubjectKeyIdentifier(
            der::asn1::OctetString::new(ski.clone()).unwrap(),
        ),
    }));
    let pki = request_pki(&oids, "dev.example", &shroud, None);
    let (response, enveloped, generated) = serve(&pki, &crate::Controls::default(), &[], &ca, None);
    let env = cms::content_info::ContentInfo::from_der(&enveloped).unwrap();
    let ed: cms::enveloped_data::EnvelopedData = env.content.decode_as().unwrap();
    let Some(cms::enveloped_data::RecipientInfo::Kari(k)) = ed.recip_infos.0.iter().next() else {
        panic!("kari expected");
    };
    match &k.recipient_enc_keys[0].rid {
        cms::enveloped_data::KeyAgreeRecipientIdentifier::RKeyId(r) => {
            assert_eq!(r.subject_key_identifier.0.as_bytes(), ski.as_slice())
        }
        other => panic!("{other:?}"),
    }
    let secret = est_cms::RecipientSecret::PrivateKey {
        key: client_key,
        cert: None,
        ski: Some(ski),
    };
    check_received(&response, &ca, &secret, &generated);
}

/// A cheap stand-in for the fuzz target in every test run: each bit-flip (two per octet)
/// and truncation of four requests goes through the decoders and the server's reader
/// without a panic, and whatever still reads as a request is planned.
#[test]
fn mutated_requests_never_panic() {
    let oids = SkgOids::default();
    let ca = ca("Mutation CA");
    let rsa_key = rsa();
    let cert = to_cert(&leaf(&ca, "dev.example", &rsa_key, Ku::Encipherment, 2));
    let shrouds = [
        Shroud::SharedSecret("seed".into()),
        Shroud::PublicKey(ShroudWithPublicKey::Certificate(cert.clone())),
        Shroud::PublicKey(ShroudWithPublicKey::BareKey(BareKey {
            public_key: cert.tbs_certificate().subject_public_key_info().clone(),
            ski: x509_cert::ext::pkix::SubjectKeyIdentifier(
                der::asn1::OctetString::new(vec![9; 20]).unwrap(),
            ),
        })),
        Shroud::PublicKey(ShroudWithPublicKey::CertIdentifier(
            SignerIdentifier::IssuerAndSerialNumber(est_cms::issuer_and_serial(&cert)),
        )),
    ];
    let name = rust_name("dev.example");
    let exercise = |bytes: &[u8]| {
        let _ = ServerKeyGenRequest::from_der(bytes);
        let _ = ShroudWithPublicKey::from_der(bytes);
        let Ok(pki) = PkiData::from_der(bytes) else {
            return;
        };
        let Ok(requests) = read_requests(&pki, &oids) else {
            return;
        };
        for r in requests.into_iter().flatten() {
            let _ = check_request_names(
                &r,
                AuthenticatedName {
                    subject: &name,
                    san: None,
                },
            );
            if let Ok(k) = r.shroud_key(std::slice::from_ref(&cert)) {
                let _ = DeliveryPlan::new(&r, &k, Some(Zeroizing::new(b"x".to_vec())));
            }
        }
    };
    for shroud in &shrouds {
        let der = request_pki(&oids, "dev.example", shroud, None)
            .to_der()
            .unwrap();
        for i in 0..der.len() {
            for bit in [0x01u8, 0x80] {
                let mut m = der.clone();
                m[i] ^= bit;
                exercise(&m);
            }
            exercise(&der[..i]);
        }
    }
}

/// The committed seeds of the `cmc_server_keygen` fuzz target, made by
/// `ESTUARY_SKG_SEEDS=$PWD/fuzz/corpus/cmc_server_keygen cargo test -p est-cmc --lib
/// write_fuzz_seeds -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("ESTUARY_SKG_SEEDS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let oids = SkgOids::default();
    let ca = ca("Seed CA");
    let rsa_key = rsa();
    let cert = to_cert(&leaf(&ca, "dev.example", &rsa_key, Ku::Encipherment, 2));
    let bare = Shroud::PublicKey(ShroudWithPublicKey::BareKey(BareKey {
        public_key: cert.tbs_certificate().subject_public_key_info().clone(),
        ski: x509_cert::ext::pkix::SubjectKeyIdentifier(
            der::asn1::OctetString::new(vec![9; 20]).unwrap(),
        ),
    }));
    let by_id = Shroud::PublicKey(ShroudWithPublicKey::CertIdentifier(
        SignerIdentifier::IssuerAndSerialNumber(est_cms::issuer_and_serial(&cert)),
    ));
    let shrouds = [
        ("pki-shared-secret.der", Shroud::SharedSecret("seed".into())),
        (
            "pki-certificate.der",
            Shroud::PublicKey(ShroudWithPublicKey::Certificate(cert.clone())),
        ),
        ("pki-bare-key.der", bare),
        ("pki-cert-identifier.der", by_id),
    ];
    for (name, shroud) in &shrouds {
        let pki = request_pki(&oids, "dev.example", shroud, None);
        std::fs::write(dir.join(name), pki.to_der().unwrap()).unwrap();
        if *name == "pki-bare-key.der" {
            let c = &pki.control_sequence[pki.control_sequence.len() - 1];
            let v = c.attr_values.iter().next().unwrap().to_der().unwrap();
            std::fs::write(dir.join("server-keygen-request.der"), v).unwrap();
        }
    }
    let resp = ServerKeyGenResponse {
        cms_body_part_id: 3,
        request_body_part_id: ID_SKG_REQUEST,
        signer_identifier: SignerIdentifier::IssuerAndSerialNumber(est_cms::issuer_and_serial(
            &cert,
        )),
    };
    std::fs::write(
        dir.join("server-keygen-response.der"),
        resp.to_der().unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("wide-oid.der"),
        oids.server_key_gen_request.to_der().unwrap(),
    )
    .unwrap();
}
