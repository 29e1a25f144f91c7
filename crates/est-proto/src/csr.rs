use x509_cert::request::CertReq;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CsrError(String);

/// The raw value bytes of the challengePassword attribute (1.2.840.113549.1.9.7), whatever
/// DirectoryString choice encodes it (EST-53, EST-58). `None` when absent.
pub fn challenge_password(req: &CertReq) -> Result<Option<Vec<u8>>, CsrError> {
    let Some(attr) = req
        .info
        .attributes
        .iter()
        .find(|a| a.oid == est_asn1::oids::CHALLENGE_PASSWORD)
    else {
        return Ok(None);
    };
    if attr.values.len() != 1 {
        return Err(CsrError(
            "challengePassword must have exactly one value".into(),
        ));
    }
    let value = attr
        .values
        .iter()
        .next()
        .ok_or_else(|| CsrError("empty challengePassword".into()))?;
    use der::{Tag, Tagged};
    match value.tag() {
        Tag::PrintableString
        | Tag::Utf8String
        | Tag::TeletexString
        | Tag::BmpString
        | Tag::Ia5String => {}
        t => {
            return Err(CsrError(format!(
                "challengePassword is a {t}, not a DirectoryString"
            )));
        }
    }
    if value.value().len() > 255 {
        return Err(CsrError("challengePassword longer than 255 bytes".into()));
    }
    Ok(Some(value.value().to_vec()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use der::Decode;

    #[test]
    fn rfc7030_a3_vector() {
        let b64 = include_str!("../tests/vectors/a3-simpleenroll-request.b64");
        let der = crate::decode_body(b64.as_bytes()).unwrap();
        let req = CertReq::from_der(&der).unwrap();
        let cp = challenge_password(&req).unwrap().unwrap();
        assert_eq!(cp, b"+rrCir/7+EYu50T4");
        assert_eq!(crate::decode_body(&cp).unwrap().len(), 12);
    }

    #[test]
    fn rfc7030_a4_vector() {
        let b64 = include_str!("../tests/vectors/a4-serverkeygen-request.b64");
        let der = crate::decode_body(b64.as_bytes()).unwrap();
        let req = CertReq::from_der(&der).unwrap();
        assert_eq!(
            challenge_password(&req).unwrap().unwrap(),
            b"dFsAXmJnjokBtDvr"
        );
    }
}
