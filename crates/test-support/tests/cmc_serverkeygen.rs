//! CMC server-side key generation (draft-turner-cmc-serverkeygeneration-02, REQUIREMENTS
//! §2.12) over /fullcmc on real TLS: every shroud method (certIdentifier and certificate with
//! ktri and kari, bareKey, shared secret with pwri), each answer opened by our client
//! (SKGD-24) and its layers by `openssl cms` (outer -verify, -decrypt, inner -verify), and
//! every error the draft defines (SKGD-25) plus the RFC 5272 ones it uses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use der::{Decode, Encode};
use est_client::{ClientConfig, EstClient, KeyKind, San, Trust};
use est_cmc::client::{
    CertRequestBody, RequestOptions, RequestSigner, SharedSecret, build_pki_data, sign_request,
    verify_response,
};
use est_cmc::serverkeygen::client::{
    ID_SKG_REQUEST, build_request, default_capabilities, placeholder_request, read_response,
};
use est_cmc::serverkeygen::{
    BareKey, ServerKeyGenRequest, Shroud, ShroudWithPublicKey, SignerIdentifier, SkgErrorCode,
    SkgOids,
};
use est_cmc::{BodyPartReference, CmcFailInfo, CmcStatus, OtherStatusInfo, TaggedAttribute};
use openssl::pkey::{PKey, Private};
use openssl::x509::store::{X509Store, X509StoreBuilder};
use spki::AlgorithmIdentifierOwned;
use test_support::*;
use x509_cert::Certificate;
use zeroize::Zeroizing;

const SKG: &str = "cmc-skg";

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

/// A certificate of this CA for `key`, enrolled over /fullcmc with alice's credentials.
async fn enroll(s: &TestServer, key: &PKey<Private>, cn: &str) -> Certificate {
    let ski = est_client::subject_key_id(key).unwrap();
    let p10 = est_client::build_csr_full(
        key,
        &format!("CN={cn}"),
        &[San::Dns(cn.into())],
        None,
        vec![est_client::subject_key_id_extension(&ski).unwrap()],
        Vec::new(),
    )
    .unwrap();
    let opts = RequestOptions::random().unwrap();
    let pki = build_pki_data(&opts, &CertRequestBody::Pkcs10(p10), key).unwrap();
    let der = sign_request(&pki, &RequestSigner::RequestKey { key, key_id: &ski }).unwrap();
    let (status, der) = post(s, "", true, &der).await;
    assert_eq!(status, 200);
    verify_response(&der, &trust(s))
        .unwrap()
        .certificates
        .into_iter()
        .find(|c| c.tbs_certificate().subject().to_string() == format!("CN={cn}"))
        .unwrap()
}

fn p256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: est_cms::oids::ID_EC_PUBLIC_KEY,
        parameters: Some(der::Any::encode_from(&est_cms::oids::SECP256R1).unwrap()),
    }
}

fn curve_algorithm(curve: &str) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: est_cms::oids::ID_EC_PUBLIC_KEY,
        parameters: Some(
            der::Any::encode_from(&der::asn1::ObjectIdentifier::new_unwrap(curve)).unwrap(),
        ),
    }
}

fn name(cn: &str) -> x509_cert::name::Name {
    est_client::parse_subject(&format!("CN={cn}")).unwrap()
}

fn san_ext(cn: &str) -> Vec<x509_cert::ext::Extension> {
    est_client::san_extension(&[San::Dns(cn.into())])
        .unwrap()
        .into_iter()
        .collect()
}

/// The PKIData of a ServerKeyGenRequest for `cn` (with its dNSName), key `alg`.
fn skg_pki(
    opts: &RequestOptions,
    cn: &str,
    alg: AlgorithmIdentifierOwned,
    shroud: &Shroud,
) -> est_cmc::PkiData {
    let oids = SkgOids::default();
    let req = placeholder_request(name(cn), alg, &san_ext(cn)).unwrap();
    build_request(
        opts,
        &oids,
        req,
        shroud,
        default_capabilities(&oids, shroud),
    )
    .unwrap()
}

fn signed_by(pki: &est_cmc::PkiData, key: &PKey<Private>, cert: &Certificate) -> Vec<u8> {
    let signer = est_cms::OpensslSigner::new(key.clone(), cert.clone()).unwrap();
    sign_request(pki, &RequestSigner::Certificate(&signer)).unwrap()
}

/// A self-signed RSA certificate for `cn` with keyEncipherment: no trust anchor of ours.
fn self_signed(cn: &str) -> Certificate {
    use openssl::x509::extension::KeyUsage;
    let key = est_client::generate_key(KeyKind::Rsa2048).unwrap();
    let mut n = openssl::x509::X509NameBuilder::new().unwrap();
    n.append_entry_by_text("CN", cn).unwrap();
    let n = n.build();
    let mut b = openssl::x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&n).unwrap();
    b.set_issuer_name(&n).unwrap();
    b.set_pubkey(&key).unwrap();
    let serial = openssl::bn::BigNum::from_u32(7)
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.append_extension(KeyUsage::new().key_encipherment().build().unwrap())
        .unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    Certificate::from_der(&b.build().to_der().unwrap()).unwrap()
}

struct Tmp(std::path::PathBuf);
impl Tmp {
    fn new(tag: &str) -> Self {
        let mut r = [0u8; 6];
        openssl::rand::rand_bytes(&mut r).unwrap();
        let p = std::env::temp_dir().join(format!("estuary-cmcskg-{tag}-{}", hex::encode(r)));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn write(&self, n: &str, data: &[u8]) -> String {
        let p = self.0.join(n);
        std::fs::write(&p, data).unwrap();
        p.to_string_lossy().into_owned()
    }
    fn path(&self, n: &str) -> String {
        self.0.join(n).to_string_lossy().into_owned()
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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

fn pem(c: &Certificate) -> Vec<u8> {
    der::EncodePem::to_pem(c, der::pem::LineEnding::LF)
        .unwrap()
        .into_bytes()
}

/// The independent check of the whole layering (SKGD-19) with the OpenSSL CLI: the response
/// verifies to the root with the chain it carries (layer 4) and its PKIResponse holds the ServerKeyGenResponse control
/// and the EnvelopedData (layer 3); `decrypt` (extra `openssl cms -decrypt` arguments) opens
/// that (layer 2) to a SignedData that verifies to the root (layer 1) and holds the
/// AsymmetricKeyPackage with the key of the issued certificate (SKGD-18).
fn openssl_checks(s: &TestServer, response: &[u8], decrypt: &[&str], issued: &Certificate) {
    let t = Tmp::new("ossl");
    let resp = t.write("resp.der", response);
    let root = t.write("root.pem", &pem(&s.pki.root.cert));
    let pki_resp = t.path("pkiresp.der");
    openssl(&[
        "cms", "-verify", "-inform", "DER", "-in", &resp, "-CAfile", &root, "-binary", "-purpose",
        "any", "-out", &pki_resp,
    ]);
    // SKGD-20: the outer SignedData names the innermost content in a Content Hints attribute.
    let printed = String::from_utf8(openssl(&[
        "cms", "-cmsout", "-print", "-inform", "DER", "-in", &resp,
    ]))
    .unwrap();
    assert!(printed.contains("contentHint"), "{printed}");
    let dump =
        String::from_utf8(openssl(&["asn1parse", "-inform", "DER", "-in", &pki_resp])).unwrap();
    assert!(
        dump.contains(&format!(":{}.1.2", SkgOids::ESTUARY_ARC)),
        "ServerKeyGenResponse control (SKGD-22): {dump}"
    );
    assert!(dump.contains(":pkcs7-envelopedData"), "{dump}");
    // The EnvelopedData: the cmsSequence entry, taken with our decoder, decrypted by OpenSSL.
    let r = est_cmc::types::PkiResponse::from_der(&std::fs::read(&pki_resp).unwrap()).unwrap();
    assert_eq!(
        r.cms_sequence.len(),
        1,
        "one key, one EnvelopedData (SKGD-21)"
    );
    let env = t.write("env.der", &r.cms_sequence[0].content_info.to_der().unwrap());
    let inner = t.path("inner.der");
    let mut args = vec!["cms", "-decrypt", "-inform", "DER", "-in", &env, "-binary"];
    args.extend_from_slice(decrypt);
    args.extend_from_slice(&["-out", &inner]);
    openssl(&args);
    let akp = t.path("akp.der");
    openssl(&[
        "cms", "-verify", "-inform", "DER", "-in", &inner, "-CAfile", &root, "-binary", "-purpose",
        "any", "-out", &akp,
    ]);
    let keys = est_cms::decode_key_package(&std::fs::read(&akp).unwrap()).unwrap();
    assert_eq!(keys.len(), 1, "exactly one OneAsymmetricKey (SKGD-18)");
    assert!(keys[0].public_key.is_some(), "v2, with the public key");
    let key = keys[0].to_pkey().unwrap();
    assert_eq!(
        key.public_key_to_der().unwrap(),
        issued
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap(),
        "the key package holds the key of the issued certificate"
    );
}

fn statuses_with(summary: &est_cmc::ResponseSummary, id: u32) -> Vec<&est_cmc::CmcStatusInfoV2> {
    summary
        .statuses
        .iter()
        .filter(|s| s.body_list.contains(&BodyPartReference::Id(id)))
        .collect()
}

fn fail_info(s: &est_cmc::CmcStatusInfoV2) -> Option<CmcFailInfo> {
    match s.other_info {
        Some(OtherStatusInfo::FailInfo(f)) => Some(f),
        _ => None,
    }
}

/// The failure for the ServerKeyGenRequest: its failInfo and its draft error code, if any.
fn skg_failure(s: &TestServer, status: u16, der: &[u8]) -> (CmcFailInfo, Option<SkgErrorCode>) {
    assert_eq!(
        status, 400,
        "a refused request is answered 400 with a PKIResponse"
    );
    let oids = SkgOids::default();
    let v = verify_response(der, &trust(s)).unwrap();
    let got = read_response(
        der,
        &trust(s),
        &oids,
        &est_cms::RecipientSecret::Password(Zeroizing::new(b"unused".to_vec())),
    )
    .unwrap();
    assert!(got.keys.is_empty());
    let st = statuses_with(&v.summary, ID_SKG_REQUEST);
    assert!(st.iter().all(|x| x.status == CmcStatus::FAILED), "{st:?}");
    let info = st
        .iter()
        .find_map(|x| fail_info(x))
        .unwrap_or_else(|| panic!("a failInfo for the request: {:?}", v.summary.statuses));
    let code = got.errors.first().map(|(refs, c)| {
        assert!(refs.contains(&BodyPartReference::Id(ID_SKG_REQUEST)));
        *c
    });
    (info, code)
}

/// A client of `kind`, enrolled as `cn`, asks for a P-256 key protected with the certificate
/// it signs the request with, named by certIdentifier (SKGD-11); no HTTP credentials, the
/// signature authenticates (SKGD-17, CMC-21). Returns the request options, the response (200),
/// the client's key and certificate, and the response opened with that key (SKGD-24).
async fn by_own_certificate(
    s: &TestServer,
    kind: KeyKind,
    cn: &str,
) -> (
    RequestOptions,
    Vec<u8>,
    PKey<Private>,
    Certificate,
    est_cmc::serverkeygen::client::SkgResponse,
) {
    let client_key = est_client::generate_key(kind).unwrap();
    let cert = enroll(s, &client_key, cn).await;
    let shroud = Shroud::PublicKey(ShroudWithPublicKey::CertIdentifier(
        SignerIdentifier::IssuerAndSerialNumber(est_cms::issuer_and_serial(&cert)),
    ));
    let opts = RequestOptions::random().unwrap();
    let pki = skg_pki(&opts, cn, p256_algorithm(), &shroud);
    let (status, der) = post(s, SKG, false, &signed_by(&pki, &client_key, &cert)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&der));
    let secret = est_cms::RecipientSecret::PrivateKey {
        key: client_key.clone(),
        cert: Some(cert.clone()),
        ski: None,
    };
    let got = read_response(&der, &trust(s), &SkgOids::default(), &secret).unwrap();
    assert!(got.errors.is_empty());
    assert_eq!(got.keys.len(), 1);
    (opts, der, client_key, cert, got)
}

/// [`openssl_checks`], OpenSSL decrypting with the client's certificate and key.
fn openssl_checks_with_certificate(
    s: &TestServer,
    der: &[u8],
    cert: &Certificate,
    key: &PKey<Private>,
    issued: &Certificate,
) {
    let t = Tmp::new("recip");
    let c = t.write("client.pem", &pem(cert));
    let kf = t.write("client.key", &key.private_key_to_pem_pkcs8().unwrap());
    openssl_checks(s, der, &["-recip", &c, "-inkey", &kf], issued);
}

/// ktri, certIdentifier (SKGD-11): an RSA client signs with its certificate (SignedData,
/// SKGD-17) and names the same certificate to protect the key. The CA generates P-256,
/// issues it for the client's names (a rekey) and returns the key encrypted to it.
#[tokio::test(flavor = "multi_thread")]
async fn ktri_to_the_signing_certificate_named_by_cert_identifier() {
    let s = TestServer::start(ServerOptions::default()).await;
    let (opts, der, client_key, cert, got) =
        by_own_certificate(&s, KeyKind::Rsa3072, "ktri.example").await;
    let k = &got.keys[0];
    assert_eq!(k.request_body_part_id, ID_SKG_REQUEST);
    assert!(k.key.ec_key().is_ok(), "a P-256 key as asked (SKGD-4)");
    assert_eq!(k.key.bits(), 256);
    assert_eq!(k.generator, s.pki.issuing.cert, "the CA generated it");
    assert_eq!(
        k.certificate.tbs_certificate().subject(),
        cert.tbs_certificate().subject()
    );
    assert_ne!(k.certificate, cert, "a new certificate for the new key");
    // SKGD-23: nonces and transactionId.
    let v = verify_response(&der, &trust(&s)).unwrap();
    assert_eq!(
        v.summary.recipient_nonce.as_deref(),
        Some(&opts.sender_nonce[..])
    );
    assert_eq!(
        v.summary.transaction_id.as_ref(),
        Some(&opts.transaction_id)
    );
    assert!(v.summary.sender_nonce.is_some());
    // Durable: the store has it (recorded before it was returned).
    use est_ca::Store;
    let serial = est_ca::serial_hex(k.certificate.tbs_certificate().serial_number());
    assert!(
        s.store
            .certificate_by_serial(&serial)
            .await
            .unwrap()
            .is_some()
    );
    openssl_checks_with_certificate(&s, &der, &cert, &client_key, &k.certificate);
    s.shutdown().await;
}

/// kari (SKGD-11): an EC client certificate (keyAgreement) protects the key, named by
/// certIdentifier; OpenSSL decrypts the ECDH recipient.
#[tokio::test(flavor = "multi_thread")]
async fn kari_to_an_ec_certificate() {
    let s = TestServer::start(ServerOptions::default()).await;
    let (_, der, client_key, cert, got) =
        by_own_certificate(&s, KeyKind::P256, "kari.example").await;
    openssl_checks_with_certificate(&s, &der, &cert, &client_key, &got.keys[0].certificate);
    s.shutdown().await;
}

/// bareKey (SKGD-14): a public key and its identifier, no certificate; the recipient is
/// named by that identifier.
#[tokio::test(flavor = "multi_thread")]
async fn bare_key_protects_the_key_named_by_its_ski() {
    let s = TestServer::start(ServerOptions::default()).await;
    let oids = SkgOids::default();
    let signing_key = est_client::generate_key(KeyKind::P256).unwrap();
    let cert = enroll(&s, &signing_key, "bare.example").await;
    for kind in [KeyKind::Rsa2048, KeyKind::P256] {
        let bare = est_client::generate_key(kind).unwrap();
        let ski = est_client::subject_key_id(&bare).unwrap();
        let shroud = Shroud::PublicKey(ShroudWithPublicKey::BareKey(BareKey {
            public_key: spki::SubjectPublicKeyInfoOwned::from_der(
                &bare.public_key_to_der().unwrap(),
            )
            .unwrap(),
            ski: x509_cert::ext::pkix::SubjectKeyIdentifier(
                der::asn1::OctetString::new(ski.clone()).unwrap(),
            ),
        }));
        let opts = RequestOptions::random().unwrap();
        // RSA-2048 protects 112 bits: enough for an RSA-2048 key, not for P-256 (SKGD-44).
        let alg = if kind == KeyKind::Rsa2048 {
            AlgorithmIdentifierOwned {
                oid: est_cms::oids::RSA_ENCRYPTION,
                parameters: Some(der::Any::encode_from(&der::asn1::Null).unwrap()),
            }
        } else {
            p256_algorithm()
        };
        let pki = skg_pki(&opts, "bare.example", alg, &shroud);
        let (status, der) = post(&s, SKG, false, &signed_by(&pki, &signing_key, &cert)).await;
        assert_eq!(status, 200, "{kind:?}: {}", String::from_utf8_lossy(&der));
        let got = read_response(
            &der,
            &trust(&s),
            &oids,
            &est_cms::RecipientSecret::PrivateKey {
                key: bare.clone(),
                cert: None,
                ski: Some(ski),
            },
        )
        .unwrap();
        assert_eq!(got.keys.len(), 1, "{kind:?}");
        if kind == KeyKind::Rsa2048 {
            assert_eq!(got.keys[0].key.rsa().unwrap().size() * 8, 2048);
            // ktri to a bare RSA key: OpenSSL finds the recipient by trying the key.
            let t = Tmp::new("bare");
            let kf = t.write("bare.key", &bare.private_key_to_pem_pkcs8().unwrap());
            openssl_checks(&s, &der, &["-inkey", &kf], &got.keys[0].certificate);
        }
    }
    s.shutdown().await;
}

/// pwri (SKGD-15): the request is an AuthenticatedData under Identification (SKGD-17); the
/// key is protected with another shared secret of the same client, linked to its subject.
#[tokio::test(flavor = "multi_thread")]
async fn shared_secret_pwri_and_openssl_decrypts_with_the_password() {
    let s = TestServer::start(ServerOptions::default()).await;
    let oids = SkgOids::default();
    s.authority
        .add_cmc_secret(
            "pwri-dev",
            b"identification-secret-1",
            SKG,
            "CN=pwri.example",
        )
        .await
        .unwrap();
    s.authority
        .add_cmc_secret(
            "pwri-key",
            b"key-protection-secret-2",
            SKG,
            "CN=pwri.example",
        )
        .await
        .unwrap();
    let mut opts = RequestOptions::random().unwrap();
    opts.identity = Some(SharedSecret {
        ident: "pwri-dev".into(),
        secret: Zeroizing::new(b"identification-secret-1".to_vec()),
    });
    let shroud = Shroud::SharedSecret("pwri-key".into());
    let pki = skg_pki(&opts, "pwri.example", p256_algorithm(), &shroud);
    let req = sign_request(
        &pki,
        &RequestSigner::SharedSecret(opts.identity.as_ref().unwrap()),
    )
    .unwrap();
    let (status, der) = post(&s, SKG, false, &req).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&der));
    let got = read_response(
        &der,
        &trust(&s),
        &oids,
        &est_cms::RecipientSecret::Password(Zeroizing::new(b"key-protection-secret-2".to_vec())),
    )
    .unwrap();
    assert_eq!(got.keys.len(), 1);
    assert_eq!(
        got.keys[0]
            .certificate
            .tbs_certificate()
            .subject()
            .to_string(),
        "CN=pwri.example"
    );
    openssl_checks(
        &s,
        &der,
        &["-pwri_password", "key-protection-secret-2"],
        &got.keys[0].certificate,
    );
    // The same request sent with alice's HTTP Basic credentials is authenticated as alice
    // (HTTP identity first), who owns no shared secret: badSharedSecret, whatever subject
    // the secret is linked to.
    let mut opts_b = RequestOptions::random().unwrap();
    opts_b.identity = opts.identity.clone();
    let pki = skg_pki(&opts_b, "pwri.example", p256_algorithm(), &shroud);
    let req = sign_request(
        &pki,
        &RequestSigner::SharedSecret(opts_b.identity.as_ref().unwrap()),
    )
    .unwrap();
    let (status, der) = post(&s, SKG, true, &req).await;
    assert_eq!(
        skg_failure(&s, status, &der),
        (
            CmcFailInfo::BAD_REQUEST,
            Some(SkgErrorCode::BAD_SHARED_SECRET)
        )
    );
    // Another client's secret (linked to another subject) is not this requester's:
    // badSharedSecret; an unknown name looks the same.
    s.authority
        .add_cmc_secret(
            "other-key",
            b"someone-elses-secret-3",
            SKG,
            "CN=other.example",
        )
        .await
        .unwrap();
    for other in ["other-key", "no-such-secret"] {
        let mut opts2 = RequestOptions::random().unwrap();
        opts2.identity = opts.identity.clone();
        let pki = skg_pki(
            &opts2,
            "pwri.example",
            p256_algorithm(),
            &Shroud::SharedSecret(other.into()),
        );
        let req = sign_request(
            &pki,
            &RequestSigner::SharedSecret(opts2.identity.as_ref().unwrap()),
        )
        .unwrap();
        let (status, der) = post(&s, SKG, false, &req).await;
        assert_eq!(
            skg_failure(&s, status, &der),
            (
                CmcFailInfo::BAD_REQUEST,
                Some(SkgErrorCode::BAD_SHARED_SECRET)
            ),
            "{other}"
        );
    }
    s.shutdown().await;
}

/// Every refusal: the draft's codes (SKGD-25: archiveNotSupported, badCertificate) with
/// badRequest, and the RFC 5272 ones (badAlg for SKGD-4/7/44, badIdentity for SKGD-16,
/// badRequest for SKGD-1), none of them issuing anything.
#[tokio::test(flavor = "multi_thread")]
async fn every_error_is_a_cmc_failure_and_issues_nothing() {
    use est_ca::Store;
    let s = TestServer::start(ServerOptions::default()).await;
    let oids = SkgOids::default();
    let key = est_client::generate_key(KeyKind::Rsa2048).unwrap();
    let cert = enroll(&s, &key, "errors.example").await;
    let other_key = est_client::generate_key(KeyKind::Rsa2048).unwrap();
    let other = enroll(&s, &other_key, "someone-else.example").await;
    let before = s
        .store
        .list_certificates(&est_ca::CertFilter::default())
        .await
        .unwrap()
        .len();
    let by_ref = Shroud::PublicKey(ShroudWithPublicKey::CertIdentifier(
        SignerIdentifier::IssuerAndSerialNumber(est_cms::issuer_and_serial(&cert)),
    ));
    let send = |pki: est_cmc::PkiData| {
        let der = signed_by(&pki, &key, &cert);
        let s = &s;
        async move { post(s, SKG, false, &der).await }
    };
    let fresh = || RequestOptions::random().unwrap();

    // SKGD-10: archiveKey TRUE (its default) and no archive.
    let mut pki = skg_pki(&fresh(), "errors.example", p256_algorithm(), &by_ref);
    let mut req: ServerKeyGenRequest = est_cmc::serverkeygen::control_value(
        pki.control_sequence
            .iter()
            .find(|a| a.attr_type == oids.server_key_gen_request)
            .unwrap(),
    )
    .unwrap();
    req.archive_key = true;
    pki.control_sequence
        .retain(|a| a.attr_type != oids.server_key_gen_request);
    pki.control_sequence.push(
        TaggedAttribute::single(ID_SKG_REQUEST, oids.server_key_gen_request.clone(), &req).unwrap(),
    );
    let (st, der) = send(pki).await;
    assert_eq!(
        skg_failure(&s, st, &der),
        (
            CmcFailInfo::BAD_REQUEST,
            Some(SkgErrorCode::ARCHIVE_NOT_SUPPORTED)
        )
    );

    // SKGD-12: a certificate that is not the requester's.
    let not_mine = Shroud::PublicKey(ShroudWithPublicKey::Certificate(other.clone()));
    let (st, der) = send(skg_pki(
        &fresh(),
        "errors.example",
        p256_algorithm(),
        &not_mine,
    ))
    .await;
    assert_eq!(
        skg_failure(&s, st, &der),
        (
            CmcFailInfo::BAD_REQUEST,
            Some(SkgErrorCode::BAD_CERTIFICATE)
        )
    );
    // SKGD-12: a certificate that chains to no trust anchor of ours.
    let stranger = self_signed("stranger.example");
    let foreign = Shroud::PublicKey(ShroudWithPublicKey::Certificate(stranger));
    let (st, der) = send(skg_pki(
        &fresh(),
        "errors.example",
        p256_algorithm(),
        &foreign,
    ))
    .await;
    assert_eq!(
        skg_failure(&s, st, &der),
        (
            CmcFailInfo::BAD_REQUEST,
            Some(SkgErrorCode::BAD_CERTIFICATE)
        )
    );

    // SKGD-4: a curve we do not generate (P-521).
    let (st, der) = send(skg_pki(
        &fresh(),
        "errors.example",
        curve_algorithm("1.3.132.0.35"),
        &by_ref,
    ))
    .await;
    assert_eq!(skg_failure(&s, st, &der), (CmcFailInfo::BAD_ALG, None));

    // SKGD-44: an RSA-2048 certificate (112 bits) does not protect a P-384 key (192 bits).
    let (st, der) = send(skg_pki(
        &fresh(),
        "errors.example",
        curve_algorithm("1.3.132.0.34"),
        &by_ref,
    ))
    .await;
    assert_eq!(skg_failure(&s, st, &der), (CmcFailInfo::BAD_ALG, None));

    // SKGD-7: an unknown shroudMethod.
    let mut pki = skg_pki(&fresh(), "errors.example", p256_algorithm(), &by_ref);
    let attr = pki
        .control_sequence
        .iter_mut()
        .find(|a| a.attr_type == oids.server_key_gen_request)
        .unwrap();
    let mut req: ServerKeyGenRequest = est_cmc::serverkeygen::control_value(attr).unwrap();
    req.shroud_method.algorithm = format!("{}.9.9", SkgOids::ESTUARY_ARC).parse().unwrap();
    *attr =
        TaggedAttribute::single(ID_SKG_REQUEST, oids.server_key_gen_request.clone(), &req).unwrap();
    let (st, der) = send(pki).await;
    assert_eq!(skg_failure(&s, st, &der), (CmcFailInfo::BAD_ALG, None));

    // SKGD-16: signed with errors.example's certificate, asking for another name.
    let (st, der) = send(skg_pki(
        &fresh(),
        "elsewhere.example",
        p256_algorithm(),
        &by_ref,
    ))
    .await;
    assert_eq!(skg_failure(&s, st, &der), (CmcFailInfo::BAD_IDENTITY, None));

    // SKGD-1: the control with a certification request beside it fails the whole PKIData.
    let mut pki = skg_pki(&fresh(), "errors.example", p256_algorithm(), &by_ref);
    // A fresh key: were the request issued before the PKIData is refused, the count below
    // would show it.
    let extra_key = est_client::generate_key(KeyKind::P256).unwrap();
    let extra = build_pki_data(
        &fresh(),
        &CertRequestBody::Pkcs10(
            est_client::build_csr(
                &extra_key,
                "CN=errors.example",
                &[San::Dns("errors.example".into())],
                None,
            )
            .unwrap(),
        ),
        &extra_key,
    )
    .unwrap();
    pki.req_sequence = extra.req_sequence;
    let (st, der) = send(pki).await;
    assert_eq!(st, 400);
    let v = verify_response(&der, &trust(&s)).unwrap();
    assert!(
        v.summary.statuses.iter().any(
            |x| x.status == CmcStatus::FAILED && fail_info(x) == Some(CmcFailInfo::BAD_REQUEST)
        ),
        "{:?}",
        v.summary.statuses
    );

    // A label without the extension: the control is unsupported (CMC-9).
    let pki = skg_pki(&fresh(), "errors.example", p256_algorithm(), &by_ref);
    let (st, der) = post(&s, "", false, &signed_by(&pki, &key, &cert)).await;
    assert_eq!(st, 400);
    let v = verify_response(&der, &trust(&s)).unwrap();
    let x = statuses_with(&v.summary, ID_SKG_REQUEST);
    assert_eq!(x.len(), 1);
    assert_eq!(fail_info(x[0]), Some(CmcFailInfo::BAD_REQUEST));
    assert!(
        x[0].status_string
            .as_deref()
            .unwrap_or("")
            .contains("CMC-9"),
        "{x:?}"
    );

    // SKGD-27: a label that holds requests for approval refuses instead.
    let pki = skg_pki(&fresh(), "errors.example", p256_algorithm(), &by_ref);
    let (st, der) = post(&s, "cmc-skg-manual", false, &signed_by(&pki, &key, &cert)).await;
    assert_eq!(skg_failure(&s, st, &der), (CmcFailInfo::BAD_REQUEST, None));

    let after = s
        .store
        .list_certificates(&est_ca::CertFilter::default())
        .await
        .unwrap()
        .len();
    assert_eq!(before, after, "no refusal issued a certificate");
    s.shutdown().await;
}
