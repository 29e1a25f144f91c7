//! /serverkeygen end to end over real TLS (RFC 7030 §4.4, SKG-*): every delivery form decoded
//! by the openssl CLI (`openssl cms -decrypt`, then `openssl cms -verify` of the inner
//! SignedData), every key type honoured, and the refusals that must cost no key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use der::{Any, Decode, Encode};
use est_ca::{ClientKeys, KeyType, SecretBox, Store};
use est_cms::{SmimeCapability, oids};
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509;
use test_support::*;
use x509_cert::attr::Attribute;

const P10: &str = "application/pkcs10";

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn octet_attr(oid: der::asn1::ObjectIdentifier, v: &[u8]) -> Attribute {
    Attribute {
        oid,
        values: der::asn1::SetOfVec::try_from(vec![
            Any::encode_from(&der::asn1::OctetString::new(v).unwrap()).unwrap(),
        ])
        .unwrap(),
    }
}

fn caps(list: &[(der::asn1::ObjectIdentifier, Option<Any>)]) -> Attribute {
    let v: Vec<SmimeCapability> = list
        .iter()
        .map(|(o, p)| SmimeCapability {
            capability_id: *o,
            parameters: p.clone(),
        })
        .collect();
    est_cms::smime_capabilities_attribute(&v).unwrap()
}

/// A /serverkeygen CSR whose (throwaway) key names the wanted type.
fn keygen_csr(kt: KeyType, cn: &str, attrs: Vec<Attribute>) -> Vec<u8> {
    est_client::build_csr_with(&key(kt), &format!("CN={cn}"), &[], None, attrs).unwrap()
}

struct Answer {
    status: u16,
    key_type: String,
    key_der: Vec<u8>,
    cert: X509,
}

async fn post(
    s: &TestServer,
    label: &str,
    user: (&str, &str),
    csr: &[u8],
) -> Result<Answer, (u16, String)> {
    let r = raw_request(
        s,
        &RawTls::default(),
        &enroll_request(
            &format!("/.well-known/est/{label}/serverkeygen"),
            Some(user),
            P10,
            b64(csr).as_bytes(),
        ),
    )
    .await;
    if r.status != 200 {
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "errors are text/plain"
        );
        return Err((r.status, r.text()));
    }
    let mt = est_proto::MediaType::parse(r.header("content-type").unwrap()).unwrap();
    assert_eq!(mt.essence, "multipart/mixed");
    let parts = est_proto::multipart::parse(&r.body, mt.param("boundary").unwrap()).unwrap();
    assert_eq!(parts.len(), 2, "SKG-15: exactly two parts");
    // SKG-16: the key part comes first.
    let key_part = &parts[0];
    let cert_part =
        est_proto::multipart::find_part(&parts, "application/pkcs7-mime", Some("certs-only"))
            .unwrap();
    let p7 = est_proto::decode_body(&cert_part.body).unwrap();
    let certs = openssl::pkcs7::Pkcs7::from_der(&p7)
        .unwrap()
        .signed()
        .unwrap()
        .certificates()
        .unwrap()
        .iter()
        .map(|c| c.to_owned())
        .collect::<Vec<_>>();
    assert_eq!(certs.len(), 1, "EST-87: only the issued certificate");
    Ok(Answer {
        status: r.status,
        key_type: key_part.content_type.clone(),
        key_der: est_proto::decode_body(&key_part.body).unwrap(),
        cert: certs[0].clone(),
    })
}

/// The issued certificate verifies under our chain and certifies `key`.
fn check_key_and_cert(s: &TestServer, key: &PKey<Private>, cert: &X509) {
    assert_eq!(
        key.public_key_to_der().unwrap(),
        cert.public_key().unwrap().public_key_to_der().unwrap(),
        "the private key matches the certificate"
    );
    assert!(
        cert.verify(&s.pki.issuing_x509().public_key().unwrap())
            .unwrap()
    );
}

/// `openssl cms -decrypt` with `decrypt_args`, then `openssl cms -verify` of the inner
/// SignedData against the root; returns the private key from the AsymmetricKeyPackage.
fn openssl_open(
    dir: &Path,
    s: &TestServer,
    enveloped: &[u8],
    decrypt_args: &[&str],
) -> PKey<Private> {
    let env = dir.join("env.der");
    let signed = dir.join("signed.der");
    let akp = dir.join("akp.der");
    let root = dir.join("root.pem");
    std::fs::write(&env, enveloped).unwrap();
    std::fs::write(&root, s.pki.root_x509().to_pem().unwrap()).unwrap();
    let mut args = vec![
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        p(&env),
        "-out",
        p(&signed),
    ];
    args.extend_from_slice(decrypt_args);
    openssl(&args);
    openssl(&[
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        p(&signed),
        "-binary",
        "-CAfile",
        p(&root),
        "-out",
        p(&akp),
    ]);
    // The verified content parses as an AsymmetricKeyPackage with one v2 OneAsymmetricKey.
    let parsed =
        String::from_utf8(openssl(&["asn1parse", "-inform", "DER", "-in", p(&akp)])).unwrap();
    assert!(
        parsed.contains("[ 1 ]") || parsed.contains("cont [ 1 ]"),
        "publicKey [1]: {parsed}"
    );
    let keys = est_cms::decode_key_package(&std::fs::read(&akp).unwrap()).unwrap();
    assert_eq!(keys.len(), 1);
    assert!(
        keys[0].public_key.is_some(),
        "SKG-19: v2 with the public key"
    );
    keys[0].to_pkey().unwrap()
}

/// `openssl cms -cmsout -print` of the EnvelopedData that [`openssl_open`] left in `dir`.
fn cms_print(dir: &Path) -> String {
    let env = dir.join("env.der");
    String::from_utf8(openssl(&[
        "cms",
        "-cmsout",
        "-print",
        "-inform",
        "DER",
        "-in",
        p(&env),
    ]))
    .unwrap()
}

fn sealer() -> SecretBox {
    secret_box()
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_pkcs8_for_every_key_type() {
    let s = TestServer::start(ServerOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    for (kt, id, bits) in [
        (KeyType::P256, Id::EC, 256),
        (KeyType::P384, Id::EC, 384),
        (KeyType::Ed25519, Id::ED25519, 256),
        (KeyType::Rsa2048, Id::RSA, 2048),
        (KeyType::Rsa3072, Id::RSA, 3072),
        (KeyType::Rsa4096, Id::RSA, 4096),
    ] {
        let csr = keygen_csr(kt, "skg-plain.example", vec![]);
        let a = post(&s, "skg", ALICE, &csr).await.unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.key_type, "application/pkcs8", "SKG-17");
        // The openssl CLI reads the PKCS#8 and checks the key.
        let f = dir.path().join("k.der");
        std::fs::write(&f, &a.key_der).unwrap();
        if id != Id::ED25519 {
            let out = openssl(&["pkey", "-inform", "DER", "-in", p(&f), "-noout", "-check"]);
            let _ = out;
        }
        // SKG-17: a v1 PrivateKeyInfo (no publicKey), as in RFC 7030 App. A.4.
        let pki = pkcs8::PrivateKeyInfoRef::from_der(&a.key_der).unwrap();
        assert!(pki.public_key.is_none(), "{kt:?}: PKCS#8 v1");
        let key = PKey::private_key_from_der(&a.key_der).unwrap();
        assert_eq!(key.id(), id, "{kt:?}");
        assert_eq!(key.bits(), bits, "{kt:?}");
        check_key_and_cert(&s, &key, &a.cert);
        // SKG-7: the CSR's own key is ignored; a new one was generated.
        let req = openssl::x509::X509Req::from_der(&csr).unwrap();
        assert_ne!(
            req.public_key().unwrap().public_key_to_der().unwrap(),
            key.public_key_to_der().unwrap()
        );
        // Durable: recorded before it was returned.
        let serial = hex::encode(a.cert.serial_number().to_bn().unwrap().to_vec());
        assert!(
            s.store
                .certificate_by_serial(&serial)
                .await
                .unwrap()
                .is_some()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kekri_with_aes_128_192_256_decrypts_with_openssl_cms() {
    let s = TestServer::start(ServerOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let sealer = sealer();
    let keys = ClientKeys {
        store: s.store.as_ref(),
        sealer: &sealer,
    };
    for (n, wrap) in [
        (16, oids::AES128_WRAP),
        (24, oids::AES192_WRAP),
        (32, oids::AES256_WRAP),
    ] {
        let id = format!("kek-{n}");
        let kek: Vec<u8> = (0..n as u8)
            .map(|i| i.wrapping_mul(7).wrapping_add(3))
            .collect();
        keys.register_kek("user:alice", id.as_bytes(), &kek, 0)
            .await
            .unwrap();
        let csr = keygen_csr(
            KeyType::P256,
            "skg-kek.example",
            vec![
                octet_attr(est_asn1::oids::DECRYPT_KEY_ID, id.as_bytes()),
                caps(&[(oids::AES128_CBC, None), (wrap, None)]),
            ],
        );
        let a = post(&s, "skg", ALICE, &csr).await.unwrap();
        assert_eq!(
            a.key_type,
            "application/pkcs7-mime; smime-type=server-generated-key"
        );
        let key = openssl_open(
            dir.path(),
            &s,
            &a.key_der,
            &[
                "-secretkey",
                &hex::encode(&kek),
                "-secretkeyid",
                &hex::encode(id.as_bytes()),
            ],
        );
        check_key_and_cert(&s, &key, &a.cert);
        // SKG-20/24: one kekri (version 4) carrying our id, EnvelopedData version 2, and the
        // content cipher the client listed.
        let env = cms_print(dir.path());
        assert!(env.contains("version: 2"), "{env}");
        assert!(env.contains("d.kekri"), "{env}");
        assert!(env.contains("version: 4"), "{env}");
        assert!(env.contains("aes-128-cbc"), "{env}");
    }
}

/// A recipient certificate with a SubjectKeyIdentifier and the given key usage.
fn recipient_cert(key: &PKey<Private>, key_usage: &str) -> X509 {
    recipient_cert_valid(key, key_usage, false)
}

fn recipient_cert_valid(key: &PKey<Private>, key_usage: &str, expired: bool) -> X509 {
    use openssl::x509::extension::{KeyUsage, SubjectKeyIdentifier};
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "recipient").unwrap();
    let name = name.build();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_serial_number(
        &openssl::bn::BigNum::from_u32(7)
            .unwrap()
            .to_asn1_integer()
            .unwrap(),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (from, to) = if expired {
        (now - 30 * 86400, now - 86400)
    } else {
        (now - 60, now + 30 * 86400)
    };
    b.set_not_before(&openssl::asn1::Asn1Time::from_unix(from).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::from_unix(to).unwrap())
        .unwrap();
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(ski).unwrap();
    let mut ku = KeyUsage::new();
    ku.critical();
    match key_usage {
        "keyEncipherment" => ku.key_encipherment(),
        "keyAgreement" => ku.key_agreement(),
        _ => ku.digital_signature(),
    };
    b.append_extension(ku.build().unwrap()).unwrap();
    b.sign(key, openssl::hash::MessageDigest::sha256()).unwrap();
    b.build()
}

/// SMIMECapabilities entries: (capabilityID, parameters).
type Caps = Vec<(der::asn1::ObjectIdentifier, Option<Any>)>;

fn oaep_sha256() -> Any {
    use spki::AlgorithmIdentifierOwned as Alg;
    let sha256 = Alg {
        oid: oids::ID_SHA256,
        parameters: None,
    };
    Any::encode_from(&est_cms::RsaesOaepParams {
        hash_algorithm: Some(sha256.clone()),
        mask_gen_algorithm: Some(Alg {
            oid: oids::ID_MGF1,
            parameters: Some(Any::encode_from(&sha256).unwrap()),
        }),
        p_source_algorithm: None,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn ktri_and_kari_decrypt_with_openssl_cms() {
    let s = TestServer::start(ServerOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let sealer = sealer();
    let keys = ClientKeys {
        store: s.store.as_ref(),
        sealer: &sealer,
    };
    let aes256_wrap = Any::encode_from(&est_cms::KeyWrap::Aes256.algorithm_identifier()).unwrap();
    let aes128_wrap = Any::encode_from(&est_cms::KeyWrap::Aes128.algorithm_identifier()).unwrap();
    let cases: Vec<(KeyType, &str, Caps, &str)> = vec![
        (
            KeyType::Rsa2048,
            "keyEncipherment",
            vec![(oids::ID_RSAES_OAEP, Some(oaep_sha256()))],
            "rsaesOaep",
        ),
        (
            KeyType::Rsa2048,
            "keyEncipherment",
            vec![(oids::RSA_ENCRYPTION, None)],
            "rsaEncryption",
        ),
        (
            KeyType::P256,
            "keyAgreement",
            vec![(oids::DH_SINGLE_PASS_STD_DH_SHA256KDF, Some(aes128_wrap))],
            "dhSinglePass-stdDH-sha256kdf",
        ),
        (
            KeyType::P384,
            "keyAgreement",
            vec![(oids::DH_SINGLE_PASS_STD_DH_SHA384KDF, Some(aes256_wrap))],
            "dhSinglePass-stdDH-sha384kdf",
        ),
    ];
    for (kt, ku, cap_list, expect) in cases {
        let rkey = key(kt);
        let rcert = recipient_cert(&rkey, ku);
        let ski = keys
            .register_recipient("user:alice", &rcert.to_der().unwrap(), 0)
            .await
            .unwrap();
        assert_eq!(ski, rcert.subject_key_id().unwrap().as_slice());
        let mut list = cap_list.clone();
        list.push((oids::AES256_CBC, None));
        let csr = keygen_csr(
            KeyType::P256,
            "skg-recipient.example",
            vec![
                octet_attr(est_asn1::oids::ASYMM_DECRYPT_KEY_ID, &ski),
                caps(&list),
            ],
        );
        let a = post(&s, "skg", ALICE, &csr).await.unwrap();
        assert_eq!(
            a.key_type,
            "application/pkcs7-mime; smime-type=server-generated-key"
        );
        let cert_pem = dir.path().join("r.pem");
        let key_pem = dir.path().join("r.key");
        std::fs::write(&cert_pem, rcert.to_pem().unwrap()).unwrap();
        std::fs::write(&key_pem, rkey.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let key = openssl_open(
            dir.path(),
            &s,
            &a.key_der,
            &["-recip", p(&cert_pem), "-inkey", p(&key_pem)],
        );
        // Our decryption (what the client runs) opens the same answer.
        let ours = est_cms::decrypt(
            &a.key_der,
            &est_cms::RecipientSecret::PrivateKey {
                key: rkey.clone(),
                cert: None,
                ski: Some(ski.clone()),
            },
        )
        .unwrap();
        assert_eq!(ours.content_type, oids::ID_SIGNED_DATA);
        check_key_and_cert(&s, &key, &a.cert);
        let env = cms_print(dir.path());
        assert!(env.contains(expect), "{expect}: {env}");
        // SKG-21/22: the recipient is named by the SKI the client sent.
        let ski_start = ski[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(env.contains(&ski_start), "{ski_start}: {env}");
        assert!(
            env.contains("d.subjectKeyIdentifier") || env.contains("d.rKeyId"),
            "{env}"
        );
        assert!(env.contains("aes-256-cbc"), "{env}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_clear_and_cost_no_key() {
    let s = TestServer::start(ServerOptions::default()).await;
    let sealer = sealer();
    let keys = ClientKeys {
        store: s.store.as_ref(),
        sealer: &sealer,
    };
    keys.register_kek("user:bob", b"bobs-kek", &[9u8; 16], 0)
        .await
        .unwrap();
    let rkey = key(KeyType::Rsa2048);
    let rcert = recipient_cert(&rkey, "keyEncipherment");
    let bob_ski = keys
        .register_recipient("user:bob", &rcert.to_der().unwrap(), 0)
        .await
        .unwrap();
    let sign_only = recipient_cert(&key(KeyType::P256), "digitalSignature");
    assert!(
        keys.register_recipient("user:alice", &sign_only.to_der().unwrap(), 0)
            .await
            .unwrap_err()
            .to_string()
            .contains("keyAgreement"),
        "SKG-14"
    );
    let expired = recipient_cert_valid(&key(KeyType::P256), "keyAgreement", true);
    let expired_ski = keys
        .register_recipient("user:alice", &expired.to_der().unwrap(), 0)
        .await
        .unwrap();
    let before = s.store.count_certificates().await.unwrap();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "skg",
            keygen_csr(
                KeyType::P256,
                "a",
                vec![octet_attr(
                    est_asn1::oids::ASYMM_DECRYPT_KEY_ID,
                    &expired_ski,
                )],
            ),
            400,
            "not currently valid",
        ),
        // SKG-12: unknown id, and another user's id, get the same answer (SEC-17).
        (
            "skg",
            keygen_csr(
                KeyType::P256,
                "a",
                vec![octet_attr(est_asn1::oids::DECRYPT_KEY_ID, b"nope")],
            ),
            400,
            "unknown decrypt key identifier",
        ),
        (
            "skg",
            keygen_csr(
                KeyType::P256,
                "a",
                vec![octet_attr(est_asn1::oids::DECRYPT_KEY_ID, b"bobs-kek")],
            ),
            400,
            "unknown decrypt key identifier",
        ),
        (
            "skg",
            keygen_csr(
                KeyType::P256,
                "a",
                vec![octet_attr(est_asn1::oids::ASYMM_DECRYPT_KEY_ID, &bob_ski)],
            ),
            400,
            "unknown asymmetric decrypt key identifier",
        ),
        // SKG-9: both identifiers at once.
        (
            "skg",
            keygen_csr(
                KeyType::P256,
                "a",
                vec![
                    octet_attr(est_asn1::oids::DECRYPT_KEY_ID, b"x"),
                    octet_attr(est_asn1::oids::ASYMM_DECRYPT_KEY_ID, b"y"),
                ],
            ),
            400,
            "not both",
        ),
        // SKG-11: the label requires encryption.
        (
            "skg-enc",
            keygen_csr(KeyType::P256, "a", vec![]),
            400,
            "encrypted only",
        ),
        // SKG-1: off on labels that do not enable it.
        (
            "main",
            keygen_csr(KeyType::P256, "a", vec![]),
            501,
            "not enabled",
        ),
        // SKG-8: a key type we do not generate.
        (
            "skg",
            est_client::build_csr_with(
                &PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap(),
                "CN=a",
                &[],
                None,
                vec![],
            )
            .unwrap(),
            400,
            "RSA-1024",
        ),
    ];
    for (label, csr, status, needle) in cases {
        let Err((st, text)) = post(&s, label, ALICE, &csr).await else {
            panic!("{label} {needle}: accepted")
        };
        assert_eq!(st, status, "{label} {needle}: {text}");
        assert!(text.contains(needle), "{needle:?} not in {text:?}");
    }
    // SKG-23: a kek known to alice but no content cipher in common.
    keys.register_kek("user:alice", b"alices-kek", &[5u8; 32], 0)
        .await
        .unwrap();
    let csr = keygen_csr(
        KeyType::P256,
        "a",
        vec![
            octet_attr(est_asn1::oids::DECRYPT_KEY_ID, b"alices-kek"),
            caps(&[
                ("1.2.840.113549.3.7".parse().unwrap(), None),
                (oids::AES256_WRAP, None),
            ]),
        ],
    );
    let (st, text) = post(&s, "skg", ALICE, &csr).await.err().unwrap();
    assert_eq!(st, 400);
    assert!(text.contains("content-encryption"), "{text}");
    // A 32-byte KEK but the client listed only AES-128 wrap (SKG-20).
    let csr = keygen_csr(
        KeyType::P256,
        "a",
        vec![
            octet_attr(est_asn1::oids::DECRYPT_KEY_ID, b"alices-kek"),
            caps(&[(oids::AES256_CBC, None), (oids::AES128_WRAP, None)]),
        ],
    );
    let (st, text) = post(&s, "skg", ALICE, &csr).await.err().unwrap();
    assert_eq!(st, 400, "{text}");
    // Nothing was issued by any refused request.
    assert_eq!(s.store.count_certificates().await.unwrap(), before);
    // SKG-2: authentication first.
    let r = raw_request(
        &s,
        &RawTls::default(),
        &enroll_request(
            "/.well-known/est/skg/serverkeygen",
            None,
            P10,
            b64(&keygen_csr(KeyType::P256, "a", vec![])).as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    // Name policy applies (SKG-7): bob may not ask for alice's names.
    let (st, _) = post(
        &s,
        "skg",
        BOB,
        &keygen_csr(KeyType::P256, "not-bob.example", vec![]),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(st, 403);
    // Garbage is a 400, and the server keeps serving.
    let r = raw_request(
        &s,
        &RawTls::default(),
        &enroll_request(
            "/.well-known/est/skg/serverkeygen",
            Some(ALICE),
            P10,
            b"!!!not base64",
        ),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        post(&s, "skg", ALICE, &keygen_csr(KeyType::P256, "a", vec![]))
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn our_client_decrypts_every_protection() {
    use est_client::{ClientConfig, EstClient, KeyKind, KeyProtection, Trust};
    let s = TestServer::start(ServerOptions::default()).await;
    let sealer = sealer();
    let keys = ClientKeys {
        store: s.store.as_ref(),
        sealer: &sealer,
    };
    let client = EstClient::new(ClientConfig {
        url: s.url(),
        label: Some("skg".into()),
        trust: Trust::Explicit(vec![s.pki.root_x509()]),
        identity: None,
        basic: Some((ALICE.0.into(), zeroize::Zeroizing::new(ALICE.1.into()))),
        max_tls12: false,
        http_auth: Default::default(),
    })
    .unwrap();
    keys.register_kek("user:alice", b"k16", &[0x41; 16], 0)
        .await
        .unwrap();
    keys.register_kek("user:alice", b"k32", &[0x43; 32], 0)
        .await
        .unwrap();
    let ec256 = key(KeyType::P256);
    let ec256_cert = recipient_cert(&ec256, "keyAgreement");
    keys.register_recipient("user:alice", &ec256_cert.to_der().unwrap(), 0)
        .await
        .unwrap();
    keys.register_kek("user:alice", b"k1", &[0x42; 24], 0)
        .await
        .unwrap();
    let rsa = key(KeyType::Rsa2048);
    let rsa_cert = recipient_cert(&rsa, "keyEncipherment");
    keys.register_recipient("user:alice", &rsa_cert.to_der().unwrap(), 0)
        .await
        .unwrap();
    let ec = key(KeyType::P384);
    let ec_cert = recipient_cert(&ec, "keyAgreement");
    keys.register_recipient("user:alice", &ec_cert.to_der().unwrap(), 0)
        .await
        .unwrap();
    let protections = [
        (KeyProtection::Tls, false),
        (
            KeyProtection::Kek {
                id: b"k16".to_vec(),
                key: zeroize::Zeroizing::new(vec![0x41; 16]),
            },
            true,
        ),
        (
            KeyProtection::Kek {
                id: b"k32".to_vec(),
                key: zeroize::Zeroizing::new(vec![0x43; 32]),
            },
            true,
        ),
        (
            KeyProtection::Recipient {
                cert: ec256_cert,
                key: ec256,
            },
            true,
        ),
        (
            KeyProtection::Kek {
                id: b"k1".to_vec(),
                key: zeroize::Zeroizing::new(vec![0x42; 24]),
            },
            true,
        ),
        (
            KeyProtection::Recipient {
                cert: rsa_cert,
                key: rsa,
            },
            true,
        ),
        (
            KeyProtection::Recipient {
                cert: ec_cert,
                key: ec,
            },
            true,
        ),
    ];
    for (protection, encrypted) in &protections {
        for kind in [KeyKind::P256, KeyKind::Ed25519] {
            let got = est_client::server_keygen(&client, kind, "CN=client-skg", &[], protection)
                .await
                .unwrap_or_else(|e| panic!("{protection:?} {kind:?}: {e}"));
            assert_eq!(got.encrypted, *encrypted);
            let cert = est_client::to_x509(&got.certs[0]).unwrap();
            check_key_and_cert(&s, &got.key, &cert);
        }
    }
    // A certificate this CA issued to alice is a recipient without registration (looked up by
    // its SKI among her certificates); the same certificate does not work for bob.
    let own = key(KeyType::P256);
    let issued = est_client::enroll_with_key(
        &client,
        &own,
        "CN=alice-device",
        &[],
        false,
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    let own_cert = est_client::to_x509(&issued[0]).unwrap();
    let via_store = KeyProtection::Recipient {
        cert: own_cert.clone(),
        key: own.clone(),
    };
    let got = est_client::server_keygen(&client, KeyKind::P256, "CN=client-skg", &[], &via_store)
        .await
        .unwrap();
    assert!(got.encrypted);
    let bob_client = EstClient::new(ClientConfig {
        basic: Some((BOB.0.into(), zeroize::Zeroizing::new(BOB.1.into()))),
        ..client.config().clone()
    })
    .unwrap();
    let err = est_client::server_keygen(
        &bob_client,
        KeyKind::P256,
        "CN=bob.example",
        &[],
        &via_store,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown asymmetric decrypt key identifier"),
        "{err}"
    );
    // The TLS client certificate itself is a recipient (the client authenticates with it and
    // names it by its SKI); the name policy of a certificate holder is its own subject.
    let cert_client = EstClient::new(ClientConfig {
        basic: None,
        identity: Some(est_client::ClientIdentity {
            cert: own_cert.clone(),
            chain: vec![s.pki.issuing_x509()],
            key: own.clone(),
        }),
        ..client.config().clone()
    })
    .unwrap();
    let got = est_client::server_keygen(
        &cert_client,
        KeyKind::P384,
        "CN=alice-device",
        &[],
        &via_store,
    )
    .await
    .unwrap();
    assert!(got.encrypted);
    assert_eq!(
        got.certs[0].tbs_certificate().subject().to_string(),
        "CN=alice-device"
    );
    // The wrong KEK under a known id: the client refuses what it cannot decrypt.
    let wrong = KeyProtection::Kek {
        id: b"k1".to_vec(),
        key: zeroize::Zeroizing::new(vec![0x43; 24]),
    };
    assert!(
        est_client::server_keygen(&client, KeyKind::P256, "CN=client-skg", &[], &wrong)
            .await
            .is_err()
    );
}

#[test]
fn der_roundtrip_of_a_keygen_csr() {
    let csr = keygen_csr(
        KeyType::P256,
        "x",
        vec![octet_attr(est_asn1::oids::DECRYPT_KEY_ID, b"id")],
    );
    let req = x509_cert::request::CertReq::from_der(&csr).unwrap();
    assert_eq!(req.to_der().unwrap(), csr);
    assert_eq!(
        est_proto::key_delivery(&req).unwrap(),
        est_proto::KeyDelivery::SymmetricKey(b"id".to_vec())
    );
}
