//! The RA-generated-key flow of draft-turner-cmc-serverkeygeneration-02 (§2.5.1, §3.2, §3.4;
//! SKGD-34..SKGD-37, SKGD-42), the pure parts: the RA answers a client's ServerKeyGenRequest
//! by generating the key itself, asks its CA to certify that key in a PKIData of its own
//! (never forwarding the ServerKeyGenRequest or the key, SKGD-35), checks what the CA issued
//! (SKGD-37) and answers the client with a PKIResponse it signs, carrying the CA's own response
//! through Response Body (SKGD-36, RFC 6402 §2.6, CMC-63). A client accepts that answer from a
//! signer with id-kp-cmcRA (SKGD-42).
use der::asn1::{Any, BitString, SetOfVec};
use der::{Decode, Encode};
use openssl::pkey::{PKey, Private};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};

use crate::certreq::CertificationRequest;
use crate::controls::ChangeSubjectName;
use crate::error::Failure;
use crate::oids;
use crate::response::ResponseBuilder;
use crate::types::BodyPartId;

/// SKGD-35: the PKCS#10 an RA sends its CA for a key it generated for a client. Its subject
/// is the RA's own name (`ra_subject`), ChangeSubjectName carries the names the client asked
/// for (its subject and SubjectAltName, CMC-23/CMC-24), the extensionRequest carries the
/// client's other requested extensions (its SubjectKeyIdentifier, if any, named the
/// placeholder key and is left out), and the signature with the generated `key` is its
/// proof of possession. Estuary generates only signature-capable keys (RSA, EC, Ed25519), so
/// a PKCS#10 signature is always possible; RA POP Witness is never needed.
pub fn request_for_generated_key(
    key: &PKey<Private>,
    ra_subject: &Name,
    client: &CertificationRequest,
) -> Result<Vec<u8>, String> {
    let e = |x: der::Error| format!("encoding the RA's certification request: {x}");
    let spki_der = key.public_key_to_der().map_err(|x| x.to_string())?;
    let spki = SubjectPublicKeyInfoOwned::from_der(&spki_der).map_err(e)?;
    let (subject, san) = client.effective_names();
    let extensions: Vec<Extension> = client
        .extensions
        .iter()
        .filter(|x| {
            x.extn_id != const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME
                && x.extn_id != const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER
        })
        .cloned()
        .collect();
    let mut attributes = Vec::new();
    if !extensions.is_empty() {
        attributes.push(Attribute {
            oid: oids::EXTENSION_REQUEST,
            values: SetOfVec::try_from(vec![Any::encode_from(&extensions).map_err(e)?])
                .map_err(e)?,
        });
    }
    let change = ChangeSubjectName {
        subject: Some(subject),
        subject_alt: san.map(|s| s.0),
    };
    attributes.push(Attribute {
        oid: oids::CHANGE_SUBJECT_NAME,
        values: SetOfVec::try_from(vec![Any::encode_from(&change).map_err(e)?]).map_err(e)?,
    });
    let info = CertReqInfo {
        version: Version::V1,
        subject: ra_subject.clone(),
        public_key: spki,
        attributes: SetOfVec::try_from(attributes).map_err(e)?,
    };
    let tbs = info.to_der().map_err(e)?;
    let (algorithm, signature) = est_cms::sign_x509(key, &tbs).map_err(|x| x.to_string())?;
    CertReq {
        info,
        algorithm,
        signature: BitString::from_bytes(&signature).map_err(e)?,
    }
    .to_der()
    .map_err(e)
}

/// Whether `cert` certifies the public key `spki_der` (a DER SubjectPublicKeyInfo).
pub fn certifies(cert: &Certificate, spki_der: &[u8]) -> bool {
    cert.tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .ok()
        .as_deref()
        == Some(spki_der)
}

/// SKGD-37: whether the certificate the CA returned is the one the RA asked for: the
/// generated key, the client's subject and its SubjectAltName (compared as sets). A
/// certificate that is not is not returned to the client.
pub fn check_issued(
    cert: &Certificate,
    spki_der: &[u8],
    client: &CertificationRequest,
) -> Result<(), String> {
    let tbs = cert.tbs_certificate();
    if !certifies(cert, spki_der) {
        return Err("the CA certified another key than the one the RA generated".into());
    }
    let (subject, san) = client.effective_names();
    if tbs.subject().to_der().ok() != subject.to_der().ok() {
        return Err(format!(
            "the CA issued the certificate to \"{}\", not to \"{subject}\"",
            tbs.subject()
        ));
    }
    let issued_san = tbs
        .get_extension::<SubjectAltName>()
        .ok()
        .flatten()
        .map(|(_, s)| s);
    if sorted_names(issued_san.as_ref()) != sorted_names(san.as_ref()) {
        return Err("the CA issued other SubjectAltName entries than the client asked for".into());
    }
    Ok(())
}

fn sorted_names(san: Option<&SubjectAltName>) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = san
        .map(|s| s.0.iter().filter_map(|g| g.to_der().ok()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// SKGD-36 with CMC-63: adds the CA's signed response (`ca_response_der`, a DER ContentInfo
/// as the CA sent it) to the RA's response cmsSequence and a Response Body control naming it.
/// Returns the cmsSequence body part ID.
pub fn add_response_body(
    b: &mut ResponseBuilder,
    ca_response_der: &[u8],
) -> Result<BodyPartId, Failure> {
    let id = b.content(ca_response_der)?;
    let path: crate::controls::ResponseBody = vec![id];
    b.control(oids::RESPONSE_BODY, &path)?;
    Ok(id)
}

/// The CA's response an RA carried through Response Body (CMC-63): the cmsSequence entries
/// the Response Body controls of `pki_response_der` name, as DER ContentInfos.
pub fn response_bodies(pki_response_der: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let r = crate::types::PkiResponse::from_der(pki_response_der).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for c in r
        .control_sequence
        .iter()
        .filter(|c| c.attr_type == oids::RESPONSE_BODY)
    {
        let path: crate::controls::ResponseBody =
            crate::serverkeygen::control_value(c).map_err(|e| format!("Response Body: {e}"))?;
        let id = path.first().ok_or("an empty Response Body path")?;
        let entry = r
            .cms_sequence
            .iter()
            .find(|t| t.body_part_id == *id)
            .ok_or_else(|| {
                format!("Response Body names cmsSequence entry {id}, which is absent")
            })?;
        out.push(entry.content_info.to_der().map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// SKGD-42, RFC 5272 §3.2.1 (CMC-28): whether `cert` may sign a PKIResponse or a key package
/// for its client: a CA certificate (basicConstraints cA), or a certificate with id-kp-cmcCA
/// or id-kp-cmcRA, such as an RA that generated the key, whose name differs from the issuing
/// CA's. An ordinary end-entity certificate under the same root may not.
pub fn is_response_signer(cert: &Certificate) -> bool {
    let tbs = cert.tbs_certificate();
    let ca = tbs
        .get_extension::<BasicConstraints>()
        .ok()
        .flatten()
        .is_some_and(|(_, b)| b.ca);
    let cmc = tbs
        .get_extension::<ExtendedKeyUsage>()
        .ok()
        .flatten()
        .is_some_and(|(_, eku)| {
            eku.0
                .iter()
                .any(|k| *k == oids::KP_CMC_RA || *k == oids::KP_CMC_CA)
        });
    ca || cmc
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::RequestPolicy;

    fn client_request(subject: &str, dns: &str) -> CertificationRequest {
        // The proposed fields as a client sends them: a PKCS#10 with a SAN, read without POP.
        let key = PKey::ec_gen("prime256v1").unwrap();
        let san = SubjectAltName(vec![x509_cert::ext::pkix::name::GeneralName::DnsName(
            der::asn1::Ia5String::new(dns).unwrap(),
        )]);
        let exts = vec![Extension {
            extn_id: const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
            critical: false,
            extn_value: der::asn1::OctetString::new(san.to_der().unwrap()).unwrap(),
        }];
        let info = CertReqInfo {
            version: Version::V1,
            subject: Name::from_str(subject).unwrap(),
            public_key: SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der().unwrap())
                .unwrap(),
            attributes: SetOfVec::try_from(vec![Attribute {
                oid: oids::EXTENSION_REQUEST,
                values: SetOfVec::try_from(vec![Any::encode_from(&exts).unwrap()]).unwrap(),
            }])
            .unwrap(),
        };
        let (algorithm, sig) = est_cms::sign_x509(&key, &info.to_der().unwrap()).unwrap();
        let der = CertReq {
            info,
            algorithm,
            signature: BitString::from_bytes(&sig).unwrap(),
        }
        .to_der()
        .unwrap();
        CertificationRequest::from_stored(&der, RequestPolicy::default()).unwrap()
    }

    #[test]
    fn the_ra_request_names_the_ra_and_changes_to_the_clients_names() {
        let client = client_request("CN=device-7,O=Example", "device-7.example");
        let key = PKey::ec_gen("prime256v1").unwrap();
        let ra = Name::from_str("CN=Test RA").unwrap();
        let der = request_for_generated_key(&key, &ra, &client).unwrap();
        // The CA reads it as any PKCS#10: the POP (signature by the generated key) verifies,
        // the subject is the RA's, and the names to certify are the client's (CMC-24).
        let parsed = CertificationRequest::from_stored(&der, RequestPolicy::default()).unwrap();
        assert_eq!(parsed.subject, ra);
        assert_eq!(parsed.spki_der, key.public_key_to_der().unwrap());
        let (subject, san) = parsed.effective_names();
        assert_eq!(subject.to_string(), "CN=device-7,O=Example");
        assert_eq!(
            sorted_names(san.as_ref()),
            sorted_names(client.san.as_ref())
        );
        // The SAN travels only in ChangeSubjectName, not in the RA's own extensionRequest.
        assert!(parsed.san.is_none());
    }

    #[test]
    fn a_tampered_ra_request_fails_pop() {
        let client = client_request("CN=device-8", "device-8.example");
        let key = PKey::ec_gen("prime256v1").unwrap();
        let mut der =
            request_for_generated_key(&key, &Name::from_str("CN=RA").unwrap(), &client).unwrap();
        let at = der.len() / 2;
        der[at] ^= 1;
        assert!(CertificationRequest::from_stored(&der, RequestPolicy::default()).is_err());
    }

    fn cert(ca: bool, eku: &[&str]) -> Certificate {
        crate::test_util::self_signed(ca, eku).1
    }

    #[test]
    fn only_cas_and_cmc_ras_sign_responses() {
        assert!(is_response_signer(&cert(true, &[])));
        assert!(is_response_signer(&cert(false, &["1.3.6.1.5.5.7.3.28"])));
        assert!(is_response_signer(&cert(false, &["1.3.6.1.5.5.7.3.27"])));
        // An end-entity certificate under the same root is no response signer (SKGD-42).
        assert!(!is_response_signer(&cert(false, &[])));
        assert!(!is_response_signer(&cert(
            false,
            &["serverAuth", "clientAuth"]
        )));
        assert!(crate::client::check_response_signers(&[cert(false, &["clientAuth"])]).is_err());
    }

    #[test]
    fn response_body_round_trips() {
        let controls = crate::Controls::default();
        let mut b = ResponseBuilder::new(&controls).unwrap();
        let inner = cms::content_info::ContentInfo {
            content_type: est_cms::oids::ID_DATA,
            content: der::Any::encode_from(&der::asn1::OctetString::new(vec![1, 2, 3]).unwrap())
                .unwrap(),
        }
        .to_der()
        .unwrap();
        add_response_body(&mut b, &inner).unwrap();
        let der = b.to_der().unwrap();
        assert_eq!(response_bodies(&der).unwrap(), vec![inner]);
    }
}
