//! Server-side key generation (RFC 7030 §4.4): reading the key-type hint of a /serverkeygen
//! request, and a bounded in-memory pool of pre-generated keys so that RSA requests do not wait
//! for a prime search.
//!
//! Keys are OpenSSL `PKey<Private>` values: OpenSSL clears private key material (RSA factors,
//! EC scalars) with `BN_clear_free` when the key is freed, so a key dropped from the pool or
//! after a response is written does not linger in memory (SKG-28). Pooled keys never touch disk.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc8410};
use der::{Decode, Encode};
use openssl::pkey::{PKey, Private};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::Name;
use x509_cert::request::CertReq;

use crate::csr::{PublicKeyKind, requested_san};
use crate::{CaError, KeyType};

/// A /serverkeygen request: its names, and the key type its SubjectPublicKeyInfo asks for.
///
/// SKG-7: the public-key value and the signature of the request are ignored (the client has no
/// key yet; many send a throwaway one), so nothing here verifies them. The algorithm identifier
/// and parameters (RSA modulus size, EC curve) are only a hint (SKG-8).
#[derive(Debug, Clone)]
pub struct KeyGenCsr {
    pub req: CertReq,
    pub san: Option<SubjectAltName>,
    /// The key type the request hints at; `None` when it names none we generate.
    pub hint: Option<KeyType>,
}

impl KeyGenCsr {
    pub fn parse(der: &[u8]) -> Result<Self, CaError> {
        let req = CertReq::from_der(der)
            .map_err(|e| CaError::MalformedRequest(format!("PKCS#10: {e}")))?;
        let san = requested_san(&req)?;
        let hint = key_type_hint(&req.info.public_key);
        Ok(Self { req, san, hint })
    }

    pub fn subject(&self) -> &Name {
        &self.req.info.subject
    }

    /// The key type to generate, from the hint; refused with a clear reason when the hint
    /// names an algorithm or size we do not generate.
    pub fn key_type(&self) -> Result<KeyType, CaError> {
        self.hint.ok_or_else(|| {
            CaError::KeyNotAllowed(format!(
                "cannot generate the key the request asks for ({}); supported: RSA 2048/3072/4096, EC P-256/P-384, Ed25519",
                describe_spki(&self.req.info.public_key)
            ))
        })
    }
}

fn describe_spki(spki: &spki::SubjectPublicKeyInfoOwned) -> String {
    if spki.algorithm.oid == rfc5912::RSA_ENCRYPTION {
        match rsa_bits(spki) {
            Some(b) => format!("RSA-{b}"),
            None => "RSA".into(),
        }
    } else if spki.algorithm.oid == rfc5912::ID_EC_PUBLIC_KEY {
        match ec_curve(spki) {
            Some(c) => format!("EC curve {c}"),
            None => "EC without a named curve".into(),
        }
    } else {
        format!("algorithm {}", spki.algorithm.oid)
    }
}

fn ec_curve(spki: &spki::SubjectPublicKeyInfoOwned) -> Option<ObjectIdentifier> {
    spki.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
}

/// The modulus size of an RSA SubjectPublicKeyInfo, if its key decodes.
fn rsa_bits(spki: &spki::SubjectPublicKeyInfoOwned) -> Option<u32> {
    let der = spki.to_der().ok()?;
    let pkey = PKey::public_key_from_der(&der).ok()?;
    let rsa = pkey.rsa().ok()?;
    u32::try_from(rsa.n().num_bits()).ok()
}

/// SKG-8: RSA by modulus size (an undecodable or zero-length RSA key — SKGD-3 allows an empty
/// BIT STRING — means the default 2048), EC by named curve, Ed25519 by OID.
fn key_type_hint(spki: &spki::SubjectPublicKeyInfoOwned) -> Option<KeyType> {
    let oid = spki.algorithm.oid;
    if oid == rfc5912::RSA_ENCRYPTION {
        return match rsa_bits(spki) {
            None => Some(KeyType::Rsa2048),
            Some(2048) => Some(KeyType::Rsa2048),
            Some(3072) => Some(KeyType::Rsa3072),
            Some(4096) => Some(KeyType::Rsa4096),
            Some(_) => None,
        };
    }
    if oid == rfc5912::ID_EC_PUBLIC_KEY {
        return match ec_curve(spki) {
            Some(c) if c == rfc5912::SECP_256_R_1 => Some(KeyType::P256),
            Some(c) if c == rfc5912::SECP_384_R_1 => Some(KeyType::P384),
            _ => None,
        };
    }
    if oid == rfc8410::ID_ED_25519 {
        return Some(KeyType::Ed25519);
    }
    None
}

impl KeyType {
    /// The public-key kind of a key of this type (for profile checks and key usages).
    pub fn public_key_kind(self) -> PublicKeyKind {
        match self {
            Self::Rsa2048 => PublicKeyKind::Rsa { bits: 2048 },
            Self::Rsa3072 => PublicKeyKind::Rsa { bits: 3072 },
            Self::Rsa4096 => PublicKeyKind::Rsa { bits: 4096 },
            Self::P256 => PublicKeyKind::P256,
            Self::P384 => PublicKeyKind::P384,
            Self::Ed25519 => PublicKeyKind::Ed25519,
        }
    }

    /// Generates a key of this type with OpenSSL's CSPRNG (SKG-5, RFC 4086).
    pub fn generate(self) -> Result<PKey<Private>, CaError> {
        use openssl::ec::{EcGroup, EcKey};
        use openssl::nid::Nid;
        use openssl::rsa::Rsa;
        let ec = |nid| -> Result<PKey<Private>, CaError> {
            let group = EcGroup::from_curve_name(nid)?;
            Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
        };
        Ok(match self {
            Self::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?)?,
            Self::Rsa3072 => PKey::from_rsa(Rsa::generate(3072)?)?,
            Self::Rsa4096 => PKey::from_rsa(Rsa::generate(4096)?)?,
            Self::P256 => ec(Nid::X9_62_PRIME256V1)?,
            Self::P384 => ec(Nid::SECP384R1)?,
            Self::Ed25519 => PKey::generate_ed25519()?,
        })
    }
}

/// Where /serverkeygen takes its keys from. Generating an RSA key blocks for tens to hundreds
/// of milliseconds: an async front end implements this by running [`KeyPool::take`] on a
/// thread meant for blocking work, so request tasks never stall the executor.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync {
    async fn take(&self, kt: KeyType) -> Result<PKey<Private>, CaError>;
}

/// Takes keys on the calling thread (for callers without an async executor, and tests).
#[async_trait::async_trait]
impl KeySource for KeyPool {
    async fn take(&self, kt: KeyType) -> Result<PKey<Private>, CaError> {
        KeyPool::take(self, kt)
    }
}

/// A bounded pool of pre-generated keys per type, refilled by one background thread.
///
/// `take` pops a pooled key when there is one and otherwise generates inline, so the pool only
/// ever removes latency, never correctness. The refill thread generates one key at a time, for
/// the type furthest below its target, and sleeps when every type is full. Keys are handed out
/// once (popped) and never reused.
#[derive(Debug, Clone)]
pub struct KeyPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    keys: Mutex<PoolState>,
    wake: Condvar,
    targets: HashMap<KeyType, usize>,
}

impl std::fmt::Debug for PoolInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolInner")
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct PoolState {
    keys: HashMap<KeyType, VecDeque<PKey<Private>>>,
    stopped: bool,
}

impl KeyPool {
    /// A pool holding up to `target` keys of each listed type. With no types (or target 0) it
    /// never pre-generates and every `take` generates inline.
    pub fn start(targets: &[(KeyType, usize)]) -> Self {
        let targets: HashMap<KeyType, usize> =
            targets.iter().copied().filter(|(_, n)| *n > 0).collect();
        let inner = Arc::new(PoolInner {
            keys: Mutex::new(PoolState::default()),
            wake: Condvar::new(),
            targets,
        });
        if !inner.targets.is_empty() {
            let weak = Arc::downgrade(&inner);
            let spawned = std::thread::Builder::new()
                .name("estuary-keypool".into())
                .spawn(move || refill(weak));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "key pool refill thread not started; keys are generated on demand");
            }
        }
        Self { inner }
    }

    /// A pool that never pre-generates.
    pub fn disabled() -> Self {
        Self::start(&[])
    }

    /// A fresh key of `kt`: from the pool if one is ready, else generated now.
    pub fn take(&self, kt: KeyType) -> Result<PKey<Private>, CaError> {
        let pooled = match self.inner.keys.lock() {
            Ok(mut st) => st.keys.get_mut(&kt).and_then(VecDeque::pop_front),
            Err(_) => None,
        };
        self.inner.wake.notify_one();
        match pooled {
            Some(k) => Ok(k),
            None => kt.generate(),
        }
    }

    /// The types this pool keeps ready, with how many of each it aims to hold.
    pub fn targets(&self) -> Vec<(KeyType, usize)> {
        let mut t: Vec<_> = self.inner.targets.iter().map(|(k, n)| (*k, *n)).collect();
        t.sort();
        t
    }

    /// Keys ready for `kt`.
    pub fn ready(&self, kt: KeyType) -> usize {
        self.inner
            .keys
            .lock()
            .map(|st| st.keys.get(&kt).map_or(0, VecDeque::len))
            .unwrap_or(0)
    }

    /// Stops the refill thread and frees (clears) every pooled key.
    pub fn stop(&self) {
        if let Ok(mut st) = self.inner.keys.lock() {
            st.stopped = true;
            st.keys.clear();
        }
        self.inner.wake.notify_all();
    }
}

/// The refill loop; ends when the pool is stopped or dropped.
fn refill(pool: std::sync::Weak<PoolInner>) {
    loop {
        let Some(inner) = pool.upgrade() else { return };
        let next = {
            let Ok(mut st) = inner.keys.lock() else {
                return;
            };
            loop {
                if st.stopped {
                    return;
                }
                let want = inner
                    .targets
                    .iter()
                    .map(|(kt, target)| {
                        (
                            *kt,
                            target.saturating_sub(st.keys.get(kt).map_or(0, VecDeque::len)),
                        )
                    })
                    .filter(|(_, missing)| *missing > 0)
                    .max_by_key(|(_, missing)| *missing);
                match want {
                    Some((kt, _)) => break kt,
                    None => {
                        // Wake up now and then to notice a dropped pool.
                        let (guard, _) = match inner
                            .wake
                            .wait_timeout(st, std::time::Duration::from_secs(1))
                        {
                            Ok(r) => r,
                            Err(_) => return,
                        };
                        st = guard;
                        if Arc::strong_count(&inner) == 1 {
                            return;
                        }
                    }
                }
            }
        };
        match next.generate() {
            Ok(k) => {
                if let Ok(mut st) = inner.keys.lock() {
                    if st.stopped {
                        return;
                    }
                    st.keys.entry(next).or_default().push_back(k);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "key pool: generation failed");
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        drop(inner);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn csr_with_key(key: &PKey<Private>) -> Vec<u8> {
        let mut b = openssl::x509::X509ReqBuilder::new().unwrap();
        b.set_pubkey(key).unwrap();
        let md = if key.id() == openssl::pkey::Id::ED25519 {
            openssl::hash::MessageDigest::null()
        } else {
            openssl::hash::MessageDigest::sha256()
        };
        b.sign(key, md).unwrap();
        b.build().to_der().unwrap()
    }

    #[test]
    fn hint_follows_the_request_key() {
        for kt in [
            KeyType::Rsa2048,
            KeyType::Rsa3072,
            KeyType::P256,
            KeyType::P384,
            KeyType::Ed25519,
        ] {
            let der = csr_with_key(&kt.generate().unwrap());
            let csr = KeyGenCsr::parse(&der).unwrap();
            assert_eq!(csr.hint, Some(kt));
            assert_eq!(csr.key_type().unwrap(), kt);
        }
        // RSA-1024 is not a size we generate: refused with a reason that names it.
        let der =
            csr_with_key(&PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap());
        let e = KeyGenCsr::parse(&der).unwrap().key_type().unwrap_err();
        assert!(e.to_string().contains("RSA-1024"), "{e}");
        // P-521 likewise.
        let g = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP521R1).unwrap();
        let k = PKey::from_ec_key(openssl::ec::EcKey::generate(&g).unwrap()).unwrap();
        let e = KeyGenCsr::parse(&csr_with_key(&k))
            .unwrap()
            .key_type()
            .unwrap_err();
        assert!(e.to_string().contains("EC curve"), "{e}");
    }

    #[test]
    fn rfc7030_a4_request_asks_for_rsa_2048() {
        let b64 = include_str!("../../est-proto/tests/vectors/a4-serverkeygen-request.b64");
        let compact: String = b64.split_whitespace().collect();
        let der = openssl::base64::decode_block(&compact).unwrap();
        let csr = KeyGenCsr::parse(&der).unwrap();
        assert_eq!(csr.hint, Some(KeyType::Rsa2048));
    }

    #[test]
    fn pool_prefills_and_hands_out_distinct_keys() {
        let pool = KeyPool::start(&[(KeyType::P256, 3)]);
        for _ in 0..200 {
            if pool.ready(KeyType::P256) == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(pool.ready(KeyType::P256), 3);
        let a = pool.take(KeyType::P256).unwrap();
        let b = pool.take(KeyType::P256).unwrap();
        assert_ne!(
            a.public_key_to_der().unwrap(),
            b.public_key_to_der().unwrap()
        );
        // A type without a target is generated inline.
        assert_eq!(pool.ready(KeyType::Ed25519), 0);
        assert_eq!(
            pool.take(KeyType::Ed25519).unwrap().id(),
            openssl::pkey::Id::ED25519
        );
        pool.stop();
        assert_eq!(pool.ready(KeyType::P256), 0);
    }
}
