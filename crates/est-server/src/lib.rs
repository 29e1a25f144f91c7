//! The EST HTTP/TLS front end: our own TLS accept loop (so every request knows its
//! connection's verified client chain and channel binding), limits on bodies, time and
//! connections from the start, and thin handlers that call the authority through [`EstCa`].
mod admin;
mod auth;
mod cmc;
mod config;
mod conn;
mod conntable;
pub mod console;
pub use est_proto::digest;
mod error;
mod fdlimit;
mod handlers;
mod header_case;
mod keygen;
mod metrics;
mod nonce;
mod ocsp;
mod ra;
mod ratelimit;
mod serve;
mod tls;

pub use admin::{AdminState, HealthSource, serve_admin};
pub use auth::{AuthSettings, DEFAULT_REALM, user_digest_secrets};
pub use config::{
    Approval, AuthMethods, CmcPolicy, LabelConfig, Limits, ServerConfig, ServerKeyGen, TlsConfig,
};
pub use conn::{ConnInfo, TrustAnchorSet};
pub use conntable::{ConnStats, TIMEOUT_FLOOR};
pub use error::ServerError;
pub use est_proto::ChannelBinding;
pub use fdlimit::{RESERVED_FDS, connection_capacity, raise_fd_limit};
pub use handlers::{EstCa, EstState, TOKEN_PREFIX};
pub use metrics::Metrics;
pub use ra::{CaResponse, ForwardCmc, ForwardEnroll, Forwarded, Relayed, Upstream, UpstreamError};
pub use ratelimit::FailurePolicy;
pub use serve::{RunningServer, serve, serve_listener};
pub use tls::build_acceptor;
