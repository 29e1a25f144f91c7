//! The controls of one PKIData, decoded and checked (RFC 5272 §6; CMC-8, CMC-9, CMC-65).
use der::asn1::{Int, OctetString};
use der::{Decode, Encode};

use crate::controls::{
    ControlsProcessed, GetCert, GetCrl, IdentifyProofV2, RevokeRequest, describe,
};
use crate::error::Failure;
use crate::oid::Oid;
use crate::oids;
use crate::types::{
    BodyPartId, BodyPartReference, CmcFailInfo, CmcStatus, PkiData, TaggedAttribute,
};

/// The known controls of one PKIData, decoded (RFC 5272 §6). Repeated single-valued controls
/// and malformed values are failures of the whole PKIData.
#[derive(Debug, Clone, Default)]
pub struct Controls {
    pub transaction_id: Option<Int>,
    pub sender_nonce: Option<Vec<u8>>,
    pub data_return: Option<Vec<u8>>,
    /// (bodyPartID, value)
    pub identification: Option<(BodyPartId, String)>,
    pub identity_proof_v2: Option<(BodyPartId, IdentifyProofV2)>,
    pub identity_proof_v1: Option<(BodyPartId, Vec<u8>)>,
    pub pop_link_random: Option<(BodyPartId, Vec<u8>)>,
    pub query_pending: Vec<(BodyPartId, Vec<u8>)>,
    pub get_cert: Vec<(BodyPartId, GetCert)>,
    pub get_crl: Vec<(BodyPartId, GetCrl)>,
    pub revoke: Vec<(BodyPartId, RevokeRequest)>,
    pub confirm_cert_acceptance: Vec<(BodyPartId, crate::controls::CmcCertId)>,
    pub reg_info: Vec<(BodyPartId, Vec<u8>)>,
    /// Controls an RA marked processed (CMC-65).
    pub processed: Vec<BodyPartReference>,
    /// RA controls, honoured only from an authorized RA (CMC-56).
    pub lra_pop_witness: Vec<(BodyPartId, crate::controls::LraPopWitness)>,
    pub mod_cert_template: Vec<(BodyPartId, crate::controls::ModCertTemplate)>,
    pub add_extensions: Vec<(BodyPartId, crate::controls::AddExtensions)>,
    pub ra_identity_witness: Vec<(BodyPartId, Vec<BodyPartId>)>,
    /// Encrypted POP controls a client sends back with its Decrypted POP (CMC-67; the server
    /// recomputes the challenge, so these are informational).
    pub encrypted_pop: Vec<(BodyPartId, crate::controls::EncryptedPop)>,
    /// Decrypted POP answers (CMC-67).
    pub decrypted_pop: Vec<(BodyPartId, crate::controls::DecryptedPop)>,
    /// Batch Requests (CMC-66): the cmsSequence entries to answer one by one.
    pub batch_requests: Vec<(BodyPartId, Vec<BodyPartId>)>,
    /// Controls this server does not act on, not marked processed (CMC-9). Wide OIDs: a
    /// control under a 128-bit arc is reported like any other.
    pub unsupported: Vec<(BodyPartId, Oid)>,
}

impl Controls {
    /// Decodes every control of `pki` (CMC-8, CMC-9).
    pub fn read(pki: &PkiData) -> Result<Self, Failure> {
        let mut c = Controls::default();
        // Controls marked processed by an RA first: they are not ours to fail on (CMC-65).
        for attr in pki
            .control_sequence
            .iter()
            .filter(|a| a.attr_type == oids::CONTROL_PROCESSED)
        {
            let v: ControlsProcessed = single_value(attr)?;
            c.processed.extend(v.body_list);
        }
        for attr in &pki.control_sequence {
            c.read_one(attr)?;
        }
        Ok(c)
    }

    fn is_processed(&self, id: BodyPartId) -> bool {
        self.processed
            .iter()
            .any(|r| matches!(r, BodyPartReference::Id(x) if *x == id))
    }

    fn read_one(&mut self, attr: &TaggedAttribute) -> Result<(), Failure> {
        let id = attr.body_part_id;
        let once = |present: bool| {
            if present {
                Err(Failure::body_part(
                    CmcFailInfo::BAD_REQUEST,
                    id,
                    format!("{} appears more than once", describe(&attr.attr_type)),
                ))
            } else {
                Ok(())
            }
        };
        let Some(known) = attr.attr_type.to_const() else {
            // An arc const-oid cannot hold is no RFC 5272/6402 control (CMC-9).
            if !self.is_processed(id) {
                self.unsupported.push((id, attr.attr_type.clone()));
            }
            return Ok(());
        };
        match known {
            oids::TRANSACTION_ID => {
                once(self.transaction_id.is_some())?;
                self.transaction_id = Some(single_value(attr)?);
            }
            oids::SENDER_NONCE => {
                once(self.sender_nonce.is_some())?;
                let v: OctetString = single_value(attr)?;
                self.sender_nonce = Some(v.into_bytes().into());
            }
            oids::DATA_RETURN => {
                once(self.data_return.is_some())?;
                let v: OctetString = single_value(attr)?;
                self.data_return = Some(v.into_bytes().into());
            }
            oids::IDENTIFICATION => {
                once(self.identification.is_some())?;
                let v: String = single_value(attr)?;
                self.identification = Some((id, v));
            }
            oids::IDENTITY_PROOF_V2 => {
                once(self.identity_proof_v2.is_some())?;
                self.identity_proof_v2 = Some((id, single_value(attr)?));
            }
            oids::IDENTITY_PROOF => {
                once(self.identity_proof_v1.is_some())?;
                let v: OctetString = single_value(attr)?;
                self.identity_proof_v1 = Some((id, v.into_bytes().into()));
            }
            oids::POP_LINK_RANDOM => {
                once(self.pop_link_random.is_some())?;
                let v: OctetString = single_value(attr)?;
                self.pop_link_random = Some((id, v.into_bytes().into()));
            }
            oids::QUERY_PENDING => {
                let v: OctetString = single_value(attr)?;
                self.query_pending.push((id, v.into_bytes().into()));
            }
            oids::GET_CERT => self.get_cert.push((id, single_value(attr)?)),
            oids::GET_CRL => self.get_crl.push((id, single_value(attr)?)),
            oids::REVOKE_REQUEST => self.revoke.push((id, single_value(attr)?)),
            oids::CONFIRM_CERT_ACCEPTANCE => {
                self.confirm_cert_acceptance.push((id, single_value(attr)?))
            }
            oids::REG_INFO => {
                let v: OctetString = single_value(attr)?;
                self.reg_info.push((id, v.into_bytes().into()));
            }
            oids::CONTROL_PROCESSED => {}
            oids::LRA_POP_WITNESS => self.lra_pop_witness.push((id, single_value(attr)?)),
            oids::ENCRYPTED_POP => self.encrypted_pop.push((id, single_value(attr)?)),
            oids::DECRYPTED_POP => self.decrypted_pop.push((id, single_value(attr)?)),
            oids::MOD_CERT_TEMPLATE => self.mod_cert_template.push((id, single_value(attr)?)),
            oids::ADD_EXTENSIONS => self.add_extensions.push((id, single_value(attr)?)),
            oids::RA_IDENTITY_WITNESS => self.ra_identity_witness.push((id, single_value(attr)?)),
            oids::BATCH_REQUESTS => {
                let list: Vec<BodyPartId> = single_value(attr)?;
                if list.is_empty() {
                    return Err(Failure::body_part(
                        CmcFailInfo::BAD_REQUEST,
                        id,
                        "batchRequests lists no body part (CMC-66)",
                    ));
                }
                self.batch_requests.push((id, list));
            }
            // recipientNonce in a request: the client answers our earlier senderNonce; we keep
            // no transaction state across requests, so it is accepted and not checked.
            oids::RECIPIENT_NONCE => {
                let _: OctetString = single_value(attr)?;
            }
            other => {
                if !self.is_processed(id) {
                    self.unsupported.push((id, other.into()));
                }
            }
        }
        Ok(())
    }

    /// The body part IDs of RA-only controls (CMC-56, CMC-59..CMC-62, CMC-66).
    pub fn ra_controls(&self) -> Vec<BodyPartId> {
        let mut ids: Vec<BodyPartId> = Vec::new();
        ids.extend(self.lra_pop_witness.iter().map(|c| c.0));
        ids.extend(self.mod_cert_template.iter().map(|c| c.0));
        ids.extend(self.add_extensions.iter().map(|c| c.0));
        ids.extend(self.ra_identity_witness.iter().map(|c| c.0));
        ids
    }

    /// Removes the controls of type `oid` from [`Self::unsupported`] and returns their body part
    /// IDs: for a caller that acts on a control this crate does not know by itself (the
    /// configurable server-side key generation controls, SKGD-1).
    pub fn take_unsupported(&mut self, oid: &Oid) -> Vec<BodyPartId> {
        let mut taken = Vec::new();
        self.unsupported.retain(|(id, o)| {
            if o == oid {
                taken.push(*id);
                false
            } else {
                true
            }
        });
        taken
    }

    /// CMC-9: the failure for controls this server does not act on, if any.
    pub fn unsupported_failure(&self) -> Option<Failure> {
        if self.unsupported.is_empty() {
            return None;
        }
        let names: Vec<String> = self.unsupported.iter().map(|(_, o)| describe(o)).collect();
        Some(Failure {
            fail_info: CmcFailInfo::BAD_REQUEST,
            status: CmcStatus::FAILED,
            body_list: self
                .unsupported
                .iter()
                .map(|(id, _)| BodyPartReference::Id(*id))
                .collect(),
            reason: format!(
                "control(s) not supported by this server and not marked processed: {} (CMC-9)",
                names.join(", ")
            ),
        })
    }
}

fn single_any(attr: &TaggedAttribute) -> Result<&der::Any, Failure> {
    if attr.attr_values.len() != 1 {
        return Err(Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            attr.body_part_id,
            format!("{} must have exactly one value", describe(&attr.attr_type)),
        ));
    }
    attr.attr_values.iter().next().ok_or_else(|| {
        Failure::body_part(CmcFailInfo::BAD_REQUEST, attr.body_part_id, "empty control")
    })
}

fn malformed(attr: &TaggedAttribute, e: der::Error) -> Failure {
    Failure::body_part(
        CmcFailInfo::BAD_REQUEST,
        attr.body_part_id,
        format!("malformed {}: {e}", describe(&attr.attr_type)),
    )
}

fn single_value<T>(attr: &TaggedAttribute) -> Result<T, Failure>
where
    T: for<'a> Decode<'a, Error = der::Error>,
{
    let der = single_any(attr)?.to_der().map_err(|e| malformed(attr, e))?;
    T::from_der(&der).map_err(|e| malformed(attr, e))
}
