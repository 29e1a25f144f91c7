//! CMC shared secrets (RFC 5272 §6.2, §6.3, §3.2) and replay protection (CMC-53).
//!
//! A shared secret reaches the authority out of band and is named by the value a client puts in
//! its Identification control (CMC-46). It keys the IdentityProofV2 witness (CMC-44, CMC-45),
//! POP linking (CMC-48, CMC-49) and the pwri MAC key of an AuthenticatedData request (CMC-18).
//! The store holds it only sealed with the authority's [`SecretBox`], the ident authenticated as
//! associated data: a sealed value copied onto another ident's row fails to open instead of
//! lending that ident its secret.
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::clock::unix_secs;
use crate::store::ReplayPair;
use crate::{Authority, CaError, CmcSecretRecord, SecretBox, Store};

/// CMC-45: shared-secret tokens of 16 characters must work; shorter ones are refused, since a
/// short secret keys an HMAC whose input an eavesdropper sees, and falls to an offline search.
pub const CMC_SECRET_MIN_LEN: usize = 16;

/// Longest shared secret accepted (bytes): far beyond any token a person types or a device
/// holds, and a bound on what an operator's mistaken file can put in the store.
const SECRET_MAX_LEN: usize = 1024;

/// Longest ident (bytes of the UTF-8 Identification value).
const IDENT_MAX_LEN: usize = 256;

/// How long a (transactionId, senderNonce) pair is remembered (CMC-53): a request repeating a
/// pair seen within this window is a replay.
pub const CMC_REPLAY_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long an Encrypted POP challenge stays answerable, at least (CMC-67; see
/// [`Authority::encrypted_pop_values`]).
pub const ENCRYPTED_POP_WINDOW: Duration = Duration::from_secs(3600);

/// How often [`Authority::check_cmc_replay`] forgets the pairs older than [`CMC_REPLAY_WINDOW`]:
/// at most once per interval per authority, so the store's nonce table stays about one window
/// large without a DELETE on every request.
pub const CMC_REPLAY_PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Longest senderNonce recorded (bytes). The nonce is part of the store's primary key, and an
/// index entry has a size limit (about 2.7 kB on PostgreSQL); real nonces are 16 to 64 bytes.
pub const CMC_NONCE_MAX_LEN: usize = 256;

/// Longest transactionId (decimal digits and sign): about 530 bits, well past any generator's.
const TRANSACTION_ID_MAX_LEN: usize = 160;

/// An opened CMC shared secret. Its `Debug` never shows the secret, and the secret's bytes are
/// zeroized on drop.
#[derive(Clone)]
pub struct CmcSecret {
    /// The Identification value that names it.
    pub ident: String,
    /// The label it may be used on; `""`: any label.
    pub label: String,
    /// RFC 4514 subject it is linked to (CMC-49); `""`: none.
    pub subject: String,
    pub secret: Zeroizing<Vec<u8>>,
}

impl CmcSecret {
    /// Whether the secret may be used on `label` (its own, or any when it has none).
    pub fn allowed_on(&self, label: &str) -> bool {
        self.label.is_empty() || self.label == label
    }
}

impl std::fmt::Debug for CmcSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CmcSecret")
            .field("ident", &self.ident)
            .field("label", &self.label)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The AEAD associated data of a sealed secret: a purpose label, then the ident.
fn seal_context(ident: &str) -> Vec<u8> {
    let mut c = Vec::with_capacity(11 + ident.len());
    c.extend_from_slice(b"cmc-secret\0");
    c.extend_from_slice(ident.as_bytes());
    c
}

/// The registry of CMC shared secrets: seals them with the server's [`SecretBox`] before they
/// reach the store, opens them on lookup. Used by the authority and by admin commands (which
/// have a store and a sealer but no authority).
#[derive(Debug, Clone, Copy)]
pub struct CmcSecrets<'a> {
    pub store: &'a dyn Store,
    pub sealer: &'a SecretBox,
}

impl CmcSecrets<'_> {
    /// Seals and stores `secret` under `ident`, valid on `label` (`""`: any) and linked to
    /// `subject` (RFC 4514, `""`: none; stored in the form the authority compares, which the
    /// returned record shows). Refuses secrets shorter than [`CMC_SECRET_MIN_LEN`] (CMC-45);
    /// an ident already stored is a [`crate::StoreError::Conflict`].
    pub async fn add(
        &self,
        ident: &str,
        secret: &[u8],
        label: &str,
        subject: &str,
        now: i64,
    ) -> Result<CmcSecretRecord, CaError> {
        if ident.is_empty() || ident.len() > IDENT_MAX_LEN {
            return Err(CaError::InvalidSecret(format!(
                "a CMC shared secret's ident must be 1 to {IDENT_MAX_LEN} bytes"
            )));
        }
        if secret.len() < CMC_SECRET_MIN_LEN || secret.len() > SECRET_MAX_LEN {
            return Err(CaError::InvalidSecret(format!(
                "a CMC shared secret must be {CMC_SECRET_MIN_LEN} to {SECRET_MAX_LEN} bytes (CMC-45), not {}",
                secret.len()
            )));
        }
        let subject = normalize_subject(subject)?;
        let record = CmcSecretRecord {
            ident: ident.to_owned(),
            label: label.to_owned(),
            subject,
            sealed: self.sealer.seal(&seal_context(ident), secret)?,
            created_at: now,
        };
        self.store.add_cmc_secret(&record).await?;
        Ok(record)
    }

    /// The opened secret named `ident`, if one is stored. A sealed value that does not open
    /// (another server secret, a row tampered with or moved) is an error, not `None`.
    pub async fn get(&self, ident: &str) -> Result<Option<CmcSecret>, CaError> {
        let Some(record) = self.store.get_cmc_secret(ident).await? else {
            return Ok(None);
        };
        let secret = self
            .sealer
            .open(&seal_context(&record.ident), &record.sealed)?;
        Ok(Some(CmcSecret {
            ident: record.ident,
            label: record.label,
            subject: record.subject,
            secret,
        }))
    }
}

/// `""` stays `""`; anything else must parse as an RFC 4514 name and is kept in the form
/// `Name`'s `Display` gives, the form a request's subject is compared in (CMC-49).
fn normalize_subject(subject: &str) -> Result<String, CaError> {
    if subject.is_empty() {
        return Ok(String::new());
    }
    let name = x509_cert::name::Name::from_str(subject).map_err(|e| {
        CaError::InvalidSecret(format!(
            "the linked subject {subject:?} is not an RFC 4514 name: {e}"
        ))
    })?;
    Ok(name.to_string())
}

/// `""` (no transactionId) or the decimal form of an INTEGER.
fn check_transaction_id(transaction_id: &str) -> Result<(), CaError> {
    let digits = transaction_id.strip_prefix('-').unwrap_or(transaction_id);
    let decimal = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if !transaction_id.is_empty() && !decimal {
        return Err(CaError::MalformedRequest(
            "the transactionId is not a decimal integer".into(),
        ));
    }
    if transaction_id.len() > TRANSACTION_ID_MAX_LEN {
        return Err(CaError::MalformedRequest(format!(
            "the transactionId is longer than {TRANSACTION_ID_MAX_LEN} digits"
        )));
    }
    Ok(())
}

/// When the authority last pruned the replay records (unix seconds), so that of its callers
/// only one per [`CMC_REPLAY_PRUNE_INTERVAL`] pays for the DELETE.
#[derive(Debug)]
pub(crate) struct ReplayPruning {
    last: AtomicI64,
}

impl Default for ReplayPruning {
    fn default() -> Self {
        // Far from any clock reading: the first check after start prunes.
        Self {
            last: AtomicI64::new(i64::MIN),
        }
    }
}

impl ReplayPruning {
    /// Whether the caller should prune now. A clock that moved back by an interval also counts
    /// as due, so a corrected clock cannot postpone pruning for as long as it was off.
    fn claim(&self, now: i64) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        now.abs_diff(last) >= CMC_REPLAY_PRUNE_INTERVAL.as_secs()
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

impl Authority {
    fn cmc_secrets(&self) -> Result<CmcSecrets<'_>, CaError> {
        let sealer = self.secret_box.as_deref().ok_or_else(|| {
            CaError::Internal("no server secret configured for CMC shared secrets".into())
        })?;
        Ok(CmcSecrets {
            store: self.store.as_ref(),
            sealer,
        })
    }

    /// Seals and stores a CMC shared secret (see [`CmcSecrets::add`]), created at the
    /// authority's clock. Refused without a secret box and for secrets shorter than
    /// [`CMC_SECRET_MIN_LEN`] (CMC-45).
    pub async fn add_cmc_secret(
        &self,
        ident: &str,
        secret: &[u8],
        label: &str,
        subject: &str,
    ) -> Result<CmcSecretRecord, CaError> {
        let now = unix_secs(self.clock.now());
        self.cmc_secrets()?
            .add(ident, secret, label, subject, now)
            .await
    }

    /// The shared secret named by an Identification value (CMC-46), opened: the key material
    /// of IdentityProofV2 (CMC-44), POP linking (CMC-48) and AuthenticatedData (CMC-18).
    /// `Ok(None)` when no secret has this ident.
    pub async fn cmc_secret(&self, ident: &str) -> Result<Option<CmcSecret>, CaError> {
        self.cmc_secrets()?.get(ident).await
    }

    /// CMC-67: the POP proof values for an Encrypted POP challenge to the certification
    /// request `request_der` (DER as the client sends it), newest first: the value of the
    /// current [`ENCRYPTED_POP_WINDOW`] and of the one before. A challenge carries the first;
    /// an answer is accepted against either, so a challenge stays good for one to two windows.
    /// Derived from the server secret (no state between the two rounds, the same on every
    /// node); the values are zeroized on drop.
    pub fn encrypted_pop_values(
        &self,
        request_der: &[u8],
    ) -> Result<[Zeroizing<Vec<u8>>; 2], CaError> {
        let sealer = self.secret_box.as_ref().ok_or_else(|| {
            CaError::Internal("Encrypted POP needs the server secret (no secret box)".into())
        })?;
        let window = u64::try_from(unix_secs(self.clock.now())).unwrap_or(0)
            / ENCRYPTED_POP_WINDOW.as_secs();
        let value = |w: u64| {
            let mut data = Vec::with_capacity(8 + request_der.len());
            data.extend_from_slice(&w.to_be_bytes());
            data.extend_from_slice(request_der);
            sealer.derive(b"estuary encrypted POP v1", &data)
        };
        Ok([value(window)?, value(window.saturating_sub(1))?])
    }

    /// CMC-53: records a request's (transactionId, senderNonce) at the authority's clock.
    /// `Ok(true)`: first seen, go on; `Ok(false)`: seen within [`CMC_REPLAY_WINDOW`], a replay
    /// to refuse with badRequest. `transaction_id` is the decimal INTEGER, `""` without one.
    /// The store decides atomically, across concurrent requests and nodes sharing it. Once per
    /// [`CMC_REPLAY_PRUNE_INTERVAL`] a call also forgets pairs older than the window.
    pub async fn check_cmc_replay(
        &self,
        transaction_id: &str,
        sender_nonce: &[u8],
    ) -> Result<bool, CaError> {
        check_pair(transaction_id, sender_nonce)?;
        let now = unix_secs(self.clock.now());
        let fresh = self
            .store
            .record_cmc_nonce(transaction_id, sender_nonce, now)
            .await?;
        self.prune_replay_records_if_due(now).await;
        Ok(fresh)
    }

    /// Once per [`CMC_REPLAY_PRUNE_INTERVAL`]: forgets the pairs older than the window.
    pub(crate) async fn prune_replay_records_if_due(&self, now: i64) {
        if self.cmc_replay.claim(now) {
            let window = i64::try_from(CMC_REPLAY_WINDOW.as_secs()).unwrap_or(i64::MAX);
            // Housekeeping: a failure here must not fail the request it rides on.
            match self
                .store
                .prune_cmc_nonces(now.saturating_sub(window))
                .await
            {
                Ok(pruned) => tracing::debug!(pruned, "CMC replay records pruned"),
                Err(e) => tracing::warn!(error = %e, "pruning CMC replay records failed"),
            }
        }
    }
}

/// The (transactionId, senderNonce) pair the authority can record.
fn check_pair(transaction_id: &str, sender_nonce: &[u8]) -> Result<(), CaError> {
    check_transaction_id(transaction_id)?;
    if sender_nonce.len() > CMC_NONCE_MAX_LEN {
        return Err(CaError::MalformedRequest(format!(
            "the senderNonce is longer than {CMC_NONCE_MAX_LEN} bytes"
        )));
    }
    Ok(())
}

/// A request's replay record (CMC-53), claimed in the same durable commit as the first
/// certificate the request gets ([`crate::CertifyRequest::replay`],
/// [`Store::insert_certificate_claiming`]): a /fullcmc request that only asks for
/// certificates then waits for one commit instead of two. Whoever holds the claim must do
/// nothing with side effects outside the certificate's commit before the claim is settled, and
/// if no certificate claimed it ([`ReplayClaim::is_claimed`]), record the pair itself with
/// [`Authority::check_cmc_replay`] before answering. A replay is still authorized and signed
/// before the store refuses it (the certificate is discarded): the price of the single
/// commit, paid only by replays.
#[derive(Debug)]
pub struct ReplayClaim {
    transaction_id: String,
    sender_nonce: Vec<u8>,
    claimed: AtomicBool,
}

impl ReplayClaim {
    /// `transaction_id`: the decimal INTEGER, `""` without one.
    pub fn new(transaction_id: &str, sender_nonce: &[u8]) -> Result<Self, CaError> {
        check_pair(transaction_id, sender_nonce)?;
        Ok(Self {
            transaction_id: transaction_id.to_owned(),
            sender_nonce: sender_nonce.to_vec(),
            claimed: AtomicBool::new(false),
        })
    }

    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }

    pub fn sender_nonce(&self) -> &[u8] {
        &self.sender_nonce
    }

    /// Whether a certificate's commit recorded the pair (it was new).
    pub fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }

    pub(crate) fn pair(&self, seen_at: i64) -> ReplayPair {
        ReplayPair {
            transaction_id: self.transaction_id.clone(),
            sender_nonce: self.sender_nonce.clone(),
            seen_at,
        }
    }

    pub(crate) fn mark_claimed(&self) {
        self.claimed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::time::SystemTime;

    use async_trait::async_trait;

    use super::*;
    use crate::{
        CertFilter, CertRecord, CertStatus, ClientKeyKind, ClientKeyRecord, Clock, StoreError,
        UserRecord,
    };

    /// Only the CMC part of a store; the rest is never called here.
    #[derive(Debug, Default)]
    struct CmcStore {
        secrets: Mutex<BTreeMap<String, CmcSecretRecord>>,
        nonces: Mutex<BTreeMap<(String, Vec<u8>), i64>>,
    }

    #[async_trait]
    impl Store for CmcStore {
        async fn add_cmc_secret(&self, s: &CmcSecretRecord) -> Result<(), StoreError> {
            let mut m = self.secrets.lock().unwrap();
            if m.contains_key(&s.ident) {
                return Err(StoreError::Conflict(s.ident.clone()));
            }
            m.insert(s.ident.clone(), s.clone());
            Ok(())
        }
        async fn get_cmc_secret(&self, i: &str) -> Result<Option<CmcSecretRecord>, StoreError> {
            Ok(self.secrets.lock().unwrap().get(i).cloned())
        }
        async fn record_cmc_nonce(&self, t: &str, n: &[u8], at: i64) -> Result<bool, StoreError> {
            let mut m = self.nonces.lock().unwrap();
            let key = (t.to_owned(), n.to_vec());
            if m.contains_key(&key) {
                return Ok(false);
            }
            m.insert(key, at);
            Ok(true)
        }
        async fn prune_cmc_nonces(&self, before: i64) -> Result<u64, StoreError> {
            let mut m = self.nonces.lock().unwrap();
            let n = m.len();
            m.retain(|_, at| *at >= before);
            Ok((n - m.len()) as u64)
        }

        async fn insert_certificate(&self, _: &CertRecord) -> Result<(), StoreError> {
            Err(unused())
        }
        async fn certificate_by_serial(&self, _: &str) -> Result<Option<CertRecord>, StoreError> {
            Err(unused())
        }
        async fn certificates_by_ski(&self, _: &str) -> Result<Vec<CertRecord>, StoreError> {
            Err(unused())
        }
        async fn list_certificates(&self, _: &CertFilter) -> Result<Vec<CertRecord>, StoreError> {
            Err(unused())
        }
        async fn count_certificates(&self) -> Result<u64, StoreError> {
            Err(unused())
        }
        async fn set_certificate_status(&self, _: &str, _: CertStatus) -> Result<bool, StoreError> {
            Err(unused())
        }
        async fn add_user(&self, _: &UserRecord) -> Result<(), StoreError> {
            Err(unused())
        }
        async fn get_user(&self, _: &str) -> Result<Option<UserRecord>, StoreError> {
            Err(unused())
        }
        async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
            Err(unused())
        }
        async fn remove_user(&self, _: &str) -> Result<bool, StoreError> {
            Err(unused())
        }
        async fn add_client_key(&self, _: &ClientKeyRecord) -> Result<(), StoreError> {
            Err(unused())
        }
        async fn get_client_key(
            &self,
            _: &str,
            _: ClientKeyKind,
            _: &[u8],
        ) -> Result<Option<ClientKeyRecord>, StoreError> {
            Err(unused())
        }
        async fn list_client_keys(
            &self,
            _: Option<&str>,
        ) -> Result<Vec<ClientKeyRecord>, StoreError> {
            Err(unused())
        }
        async fn remove_client_key(
            &self,
            _: &str,
            _: ClientKeyKind,
            _: &[u8],
        ) -> Result<bool, StoreError> {
            Err(unused())
        }
    }

    /// The store methods these tests never reach.
    fn unused() -> StoreError {
        StoreError::Backend("not used by these tests".into())
    }

    #[derive(Debug)]
    struct TestClock(Mutex<SystemTime>);

    impl Clock for TestClock {
        fn now(&self) -> SystemTime {
            *self.0.lock().unwrap()
        }
    }

    const SECRET: &[u8] = b"sixteen-byte-secret!";

    fn sealer() -> SecretBox {
        SecretBox::from_server_secret(b"0123456789abcdef0123").unwrap()
    }

    fn authority(with_box: bool) -> (Authority, Arc<CmcStore>, Arc<TestClock>) {
        let store = Arc::new(CmcStore::default());
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let clock = Arc::new(TestClock(Mutex::new(start)));
        let mut a = Authority::new(Vec::new(), store.clone(), clock.clone()).unwrap();
        if with_box {
            a = a.with_secret_box(sealer());
        }
        (a, store, clock)
    }

    #[tokio::test]
    async fn sealed_at_rest_bound_to_the_ident() {
        let store = CmcStore::default();
        let sealer = sealer();
        let reg = CmcSecrets {
            store: &store,
            sealer: &sealer,
        };
        let rec = reg.add("dev-1", SECRET, "cmc", "", 1_000).await.unwrap();
        assert!(!rec.sealed.windows(SECRET.len()).any(|w| w == SECRET));
        let opened = reg.get("dev-1").await.unwrap().unwrap();
        assert_eq!(&opened.secret[..], SECRET);
        assert_eq!(
            (opened.ident.as_str(), opened.label.as_str()),
            ("dev-1", "cmc")
        );
        assert!(reg.get("dev-2").await.unwrap().is_none());

        // dev-1's sealed value copied onto another ident's row does not open there.
        let moved = CmcSecretRecord {
            ident: "dev-2".into(),
            ..rec.clone()
        };
        store.add_cmc_secret(&moved).await.unwrap();
        let err = reg.get("dev-2").await.unwrap_err();
        assert!(matches!(err, CaError::Internal(_)), "{err:?}");
        // Nor under another server secret.
        let other = SecretBox::from_server_secret(b"another server secret").unwrap();
        let reg2 = CmcSecrets {
            store: &store,
            sealer: &other,
        };
        assert!(reg2.get("dev-1").await.is_err());
    }

    #[tokio::test]
    async fn debug_never_shows_the_secret() {
        let (a, _, _) = authority(true);
        a.add_cmc_secret("dev-1", SECRET, "", "").await.unwrap();
        let s = a.cmc_secret("dev-1").await.unwrap().unwrap();
        let shown = format!("{s:?} {s:#?}");
        assert!(shown.contains("dev-1"), "{shown}");
        assert!(!shown.contains("sixteen"), "{shown}");
        let bytes = format!("{:?}", SECRET.to_vec());
        assert!(!shown.contains(&bytes[1..20]), "{shown}");
    }

    #[tokio::test]
    async fn refuses_short_secrets_bad_idents_and_subjects() {
        let (a, store, _) = authority(true);
        // CMC-45: 16 bytes work, 15 do not.
        a.add_cmc_secret("ok", &SECRET[..16], "", "").await.unwrap();
        for (ident, secret, subject) in [
            ("short", &SECRET[..15], ""),
            ("", SECRET, ""),
            (&"x".repeat(257)[..], SECRET, ""),
            ("huge", &[7u8; 1025][..], ""),
            ("bad-dn", SECRET, "not a name"),
        ] {
            let err = a
                .add_cmc_secret(ident, secret, "", subject)
                .await
                .unwrap_err();
            assert!(matches!(err, CaError::InvalidSecret(_)), "{ident}: {err:?}");
        }
        assert_eq!(store.secrets.lock().unwrap().len(), 1);
        let err = a.add_cmc_secret("ok", SECRET, "", "").await.unwrap_err();
        assert!(
            matches!(err, CaError::Store(StoreError::Conflict(_))),
            "{err:?}"
        );
        // The linked subject is kept in the form requests are compared in.
        let rec = a
            .add_cmc_secret("linked", SECRET, "cmc", "CN=dev1.example,O=Acme")
            .await
            .unwrap();
        let canonical = x509_cert::name::Name::from_str("CN=dev1.example,O=Acme")
            .unwrap()
            .to_string();
        assert_eq!(rec.subject, canonical);
        let s = a.cmc_secret("linked").await.unwrap().unwrap();
        assert_eq!(s.subject, canonical);
        assert!(s.allowed_on("cmc") && !s.allowed_on("other"));
        assert!(a.cmc_secret("ok").await.unwrap().unwrap().allowed_on("any"));
    }

    #[tokio::test]
    async fn no_secret_box_no_secrets() {
        let (a, store, _) = authority(false);
        let err = a.add_cmc_secret("dev-1", SECRET, "", "").await.unwrap_err();
        assert!(matches!(err, CaError::Internal(_)), "{err:?}");
        assert!(store.secrets.lock().unwrap().is_empty());
        assert!(a.cmc_secret("dev-1").await.is_err());
    }

    #[tokio::test]
    async fn replays_refused_within_the_window_and_pruned_after() {
        let (a, store, clock) = authority(false);
        let t0 = unix_secs(clock.now());
        assert!(a.check_cmc_replay("42", b"nonce-1").await.unwrap());
        assert!(!a.check_cmc_replay("42", b"nonce-1").await.unwrap());
        assert!(a.check_cmc_replay("42", b"nonce-2").await.unwrap());
        assert!(a.check_cmc_replay("43", b"nonce-1").await.unwrap());
        assert!(a.check_cmc_replay("", b"nonce-1").await.unwrap());
        assert!(a.check_cmc_replay("-7", b"").await.unwrap());
        assert!(!a.check_cmc_replay("", b"nonce-1").await.unwrap());
        assert_eq!(store.nonces.lock().unwrap().len(), 5);
        assert!(store.nonces.lock().unwrap().values().all(|&at| at == t0));

        for (tx, nonce) in [
            ("0x2a", &b"n"[..]),
            ("4 2", b"n"),
            ("-", b"n"),
            (&"9".repeat(161)[..], b"n"),
            ("1", &[0u8; 257][..]),
        ] {
            let err = a.check_cmc_replay(tx, nonce).await.unwrap_err();
            assert!(matches!(err, CaError::MalformedRequest(_)), "{tx}: {err:?}");
        }
        assert!(
            a.check_cmc_replay(&"9".repeat(160), &[0u8; 256])
                .await
                .unwrap()
        );

        // Later, still within the window: still a replay, nothing pruned.
        let later = |secs: u64| *clock.0.lock().unwrap() += Duration::from_secs(secs);
        later(CMC_REPLAY_WINDOW.as_secs() - 10);
        assert!(!a.check_cmc_replay("42", b"nonce-1").await.unwrap());
        assert_eq!(store.nonces.lock().unwrap().len(), 6);
        // Past the window (and a prune interval later): forgotten.
        later(CMC_REPLAY_PRUNE_INTERVAL.as_secs());
        assert!(a.check_cmc_replay("44", b"nonce-3").await.unwrap());
        assert_eq!(store.nonces.lock().unwrap().len(), 1);
        assert!(a.check_cmc_replay("42", b"nonce-1").await.unwrap());
    }

    #[test]
    fn pruning_is_claimed_once_per_interval() {
        let p = ReplayPruning::default();
        let i = i64::try_from(CMC_REPLAY_PRUNE_INTERVAL.as_secs()).unwrap();
        assert!(p.claim(1_000_000));
        assert!(!p.claim(1_000_000));
        assert!(!p.claim(1_000_000 + i - 1));
        assert!(p.claim(1_000_000 + i));
        // A clock set back by an interval or more prunes too.
        assert!(p.claim(1_000_000 - i));
        assert!(!p.claim(1_000_000 - i + 1));
    }
}
