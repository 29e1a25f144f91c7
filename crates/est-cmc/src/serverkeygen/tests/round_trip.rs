//! Full round trips: client request → server plan and seal → client opens; OpenSSL decrypts.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

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
    check_shroud_certificate(&r, &client, pool, &store(&ca), ShroudOwner::Signer(cert)).unwrap();
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
    // Layer 4 and SKGD-22 as OpenSSL sees them: the response verifies to the CA and its
    // PKIResponse carries the ServerKeyGenResponse control and the EnvelopedData.
    let resp_f = der_file(&d.0, "resp.der", &response);
    let ca_f = der_file(&d.0, "ca.pem", &ca.cert.to_pem().unwrap());
    let pki_resp_f = d.0.join("pkiresp.der").to_string_lossy().into_owned();
    openssl(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        &resp_f,
        "-CAfile",
        &ca_f,
        "-binary",
        "-out",
        &pki_resp_f,
    ]);
    let dump = String::from_utf8(openssl(&[
        "asn1parse",
        "-inform",
        "DER",
        "-in",
        &pki_resp_f,
    ]))
    .unwrap();
    assert!(
        dump.contains(&format!(":{}.1.2", SkgOids::ESTUARY_ARC)),
        "{dump}"
    );
    assert!(dump.contains(":pkcs7-envelopedData"), "{dump}");
    let inner = openssl_decrypt_for(&d, &enveloped, &client_x, &client_key);
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
    let me = rust_name("dev.example");
    check_shroud_certificate(&r, &client, &[], &store(&ca), ShroudOwner::Name(&me)).unwrap();
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
    let inner = openssl_decrypt_for(&d, &enveloped, &client_x, &client_key);
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
