#![no_main]
//! The CMC server-side key generation draft (SKGD-1..SKGD-44): every decoder of its types, the
//! wide OID (DER and dotted), and the server's reading of a PKIData, with the input both as a
//! whole PKIData and as the value of a ServerKeyGenRequest control (est-cmc never panics).
use der::{Decode, Encode};
use est_cmc::serverkeygen::server::{self, AuthenticatedName, DeliveryPlan};
use est_cmc::serverkeygen::{
    ServerKeyGenRequest, ServerKeyGenResponse, ShroudWithPublicKey, SkgErrorCode, SkgOids,
};
use est_cmc::{Oid, PkiData, TaggedAttribute};

fn exercise(pki: &PkiData, oids: &SkgOids) {
    let Ok(requests) = server::read_requests(pki, oids) else {
        return;
    };
    let name = x509_cert::name::Name::default();
    for r in requests.into_iter().flatten() {
        let _ = server::check_request_names(
            &r,
            AuthenticatedName {
                subject: &name,
                san: None,
            },
        );
        if let Ok(key) = r.shroud_key(&[]) {
            let secret = zeroize::Zeroizing::new(b"fuzz".to_vec());
            let _ = DeliveryPlan::new(&r, &key, Some(secret));
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let oids = SkgOids::default();
    let _ = ServerKeyGenRequest::from_der(data);
    let _ = ServerKeyGenResponse::from_der(data);
    let _ = ShroudWithPublicKey::from_der(data);
    let _ = SkgErrorCode::from_der(data);
    if let Ok(oid) = Oid::from_der(data) {
        let s = oid.to_string();
        assert_eq!(s.parse::<Oid>().ok().as_ref(), Some(&oid));
        let _ = oid.to_const();
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(oid) = s.parse::<Oid>() {
            assert_eq!(
                Oid::from_der(&oid.to_der().unwrap_or_default()).ok(),
                Some(oid)
            );
        }
    }
    if let Ok(pki) = PkiData::from_der(data) {
        exercise(&pki, &oids);
    }
    if let Ok(value) = der::Any::from_der(data) {
        if let Ok(attr) = TaggedAttribute::single(1, oids.server_key_gen_request.clone(), &value) {
            let pki = PkiData {
                control_sequence: vec![attr],
                ..Default::default()
            };
            exercise(&pki, &oids);
        }
    }
});
