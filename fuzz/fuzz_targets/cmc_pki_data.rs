#![no_main]
//! PKIData and every control value decoder (RFC 5272 §3.2, §6), without the CMS layer.
use der::Decode;
use est_cmc::{Controls, PkiData, TaggedRequest};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(pki) = PkiData::from_der(data) {
        let _ = Controls::read(&pki);
        for r in &pki.req_sequence {
            let _ = est_cmc::CertificationRequest::read(r, Default::default());
        }
    }
    let _ = TaggedRequest::from_der(data);
    let _ = est_cmc::crmf::CertReqMsg::from_der(data);
    let _ = est_cmc::controls::ModCertTemplate::from_der(data);
    let _ = est_cmc::controls::RevokeRequest::from_der(data);
    let _ = est_cmc::controls::GetCert::from_der(data);
    let _ = est_cmc::controls::GetCrl::from_der(data);
    let _ = est_cmc::controls::EncryptedPop::from_der(data);
    let _ = est_cmc::controls::DecryptedPop::from_der(data);
    let _ = est_cmc::controls::IdentifyProofV2::from_der(data);
    let _ = est_cmc::controls::PopLinkWitnessV2::from_der(data);
    let _ = est_cmc::controls::LraPopWitness::from_der(data);
    let _ = est_cmc::controls::AddExtensions::from_der(data);
    let _ = est_cmc::controls::ControlsProcessed::from_der(data);
    let _ = est_cmc::controls::PublishTrustAnchors::from_der(data);
    let _ = est_cmc::controls::CmcPublicationInfo::from_der(data);
    let _ = est_cmc::controls::ChangeSubjectName::from_der(data);
});
