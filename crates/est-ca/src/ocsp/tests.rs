//! Unit tests of the pure parts: request decoding and limits, CertID matching, statuses and
//! the signed response (decoded and verified by OpenSSL). The whole responder on a real store
//! is tested in `tests/ocsp.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;

use der::asn1::Int;
use est_asn1::ocsp::{Request, TbsRequest};
use openssl::pkey::{PKey, Private};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::name::Name;

use super::*;
use crate::{Issuer, KeyError, SignatureAlgorithm};

const CA_PEM: &[u8] = include_bytes!("../../tests/vectors/ocsp/ca.pem");
const REQ_SHA1: &[u8] = include_bytes!("../../tests/vectors/ocsp/sha1.der");
const REQ_SHA256_NONCE: &[u8] = include_bytes!("../../tests/vectors/ocsp/sha256-nonce.der");
const REQ_SHA512_TWO: &[u8] = include_bytes!("../../tests/vectors/ocsp/sha512-two.der");

fn vector_ca() -> Certificate {
    let der = openssl::x509::X509::from_pem(CA_PEM)
        .unwrap()
        .to_der()
        .unwrap();
    Certificate::from_der(&der).unwrap()
}

/// A P-256 key signing through OpenSSL (est-keys' file key is not usable in unit tests: it
/// implements the trait of the est-ca it depends on, not of this build).
#[derive(Debug)]
struct TestKey {
    key: PKey<Private>,
    spki: SubjectPublicKeyInfoOwned,
}

impl TestKey {
    fn generate() -> Arc<dyn SigningKey> {
        let ec = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let key = PKey::from_ec_key(ec).unwrap();
        let spki = SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der().unwrap()).unwrap();
        Arc::new(Self { key, spki })
    }
}

impl SigningKey for TestKey {
    fn public_key_info(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::EcdsaSha256
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut s = openssl::sign::Signer::new(MessageDigest::sha256(), &self.key)
            .map_err(|e| KeyError::Backend(e.to_string()))?;
        s.sign_oneshot_to_vec(message)
            .map_err(|e| KeyError::Backend(e.to_string()))
    }
}

fn test_ca() -> Issuer {
    crate::setup::self_signed_root(
        TestKey::generate(),
        Name::from_str("CN=Unit OCSP CA,O=Estuary").unwrap(),
        Duration::from_secs(86400),
        SystemTime::now(),
    )
    .unwrap()
}

fn request(ids: Vec<CertId>, exts: Option<Vec<Extension>>) -> Vec<u8> {
    OcspRequest {
        tbs_request: TbsRequest {
            version: V1,
            requestor_name: None,
            request_list: ids
                .into_iter()
                .map(|req_cert| Request {
                    req_cert,
                    single_request_extensions: None,
                })
                .collect(),
            request_extensions: exts,
        },
        optional_signature: None,
    }
    .to_der()
    .unwrap()
}

fn nonce_ext(inner: &[u8], critical: bool) -> Extension {
    Extension {
        extn_id: oids::NONCE,
        critical,
        extn_value: OctetString::new(OctetString::new(inner).unwrap().to_der().unwrap()).unwrap(),
    }
}

#[test]
fn openssl_sha1_request_decodes_and_names_its_issuer() {
    let r = parse_ocsp_request(REQ_SHA1).unwrap();
    assert_eq!(r.cert_ids.len(), 1);
    assert_eq!(r.nonce, None);
    let id = &r.cert_ids[0];
    assert_eq!(
        OcspHash::from_algorithm(&id.hash_algorithm),
        Some(OcspHash::Sha1)
    );
    assert_eq!(
        id.serial_number.as_bytes(),
        [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]
    );
    assert_eq!(serial_key(id).as_deref(), Some("0123456789abcdef"));
    let ca = vector_ca();
    assert!(cert_id_names_issuer(id, &ca).unwrap());
    // Our CertID for the same certificate is byte for byte OpenSSL's.
    let ours = cert_id(&ca, id.serial_number.as_bytes(), OcspHash::Sha1).unwrap();
    assert_eq!(ours.to_der().unwrap(), id.to_der().unwrap());
    // Another CA with the same name but another key is not named.
    assert!(!cert_id_names_issuer(id, &test_ca().cert).unwrap());
}

#[test]
fn openssl_sha256_request_with_nonce_and_sha512_pair() {
    let r = parse_ocsp_request(REQ_SHA256_NONCE).unwrap();
    let ca = vector_ca();
    assert_eq!(
        OcspHash::from_algorithm(&r.cert_ids[0].hash_algorithm),
        Some(OcspHash::Sha256)
    );
    assert!(cert_id_names_issuer(&r.cert_ids[0], &ca).unwrap());
    let nonce = r.nonce.expect("nonce");
    // OpenSSL's nonce: an OCTET STRING of 16 random octets inside extnValue.
    assert_eq!(nonce_len(&nonce), 16);
    assert_eq!(nonce.as_bytes()[..2], [0x04, 0x10]);

    let two = parse_ocsp_request(REQ_SHA512_TWO).unwrap();
    assert_eq!(two.cert_ids.len(), 2);
    for id in &two.cert_ids {
        assert_eq!(
            OcspHash::from_algorithm(&id.hash_algorithm),
            Some(OcspHash::Sha512)
        );
        assert!(cert_id_names_issuer(id, &ca).unwrap());
    }
    assert_eq!(serial_key(&two.cert_ids[1]).as_deref(), Some("7fee"));
}

#[test]
fn every_hash_algorithm_matches_and_parameters_may_be_absent() {
    let ca = test_ca();
    for h in OcspHash::ALL {
        let mut id = cert_id(&ca.cert, &[0x42], h).unwrap();
        assert!(cert_id_names_issuer(&id, &ca.cert).unwrap(), "{h:?}");
        assert!(!cert_id_names_issuer(&id, &vector_ca()).unwrap(), "{h:?}");
        id.hash_algorithm.parameters = None;
        assert!(cert_id_names_issuer(&id, &ca.cert).unwrap(), "{h:?} absent");
        // Parameters other than NULL: not an algorithm we know.
        id.hash_algorithm.parameters = Some(der::Any::encode_from(&1u8).unwrap());
        assert!(!cert_id_names_issuer(&id, &ca.cert).unwrap(), "{h:?} odd");
    }
    // MD5 (1.2.840.113549.2.5) is not supported: never matches.
    let mut id = cert_id(&ca.cert, &[0x42], OcspHash::Sha1).unwrap();
    id.hash_algorithm.oid = const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.2.5");
    assert!(!cert_id_names_issuer(&id, &ca.cert).unwrap());
}

#[test]
fn malformed_requests_are_refused() {
    let ca = test_ca();
    let id = cert_id(&ca.cert, &[1], OcspHash::Sha1).unwrap();
    let garbage: &[&[u8]] = &[b"", b"\x30", b"\x30\x00", b"hello", &[0x30, 0x80, 0, 0]];
    for g in garbage {
        assert!(
            matches!(parse_ocsp_request(g), Err(OcspRequestError::Decode(_))),
            "{g:?}"
        );
    }
    let mut trailing = REQ_SHA1.to_vec();
    trailing.push(0);
    assert!(matches!(
        parse_ocsp_request(&trailing),
        Err(OcspRequestError::Decode(_))
    ));
    assert!(matches!(
        parse_ocsp_request(&REQ_SHA1[..REQ_SHA1.len() - 1]),
        Err(OcspRequestError::Decode(_))
    ));
    assert_eq!(
        parse_ocsp_request(&request(vec![], None)),
        Err(OcspRequestError::Empty)
    );
    let many = vec![id.clone(); OCSP_MAX_REQUESTS + 1];
    assert_eq!(
        parse_ocsp_request(&request(many, None)),
        Err(OcspRequestError::TooMany(OCSP_MAX_REQUESTS + 1))
    );
    let most = vec![id.clone(); OCSP_MAX_REQUESTS];
    assert_eq!(
        parse_ocsp_request(&request(most, None))
            .unwrap()
            .cert_ids
            .len(),
        OCSP_MAX_REQUESTS
    );
    // v2 does not exist.
    let mut v2 = OcspRequest::from_der(&request(vec![id.clone()], None)).unwrap();
    v2.tbs_request.version = 1;
    assert_eq!(
        parse_ocsp_request(&v2.to_der().unwrap()),
        Err(OcspRequestError::Version(1))
    );
    // A critical extension we do not know; a non-critical one is ignored.
    let odd = const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1");
    let ext = |critical| Extension {
        extn_id: odd,
        critical,
        extn_value: OctetString::new([5, 0]).unwrap(),
    };
    assert_eq!(
        parse_ocsp_request(&request(vec![id.clone()], Some(vec![ext(true)]))),
        Err(OcspRequestError::CriticalExtension(odd))
    );
    assert!(parse_ocsp_request(&request(vec![id.clone()], Some(vec![ext(false)]))).is_ok());
}

#[test]
fn nonces_of_1_to_32_octets_are_taken_others_refused() {
    let id = cert_id(&vector_ca(), &[1], OcspHash::Sha256).unwrap();
    for n in [1usize, 16, 32] {
        let r = parse_ocsp_request(&request(
            vec![id.clone()],
            Some(vec![nonce_ext(&vec![9u8; n], true)]),
        ))
        .unwrap();
        assert_eq!(nonce_len(r.nonce.as_ref().unwrap()), n);
    }
    for n in [0usize, 33, 200] {
        assert_eq!(
            parse_ocsp_request(&request(
                vec![id.clone()],
                Some(vec![nonce_ext(&vec![9u8; n], false)])
            )),
            Err(OcspRequestError::NonceLength(n)),
            "{n}"
        );
    }
    // Bare octets in extnValue (not wrapped in an OCTET STRING) count as the nonce.
    let bare = Extension {
        extn_id: oids::NONCE,
        critical: false,
        extn_value: OctetString::new([0xff; 20]).unwrap(),
    };
    let r = parse_ocsp_request(&request(vec![id.clone()], Some(vec![bare]))).unwrap();
    assert_eq!(nonce_len(r.nonce.as_ref().unwrap()), 20);
    assert_eq!(
        parse_ocsp_request(&request(
            vec![id],
            Some(vec![nonce_ext(&[1; 16], false), nonce_ext(&[2; 16], false)])
        )),
        Err(OcspRequestError::DuplicateNonce)
    );
}

#[test]
fn serials_that_were_never_issued_have_no_store_key() {
    let ca = vector_ca();
    let with = |b: &[u8]| {
        let mut id = cert_id(&ca, &[1], OcspHash::Sha1).unwrap();
        id.serial_number = Int::new(b).unwrap();
        serial_key(&id)
    };
    assert_eq!(with(&[0x00, 0x80, 0x01]).as_deref(), Some("8001"));
    assert_eq!(with(&[0x7f]).as_deref(), Some("7f"));
    assert_eq!(with(&[0xff]), None, "negative");
    assert_eq!(with(&[0x00]), None, "zero");
}

fn record(status: StoredStatus, revocation: Option<crate::Revocation>) -> CertRecord {
    CertRecord {
        serial: "0a".into(),
        ca: "default".into(),
        subject: "CN=x".into(),
        issuer: "CN=ca".into(),
        ski: String::new(),
        spki_sha256: String::new(),
        requester: "user:u".into(),
        label: String::new(),
        not_before: 0,
        not_after: 1,
        issued_at: 1_700_000_000,
        status,
        revocation,
        der: Vec::new(),
    }
}

#[test]
fn statuses_good_revoked_unknown() {
    assert_eq!(cert_status(None).unwrap(), CertStatus::Unknown(Null));
    assert_eq!(
        cert_status(Some(&record(StoredStatus::Valid, None))).unwrap(),
        CertStatus::Good(Null)
    );
    let rev = |reason| crate::Revocation {
        revoked_at: 1_750_000_000,
        reason,
        invalidity_date: None,
    };
    let t = GeneralizedTime::from_unix_duration(Duration::from_secs(1_750_000_000)).unwrap();
    assert_eq!(
        cert_status(Some(&record(StoredStatus::Revoked, Some(rev(1))))).unwrap(),
        CertStatus::Revoked(RevokedInfo {
            revocation_time: t,
            revocation_reason: Some(x509_cert::ext::pkix::CrlReason::KeyCompromise),
        })
    );
    // unspecified is left out, as on the CRL (RFC 5280 §5.3.1).
    assert_eq!(
        cert_status(Some(&record(StoredStatus::Revoked, Some(rev(0))))).unwrap(),
        CertStatus::Revoked(RevokedInfo {
            revocation_time: t,
            revocation_reason: None,
        })
    );
    assert!(cert_status(Some(&record(StoredStatus::Revoked, Some(rev(7))))).is_err());
}

#[test]
fn unsuccessful_answers_carry_only_the_status() {
    for (s, code) in [
        (OcspResponseStatus::MalformedRequest, 1u8),
        (OcspResponseStatus::InternalError, 2),
        (OcspResponseStatus::TryLater, 3),
        (OcspResponseStatus::Unauthorized, 6),
    ] {
        let a = OcspAnswer::unsuccessful(s);
        assert_eq!(a.der, [0x30, 0x03, 0x0a, 0x01, code]);
        let o = openssl::ocsp::OcspResponse::from_der(&a.der).unwrap();
        assert_eq!(o.status().as_raw(), i32::from(code));
        assert!(o.basic().is_err());
    }
}

/// The signed response as OpenSSL reads it: signature verified with the CA, the nonce echoed,
/// each CertID's status found.
#[test]
fn signed_response_verifies_with_openssl_and_echoes_the_nonce() {
    let ca = test_ca();
    let domain = CaDomain {
        name: "default".into(),
        issuer: ca.clone(),
        profile: crate::Profile::default(),
    };
    let good = cert_id(&ca.cert, &[0x0a], OcspHash::Sha1).unwrap();
    let unknown = cert_id(&ca.cert, &[0x0b], OcspHash::Sha256).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(unix_secs(SystemTime::now()) as u64);
    let single = |id: &CertId, st| SingleResponse {
        cert_id: id.clone(),
        cert_status: st,
        this_update: gtime(now).unwrap(),
        next_update: Some(gtime(now + Duration::from_secs(3600)).unwrap()),
        single_extensions: None,
    };
    let nonce = OctetString::new(OctetString::new([7u8; 16]).unwrap().to_der().unwrap()).unwrap();
    let der = sign_response(
        &Signer::Ca(&domain),
        vec![
            single(&good, CertStatus::Good(Null)),
            single(&unknown, CertStatus::Unknown(Null)),
        ],
        Some(&nonce),
        now,
    )
    .unwrap();

    let resp = openssl::ocsp::OcspResponse::from_der(&der).unwrap();
    assert_eq!(resp.status(), openssl::ocsp::OcspResponseStatus::SUCCESSFUL);
    let basic = resp.basic().unwrap();
    let x509 = openssl::x509::X509::from_der(&ca.cert_der).unwrap();
    let mut store = openssl::x509::store::X509StoreBuilder::new().unwrap();
    store.add_cert(x509.clone()).unwrap();
    let store = store.build();
    let mut certs = openssl::stack::Stack::new().unwrap();
    certs.push(x509.clone()).unwrap();
    basic
        .verify(&certs, &store, openssl::ocsp::OcspFlag::empty())
        .unwrap();

    // Our own decoder: responderID byKey, the nonce extension as sent.
    let outer = OcspResponse::from_der(&der).unwrap();
    let bytes = outer.response_bytes.unwrap();
    assert_eq!(bytes.response_type, oids::BASIC);
    let b = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    assert_eq!(b.certs, None);
    let key_hash = key_identifier(ca.key.public_key_info().owned_to_ref()).unwrap();
    assert_eq!(
        b.tbs_response_data.responder_id,
        ResponderId::ByKey(OctetString::new(key_hash).unwrap())
    );
    let exts = b.tbs_response_data.response_extensions.unwrap();
    assert_eq!(exts.len(), 1);
    assert_eq!(exts[0].extn_id, oids::NONCE);
    assert_eq!(exts[0].extn_value, nonce);
    assert_eq!(b.tbs_response_data.responses.len(), 2);
    assert_eq!(b.tbs_response_data.responses[0].cert_id, good);
    assert_eq!(
        b.tbs_response_data.responses[1].cert_status,
        CertStatus::Unknown(Null)
    );
}
