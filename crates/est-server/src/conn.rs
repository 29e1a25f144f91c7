use std::net::SocketAddr;

use est_proto::ChannelBinding;
use openssl::ssl::{SslRef, SslVersion};
use openssl::x509::X509VerifyResult;

/// What a request knows about its connection, computed once after the handshake.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls13: bool,
    pub binding: Option<ChannelBinding>,
    /// The client's leaf certificate (DER) when it validated to an explicit trust anchor.
    pub client_cert: Option<Vec<u8>>,
    /// Why a presented client certificate was not accepted (for the 401 reason text).
    pub client_cert_error: Option<String>,
}

impl ConnInfo {
    pub fn from_ssl(ssl: &SslRef, peer: SocketAddr) -> Self {
        let tls13 = ssl.version2() == Some(SslVersion::TLS1_3);
        let binding = if tls13 {
            let mut v = vec![0u8; 32];
            ssl.export_keying_material(&mut v, "EXPORTER-Channel-Binding", Some(&[]))
                .ok()
                .map(|_| ChannelBinding::TlsExporter(v))
        } else if ssl.extms_support() == Some(true) {
            // tls-unique is the first Finished of the latest handshake: the client's for a full
            // handshake, ours for an abbreviated (resumed) one.
            let mut v = vec![0u8; 64];
            let n = if ssl.session_reused() {
                ssl.finished(&mut v)
            } else {
                ssl.peer_finished(&mut v)
            };
            v.truncate(n);
            (n > 0).then_some(ChannelBinding::TlsUnique(v))
        } else {
            None
        };
        let (client_cert, client_cert_error) = match ssl.peer_certificate() {
            None => (None, None),
            Some(leaf) => {
                let r = ssl.verify_result();
                if r == X509VerifyResult::OK {
                    (leaf.to_der().ok(), None)
                } else {
                    (
                        None,
                        Some(format!("client certificate rejected: {}", r.error_string())),
                    )
                }
            }
        };
        Self {
            peer,
            tls13,
            binding,
            client_cert,
            client_cert_error,
        }
    }
}
