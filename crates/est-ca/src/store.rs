//! The store seam: every issued certificate is recorded here before it is returned.
use async_trait::async_trait;

use crate::{AuditEvent, AuditRecord};

/// Lifecycle state of an issued certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Valid,
    Revoked,
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Revoked => "revoked",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "valid" => Some(Self::Valid),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// One issued certificate, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRecord {
    /// Serial number, lowercase hex of the DER INTEGER content (no leading sign byte).
    pub serial: String,
    /// The CA domain that issued it (its configured name).
    pub ca: String,
    /// RFC 4514 string of the subject.
    pub subject: String,
    /// RFC 4514 string of the issuer.
    pub issuer: String,
    /// Lowercase hex of the SubjectKeyIdentifier extension (empty if none).
    pub ski: String,
    /// Lowercase hex SHA-256 of the SubjectPublicKeyInfo DER.
    pub spki_sha256: String,
    /// Who asked for it: `user:<name>`, `cert:<serial>` ...
    pub requester: String,
    /// The EST label it was requested on (`""`: the label-less path, or not recorded:
    /// certificates issued at setup and before schema v8).
    pub label: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    pub status: CertStatus,
    /// How and when it was revoked: `Some` once [`Store::revoke_certificate`] revoked it (and
    /// for certificates revoked before revocation details were recorded, with the time the
    /// store learned of it and reason `unspecified`).
    pub revocation: Option<Revocation>,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

/// The revocation details of a certificate, as they go into its CRL entry (RFC 5280 §5.1.2.6,
/// §5.3.1, §5.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// revocationDate, unix seconds (never 0: the store uses 0 for "not revoked").
    pub revoked_at: i64,
    /// The CRLReason code (RFC 5280 §5.3.1; see [`crate::CrlReason`]).
    pub reason: i32,
    /// invalidityDate, unix seconds: when the key is known or suspected to have been
    /// compromised, or the certificate otherwise became invalid.
    pub invalidity_date: Option<i64>,
}

/// One revoked certificate of a CA, as [`Store::revoked_certificates`] lists them for its CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial number, in the [`CertRecord::serial`] form.
    pub serial: String,
    pub revoked_at: i64,
    pub reason: i32,
    pub invalidity_date: Option<i64>,
}

/// An HTTP user (Basic, Digest). The password is stored only as a PHC-format argon2id hash, and
/// the Digest HA1 values only sealed (AES-256-GCM under the server secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    /// PHC string (`$argon2id$...`).
    pub password_hash: String,
    /// Name patterns this user may request (see [`crate::NamePolicy`]); empty means none.
    pub allowed_names: Vec<String>,
    pub created_at: i64,
    /// HTTP Digest HA1 values, sealed ([`crate::DigestSecrets::seal`]); empty when the user
    /// has none (created before Digest support, or without a server secret).
    pub digest_secrets: Vec<u8>,
}

/// A one-time enrollment token (SEC-1, SEC-9: random, single use). Presented as HTTP Basic
/// credentials, the id as user name; only the SHA-256 of the secret is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    /// The EST label the token is valid on ("" is the label-less path).
    pub label: String,
    /// Lowercase hex SHA-256 of the secret (a high-entropy random value, so a fast hash is
    /// enough).
    pub secret_sha256: String,
    /// RFC 4514 subject the certificate must have; empty: any.
    pub subject: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// When it was used; `None` while unused.
    pub used_at: Option<i64>,
    /// Who used it (the requester string of the enrollment).
    pub used_by: String,
}

/// The `used_by` of a token an operator revoked (not a requester string: those have a kind
/// prefix such as `user:`).
pub const TOKEN_REVOKED_BY: &str = "revoked by an operator";

/// A certification request held for manual approval (EST-49, EST-92).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecord {
    pub id: String,
    /// Hex SHA-256 of (requester, label, SHA-256 of the SPKI, subject DER): how a retry is
    /// recognised (EST-92).
    pub match_key: String,
    pub label: String,
    pub requester: String,
    /// RFC 4514 subject, for the operator.
    pub subject: String,
    pub spki_sha256: String,
    /// The CSR as first received (DER), for the operator to inspect.
    pub csr: Vec<u8>,
    /// `pending`, `approved`, `rejected`, `issuing` (a retry is being served) or `issued`.
    pub status: String,
    pub created_at: i64,
    /// When approved or rejected; 0 before.
    pub decided_at: i64,
    /// Serial of the issued certificate; empty before.
    pub serial: String,
    /// Where the request came from (the peer `ip:port`), for the operator; `""` when unknown
    /// (requests held before schema v8).
    pub client_addr: String,
    /// The operator's reason for the decision (a rejection's is told to the client); `""`
    /// when none was given.
    pub reason: String,
}

/// An administrator of the web console (issue 11 item 1): a password, stored only as an
/// argon2id PHC hash, and a TOTP secret (RFC 6238), stored only sealed by the authority's
/// [`crate::SecretBox`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRecord {
    pub name: String,
    /// PHC string (`$argon2id$...`).
    pub password_hash: String,
    /// The TOTP secret, sealed ([`crate::SecretBox::seal`] with context `admin-totp:<name>`).
    pub totp_sealed: Vec<u8>,
    /// The last TOTP time step a login used (0: none): a code is accepted once.
    pub totp_last_step: i64,
    pub created_at: i64,
}

/// What a registered client key is (RFC 7030 §4.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKeyKind {
    /// A symmetric key-encryption key named by a DecryptKeyIdentifier (kekri).
    Kek,
    /// A recipient certificate named by its SubjectKeyIdentifier (ktri/kari), for
    /// AsymmetricDecryptKeyIdentifier.
    Recipient,
}

impl ClientKeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kek => "kek",
            Self::Recipient => "recipient",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "kek" => Some(Self::Kek),
            "recipient" => Some(Self::Recipient),
            _ => None,
        }
    }
}

/// A key a client registered for encrypted delivery of server-generated keys. `sealed` is the
/// key (or certificate DER) encrypted at rest by the authority's [`crate::SecretBox`]; the store
/// never sees it in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKeyRecord {
    /// Whose key this is: `user:<name>` or `subject:<RFC 4514 subject>`.
    pub owner: String,
    pub kind: ClientKeyKind,
    /// The identifier the client puts in its request (raw bytes).
    pub key_id: Vec<u8>,
    pub sealed: Vec<u8>,
    pub created_at: i64,
}

/// A CMC shared secret (RFC 5272 §6.2, §6.3, §3.2), found by the Identification control value
/// that names it (CMC-46). It keys the IdentityProofV2 witness (CMC-44), the POP link witness
/// (CMC-48) and the pwri MAC key of an AuthenticatedData request (CMC-18). `sealed` is the secret
/// encrypted at rest by the authority's [`crate::SecretBox`]; the store never sees it in the
/// clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmcSecretRecord {
    /// The Identification (id-cmc-identification, UTF8String) value that names the secret.
    pub ident: String,
    /// The label the secret may be used on; `""`: any label.
    pub label: String,
    /// RFC 4514 subject the secret is linked to (shared-secret/DN linking, CMC-49); `""`: none.
    pub subject: String,
    pub sealed: Vec<u8>,
    pub created_at: i64,
}

/// Filter for listing certificates; newest first.
#[derive(Debug, Clone, Default)]
pub struct CertFilter {
    pub ca: Option<String>,
    pub requester: Option<String>,
    pub subject: Option<String>,
    /// Only certificates requested on this EST label.
    pub label: Option<String>,
    /// Only certificates with `not_after` >= this (unix seconds).
    pub valid_at: Option<i64>,
    /// Only certificates with `not_after` < this (unix seconds): with `valid_at`, those
    /// expiring in a window.
    pub expires_before: Option<i64>,
    pub status: Option<CertStatus>,
    pub limit: u32,
    pub offset: u32,
}

/// Certificates that match `filter` (newest first) and also `keep`, a condition no index
/// answers (a SubjectAltName, a part of a subject): pages through the filter's matches,
/// skipping `skip` kept ones and returning at most `want` (0: all), looking at no more than
/// `max_scan` of them (0: no bound). Also says whether every match was looked at.
pub async fn scan_certificates(
    store: &dyn Store,
    filter: &CertFilter,
    keep: impl Fn(&CertRecord) -> bool,
    mut skip: usize,
    want: usize,
    max_scan: u32,
) -> Result<(Vec<CertRecord>, bool), StoreError> {
    let mut f = filter.clone();
    f.limit = 500;
    f.offset = 0;
    let mut out = Vec::new();
    loop {
        let page = store.list_certificates(&f).await?;
        let full = page.len() == f.limit as usize;
        for r in page.into_iter().filter(|r| keep(r)) {
            if skip > 0 {
                skip -= 1;
            } else if want == 0 || out.len() < want {
                out.push(r);
            }
        }
        f.offset = f.offset.saturating_add(f.limit);
        if !full || (want != 0 && out.len() >= want) {
            return Ok((out, true));
        }
        if max_scan != 0 && f.offset >= max_scan {
            return Ok((out, false));
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A certificate with this serial already exists (uniqueness constraint).
    #[error("duplicate serial number")]
    DuplicateSerial,
    /// A record with this key exists.
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("store backend: {0}")]
    Backend(String),
    /// The database cannot be reached right now (no connection within the acquire timeout, a
    /// broken connection): the request may be retried later, and the server answers 503 with
    /// `Retry-After` (issue 12: a prompt refusal during an outage).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The CMC replay record claimed with a certificate was recorded before: the certificate
    /// was not recorded (CMC-53, [`Store::insert_certificate_claiming`]).
    #[error("replayed CMC transactionId and senderNonce")]
    Replayed,
}

impl StoreError {
    /// Whether this is an outage ([`StoreError::Unavailable`]) rather than a refusal.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A CMC replay record (CMC-53) to claim in the same durable commit as a certificate: the
/// request's transactionId (decimal, `""` without one), senderNonce and the time it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReplayPair {
    pub transaction_id: String,
    pub sender_nonce: Vec<u8>,
    pub seen_at: i64,
}

/// Persistent state of the authority. Every method is a point lookup or an indexed range scan,
/// so costs stay O(log n) in the number of stored certificates.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Records an issued certificate durably (committed and synced) before returning.
    /// Implementations may group concurrent inserts into one transaction.
    async fn insert_certificate(&self, record: &CertRecord) -> Result<(), StoreError>;
    async fn certificate_by_serial(&self, serial: &str) -> Result<Option<CertRecord>, StoreError>;
    /// Certificates with this SubjectKeyIdentifier (hex).
    async fn certificates_by_ski(&self, ski: &str) -> Result<Vec<CertRecord>, StoreError>;
    async fn list_certificates(&self, filter: &CertFilter) -> Result<Vec<CertRecord>, StoreError>;
    async fn count_certificates(&self) -> Result<u64, StoreError>;
    /// Sets the status; whether a certificate with this serial exists. Prefer
    /// [`Store::revoke_certificate`], which records why and when: revoking through this method
    /// records reason `unspecified` at the current time (and leaves an already revoked
    /// certificate's details alone); setting `Valid` clears the revocation details.
    async fn set_certificate_status(
        &self,
        serial: &str,
        status: CertStatus,
    ) -> Result<bool, StoreError>;

    /// Revokes a valid certificate, recording the CRLReason code `reason`, the revocation time
    /// `revoked_at` (unix seconds, positive) and the optional invalidity date (RFC 5280 §5.3).
    /// One conditional UPDATE from valid to revoked, so of concurrent callers (on any node sharing
    /// the store) exactly one gets `true`; `false` if the serial is unknown or already revoked
    /// (the first revocation's details stay).
    async fn revoke_certificate(
        &self,
        _serial: &str,
        _reason: i32,
        _revoked_at: i64,
        _invalidity_date: Option<i64>,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Backend(
            "this store does not support revocation".into(),
        ))
    }
    /// The revoked certificates of CA domain `ca`, oldest revocation first (ties by serial),
    /// read from an index of revoked certificates only: the cost grows with the CRL, not with
    /// the store. A store without revocation fails rather than let an empty CRL claim that
    /// nothing is revoked.
    async fn revoked_certificates(&self, _ca: &str) -> Result<Vec<RevokedEntry>, StoreError> {
        Err(StoreError::Backend(
            "this store does not support revocation".into(),
        ))
    }
    /// (number of revoked certificates of `ca`, latest `revoked_at` among them, 0 if none): a
    /// cheap fingerprint of [`Store::revoked_certificates`] that changes with every revocation,
    /// so a cached CRL can tell it is stale (also when another process, such as
    /// `estuary cert revoke`, revoked through the same database).
    async fn revocation_state(&self, _ca: &str) -> Result<(u64, i64), StoreError> {
        Err(StoreError::Backend(
            "this store does not support revocation".into(),
        ))
    }
    /// The next CRL number of `ca` (RFC 5280 §5.2.3: monotonically increasing), starting at 1:
    /// one atomic increment in the database, so nodes sharing it never issue the same number
    /// twice.
    async fn next_crl_number(&self, _ca: &str) -> Result<u64, StoreError> {
        Err(StoreError::Backend(
            "this store does not support CRL numbers".into(),
        ))
    }

    /// Creates a user; `Conflict` if the name exists.
    async fn add_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    async fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Returns whether a user was removed.
    async fn remove_user(&self, name: &str) -> Result<bool, StoreError>;

    /// Registers a client key; `Conflict` if (owner, kind, key_id) exists.
    async fn add_client_key(&self, key: &ClientKeyRecord) -> Result<(), StoreError>;
    async fn get_client_key(
        &self,
        owner: &str,
        kind: ClientKeyKind,
        key_id: &[u8],
    ) -> Result<Option<ClientKeyRecord>, StoreError>;
    /// Every registered key, or those of one owner; ordered by owner, kind, id.
    async fn list_client_keys(
        &self,
        owner: Option<&str>,
    ) -> Result<Vec<ClientKeyRecord>, StoreError>;
    /// Returns whether a key was removed.
    async fn remove_client_key(
        &self,
        owner: &str,
        kind: ClientKeyKind,
        key_id: &[u8],
    ) -> Result<bool, StoreError>;
    /// Records a new enrollment token; `Conflict` if the id exists.
    async fn add_token(&self, _token: &TokenRecord) -> Result<(), StoreError> {
        Err(StoreError::Backend(
            "this store does not support enrollment tokens".into(),
        ))
    }
    async fn get_token(&self, _id: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(None)
    }
    /// Every token, newest first (for operators: only the secrets' hashes are stored).
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        Ok(Vec::new())
    }
    /// Makes an unused token unusable: marked used at `now` by [`TOKEN_REVOKED_BY`], in one
    /// conditional UPDATE. `false` if there is no such token or it was already used.
    async fn revoke_token(&self, _id: &str, _now: i64) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// Marks the token used at `now` by `used_by` if it is unused and unexpired, atomically
    /// (one conditional UPDATE): of concurrent callers exactly one gets `true`.
    async fn consume_token(
        &self,
        _id: &str,
        _now: i64,
        _used_by: &str,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Holds a request for approval; `Conflict` if one with the same match key exists.
    async fn add_pending(&self, _req: &PendingRecord) -> Result<(), StoreError> {
        Err(StoreError::Backend(
            "this store does not support manual approval".into(),
        ))
    }
    async fn pending_by_match_key(&self, _key: &str) -> Result<Option<PendingRecord>, StoreError> {
        Ok(None)
    }
    async fn pending_by_id(&self, _id: &str) -> Result<Option<PendingRecord>, StoreError> {
        Ok(None)
    }
    /// Oldest first; `status` filters when given.
    async fn list_pending(&self, _status: Option<&str>) -> Result<Vec<PendingRecord>, StoreError> {
        Ok(Vec::new())
    }
    /// Moves a request from status `from` to `to` (setting `decided_at` when `now` is given and
    /// `serial` when given), only if it is in `from`: one conditional UPDATE, so concurrent
    /// callers cannot both win.
    async fn transition_pending(
        &self,
        _id: &str,
        _from: &str,
        _to: &str,
        _now: Option<i64>,
        _serial: Option<&str>,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// The operator's decision on a pending request: `to` is `approved` or `rejected`, with
    /// the time and a reason (`""`: none). Conditional on the request still being pending:
    /// `Ok(false)` when it is not (or does not exist).
    async fn decide_pending(
        &self,
        id: &str,
        to: &str,
        decided_at: i64,
        _reason: &str,
    ) -> Result<bool, StoreError> {
        self.transition_pending(id, "pending", to, Some(decided_at), None)
            .await
    }

    /// Stores a CMC shared secret; `Conflict` if one with this ident exists.
    async fn add_cmc_secret(&self, _secret: &CmcSecretRecord) -> Result<(), StoreError> {
        Err(StoreError::Backend(
            "this store does not support CMC shared secrets".into(),
        ))
    }
    async fn get_cmc_secret(&self, _ident: &str) -> Result<Option<CmcSecretRecord>, StoreError> {
        Ok(None)
    }
    /// Every CMC shared secret, ordered by ident (byte order).
    async fn list_cmc_secrets(&self) -> Result<Vec<CmcSecretRecord>, StoreError> {
        Ok(Vec::new())
    }
    /// Returns whether a secret was removed.
    async fn remove_cmc_secret(&self, _ident: &str) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Records a console administrator; `Conflict` if the name exists.
    async fn add_admin(&self, _admin: &AdminRecord) -> Result<(), StoreError> {
        Err(StoreError::Backend(
            "this store does not keep console administrators".into(),
        ))
    }
    async fn get_admin(&self, _name: &str) -> Result<Option<AdminRecord>, StoreError> {
        Ok(None)
    }
    /// Sorted by name.
    async fn list_admins(&self) -> Result<Vec<AdminRecord>, StoreError> {
        Ok(Vec::new())
    }
    /// Returns whether an administrator was removed.
    async fn remove_admin(&self, _name: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// Raises the administrator's last used TOTP step to `step` if it is below: `Ok(true)`
    /// when this call did (the code is used now), `Ok(false)` when the step (or a later one)
    /// was used before: a replayed code. Atomic across nodes.
    async fn claim_totp_step(&self, _name: &str, _step: i64) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Certificates issued at or after `since` (unix seconds): the dashboard's issuance rate.
    async fn count_issued_since(&self, since: i64) -> Result<u64, StoreError> {
        let rows = self
            .list_certificates(&CertFilter {
                limit: 0,
                ..CertFilter::default()
            })
            .await?;
        Ok(rows.iter().filter(|r| r.issued_at >= since).count() as u64)
    }
    /// Valid certificates whose `not_after` is in `[from, before)`: "expiring soon".
    async fn count_expiring(&self, from: i64, before: i64) -> Result<u64, StoreError> {
        let rows = self
            .list_certificates(&CertFilter {
                status: Some(CertStatus::Valid),
                valid_at: Some(from),
                expires_before: Some(before),
                limit: 0,
                ..CertFilter::default()
            })
            .await?;
        Ok(rows.len() as u64)
    }

    /// CMC replay protection (CMC-53): records that a request with this transactionId (decimal
    /// string of the INTEGER, `""` when the request has none) and senderNonce was seen at
    /// `seen_at`. `Ok(true)` if the pair was new and is now recorded, `Ok(false)` if it was
    /// already recorded: decided by the database's unique constraint in one statement, so of
    /// concurrent callers (on one node or several sharing the store) exactly one gets `true`.
    /// A store without it fails rather than letting replays through.
    async fn record_cmc_nonce(
        &self,
        _transaction_id: &str,
        _sender_nonce: &[u8],
        _seen_at: i64,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Backend(
            "this store does not support CMC replay protection".into(),
        ))
    }
    /// Records `record` only if `pair` is new, and the pair with it (CMC-53): one durable
    /// commit where a store can, so that a /fullcmc request waits for one commit, not two.
    /// [`StoreError::Replayed`] (and nothing recorded for the certificate) when the pair was
    /// seen before. [`StoreError::DuplicateSerial`] means the pair is now recorded but the
    /// certificate is not: draw a new serial and insert it without the pair. This default
    /// records the pair first, then the certificate: not atomic, so should the certificate's
    /// insert fail after the pair's, a retry of the request looks like a replay (the SQL
    /// store overrides it with one transaction).
    async fn insert_certificate_claiming(
        &self,
        record: &CertRecord,
        pair: &ReplayPair,
    ) -> Result<(), StoreError> {
        if !self
            .record_cmc_nonce(&pair.transaction_id, &pair.sender_nonce, pair.seen_at)
            .await?
        {
            return Err(StoreError::Replayed);
        }
        self.insert_certificate(record).await
    }
    /// Forgets the nonces seen before `before` (unix seconds); returns how many.
    async fn prune_cmc_nonces(&self, _before: i64) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Records `record` (claiming `pair` first when given, as
    /// [`Store::insert_certificate_claiming`] does) and appends `event` to the audit trail, so
    /// that no issued certificate lacks its audit record. The SQL store does both in one
    /// durable commit of its group-commit writer; this default does them one after the other
    /// (not atomic: a failure between them leaves the certificate unaudited).
    async fn insert_certificate_audited(
        &self,
        record: &CertRecord,
        pair: Option<&ReplayPair>,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        match pair {
            Some(pair) => self.insert_certificate_claiming(record, pair).await?,
            None => self.insert_certificate(record).await?,
        }
        self.append_audit(event).await.map(drop)
    }

    /// Appends `event` to the hash-chained audit trail, durably, and returns its record: the
    /// next sequence number, chained from the current head under the store's serialization
    /// (one chain also across processes and nodes sharing the database). A store without an
    /// audit trail fails rather than drop the record.
    async fn append_audit(&self, _event: &AuditEvent) -> Result<AuditRecord, StoreError> {
        Err(StoreError::Backend(
            "this store does not support an audit trail".into(),
        ))
    }

    /// Revokes as [`Store::revoke_certificate`] does and, when that changed the certificate,
    /// appends `event` in the same commit where the store can. This default is not atomic.
    async fn revoke_certificate_audited(
        &self,
        serial: &str,
        reason: i32,
        revoked_at: i64,
        invalidity_date: Option<i64>,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let changed = self
            .revoke_certificate(serial, reason, revoked_at, invalidity_date)
            .await?;
        if changed {
            self.append_audit(event).await?;
        }
        Ok(changed)
    }

    /// Audit records with `seq > after_seq`, oldest first, at most `limit` (0: no limit).
    async fn list_audit(
        &self,
        _after_seq: u64,
        _limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(Vec::new())
    }

    /// The newest audit record, `None` while the trail is empty.
    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError> {
        Ok(None)
    }
}
