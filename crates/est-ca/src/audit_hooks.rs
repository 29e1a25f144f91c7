//! Where the authority writes to the audit trail (issue 11 item 4): the `cert.issue` record
//! each issuance commits with its certificate, and the `enroll.refused` records of requests an
//! authorization or policy check refused.
use crate::authority::{Authority, Identity, Names, Origin};
use crate::clock::unix_secs;
use crate::{CaError, CertRecord};

/// How an issuance is audited: where the request came from and what kind it was.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Audit<'a> {
    pub(crate) origin: Origin<'a>,
    /// `enroll`, `renew`, `cmc`, `server keygen` ...
    pub(crate) how: &'static str,
}

impl Audit<'_> {
    /// The `cert.issue` record of `record`.
    pub(crate) fn issued(self, identity: &Identity, record: &CertRecord) -> crate::AuditEvent {
        crate::AuditEvent::new(
            record.issued_at,
            identity.requester(),
            self.origin.source,
            crate::audit_action::CERT_ISSUE,
        )
        .target(record.serial.clone())
        .label(self.origin.label)
        .details(format!(
            "{}; ca={}; subject={}{}",
            self.how,
            record.ca,
            record.subject,
            identity.audit_detail()
        ))
    }
}

impl Identity {
    /// What the audit trail adds about the client beyond its requester string: the subject
    /// of a client certificate.
    pub(crate) fn audit_detail(&self) -> String {
        match self {
            Identity::Certificate { cert, .. } | Identity::ImplicitCertificate { cert, .. } => {
                format!("; client={}", cert.tbs_certificate().subject())
            }
            _ => String::new(),
        }
    }
}

/// Refusals by authorization and policy checks go to the audit trail (`enroll.refused`).
pub(crate) trait OrAudit<T> {
    async fn or_audit(
        self,
        ca: &Authority,
        identity: &Identity,
        origin: Origin<'_>,
        names: Names<'_>,
        how: &str,
    ) -> Result<T, CaError>;
}

impl<T> OrAudit<T> for Result<T, CaError> {
    async fn or_audit(
        self,
        ca: &Authority,
        identity: &Identity,
        origin: Origin<'_>,
        names: Names<'_>,
        how: &str,
    ) -> Result<T, CaError> {
        if let Err(e) = &self
            && is_refusal(e)
        {
            let event = crate::AuditEvent::new(
                unix_secs(ca.clock.now()),
                identity.requester(),
                origin.source,
                crate::audit_action::ENROLL_REFUSED,
            )
            .target(names.subject.to_string())
            .label(origin.label)
            .details(format!("{how}: {e}{}", identity.audit_detail()));
            ca.audit(&event).await;
        }
        self
    }
}

/// Whether `e` is a refusal by an authorization or policy check (audited), rather than a
/// malformed request or an internal failure.
fn is_refusal(e: &CaError) -> bool {
    matches!(
        e,
        CaError::NotAuthorized(_)
            | CaError::NameNotAllowed(_)
            | CaError::SubjectMismatch(_)
            | CaError::NoRenewalTarget(_)
            | CaError::KeyReuse
            | CaError::KeyNotAllowed(_)
    )
}

impl Authority {
    /// Appends `event` to the audit trail. A failure is logged, not returned: for the
    /// callers of this (refusals, held requests) the action already happened or was refused
    /// anyway; issuance and revocation record theirs in the same commit instead.
    pub async fn audit(&self, event: &crate::AuditEvent) {
        if let Err(error) = self.store.append_audit(event).await {
            tracing::error!(%error, action = %event.action, target = %event.target, "audit record not written");
        }
    }
}
