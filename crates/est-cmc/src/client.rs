//! The client side: building Full PKI Requests (RFC 5272 §3.2) and verifying responses.
use der::asn1::{Int, OctetString};
use der::{Decode, Encode};
use openssl::pkey::{PKey, Private};
use openssl::x509::store::X509StoreRef;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::name::Name;

use crate::controls::IdentifyProofV2;
use crate::crmf::{CertReqMsg, CertRequest, CertTemplate, PopoSigningKey, ProofOfPossession};
use crate::oids;
use crate::response::ResponseSummary;
use crate::types::{
    BodyPartId, PkiData, TaggedAttribute, TaggedCertificationRequest, TaggedRequest,
};

/// Body part IDs this builder uses.
pub const ID_TRANSACTION: BodyPartId = 1;
pub const ID_SENDER_NONCE: BodyPartId = 2;
pub const ID_DATA_RETURN: BodyPartId = 3;
/// The certification request.
pub const ID_REQUEST: BodyPartId = 4;
pub const ID_IDENTIFICATION: BodyPartId = 5;
pub const ID_IDENTITY_PROOF: BodyPartId = 6;
pub const ID_RECIPIENT_NONCE: BodyPartId = 7;
/// The queryPending control of [`build_query_pending`]: the body part a pending, success or
/// failed status names.
pub const ID_QUERY_PENDING: BodyPartId = 8;
/// The getCert control of [`build_get_cert`].
pub const ID_GET_CERT: BodyPartId = 9;
/// The revokeRequest control of [`build_revoke`].
pub const ID_REVOKE: BodyPartId = 10;
/// The getCRL control of [`build_get_crl`].
pub const ID_GET_CRL: BodyPartId = 11;
/// Body part of the Decrypted POP control (CMC-67).
pub const ID_DECRYPTED_POP: BodyPartId = 12;
/// Body part of the echoed Encrypted POP control (CMC-67).
pub const ID_ENCRYPTED_POP: BodyPartId = 13;

/// A shared secret to prove identity with (Identification + Identity Proof V2, HMAC-SHA256
/// with SHA-256, CMC-43).
#[derive(Clone)]
pub struct SharedSecret {
    pub ident: String,
    pub secret: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSecret")
            .field("ident", &self.ident)
            .finish_non_exhaustive()
    }
}

/// The certification request to carry.
#[derive(Debug, Clone)]
pub enum CertRequestBody {
    /// A DER PKCS#10 request (tcr).
    Pkcs10(Vec<u8>),
    /// A CRMF request (crm) for `key`'s public key, POP signed with it.
    Crmf {
        subject: Name,
        extensions: Vec<Extension>,
    },
    /// A CRMF request for a key that cannot sign: POP keyEncipherment (RSA) or keyAgreement
    /// (EC) with subsequentMessage challengeResp, proven by Encrypted/Decrypted POP (CMC-67).
    CrmfEncryption {
        subject: Name,
        extensions: Vec<Extension>,
    },
}

/// The controls and request of one PKIData.
#[derive(Debug, Clone)]
pub struct RequestOptions {
    pub transaction_id: Int,
    pub sender_nonce: Vec<u8>,
    /// The senderNonce of the server's last response in this transaction, sent back as
    /// recipientNonce (RFC 5272 §6.6; e.g. on a Query Pending after a pending answer).
    pub recipient_nonce: Option<Vec<u8>>,
    pub data_return: Option<Vec<u8>>,
    pub identity: Option<SharedSecret>,
}

impl RequestOptions {
    /// A random positive 64-bit transactionId and a 16-byte senderNonce.
    pub fn random() -> Result<Self, String> {
        let mut t = [0u8; 8];
        let mut n = vec![0u8; crate::NONCE_LEN];
        openssl::rand::rand_bytes(&mut t).map_err(|e| e.to_string())?;
        openssl::rand::rand_bytes(&mut n).map_err(|e| e.to_string())?;
        t[0] &= 0x7f;
        t[0] |= 0x01;
        Ok(Self {
            transaction_id: Int::new(&t).map_err(|e| e.to_string())?,
            sender_nonce: n,
            recipient_nonce: None,
            data_return: None,
            identity: None,
        })
    }

    /// Options for a later request of the same transaction: the same transactionId, a fresh
    /// senderNonce, and recipientNonce = the server's last senderNonce (CMC-50, CMC-51).
    pub fn continuing(transaction_id: Int, server_nonce: Option<Vec<u8>>) -> Result<Self, String> {
        let mut o = Self::random()?;
        o.transaction_id = transaction_id;
        o.recipient_nonce = server_nonce;
        Ok(o)
    }
}

/// transactionId, senderNonce, recipientNonce and dataReturn of `opts`.
pub(crate) fn transaction_controls(opts: &RequestOptions) -> Result<Vec<TaggedAttribute>, String> {
    let e = |e: der::Error| e.to_string();
    let mut controls = vec![
        TaggedAttribute::single(ID_TRANSACTION, oids::TRANSACTION_ID, &opts.transaction_id)
            .map_err(e)?,
        TaggedAttribute::single(
            ID_SENDER_NONCE,
            oids::SENDER_NONCE,
            &OctetString::new(opts.sender_nonce.clone()).map_err(e)?,
        )
        .map_err(e)?,
    ];
    if let Some(n) = &opts.recipient_nonce {
        controls.push(
            TaggedAttribute::single(
                ID_RECIPIENT_NONCE,
                oids::RECIPIENT_NONCE,
                &OctetString::new(n.clone()).map_err(e)?,
            )
            .map_err(e)?,
        );
    }
    if let Some(d) = &opts.data_return {
        controls.push(
            TaggedAttribute::single(
                ID_DATA_RETURN,
                oids::DATA_RETURN,
                &OctetString::new(d.clone()).map_err(e)?,
            )
            .map_err(e)?,
        );
    }
    Ok(controls)
}

/// A PKIData of controls only (empty reqSequence): the transaction controls of `opts` and
/// `extra`. An identity proof is computed over the reqSequence, so `opts.identity` is refused.
fn controls_only(opts: &RequestOptions, extra: TaggedAttribute) -> Result<PkiData, String> {
    if opts.identity.is_some() {
        return Err("an identity proof needs a certification request to cover".into());
    }
    let mut control_sequence = transaction_controls(opts)?;
    control_sequence.push(extra);
    Ok(PkiData {
        control_sequence,
        req_sequence: Vec::new(),
        cms_sequence: Vec::new(),
        other_msg_sequence: Vec::new(),
    })
}

/// Query Pending (CMC-64, RFC 5272 §6.13): a PKIData with the transaction controls and one
/// queryPending control (OCTET STRING pendToken) as body part [`ID_QUERY_PENDING`], no request.
/// Sign it with the held request's key ([`RequestSigner::RequestKey`]).
pub fn build_query_pending(opts: &RequestOptions, pend_token: &[u8]) -> Result<PkiData, String> {
    let e = |e: der::Error| e.to_string();
    let q = TaggedAttribute::single(
        ID_QUERY_PENDING,
        oids::QUERY_PENDING,
        &OctetString::new(pend_token).map_err(e)?,
    )
    .map_err(e)?;
    controls_only(opts, q)
}

/// Get Certificate (CMC-70, RFC 5272 §6.9): a PKIData with the transaction controls and one
/// getCert control {issuerName = directoryName `issuer`, `serial`} as body part
/// [`ID_GET_CERT`], no request.
pub fn build_get_cert(
    opts: &RequestOptions,
    issuer: &Name,
    serial: &x509_cert::serial_number::SerialNumber,
) -> Result<PkiData, String> {
    let e = |e: der::Error| e.to_string();
    let gc = crate::controls::GetCert {
        issuer_name: x509_cert::ext::pkix::name::GeneralName::DirectoryName(issuer.clone()),
        serial_number: serial.clone(),
    };
    let c = TaggedAttribute::single(ID_GET_CERT, oids::GET_CERT, &gc).map_err(e)?;
    controls_only(opts, c)
}

/// A PKIData asking to revoke a certificate (Revocation Request, CMC-72): sign it with the
/// certificate (or as its requester or an RA), or send it unsigned ([`unsigned_request`])
/// with the enrollment's shared secret as `revoke.passphrase`.
pub fn build_revoke(
    opts: &RequestOptions,
    revoke: &crate::controls::RevokeRequest,
) -> Result<PkiData, String> {
    let c = TaggedAttribute::single(ID_REVOKE, oids::REVOKE_REQUEST, revoke)
        .map_err(|e| e.to_string())?;
    controls_only(opts, c)
}

/// A PKIData asking for the current CRL of `issuer` (Get CRL, CMC-71).
pub fn build_get_crl(opts: &RequestOptions, issuer: &Name) -> Result<PkiData, String> {
    let gc = crate::controls::GetCrl {
        issuer_name: issuer.clone(),
        crl_name: None,
        time: None,
        reasons: None,
    };
    let c = TaggedAttribute::single(ID_GET_CRL, oids::GET_CRL, &gc).map_err(|e| e.to_string())?;
    controls_only(opts, c)
}

/// Builds the PKIData: transactionId, senderNonce, dataReturn, the request, and
/// Identification + Identity Proof V2 over the reqSequence (CMC-44) when asked.
pub fn build_pki_data(
    opts: &RequestOptions,
    body: &CertRequestBody,
    key: &PKey<Private>,
) -> Result<PkiData, String> {
    let e = |e: der::Error| e.to_string();
    let req = match body {
        CertRequestBody::Pkcs10(der) => TaggedRequest::Tcr(TaggedCertificationRequest {
            body_part_id: ID_REQUEST,
            certification_request: x509_cert::request::CertReq::from_der(der).map_err(e)?,
        }),
        CertRequestBody::Crmf {
            subject,
            extensions,
        } => TaggedRequest::Crm(crmf_request(subject, extensions, key)?),
        CertRequestBody::CrmfEncryption {
            subject,
            extensions,
        } => TaggedRequest::Crm(crmf_encryption_request(subject, extensions, key)?),
    };
    with_requests(opts, vec![req], Vec::new())
}

/// A PKIData carrying the DER PKCS#10 request `csr_der` as it is (tcr, body part
/// [`ID_REQUEST`]) with the transaction controls of `opts`: what an RA sends for a request it
/// authenticated itself (CMC-12, CMC-57).
pub fn build_pkcs10(opts: &RequestOptions, csr_der: &[u8]) -> Result<PkiData, String> {
    let req = TaggedRequest::Tcr(TaggedCertificationRequest {
        body_part_id: ID_REQUEST,
        certification_request: x509_cert::request::CertReq::from_der(csr_der)
            .map_err(|e| e.to_string())?,
    });
    with_requests(opts, vec![req], Vec::new())
}

/// The second round of Encrypted/Decrypted POP (CMC-67, RFC 5272 §6.7 step 4): decrypts the
/// server's `challenge` with the request's private `key`, checks its witness, and builds a
/// PKIData with the request again, the Decrypted POP and the server's Encrypted POP echoed.
pub fn build_decrypted_pop(
    opts: &RequestOptions,
    challenge: &crate::controls::EncryptedPop,
    key: &PKey<Private>,
) -> Result<PkiData, String> {
    let e = |e: der::Error| e.to_string();
    let (request, decrypted) = crate::encrypted_pop::answer(challenge, key)?;
    let extra = vec![
        TaggedAttribute::single(ID_DECRYPTED_POP, oids::DECRYPTED_POP, &decrypted).map_err(e)?,
        TaggedAttribute::single(ID_ENCRYPTED_POP, oids::ENCRYPTED_POP, challenge).map_err(e)?,
    ];
    with_requests(opts, vec![request], extra)
}

/// A PKIData with `req_sequence`, the transaction controls, `extra` controls and, with
/// `opts.identity`, Identification + Identity Proof V2 over the reqSequence.
fn with_requests(
    opts: &RequestOptions,
    req_sequence: Vec<TaggedRequest>,
    extra: Vec<TaggedAttribute>,
) -> Result<PkiData, String> {
    let e = |e: der::Error| e.to_string();
    let mut controls = transaction_controls(opts)?;
    controls.extend(extra);
    if let Some(id) = &opts.identity {
        let req_der = req_sequence.to_der().map_err(e)?;
        let proof_alg = spki::AlgorithmIdentifierOwned {
            oid: oids::SHA256,
            parameters: None,
        };
        let mac_alg = spki::AlgorithmIdentifierOwned {
            oid: oids::HMAC_WITH_SHA256,
            parameters: None,
        };
        let witness = crate::linking::identity_proof_v2_witness(
            &proof_alg,
            &mac_alg,
            &id.secret,
            Some(id.ident.as_bytes()),
            &req_der,
        )?;
        controls.push(
            TaggedAttribute::single(ID_IDENTIFICATION, oids::IDENTIFICATION, &id.ident)
                .map_err(e)?,
        );
        controls.push(
            TaggedAttribute::single(
                ID_IDENTITY_PROOF,
                oids::IDENTITY_PROOF_V2,
                &IdentifyProofV2 {
                    proof_alg_id: proof_alg,
                    mac_alg_id: mac_alg,
                    witness: OctetString::new(witness).map_err(e)?,
                },
            )
            .map_err(e)?,
        );
    }
    Ok(PkiData {
        control_sequence: controls,
        req_sequence,
        cms_sequence: Vec::new(),
        other_msg_sequence: Vec::new(),
    })
}

/// The CertRequest of a CRMF request (certReqId [`ID_REQUEST`]) for `key`'s public key.
fn cert_request(
    subject: &Name,
    extensions: &[Extension],
    key: &PKey<Private>,
) -> Result<CertRequest, String> {
    let e = |e: der::Error| e.to_string();
    let spki_der = key.public_key_to_der().map_err(|e| e.to_string())?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&spki_der).map_err(e)?;
    Ok(CertRequest {
        cert_req_id: Int::from_der(&ID_REQUEST.to_der().map_err(e)?).map_err(e)?,
        cert_template: CertTemplate {
            subject: Some(subject.clone()),
            public_key: Some(spki),
            extensions: (!extensions.is_empty()).then(|| extensions.to_vec()),
            ..Default::default()
        },
        controls: None,
    })
}

fn crmf_request(
    subject: &Name,
    extensions: &[Extension],
    key: &PKey<Private>,
) -> Result<CertReqMsg, String> {
    let e = |e: der::Error| e.to_string();
    let cert_req = cert_request(subject, extensions, key)?;
    let (alg, sig) =
        est_cms::sign_x509(key, &cert_req.to_der().map_err(e)?).map_err(|e| e.to_string())?;
    CertReqMsg::new(
        cert_req,
        Some(ProofOfPossession::Signature(PopoSigningKey {
            poposk_input: None,
            algorithm_identifier: alg,
            signature: der::asn1::BitString::from_bytes(&sig).map_err(e)?,
        })),
        None,
    )
    .map_err(e)
}

/// A CRMF request whose POP is left to Encrypted/Decrypted POP: `[2] keyEncipherment` for
/// an RSA key, `[3] keyAgreement` for an EC key, each POPOPrivKey `subsequentMessage
/// challengeResp` (RFC 4211 §4.2, RFC 5272 §6.7).
fn crmf_encryption_request(
    subject: &Name,
    extensions: &[Extension],
    key: &PKey<Private>,
) -> Result<CertReqMsg, String> {
    let e = |e: der::Error| e.to_string();
    let cert_req = cert_request(subject, extensions, key)?;
    // subsequentMessage [1] IMPLICIT SubsequentMessage (INTEGER), challengeResp (1).
    let challenge_resp = der::Any::from_der(&[0x81, 0x01, 0x01]).map_err(e)?;
    let popo = match key.id() {
        openssl::pkey::Id::RSA => ProofOfPossession::KeyEncipherment(challenge_resp),
        openssl::pkey::Id::EC => ProofOfPossession::KeyAgreement(challenge_resp),
        other => {
            return Err(format!(
                "Encrypted POP needs an RSA or EC key, not {other:?}"
            ));
        }
    };
    CertReqMsg::new(cert_req, Some(popo), None).map_err(e)
}

/// How to sign the PKIData.
pub enum RequestSigner<'a> {
    /// With the request's own key, sid = subjectKeyIdentifier `key_id` (CMC-17).
    RequestKey {
        key: &'a PKey<Private>,
        key_id: &'a [u8],
    },
    /// With an existing certificate and its key (renewal/rekey, CMC-21).
    Certificate(&'a dyn est_cms::CmsSigner),
    /// AuthenticatedData with a password recipient keyed by Identification ‖ secret (CMC-18);
    /// the PKIData must carry that Identification (set [`RequestOptions::identity`]).
    SharedSecret(&'a SharedSecret),
}

impl std::fmt::Debug for RequestSigner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RequestKey { key_id, .. } => write!(f, "RequestKey({} byte id)", key_id.len()),
            Self::Certificate(_) => f.write_str("Certificate"),
            Self::SharedSecret(s) => write!(f, "SharedSecret({})", s.ident),
        }
    }
}

/// DER ContentInfo(SignedData(PKIData)).
pub fn sign_request(pki_data: &PkiData, signer: &RequestSigner<'_>) -> Result<Vec<u8>, String> {
    sign_request_with(pki_data, signer, &[])
}

/// [`sign_request`] with unsigned attributes in the SignerInfo (an RA's moved CMC Unsigned
/// Data, CMC-25); only a certificate signer takes them.
pub fn sign_request_with(
    pki_data: &PkiData,
    signer: &RequestSigner<'_>,
    unsigned_attributes: &[x509_cert::attr::Attribute],
) -> Result<Vec<u8>, String> {
    let content = pki_data.to_der().map_err(|e| e.to_string())?;
    if !unsigned_attributes.is_empty() {
        let RequestSigner::Certificate(s) = signer else {
            return Err("unsigned attributes need a certificate signer".into());
        };
        return est_cms::sign_with(
            oids::CT_PKI_DATA,
            &content,
            *s,
            &[],
            &est_cms::SignOptions {
                unsigned_attributes: unsigned_attributes.to_vec(),
                ..est_cms::SignOptions::default()
            },
        )
        .map_err(|e| e.to_string());
    }
    match signer {
        RequestSigner::RequestKey { key, key_id } => {
            est_cms::sign_with_key_id(oids::CT_PKI_DATA, &content, key, key_id, &[])
        }
        RequestSigner::Certificate(s) => est_cms::sign(oids::CT_PKI_DATA, &content, *s, &[]),
        RequestSigner::SharedSecret(s) => {
            let mut password = zeroize::Zeroizing::new(s.ident.as_bytes().to_vec());
            password.extend_from_slice(&s.secret);
            est_cms::authenticate(
                oids::CT_PKI_DATA,
                &content,
                &[est_cms::Recipient::Password {
                    password,
                    params: est_cms::PwriParams::default(),
                }],
            )
        }
    }
    .map_err(|e| e.to_string())
}

/// A verified response.
#[derive(Debug, Clone)]
pub struct VerifiedResponse {
    /// A Simple PKI Response (certificates only, CMC-3).
    pub simple: bool,
    pub summary: ResponseSummary,
    pub certificates: Vec<Certificate>,
    /// The certificate that signed a Full PKI Response.
    pub signer: Option<Certificate>,
    /// DER CRLs the response carries (Get CRL, CMC-71).
    pub crls: Vec<Vec<u8>>,
}

/// CMC-28, SKGD-42: every signer of a response is a CA or a CMC RA (see
/// [`crate::ra_keygen::is_response_signer`]), not merely a certificate under the same root.
pub fn check_response_signers(signers: &[Certificate]) -> Result<(), String> {
    match signers
        .iter()
        .find(|c| !crate::ra_keygen::is_response_signer(c))
    {
        Some(c) => Err(format!(
            "the response is signed by \"{}\", which is neither a CA nor a CMC RA (no id-kp-cmcRA, CMC-28)",
            c.tbs_certificate().subject()
        )),
        None => Ok(()),
    }
}

/// Verifies a DER response: a Full PKI Response's signature and signer chain to `trust`
/// (CMC-2, CMC-28), or takes a Simple PKI Response's certificates (CMC-3).
pub fn verify_response(der: &[u8], trust: &X509StoreRef) -> Result<VerifiedResponse, String> {
    let ci = cms::content_info::ContentInfo::from_der(der).map_err(|e| format!("response: {e}"))?;
    if ci.content_type != est_cms::oids::ID_SIGNED_DATA {
        return Err(format!("response is {}, not SignedData", ci.content_type));
    }
    let sd: cms::signed_data::SignedData = ci
        .content
        .decode_as()
        .map_err(|e| format!("response SignedData: {e}"))?;
    let certs: Vec<Certificate> = sd
        .certificates
        .iter()
        .flat_map(|s| s.0.iter())
        .filter_map(|c| match c {
            cms::cert::CertificateChoices::Certificate(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    let crls = sd
        .crls
        .iter()
        .flat_map(|c| c.0.iter())
        .filter_map(|c| match c {
            cms::revocation::RevocationInfoChoice::Crl(crl) => crl.to_der().ok(),
            _ => None,
        })
        .collect::<Vec<_>>();
    if sd.signer_infos.0.is_empty() {
        if sd.encap_content_info.econtent_type != est_cms::oids::ID_DATA {
            return Err("unsigned response that is not a Simple PKI Response".into());
        }
        return Ok(VerifiedResponse {
            simple: true,
            summary: ResponseSummary::default(),
            certificates: certs,
            signer: None,
            crls,
        });
    }
    let v = est_cms::verify(der, trust, &est_cms::VerifyOptions::default())
        .map_err(|e| format!("response signature: {e}"))?;
    check_response_signers(&v.signers)?;
    if v.content_type != oids::CT_PKI_RESPONSE {
        return Err(format!(
            "signed response carries {}, not PKIResponse",
            v.content_type
        ));
    }
    let summary = ResponseSummary::read(&v.content).map_err(|e| format!("PKIResponse: {e}"))?;
    Ok(VerifiedResponse {
        simple: false,
        summary,
        certificates: v.certificates,
        signer: v.signers.into_iter().next(),
        crls,
    })
}

/// EnvelopedData(SignedData(PKIData)) (CMC-20): `signed_request` (a DER ContentInfo from
/// [`sign_request`]) encrypted to the CA's encryption certificate with RSA-OAEP (SHA-256)
/// key transport and AES-256-CBC (CMC-30).
pub fn envelope_request(
    signed_request: &[u8],
    ca_encryption_cert: &Certificate,
) -> Result<Vec<u8>, String> {
    let ci = cms::content_info::ContentInfo::from_der(signed_request).map_err(|e| e.to_string())?;
    let signed_data = ci.content.to_der().map_err(|e| e.to_string())?;
    let recipient =
        est_cms::Recipient::key_transport(ca_encryption_cert, est_cms::KeyTransport::RsaOaepSha256)
            .map_err(|e| e.to_string())?;
    est_cms::envelope(
        est_cms::oids::ID_SIGNED_DATA,
        &signed_data,
        &[recipient],
        est_cms::ContentEncryption::Aes256Cbc,
    )
    .map_err(|e| e.to_string())
}

/// An unsigned Full PKI Request: SignedData with no SignerInfo around `pki_data`, for a
/// Revocation Request authenticated by its passphrase alone (RFC 5272 §6.11, CMC-72).
pub fn unsigned_request(pki_data: &PkiData) -> Result<Vec<u8>, String> {
    let e = |e: der::Error| e.to_string();
    let content = pki_data.to_der().map_err(e)?;
    let sd = cms::signed_data::SignedData {
        version: cms::content_info::CmsVersion::V3,
        digest_algorithms: der::asn1::SetOfVec::new(),
        encap_content_info: cms::signed_data::EncapsulatedContentInfo {
            econtent_type: oids::CT_PKI_DATA,
            econtent: Some(
                der::Any::encode_from(&OctetString::new(content).map_err(e)?).map_err(e)?,
            ),
        },
        certificates: None,
        crls: None,
        signer_infos: cms::signed_data::SignerInfos(der::asn1::SetOfVec::new()),
    };
    cms::content_info::ContentInfo {
        content_type: est_cms::oids::ID_SIGNED_DATA,
        content: der::Any::encode_from(&sd).map_err(e)?,
    }
    .to_der()
    .map_err(e)
}

/// A Revocation Request control value (CMC-72) for `cert`.
pub fn revoke_request(
    cert: &Certificate,
    reason: x509_cert::ext::pkix::crl::CrlReason,
    passphrase: Option<&[u8]>,
    comment: Option<&str>,
) -> Result<crate::controls::RevokeRequest, String> {
    Ok(crate::controls::RevokeRequest {
        issuer_name: cert.tbs_certificate().issuer().clone(),
        serial_number: cert.tbs_certificate().serial_number().clone(),
        reason,
        invalidity_date: None,
        passphrase: passphrase
            .map(|p| OctetString::new(p).map_err(|e| e.to_string()))
            .transpose()?,
        comment: comment.map(str::to_owned),
    })
}
