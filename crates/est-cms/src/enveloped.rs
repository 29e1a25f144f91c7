//! EnvelopedData (RFC 5652 §6): AES-CBC content encryption for kekri, ktri, kari and pwri
//! recipients, and decryption with a symmetric key, a private key or a password.
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, EnvelopedData, KekIdentifier, KekRecipientInfo,
    KeyAgreeRecipientIdentifier, KeyTransRecipientInfo, RecipientIdentifier, RecipientInfo,
    RecipientInfos,
};
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use openssl::encrypt::{Decrypter, Encrypter};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::Padding;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use zeroize::Zeroizing;

use crate::alg::{
    ContentEncryption, KeyWrap, RsaesOaepParams, alg, alg_null, alg_with, cert_public_key,
    cert_ski, content_decrypt, issuer_and_serial, random, rsa_param_hashes,
};
use crate::error::{CmsError, Result};
use crate::kari::{self, KeyAgreeKdf};
use crate::oids;
use crate::pwri::{self, PwriParams};

/// How a ktri or kari RecipientInfo names the recipient's key (RFC 5652 §6.2.1, §6.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientId {
    /// issuerAndSerialNumber of the recipient's certificate.
    IssuerAndSerialNumber(IssuerAndSerialNumber),
    /// subjectKeyIdentifier (ktri) or rKeyId (kari).
    SubjectKeyIdentifier(Vec<u8>),
}

/// RSA key transport (RFC 3370 §4.2.1, RFC 3560).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTransport {
    /// rsaEncryption (RSAES-PKCS1-v1_5), NULL parameters.
    RsaPkcs1v15,
    /// id-RSAES-OAEP with the default (SHA-1, MGF1-SHA-1) parameters.
    RsaOaepSha1,
    /// id-RSAES-OAEP with SHA-256 and MGF1-SHA-256.
    RsaOaepSha256,
}

/// One recipient of an EnvelopedData (or of the MAC key of an AuthenticatedData).
#[non_exhaustive]
pub enum Recipient {
    /// kekri: a pre-shared AES key (16, 24 or 32 bytes) named by `key_id`.
    Kek {
        /// kekid.keyIdentifier.
        key_id: Vec<u8>,
        /// The KEK; its size picks id-aes128/192/256-wrap.
        kek: Zeroizing<Vec<u8>>,
    },
    /// ktri: an RSA public key.
    KeyTransport {
        /// rid (version 0 for issuerAndSerialNumber, 2 for subjectKeyIdentifier).
        rid: RecipientId,
        /// The recipient's RSA public key.
        key: PKey<Public>,
        /// The key-encryption algorithm.
        algorithm: KeyTransport,
    },
    /// kari: an EC (P-256/P-384) public key, ephemeral-static ECDH.
    KeyAgree {
        /// The recipient identifier inside RecipientEncryptedKey.
        rid: RecipientId,
        /// The recipient's EC public key.
        key: PKey<Public>,
        /// The ECDH scheme.
        kdf: KeyAgreeKdf,
        /// The key-wrap algorithm.
        wrap: KeyWrap,
        /// Optional user keying material.
        ukm: Option<Vec<u8>>,
    },
    /// pwri: a password.
    Password {
        /// The password bytes (for CMC: Identification UTF-8 followed by the shared secret).
        password: Zeroizing<Vec<u8>>,
        /// PBKDF2 and KEK parameters.
        params: PwriParams,
    },
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Kek { key_id, .. } => f
                .debug_struct("Kek")
                .field("key_id", key_id)
                .finish_non_exhaustive(),
            Self::KeyTransport { rid, algorithm, .. } => f
                .debug_struct("KeyTransport")
                .field("rid", rid)
                .field("algorithm", algorithm)
                .finish_non_exhaustive(),
            Self::KeyAgree { rid, kdf, wrap, .. } => f
                .debug_struct("KeyAgree")
                .field("rid", rid)
                .field("kdf", kdf)
                .field("wrap", wrap)
                .finish_non_exhaustive(),
            Self::Password { params, .. } => f
                .debug_struct("Password")
                .field("params", params)
                .finish_non_exhaustive(),
        }
    }
}

impl Recipient {
    /// ktri to a certificate, rid = issuerAndSerialNumber.
    pub fn key_transport(cert: &Certificate, algorithm: KeyTransport) -> Result<Self> {
        Ok(Self::KeyTransport {
            rid: RecipientId::IssuerAndSerialNumber(issuer_and_serial(cert)),
            key: cert_public_key(cert)?,
            algorithm,
        })
    }
    /// kari to a certificate, rid = issuerAndSerialNumber, no ukm.
    pub fn key_agree(cert: &Certificate, kdf: KeyAgreeKdf, wrap: KeyWrap) -> Result<Self> {
        Ok(Self::KeyAgree {
            rid: RecipientId::IssuerAndSerialNumber(issuer_and_serial(cert)),
            key: cert_public_key(cert)?,
            kdf,
            wrap,
            ukm: None,
        })
    }
}

/// What the recipient holds to decrypt.
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // built once per decryption; boxing buys nothing
pub enum RecipientSecret {
    /// A pre-shared key for kekri.
    Kek {
        /// Must equal kekid.keyIdentifier.
        key_id: Vec<u8>,
        /// The KEK.
        kek: Zeroizing<Vec<u8>>,
    },
    /// A private key for ktri (RSA) or kari (EC). RecipientInfos are matched by the
    /// certificate's issuer/serial or SKI, or by `ski`; with neither, every RecipientInfo of
    /// the key's kind is tried.
    PrivateKey {
        /// The private key.
        key: PKey<Private>,
        /// The recipient certificate.
        cert: Option<Certificate>,
        /// A subject key identifier.
        ski: Option<Vec<u8>>,
    },
    /// A password for pwri.
    Password(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for RecipientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Kek { key_id, .. } => f
                .debug_struct("Kek")
                .field("key_id", key_id)
                .finish_non_exhaustive(),
            Self::PrivateKey { ski, .. } => f
                .debug_struct("PrivateKey")
                .field("ski", ski)
                .finish_non_exhaustive(),
            Self::Password(_) => f.write_str("Password(..)"),
        }
    }
}

/// Decrypted content.
#[derive(Debug)]
pub struct Decrypted {
    /// encryptedContentInfo.contentType.
    pub content_type: ObjectIdentifier,
    /// The plaintext.
    pub content: Zeroizing<Vec<u8>>,
}

/// Encrypt `content` as DER ContentInfo(EnvelopedData) for `recipients` under a fresh random
/// content-encryption key.
pub fn envelope(
    content_type: ObjectIdentifier,
    content: &[u8],
    recipients: &[Recipient],
    cea: ContentEncryption,
) -> Result<Vec<u8>> {
    if recipients.is_empty() {
        return Err(CmsError::invalid("no recipients"));
    }
    let cek = cea.generate_key()?;
    let infos = recipients
        .iter()
        .map(|r| recipient_info(r, &cek))
        .collect::<Result<Vec<_>>>()?;
    let (content_enc_alg, ciphertext) = cea.encrypt(&cek, content)?;
    let ed = EnvelopedData {
        version: enveloped_version(&infos),
        originator_info: None,
        recip_infos: RecipientInfos(SetOfVec::try_from(infos)?),
        encrypted_content: EncryptedContentInfo {
            content_type,
            content_enc_alg,
            encrypted_content: Some(OctetString::new(ciphertext)?),
        },
        unprotected_attrs: None,
    };
    Ok(ContentInfo {
        content_type: oids::ID_ENVELOPED_DATA,
        content: Any::encode_from(&ed)?,
    }
    .to_der()?)
}

/// RFC 5652 §6.1 version, for no originatorInfo and no unprotectedAttrs: 3 with pwri or ori,
/// 0 when every RecipientInfo is version 0 (ktri with issuerAndSerialNumber), else 2.
fn enveloped_version(infos: &[RecipientInfo]) -> CmsVersion {
    if infos
        .iter()
        .any(|ri| matches!(ri, RecipientInfo::Pwri(_) | RecipientInfo::Ori(_)))
    {
        CmsVersion::V3
    } else if infos
        .iter()
        .all(|ri| matches!(ri, RecipientInfo::Ktri(k) if k.version == CmsVersion::V0))
    {
        CmsVersion::V0
    } else {
        CmsVersion::V2
    }
}

/// Wrap `key` (a CEK or MAC key) for one recipient.
pub(crate) fn recipient_info(r: &Recipient, key: &[u8]) -> Result<RecipientInfo> {
    Ok(match r {
        Recipient::Kek { key_id, kek } => {
            let wrap = KeyWrap::for_kek_len(kek.len())?;
            RecipientInfo::Kekri(KekRecipientInfo {
                version: CmsVersion::V4,
                kek_id: KekIdentifier {
                    kek_identifier: OctetString::new(key_id.as_slice())?,
                    date: None,
                    other: None,
                },
                key_enc_alg: wrap.algorithm_identifier(),
                encrypted_key: OctetString::new(wrap.wrap(kek, key)?)?,
            })
        }
        Recipient::KeyTransport {
            rid,
            key: pk,
            algorithm,
        } => RecipientInfo::Ktri(ktri_wrap(rid, pk, *algorithm, key)?),
        Recipient::KeyAgree {
            rid,
            key: pk,
            kdf,
            wrap,
            ukm,
        } => RecipientInfo::Kari(kari::wrap(rid, pk, *kdf, *wrap, ukm.as_deref(), key)?),
        Recipient::Password { password, params } => {
            RecipientInfo::Pwri(pwri::wrap(password, params, key)?)
        }
    })
}

fn ktri_wrap(
    rid: &RecipientId,
    pk: &PKey<Public>,
    algorithm: KeyTransport,
    key: &[u8],
) -> Result<KeyTransRecipientInfo> {
    if pk.id() != Id::RSA {
        return Err(CmsError::invalid(
            "key transport needs an RSA recipient key",
        ));
    }
    let mut enc = Encrypter::new(pk)?;
    let key_enc_alg = match algorithm {
        KeyTransport::RsaPkcs1v15 => {
            enc.set_rsa_padding(Padding::PKCS1)?;
            alg_null(oids::RSA_ENCRYPTION)
        }
        KeyTransport::RsaOaepSha1 => {
            enc.set_rsa_padding(Padding::PKCS1_OAEP)?;
            alg_with(
                oids::ID_RSAES_OAEP,
                Any::encode_from(&RsaesOaepParams::default())?,
            )
        }
        KeyTransport::RsaOaepSha256 => {
            enc.set_rsa_padding(Padding::PKCS1_OAEP)?;
            enc.set_rsa_oaep_md(MessageDigest::sha256())?;
            enc.set_rsa_mgf1_md(MessageDigest::sha256())?;
            let params = RsaesOaepParams {
                hash_algorithm: Some(alg(oids::ID_SHA256)),
                mask_gen_algorithm: Some(alg_with(
                    oids::ID_MGF1,
                    Any::encode_from(&alg(oids::ID_SHA256))?,
                )),
                p_source_algorithm: None,
            };
            alg_with(oids::ID_RSAES_OAEP, Any::encode_from(&params)?)
        }
    };
    let mut out = vec![0u8; enc.encrypt_len(key)?];
    let n = enc.encrypt(key, &mut out)?;
    out.truncate(n);
    let (version, rid) = match rid {
        RecipientId::IssuerAndSerialNumber(ias) => (
            CmsVersion::V0,
            RecipientIdentifier::IssuerAndSerialNumber(ias.clone()),
        ),
        RecipientId::SubjectKeyIdentifier(ski) => (
            CmsVersion::V2,
            RecipientIdentifier::SubjectKeyIdentifier(SubjectKeyIdentifier(OctetString::new(
                ski.as_slice(),
            )?)),
        ),
    };
    Ok(KeyTransRecipientInfo {
        version,
        rid,
        key_enc_alg,
        enc_key: OctetString::new(out)?,
    })
}

/// RSA decryption of a ktri. A PKCS#1 v1.5 failure yields a random key of `expected_len`
/// (RFC 3218 §2.3.2) so that the caller fails later, at content decryption, in the same way.
fn ktri_unwrap(
    ktri: &KeyTransRecipientInfo,
    key: &PKey<Private>,
    expected_len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut dec = Decrypter::new(key)?;
    let v15 = match ktri.key_enc_alg.oid {
        oids::RSA_ENCRYPTION => {
            dec.set_rsa_padding(Padding::PKCS1)?;
            true
        }
        oids::ID_RSAES_OAEP => {
            let p: RsaesOaepParams = match &ktri.key_enc_alg.parameters {
                Some(a) if !a.is_null() => a.decode_as()?,
                _ => RsaesOaepParams::default(),
            };
            let (md, mgf) =
                rsa_param_hashes(p.hash_algorithm.as_ref(), p.mask_gen_algorithm.as_ref())?;
            dec.set_rsa_padding(Padding::PKCS1_OAEP)?;
            dec.set_rsa_oaep_md(md)?;
            dec.set_rsa_mgf1_md(mgf)?;
            if let Some(ps) = &p.p_source_algorithm {
                if ps.oid != oids::ID_P_SPECIFIED {
                    return Err(CmsError::unsupported(format!("OAEP pSource {}", ps.oid)));
                }
                let label: OctetString = match &ps.parameters {
                    Some(l) => l.decode_as()?,
                    None => OctetString::new(Vec::new())?,
                };
                if !label.as_bytes().is_empty() {
                    dec.set_rsa_oaep_label(label.as_bytes())?;
                }
            }
            false
        }
        other => return Err(CmsError::unsupported(format!("key transport {other}"))),
    };
    let input = ktri.enc_key.as_bytes();
    let mut out = Zeroizing::new(vec![0u8; dec.decrypt_len(input)?]);
    match dec.decrypt(input, &mut out) {
        Ok(n) if !v15 || n == expected_len => {
            out.truncate(n);
            Ok(out)
        }
        _ if v15 => random(expected_len),
        _ => Err(CmsError::DecryptionFailed),
    }
}

/// Does a recipient identifier name the holder of `cert` / `ski`? With neither known, every
/// identifier is a candidate.
fn rid_matches(rid: RidRef<'_>, cert: Option<&Certificate>, given_ski: Option<&[u8]>) -> bool {
    if cert.is_none() && given_ski.is_none() {
        return true;
    }
    match rid {
        RidRef::Ias(ias) => cert.is_some_and(|c| issuer_and_serial(c) == *ias),
        RidRef::Ski(s) => given_ski == Some(s) || cert.and_then(cert_ski).as_deref() == Some(s),
    }
}

#[derive(Clone, Copy)]
enum RidRef<'a> {
    Ias(&'a IssuerAndSerialNumber),
    Ski(&'a [u8]),
}

/// Candidate keys recovered from the RecipientInfos that match `secret`. Returns
/// [`CmsError::NoMatchingRecipient`] when nothing matches and [`CmsError::DecryptionFailed`]
/// when something matched but no key could be unwrapped.
pub(crate) fn unwrap_candidates(
    infos: &RecipientInfos,
    secret: &RecipientSecret,
    expected_len: usize,
) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let mut matched = false;
    let mut keys = Vec::new();
    let mut last_err = None;
    let mut push = |r: Result<Zeroizing<Vec<u8>>>| match r {
        Ok(k) => keys.push(k),
        Err(e) => last_err = Some(e),
    };
    for ri in infos.0.iter() {
        match (ri, secret) {
            (RecipientInfo::Kekri(k), RecipientSecret::Kek { key_id, kek }) => {
                if k.kek_id.kek_identifier.as_bytes() != key_id.as_slice() {
                    continue;
                }
                matched = true;
                push(match KeyWrap::from_oid(&k.key_enc_alg.oid) {
                    Some(w) => w.unwrap(kek, k.encrypted_key.as_bytes()),
                    None => Err(CmsError::unsupported(format!(
                        "key wrap {}",
                        k.key_enc_alg.oid
                    ))),
                });
            }
            (RecipientInfo::Ktri(k), RecipientSecret::PrivateKey { key, cert, ski }) => {
                if key.id() != Id::RSA {
                    continue;
                }
                let rid = match &k.rid {
                    RecipientIdentifier::IssuerAndSerialNumber(i) => RidRef::Ias(i),
                    RecipientIdentifier::SubjectKeyIdentifier(s) => RidRef::Ski(s.0.as_bytes()),
                };
                if rid_matches(rid, cert.as_ref(), ski.as_deref()) {
                    matched = true;
                    push(ktri_unwrap(k, key, expected_len));
                }
            }
            (RecipientInfo::Kari(k), RecipientSecret::PrivateKey { key, cert, ski }) => {
                if key.id() != Id::EC {
                    continue;
                }
                for rek in &k.recipient_enc_keys {
                    let rid = match &rek.rid {
                        KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(i) => RidRef::Ias(i),
                        KeyAgreeRecipientIdentifier::RKeyId(r) => {
                            RidRef::Ski(r.subject_key_identifier.0.as_bytes())
                        }
                    };
                    if rid_matches(rid, cert.as_ref(), ski.as_deref()) {
                        matched = true;
                        push(kari::unwrap(k, rek.enc_key.as_bytes(), key));
                    }
                }
            }
            (RecipientInfo::Pwri(p), RecipientSecret::Password(pw)) => {
                matched = true;
                push(pwri::unwrap(p, pw));
            }
            _ => {}
        }
    }
    if !matched {
        return Err(CmsError::NoMatchingRecipient);
    }
    if keys.is_empty() {
        return Err(match last_err {
            Some(
                e @ (CmsError::UnsupportedAlgorithm(_) | CmsError::Malformed(_) | CmsError::Der(_)),
            ) => e,
            _ => CmsError::DecryptionFailed,
        });
    }
    Ok(keys)
}

/// Decrypt a DER ContentInfo(EnvelopedData) with `secret`.
pub fn decrypt(der: &[u8], secret: &RecipientSecret) -> Result<Decrypted> {
    let ci = ContentInfo::from_der(der)?;
    if ci.content_type != oids::ID_ENVELOPED_DATA {
        return Err(CmsError::UnexpectedContentType(ci.content_type));
    }
    let ed: EnvelopedData = ci.content.decode_as()?;
    let eci = &ed.encrypted_content;
    let ciphertext = eci
        .encrypted_content
        .as_ref()
        .ok_or_else(|| CmsError::malformed("encryptedContent absent (detached)"))?;
    let cea = ContentEncryption::from_oid(&eci.content_enc_alg.oid).ok_or_else(|| {
        CmsError::unsupported(format!("content encryption {}", eci.content_enc_alg.oid))
    })?;
    for cek in unwrap_candidates(&ed.recip_infos, secret, cea.key_len())? {
        if let Ok(content) = content_decrypt(&eci.content_enc_alg, &cek, ciphertext.as_bytes()) {
            return Ok(Decrypted {
                content_type: eci.content_type,
                content,
            });
        }
    }
    Err(CmsError::DecryptionFailed)
}
