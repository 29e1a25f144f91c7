#![no_main]
//! PKIResponse and CMCStatusInfo(V2) as a client reads them, and a whole signed response.
use der::Decode;
use est_cmc::types::CmcStatusInfo;
use est_cmc::{CmcStatusInfoV2, ResponseSummary};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ResponseSummary::read(data);
    let _ = CmcStatusInfoV2::from_der(data);
    let _ = CmcStatusInfo::from_der(data);
    if let Ok(b) = openssl::x509::store::X509StoreBuilder::new() {
        let _ = est_cmc::client::verify_response(data, &b.build());
    }
});
