//! The issuance pipeline, protocol-neutral: no HTTP, an in-memory store, a fixed clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use der::{Decode, Encode};
use est_ca::*;
use openssl::pkey::{PKey, Private};
use x509_cert::Certificate;
use x509_cert::name::Name;

#[derive(Debug, Default)]
struct MemStore {
    certs: Mutex<Vec<CertRecord>>,
    users: Mutex<Vec<UserRecord>>,
    client_keys: Mutex<Vec<ClientKeyRecord>>,
    nonces: Mutex<std::collections::HashSet<(String, Vec<u8>)>>,
    fail: Mutex<bool>,
    audit: Mutex<Vec<AuditRecord>>,
}

#[async_trait]
impl Store for MemStore {
    async fn insert_certificate(&self, r: &CertRecord) -> Result<(), StoreError> {
        if *self.fail.lock().unwrap() {
            return Err(StoreError::Backend("disk on fire".into()));
        }
        let mut c = self.certs.lock().unwrap();
        if c.iter().any(|x| x.serial == r.serial) {
            return Err(StoreError::DuplicateSerial);
        }
        c.push(r.clone());
        Ok(())
    }
    async fn certificate_by_serial(&self, s: &str) -> Result<Option<CertRecord>, StoreError> {
        Ok(self
            .certs
            .lock()
            .unwrap()
            .iter()
            .find(|x| x.serial == s)
            .cloned())
    }
    async fn certificates_by_ski(&self, ski: &str) -> Result<Vec<CertRecord>, StoreError> {
        Ok(self
            .certs
            .lock()
            .unwrap()
            .iter()
            .filter(|x| x.ski == ski)
            .cloned()
            .collect())
    }
    async fn list_certificates(&self, f: &CertFilter) -> Result<Vec<CertRecord>, StoreError> {
        Ok(self
            .certs
            .lock()
            .unwrap()
            .iter()
            .rev()
            .filter(|r| f.requester.as_ref().is_none_or(|q| &r.requester == q))
            .filter(|r| f.subject.as_ref().is_none_or(|q| &r.subject == q))
            .filter(|r| f.status.is_none_or(|q| r.status == q))
            .filter(|r| f.valid_at.is_none_or(|t| r.not_after >= t))
            .take(f.limit as usize)
            .cloned()
            .collect())
    }
    async fn count_certificates(&self) -> Result<u64, StoreError> {
        Ok(self.certs.lock().unwrap().len() as u64)
    }
    async fn set_certificate_status(&self, s: &str, st: CertStatus) -> Result<bool, StoreError> {
        let mut c = self.certs.lock().unwrap();
        Ok(c.iter_mut()
            .find(|x| x.serial == s)
            .map(|x| x.status = st)
            .is_some())
    }
    async fn add_user(&self, u: &UserRecord) -> Result<(), StoreError> {
        self.users.lock().unwrap().push(u.clone());
        Ok(())
    }
    async fn get_user(&self, n: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .users
            .lock()
            .unwrap()
            .iter()
            .find(|u| u.name == n)
            .cloned())
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        Ok(self.users.lock().unwrap().clone())
    }
    async fn remove_user(&self, n: &str) -> Result<bool, StoreError> {
        let mut u = self.users.lock().unwrap();
        let before = u.len();
        u.retain(|x| x.name != n);
        Ok(u.len() != before)
    }
    async fn add_client_key(&self, k: &ClientKeyRecord) -> Result<(), StoreError> {
        self.client_keys.lock().unwrap().push(k.clone());
        Ok(())
    }
    async fn get_client_key(
        &self,
        owner: &str,
        kind: ClientKeyKind,
        id: &[u8],
    ) -> Result<Option<ClientKeyRecord>, StoreError> {
        Ok(self
            .client_keys
            .lock()
            .unwrap()
            .iter()
            .find(|k| k.owner == owner && k.kind == kind && k.key_id == id)
            .cloned())
    }
    async fn list_client_keys(&self, o: Option<&str>) -> Result<Vec<ClientKeyRecord>, StoreError> {
        Ok(self
            .client_keys
            .lock()
            .unwrap()
            .iter()
            .filter(|k| o.is_none_or(|o| k.owner == o))
            .cloned()
            .collect())
    }
    async fn remove_client_key(
        &self,
        owner: &str,
        kind: ClientKeyKind,
        id: &[u8],
    ) -> Result<bool, StoreError> {
        let mut v = self.client_keys.lock().unwrap();
        let before = v.len();
        v.retain(|k| !(k.owner == owner && k.kind == kind && k.key_id == id));
        Ok(v.len() != before)
    }
    // insert_certificate_claiming: the trait's default (pair first, then the certificate).
    // insert_certificate_audited: the trait's default (the certificate, then its record).
    async fn append_audit(&self, e: &AuditEvent) -> Result<AuditRecord, StoreError> {
        let mut log = self.audit.lock().unwrap();
        let record = AuditRecord::chain(log.last().map(|r| (r.seq, r.hash.as_str())), e.clone());
        log.push(record.clone());
        Ok(record)
    }
    async fn record_cmc_nonce(&self, t: &str, n: &[u8], _at: i64) -> Result<bool, StoreError> {
        Ok(self.nonces.lock().unwrap().insert((t.into(), n.to_vec())))
    }
}

#[derive(Debug)]
struct FixedClock(SystemTime);
impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<MemStore>,
    authority: Authority,
    issuer: Issuer,
}

fn fixture(profile: Profile, now: SystemTime) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let keys =
        est_keys::FileKeyBackend::new(dir.path(), zeroize::Zeroizing::new(b"pw".to_vec())).unwrap();
    let root = setup::self_signed_root(
        keys.generate(&KeyId("r".into()), KeyType::P256).unwrap(),
        Name::from_str("CN=R").unwrap(),
        Duration::from_secs(86400 * 3650),
        now,
    )
    .unwrap();
    let issuer = setup::subordinate_ca(
        &root,
        keys.generate(&KeyId("i".into()), KeyType::P384).unwrap(),
        Name::from_str("CN=I").unwrap(),
        Duration::from_secs(86400 * 1000),
        now,
    )
    .unwrap();
    let store = Arc::new(MemStore::default());
    let authority = Authority::new(
        vec![CaDomain {
            name: "d".into(),
            issuer: issuer.clone(),
            profile,
        }],
        store.clone(),
        Arc::new(FixedClock(now)),
    )
    .unwrap();
    Fixture {
        _dir: dir,
        store,
        authority,
        issuer,
    }
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

fn user(names: &[&str]) -> Identity {
    Identity::User {
        name: "u".into(),
        names: NamePolicy::new(names.iter().map(|s| s.to_string()).collect()),
    }
}

#[tokio::test]
async fn issues_records_and_applies_profile() {
    let now = SystemTime::now();
    let f = fixture(Profile::default(), now);
    let rsa = est_keys::generate_key(KeyType::Rsa2048).unwrap();
    let ec = est_keys::generate_key(KeyType::P256).unwrap();
    for (k, is_rsa) in [(&rsa, true), (&ec, false)] {
        let der = csr(k, "a.example");
        let id = user(&["*.example"]);
        let out = f
            .authority
            .enroll(EnrollRequest {
                domain: "d",
                csr_der: &der,
                identity: &id,
                renewal: None,
                origin: Default::default(),
            })
            .await
            .unwrap();
        let x = openssl::x509::X509::from_der(&out.der).unwrap();
        assert!(
            x.verify(
                &openssl::pkey::PKey::public_key_from_der(
                    &der::Encode::to_der(f.issuer.key.public_key_info()).unwrap()
                )
                .unwrap()
            )
            .unwrap()
        );
        // RFC 5280 extensions as the profile says, adapted to the key type.
        let text = String::from_utf8(x.to_text().unwrap()).unwrap();
        assert!(text.contains("CA:FALSE") && text.contains("TLS Web Client Authentication"));
        assert!(
            text.contains("Subject Key Identifier") && text.contains("Authority Key Identifier")
        );
        assert_eq!(text.contains("Key Encipherment"), is_rsa, "{text}");
        assert_eq!(text.contains("Key Agreement"), !is_rsa, "{text}");
        // Validity: now - 5 min backdate .. now + 365 d.
        let c = Certificate::from_der(&out.der).unwrap();
        let nb = c.tbs_certificate().validity().not_before.to_system_time();
        let na = c.tbs_certificate().validity().not_after.to_system_time();
        assert!(nb <= now && now.duration_since(nb).unwrap() <= Duration::from_secs(301));
        let secs = na.duration_since(now).map(|d| d.as_secs()).unwrap_or(0);
        assert!((365 * 86400 - 1..=365 * 86400).contains(&secs), "{secs}");
        assert_eq!(
            f.store
                .certificate_by_serial(&out.record.serial)
                .await
                .unwrap()
                .unwrap()
                .der,
            out.der
        );
    }
    // Wrong names, weak keys, bad signatures.
    let id = user(&["*.example"]);
    let der = csr(&ec, "evil.test");
    assert!(matches!(
        f.authority
            .enroll(EnrollRequest {
                domain: "d",
                csr_der: &der,
                identity: &id,
                renewal: None,
                origin: Default::default(),
            })
            .await,
        Err(CaError::NameNotAllowed(_))
    ));
    let mut bad = csr(&ec, "a.example");
    let n = bad.len() - 2;
    bad[n] ^= 1;
    assert!(matches!(
        f.authority
            .enroll(EnrollRequest {
                domain: "d",
                csr_der: &bad,
                identity: &id,
                renewal: None,
                origin: Default::default(),
            })
            .await,
        Err(CaError::BadCsrSignature)
    ));
    let small = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
    let der = csr(&small, "a.example");
    assert!(matches!(
        f.authority
            .enroll(EnrollRequest {
                domain: "d",
                csr_der: &der,
                identity: &id,
                renewal: None,
                origin: Default::default(),
            })
            .await,
        Err(CaError::KeyNotAllowed(_))
    ));
    assert!(matches!(
        f.authority
            .enroll(EnrollRequest {
                domain: "d",
                csr_der: b"\x30\x03\x02\x01\x00",
                identity: &id,
                renewal: None,
                origin: Default::default(),
            })
            .await,
        Err(CaError::MalformedRequest(_))
    ));
}

/// Issue 11 item 4: an issuance is audited with who, from where, on which label, and the
/// serial; a refusal by the name policy is audited as `enroll.refused` with its reason; a
/// malformed request is not (nothing was decided about anyone); the chain verifies.
#[tokio::test]
async fn issuance_and_refusals_are_audited() {
    let f = fixture(Profile::default(), SystemTime::now());
    let ec = est_keys::generate_key(KeyType::P256).unwrap();
    let id = user(&["*.example"]);
    let origin = Origin {
        source: "192.0.2.7:40000",
        label: "devices",
    };
    let der = csr(&ec, "a.example");
    let out = f
        .authority
        .enroll(EnrollRequest {
            domain: "d",
            csr_der: &der,
            identity: &id,
            renewal: None,
            origin,
        })
        .await
        .unwrap();
    let der = csr(&ec, "evil.test");
    assert!(
        f.authority
            .enroll(EnrollRequest {
                domain: "d",
                csr_der: &der,
                identity: &id,
                renewal: None,
                origin,
            })
            .await
            .is_err()
    );
    assert!(
        f.authority
            .enroll(EnrollRequest {
                domain: "d",
                csr_der: b"\x30\x03\x02\x01\x00",
                identity: &id,
                renewal: None,
                origin,
            })
            .await
            .is_err()
    );
    let log = f.store.audit.lock().unwrap().clone();
    assert_eq!(log.len(), 2, "{log:#?}");
    let issued = &log[0].event;
    assert_eq!(issued.action, audit_action::CERT_ISSUE);
    assert_eq!(issued.target, out.record.serial);
    assert_eq!(issued.actor, "user:u");
    assert_eq!(issued.source, "192.0.2.7:40000");
    assert_eq!(issued.label, "devices");
    assert!(
        issued.details.contains("subject=CN=a.example"),
        "{issued:?}"
    );
    let refused = &log[1].event;
    assert_eq!(refused.action, audit_action::ENROLL_REFUSED);
    assert_eq!(refused.target, "CN=evil.test");
    assert!(refused.details.contains("evil.test"), "{refused:?}");
    assert_eq!(verify_chain(&log).unwrap().0, 2);
}

/// CMC-53: a certification whose request carries a replay claim records the pair with the
/// certificate; the same pair again issues nothing (`Replayed`); a request refused before
/// issuance leaves its claim unclaimed (the caller records the pair itself); a claimed claim
/// is not claimed twice (a second certificate of the same request goes without it).
#[tokio::test]
async fn replay_claims_ride_with_the_certificate() {
    let f = fixture(Profile::default(), SystemTime::now());
    let k = est_keys::generate_key(KeyType::P256).unwrap();
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(&k.public_key_to_der().unwrap()).unwrap();
    let subject = Name::from_str("CN=dev").unwrap();
    let alice = user(&["dev"]);
    macro_rules! certify {
        ($claim:expr, $identity:expr) => {
            f.authority.certify(CertifyRequest {
                domain: "d",
                identity: $identity,
                renewal: None,
                subject: &subject,
                san: None,
                spki: &spki,
                replay: $claim,
                origin: Default::default(),
            })
        };
    }
    let claim = ReplayClaim::new("42", b"nonce").unwrap();
    certify!(Some(&claim), &alice).await.unwrap();
    assert!(claim.is_claimed());
    assert_eq!(f.store.count_certificates().await.unwrap(), 1);
    // Claimed once: the request's second certificate does not claim again.
    certify!(Some(&claim), &alice).await.unwrap();
    assert_eq!(f.store.count_certificates().await.unwrap(), 2);

    let replay = ReplayClaim::new("42", b"nonce").unwrap();
    let r = certify!(Some(&replay), &alice).await;
    assert!(matches!(r, Err(CaError::Replayed)), "got {r:?}");
    assert!(!replay.is_claimed());
    assert_eq!(f.store.count_certificates().await.unwrap(), 2);

    // Refused by the name policy: nothing reached the store, the claim is still open.
    let refused = ReplayClaim::new("43", b"nonce").unwrap();
    let r = certify!(Some(&refused), &user(&["other"])).await;
    assert!(matches!(r, Err(CaError::NameNotAllowed(_))), "got {r:?}");
    assert!(!refused.is_claimed());
    assert!(f.authority.check_cmc_replay("43", b"nonce").await.unwrap());

    // Malformed pairs are refused up front.
    assert!(ReplayClaim::new("4x", b"n").is_err());
    assert!(ReplayClaim::new("1", &[0u8; 4096]).is_err());
}

#[tokio::test]
async fn nothing_is_returned_unless_recorded() {
    let f = fixture(Profile::default(), SystemTime::now());
    *f.store.fail.lock().unwrap() = true;
    let k = est_keys::generate_key(KeyType::P256).unwrap();
    let der = csr(&k, "x");
    let r = f
        .authority
        .enroll(EnrollRequest {
            domain: "d",
            csr_der: &der,
            identity: &user(&["*"]),
            renewal: None,
            origin: Default::default(),
        })
        .await;
    assert!(matches!(r, Err(CaError::Store(_))));
    assert_eq!(f.store.count_certificates().await.unwrap(), 0);
}

#[tokio::test]
async fn validity_is_capped_by_the_issuer_and_key_reuse_policy_holds() {
    let profile = Profile {
        validity: Duration::from_secs(86400 * 5000),
        allow_key_reuse: false,
        ..Profile::default()
    };
    let f = fixture(profile, SystemTime::now());
    let k = est_keys::generate_key(KeyType::P256).unwrap();
    let der = csr(&k, "reuse");
    let id = user(&["*"]);
    let out = f
        .authority
        .enroll(EnrollRequest {
            domain: "d",
            csr_der: &der,
            identity: &id,
            renewal: None,
            origin: Default::default(),
        })
        .await
        .unwrap();
    let c = Certificate::from_der(&out.der).unwrap();
    assert_eq!(
        c.tbs_certificate().validity().not_after,
        f.issuer.cert.tbs_certificate().validity().not_after
    );
    // Renewal with the same key is refused by this profile (EST-86).
    let r = f
        .authority
        .enroll(EnrollRequest {
            domain: "d",
            csr_der: &der,
            identity: &id,
            renewal: Some(RenewalTarget::ByIdentity),
            origin: Default::default(),
        })
        .await;
    assert!(matches!(r, Err(CaError::KeyReuse)), "{r:?}");
    let k2 = est_keys::generate_key(KeyType::P256).unwrap();
    let der2 = csr(&k2, "reuse");
    f.authority
        .enroll(EnrollRequest {
            domain: "d",
            csr_der: &der2,
            identity: &id,
            renewal: Some(RenewalTarget::ByIdentity),
            origin: Default::default(),
        })
        .await
        .unwrap();
    let _ = c.to_der();
}

#[tokio::test]
async fn passwords_authenticate_users() {
    let f = fixture(Profile::default(), SystemTime::now());
    f.store
        .add_user(&UserRecord {
            name: "alice".into(),
            password_hash: PasswordHasher::hash(b"correct horse").unwrap(),
            allowed_names: vec!["*.a".into()],
            created_at: 0,
            digest_secrets: Vec::new(),
        })
        .await
        .unwrap();
    assert!(
        f.authority
            .authenticate_user("alice", b"correct horse")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        f.authority
            .authenticate_user("alice", b"wrong")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.authority
            .authenticate_user("nobody", b"correct horse")
            .await
            .unwrap()
            .is_none()
    );
}
