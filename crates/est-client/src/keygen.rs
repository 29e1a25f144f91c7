//! `/serverkeygen` on the client (RFC 7030 §4.4): ask for a key of a given type, optionally
//! protected for a key of our own, then decrypt, verify and check what comes back (SKG-29).
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use est_cms::{RecipientSecret, SmimeCapability, VerifyOptions, oids};
use http::StatusCode;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use zeroize::Zeroizing;

use crate::csr::{KeyKind, San, build_csr_with, generate_key};
use crate::{ClientError, EstClient, EstConnection, Trust};

/// How the generated key should travel (SKG-9, SKG-10).
pub enum KeyProtection {
    /// TLS only: the server returns plain PKCS#8.
    Tls,
    /// A symmetric key registered with the server under `id`: kekri (DecryptKeyIdentifier).
    Kek {
        id: Vec<u8>,
        key: Zeroizing<Vec<u8>>,
    },
    /// A certificate of ours known to the server (registered, our TLS client certificate or
    /// issued by that CA) and its private key: ktri for RSA, kari for EC
    /// (AsymmetricDecryptKeyIdentifier = the certificate's SubjectKeyIdentifier).
    Recipient { cert: X509, key: PKey<Private> },
}

impl std::fmt::Debug for KeyProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tls => f.write_str("Tls"),
            Self::Kek { id, .. } => f
                .debug_struct("Kek")
                .field("id", id)
                .finish_non_exhaustive(),
            Self::Recipient { .. } => f.write_str("Recipient(..)"),
        }
    }
}

/// What /serverkeygen delivered, checked.
pub struct ServerGeneratedKey {
    /// The private key; it matches the first certificate's public key.
    pub key: PKey<Private>,
    /// The issued certificate first, then any other certificate the server added.
    pub certs: Vec<Certificate>,
    /// Whether the key came inside CMS EnvelopedData (rather than plain PKCS#8 under TLS).
    pub encrypted: bool,
}

impl std::fmt::Debug for ServerGeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerGeneratedKey")
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

fn cms_err(what: &str) -> impl Fn(est_cms::CmsError) -> ClientError + '_ {
    move |e| ClientError::Response(format!("{what}: {e}"))
}

fn octet_string_attribute(
    oid: der::asn1::ObjectIdentifier,
    value: &[u8],
) -> Result<Attribute, ClientError> {
    let e = |x: der::Error| ClientError::Other(format!("encoding an attribute: {x}"));
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![
            Any::encode_from(&OctetString::new(value).map_err(e)?).map_err(e)?,
        ])
        .map_err(e)?,
    })
}

fn capability(oid: der::asn1::ObjectIdentifier, parameters: Option<Any>) -> SmimeCapability {
    SmimeCapability {
        capability_id: oid,
        parameters,
    }
}

/// The SMIMECapabilities we send (SKG-9): everything we can decrypt, strongest first.
fn our_capabilities(protection: &KeyProtection) -> Result<Vec<SmimeCapability>, ClientError> {
    let mut caps = vec![
        capability(oids::AES256_CBC, None),
        capability(oids::AES128_CBC, None),
    ];
    match protection {
        KeyProtection::Tls => {}
        KeyProtection::Kek { key, .. } => {
            let wrap = est_cms::KeyWrap::for_kek_len(key.len())
                .map_err(|e| ClientError::Config(e.to_string()))?;
            caps.push(capability(wrap.oid(), None));
        }
        KeyProtection::Recipient { key, .. } if key.id() == Id::RSA => {
            let params = oaep_sha256_params()
                .map_err(|e| ClientError::Other(format!("OAEP parameters: {e}")))?;
            caps.push(capability(oids::ID_RSAES_OAEP, Some(params)));
            caps.push(capability(oids::RSA_ENCRYPTION, None));
        }
        KeyProtection::Recipient { key, .. } => {
            let wrap = Any::encode_from(&est_cms::KeyWrap::Aes256.algorithm_identifier())
                .map_err(|e| ClientError::Other(format!("key wrap: {e}")))?;
            let kdf = if key.bits() > 256 {
                oids::DH_SINGLE_PASS_STD_DH_SHA384KDF
            } else {
                oids::DH_SINGLE_PASS_STD_DH_SHA256KDF
            };
            caps.push(capability(kdf, Some(wrap)));
            caps.push(capability(oids::AES256_WRAP, None));
        }
    }
    Ok(caps)
}

/// RSAES-OAEP-params with SHA-256 and MGF1-SHA-256 (RFC 4055 §4.1; hash parameters absent).
fn oaep_sha256_params() -> Result<Any, der::Error> {
    use spki::AlgorithmIdentifierOwned as Alg;
    let sha256 = Alg {
        oid: oids::ID_SHA256,
        parameters: None,
    };
    let p = est_cms::RsaesOaepParams {
        hash_algorithm: Some(sha256.clone()),
        mask_gen_algorithm: Some(Alg {
            oid: oids::ID_MGF1,
            parameters: Some(Any::encode_from(&sha256)?),
        }),
        p_source_algorithm: None,
    };
    Any::encode_from(&p)
}

fn subject_key_identifier(cert: &X509) -> Result<Vec<u8>, ClientError> {
    cert.subject_key_id()
        .map(|s| s.as_slice().to_vec())
        .ok_or_else(|| {
            ClientError::Config(
                "the recipient certificate has no SubjectKeyIdentifier to name it by".into(),
            )
        })
}

impl EstConnection {
    /// POST /serverkeygen with `csr_der`; returns the key part (content type, DER) and the
    /// certificates.
    pub async fn server_keygen_raw(
        &mut self,
        csr_der: &[u8],
    ) -> Result<(String, Zeroizing<Vec<u8>>, Vec<Certificate>), ClientError> {
        let r = self
            .send_auth(est_proto::Operation::ServerKeyGen, Some(csr_der.to_vec()))
            .await?;
        if r.status != StatusCode::OK {
            return Err(Self::error(&r));
        }
        let mt = est_proto::MediaType::parse(&r.content_type)
            .filter(|m| m.essence == "multipart/mixed")
            .ok_or_else(|| {
                ClientError::Response(format!(
                    "expected multipart/mixed, got {:?}",
                    r.content_type
                ))
            })?;
        let boundary = mt
            .param("boundary")
            .ok_or_else(|| ClientError::Response("multipart/mixed without boundary".into()))?;
        let parts = est_proto::multipart::parse(&r.body, boundary)
            .map_err(|e| ClientError::Response(e.to_string()))?;
        // SKG-16: parts are found by Content-Type, not position.
        let key_part = est_proto::multipart::find_part(&parts, "application/pkcs8", None)
            .or_else(|| {
                est_proto::multipart::find_part(
                    &parts,
                    "application/pkcs7-mime",
                    Some("server-generated-key"),
                )
            })
            .ok_or_else(|| ClientError::Response("no private-key part in the response".into()))?;
        let cert_part = est_proto::multipart::find_part(
            &parts,
            "application/pkcs7-mime",
            Some("certs-only"),
        )
        .ok_or_else(|| ClientError::Response("no certificate part in the response".into()))?;
        let key_der = Zeroizing::new(
            est_proto::decode_body(&key_part.body)
                .map_err(|e| ClientError::Response(format!("key part: {e}")))?,
        );
        let p7 = est_proto::decode_body(&cert_part.body)
            .map_err(|e| ClientError::Response(format!("certificate part: {e}")))?;
        let certs = est_proto::certs_only_decode(&p7)
            .map_err(|e| ClientError::Response(format!("certificate part: {e}")))?;
        Ok((key_part.content_type.clone(), key_der, certs))
    }
}

/// Asks the server for a key of type `kind`, certified for `subject`/`sans`, protected as
/// `protection` says; decrypts it, verifies the inner signature against our trust anchors, and
/// checks that it matches the issued certificate (SKG-29).
pub async fn server_keygen(
    client: &EstClient,
    kind: KeyKind,
    subject: &str,
    sans: &[San],
    protection: &KeyProtection,
) -> Result<ServerGeneratedKey, ClientError> {
    let mut conn = client.connect().await?;
    let cp = conn.channel_binding().map(|b| b.challenge_password());
    let mut attrs = vec![
        est_cms::smime_capabilities_attribute(&our_capabilities(protection)?)
            .map_err(cms_err("SMIMECapabilities"))?,
    ];
    match protection {
        KeyProtection::Tls => {}
        KeyProtection::Kek { id, .. } => {
            attrs.push(octet_string_attribute(est_asn1::oids::DECRYPT_KEY_ID, id)?);
        }
        KeyProtection::Recipient { cert, .. } => attrs.push(octet_string_attribute(
            est_asn1::oids::ASYMM_DECRYPT_KEY_ID,
            &subject_key_identifier(cert)?,
        )?),
    }
    // SKG-8: the request's key only names the type wanted; it is a throwaway key (a real one,
    // so that servers which do check the CSR signature still accept it).
    let hint = generate_key(kind)?;
    let csr = build_csr_with(&hint, subject, sans, cp.as_deref(), attrs)?;
    drop(hint);
    let (content_type, key_der, certs) = conn.server_keygen_raw(&csr).await?;
    let leaf = certs
        .first()
        .ok_or_else(|| ClientError::Response("no certificate in the response".into()))?;
    let mt = est_proto::MediaType::parse(&content_type)
        .ok_or_else(|| ClientError::Response("bad key part Content-Type".into()))?;
    let (key, encrypted) = if mt.essence == "application/pkcs8" {
        if !matches!(protection, KeyProtection::Tls) {
            return Err(ClientError::Response(
                "asked for an encrypted key but the server sent it in the clear".into(),
            ));
        }
        (PKey::private_key_from_pkcs8(&key_der)?, false)
    } else {
        (open_enveloped(client, &key_der, protection)?, true)
    };
    // SKG-29: the key must be the one certified.
    let cert_spki = leaf
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| ClientError::Response(e.to_string()))?;
    if key.public_key_to_der()? != cert_spki {
        return Err(ClientError::Response(
            "the returned private key does not match the returned certificate".into(),
        ));
    }
    Ok(ServerGeneratedKey {
        key,
        certs,
        encrypted,
    })
}

/// EnvelopedData → SignedData (verified against our trust anchors) → AsymmetricKeyPackage.
fn open_enveloped(
    client: &EstClient,
    der: &[u8],
    protection: &KeyProtection,
) -> Result<PKey<Private>, ClientError> {
    let secret = match protection {
        KeyProtection::Tls => {
            return Err(ClientError::Response(
                "the server encrypted the key although we asked for none".into(),
            ));
        }
        KeyProtection::Kek { id, key } => RecipientSecret::Kek {
            key_id: id.clone(),
            kek: key.clone(),
        },
        KeyProtection::Recipient { cert, key } => RecipientSecret::PrivateKey {
            key: key.clone(),
            cert: Certificate::from_der(&cert.to_der()?).ok(),
            ski: Some(subject_key_identifier(cert)?),
        },
    };
    let Trust::Explicit(anchors) = &client.config().trust else {
        return Err(ClientError::Config(
            "no trust anchors to verify the key".into(),
        ));
    };
    let mut store = X509StoreBuilder::new()?;
    for a in anchors {
        store.add_cert(a.clone())?;
    }
    let store = store.build();
    // Decrypt, verify the CA's signature to our anchors, one key in an AsymmetricKeyPackage:
    // the same code that opens CMC server-generated keys (est-cms key delivery).
    let opened = est_cms::open_key_package(der, &secret, &store, &VerifyOptions::default())
        .map_err(cms_err("opening the encrypted key"))?;
    opened.key.to_pkey().map_err(cms_err("key package"))
}
