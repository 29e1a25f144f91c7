//! Key backends for the authority. [`FileKeyBackend`]: software keys, stored as encrypted PKCS#8
//! (AES-256-CBC under a PBKDF2-derived key) in a directory, decrypted into memory once and
//! signed with OpenSSL. A PKCS#11 backend implements the same [`KeyBackend`] trait.
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use est_ca::{KeyBackend, KeyError, KeyId, KeyType, SignatureAlgorithm, SigningKey};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use spki::SubjectPublicKeyInfoOwned;
use spki::der::Decode;
use zeroize::Zeroizing;

/// Generates a software key pair of `key_type` with OpenSSL's CSPRNG.
pub fn generate_key(key_type: KeyType) -> Result<PKey<Private>, KeyError> {
    let ossl = |e: openssl::error::ErrorStack| KeyError::Backend(e.to_string());
    let ec = |nid| -> Result<PKey<Private>, KeyError> {
        let group = EcGroup::from_curve_name(nid).map_err(ossl)?;
        PKey::from_ec_key(EcKey::generate(&group).map_err(ossl)?).map_err(ossl)
    };
    match key_type {
        KeyType::Rsa2048 => PKey::from_rsa(Rsa::generate(2048).map_err(ossl)?).map_err(ossl),
        KeyType::Rsa3072 => PKey::from_rsa(Rsa::generate(3072).map_err(ossl)?).map_err(ossl),
        KeyType::Rsa4096 => PKey::from_rsa(Rsa::generate(4096).map_err(ossl)?).map_err(ossl),
        KeyType::P256 => ec(Nid::X9_62_PRIME256V1),
        KeyType::P384 => ec(Nid::SECP384R1),
        KeyType::Ed25519 => PKey::generate_ed25519().map_err(ossl),
    }
}

/// A software key held in memory.
pub struct SoftwareKey {
    pkey: PKey<Private>,
    /// For EC keys, the low-level key: ECDSA through it avoids OpenSSL 3's per-call algorithm
    /// fetch in the EVP layer (several times faster for a P-256 signature).
    ec: Option<EcKey<Private>>,
    spki: SubjectPublicKeyInfoOwned,
    alg: SignatureAlgorithm,
}

impl std::fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SoftwareKey {
    pub fn new(pkey: PKey<Private>) -> Result<Self, KeyError> {
        let der = pkey
            .public_key_to_der()
            .map_err(|e| KeyError::Backend(e.to_string()))?;
        let spki = SubjectPublicKeyInfoOwned::from_der(&der)
            .map_err(|e| KeyError::Backend(e.to_string()))?;
        let alg = match pkey.id() {
            Id::RSA => SignatureAlgorithm::RsaPkcs1Sha256,
            Id::EC => {
                let nid = pkey.ec_key().ok().and_then(|k| k.group().curve_name());
                match nid {
                    Some(Nid::X9_62_PRIME256V1) => SignatureAlgorithm::EcdsaSha256,
                    Some(Nid::SECP384R1) => SignatureAlgorithm::EcdsaSha384,
                    Some(Nid::SECP521R1) => SignatureAlgorithm::EcdsaSha512,
                    _ => return Err(KeyError::Unsupported("EC curve".into())),
                }
            }
            Id::ED25519 => SignatureAlgorithm::Ed25519,
            _ => return Err(KeyError::Unsupported("key algorithm".into())),
        };
        let ec = pkey.ec_key().ok();
        Ok(Self {
            pkey,
            ec,
            spki,
            alg,
        })
    }

    /// The OpenSSL key, for the TLS server (whose key is not a CA key).
    pub fn pkey(&self) -> &PKey<Private> {
        &self.pkey
    }
}

impl SigningKey for SoftwareKey {
    fn public_key_info(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.alg
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let e = |e: openssl::error::ErrorStack| KeyError::Backend(e.to_string());
        if let Some(ec) = &self.ec {
            let digest: Vec<u8> = match self.alg {
                SignatureAlgorithm::EcdsaSha384 => openssl::sha::sha384(message).to_vec(),
                SignatureAlgorithm::EcdsaSha512 => openssl::sha::sha512(message).to_vec(),
                _ => openssl::sha::sha256(message).to_vec(),
            };
            return openssl::ecdsa::EcdsaSig::sign(&digest, ec)
                .and_then(|s| s.to_der())
                .map_err(e);
        }
        let mut signer = match self.alg {
            SignatureAlgorithm::Ed25519 => Signer::new_without_digest(&self.pkey).map_err(e)?,
            SignatureAlgorithm::EcdsaSha384 | SignatureAlgorithm::RsaPkcs1Sha384 => {
                Signer::new(MessageDigest::sha384(), &self.pkey).map_err(e)?
            }
            SignatureAlgorithm::EcdsaSha512 | SignatureAlgorithm::RsaPkcs1Sha512 => {
                Signer::new(MessageDigest::sha512(), &self.pkey).map_err(e)?
            }
            _ => Signer::new(MessageDigest::sha256(), &self.pkey).map_err(e)?,
        };
        signer.sign_oneshot_to_vec(message).map_err(e)
    }
}

/// Keys as `<dir>/<id>.key.pem`: PKCS#8 encrypted under a passphrase (SEC: secrets encrypted at
/// rest), files created 0600. Loaded keys are cached in memory.
pub struct FileKeyBackend {
    dir: PathBuf,
    passphrase: Zeroizing<Vec<u8>>,
    cache: Mutex<HashMap<KeyId, Arc<SoftwareKey>>>,
}

impl std::fmt::Debug for FileKeyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKeyBackend")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl FileKeyBackend {
    /// `passphrase` must be non-empty; it never leaves this struct and is zeroized on drop.
    pub fn new(dir: impl Into<PathBuf>, passphrase: Zeroizing<Vec<u8>>) -> Result<Self, KeyError> {
        if passphrase.is_empty() {
            return Err(KeyError::Backend("empty key passphrase".into()));
        }
        let dir = dir.into();
        fs::create_dir_all(&dir)
            .map_err(|e| KeyError::Backend(format!("{}: {e}", dir.display())))?;
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
        Ok(Self {
            dir,
            passphrase,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn path(&self, id: &KeyId) -> Result<PathBuf, KeyError> {
        let ok = !id.0.is_empty()
            && id
                .0
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(KeyError::Backend(format!("invalid key id {:?}", id.0)));
        }
        Ok(self.dir.join(format!("{}.key.pem", id.0)))
    }

    /// Loads the key as a [`SoftwareKey`] (for callers that need the concrete type).
    pub fn load_software(&self, id: &KeyId) -> Result<Arc<SoftwareKey>, KeyError> {
        if let Some(k) = self.cache.lock().ok().and_then(|c| c.get(id).cloned()) {
            return Ok(k);
        }
        let path = self.path(id)?;
        let pem = Zeroizing::new(fs::read(&path).map_err(|_| KeyError::NotFound(id.clone()))?);
        let pkey = PKey::private_key_from_pem_passphrase(&pem, &self.passphrase).map_err(|_| {
            KeyError::Backend(format!("cannot decrypt key {id} (wrong passphrase?)"))
        })?;
        let key = Arc::new(SoftwareKey::new(pkey)?);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(id.clone(), key.clone());
        }
        Ok(key)
    }

    /// Stores an existing key under `id` (which must not exist).
    pub fn store(&self, id: &KeyId, pkey: &PKey<Private>) -> Result<(), KeyError> {
        let path = self.path(id)?;
        let pem = Zeroizing::new(
            pkey.private_key_to_pem_pkcs8_passphrase(
                openssl::symm::Cipher::aes_256_cbc(),
                &self.passphrase,
            )
            .map_err(|e| KeyError::Backend(e.to_string()))?,
        );
        write_private(&path, &pem)
    }
}

/// Writes a file readable by its owner only, refusing to overwrite.
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), KeyError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| KeyError::Backend(format!("{}: {e}", path.display())))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|e| KeyError::Backend(format!("{}: {e}", path.display())))
}

impl KeyBackend for FileKeyBackend {
    fn load(&self, id: &KeyId) -> Result<Arc<dyn SigningKey>, KeyError> {
        Ok(self.load_software(id)?)
    }

    fn generate(&self, id: &KeyId, key_type: KeyType) -> Result<Arc<dyn SigningKey>, KeyError> {
        let pkey = generate_key(key_type)?;
        self.store(id, &pkey)?;
        self.load(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::sign::Verifier;

    #[test]
    fn generate_store_load_sign_verify_every_type() {
        let dir = tempfile::tempdir().unwrap();
        let b = FileKeyBackend::new(dir.path(), Zeroizing::new(b"pass".to_vec())).unwrap();
        for (i, kt) in [
            KeyType::P256,
            KeyType::P384,
            KeyType::Rsa2048,
            KeyType::Ed25519,
        ]
        .into_iter()
        .enumerate()
        {
            let id = KeyId(format!("k{i}"));
            let k = b.generate(&id, kt).unwrap();
            let sig = k.sign(b"message").unwrap();
            let again = FileKeyBackend::new(dir.path(), Zeroizing::new(b"pass".to_vec())).unwrap();
            let k2 = again.load_software(&id).unwrap();
            assert_eq!(k.public_key_info(), k2.public_key_info());
            let pk = PKey::public_key_from_der(&k2.pkey().public_key_to_der().unwrap()).unwrap();
            let mut v = match kt {
                KeyType::Ed25519 => Verifier::new_without_digest(&pk).unwrap(),
                KeyType::P384 => Verifier::new(MessageDigest::sha384(), &pk).unwrap(),
                _ => Verifier::new(MessageDigest::sha256(), &pk).unwrap(),
            };
            assert!(v.verify_oneshot(&sig, b"message").unwrap(), "{kt:?}");
            let mode = fs::metadata(dir.path().join(format!("k{i}.key.pem")))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let wrong = FileKeyBackend::new(dir.path(), Zeroizing::new(b"nope".to_vec())).unwrap();
        assert!(wrong.load(&KeyId("k0".into())).is_err());
        assert!(
            b.generate(&KeyId("k0".into()), KeyType::P256).is_err(),
            "no overwrite"
        );
        assert!(b.load(&KeyId("../etc".into())).is_err());
    }
}
