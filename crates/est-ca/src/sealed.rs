//! Secrets that the server must be able to use but must not store in the clear: AES-256-GCM
//! under a key derived from the server secret (a random file in the data dir, mode 0600).
//!
//! HTTP Digest needs H(user:realm:password) to verify a response, and that value is a password
//! equivalent for the realm; it is therefore stored sealed (EST-42, "stored hashed or encrypted
//! at rest"), bound to its user name by the AEAD's associated data so that sealed values cannot
//! be swapped between users in the database.
use std::fmt;

use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use zeroize::Zeroizing;

use crate::CaError;

const VERSION: u8 = 1;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// An AES-256-GCM key for one purpose, derived from the server secret.
#[derive(Clone)]
pub struct SealingKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    /// `HMAC-SHA256(server_secret, "estuary sealing key v1 " ‖ purpose)`: one PRF call, the
    /// HKDF-Expand of a uniformly random secret.
    pub fn derive(server_secret: &[u8], purpose: &str) -> Result<Self, CaError> {
        if server_secret.len() < 16 {
            return Err(CaError::Internal("server secret too short".into()));
        }
        let pkey = openssl::pkey::PKey::hmac(server_secret)?;
        let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey)?;
        s.update(b"estuary sealing key v1 ")?;
        s.update(purpose.as_bytes())?;
        let mut out = Zeroizing::new([0u8; 32]);
        let mac = Zeroizing::new(s.sign_to_vec()?);
        out.copy_from_slice(&mac[..32]);
        Ok(Self(out))
    }

    /// `version ‖ iv ‖ ciphertext ‖ tag`, with `aad` authenticated but not stored.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CaError> {
        let mut iv = [0u8; IV_LEN];
        openssl::rand::rand_bytes(&mut iv)?;
        let mut tag = [0u8; TAG_LEN];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.0[..],
            Some(&iv),
            aad,
            plaintext,
            &mut tag,
        )?;
        let mut out = Vec::with_capacity(1 + IV_LEN + ct.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a value sealed with the same key and `aad`; fails on any change.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CaError> {
        let bad = || CaError::Internal("sealed secret does not open (wrong server secret?)".into());
        if sealed.len() < 1 + IV_LEN + TAG_LEN || sealed[0] != VERSION {
            return Err(bad());
        }
        let iv = &sealed[1..1 + IV_LEN];
        let (ct, tag) = sealed[1 + IV_LEN..].split_at(sealed.len() - 1 - IV_LEN - TAG_LEN);
        decrypt_aead(Cipher::aes_256_gcm(), &self.0[..], Some(iv), aad, ct, tag)
            .map(Zeroizing::new)
            .map_err(|_| bad())
    }
}

/// The Digest HA1 values of one user for one realm: `(algorithm name, lowercase hex)` pairs,
/// e.g. `("SHA-256", "...")`. The algorithm names are RFC 7616's tokens; this crate does not
/// compute them (the HTTP front end does), it only keeps them sealed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DigestSecrets {
    pub realm: String,
    pub ha1: Vec<(String, Zeroizing<String>)>,
}

impl fmt::Debug for DigestSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algs: Vec<&str> = self.ha1.iter().map(|(a, _)| a.as_str()).collect();
        f.debug_struct("DigestSecrets")
            .field("realm", &self.realm)
            .field("algorithms", &algs)
            .finish()
    }
}

fn aad(user: &str) -> Vec<u8> {
    let mut a = b"estuary digest-ha1 v1\0".to_vec();
    a.extend_from_slice(user.as_bytes());
    a
}

impl DigestSecrets {
    /// The HA1 for `algorithm` (case-insensitive name), if stored.
    pub fn get(&self, algorithm: &str) -> Option<&str> {
        self.ha1
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(algorithm))
            .map(|(_, h)| h.as_str())
    }

    /// Serialised as lines: the realm, then `ALG:hex` per algorithm; then sealed for `user`.
    pub fn seal(&self, key: &SealingKey, user: &str) -> Result<Vec<u8>, CaError> {
        if self.realm.contains('\n') {
            return Err(CaError::Internal("realm contains a newline".into()));
        }
        let mut text = Zeroizing::new(String::new());
        text.push_str(&self.realm);
        for (alg, h) in &self.ha1 {
            text.push('\n');
            text.push_str(alg);
            text.push(':');
            text.push_str(h);
        }
        key.seal(&aad(user), text.as_bytes())
    }

    pub fn open(key: &SealingKey, user: &str, sealed: &[u8]) -> Result<Self, CaError> {
        let plain = key.open(&aad(user), sealed)?;
        let text = std::str::from_utf8(&plain)
            .map_err(|_| CaError::Internal("sealed digest secrets are not text".into()))?;
        let mut lines = text.split('\n');
        let realm = lines.next().unwrap_or_default().to_owned();
        let ha1 = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(a, h)| (a.to_owned(), Zeroizing::new(h.to_owned())))
            .collect();
        Ok(Self { realm, ha1 })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let k = SealingKey::derive(&[7u8; 32], "digest").unwrap();
        let s = DigestSecrets {
            realm: "estuary".into(),
            ha1: vec![
                ("SHA-256".into(), Zeroizing::new("aa".repeat(32))),
                ("MD5".into(), Zeroizing::new("bb".repeat(16))),
            ],
        };
        let sealed = s.seal(&k, "alice").unwrap();
        assert!(!sealed.windows(4).any(|w| w == b"aaaa"), "not in the clear");
        let back = DigestSecrets::open(&k, "alice", &sealed).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.get("md5"), Some("bb".repeat(16).as_str()));
        // Bound to the user, the key and every byte.
        assert!(DigestSecrets::open(&k, "bob", &sealed).is_err());
        let other = SealingKey::derive(&[8u8; 32], "digest").unwrap();
        assert!(DigestSecrets::open(&other, "alice", &sealed).is_err());
        let purpose = SealingKey::derive(&[7u8; 32], "other").unwrap();
        assert!(DigestSecrets::open(&purpose, "alice", &sealed).is_err());
        let mut t = sealed.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(DigestSecrets::open(&k, "alice", &t).is_err());
        assert!(DigestSecrets::open(&k, "alice", &sealed[..10]).is_err());
        // Two seals of the same value differ (random IV).
        assert_ne!(s.seal(&k, "alice").unwrap(), sealed);
        assert!(SealingKey::derive(b"short", "x").is_err());
    }
}
