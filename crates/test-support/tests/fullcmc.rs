//! /fullcmc over real TLS on loopback with our client library: the layers an RA and a
//! security-conscious client use (EnvelopedData to the CA's encryption certificate, CMC-20),
//! RA wrapping with nested PKIData and the RA controls an authorized RA may send (CMC-56,
//! CMC-59, CMC-61), Batch Requests (CMC-66), and pending with Query Pending (CMC-64, EST-100).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use der::{Decode, Encode};
use est_client::{ClientConfig, EstClient, KeyKind, San, Trust};
use est_cmc::client::{
    CertRequestBody, ID_REQUEST, RequestOptions, RequestSigner, build_pki_data, envelope_request,
    sign_request, verify_response,
};
use est_cmc::controls::{LraPopWitness, ModCertTemplate};
use est_cmc::crmf::CertTemplate;
use est_cmc::{
    BodyPartReference, CmcFailInfo, CmcStatus, OtherStatusInfo, PkiData, TaggedAttribute,
};
use openssl::pkey::{PKey, Private};
use openssl::x509::store::{X509Store, X509StoreBuilder};
use test_support::*;
use x509_cert::Certificate;
use zeroize::Zeroizing;

fn config(s: &TestServer, label: &str, basic: bool) -> ClientConfig {
    ClientConfig {
        url: s.url(),
        label: (!label.is_empty()).then(|| label.into()),
        trust: Trust::Explicit(vec![s.pki.root_x509()]),
        identity: None,
        basic: basic.then(|| (ALICE.0.into(), Zeroizing::new(ALICE.1.into()))),
        max_tls12: false,
        http_auth: Default::default(),
    }
}

async fn post(s: &TestServer, label: &str, basic: bool, der: &[u8]) -> (u16, Vec<u8>) {
    let mut c = EstClient::new(config(s, label, basic))
        .unwrap()
        .connect()
        .await
        .unwrap();
    c.full_cmc(der).await.unwrap()
}

fn trust(s: &TestServer) -> X509Store {
    let mut b = X509StoreBuilder::new().unwrap();
    b.add_cert(s.pki.root_x509()).unwrap();
    b.build()
}

fn p10(key: &PKey<Private>, cn: &str) -> Vec<u8> {
    let ski = est_client::subject_key_id(key).unwrap();
    est_client::build_csr_full(
        key,
        &format!("CN={cn}"),
        &[San::Dns(cn.into())],
        None,
        vec![est_client::subject_key_id_extension(&ski).unwrap()],
        Vec::new(),
    )
    .unwrap()
}

/// A client's Full PKI Request: PKCS#10 signed with its own key (CMC-17).
fn client_request(key: &PKey<Private>, cn: &str) -> (Vec<u8>, PkiData) {
    let opts = RequestOptions::random().unwrap();
    let pki = build_pki_data(&opts, &CertRequestBody::Pkcs10(p10(key, cn)), key).unwrap();
    let ski = est_client::subject_key_id(key).unwrap();
    let der = sign_request(&pki, &RequestSigner::RequestKey { key, key_id: &ski }).unwrap();
    (der, pki)
}

fn cert_subject(c: &Certificate) -> String {
    c.tbs_certificate().subject().to_string()
}

/// An RA certificate of this CA (id-kp-cmcRA, EST-48), enrolled on the "ra" label.
async fn ra_credentials(s: &TestServer) -> (PKey<Private>, Certificate) {
    let key = est_client::generate_key(KeyKind::P256).unwrap();
    let csr = est_client::build_csr(&key, "CN=ra.example", &[], None).unwrap();
    let mut c = EstClient::new(config(s, "ra", true))
        .unwrap()
        .connect()
        .await
        .unwrap();
    match c.simple_enroll(&csr).await.unwrap() {
        est_client::EnrollOutcome::Issued(certs) => (key, certs[0].clone()),
        other => panic!("{other:?}"),
    }
}

/// The RA's PKIData around `nested` client requests (cmsSequence) with `controls`, signed with
/// the RA certificate (CMC-57: the client requests are not altered).
fn ra_wrap(
    ra: &(PKey<Private>, Certificate),
    nested: &[(u32, &[u8])],
    controls: Vec<TaggedAttribute>,
    req_sequence: Vec<est_cmc::TaggedRequest>,
) -> Vec<u8> {
    let mut control_sequence = vec![
        TaggedAttribute::single(
            100,
            est_cmc::oids::SENDER_NONCE,
            &der::asn1::OctetString::new(rand16()).unwrap(),
        )
        .unwrap(),
    ];
    control_sequence.extend(controls);
    let pki = PkiData {
        control_sequence,
        req_sequence,
        cms_sequence: nested
            .iter()
            .map(|(id, der)| est_cmc::types::TaggedContentInfo {
                body_part_id: *id,
                content_info: cms::content_info::ContentInfo::from_der(der).unwrap(),
            })
            .collect(),
        other_msg_sequence: Vec::new(),
    };
    let signer = est_cms::OpensslSigner::new(ra.0.clone(), ra.1.clone()).unwrap();
    sign_request(&pki, &RequestSigner::Certificate(&signer)).unwrap()
}

fn rand16() -> Vec<u8> {
    let mut n = vec![0u8; 16];
    openssl::rand::rand_bytes(&mut n).unwrap();
    n
}

fn status_of(
    summary: &est_cmc::ResponseSummary,
    r: &BodyPartReference,
) -> Option<est_cmc::CmcStatusInfoV2> {
    summary
        .statuses
        .iter()
        .find(|s| s.body_list.contains(r))
        .cloned()
}

fn fail_info(s: &est_cmc::CmcStatusInfoV2) -> Option<CmcFailInfo> {
    match s.other_info {
        Some(OtherStatusInfo::FailInfo(f)) => Some(f),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn enveloped_requests_are_opened_with_the_ca_encryption_key() {
    let s = TestServer::start(ServerOptions::default()).await;
    let key = est_client::generate_key(KeyKind::P256).unwrap();
    let (signed, _) = client_request(&key, "enveloped.example");
    let enveloped = envelope_request(&signed, &s.cmc_encryption_cert).unwrap();
    let (status, der) = post(&s, "", true, &enveloped).await;
    assert_eq!(status, 200);
    let v = verify_response(&der, &trust(&s)).unwrap();
    assert!(
        v.certificates
            .iter()
            .any(|c| cert_subject(c) == "CN=enveloped.example")
    );
    // SignedData(EnvelopedData(SignedData(PKIData))), the outer signed with the request key.
    let key2 = est_client::generate_key(KeyKind::P256).unwrap();
    let (signed2, _) = client_request(&key2, "triple.example");
    let env2 = envelope_request(&signed2, &s.cmc_encryption_cert).unwrap();
    let ski = est_client::subject_key_id(&key2).unwrap();
    let content = cms::content_info::ContentInfo::from_der(&env2)
        .unwrap()
        .content
        .to_der()
        .unwrap();
    let triple =
        est_cms::sign_with_key_id(est_cms::oids::ID_ENVELOPED_DATA, &content, &key2, &ski, &[])
            .unwrap();
    let (status, der) = post(&s, "", true, &triple).await;
    assert_eq!(status, 200);
    let v = verify_response(&der, &trust(&s)).unwrap();
    assert!(
        v.certificates
            .iter()
            .any(|c| cert_subject(c) == "CN=triple.example")
    );
    // Encrypted to some other certificate: badMessageCheck on body part 0 (CMC-19).
    let other = est_client::generate_key(KeyKind::Rsa2048).unwrap();
    let other_cert = {
        let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(
            &other.public_key_to_der().unwrap(),
        )
        .unwrap();
        est_ca::setup::cmc_encryption_certificate(
            &s.pki.issuing,
            spki,
            "CN=Someone else".parse().unwrap(),
            std::time::Duration::from_secs(3600),
            std::time::SystemTime::now(),
        )
        .unwrap()
    };
    let (signed3, _) = client_request(&key, "wrong-recipient.example");
    let (status, der) = post(
        &s,
        "",
        true,
        &envelope_request(&signed3, &other_cert).unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    let v = verify_response(&der, &trust(&s)).unwrap();
    let st = status_of(&v.summary, &BodyPartReference::Id(0)).unwrap();
    assert_eq!(fail_info(&st), Some(CmcFailInfo::BAD_MESSAGE_CHECK));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authorized_ra_wraps_modifies_and_vouches_for_client_requests() {
    let s = TestServer::start(ServerOptions::default()).await;
    let ra = ra_credentials(&s).await;

    // A client's Full PKI Request wrapped as cmsSequence entry 7, no HTTP credentials: the RA
    // vouches for it; its Modify Certification Request renames the subject (CMC-59).
    let ck = est_client::generate_key(KeyKind::P256).unwrap();
    let (client, _) = client_request(&ck, "device-17.example");
    let new_subject: x509_cert::name::Name = "CN=renamed-17.example,O=RA".parse().unwrap();
    let modify = TaggedAttribute::single(
        101,
        est_cmc::oids::MOD_CERT_TEMPLATE,
        &ModCertTemplate {
            pki_data_reference: vec![7],
            cert_references: vec![ID_REQUEST],
            replace: true,
            cert_template: CertTemplate {
                subject: Some(new_subject.clone()),
                ..Default::default()
            },
        },
    )
    .unwrap();
    let wrapped = ra_wrap(&ra, &[(7, &client)], vec![modify.clone()], Vec::new());
    let (status, der) = post(&s, "cmc-ra", false, &wrapped).await;
    let v = verify_response(&der, &trust(&s)).unwrap();
    assert_eq!(status, 200, "{:?}", v.summary.statuses);
    let issued = v
        .certificates
        .iter()
        .find(|c| c.tbs_certificate().subject() == &new_subject)
        .expect("the RA's subject applies");
    assert_eq!(
        issued
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap(),
        ck.public_key_to_der().unwrap()
    );
    // The status of the wrapped request is addressed by its path (CMC-7).
    let st = status_of(&v.summary, &BodyPartReference::Path(vec![7, ID_REQUEST])).unwrap();
    assert_eq!(st.status, CmcStatus::SUCCESS);

    // The same RA on a label that authorizes no RA: the whole request is refused (CMC-56),
    // nothing issued.
    let ck2 = est_client::generate_key(KeyKind::P256).unwrap();
    let (client2, _) = client_request(&ck2, "device-18.example");
    let wrapped = ra_wrap(&ra, &[(7, &client2)], vec![modify], Vec::new());
    let (status, der) = post(&s, "main", false, &wrapped).await;
    assert_eq!(status, 400);
    let v = verify_response(&der, &trust(&s)).unwrap();
    assert!(v.certificates.iter().all(|c| {
        c.tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap()
            != ck2.public_key_to_der().unwrap()
    }));
    let st = &v.summary.statuses[0];
    assert_eq!(fail_info(st), Some(CmcFailInfo::BAD_IDENTITY));
    assert!(
        st.status_string.as_deref().unwrap_or("").contains("CMC-56"),
        "{st:?}"
    );

    // CRMF raVerified POP in the RA's own reqSequence: accepted with an RA POP Witness
    // (CMC-61), popFailed without.
    let k3 = est_client::generate_key(KeyKind::P256).unwrap();
    let crm = |id: u32, key: &PKey<Private>, cn: &str| {
        let spki =
            x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der().unwrap())
                .unwrap();
        let req = est_cmc::crmf::CertRequest {
            cert_req_id: der::asn1::Int::from_der(&id.to_der().unwrap()).unwrap(),
            cert_template: CertTemplate {
                subject: Some(format!("CN={cn}").parse().unwrap()),
                public_key: Some(spki),
                ..Default::default()
            },
            controls: None,
        };
        est_cmc::TaggedRequest::Crm(
            est_cmc::crmf::CertReqMsg::new(
                req,
                Some(est_cmc::crmf::ProofOfPossession::RaVerified(
                    der::asn1::Null,
                )),
                None,
            )
            .unwrap(),
        )
    };
    let witness = TaggedAttribute::single(
        102,
        est_cmc::oids::LRA_POP_WITNESS,
        &LraPopWitness {
            pki_data_bodyid: 0,
            body_ids: vec![11],
        },
    )
    .unwrap();
    let k4 = est_client::generate_key(KeyKind::P256).unwrap();
    let wrapped = ra_wrap(
        &ra,
        &[],
        vec![witness],
        vec![
            crm(11, &k3, "ra-verified.example"),
            crm(12, &k4, "not-witnessed.example"),
        ],
    );
    let (status, der) = post(&s, "cmc-ra", false, &wrapped).await;
    assert_eq!(status, 200);
    let v = verify_response(&der, &trust(&s)).unwrap();
    assert!(
        v.certificates
            .iter()
            .any(|c| cert_subject(c) == "CN=ra-verified.example")
    );
    assert!(
        !v.certificates
            .iter()
            .any(|c| cert_subject(c) == "CN=not-witnessed.example")
    );
    let st = status_of(&v.summary, &BodyPartReference::Id(12)).unwrap();
    assert_eq!(fail_info(&st), Some(CmcFailInfo::POP_FAILED));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_requests_get_one_signed_response_each() {
    let s = TestServer::start(ServerOptions::default()).await;
    let ra = ra_credentials(&s).await;
    let (ka, kb) = (
        est_client::generate_key(KeyKind::P256).unwrap(),
        est_client::generate_key(KeyKind::P256).unwrap(),
    );
    let (a, pa) = client_request(&ka, "batch-a.example");
    let (b, _) = client_request(&kb, "batch-b.example");
    // A third member whose signature is broken: its failure stays inside its own response.
    let mut c = client_request(&kb, "batch-c.example").0;
    let n = c.len();
    c[n - 3] ^= 1;
    let batch =
        TaggedAttribute::single(103, est_cmc::oids::BATCH_REQUESTS, &vec![21u32, 22, 23]).unwrap();
    let wrapped = ra_wrap(
        &ra,
        &[(21, &a), (22, &b), (23, &c)],
        vec![batch],
        Vec::new(),
    );
    let (status, der) = post(&s, "cmc-ra", false, &wrapped).await;
    assert_eq!(status, 200);
    let outer = verify_response(&der, &trust(&s)).unwrap();
    // The outer PKIResponse: batchResponses naming three cmsSequence entries.
    let v = est_cms::verify(&der, &trust(&s), &Default::default()).unwrap();
    let resp = est_cmc::PkiResponse::from_der(&v.content).unwrap();
    let listed: Vec<u32> = resp
        .control_sequence
        .iter()
        .find(|c| c.attr_type == est_cmc::oids::BATCH_RESPONSES)
        .map(|c| c.attr_values.iter().next().unwrap().decode_as().unwrap())
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(resp.cms_sequence.len(), 3);
    let mut subjects = Vec::new();
    let mut failed = 0;
    for entry in &resp.cms_sequence {
        assert!(listed.contains(&entry.body_part_id));
        let inner = verify_response(&entry.content_info.to_der().unwrap(), &trust(&s)).unwrap();
        if let Some(st) = inner
            .summary
            .statuses
            .iter()
            .find(|x| x.status == CmcStatus::FAILED)
        {
            assert_eq!(fail_info(st), Some(CmcFailInfo::BAD_MESSAGE_CHECK));
            failed += 1;
        }
        subjects.extend(inner.certificates.iter().map(cert_subject));
        // Each member's own nonce is answered in its own response (CMC-51).
        if inner
            .certificates
            .iter()
            .any(|c| cert_subject(c) == "CN=batch-a.example")
        {
            let sent = est_cmc::Controls::read(&pa).unwrap().sender_nonce;
            assert_eq!(inner.summary.recipient_nonce, sent);
        }
    }
    assert!(subjects.contains(&"CN=batch-a.example".to_string()));
    assert!(subjects.contains(&"CN=batch-b.example".to_string()));
    assert_eq!(failed, 1);
    assert!(!outer.simple);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_then_query_pending_issues_after_approval() {
    let s = TestServer::start(ServerOptions::default()).await;
    let key = est_client::generate_key(KeyKind::P256).unwrap();
    let (req, _) = client_request(&key, "held.example");
    let (status, der) = post(&s, "manual", true, &req).await;
    assert_eq!(status, 200, "EST-100: pending in-band");
    let v = verify_response(&der, &trust(&s)).unwrap();
    let st = status_of(&v.summary, &BodyPartReference::Id(ID_REQUEST)).unwrap();
    assert_eq!(st.status, CmcStatus::PENDING);
    let Some(OtherStatusInfo::PendInfo(pend)) = st.other_info.clone() else {
        panic!("{st:?}")
    };
    let token = pend.pend_token.as_bytes().to_vec();

    // Query Pending: a PKIData with only the queryPending control, signed by the held key.
    let ski = est_client::subject_key_id(&key).unwrap();
    let query = |token: &[u8]| {
        let pki = PkiData {
            control_sequence: vec![
                TaggedAttribute::single(
                    1,
                    est_cmc::oids::SENDER_NONCE,
                    &der::asn1::OctetString::new(rand16()).unwrap(),
                )
                .unwrap(),
                TaggedAttribute::single(
                    2,
                    est_cmc::oids::QUERY_PENDING,
                    &der::asn1::OctetString::new(token).unwrap(),
                )
                .unwrap(),
            ],
            ..Default::default()
        };
        sign_request(
            &pki,
            &RequestSigner::RequestKey {
                key: &key,
                key_id: &ski,
            },
        )
        .unwrap()
    };
    let (status, der) = post(&s, "manual", true, &query(&token)).await;
    assert_eq!(status, 200);
    let v = verify_response(&der, &trust(&s)).unwrap();
    let again = status_of(&v.summary, &BodyPartReference::Id(2)).unwrap();
    assert_eq!(again.status, CmcStatus::PENDING);
    // CMC-64: the same pendInfo as the original.
    assert_eq!(again.other_info, Some(OtherStatusInfo::PendInfo(pend)));

    // The operator approves; the next query gets the certificate.
    use est_ca::Store;
    assert!(
        s.store
            .transition_pending(&hex::encode(&token), "pending", "approved", Some(1), None)
            .await
            .unwrap()
    );
    let (status, der) = post(&s, "manual", true, &query(&token)).await;
    assert_eq!(status, 200);
    let v = verify_response(&der, &trust(&s)).unwrap();
    assert_eq!(
        status_of(&v.summary, &BodyPartReference::Id(2))
            .unwrap()
            .status,
        CmcStatus::SUCCESS
    );
    let cert = v
        .certificates
        .iter()
        .find(|c| cert_subject(c) == "CN=held.example")
        .unwrap();
    assert_eq!(
        cert.tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap(),
        key.public_key_to_der().unwrap()
    );
    // An unknown token: failed, badRequest.
    let (status, _) = post(&s, "manual", true, &query(&rand16())).await;
    assert_eq!(status, 400);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn confirm_required_then_confirm_certificate_acceptance() {
    let s = TestServer::start(ServerOptions::default()).await;
    let key = est_client::generate_key(KeyKind::P256).unwrap();
    let (req, _) = client_request(&key, "confirm.example");
    let (status, der) = post(&s, "cmc-confirm", true, &req).await;
    assert_eq!(status, 200);
    let v = verify_response(&der, &trust(&s)).unwrap();
    assert_eq!(
        status_of(&v.summary, &BodyPartReference::Id(ID_REQUEST))
            .unwrap()
            .status,
        CmcStatus::CONFIRM_REQUIRED
    );
    let cert = v
        .certificates
        .iter()
        .find(|c| cert_subject(c) == "CN=confirm.example")
        .unwrap()
        .clone();
    // The confirmation: CMCCertId = IssuerAndSerialNumber of the certificate, signed with it.
    let confirm_for = |cid: est_cmc::controls::CmcCertId| {
        let pki = PkiData {
            control_sequence: vec![
                TaggedAttribute::single(
                    1,
                    est_cmc::oids::SENDER_NONCE,
                    &der::asn1::OctetString::new(rand16()).unwrap(),
                )
                .unwrap(),
                TaggedAttribute::single(2, est_cmc::oids::CONFIRM_CERT_ACCEPTANCE, &cid).unwrap(),
            ],
            ..Default::default()
        };
        let signer = est_cms::OpensslSigner::new(key.clone(), cert.clone()).unwrap();
        sign_request(&pki, &RequestSigner::Certificate(&signer)).unwrap()
    };
    let cid = est_cms::issuer_and_serial(&cert);
    let (status, der) = post(&s, "cmc-confirm", true, &confirm_for(cid.clone())).await;
    assert_eq!(status, 200);
    let v = verify_response(&der, &trust(&s)).unwrap();
    assert!(
        !v.simple,
        "a Full PKI Response answers the confirmation (CMC-69)"
    );
    assert_eq!(
        status_of(&v.summary, &BodyPartReference::Id(2))
            .unwrap()
            .status,
        CmcStatus::SUCCESS
    );
    // A serial this CA never issued: badCertId.
    let mut wrong = cid;
    wrong.serial_number = x509_cert::serial_number::SerialNumber::new(&[0x42; 9]).unwrap();
    let (status, der) = post(&s, "cmc-confirm", true, &confirm_for(wrong)).await;
    assert_eq!(status, 400);
    let v = verify_response(&der, &trust(&s)).unwrap();
    let st = status_of(&v.summary, &BodyPartReference::Id(2)).unwrap();
    assert_eq!(fail_info(&st), Some(CmcFailInfo::BAD_CERT_ID));
    s.shutdown().await;
}

/// A PKIData with a fresh senderNonce and these controls.
fn controls_only(controls: Vec<(u32, der::asn1::ObjectIdentifier, Vec<u8>)>) -> PkiData {
    let mut control_sequence = vec![
        TaggedAttribute::single(
            1,
            est_cmc::oids::SENDER_NONCE,
            &der::asn1::OctetString::new(rand16()).unwrap(),
        )
        .unwrap(),
    ];
    for (id, oid, value) in controls {
        control_sequence.push(TaggedAttribute {
            body_part_id: id,
            attr_type: oid.into(),
            attr_values: der::asn1::SetOfVec::try_from(vec![der::Any::from_der(&value).unwrap()])
                .unwrap(),
        });
    }
    PkiData {
        control_sequence,
        ..Default::default()
    }
}

async fn enroll(s: &TestServer, key: &PKey<Private>, cn: &str) -> Certificate {
    let (req, _) = client_request(key, cn);
    let (status, der) = post(s, "", true, &req).await;
    assert_eq!(status, 200);
    let v = verify_response(&der, &trust(s)).unwrap();
    v.certificates
        .into_iter()
        .find(|c| cert_subject(c) == format!("CN={cn}"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_requests_and_get_crl() {
    use x509_cert::ext::pkix::crl::CrlReason;
    let s = TestServer::start(ServerOptions::default()).await;
    let key = est_client::generate_key(KeyKind::P256).unwrap();
    let cert = enroll(&s, &key, "revoke-me.example").await;
    let serial = est_ca::serial_hex(cert.tbs_certificate().serial_number());
    let rr = est_cmc::client::revoke_request(&cert, CrlReason::KeyCompromise, None, Some("lost"))
        .unwrap();
    // A fresh senderNonce each time (CMC-53).
    let pki = || {
        controls_only(vec![(
            2,
            est_cmc::oids::REVOKE_REQUEST,
            rr.to_der().unwrap(),
        )])
    };

    // Bob (HTTP) is neither holder nor requester: badIdentity, nothing revoked.
    let mut cfg = config(&s, "", false);
    cfg.basic = Some((BOB.0.into(), Zeroizing::new(BOB.1.into())));
    let other = est_client::generate_key(KeyKind::P256).unwrap();
    let bob_cert = {
        let (req, _) = client_request(&other, "bob.example");
        let mut c = EstClient::new(cfg.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let (st, der) = c.full_cmc(&req).await.unwrap();
        assert_eq!(st, 200);
        verify_response(&der, &trust(&s))
            .unwrap()
            .certificates
            .into_iter()
            .find(|c| cert_subject(c) == "CN=bob.example")
            .unwrap()
    };
    let bob_signer = est_cms::OpensslSigner::new(other.clone(), bob_cert).unwrap();
    let by_bob = sign_request(&pki(), &RequestSigner::Certificate(&bob_signer)).unwrap();
    let mut c = EstClient::new(cfg).unwrap().connect().await.unwrap();
    let (status, der) = c.full_cmc(&by_bob).await.unwrap();
    assert_eq!(status, 400);
    let v = verify_response(&der, &trust(&s)).unwrap();
    assert_eq!(
        fail_info(&status_of(&v.summary, &BodyPartReference::Id(2)).unwrap()),
        Some(CmcFailInfo::BAD_IDENTITY)
    );
    use est_ca::Store;
    assert!(
        s.store
            .certificate_by_serial(&serial)
            .await
            .unwrap()
            .unwrap()
            .revocation
            .is_none()
    );

    // Signed by the certificate itself: revoked; the answer is a Full PKI Response.
    let signer = est_cms::OpensslSigner::new(key.clone(), cert.clone()).unwrap();
    let by_holder = sign_request(&pki(), &RequestSigner::Certificate(&signer)).unwrap();
    let (status, der) = post(&s, "", false, &by_holder).await;
    assert_eq!(
        status,
        200,
        "{:?}",
        verify_response(&der, &trust(&s)).unwrap().summary.statuses
    );
    let v = verify_response(&der, &trust(&s)).unwrap();
    assert_eq!(
        status_of(&v.summary, &BodyPartReference::Id(2))
            .unwrap()
            .status,
        CmcStatus::SUCCESS
    );
    let rec = s
        .store
        .certificate_by_serial(&serial)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.status, est_ca::CertStatus::Revoked);
    assert_eq!(rec.revocation.unwrap().reason, 1);

    // Get CRL (CMC-71): the CRL comes back in `crls` and lists the serial.
    let issuer = s.pki.issuing.cert.tbs_certificate().subject().clone();
    let gc = est_cmc::controls::GetCrl {
        issuer_name: issuer,
        crl_name: None,
        time: None,
        reasons: None,
    };
    let pki = controls_only(vec![(3, est_cmc::oids::GET_CRL, gc.to_der().unwrap())]);
    let k2 = est_client::generate_key(KeyKind::P256).unwrap();
    let c2 = enroll(&s, &k2, "crl-reader.example").await;
    let reader = est_cms::OpensslSigner::new(k2, c2).unwrap();
    let (status, der) = post(
        &s,
        "",
        true,
        &sign_request(&pki, &RequestSigner::Certificate(&reader)).unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let ci = cms::content_info::ContentInfo::from_der(&der).unwrap();
    let sd: cms::signed_data::SignedData = ci.content.decode_as().unwrap();
    let crls = sd.crls.expect("crls in the response");
    let cms::revocation::RevocationInfoChoice::Crl(crl) = crls.0.iter().next().unwrap() else {
        panic!()
    };
    assert!(
        crl.tbs_cert_list
            .revoked_certificates
            .iter()
            .flatten()
            .any(|r| est_ca::serial_hex(&r.serial_number) == serial)
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_revocation_with_the_shared_secret_as_passphrase() {
    use x509_cert::ext::pkix::crl::CrlReason;
    let s = TestServer::start(ServerOptions::default()).await;
    s.authority
        .add_cmc_secret("dev-42", b"the-shared-secret-42", "", "")
        .await
        .unwrap();
    // Enrolled with Identity Proof V2 and no HTTP credentials.
    let key = est_client::generate_key(KeyKind::P256).unwrap();
    let mut opts = RequestOptions::random().unwrap();
    opts.identity = Some(est_cmc::client::SharedSecret {
        ident: "dev-42".into(),
        secret: Zeroizing::new(b"the-shared-secret-42".to_vec()),
    });
    let pki = build_pki_data(
        &opts,
        &CertRequestBody::Pkcs10(p10(&key, "dev-42.example")),
        &key,
    )
    .unwrap();
    let ski = est_client::subject_key_id(&key).unwrap();
    let req = sign_request(
        &pki,
        &RequestSigner::RequestKey {
            key: &key,
            key_id: &ski,
        },
    )
    .unwrap();
    let (status, der) = post(&s, "", false, &req).await;
    assert_eq!(status, 200);
    let cert = verify_response(&der, &trust(&s))
        .unwrap()
        .certificates
        .into_iter()
        .find(|c| cert_subject(c) == "CN=dev-42.example")
        .unwrap();
    let serial = est_ca::serial_hex(cert.tbs_certificate().serial_number());

    let unsigned = |pass: &[u8]| {
        let rr = est_cmc::client::revoke_request(&cert, CrlReason::Superseded, Some(pass), None)
            .unwrap();
        est_cmc::client::unsigned_request(&controls_only(vec![(
            2,
            est_cmc::oids::REVOKE_REQUEST,
            rr.to_der().unwrap(),
        )]))
        .unwrap()
    };
    // A wrong passphrase: badIdentity.
    let (status, der) = post(&s, "", false, &unsigned(b"not-the-secret-0000")).await;
    assert_eq!(status, 400);
    let v = verify_response(&der, &trust(&s)).unwrap();
    assert_eq!(
        fail_info(&status_of(&v.summary, &BodyPartReference::Id(2)).unwrap()),
        Some(CmcFailInfo::BAD_IDENTITY)
    );
    // The right one: revoked.
    let (status, der) = post(&s, "", false, &unsigned(b"the-shared-secret-42")).await;
    assert_eq!(status, 200);
    let v = verify_response(&der, &trust(&s)).unwrap();
    assert!(!v.simple);
    use est_ca::Store;
    let rec = s
        .store
        .certificate_by_serial(&serial)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.status, est_ca::CertStatus::Revoked);
    // An unsigned request may carry nothing but revocations.
    let (req2, _) = client_request(&key, "sneaky.example");
    let pki2 =
        est_cmc::PkiData::from_der(&est_cms::ParsedSignedData::parse(&req2).unwrap().content)
            .unwrap();
    let (status, _) = post(
        &s,
        "",
        true,
        &est_cmc::client::unsigned_request(&pki2).unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    s.shutdown().await;
}

/// CMC-67: a key that cannot sign proves possession by decryption. Round one (CRMF with
/// keyEncipherment / keyAgreement POP, in AuthenticatedData) gets popRequired and an Encrypted
/// POP and issues nothing; the POP value decrypts with `openssl cms -decrypt` to what the
/// witness hashes (ktri for RSA, kari for EC); a wrong Decrypted POP is popFailed and issues
/// nothing; the right one issues the certificate for the key.
#[tokio::test(flavor = "multi_thread")]
async fn encrypted_and_decrypted_pop_for_keys_that_cannot_sign() {
    use est_ca::Store;
    let s = TestServer::start(ServerOptions::default()).await;
    s.authority
        .add_cmc_secret("enc-1", b"the-shared-secret-enc-1", "", "")
        .await
        .unwrap();
    let secret = est_cmc::client::SharedSecret {
        ident: "enc-1".into(),
        secret: Zeroizing::new(b"the-shared-secret-enc-1".to_vec()),
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut others = Vec::new();
    for (name, kind) in [("rsa", KeyKind::Rsa2048), ("ec", KeyKind::P256)] {
        let key = est_client::generate_key(kind).unwrap();
        let cn = format!("enc-{name}.example");
        let mut opts = RequestOptions::random().unwrap();
        opts.identity = Some(secret.clone());
        let body = CertRequestBody::CrmfEncryption {
            subject: est_client::parse_subject(&format!("CN={cn}")).unwrap(),
            extensions: Vec::new(),
        };
        let pki = build_pki_data(&opts, &body, &key).unwrap();
        let req = sign_request(&pki, &RequestSigner::SharedSecret(&secret)).unwrap();
        let before = s.store.count_certificates().await.unwrap();
        let (status, der) = post(&s, "", false, &req).await;
        assert_eq!(status, 200, "{name}");
        let v = verify_response(&der, &trust(&s)).unwrap();
        let st = status_of(&v.summary, &BodyPartReference::Id(ID_REQUEST)).unwrap();
        assert_eq!(st.status, CmcStatus::POP_REQUIRED, "{name}: {st:?}");
        assert_eq!(v.summary.encrypted_pop.len(), 1, "{name}");
        assert!(
            v.certificates
                .iter()
                .all(|c| cert_subject(c) != format!("CN={cn}"))
        );
        assert_eq!(
            s.store.count_certificates().await.unwrap(),
            before,
            "{name}: nothing issued"
        );
        let challenge = v.summary.encrypted_pop[0].clone();

        // An independent decryption of the challenge: openssl cms -decrypt, then the witness.
        let dir = tmp.path();
        std::fs::write(
            dir.join(format!("{name}.cms")),
            challenge.cms.to_der().unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{name}.key")),
            key.private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        let out = std::process::Command::new("openssl")
            .args(["cms", "-decrypt", "-binary", "-inform", "DER", "-in"])
            .arg(dir.join(format!("{name}.cms")))
            .arg("-inkey")
            .arg(dir.join(format!("{name}.key")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout.len(), est_cmc::encrypted_pop::POP_VALUE_LEN);
        assert_eq!(
            openssl::sha::sha256(&out.stdout).as_slice(),
            challenge.witness.as_bytes(),
            "{name}: the decrypted value is what the witness hashes"
        );

        let second = |tamper: bool| {
            let mut next = RequestOptions::continuing(
                opts.transaction_id.clone(),
                v.summary.sender_nonce.clone(),
            )
            .unwrap();
            next.identity = Some(secret.clone());
            let mut pki = est_cmc::client::build_decrypted_pop(&next, &challenge, &key).unwrap();
            if tamper {
                let attr = pki
                    .control_sequence
                    .iter_mut()
                    .find(|a| a.attr_type == est_cmc::oids::DECRYPTED_POP)
                    .unwrap();
                let mut d: est_cmc::controls::DecryptedPop =
                    attr.attr_values.iter().next().unwrap().decode_as().unwrap();
                let mut pop = d.the_pop.as_bytes().to_vec();
                pop[0] ^= 1;
                d.the_pop = der::asn1::OctetString::new(pop).unwrap();
                *attr = TaggedAttribute::single(
                    est_cmc::client::ID_DECRYPTED_POP,
                    est_cmc::oids::DECRYPTED_POP,
                    &d,
                )
                .unwrap();
            }
            sign_request(&pki, &RequestSigner::SharedSecret(&secret)).unwrap()
        };
        // A wrong answer: popFailed, nothing issued (RFC 5272 §6.7 step 5).
        let (status, der) = post(&s, "", false, &second(true)).await;
        assert_eq!(status, 400, "{name}");
        let bad = verify_response(&der, &trust(&s)).unwrap();
        let st = status_of(&bad.summary, &BodyPartReference::Id(ID_REQUEST)).unwrap();
        assert_eq!(
            fail_info(&st),
            Some(CmcFailInfo::POP_FAILED),
            "{name}: {st:?}"
        );
        assert_eq!(s.store.count_certificates().await.unwrap(), before);
        // The right answer: the certificate for this key.
        let (status, der) = post(&s, "", false, &second(false)).await;
        assert_eq!(status, 200, "{name}");
        let ok = verify_response(&der, &trust(&s)).unwrap();
        let spki = key.public_key_to_der().unwrap();
        let cert = ok
            .certificates
            .iter()
            .find(|c| {
                c.tbs_certificate()
                    .subject_public_key_info()
                    .to_der()
                    .unwrap()
                    == spki
            })
            .unwrap_or_else(|| panic!("{name}: no certificate for the key"));
        assert_eq!(cert_subject(cert), format!("CN={cn}"));
        assert_eq!(s.store.count_certificates().await.unwrap(), before + 1);
        others.push((key, challenge));
    }
    // One key's answer does not stand for another key's request: the challenge of the RSA
    // request answered correctly, but sent with the EC request in its place.
    let (ec_key, ec_challenge) = &others[1];
    let (_, rsa_challenge) = &others[0];
    let opts = RequestOptions::random().unwrap();
    let mut pki = est_cmc::client::build_decrypted_pop(&opts, ec_challenge, ec_key).unwrap();
    pki.req_sequence = vec![rsa_challenge.request.clone()];
    // Authenticated by the MAC alone (Identification names its secret, no identity proof).
    pki.control_sequence.push(
        TaggedAttribute::single(
            est_cmc::client::ID_IDENTIFICATION,
            est_cmc::oids::IDENTIFICATION,
            &secret.ident,
        )
        .unwrap(),
    );
    let before = s.store.count_certificates().await.unwrap();
    let (status, der) = post(
        &s,
        "",
        false,
        &sign_request(&pki, &RequestSigner::SharedSecret(&secret)).unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    let v = verify_response(&der, &trust(&s)).unwrap();
    let st = status_of(&v.summary, &BodyPartReference::Id(ID_REQUEST)).unwrap();
    assert_eq!(fail_info(&st), Some(CmcFailInfo::POP_FAILED), "{st:?}");
    assert_eq!(s.store.count_certificates().await.unwrap(), before);
    s.shutdown().await;
}
