//! CMC server-side key generation over `/fullcmc` (draft-turner-cmc-serverkeygeneration-02,
//! REQUIREMENTS §2.12): a label with `server_keygen` OIDs reads the ServerKeyGenRequest
//! controls of the top PKIData, checks each against the authenticated identity, settles how
//! the key will be protected before any key is generated, then generates (from the same key
//! pool as `/serverkeygen`), certifies, seals and answers with the ServerKeyGenResponse
//! control. The pure parts are `est_cmc::serverkeygen::server`; this is the driver.
use est_cmc::serverkeygen::SkgOids;
use est_cmc::serverkeygen::server::{
    self as skg, AuthenticatedName, DeliveryPlan, ShroudKey, ShroudOwner, SkgFailure, SkgRequest,
    WantedKey,
};
use est_cmc::types::PkiData;
use x509_cert::ext::pkix::SubjectAltName;

use super::*;

/// Whether the PKIData carries a ServerKeyGenRequest this label acts on.
pub(super) fn has_requests(label: &Label, pki: &PkiData) -> bool {
    label.cfg.cmc.server_keygen.as_ref().is_some_and(|oids| {
        pki.control_sequence
            .iter()
            .any(|a| a.attr_type == oids.server_key_gen_request)
    })
}

/// The ServerKeyGenRequests of the top PKIData (SKGD-1), read before anything else of the
/// request is acted on: a PKIData that mixes the control with certification requests (or
/// cmsSequence / otherMsgSequence content) fails as a whole before any certificate is issued.
pub(super) type Requests = Vec<Result<SkgRequest, SkgFailure>>;

pub(super) fn read(label: &Label, request: &FullPkiRequest) -> Result<Requests, Failure> {
    match &label.cfg.cmc.server_keygen {
        Some(oids) => skg::read_requests(&request.pki_data, oids),
        None => Ok(Vec::new()),
    }
}

/// Every ServerKeyGenRequest read by [`read`], each answered on its own: a key and its
/// certificate (SKGD-18..SKGD-23) or a failure with the draft's error code (SKGD-25, SKGD-26).
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    st: &EstState,
    label: &Label,
    request: &FullPkiRequest,
    requests: Requests,
    who: &LayerIdentity,
    ra: bool,
    builder: &mut ResponseBuilder,
    run: &mut Run,
) -> Result<(), Failure> {
    let Some(oids) = &label.cfg.cmc.server_keygen else {
        return Ok(());
    };
    for item in requests {
        let outcome = match item {
            Ok(r) => generate(st, label, request, who, ra, &r, oids, builder)
                .await
                .map(|o| (r.body_part_id, o)),
            Err(f) => Err(f),
        };
        match outcome {
            Ok((id, o)) => run.record(builder, &[], id, Ok(o))?,
            Err(f) => {
                tracing::info!(reason = %f, "CMC server key generation refused");
                f.report(builder, oids)?;
                run.first_failure.get_or_insert(f.failure);
            }
        }
    }
    Ok(())
}

/// One ServerKeyGenRequest: checks, plan, key, certificate, sealed key in the response.
#[allow(clippy::too_many_arguments)]
async fn generate(
    st: &EstState,
    label: &Label,
    request: &FullPkiRequest,
    who: &LayerIdentity,
    ra: bool,
    r: &SkgRequest,
    oids: &SkgOids,
    builder: &mut ResponseBuilder,
) -> Result<Outcome, SkgFailure> {
    let id = r.body_part_id;
    // SKGD-27 allows pending; a held request would have to keep its delivery plan (and the
    // client's shared secret, SKGD-30) until approval. Not built: refused with a reason.
    if label.cfg.approval != crate::Approval::Automatic {
        return Err(Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            id,
            "server-side key generation is not available on a label with manual approval (SKGD-27 is not supported)",
        )
        .into());
    }
    let Settled {
        key_type,
        subject,
        san,
        plan,
        ..
    } = settle(st, label, request, who, ra, r, &st.cmc_trust.0).await?;
    let generated = st
        .ca
        .certify_generated(est_ca::GenerateRequest {
            domain: &label.cfg.domain,
            identity: &who.identity,
            renewal: who.renewal.clone(),
            subject: &subject,
            san: san.as_ref(),
            key_type,
            replay: None,
            origin: est_ca::Origin {
                source: &who.source,
                label: &label.cfg.name,
            },
        })
        .await
        .map_err(|e| ca_failure(id, &e))?;
    let enveloped = st
        .ca
        .seal_generated_key(&label.cfg.domain, &generated.key, &plan)?;
    // The key leaves only sealed; OpenSSL clears it on drop.
    drop(generated.key);
    plan.add_to_response(builder, oids, &enveloped, &generated.issued.cert)?;
    tracing::info!(
        serial = %generated.issued.record.serial,
        requester = %who.identity.requester(),
        "CMC server-generated key issued"
    );
    // SKGD-29 for a signature key: confirmRequired, then Confirm Certificate Acceptance.
    if label.cfg.cmc.confirm_required {
        return Ok(Outcome::IssuedUnconfirmed(generated.issued.der));
    }
    Ok(Outcome::Issued(generated.issued.der))
}

/// What a key generator (this CA, or an RA that generates keys itself, SKGD-35) settles for
/// one ServerKeyGenRequest before any key exists (SKGD-8): the key type, the names, and how
/// the key will be protected.
pub(super) struct Settled {
    pub(super) key_type: est_ca::KeyType,
    pub(super) subject: x509_cert::name::Name,
    pub(super) san: Option<SubjectAltName>,
    pub(super) plan: DeliveryPlan,
    /// The protecting certificate when it is not the signer's own (SKGD-12).
    pub(super) other_shroud_certificate: Option<Certificate>,
}

/// The checks of one ServerKeyGenRequest: the wanted key type (SKGD-4), the names against the
/// signing certificate (SKGD-16; not for an authorized RA, `ra`, which asks for others), the
/// label's policy (EST-47), the protecting certificate's chain to `trust`, owner and key usage
/// (SKGD-12, SKGD-13), the shared secret's owner (SKGD-15), the algorithms (SKGD-8) and the
/// protection's strength (SKGD-44).
pub(super) async fn settle(
    st: &EstState,
    label: &Label,
    request: &FullPkiRequest,
    who: &LayerIdentity,
    ra: bool,
    r: &SkgRequest,
    trust: &openssl::x509::store::X509StoreRef,
) -> Result<Settled, SkgFailure> {
    let id = r.body_part_id;
    let wanted = r.wanted_key()?;
    let key_type = key_type(wanted).ok_or_else(|| {
        SkgFailure::from(Failure::body_part(
            CmcFailInfo::BAD_ALG,
            id,
            "RSA keys are generated with 2048, 3072 or 4096 bits (SKGD-4)",
        ))
    })?;
    let cr = &r.certificate_request;
    // SKGD-16: a client signing with its certificate names itself in certificateRequest. An
    // RA asks for others.
    let signer_cert = match &who.identity {
        Identity::Certificate { cert, .. } if !ra => Some(cert.as_ref()),
        _ => None,
    };
    if let Some(cert) = signer_cert {
        let san = certificate_san(cert);
        skg::check_request_names(
            r,
            AuthenticatedName {
                subject: cert.tbs_certificate().subject(),
                san: san.as_ref(),
            },
        )?;
    }
    if cr.change_subject_name.is_some() && who.renewal.is_some() {
        return Err(Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            id,
            "ChangeSubjectName in a request signed with the client's certificate is a renewal with a new name: not supported, enroll the new name",
        )
        .into());
    }
    let (subject, san) = cr.effective_names();
    super::check_ra_layer(label, &who.identity, id, &subject)?;
    let names = est_ca::RequestedNames::from_request(&subject, san.as_ref())
        .map_err(|e| ca_failure(id, &e))?;
    // EST-47: the label's own policy, as for every enrollment.
    label
        .cfg
        .policy
        .authorize(&who.identity, &names)
        .map_err(|e| ca_failure(id, &e))?;
    // SKGD-11: certIdentifier names a certificate of the request's SignedData.
    let pool: Vec<Certificate> = match &request.signer {
        OuterSigner::Certificate { cert, pool } => std::iter::once(cert.as_ref().clone())
            .chain(pool.iter().cloned())
            .collect(),
        _ => Vec::new(),
    };
    let shroud_key = r.shroud_key(&pool)?;
    let mut other_shroud_certificate = None;
    let secret = match &shroud_key {
        ShroudKey::Certificate(c) => {
            let owner = match signer_cert {
                Some(s) => ShroudOwner::Signer(s),
                None => ShroudOwner::Name(&subject),
            };
            skg::check_shroud_certificate(r, c, &pool, trust, owner)?;
            if signer_cert != Some(c) {
                other_shroud_certificate = Some(c.clone());
            }
            None
        }
        // SKGD-14: the client's bare key; nothing to validate beyond its encoding.
        ShroudKey::BareKey { .. } => None,
        ShroudKey::SharedSecret(name) => {
            Some(shroud_secret(st, label, who, ra, r, name, &subject).await?)
        }
    };
    let plan = DeliveryPlan::new(r, &shroud_key, secret)?;
    // SKGD-44: the protection is at least as strong as the key it protects.
    if !plan.protects(wanted) {
        return Err(Failure::body_part(
            CmcFailInfo::BAD_ALG,
            id,
            "the key protecting the generated key is weaker than the key asked for (SKGD-44): use a stronger protecting key or ask for a smaller key",
        )
        .into());
    }
    Ok(Settled {
        key_type,
        subject,
        san,
        plan,
        other_shroud_certificate,
    })
}

/// SKGD-4: the key type generated for what the request asks (an RSA placeholder gets the
/// smallest size the profiles accept by default, 2048 bits).
fn key_type(wanted: WantedKey) -> Option<est_ca::KeyType> {
    Some(match wanted {
        WantedKey::Rsa {
            bits: None | Some(2048),
        } => est_ca::KeyType::Rsa2048,
        WantedKey::Rsa { bits: Some(3072) } => est_ca::KeyType::Rsa3072,
        WantedKey::Rsa { bits: Some(4096) } => est_ca::KeyType::Rsa4096,
        WantedKey::Rsa { .. } => return None,
        WantedKey::EcP256 => est_ca::KeyType::P256,
        WantedKey::EcP384 => est_ca::KeyType::P384,
        WantedKey::Ed25519 => est_ca::KeyType::Ed25519,
        _ => return None,
    })
}

fn certificate_san(cert: &Certificate) -> Option<SubjectAltName> {
    cert.tbs_certificate()
        .get_extension::<SubjectAltName>()
        .ok()
        .flatten()
        .map(|(_, s)| s)
}

/// SKGD-15: the secret ShroudWithSharedSecret names (a CMC shared secret of `estuary
/// cmc-secret`) must be the requester's and usable on this label: the very secret that
/// authenticated the request, or one linked (`--subject`) to the subject the requester is
/// known by: the authenticating secret's linked subject, or the signing certificate's
/// subject; for an authorized RA, which asks for others, the subject it asks for. A requester
/// known only by HTTP credentials owns no secret. Anything else, unknown names included, is
/// badSharedSecret (one answer, no oracle).
async fn shroud_secret(
    st: &EstState,
    label: &Label,
    who: &LayerIdentity,
    ra: bool,
    r: &SkgRequest,
    name: &str,
    subject: &x509_cert::name::Name,
) -> Result<zeroize::Zeroizing<Vec<u8>>, SkgFailure> {
    let found = st
        .ca
        .cmc_secret(name)
        .await
        .map_err(|e| ca_failure(r.body_part_id, &e))?;
    let Some(s) = found.filter(|s| s.allowed_on(&label.cfg.name)) else {
        return Err(skg::bad_shared_secret(r));
    };
    let linked_to = |dn: &str| !s.subject.is_empty() && s.subject == dn;
    let owned = match &who.identity {
        Identity::SharedSecret { ident, subject } => *ident == s.ident || linked_to(subject),
        Identity::Certificate { .. } if ra => linked_to(&subject.to_string()),
        Identity::Certificate { cert, .. } => {
            linked_to(&cert.tbs_certificate().subject().to_string())
        }
        _ => false,
    };
    if owned {
        Ok(s.secret.clone())
    } else {
        Err(skg::bad_shared_secret(r))
    }
}
