//! Encryption at rest for client secrets the authority keeps (registered key-encryption keys,
//! recipient certificates): AES-256-GCM under a key derived from the server's secret.
//!
//! A sealed value is `version (1) || nonce (12) || ciphertext || tag (16)`. The caller's context
//! (owner, kind, identifier) is authenticated as associated data, so a sealed value copied onto
//! another row, or another owner's, fails to open instead of yielding that secret.
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use zeroize::Zeroizing;

use crate::CaError;

const VERSION: u8 = 1;
const NONCE: usize = 12;
const TAG: usize = 16;

/// The sealing key. Its bytes are zeroized on drop and never printed.
pub struct SecretBox {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// Derives the sealing key from the server secret (e.g. the key-file passphrase) with
    /// HMAC-SHA256 under a fixed purpose label, so it differs from every other use of the secret.
    pub fn from_server_secret(secret: &[u8]) -> Result<Self, CaError> {
        if secret.len() < 16 {
            return Err(CaError::Internal(
                "the server secret is too short (16 bytes at least)".into(),
            ));
        }
        let pkey = openssl::pkey::PKey::hmac(secret)?;
        let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey)?;
        signer.update(b"estuary secret box v1")?;
        let mac = Zeroizing::new(signer.sign_to_vec()?);
        let mut key = Zeroizing::new([0u8; 32]);
        if mac.len() != key.len() {
            return Err(CaError::Internal("HMAC-SHA256 gave an odd length".into()));
        }
        key.copy_from_slice(&mac);
        Ok(Self { key })
    }

    /// A 64-byte value derived from the sealing key for `purpose` and `data`
    /// (HMAC-SHA512(key, purpose ‖ 0x00 ‖ data)): the same on every node holding the server
    /// secret, unpredictable to anyone else.
    pub fn derive(&self, purpose: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>, CaError> {
        let pkey = openssl::pkey::PKey::hmac(&self.key[..])?;
        let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha512(), &pkey)?;
        signer.update(purpose)?;
        signer.update(&[0])?;
        signer.update(data)?;
        Ok(Zeroizing::new(signer.sign_to_vec()?))
    }

    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CaError> {
        let mut nonce = [0u8; NONCE];
        openssl::rand::rand_bytes(&mut nonce)?;
        let mut tag = [0u8; TAG];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key[..],
            Some(&nonce),
            context,
            plaintext,
            &mut tag,
        )?;
        let mut out = Vec::with_capacity(1 + NONCE + ct.len() + TAG);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CaError> {
        let bad = || {
            CaError::Internal(
                "a sealed secret does not open (wrong server secret or tampered store)".into(),
            )
        };
        let (&version, rest) = sealed.split_first().ok_or_else(bad)?;
        if version != VERSION || rest.len() < NONCE + TAG {
            return Err(bad());
        }
        let (nonce, rest) = rest.split_at(NONCE);
        let (ct, tag) = rest.split_at(rest.len() - TAG);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key[..],
            Some(nonce),
            context,
            ct,
            tag,
        )
        .map(Zeroizing::new)
        .map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let b = SecretBox::from_server_secret(b"0123456789abcdef0123").unwrap();
        let s = b.seal(b"user:a|kek|k1", b"secret key bytes").unwrap();
        assert!(!s.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            &b.open(b"user:a|kek|k1", &s).unwrap()[..],
            b"secret key bytes"
        );
        // Another context (row), another server secret, a flipped bit, a truncation: refused.
        assert!(b.open(b"user:b|kek|k1", &s).is_err());
        let other = SecretBox::from_server_secret(b"another server secret").unwrap();
        assert!(other.open(b"user:a|kek|k1", &s).is_err());
        let mut t = s.clone();
        t[20] ^= 1;
        assert!(b.open(b"user:a|kek|k1", &t).is_err());
        assert!(b.open(b"user:a|kek|k1", &s[..10]).is_err());
        assert!(b.open(b"", &[]).is_err());
        assert!(SecretBox::from_server_secret(b"short").is_err());
        assert_eq!(format!("{b:?}"), "SecretBox(..)");
    }
}
