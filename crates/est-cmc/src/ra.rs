//! The registration authority's side of CMC (RFC 5272 §7, RFC 6402 §2.5): wrapping client
//! requests without altering them (CMC-57) and finding the CA's answer to them.
//!
//! * A PKCS#10 request an RA authenticated itself (an EST `/simpleenroll`) goes into the
//!   reqSequence of a new RA-signed PKIData ([`wrap_pkcs10`], CMC-12).
//! * A client's Full PKI Request goes, unchanged, into the cmsSequence of a new RA-signed
//!   PKIData ([`wrap_full_request`]) with Batch Requests naming it, so that the CA answers it
//!   with its own signed PKIResponse carrying the client's nonces (CMC-66), and with RA
//!   Identity Witness for each certification request whose identity the RA checked
//!   (CMC-62).
//! * [`batch_member`] takes that inner response out of the CA's Batch Responses.
use der::{Decode, Encode};

use crate::client::{RequestOptions, transaction_controls};
use crate::oids;
use crate::types::{BodyPartId, PkiData, PkiResponse, TaggedAttribute, TaggedContentInfo};

/// Body part ID of the wrapped client request in the RA's cmsSequence.
pub const ID_WRAPPED: BodyPartId = 100;
/// Body part ID of the Batch Requests control.
pub const ID_BATCH: BodyPartId = 101;
/// First body part ID of the RA Identity Witness controls (one per witnessed request).
pub const ID_WITNESS_BASE: BodyPartId = 200;

/// An RA-made PKIData carrying `csr_der` (PKCS#10) in its reqSequence as body part
/// [`crate::client::ID_REQUEST`]: the RA signs it with its id-kp-cmcRA certificate
/// ([`crate::client::sign_request`] with `RequestSigner::Certificate`), which is what makes
/// the CA take the RA's word for the requester's identity (CMC-56, EST-48).
pub fn wrap_pkcs10(opts: &RequestOptions, csr_der: &[u8]) -> Result<PkiData, String> {
    crate::client::build_pkcs10(opts, csr_der)
}

/// The type of Estuary's renewal information in a Registration Information control
/// (`id-cmc-regInfo`, RFC 5272 §6.11, whose content the CA's policy defines): under Estuary's
/// private arc (docs/cmc.md), `2.25.35258263107720737511850855134089286928.4.1`.
pub const ID_ESTUARY_RENEWAL: &str = "2.25.35258263107720737511850855134089286928.4.1";

/// `RenewalInfo ::= SEQUENCE { infoType OBJECT IDENTIFIER (ID_ESTUARY_RENEWAL), certReqId
/// BodyPartID, certificate IssuerAndSerialNumber }`: an RA's statement that the requester of
/// certification request `certReqId` authenticated with `certificate` and asks to renew it
/// (RFC 7030 §4.2.2 through an RA: EST-82..EST-86). A CA honours it only from an RA it
/// authorizes; any other CA ignores the regInfo it rides in.
#[derive(Clone, Debug, PartialEq, Eq, der::Sequence)]
pub struct RenewalInfo {
    /// [`ID_ESTUARY_RENEWAL`] (a UUID arc, wider than `const-oid` holds).
    pub info_type: crate::Oid,
    pub cert_req_id: BodyPartId,
    pub certificate: cms::cert::IssuerAndSerialNumber,
}

/// Body part ID of the RA's Registration Information control.
pub const ID_REG_INFO: BodyPartId = 102;

/// [`wrap_pkcs10`] for a re-enrollment: with a Registration Information control carrying a
/// [`RenewalInfo`] that names `renewing`, the certificate the client authenticated with.
pub fn wrap_pkcs10_renewal(
    opts: &RequestOptions,
    csr_der: &[u8],
    renewing: &x509_cert::Certificate,
) -> Result<PkiData, String> {
    let mut pki = wrap_pkcs10(opts, csr_der)?;
    let info = RenewalInfo {
        info_type: ID_ESTUARY_RENEWAL.parse().map_err(|e| format!("{e}"))?,
        cert_req_id: crate::client::ID_REQUEST,
        certificate: est_cms::issuer_and_serial(renewing),
    };
    let value = der::asn1::OctetString::new(info.to_der().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    pki.control_sequence.push(
        TaggedAttribute::single(ID_REG_INFO, oids::REG_INFO, &value).map_err(|e| e.to_string())?,
    );
    Ok(pki)
}

/// The renewals an RA's PKIData states in its Registration Information controls: each
/// request ID with the certificate it renews. Registration information of any other content
/// is not Estuary's and is ignored (RFC 5272 §6.11).
pub fn vouched_renewals(
    reg_info: &[(BodyPartId, Vec<u8>)],
) -> Vec<(BodyPartId, cms::cert::IssuerAndSerialNumber)> {
    reg_info
        .iter()
        .filter_map(|(_, v)| RenewalInfo::from_der(v).ok())
        .filter(|r| r.info_type.to_string() == ID_ESTUARY_RENEWAL)
        .map(|r| (r.cert_req_id, r.certificate))
        .collect()
}

/// An RA-made PKIData around a client's Full PKI Request (`client_request_der`, a DER
/// ContentInfo, kept byte for byte: CMC-57): the transaction controls of `opts`, Batch
/// Requests naming the wrapped request (so the CA answers it with a response of its own,
/// CMC-66), and RA Identity Witness `[ID_WRAPPED, id]` for each of `witnessed` (the body part
/// IDs of the client's certification requests whose requester the RA authenticated, CMC-62).
pub fn wrap_full_request(
    opts: &RequestOptions,
    client_request_der: &[u8],
    witnessed: &[BodyPartId],
) -> Result<PkiData, String> {
    let e = |e: der::Error| e.to_string();
    let content_info =
        cms::content_info::ContentInfo::from_der(client_request_der).map_err(|e| e.to_string())?;
    let mut controls = transaction_controls(opts)?;
    controls.push(
        TaggedAttribute::single(ID_BATCH, oids::BATCH_REQUESTS, &vec![ID_WRAPPED]).map_err(e)?,
    );
    for (n, id) in witnessed.iter().enumerate() {
        let bid = ID_WITNESS_BASE
            .checked_add(u32::try_from(n).map_err(|e| e.to_string())?)
            .ok_or("too many requests to witness")?;
        controls.push(
            TaggedAttribute::single(bid, oids::RA_IDENTITY_WITNESS, &vec![ID_WRAPPED, *id])
                .map_err(e)?,
        );
    }
    Ok(PkiData {
        control_sequence: controls,
        req_sequence: Vec::new(),
        cms_sequence: vec![TaggedContentInfo {
            body_part_id: ID_WRAPPED,
            content_info,
        }],
        other_msg_sequence: Vec::new(),
    })
}

/// `CMCUnsignedData ::= SEQUENCE { bodyPartPath BodyPartPath, identifier
/// TYPE-IDENTIFIER.&id, content TYPE-IDENTIFIER.&Type }` (RFC 5272 §3.2.3), the value of the
/// id-aa-cmc-unsignedData attribute.
#[derive(Clone, Debug, PartialEq, Eq, der::Sequence)]
pub struct CmcUnsignedData {
    pub body_part_path: crate::types::BodyPartPath,
    pub identifier: der::asn1::ObjectIdentifier,
    pub content: der::Any,
}

/// The id-aa-cmc-unsignedData attributes of one SignerInfo's unsigned attributes, checked
/// (CMC-25): at most one attribute, with one value, a CMCUnsignedData.
pub fn unsigned_data_of(
    unsigned_attrs: Option<&x509_cert::attr::Attributes>,
) -> Result<Option<CmcUnsignedData>, String> {
    let mut found: Vec<&x509_cert::attr::Attribute> = unsigned_attrs
        .map(|a| {
            a.iter()
                .filter(|a| a.oid == oids::AA_CMC_UNSIGNED_DATA)
                .collect()
        })
        .unwrap_or_default();
    match found.len() {
        0 => Ok(None),
        1 => {
            let attr = found.remove(0);
            if attr.values.len() != 1 {
                return Err(format!(
                    "the CMC Unsigned Data attribute has {} values, one is allowed (CMC-25)",
                    attr.values.len()
                ));
            }
            attr.values
                .iter()
                .next()
                .map(|v| v.decode_as::<CmcUnsignedData>())
                .transpose()
                .map_err(|e| format!("CMC Unsigned Data: {e}"))
        }
        n => Err(format!(
            "{n} CMC Unsigned Data attributes in one SignerInfo, at most one is allowed (CMC-25)"
        )),
    }
}

/// CMC-25 at the RA: takes the client's CMC Unsigned Data attribute out of its SignedData
/// (unsigned attributes are outside the signature, so the client's signature still verifies)
/// and returns the request without it, with the attribute to put into the RA's own
/// SignerInfo: its bodyPartPath prefixed with [`ID_WRAPPED`], the wrapped request's body part
/// ID. Every SignerInfo must carry the same value (or none). A request without one, and one
/// that is not SignedData (EnvelopedData to the CA), comes back unchanged with `None`.
pub fn move_unsigned_data(
    client_request_der: &[u8],
) -> Result<(Vec<u8>, Option<x509_cert::attr::Attribute>), String> {
    let e = |e: der::Error| e.to_string();
    let ci = cms::content_info::ContentInfo::from_der(client_request_der).map_err(e)?;
    if ci.content_type != est_cms::oids::ID_SIGNED_DATA {
        return Ok((client_request_der.to_vec(), None));
    }
    let mut sd: cms::signed_data::SignedData = ci.content.decode_as().map_err(e)?;
    let mut value: Option<CmcUnsignedData> = None;
    let mut carriers = 0usize;
    for si in sd.signer_infos.0.iter() {
        if let Some(v) = unsigned_data_of(si.unsigned_attrs.as_ref())? {
            if value.as_ref().is_some_and(|x| *x != v) {
                return Err(
                    "the SignerInfos carry different CMC Unsigned Data values (CMC-25)".into(),
                );
            }
            value = Some(v);
            carriers += 1;
        }
    }
    let Some(mut value) = value else {
        return Ok((client_request_der.to_vec(), None));
    };
    if carriers != sd.signer_infos.0.len() {
        return Err("CMC Unsigned Data is in some SignerInfos but not all (CMC-25)".into());
    }
    let mut infos = Vec::new();
    for si in sd.signer_infos.0.iter() {
        let mut si = si.clone();
        let rest: Vec<x509_cert::attr::Attribute> = si
            .unsigned_attrs
            .iter()
            .flat_map(|a| a.iter())
            .filter(|a| a.oid != oids::AA_CMC_UNSIGNED_DATA)
            .cloned()
            .collect();
        si.unsigned_attrs = if rest.is_empty() {
            None
        } else {
            Some(der::asn1::SetOfVec::try_from(rest).map_err(e)?)
        };
        infos.push(si);
    }
    sd.signer_infos =
        cms::signed_data::SignerInfos(der::asn1::SetOfVec::try_from(infos).map_err(e)?);
    let moved = cms::content_info::ContentInfo {
        content_type: est_cms::oids::ID_SIGNED_DATA,
        content: der::Any::encode_from(&sd).map_err(e)?,
    }
    .to_der()
    .map_err(e)?;
    value.body_part_path.insert(0, ID_WRAPPED);
    let attr = x509_cert::attr::Attribute {
        oid: oids::AA_CMC_UNSIGNED_DATA,
        values: der::asn1::SetOfVec::try_from(vec![der::Any::encode_from(&value).map_err(e)?])
            .map_err(e)?,
    };
    Ok((moved, Some(attr)))
}

/// The body part IDs of the certification requests in a client's Full PKI Request (a DER
/// ContentInfo), read but not verified (the CA verifies it), so that the RA can witness
/// them (CMC-62). An EnvelopedData request (to the CA, CMC-20) cannot be looked into: no
/// IDs. Anything that is not SignedData(PKIData) or EnvelopedData is an error.
pub fn request_ids(der: &[u8]) -> Result<Vec<BodyPartId>, String> {
    let Some(pki) = client_pki_data(der)? else {
        return Ok(Vec::new());
    };
    Ok(pki
        .req_sequence
        .iter()
        .filter_map(|r| match r {
            crate::TaggedRequest::Tcr(t) => Some(t.body_part_id),
            crate::TaggedRequest::Crm(c) => c.cert_req.body_part_id(),
            crate::TaggedRequest::Orm(o) => Some(o.body_part_id),
        })
        .collect())
}

/// Whether the top PKIData of a client's SignedData Full PKI Request carries a control of
/// type `oid` (read, not verified: e.g. a ServerKeyGenRequest an RA answers itself,
/// SKGD-35). `false` for anything it cannot read.
pub fn carries_control(der: &[u8], oid: &crate::Oid) -> bool {
    matches!(client_pki_data(der), Ok(Some(pki))
        if pki.control_sequence.iter().any(|c| c.attr_type == *oid))
}

/// The PKIData of a client's Full PKI Request (a DER ContentInfo), read but not verified;
/// `None` for an EnvelopedData request (to the CA, CMC-20), which cannot be looked into, and
/// for an AuthenticatedData one (MACed with a shared secret of the CA's, CMC-18), whose MAC
/// the RA cannot check: both go to the CA as they are. Anything that is not SignedData,
/// AuthenticatedData or EnvelopedData is an error.
fn client_pki_data(der: &[u8]) -> Result<Option<PkiData>, String> {
    let ci = cms::content_info::ContentInfo::from_der(der)
        .map_err(|e| format!("body is not a CMS ContentInfo: {e}"))?;
    if ci.content_type == est_cms::oids::ID_ENVELOPED_DATA
        || ci.content_type == est_cms::oids::ID_CT_AUTH_DATA
    {
        return Ok(None);
    }
    if ci.content_type != est_cms::oids::ID_SIGNED_DATA {
        return Err(format!(
            "a Full PKI Request is SignedData, AuthenticatedData or EnvelopedData, not {}",
            ci.content_type
        ));
    }
    let sd: cms::signed_data::SignedData = ci
        .content
        .decode_as()
        .map_err(|e| format!("SignedData: {e}"))?;
    if sd.encap_content_info.econtent_type != oids::CT_PKI_DATA {
        return Err("the SignedData does not carry a PKIData (id-cct-PKIData)".into());
    }
    let content = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or("the SignedData has no content")?
        .decode_as::<der::asn1::OctetString>()
        .map_err(|e| format!("PKIData content: {e}"))?;
    PkiData::from_der(content.as_bytes())
        .map(Some)
        .map_err(|e| format!("PKIData: {e}"))
}

/// The pendTokens a client's Full PKI Request asks about with Query Pending (CMC-64), read
/// but not verified (the CA verifies the request).
pub fn query_pending_tokens(der: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let Some(pki) = client_pki_data(der)? else {
        return Ok(Vec::new());
    };
    let controls = crate::Controls::read(&pki).map_err(|f| f.reason)?;
    Ok(controls.query_pending.into_iter().map(|(_, t)| t).collect())
}

/// The pendTokens of the pending statuses in a CA's response (a DER ContentInfo
/// SignedData(PKIResponse), taken out of a response the caller verified): what the RA
/// remembers to let the same client ask again (CMC-64).
pub fn pending_tokens(response_der: &[u8]) -> Vec<Vec<u8>> {
    let Ok(signed) = est_cms::ParsedSignedData::parse(response_der) else {
        return Vec::new();
    };
    let Ok(summary) = crate::ResponseSummary::read(&signed.content) else {
        return Vec::new();
    };
    summary
        .statuses
        .iter()
        .filter(|s| s.status == crate::CmcStatus::PENDING)
        .filter_map(|s| match &s.other_info {
            Some(crate::types::OtherStatusInfo::PendInfo(p)) => {
                Some(p.pend_token.as_bytes().to_vec())
            }
            _ => None,
        })
        .collect()
}

/// The DER ContentInfo of the first response the CA's Batch Responses control names in
/// `pki_response_der` (a DER PKIResponse the caller verified); `None` when it names none
/// (the CA refused the whole RA request, and says why in its statuses).
pub fn batch_member(pki_response_der: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let resp = PkiResponse::from_der(pki_response_der).map_err(|e| e.to_string())?;
    let mut named: Vec<BodyPartId> = Vec::new();
    for c in &resp.control_sequence {
        if c.attr_type.to_const() != Some(oids::BATCH_RESPONSES) {
            continue;
        }
        for v in c.attr_values.iter() {
            named.extend(
                v.decode_as::<Vec<BodyPartId>>()
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    for id in named {
        if let Some(t) = resp.cms_sequence.iter().find(|t| t.body_part_id == id) {
            return t.content_info.to_der().map(Some).map_err(|e| e.to_string());
        }
    }
    Ok(None)
}

/// The pendToken of a pending status on `id` in a verified response, with the response's
/// senderNonce and transactionId, for a later Query Pending (CMC-64).
pub fn pend_token(summary: &crate::ResponseSummary, id: BodyPartId) -> Option<Vec<u8>> {
    let s = summary.status_of(id)?;
    if s.status != crate::CmcStatus::PENDING {
        return None;
    }
    match &s.other_info {
        Some(crate::types::OtherStatusInfo::PendInfo(p)) => Some(p.pend_token.as_bytes().to_vec()),
        _ => None,
    }
}

/// How long until the pendTime of a pending status on `id` (RFC 5272 §6.1.3: when to ask
/// again), at least a second; `None` without one.
pub fn pend_wait(
    summary: &crate::ResponseSummary,
    id: BodyPartId,
    now: std::time::SystemTime,
) -> Option<std::time::Duration> {
    match &summary.status_of(id)?.other_info {
        Some(crate::types::OtherStatusInfo::PendInfo(p)) => Some(
            p.pend_time
                .to_system_time()
                .duration_since(now)
                .unwrap_or_default()
                .max(std::time::Duration::from_secs(1)),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TaggedRequest;

    fn csr() -> Vec<u8> {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap();
        let mut b = openssl::x509::X509ReqBuilder::new().unwrap();
        let mut n = openssl::x509::X509NameBuilder::new().unwrap();
        n.append_entry_by_text("CN", "device-1").unwrap();
        b.set_subject_name(&n.build()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        b.build().to_der().unwrap()
    }

    #[test]
    fn a_renewal_names_the_certificate_in_reg_info() {
        // Any certificate will do as the one being renewed: a self-signed one.
        let old = est_cms::CmsSigner::certificate(&signer()).clone();
        let opts = RequestOptions::random().unwrap();
        let der = csr();
        let p = wrap_pkcs10_renewal(&opts, &der, &old).unwrap();
        // The request itself is unchanged (CMC-57); the statement rides in regInfo.
        let TaggedRequest::Tcr(t) = &p.req_sequence[0] else {
            panic!("not a tcr")
        };
        assert_eq!(t.certification_request.to_der().unwrap(), der);
        let controls = crate::Controls::read(&p).expect("controls of the RA PKIData");
        let found = vouched_renewals(&controls.reg_info);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, crate::client::ID_REQUEST);
        assert_eq!(found[0].1, est_cms::issuer_and_serial(&old));
        // Registration information of another kind is not a renewal.
        assert!(vouched_renewals(&[(1, b"free text".to_vec())]).is_empty());
    }

    #[test]
    fn pkcs10_goes_into_req_sequence_unchanged() {
        let der = csr();
        let opts = RequestOptions::random().unwrap();
        let p = wrap_pkcs10(&opts, &der).unwrap();
        assert_eq!(p.req_sequence.len(), 1);
        let TaggedRequest::Tcr(t) = &p.req_sequence[0] else {
            panic!("not a tcr")
        };
        // CMC-57: the client's request, byte for byte.
        assert_eq!(t.certification_request.to_der().unwrap(), der);
        assert!(p.cms_sequence.is_empty());
    }

    #[test]
    fn full_request_is_wrapped_with_batch_and_witness() {
        let inner = crate::client::unsigned_request(&PkiData::default()).unwrap();
        let opts = RequestOptions::random().unwrap();
        let p = wrap_full_request(&opts, &inner, &[4, 5]).unwrap();
        assert_eq!(p.cms_sequence.len(), 1);
        assert_eq!(p.cms_sequence[0].content_info.to_der().unwrap(), inner);
        let der = p.to_der().unwrap();
        let c = crate::Controls::read(&PkiData::from_der(&der).unwrap()).unwrap();
        assert_eq!(c.batch_requests, vec![(ID_BATCH, vec![ID_WRAPPED])]);
        assert_eq!(
            c.ra_identity_witness,
            vec![
                (ID_WITNESS_BASE, vec![ID_WRAPPED, 4]),
                (ID_WITNESS_BASE + 1, vec![ID_WRAPPED, 5])
            ]
        );
    }

    fn signer() -> est_cms::OpensslSigner {
        let (key, cert) = crate::test_util::self_signed(false, &[]);
        est_cms::OpensslSigner::new(key, cert).unwrap()
    }

    fn unsigned_attr(values: &[CmcUnsignedData]) -> x509_cert::attr::Attribute {
        x509_cert::attr::Attribute {
            oid: oids::AA_CMC_UNSIGNED_DATA,
            values: der::asn1::SetOfVec::try_from(
                values
                    .iter()
                    .map(|v| der::Any::encode_from(v).unwrap())
                    .collect::<Vec<_>>(),
            )
            .unwrap(),
        }
    }

    fn data(path: Vec<BodyPartId>, text: &str) -> CmcUnsignedData {
        CmcUnsignedData {
            body_part_path: path,
            identifier: const_oid::db::rfc5911::ID_DATA,
            content: der::Any::encode_from(&der::asn1::OctetString::new(text.as_bytes()).unwrap())
                .unwrap(),
        }
    }

    /// CMC-25: the RA takes the client's CMC Unsigned Data out of the client's SignerInfo
    /// (whose signature still verifies) and carries it in its own, the path prefixed with the
    /// wrapped request's body part ID.
    #[test]
    fn unsigned_data_moves_into_the_ra_wrapper() {
        let s = signer();
        let opts = RequestOptions::random().unwrap();
        let pki = wrap_pkcs10(&opts, &csr()).unwrap();
        let original = data(vec![1], "chain");
        let client = crate::client::sign_request_with(
            &pki,
            &crate::client::RequestSigner::Certificate(&s),
            &[unsigned_attr(std::slice::from_ref(&original))],
        )
        .unwrap();
        let before = est_cms::ParsedSignedData::parse(&client).unwrap();
        assert!(
            unsigned_data_of(before.signer_infos[0].0.unsigned_attrs.as_ref())
                .unwrap()
                .is_some()
        );
        let (moved, attr) = move_unsigned_data(&client).unwrap();
        let after = est_cms::ParsedSignedData::parse(&moved).unwrap();
        assert!(after.signer_infos[0].0.unsigned_attrs.is_none());
        assert_eq!(after.content, before.content, "the PKIData is untouched");
        after
            .verify_with_certificate(0)
            .expect("the client's signature still verifies");
        let attr = attr.unwrap();
        let v = attr
            .values
            .iter()
            .next()
            .unwrap()
            .decode_as::<CmcUnsignedData>()
            .unwrap();
        assert_eq!(v.body_part_path, vec![ID_WRAPPED, 1]);
        assert_eq!(v.content, original.content);
        // The RA's own request carries it, and the CA reads it as one attribute.
        let ra = crate::client::sign_request_with(
            &wrap_full_request(&opts, &moved, &[]).unwrap(),
            &crate::client::RequestSigner::Certificate(&s),
            std::slice::from_ref(&attr),
        )
        .unwrap();
        let parsed = est_cms::ParsedSignedData::parse(&ra).unwrap();
        let got = unsigned_data_of(parsed.signer_infos[0].0.unsigned_attrs.as_ref())
            .unwrap()
            .unwrap();
        assert_eq!(got.body_part_path, vec![ID_WRAPPED, 1]);
        // Without one, the request comes back byte for byte.
        let plain =
            crate::client::sign_request(&pki, &crate::client::RequestSigner::Certificate(&s))
                .unwrap();
        assert_eq!(move_unsigned_data(&plain).unwrap(), (plain.clone(), None));
    }

    #[test]
    fn more_than_one_unsigned_data_is_refused() {
        let two_values = unsigned_attr(&[data(vec![1], "a"), data(vec![2], "b")]);
        let set = x509_cert::attr::Attributes::try_from(vec![two_values]).unwrap();
        assert!(
            unsigned_data_of(Some(&set))
                .unwrap_err()
                .contains("2 values")
        );
        let s = signer();
        let pki = wrap_pkcs10(&RequestOptions::random().unwrap(), &csr()).unwrap();
        let client = crate::client::sign_request_with(
            &pki,
            &crate::client::RequestSigner::Certificate(&s),
            &[
                unsigned_attr(&[data(vec![1], "a")]),
                unsigned_attr(&[data(vec![1], "b")]),
            ],
        )
        .unwrap();
        assert!(
            move_unsigned_data(&client)
                .unwrap_err()
                .contains("at most one")
        );
        // The CA refuses such a request too.
        let r =
            crate::FullPkiRequest::parse_layered(&client, crate::RequestPolicy::default(), None);
        assert!(format!("{:?}", r.unwrap_err()).contains("CMC-25"));
    }

    #[test]
    fn request_ids_reads_the_client_request() {
        let opts = RequestOptions::random().unwrap();
        let p = wrap_pkcs10(&opts, &csr()).unwrap();
        let der = crate::client::unsigned_request(&p).unwrap();
        assert_eq!(request_ids(&der).unwrap(), vec![crate::client::ID_REQUEST]);
        assert!(request_ids(b"not der").is_err());
        // Data, not SignedData.
        let data = cms::content_info::ContentInfo {
            content_type: est_cms::oids::ID_DATA,
            content: der::Any::encode_from(&der::asn1::OctetString::new(vec![1u8]).unwrap())
                .unwrap(),
        }
        .to_der()
        .unwrap();
        assert!(request_ids(&data).is_err());
    }

    #[test]
    fn batch_member_finds_the_named_response() {
        let inner = crate::client::unsigned_request(&PkiData::default()).unwrap();
        let mut b = crate::ResponseBuilder::new(&crate::Controls::default()).unwrap();
        let id = b.next_body_part_id();
        b.nested_response(id, &inner).unwrap();
        b.batch_responses(&[id]).unwrap();
        let got = batch_member(&b.to_der().unwrap()).unwrap();
        assert_eq!(got.as_deref(), Some(inner.as_slice()));
        let empty = crate::ResponseBuilder::new(&crate::Controls::default()).unwrap();
        assert_eq!(batch_member(&empty.to_der().unwrap()).unwrap(), None);
    }
}
