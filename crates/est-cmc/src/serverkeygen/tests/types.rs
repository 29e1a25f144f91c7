//! The draft's types: OIDs, DER and EXPLICIT tagging, an independent decoder.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

#[test]
fn default_oids_are_under_the_estuary_arc() {
    let o = SkgOids::default();
    let a = SkgOids::ESTUARY_ARC;
    assert_eq!(o.server_key_gen_request.to_string(), format!("{a}.1.1"));
    assert_eq!(o.server_key_gen_response.to_string(), format!("{a}.1.2"));
    assert_eq!(o.shroud_with_public_key.to_string(), format!("{a}.2.1"));
    assert_eq!(o.shroud_with_shared_secret.to_string(), format!("{a}.2.2"));
    assert_eq!(o.cet_server_key_gen.to_string(), format!("{a}.3.1"));
    assert_eq!(SkgOids::under_arc(a).unwrap(), o);
    let other = SkgOids::under_arc("1.3.6.1.4.1.99999.7").unwrap();
    assert_eq!(
        other.cet_server_key_gen.to_string(),
        "1.3.6.1.4.1.99999.7.3.1"
    );
    assert!(SkgOids::under_arc("x").is_err());
    let dup = o.server_key_gen_request.clone();
    assert!(
        SkgOids::new(
            dup.clone(),
            dup,
            o.shroud_with_public_key.clone(),
            o.shroud_with_shared_secret.clone(),
            o.cet_server_key_gen.clone()
        )
        .is_err()
    );
}

/// EXPLICIT tagging (§2.14 item 9): certIdentifier is [1] around the SignerIdentifier CHOICE
/// (here the SEQUENCE of issuerAndSerialNumber, or the [0] of a subjectKeyIdentifier), bareKey
/// is [2] around its SEQUENCE.
#[test]
fn shroud_with_public_key_tags_are_explicit() {
    let ca = ca("Tag CA");
    let c = to_cert(&ca.cert);
    let ias = ShroudWithPublicKey::CertIdentifier(SignerIdentifier::IssuerAndSerialNumber(
        est_cms::issuer_and_serial(&c),
    ));
    let d = ias.to_der().unwrap();
    assert_eq!((d[0], d[2]), (0xa1, 0x30), "{d:02x?}");
    let ski = ShroudWithPublicKey::CertIdentifier(SignerIdentifier::SubjectKeyIdentifier(
        x509_cert::ext::pkix::SubjectKeyIdentifier(
            der::asn1::OctetString::new(vec![7; 20]).unwrap(),
        ),
    ));
    let d2 = ski.to_der().unwrap();
    assert_eq!((d2[0], d2[2]), (0xa1, 0x80), "{d2:02x?}");
    let bare = ShroudWithPublicKey::BareKey(BareKey {
        public_key: c.tbs_certificate().subject_public_key_info().clone(),
        ski: x509_cert::ext::pkix::SubjectKeyIdentifier(
            der::asn1::OctetString::new(vec![1, 2, 3]).unwrap(),
        ),
    });
    let d3 = bare.to_der().unwrap();
    assert_eq!((d3[0], d3[2]), (0xa2, 0x30), "{d3:02x?}");
    let whole = ShroudWithPublicKey::Certificate(c);
    for v in [ias, ski, bare, whole] {
        let der = v.to_der().unwrap();
        let back = ShroudWithPublicKey::from_der(&der).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.to_der().unwrap(), der);
    }
}

#[test]
fn request_and_response_types_round_trip_byte_equal() {
    let oids = SkgOids::default();
    let shroud = Shroud::SharedSecret("secret-7".into());
    let pki = request_pki(&oids, "dev.example", &shroud, None);
    let der = pki.to_der().unwrap();
    let back = PkiData::from_der(&der).unwrap();
    assert_eq!(back, pki);
    assert_eq!(back.to_der().unwrap(), der);
    let c = back
        .control_sequence
        .iter()
        .find(|c| c.attr_type == oids.server_key_gen_request)
        .unwrap();
    assert_eq!(c.body_part_id, ID_SKG_REQUEST);
    let r: ServerKeyGenRequest = control_value(c).unwrap();
    // SKGD-9: always encoded by our builder; archiveKey FALSE is encoded (not the default).
    assert!(r.alg_capabilities.is_some());
    assert!(!r.archive_key);
    let r_der = r.to_der().unwrap();
    assert_eq!(&r_der[r_der.len() - 3..], &[0x01, 0x01, 0x00]);
    // archiveKey TRUE is the DEFAULT and so omitted; absent algCapabilities decodes.
    let mut r2 = r.clone();
    r2.archive_key = true;
    r2.alg_capabilities = None;
    let d2 = r2.to_der().unwrap();
    assert!(d2.len() < r_der.len());
    let back2 = ServerKeyGenRequest::from_der(&d2).unwrap();
    assert!(back2.archive_key && back2.alg_capabilities.is_none());

    let ca = ca("Resp CA");
    let resp = ServerKeyGenResponse {
        cms_body_part_id: 9,
        request_body_part_id: ID_SKG_REQUEST,
        signer_identifier: SignerIdentifier::IssuerAndSerialNumber(est_cms::issuer_and_serial(
            &to_cert(&ca.cert),
        )),
    };
    let d = resp.to_der().unwrap();
    assert_eq!(ServerKeyGenResponse::from_der(&d).unwrap(), resp);

    let code = SkgErrorCode::BAD_SHARED_SECRET;
    let ext = code.extended_fail_info(&oids).unwrap();
    assert_eq!(
        ext.fail_info_value.to_der().unwrap(),
        vec![0x02, 0x01, 0x03]
    );
    assert_eq!(SkgErrorCode::from_extended(&ext, &oids), Some(code));
    assert_eq!(
        SkgErrorCode::from_extended(&ext, &SkgOids::under_arc("1.2.3").unwrap()),
        None
    );
    assert_eq!(code.name(), "badSharedSecret");
}

/// The request as an independent decoder sees it: `openssl asn1parse` shows the wide control
/// OID, id-alg-noSignature and the shroud OID.
#[test]
fn openssl_asn1parse_reads_the_request() {
    let oids = SkgOids::default();
    let pki = request_pki(
        &oids,
        "dev.example",
        &Shroud::SharedSecret("s1".into()),
        None,
    );
    let d = TempDir::new("asn1");
    let f = der_file(&d.0, "pki.der", &pki.to_der().unwrap());
    let dump = String::from_utf8(openssl(&["asn1parse", "-inform", "DER", "-in", &f])).unwrap();
    let a = SkgOids::ESTUARY_ARC;
    assert!(dump.contains(&format!(":{a}.1.1")), "{dump}");
    assert!(dump.contains(&format!(":{a}.2.2")), "{dump}");
    assert!(dump.contains(":id-alg-noSignature"), "{dump}");
    assert!(
        dump.contains("id-ecPublicKey") && dump.contains("prime256v1"),
        "{dump}"
    );
    assert!(dump.contains(":s1"), "{dump}");
}
