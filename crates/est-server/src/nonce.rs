//! Server-side Digest nonces (EST-42, SEC-20): self-authenticating, time-limited and not
//! replayable.
//!
//! A nonce is `base64url(issued ‖ random ‖ HMAC-SHA256(key, issued ‖ random)[..16])` with a
//! per-process random key, so the server needs no state to recognise its own nonces and a
//! restart invalidates them all. Replay protection needs state: for each nonce in use we keep
//! the highest nonce-count accepted, and a request must present a larger one. The map is
//! bounded: when full, the oldest nonces are forgotten *and* every nonce issued up to the newest
//! forgotten one is treated as stale from then on, so forgetting never reopens a replay.
//! The clock is a parameter (unix seconds), so tests move time without sleeping.
use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

const RAND_LEN: usize = 16;
const MAC_LEN: usize = 16;
const RAW_LEN: usize = 8 + RAND_LEN + MAC_LEN;

/// The outcome of checking a nonce and its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours, fresh, and the count is new.
    Fresh,
    /// Ours but expired (or forgotten): answer 401 with `stale=true` (RFC 7616 §3.3).
    Stale,
    /// Not a nonce we issued, or a count already used (replay).
    Invalid,
}

#[derive(Debug)]
struct Seen {
    /// nonce -> (issued, highest nc accepted)
    map: HashMap<String, (u64, u32)>,
    /// Nonces issued at or before this time were forgotten: stale.
    floor: u64,
}

/// Issues and checks nonces. Shared by all connections (one short mutex per Digest request).
#[derive(Debug)]
pub struct NonceManager {
    key: Zeroizing<Vec<u8>>,
    lifetime_secs: u64,
    max_tracked: usize,
    seen: Mutex<Seen>,
    opaque: String,
}

impl NonceManager {
    pub fn new(lifetime_secs: u64, max_tracked: usize) -> Result<Self, openssl::error::ErrorStack> {
        let mut key = Zeroizing::new(vec![0u8; 32]);
        openssl::rand::rand_bytes(&mut key)?;
        let mut opaque = [0u8; 16];
        openssl::rand::rand_bytes(&mut opaque)?;
        Ok(Self {
            key,
            lifetime_secs,
            max_tracked: max_tracked.max(1),
            seen: Mutex::new(Seen {
                map: HashMap::new(),
                floor: 0,
            }),
            opaque: URL_SAFE_NO_PAD.encode(opaque),
        })
    }

    /// The `opaque` value of our challenges (constant for the process).
    pub fn opaque(&self) -> &str {
        &self.opaque
    }

    fn mac(&self, data: &[u8]) -> Result<[u8; MAC_LEN], openssl::error::ErrorStack> {
        let key = openssl::pkey::PKey::hmac(&self.key)?;
        let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
        s.update(data)?;
        let full = s.sign_to_vec()?;
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        Ok(out)
    }

    /// A new nonce issued at `now` (unix seconds).
    pub fn issue(&self, now: u64) -> Result<String, openssl::error::ErrorStack> {
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        openssl::rand::rand_bytes(&mut raw[8..8 + RAND_LEN])?;
        let mac = self.mac(&raw[..8 + RAND_LEN])?;
        raw[8 + RAND_LEN..].copy_from_slice(&mac);
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// Checks authenticity and age only (no state change): `Some(issued)` for our nonces.
    fn authentic(&self, nonce: &str) -> Option<u64> {
        if nonce.len() > 128 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        if raw.len() != RAW_LEN {
            return None;
        }
        let mac = self.mac(&raw[..8 + RAND_LEN]).ok()?;
        if !openssl::memcmp::eq(&mac, &raw[8 + RAND_LEN..]) {
            return None;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        Some(u64::from_be_bytes(ts))
    }

    /// Is this a live nonce of ours, with `nc` not yet used? Does not record anything: call
    /// [`NonceManager::accept`] once the credentials verified, so that failed guesses cannot
    /// burn nonce counts of the legitimate client.
    pub fn check(&self, nonce: &str, nc: u32, now: u64) -> NonceCheck {
        let Some(issued) = self.authentic(nonce) else {
            return NonceCheck::Invalid;
        };
        if issued > now.saturating_add(5) {
            return NonceCheck::Invalid;
        }
        if now.saturating_sub(issued) >= self.lifetime_secs {
            return NonceCheck::Stale;
        }
        let Ok(seen) = self.seen.lock() else {
            return NonceCheck::Invalid;
        };
        match seen.map.get(nonce) {
            Some(&(_, last)) if nc <= last => NonceCheck::Invalid,
            Some(_) => NonceCheck::Fresh,
            None if issued <= seen.floor => NonceCheck::Stale,
            None => NonceCheck::Fresh,
        }
    }

    /// Records that `nc` was used with `nonce`; returns false if a concurrent request got there
    /// first (replay) or the nonce was forgotten meanwhile.
    pub fn accept(&self, nonce: &str, nc: u32, now: u64) -> bool {
        let Some(issued) = self.authentic(nonce) else {
            return false;
        };
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        if let Some(entry) = seen.map.get_mut(nonce) {
            if nc <= entry.1 {
                return false;
            }
            entry.1 = nc;
            return true;
        }
        if issued <= seen.floor {
            return false;
        }
        if seen.map.len() >= self.max_tracked {
            self.evict(&mut seen, now);
            if issued <= seen.floor {
                return false;
            }
        }
        seen.map.insert(nonce.to_owned(), (issued, nc));
        true
    }

    /// Drops expired entries; if that is not enough, forgets the older half and raises the
    /// floor so that those nonces count as stale.
    fn evict(&self, seen: &mut Seen, now: u64) {
        let lifetime = self.lifetime_secs;
        seen.map
            .retain(|_, (issued, _)| now.saturating_sub(*issued) < lifetime);
        if seen.map.len() < self.max_tracked {
            return;
        }
        let mut times: Vec<u64> = seen.map.values().map(|(t, _)| *t).collect();
        times.sort_unstable();
        let cut = times[times.len() / 2];
        seen.map.retain(|_, (issued, _)| *issued > cut);
        seen.floor = seen.floor.max(cut);
        tracing::warn!(
            tracked = seen.map.len(),
            "digest nonce table full; older nonces are now stale"
        );
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.seen.lock().map(|s| s.map.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fresh_then_replay_then_higher_count() {
        let m = NonceManager::new(300, 100).unwrap();
        let n = m.issue(1000).unwrap();
        assert_eq!(m.check(&n, 1, 1001), NonceCheck::Fresh);
        assert!(m.accept(&n, 1, 1001));
        // SEC-20: the same count again is a replay.
        assert_eq!(m.check(&n, 1, 1002), NonceCheck::Invalid);
        assert!(!m.accept(&n, 1, 1002));
        assert_eq!(m.check(&n, 2, 1002), NonceCheck::Fresh);
        assert!(m.accept(&n, 2, 1002));
        assert_eq!(m.check(&n, 2, 1002), NonceCheck::Invalid);
        // Checking without accepting does not consume a count.
        assert_eq!(m.check(&n, 5, 1003), NonceCheck::Fresh);
        assert_eq!(m.check(&n, 3, 1003), NonceCheck::Fresh);
    }

    #[test]
    fn expired_nonces_are_stale() {
        let m = NonceManager::new(300, 100).unwrap();
        let n = m.issue(1000).unwrap();
        assert_eq!(m.check(&n, 1, 1299), NonceCheck::Fresh);
        assert_eq!(m.check(&n, 1, 1300), NonceCheck::Stale);
        // Issued in the future: not ours.
        assert_eq!(m.check(&n, 1, 900), NonceCheck::Invalid);
    }

    #[test]
    fn forged_or_foreign_nonces_are_invalid() {
        let m = NonceManager::new(300, 100).unwrap();
        let other = NonceManager::new(300, 100).unwrap();
        let n = other.issue(1000).unwrap();
        assert_eq!(m.check(&n, 1, 1000), NonceCheck::Invalid);
        let mut raw = URL_SAFE_NO_PAD.decode(m.issue(1000).unwrap()).unwrap();
        raw[0] ^= 1; // move the timestamp
        assert_eq!(
            m.check(&URL_SAFE_NO_PAD.encode(&raw), 1, 1000),
            NonceCheck::Invalid
        );
        for junk in ["", "abc", "!!!!", &"A".repeat(200)] {
            assert_eq!(m.check(junk, 1, 1000), NonceCheck::Invalid);
        }
    }

    #[test]
    fn bounded_table_never_reopens_a_replay() {
        let m = NonceManager::new(300, 4).unwrap();
        let nonces: Vec<String> = (0..10).map(|i| m.issue(1000 + i).unwrap()).collect();
        for n in &nonces {
            assert!(m.accept(n, 1, 1010));
        }
        assert!(m.tracked() <= 4);
        // Every nonce, forgotten or not, refuses its used count.
        for n in &nonces {
            assert_ne!(m.check(n, 1, 1010), NonceCheck::Fresh, "replay reopened");
            assert!(!m.accept(n, 1, 1010));
        }
        // A nonce issued after the eviction still works.
        let n = m.issue(1020).unwrap();
        assert!(m.accept(&n, 1, 1020));
    }
}
