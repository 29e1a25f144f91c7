//! What a certification request or certificate says, as the operator reads it: the console's
//! request and certificate pages and `estuary request show` print these.
use x509_cert::ext::pkix::name::GeneralName;

/// One SubjectAltName entry as the CLI writes it: `dns:`, `ip:`, `email:`, `uri:`, else the
/// kind of name.
pub fn general_name_text(g: &GeneralName) -> String {
    match g {
        GeneralName::DnsName(s) => format!("dns:{s}"),
        GeneralName::Rfc822Name(s) => format!("email:{s}"),
        GeneralName::UniformResourceIdentifier(s) => format!("uri:{s}"),
        GeneralName::IpAddress(o) => {
            let b = o.as_bytes();
            match (<[u8; 4]>::try_from(b), <[u8; 16]>::try_from(b)) {
                (Ok(a), _) => format!("ip:{}", std::net::Ipv4Addr::from(a)),
                (_, Ok(a)) => format!("ip:{}", std::net::Ipv6Addr::from(a)),
                _ => format!("ip:(invalid, {} bytes)", b.len()),
            }
        }
        GeneralName::DirectoryName(n) => format!("dirName:{n}"),
        GeneralName::RegisteredId(o) => format!("registeredID:{o}"),
        GeneralName::OtherName(o) => format!("otherName:{}", o.type_id),
        GeneralName::EdiPartyName(_) => "ediPartyName".into(),
    }
}

/// Whether a SAN entry in [`general_name_text`] form is the one asked for: `dns:host` (DNS
/// names in any case) or a bare value, which matches an entry of any kind.
pub fn san_matches(have: &str, want: &str) -> bool {
    let want = want.trim().to_ascii_lowercase();
    let have = have.to_ascii_lowercase();
    if want.contains(':') {
        have == want
    } else {
        have.split_once(':').is_some_and(|(_, v)| v == want)
    }
}

/// The SubjectAltName entries of a certificate (DER); empty when it has none or does not
/// decode.
pub fn certificate_sans(der_bytes: &[u8]) -> Vec<String> {
    use der::Decode;
    let Ok(c) = x509_cert::Certificate::from_der(der_bytes) else {
        return Vec::new();
    };
    c.tbs_certificate()
        .extensions()
        .map(|e| read_extensions(e).0)
        .unwrap_or_default()
}

/// What a held request asks for, read from the request as received.
#[derive(Debug, Clone)]
pub struct Asked {
    pub form: &'static str,
    pub subject: String,
    pub sans: Vec<String>,
    pub key: String,
    pub signature: Option<String>,
    pub extensions: Vec<String>,
    pub attributes: Vec<String>,
}

fn oid_name(oid: &der::asn1::ObjectIdentifier) -> String {
    const_oid::db::DB
        .by_oid(oid)
        .map_or_else(|| oid.to_string(), |n| format!("{n} ({oid})"))
}

pub fn key_description(spki: &x509_cert::spki::SubjectPublicKeyInfoOwned) -> String {
    use der::Encode;
    let Ok(key) = spki
        .to_der()
        .map_err(|_| ())
        .and_then(|d| openssl::pkey::PKey::public_key_from_der(&d).map_err(|_| ()))
    else {
        return format!("{} (not decodable)", oid_name(&spki.algorithm.oid));
    };
    match key.id() {
        openssl::pkey::Id::RSA => format!("RSA {} bits", key.bits()),
        openssl::pkey::Id::EC => key
            .ec_key()
            .ok()
            .and_then(|k| k.group().curve_name())
            .and_then(|n| n.short_name().ok())
            .map_or_else(|| "EC (unnamed curve)".into(), |c| format!("EC {c}")),
        openssl::pkey::Id::ED25519 => "Ed25519".into(),
        openssl::pkey::Id::ED448 => "Ed448".into(),
        _ => format!("{} ({} bits)", oid_name(&spki.algorithm.oid), key.bits()),
    }
}

fn read_extensions(exts: &[x509_cert::ext::Extension]) -> (Vec<String>, Vec<String>) {
    use der::Decode;
    let mut sans = Vec::new();
    let mut out = Vec::new();
    for e in exts {
        if e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME
            && let Ok(s) = x509_cert::ext::pkix::SubjectAltName::from_der(e.extn_value.as_bytes())
        {
            for g in &s.0 {
                sans.push(general_name_text(g));
            }
        }
        out.push(format!(
            "{}{}",
            oid_name(&e.extn_id),
            if e.critical { ", critical" } else { "" }
        ));
    }
    (sans, out)
}

/// Reads a held request (PKCS#10 or CRMF CertReqMsg, DER) for the operator; `None` when it is
/// neither.
pub fn describe_request(der_bytes: &[u8]) -> Option<Asked> {
    use der::Decode;
    if let Ok(csr) = x509_cert::request::CertReq::from_der(der_bytes) {
        let mut sans = Vec::new();
        let mut extensions = Vec::new();
        let mut attributes = Vec::new();
        for a in csr.info.attributes.iter() {
            if a.oid == const_oid::db::rfc5912::ID_EXTENSION_REQ {
                for v in a.values.iter() {
                    if let Ok(exts) = v.decode_as::<Vec<x509_cert::ext::Extension>>() {
                        let (s, e) = read_extensions(&exts);
                        sans.extend(s);
                        extensions.extend(e);
                    }
                }
            } else if a.oid == const_oid::db::rfc2985::PKCS_9_AT_CHALLENGE_PASSWORD {
                attributes.push("challengePassword (value not shown)".into());
            } else {
                attributes.push(oid_name(&a.oid));
            }
        }
        return Some(Asked {
            form: "PKCS#10",
            subject: csr.info.subject.to_string(),
            sans,
            key: key_description(&csr.info.public_key),
            signature: Some(oid_name(&csr.algorithm.oid)),
            extensions,
            attributes,
        });
    }
    let msg = est_cmc::crmf::CertReqMsg::from_der(der_bytes).ok()?;
    let t = &msg.cert_req.cert_template;
    let (sans, extensions) = t
        .extensions
        .as_ref()
        .map(|e| read_extensions(e))
        .unwrap_or_default();
    Some(Asked {
        form: "CRMF",
        subject: t
            .subject
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        sans,
        key: t
            .public_key
            .as_ref()
            .map_or_else(|| "(none)".into(), key_description),
        signature: None,
        extensions,
        attributes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn san_queries() {
        assert!(san_matches("dns:m1.example", "M1.example"));
        assert!(san_matches("dns:m1.example", "dns:m1.example"));
        assert!(!san_matches("dns:m1.example", "ip:m1.example"));
        assert!(san_matches("ip:192.0.2.9", "192.0.2.9"));
        assert!(!san_matches("dns:m1.example", "m1"));
    }
}
