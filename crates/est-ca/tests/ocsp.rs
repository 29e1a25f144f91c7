//! The OCSP responder (RFC 6960) on the real SQLite store: requests made by OpenSSL's OCSP
//! API, answers decoded and verified by it (an independent implementation), for the CA key
//! and a delegated responder, P-256 and RSA.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::{Decode, Encode};
use est_asn1::ocsp::{BasicOcspResponse, OcspResponse, ResponderId};
use est_ca::*;
use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse as OsslResponse,
    OcspResponseStatus as OsslStatus, OcspRevokedStatus,
};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use x509_cert::name::Name;

struct Fixture {
    _dir: tempfile::TempDir,
    keys: est_keys::FileKeyBackend,
    root: Issuer,
    issuer: Issuer,
    authority: Authority,
}

async fn fixture(issuing_key: KeyType) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let keys = est_keys::FileKeyBackend::new(
        dir.path().join("keys"),
        zeroize::Zeroizing::new(b"pw".to_vec()),
    )
    .unwrap();
    let now = SystemTime::now();
    let root = setup::self_signed_root(
        keys.generate(&KeyId("r".into()), KeyType::P256).unwrap(),
        Name::from_str("CN=Test Root,O=Estuary").unwrap(),
        Duration::from_secs(86400 * 3650),
        now,
    )
    .unwrap();
    let issuer = setup::subordinate_ca(
        &root,
        keys.generate(&KeyId("i".into()), issuing_key).unwrap(),
        Name::from_str("CN=Test Issuing,O=Estuary").unwrap(),
        Duration::from_secs(86400 * 1000),
        now,
    )
    .unwrap();
    let store_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = Arc::new(est_store::SqlStore::connect(&store_url).await.unwrap());
    let profile = Profile {
        ocsp_validity: Duration::from_secs(600),
        ocsp_url: Some("http://ocsp.example/ocsp".into()),
        ..Profile::default()
    };
    let authority = Authority::new(
        vec![CaDomain {
            name: "default".into(),
            issuer: issuer.clone(),
            profile,
        }],
        store,
        Arc::new(SystemClock),
    )
    .unwrap();
    Fixture {
        _dir: dir,
        keys,
        root,
        issuer,
        authority,
    }
}

fn csr(key: &PKey<Private>, cn: &str) -> Vec<u8> {
    let mut b = openssl::x509::X509ReqBuilder::new().unwrap();
    let mut n = openssl::x509::X509NameBuilder::new().unwrap();
    n.append_entry_by_text("CN", cn).unwrap();
    b.set_subject_name(&n.build()).unwrap();
    b.set_pubkey(key).unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build().to_der().unwrap()
}

async fn issue(f: &Fixture, cn: &str) -> IssuedCert {
    let key = est_keys::generate_key(KeyType::P256).unwrap();
    let id = Identity::User {
        name: "u".into(),
        names: NamePolicy::new(vec!["*".into()]),
    };
    f.authority
        .enroll(EnrollRequest {
            domain: "default",
            csr_der: &csr(&key, cn),
            identity: &id,
            renewal: None,
            origin: Default::default(),
        })
        .await
        .unwrap()
}

fn x509(der: &[u8]) -> X509 {
    X509::from_der(der).unwrap()
}

fn trust(f: &Fixture) -> X509Store {
    let mut b = X509StoreBuilder::new().unwrap();
    b.add_cert(x509(&f.root.cert_der)).unwrap();
    b.build()
}

/// OpenSSL's request for `leaf` (SHA-1 CertID, as `openssl ocsp` makes it).
fn openssl_request(f: &Fixture, leaf: &[u8]) -> Vec<u8> {
    let id = OcspCertId::from_cert(
        MessageDigest::sha1(),
        &x509(leaf),
        &x509(&f.issuer.cert_der),
    )
    .unwrap();
    let mut req = OcspRequest::new().unwrap();
    req.add_id(id).unwrap();
    req.to_der().unwrap()
}

/// Verifies a successful answer the way a relying party does (signature, and a responder that
/// is the CA or its delegate, up to the root), then returns (status, reason, revoked at).
fn openssl_status(
    f: &Fixture,
    answer: &OcspAnswer,
    leaf: &[u8],
) -> (OcspCertStatus, OcspRevokedStatus, Option<String>) {
    assert_eq!(answer.status, OcspResponseStatus::Successful);
    let resp = OsslResponse::from_der(&answer.der).unwrap();
    assert_eq!(resp.status(), OsslStatus::SUCCESSFUL);
    let basic = resp.basic().unwrap();
    let mut certs = Stack::new().unwrap();
    certs.push(x509(&f.issuer.cert_der)).unwrap();
    basic
        .verify(&certs, &trust(f), OcspFlag::empty())
        .expect("the answer verifies");
    let id = OcspCertId::from_cert(
        MessageDigest::sha1(),
        &x509(leaf),
        &x509(&f.issuer.cert_der),
    )
    .unwrap();
    let st = basic.find_status(&id).expect("a status for our CertID");
    st.check_validity(300, None).expect("thisUpdate/nextUpdate");
    (
        st.status,
        st.reason,
        st.revocation_time.map(|t| t.to_string()),
    )
}

fn basic_of(answer: &OcspAnswer) -> BasicOcspResponse {
    let outer = OcspResponse::from_der(&answer.der).unwrap();
    BasicOcspResponse::from_der(outer.response_bytes.unwrap().response.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn good_then_revoked_then_unknown_as_openssl_reads_them() {
    for key_type in [KeyType::P256, KeyType::Rsa2048] {
        let f = fixture(key_type).await;
        let a = issue(&f, "a.example").await;
        // The certificate names the responder (RFC 5280 §4.2.2.1).
        let text = String::from_utf8(x509(&a.der).to_text().unwrap()).unwrap();
        assert!(
            text.contains("OCSP - URI:http://ocsp.example/ocsp"),
            "{text}"
        );

        let answer = f.authority.ocsp(&openssl_request(&f, &a.der)).await;
        let (status, _, _) = openssl_status(&f, &answer, &a.der);
        assert_eq!(status, OcspCertStatus::GOOD, "{key_type:?}");
        // Validity as configured; no nonce asked, none sent; signed by the CA: no certs.
        let (produced, next) = (answer.produced_at.unwrap(), answer.next_update.unwrap());
        assert_eq!(
            next.duration_since(produced).unwrap(),
            Duration::from_secs(600)
        );
        assert!(!answer.has_nonce);
        let basic = basic_of(&answer);
        assert!(basic.certs.is_none());
        assert!(basic.tbs_response_data.response_extensions.is_none());
        let ca_key_hash = key_identifier(der::referenced::OwnedToRef::owned_to_ref(
            f.issuer.key.public_key_info(),
        ))
        .unwrap();
        assert_eq!(
            basic.tbs_response_data.responder_id,
            ResponderId::ByKey(der::asn1::OctetString::new(ca_key_hash).unwrap())
        );

        f.authority
            .revoke(
                &a.record.serial,
                CrlReason::KeyCompromise,
                None,
                "test",
                "test",
            )
            .await
            .unwrap();
        let answer = f.authority.ocsp(&openssl_request(&f, &a.der)).await;
        let (status, reason, at) = openssl_status(&f, &answer, &a.der);
        assert_eq!(status, OcspCertStatus::REVOKED);
        assert_eq!(reason, OcspRevokedStatus::KEY_COMPROMISE);
        assert!(at.is_some());

        // A serial this CA never issued, asked with a SHA-256 CertID.
        let id = cert_id(&f.issuer.cert, &[0x0b, 0xad, 0xc0, 0xde], OcspHash::Sha256).unwrap();
        let req = request_der(vec![id.clone()], None);
        let answer = f.authority.ocsp(&req).await;
        let basic = basic_of(&answer);
        assert_eq!(basic.tbs_response_data.responses.len(), 1);
        assert_eq!(basic.tbs_response_data.responses[0].cert_id, id);
        assert_eq!(
            basic.tbs_response_data.responses[0].cert_status,
            est_asn1::ocsp::CertStatus::Unknown(der::asn1::Null)
        );
    }
}

fn request_der(ids: Vec<est_asn1::ocsp::CertId>, nonce: Option<&[u8]>) -> Vec<u8> {
    use est_asn1::ocsp::{Request, TbsRequest};
    let ext = nonce.map(|n| {
        vec![x509_cert::ext::Extension {
            extn_id: est_asn1::ocsp::oids::NONCE,
            critical: false,
            extn_value: der::asn1::OctetString::new(
                der::asn1::OctetString::new(n).unwrap().to_der().unwrap(),
            )
            .unwrap(),
        }]
    });
    est_asn1::ocsp::OcspRequest {
        tbs_request: TbsRequest {
            version: 0,
            requestor_name: None,
            request_list: ids
                .into_iter()
                .map(|req_cert| Request {
                    req_cert,
                    single_request_extensions: None,
                })
                .collect(),
            request_extensions: ext,
        },
        optional_signature: None,
    }
    .to_der()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn several_certificates_a_nonce_and_the_refusals() {
    let f = fixture(KeyType::P256).await;
    let a = issue(&f, "a.example").await;
    let b = issue(&f, "b.example").await;
    f.authority
        .revoke(
            &b.record.serial,
            CrlReason::Unspecified,
            None,
            "test",
            "test",
        )
        .await
        .unwrap();
    let serial = |c: &IssuedCert| hex::decode(&c.record.serial).unwrap();
    let ids = vec![
        cert_id(&f.issuer.cert, &serial(&a), OcspHash::Sha256).unwrap(),
        cert_id(&f.issuer.cert, &serial(&b), OcspHash::Sha512).unwrap(),
        // Another issuer's CertID in the same request: unknown.
        cert_id(&f.root.cert, &serial(&a), OcspHash::Sha1).unwrap(),
    ];
    let answer = f
        .authority
        .ocsp(&request_der(ids.clone(), Some(&[0x5a; 32])))
        .await;
    assert!(answer.has_nonce);
    let basic = basic_of(&answer);
    let r = &basic.tbs_response_data.responses;
    use est_asn1::ocsp::CertStatus as S;
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].cert_status, S::Good(der::asn1::Null));
    // Revoked for an unspecified reason: no revocationReason, as on the CRL.
    assert!(matches!(r[1].cert_status, S::Revoked(i) if i.revocation_reason.is_none()));
    assert_eq!(r[2].cert_status, S::Unknown(der::asn1::Null));
    for (resp, id) in r.iter().zip(&ids) {
        assert_eq!(&resp.cert_id, id);
    }
    // RFC 8954: the nonce comes back as it was sent.
    let exts = basic.tbs_response_data.response_extensions.unwrap();
    let inner = der::asn1::OctetString::from_der(exts[0].extn_value.as_bytes()).unwrap();
    assert_eq!(inner.as_bytes(), [0x5a; 32]);

    // Refusals, each an OCSPResponse with its status and nothing else.
    let refused = |answer: OcspAnswer, status: OcspResponseStatus| {
        assert_eq!(answer.status, status);
        let outer = OcspResponse::from_der(&answer.der).unwrap();
        assert_eq!(outer.response_status, status);
        assert!(outer.response_bytes.is_none());
    };
    refused(
        f.authority.ocsp(b"not DER").await,
        OcspResponseStatus::MalformedRequest,
    );
    refused(
        f.authority
            .ocsp(&request_der(ids[..1].to_vec(), Some(&[1; 33])))
            .await,
        OcspResponseStatus::MalformedRequest,
    );
    refused(
        f.authority
            .ocsp(&request_der(vec![ids[0].clone(); 17], None))
            .await,
        OcspResponseStatus::MalformedRequest,
    );
    // Only other issuers: not ours to answer.
    refused(
        f.authority
            .ocsp(&request_der(vec![ids[2].clone()], None))
            .await,
        OcspResponseStatus::Unauthorized,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delegated_responder_signs_and_is_sent_along() {
    let mut f = fixture(KeyType::P256).await;
    let a = issue(&f, "a.example").await;
    let key = f
        .keys
        .generate(&KeyId("default-ocsp".into()), KeyType::P256)
        .unwrap();
    let cert = setup::ocsp_responder_certificate(
        &f.issuer,
        key.public_key_info().clone(),
        Name::from_str("CN=default OCSP Responder").unwrap(),
        Duration::from_secs(86400),
        SystemTime::now(),
    )
    .unwrap();
    let cert_der = cert.to_der().unwrap();
    // What it carries (RFC 6960 §4.2.2.2, §4.2.2.2.1).
    let text = String::from_utf8(x509(&cert_der).to_text().unwrap()).unwrap();
    assert!(text.contains("OCSP Signing"), "{text}");
    assert!(text.contains("OCSP No Check"), "{text}");
    assert!(!text.contains("Authority Information Access"), "{text}");

    // Refused: a certificate of another key, one without the EKU, one of another CA.
    let other = f.keys.generate(&KeyId("x".into()), KeyType::P256).unwrap();
    assert!(OcspResponder::new(cert_der.clone(), other.clone(), &f.issuer).is_err());
    let tls = setup::tls_server_certificate(
        &f.issuer,
        other.public_key_info().clone(),
        Name::from_str("CN=tls").unwrap(),
        &["tls.example"],
        &[],
        Duration::from_secs(86400),
        SystemTime::now(),
    )
    .unwrap();
    let e = OcspResponder::new(tls.to_der().unwrap(), other.clone(), &f.issuer).unwrap_err();
    assert!(e.to_string().contains("OCSPSigning"), "{e}");
    assert!(OcspResponder::new(cert_der.clone(), key.clone(), &f.root).is_err());

    let responder = OcspResponder::new(cert_der.clone(), key.clone(), &f.issuer).unwrap();
    f.authority = f
        .authority
        .with_ocsp_responder("default", responder)
        .unwrap();
    let answer = f.authority.ocsp(&openssl_request(&f, &a.der)).await;
    let (status, _, _) = openssl_status(&f, &answer, &a.der);
    assert_eq!(status, OcspCertStatus::GOOD);
    let basic = basic_of(&answer);
    assert_eq!(basic.certs.as_deref(), Some(&[cert][..]));
    let key_hash = key_identifier(der::referenced::OwnedToRef::owned_to_ref(
        key.public_key_info(),
    ))
    .unwrap();
    assert_eq!(
        basic.tbs_response_data.responder_id,
        ResponderId::ByKey(der::asn1::OctetString::new(key_hash).unwrap())
    );
    // Signed by the delegate, not the CA: the CA's key does not verify it.
    let mut certs = Stack::new().unwrap();
    certs.push(x509(&f.issuer.cert_der)).unwrap();
    let resp = OsslResponse::from_der(&answer.der).unwrap();
    assert!(
        resp.basic()
            .unwrap()
            .verify(&certs, &trust(&f), OcspFlag::NO_INTERN)
            .is_err()
    );
}

/// Several domains: two sharing one issuing CA (a certificate of either is known under that
/// CA's CertID), and a second issuing CA answered with its own key.
#[tokio::test(flavor = "multi_thread")]
async fn domains_sharing_an_issuer_and_a_second_ca() {
    let f = fixture(KeyType::P256).await;
    let second = setup::subordinate_ca(
        &f.root,
        f.keys.generate(&KeyId("i2".into()), KeyType::P256).unwrap(),
        Name::from_str("CN=Second Issuing,O=Estuary").unwrap(),
        Duration::from_secs(86400 * 1000),
        SystemTime::now(),
    )
    .unwrap();
    let domain = |name: &str, issuer: &Issuer| CaDomain {
        name: name.into(),
        issuer: issuer.clone(),
        profile: Profile::default(),
    };
    let authority = Authority::new(
        vec![
            domain("default", &f.issuer),
            domain("shared", &f.issuer),
            domain("second", &second),
        ],
        f.authority.store().clone(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let key = est_keys::generate_key(KeyType::P256).unwrap();
    let id = Identity::User {
        name: "u".into(),
        names: NamePolicy::new(vec!["*".into()]),
    };
    let shared = authority
        .enroll(EnrollRequest {
            domain: "shared",
            csr_der: &csr(&key, "s.example"),
            identity: &id,
            renewal: None,
            origin: Default::default(),
        })
        .await
        .unwrap();
    let in_second = authority
        .enroll(EnrollRequest {
            domain: "second",
            csr_der: &csr(&key, "t.example"),
            identity: &id,
            renewal: None,
            origin: Default::default(),
        })
        .await
        .unwrap();
    let answer = authority.ocsp(&openssl_request(&f, &shared.der)).await;
    let (status, _, _) = openssl_status(&f, &answer, &shared.der);
    assert_eq!(status, OcspCertStatus::GOOD);

    // The second CA's certificate, asked under the second CA: good, verified with its key.
    let sid = OcspCertId::from_cert(
        MessageDigest::sha1(),
        &x509(&in_second.der),
        &x509(&second.cert_der),
    )
    .unwrap();
    let mut req = OcspRequest::new().unwrap();
    req.add_id(sid).unwrap();
    let answer = authority.ocsp(&req.to_der().unwrap()).await;
    let resp = OsslResponse::from_der(&answer.der).unwrap();
    let basic = resp.basic().unwrap();
    let mut certs = Stack::new().unwrap();
    certs.push(x509(&second.cert_der)).unwrap();
    basic
        .verify(&certs, &trust(&f), OcspFlag::empty())
        .expect("signed by the second CA");
    let sid = OcspCertId::from_cert(
        MessageDigest::sha1(),
        &x509(&in_second.der),
        &x509(&second.cert_der),
    )
    .unwrap();
    assert_eq!(
        basic.find_status(&sid).unwrap().status,
        OcspCertStatus::GOOD
    );
    // The same serial asked under the first CA: not a certificate of that CA.
    let wrong = cert_id(
        &f.issuer.cert,
        &hex::decode(&in_second.record.serial).unwrap(),
        OcspHash::Sha1,
    )
    .unwrap();
    let answer = authority.ocsp(&request_der(vec![wrong], None)).await;
    assert_eq!(
        basic_of(&answer).tbs_response_data.responses[0].cert_status,
        est_asn1::ocsp::CertStatus::Unknown(der::asn1::Null)
    );
}
