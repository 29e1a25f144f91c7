use std::sync::OnceLock;

use openssl::ex_data::Index;
use openssl::ssl::{
    SslAcceptor, SslContext, SslMethod, SslOptions, SslRef, SslSessionCacheMode, SslVerifyMode,
    SslVersion,
};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

use crate::TlsConfig;

/// The DER of the explicit trust anchors, kept with the SSL context so that each connection
/// can tell which database validated its client (EST-28).
#[derive(Debug)]
struct ExplicitAnchors(Vec<Vec<u8>>);

fn anchors_index() -> Option<Index<SslContext, ExplicitAnchors>> {
    static INDEX: OnceLock<Option<Index<SslContext, ExplicitAnchors>>> = OnceLock::new();
    *INDEX.get_or_init(|| SslContext::new_ex_index().ok())
}

/// The explicit trust anchors of the context this connection was accepted on.
pub(crate) fn explicit_anchors(ssl: &SslRef) -> Option<&[Vec<u8>]> {
    let idx = anchors_index()?;
    ssl.ssl_context().ex_data(idx).map(|a| a.0.as_slice())
}

/// The TLS acceptor: TLS 1.2 and 1.3 only (EST-21), Mozilla "intermediate" suites (no NULL,
/// anonymous, EXPORT or DES, EST-35), no renegotiation (EST-37), server-side session cache
/// (EST-23), and client certificates requested but not required (EST-27) and validated against
/// the explicit and, when configured, the implicit trust anchors (EST-28).
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
    // it only when it ends at a self-signed certificate there (no partial chains). On a server
    // it checks the "TLS client" purpose: key usage and, when present, the clientAuth EKU.
    // Explicit and implicit anchors share the store; ConnInfo tells them apart by the root.
    let to_der = |c: &x509_cert::Certificate| {
        der::Encode::to_der(c).map_err(|_| openssl::error::ErrorStack::get())
    };
    let mut store = X509StoreBuilder::new()?;
    let mut explicit = Vec::new();
    for ta in &cfg.client_trust_anchors {
        let der = to_der(ta)?;
        store.add_cert(X509::from_der(&der)?)?;
        explicit.push(der);
    }
    for c in cfg
        .client_intermediates
        .iter()
        .chain(&cfg.implicit_trust_anchors)
    {
        store.add_cert(X509::from_der(&to_der(c)?)?)?;
    }
    b.set_verify_cert_store(store.build())?;
    let idx = anchors_index().ok_or_else(openssl::error::ErrorStack::get)?;
    b.set_ex_data(idx, ExplicitAnchors(explicit));
    // Request a certificate; a missing or invalid one does not abort the handshake, it just
    // leaves the request unauthenticated (ConnInfo records why), so /cacerts keeps working.
    b.set_verify_callback(SslVerifyMode::PEER, |_ok, _ctx| true);
    b.set_session_cache_mode(SslSessionCacheMode::SERVER);
    b.set_session_id_context(b"estuary")?;
    Ok(b.build())
}
