//! RA-generated keys (draft-turner-cmc-serverkeygeneration-02 §2.5.1, §3.2, §3.4;
//! SKGD-34..SKGD-37, SKGD-39, SKGD-41): on an RA label with `cmc_server_keygen`, a client's
//! ServerKeyGenRequest is answered by the RA itself. It authenticates the request (the
//! signing certificate validated to the upstream CA, SKGD-41, or the label's HTTP methods),
//! applies the checks the CA would (SKGD-8, SKGD-12..SKGD-16, SKGD-44) and its users' name
//! rules, generates the key from its key pool, asks the CA to certify it in a PKIData of its
//! own (its name as subject, ChangeSubjectName with the client's: SKGD-35; the
//! ServerKeyGenRequest and the key never leave the RA), checks what the CA issued (SKGD-37),
//! and answers the client with a PKIResponse it signs (SKGD-36): the client's transactionId
//! and nonce, the RA's senderNonce, ServerKeyGenResponse, the key package it signed, the
//! issued certificate, and the CA's own response through Response Body (CMC-63, REQUIREMENTS
//! §2.14 item 10).
use der::Encode;
use est_cmc::ra_keygen;
use est_cmc::serverkeygen::SkgOids;
use est_cmc::serverkeygen::server::{self as skg, SkgFailure, SkgRequest};
use est_cmc::types::OtherStatusInfo;

use super::keygen::{Settled, settle};
use super::*;
use crate::ra::{ForwardEnroll, Upstream, UpstreamError};

/// The RA's signer of its own responses and key packages, with its chain.
struct RaSigner<'a> {
    signer: &'a (dyn est_cms::CmsSigner + Sync),
    chain: &'a [Certificate],
}

/// /fullcmc on an RA label that generates keys, for a request carrying a ServerKeyGenRequest.
pub(crate) async fn full_cmc(
    st: &EstState,
    label: &Label,
    up: &dyn Upstream,
    conn: &ConnInfo,
    http_identity: Option<Identity>,
    der: Vec<u8>,
) -> Result<Response, ServerError> {
    let (Some(oids), Some(trust), Some((signer, chain))) = (
        label.cfg.cmc.server_keygen.as_ref(),
        label.upstream_trust.as_ref(),
        up.ra_signer(),
    ) else {
        return Err(ServerError::new(
            StatusCode::NOT_IMPLEMENTED,
            "this RA label cannot generate keys: its upstream takes no RA-made CMC requests",
        ));
    };
    let ra = RaSigner { signer, chain };
    let parsed = parse(label, der, None).await?;
    let mut request = match parsed {
        Ok(r) => r,
        Err(RequestError::NotCms(why)) => return Err(ServerError::bad_request(why)),
        Err(RequestError::Cmc { failure, controls }) => {
            tracing::info!(peer = %conn.peer, reason = %failure, "CMC request refused by the RA");
            return ra.failure(&controls, &failure, oids);
        }
    };
    request
        .controls
        .take_unsupported(&oids.server_key_gen_request);
    match answer(
        st,
        label,
        up,
        conn,
        http_identity,
        &request,
        oids,
        trust,
        &ra,
    )
    .await
    {
        Ok(r) => Ok(r),
        Err(f) => {
            tracing::info!(peer = %conn.peer, reason = %f, "CMC request refused by the RA");
            ra.failure(&request.controls, &f, oids)
        }
    }
}

/// The whole request: authenticated once, then each ServerKeyGenRequest on its own.
#[allow(clippy::too_many_arguments)]
async fn answer(
    st: &EstState,
    label: &Label,
    up: &dyn Upstream,
    conn: &ConnInfo,
    http_identity: Option<Identity>,
    request: &FullPkiRequest,
    oids: &SkgOids,
    trust: &TrustStore,
    ra: &RaSigner<'_>,
) -> Result<Response, Failure> {
    let controls = &request.controls;
    if let Some(f) = controls.unsupported_failure() {
        return Err(f);
    }
    // SKGD-1: a ServerKeyGenRequest stands alone in its PKIData; nor does this path answer
    // the lifecycle controls (they are the CA's: send them in a PKIData of their own).
    let requests = skg::read_requests(&request.pki_data, oids)?;
    if !controls.query_pending.is_empty()
        || !controls.get_cert.is_empty()
        || !controls.confirm_cert_acceptance.is_empty()
        || !controls.revoke.is_empty()
        || !controls.get_crl.is_empty()
    {
        return Err(Failure::message(
            CmcFailInfo::BAD_REQUEST,
            "a ServerKeyGenRequest to this RA stands alone: send Query Pending, Get Cert, Get CRL, revocation and Confirm Certificate Acceptance in a PKIData of their own",
        ));
    }
    if !matches!(request.signer, OuterSigner::Certificate { .. }) {
        // The RA vouches for the client towards its CA: it must know who signed. A request
        // signed only by a key or MACed with a secret (SKGD-17) is the CA's to judge.
        return Err(Failure::message(
            CmcFailInfo::BAD_IDENTITY,
            "this RA generates keys for requests signed with a certificate of its CA (SKGD-41)",
        ));
    }
    // CMC-53 at the RA: a replayed request would cost a key and a certificate.
    check_replay(st, controls).await?;
    // SKGD-41: the signing certificate validates to the upstream CA.
    let (identity, _) = identify(st, trust, label, http_identity, request).await?;
    // This RA has no record of its CA's certificates: whether the signer is revoked is asked
    // of the CA (its OCSP responder, `check_revocation`), as for /simplereenroll.
    if let Identity::Certificate { cert, .. } = &identity {
        not_revoked(up, cert, 0, "the signing certificate").await?;
    }
    let who = LayerIdentity {
        identity,
        renewal: None,
        source: conn.peer.to_string(),
    };
    let mut b = ResponseBuilder::new(controls)?;
    let mut issued = Vec::new();
    let mut first_failure = None;
    for item in requests {
        let out = match item {
            Ok(r) => generate(
                st, label, up, conn, request, &who, &r, oids, trust, ra, &mut b,
            )
            .await
            .map(|c| (r.body_part_id, c)),
            Err(f) => Err(f),
        };
        match out {
            Ok((id, cert)) => {
                b.success(&[id])?;
                issued.push(cert);
            }
            Err(f) => {
                tracing::info!(reason = %f, "RA key generation refused");
                let event = est_ca::AuditEvent::new(
                    crate::handlers::unix_now(),
                    who.identity.requester(),
                    who.source.as_str(),
                    est_ca::audit_action::ENROLL_REFUSED,
                )
                .label(label.cfg.name.as_str())
                .details(format!("cmc server keygen at the RA: {f}"));
                st.ca.audit(&event).await;
                f.report(&mut b, oids)?;
                first_failure.get_or_insert(f.failure);
            }
        }
    }
    let status = match (&first_failure, issued.is_empty()) {
        (Some(f), true) => status_for(f),
        _ => StatusCode::OK,
    };
    ra.signed(&b, &issued, oids, status)
}

/// One ServerKeyGenRequest: the CA's checks, then key, certification, sealed key.
#[allow(clippy::too_many_arguments)]
async fn generate(
    st: &EstState,
    label: &Label,
    up: &dyn Upstream,
    conn: &ConnInfo,
    request: &FullPkiRequest,
    who: &LayerIdentity,
    r: &SkgRequest,
    oids: &SkgOids,
    trust: &TrustStore,
    ra: &RaSigner<'_>,
    b: &mut ResponseBuilder,
) -> Result<Certificate, SkgFailure> {
    let id = r.body_part_id;
    // The CA's checks, with the upstream CA's certificates as the anchors (SKGD-12) and this
    // RA's shared secrets (SKGD-15).
    let Settled {
        key_type,
        subject,
        san,
        plan,
        other_shroud_certificate,
    } = settle(st, label, request, who, false, r, &trust.0).await?;
    // A protecting certificate other than the signer's must be good at the CA too.
    if let Some(c) = &other_shroud_certificate {
        not_revoked(up, c, id, "the protecting certificate").await?;
    }
    let cr = &r.certificate_request;
    // The identity-level checks before the RA vouches (a certificate holder's own name).
    st.ca
        .authorize_forwarding(
            &who.identity,
            &subject,
            san.as_ref(),
            est_ca::Origin {
                source: &who.source,
                label: &label.cfg.name,
            },
        )
        .await
        .map_err(|e| ca_failure(id, &e))?;
    let key = st
        .ca
        .generate_key(key_type)
        .await
        .map_err(|e| ca_failure(id, &e))?;
    let internal = |m: String| Failure::body_part(CmcFailInfo::INTERNAL_CA_ERROR, id, m);
    let spki = key
        .public_key_to_der()
        .map_err(|e| internal(e.to_string()))?;
    // SKGD-35: the RA's own request, signed with the new key (its POP).
    let ra_subject = ra.signer.certificate().tbs_certificate().subject();
    let csr = ra_keygen::request_for_generated_key(&key, ra_subject, cr).map_err(internal)?;
    let requester = who.identity.requester();
    let answer = up
        .certify_generated(ForwardEnroll {
            label: &label.cfg.name,
            csr_der: &csr,
            requester: &requester,
            reenroll: false,
            renewing: None,
        })
        .await;
    let checked = check_answer(answer, id, &spki, cr, b);
    let outcome = match &checked {
        Ok(c) => format!(
            "RA-generated key; certified {}",
            est_ca::serial_hex(c.tbs_certificate().serial_number())
        ),
        Err(f) => format!("RA-generated key; {f}"),
    };
    crate::ra::record(st, label, conn, &requester, Operation::FullCmc, &outcome).await;
    let cert = checked?;
    // SKGD-19 with the RA as key generator (SKGD-36, SKGD-42).
    let enveloped = plan.seal(&key, ra.signer, ra.chain)?;
    // The key leaves only sealed; OpenSSL clears it on drop.
    drop(key);
    plan.add_to_response(b, oids, &enveloped, &cert)?;
    tracing::info!(
        serial = %est_ca::serial_hex(cert.tbs_certificate().serial_number()),
        requester = %requester,
        "RA-generated key certified by the CA and delivered"
    );
    Ok(cert)
}

/// SKGD-37: the CA's answer to the RA's request, as far as the client may see it. Without
/// the CA's success there is no key and no ServerKeyGenResponse; the CA's response goes back
/// through Response Body (CMC-63), except when it carries a certificate that is not the one
/// asked for, which is then not returned at all.
fn check_answer(
    answer: Result<crate::ra::CaResponse, UpstreamError>,
    id: u32,
    spki: &[u8],
    cr: &est_cmc::CertificationRequest,
    b: &mut ResponseBuilder,
) -> Result<Certificate, SkgFailure> {
    let internal = |m: String| Failure::body_part(CmcFailInfo::INTERNAL_CA_ERROR, id, m);
    let answer = answer.map_err(|e| match e {
        UpstreamError::Refused(why) | UpstreamError::Invalid(why) => {
            Failure::body_part(CmcFailInfo::BAD_REQUEST, id, why)
        }
        UpstreamError::Unavailable(why) => Failure::body_part(
            CmcFailInfo::TRY_LATER,
            id,
            format!("the CA is unavailable: {why}"),
        ),
    })?;
    match &answer.status {
        None => {}
        Some(s) if s.status == est_cmc::CmcStatus::SUCCESS => {}
        other => {
            ra_keygen::add_response_body(b, &answer.signed)?;
            let failure = match other {
                // SKGD-27 is not built for RA-generated keys: the key would have to wait at
                // the RA for the CA's operator (the CA keeps the request; docs/ra.md).
                Some(s) if s.status == est_cmc::CmcStatus::PENDING => Failure::body_part(
                    CmcFailInfo::BAD_REQUEST,
                    id,
                    "the CA holds the request for approval, and this RA does not keep generated keys waiting (SKGD-27): the CA label must approve automatically",
                ),
                Some(s) if s.status == est_cmc::CmcStatus::CONFIRM_REQUIRED => Failure::body_part(
                    CmcFailInfo::BAD_REQUEST,
                    id,
                    "the CA wants Confirm Certificate Acceptance, which this RA does not send for keys it generates: the CA label must not require confirmation (docs/ra.md)",
                ),
                Some(s) => {
                    let fail_info = match &s.other_info {
                        Some(OtherStatusInfo::FailInfo(f)) => *f,
                        _ => CmcFailInfo::BAD_REQUEST,
                    };
                    Failure::body_part(
                        fail_info,
                        id,
                        format!("the CA refused: {}", est_cmc::describe_status(s)),
                    )
                }
                None => internal("no status".into()),
            };
            return Err(failure.into());
        }
    }
    let cert = answer
        .certificates
        .iter()
        .find(|c| ra_keygen::certifies(c, spki))
        .cloned()
        .ok_or_else(|| {
            internal("the CA's success answer carries no certificate for the generated key".into())
        })?;
    // SKGD-37: a certificate that is not what was asked for is not returned (nor the CA's
    // response carrying it).
    if let Err(why) = ra_keygen::check_issued(&cert, spki, cr) {
        tracing::error!(reason = %why, "the CA's certificate does not match the RA's request; not returned (SKGD-37)");
        return Err(internal(format!(
            "the certificate the CA issued does not match the request and is not returned (SKGD-37): {why}"
        ))
        .into());
    }
    ra_keygen::add_response_body(b, &answer.signed)?;
    Ok(cert)
}

/// Whether the upstream CA says `cert` is good (OCSP, when the upstream checks revocation):
/// badIdentity when revoked or unknown, tryLater when it cannot say.
async fn not_revoked(
    up: &dyn Upstream,
    cert: &Certificate,
    id: u32,
    what: &str,
) -> Result<(), Failure> {
    let der = cert
        .to_der()
        .map_err(|e| Failure::message(CmcFailInfo::BAD_IDENTITY, e.to_string()))?;
    let at = |info: CmcFailInfo, m: String| {
        if id == 0 {
            Failure::message(info, m)
        } else {
            Failure::body_part(info, id, m)
        }
    };
    up.check_not_revoked(&der).await.map_err(|e| match e {
        UpstreamError::Unavailable(why) => at(
            CmcFailInfo::TRY_LATER,
            format!("{what}'s revocation status is unavailable: {why}"),
        ),
        UpstreamError::Refused(why) | UpstreamError::Invalid(why) => {
            at(CmcFailInfo::BAD_IDENTITY, format!("{what}: {why}"))
        }
    })
}

impl RaSigner<'_> {
    /// SKGD-36, SKGD-39: the RA's own response, signed by the RA, carrying the issued
    /// certificates and the RA's chain; with Content Hints when it carries keys (SKGD-20).
    fn signed(
        &self,
        b: &ResponseBuilder,
        issued: &[Certificate],
        oids: &SkgOids,
        status: StatusCode,
    ) -> Result<Response, Failure> {
        let internal = |m: String| Failure::message(CmcFailInfo::INTERNAL_CA_ERROR, m);
        let content = b.to_der()?;
        let hints = if b.has_control(&oids.server_key_gen_response) {
            vec![
                est_cmc::serverkeygen::key_package_content_hints()
                    .map_err(|e| internal(e.to_string()))?,
            ]
        } else {
            Vec::new()
        };
        let certs: Vec<Certificate> = issued.iter().chain(self.chain).cloned().collect();
        let signed = est_cms::sign_with(
            est_cmc::oids::CT_PKI_RESPONSE,
            &content,
            self.signer,
            &certs,
            &est_cms::SignOptions {
                signed_attributes: hints,
                ..Default::default()
            },
        )
        .map_err(|e| internal(format!("signing the RA's response: {e}")))?;
        let mut r = base64_response(CMC_RESPONSE, Bytes::from(est_proto::encode_body(&signed)));
        *r.status_mut() = status;
        Ok(r)
    }

    fn failure(
        &self,
        controls: &Controls,
        f: &Failure,
        oids: &SkgOids,
    ) -> Result<Response, ServerError> {
        let build = || -> Result<Response, Failure> {
            let mut b = ResponseBuilder::new(controls)?;
            b.failure(f)?;
            self.signed(&b, &[], oids, status_for(f))
        };
        build().map_err(|e| {
            tracing::error!(error = %e, "building the RA's CMC failure response");
            ServerError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        })
    }
}
