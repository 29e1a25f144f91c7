//! Password hashing (argon2id, PHC strings at rest) and verification with a keyed cache, so a
//! client over keep-alive does not pay an argon2 computation on every request.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use zeroize::{Zeroize, Zeroizing};

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

    /// HMAC-SHA256 (RFC 2104) over the length-prefixed parts, on the low-level SHA-256 so the
    /// hot path makes no OpenSSL algorithm fetch.
    fn cache_key(&self, user: &str, phc: &str, password: &[u8]) -> [u8; 32] {
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, k) in self.key.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let mut inner = openssl::sha::Sha256::new();
        inner.update(&ipad);
        for part in [user.as_bytes(), phc.as_bytes(), password] {
            inner.update(&(part.len() as u64).to_be_bytes());
            inner.update(part);
        }
        let mut inner_digest = inner.finish();
        let mut outer = openssl::sha::Sha256::new();
        outer.update(&opad);
        outer.update(&inner_digest);
        inner_digest.zeroize();
        ipad.zeroize();
        opad.zeroize();
        outer.finish()
    }

    /// Checks `password` for `user` against `phc` (None when the user does not exist: a dummy
    /// verification still runs, so timing does not reveal which users exist, SEC-17).
    pub fn verify(&self, user: &str, phc: Option<&str>, password: &[u8]) -> Result<bool, CaError> {
        let Some(phc) = phc else {
            let _ = self.argon2_verify(&self.dummy_hash, password);
            return Ok(false);
        };
        let key = self.cache_key(user, phc, password);
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
