//! PasswordRecipientInfo (RFC 3211, RFC 5652 §6.2.4): PBKDF2 and the id-alg-PWRI-KEK wrap.
use cms::content_info::CmsVersion;
use cms::enveloped_data::PasswordRecipientInfo;
use der::asn1::OctetString;
use der::{Any, Sequence};
use openssl::hash::MessageDigest;
use openssl::symm::{Crypter, Mode};
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use crate::alg::{ContentEncryption, alg_null, alg_with, iv_param, random};
use crate::error::{CmsError, Result};
use crate::oids;

/// Upper bound on the PBKDF2 iteration count accepted from a message, so that a hostile
/// message cannot pin a CPU (our own default is [`PwriParams::DEFAULT_ITERATIONS`]).
pub const MAX_PBKDF2_ITERATIONS: u32 = 2_000_000;

const BLOCK: usize = 16;

/// ```text
/// PBKDF2-params ::= SEQUENCE {
///   salt CHOICE { specified OCTET STRING, otherSource AlgorithmIdentifier },
///   iterationCount INTEGER (1..MAX),
///   keyLength INTEGER (1..MAX) OPTIONAL,
///   prf AlgorithmIdentifier DEFAULT algid-hmacWithSHA1 }
/// ```
/// RFC 8018 §A.2 (as used by RFC 3211 §2.1). Only the `specified` salt is supported; a
/// `None` prf means the default hmacWithSHA1.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct Pbkdf2Params {
    /// salt (specified).
    pub salt: OctetString,
    /// iterationCount.
    pub iteration_count: u32,
    /// keyLength in bytes.
    pub key_length: Option<u32>,
    /// prf.
    pub prf: Option<AlgorithmIdentifierOwned>,
}

/// How a password recipient derives and uses its KEK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PwriParams {
    /// PBKDF2 iteration count (PRF hmacWithSHA256, 16-byte random salt).
    pub iterations: u32,
    /// The AES-CBC cipher of id-alg-PWRI-KEK (RFC 3211 §2.3); the KEK has its key size.
    pub kek_cipher: ContentEncryption,
}

impl PwriParams {
    /// Our default iteration count.
    pub const DEFAULT_ITERATIONS: u32 = 100_000;
}

impl Default for PwriParams {
    fn default() -> Self {
        Self {
            iterations: Self::DEFAULT_ITERATIONS,
            kek_cipher: ContentEncryption::Aes256Cbc,
        }
    }
}

/// Build a version-0 PasswordRecipientInfo carrying `cek`.
pub(crate) fn wrap(
    password: &[u8],
    params: &PwriParams,
    cek: &[u8],
) -> Result<PasswordRecipientInfo> {
    if params.iterations == 0 {
        return Err(CmsError::invalid(
            "PBKDF2 iteration count must be at least 1",
        ));
    }
    let salt = random(16)?;
    let cipher = params.kek_cipher;
    let kek = derive(
        password,
        &salt,
        params.iterations,
        MessageDigest::sha256(),
        cipher.key_len(),
    )?;
    let iv = random(BLOCK)?;
    let wrapped = kek_wrap(cipher, &kek, &iv, cek)?;
    let pbkdf2 = Pbkdf2Params {
        salt: OctetString::new(salt.as_slice())?,
        iteration_count: params.iterations,
        key_length: None,
        prf: Some(alg_null(oids::HMAC_WITH_SHA256)),
    };
    let kek_alg = alg_with(
        cipher.oid(),
        Any::encode_from(&OctetString::new(iv.as_slice())?)?,
    );
    Ok(PasswordRecipientInfo {
        version: CmsVersion::V0,
        key_derivation_alg: Some(alg_with(oids::ID_PBKDF2, Any::encode_from(&pbkdf2)?)),
        key_enc_alg: alg_with(oids::ID_ALG_PWRI_KEK, Any::encode_from(&kek_alg)?),
        enc_key: OctetString::new(wrapped)?,
    })
}

/// Recover the content-encryption (or MAC) key of a PasswordRecipientInfo.
pub(crate) fn unwrap(pwri: &PasswordRecipientInfo, password: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let kda = pwri
        .key_derivation_alg
        .as_ref()
        .ok_or_else(|| CmsError::unsupported("pwri without keyDerivationAlgorithm"))?;
    if kda.oid != oids::ID_PBKDF2 {
        return Err(CmsError::unsupported(format!("key derivation {}", kda.oid)));
    }
    let p: Pbkdf2Params = kda
        .parameters
        .as_ref()
        .ok_or_else(|| CmsError::malformed("PBKDF2 parameters missing"))?
        .decode_as()?;
    if p.iteration_count == 0 || p.iteration_count > MAX_PBKDF2_ITERATIONS {
        return Err(CmsError::malformed("PBKDF2 iteration count out of range"));
    }
    let prf = match p.prf.as_ref().map(|a| a.oid) {
        None | Some(oids::HMAC_WITH_SHA1) => MessageDigest::sha1(),
        Some(oids::HMAC_WITH_SHA256) => MessageDigest::sha256(),
        Some(oids::HMAC_WITH_SHA384) => MessageDigest::sha384(),
        Some(oids::HMAC_WITH_SHA512) => MessageDigest::sha512(),
        Some(other) => return Err(CmsError::unsupported(format!("PBKDF2 PRF {other}"))),
    };
    if pwri.key_enc_alg.oid != oids::ID_ALG_PWRI_KEK {
        return Err(CmsError::unsupported(format!(
            "pwri key encryption {}",
            pwri.key_enc_alg.oid
        )));
    }
    let kek_alg: AlgorithmIdentifierOwned = pwri
        .key_enc_alg
        .parameters
        .as_ref()
        .ok_or_else(|| CmsError::malformed("id-alg-PWRI-KEK parameters missing"))?
        .decode_as()?;
    let cipher = ContentEncryption::from_oid(&kek_alg.oid)
        .ok_or_else(|| CmsError::unsupported(format!("PWRI KEK cipher {}", kek_alg.oid)))?;
    let iv = iv_param(&kek_alg)?;
    if let Some(len) = p.key_length
        && usize::try_from(len).ok() != Some(cipher.key_len())
    {
        return Err(CmsError::malformed(
            "PBKDF2 keyLength does not match the KEK cipher",
        ));
    }
    let kek = derive(
        password,
        p.salt.as_bytes(),
        p.iteration_count,
        prf,
        cipher.key_len(),
    )?;
    kek_unwrap(cipher, &kek, &iv, pwri.enc_key.as_bytes())
}

fn derive(
    password: &[u8],
    salt: &[u8],
    iter: u32,
    md: MessageDigest,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut kek = Zeroizing::new(vec![0u8; len]);
    let iter = usize::try_from(iter).map_err(|_| CmsError::invalid("iteration count"))?;
    openssl::pkcs5::pbkdf2_hmac(password, salt, iter, md, &mut kek)?;
    Ok(kek)
}

/// AES-CBC over whole blocks, no padding.
fn cbc(
    cipher: ContentEncryption,
    mode: Mode,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let mut c = Crypter::new(cipher.cipher(), mode, key, Some(iv))?;
    c.pad(false);
    let mut out = Zeroizing::new(vec![0u8; data.len() + BLOCK]);
    let n = c.update(data, &mut out)?;
    let rest = out.get_mut(n..).ok_or(CmsError::DecryptionFailed)?;
    let m = c.finalize(rest)?;
    out.truncate(n + m);
    Ok(out)
}

/// RFC 3211 §2.3.1: length byte, check bytes, key, random padding to a whole number of (at
/// least two) blocks, then two CBC passes, the second chained from the first's last block.
fn kek_wrap(cipher: ContentEncryption, kek: &[u8], iv: &[u8], cek: &[u8]) -> Result<Vec<u8>> {
    let (len_byte, check) = match (u8::try_from(cek.len()), cek.get(..3)) {
        (Ok(l), Some(c)) => (l, c),
        _ => return Err(CmsError::invalid("key to wrap must be 3..=255 bytes")),
    };
    let total = (4 + cek.len()).div_ceil(BLOCK).max(2) * BLOCK;
    let mut block = Zeroizing::new(Vec::with_capacity(total));
    block.push(len_byte);
    block.extend(check.iter().map(|b| !b));
    block.extend_from_slice(cek);
    let pad = random(total - block.len())?;
    block.extend_from_slice(&pad);
    let first = cbc(cipher, Mode::Encrypt, kek, iv, &block)?;
    let last = first
        .get(first.len() - BLOCK..)
        .ok_or_else(|| CmsError::invalid("short wrap"))?;
    let second = cbc(cipher, Mode::Encrypt, kek, last, &first)?;
    Ok(second.to_vec())
}

/// RFC 3211 §2.3.2. Every failure is [`CmsError::DecryptionFailed`].
fn kek_unwrap(
    cipher: ContentEncryption,
    kek: &[u8],
    iv: &[u8],
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let n = wrapped.len();
    if n < 2 * BLOCK || !n.is_multiple_of(BLOCK) {
        return Err(CmsError::DecryptionFailed);
    }
    let fail = |_| CmsError::DecryptionFailed;
    let prev = wrapped
        .get(n - 2 * BLOCK..n - BLOCK)
        .ok_or(CmsError::DecryptionFailed)?;
    let last = wrapped.get(n - BLOCK..).ok_or(CmsError::DecryptionFailed)?;
    // The last block of the first pass: decrypt the last block chained on the one before.
    let first_last = cbc(cipher, Mode::Decrypt, kek, prev, last).map_err(fail)?;
    let first = cbc(cipher, Mode::Decrypt, kek, &first_last, wrapped).map_err(fail)?;
    let plain = cbc(cipher, Mode::Decrypt, kek, iv, &first).map_err(fail)?;
    let (len, check, rest) = match (plain.first(), plain.get(1..4), plain.get(4..)) {
        (Some(&l), Some(c), Some(r)) => (usize::from(l), c, r),
        _ => return Err(CmsError::DecryptionFailed),
    };
    let key = rest.get(..len).ok_or(CmsError::DecryptionFailed)?;
    let key_check = key.get(..3).ok_or(CmsError::DecryptionFailed)?;
    let diff = check
        .iter()
        .zip(key_check)
        .fold(0u8, |acc, (c, k)| acc | (c ^ k ^ 0xff));
    if diff != 0 {
        return Err(CmsError::DecryptionFailed);
    }
    Ok(Zeroizing::new(key.to_vec()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn rfc3211_wrap_round_trips_for_every_aes_key_size() {
        for cipher in [
            ContentEncryption::Aes128Cbc,
            ContentEncryption::Aes192Cbc,
            ContentEncryption::Aes256Cbc,
        ] {
            for cek_len in [16, 24, 32] {
                let kek = vec![7u8; cipher.key_len()];
                let iv = [1u8; 16];
                let cek: Vec<u8> = (0..cek_len as u8).collect();
                let w = kek_wrap(cipher, &kek, &iv, &cek).unwrap();
                assert!(w.len() >= 32 && w.len().is_multiple_of(16));
                assert_eq!(
                    kek_unwrap(cipher, &kek, &iv, &w).unwrap().as_slice(),
                    cek.as_slice()
                );
                let wrong = vec![8u8; cipher.key_len()];
                assert!(kek_unwrap(cipher, &wrong, &iv, &w).is_err());
            }
        }
    }

    #[test]
    fn unwrap_rejects_short_and_ragged_input() {
        let kek = [0u8; 16];
        for n in [0usize, 1, 16, 31, 33] {
            assert!(kek_unwrap(ContentEncryption::Aes128Cbc, &kek, &[0; 16], &vec![0; n]).is_err());
        }
    }

    #[test]
    fn pwri_round_trip_and_wrong_password() {
        let params = PwriParams {
            iterations: 1000,
            kek_cipher: ContentEncryption::Aes128Cbc,
        };
        let cek = [9u8; 32];
        let ri = wrap(b"secret", &params, &cek).unwrap();
        assert_eq!(unwrap(&ri, b"secret").unwrap().as_slice(), &cek);
        assert!(unwrap(&ri, b"Secret").is_err());
    }

    #[test]
    fn pbkdf2_params_round_trip_byte_equal() {
        use der::{Decode, Encode};
        let ri = wrap(
            b"pw",
            &PwriParams {
                iterations: 1,
                kek_cipher: ContentEncryption::Aes192Cbc,
            },
            &[1; 16],
        )
        .unwrap();
        let params = ri
            .key_derivation_alg
            .as_ref()
            .unwrap()
            .parameters
            .as_ref()
            .unwrap();
        let p: Pbkdf2Params = params.decode_as().unwrap();
        assert_eq!(p.iteration_count, 1);
        assert_eq!(p.prf.as_ref().unwrap().oid, oids::HMAC_WITH_SHA256);
        let der = p.to_der().unwrap();
        assert_eq!(Pbkdf2Params::from_der(&der).unwrap().to_der().unwrap(), der);
        let with_len = Pbkdf2Params {
            key_length: Some(24),
            prf: None,
            ..p
        };
        let der = with_len.to_der().unwrap();
        assert_eq!(Pbkdf2Params::from_der(&der).unwrap(), with_len);
        let ri_der = ri.to_der().unwrap();
        assert_eq!(
            PasswordRecipientInfo::from_der(&ri_der)
                .unwrap()
                .to_der()
                .unwrap(),
            ri_der
        );
    }
}
