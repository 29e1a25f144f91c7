//! `/fullcmc` (RFC 7030 §4.3, EST-95..EST-101): a thin driver of `est-cmc`. It authenticates
//! the HTTP layer as the other operations do, lets `est-cmc` read and check the Full PKI
//! Request, asks the CA to do what it says, and answers with a signed Full PKI Response (or a
//! Simple PKI Response where CMC-4 allows it). Every CMC-level failure is a PKIResponse with
//! a CMCStatusInfoV2 (EST-99); a body that is not CMS at all gets a text reason.
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use est_ca::{CaError, CertifyRequest, Identity, RenewalTarget};
use est_cmc::{
    BodyPartReference, CertificationRequest, CmcFailInfo, Controls, Failure, FullPkiRequest,
    OuterSigner, RequestError, RequestPolicy, ResponseBuilder,
};
use est_proto::Operation;
use http::{HeaderValue, StatusCode, header};
use x509_cert::Certificate;

use crate::handlers::{CERTS_ONLY, EstState, Label, base64_response, drain, read_body};
use crate::{ConnInfo, ServerError};

const CMC_RESPONSE: &str = "application/pkcs7-mime; smime-type=CMC-response";

pub(crate) async fn full_cmc(
    st: &EstState,
    label: &Label,
    conn: &ConnInfo,
    req: Request,
) -> Result<Response, ServerError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // EST-96: application/pkcs7-mime, smime-type CMC-request or none.
    if !est_proto::content_type_matches(Operation::FullCmc, ct) {
        return Err(ServerError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type must be application/pkcs7-mime; smime-type=CMC-request, got \"{ct}\""
            ),
        ));
    }
    let (parts, mut body) = req.into_parts();
    // HTTP authentication as on every operation; a label that accepts CMC-level
    // authentication (a signing certificate, an identity proof) lets a request without HTTP
    // credentials through to be authenticated inside (RFC 7030 §3.2.3 allows either).
    let http_identity =
        match crate::auth::authenticate(st.ca.as_ref(), &st.auth, label, conn, &parts, false).await
        {
            Ok(id) => Some(id),
            Err(e)
                if label.cfg.cmc.accept_cmc_authentication
                    && e.status == StatusCode::UNAUTHORIZED
                    && !parts.headers.contains_key(header::AUTHORIZATION) =>
            {
                None
            }
            Err(e) => {
                drain(&mut body, st.limits.max_body_bytes).await;
                return Err(e);
            }
        };
    let body = read_body(st, Request::from_parts(parts, body)).await?;
    let der = est_proto::decode_body(&body)
        .map_err(|e| ServerError::bad_request(format!("body is not valid base64: {e}")))?;
    let policy = RequestPolicy {
        allow_sha1_pop: label.cfg.cmc.allow_sha1_pop,
    };
    let request = match FullPkiRequest::parse_layered(&der, policy, st.cmc_decryption.as_ref()) {
        Ok(r) => r,
        Err(RequestError::NotCms(why)) => return Err(ServerError::bad_request(why)),
        Err(RequestError::Cmc { failure, controls }) => {
            tracing::info!(peer = %conn.peer, reason = %failure, "CMC request refused");
            return failure_response(st, label, &controls, &failure);
        }
    };
    match process(st, label, conn, http_identity, &request).await {
        Ok(r) => Ok(r),
        Err(failure) => {
            tracing::info!(peer = %conn.peer, reason = %failure, "CMC request refused");
            failure_response(st, label, &request.controls, &failure)
        }
    }
}

/// What became of one body part.
enum Outcome {
    Issued(Vec<u8>),
    /// Issued, and the label wants Confirm Certificate Acceptance (CMC-69).
    IssuedUnconfirmed(Vec<u8>),
    /// Done, nothing to return but success.
    Done,
    /// A CRL to return in `crls` (CMC-71).
    Crl(Vec<u8>),
    Pending,
}

/// What the PKIData layers of one request produced.
#[derive(Default)]
struct Run {
    issued: Vec<Vec<u8>>,
    crls: Vec<Vec<u8>>,
    pending: bool,
    ok: Vec<BodyPartReference>,
    first_failure: Option<Failure>,
}

impl Run {
    fn record(
        &mut self,
        builder: &mut ResponseBuilder,
        prefix: &[u32],
        id: u32,
        outcome: Result<Outcome, Failure>,
    ) -> Result<(), Failure> {
        match outcome {
            Ok(Outcome::Issued(der)) => {
                self.issued.push(der);
                self.ok.push(at(prefix, BodyPartReference::Id(id)));
            }
            Ok(Outcome::IssuedUnconfirmed(der)) => {
                self.issued.push(der);
                builder.status(est_cmc::CmcStatusInfoV2 {
                    status: est_cmc::CmcStatus::CONFIRM_REQUIRED,
                    body_list: vec![at(prefix, BodyPartReference::Id(id))],
                    status_string: Some(
                        "issued; confirm acceptance with Confirm Certificate Acceptance (CMC-69)"
                            .into(),
                    ),
                    other_info: None,
                })?;
            }
            Ok(Outcome::Done) => self.ok.push(at(prefix, BodyPartReference::Id(id))),
            Ok(Outcome::Crl(der)) => {
                self.crls.push(der);
                self.ok.push(at(prefix, BodyPartReference::Id(id)));
            }
            Ok(Outcome::Pending) => self.pending = true,
            Err(mut f) => {
                f.body_list = f.body_list.into_iter().map(|r| at(prefix, r)).collect();
                builder.failure(&f)?;
                self.first_failure.get_or_insert(f);
            }
        }
        Ok(())
    }
}

/// `r` of the PKIData at `prefix` (cmsSequence body part IDs from the outer layer inwards), as
/// a reference from the outer layer (CMC-7).
fn at(prefix: &[u32], r: BodyPartReference) -> BodyPartReference {
    prefix
        .iter()
        .rev()
        .fold(r, |r, id| est_cmc::prefix_path(*id, r))
}

/// Who stands behind one PKIData layer.
#[derive(Clone)]
struct LayerIdentity {
    identity: Identity,
    renewal: Option<RenewalTarget>,
}

/// Runs a checked request: whole-message checks first (CMC-9, replay, identity, RA
/// authorization), then every certification request, nested PKIData (an RA's wrapping),
/// Query Pending, Get Certificate and Batch Requests. A returned failure covers the whole
/// PKIData.
async fn process(
    st: &EstState,
    label: &Label,
    conn: &ConnInfo,
    http_identity: Option<Identity>,
    request: &FullPkiRequest,
) -> Result<Response, Failure> {
    let controls = &request.controls;
    if let Some(f) = controls.unsupported_failure() {
        return Err(f);
    }
    if request.requests.is_empty()
        && request.nested.is_empty()
        && controls.query_pending.is_empty()
        && controls.get_cert.is_empty()
        && controls.confirm_cert_acceptance.is_empty()
        && controls.revoke.is_empty()
        && controls.get_crl.is_empty()
    {
        return Err(Failure::message(
            CmcFailInfo::BAD_REQUEST,
            "the PKIData carries no certification request and no control this server acts on",
        ));
    }
    check_replay(st, controls).await?;
    if matches!(request.signer, OuterSigner::Unsigned) {
        return unsigned_revocation(st, label, http_identity.as_ref(), request).await;
    }
    // Queries name held requests; a query signed by the held request's key is verified
    // with that key (the request itself carries none).
    let mut held = Vec::new();
    for (id, token) in &controls.query_pending {
        held.push((*id, find_held(st, label, *id, token).await?));
    }
    if let OuterSigner::KeyIdentifier { .. } = &request.signer {
        let (_, rec) = held.first().ok_or_else(|| {
            Failure::message(
                CmcFailInfo::BAD_MESSAGE_CHECK,
                "the signer's key identifier names no request and no certificate here",
            )
        })?;
        request.verify_outer_with_key(&rec.spki_der)?;
    }
    let (identity, renewal) = identify(st, label, http_identity, request).await?;
    tracing::debug!(peer = %conn.peer, requester = %identity.requester(), "CMC request authenticated");
    let ra = authorized_ra(label, request, &identity);
    // CMC-56: RA assertions only from an RA this label authorizes.
    let ra_only: Vec<u32> = controls
        .ra_controls()
        .into_iter()
        .chain(controls.batch_requests.iter().map(|b| b.0))
        .collect();
    if !ra && !ra_only.is_empty() {
        return Err(Failure {
            status: est_cmc::CmcStatus::FAILED,
            fail_info: CmcFailInfo::BAD_REQUEST,
            body_list: ra_only.into_iter().map(BodyPartReference::Id).collect(),
            reason: "RA controls (modCertTemplate, addExtensions, lraPOPWitness, raIdentityWitness, batchRequests) are honoured only from an id-kp-cmcRA certificate this label authorizes (CMC-56)".into(),
        });
    }
    let top = LayerIdentity { identity, renewal };
    let mut builder = ResponseBuilder::new(controls)?;
    let mut run = Run::default();
    if !controls.batch_requests.is_empty() {
        batch(st, label, request, &top, &mut builder, &mut run).await?;
        for (id, _) in &controls.batch_requests {
            run.ok.push(BodyPartReference::Id(*id));
        }
        builder.success_refs(std::mem::take(&mut run.ok))?;
        return signed_response(st, label, &builder, &[], &[], StatusCode::OK);
    }
    Box::pin(run_layer(
        st,
        label,
        request,
        &top,
        ra,
        &[],
        None,
        &mut builder,
        &mut run,
    ))
    .await?;
    for (id, rec) in held {
        let outcome = query(st, label, &top.identity, id, rec, &mut builder).await;
        run.record(&mut builder, &[], id, outcome)?;
    }
    for (id, gc) in &controls.get_cert {
        let outcome = get_cert(st, label, *id, gc).await;
        run.record(&mut builder, &[], *id, outcome)?;
    }
    for (id, cid) in &controls.confirm_cert_acceptance {
        let outcome = confirm(st, label, &top.identity, *id, cid).await;
        run.record(&mut builder, &[], *id, outcome)?;
    }
    for (id, rr) in &controls.revoke {
        let outcome = revoke(st, label, controls, Some(&top.identity), ra, *id, rr).await;
        run.record(&mut builder, &[], *id, outcome)?;
    }
    for (id, gc) in &controls.get_crl {
        let outcome = get_crl(st, label, *id, gc).await;
        run.record(&mut builder, &[], *id, outcome)?;
    }
    builder.success_refs(std::mem::take(&mut run.ok))?;
    if run.issued.is_empty() && !run.pending {
        // Nothing issued or held: a failure answer (EST-99) with every per-request status,
        // or a Full PKI Response to controls that return no certificate (CMC-69).
        let status = run
            .first_failure
            .as_ref()
            .map_or(StatusCode::OK, status_for);
        return signed_response(st, label, &builder, &[], &run.crls, status);
    }
    // CMC-4: only certificates to return and nothing else to say.
    if builder.simple_suffices()
        && run.first_failure.is_none()
        && !run.pending
        && run.crls.is_empty()
    {
        let refs: Vec<&[u8]> = run.issued.iter().map(|d| d.as_slice()).collect();
        let p7 = est_proto::certs_only_encode_der(&refs).map_err(|e| {
            Failure::message(CmcFailInfo::INTERNAL_CA_ERROR, format!("encoding: {e}"))
        })?;
        return Ok(base64_response(
            CERTS_ONLY,
            Bytes::from(est_proto::encode_body(&p7)),
        ));
    }
    // EST-100: pending is reported in-band with 200.
    signed_response(st, label, &builder, &run.issued, &run.crls, StatusCode::OK)
}

/// A SignedData without SignerInfo carrying Revocation Requests: each must carry the
/// passphrase (the shared secret) of the certificate it revokes (RFC 5272 §6.11, CMC-72).
async fn unsigned_revocation(
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
async fn revoke(
    st: &EstState,
    label: &Label,
    controls: &Controls,
    identity: Option<&Identity>,
    ra: bool,
    id: u32,
    rr: &est_cmc::controls::RevokeRequest,
) -> Result<Outcome, Failure> {
    let unknown = || {
        Failure::body_part(
            CmcFailInfo::BAD_CERT_ID,
            id,
            "no certificate with this issuer and serial number was issued here",
        )
    };
    let serial = est_ca::serial_hex(&rr.serial_number);
    let rec = st
        .ca
        .certificate_record(&serial)
        .await
        .map_err(|e| ca_failure(id, &e))?
        .filter(|r| r.ca == label.cfg.domain)
        .ok_or_else(unknown)?;
    let cert = <Certificate as der::Decode>::from_der(&rec.der)
        .map_err(|e| Failure::body_part(CmcFailInfo::INTERNAL_CA_ERROR, id, e.to_string()))?;
    if cert.tbs_certificate().issuer() != &rr.issuer_name {
        return Err(unknown());
    }
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
        est_ca::RevokeOutcome::Unknown => Err(unknown()),
    }
}

/// Whether `passphrase` is the shared secret of the Identification control, or of the secret
/// the certificate was enrolled with (constant-time comparison).
async fn passphrase_matches(
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
async fn get_crl(
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

/// CMC-53: a (transactionId, senderNonce) pair is accepted once, across restarts and nodes.
async fn check_replay(st: &EstState, controls: &Controls) -> Result<(), Failure> {
    let Some(nonce) = &controls.sender_nonce else {
        return Ok(());
    };
    let tid = match &controls.transaction_id {
        Some(t) => decimal(t.as_bytes()).map_err(|e| {
            Failure::message(CmcFailInfo::BAD_REQUEST, format!("transactionId: {e}"))
        })?,
        None => String::new(),
    };
    let fresh = st
        .ca
        .cmc_replay_fresh(&tid, nonce)
        .await
        .map_err(|e| ca_failure(0, &e))?;
    if fresh {
        Ok(())
    } else {
        Err(Failure::message(
            CmcFailInfo::BAD_REQUEST,
            "this transactionId and senderNonce were already used: a replayed request (CMC-53)",
        ))
    }
}

/// Whether the request is signed by an RA certificate of this CA that the label authorizes
/// (id-kp-cmcRA, in the store, not revoked; CMC-56).
fn authorized_ra(label: &Label, request: &FullPkiRequest, identity: &Identity) -> bool {
    let OuterSigner::Certificate { cert, .. } = &request.signer else {
        return false;
    };
    let recorded = matches!(identity, Identity::Certificate { record: Some(r), .. }
        if r.status == est_ca::CertStatus::Valid);
    recorded
        && est_ca::is_registration_authority(cert)
        && est_ca::any_glob(
            &label.cfg.cmc.authorized_ras,
            &cert.tbs_certificate().subject().to_string(),
        )
}

/// The RA controls of `outer` that address the PKIData at `target` (empty: `outer` itself;
/// `[id]`: its cmsSequence entry `id`).
struct RaEdits<'a> {
    mods: Vec<&'a est_cmc::controls::ModCertTemplate>,
    adds: Vec<&'a est_cmc::controls::AddExtensions>,
    pop_witnessed: Vec<u32>,
}

fn ra_edits<'a>(outer: &'a Controls, target: Option<u32>) -> RaEdits<'a> {
    let me = target.unwrap_or(0);
    let path_ok = |p: &[u32]| match target {
        None => p == [0] || p.is_empty(),
        Some(id) => p == [id],
    };
    RaEdits {
        mods: outer
            .mod_cert_template
            .iter()
            .map(|(_, m)| m)
            .filter(|m| path_ok(&m.pki_data_reference))
            .collect(),
        adds: outer
            .add_extensions
            .iter()
            .map(|(_, a)| a)
            .filter(|a| a.pki_data_reference == me)
            .collect(),
        pop_witnessed: outer
            .lra_pop_witness
            .iter()
            .filter(|(_, w)| w.pki_data_bodyid == me)
            .flat_map(|(_, w)| w.body_ids.iter().copied())
            .collect(),
    }
}

/// One PKIData layer: its certification requests (with the RA edits addressed to it when an
/// authorized RA sent them, CMC-59..CMC-61), then its nested PKIData.
#[allow(clippy::too_many_arguments)]
async fn run_layer(
    st: &EstState,
    label: &Label,
    request: &FullPkiRequest,
    who: &LayerIdentity,
    ra: bool,
    prefix: &[u32],
    ra_controls: Option<(&Controls, u32)>,
    builder: &mut ResponseBuilder,
    run: &mut Run,
) -> Result<(), Failure> {
    // Edits of an authorized RA: from this layer itself, or from the wrapper around it.
    let own = ra.then(|| ra_edits(&request.controls, None));
    let outer = ra_controls.map(|(c, id)| ra_edits(c, Some(id)));
    for item in &request.requests {
        let (id, outcome) = match item {
            Ok(r) => {
                let mut r = r.clone();
                let rid = r.body_part_id;
                let mut witnessed = false;
                for e in own.iter().chain(outer.iter()) {
                    for m in e.mods.iter().filter(|m| m.cert_references.contains(&rid)) {
                        r.apply_mod_cert_template(m);
                    }
                    for a in e.adds.iter().filter(|a| a.cert_references.contains(&rid)) {
                        r.apply_add_extensions(&a.extensions);
                    }
                    witnessed |= e.pop_witnessed.contains(&r.body_part_id);
                }
                let outcome = if r.ra_verified_pop && !witnessed {
                    Err(Failure::body_part(
                        CmcFailInfo::POP_FAILED,
                        r.body_part_id,
                        "raVerified POP needs an authorized RA's RA POP Witness for this request (CMC-61)",
                    ))
                } else {
                    certify(st, label, &who.identity, who.renewal.clone(), &r, builder).await
                };
                (r.body_part_id, outcome)
            }
            Err(f) => (0, Err(f.clone())),
        };
        run.record(builder, prefix, id, outcome)?;
    }
    for (id, inner) in &request.nested {
        if request
            .controls
            .batch_requests
            .iter()
            .any(|(_, l)| l.contains(id))
        {
            continue;
        }
        let mut path = prefix.to_vec();
        path.push(*id);
        let inner = match inner {
            Ok(i) => i,
            Err(f) => {
                run.record(builder, prefix, *id, Err(f.clone()))?;
                continue;
            }
        };
        let inner_who = match nested_identity(st, label, inner, who, ra).await {
            Ok(w) => w,
            Err(f) => {
                run.record(builder, &path, 0, Err(f))?;
                continue;
            }
        };
        Box::pin(run_layer(
            st,
            label,
            inner,
            &inner_who,
            false,
            &path,
            ra.then_some((&request.controls, *id)),
            builder,
            run,
        ))
        .await?;
    }
    Ok(())
}

/// Who stands behind a wrapped request: its own authentication (a signing certificate, an
/// identity proof, a MAC), else the authorized RA that wrapped it (EST-48, CMC-62).
async fn nested_identity(
    st: &EstState,
    label: &Label,
    inner: &FullPkiRequest,
    outer: &LayerIdentity,
    ra: bool,
) -> Result<LayerIdentity, Failure> {
    match identify(st, label, None, inner).await {
        Ok((identity, renewal)) => Ok(LayerIdentity { identity, renewal }),
        Err(_) if ra && matches!(inner.signer, OuterSigner::RequestKey(_)) => Ok(LayerIdentity {
            identity: outer.identity.clone(),
            renewal: None,
        }),
        Err(f) => Err(f),
    }
}

/// Batch Requests (CMC-66): each listed cmsSequence request is answered by its own signed
/// PKIResponse in cmsSequence; per-request errors stay inside their responses.
async fn batch(
    st: &EstState,
    label: &Label,
    request: &FullPkiRequest,
    who: &LayerIdentity,
    builder: &mut ResponseBuilder,
    run: &mut Run,
) -> Result<(), Failure> {
    let mut answered = Vec::new();
    for (_, list) in &request.controls.batch_requests {
        for id in list {
            let Some((_, inner)) = request.nested.iter().find(|(n, _)| n == id) else {
                run.record(
                    builder,
                    &[],
                    *id,
                    Err(Failure::body_part(
                        CmcFailInfo::BAD_REQUEST,
                        *id,
                        "batchRequests names no nested Full PKI Request with this body part ID",
                    )),
                )?;
                continue;
            };
            let der = match inner {
                Ok(inner) => batch_member(st, label, inner, who).await?,
                Err(f) => {
                    let mut b = ResponseBuilder::new(&Controls::default())?;
                    b.failure(f)?;
                    sign_pki_response(st, label, &b, &[], &[])?
                }
            };
            let rid = builder.next_body_part_id();
            builder.nested_response(rid, &der)?;
            answered.push(rid);
        }
    }
    builder.batch_responses(&answered)
}

/// One member of a batch, answered as if it had come alone (its own nonces, statuses,
/// certificates), signed.
async fn batch_member(
    st: &EstState,
    label: &Label,
    inner: &FullPkiRequest,
    who: &LayerIdentity,
) -> Result<Vec<u8>, Failure> {
    let mut b = ResponseBuilder::new(&inner.controls)?;
    let mut run = Run::default();
    let checked = async {
        if let Some(f) = inner.controls.unsupported_failure() {
            return Err(f);
        }
        check_replay(st, &inner.controls).await?;
        nested_identity(st, label, inner, who, true).await
    }
    .await;
    match checked {
        Ok(inner_who) => {
            Box::pin(run_layer(
                st,
                label,
                inner,
                &inner_who,
                false,
                &[],
                None,
                &mut b,
                &mut run,
            ))
            .await?;
            b.success_refs(std::mem::take(&mut run.ok))?;
        }
        Err(f) => b.failure(&f)?,
    }
    sign_pki_response(st, label, &b, &run.issued, &run.crls)
}

/// Get Certificate (CMC-70): a certificate this label's CA issued, by issuer and serial.
async fn get_cert(
    st: &EstState,
    label: &Label,
    id: u32,
    gc: &est_cmc::controls::GetCert,
) -> Result<Outcome, Failure> {
    use x509_cert::ext::pkix::name::GeneralName;
    let not_found = || {
        Failure::body_part(
            CmcFailInfo::BAD_CERT_ID,
            id,
            "no certificate with this issuer and serial number was issued here",
        )
    };
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
    let serial = est_ca::serial_hex(&gc.serial_number);
    let rec = st
        .ca
        .certificate_record(&serial)
        .await
        .map_err(|e| ca_failure(id, &e))?
        .filter(|r| r.ca == label.cfg.domain)
        .ok_or_else(not_found)?;
    let cert = <Certificate as der::Decode>::from_der(&rec.der)
        .map_err(|e| Failure::body_part(CmcFailInfo::INTERNAL_CA_ERROR, id, e.to_string()))?;
    if cert.tbs_certificate().issuer() != issuer {
        return Err(not_found());
    }
    Ok(Outcome::Issued(rec.der))
}

/// A held request named by a Query Pending's pendToken, re-read in full.
struct Held {
    record: est_ca::PendingRecord,
    request: CertificationRequest,
    spki_der: Vec<u8>,
}

async fn find_held(st: &EstState, label: &Label, id: u32, token: &[u8]) -> Result<Held, Failure> {
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
fn pend_time(
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

fn pend_token(rec: &est_ca::PendingRecord) -> Result<Vec<u8>, Failure> {
    hex::decode(&rec.id)
        .map_err(|e| Failure::message(CmcFailInfo::INTERNAL_CA_ERROR, e.to_string()))
}

/// Answers a held outcome: the certificate, pending with pendInfo, or the operator's refusal.
fn held_outcome(
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
        est_ca::HeldOutcome::Rejected(_) => Err(Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            id,
            "the certification request was rejected by the CA operator",
        )),
    }
}

/// Query Pending (CMC-64): only the requester of the held request may ask about it.
async fn query(
    st: &EstState,
    label: &Label,
    identity: &Identity,
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
            },
        )
        .await
        .map_err(|e| ca_failure(id, &e))?;
    held_outcome(outcome, id, label, builder)
}

/// The decimal form of a DER INTEGER's content octets (two's complement).
fn decimal(twos: &[u8]) -> Result<String, openssl::error::ErrorStack> {
    let negative = twos.first().is_some_and(|b| b & 0x80 != 0);
    if !negative {
        return Ok(openssl::bn::BigNum::from_slice(twos)?
            .to_dec_str()?
            .to_string());
    }
    // Magnitude of a negative value: invert and add one.
    let inverted: Vec<u8> = twos.iter().map(|b| !b).collect();
    let mut m = openssl::bn::BigNum::from_slice(&inverted)?;
    m.add_word(1)?;
    Ok(format!("-{}", m.to_dec_str()?))
}

/// Who is asking, from the outer signature, the identity proof and the HTTP layer
/// (CMC-21, CMC-43..CMC-49).
async fn identify(
    st: &EstState,
    label: &Label,
    http_identity: Option<Identity>,
    request: &FullPkiRequest,
) -> Result<(Identity, Option<RenewalTarget>), Failure> {
    let controls = &request.controls;
    // A shared secret named by Identification: identity proof and POP linking use it.
    let secret = match &controls.identification {
        Some((id, ident))
            if request.has_identity_proof()
                || controls.pop_link_random.is_some()
                || matches!(request.signer, OuterSigner::SharedSecretMac) =>
        {
            let found = st
                .ca
                .cmc_secret(ident)
                .await
                .map_err(|e| ca_failure(*id, &e))?;
            // Unknown ident and a secret for another label look alike (no oracle).
            match found.filter(|s| s.allowed_on(&label.cfg.name)) {
                Some(s) => Some(s),
                None => {
                    return Err(Failure::body_part(
                        CmcFailInfo::BAD_IDENTITY,
                        *id,
                        "no shared secret is provisioned for this Identification on this label",
                    ));
                }
            }
        }
        _ => None,
    };
    if matches!(request.signer, OuterSigner::SharedSecretMac) {
        // CMC-18: the MAC proves the secret before anything inside is trusted.
        let s = secret.as_ref().ok_or_else(|| {
            Failure::message(
                CmcFailInfo::BAD_MESSAGE_CHECK,
                "no shared secret for the MAC",
            )
        })?;
        request.verify_mac(&s.secret)?;
    }
    if request.has_identity_proof() {
        let s = secret.as_ref().ok_or_else(|| {
            Failure::message(
                CmcFailInfo::BAD_IDENTITY,
                "an identity proof needs the Identification control to find its shared secret (CMC-46)",
            )
        })?;
        request.verify_identity_proof(&s.secret)?;
    }
    if controls.pop_link_random.is_some() {
        let s = secret.as_ref().ok_or_else(|| {
            Failure::message(
                CmcFailInfo::BAD_IDENTITY,
                "POP Link Random needs the Identification control to find its shared secret",
            )
        })?;
        request.verify_pop_link(&s.secret)?;
    }
    match &request.signer {
        OuterSigner::Unsigned => Err(Failure::message(
            CmcFailInfo::BAD_MESSAGE_CHECK,
            "the request is not signed: only a Revocation Request with its passphrase may be (CMC-16, CMC-72)",
        )),
        OuterSigner::Certificate { cert, pool } => {
            // CMC-21: signed with an existing certificate of ours.
            est_cms::validate_chain(&st.cmc_trust.0, cert, pool).map_err(|e| {
                Failure::message(
                    CmcFailInfo::BAD_IDENTITY,
                    format!("the signing certificate is not one of this CA's: {e}"),
                )
            })?;
            let id = st
                .ca
                .certificate_identity((**cert).clone())
                .await
                .map_err(|e| ca_failure(0, &e))?;
            // EST-48: an RA certificate asks for others; any other signer renews itself.
            if est_ca::is_registration_authority(cert) {
                Ok((id, None))
            } else {
                Ok((id, Some(RenewalTarget::ClientCertificate)))
            }
        }
        OuterSigner::RequestKey(_)
        | OuterSigner::KeyIdentifier { .. }
        | OuterSigner::SharedSecretMac => {
            if let Some(id) = http_identity {
                return Ok((id, None));
            }
            match secret {
                Some(s)
                    if request.has_identity_proof()
                        || matches!(request.signer, OuterSigner::SharedSecretMac) =>
                {
                    Ok((
                        Identity::SharedSecret {
                            ident: s.ident.clone(),
                            subject: s.subject.clone(),
                        },
                        None,
                    ))
                }
                _ => Err(Failure::message(
                    CmcFailInfo::BAD_IDENTITY,
                    "the request is signed only by its own key and carries no identity proof: authenticate with HTTP credentials, a TLS client certificate or Identity Proof V2",
                )),
            }
        }
    }
}

/// One certification request through the label policy and the CA; on a label with manual
/// approval an initial request is held (pending with pendInfo, EST-100).
async fn certify(
    st: &EstState,
    label: &Label,
    identity: &Identity,
    renewal: Option<RenewalTarget>,
    r: &CertificationRequest,
    builder: &mut ResponseBuilder,
) -> Result<Outcome, Failure> {
    let id = r.body_part_id;
    if r.change_subject_name.is_some() && renewal.is_some() {
        return Err(Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            id,
            "ChangeSubjectName on a renewal is not supported: enroll the new name",
        ));
    }
    let (subject, san) = r.effective_names();
    let names = est_ca::RequestedNames::from_request(&subject, san.as_ref())
        .map_err(|e| ca_failure(id, &e))?;
    // EST-47: the label's own policy, as for /simpleenroll.
    label
        .cfg
        .policy
        .authorize(identity, &names)
        .map_err(|e| ca_failure(id, &e))?;
    let req = CertifyRequest {
        domain: &label.cfg.domain,
        identity,
        renewal,
        subject: &subject,
        san: san.as_ref(),
        spki: &r.spki,
    };
    if label.cfg.approval != crate::Approval::Automatic && req.renewal.is_none() {
        let outcome = st
            .ca
            .certify_with_approval(req, &label.cfg.name, &r.request_der)
            .await
            .map_err(|e| ca_failure(id, &e))?;
        return held_outcome(outcome, id, label, builder);
    }
    let issued = st.ca.certify(req).await.map_err(|e| ca_failure(id, &e))?;
    if label.cfg.cmc.confirm_required {
        return Ok(Outcome::IssuedUnconfirmed(issued.der));
    }
    Ok(Outcome::Issued(issued.der))
}

/// Confirm Certificate Acceptance (CMC-69): the requester of a certificate this label's CA
/// issued confirms it; anything else is badCertId.
async fn confirm(
    st: &EstState,
    label: &Label,
    identity: &Identity,
    id: u32,
    cid: &est_cmc::controls::CmcCertId,
) -> Result<Outcome, Failure> {
    let unknown = || {
        Failure::body_part(
            CmcFailInfo::BAD_CERT_ID,
            id,
            "no certificate with this issuer and serial number was issued to you here",
        )
    };
    let rec = st
        .ca
        .certificate_record(&est_ca::serial_hex(&cid.serial_number))
        .await
        .map_err(|e| ca_failure(id, &e))?
        .filter(|r| r.ca == label.cfg.domain)
        .ok_or_else(unknown)?;
    let cert = <Certificate as der::Decode>::from_der(&rec.der)
        .map_err(|e| Failure::body_part(CmcFailInfo::INTERNAL_CA_ERROR, id, e.to_string()))?;
    // Its requester, or the holder of the certificate itself (a request signed with it).
    let holder =
        matches!(identity, Identity::Certificate { record: Some(r), .. } if r.serial == rec.serial);
    if cert.tbs_certificate().issuer() != &cid.issuer
        || !(holder || rec.requester == identity.requester())
    {
        return Err(unknown());
    }
    tracing::info!(serial = %rec.serial, requester = %rec.requester, "certificate acceptance confirmed (CMC-69)");
    Ok(Outcome::Done)
}

/// The CMCFailInfo of a CA refusal (CMC-39), with its reason.
fn ca_failure(id: u32, e: &CaError) -> Failure {
    let info = match e {
        CaError::MalformedRequest(_) | CaError::SubjectMismatch(_) => CmcFailInfo::BAD_REQUEST,
        CaError::BadCsrSignature => CmcFailInfo::POP_FAILED,
        CaError::KeyNotAllowed(_) => CmcFailInfo::BAD_ALG,
        CaError::NameNotAllowed(_) | CaError::NotAuthorized(_) => CmcFailInfo::BAD_IDENTITY,
        CaError::NoRenewalTarget(_) => CmcFailInfo::BAD_CERT_ID,
        CaError::KeyReuse => CmcFailInfo::NO_KEY_REUSE,
        CaError::Store(_) => CmcFailInfo::TRY_LATER,
        _ => CmcFailInfo::INTERNAL_CA_ERROR,
    };
    let reason = match e {
        CaError::Store(inner) => {
            tracing::error!(error = %inner, "store failure");
            "the certificate store is unavailable; try again later".to_string()
        }
        CaError::Key(_) | CaError::Internal(_) => {
            tracing::error!(error = %e, "CA failure");
            "internal CA error".to_string()
        }
        other => other.to_string(),
    };
    Failure::body_part(info, id, reason)
}

/// EST-99: 4xx for what the client can fix, 503 for tryLater, 500 for the CA's own failures.
fn status_for(f: &Failure) -> StatusCode {
    match f.fail_info {
        CmcFailInfo::INTERNAL_CA_ERROR => StatusCode::INTERNAL_SERVER_ERROR,
        CmcFailInfo::TRY_LATER => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn failure_response(
    st: &EstState,
    label: &Label,
    controls: &Controls,
    f: &Failure,
) -> Result<Response, ServerError> {
    let build = || -> Result<Response, Failure> {
        let mut b = ResponseBuilder::new(controls)?;
        b.failure(f)?;
        signed_response(st, label, &b, &[], &[], status_for(f))
    };
    build().map_err(|e| {
        tracing::error!(error = %e, "building a CMC failure response");
        ServerError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal CA error")
    })
}

/// SignedData(PKIResponse) signed by the label's issuing CA, with the issued certificates and
/// the CA chain in `certificates` (CMC-26, CMC-27).
fn signed_response(
    st: &EstState,
    label: &Label,
    b: &ResponseBuilder,
    issued: &[Vec<u8>],
    crls: &[Vec<u8>],
    status: StatusCode,
) -> Result<Response, Failure> {
    let signed = sign_pki_response(st, label, b, issued, crls)?;
    let mut r = base64_response(CMC_RESPONSE, Bytes::from(est_proto::encode_body(&signed)));
    *r.status_mut() = status;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
    }
    Ok(r)
}

/// DER ContentInfo(SignedData(PKIResponse)) signed by the label's issuing CA.
fn sign_pki_response(
    st: &EstState,
    label: &Label,
    b: &ResponseBuilder,
    issued: &[Vec<u8>],
    crls: &[Vec<u8>],
) -> Result<Vec<u8>, Failure> {
    let internal = |m: String| Failure::message(CmcFailInfo::INTERNAL_CA_ERROR, m);
    let content = b.to_der()?;
    let mut certs: Vec<Certificate> = Vec::new();
    for d in issued {
        certs.push(<Certificate as der::Decode>::from_der(d).map_err(|e| internal(e.to_string()))?);
    }
    st.ca
        .sign_cmc_response(&label.cfg.domain, &content, &certs, crls)
        .map_err(|e| internal(e.to_string()))
}

impl From<Failure> for ServerError {
    fn from(f: Failure) -> Self {
        ServerError::bad_request(f.reason)
    }
}

/// An OpenSSL trust store (Debug without its contents).
pub(crate) struct TrustStore(pub(crate) openssl::x509::store::X509Store);

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrustStore")
    }
}

/// The explicit trust anchors for certificates that sign CMC requests: this server's CAs.
pub(crate) fn trust_store(chains: &[Vec<Certificate>]) -> Result<TrustStore, String> {
    use der::Encode;
    let mut b = openssl::x509::store::X509StoreBuilder::new().map_err(|e| e.to_string())?;
    let mut seen = std::collections::HashSet::new();
    for c in chains.iter().flatten() {
        let d = c.to_der().map_err(|e| e.to_string())?;
        if seen.insert(d.clone()) {
            let x = openssl::x509::X509::from_der(&d).map_err(|e| e.to_string())?;
            b.add_cert(x).map_err(|e| e.to_string())?;
        }
    }
    Ok(TrustStore(b.build()))
}
