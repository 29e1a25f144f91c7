use openssl::ssl::{
    SslAcceptor, SslMethod, SslOptions, SslSessionCacheMode, SslVerifyMode, SslVersion,
};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

use crate::TlsConfig;

/// The TLS acceptor: TLS 1.2 and 1.3 only (EST-21), Mozilla "intermediate" suites (no NULL,
/// anonymous, EXPORT or DES, EST-35), no renegotiation (EST-37), server-side session cache
/// (EST-23), and client certificates requested but not required (EST-27) and validated against
/// the explicit trust anchors (EST-28).
pub fn build_acceptor(cfg: &TlsConfig) -> Result<SslAcceptor, openssl::error::ErrorStack> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_options(SslOptions::NO_RENEGOTIATION | SslOptions::CIPHER_SERVER_PREFERENCE);
    let mut chain = X509::stack_from_pem(&cfg.cert_chain_pem)?.into_iter();
    let leaf = chain.next().ok_or_else(openssl::error::ErrorStack::get)?;
    b.set_certificate(&leaf)?;
    for c in chain {
        b.add_extra_chain_cert(c)?;
    }
    let key = openssl::pkey::PKey::private_key_from_pem(&cfg.key_pem)?;
    b.set_private_key(&key)?;
    b.check_private_key()?;

    // OpenSSL builds the path from the leaf through the intermediates in the store and accepts
    // it only when it ends at a self-signed certificate there (no partial chains).
    let mut store = X509StoreBuilder::new()?;
    for ta in cfg
        .client_trust_anchors
        .iter()
        .chain(&cfg.client_intermediates)
    {
        let der = der::Encode::to_der(ta).map_err(|_| openssl::error::ErrorStack::get())?;
        store.add_cert(X509::from_der(&der)?)?;
    }
    b.set_verify_cert_store(store.build())?;
    // Request a certificate; a missing or invalid one does not abort the handshake, it just
    // leaves the request unauthenticated (ConnInfo records why), so /cacerts keeps working.
    b.set_verify_callback(SslVerifyMode::PEER, |_ok, _ctx| true);
    b.set_session_cache_mode(SslSessionCacheMode::SERVER);
    b.set_session_id_context(b"estuary")?;
    Ok(b.build())
}
