//! Requests held for the operator (EST-100): pending with pendInfo and Query Pending (CMC-64).
use super::*;

/// A held request named by a Query Pending's pendToken, re-read in full.
pub(super) struct Held {
    pub(super) record: est_ca::PendingRecord,
    pub(super) request: CertificationRequest,
    pub(super) spki_der: Vec<u8>,
}

pub(super) async fn find_held(
    st: &EstState,
    label: &Label,
    id: u32,
    token: &[u8],
) -> Result<Held, Failure> {
    let unknown = || {
        Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            id,
            "no held request has this pendToken on this label (CMC-64)",
        )
    };
    let record = st
        .ca
        .held_request(&hex::encode(token))
        .await
        .map_err(|e| ca_failure(id, &e))?
        .filter(|r| r.label == label.cfg.name)
        .ok_or_else(unknown)?;
    let policy = RequestPolicy {
        allow_sha1_pop: label.cfg.cmc.allow_sha1_pop,
    };
    let request = CertificationRequest::from_stored(&record.csr, policy)?;
    Ok(Held {
        spki_der: request.spki_der.clone(),
        record,
        request,
    })
}

/// pendTime: when the client should ask again (the same value on every answer, CMC-64).
pub(super) fn pend_time(
    rec: &est_ca::PendingRecord,
    label: &Label,
) -> Result<der::asn1::GeneralizedTime, Failure> {
    let wait = match label.cfg.approval {
        crate::Approval::Manual { retry_after } => retry_after.as_secs(),
        crate::Approval::Automatic => 60,
    };
    let at = u64::try_from(rec.created_at)
        .unwrap_or(0)
        .saturating_add(wait);
    der::asn1::GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(at))
        .map_err(|e| Failure::message(CmcFailInfo::INTERNAL_CA_ERROR, e.to_string()))
}

pub(super) fn pend_token(rec: &est_ca::PendingRecord) -> Result<Vec<u8>, Failure> {
    hex::decode(&rec.id)
        .map_err(|e| Failure::message(CmcFailInfo::INTERNAL_CA_ERROR, e.to_string()))
}

/// Answers a held outcome: the certificate, pending with pendInfo, or the operator's refusal.
pub(super) fn held_outcome(
    outcome: est_ca::HeldOutcome,
    id: u32,
    label: &Label,
    builder: &mut ResponseBuilder,
) -> Result<Outcome, Failure> {
    match outcome {
        est_ca::HeldOutcome::Issued(issued, _) => Ok(Outcome::Issued(issued.der)),
        est_ca::HeldOutcome::Pending(rec) => {
            builder.pending(
                id,
                &pend_token(&rec)?,
                pend_time(&rec, label)?,
                "held for the CA operator's approval; ask again with Query Pending and this pendToken",
            )?;
            Ok(Outcome::Pending)
        }
        est_ca::HeldOutcome::Rejected(r) => Err(Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            id,
            est_ca::rejection(&r),
        )),
    }
}

/// Query Pending (CMC-64): only the requester of the held request may ask about it.
pub(super) async fn query(
    st: &EstState,
    label: &Label,
    identity: &Identity,
    source: &str,
    id: u32,
    held: Held,
    builder: &mut ResponseBuilder,
) -> Result<Outcome, Failure> {
    if held.record.requester != identity.requester() {
        return Err(Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            id,
            "no held request has this pendToken on this label (CMC-64)",
        ));
    }
    let (subject, san) = held.request.effective_names();
    let outcome = st
        .ca
        .advance_held(
            held.record,
            CertifyRequest {
                domain: &label.cfg.domain,
                identity,
                renewal: None,
                subject: &subject,
                san: san.as_ref(),
                spki: &held.request.spki,
                replay: None,
                origin: est_ca::Origin {
                    source,
                    label: &label.cfg.name,
                },
            },
        )
        .await
        .map_err(|e| ca_failure(id, &e))?;
    held_outcome(outcome, id, label, builder)
}
