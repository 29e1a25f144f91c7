//! Building a PKIResponse (RFC 5272 §4.2) from the outcomes of a request, and reading one
//! (for clients). Signing is the caller's: the CA signs through its key backend.
use der::asn1::{GeneralizedTime, Int, OctetString};
use der::{Decode, Encode};

use crate::Controls;
use crate::error::Failure;
use crate::oids;
use crate::types::{
    BodyPartId, BodyPartReference, CmcFailInfo, CmcStatus, CmcStatusInfo, CmcStatusInfoV2,
    OtherStatusInfo, PendInfo, PkiResponse, TaggedAttribute,
};

/// Length of the senderNonce we generate (CMC-53: 16 bytes or more).
pub const NONCE_LEN: usize = 16;

/// Collects the controls of a PKIResponse: echoes of the request's transaction controls
/// (CMC-50, CMC-51, CMC-54) and one CMCStatusInfoV2 per outcome (CMC-35).
#[derive(Debug, Clone)]
pub struct ResponseBuilder {
    controls: Vec<TaggedAttribute>,
    cms: Vec<crate::types::TaggedContentInfo>,
    next_id: BodyPartId,
    /// Whether anything besides certificates must be said (so a Simple PKI Response will not
    /// do, CMC-4).
    needs_full: bool,
    failed: bool,
}

impl ResponseBuilder {
    /// Starts a response to a request with these controls: transactionId and dataReturn
    /// echoed, recipientNonce = the request's senderNonce, a fresh senderNonce.
    pub fn new(request: &Controls) -> Result<Self, Failure> {
        let mut b = Self {
            controls: Vec::new(),
            cms: Vec::new(),
            next_id: 1,
            needs_full: false,
            failed: false,
        };
        if let Some(t) = &request.transaction_id {
            b.push(oids::TRANSACTION_ID, t)?;
        }
        if let Some(n) = &request.sender_nonce {
            b.push(oids::RECIPIENT_NONCE, &octets(n)?)?;
            let mut fresh = [0u8; NONCE_LEN];
            openssl::rand::rand_bytes(&mut fresh).map_err(|e| internal(e.to_string()))?;
            b.push(oids::SENDER_NONCE, &octets(&fresh)?)?;
        }
        if let Some(d) = &request.data_return {
            b.push(oids::DATA_RETURN, &octets(d)?)?;
        }
        // With any of these the client expects them back in a Full PKI Response.
        b.needs_full = !b.controls.is_empty();
        Ok(b)
    }

    fn push(&mut self, oid: impl Into<crate::Oid>, value: &impl Encode) -> Result<(), Failure> {
        let id = self.next_body_part_id();
        self.controls
            .push(TaggedAttribute::single(id, oid, value).map_err(|e| internal(e.to_string()))?);
        Ok(())
    }

    /// Adds a control with one value under a fresh body part ID, and returns that ID: for
    /// controls this builder does not model (e.g. ServerKeyGenResponse under a configured OID,
    /// SKGD-22).
    pub fn control(
        &mut self,
        oid: impl Into<crate::Oid>,
        value: &impl Encode,
    ) -> Result<BodyPartId, Failure> {
        self.push(oid, value)?;
        self.needs_full = true;
        Ok(self.next_id - 1)
    }

    /// Whether the response carries a control of type `oid` (e.g. a ServerKeyGenResponse, so
    /// that the signer adds Content Hints, SKGD-20).
    pub fn has_control(&self, oid: &crate::Oid) -> bool {
        self.controls.iter().any(|c| c.attr_type == *oid)
    }

    /// Adds a DER ContentInfo to cmsSequence under a fresh body part ID and returns that ID
    /// (e.g. the EnvelopedData of a server-generated key, SKGD-19).
    pub fn content(&mut self, content_info_der: &[u8]) -> Result<BodyPartId, Failure> {
        let id = self.next_body_part_id();
        self.nested_response(id, content_info_der)?;
        Ok(id)
    }

    /// Adds a CMCStatusInfoV2.
    pub fn status(&mut self, info: CmcStatusInfoV2) -> Result<(), Failure> {
        if info.status != CmcStatus::SUCCESS {
            self.needs_full = true;
        }
        if info.status == CmcStatus::FAILED || info.status == CmcStatus::NO_SUPPORT {
            self.failed = true;
        }
        self.push(oids::STATUS_INFO_V2, &info)
    }

    /// success for these body parts (CMC-40: sent always, so the client sees each outcome).
    pub fn success(&mut self, ids: &[BodyPartId]) -> Result<(), Failure> {
        if ids.is_empty() {
            return Ok(());
        }
        self.status(CmcStatusInfoV2 {
            status: CmcStatus::SUCCESS,
            body_list: ids.iter().map(|i| BodyPartReference::Id(*i)).collect(),
            status_string: None,
            other_info: None,
        })
    }

    /// success for these body parts or paths.
    pub fn success_refs(&mut self, refs: Vec<BodyPartReference>) -> Result<(), Failure> {
        if refs.is_empty() {
            return Ok(());
        }
        self.status(CmcStatusInfoV2 {
            status: CmcStatus::SUCCESS,
            body_list: refs,
            status_string: None,
            other_info: None,
        })
    }

    /// A nested response (DER ContentInfo, typically SignedData(PKIResponse)) in cmsSequence
    /// under body part `id` (CMC-66 batches).
    pub fn nested_response(
        &mut self,
        id: BodyPartId,
        content_info_der: &[u8],
    ) -> Result<(), Failure> {
        let content_info = cms::content_info::ContentInfo::from_der(content_info_der)
            .map_err(|e| internal(e.to_string()))?;
        self.cms.push(crate::types::TaggedContentInfo {
            body_part_id: id,
            content_info,
        });
        self.needs_full = true;
        Ok(())
    }

    /// Batch Responses (CMC-66): the cmsSequence entries that answer a batch.
    pub fn batch_responses(&mut self, ids: &[BodyPartId]) -> Result<(), Failure> {
        self.needs_full = true;
        self.push(oids::BATCH_RESPONSES, &ids.to_vec())
    }

    /// A body part ID unused in this response so far, for a nested response.
    pub fn next_body_part_id(&mut self) -> BodyPartId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A failure with its failInfo and reason (CMC-38).
    pub fn failure(&mut self, f: &Failure) -> Result<(), Failure> {
        let other_info =
            (f.status == CmcStatus::FAILED).then_some(OtherStatusInfo::FailInfo(f.fail_info));
        self.status(CmcStatusInfoV2 {
            status: f.status,
            body_list: f.body_list.clone(),
            status_string: Some(f.reason.clone()),
            other_info,
        })
    }

    /// A failure reported with an extendedFailInfo, followed by a second CMCStatusInfoV2 for
    /// the same body parts with failInfo `f.fail_info` (CMC-41, CMC-42: extendedFailInfo is
    /// emitted untagged).
    pub fn extended_failure(
        &mut self,
        f: &Failure,
        extended: crate::types::ExtendedFailInfo,
    ) -> Result<(), Failure> {
        self.status(CmcStatusInfoV2 {
            status: f.status,
            body_list: f.body_list.clone(),
            status_string: Some(f.reason.clone()),
            other_info: Some(OtherStatusInfo::ExtendedFailInfo(extended)),
        })?;
        self.failure(f)
    }

    /// pending with pendInfo (CMC-38, EST-100).
    pub fn pending(
        &mut self,
        id: BodyPartId,
        token: &[u8],
        time: GeneralizedTime,
        note: &str,
    ) -> Result<(), Failure> {
        self.status(CmcStatusInfoV2 {
            status: CmcStatus::PENDING,
            body_list: vec![BodyPartReference::Id(id)],
            status_string: Some(note.to_owned()),
            other_info: Some(OtherStatusInfo::PendInfo(PendInfo {
                pend_token: octets(token)?,
                pend_time: time,
            })),
        })
    }

    /// popRequired for request `id` with its Encrypted POP challenge (CMC-67, RFC 5272 §6.7).
    pub fn pop_required(
        &mut self,
        id: BodyPartReference,
        challenge: &crate::controls::EncryptedPop,
    ) -> Result<(), Failure> {
        self.status(CmcStatusInfoV2 {
            status: CmcStatus::POP_REQUIRED,
            body_list: vec![id],
            status_string: Some(
                "proof of possession required: decrypt the Encrypted POP and send the request again with Decrypted POP (RFC 5272 §6.7)".into(),
            ),
            other_info: None,
        })?;
        self.push(oids::ENCRYPTED_POP, challenge)
    }

    /// Whether a Simple PKI Response (certificates only) says everything (CMC-4).
    pub fn simple_suffices(&self) -> bool {
        !self.needs_full
    }

    /// Whether any status is a failure.
    pub fn has_failure(&self) -> bool {
        self.failed
    }

    /// DER of the PKIResponse.
    pub fn to_der(&self) -> Result<Vec<u8>, Failure> {
        PkiResponse {
            control_sequence: self.controls.clone(),
            cms_sequence: self.cms.clone(),
            other_msg_sequence: Vec::new(),
        }
        .to_der()
        .map_err(|e| internal(e.to_string()))
    }
}

fn octets(b: &[u8]) -> Result<OctetString, Failure> {
    OctetString::new(b).map_err(|e| internal(e.to_string()))
}

fn internal(m: String) -> Failure {
    Failure::message(CmcFailInfo::INTERNAL_CA_ERROR, m)
}

/// What a client reads from a PKIResponse.
#[derive(Debug, Clone, Default)]
pub struct ResponseSummary {
    pub transaction_id: Option<Int>,
    pub sender_nonce: Option<Vec<u8>>,
    pub recipient_nonce: Option<Vec<u8>>,
    pub data_return: Option<Vec<u8>>,
    /// Every status, V2 and V1 (CMC-35: a client copes with several).
    pub statuses: Vec<CmcStatusInfoV2>,
    /// Encrypted POP challenges that come with popRequired (CMC-67).
    pub encrypted_pop: Vec<crate::controls::EncryptedPop>,
}

impl ResponseSummary {
    /// Reads the controls of a DER PKIResponse. Malformed known controls are errors.
    pub fn read(pki_response_der: &[u8]) -> Result<Self, der::Error> {
        let resp = PkiResponse::from_der(pki_response_der)?;
        let mut s = Self::default();
        for c in &resp.control_sequence {
            let Some(v) = c.attr_values.iter().next() else {
                continue;
            };
            let Some(attr_type) = c.attr_type.to_const() else {
                continue;
            };
            match attr_type {
                oids::TRANSACTION_ID => s.transaction_id = Some(v.decode_as()?),
                oids::SENDER_NONCE => {
                    s.sender_nonce = Some(v.decode_as::<OctetString>()?.into_bytes().into())
                }
                oids::RECIPIENT_NONCE => {
                    s.recipient_nonce = Some(v.decode_as::<OctetString>()?.into_bytes().into())
                }
                oids::DATA_RETURN => {
                    s.data_return = Some(v.decode_as::<OctetString>()?.into_bytes().into())
                }
                oids::STATUS_INFO_V2 => s.statuses.push(v.decode_as()?),
                oids::ENCRYPTED_POP => s.encrypted_pop.push(v.decode_as()?),
                oids::STATUS_INFO => {
                    let v1: CmcStatusInfo = v.decode_as()?;
                    s.statuses.push(CmcStatusInfoV2 {
                        status: v1.status,
                        body_list: v1
                            .body_list
                            .into_iter()
                            .map(BodyPartReference::Id)
                            .collect(),
                        status_string: v1.status_string,
                        other_info: v1.other_info,
                    });
                }
                _ => {}
            }
        }
        Ok(s)
    }

    /// The status that covers `id` (absent means success, CMC-40).
    pub fn status_of(&self, id: BodyPartId) -> Option<&CmcStatusInfoV2> {
        self.statuses
            .iter()
            .find(|s| s.body_list.contains(&BodyPartReference::Id(id)))
    }
}

/// A status in words, for people: `failed (badRequest): reason`.
pub fn describe_status(s: &CmcStatusInfoV2) -> String {
    let mut out = s.status.name().to_string();
    match &s.other_info {
        Some(OtherStatusInfo::FailInfo(f)) => out.push_str(&format!(" ({})", f.name())),
        Some(OtherStatusInfo::PendInfo(p)) => out.push_str(&format!(
            " (pendToken {})",
            hex_lower(p.pend_token.as_bytes())
        )),
        Some(OtherStatusInfo::ExtendedFailInfo(e)) => {
            out.push_str(&format!(" (extended {})", e.fail_info_oid))
        }
        None => {}
    }
    if let Some(t) = &s.status_string {
        out.push_str(": ");
        out.push_str(t);
    }
    out
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
