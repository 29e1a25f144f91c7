//! The certs-only CMC Simple PKI Response (RFC 5272 §4.1, CMC-3): a degenerate SignedData.
use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use der::asn1::SetOfVec;
use der::{Any, Decode, Encode, Tagged};
use est_asn1::oids::{ID_DATA, ID_SIGNED_DATA};
use x509_cert::Certificate;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CertsOnlyError(String);

impl From<der::Error> for CertsOnlyError {
    fn from(e: der::Error) -> Self {
        Self(e.to_string())
    }
}

/// ContentInfo { id-signedData, SignedData { version 1, digestAlgorithms {}, encapContentInfo
/// { id-data } without content, certificates, signerInfos {} } } (EST-64, EST-87).
pub fn certs_only_encode(certs: &[Certificate]) -> Result<Vec<u8>, CertsOnlyError> {
    let choices: Vec<CertificateChoices> = certs
        .iter()
        .cloned()
        .map(CertificateChoices::Certificate)
        .collect();
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(SetOfVec::try_from(choices)?)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    let ci = ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&sd)?,
    };
    Ok(ci.to_der()?)
}

/// [`certs_only_encode`] from certificates already in DER, as an issuing CA has them: the
/// envelope is written around the given bytes, which are neither decoded nor re-encoded (an
/// enrollment response used to decode, clone and re-encode its certificate twice). Each
/// element must be one DER SEQUENCE. They are written in the order given, as OpenSSL does (its
/// PKCS#7 template declares the set a SEQUENCE OF so that a chain keeps its order); for one
/// certificate, the enrollment case, the result is byte for byte [`certs_only_encode`]'s.
pub fn certs_only_encode_der(certs: &[&[u8]]) -> Result<Vec<u8>, CertsOnlyError> {
    for &cert in certs {
        let any = der::AnyRef::from_der(cert)?;
        if any.tag() != der::Tag::Sequence {
            return Err(CertsOnlyError("a certificate is not a DER SEQUENCE".into()));
        }
    }
    let certs_len: usize = certs.iter().map(|c| c.len()).sum();
    // SignedData: version 1, digestAlgorithms {}, encapContentInfo { id-data }.
    const SIGNED_DATA_HEAD: &[u8] = &[
        0x02, 0x01, 0x01, 0x31, 0x00, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
        0x01, 0x07, 0x01,
    ];
    // signerInfos {}
    const SIGNED_DATA_TAIL: &[u8] = &[0x31, 0x00];
    const ID_SIGNED_DATA_DER: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
    ];
    let certs_field = tlv_len(certs_len)?;
    let sd_content =
        SIGNED_DATA_HEAD.len() + 1 + certs_field.len() + certs_len + SIGNED_DATA_TAIL.len();
    let sd_len = tlv_len(sd_content)?;
    let explicit_content = 1 + sd_len.len() + sd_content;
    let explicit_len = tlv_len(explicit_content)?;
    let ci_content = ID_SIGNED_DATA_DER.len() + 1 + explicit_len.len() + explicit_content;
    let ci_len = tlv_len(ci_content)?;
    let mut out = Vec::with_capacity(1 + ci_len.len() + ci_content);
    out.push(0x30);
    out.extend_from_slice(&ci_len);
    out.extend_from_slice(ID_SIGNED_DATA_DER);
    out.push(0xa0); // content [0] EXPLICIT
    out.extend_from_slice(&explicit_len);
    out.push(0x30);
    out.extend_from_slice(&sd_len);
    out.extend_from_slice(SIGNED_DATA_HEAD);
    out.push(0xa0); // certificates [0] IMPLICIT SET OF
    out.extend_from_slice(&certs_field);
    for cert in certs {
        out.extend_from_slice(cert);
    }
    out.extend_from_slice(SIGNED_DATA_TAIL);
    Ok(out)
}

/// The DER length octets of a content of `len` bytes.
fn tlv_len(len: usize) -> Result<Vec<u8>, CertsOnlyError> {
    Ok(der::Length::try_from(len)?.to_der()?)
}

/// The certificates of a certs-only response, in any order, accepting an empty `crls [1]` and an
/// empty digestAlgorithms as RFC 7030 App. A.1 has them (CMC-3); other certificate formats are
/// skipped. Signer infos, if any, are ignored: a certs-only response is authenticated by TLS.
pub fn certs_only_decode(der: &[u8]) -> Result<Vec<Certificate>, CertsOnlyError> {
    let ci = ContentInfo::from_der(der)?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(CertsOnlyError(format!(
            "content type {} is not signedData",
            ci.content_type
        )));
    }
    let sd: SignedData = ci.content.decode_as()?;
    let certs = sd
        .certificates
        .map(|set| {
            set.0
                .into_vec()
                .into_iter()
                .filter_map(|c| match c {
                    CertificateChoices::Certificate(c) => Some(c),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(certs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn a1() -> Vec<u8> {
        crate::decode_body(include_str!("../tests/vectors/a1-cacerts.b64").as_bytes()).unwrap()
    }

    #[test]
    fn rfc7030_a1_has_four_certificates_and_round_trips() {
        let certs = certs_only_decode(&a1()).unwrap();
        assert_eq!(certs.len(), 4);
        let subjects: Vec<String> = certs
            .iter()
            .map(|c| c.tbs_certificate().subject().to_string())
            .collect();
        for want in ["OwO", "NwO", "OwN", "NwN"] {
            assert!(subjects.iter().any(|s| s.contains(want)), "{subjects:?}");
        }
        let again = certs_only_decode(&certs_only_encode(&certs).unwrap()).unwrap();
        assert_eq!(again.len(), 4);
        for c in &certs {
            assert!(again.contains(c));
        }
    }

    #[test]
    fn openssl_reads_ours_and_we_read_openssls() {
        use std::process::Command;
        let certs = certs_only_decode(&a1()).unwrap();
        let dir = std::env::temp_dir().join(format!("est-proto-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ours = dir.join("ours.p7");
        std::fs::write(&ours, certs_only_encode(&certs).unwrap()).unwrap();
        let out = Command::new("openssl")
            .args(["pkcs7", "-inform", "DER", "-print_certs", "-noout", "-in"])
            .arg(&ours)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .matches("subject=")
                .count(),
            4
        );
        // openssl crl2pkcs7 -nocrl produces the same structure; we decode it.
        let pem = dir.join("certs.pem");
        let mut text = String::new();
        for c in &certs {
            let b64 = crate::encode_body(&c.to_der().unwrap()).replace("\r\n", "\n");
            text.push_str(&format!(
                "-----BEGIN CERTIFICATE-----\n{b64}-----END CERTIFICATE-----\n"
            ));
        }
        std::fs::write(&pem, text).unwrap();
        let out = Command::new("openssl")
            .args(["crl2pkcs7", "-nocrl", "-outform", "DER", "-certfile"])
            .arg(&pem)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(certs_only_decode(&out.stdout).unwrap().len(), 4);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// One certificate (an enrollment response): the envelope written around its DER is byte
    /// for byte what the `cms` types encode. Several: the same certificates, in the order
    /// given, and OpenSSL reads them.
    #[test]
    fn der_envelope_equals_the_cms_encoding() {
        let certs = certs_only_decode(&a1()).unwrap();
        let ders: Vec<Vec<u8>> = certs.iter().map(|c| c.to_der().unwrap()).collect();
        for (cert, der) in certs.iter().zip(&ders) {
            assert_eq!(
                certs_only_encode_der(&[der]).unwrap(),
                certs_only_encode(std::slice::from_ref(cert)).unwrap()
            );
        }
        let mut refs: Vec<&[u8]> = ders.iter().map(Vec::as_slice).collect();
        refs.reverse();
        let p7 = certs_only_encode_der(&refs).unwrap();
        let back = certs_only_decode(&p7).unwrap();
        // (Our decoder reads the set into DER order, so compare as sets.)
        let mut back: Vec<Vec<u8>> = back.iter().map(|c| c.to_der().unwrap()).collect();
        back.sort();
        let mut want = ders.clone();
        want.sort();
        assert!(back == want, "the same certificates");
        // Written in the order given.
        let first = p7
            .windows(refs[0].len())
            .position(|w| w == refs[0])
            .unwrap();
        let last = p7
            .windows(refs[3].len())
            .position(|w| w == refs[3])
            .unwrap();
        assert!(first < last);
        let dir = std::env::temp_dir().join(format!("est-proto-der-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ours.p7");
        std::fs::write(&file, &p7).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["pkcs7", "-inform", "DER", "-print_certs", "-noout", "-in"])
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .matches("subject=")
                .count(),
            4
        );
        assert!(
            certs_only_encode_der(&[&[0x02, 0x01, 0x05]]).is_err(),
            "not a SEQUENCE"
        );
        assert!(
            certs_only_encode_der(&[&[0x30, 0x05, 0x00]]).is_err(),
            "truncated"
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(certs_only_decode(b"").is_err());
        assert!(certs_only_decode(&[0x30, 0x03, 0x06, 0x01, 0x00]).is_err());
    }
}
