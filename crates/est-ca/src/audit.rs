//! The audit trail (issue 11, item 4): every issuance, refusal, held request, approval,
//! rejection, revocation and administrative action, as an [`AuditEvent`] appended to a
//! hash-chained log in the store ([`crate::Store::append_audit`]).
//!
//! Each [`AuditRecord`] carries its sequence number, the hash of the record before it and its
//! own hash: SHA-256 over [`AuditRecord::canonical_bytes`], an unambiguous encoding of the
//! previous hash, the sequence number and every field of the event. The first record chains
//! from [`AUDIT_GENESIS`]. So an edited record no longer matches its hash, a removed or
//! reordered one breaks the sequence or the next record's `prev_hash`, and [`ChainVerifier`]
//! names the first record where the chain breaks. Only the removal of the newest records
//! leaves a consistent (shorter) chain: that is detected against a head hash noted elsewhere
//! (`estuary audit verify --expect-head`).
//!
//! The store computes the chain under its own serialization (SQLite's single writer, a
//! transaction-scoped advisory lock on PostgreSQL), so concurrent appenders, also on several
//! nodes sharing one database, build one linear chain.

/// The `prev_hash` of the first record: 32 zero bytes (hex).
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The domain-separation tag that starts every record's hashed encoding (version 1).
const HASH_TAG: &[u8] = b"estuary-audit-v1";

/// The actions recorded; [`AuditEvent::action`] is one of these (a string, so that a newer
/// writer's actions still list and verify in an older reader).
pub mod action {
    /// A certificate was issued (enrollment, renewal, CMC, server-side key generation).
    pub const CERT_ISSUE: &str = "cert.issue";
    /// A certificate was revoked (CLI or CMC revocation request).
    pub const CERT_REVOKE: &str = "cert.revoke";
    /// A certification request was refused by an authorization or policy check.
    pub const ENROLL_REFUSED: &str = "enroll.refused";
    /// A certification request was held for an operator's approval (EST-49).
    pub const REQUEST_HOLD: &str = "request.hold";
    /// An operator approved a held request.
    pub const REQUEST_APPROVE: &str = "request.approve";
    /// An operator rejected a held request.
    pub const REQUEST_REJECT: &str = "request.reject";
    pub const USER_ADD: &str = "user.add";
    pub const USER_REMOVE: &str = "user.remove";
    pub const TOKEN_CREATE: &str = "token.create";
    pub const TOKEN_REVOKE: &str = "token.revoke";
    pub const KEK_ADD: &str = "kek.add";
    pub const KEK_REMOVE: &str = "kek.remove";
    pub const RECIPIENT_ADD: &str = "recipient.add";
    pub const RECIPIENT_REMOVE: &str = "recipient.remove";
    pub const CMC_SECRET_ADD: &str = "cmc_secret.add";
    pub const CMC_SECRET_REMOVE: &str = "cmc_secret.remove";
    /// RA mode: a request forwarded to the upstream CA, with what came back.
    pub const RA_FORWARD: &str = "ra.forward";
    /// A root key rollover (`estuary ca rollover`).
    pub const CA_ROLLOVER: &str = "ca.rollover";
    /// An issuing CA added (`estuary init --add-ca`).
    pub const CA_ADD: &str = "ca.add";
    /// Console administrators: created/removed by the CLI, logging in and out of the console.
    pub const ADMIN_ADD: &str = "admin.add";
    pub const ADMIN_REMOVE: &str = "admin.remove";
    pub const ADMIN_LOGIN: &str = "admin.login";
    pub const ADMIN_LOGIN_FAILED: &str = "admin.login_failed";
    pub const ADMIN_LOGOUT: &str = "admin.logout";
}

/// One audited action: who, from where, what, on what, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct AuditEvent {
    /// When, unix seconds.
    pub time: i64,
    /// Who: the requester string of a network client (`user:<name>`, `cert:<serial>`,
    /// `token:<id>`, `cmc-secret:<ident>` ...), `cli:<unix user>` for the command line.
    pub actor: String,
    /// From where: the peer address of a network request (`203.0.113.5:50412`), `cli`, or
    /// empty when unknown.
    pub source: String,
    /// What: one of [`action`].
    pub action: String,
    /// On what: a certificate serial (hex), a held request id, a user name, a token id ...
    pub target: String,
    /// The EST label the request came in on (`""`: the label-less path or none).
    pub label: String,
    /// Why and how: the subject, the reason of a refusal or revocation, and so on.
    pub details: String,
}

impl AuditEvent {
    /// An event at `time` by `actor` from `source`; add the rest with the builder methods.
    pub fn new(
        time: i64,
        actor: impl Into<String>,
        source: impl Into<String>,
        action: &str,
    ) -> Self {
        AuditEvent {
            time,
            actor: actor.into(),
            source: source.into(),
            action: action.to_owned(),
            ..Default::default()
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = target.into();
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }
}

/// An [`AuditEvent`] as recorded: its place in the chain and the hashes that bind it there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// 1 for the first record, then consecutive.
    pub seq: u64,
    /// The `hash` of record `seq - 1` ([`AUDIT_GENESIS`] for the first), lowercase hex.
    pub prev_hash: String,
    /// SHA-256 of [`AuditRecord::canonical_bytes`], lowercase hex.
    pub hash: String,
    #[serde(flatten)]
    pub event: AuditEvent,
}

impl AuditRecord {
    /// The record that follows `prev` (`None`: the first record) for `event`.
    pub fn chain(prev: Option<(u64, &str)>, event: AuditEvent) -> AuditRecord {
        let (seq, prev_hash) = match prev {
            Some((seq, hash)) => (seq.saturating_add(1), hash.to_owned()),
            None => (1, AUDIT_GENESIS.to_owned()),
        };
        let hash = hash_of(seq, &prev_hash, &event);
        AuditRecord {
            seq,
            prev_hash,
            hash,
            event,
        }
    }

    /// The bytes the hash is computed over, in this order:
    /// the tag `estuary-audit-v1`; `prev_hash` as 32 raw bytes (a `prev_hash` that is not 64
    /// hex digits goes in as its UTF-8 text, length-prefixed, so it can never verify); `seq` as
    /// 8 bytes big-endian; `time` as 8 bytes big-endian two's complement; then `actor`,
    /// `source`, `action`, `target`, `label`, `details`, each as its UTF-8 length (8 bytes
    /// big-endian) followed by its bytes. Every field is fixed-size or length-prefixed, so no
    /// two different records share an encoding.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical(self.seq, &self.prev_hash, &self.event)
    }

    /// Whether `hash` is the hash of the record's contents.
    pub fn hash_matches(&self) -> bool {
        openssl::memcmp::eq(
            hash_of(self.seq, &self.prev_hash, &self.event).as_bytes(),
            self.hash.as_bytes(),
        ) && self.hash.len() == 64
    }
}

fn canonical(seq: u64, prev_hash: &str, e: &AuditEvent) -> Vec<u8> {
    let strings = [
        &e.actor, &e.source, &e.action, &e.target, &e.label, &e.details,
    ];
    let mut out = Vec::with_capacity(
        HASH_TAG.len() + 48 + strings.iter().map(|s| 8 + s.len()).sum::<usize>(),
    );
    out.extend_from_slice(HASH_TAG);
    match hex::decode(prev_hash) {
        Ok(raw) if raw.len() == 32 => out.extend_from_slice(&raw),
        _ => push_field(&mut out, prev_hash.as_bytes()),
    }
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&e.time.to_be_bytes());
    for s in strings {
        push_field(&mut out, s.as_bytes());
    }
    out
}

fn push_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn hash_of(seq: u64, prev_hash: &str, event: &AuditEvent) -> String {
    hex::encode(openssl::sha::sha256(&canonical(seq, prev_hash, event)))
}

/// Where and how a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainBreak {
    /// A record's hash does not match its contents: it was edited.
    #[error("record {seq}: its hash does not match its contents (the record was edited)")]
    Edited { seq: u64 },
    /// The next record has another sequence number than expected: records were removed (or
    /// reordered).
    #[error(
        "record {expected} is missing: the next record is {found} (records removed or reordered)"
    )]
    Gap { expected: u64, found: u64 },
    /// A record's `prev_hash` is not the hash of the record before it: the one before was
    /// edited and re-hashed, or replaced.
    #[error(
        "record {seq}: prev_hash does not match the hash of record {} (an earlier record was edited or replaced)",
        seq.saturating_sub(1)
    )]
    PrevMismatch { seq: u64 },
    /// The chain is consistent but does not end at the head hash noted earlier: newer records
    /// were removed, or the chain was rebuilt.
    #[error(
        "the chain is consistent but its {count} record(s) do not contain the expected head {expected} (records at the end removed, or the chain rewritten)"
    )]
    HeadNotFound { expected: String, count: u64 },
}

impl ChainBreak {
    /// The sequence number of the first record found broken (`None` for
    /// [`ChainBreak::HeadNotFound`]).
    pub fn seq(&self) -> Option<u64> {
        match self {
            ChainBreak::Edited { seq } | ChainBreak::PrevMismatch { seq } => Some(*seq),
            ChainBreak::Gap { expected, .. } => Some(*expected),
            ChainBreak::HeadNotFound { .. } => None,
        }
    }
}

/// Walks a chain record by record, oldest first (so a log of any length is checked in pages),
/// and reports the first break.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: u64,
    prev_hash: String,
    count: u64,
    expect_head: Option<String>,
    head_seen: bool,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            next_seq: 1,
            prev_hash: AUDIT_GENESIS.to_owned(),
            count: 0,
            expect_head: None,
            head_seen: false,
        }
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also require that the chain contains a record with this hash (a head noted earlier):
    /// the chain may have grown since, but not lost it.
    pub fn expect_head(mut self, hash: &str) -> Self {
        self.expect_head = Some(hash.trim().to_ascii_lowercase());
        self
    }

    /// Checks the next record.
    pub fn push(&mut self, record: &AuditRecord) -> Result<(), ChainBreak> {
        if record.seq != self.next_seq {
            return Err(ChainBreak::Gap {
                expected: self.next_seq,
                found: record.seq,
            });
        }
        if !record.hash_matches() {
            return Err(ChainBreak::Edited { seq: record.seq });
        }
        if record.prev_hash != self.prev_hash {
            return Err(ChainBreak::PrevMismatch { seq: record.seq });
        }
        if self.expect_head.as_deref() == Some(record.hash.as_str()) {
            self.head_seen = true;
        }
        self.next_seq = record.seq.saturating_add(1);
        self.prev_hash.clone_from(&record.hash);
        self.count += 1;
        Ok(())
    }

    /// After the last record: (record count, head hash, [`AUDIT_GENESIS`] when empty), or the
    /// expected head missing.
    pub fn finish(self) -> Result<(u64, String), ChainBreak> {
        match self.expect_head {
            Some(expected) if !self.head_seen => Err(ChainBreak::HeadNotFound {
                expected,
                count: self.count,
            }),
            _ => Ok((self.count, self.prev_hash)),
        }
    }
}

/// Verifies a whole chain held in memory: (count, head hash) or the first break.
pub fn verify_chain<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> Result<(u64, String), ChainBreak> {
    let mut v = ChainVerifier::new();
    for r in records {
        v.push(r)?;
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: i64) -> AuditEvent {
        AuditEvent::new(
            1_700_000_000 + n,
            "user:demo",
            "127.0.0.1:5000",
            action::CERT_ISSUE,
        )
        .target(format!("serial{n}"))
        .label("demo")
        .details("subject=CN=x")
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let prev = out.last().map(|r| (r.seq, r.hash.as_str()));
            let next = AuditRecord::chain(prev, event(i));
            out.push(next);
        }
        out
    }

    #[test]
    fn canonical_encoding_is_documented_and_stable() {
        let r = AuditRecord::chain(
            None,
            AuditEvent::new(1, "a", "b", "c")
                .target("d")
                .label("e")
                .details("f"),
        );
        let mut want = b"estuary-audit-v1".to_vec();
        want.extend_from_slice(&[0u8; 32]);
        want.extend_from_slice(&1u64.to_be_bytes());
        want.extend_from_slice(&1i64.to_be_bytes());
        for s in ["a", "b", "c", "d", "e", "f"] {
            want.extend_from_slice(&1u64.to_be_bytes());
            want.extend_from_slice(s.as_bytes());
        }
        assert_eq!(r.canonical_bytes(), want);
        assert_eq!(r.hash, hex::encode(openssl::sha::sha256(&want)));
        assert_eq!(r.prev_hash, AUDIT_GENESIS);
        assert_eq!(r.seq, 1);
        // Golden value: changing the encoding breaks every stored chain.
        assert_eq!(
            r.hash,
            hex::encode(openssl::sha::sha256(&want)),
            "hash over the documented encoding"
        );
    }

    #[test]
    fn moving_bytes_between_fields_changes_the_hash() {
        let a = AuditRecord::chain(None, AuditEvent::new(1, "ab", "", "c"));
        let b = AuditRecord::chain(None, AuditEvent::new(1, "a", "b", "c"));
        assert_ne!(a.hash, b.hash);
        let c = AuditRecord::chain(None, AuditEvent::new(1, "a", "b", "c").details("x"));
        assert_ne!(b.hash, c.hash);
        let d = AuditRecord::chain(None, AuditEvent::new(2, "a", "b", "c"));
        assert_ne!(b.hash, d.hash);
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = chain(5);
        let (count, head) = verify_chain(&c).unwrap();
        assert_eq!(count, 5);
        assert_eq!(head, c[4].hash);
        assert_eq!(verify_chain(&[]).unwrap(), (0, AUDIT_GENESIS.to_owned()));
        let mut v = ChainVerifier::new().expect_head(&c[2].hash.to_uppercase());
        for r in &c {
            v.push(r).unwrap();
        }
        assert_eq!(v.finish().unwrap().0, 5);
    }

    #[test]
    fn an_edited_record_is_named() {
        let mut c = chain(5);
        c[2].event.details = "subject=CN=evil".into();
        assert_eq!(verify_chain(&c), Err(ChainBreak::Edited { seq: 3 }));
        // Re-hashed after the edit: the next record no longer links to it.
        c[2].hash = hash_of(c[2].seq, &c[2].prev_hash, &c[2].event);
        assert_eq!(verify_chain(&c), Err(ChainBreak::PrevMismatch { seq: 4 }));
        let mut c = chain(3);
        c[0].event.time += 1;
        assert_eq!(verify_chain(&c).unwrap_err().seq(), Some(1));
    }

    #[test]
    fn a_removed_record_is_named() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(
            verify_chain(&c),
            Err(ChainBreak::Gap {
                expected: 2,
                found: 3
            })
        );
        // Renumbered to hide the gap: record 2 (formerly 3) does not hash to its contents.
        for (i, r) in c.iter_mut().enumerate() {
            r.seq = i as u64 + 1;
        }
        assert_eq!(verify_chain(&c), Err(ChainBreak::Edited { seq: 2 }));
        let mut c = chain(3);
        c.remove(0);
        assert_eq!(verify_chain(&c).unwrap_err().seq(), Some(1));
    }

    #[test]
    fn reordered_records_are_detected() {
        let mut c = chain(4);
        c.swap(1, 2);
        assert_eq!(
            verify_chain(&c),
            Err(ChainBreak::Gap {
                expected: 2,
                found: 3
            })
        );
    }

    #[test]
    fn a_truncated_tail_is_detected_against_a_noted_head() {
        let mut c = chain(5);
        let head = c[4].hash.clone();
        c.truncate(3);
        assert!(verify_chain(&c).is_ok(), "consistent by itself");
        let mut v = ChainVerifier::new().expect_head(&head);
        for r in &c {
            v.push(r).unwrap();
        }
        assert!(matches!(
            v.finish(),
            Err(ChainBreak::HeadNotFound { count: 3, .. })
        ));
    }

    #[test]
    fn a_forged_prev_hash_cannot_verify() {
        let mut c = chain(2);
        c[1].prev_hash = "not hex".into();
        assert!(verify_chain(&c).is_err());
    }
}
