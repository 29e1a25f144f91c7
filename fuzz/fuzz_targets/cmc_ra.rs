#![no_main]
//! What an RA reads of network input (issue 10): the request IDs of a client's Full PKI
//! Request, and the CA's batch response and pendInfo; the Response Body of an RA's answer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = est_cmc::ra::request_ids(data);
    let _ = est_cmc::ra::batch_member(data);
    let _ = est_cmc::ra::carries_control(data, &est_cmc::oids::RESPONSE_BODY.into());
    // A client reading an RA's response to an RA-generated key (SKGD-36).
    let _ = est_cmc::ra_keygen::response_bodies(data);
    if let Ok(s) = est_cmc::ResponseSummary::read(data) {
        let _ = est_cmc::ra::pend_token(&s, 4);
        let _ = est_cmc::ra::pend_wait(&s, 4, std::time::SystemTime::UNIX_EPOCH);
    }
});
