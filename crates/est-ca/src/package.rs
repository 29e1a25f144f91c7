//! Packaging a server-generated key for the client (RFC 7030 §4.4.2): plain PKCS#8 under TLS,
//! or, when the client named a key of its own, an AsymmetricKeyPackage signed by the CA and
//! enveloped for that key (kekri, ktri or kari), with algorithms from the client's
//! SMIMECapabilities (SKG-23).
use est_cms::{
    CmsSigner, ContentEncryption, DigestAlgorithm, KeyWrap, Recipient, RecipientId, SmimeCapability,
};
use openssl::pkey::{PKey, Private};
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::{CaError, DeliveryKey, Issuer, SignatureAlgorithm};

/// The private-key part of a /serverkeygen response. Its `Debug` shows sizes, never bytes.
pub enum KeyPart {
    /// DER PKCS#8 PrivateKeyInfo v1 (SKG-17), cleared on drop.
    Pkcs8(Zeroizing<Vec<u8>>),
    /// DER ContentInfo(EnvelopedData(SignedData(AsymmetricKeyPackage))) (SKG-18).
    Enveloped(Vec<u8>),
}

impl std::fmt::Debug for KeyPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pkcs8(d) => write!(f, "Pkcs8({} bytes)", d.len()),
            Self::Enveloped(d) => write!(f, "Enveloped({} bytes)", d.len()),
        }
    }
}

/// How the key will be protected, settled before any key is generated so that a request the
/// server cannot honour costs no key (SKG-12, SKG-23).
#[derive(Debug)]
pub struct DeliveryPlan {
    recipient: Option<(Recipient, ContentEncryption)>,
}

/// A recipient or algorithm choice that failed: the client's request cannot be honoured.
fn delivery(e: est_cms::CmsError) -> CaError {
    match e {
        est_cms::CmsError::UnsupportedAlgorithm(m) | est_cms::CmsError::InvalidArgument(m) => {
            CaError::KeyDelivery(m)
        }
        other => CaError::KeyDelivery(other.to_string()),
    }
}

impl DeliveryPlan {
    /// Picks the algorithms for `target` from the client's capabilities (`None`: no
    /// SMIMECapabilities attribute, strong defaults apply).
    pub fn new(target: DeliveryKey, caps: Option<&[SmimeCapability]>) -> Result<Self, CaError> {
        let recipient = match target {
            DeliveryKey::Plain => return Ok(Self { recipient: None }),
            DeliveryKey::Kek { id, key } => {
                // SKG-20: the wrap algorithm matches the shared key's size and, when the client
                // listed wrap algorithms, is one of them.
                let wrap = KeyWrap::for_kek_len(key.len())
                    .map_err(|e| CaError::KeyDelivery(e.to_string()))?;
                if let Some(c) = caps {
                    let listed: Vec<KeyWrap> = c
                        .iter()
                        .filter_map(|cap| KeyWrap::from_oid(&cap.capability_id))
                        .collect();
                    if !listed.is_empty() && !listed.contains(&wrap) {
                        return Err(CaError::KeyDelivery(format!(
                            "the registered key is {} bytes, but the client's SMIMECapabilities do not list {:?} key wrap",
                            key.len(),
                            wrap
                        )));
                    }
                }
                Recipient::Kek {
                    key_id: id,
                    kek: key,
                }
            }
            // SKG-21, SKG-22: ktri for RSA, kari for EC; rid is the SKI the client named, so
            // the client finds its RecipientInfo by its own identifier.
            DeliveryKey::Recipient { ski, cert } => {
                let spki = der::Encode::to_der(cert.tbs_certificate().subject_public_key_info())?;
                est_cms::recipient_for_spki(RecipientId::SubjectKeyIdentifier(ski), &spki, caps)
                    .map_err(delivery)?
            }
        };
        let cea = est_cms::content_encryption_for(caps).map_err(delivery)?;
        Ok(Self {
            recipient: Some((recipient, cea)),
        })
    }

    pub fn is_encrypted(&self) -> bool {
        self.recipient.is_some()
    }

    /// Packages `key`: PKCS#8, or signed by `issuer` and enveloped for the client.
    pub fn package(&self, key: &PKey<Private>, issuer: &Issuer) -> Result<KeyPart, CaError> {
        let cms = |e: est_cms::CmsError| CaError::Internal(format!("CMS: {e}"));
        match &self.recipient {
            None => Ok(KeyPart::Pkcs8(Zeroizing::new(key.private_key_to_pkcs8()?))),
            Some((recipient, cea)) => {
                // SKG-18/19: AsymmetricKeyPackage (v2, with the public key) in SignedData
                // signed by the CA, inside EnvelopedData for the client.
                let env = est_cms::seal_key_package(
                    key,
                    &IssuerSigner(issuer),
                    &issuer.chain,
                    recipient,
                    *cea,
                )
                .map_err(cms)?;
                Ok(KeyPart::Enveloped(env))
            }
        }
    }
}

/// The CA's key as a CMS signer: it signs through the key backend, so an HSM key works too.
#[derive(Debug)]
pub struct IssuerSigner<'a>(&'a Issuer);

impl Issuer {
    /// This CA as the signer of CMS content (key packages, CMC responses).
    pub fn cms_signer(&self) -> IssuerSigner<'_> {
        IssuerSigner(self)
    }
}

impl CmsSigner for IssuerSigner<'_> {
    fn certificate(&self) -> &Certificate {
        &self.0.cert
    }

    fn digest(&self) -> DigestAlgorithm {
        match self.0.key.algorithm() {
            SignatureAlgorithm::EcdsaSha384 | SignatureAlgorithm::RsaPkcs1Sha384 => {
                DigestAlgorithm::Sha384
            }
            SignatureAlgorithm::EcdsaSha512
            | SignatureAlgorithm::RsaPkcs1Sha512
            | SignatureAlgorithm::Ed25519 => DigestAlgorithm::Sha512,
            _ => DigestAlgorithm::Sha256,
        }
    }

    fn signature_algorithm(&self) -> spki::AlgorithmIdentifierOwned {
        self.0.key.algorithm().algorithm_identifier()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, est_cms::CmsError> {
        self.0
            .key
            .sign(message)
            .map_err(|e| est_cms::CmsError::Signer(e.to_string()))
    }
}

/// A /serverkeygen request as the authority sees it: an enrollment plus how to deliver the key.
#[derive(Debug)]
pub struct KeyGenRequest<'a> {
    pub enroll: crate::EnrollRequest<'a>,
    pub delivery: crate::DeliveryRequest,
    /// DER of the request's SMIMECapabilities attribute value, if it had one.
    pub smime_capabilities: Option<&'a [u8]>,
}

/// The certificate issued for a generated key, and the key packaged for the client.
#[derive(Debug)]
pub struct DeliveredKey {
    pub issued: crate::IssuedCert,
    pub key: KeyPart,
}

impl crate::Authority {
    /// /serverkeygen end to end, keys taken from `keys` (see [`crate::KeySource`]): resolve the client's delivery key and the algorithms first
    /// (an unknown identifier or no common algorithm costs no key, SKG-12/13/23), then
    /// authorize, generate, issue (recorded durably) and package. The private key itself is
    /// dropped — and cleared by OpenSSL — before this returns; only the package leaves.
    pub async fn server_keygen_delivered(
        &self,
        req: KeyGenRequest<'_>,
        keys: &dyn crate::KeySource,
    ) -> Result<DeliveredKey, CaError> {
        let caps = req
            .smime_capabilities
            .map(est_cms::decode_smime_capabilities)
            .transpose()
            .map_err(|e| CaError::MalformedRequest(format!("SMIMECapabilities: {e}")))?;
        let target = self
            .delivery_key(req.enroll.identity, &req.delivery)
            .await?;
        let plan = DeliveryPlan::new(target, caps.as_deref())?;
        let domain = self
            .domain(req.enroll.domain)
            .cloned()
            .ok_or_else(|| CaError::Internal(format!("unknown CA domain {}", req.enroll.domain)))?;
        let generated = self.server_keygen(req.enroll, keys).await?;
        let key = plan.package(&generated.key, &domain.issuer)?;
        Ok(DeliveredKey {
            issued: generated.issued,
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let part = KeyPart::Pkcs8(Zeroizing::new(b"PRIVATE-KEY-BYTES".to_vec()));
        assert_eq!(format!("{part:?}"), "Pkcs8(17 bytes)");
        let kek = DeliveryKey::Kek {
            id: b"id".to_vec(),
            key: Zeroizing::new(vec![0x5a; 16]),
        };
        let shown = format!("{kek:?}");
        assert!(!shown.contains("90"), "{shown}");
        assert!(shown.starts_with("Kek"), "{shown}");
    }
}
