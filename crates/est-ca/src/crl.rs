//! Revocation and CRLs (RFC 5280 §5): revoking a recorded certificate, and the v2 CRL of each
//! CA domain, signed through the domain's key backend and cached until it is stale.
//!
//! The store is the only source of truth: a CRL is made from [`Store::revoked_certificates`],
//! and a cached one is replaced as soon as [`Store::revocation_state`] shows a change, whoever
//! made it (this process, `estuary cert revoke`, another node sharing the database).
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use der::asn1::{BitString, GeneralizedTime, OctetString};
use der::referenced::OwnedToRef;
use der::{Decode, Encode};
use x509_cert::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use crate::clock::unix_secs;
use crate::profile::{extension, key_identifier};
use crate::{Authority, CaError, CertRecord, CertStatus, Issuer, RevokedEntry};

/// How often a cached CRL asks the store whether revocations changed. Revocations made through
/// this [`Authority`] are seen at once; others (the CLI, another node) within this interval.
pub const CRL_STATE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// CRLReason (RFC 5280 §5.3.1). Code 7 is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrlReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    /// Only for delta CRLs; [`Authority::revoke`] refuses it (this CA issues full CRLs).
    RemoveFromCrl,
    PrivilegeWithdrawn,
    AaCompromise,
}

const REASONS: [CrlReason; 10] = [
    CrlReason::Unspecified,
    CrlReason::KeyCompromise,
    CrlReason::CaCompromise,
    CrlReason::AffiliationChanged,
    CrlReason::Superseded,
    CrlReason::CessationOfOperation,
    CrlReason::CertificateHold,
    CrlReason::RemoveFromCrl,
    CrlReason::PrivilegeWithdrawn,
    CrlReason::AaCompromise,
];

impl CrlReason {
    /// The ENUMERATED value.
    pub fn code(self) -> i32 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::RemoveFromCrl => 8,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    pub fn from_code(code: i32) -> Option<Self> {
        REASONS.into_iter().find(|r| r.code() == code)
    }

    /// The name in the RFC 5280 ASN.1 module (`keyCompromise`, `cACompromise`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::RemoveFromCrl => "removeFromCRL",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }

    pub(crate) fn to_x509(self) -> x509_cert::ext::pkix::CrlReason {
        use x509_cert::ext::pkix::CrlReason as X;
        match self {
            Self::Unspecified => X::Unspecified,
            Self::KeyCompromise => X::KeyCompromise,
            Self::CaCompromise => X::CaCompromise,
            Self::AffiliationChanged => X::AffiliationChanged,
            Self::Superseded => X::Superseded,
            Self::CessationOfOperation => X::CessationOfOperation,
            Self::CertificateHold => X::CertificateHold,
            Self::RemoveFromCrl => X::RemoveFromCRL,
            Self::PrivilegeWithdrawn => X::PrivilegeWithdrawn,
            Self::AaCompromise => X::AaCompromise,
        }
    }
}

impl std::fmt::Display for CrlReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A reason that is not a CRLReason name or code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown CRL reason {0:?} (expected unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, removeFromCRL, privilegeWithdrawn, aACompromise, or a code 0-10 other than 7)"
)]
pub struct UnknownCrlReason(pub String);

impl FromStr for CrlReason {
    type Err = UnknownCrlReason;

    /// The RFC 5280 name in any case, or the numeric code.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let found = match t.parse::<i32>() {
            Ok(code) => Self::from_code(code),
            Err(_) => REASONS
                .into_iter()
                .find(|r| r.name().eq_ignore_ascii_case(t)),
        };
        found.ok_or_else(|| UnknownCrlReason(s.to_owned()))
    }
}

/// What [`Authority::revoke`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Revoked now; the record as it is stored afterwards.
    Revoked(CertRecord),
    /// It was revoked before; nothing changed (the first revocation's details stay).
    AlreadyRevoked(CertRecord),
    /// No certificate with this serial was issued by this CA.
    Unknown,
}

/// The store-key form of a serial given by a person: hex digits, optionally with `0x`, colons
/// or spaces (as `openssl x509 -serial` and browsers print them), any case, leading zero octets
/// dropped. `None` if it is not hex.
pub fn normalize_serial(input: &str) -> Option<String> {
    let t = input.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let mut hex: String = t
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    if hex.is_empty() || hex.len() > 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    hex.make_ascii_lowercase();
    if hex.len() % 2 == 1 {
        hex.insert(0, '0');
    }
    while hex.len() > 2 && hex.starts_with("00") {
        hex.drain(..2);
    }
    Some(hex)
}

/// The CRL last made for a domain, and what it was made from.
#[derive(Debug, Clone)]
struct CachedCrl {
    der: Arc<Vec<u8>>,
    number: u64,
    /// [`crate::Store::revocation_state`] when its entries were read.
    state: (u64, i64),
    this_update: SystemTime,
    /// Half of the validity: from then on a new CRL is made even without revocations, so
    /// relying parties can fetch a fresh one well before nextUpdate (RFC 5280 §5.1.2.5).
    refresh_at: SystemTime,
    /// When the state was last compared; `None`: compare on the next request.
    checked: Option<Instant>,
}

#[derive(Debug, Default)]
struct Slot {
    crl: Option<CachedCrl>,
    /// A request is making a new CRL; others serve the cached one meanwhile.
    generating: bool,
}

/// The CRL cache of an [`Authority`], one slot per domain.
#[derive(Debug, Default)]
pub(crate) struct CrlCache {
    slots: Mutex<HashMap<String, Slot>>,
}

/// What a request should do with the cache.
enum Lookup {
    Fresh(Arc<Vec<u8>>),
    /// Compare the revocation state with that of the cached CRL (if any).
    Check(Option<CachedCrl>),
}

impl CrlCache {
    fn lookup(&self, domain: &str, now: SystemTime) -> Lookup {
        let Ok(slots) = self.slots.lock() else {
            return Lookup::Check(None);
        };
        match slots.get(domain).and_then(|s| s.crl.as_ref()) {
            Some(c)
                if in_window(c, now)
                    && c.checked
                        .is_some_and(|t| t.elapsed() < CRL_STATE_CHECK_INTERVAL) =>
            {
                Lookup::Fresh(c.der.clone())
            }
            other => Lookup::Check(other.cloned()),
        }
    }

    /// Records that the cached CRL numbered `number` still matches the store.
    fn confirm(&self, domain: &str, number: u64) {
        if let Ok(mut slots) = self.slots.lock()
            && let Some(c) = slots.get_mut(domain).and_then(|s| s.crl.as_mut())
            && c.number == number
        {
            c.checked = Some(Instant::now());
        }
    }

    /// Claims the right to make the next CRL of `domain`; `false` while another request does.
    fn claim(&self, domain: &str) -> bool {
        match self.slots.lock() {
            Ok(mut slots) => {
                let slot = slots.entry(domain.to_owned()).or_default();
                !std::mem::replace(&mut slot.generating, true)
            }
            Err(_) => true,
        }
    }

    /// Keeps `crl` unless the cache already holds a later one (so a slow request cannot put
    /// back an older CRL number), ending the claim if `release`; returns the CRL to serve.
    fn finish(&self, domain: &str, crl: Option<CachedCrl>, release: bool) -> Option<Arc<Vec<u8>>> {
        let mut slots = self.slots.lock().ok()?;
        let slot = slots.entry(domain.to_owned()).or_default();
        if release {
            slot.generating = false;
        }
        if let Some(new) = crl
            && slot.crl.as_ref().is_none_or(|c| c.number < new.number)
        {
            slot.crl = Some(new);
        }
        slot.crl.as_ref().map(|c| c.der.clone())
    }

    /// Makes the next request compare the revocation state (after a revocation here).
    fn invalidate(&self, domain: &str) {
        if let Ok(mut slots) = self.slots.lock()
            && let Some(c) = slots.get_mut(domain).and_then(|s| s.crl.as_mut())
        {
            c.checked = None;
        }
    }
}

fn in_window(c: &CachedCrl, now: SystemTime) -> bool {
    now >= c.this_update && now < c.refresh_at
}

/// A request making a CRL. Releases its claim (if it holds one) also when it ends without a
/// CRL: an error, or the request's future dropped.
struct Claim<'a> {
    cache: &'a CrlCache,
    domain: &'a str,
    owned: bool,
    done: bool,
}

impl Claim<'_> {
    fn finish(mut self, crl: CachedCrl) -> Option<Arc<Vec<u8>>> {
        self.done = true;
        self.cache.finish(self.domain, Some(crl), self.owned)
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.done && self.owned {
            self.cache.finish(self.domain, None, true);
        }
    }
}

impl Authority {
    /// Revokes the certificate with serial `serial_hex` (any form [`normalize_serial`] takes)
    /// for `reason`, recording `invalidity_date` (RFC 5280 §5.3.2) when given; `actor` (who
    /// asked: `cli:<user>`, `cmc:<requester>` ...) and `source` (from where: `cli`, the peer
    /// address) go to the audit trail with the serial, the subject and the reason, in the
    /// same commit as the revocation (`cert.revoke`). The certificate appears on its domain's next CRL, which this
    /// authority makes on the next [`Authority::crl`] call.
    ///
    /// Refused ([`CaError::Revocation`]): a serial that is not hex, removeFromCRL (a delta-CRL
    /// reason; this CA issues full CRLs), an invalidity date in the future.
    pub async fn revoke(
        &self,
        serial_hex: &str,
        reason: CrlReason,
        invalidity_date: Option<SystemTime>,
        actor: &str,
        source: &str,
    ) -> Result<RevokeOutcome, CaError> {
        let serial = normalize_serial(serial_hex).ok_or_else(|| {
            CaError::Revocation(format!("{serial_hex:?} is not a hexadecimal serial number"))
        })?;
        if reason == CrlReason::RemoveFromCrl {
            return Err(CaError::Revocation(
                "removeFromCRL is used only in delta CRLs (RFC 5280 §5.3.1); this CA issues full CRLs"
                    .into(),
            ));
        }
        let now = self.clock.now();
        let invalidity = match invalidity_date {
            Some(t) if t > now => {
                return Err(CaError::Revocation(
                    "the invalidity date lies in the future; it is when the certificate became invalid (RFC 5280 §5.3.2)"
                        .into(),
                ));
            }
            Some(t) if t < UNIX_EPOCH => {
                return Err(CaError::Revocation(
                    "the invalidity date lies before 1970".into(),
                ));
            }
            Some(t) => Some(unix_secs(t)),
            None => None,
        };
        let revoked_at = unix_secs(now).max(1);
        // Read first, so that the audit record names what was revoked.
        let Some(before) = self.store.certificate_by_serial(&serial).await? else {
            tracing::info!(serial = %serial, actor, reason = %reason, "revocation of an unknown serial");
            return Ok(RevokeOutcome::Unknown);
        };
        let event =
            crate::AuditEvent::new(revoked_at, actor, source, crate::audit_action::CERT_REVOKE)
                .target(serial.clone())
                .details(format!(
                    "reason={reason}; ca={}; subject={}{}",
                    before.ca,
                    before.subject,
                    invalidity.map_or_else(String::new, |t| format!("; invalidity_date={t}"))
                ));
        let started = std::time::Instant::now();
        let changed = self
            .store
            .revoke_certificate_audited(&serial, reason.code(), revoked_at, invalidity, &event)
            .await;
        self.observer.store_commit(
            crate::StoreCommit::Revocation,
            started.elapsed(),
            changed.is_ok(),
        );
        let changed = changed?;
        let Some(record) = self.store.certificate_by_serial(&serial).await? else {
            if changed {
                return Err(CaError::Internal(format!(
                    "certificate {serial} vanished while it was revoked"
                )));
            }
            tracing::info!(serial = %serial, actor, reason = %reason, "revocation of an unknown serial");
            return Ok(RevokeOutcome::Unknown);
        };
        if changed {
            self.crls.invalidate(&record.ca);
            self.observer.certificate_revoked(&record.ca);
            tracing::info!(
                serial = %record.serial,
                ca = %record.ca,
                subject = %record.subject,
                reason = %reason,
                invalidity_date = ?invalidity,
                actor,
                "certificate revoked"
            );
            Ok(RevokeOutcome::Revoked(record))
        } else if record.status == CertStatus::Revoked {
            tracing::info!(serial = %record.serial, ca = %record.ca, actor, "certificate already revoked");
            Ok(RevokeOutcome::AlreadyRevoked(record))
        } else {
            Err(CaError::Internal(format!(
                "certificate {serial} was not revoked but is not revoked either (changed concurrently?)"
            )))
        }
    }

    /// The current CRL of CA domain `domain`, DER (RFC 5280 §5): v2, issuer = the issuing CA's
    /// subject, thisUpdate = now, nextUpdate = now + the profile's `crl_validity`, a CRL Number
    /// from [`crate::Store::next_crl_number`] and the Authority Key Identifier (§5.2.1, §5.2.3),
    /// each entry with its reasonCode (absent for unspecified, §5.3.1) and invalidityDate
    /// (§5.3.2). Signed by the domain's issuing key through its [`crate::SigningKey`] (so an HSM
    /// key works), the same key that signs its certificates: the CRL issuer is the certificate
    /// issuer, and no separate CRL-signing certificate is needed (SEC-10 trade-off).
    ///
    /// Cached per domain: a new CRL is made when the store's revocation state differs from the
    /// cached CRL's (compared at most every [`CRL_STATE_CHECK_INTERVAL`], at once after
    /// [`Authority::revoke`]) or half of its validity has passed. Expired certificates stay
    /// listed. Concurrent requests share one regeneration; the others get the previous CRL
    /// meanwhile.
    pub async fn crl(&self, domain: &str) -> Result<Arc<Vec<u8>>, CaError> {
        let d = self.domain_named(domain)?;
        let now = self.clock.now();
        let cached = match self.crls.lookup(domain, now) {
            Lookup::Fresh(der) => return Ok(der),
            Lookup::Check(cached) => cached,
        };
        let state = self.store.revocation_state(domain).await?;
        if let Some(c) = &cached
            && c.state == state
            && in_window(c, now)
        {
            self.crls.confirm(domain, c.number);
            return Ok(c.der.clone());
        }
        let owned = self.crls.claim(domain);
        if !owned && let Some(c) = cached {
            return Ok(c.der.clone());
        }
        // Unclaimed here only for a domain's first CRL: make one too rather than wait.
        let claim = Claim {
            cache: &self.crls,
            domain,
            owned,
            done: false,
        };
        // The entries are read after the state: a revocation in between is on this CRL and
        // makes the next request regenerate, never the other way round.
        let entries = self.store.revoked_certificates(domain).await?;
        let number = self.store.next_crl_number(domain).await?;
        let this_update =
            UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_secs(now)).unwrap_or(0));
        let validity = d.profile.crl_validity.max(Duration::from_secs(60));
        let der = Arc::new(sign_crl(
            &d.issuer,
            &entries,
            number,
            this_update,
            this_update + validity,
        )?);
        tracing::info!(
            ca = domain,
            crl_number = number,
            entries = entries.len(),
            "CRL issued"
        );
        let made = CachedCrl {
            der: der.clone(),
            number,
            state,
            this_update,
            refresh_at: this_update + validity / 2,
            checked: Some(Instant::now()),
        };
        Ok(claim.finish(made).unwrap_or(der))
    }
}

/// A CRL Time: UTCTime through 2049, GeneralizedTime after (RFC 5280 §5.1.2.4, §5.1.2.6).
fn crl_time(secs: i64) -> Result<Time, CaError> {
    let secs = u64::try_from(secs)
        .map_err(|_| CaError::Internal(format!("revocation time {secs} before 1970")))?;
    Ok(Time::try_from(UNIX_EPOCH + Duration::from_secs(secs))?)
}

/// The crlEntryExtensions of one entry, `None` when there are none (the field is then absent).
fn entry_extensions(e: &RevokedEntry) -> Result<Option<Vec<Extension>>, CaError> {
    let mut v = Vec::new();
    let reason = CrlReason::from_code(e.reason).ok_or_else(|| {
        CaError::Internal(format!(
            "stored revocation reason {} of {} is not a CRLReason",
            e.reason, e.serial
        ))
    })?;
    // RFC 5280 §5.3.1: absent rather than unspecified.
    if reason != CrlReason::Unspecified {
        v.push(extension(false, &reason.to_x509())?);
    }
    if let Some(t) = e.invalidity_date {
        let secs = u64::try_from(t)
            .map_err(|_| CaError::Internal(format!("invalidity date {t} before 1970")))?;
        // InvalidityDate ::= GeneralizedTime (§5.3.2), whatever the year.
        let time = GeneralizedTime::from_unix_duration(Duration::from_secs(secs))?;
        v.push(Extension {
            extn_id: const_oid::db::rfc5280::ID_CE_INVALIDITY_DATE,
            critical: false,
            extn_value: OctetString::new(time.to_der()?)?,
        });
    }
    Ok((!v.is_empty()).then_some(v))
}

/// Assembles and signs a CRL: the DER TBSCertList goes to the issuer's key, like a
/// certificate's TBS in `authority::sign_with_key`.
pub(crate) fn sign_crl(
    issuer: &Issuer,
    entries: &[RevokedEntry],
    number: u64,
    this_update: SystemTime,
    next_update: SystemTime,
) -> Result<Vec<u8>, CaError> {
    let mut revoked: Vec<RevokedCert> = Vec::with_capacity(entries.len());
    for e in entries {
        let bytes = hex::decode(&e.serial)
            .map_err(|_| CaError::Internal(format!("stored serial {:?} is not hex", e.serial)))?;
        revoked.push(RevokedCert {
            serial_number: SerialNumber::new(&bytes)?,
            revocation_date: crl_time(e.revoked_at)?,
            crl_entry_extensions: entry_extensions(e)?,
        });
    }
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(key_identifier(
            issuer.key.public_key_info().owned_to_ref(),
        )?)?),
        ..Default::default()
    };
    let crl_number = CrlNumber::try_from(number)?;
    let algorithm = issuer.key.algorithm().algorithm_identifier();
    let tbs = TbsCertList {
        version: Version::V2,
        signature: algorithm.clone(),
        issuer: issuer.subject().clone(),
        this_update: Time::try_from(this_update)?,
        next_update: Some(Time::try_from(next_update)?),
        // §5.1.2.6: absent, not empty, when nothing is revoked.
        revoked_certificates: (!revoked.is_empty()).then_some(revoked),
        crl_extensions: Some(vec![
            extension(false, &aki)?,
            extension(false, &crl_number)?,
        ]),
    };
    let tbs_der = tbs.to_der()?;
    let signature = issuer.key.sign(&tbs_der)?;
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature)?,
    };
    let der = crl.to_der()?;
    // What we sign must be what we send: the TBS re-encodes to the signed bytes.
    debug_assert!(
        CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&der)
            .ok()
            .and_then(|c| c.tbs_cert_list.to_der().ok())
            .is_some_and(|t| t == tbs_der)
    );
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_parse_by_name_any_case_and_by_code() {
        assert_eq!("keyCompromise".parse(), Ok(CrlReason::KeyCompromise));
        assert_eq!("KEYCOMPROMISE".parse(), Ok(CrlReason::KeyCompromise));
        assert_eq!("cacompromise".parse(), Ok(CrlReason::CaCompromise));
        assert_eq!("removeFromCRL".parse(), Ok(CrlReason::RemoveFromCrl));
        assert_eq!("10".parse(), Ok(CrlReason::AaCompromise));
        assert_eq!("0".parse(), Ok(CrlReason::Unspecified));
        assert!("7".parse::<CrlReason>().is_err());
        assert!("11".parse::<CrlReason>().is_err());
        assert!("compromised".parse::<CrlReason>().is_err());
        for r in REASONS {
            assert_eq!(CrlReason::from_code(r.code()), Some(r));
            assert_eq!(r.name().parse(), Ok(r));
            assert_eq!(r.to_x509() as u32, u32::try_from(r.code()).unwrap_or(99));
        }
    }

    #[test]
    fn serials_normalize_to_the_store_form() {
        assert_eq!(normalize_serial("0x0A1B").as_deref(), Some("0a1b"));
        assert_eq!(normalize_serial("01:9A:FF").as_deref(), Some("019aff"));
        assert_eq!(normalize_serial(" 009AFF\n").as_deref(), Some("9aff"));
        assert_eq!(normalize_serial("abc").as_deref(), Some("0abc"));
        assert_eq!(normalize_serial("00").as_deref(), Some("00"));
        assert_eq!(normalize_serial("xyz"), None);
        assert_eq!(normalize_serial(""), None);
        assert_eq!(normalize_serial("'; DROP TABLE"), None);
    }
}
