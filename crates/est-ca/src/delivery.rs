//! Delivery of server-generated keys (RFC 7030 §4.4.1, §4.4.2): the keys clients register to
//! receive them encrypted, and finding the one a request names.
//!
//! SEC-8: a key is only ever encrypted to a key bound to the authenticated requester: its own
//! registered key-encryption key, its own registered recipient certificate, its current TLS
//! client certificate, or a certificate this CA issued to it.
use der::Decode;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use zeroize::Zeroizing;

use crate::clock::unix_secs;
use crate::{Authority, CaError, CertStatus, ClientKeyKind, ClientKeyRecord, Identity, SecretBox};

/// How the client asked for its generated key (SKG-9): no identifier, a DecryptKeyIdentifier
/// (symmetric) or an AsymmetricDecryptKeyIdentifier (a SubjectKeyIdentifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryRequest {
    Plain,
    Symmetric(Vec<u8>),
    Asymmetric(Vec<u8>),
}

/// Where a generated key goes, resolved from the request's identifier. Its `Debug` never shows
/// the key-encryption key.
pub enum DeliveryKey {
    /// No identifier: plain PKCS#8 under TLS (SKG-17).
    Plain,
    /// A registered symmetric key (kekri, SKG-20). `id` is the DecryptKeyIdentifier.
    Kek {
        id: Vec<u8>,
        key: Zeroizing<Vec<u8>>,
    },
    /// A recipient certificate (ktri for RSA, kari for EC, SKG-21/22). `ski` is the
    /// AsymmetricDecryptKeyIdentifier.
    Recipient {
        ski: Vec<u8>,
        cert: Box<Certificate>,
    },
}

impl std::fmt::Debug for DeliveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain => f.write_str("Plain"),
            Self::Kek { id, .. } => f
                .debug_struct("Kek")
                .field("id", id)
                .finish_non_exhaustive(),
            Self::Recipient { ski, .. } => f
                .debug_struct("Recipient")
                .field("ski", ski)
                .finish_non_exhaustive(),
        }
    }
}

impl Identity {
    /// The owner name under which this identity's client keys are registered.
    pub fn owner(&self) -> String {
        match self {
            Identity::User { name, .. } => format!("user:{name}"),
            Identity::Certificate { cert, .. } | Identity::ImplicitCertificate { cert, .. } => {
                format!("subject:{}", cert.tbs_certificate().subject())
            }
            Identity::Token { id, .. } => format!("token:{id}"),
            Identity::SharedSecret { ident, .. } => format!("cmc-secret:{ident}"),
        }
    }
}

/// Valid key-encryption key sizes: AES-128/192/256 key wrap (RFC 3394).
pub fn check_kek_size(key: &[u8]) -> Result<(), CaError> {
    match key.len() {
        16 | 24 | 32 => Ok(()),
        n => Err(CaError::KeyDelivery(format!(
            "a key-encryption key must be 16, 24 or 32 bytes (AES-128/192/256), not {n}"
        ))),
    }
}

/// The SubjectKeyIdentifier extension of a certificate.
pub fn subject_key_identifier(cert: &Certificate) -> Result<Option<Vec<u8>>, CaError> {
    Ok(cert
        .tbs_certificate()
        .get_extension::<SubjectKeyIdentifier>()
        .map_err(|e| CaError::MalformedRequest(format!("SubjectKeyIdentifier: {e}")))?
        .map(|(_, ski)| ski.0.as_bytes().to_vec()))
}

/// SKG-14: a recipient certificate must allow key transport (RSA) or key agreement (EC), or
/// carry no KeyUsage at all; and its key must be one we can encrypt to.
pub fn check_recipient(cert: &Certificate) -> Result<(), CaError> {
    est_cms::check_recipient_certificate(cert).map_err(|e| match e {
        est_cms::CmsError::Malformed(m) => CaError::MalformedRequest(m),
        est_cms::CmsError::InvalidArgument(m) => CaError::KeyDelivery(m),
        other => CaError::KeyDelivery(other.to_string()),
    })
}

fn seal_context(owner: &str, kind: ClientKeyKind, id: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(owner.len() + id.len() + 16);
    c.extend_from_slice(owner.as_bytes());
    c.push(0);
    c.extend_from_slice(kind.as_str().as_bytes());
    c.push(0);
    c.extend_from_slice(id);
    c
}

/// The registry of client keys: registration seals them with the server's [`SecretBox`]
/// before they reach the store; lookups open them. Used by the authority and by admin commands.
#[derive(Debug, Clone, Copy)]
pub struct ClientKeys<'a> {
    pub store: &'a dyn crate::Store,
    pub sealer: &'a SecretBox,
}

impl ClientKeys<'_> {
    /// Registers a symmetric key-encryption key for `owner` under `id`.
    pub async fn register_kek(
        &self,
        owner: &str,
        id: &[u8],
        key: &[u8],
        now: i64,
    ) -> Result<(), CaError> {
        check_kek_size(key)?;
        if id.is_empty() || id.len() > 256 {
            return Err(CaError::KeyDelivery(
                "a key identifier must be 1 to 256 bytes".into(),
            ));
        }
        let sealed = self
            .sealer
            .seal(&seal_context(owner, ClientKeyKind::Kek, id), key)?;
        self.store
            .add_client_key(&ClientKeyRecord {
                owner: owner.to_string(),
                kind: ClientKeyKind::Kek,
                key_id: id.to_vec(),
                sealed,
                created_at: now,
            })
            .await?;
        Ok(())
    }

    /// Registers a recipient certificate for `owner`; its SubjectKeyIdentifier is the
    /// identifier (returned).
    pub async fn register_recipient(
        &self,
        owner: &str,
        cert_der: &[u8],
        now: i64,
    ) -> Result<Vec<u8>, CaError> {
        let cert = Certificate::from_der(cert_der)
            .map_err(|e| CaError::MalformedRequest(format!("certificate: {e}")))?;
        check_recipient(&cert)?;
        let ski = subject_key_identifier(&cert)?.ok_or_else(|| {
            CaError::KeyDelivery("the certificate has no SubjectKeyIdentifier".into())
        })?;
        let sealed = self.sealer.seal(
            &seal_context(owner, ClientKeyKind::Recipient, &ski),
            cert_der,
        )?;
        self.store
            .add_client_key(&ClientKeyRecord {
                owner: owner.to_string(),
                kind: ClientKeyKind::Recipient,
                key_id: ski.clone(),
                sealed,
                created_at: now,
            })
            .await?;
        Ok(ski)
    }

    /// The opened secret of a registered key (the KEK bytes, or the recipient certificate DER).
    pub async fn open(
        &self,
        owner: &str,
        kind: ClientKeyKind,
        id: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, CaError> {
        match self.store.get_client_key(owner, kind, id).await? {
            None => Ok(None),
            Some(rec) => Ok(Some(
                self.sealer
                    .open(&seal_context(owner, kind, id), &rec.sealed)?,
            )),
        }
    }
}

impl Authority {
    fn client_keys(&self) -> Result<ClientKeys<'_>, CaError> {
        let sealer = self.secret_box.as_deref().ok_or_else(|| {
            CaError::Internal("no server secret configured for client keys".into())
        })?;
        Ok(ClientKeys {
            store: self.store.as_ref(),
            sealer,
        })
    }

    /// Finds the key a /serverkeygen request names, among those bound to `identity` (SEC-8).
    /// An identifier that is unknown, or known only for someone else, gets the same answer
    /// (SEC-17).
    pub async fn delivery_key(
        &self,
        identity: &Identity,
        requested: &DeliveryRequest,
    ) -> Result<DeliveryKey, CaError> {
        let owner = identity.owner();
        match requested {
            DeliveryRequest::Plain => Ok(DeliveryKey::Plain),
            DeliveryRequest::Symmetric(id) => {
                let key = self
                    .client_keys()?
                    .open(&owner, ClientKeyKind::Kek, id)
                    .await?
                    .ok_or_else(|| CaError::KeyDelivery("unknown decrypt key identifier".into()))?;
                check_kek_size(&key)?;
                Ok(DeliveryKey::Kek {
                    id: id.clone(),
                    key,
                })
            }
            DeliveryRequest::Asymmetric(ski) => {
                let cert = self.recipient_certificate(identity, &owner, ski).await?;
                check_recipient(&cert)?;
                let validity = cert.tbs_certificate().validity();
                let now = self.clock.now();
                if validity.not_after.to_system_time() < now
                    || validity.not_before.to_system_time() > now
                {
                    return Err(CaError::KeyDelivery(
                        "the recipient certificate is not currently valid".into(),
                    ));
                }
                Ok(DeliveryKey::Recipient {
                    ski: ski.clone(),
                    cert: Box::new(cert),
                })
            }
        }
    }

    async fn recipient_certificate(
        &self,
        identity: &Identity,
        owner: &str,
        ski: &[u8],
    ) -> Result<Certificate, CaError> {
        // 1. A certificate the client registered.
        if let Some(der) = self
            .client_keys()?
            .open(owner, ClientKeyKind::Recipient, ski)
            .await?
        {
            return Ok(Certificate::from_der(&der)?);
        }
        // 2. The TLS client certificate the request came with.
        if let Identity::Certificate { cert, .. } = identity
            && subject_key_identifier(cert)?.as_deref() == Some(ski)
        {
            return Ok((**cert).clone());
        }
        // 3. A current certificate this CA issued to the same requester.
        let now = unix_secs(self.clock.now());
        let requester = identity.requester();
        let subject = match identity {
            Identity::Certificate { cert, .. } => {
                Some(cert.tbs_certificate().subject().to_string())
            }
            _ => None,
        };
        for rec in self.store.certificates_by_ski(&hex::encode(ski)).await? {
            let mine =
                rec.requester == requester || subject.as_deref() == Some(rec.subject.as_str());
            if mine && rec.status == CertStatus::Valid && rec.not_after >= now {
                return Ok(Certificate::from_der(&rec.der)?);
            }
        }
        Err(CaError::KeyDelivery(
            "unknown asymmetric decrypt key identifier".into(),
        ))
    }
}
