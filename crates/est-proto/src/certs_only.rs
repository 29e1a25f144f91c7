//! The certs-only CMC Simple PKI Response (RFC 5272 §4.1, CMC-3): a degenerate SignedData.
use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use der::asn1::SetOfVec;
use der::{Any, Decode, Encode};
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

    #[test]
    fn rejects_garbage() {
        assert!(certs_only_decode(b"").is_err());
        assert!(certs_only_decode(&[0x30, 0x03, 0x06, 0x01, 0x00]).is_err());
    }
}
