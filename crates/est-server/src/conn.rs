use std::net::SocketAddr;
use std::sync::Arc;

use est_proto::ChannelBinding;
use openssl::ssl::{SslRef, SslVersion};
use openssl::x509::X509VerifyResult;

use crate::tls::explicit_anchors;

/// Which trust-anchor database validated a client certificate (EST-28): authorization
/// depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustAnchorSet {
    /// This server's own CA roots.
    Explicit,
    /// Configured third-party roots (e.g. an IDevID manufacturer CA).
    Implicit,
}

/// What a request knows about its connection, computed once after the handshake.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls13: bool,
    pub binding: Option<ChannelBinding>,
    /// The client's leaf certificate (DER) when it validated to a trust anchor (RFC 5280 path,
    /// validity, and the TLS client purpose: key usage and clientAuth EKU when present).
    pub client_cert: Option<Vec<u8>>,
    /// Which trust-anchor set validated `client_cert`.
    pub client_trust: Option<TrustAnchorSet>,
    /// Why a presented client certificate was not accepted (for the 401 reason text).
    pub client_cert_error: Option<String>,
    /// The connection's place in the connection table, when served by [`crate::serve`].
    pub(crate) slot: Option<Arc<crate::conntable::Slot>>,
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
        // The root of the validated path tells which database it came from.
        let client_trust = client_cert.as_ref().map(|_| {
            let root = ssl
                .verified_chain()
                .and_then(|c| c.iter().last().and_then(|r| r.to_der().ok()));
            match (root, explicit_anchors(ssl)) {
                (Some(root), Some(explicit)) if explicit.contains(&root) => {
                    TrustAnchorSet::Explicit
                }
                (_, None) => TrustAnchorSet::Explicit,
                _ => TrustAnchorSet::Implicit,
            }
        });
        Self {
            peer,
            tls13,
            binding,
            client_cert,
            client_trust,
            client_cert_error,
            slot: None,
        }
    }
}
