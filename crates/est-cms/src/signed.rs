//! SignedData (RFC 5652 §5): signing through a [`CmsSigner`] and verification with chain
//! validation against an OpenSSL trust store.
use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Decode, Encode, Tag};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use openssl::stack::Stack;
use openssl::x509::X509StoreContext;
use openssl::x509::store::{X509Store, X509StoreBuilder, X509StoreRef};
use openssl::x509::verify::X509VerifyParam;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::time::Time;

use crate::alg::{
    DigestAlgorithm, RsassaPssParams, cert_ski, issuer_and_serial, rsa_param_hashes,
    to_openssl_cert,
};
use crate::error::{CmsError, Result};
use crate::oids;
use crate::rawder;
use crate::signer::CmsSigner;

/// How the SignerInfo names its certificate (RFC 5652 §5.3).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SignerIdKind {
    /// issuerAndSerialNumber (SignerInfo version 1).
    #[default]
    IssuerAndSerialNumber,
    /// subjectKeyIdentifier from the certificate's extension (SignerInfo version 3).
    SubjectKeyIdentifier,
}

/// Options for [`sign_with`].
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// The sid form.
    pub sid: SignerIdKind,
    /// Add a signingTime attribute (RFC 5652 §11.3).
    pub signing_time: Option<Time>,
    /// Extra signed attributes besides contentType, messageDigest and signingTime.
    pub signed_attributes: Vec<Attribute>,
    /// Unsigned attributes.
    pub unsigned_attributes: Vec<Attribute>,
    /// Sign the content directly, without signed attributes (only for id-data, §5.3).
    pub without_signed_attributes: bool,
    /// CRLs for the `crls` field (DER CertificateLists), e.g. a CMC Get CRL answer.
    pub crls: Vec<Vec<u8>>,
}

/// Sign `content` as ContentInfo(SignedData) with contentType + messageDigest signed
/// attributes and sid = issuerAndSerialNumber. The certificates field holds the signer's
/// certificate followed by `extra_certs`.
pub fn sign(
    content_type: ObjectIdentifier,
    content: &[u8],
    signer: &dyn CmsSigner,
    extra_certs: &[Certificate],
) -> Result<Vec<u8>> {
    sign_with(
        content_type,
        content,
        signer,
        extra_certs,
        &SignOptions::default(),
    )
}

/// [`sign`] with options (SKI sid, signingTime, extra signed/unsigned attributes).
pub fn sign_with(
    content_type: ObjectIdentifier,
    content: &[u8],
    signer: &dyn CmsSigner,
    extra_certs: &[Certificate],
    opts: &SignOptions,
) -> Result<Vec<u8>> {
    let cert = signer.certificate();
    let (sid, si_version) = signer_id(cert, opts.sid)?;
    let mut certs: Vec<CertificateChoices> = Vec::new();
    for c in std::iter::once(cert).chain(extra_certs) {
        let choice = CertificateChoices::Certificate(c.clone());
        if !certs.contains(&choice) {
            certs.push(choice);
        }
    }
    let key = SigningParts {
        digest: signer.digest(),
        signature_algorithm: signer.signature_algorithm(),
        sign: &|m| signer.sign(m),
    };
    sign_core(content_type, content, &key, sid, si_version, certs, opts)
}

/// Signs with a bare key named by a key identifier (sid = subjectKeyIdentifier, SignerInfo
/// version 3) and carries no certificate: a CMC request signed with the key it asks to
/// certify (RFC 5272 §3.2, CMC-17). Digest and algorithm as [`crate::OpensslSigner::new`].
pub fn sign_with_key_id(
    content_type: ObjectIdentifier,
    content: &[u8],
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    key_id: &[u8],
    extra_certs: &[Certificate],
) -> Result<Vec<u8>> {
    let digest = crate::signer::natural_digest(key)?;
    let signature_algorithm = crate::signer::signature_algorithm_for(key.id(), digest);
    let sid =
        SignerIdentifier::SubjectKeyIdentifier(SubjectKeyIdentifier(OctetString::new(key_id)?));
    let certs = extra_certs
        .iter()
        .map(|c| CertificateChoices::Certificate(c.clone()))
        .collect();
    let parts = SigningParts {
        digest,
        signature_algorithm,
        sign: &|m| crate::signer::sign_message(key, digest, m),
    };
    sign_core(
        content_type,
        content,
        &parts,
        sid,
        CmsVersion::V3,
        certs,
        &SignOptions::default(),
    )
}

struct SigningParts<'a> {
    digest: DigestAlgorithm,
    signature_algorithm: AlgorithmIdentifierOwned,
    sign: &'a dyn Fn(&[u8]) -> Result<Vec<u8>>,
}

/// The SignerInfo over `content` (signed attributes unless `opts` says otherwise) and the
/// SignedData version that goes with it.
fn signer_info(
    content_type: ObjectIdentifier,
    content: &[u8],
    key: &SigningParts<'_>,
    sid: SignerIdentifier,
    si_version: CmsVersion,
    opts: &SignOptions,
) -> Result<(SignerInfo, CmsVersion)> {
    let digest = key.digest;
    let (signed_attrs, signature) = if opts.without_signed_attributes {
        if content_type != oids::ID_DATA {
            return Err(CmsError::invalid(
                "signed attributes are required when eContentType is not id-data",
            ));
        }
        (None, (key.sign)(content)?)
    } else {
        let mut attrs = vec![
            single_attr(oids::ID_CONTENT_TYPE, Any::encode_from(&content_type)?)?,
            single_attr(
                oids::ID_MESSAGE_DIGEST,
                Any::encode_from(&OctetString::new(digest.digest(content)?)?)?,
            )?,
        ];
        if let Some(t) = &opts.signing_time {
            attrs.push(single_attr(oids::ID_SIGNING_TIME, Any::encode_from(t)?)?);
        }
        attrs.extend(opts.signed_attributes.iter().cloned());
        let attrs = SetOfVec::try_from(attrs)?;
        let signature = (key.sign)(&attrs.to_der()?)?;
        (Some(attrs), signature)
    };

    let unsigned_attrs = if opts.unsigned_attributes.is_empty() {
        None
    } else {
        Some(SetOfVec::try_from(opts.unsigned_attributes.clone())?)
    };

    let signer_info = SignerInfo {
        version: si_version,
        sid,
        digest_alg: digest.algorithm_identifier(),
        signed_attrs,
        signature_algorithm: key.signature_algorithm.clone(),
        signature: OctetString::new(signature)?,
        unsigned_attrs,
    };
    let version = if si_version == CmsVersion::V3 || content_type != oids::ID_DATA {
        CmsVersion::V3
    } else {
        CmsVersion::V1
    };
    Ok((signer_info, version))
}

fn sign_core(
    content_type: ObjectIdentifier,
    content: &[u8],
    key: &SigningParts<'_>,
    sid: SignerIdentifier,
    si_version: CmsVersion,
    certs: Vec<CertificateChoices>,
    opts: &SignOptions,
) -> Result<Vec<u8>> {
    let digest = key.digest;
    let (signer_info, version) = signer_info(content_type, content, key, sid, si_version, opts)?;
    let sd = SignedData {
        version,
        digest_algorithms: SetOfVec::try_from(vec![digest.algorithm_identifier()])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: content_type,
            econtent: Some(Any::encode_from(&OctetString::new(content)?)?),
        },
        certificates: if certs.is_empty() {
            None
        } else {
            Some(CertificateSet(SetOfVec::try_from(certs)?))
        },
        crls: if opts.crls.is_empty() {
            None
        } else {
            let list = opts
                .crls
                .iter()
                .map(|d| {
                    Ok(cms::revocation::RevocationInfoChoice::Crl(
                        x509_cert::crl::CertificateList::from_der(d)?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            Some(cms::revocation::RevocationInfoChoices(SetOfVec::try_from(
                list,
            )?))
        },
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
    };
    let ci = ContentInfo {
        content_type: oids::ID_SIGNED_DATA,
        content: Any::encode_from(&sd)?,
    };
    Ok(ci.to_der()?)
}

/// [`sign_with`] for certificates already in DER (`certs`: the signer's certificate, if it
/// is to be carried, and any others; `opts.crls` likewise): they are copied into the
/// SignedData as they are, neither decoded nor re-encoded, so a CA that signs every response
/// with the same chain encodes it once (CMC responses, docs/performance.md). Each must be one
/// DER SEQUENCE; the sets are sorted and deduplicated as DER requires (X.690 §11.6). sid =
/// issuerAndSerialNumber or subjectKeyIdentifier of `signer.certificate()`, as in
/// [`sign_with`].
pub fn sign_with_der_certs(
    content_type: ObjectIdentifier,
    content: &[u8],
    signer: &dyn CmsSigner,
    certs: &[&[u8]],
    opts: &SignOptions,
) -> Result<Vec<u8>> {
    let (sid, si_version) = signer_id(signer.certificate(), opts.sid)?;
    let key = SigningParts {
        digest: signer.digest(),
        signature_algorithm: signer.signature_algorithm(),
        sign: &|m| signer.sign(m),
    };
    let (signer_info, version) = signer_info(content_type, content, &key, sid, si_version, opts)?;
    let crls: Vec<&[u8]> = opts.crls.iter().map(Vec::as_slice).collect();
    let version = version.to_der()?;
    let digest_algorithms =
        SetOfVec::try_from(vec![key.digest.algorithm_identifier()])?.to_der()?;
    let encap = EncapsulatedContentInfo {
        econtent_type: content_type,
        econtent: Some(Any::encode_from(&OctetString::new(content)?)?),
    }
    .to_der()?;
    let certificates = raw_set(0, certs)?;
    let crls = raw_set(1, &crls)?;
    let signer_infos = SignerInfos(SetOfVec::try_from(vec![signer_info])?).to_der()?;
    let sd = tlv(
        Tag::Sequence,
        &[
            &version,
            &digest_algorithms,
            &encap,
            certificates.as_deref().unwrap_or_default(),
            crls.as_deref().unwrap_or_default(),
            &signer_infos,
        ],
    )?;
    let content = tlv(context_constructed(0), &[&sd])?;
    tlv(Tag::Sequence, &[&oids::ID_SIGNED_DATA.to_der()?, &content])
}

/// The sid of `cert` in the form asked for, and the SignerInfo version it implies.
fn signer_id(cert: &Certificate, kind: SignerIdKind) -> Result<(SignerIdentifier, CmsVersion)> {
    Ok(match kind {
        SignerIdKind::IssuerAndSerialNumber => (
            SignerIdentifier::IssuerAndSerialNumber(issuer_and_serial(cert)),
            CmsVersion::V1,
        ),
        SignerIdKind::SubjectKeyIdentifier => {
            let ski = cert_ski(cert).ok_or_else(|| {
                CmsError::invalid("signer certificate has no subjectKeyIdentifier extension")
            })?;
            (
                SignerIdentifier::SubjectKeyIdentifier(SubjectKeyIdentifier(OctetString::new(
                    ski,
                )?)),
                CmsVersion::V3,
            )
        }
    })
}

fn context_constructed(number: u32) -> Tag {
    Tag::ContextSpecific {
        constructed: true,
        number: der::TagNumber(number),
    }
}

/// A TLV with this tag around the concatenation of `parts`.
fn tlv(tag: Tag, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let header = der::Header::new(tag, der::Length::try_from(len)?);
    let mut out = Vec::with_capacity(len + 8);
    header.encode_to_vec(&mut out)?;
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(out)
}

/// `[number] IMPLICIT SET OF` the DER SEQUENCEs `items`, sorted and deduplicated; `None` when
/// there are none (the field is OPTIONAL).
fn raw_set(number: u32, items: &[&[u8]]) -> Result<Option<Vec<u8>>> {
    if items.is_empty() {
        return Ok(None);
    }
    for item in items {
        let one_sequence = || -> der::Result<bool> {
            use der::Reader;
            let mut reader = der::SliceReader::new(item)?;
            let header = der::Header::decode(&mut reader)?;
            reader.read_slice(header.length())?;
            reader.finish()?;
            Ok(header.tag() == Tag::Sequence)
        };
        if !one_sequence().unwrap_or(false) {
            return Err(CmsError::invalid(
                "a certificate or CRL is not one DER SEQUENCE",
            ));
        }
    }
    let mut sorted = items.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    Ok(Some(tlv(context_constructed(number), &sorted)?))
}

/// An attribute with one value.
pub(crate) fn single_attr(oid: ObjectIdentifier, value: Any) -> Result<Attribute> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value])?,
    })
}

/// The single value of the single attribute `oid` in `attrs` (RFC 5652 §11: contentType and
/// messageDigest MUST have exactly one value and appear once).
pub(crate) fn unique_attr_value(
    attrs: &SetOfVec<Attribute>,
    oid: ObjectIdentifier,
) -> Result<&Any> {
    let mut found = attrs.iter().filter(|a| a.oid == oid);
    let attr = found
        .next()
        .ok_or_else(|| CmsError::malformed(format!("attribute {oid} missing")))?;
    if found.next().is_some() || attr.values.len() != 1 {
        return Err(CmsError::malformed(format!(
            "attribute {oid} must have exactly one value"
        )));
    }
    attr.values
        .iter()
        .next()
        .ok_or_else(|| CmsError::malformed(format!("attribute {oid} is empty")))
}

/// Options for [`verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Check signatures only; do not validate the signer's chain (for CMC self-signed
    /// requests and tests; the caller then decides whom to trust).
    pub skip_chain_validation: bool,
    /// Validate the chain at this time (seconds since the Unix epoch) instead of now.
    pub verification_time: Option<i64>,
}

/// The result of a successful [`verify`].
#[derive(Debug, Clone)]
pub struct Verified {
    /// eContentType.
    pub content_type: ObjectIdentifier,
    /// The encapsulated content.
    pub content: Vec<u8>,
    /// The certificate of each SignerInfo, in the order of `signer_infos`.
    pub signers: Vec<Certificate>,
    /// All certificates carried in the SignedData.
    pub certificates: Vec<Certificate>,
    /// The SignerInfos as decoded (for unsigned attributes, sid, ...).
    pub signer_infos: Vec<SignerInfo>,
}

/// A decoded ContentInfo(SignedData) whose signatures have not been checked yet: for callers
/// that learn the signer's key from the content itself (a CMC request signed with the key it
/// certifies, RFC 5272 §3.2, CMC-17) or that validate chains their own way.
#[derive(Debug, Clone)]
pub struct ParsedSignedData {
    /// eContentType.
    pub content_type: ObjectIdentifier,
    /// The encapsulated content.
    pub content: Vec<u8>,
    /// All certificates carried in the SignedData.
    pub certificates: Vec<Certificate>,
    /// The SignerInfos as decoded, each with its received DER (signed attributes are checked
    /// over their received encoding).
    pub signer_infos: Vec<(SignerInfo, Vec<u8>)>,
}

impl ParsedSignedData {
    /// Decodes DER ContentInfo(SignedData) with encapsulated content; `signer_infos` may be
    /// empty (an unsigned CMC Revocation Request, RFC 5272 §6.11), which [`verify`] refuses.
    pub fn parse(der: &[u8]) -> Result<Self> {
        let ci = ContentInfo::from_der(der)?;
        if ci.content_type != oids::ID_SIGNED_DATA {
            return Err(CmsError::UnexpectedContentType(ci.content_type));
        }
        let sd_der = ci.content.to_der()?;
        let sd = SignedData::from_der(&sd_der)?;
        let econtent = sd
            .encap_content_info
            .econtent
            .as_ref()
            .ok_or_else(|| CmsError::malformed("detached content is not supported"))?;
        let content = econtent.decode_as::<OctetString>()?.as_bytes().to_vec();
        let content_type = sd.encap_content_info.econtent_type;
        let certificates: Vec<Certificate> = sd
            .certificates
            .iter()
            .flat_map(|set| set.0.iter())
            .filter_map(|c| match c {
                CertificateChoices::Certificate(c) => Some(c.clone()),
                CertificateChoices::Other(_) => None,
            })
            .collect();
        let sd_fields = rawder::elements(&sd_der, Tag::Sequence)?;
        let raw_infos = sd_fields
            .last()
            .ok_or_else(|| CmsError::malformed("empty SignedData"))?;
        let raw_infos = rawder::elements(raw_infos, Tag::Set)?;
        let signer_infos = raw_infos
            .into_iter()
            .map(|raw| Ok((SignerInfo::from_der(raw)?, raw.to_vec())))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            content_type,
            content,
            certificates,
            signer_infos,
        })
    }

    /// Checks SignerInfo `index` (signature, messageDigest, contentType) with `key`.
    pub fn verify_with_key(&self, index: usize, key: &PKey<Public>) -> Result<()> {
        self.verify_with(index, &crate::VerifyKey::from_pkey(key.clone()))
    }

    /// Checks SignerInfo `index` with `key` (see [`crate::VerifyKey`]).
    pub fn verify_with(&self, index: usize, key: &crate::VerifyKey) -> Result<()> {
        let (si, raw) = self
            .signer_infos
            .get(index)
            .ok_or_else(|| CmsError::invalid("no such SignerInfo"))?;
        verify_signer_info_key(si, raw, key, self.content_type, &self.content)
    }

    /// Checks SignerInfo `index` with the certificate its sid names among `certificates`, and
    /// returns that certificate. The chain is not validated (see [`validate_chain`]).
    pub fn verify_with_certificate(&self, index: usize) -> Result<Certificate> {
        let (si, _) = self
            .signer_infos
            .get(index)
            .ok_or_else(|| CmsError::invalid("no such SignerInfo"))?;
        let cert = find_signer(&self.certificates, &si.sid)?;
        self.verify_with(index, &crate::VerifyKey::from_certificate(&cert)?)?;
        Ok(cert)
    }
}

/// Verify a DER ContentInfo(SignedData): every SignerInfo's signature, messageDigest and
/// contentType attributes, and (unless skipped) each signer's chain to a trust anchor in
/// `trust`, with the message's certificates as untrusted intermediates. Detached content and
/// BER (indefinite-length) input are not supported.
pub fn verify(der: &[u8], trust: &X509StoreRef, opts: &VerifyOptions) -> Result<Verified> {
    let parsed = ParsedSignedData::parse(der)?;
    if parsed.signer_infos.is_empty() {
        return Err(CmsError::malformed("SignedData has no SignerInfo"));
    }
    let mut signers = Vec::new();
    for i in 0..parsed.signer_infos.len() {
        signers.push(parsed.verify_with_certificate(i)?);
    }

    if !opts.skip_chain_validation {
        let rebuilt;
        let store: &X509StoreRef = match opts.verification_time {
            Some(t) => {
                rebuilt = store_at(trust, t)?;
                &rebuilt
            }
            None => trust,
        };
        for cert in &signers {
            validate_chain(store, cert, &parsed.certificates)?;
        }
    }

    Ok(Verified {
        content_type: parsed.content_type,
        content: parsed.content,
        signers,
        certificates: parsed.certificates,
        signer_infos: parsed.signer_infos.into_iter().map(|(si, _)| si).collect(),
    })
}

fn find_signer(certs: &[Certificate], sid: &SignerIdentifier) -> Result<Certificate> {
    certs
        .iter()
        .find(|c| match sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => issuer_and_serial(c) == *ias,
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                cert_ski(c).as_deref() == Some(ski.0.as_bytes())
            }
        })
        .cloned()
        .ok_or(CmsError::SignerCertNotFound)
}

fn verify_signer_info_key(
    si: &SignerInfo,
    raw: &[u8],
    key: &crate::VerifyKey,
    content_type: ObjectIdentifier,
    content: &[u8],
) -> Result<()> {
    // CMC-29: SHA-1 SignerInfos are verified (legacy floor), never produced.
    let digest = if si.digest_alg.oid == oids::ID_SHA1 {
        MessageDigest::sha1()
    } else {
        DigestAlgorithm::from_oid(&si.digest_alg.oid)
            .ok_or_else(|| CmsError::unsupported(format!("digest {}", si.digest_alg.oid)))?
            .message_digest()
    };
    let message = match &si.signed_attrs {
        Some(attrs) => {
            let ct: ObjectIdentifier =
                unique_attr_value(attrs, oids::ID_CONTENT_TYPE)?.decode_as()?;
            if ct != content_type {
                return Err(CmsError::ContentTypeMismatch);
            }
            let md: OctetString = unique_attr_value(attrs, oids::ID_MESSAGE_DIGEST)?.decode_as()?;
            if md.as_bytes() != &openssl::hash::hash(digest, content)?[..] {
                return Err(CmsError::DigestMismatch);
            }
            rawder::implicit_set_field(raw, 0)?
                .ok_or_else(|| CmsError::malformed("signed attributes not found"))?
        }
        None => {
            if content_type != oids::ID_DATA {
                return Err(CmsError::malformed(
                    "signed attributes missing for a content type other than id-data",
                ));
            }
            content.to_vec()
        }
    };
    key.verify(
        &si.signature_algorithm,
        digest,
        &message,
        si.signature.as_bytes(),
    )
}

/// Verify one signature value (RFC 3370 §3, RFC 4056, RFC 5754 §3, RFC 8419).
pub(crate) fn verify_signature(
    key: &PKey<Public>,
    sig_alg: &AlgorithmIdentifierOwned,
    digest: MessageDigest,
    message: &[u8],
    signature: &[u8],
) -> Result<()> {
    let expect = |id: Id| {
        if key.id() == id {
            Ok(())
        } else {
            Err(CmsError::malformed(
                "signature algorithm does not match the signer's key",
            ))
        }
    };
    let ok = match sig_alg.oid {
        oids::ID_ED25519 => {
            expect(Id::ED25519)?;
            let mut v = Verifier::new_without_digest(key)?;
            v.verify_oneshot(signature, message).unwrap_or(false)
        }
        oids::ID_RSASSA_PSS => {
            expect(Id::RSA)?;
            let params: RsassaPssParams = match &sig_alg.parameters {
                Some(p) => p.decode_as()?,
                None => RsassaPssParams::default(),
            };
            if params.trailer_field.unwrap_or(1) != 1 {
                return Err(CmsError::unsupported(
                    "RSASSA-PSS trailer field other than 1",
                ));
            }
            let (md, mgf) = rsa_param_hashes(
                params.hash_algorithm.as_ref(),
                params.mask_gen_algorithm.as_ref(),
            )?;
            let salt = i32::try_from(params.salt_length.unwrap_or(20))
                .map_err(|_| CmsError::malformed("PSS salt length too large"))?;
            let mut v = Verifier::new(md, key)?;
            v.set_rsa_padding(Padding::PKCS1_PSS)?;
            v.set_rsa_mgf1_md(mgf)?;
            v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt))?;
            v.update(message)?;
            v.verify(signature).unwrap_or(false)
        }
        oid => {
            let (md, id) = classic_signature(oid, digest)?;
            expect(id)?;
            let mut v = Verifier::new(md, key)?;
            if id == Id::RSA {
                v.set_rsa_padding(Padding::PKCS1)?;
            }
            v.update(message)?;
            v.verify(signature).unwrap_or(false)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(CmsError::BadSignature)
    }
}

/// Hash and key type of an RSA PKCS#1 v1.5 or ECDSA signature algorithm.
fn classic_signature(oid: ObjectIdentifier, digest: MessageDigest) -> Result<(MessageDigest, Id)> {
    Ok(match oid {
        oids::RSA_ENCRYPTION => (digest, Id::RSA),
        oids::SHA1_WITH_RSA => (MessageDigest::sha1(), Id::RSA),
        oids::ECDSA_WITH_SHA1 => (MessageDigest::sha1(), Id::EC),
        oids::SHA256_WITH_RSA => (MessageDigest::sha256(), Id::RSA),
        oids::SHA384_WITH_RSA => (MessageDigest::sha384(), Id::RSA),
        oids::SHA512_WITH_RSA => (MessageDigest::sha512(), Id::RSA),
        oids::ID_EC_PUBLIC_KEY => (digest, Id::EC),
        oids::ECDSA_WITH_SHA256 => (MessageDigest::sha256(), Id::EC),
        oids::ECDSA_WITH_SHA384 => (MessageDigest::sha384(), Id::EC),
        oids::ECDSA_WITH_SHA512 => (MessageDigest::sha512(), Id::EC),
        other => {
            return Err(CmsError::unsupported(format!(
                "signature algorithm {other}"
            )));
        }
    })
}

/// Verifies an X.509-style signature (`AlgorithmIdentifier` + signature value over
/// `message`), as in PKCS#10 and CRMF POPOSigningKey: RSA PKCS#1 v1.5 and PSS, ECDSA, Ed25519,
/// SHA-1 through SHA-512 (CMC-29).
pub fn verify_x509_signature(
    key: &PKey<Public>,
    sig_alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<()> {
    verify_signature(key, sig_alg, MessageDigest::sha256(), message, signature)
}

/// A copy of `trust` whose verification time is fixed at `t`.
fn store_at(trust: &X509StoreRef, t: i64) -> Result<X509Store> {
    let mut b = X509StoreBuilder::new()?;
    for c in trust.all_certificates() {
        b.add_cert(c)?;
    }
    let mut p = X509VerifyParam::new()?;
    // time_t is i64 on most targets but not all.
    #[allow(clippy::useless_conversion)]
    p.set_time(
        t.try_into()
            .map_err(|_| CmsError::invalid("verification time out of range"))?,
    );
    b.set_param(&p)?;
    Ok(b.build())
}

/// Validates `cert`'s chain to a trust anchor in `store`, with `pool` as untrusted
/// intermediates.
pub fn validate_chain(
    store: &X509StoreRef,
    cert: &Certificate,
    pool: &[Certificate],
) -> Result<()> {
    let leaf = to_openssl_cert(cert)?;
    let mut untrusted = Stack::new()?;
    // The leaf is usually among the message's certificates: decoded once, not twice (each
    // X509 decode runs an OpenSSL 3 key decoder).
    for c in pool.iter().filter(|c| *c != cert) {
        untrusted.push(to_openssl_cert(c)?)?;
    }
    let mut ctx = X509StoreContext::new()?;
    let (ok, err) = ctx.init(store, &leaf, &untrusted, |c| {
        let ok = c.verify_cert()?;
        Ok((ok, c.error().error_string().to_string()))
    })?;
    if ok {
        Ok(())
    } else {
        Err(CmsError::ChainValidation(err))
    }
}
