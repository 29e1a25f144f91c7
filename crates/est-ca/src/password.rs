//! Password hashing (argon2id, PHC strings at rest) and verification with a keyed cache, so a
//! client over keep-alive does not pay an argon2 computation on every request.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use zeroize::Zeroizing;

use crate::CaError;

/// Creates PHC-format argon2id hashes (RFC 9106 second recommended option: m=19 MiB, t=2, p=1).
#[derive(Debug, Default, Clone, Copy)]
pub struct PasswordHasher;

impl PasswordHasher {
    pub fn hash(password: &[u8]) -> Result<String, CaError> {
        let mut salt = [0u8; 16];
        openssl::rand::rand_bytes(&mut salt)?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| CaError::Internal(e.to_string()))?;
        Argon2::default()
            .hash_password(password, &salt)
            .map(|h| h.to_string())
            .map_err(|e| CaError::Internal(format!("argon2: {e}")))
    }
}

/// Verifies passwords against PHC hashes. Successful verifications are remembered for a short
/// time under HMAC-SHA256(process-random key, user ‖ hash ‖ password): the cache holds no
/// password and no value usable offline without the in-memory key, and any change of the stored
/// hash (password change, user removed and re-added) misses the cache.
#[derive(Debug)]
pub struct PasswordVerifier {
    key: Zeroizing<Vec<u8>>,
    ttl: Duration,
    max_entries: usize,
    cache: Mutex<HashMap<[u8; 32], Instant>>,
    dummy_hash: String,
}

impl PasswordVerifier {
    pub fn new(ttl: Duration) -> Result<Self, CaError> {
        let mut key = Zeroizing::new(vec![0u8; 32]);
        openssl::rand::rand_bytes(&mut key)?;
        let dummy_hash = PasswordHasher::hash(b"estuary-dummy-password")?;
        Ok(Self {
            key,
            ttl,
            max_entries: 65536,
            cache: Mutex::new(HashMap::new()),
            dummy_hash,
        })
    }

    fn cache_key(&self, user: &str, phc: &str, password: &[u8]) -> Result<[u8; 32], CaError> {
        let pkey = PKey::hmac(&self.key)?;
        let mut s = Signer::new(MessageDigest::sha256(), &pkey)?;
        for part in [user.as_bytes(), &[0], phc.as_bytes(), &[0], password] {
            s.update(part)?;
        }
        let mac = s.sign_to_vec()?;
        let mut out = [0u8; 32];
        out.copy_from_slice(&mac[..32]);
        Ok(out)
    }

    /// Checks `password` for `user` against `phc` (None when the user does not exist: a dummy
    /// verification still runs, so timing does not reveal which users exist, SEC-17).
    pub fn verify(&self, user: &str, phc: Option<&str>, password: &[u8]) -> Result<bool, CaError> {
        let Some(phc) = phc else {
            let _ = self.argon2_verify(&self.dummy_hash, password);
            return Ok(false);
        };
        let key = self.cache_key(user, phc, password)?;
        let now = Instant::now();
        if let Ok(cache) = self.cache.lock()
            && cache
                .get(&key)
                .is_some_and(|t| now.duration_since(*t) < self.ttl)
        {
            return Ok(true);
        }
        let ok = self.argon2_verify(phc, password);
        if ok && let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= self.max_entries {
                cache.retain(|_, t| now.duration_since(*t) < self.ttl);
                if cache.len() >= self.max_entries {
                    cache.clear();
                }
            }
            cache.insert(key, now);
        }
        Ok(ok)
    }

    fn argon2_verify(&self, phc: &str, password: &[u8]) -> bool {
        match PasswordHash::new(phc) {
            Ok(h) => Argon2::default().verify_password(password, &h).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = PasswordHasher::hash(b"s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        let v = PasswordVerifier::new(Duration::from_secs(60)).unwrap();
        assert!(v.verify("u", Some(&h), b"s3cret").unwrap());
        // cached path
        assert!(v.verify("u", Some(&h), b"s3cret").unwrap());
        assert!(!v.verify("u", Some(&h), b"wrong").unwrap());
        assert!(!v.verify("other", None, b"s3cret").unwrap());
        // a different hash for the same user misses the cache
        let h2 = PasswordHasher::hash(b"new").unwrap();
        assert!(!v.verify("u", Some(&h2), b"s3cret").unwrap());
    }
}
