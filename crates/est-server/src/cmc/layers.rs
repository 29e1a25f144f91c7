//! The layers of a /fullcmc request: certification requests with the edits of an authorized
//! RA (CMC-59..CMC-61), nested PKIData (RA wrapping, CMC-57) and Batch Requests (CMC-66).
use super::*;

/// The RA controls of `outer` that address the PKIData at `target` (empty: `outer` itself;
/// `[id]`: its cmsSequence entry `id`).
pub(super) struct RaEdits<'a> {
    mods: Vec<&'a est_cmc::controls::ModCertTemplate>,
    adds: Vec<&'a est_cmc::controls::AddExtensions>,
    pop_witnessed: Vec<u32>,
}

pub(super) fn ra_edits<'a>(outer: &'a Controls, target: Option<u32>) -> RaEdits<'a> {
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
pub(super) async fn run_layer(
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
    // An authorized RA's own requests that renew a client's certificate (its regInfo).
    let renewals = if ra {
        est_cmc::ra::vouched_renewals(&request.controls.reg_info)
    } else {
        Vec::new()
    };
    for item in &request.requests {
        let (id, outcome) = match item {
            Ok(r) => {
                let mut r = r.clone();
                let rid = r.body_part_id;
                let mut witnessed = false;
                let mut edited = Ok(());
                for e in own.iter().chain(outer.iter()) {
                    for m in e.mods.iter().filter(|m| m.cert_references.contains(&rid)) {
                        edited = edited.and_then(|()| r.apply_mod_cert_template(m));
                    }
                    for a in e.adds.iter().filter(|a| a.cert_references.contains(&rid)) {
                        edited = edited.and_then(|()| r.apply_add_extensions(&a.extensions));
                    }
                    witnessed |= e.pop_witnessed.contains(&r.body_part_id);
                }
                let outcome = if let Err(f) = edited {
                    Err(f)
                } else if r.ra_verified_pop && !witnessed {
                    Err(Failure::body_part(
                        CmcFailInfo::POP_FAILED,
                        r.body_part_id,
                        "raVerified POP needs an authorized RA's RA POP Witness for this request (CMC-61)",
                    ))
                } else if r.encrypted_pop {
                    encrypted_pop(st, label, request, who, &r, builder).await
                } else {
                    let replay = run.replay.clone();
                    match renewals.iter().find(|(id, _)| *id == rid) {
                        // EST-84..EST-86: a renewal the RA checked (the client authenticated
                        // with the certificate at the RA): the same names, the key reuse
                        // policy, and not held for approval, as a renewal sent here directly.
                        Some((_, old)) => {
                            let vouched = LayerIdentity {
                                renewal: Some(RenewalTarget::Vouched {
                                    serial: est_ca::serial_hex(&old.serial_number),
                                    issuer: old.issuer.to_string(),
                                }),
                                ..who.clone()
                            };
                            certify(st, label, &vouched, &r, replay.as_deref(), builder).await
                        }
                        None => certify(st, label, who, &r, replay.as_deref(), builder).await,
                    }
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

/// CMC-67: a request whose key cannot sign. Without a Decrypted POP for it, the answer is
/// popRequired with an Encrypted POP challenge; with one, the certificate is issued only if
/// it matches the POP proof value of this request (RFC 5272 §6.7 step 5: no match, no
/// certificate).
async fn encrypted_pop(
    st: &EstState,
    label: &Label,
    request: &FullPkiRequest,
    who: &LayerIdentity,
    r: &est_cmc::CertificationRequest,
    builder: &mut ResponseBuilder,
) -> Result<Outcome, Failure> {
    let id = r.body_part_id;
    let values = st
        .ca
        .encrypted_pop_values(&r.request_der)
        .map_err(|e| ca_failure(id, &e))?;
    let answers: Vec<&est_cmc::controls::DecryptedPop> = request
        .controls
        .decrypted_pop
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d.body_part_id == id)
        .collect();
    if answers.is_empty() {
        let tagged = <est_cmc::crmf::CertReqMsg as der::Decode>::from_der(&r.request_der)
            .map(est_cmc::TaggedRequest::Crm)
            .map_err(|e| {
                Failure::body_part(CmcFailInfo::INTERNAL_CA_ERROR, id, format!("request: {e}"))
            })?;
        let challenge = est_cmc::encrypted_pop::challenge(
            &tagged,
            id,
            &r.spki_der,
            r.ski.as_deref(),
            &values[0],
        )?;
        return Ok(Outcome::PopRequired(Box::new(challenge)));
    }
    if answers.len() > 1 {
        return Err(Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            id,
            "more than one Decrypted POP names this request",
        ));
    }
    let mut matched = false;
    for value in &values {
        matched |= est_cmc::encrypted_pop::verify(answers[0], value, &r.request_der)?;
    }
    if !matched {
        return Err(Failure::body_part(
            CmcFailInfo::POP_FAILED,
            id,
            "the Decrypted POP does not match this request's Encrypted POP challenge (or the challenge is older than two hours): not issued (CMC-67)",
        ));
    }
    certify(st, label, who, r, None, builder).await
}

/// Who stands behind a wrapped request: its own authentication (a signing certificate, an
/// identity proof, a MAC), else the authorized RA that wrapped it (EST-48, CMC-62).
pub(super) async fn nested_identity(
    st: &EstState,
    label: &Label,
    inner: &FullPkiRequest,
    outer: &LayerIdentity,
    ra: bool,
) -> Result<LayerIdentity, Failure> {
    match identify(st, &st.cmc_trust, label, None, inner).await {
        Ok((identity, renewal)) => Ok(LayerIdentity {
            identity,
            renewal,
            source: outer.source.clone(),
        }),
        Err(_)
            if ra
                && matches!(
                    inner.signer,
                    OuterSigner::RequestKey(_) | OuterSigner::KeyIdentifier { .. }
                ) =>
        {
            Ok(LayerIdentity {
                identity: outer.identity.clone(),
                renewal: None,
                source: outer.source.clone(),
            })
        }
        Err(f) => Err(f),
    }
}

/// Batch Requests (CMC-66): each listed cmsSequence request is answered by its own signed
/// PKIResponse in cmsSequence; per-request errors stay inside their responses.
pub(super) async fn batch(
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
pub(super) async fn batch_member(
    st: &EstState,
    label: &Label,
    inner: &FullPkiRequest,
    who: &LayerIdentity,
) -> Result<Vec<u8>, Failure> {
    let mut b = ResponseBuilder::new(&inner.controls)?;
    let mut run = Run::default();
    let mut held = Vec::new();
    let checked = async {
        if let Some(f) = inner.controls.unsupported_failure() {
            return Err(f);
        }
        check_replay(st, &inner.controls).await?;
        // A client's Query Pending that its RA forwards (CMC-64): the held requests it
        // names; one signed by the held request's key is verified with that key.
        for (id, token) in &inner.controls.query_pending {
            held.push((*id, super::find_held(st, label, *id, token).await?));
        }
        if let OuterSigner::KeyIdentifier { .. } = &inner.signer {
            let (_, rec) = held.first().ok_or_else(|| {
                Failure::message(
                    CmcFailInfo::BAD_MESSAGE_CHECK,
                    "the signer's key identifier names no request and no certificate here",
                )
            })?;
            inner.verify_outer_with_key(&rec.spki_der)?;
        }
        nested_identity(st, label, inner, who, true).await
    }
    .await;
    match checked {
        Ok(inner_who) => {
            // Held under the RA's name (the RA vouched for the request): the RA asks for it.
            for (id, rec) in std::mem::take(&mut held) {
                let outcome = super::query(
                    st,
                    label,
                    &inner_who.identity,
                    &inner_who.source,
                    id,
                    rec,
                    &mut b,
                )
                .await;
                run.record(&mut b, &[], id, outcome)?;
            }
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
