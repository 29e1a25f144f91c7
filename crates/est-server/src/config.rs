use std::net::SocketAddr;
use std::time::Duration;

use x509_cert::Certificate;

/// Immutable server configuration, validated while it is built (by the binary) and shared.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls: TlsConfig,
    pub limits: Limits,
    pub labels: Vec<LabelConfig>,
}

/// TLS server identity and client-certificate trust.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM: the server certificate followed by its chain.
    pub cert_chain_pem: Vec<u8>,
    /// PEM private key of the server certificate.
    pub key_pem: zeroize::Zeroizing<Vec<u8>>,
    /// Explicit trust anchors for client certificates (EST-28): this server's CA roots.
    pub client_trust_anchors: Vec<Certificate>,
    /// Intermediate CA certificates used to build client paths (clients often send only their
    /// leaf): this server's issuing CAs. They are not trust anchors themselves: a path must
    /// still end at one of `client_trust_anchors`.
    pub client_intermediates: Vec<Certificate>,
    /// Implicit trust anchors for client certificates (EST-28, EST-29): third-party roots such
    /// as an IDevID manufacturer CA. Empty: the implicit TA database is off. Clients validated
    /// through them get only what a label's `implicit_enroll` allows (SEC-2, SEC-23).
    pub implicit_trust_anchors: Vec<Certificate>,
}

/// Resource limits, in force from the first request (EST-18, SEC-16).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    /// Open connections at most; when full, a new connection closes the one that has been
    /// handshaking or idle longest (never one serving a request), and handshake and idle
    /// timeouts shrink from half full on (see `conntable`).
    pub max_connections: usize,
    /// Open connections at most from one source (an IPv4 address or an IPv6 /64); further
    /// ones are closed at once.
    pub max_connections_per_source: usize,
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_source: 128,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Which HTTP authentication methods a label accepts (TLS client certificates always count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMethods {
    pub basic: bool,
    /// HTTP Digest (RFC 7616; EST-42).
    pub digest: bool,
    pub client_cert: bool,
    /// The Digest algorithms this label offers, one challenge each in this order, and the only
    /// ones it accepts; `None`: the server's default ([`crate::AuthSettings`], SHA-256 then
    /// MD5). A label for clients that answer only the first challenge and know only MD5
    /// (libest's estclient) lists MD5 first (docs/interop.md).
    pub digest_algorithms: Option<Vec<crate::digest::DigestAlgorithm>>,
}

impl Default for AuthMethods {
    fn default() -> Self {
        Self {
            basic: true,
            digest: true,
            client_cert: true,
            digest_algorithms: None,
        }
    }
}

/// One EST CA label (`/.well-known/est/<label>/...`); the empty name is the label-less path.
#[derive(Debug, Clone)]
pub struct LabelConfig {
    pub name: String,
    /// The authority's CA domain that serves this label.
    pub domain: String,
    /// DER of the CsrAttrs to advertise; `None` answers 204 (EST-103).
    pub csr_attrs: Option<Vec<u8>>,
    pub auth: AuthMethods,
    /// Reject CSRs without channel binding in challengePassword (EST-55).
    pub require_pop_linking: bool,
    /// /serverkeygen policy; `None` leaves the operation off for this label (SKG-1).
    pub server_keygen: Option<ServerKeyGen>,
    /// Whether clients authenticated only through an implicit trust anchor may do initial
    /// enrollment here, and under which subject mapping; `None`: they may not (SEC-23).
    pub implicit_enroll: Option<est_ca::ImplicitNameMapping>,
    /// Who may enroll here and for which names (EST-47); empty: no label restriction.
    pub policy: est_ca::LabelPolicy,
    /// Whether initial enrollments wait for an operator (EST-49).
    pub approval: Approval,
    /// /fullcmc policy.
    pub cmc: CmcPolicy,
    /// RA mode: the CA this label forwards to instead of issuing (issue 10); `None`: this
    /// server's own CA `domain` issues.
    pub upstream: Option<std::sync::Arc<dyn crate::Upstream>>,
}

/// How a label serves /fullcmc (RFC 7030 §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmcPolicy {
    /// Accept requests without HTTP credentials when the CMC layer authenticates them: signed
    /// by an existing certificate of this CA (CMC-21) or carrying a verified Identity Proof
    /// (CMC-43).
    pub accept_cmc_authentication: bool,
    /// Accept SHA-1 signatures as POP of the inner certification requests.
    pub allow_sha1_pop: bool,
    /// Subjects (RFC 4514, `*` globs) of the id-kp-cmcRA certificates of this CA whose RA
    /// controls this label honours: Modify Certification Request, Add Extensions, RA POP
    /// Witness, RA Identity Witness, Batch Requests and vouching for wrapped requests
    /// (CMC-56). Empty: no RA is authorized.
    pub authorized_ras: Vec<String>,
    /// Answer issued certificates with confirmRequired; the client then sends Confirm
    /// Certificate Acceptance (CMC-69).
    pub confirm_required: bool,
    /// CMC server-side key generation (draft-turner-cmc-serverkeygeneration-02): the OIDs the
    /// ServerKeyGenRequest / ServerKeyGenResponse controls are known by; `None` (the default)
    /// leaves the control unsupported on this label (CMC-9).
    pub server_keygen: Option<est_cmc::serverkeygen::SkgOids>,
}

impl Default for CmcPolicy {
    fn default() -> Self {
        Self {
            accept_cmc_authentication: true,
            allow_sha1_pop: false,
            authorized_ras: Vec::new(),
            confirm_required: false,
            server_keygen: None,
        }
    }
}

/// How a label's initial enrollments are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Approval {
    /// Issued at once when authorized.
    #[default]
    Automatic,
    /// Held: 202 with this Retry-After until `estuary request approve|reject` (EST-91).
    Manual { retry_after: Duration },
}

/// How a label serves /serverkeygen (RFC 7030 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerKeyGen {
    /// Refuse requests that ask for the key in the clear (no DecryptKeyIdentifier nor
    /// AsymmetricDecryptKeyIdentifier, SKG-11).
    pub require_encryption: bool,
}
