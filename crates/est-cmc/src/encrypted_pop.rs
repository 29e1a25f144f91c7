//! Encrypted and Decrypted POP (RFC 5272 §6.7, CMC-67): proof of possession for keys that
//! cannot sign (encryption-only RSA keys, EC keys for key agreement).
//!
//! The server answers such a request with popRequired and an Encrypted POP control: a POP
//! proof value `y` enveloped to the request's public key (ktri for RSA, kari for EC), the HMAC
//! the client is to compute, and the witness `H(y)`. The client decrypts `y`, checks the
//! witness, and sends the request again with a Decrypted POP control carrying
//! `HMAC(key = y (its first 64 bytes), data = the certification request)`. "The certification
//! request" is read here as the DER of the request inside the TaggedRequest (the CertReqMsg of
//! a `crm`), which does not change when the client renumbers its body parts.
//!
//! The server keeps no state between the two rounds: `y` is derived from a server secret, the
//! certification request and a time window (see `est-ca`), so it can be computed again when the
//! answer arrives, and by any node sharing that secret.
use der::asn1::{Null, OctetString};
use der::{Any, Decode, Encode};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private};
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use crate::controls::{DecryptedPop, EncryptedPop};
use crate::crmf::ProofOfPossession;
use crate::error::Failure;
use crate::linking::{ct_eq, hash_alg, hmac, mac_alg};
use crate::oids;
use crate::types::{BodyPartId, CmcFailInfo, TaggedRequest};

/// Length of the POP proof value: the most of it HMAC uses (RFC 5272 §6.7).
pub const POP_VALUE_LEN: usize = 64;

/// Whether a CRMF proof of possession asks for Encrypted POP: key encipherment or key
/// agreement (any POPOPrivKey form: this CA proves possession by the challenge, CMC-67).
pub fn wants_encrypted_pop(popo: Option<&ProofOfPossession>) -> bool {
    matches!(
        popo,
        Some(ProofOfPossession::KeyEncipherment(_) | ProofOfPossession::KeyAgreement(_))
    )
}

/// The certification request a TaggedRequest carries, as DER: the data of the POP HMAC.
pub fn request_data(request: &TaggedRequest) -> Result<Vec<u8>, Failure> {
    let bad = |e: der::Error| {
        Failure::message(
            CmcFailInfo::BAD_REQUEST,
            format!("the certification request does not encode: {e}"),
        )
    };
    match request {
        TaggedRequest::Tcr(t) => t.certification_request.to_der().map_err(bad),
        TaggedRequest::Crm(m) => m.to_der().map_err(bad),
        TaggedRequest::Orm(o) => Err(Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            o.body_part_id,
            "Encrypted POP applies to PKCS#10 and CRMF requests only",
        )),
    }
}

fn null_params(oid: der::asn1::ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: Any::encode_from(&Null).ok(),
    }
}

/// The HMAC of the Decrypted POP: `HMAC(key = first 64 bytes of value, data = request)`.
pub fn pop_mac(
    alg: &AlgorithmIdentifierOwned,
    value: &[u8],
    request_der: &[u8],
) -> Result<Vec<u8>, String> {
    let key = &value[..value.len().min(POP_VALUE_LEN)];
    hmac(mac_alg(alg)?, key, request_der)
}

/// Builds the Encrypted POP control for one request (server side).
///
/// `value` is the POP proof value; the EnvelopedData is addressed to the request's public key
/// by its SubjectKeyIdentifier when the request carries one, else by IssuerAndSerialNumber with
/// an empty issuer and the bodyPartID as serial (RFC 5272 §6.7). RSA keys get ktri
/// (RSAES-OAEP with SHA-256), P-256/P-384 keys kari (ephemeral-static ECDH, SHA-256 KDF, AES
/// key wrap). The POP HMAC is HMAC-SHA256 and the witness SHA-256 (the SHOULD algorithms of
/// RFC 5274 §4.1; the client's answer may also use HMAC-SHA1, see [`verify`]).
pub fn challenge(
    request: &TaggedRequest,
    body_part_id: BodyPartId,
    spki_der: &[u8],
    ski: Option<&[u8]>,
    value: &[u8],
) -> Result<EncryptedPop, Failure> {
    let internal = |m: String| Failure::body_part(CmcFailInfo::INTERNAL_CA_ERROR, body_part_id, m);
    let key = PKey::public_key_from_der(spki_der).map_err(|e| {
        Failure::body_part(
            CmcFailInfo::BAD_REQUEST,
            body_part_id,
            format!("public key: {e}"),
        )
    })?;
    let rid = match ski {
        Some(ski) => est_cms::RecipientId::SubjectKeyIdentifier(ski.to_vec()),
        None => est_cms::RecipientId::IssuerAndSerialNumber(cms::cert::IssuerAndSerialNumber {
            issuer: x509_cert::name::Name::default(),
            serial_number: x509_cert::serial_number::SerialNumber::new(&body_part_id.to_be_bytes())
                .map_err(|e| internal(e.to_string()))?,
        }),
    };
    let recipient = match key.id() {
        Id::RSA => est_cms::Recipient::KeyTransport {
            rid,
            key,
            algorithm: est_cms::KeyTransport::RsaOaepSha256,
        },
        Id::EC => est_cms::Recipient::KeyAgree {
            rid,
            key,
            kdf: est_cms::KeyAgreeKdf::Sha256,
            wrap: est_cms::KeyWrap::Aes256,
            ukm: None,
        },
        _ => {
            return Err(Failure::body_part(
                CmcFailInfo::BAD_ALG,
                body_part_id,
                "Encrypted POP needs an RSA or EC (P-256/P-384) key; this key type can neither be encrypted to nor agreed with here",
            ));
        }
    };
    let enveloped = est_cms::envelope(
        est_cms::oids::ID_DATA,
        value,
        &[recipient],
        est_cms::ContentEncryption::Aes256Cbc,
    )
    .map_err(|e| internal(format!("enveloping the POP value: {e}")))?;
    let cms = cms::content_info::ContentInfo::from_der(&enveloped)
        .map_err(|e| internal(e.to_string()))?;
    let witness =
        openssl::hash::hash(MessageDigest::sha256(), value).map_err(|e| internal(e.to_string()))?;
    Ok(EncryptedPop {
        request: request.clone(),
        cms,
        the_pop_alg_id: null_params(oids::HMAC_WITH_SHA256),
        witness_alg_id: AlgorithmIdentifierOwned {
            oid: oids::SHA256,
            parameters: None,
        },
        witness: OctetString::new(witness.to_vec()).map_err(|e| internal(e.to_string()))?,
    })
}

/// Whether a Decrypted POP answers the POP proof value `value` for the request whose DER is
/// `request_der` (server side, constant-time comparison). HMAC-SHA1 (the MUST of RFC 5274
/// §4.1) and HMAC-SHA256/384/512 are accepted: `value` is never disclosed, so either proves
/// that the client decrypted it.
pub fn verify(decrypted: &DecryptedPop, value: &[u8], request_der: &[u8]) -> Result<bool, Failure> {
    let expected = pop_mac(&decrypted.the_pop_alg_id, value, request_der)
        .map_err(|m| Failure::body_part(CmcFailInfo::BAD_ALG, decrypted.body_part_id, m))?;
    Ok(ct_eq(&expected, decrypted.the_pop.as_bytes()))
}

/// The client's side: decrypts the POP proof value of `challenge` with the request's private
/// key, checks the witness (RFC 5272 §6.7 step 3) and computes the Decrypted POP. The request
/// goes back unchanged (a CRMF request's bodyPartID is its certReqId, inside the HMAC's data),
/// so the control names the request's own bodyPartID. Returns the request to send again and
/// the control.
pub fn answer(
    challenge: &EncryptedPop,
    key: &PKey<Private>,
) -> Result<(TaggedRequest, DecryptedPop), String> {
    let cms_der = challenge
        .cms
        .to_der()
        .map_err(|e| format!("Encrypted POP: {e}"))?;
    let secret = est_cms::RecipientSecret::PrivateKey {
        key: key.clone(),
        cert: None,
        ski: None,
    };
    let decrypted = est_cms::decrypt(&cms_der, &secret)
        .map_err(|e| format!("decrypting the POP value: {e}"))?;
    let value: Zeroizing<Vec<u8>> = decrypted.content;
    let witness = openssl::hash::hash(hash_alg(&challenge.witness_alg_id)?, &value)
        .map_err(|e| format!("witness: {e}"))?;
    if !ct_eq(&witness, challenge.witness.as_bytes()) {
        return Err(
            "the decrypted POP value does not match the server's witness: abort (RFC 5272 §6.7)"
                .into(),
        );
    }
    let request = challenge.request.clone();
    let body_part_id = request_body_part_id(&request)
        .ok_or("the Encrypted POP's request has no usable bodyPartID")?;
    let data = request_data(&request).map_err(|f| f.reason)?;
    let the_pop = pop_mac(&challenge.the_pop_alg_id, &value, &data)?;
    Ok((
        request,
        DecryptedPop {
            body_part_id,
            the_pop_alg_id: challenge.the_pop_alg_id.clone(),
            the_pop: OctetString::new(the_pop).map_err(|e| e.to_string())?,
        },
    ))
}

/// The bodyPartID of a TaggedRequest (a CRMF request's certReqId, CMC-6).
pub fn request_body_part_id(request: &TaggedRequest) -> Option<BodyPartId> {
    match request {
        TaggedRequest::Tcr(t) => Some(t.body_part_id),
        TaggedRequest::Crm(m) => m.cert_req.body_part_id(),
        TaggedRequest::Orm(o) => Some(o.body_part_id),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::client::{CertRequestBody, RequestOptions, build_decrypted_pop, build_pki_data};
    use crate::{CertificationRequest, RequestPolicy};

    fn keys() -> Vec<PKey<Private>> {
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let ec = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
        vec![rsa, ec]
    }

    fn subject() -> x509_cert::name::Name {
        use std::str::FromStr;
        x509_cert::name::Name::from_str("CN=encryption-only").unwrap()
    }

    #[test]
    fn challenge_answer_verify_rsa_and_ec() {
        for key in keys() {
            let opts = RequestOptions::random().unwrap();
            let body = CertRequestBody::CrmfEncryption {
                subject: subject(),
                extensions: Vec::new(),
            };
            let pki = build_pki_data(&opts, &body, &key).unwrap();
            let tagged = &pki.req_sequence[0];
            assert!(
                matches!(tagged, TaggedRequest::Crm(m) if wants_encrypted_pop(m.popo.as_ref()))
            );
            // The server's reading: CRMF with key encipherment/agreement POP is accepted for
            // the exchange, not refused.
            let r = CertificationRequest::read(tagged, RequestPolicy::default()).unwrap();
            assert!(r.encrypted_pop);
            assert_eq!(request_data(tagged).unwrap(), r.request_der);
            let value = [0x5au8; POP_VALUE_LEN];
            let enc = challenge(
                tagged,
                r.body_part_id,
                &r.spki_der,
                r.ski.as_deref(),
                &value,
            )
            .unwrap();
            // It survives DER, as it travels in a response.
            let enc = EncryptedPop::from_der(&enc.to_der().unwrap()).unwrap();
            let (again, dec) = answer(&enc, &key).unwrap();
            assert_eq!(dec.body_part_id, r.body_part_id);
            assert_eq!(&again, tagged);
            assert!(verify(&dec, &value, &r.request_der).unwrap());
            // Another value, another request, or a flipped bit: no match.
            assert!(!verify(&dec, &[0x5b; POP_VALUE_LEN], &r.request_der).unwrap());
            let mut other = r.request_der.clone();
            let last = other.len() - 1;
            other[last] ^= 1;
            assert!(!verify(&dec, &value, &other).unwrap());
            let mut bad = dec.clone();
            let mut pop = bad.the_pop.as_bytes().to_vec();
            pop[0] ^= 0x80;
            bad.the_pop = OctetString::new(pop).unwrap();
            assert!(!verify(&bad, &value, &r.request_der).unwrap());
            // The second-round PKIData carries the request and both controls.
            let second = build_decrypted_pop(&opts, &enc, &key).unwrap();
            let controls = crate::Controls::read(&second).unwrap();
            assert_eq!(controls.decrypted_pop.len(), 1);
            assert_eq!(controls.encrypted_pop.len(), 1);
            assert!(controls.unsupported.is_empty());
        }
    }

    #[test]
    fn a_wrong_key_or_witness_is_refused_by_the_client() {
        let ks = keys();
        let opts = RequestOptions::random().unwrap();
        let body = CertRequestBody::CrmfEncryption {
            subject: subject(),
            extensions: Vec::new(),
        };
        let pki = build_pki_data(&opts, &body, &ks[0]).unwrap();
        let tagged = &pki.req_sequence[0];
        let r = CertificationRequest::read(tagged, RequestPolicy::default()).unwrap();
        let value = [7u8; POP_VALUE_LEN];
        let mut enc = challenge(
            tagged,
            r.body_part_id,
            &r.spki_der,
            r.ski.as_deref(),
            &value,
        )
        .unwrap();
        let other = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        assert!(answer(&enc, &other).is_err(), "not our key");
        enc.witness = OctetString::new(vec![0u8; 32]).unwrap();
        let e = answer(&enc, &ks[0]).unwrap_err();
        assert!(e.contains("witness"), "{e}");
    }

    #[test]
    fn a_key_that_can_neither_be_encrypted_to_nor_agreed_with_is_refused() {
        let ed = PKey::generate_ed25519().unwrap();
        let spki = ed.public_key_to_der().unwrap();
        let opts = RequestOptions::random().unwrap();
        let rsa = &keys()[0];
        let pki = build_pki_data(
            &opts,
            &CertRequestBody::CrmfEncryption {
                subject: subject(),
                extensions: Vec::new(),
            },
            rsa,
        )
        .unwrap();
        let f = challenge(&pki.req_sequence[0], 4, &spki, None, &[1; 64]).unwrap_err();
        assert_eq!(f.fail_info, CmcFailInfo::BAD_ALG);
    }
}
