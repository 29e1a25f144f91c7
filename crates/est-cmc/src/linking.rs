//! Shared-secret computations: Identity Proof (RFC 5272 §6.2, CMC-44, CMC-45) and POP Link
//! Witness (§6.3.1, CMC-48). Comparisons are constant time.
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use crate::PopLinkWitness;
use crate::controls::{IdentifyProofV2, PopLinkWitnessV2};
use crate::oids;

pub(crate) fn hash_alg(alg: &AlgorithmIdentifierOwned) -> Result<MessageDigest, String> {
    Ok(match alg.oid {
        oids::SHA1 => MessageDigest::sha1(),
        oids::SHA256 => MessageDigest::sha256(),
        oids::SHA384 => MessageDigest::sha384(),
        oids::SHA512 => MessageDigest::sha512(),
        other => return Err(format!("hash algorithm {other} is not supported")),
    })
}

pub(crate) fn mac_alg(alg: &AlgorithmIdentifierOwned) -> Result<MessageDigest, String> {
    Ok(match alg.oid {
        oids::HMAC_SHA1 | oids::HMAC_WITH_SHA1 => MessageDigest::sha1(),
        oids::HMAC_WITH_SHA256 => MessageDigest::sha256(),
        oids::HMAC_WITH_SHA384 => MessageDigest::sha384(),
        oids::HMAC_WITH_SHA512 => MessageDigest::sha512(),
        other => return Err(format!("MAC algorithm {other} is not supported")),
    })
}

/// HMAC with `md`.
pub fn hmac(md: MessageDigest, key: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    let err = |e: openssl::error::ErrorStack| format!("HMAC: {e}");
    let pkey = PKey::hmac(key).map_err(err)?;
    let mut s = Signer::new(md, &pkey).map_err(err)?;
    s.sign_oneshot_to_vec(data).map_err(err)
}

fn digest(md: MessageDigest, parts: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut h = openssl::hash::Hasher::new(md).map_err(|e| e.to_string())?;
    for p in parts {
        h.update(p).map_err(|e| e.to_string())?;
    }
    Ok(Zeroizing::new(
        h.finish().map_err(|e| e.to_string())?.to_vec(),
    ))
}

pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

/// The Identity Proof V2 witness (CMC-44): MAC(key = H(sharedSecret ‖ identification), DER of
/// reqSequence); identification is appended only when the control is present.
pub fn identity_proof_v2_witness(
    proof_alg: &AlgorithmIdentifierOwned,
    mac: &AlgorithmIdentifierOwned,
    secret: &[u8],
    identification: Option<&[u8]>,
    req_sequence_der: &[u8],
) -> Result<Vec<u8>, String> {
    let key = digest(
        hash_alg(proof_alg)?,
        &[secret, identification.unwrap_or(&[])],
    )?;
    hmac(mac_alg(mac)?, &key, req_sequence_der)
}

/// Whether an Identity Proof V2 verifies.
pub fn identity_proof_v2(
    proof: &IdentifyProofV2,
    secret: &[u8],
    identification: Option<&[u8]>,
    req_sequence_der: &[u8],
) -> Result<bool, String> {
    let w = identity_proof_v2_witness(
        &proof.proof_alg_id,
        &proof.mac_alg_id,
        secret,
        identification,
        req_sequence_der,
    )?;
    Ok(ct_eq(&w, proof.witness.as_bytes()))
}

/// The version 1 Identity Proof: HMAC-SHA1(key = SHA-1(sharedSecret), reqSequence) (CMC-45).
pub fn identity_proof_v1_witness(
    secret: &[u8],
    req_sequence_der: &[u8],
) -> Result<Vec<u8>, String> {
    let key = digest(MessageDigest::sha1(), &[secret])?;
    hmac(MessageDigest::sha1(), &key, req_sequence_der)
}

pub fn identity_proof_v1(
    witness: &[u8],
    secret: &[u8],
    req_sequence_der: &[u8],
) -> Result<bool, String> {
    Ok(ct_eq(
        &identity_proof_v1_witness(secret, req_sequence_der)?,
        witness,
    ))
}

/// POP Link Witness: MAC(key = keyGen(sharedSecret), R) (CMC-48); V1 is SHA-1/HMAC-SHA1.
pub fn pop_link_witness(w: &PopLinkWitness, secret: &[u8], random: &[u8]) -> Result<bool, String> {
    match w {
        PopLinkWitness::V2(PopLinkWitnessV2 {
            key_gen_algorithm,
            mac_algorithm,
            witness,
        }) => {
            let key = digest(hash_alg(key_gen_algorithm)?, &[secret])?;
            let mac = hmac(mac_alg(mac_algorithm)?, &key, random)?;
            Ok(ct_eq(&mac, witness.as_bytes()))
        }
        PopLinkWitness::V1(witness) => {
            let key = digest(MessageDigest::sha1(), &[secret])?;
            let mac = hmac(MessageDigest::sha1(), &key, random)?;
            Ok(ct_eq(&mac, witness))
        }
    }
}
