//! Controls about certificates already issued: Get Certificate (CMC-70), Confirm Certificate
//! Acceptance (CMC-69), Revocation Request (CMC-72) and Get CRL (CMC-71).
use super::*;

/// A SignedData without SignerInfo carrying Revocation Requests: each must carry the
/// passphrase (the shared secret) of the certificate it revokes (RFC 5272 §6.11, CMC-72).
pub(super) async fn unsigned_revocation(
    st: &EstState,
    label: &Label,
    http_identity: Option<&Identity>,
    request: &FullPkiRequest,
) -> Result<Response, Failure> {
    let c = &request.controls;
    if c.revoke.is_empty()
        || !request.requests.is_empty()
        || !request.nested.is_empty()
        || !c.query_pending.is_empty()
        || !c.get_cert.is_empty()
        || !c.get_crl.is_empty()
        || !c.confirm_cert_acceptance.is_empty()
        || !c.ra_controls().is_empty()
        || !c.batch_requests.is_empty()
    {
        return Err(Failure::message(
            CmcFailInfo::BAD_MESSAGE_CHECK,
            "the request is not signed: only Revocation Requests with their passphrase may be (CMC-16, CMC-72)",
        ));
    }
    // CMC-56: an RA certificate the label does not authorize speaks for nobody here.
    let http_identity = http_identity
        .filter(|i| !super::is_ra_identity(i) || crate::handlers::ra_authorized(label, i));
    let mut builder = ResponseBuilder::new(c)?;
    let mut run = Run::default();
    for (id, rr) in &c.revoke {
        let outcome = revoke(st, label, c, http_identity, false, *id, rr).await;
        run.record(&mut builder, &[], *id, outcome)?;
    }
    builder.success_refs(std::mem::take(&mut run.ok))?;
    let status = run
        .first_failure
        .as_ref()
        .map_or(StatusCode::OK, status_for);
    signed_response(st, label, &builder, &[], &[], status)
}

/// Revocation Request (CMC-72). Who may revoke: the holder of the certificate (the request is
/// signed with it), the requester who enrolled it, an RA this label authorizes, or whoever
/// knows the shared secret it was enrolled with (the passphrase). Always a Full PKI Response.
pub(super) async fn revoke(
    st: &EstState,
    label: &Label,
    controls: &Controls,
    identity: Option<&Identity>,
    ra: bool,
    id: u32,
    rr: &est_cmc::controls::RevokeRequest,
) -> Result<Outcome, Failure> {
    let rec = issued_here(st, label, id, &rr.issuer_name, &rr.serial_number).await?;
    let holder = matches!(identity, Some(Identity::Certificate { record: Some(r), .. }) if r.serial == rec.serial);
    let requester = identity.is_some_and(|i| i.requester() == rec.requester);
    let by_passphrase = match &rr.passphrase {
        Some(p) => passphrase_matches(st, label, controls, &rec, p.as_bytes()).await?,
        None => false,
    };
    if !(holder || requester || ra || by_passphrase) {
        return Err(Failure::body_part(
            CmcFailInfo::BAD_IDENTITY,
            id,
            "not authorized to revoke this certificate: sign with it, authenticate as its requester, or give its shared secret as passphrase (CMC-72)",
        ));
    }
    let reason = est_ca::CrlReason::from_code(rr.reason as u32 as i32)
        .ok_or_else(|| Failure::body_part(CmcFailInfo::BAD_REQUEST, id, "unknown CRLReason"))?;
    let actor = match identity {
        Some(i) if !by_passphrase || holder || requester => i.requester(),
        _ => "cmc-passphrase".into(),
    };
    let invalidity = rr.invalidity_date.map(|t| t.to_system_time());
    match st
        .ca
        .revoke(&rec.serial, reason, invalidity, &actor)
        .await
        .map_err(|e| ca_failure(id, &e))?
    {
        est_ca::RevokeOutcome::Revoked(_) | est_ca::RevokeOutcome::AlreadyRevoked(_) => {
            Ok(Outcome::Done)
        }
        est_ca::RevokeOutcome::Unknown => Err(Failure::body_part(
            CmcFailInfo::BAD_CERT_ID,
            id,
            "no certificate with this issuer and serial number was issued here",
        )),
    }
}

/// Whether `passphrase` is the shared secret of the Identification control, or of the secret
/// the certificate was enrolled with (constant-time comparison).
pub(super) async fn passphrase_matches(
    st: &EstState,
    label: &Label,
    controls: &Controls,
    rec: &est_ca::CertRecord,
    passphrase: &[u8],
) -> Result<bool, Failure> {
    let idents = controls
        .identification
        .iter()
        .map(|(_, s)| s.as_str())
        .chain(rec.requester.strip_prefix("cmc-secret:"));
    for ident in idents {
        if let Some(s) = st
            .ca
            .cmc_secret(ident)
            .await
            .map_err(|e| ca_failure(0, &e))?
            .filter(|s| s.allowed_on(&label.cfg.name))
            && s.secret.len() == passphrase.len()
            && openssl::memcmp::eq(&s.secret, passphrase)
        {
            // The secret must be the one the certificate was enrolled with, or its
            // requester's: a secret proves nothing about other requesters' certificates.
            if rec.requester == format!("cmc-secret:{}", s.ident) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Get CRL (CMC-71): the current CRL of this label's issuing CA, in `crls`.
pub(super) async fn get_crl(
    st: &EstState,
    label: &Label,
    id: u32,
    gc: &est_cmc::controls::GetCrl,
) -> Result<Outcome, Failure> {
    let issuer = st
        .ca
        .ca_chain(&label.cfg.domain)
        .and_then(|c| c.first().map(|c| c.tbs_certificate().subject().clone()));
    if issuer.as_ref() != Some(&gc.issuer_name) {
        return Err(Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            id,
            "this label's CA does not issue CRLs for that issuerName",
        ));
    }
    let crl = st
        .ca
        .crl(&label.cfg.domain)
        .await
        .map_err(|e| ca_failure(id, &e))?
        .ok_or_else(|| Failure::body_part(CmcFailInfo::BAD_REQUEST, id, "no CRL is published"))?;
    Ok(Outcome::Crl(crl.as_ref().clone()))
}

/// Get Certificate (CMC-70): a certificate this label's CA issued, by issuer and serial.
pub(super) async fn get_cert(
    st: &EstState,
    label: &Label,
    id: u32,
    gc: &est_cmc::controls::GetCert,
) -> Result<Outcome, Failure> {
    use x509_cert::ext::pkix::name::GeneralName;
    let issuer = match &gc.issuer_name {
        GeneralName::DirectoryName(n) => n,
        _ => {
            return Err(Failure::body_part(
                CmcFailInfo::BAD_REQUEST,
                id,
                "getCert issuerName must be a directoryName",
            ));
        }
    };
    let rec = issued_here(st, label, id, issuer, &gc.serial_number).await?;
    Ok(Outcome::Issued(rec.der))
}

/// Confirm Certificate Acceptance (CMC-69): the requester of a certificate this label's CA
/// issued confirms it; anything else is badCertId.
pub(super) async fn confirm(
    st: &EstState,
    label: &Label,
    identity: &Identity,
    id: u32,
    cid: &est_cmc::controls::CmcCertId,
) -> Result<Outcome, Failure> {
    let rec = issued_here(st, label, id, &cid.issuer, &cid.serial_number).await?;
    // Its requester, or the holder of the certificate itself (a request signed with it).
    let holder =
        matches!(identity, Identity::Certificate { record: Some(r), .. } if r.serial == rec.serial);
    if !(holder || rec.requester == identity.requester()) {
        return Err(Failure::body_part(
            CmcFailInfo::BAD_CERT_ID,
            id,
            "no certificate with this issuer and serial number was issued to you here",
        ));
    }
    tracing::info!(serial = %rec.serial, requester = %rec.requester, "certificate acceptance confirmed (CMC-69)");
    Ok(Outcome::Done)
}

/// The record of a certificate this label's CA issued, named by issuer and serial number (the
/// CMCCertId / IssuerAndSerialNumber of CMC-69, CMC-70 and CMC-72); badCertId otherwise.
async fn issued_here(
    st: &EstState,
    label: &Label,
    id: u32,
    issuer: &x509_cert::name::Name,
    serial: &x509_cert::serial_number::SerialNumber,
) -> Result<est_ca::CertRecord, Failure> {
    let unknown = || {
        Failure::body_part(
            CmcFailInfo::BAD_CERT_ID,
            id,
            "no certificate with this issuer and serial number was issued here",
        )
    };
    let rec = st
        .ca
        .certificate_record(&est_ca::serial_hex(serial))
        .await
        .map_err(|e| ca_failure(id, &e))?
        .filter(|r| r.ca == label.cfg.domain)
        .ok_or_else(unknown)?;
    let cert = <Certificate as der::Decode>::from_der(&rec.der)
        .map_err(|e| Failure::body_part(CmcFailInfo::INTERNAL_CA_ERROR, id, e.to_string()))?;
    if cert.tbs_certificate().issuer() != issuer {
        return Err(unknown());
    }
    Ok(rec)
}
