//! The server's checks, one SKGD item at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

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
    check_shroud_certificate(&r, &good, &[], &trust, ShroudOwner::Name(&me)).unwrap();
    for (cert, what) in [(&sign_only, "SKGD-13"), (&foreign, "SKGD-12")] {
        let f =
            check_shroud_certificate(&r, cert, &[], &trust, ShroudOwner::Name(&me)).unwrap_err();
        assert_eq!(f.code, Some(SkgErrorCode::BAD_CERTIFICATE), "{what}");
        assert!(f.failure.reason.contains(what), "{}", f.failure.reason);
    }
    let x = rust_name("x");
    let f = check_shroud_certificate(&r, &good, &[], &trust, ShroudOwner::Name(&x)).unwrap_err();
    assert_eq!(f.code, Some(SkgErrorCode::BAD_CERTIFICATE));
    // SKGD-13: signed with one certificate, protected with another of the same names: fine;
    // with another client's certificate: badCertificate.
    let signer = to_cert(&leaf(&ca1, "dev.example", &p256(), Ku::SignatureOnly, 10));
    check_shroud_certificate(&r, &good, &[], &trust, ShroudOwner::Signer(&signer)).unwrap();
    let stranger = to_cert(&leaf(&ca1, "stranger", &key, Ku::Encipherment, 11));
    let f = check_shroud_certificate(&r, &stranger, &[], &trust, ShroudOwner::Signer(&signer))
        .unwrap_err();
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

/// SKGD-4: the wanted key type, or badAlg.
#[test]
fn skgd4_wanted_key_type() {
    use super::super::server::WantedKey;
    let oids = SkgOids::default();
    let shroud = Shroud::SharedSecret("s".into());
    let with_alg = |alg: AlgorithmIdentifierOwned| {
        let pki = build_request(
            &opts(),
            &oids,
            placeholder_request(rust_name("a"), alg, &[]).unwrap(),
            &shroud,
            default_capabilities(&oids, &shroud),
        )
        .unwrap();
        only_request(&pki, &oids).unwrap().wanted_key()
    };
    assert_eq!(with_alg(p256_algorithm()).unwrap(), WantedKey::EcP256);
    let p384 = AlgorithmIdentifierOwned {
        oid: est_cms::oids::ID_EC_PUBLIC_KEY,
        parameters: Some(Any::encode_from(&est_cms::oids::SECP384R1).unwrap()),
    };
    assert_eq!(with_alg(p384).unwrap(), WantedKey::EcP384);
    let rsa_alg = AlgorithmIdentifierOwned {
        oid: est_cms::oids::RSA_ENCRYPTION,
        parameters: Some(Any::encode_from(&der::asn1::Null).unwrap()),
    };
    assert_eq!(with_alg(rsa_alg).unwrap(), WantedKey::Rsa { bits: None });
    let ed = AlgorithmIdentifierOwned {
        oid: est_cms::oids::ID_ED25519,
        parameters: None,
    };
    assert_eq!(with_alg(ed).unwrap(), WantedKey::Ed25519);
    let p521 = AlgorithmIdentifierOwned {
        oid: est_cms::oids::ID_EC_PUBLIC_KEY,
        parameters: Some(
            Any::encode_from(&const_oid::ObjectIdentifier::new_unwrap("1.3.132.0.35")).unwrap(),
        ),
    };
    let f = with_alg(p521).unwrap_err();
    assert_eq!(f.failure.fail_info, CmcFailInfo::BAD_ALG);
    assert!(f.failure.reason.contains("SKGD-4"));
    let dsa = AlgorithmIdentifierOwned {
        oid: const_oid::ObjectIdentifier::new_unwrap("1.2.840.10040.4.1"),
        parameters: None,
    };
    assert_eq!(
        with_alg(dsa).unwrap_err().failure.fail_info,
        CmcFailInfo::BAD_ALG
    );
    // A real RSA key in the request gives its size.
    let key = rsa();
    let spki =
        spki::SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der().unwrap()).unwrap();
    let pki = request_pki(&oids, "a", &shroud, None);
    let real = edited(&oids, &pki, |r| {
        if let crate::TaggedRequest::Tcr(t) = &mut r.certificate_request {
            t.certification_request.info.public_key = spki.clone();
        }
    });
    assert_eq!(
        only_request(&real, &oids).unwrap().wanted_key().unwrap(),
        WantedKey::Rsa { bits: Some(2048) }
    );
}

/// SKGD-44: the protection's strength against the generated key's.
#[test]
fn skgd44_protection_strength() {
    use super::super::server::WantedKey;
    let oids = SkgOids::default();
    let ca = ca("Strength CA");
    let cap = |o: const_oid::ObjectIdentifier| SkgCapability {
        capability_id: o.into(),
        parameters: None,
    };
    let rsa_key = rsa();
    let cert = to_cert(&leaf(&ca, "a", &rsa_key, Ku::Encipherment, 3));
    let shroud = Shroud::PublicKey(ShroudWithPublicKey::Certificate(cert));
    let pki = request_pki(&oids, "a", &shroud, None);
    let r = only_request(&pki, &oids).unwrap();
    let plan = DeliveryPlan::new(&r, &r.shroud_key(&[]).unwrap(), None).unwrap();
    // RSA-2048 recipient: 112 bits; enough for an RSA-2048 key, not for P-256 or P-384.
    assert_eq!(plan.strength_bits(), Some(112));
    assert!(plan.protects(WantedKey::Rsa { bits: Some(2048) }));
    assert!(!plan.protects(WantedKey::EcP256));
    assert!(!plan.protects(WantedKey::EcP384));
    // EC P-256 recipient with AES-128 content: 128 bits.
    let ec = p256();
    let ec_cert = to_cert(&leaf(&ca, "a", &ec, Ku::Agreement, 4));
    let shroud = Shroud::PublicKey(ShroudWithPublicKey::Certificate(ec_cert));
    let pki = edited(&oids, &request_pki(&oids, "a", &shroud, None), |r| {
        r.alg_capabilities = Some(vec![
            cap(est_cms::oids::AES128_CBC),
            cap(est_cms::oids::DH_SINGLE_PASS_STD_DH_SHA256KDF),
            cap(est_cms::oids::AES256_WRAP),
        ])
    });
    let r = only_request(&pki, &oids).unwrap();
    let plan = DeliveryPlan::new(&r, &r.shroud_key(&[]).unwrap(), None).unwrap();
    assert_eq!(plan.strength_bits(), Some(128));
    assert!(plan.protects(WantedKey::EcP256));
    assert!(!plan.protects(WantedKey::EcP384));
    // A shared secret: unknown strength, the caller's policy.
    let ss = Shroud::SharedSecret("s".into());
    let r = only_request(&request_pki(&oids, "a", &ss, None), &oids).unwrap();
    let plan = DeliveryPlan::new(
        &r,
        &r.shroud_key(&[]).unwrap(),
        Some(Zeroizing::new(b"x".to_vec())),
    )
    .unwrap();
    assert_eq!(plan.strength_bits(), None);
    assert!(plan.protects(WantedKey::EcP384));
}
