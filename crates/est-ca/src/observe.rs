//! A hook for metrics: the authority reports what it committed, and how long the store took,
//! to an [`Observer`] the front end provides. This crate knows nothing of how the numbers are
//! exposed (the server turns them into Prometheus metrics).
use std::time::Duration;

/// What was written to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreCommit {
    /// An issued certificate recorded (with its CMC replay record, when there is one).
    Certificate,
    /// A revocation recorded.
    Revocation,
}

impl StoreCommit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Certificate => "certificate",
            Self::Revocation => "revocation",
        }
    }
}

/// Told about every commit the authority makes. Called inline on the issuance path: keep it
/// cheap and non-blocking (counters, histograms).
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// A certificate of CA domain `ca` was issued and recorded.
    fn certificate_issued(&self, _ca: &str) {}
    /// A valid certificate of CA domain `ca` was revoked.
    fn certificate_revoked(&self, _ca: &str) {}
    /// A store write took `elapsed`; `ok` says whether it committed.
    fn store_commit(&self, _what: StoreCommit, _elapsed: Duration, _ok: bool) {}
}

/// The observer of an authority nobody watches.
#[derive(Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}
