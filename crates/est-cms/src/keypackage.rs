//! RFC 5958 AsymmetricKeyPackage (content type id-ct-KP-aKeyPackage), the payload of EST
//! server-side key generation with encryption (RFC 7030 §4.4.2).
//!
//! ```text
//! AsymmetricKeyPackage ::= SEQUENCE SIZE (1..MAX) OF OneAsymmetricKey
//! ```
//! (RFC 5958 §2). `OneAsymmetricKey` is `pkcs8::PrivateKeyInfoOwned`, which drops the
//! `attributes` field.
use der::asn1::BitString;
use der::{Decode, Encode};
use openssl::pkey::{PKey, Private};
use pkcs8::PrivateKeyInfoOwned;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{CmsError, Result};

/// One key of a package, with its private key bytes held in a zeroizing buffer.
#[derive(Clone)]
pub struct PackagedKey {
    /// privateKeyAlgorithm.
    pub algorithm: AlgorithmIdentifierOwned,
    /// privateKey (the OCTET STRING contents, e.g. RSAPrivateKey or ECPrivateKey DER).
    pub private_key: Zeroizing<Vec<u8>>,
    /// publicKey [1] (v2 only), the raw BIT STRING contents.
    pub public_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for PackagedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackagedKey")
            .field("algorithm", &self.algorithm.oid)
            .field("has_public_key", &self.public_key.is_some())
            .finish_non_exhaustive()
    }
}

impl PackagedKey {
    /// DER PKCS#8 v1 PrivateKeyInfo (no publicKey), which every OpenSSL reads.
    pub fn to_pkcs8_v1_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        let pki = PrivateKeyInfoOwned::new(
            self.algorithm.clone(),
            der::asn1::OctetString::new(self.private_key.as_slice())?,
        );
        let der = Zeroizing::new(pki.to_der()?);
        wipe(pki);
        Ok(der)
    }

    /// The key as an OpenSSL private key.
    pub fn to_pkey(&self) -> Result<PKey<Private>> {
        Ok(PKey::private_key_from_pkcs8(&self.to_pkcs8_v1_der()?)?)
    }
}

fn wipe(pki: PrivateKeyInfoOwned) {
    let mut bytes = pki.private_key.into_bytes();
    bytes.zeroize();
}

/// A v2 OneAsymmetricKey (with publicKey [1]) for `key`, as DER.
pub fn one_asymmetric_key(key: &PKey<Private>) -> Result<Zeroizing<Vec<u8>>> {
    let mut pki = v2_info(key)?;
    let der = pki.to_der();
    pki.public_key = None;
    wipe(pki);
    Ok(Zeroizing::new(der?))
}

fn v2_info(key: &PKey<Private>) -> Result<PrivateKeyInfoOwned> {
    let v1 = Zeroizing::new(key.private_key_to_pkcs8()?);
    let mut pki = PrivateKeyInfoOwned::from_der(&v1)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der()?)?;
    let bits: BitString = spki.subject_public_key;
    pki.public_key = Some(bits);
    Ok(pki)
}

/// DER AsymmetricKeyPackage of v2 OneAsymmetricKeys, one per key (at least one).
pub fn encode_key_package(keys: &[&PKey<Private>]) -> Result<Zeroizing<Vec<u8>>> {
    if keys.is_empty() {
        return Err(CmsError::invalid(
            "an AsymmetricKeyPackage needs at least one key",
        ));
    }
    let infos = keys
        .iter()
        .map(|k| v2_info(k))
        .collect::<Result<Vec<_>>>()?;
    let der = infos.to_der();
    infos.into_iter().for_each(wipe);
    Ok(Zeroizing::new(der?))
}

/// Decode an AsymmetricKeyPackage (v1 and v2 OneAsymmetricKey accepted).
pub fn decode_key_package(der: &[u8]) -> Result<Vec<PackagedKey>> {
    let infos = Vec::<PrivateKeyInfoOwned>::from_der(der)?;
    if infos.is_empty() {
        return Err(CmsError::malformed("empty AsymmetricKeyPackage"));
    }
    Ok(infos
        .into_iter()
        .map(|pki| {
            let public_key = pki.public_key.as_ref().map(|b| b.raw_bytes().to_vec());
            let algorithm = pki.algorithm.clone();
            let private_key = Zeroizing::new(pki.private_key.as_bytes().to_vec());
            wipe(pki);
            PackagedKey {
                algorithm,
                private_key,
                public_key,
            }
        })
        .collect())
}
