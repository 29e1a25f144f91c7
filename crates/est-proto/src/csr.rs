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

/// The /csrattrs of a label that requires PoP linking: EST-55 says such a server MUST list the
/// challengePassword OID, so it is added to the configured attributes (DER CsrAttrs) when
/// missing, or makes up the whole answer when none are configured.
pub fn csrattrs_requiring_pop_linking(configured: Option<&[u8]>) -> Result<Vec<u8>, CsrError> {
    use der::{Decode, Encode};
    use est_asn1::{AttrOrOid, CsrAttrs, oids::CHALLENGE_PASSWORD};
    let mut attrs = match configured {
        Some(der) => CsrAttrs::from_der(der).map_err(|e| CsrError(format!("CsrAttrs: {e}")))?,
        None => CsrAttrs::default(),
    };
    let listed = attrs.0.iter().any(|a| match a {
        AttrOrOid::Oid(o) => *o == CHALLENGE_PASSWORD,
        AttrOrOid::Attribute(at) => at.oid == CHALLENGE_PASSWORD,
        AttrOrOid::Other(_) => false,
    });
    if !listed {
        attrs.0.insert(0, AttrOrOid::Oid(CHALLENGE_PASSWORD));
    }
    attrs
        .to_der()
        .map_err(|e| CsrError(format!("CsrAttrs: {e}")))
}

/// How the client asked /serverkeygen to deliver the generated key (SKG-9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyDelivery {
    /// No identifier: the key comes back as plain PKCS#8, protected by TLS only (SKG-17).
    Plain,
    /// `DecryptKeyIdentifier` (RFC 4108 §2.2.5): the id of a symmetric key shared with the
    /// server (kekri, SKG-20).
    SymmetricKey(Vec<u8>),
    /// `AsymmetricDecryptKeyIdentifier`: the SubjectKeyIdentifier of a client public key known to
    /// the server (ktri or kari, SKG-21/22).
    AsymmetricKey(Vec<u8>),
}

fn single_value<'a>(
    req: &'a CertReq,
    oid: der::asn1::ObjectIdentifier,
    what: &str,
) -> Result<Option<&'a der::Any>, CsrError> {
    let mut attrs = req.info.attributes.iter().filter(|a| a.oid == oid);
    let Some(attr) = attrs.next() else {
        return Ok(None);
    };
    if attrs.next().is_some() || attr.values.len() != 1 {
        return Err(CsrError(format!("{what} must appear once, with one value")));
    }
    Ok(attr.values.iter().next())
}

fn octet_string_value(
    req: &CertReq,
    oid: der::asn1::ObjectIdentifier,
    what: &str,
) -> Result<Option<Vec<u8>>, CsrError> {
    let Some(v) = single_value(req, oid, what)? else {
        return Ok(None);
    };
    let os = v
        .decode_as::<der::asn1::OctetString>()
        .map_err(|_| CsrError(format!("{what} is not an OCTET STRING")))?;
    if os.as_bytes().is_empty() || os.as_bytes().len() > 256 {
        return Err(CsrError(format!("{what} must be 1 to 256 bytes")));
    }
    Ok(Some(os.as_bytes().to_vec()))
}

/// Reads the DecryptKeyIdentifier / AsymmetricDecryptKeyIdentifier attributes (SKG-9: at most
/// one of them).
pub fn key_delivery(req: &CertReq) -> Result<KeyDelivery, CsrError> {
    let sym = octet_string_value(req, est_asn1::oids::DECRYPT_KEY_ID, "DecryptKeyIdentifier")?;
    let asym = octet_string_value(
        req,
        est_asn1::oids::ASYMM_DECRYPT_KEY_ID,
        "AsymmetricDecryptKeyIdentifier",
    )?;
    match (sym, asym) {
        (None, None) => Ok(KeyDelivery::Plain),
        (Some(id), None) => Ok(KeyDelivery::SymmetricKey(id)),
        (None, Some(id)) => Ok(KeyDelivery::AsymmetricKey(id)),
        (Some(_), Some(_)) => Err(CsrError(
            "include either DecryptKeyIdentifier or AsymmetricDecryptKeyIdentifier, not both"
                .into(),
        )),
    }
}

/// The DER of the SMIMECapabilities attribute value (RFC 5751 §2.5.2), if present.
pub fn smime_capabilities(req: &CertReq) -> Result<Option<Vec<u8>>, CsrError> {
    single_value(req, est_asn1::oids::SMIME_CAPABILITIES, "SMIMECapabilities")?
        .map(|v| der::Encode::to_der(v).map_err(|e| CsrError(format!("SMIMECapabilities: {e}"))))
        .transpose()
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
    fn pop_linking_labels_list_challenge_password() {
        use est_asn1::{AttrOrOid, CsrAttrs, oids::CHALLENGE_PASSWORD};
        let only = CsrAttrs::from_der(&csrattrs_requiring_pop_linking(None).unwrap()).unwrap();
        assert_eq!(only.0, vec![AttrOrOid::Oid(CHALLENGE_PASSWORD)]);
        // The RFC 7030 A.2 example (EST-111): six entries, two of them with private 2.999.x
        // OIDs that are kept as they are; it re-encodes byte for byte and already lists
        // challengePassword, so it stays unchanged.
        let a2 = crate::decode_body(include_bytes!("../tests/vectors/a2-csrattrs.b64")).unwrap();
        let parsed = CsrAttrs::from_der(&a2).unwrap();
        assert_eq!(parsed.0.len(), 6);
        assert!(matches!(parsed.0[0], AttrOrOid::Oid(o) if o == est_asn1::oids::MAC_ADDRESS));
        assert!(matches!(parsed.0[1], AttrOrOid::Other(_)));
        assert_eq!(parsed.0[2], AttrOrOid::Oid(CHALLENGE_PASSWORD));
        assert_eq!(der::Encode::to_der(&parsed).unwrap(), a2);
        assert_eq!(csrattrs_requiring_pop_linking(Some(&a2)).unwrap(), a2);
        // Added in front of other entries.
        let other =
            der::Encode::to_der(&CsrAttrs(vec![AttrOrOid::Oid(est_asn1::oids::MAC_ADDRESS)]))
                .unwrap();
        let both =
            CsrAttrs::from_der(&csrattrs_requiring_pop_linking(Some(&other)).unwrap()).unwrap();
        assert_eq!(both.0.len(), 2);
        assert_eq!(both.0[0], AttrOrOid::Oid(CHALLENGE_PASSWORD));
        assert!(csrattrs_requiring_pop_linking(Some(b"junk")).is_err());
    }

    #[test]
    fn key_delivery_attributes() {
        use der::Encode;
        use x509_cert::attr::Attribute;
        let b64 = include_str!("../tests/vectors/a4-serverkeygen-request.b64");
        let der = crate::decode_body(b64.as_bytes()).unwrap();
        let mut req = CertReq::from_der(&der).unwrap();
        assert_eq!(key_delivery(&req).unwrap(), KeyDelivery::Plain);
        assert_eq!(smime_capabilities(&req).unwrap(), None);
        let attr = |oid, v: der::Any| Attribute {
            oid,
            values: der::asn1::SetOfVec::try_from(vec![v]).unwrap(),
        };
        let os =
            |b: &[u8]| der::Any::encode_from(&der::asn1::OctetString::new(b).unwrap()).unwrap();
        let mut r1 = req.clone();
        r1.info
            .attributes
            .insert(attr(est_asn1::oids::DECRYPT_KEY_ID, os(b"kek-1")))
            .unwrap();
        assert_eq!(
            key_delivery(&r1).unwrap(),
            KeyDelivery::SymmetricKey(b"kek-1".to_vec())
        );
        r1.info
            .attributes
            .insert(attr(est_asn1::oids::ASYMM_DECRYPT_KEY_ID, os(&[1, 2])))
            .unwrap();
        assert!(key_delivery(&r1).is_err());
        req.info
            .attributes
            .insert(attr(est_asn1::oids::ASYMM_DECRYPT_KEY_ID, os(&[1, 2])))
            .unwrap();
        assert_eq!(
            key_delivery(&req).unwrap(),
            KeyDelivery::AsymmetricKey(vec![1, 2])
        );
        // Not an OCTET STRING: refused, not a panic.
        let mut r2 = CertReq::from_der(&der).unwrap();
        r2.info
            .attributes
            .insert(attr(
                est_asn1::oids::DECRYPT_KEY_ID,
                der::Any::encode_from(&true).unwrap(),
            ))
            .unwrap();
        assert!(key_delivery(&r2).is_err());
        let caps = der::Any::from_der(&[0x30, 0x00]).unwrap();
        r2.info
            .attributes
            .insert(attr(est_asn1::oids::SMIME_CAPABILITIES, caps))
            .unwrap();
        assert_eq!(smime_capabilities(&r2).unwrap(), Some(vec![0x30, 0]));
        let _ = req.to_der().unwrap();
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
