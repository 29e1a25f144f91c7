#![no_main]
//! What the console and `estuary request show` read out of a client's request (PKCS#10 or a
//! CRMF CertReqMsg, held as received) and out of a certificate: subject, every SAN, key,
//! extensions, attributes. A held request comes from the network, so any bytes must do.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = est_server::console::describe_request(data);
    let _ = est_server::console::certificate_sans(data);
});
