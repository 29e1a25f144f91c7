//! Requests built by our client are accepted by our processor; tampering is caught with the
//! CMCFailInfo the RFC gives; responses round-trip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use der::{Decode, Encode};
use est_cmc::client::{
    CertRequestBody, ID_REQUEST, RequestOptions, RequestSigner, SharedSecret, build_pki_data,
    sign_request,
};
use est_cmc::types::{CmcStatusInfoV2, OtherStatusInfo};
use est_cmc::{
    CmcFailInfo, CmcStatus, FullPkiRequest, OuterSigner, PkiData, RequestError, RequestForm,
    RequestPolicy, ResponseBuilder, ResponseSummary,
};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

fn key() -> PKey<Private> {
    let g = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&g).unwrap()).unwrap()
}

fn ski_of(key: &PKey<Private>) -> Vec<u8> {
    let spki =
        spki::SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der().unwrap()).unwrap();
    openssl::sha::sha1(spki.subject_public_key.raw_bytes()).to_vec()
}

fn ski_ext(ski: &[u8]) -> Extension {
    Extension {
        extn_id: const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
        critical: false,
        extn_value: der::asn1::OctetString::new(
            SubjectKeyIdentifier(der::asn1::OctetString::new(ski).unwrap())
                .to_der()
                .unwrap(),
        )
        .unwrap(),
    }
}

/// A PKCS#10 with CN and a SubjectKeyIdentifier in extensionRequest, by openssl.
fn csr(key: &PKey<Private>, cn: &str) -> Vec<u8> {
    use openssl::x509::{X509NameBuilder, X509ReqBuilder, extension::SubjectKeyIdentifier as Ski};
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509ReqBuilder::new().unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    let ctx = b.x509v3_context(None);
    let ski = Ski::new().build(&ctx).unwrap();
    let mut exts = openssl::stack::Stack::new().unwrap();
    exts.push(ski).unwrap();
    b.add_extensions(&exts).unwrap();
    b.sign(key, openssl::hash::MessageDigest::sha256()).unwrap();
    b.build().to_der().unwrap()
}

fn signed_p10(key: &PKey<Private>, opts: &RequestOptions) -> Vec<u8> {
    let pki = build_pki_data(
        opts,
        &CertRequestBody::Pkcs10(csr(key, "dev1.example")),
        key,
    )
    .unwrap();
    let id = ski_of(key);
    sign_request(&pki, &RequestSigner::RequestKey { key, key_id: &id }).unwrap()
}

#[test]
fn pkcs10_signed_with_its_own_key_is_accepted() {
    let k = key();
    let mut opts = RequestOptions::random().unwrap();
    opts.data_return = Some(b"opaque".to_vec());
    let der = signed_p10(&k, &opts);
    let req = FullPkiRequest::parse_signed(&der, RequestPolicy::default()).unwrap();
    assert!(matches!(req.signer, OuterSigner::RequestKey(ID_REQUEST)));
    assert_eq!(
        req.controls.sender_nonce.as_deref(),
        Some(&opts.sender_nonce[..])
    );
    assert_eq!(
        req.controls.transaction_id,
        Some(opts.transaction_id.clone())
    );
    let r = req.requests[0].as_ref().unwrap();
    assert_eq!(r.form, RequestForm::Pkcs10);
    assert_eq!(r.subject.to_string(), "CN=dev1.example");
    assert!(req.controls.unsupported_failure().is_none());

    // The response echoes the transaction controls (CMC-50, CMC-51, CMC-54).
    let mut b = ResponseBuilder::new(&req.controls).unwrap();
    b.success(&[ID_REQUEST]).unwrap();
    assert!(!b.simple_suffices());
    let s = ResponseSummary::read(&b.to_der().unwrap()).unwrap();
    assert_eq!(s.recipient_nonce.as_deref(), Some(&opts.sender_nonce[..]));
    assert_eq!(s.sender_nonce.as_ref().unwrap().len(), 16);
    assert_ne!(s.sender_nonce.as_deref(), Some(&opts.sender_nonce[..]));
    assert_eq!(s.transaction_id, Some(opts.transaction_id.clone()));
    assert_eq!(s.data_return.as_deref(), Some(&b"opaque"[..]));
    assert_eq!(s.status_of(ID_REQUEST).unwrap().status, CmcStatus::SUCCESS);
}

#[test]
fn crmf_with_signature_pop_is_accepted_and_a_bad_pop_is_pop_failed() {
    let k = key();
    let id = ski_of(&k);
    let subject: x509_cert::name::Name = "CN=crmf.example".parse().unwrap();
    let body = CertRequestBody::Crmf {
        subject: subject.clone(),
        extensions: vec![ski_ext(&id)],
    };
    let opts = RequestOptions::random().unwrap();
    let pki = build_pki_data(&opts, &body, &k).unwrap();
    let der = sign_request(
        &pki,
        &RequestSigner::RequestKey {
            key: &k,
            key_id: &id,
        },
    )
    .unwrap();
    let req = FullPkiRequest::parse_signed(&der, RequestPolicy::default()).unwrap();
    let r = req.requests[0].as_ref().unwrap();
    assert_eq!(r.form, RequestForm::Crmf);
    assert_eq!(r.subject, subject);

    // The POP signature made by another key fails with popFailed for that body part.
    let other = key();
    let pki_other = build_pki_data(&opts, &body, &other).unwrap();
    let mut tampered = pki.clone();
    let est_cmc::TaggedRequest::Crm(m) = &pki_other.req_sequence[0] else {
        panic!()
    };
    let est_cmc::TaggedRequest::Crm(mine) = &mut tampered.req_sequence[0] else {
        panic!()
    };
    mine.popo = m.popo.clone();
    let der = sign_request(
        &tampered,
        &RequestSigner::RequestKey {
            key: &k,
            key_id: &id,
        },
    )
    .unwrap();
    let req = FullPkiRequest::parse_signed(&der, RequestPolicy::default()).unwrap();
    let f = req.requests[0].as_ref().unwrap_err();
    assert_eq!(f.fail_info, CmcFailInfo::POP_FAILED);
}

#[test]
fn a_broken_outer_signature_is_bad_message_check_on_body_part_0() {
    let k = key();
    let mut der = signed_p10(&k, &RequestOptions::random().unwrap());
    let n = der.len();
    der[n - 5] ^= 0x01; // inside the ECDSA signature value, the last element
    match FullPkiRequest::parse_signed(&der, RequestPolicy::default()) {
        Err(RequestError::Cmc { failure, .. }) => {
            assert_eq!(failure.fail_info, CmcFailInfo::BAD_MESSAGE_CHECK);
            assert_eq!(failure.body_list, vec![est_cmc::BodyPartReference::Id(0)]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        FullPkiRequest::parse_signed(b"not der", RequestPolicy::default()),
        Err(RequestError::NotCms(_))
    ));
}

#[test]
fn identity_proof_v2_verifies_only_with_the_right_secret() {
    let k = key();
    let mut opts = RequestOptions::random().unwrap();
    opts.identity = Some(SharedSecret {
        ident: "device-7".into(),
        secret: zeroize::Zeroizing::new(b"0123456789abcdef-secret".to_vec()),
    });
    let der = signed_p10(&k, &opts);
    let req = FullPkiRequest::parse_signed(&der, RequestPolicy::default()).unwrap();
    assert_eq!(req.controls.identification.as_ref().unwrap().1, "device-7");
    req.verify_identity_proof(b"0123456789abcdef-secret")
        .unwrap();
    let f = req
        .verify_identity_proof(b"0123456789abcdef-wrong!")
        .unwrap_err();
    assert_eq!(f.fail_info, CmcFailInfo::BAD_IDENTITY);
}

#[test]
fn unknown_controls_fail_with_bad_request_naming_them() {
    let k = key();
    let opts = RequestOptions::random().unwrap();
    let mut pki: PkiData =
        build_pki_data(&opts, &CertRequestBody::Pkcs10(csr(&k, "x.example")), &k).unwrap();
    pki.control_sequence.push(
        est_cmc::TaggedAttribute::single(
            9,
            der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.55555.1"),
            &der::asn1::Null,
        )
        .unwrap(),
    );
    let id = ski_of(&k);
    let der = sign_request(
        &pki,
        &RequestSigner::RequestKey {
            key: &k,
            key_id: &id,
        },
    )
    .unwrap();
    let req = FullPkiRequest::parse_signed(&der, RequestPolicy::default()).unwrap();
    let f = req.controls.unsupported_failure().unwrap();
    assert_eq!(f.fail_info, CmcFailInfo::BAD_REQUEST);
    assert_eq!(f.body_list, vec![est_cmc::BodyPartReference::Id(9)]);
}

#[test]
fn status_info_forms_round_trip() {
    // extendedFailInfo untagged and [1]-tagged (CMC-42), pendInfo, failInfo.
    for other in [
        Some(OtherStatusInfo::FailInfo(CmcFailInfo::BAD_IDENTITY)),
        Some(OtherStatusInfo::PendInfo(est_cmc::PendInfo {
            pend_token: der::asn1::OctetString::new(vec![1, 2, 3]).unwrap(),
            pend_time: der::asn1::GeneralizedTime::from_unix_duration(
                std::time::Duration::from_secs(1_700_000_000),
            )
            .unwrap(),
        })),
        Some(OtherStatusInfo::ExtendedFailInfo(
            est_cmc::types::ExtendedFailInfo {
                fail_info_oid: der::asn1::ObjectIdentifier::new_unwrap("1.2.3.4").into(),
                fail_info_value: der::Any::encode_from(&der::asn1::Null).unwrap(),
            },
        )),
        None,
    ] {
        let s = CmcStatusInfoV2 {
            status: CmcStatus::FAILED,
            body_list: vec![
                est_cmc::BodyPartReference::Id(4),
                est_cmc::BodyPartReference::Path(vec![1, 2]),
            ],
            status_string: Some("why".into()),
            other_info: other,
        };
        let der = s.to_der().unwrap();
        assert_eq!(CmcStatusInfoV2::from_der(&der).unwrap(), s);
    }
    // The 2008 module's [1] IMPLICIT extendedFailInfo decodes too.
    let tagged = [
        0x30, 0x0f, 0x02, 0x01, 0x02, 0x30, 0x03, 0x02, 0x01, 0x04, 0xa1, 0x05, 0x06, 0x01, 0x2a,
        0x05, 0x00,
    ];
    let s = CmcStatusInfoV2::from_der(&tagged).unwrap();
    assert!(matches!(
        s.other_info,
        Some(OtherStatusInfo::ExtendedFailInfo(_))
    ));
}

/// Requests built by Bouncy Castle 1.72 (`interop/bc/CmcInterop.java gen`, see
/// tests/vectors/bc/README.md).
mod bouncy_castle_vectors {
    use super::*;

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/vectors/bc/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn bc_requests_are_accepted() {
        for (file, form) in [
            ("p10-ec.der", RequestForm::Pkcs10),
            ("p10-rsa.der", RequestForm::Pkcs10),
            ("crmf-ec.der", RequestForm::Crmf),
            ("p10-idproof.der", RequestForm::Pkcs10),
        ] {
            let req = FullPkiRequest::parse_signed(&read(file), RequestPolicy::default())
                .unwrap_or_else(|e| panic!("{file}: {e:?}"));
            assert!(matches!(req.signer, OuterSigner::RequestKey(4)), "{file}");
            let r = req.requests[0]
                .as_ref()
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(r.form, form, "{file}");
            assert!(req.controls.sender_nonce.is_some(), "{file}");
            assert!(req.controls.unsupported_failure().is_none(), "{file}");
        }
        let req = FullPkiRequest::parse_signed(&read("p10-idproof.der"), RequestPolicy::default())
            .unwrap();
        req.verify_identity_proof(b"bc-shared-secret-0123456789")
            .unwrap();
        assert_eq!(
            req.verify_identity_proof(b"bc-shared-secret-0123456780")
                .unwrap_err()
                .fail_info,
            CmcFailInfo::BAD_IDENTITY
        );
    }

    #[test]
    fn bc_failures_get_their_fail_info() {
        let req = FullPkiRequest::parse_signed(
            &read("p10-unknown-control.der"),
            RequestPolicy::default(),
        )
        .unwrap();
        let f = req.controls.unsupported_failure().unwrap();
        assert_eq!(f.body_list, vec![est_cmc::BodyPartReference::Id(9)]);
        match FullPkiRequest::parse_signed(&read("p10-badsig.der"), RequestPolicy::default()) {
            Err(RequestError::Cmc { failure, .. }) => {
                assert_eq!(failure.fail_info, CmcFailInfo::BAD_MESSAGE_CHECK)
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn authenticated_data_requests_verify_only_with_the_shared_secret() {
    let k = key();
    let secret = SharedSecret {
        ident: "device-9".into(),
        secret: zeroize::Zeroizing::new(b"a-shared-secret-of-20".to_vec()),
    };
    let mut opts = RequestOptions::random().unwrap();
    opts.identity = Some(secret.clone());
    let pki = build_pki_data(&opts, &CertRequestBody::Pkcs10(csr(&k, "mac.example")), &k).unwrap();
    let der = sign_request(&pki, &RequestSigner::SharedSecret(&secret)).unwrap();
    let req = FullPkiRequest::parse(&der, RequestPolicy::default()).unwrap();
    assert!(matches!(req.signer, OuterSigner::SharedSecretMac));
    assert_eq!(req.controls.identification.as_ref().unwrap().1, "device-9");
    req.verify_mac(b"a-shared-secret-of-20").unwrap();
    let f = req.verify_mac(b"a-shared-secret-of-21").unwrap_err();
    assert_eq!(f.fail_info, CmcFailInfo::BAD_MESSAGE_CHECK);
    assert_eq!(f.body_list, vec![est_cmc::BodyPartReference::Id(0)]);
}

#[test]
fn enveloped_layers_open_with_the_ca_encryption_key_only() {
    // A throwaway RSA encryption certificate for the CA.
    let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "CMC encryption").unwrap();
    let name = name.build();
    let mut b = openssl::x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&rsa).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(&rsa, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let x = b.build();
    let cert = x509_cert::Certificate::from_der(&x.to_der().unwrap()).unwrap();
    let secret = est_cms::RecipientSecret::PrivateKey {
        key: rsa.clone(),
        cert: Some(cert.clone()),
        ski: None,
    };

    let k = key();
    let signed = signed_p10(&k, &RequestOptions::random().unwrap());
    let enveloped = est_cmc::client::envelope_request(&signed, &cert).unwrap();
    // EnvelopedData(SignedData(PKIData))
    let req =
        FullPkiRequest::parse_layered(&enveloped, RequestPolicy::default(), Some(&secret)).unwrap();
    assert!(matches!(req.signer, OuterSigner::RequestKey(ID_REQUEST)));
    // Without the key: badMessageCheck on body part 0 (CMC-19).
    match FullPkiRequest::parse_layered(&enveloped, RequestPolicy::default(), None) {
        Err(RequestError::Cmc { failure, .. }) => {
            assert_eq!(failure.fail_info, CmcFailInfo::BAD_MESSAGE_CHECK)
        }
        other => panic!("{other:?}"),
    }
    // SignedData(EnvelopedData(SignedData(PKIData))), the outer signed with the request key.
    let id = ski_of(&k);
    let outer = est_cms::sign_with_key_id(
        est_cms::oids::ID_ENVELOPED_DATA,
        &{
            let ci = cms::content_info::ContentInfo::from_der(&enveloped).unwrap();
            ci.content.to_der().unwrap()
        },
        &k,
        &id,
        &[],
    )
    .unwrap();
    let req =
        FullPkiRequest::parse_layered(&outer, RequestPolicy::default(), Some(&secret)).unwrap();
    assert_eq!(req.requests.len(), 1);
    // The same with the outer signed by some other key: badMessageCheck.
    let stranger = key();
    let outer = est_cms::sign_with_key_id(
        est_cms::oids::ID_ENVELOPED_DATA,
        &{
            let ci = cms::content_info::ContentInfo::from_der(&enveloped).unwrap();
            ci.content.to_der().unwrap()
        },
        &stranger,
        &ski_of(&stranger),
        &[],
    )
    .unwrap();
    assert!(matches!(
        FullPkiRequest::parse_layered(&outer, RequestPolicy::default(), Some(&secret)),
        Err(RequestError::Cmc { .. })
    ));
}

#[test]
fn query_pending_and_get_cert_are_control_only_pki_data() {
    use est_cmc::client::{ID_GET_CERT, ID_QUERY_PENDING, build_get_cert, build_query_pending};
    let k = key();
    let id = ski_of(&k);
    let first = RequestOptions::random().unwrap();
    // The next request of the transaction: same transactionId, fresh senderNonce, the
    // server's senderNonce back as recipientNonce.
    let opts =
        RequestOptions::continuing(first.transaction_id.clone(), Some(vec![7u8; 16])).unwrap();
    assert_eq!(opts.transaction_id, first.transaction_id);
    assert_ne!(opts.sender_nonce, first.sender_nonce);
    let token = [0xabu8, 0xcd, 0x01];
    let pki = build_query_pending(&opts, &token).unwrap();
    assert!(pki.req_sequence.is_empty());
    let der = sign_request(
        &pki,
        &RequestSigner::RequestKey {
            key: &k,
            key_id: &id,
        },
    )
    .unwrap();
    let req = FullPkiRequest::parse_signed(&der, RequestPolicy::default()).unwrap();
    // No request carries the key: the server finds it by the pendToken and verifies with it.
    match &req.signer {
        OuterSigner::KeyIdentifier { key_id } => assert_eq!(key_id, &id),
        other => panic!("{other:?}"),
    }
    req.verify_outer_with_key(&k.public_key_to_der().unwrap())
        .unwrap();
    assert!(
        req.verify_outer_with_key(&key().public_key_to_der().unwrap())
            .is_err()
    );
    assert_eq!(
        req.controls.query_pending,
        vec![(ID_QUERY_PENDING, token.to_vec())]
    );
    assert_eq!(req.controls.transaction_id, Some(first.transaction_id));
    assert_eq!(
        req.controls.sender_nonce.as_deref(),
        Some(&opts.sender_nonce[..])
    );
    assert!(req.controls.unsupported_failure().is_none());

    // getCert: issuerName a directoryName, the serial as given.
    let issuer: x509_cert::name::Name = "CN=Issuing CA,O=Example".parse().unwrap();
    let serial = x509_cert::serial_number::SerialNumber::new(&[0x01, 0x02, 0xff]).unwrap();
    let pki = build_get_cert(&RequestOptions::random().unwrap(), &issuer, &serial).unwrap();
    let der = sign_request(
        &pki,
        &RequestSigner::RequestKey {
            key: &k,
            key_id: &id,
        },
    )
    .unwrap();
    let req = FullPkiRequest::parse_signed(&der, RequestPolicy::default()).unwrap();
    let (gid, gc) = &req.controls.get_cert[0];
    assert_eq!(*gid, ID_GET_CERT);
    assert_eq!(
        gc.issuer_name,
        x509_cert::ext::pkix::name::GeneralName::DirectoryName(issuer)
    );
    assert_eq!(gc.serial_number, serial);

    // An identity proof covers a reqSequence: refused on a control-only PKIData.
    let mut with_id = RequestOptions::random().unwrap();
    with_id.identity = Some(SharedSecret {
        ident: "dev".into(),
        secret: zeroize::Zeroizing::new(b"secret".to_vec()),
    });
    assert!(build_query_pending(&with_id, &token).is_err());
}
