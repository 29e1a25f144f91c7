//! Our own structures, end to end: build, re-encode byte-equal, decrypt/verify, reject tampering.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use cms::authenticated_data::AuthenticatedData;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::EnvelopedData;
use cms::signed_data::SignedData;
use common::*;
use der::{Decode, Encode};
use est_cms::oids::{ID_CT_KP_A_KEY_PACKAGE, ID_DATA, ID_SIGNED_DATA};
use est_cms::*;
use openssl::pkey::{PKey, Private};
use zeroize::Zeroizing;

fn reencodes(der: &[u8]) {
    let ci = ContentInfo::from_der(der).unwrap();
    assert_eq!(ci.to_der().unwrap(), der);
    let inner = ci.content.to_der().unwrap();
    let again = match ci.content_type {
        oids::ID_SIGNED_DATA => SignedData::from_der(&inner).unwrap().to_der().unwrap(),
        oids::ID_ENVELOPED_DATA => EnvelopedData::from_der(&inner).unwrap().to_der().unwrap(),
        oids::ID_CT_AUTH_DATA => AuthenticatedData::from_der(&inner)
            .unwrap()
            .to_der()
            .unwrap(),
        other => panic!("unexpected {other}"),
    };
    assert_eq!(again, inner);
}

fn flip_each(der: &[u8], step: usize, mut check: impl FnMut(&[u8])) {
    for i in (0..der.len()).step_by(step) {
        let mut t = der.to_vec();
        t[i] ^= 0x01;
        check(&t);
    }
}

#[test]
fn sign_and_verify_every_key_type() {
    let root = root("Test Root");
    let other = root_other();
    let trust = store(&[&root.1]);
    let keys: Vec<(PKey<Private>, DigestAlgorithm)> = vec![
        (rsa(), DigestAlgorithm::Sha256),
        (p256(), DigestAlgorithm::Sha256),
        (p384(), DigestAlgorithm::Sha384),
        (ed25519(), DigestAlgorithm::Sha512),
    ];
    for (key, digest) in keys {
        let cert = leaf(&root, &key, "signer");
        let signer = OpensslSigner::new(key, to_cert(&cert)).unwrap();
        assert_eq!(signer.digest(), digest);
        for ct in [ID_DATA, ID_CT_KP_A_KEY_PACKAGE] {
            let der = sign(ct, b"hello cms", &signer, &[to_cert(&root.1)]).unwrap();
            reencodes(&der);
            let sd: SignedData = ContentInfo::from_der(&der)
                .unwrap()
                .content
                .decode_as()
                .unwrap();
            let want = if ct == ID_DATA {
                CmsVersion::V1
            } else {
                CmsVersion::V3
            };
            assert_eq!(sd.version, want);
            let v = verify(&der, &trust, &VerifyOptions::default()).unwrap();
            assert_eq!(v.content, b"hello cms");
            assert_eq!(v.content_type, ct);
            assert_eq!(v.signers, vec![to_cert(&cert)]);
            assert_eq!(v.certificates.len(), 2);
            // Another root does not validate the chain, but the signature alone is fine.
            let wrong = store(&[&other.1]);
            assert!(matches!(
                verify(&der, &wrong, &VerifyOptions::default()),
                Err(CmsError::ChainValidation(_))
            ));
            let sig_only = VerifyOptions {
                skip_chain_validation: true,
                ..Default::default()
            };
            verify(&der, &wrong, &sig_only).unwrap();
        }
    }
}

fn root_other() -> (PKey<Private>, openssl::x509::X509) {
    root("Other Root")
}

#[test]
fn verify_rejects_every_tampered_byte() {
    let root = root("Test Root");
    let trust = store(&[&root.1]);
    let key = p256();
    let cert = leaf(&root, &key, "signer");
    let signer = OpensslSigner::new(key, to_cert(&cert)).unwrap();
    let der = sign(ID_DATA, b"payload", &signer, &[]).unwrap();
    let opts = VerifyOptions::default();
    // Unsigned metadata (version numbers, the SignedData digestAlgorithms set) may change
    // without breaking a signature; the content and its type never can.
    flip_each(&der, 1, |t| {
        if let Ok(v) = verify(t, &trust, &opts) {
            assert_eq!(
                (v.content.as_slice(), v.content_type),
                (&b"payload"[..], ID_DATA)
            );
        }
    });
    for n in 0..der.len() {
        let _ = verify(&der[..n], &trust, &opts);
    }
}

#[test]
fn sign_with_ski_unsigned_attrs_and_time() {
    let root = root("Test Root");
    let trust = store(&[&root.1]);
    let key = rsa();
    let cert = leaf(&root, &key, "signer");
    let signer = OpensslSigner::new(key, to_cert(&cert)).unwrap();
    let extra = est_cms::smime_capabilities_attribute(&[]).unwrap();
    let opts = SignOptions {
        sid: SignerIdKind::SubjectKeyIdentifier,
        signing_time: Some(x509_cert::time::Time::now().unwrap()),
        unsigned_attributes: vec![extra.clone()],
        ..Default::default()
    };
    let der = sign_with(ID_DATA, b"x", &signer, &[], &opts).unwrap();
    reencodes(&der);
    let v = verify(&der, &trust, &VerifyOptions::default()).unwrap();
    assert_eq!(v.signer_infos[0].version, CmsVersion::V3);
    assert_eq!(v.signer_infos[0].unsigned_attrs.as_ref().unwrap().len(), 1);
    // Ten years from now the leaf has expired.
    let later = VerifyOptions {
        verification_time: Some(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
                + 10 * 365 * 86400,
        ),
        ..Default::default()
    };
    assert!(matches!(
        verify(&der, &trust, &later),
        Err(CmsError::ChainValidation(_))
    ));

    let direct = SignOptions {
        without_signed_attributes: true,
        ..Default::default()
    };
    let der = sign_with(ID_DATA, b"direct", &signer, &[], &direct).unwrap();
    let v = verify(&der, &trust, &VerifyOptions::default()).unwrap();
    assert!(v.signer_infos[0].signed_attrs.is_none());
    assert_eq!(v.content, b"direct");
    assert!(sign_with(ID_SIGNED_DATA, b"x", &signer, &[], &direct).is_err());
}

fn recipients_and_secrets() -> Vec<(Recipient, RecipientSecret, CmsVersion)> {
    let root = root("Test Root");
    let mut v = Vec::new();
    for len in [16usize, 24, 32] {
        let kek = vec![0x42u8; len];
        v.push((
            Recipient::Kek {
                key_id: b"kid".to_vec(),
                kek: Zeroizing::new(kek.clone()),
            },
            RecipientSecret::Kek {
                key_id: b"kid".to_vec(),
                kek: Zeroizing::new(kek),
            },
            CmsVersion::V2,
        ));
    }
    let rsa_key = rsa();
    let rsa_cert = leaf(&root, &rsa_key, "rsa");
    for alg in [
        KeyTransport::RsaPkcs1v15,
        KeyTransport::RsaOaepSha1,
        KeyTransport::RsaOaepSha256,
    ] {
        v.push((
            Recipient::key_transport(&to_cert(&rsa_cert), alg).unwrap(),
            RecipientSecret::PrivateKey {
                key: rsa_key.clone(),
                cert: Some(to_cert(&rsa_cert)),
                ski: None,
            },
            CmsVersion::V0,
        ));
    }
    v.push((
        Recipient::KeyTransport {
            rid: RecipientId::SubjectKeyIdentifier(b"my-ski".to_vec()),
            key: PKey::public_key_from_der(&rsa_key.public_key_to_der().unwrap()).unwrap(),
            algorithm: KeyTransport::RsaOaepSha256,
        },
        RecipientSecret::PrivateKey {
            key: rsa_key.clone(),
            cert: None,
            ski: Some(b"my-ski".to_vec()),
        },
        CmsVersion::V2,
    ));
    for (key, kdf, wrap) in [
        (p256(), KeyAgreeKdf::Sha256, KeyWrap::Aes128),
        (p384(), KeyAgreeKdf::Sha384, KeyWrap::Aes256),
    ] {
        let cert = leaf(&root, &key, "ec");
        v.push((
            Recipient::key_agree(&to_cert(&cert), kdf, wrap).unwrap(),
            RecipientSecret::PrivateKey {
                key: key.clone(),
                cert: Some(to_cert(&cert)),
                ski: None,
            },
            CmsVersion::V2,
        ));
        v.push((
            Recipient::KeyAgree {
                rid: RecipientId::SubjectKeyIdentifier(ski_of(&cert)),
                key: PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap(),
                kdf,
                wrap,
                ukm: Some(b"user keying material".to_vec()),
            },
            RecipientSecret::PrivateKey {
                key: key.clone(),
                cert: Some(to_cert(&cert)),
                ski: None,
            },
            CmsVersion::V2,
        ));
    }
    for kek_cipher in [ContentEncryption::Aes128Cbc, ContentEncryption::Aes256Cbc] {
        v.push((
            Recipient::Password {
                password: Zeroizing::new(b"correct horse".to_vec()),
                params: PwriParams {
                    iterations: 2048,
                    kek_cipher,
                },
            },
            RecipientSecret::Password(Zeroizing::new(b"correct horse".to_vec())),
            CmsVersion::V3,
        ));
    }
    v
}

#[test]
fn envelope_and_decrypt_every_recipient_kind() {
    for (recipient, secret, version) in recipients_and_secrets() {
        for cea in [
            ContentEncryption::Aes128Cbc,
            ContentEncryption::Aes192Cbc,
            ContentEncryption::Aes256Cbc,
        ] {
            let der = envelope(
                ID_SIGNED_DATA,
                b"secret content",
                std::slice::from_ref(&recipient),
                cea,
            )
            .unwrap();
            reencodes(&der);
            let ed: EnvelopedData = ContentInfo::from_der(&der)
                .unwrap()
                .content
                .decode_as()
                .unwrap();
            assert_eq!(ed.version, version, "{recipient:?}");
            let d = decrypt(&der, &secret).unwrap();
            assert_eq!(d.content_type, ID_SIGNED_DATA);
            assert_eq!(d.content.as_slice(), b"secret content");
        }
    }
}

#[test]
fn decrypt_fails_cleanly_on_wrong_keys_and_tampering() {
    let cases = recipients_and_secrets();
    let wrong_ec = p256();
    let wrong_rsa = rsa();
    for (recipient, secret, _) in &cases {
        let der = envelope(
            ID_DATA,
            b"0123456789abcdef0123",
            std::slice::from_ref(recipient),
            ContentEncryption::Aes256Cbc,
        )
        .unwrap();
        let wrong = match secret {
            RecipientSecret::Kek { key_id, .. } => RecipientSecret::Kek {
                key_id: key_id.clone(),
                kek: Zeroizing::new(vec![1u8; 16]),
            },
            RecipientSecret::Password(_) => {
                RecipientSecret::Password(Zeroizing::new(b"wrong".to_vec()))
            }
            RecipientSecret::PrivateKey { key, .. } if key.id() == openssl::pkey::Id::EC => {
                RecipientSecret::PrivateKey {
                    key: wrong_ec.clone(),
                    cert: None,
                    ski: None,
                }
            }
            _ => RecipientSecret::PrivateKey {
                key: wrong_rsa.clone(),
                cert: None,
                ski: None,
            },
        };
        // PKCS#1 v1.5 with a random replacement key may, rarely, produce valid padding.
        if let Ok(d) = decrypt(&der, &wrong) {
            assert_ne!(d.content.as_slice(), b"0123456789abcdef0123");
        }
        flip_each(&der, 7, |t| {
            if let Ok(d) = decrypt(t, secret) {
                // Flips in unauthenticated places (e.g. a certificate-free rid) may still
                // decrypt; then the content must be the original or garbage, never a panic.
                let _ = d.content.len();
            }
        });
        for n in 0..der.len() {
            let _ = decrypt(&der[..n], secret);
        }
    }
}

#[test]
fn several_recipients_each_decrypt() {
    let cases = recipients_and_secrets();
    let recips: Vec<Recipient> = cases.iter().map(|(r, _, _)| clone_recipient(r)).collect();
    let der = envelope(ID_DATA, b"to all", &recips, ContentEncryption::Aes128Cbc).unwrap();
    let ed: EnvelopedData = ContentInfo::from_der(&der)
        .unwrap()
        .content
        .decode_as()
        .unwrap();
    assert_eq!(ed.version, CmsVersion::V3);
    for (_, secret, _) in &cases {
        assert_eq!(decrypt(&der, secret).unwrap().content.as_slice(), b"to all");
    }
}

fn clone_recipient(r: &Recipient) -> Recipient {
    match r {
        Recipient::Kek { key_id, kek } => Recipient::Kek {
            key_id: key_id.clone(),
            kek: kek.clone(),
        },
        Recipient::KeyTransport {
            rid,
            key,
            algorithm,
        } => Recipient::KeyTransport {
            rid: rid.clone(),
            key: key.clone(),
            algorithm: *algorithm,
        },
        Recipient::KeyAgree {
            rid,
            key,
            kdf,
            wrap,
            ukm,
        } => Recipient::KeyAgree {
            rid: rid.clone(),
            key: key.clone(),
            kdf: *kdf,
            wrap: *wrap,
            ukm: ukm.clone(),
        },
        Recipient::Password { password, params } => Recipient::Password {
            password: password.clone(),
            params: *params,
        },
        _ => unreachable!(),
    }
}

#[test]
fn authenticated_data_with_password() {
    let recipient = Recipient::Password {
        password: Zeroizing::new(b"id-1shared secret".to_vec()),
        params: PwriParams {
            iterations: 4096,
            kek_cipher: ContentEncryption::Aes128Cbc,
        },
    };
    let der = authenticate(ID_DATA, b"PKIData bytes", &[recipient]).unwrap();
    reencodes(&der);
    let ad: AuthenticatedData = ContentInfo::from_der(&der)
        .unwrap()
        .content
        .decode_as()
        .unwrap();
    assert_eq!(ad.version, CmsVersion::V0);
    let good = RecipientSecret::Password(Zeroizing::new(b"id-1shared secret".to_vec()));
    let a = verify_authenticated(&der, &good).unwrap();
    assert_eq!(a.content, b"PKIData bytes");
    assert_eq!(a.content_type, ID_DATA);
    let bad = RecipientSecret::Password(Zeroizing::new(b"id-1shared secreT".to_vec()));
    assert!(verify_authenticated(&der, &bad).is_err());
    // Version numbers and NULL parameters are not MACed; content and type are.
    flip_each(&der, 1, |t| {
        if let Ok(a) = verify_authenticated(t, &good) {
            assert_eq!(
                (a.content.as_slice(), a.content_type),
                (&b"PKIData bytes"[..], ID_DATA)
            );
        }
    });
}

#[test]
fn key_package_round_trips() {
    for key in [rsa(), p256(), p384(), ed25519()] {
        let der = encode_key_package(&[&key]).unwrap();
        let keys = decode_key_package(&der).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].public_key.is_some());
        let back = keys[0].to_pkey().unwrap();
        assert!(back.public_eq(&key));
        assert_eq!(
            encode_key_package(&[&back]).unwrap().as_slice(),
            der.as_slice()
        );
        // A v1 OneAsymmetricKey (OpenSSL's PKCS#8) inside a package is accepted too.
        let v1 = key.private_key_to_pkcs8().unwrap();
        let mut pkg = vec![0x30];
        assert!(v1.len() < 0x10000);
        if v1.len() < 0x80 {
            pkg.push(v1.len() as u8);
        } else if v1.len() < 0x100 {
            pkg.extend([0x81, v1.len() as u8]);
        } else {
            pkg.extend([0x82, (v1.len() >> 8) as u8, v1.len() as u8]);
        }
        pkg.extend(&v1);
        let keys = decode_key_package(&pkg).unwrap();
        assert!(keys[0].public_key.is_none());
        assert!(keys[0].to_pkey().unwrap().public_eq(&key));
        let single = one_asymmetric_key(&key).unwrap();
        assert_eq!(single[0], 0x30);
    }
    assert!(decode_key_package(&[0x30, 0x00]).is_err());
}

#[test]
fn garbage_never_panics() {
    let trust = store(&[]);
    let secret = RecipientSecret::Password(Zeroizing::new(b"pw".to_vec()));
    let mut seed = 0x1234_5678u32;
    for len in 0..400usize {
        let mut buf = Vec::with_capacity(len);
        for _ in 0..len {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            buf.push((seed >> 16) as u8);
        }
        if let Some(b) = buf.first_mut() {
            *b = 0x30;
        }
        let _ = verify(&buf, &trust, &VerifyOptions::default());
        let _ = decrypt(&buf, &secret);
        let _ = verify_authenticated(&buf, &secret);
        let _ = decode_smime_capabilities(&buf);
        let _ = decode_key_package(&buf);
    }
}
