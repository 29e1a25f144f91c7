//! Users' HTTP Digest secrets at rest. Digest needs H(user:realm:password) to verify a
//! response, and that value is a password equivalent for the realm; it is therefore stored
//! sealed with the server's [`SecretBox`] (EST-42: "stored hashed or encrypted at rest"),
//! bound to its user name by the AEAD context so sealed values cannot be swapped between users.
use std::fmt;

use zeroize::Zeroizing;

use crate::{CaError, SecretBox};

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

fn context(user: &str) -> Vec<u8> {
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
    pub fn seal(&self, sealer: &SecretBox, user: &str) -> Result<Vec<u8>, CaError> {
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
        sealer.seal(&context(user), text.as_bytes())
    }

    pub fn open(sealer: &SecretBox, user: &str, sealed: &[u8]) -> Result<Self, CaError> {
        let plain = sealer.open(&context(user), sealed)?;
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
        let k = SecretBox::from_server_secret(&[7u8; 32]).unwrap();
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
        // Bound to the user, the server secret and every byte.
        assert!(DigestSecrets::open(&k, "bob", &sealed).is_err());
        let other = SecretBox::from_server_secret(&[8u8; 32]).unwrap();
        assert!(DigestSecrets::open(&other, "alice", &sealed).is_err());
        let mut t = sealed.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(DigestSecrets::open(&k, "alice", &t).is_err());
        assert!(DigestSecrets::open(&k, "alice", &sealed[..10]).is_err());
        // Two seals of the same value differ (random nonce).
        assert_ne!(s.seal(&k, "alice").unwrap(), sealed);
        assert!(!format!("{s:?}").contains("aaaa"));
    }
}
