//! Interoperability with the `openssl cms` command line (OpenSSL 3.0), both directions.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use est_cms::oids::{ID_CT_KP_A_KEY_PACKAGE, ID_DATA, ID_SIGNED_DATA};
use est_cms::*;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use tempfile::TempDir;
use zeroize::Zeroizing;

const CONTENT: &[u8] = b"Estuary interop payload \x00\x01\x02 with binary bytes\r\n and more";

struct Dir(TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_owned()
    }
    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }
    fn s(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }
    fn cert(&self, name: &str, x: &X509) -> String {
        self.write(name, &x.to_pem().unwrap())
    }
    fn key(&self, name: &str, k: &PKey<Private>) -> String {
        self.write(name, &k.private_key_to_pem_pkcs8().unwrap())
    }
}

/// Run openssl; panic with its stderr unless it succeeds.
fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl CLI");
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn openssl_fails(args: &[&str]) -> bool {
    !Command::new("openssl")
        .args(args)
        .output()
        .unwrap()
        .status
        .success()
}

fn openssl_decrypt(d: &Dir, der: &[u8], extra: &[&str]) -> Vec<u8> {
    let input = d.write("in.der", der);
    let out = d.s("out.bin");
    let mut args = vec![
        "cms", "-decrypt", "-inform", "DER", "-binary", "-in", &input, "-out", &out,
    ];
    args.extend_from_slice(extra);
    openssl(&args);
    d.read("out.bin")
}

fn openssl_encrypt(d: &Dir, extra: &[&str]) -> Vec<u8> {
    let plain = d.write("plain.bin", CONTENT);
    let out = d.s("enc.der");
    let mut args = vec![
        "cms", "-encrypt", "-binary", "-outform", "DER", "-in", &plain, "-out", &out,
    ];
    args.extend_from_slice(extra);
    openssl(&args);
    let der = d.read("enc.der");
    reencodes_byte_equal(&der);
    der
}

/// OpenSSL's DER decodes and re-encodes identically with the `cms` types.
fn reencodes_byte_equal(der: &[u8]) {
    use der::{Decode, Encode};
    let ci = cms::content_info::ContentInfo::from_der(der).unwrap();
    assert_eq!(ci.to_der().unwrap(), der);
    let inner = ci.content.to_der().unwrap();
    let again = match ci.content_type {
        oids::ID_SIGNED_DATA => cms::signed_data::SignedData::from_der(&inner)
            .unwrap()
            .to_der(),
        oids::ID_ENVELOPED_DATA => cms::enveloped_data::EnvelopedData::from_der(&inner)
            .unwrap()
            .to_der(),
        other => panic!("unexpected {other}"),
    };
    assert_eq!(again.unwrap(), inner);
}

#[test]
fn kekri_both_ways() {
    let d = Dir::new();
    for len in [16usize, 24, 32] {
        let kek: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(7)).collect();
        let (kek_hex, id_hex) = (hex::encode(&kek), hex::encode(b"client-key-1"));
        let r = Recipient::Kek {
            key_id: b"client-key-1".to_vec(),
            kek: Zeroizing::new(kek.clone()),
        };
        let der = envelope(ID_DATA, CONTENT, &[r], ContentEncryption::Aes256Cbc).unwrap();
        let got = openssl_decrypt(&d, &der, &["-secretkey", &kek_hex, "-secretkeyid", &id_hex]);
        assert_eq!(got, CONTENT, "our kekri with a {len}-byte KEK");

        let cipher = match len {
            16 => "-aes128",
            24 => "-aes192",
            _ => "-aes256",
        };
        let theirs = openssl_encrypt(
            &d,
            &["-secretkey", &kek_hex, "-secretkeyid", &id_hex, cipher],
        );
        let secret = RecipientSecret::Kek {
            key_id: b"client-key-1".to_vec(),
            kek: Zeroizing::new(kek),
        };
        assert_eq!(
            decrypt(&theirs, &secret).unwrap().content.as_slice(),
            CONTENT
        );
    }
}

#[test]
fn ktri_both_ways() {
    let d = Dir::new();
    let root = root("Interop Root");
    let key = rsa();
    let cert = leaf(&root, &key, "rsa recipient");
    let (cert_pem, key_pem) = (d.cert("r.pem", &cert), d.key("r.key", &key));
    for alg in [
        KeyTransport::RsaPkcs1v15,
        KeyTransport::RsaOaepSha1,
        KeyTransport::RsaOaepSha256,
    ] {
        let r = Recipient::key_transport(&to_cert(&cert), alg).unwrap();
        let der = envelope(ID_DATA, CONTENT, &[r], ContentEncryption::Aes128Cbc).unwrap();
        let got = openssl_decrypt(&d, &der, &["-recip", &cert_pem, "-inkey", &key_pem]);
        assert_eq!(got, CONTENT, "our ktri {alg:?}");
    }
    let secret = RecipientSecret::PrivateKey {
        key: key.clone(),
        cert: Some(to_cert(&cert)),
        ski: None,
    };
    for extra in [
        &[][..],
        &["-keyopt", "rsa_padding_mode:oaep"][..],
        &[
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha256",
            "-keyopt",
            "rsa_mgf1_md:sha256",
        ][..],
        &["-keyid"][..],
    ] {
        let mut args = vec!["-aes256", "-recip", &cert_pem];
        args.extend_from_slice(extra);
        let theirs = openssl_encrypt(&d, &args);
        assert_eq!(
            decrypt(&theirs, &secret).unwrap().content.as_slice(),
            CONTENT,
            "{extra:?}"
        );
    }
}

#[test]
fn kari_both_ways() {
    let d = Dir::new();
    let root = root("Interop Root");
    for (key, kdf, wraps) in [
        (
            p256(),
            KeyAgreeKdf::Sha256,
            [KeyWrap::Aes128, KeyWrap::Aes256],
        ),
        (
            p384(),
            KeyAgreeKdf::Sha384,
            [KeyWrap::Aes128, KeyWrap::Aes256],
        ),
        (
            p384(),
            KeyAgreeKdf::Sha256,
            [KeyWrap::Aes192, KeyWrap::Aes256],
        ),
    ] {
        let cert = leaf(&root, &key, "ec recipient");
        let (cert_pem, key_pem) = (d.cert("e.pem", &cert), d.key("e.key", &key));
        for wrap in wraps {
            let ias = Recipient::key_agree(&to_cert(&cert), kdf, wrap).unwrap();
            let by_ski = Recipient::KeyAgree {
                rid: RecipientId::SubjectKeyIdentifier(ski_of(&cert)),
                key: PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap(),
                kdf,
                wrap,
                ukm: Some(b"some ukm".to_vec()),
            };
            for r in [ias, by_ski] {
                let der = envelope(ID_DATA, CONTENT, &[r], ContentEncryption::Aes256Cbc).unwrap();
                let got = openssl_decrypt(&d, &der, &["-recip", &cert_pem, "-inkey", &key_pem]);
                assert_eq!(got, CONTENT, "our kari {kdf:?} {wrap:?}");
            }
        }
        let secret = RecipientSecret::PrivateKey {
            key: key.clone(),
            cert: Some(to_cert(&cert)),
            ski: None,
        };
        // OpenSSL's default KDF hash is SHA-1 (dhSinglePass-stdDH-sha1kdf-scheme).
        for extra in [
            &["-aes256"][..],
            &["-aes128", "-keyopt", "ecdh_kdf_md:sha256"][..],
            &["-aes256", "-keyopt", "ecdh_kdf_md:sha384"][..],
        ] {
            let mut args = vec!["-recip", &cert_pem];
            args.extend_from_slice(extra);
            let theirs = openssl_encrypt(&d, &args);
            assert_eq!(
                decrypt(&theirs, &secret).unwrap().content.as_slice(),
                CONTENT,
                "{extra:?}"
            );
        }
    }
}

#[test]
fn pwri_both_ways() {
    let d = Dir::new();
    for (cea, kek_cipher) in [
        (ContentEncryption::Aes128Cbc, ContentEncryption::Aes128Cbc),
        (ContentEncryption::Aes256Cbc, ContentEncryption::Aes256Cbc),
        (ContentEncryption::Aes256Cbc, ContentEncryption::Aes128Cbc),
        (ContentEncryption::Aes192Cbc, ContentEncryption::Aes256Cbc),
    ] {
        let r = Recipient::Password {
            password: Zeroizing::new(b"s3cret pass".to_vec()),
            params: PwriParams {
                iterations: 2048,
                kek_cipher,
            },
        };
        let der = envelope(ID_DATA, CONTENT, &[r], cea).unwrap();
        let got = openssl_decrypt(&d, &der, &["-pwri_password", "s3cret pass"]);
        assert_eq!(got, CONTENT, "our pwri {cea:?}/{kek_cipher:?}");
    }
    let secret = RecipientSecret::Password(Zeroizing::new(b"s3cret pass".to_vec()));
    for cipher in ["-aes256", "-aes128"] {
        let theirs = openssl_encrypt(&d, &["-pwri_password", "s3cret pass", cipher]);
        assert_eq!(
            decrypt(&theirs, &secret).unwrap().content.as_slice(),
            CONTENT
        );
        let wrong = RecipientSecret::Password(Zeroizing::new(b"s3cret pasS".to_vec()));
        assert!(decrypt(&theirs, &wrong).is_err());
    }
}

fn openssl_verify(d: &Dir, der: &[u8], root_pem: &str) -> Vec<u8> {
    let input = d.write("signed.der", der);
    let out = d.s("verified.bin");
    openssl(&[
        "cms", "-verify", "-inform", "DER", "-binary", "-in", &input, "-CAfile", root_pem, "-out",
        &out,
    ]);
    d.read("verified.bin")
}

#[test]
fn signed_data_ours_to_openssl() {
    let d = Dir::new();
    let root = root("Interop Root");
    let other = common::root("Someone Else");
    let root_pem = d.cert("root.pem", &root.1);
    let other_pem = d.cert("other.pem", &other.1);
    for key in [rsa(), p256(), p384(), ed25519()] {
        let is_ed25519 = key.id() == openssl::pkey::Id::ED25519;
        let cert = leaf(&root, &key, "signer");
        let signer = OpensslSigner::new(key, to_cert(&cert)).unwrap();
        for ct in [ID_DATA, ID_CT_KP_A_KEY_PACKAGE] {
            for sid in [
                SignerIdKind::IssuerAndSerialNumber,
                SignerIdKind::SubjectKeyIdentifier,
            ] {
                let opts = SignOptions {
                    sid,
                    ..Default::default()
                };
                let der = sign_with(ct, CONTENT, &signer, &[], &opts).unwrap();
                if is_ed25519 {
                    // OpenSSL 3.0 cannot sign or verify Ed25519 CMS ("eddsa_digest_signverify_init:
                    // invalid digest"; fixed in 3.2). Check the signature with the library instead.
                    check_ed25519_independently(&der, &cert);
                    continue;
                }
                assert_eq!(openssl_verify(&d, &der, &root_pem), CONTENT, "{ct} {sid:?}");
                let input = d.write("signed.der", &der);
                assert!(openssl_fails(&[
                    "cms",
                    "-verify",
                    "-inform",
                    "DER",
                    "-in",
                    &input,
                    "-CAfile",
                    &other_pem,
                    "-out",
                    "/dev/null"
                ]));
            }
        }
    }
}

/// Certificates given as DER go in as they are, sorted and deduplicated (a DER SET OF: the
/// `cms` types re-encode the result byte for byte), and OpenSSL verifies the signature and
/// finds the signer among them; a CRL rides along; anything but one DER SEQUENCE is refused.
#[test]
fn signed_data_with_der_certificates_to_openssl() {
    let d = Dir::new();
    let root = root("Interop Root");
    let root_pem = d.cert("root.pem", &root.1);
    let key = p256();
    let cert = leaf(&root, &key, "signer");
    let other = leaf(&root, &p256(), "another");
    let signer = OpensslSigner::new(key, to_cert(&cert)).unwrap();
    let (leaf_der, root_der, other_der) = (
        cert.to_der().unwrap(),
        root.1.to_der().unwrap(),
        other.to_der().unwrap(),
    );
    let crl = {
        // With a crlnumber file OpenSSL writes a v2 CRL (the kind Estuary issues).
        let conf = d.write(
            "crl.cnf",
            b"[ca]\ndefault_ca=c\n[c]\ndatabase=DB\ncrlnumber=NUM\ndefault_md=sha256\ndefault_crl_days=1\n",
        );
        let db = d.write("index.txt", b"");
        let num = d.write("crlnumber", b"01\n");
        let conf_text = std::fs::read_to_string(&conf)
            .unwrap()
            .replace("DB", &db)
            .replace("NUM", &num);
        std::fs::write(&conf, conf_text).unwrap();
        let key_pem = d.key("root.key", &root.0);
        let out = d.s("crl.der");
        openssl(&[
            "ca",
            "-gencrl",
            "-config",
            &conf,
            "-keyfile",
            &key_pem,
            "-cert",
            &root_pem,
            "-out",
            &d.s("crl.pem"),
        ]);
        openssl(&[
            "crl",
            "-in",
            &d.s("crl.pem"),
            "-outform",
            "DER",
            "-out",
            &out,
        ]);
        d.read("crl.der")
    };
    let opts = SignOptions {
        crls: vec![crl.clone()],
        ..Default::default()
    };
    let der = sign_with_der_certs(
        ID_DATA,
        CONTENT,
        &signer,
        &[&other_der, &leaf_der, &root_der, &leaf_der],
        &opts,
    )
    .unwrap();
    // Each certificate once, in ascending order of their encodings (X.690 §11.6; the `der`
    // crate's re-encoding orders by value instead, so it is not the reference here).
    let at = |cert: &[u8]| {
        let found: Vec<usize> = der
            .windows(cert.len())
            .enumerate()
            .filter(|(_, w)| *w == cert)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(found.len(), 1, "each certificate exactly once");
        found[0]
    };
    let mut by_position = [&leaf_der, &root_der, &other_der];
    by_position.sort_by_key(|c| at(c));
    let mut by_encoding = by_position;
    by_encoding.sort();
    assert_eq!(by_position, by_encoding);
    assert_eq!(openssl_verify(&d, &der, &root_pem), CONTENT);
    let input = d.write("signed.der", &der);
    let printed = String::from_utf8(openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        &input,
        "-print_certs",
        "-noout",
    ]))
    .unwrap();
    assert_eq!(printed.matches("subject=").count(), 3, "{printed}");
    let parsed = ParsedSignedData::parse(&der).unwrap();
    let ci = {
        use der::Decode;
        cms::content_info::ContentInfo::from_der(&der).unwrap()
    };
    let sd: cms::signed_data::SignedData = ci.content.decode_as().unwrap();
    assert_eq!(sd.crls.map(|c| c.0.len()), Some(1));
    assert_eq!(parsed.content, CONTENT);
    // Not certificates: refused, not copied into the output.
    for bad in [
        &b""[..],
        &[0x30, 0x03, 0x02, 0x01][..],
        &[0x04, 0x00][..],
        &[0x30, 0x00, 0x00][..],
    ] {
        assert!(
            sign_with_der_certs(ID_DATA, CONTENT, &signer, &[&leaf_der, bad], &opts).is_err(),
            "{bad:02x?}"
        );
    }
}

/// RFC 8419 by hand: SHA-512 messageDigest, PureEdDSA over the DER SET OF signed attributes.
fn check_ed25519_independently(der: &[u8], cert: &X509) {
    use der::{Decode, Encode};
    let ci = cms::content_info::ContentInfo::from_der(der).unwrap();
    let sd: cms::signed_data::SignedData = ci.content.decode_as().unwrap();
    let si = sd.signer_infos.0.iter().next().unwrap();
    assert_eq!(si.digest_alg.oid, oids::ID_SHA512);
    assert_eq!(si.signature_algorithm.oid, oids::ID_ED25519);
    let attrs = si.signed_attrs.as_ref().unwrap();
    let md = attrs
        .iter()
        .find(|a| a.oid == oids::ID_MESSAGE_DIGEST)
        .unwrap();
    let md: der::asn1::OctetString = md.values.iter().next().unwrap().decode_as().unwrap();
    let content = openssl::hash::hash(openssl::hash::MessageDigest::sha512(), CONTENT).unwrap();
    assert_eq!(md.as_bytes(), &content[..]);
    let pk = cert.public_key().unwrap();
    let mut v = openssl::sign::Verifier::new_without_digest(&pk).unwrap();
    assert!(
        v.verify_oneshot(si.signature.as_bytes(), &attrs.to_der().unwrap())
            .unwrap()
    );
}

#[test]
fn signed_data_openssl_to_ours() {
    let d = Dir::new();
    let root = root("Interop Root");
    let trust = store(&[&root.1]);
    let plain = d.write("plain.bin", CONTENT);
    for (key, md) in [
        (rsa(), "sha256"),
        (p256(), "sha256"),
        (p384(), "sha384"),
        (rsa(), "sha512"),
    ] {
        let cert = leaf(&root, &key, "openssl signer");
        let (cert_pem, key_pem) = (d.cert("s.pem", &cert), d.key("s.key", &key));
        for extra in [&[][..], &["-keyid"][..], &["-noattr"][..]] {
            let out = d.s("sig.der");
            let mut args = vec![
                "cms",
                "-sign",
                "-nodetach",
                "-binary",
                "-md",
                md,
                "-signer",
                &cert_pem,
                "-inkey",
                &key_pem,
                "-in",
                &plain,
                "-outform",
                "DER",
                "-out",
                &out,
            ];
            args.extend_from_slice(extra);
            openssl(&args);
            let der = d.read("sig.der");
            reencodes_byte_equal(&der);
            let v = verify(&der, &trust, &VerifyOptions::default()).unwrap();
            assert_eq!(v.content, CONTENT);
            assert_eq!(v.signers, vec![to_cert(&cert)]);
            // Any single flipped byte in the content or the signature is caught.
            let pos = der
                .windows(CONTENT.len())
                .position(|w| w == CONTENT)
                .unwrap();
            let mut t = der.clone();
            t[pos + 3] ^= 0x20;
            assert!(verify(&t, &trust, &VerifyOptions::default()).is_err());
            let mut t = der.clone();
            let n = t.len();
            t[n - 5] ^= 0x01;
            assert!(verify(&t, &trust, &VerifyOptions::default()).is_err());
            let elsewhere = store(&[&common::root("Other").1]);
            assert!(matches!(
                verify(&der, &elsewhere, &VerifyOptions::default()),
                Err(CmsError::ChainValidation(_))
            ));
        }
    }
    // RSA-PSS signatures from OpenSSL verify too.
    let key = rsa();
    let cert = leaf(&root, &key, "pss signer");
    let (cert_pem, key_pem) = (d.cert("p.pem", &cert), d.key("p.key", &key));
    let out = d.s("pss.der");
    openssl(&[
        "cms",
        "-sign",
        "-nodetach",
        "-binary",
        "-md",
        "sha256",
        "-signer",
        &cert_pem,
        "-inkey",
        &key_pem,
        "-keyopt",
        "rsa_padding_mode:pss",
        "-in",
        &plain,
        "-outform",
        "DER",
        "-out",
        &out,
    ]);
    let v = verify(&d.read("pss.der"), &trust, &VerifyOptions::default()).unwrap();
    assert_eq!(v.content, CONTENT);
}

#[test]
fn authenticated_data_parses_with_openssl() {
    // `openssl cms` (3.0) cannot create or verify a password-based AuthenticatedData: its
    // -authenticate mode does not exist (only -compress/-uncompress, -EncryptedData_*, ...),
    // and it has no AuthenticatedData verification at all. So: our own verify, plus a
    // structural parse by `openssl asn1parse`.
    let d = Dir::new();
    let r = Recipient::Password {
        password: Zeroizing::new(b"cmc shared secret".to_vec()),
        params: PwriParams::default(),
    };
    let der = authenticate(ID_DATA, CONTENT, &[r]).unwrap();
    let a = verify_authenticated(
        &der,
        &RecipientSecret::Password(Zeroizing::new(b"cmc shared secret".to_vec())),
    )
    .unwrap();
    assert_eq!(a.content, CONTENT);
    let input = d.write("auth.der", &der);
    let dump = String::from_utf8(openssl(&["asn1parse", "-inform", "DER", "-in", &input])).unwrap();
    assert!(dump.contains("id-smime-ct-authData"), "{dump}");
    assert!(dump.contains("hmacWithSHA256"), "{dump}");
    assert!(dump.contains("id-alg-PWRI-KEK"), "{dump}");
}

fn nested_key_delivery(d: &Dir, recipient: Recipient, decrypt_args: &[&str]) {
    let root = root("KeyGen Root");
    let root_pem = d.cert("kroot.pem", &root.1);
    let ca_key = p256();
    let ca_cert = leaf(&root, &ca_key, "key generator");
    let signer = OpensslSigner::new(ca_key, to_cert(&ca_cert)).unwrap();
    let generated = p384();
    let pkg = encode_key_package(&[&generated]).unwrap();
    let signed = sign(ID_CT_KP_A_KEY_PACKAGE, &pkg, &signer, &[]).unwrap();
    let enveloped = envelope(
        ID_SIGNED_DATA,
        &signed,
        &[recipient],
        ContentEncryption::Aes256Cbc,
    )
    .unwrap();

    let inner = openssl_decrypt(d, &enveloped, decrypt_args);
    assert_eq!(inner, signed);
    let extracted = openssl_verify(d, &inner, &root_pem);
    assert_eq!(extracted.as_slice(), pkg.as_slice());
    let p = d.write("keypkg.der", &extracted);
    let dump = String::from_utf8(openssl(&["asn1parse", "-inform", "DER", "-in", &p])).unwrap();
    assert!(
        dump.contains("id-ecPublicKey") && dump.contains("secp384r1"),
        "{dump}"
    );
    let keys = decode_key_package(&extracted).unwrap();
    assert!(keys[0].to_pkey().unwrap().public_eq(&generated));
}

#[test]
fn key_package_in_signed_in_enveloped() {
    let d = Dir::new();
    let kek = vec![0x5au8; 32];
    let r = Recipient::Kek {
        key_id: b"dk-1".to_vec(),
        kek: Zeroizing::new(kek.clone()),
    };
    nested_key_delivery(
        &d,
        r,
        &[
            "-secretkey",
            &hex::encode(&kek),
            "-secretkeyid",
            &hex::encode(b"dk-1"),
        ],
    );

    let root = root("Client Root");
    let key = rsa();
    let cert = leaf(&root, &key, "client");
    let (cert_pem, key_pem) = (d.cert("c.pem", &cert), d.key("c.key", &key));
    let r = Recipient::key_transport(&to_cert(&cert), KeyTransport::RsaOaepSha256).unwrap();
    nested_key_delivery(&d, r, &["-recip", &cert_pem, "-inkey", &key_pem]);
}
