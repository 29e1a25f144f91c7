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

use crate::handlers::{CERTS_ONLY, EstState, Label, base64_response};
use crate::{ConnInfo, ServerError};

mod held;
mod keygen;
mod layers;
mod lifecycle;
mod ra_keygen;

pub(crate) use ra_keygen::full_cmc as ra_generated_key;

use held::{find_held, held_outcome, query};
use layers::{batch, run_layer};
use lifecycle::{confirm, get_cert, get_crl, revoke, unsigned_revocation};

const CMC_RESPONSE: &str = "application/pkcs7-mime; smime-type=CMC-response";

pub(crate) async fn full_cmc(
    st: &EstState,
    label: &Label,
    conn: &ConnInfo,
    req: Request,
) -> Result<Response, ServerError> {
    let (http_identity, der) = read_request(st, label, conn, req).await?;
    let parsed = parse(label, der, st.cmc_decryption.clone()).await?;
    let mut request = match parsed {
        Ok(r) => r,
        Err(RequestError::NotCms(why)) => return Err(ServerError::bad_request(why)),
        Err(RequestError::Cmc { failure, controls }) => {
            tracing::info!(peer = %conn.peer, reason = %failure, "CMC request refused");
            return failure_response(st, label, &controls, &failure);
        }
    };
    // The draft's control is one this label acts on (SKGD-1), not an unsupported one (CMC-9).
    if let Some(oids) = &label.cfg.cmc.server_keygen {
        request
            .controls
            .take_unsupported(&oids.server_key_gen_request);
    }
    match process(st, label, conn, http_identity, &request).await {
        Ok(r) => Ok(r),
        Err(failure) => {
            tracing::info!(peer = %conn.peer, reason = %failure, "CMC request refused");
            failure_response(st, label, &request.controls, &failure)
        }
    }
}

/// Reads and checks a Full PKI Request with the label's POP policy, opening EnvelopedData
/// with `decryption` (CMC-20). Signature checks, RSA decryption and POP verification are CPU
/// work: off the runtime's worker threads (measured: checking even a small SignedData inline
/// on the worker cost keep-alive /fullcmc 5-10% of its throughput, docs/performance.md).
pub(super) async fn parse(
    label: &Label,
    der: Vec<u8>,
    decryption: Option<std::sync::Arc<est_cms::RecipientSecret>>,
) -> Result<Result<FullPkiRequest, RequestError>, ServerError> {
    let policy = RequestPolicy {
        allow_sha1_pop: label.cfg.cmc.allow_sha1_pop,
    };
    tokio::task::spawn_blocking(move || {
        FullPkiRequest::parse_layered(&der, policy, decryption.as_deref())
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "CMC parse task");
        ServerError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    })
}

/// The HTTP side of a /fullcmc request, for a CA label and an RA label alike: the media type
/// (EST-96), HTTP authentication as on every operation (a label that accepts CMC-level
/// authentication, a signing certificate or an identity proof, lets a request without HTTP
/// credentials through to be authenticated inside: RFC 7030 §3.2.3 allows either), and the
/// body, base64-decoded.
pub(crate) async fn read_request(
    st: &EstState,
    label: &Label,
    conn: &ConnInfo,
    req: Request,
) -> Result<(Option<Identity>, Vec<u8>), ServerError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !est_proto::content_type_matches(Operation::FullCmc, ct) {
        return Err(ServerError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type must be application/pkcs7-mime; smime-type=CMC-request, got \"{ct}\""
            ),
        ));
    }
    crate::handlers::authenticated_body(
        st,
        label,
        conn,
        req,
        false,
        label.cfg.cmc.accept_cmc_authentication,
    )
    .await
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
    /// popRequired with this Encrypted POP challenge (CMC-67).
    PopRequired(Box<est_cmc::controls::EncryptedPop>),
    /// The replay record claimed with the certificate was seen before (CMC-53): the whole
    /// request fails.
    Replayed,
}

/// What the PKIData layers of one request produced.
#[derive(Default)]
struct Run {
    issued: Vec<Vec<u8>>,
    crls: Vec<Vec<u8>>,
    pending: bool,
    ok: Vec<BodyPartReference>,
    first_failure: Option<Failure>,
    /// The request's replay record, claimed with its first certificate (CMC-53, see
    /// [`replay_claim`]).
    replay: Option<std::sync::Arc<est_ca::ReplayClaim>>,
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
            Ok(Outcome::Replayed) => return Err(replay_failure()),
            Ok(Outcome::PopRequired(challenge)) => {
                builder.pop_required(at(prefix, BodyPartReference::Id(id)), &challenge)?;
                // Answered in-band with 200, as pending is (EST-100).
                self.pending = true;
            }
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
    /// The peer address of the connection, for the audit trail (issue 11 item 4).
    source: String,
}

/// Runs a checked request (see [`process_checked`]) with its replay check (CMC-53): up front,
/// or, for a request that only asks for certificates issued at once, with its first
/// certificate's commit ([`replay_claim`]). When no certificate claimed the pair, nothing
/// with a side effect happened; the pair is recorded before the answer all the same, and a
/// replay is answered as one.
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
    let claim = replay_claim(label, request, http_identity.as_ref())?.map(std::sync::Arc::new);
    if claim.is_none() {
        check_replay(st, controls).await?;
    }
    let result = process_checked(st, label, conn, http_identity, request, claim.clone()).await;
    if let Some(claim) = claim
        && !claim.is_claimed()
    {
        check_replay(st, controls).await?;
    }
    result
}

/// Runs a request whose replay check is done or claimed: whole-message checks first (CMC-9,
/// identity, RA authorization), then every certification request, nested PKIData (an RA's
/// wrapping), Query Pending, Get Certificate and Batch Requests. A returned failure covers the
/// whole PKIData.
async fn process_checked(
    st: &EstState,
    label: &Label,
    conn: &ConnInfo,
    http_identity: Option<Identity>,
    request: &FullPkiRequest,
    claim: Option<std::sync::Arc<est_ca::ReplayClaim>>,
) -> Result<Response, Failure> {
    let controls = &request.controls;
    if request.requests.is_empty()
        && request.nested.is_empty()
        && controls.query_pending.is_empty()
        && controls.get_cert.is_empty()
        && controls.confirm_cert_acceptance.is_empty()
        && controls.revoke.is_empty()
        && controls.get_crl.is_empty()
        && !keygen::has_requests(label, &request.pki_data)
    {
        return Err(Failure::message(
            CmcFailInfo::BAD_REQUEST,
            "the PKIData carries no certification request and no control this server acts on",
        ));
    }
    // SKGD-1: read (and a mixed PKIData refused) before anything has a side effect.
    let skg_requests = keygen::read(label, request)?;
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
    let (identity, renewal) = identify(st, &st.cmc_trust, label, http_identity, request).await?;
    tracing::debug!(peer = %conn.peer, requester = %identity.requester(), "CMC request authenticated");
    // CMC-56: an RA certificate (as signer or as the TLS client) speaks for others only on a
    // label that authorizes it.
    if is_ra_identity(&identity) && !crate::handlers::ra_authorized(label, &identity) {
        return Err(Failure::message(
            CmcFailInfo::BAD_IDENTITY,
            "this RA certificate is not authorized on this CA label (CMC-56): the label's cmc_ras must list its subject",
        ));
    }
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
    let top = LayerIdentity {
        identity,
        renewal,
        source: conn.peer.to_string(),
    };
    let mut builder = ResponseBuilder::new(controls)?;
    let mut run = Run {
        replay: claim,
        ..Run::default()
    };
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
    keygen::run(
        st,
        label,
        request,
        skg_requests,
        &top,
        ra,
        &mut builder,
        &mut run,
    )
    .await?;
    for (id, rec) in held {
        let outcome = query(st, label, &top.identity, &top.source, id, rec, &mut builder).await;
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

/// CMC-53: a (transactionId, senderNonce) pair is accepted once, across restarts and nodes.
async fn check_replay(st: &EstState, controls: &Controls) -> Result<(), Failure> {
    let Some(nonce) = &controls.sender_nonce else {
        return Ok(());
    };
    let tid = transaction_id_decimal(controls)?;
    let fresh = st
        .ca
        .cmc_replay_fresh(&tid, nonce)
        .await
        .map_err(|e| ca_failure(0, &e))?;
    if fresh { Ok(()) } else { Err(replay_failure()) }
}

fn replay_failure() -> Failure {
    Failure::message(
        CmcFailInfo::BAD_REQUEST,
        "this transactionId and senderNonce were already used: a replayed request (CMC-53)",
    )
}

/// CMC-53: the replay record of a request that only asks for certificates issued at once
/// rides in the commit of its first certificate, so that the request waits for one durable
/// commit instead of two (docs/performance.md). Anything else (held requests, revocation,
/// queries, nested or batched PKIData, Encrypted POP, unsigned requests) records the pair
/// before it starts, and so does a request that authenticates with a one-time token (the
/// token is spent when the certificate is authorized, a side effect a replay must not have).
/// `None` also for a request without a senderNonce.
fn replay_claim(
    label: &Label,
    request: &FullPkiRequest,
    http_identity: Option<&Identity>,
) -> Result<Option<est_ca::ReplayClaim>, Failure> {
    let controls = &request.controls;
    let Some(nonce) = &controls.sender_nonce else {
        return Ok(None);
    };
    let only_issuance = label.cfg.approval == crate::Approval::Automatic
        && !matches!(http_identity, Some(Identity::Token { .. }))
        && !matches!(request.signer, OuterSigner::Unsigned)
        && !request.requests.is_empty()
        && request
            .requests
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| !r.encrypted_pop))
        && request.nested.is_empty()
        && controls.batch_requests.is_empty()
        && controls.query_pending.is_empty()
        && controls.get_cert.is_empty()
        && controls.confirm_cert_acceptance.is_empty()
        && controls.revoke.is_empty()
        && controls.get_crl.is_empty();
    if !only_issuance {
        return Ok(None);
    }
    let tid = transaction_id_decimal(controls)?;
    est_ca::ReplayClaim::new(&tid, nonce)
        .map(Some)
        .map_err(|e| ca_failure(0, &e))
}

fn transaction_id_decimal(controls: &Controls) -> Result<String, Failure> {
    match &controls.transaction_id {
        Some(t) => decimal(t.as_bytes())
            .map_err(|e| Failure::message(CmcFailInfo::BAD_REQUEST, format!("transactionId: {e}"))),
        None => Ok(String::new()),
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
        && est_ca::any_dn_glob(
            &label.cfg.cmc.authorized_ras,
            &cert.tbs_certificate().subject().to_string(),
        )
}

/// CMC-56 at every layer: an RA certificate the label does not authorize (a nested or batched
/// PKIData signed by it, or its TLS identity) may ask for its own subject only, as any
/// certificate holder.
pub(super) fn check_ra_layer(
    label: &Label,
    identity: &Identity,
    id: u32,
    subject: &x509_cert::name::Name,
) -> Result<(), Failure> {
    match identity {
        Identity::Certificate { cert, .. }
            if is_ra_identity(identity)
                && !crate::handlers::ra_authorized(label, identity)
                && cert.tbs_certificate().subject() != subject =>
        {
            Err(Failure::body_part(
                CmcFailInfo::BAD_IDENTITY,
                id,
                "this RA certificate is not authorized on this CA label (CMC-56): the label's cmc_ras must list its subject",
            ))
        }
        _ => Ok(()),
    }
}

/// An identity by a recorded, valid id-kp-cmcRA certificate of this CA (EST-48).
pub(super) fn is_ra_identity(identity: &Identity) -> bool {
    matches!(identity, Identity::Certificate { cert, record: Some(r) }
        if r.status == est_ca::CertStatus::Valid && est_ca::is_registration_authority(cert))
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
    trust: &TrustStore,
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
            trust.validate(cert, pool).map_err(|e| {
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
    who: &LayerIdentity,
    r: &CertificationRequest,
    replay: Option<&est_ca::ReplayClaim>,
    builder: &mut ResponseBuilder,
) -> Result<Outcome, Failure> {
    let (identity, renewal) = (&who.identity, who.renewal.clone());
    let id = r.body_part_id;
    if r.change_subject_name.is_some() && renewal.is_some() {
        return Err(Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            id,
            "ChangeSubjectName on a renewal is not supported: enroll the new name",
        ));
    }
    let (subject, san) = r.effective_names();
    check_ra_layer(label, identity, id, &subject)?;
    let names = est_ca::RequestedNames::from_request(&subject, san.as_ref())
        .map_err(|e| ca_failure(id, &e))?;
    // EST-47: the label's own policy, as for /simpleenroll (a refusal is audited).
    if let Err(e) = label.cfg.policy.authorize(identity, &names) {
        let event = est_ca::AuditEvent::new(
            crate::handlers::unix_now(),
            identity.requester(),
            who.source.as_str(),
            est_ca::audit_action::ENROLL_REFUSED,
        )
        .target(subject.to_string())
        .label(label.cfg.name.as_str())
        .details(format!("cmc; label policy (EST-47): {e}"));
        st.ca.audit(&event).await;
        return Err(ca_failure(id, &e));
    }
    let req = CertifyRequest {
        domain: &label.cfg.domain,
        identity,
        renewal,
        subject: &subject,
        san: san.as_ref(),
        spki: &r.spki,
        replay,
        origin: est_ca::Origin {
            source: &who.source,
            label: &label.cfg.name,
        },
    };
    if label.cfg.approval != crate::Approval::Automatic && req.renewal.is_none() {
        let outcome = st
            .ca
            .certify_with_approval(req, &label.cfg.name, &r.request_der)
            .await
            .map_err(|e| ca_failure(id, &e))?;
        return held_outcome(outcome, id, label, builder);
    }
    let issued = match st.ca.certify(req).await {
        Ok(issued) => issued,
        Err(CaError::Replayed) => return Ok(Outcome::Replayed),
        Err(e) => return Err(ca_failure(id, &e)),
    };
    if label.cfg.cmc.confirm_required {
        return Ok(Outcome::IssuedUnconfirmed(issued.der));
    }
    Ok(Outcome::Issued(issued.der))
}

/// The CMCFailInfo of a CA refusal (CMC-39), with its reason.
fn ca_failure(id: u32, e: &CaError) -> Failure {
    let info = match e {
        CaError::MalformedRequest(_)
        | CaError::InvalidName(_)
        | CaError::SubjectMismatch(_)
        | CaError::Replayed => CmcFailInfo::BAD_REQUEST,
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
    // SKGD-20: a response carrying server-generated keys names the innermost content type.
    let hints = match &label.cfg.cmc.server_keygen {
        Some(oids) if b.has_control(&oids.server_key_gen_response) => {
            vec![
                est_cmc::serverkeygen::key_package_content_hints()
                    .map_err(|e| internal(e.to_string()))?,
            ]
        }
        _ => Vec::new(),
    };
    st.ca
        .sign_cmc_response(&label.cfg.domain, &content, issued, crls, &hints)
        .map_err(|e| internal(e.to_string()))
}

impl From<Failure> for ServerError {
    fn from(f: Failure) -> Self {
        ServerError::bad_request(f.reason)
    }
}

/// An OpenSSL trust store (Debug without its contents), with the signing certificates it
/// validated lately.
pub(crate) struct TrustStore(
    pub(crate) openssl::x509::store::X509Store,
    std::sync::Mutex<std::collections::HashMap<[u8; 32], std::time::Instant>>,
);

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrustStore")
    }
}

/// How long a validated signing certificate is taken without building its path again.
const VALIDATED_FOR: std::time::Duration = std::time::Duration::from_secs(60);
/// Validated certificates remembered at most (the map starts over beyond it).
const VALIDATED_MAX: usize = 4096;

impl TrustStore {
    /// [`est_cms::validate_chain`] of a CMC signing certificate, remembered for a minute (at
    /// most until its notAfter): an RA signs every request with the same certificate, and
    /// building its path through OpenSSL 3's decoders was a quarter of the CA's CPU per RA
    /// request. Revocation is not cached: it is the store's record, read per request.
    pub(crate) fn validate(
        &self,
        cert: &Certificate,
        pool: &[Certificate],
    ) -> Result<(), est_cms::CmsError> {
        use der::Encode;
        let now = std::time::Instant::now();
        let key = cert.to_der().ok().map(|d| openssl::sha::sha256(&d));
        if let Some(k) = &key
            && let Ok(m) = self.1.lock()
            && m.get(k).is_some_and(|until| now < *until)
        {
            return Ok(());
        }
        est_cms::validate_chain(&self.0, cert, pool)?;
        let left = cert
            .tbs_certificate()
            .validity()
            .not_after
            .to_system_time()
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        if let (Some(k), Ok(mut m)) = (key, self.1.lock()) {
            if m.len() >= VALIDATED_MAX {
                m.clear();
            }
            m.insert(k, now + left.min(VALIDATED_FOR));
        }
        Ok(())
    }
}

/// The explicit trust anchors for certificates that sign CMC requests: this server's CAs.
pub(crate) fn trust_store(chains: &[Vec<Certificate>]) -> Result<TrustStore, String> {
    use der::Encode;
    let mut b = openssl::x509::store::X509StoreBuilder::new().map_err(|e| e.to_string())?;
    // Every certificate here is one of this server's CAs, so each is a trust anchor on its
    // own: a chain stops at the issuing CA instead of verifying its signature by the root on
    // every request.
    b.set_flags(openssl::x509::verify::X509VerifyFlags::PARTIAL_CHAIN)
        .map_err(|e| e.to_string())?;
    let mut seen = std::collections::HashSet::new();
    for c in chains.iter().flatten() {
        let d = c.to_der().map_err(|e| e.to_string())?;
        if seen.insert(d.clone()) {
            let x = openssl::x509::X509::from_der(&d).map_err(|e| e.to_string())?;
            b.add_cert(x).map_err(|e| e.to_string())?;
        }
    }
    Ok(TrustStore(b.build(), Default::default()))
}
