//! Manual approval (EST-49, EST-91, EST-92): the first request is held and answered "202, try
//! later"; an operator approves or rejects it; the client's identical retry then gets the
//! certificate (or a refusal). Clients are stateless, so a retry is recognised by who asks,
//! where, for which key and which subject, never by the CSR bytes, whose challengePassword
//! changes with every connection (EST-17).
use der::Encode;

use crate::audit_hooks::OrAudit;
use crate::authority::{Authority, CertifyRequest, EnrollRequest, IssuedCert};
use crate::clock::unix_secs;
use crate::{CaError, PendingRecord, StoreError, VerifiedCsr};

/// The `request.hold` record of a request just held.
fn held_event(
    rec: &PendingRecord,
    identity: &crate::Identity,
    origin: crate::Origin<'_>,
) -> crate::AuditEvent {
    crate::AuditEvent::new(
        rec.created_at,
        rec.requester.clone(),
        origin.source,
        crate::audit_action::REQUEST_HOLD,
    )
    .target(rec.id.clone())
    .label(rec.label.clone())
    .details(format!(
        "subject={}; spki_sha256={}{}",
        rec.subject,
        rec.spki_sha256,
        identity.audit_detail()
    ))
}

/// What became of a request on a label with manual approval.
#[derive(Debug, Clone)]
pub enum EnrollOutcome {
    Issued(Box<IssuedCert>),
    /// Held for (or still awaiting) the operator's decision.
    Pending,
}

/// EST-92: hex SHA-256 over the length-prefixed requester, label, SHA-256 of the SPKI and
/// subject DER.
pub fn match_key(requester: &str, label: &str, spki_der: &[u8], subject_der: &[u8]) -> String {
    let mut h = openssl::sha::Sha256::new();
    let spki_hash = openssl::sha::sha256(spki_der);
    for part in [
        requester.as_bytes(),
        label.as_bytes(),
        spki_hash.as_slice(),
        subject_der,
    ] {
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finish())
}

impl Authority {
    /// Initial enrollment on a label whose requests need an operator's approval. The CSR is
    /// verified and authorized before it is held, so operators only see admissible requests.
    pub async fn enroll_with_approval(
        &self,
        req: EnrollRequest<'_>,
        label: &str,
    ) -> Result<EnrollOutcome, CaError> {
        let domain = self
            .domain(req.domain)
            .ok_or_else(|| CaError::Internal(format!("unknown CA domain {}", req.domain)))?
            .clone();
        let csr = VerifiedCsr::verify(req.csr_der, domain.profile.allow_sha1_csr)?;
        domain.profile.keys.check(csr.key_kind)?;
        // Only admissible requests are held: names RFC 5280 forbids are refused now.
        domain
            .profile
            .check_names(csr.subject(), csr.san.as_ref())?;
        self.authorize_initial(req.identity, csr.names())
            .or_audit(self, req.identity, req.origin, csr.names(), "enroll")
            .await?;
        let requester = req.identity.requester();
        let key = match_key(&requester, label, &csr.spki_der, &csr.subject().to_der()?);
        let store = self.store();
        let now = unix_secs(self.clock().now());
        let Some(p) = store.pending_by_match_key(&key).await? else {
            let mut id = [0u8; 8];
            openssl::rand::rand_bytes(&mut id)?;
            let rec = PendingRecord {
                id: hex::encode(id),
                match_key: key,
                label: label.to_owned(),
                requester,
                subject: csr.subject().to_string(),
                spki_sha256: hex::encode(openssl::sha::sha256(&csr.spki_der)),
                csr: req.csr_der.to_vec(),
                status: "pending".into(),
                created_at: now,
                decided_at: 0,
                serial: String::new(),
                client_addr: req.origin.source.to_owned(),
                reason: String::new(),
            };
            return match store.add_pending(&rec).await {
                Ok(()) => {
                    tracing::info!(id = %rec.id, requester = %rec.requester, subject = %rec.subject, label, "request held for manual approval");
                    self.audit(&held_event(&rec, req.identity, req.origin))
                        .await;
                    Ok(EnrollOutcome::Pending)
                }
                // A concurrent identical request got there first: same answer.
                Err(StoreError::Conflict(_)) => Ok(EnrollOutcome::Pending),
                Err(e) => Err(e.into()),
            };
        };
        match self
            .advance_with(p, async || self.enroll(req).await)
            .await?
        {
            HeldOutcome::Issued(issued, _) => Ok(EnrollOutcome::Issued(issued)),
            HeldOutcome::Pending(_) => Ok(EnrollOutcome::Pending),
            HeldOutcome::Rejected(r) => Err(CaError::NotAuthorized(rejection(&r))),
        }
    }
}

/// What a client whose request the operator rejected is told: that, and the operator's reason.
pub fn rejection(rec: &PendingRecord) -> String {
    let mut s = String::from("the certification request was rejected by the CA operator");
    if !rec.reason.is_empty() {
        s.push_str(": ");
        s.push_str(&rec.reason);
    }
    s
}

/// What became of a request held for approval, with the record the client can be pointed at
/// (CMC pendInfo, EST-100).
#[derive(Debug, Clone)]
pub enum HeldOutcome {
    Issued(Box<IssuedCert>, PendingRecord),
    Pending(PendingRecord),
    Rejected(PendingRecord),
}

impl Authority {
    /// Initial certification of a key proven elsewhere (CMC) on a label with manual approval:
    /// the first request is authorized and held; once approved, this (or a Query Pending
    /// naming the record) issues. `request_der` is kept for the operator and for issuing later
    /// (a PKCS#10 request, or a CRMF CertReqMsg).
    pub async fn certify_with_approval(
        &self,
        req: CertifyRequest<'_>,
        label: &str,
        request_der: &[u8],
    ) -> Result<HeldOutcome, CaError> {
        let domain = self
            .domain(req.domain)
            .ok_or_else(|| CaError::Internal(format!("unknown CA domain {}", req.domain)))?
            .clone();
        let spki_der = req.spki.to_der()?;
        let kind = crate::csr::classify_public_key(req.spki, &spki_der)?;
        domain.profile.keys.check(kind)?;
        let names = crate::authority::Names {
            subject: req.subject,
            san: req.san,
        };
        domain.profile.check_names(req.subject, req.san)?;
        self.authorize_initial(req.identity, names)
            .or_audit(self, req.identity, req.origin, names, "cmc")
            .await?;
        let requester = req.identity.requester();
        let key = match_key(&requester, label, &spki_der, &req.subject.to_der()?);
        let store = self.store();
        match store.pending_by_match_key(&key).await? {
            Some(p) => self.advance_held(p, req).await,
            None => {
                let mut id = [0u8; 8];
                openssl::rand::rand_bytes(&mut id)?;
                let rec = PendingRecord {
                    id: hex::encode(id),
                    match_key: key.clone(),
                    label: label.to_owned(),
                    requester,
                    subject: req.subject.to_string(),
                    spki_sha256: hex::encode(openssl::sha::sha256(&spki_der)),
                    csr: request_der.to_vec(),
                    status: "pending".into(),
                    created_at: unix_secs(self.clock().now()),
                    decided_at: 0,
                    serial: String::new(),
                    client_addr: req.origin.source.to_owned(),
                    reason: String::new(),
                };
                match store.add_pending(&rec).await {
                    Ok(()) => {
                        tracing::info!(id = %rec.id, requester = %rec.requester, subject = %rec.subject, label, "request held for manual approval");
                        self.audit(&held_event(&rec, req.identity, req.origin))
                            .await;
                        Ok(HeldOutcome::Pending(rec))
                    }
                    Err(StoreError::Conflict(_)) => match store.pending_by_match_key(&key).await? {
                        Some(p) => Ok(HeldOutcome::Pending(p)),
                        None => Err(CaError::Internal("held request vanished".into())),
                    },
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// A held request by id (the CMC pendToken in hex).
    pub async fn held_request(&self, id: &str) -> Result<Option<PendingRecord>, CaError> {
        Ok(self.store().pending_by_id(id).await?)
    }

    /// Moves a held request on: issue it if approved (one of concurrent callers wins), return
    /// its certificate if already issued, or report it pending or rejected. `req` describes
    /// the held request itself (its key and names) and who asks now.
    pub async fn advance_held(
        &self,
        p: PendingRecord,
        req: CertifyRequest<'_>,
    ) -> Result<HeldOutcome, CaError> {
        self.advance_with(p, async || self.certify(req).await).await
    }

    /// The state machine of a held request (EST-92, CMC-64): an approved request is claimed
    /// by one of its concurrent retries and issued with `issue`; an issued one returns its
    /// certificate again (the first answer may have been lost); pending and rejected are
    /// reported as they are.
    async fn advance_with(
        &self,
        p: PendingRecord,
        issue: impl AsyncFnOnce() -> Result<IssuedCert, CaError>,
    ) -> Result<HeldOutcome, CaError> {
        let store = self.store();
        match p.status.as_str() {
            "approved" => {
                if !store
                    .transition_pending(&p.id, "approved", "issuing", None, None)
                    .await?
                {
                    return Ok(HeldOutcome::Pending(p));
                }
                match issue().await {
                    Ok(issued) => {
                        store
                            .transition_pending(
                                &p.id,
                                "issuing",
                                "issued",
                                None,
                                Some(&issued.record.serial),
                            )
                            .await?;
                        Ok(HeldOutcome::Issued(Box::new(issued), p))
                    }
                    Err(e) => {
                        store
                            .transition_pending(&p.id, "issuing", "approved", None, None)
                            .await?;
                        Err(e)
                    }
                }
            }
            "issued" => {
                let rec = store
                    .certificate_by_serial(&p.serial)
                    .await?
                    .ok_or_else(|| {
                        CaError::Internal("approved request's certificate is missing".into())
                    })?;
                let cert = <x509_cert::Certificate as der::Decode>::from_der(&rec.der)?;
                Ok(HeldOutcome::Issued(
                    Box::new(IssuedCert {
                        cert,
                        der: rec.der.clone(),
                        record: rec,
                    }),
                    p,
                ))
            }
            "rejected" => Ok(HeldOutcome::Rejected(p)),
            _ => Ok(HeldOutcome::Pending(p)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_key_depends_on_every_part() {
        let k = match_key("user:a", "l", b"spki", b"subj");
        assert_eq!(k.len(), 64);
        assert_eq!(k, match_key("user:a", "l", b"spki", b"subj"));
        for other in [
            match_key("user:b", "l", b"spki", b"subj"),
            match_key("user:a", "m", b"spki", b"subj"),
            match_key("user:a", "l", b"spkj", b"subj"),
            match_key("user:a", "l", b"spki", b"subk"),
            // Length prefixes: moving bytes between parts changes the key.
            match_key("user:al", "", b"spki", b"subj"),
        ] {
            assert_ne!(k, other);
        }
    }
}
