//! Revocation and CRLs (RFC 5280 §5) on the real SQLite store, checked with the openssl CLI as
//! an independent decoder and verifier.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use der::Decode;
use est_ca::*;
use openssl::pkey::{PKey, Private};
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;

/// A clock the test moves.
#[derive(Debug)]
struct TestClock(Mutex<SystemTime>);
impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}
impl TestClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    store_url: String,
    authority: Authority,
    clock: Arc<TestClock>,
}

async fn fixture(issuing_key: KeyType, crl_url: Option<&str>) -> Fixture {
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
    pem(dir.path(), "root.pem", &root.cert_der);
    pem(dir.path(), "issuing.pem", &issuer.cert_der);
    let store_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = Arc::new(est_store::SqlStore::connect(&store_url).await.unwrap());
    let clock = Arc::new(TestClock(Mutex::new(now)));
    let profile = Profile {
        crl_validity: Duration::from_secs(2 * 86400),
        crl_distribution_point: crl_url.map(str::to_owned),
        ..Profile::default()
    };
    let authority = Authority::new(
        vec![CaDomain {
            name: "default".into(),
            issuer,
            profile,
        }],
        store,
        clock.clone(),
    )
    .unwrap();
    Fixture {
        dir,
        store_url,
        authority,
        clock,
    }
}

fn pem(dir: &Path, name: &str, der: &[u8]) {
    let pem = openssl::x509::X509::from_der(der)
        .unwrap()
        .to_pem()
        .unwrap();
    std::fs::write(dir.join(name), pem).unwrap();
}

fn csr(key: &PKey<Private>, cn: &str) -> Vec<u8> {
    let mut b = openssl::x509::X509ReqBuilder::new().unwrap();
    let mut n = openssl::x509::X509NameBuilder::new().unwrap();
    n.append_entry_by_text("CN", cn).unwrap();
    b.set_subject_name(&n.build()).unwrap();
    b.set_pubkey(key).unwrap();
    b.sign(key, openssl::hash::MessageDigest::sha256()).unwrap();
    b.build().to_der().unwrap()
}

async fn issue(f: &Fixture, cn: &str) -> IssuedCert {
    let key = est_keys::generate_key(KeyType::P256).unwrap();
    let der = csr(&key, cn);
    let id = Identity::User {
        name: "u".into(),
        names: NamePolicy::new(vec!["*".into()]),
    };
    f.authority
        .enroll(EnrollRequest {
            domain: "default",
            csr_der: &der,
            identity: &id,
            renewal: None,
            origin: Default::default(),
        })
        .await
        .unwrap()
}

/// Runs openssl in the fixture directory; (success, stdout + stderr).
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl CLI");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn crl_number(der: &[u8]) -> u64 {
    let crl = CertificateList::<x509_cert::certificate::Rfc5280>::from_der(der).unwrap();
    let ext = crl
        .tbs_cert_list
        .crl_extensions
        .unwrap()
        .into_iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_CRL_NUMBER)
        .unwrap();
    let n = x509_cert::ext::pkix::CrlNumber::from_der(ext.extn_value.as_bytes()).unwrap();
    n.0.as_bytes()
        .iter()
        .fold(0u64, |a, b| a << 8 | u64::from(*b))
}

fn revoked_serials(der: &[u8]) -> std::collections::BTreeSet<String> {
    let crl = CertificateList::<x509_cert::certificate::Rfc5280>::from_der(der).unwrap();
    crl.tbs_cert_list
        .revoked_certificates
        .unwrap_or_default()
        .iter()
        .map(|e| hex::encode(e.serial_number.as_bytes()))
        .collect()
}

/// A v2 CRL that openssl decodes and verifies against the issuing CA, listing the revoked
/// serial with its reason and invalidity date, and (for both a P-256 and an RSA issuing key)
/// signed through the key backend.
#[tokio::test(flavor = "multi_thread")]
async fn crl_lists_revocations_and_verifies_with_openssl() {
    for key_type in [KeyType::P256, KeyType::Rsa2048] {
        let f = fixture(key_type, None).await;
        let dir = f.dir.path();
        // Nothing revoked yet: a valid CRL without entries.
        let empty = f.authority.crl("default").await.unwrap();
        std::fs::write(dir.join("empty.der"), &*empty).unwrap();
        let (ok, text) = openssl(
            dir,
            &[
                "crl",
                "-inform",
                "DER",
                "-in",
                "empty.der",
                "-text",
                "-noout",
            ],
        );
        assert!(ok, "{text}");
        assert!(text.contains("No Revoked Certificates"), "{text}");
        assert!(text.contains("Version 2"), "{text}");

        let a = issue(&f, "a.example").await;
        let b = issue(&f, "b.example").await;
        let c = issue(&f, "c.example").await;
        let compromised = f.clock.now() - Duration::from_secs(3600);
        let out = f
            .authority
            .revoke(
                &a.record.serial.to_uppercase(),
                CrlReason::KeyCompromise,
                Some(compromised),
                "test",
                "test",
            )
            .await
            .unwrap();
        assert!(
            matches!(&out, RevokeOutcome::Revoked(r) if r.serial == a.record.serial && r.status == CertStatus::Revoked)
        );
        let out = f
            .authority
            .revoke(
                &b.record.serial,
                CrlReason::Unspecified,
                None,
                "test",
                "test",
            )
            .await
            .unwrap();
        assert!(matches!(out, RevokeOutcome::Revoked(_)));

        let crl = f.authority.crl("default").await.unwrap();
        std::fs::write(dir.join("crl.der"), &*crl).unwrap();
        let (ok, text) = openssl(
            dir,
            &["crl", "-inform", "DER", "-in", "crl.der", "-text", "-noout"],
        );
        assert!(ok, "{text}");
        let upper = |s: &str| s.to_uppercase();
        assert!(text.contains(&upper(&a.record.serial)), "{text}");
        assert!(text.contains(&upper(&b.record.serial)), "{text}");
        assert!(!text.contains(&upper(&c.record.serial)), "{text}");
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(text.contains("Invalidity Date"), "{text}");
        // Unspecified: the reasonCode extension is absent (RFC 5280 §5.3.1); one reason only.
        assert_eq!(text.matches("CRL Reason Code").count(), 1, "{text}");
        assert!(text.contains("X509v3 CRL Number"), "{text}");
        assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
        assert!(
            text.contains("Issuer: O = Estuary, CN = Test Issuing"),
            "{text}"
        );
        assert!(text.contains("Next Update"), "{text}");
        let (ok, text) = openssl(
            dir,
            &[
                "crl",
                "-inform",
                "DER",
                "-in",
                "crl.der",
                "-CAfile",
                "issuing.pem",
                "-noout",
            ],
        );
        assert!(ok && text.contains("verify OK"), "{key_type:?}: {text}");

        // And it does what a CRL is for: the revoked certificate fails a CRL-checking path
        // validation, the other one passes.
        let (ok, text) = openssl(
            dir,
            &["crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem"],
        );
        assert!(ok, "{text}");
        pem(dir, "a.pem", &a.der);
        pem(dir, "c.pem", &c.der);
        let verify = |leaf: &str| {
            openssl(
                dir,
                &[
                    "verify",
                    "-crl_check",
                    "-CAfile",
                    "root.pem",
                    "-untrusted",
                    "issuing.pem",
                    "-CRLfile",
                    "crl.pem",
                    leaf,
                ],
            )
        };
        let (ok, text) = verify("a.pem");
        assert!(!ok && text.contains("certificate revoked"), "{text}");
        let (ok, text) = verify("c.pem");
        assert!(ok && text.contains("c.pem: OK"), "{text}");
    }
}

/// RevokeOutcome for each case, and the requests the authority refuses.
#[tokio::test(flavor = "multi_thread")]
async fn revoke_outcomes_and_refusals() {
    let f = fixture(KeyType::P256, None).await;
    let a = issue(&f, "a.example").await;
    let first = f
        .authority
        .revoke(
            &a.record.serial,
            CrlReason::Superseded,
            None,
            "test",
            "test",
        )
        .await
        .unwrap();
    let RevokeOutcome::Revoked(rec) = first else {
        panic!("{first:?}")
    };
    let rev = rec.revocation.unwrap();
    assert_eq!(rev.reason, CrlReason::Superseded.code());
    assert_eq!(rev.invalidity_date, None);
    // Twice: already revoked, the first details kept.
    let again = f
        .authority
        .revoke(
            &a.record.serial,
            CrlReason::KeyCompromise,
            None,
            "test",
            "test",
        )
        .await
        .unwrap();
    let RevokeOutcome::AlreadyRevoked(rec) = again else {
        panic!("{again:?}")
    };
    assert_eq!(rec.revocation, Some(rev));
    // Colons and a leading zero octet are the same serial; an unknown one is Unknown.
    let b = issue(&f, "b.example").await;
    let colons = format!(
        "00:{}",
        b.record
            .serial
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":")
    );
    assert!(matches!(
        f.authority
            .revoke(
                &colons,
                CrlReason::CessationOfOperation,
                None,
                "test",
                "test"
            )
            .await
            .unwrap(),
        RevokeOutcome::Revoked(_)
    ));
    assert_eq!(
        f.authority
            .revoke("0badc0de", CrlReason::KeyCompromise, None, "test", "test")
            .await
            .unwrap(),
        RevokeOutcome::Unknown
    );
    let c = issue(&f, "c.example").await;
    for (serial, reason, invalidity) in [
        ("not hex", CrlReason::KeyCompromise, None),
        (c.record.serial.as_str(), CrlReason::RemoveFromCrl, None),
        (
            c.record.serial.as_str(),
            CrlReason::KeyCompromise,
            Some(f.clock.now() + Duration::from_secs(3600)),
        ),
    ] {
        let r = f
            .authority
            .revoke(serial, reason, invalidity, "test", "test")
            .await;
        assert!(matches!(r, Err(CaError::Revocation(_))), "{r:?}");
    }
    let still = f
        .authority
        .store()
        .certificate_by_serial(&c.record.serial)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.status, CertStatus::Valid);
    assert!(matches!(
        f.authority.crl("nonesuch").await,
        Err(CaError::Internal(_))
    ));
}

/// The CRL is cached (same bytes, same number) until a revocation, through this authority (at
/// once) or through another store instance on the same database (after the state check
/// interval), or until half of its validity has passed.
#[tokio::test(flavor = "multi_thread")]
async fn crl_cache_follows_revocations_and_age() {
    let f = fixture(KeyType::P256, None).await;
    let a = issue(&f, "a.example").await;
    let b = issue(&f, "b.example").await;
    let first = f.authority.crl("default").await.unwrap();
    let n1 = crl_number(&first);
    let again = f.authority.crl("default").await.unwrap();
    assert!(Arc::ptr_eq(&first, &again), "cached");

    // A revocation here shows on the very next request, with a higher CRL number.
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
    let second = f.authority.crl("default").await.unwrap();
    let n2 = crl_number(&second);
    assert!(n2 > n1);
    assert!(Arc::ptr_eq(
        &second,
        &f.authority.crl("default").await.unwrap()
    ));

    // A revocation by another process sharing the database (estuary cert revoke): seen once the
    // state check interval has passed.
    let other = est_store::SqlStore::connect(&f.store_url).await.unwrap();
    assert!(
        other
            .revoke_certificate(&b.record.serial, 1, 1_700_000_000, None)
            .await
            .unwrap()
    );
    other.close().await;
    tokio::time::sleep(CRL_STATE_CHECK_INTERVAL + Duration::from_millis(100)).await;
    let third = f.authority.crl("default").await.unwrap();
    let n3 = crl_number(&third);
    assert!(n3 > n2, "the other process's revocation was not noticed");
    assert_eq!(
        revoked_serials(&third),
        [a.record.serial.clone(), b.record.serial.clone()]
            .into_iter()
            .collect()
    );

    // Unchanged state: no new CRL even after the check interval.
    tokio::time::sleep(CRL_STATE_CHECK_INTERVAL + Duration::from_millis(100)).await;
    assert!(Arc::ptr_eq(
        &third,
        &f.authority.crl("default").await.unwrap()
    ));

    // Past half of the 2-day validity: a fresh CRL, thisUpdate moved on.
    f.clock.advance(Duration::from_secs(86400 + 60));
    let fourth = f.authority.crl("default").await.unwrap();
    assert!(crl_number(&fourth) > n3);
    let crl = CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&fourth).unwrap();
    let this_update = crl.tbs_cert_list.this_update.to_system_time();
    let next_update = crl.tbs_cert_list.next_update.unwrap().to_system_time();
    assert_eq!(
        next_update.duration_since(this_update).unwrap(),
        Duration::from_secs(2 * 86400)
    );
    assert!(f.clock.now().duration_since(this_update).unwrap() < Duration::from_secs(1));
}

/// With a distribution point URL in the profile, issued certificates carry it (RFC 5280
/// §4.2.1.13); without one they carry no such extension.
#[tokio::test(flavor = "multi_thread")]
async fn issued_certificates_carry_the_crl_distribution_point() {
    let url = "https://ca.example:8443/crl/default.crl";
    let f = fixture(KeyType::P256, Some(url)).await;
    let cert = issue(&f, "a.example").await;
    let text = String::from_utf8(
        openssl::x509::X509::from_der(&cert.der)
            .unwrap()
            .to_text()
            .unwrap(),
    )
    .unwrap();
    assert!(text.contains("X509v3 CRL Distribution Points"), "{text}");
    assert!(text.contains(&format!("URI:{url}")), "{text}");

    let plain = fixture(KeyType::P256, None).await;
    let cert = issue(&plain, "a.example").await;
    let text = String::from_utf8(
        openssl::x509::X509::from_der(&cert.der)
            .unwrap()
            .to_text()
            .unwrap(),
    )
    .unwrap();
    assert!(!text.contains("CRL Distribution Points"), "{text}");
}

/// Issue 11: the observer hears of each issuance, each revocation that changed something, and
/// each store commit with its outcome.
#[tokio::test]
async fn observer_counts_issuances_revocations_and_commits() {
    #[derive(Debug, Default)]
    struct Seen(Mutex<Vec<String>>);
    impl Observer for Seen {
        fn certificate_issued(&self, ca: &str) {
            self.0.lock().unwrap().push(format!("issued {ca}"));
        }
        fn certificate_revoked(&self, ca: &str) {
            self.0.lock().unwrap().push(format!("revoked {ca}"));
        }
        fn store_commit(&self, what: StoreCommit, _elapsed: Duration, ok: bool) {
            self.0
                .lock()
                .unwrap()
                .push(format!("commit {} {ok}", what.as_str()));
        }
    }
    let seen = Arc::new(Seen::default());
    let mut f = fixture(KeyType::P256, None).await;
    f.authority = f.authority.with_observer(seen.clone());
    let a = issue(&f, "observed.example").await;
    for _ in 0..2 {
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
    }
    assert_eq!(
        *seen.0.lock().unwrap(),
        [
            "commit certificate true",
            "issued default",
            "commit revocation true",
            "revoked default",
            // The second revocation commits nothing new: no count.
            "commit revocation true",
        ]
    );
}
