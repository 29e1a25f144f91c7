//! `estuary.toml`: the configuration file model, and its loading into runtime objects. Every
//! key is documented in docs/configuration.md. Relative paths are relative to the data dir.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use est_ca::{
    Authority, CaDomain, ExtendedKeyUsage, Issuer, KeyBackend, KeyId, KeyPolicy, KeyUsageBit,
    Profile, SystemClock,
};
use est_keys::FileKeyBackend;
use est_server::{AuthMethods, LabelConfig, Limits, ServerConfig, TlsConfig};
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;
use zeroize::Zeroizing;

pub type AnyError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    pub store: StoreSection,
    pub keys: KeysSection,
    #[serde(rename = "ca", default)]
    pub cas: Vec<CaSection>,
    /// RA mode: the upstream CAs that labels with `upstream = "<name>"` forward to.
    #[serde(rename = "upstream", default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<UpstreamSection>,
    #[serde(rename = "label")]
    pub labels: Vec<LabelSection>,
    /// Server-side key generation (RFC 7030 §4.4) settings shared by every label.
    #[serde(default)]
    pub keygen: KeygenSection,
    /// The OIDs of CMC server-side key generation (draft-turner-cmc-serverkeygeneration-02),
    /// which IANA never assigned; used by labels with `cmc_server_keygen = true`.
    #[serde(default, skip_serializing_if = "CmcKeygenSection::is_default")]
    pub cmc_server_keygen: CmcKeygenSection,
    /// The admin listener: Prometheus `/metrics`, `/healthz`, `/readyz`.
    #[serde(default)]
    pub admin: AdminSection,
}

/// `[[upstream]]`: a CA that RA labels forward to (RA mode, issue 10).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    pub name: String,
    /// `https://host[:port]` of the upstream EST server.
    pub url: String,
    /// The upstream's CA label; absent: its label-less path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `"fullcmc"` (RA-signed PKIData, the default) or `"est"` (plain /simpleenroll with the
    /// RA's TLS client certificate, for CAs without CMC).
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// PEM: the upstream CA's certificates (issuing CA first). They authenticate the upstream's
    /// TLS server and its CMC responses, are served in this label's /cacerts, and anchor the
    /// TLS client certificates of clients renewing through this RA.
    pub ca_certs: PathBuf,
    /// PEM: the RA's certificate (id-kp-cmcRA) from the upstream CA, then its chain: the TLS
    /// client certificate towards the upstream and the signer of RA-made PKIData.
    pub cert: PathBuf,
    /// PEM private key of `cert` (kept 0600).
    pub key: PathBuf,
    /// Before a /simplereenroll, ask the upstream's OCSP responder (`<url>/ocsp`, as an
    /// Estuary CA serves it) whether the certificate being renewed is still good; revoked
    /// or unknown: refused (403). `init --ra` turns it on.
    #[serde(default)]
    pub check_revocation: bool,
    /// Over `/fullcmc`: name the certificate a /simplereenroll renews in a Registration
    /// Information control (Estuary's RenewalInfo, docs/cmc.md), so that an Estuary CA renews
    /// it (EST-84..EST-86). Turn it off for a CMC CA that refuses regInfo (CMC-9).
    #[serde(default = "yes")]
    pub renewal_info: bool,
}

fn yes() -> bool {
    true
}

/// How an RA label reaches its upstream CA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    #[default]
    Fullcmc,
    Est,
}

/// `[admin]`: the admin listener, its own TLS listener off the EST port, with the EST
/// listener's certificate and key (reloaded with them on SIGHUP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    #[serde(default = "d_true")]
    pub enabled: bool,
    #[serde(default = "d_admin_listen")]
    pub listen: SocketAddr,
    /// The web console on this listener (every path but /metrics, /healthz, /readyz).
    #[serde(default = "d_true")]
    pub console: bool,
    /// Subjects (RFC 4514 patterns, `*` within one attribute value) of administrator client
    /// certificates: issued by one of our CAs, recorded and not revoked, they log in to the
    /// console without a password. Empty: only `estuary admin add` accounts log in.
    #[serde(default)]
    pub admin_subjects: Vec<String>,
}

fn d_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8444))
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: d_admin_listen(),
            console: true,
            admin_subjects: Vec::new(),
        }
    }
}

impl AdminSection {
    /// Where the admin listener binds, if anywhere: `cli` (`--admin-listen`) wins; else
    /// `listen` when enabled. When the EST listener was given port 0 on the command line
    /// (tests, ephemeral setups) the admin listener takes an ephemeral port too, so that such
    /// servers can run side by side.
    pub fn bind_addr(
        &self,
        est_cli: Option<SocketAddr>,
        cli: Option<SocketAddr>,
    ) -> Option<SocketAddr> {
        if cli.is_some() {
            return cli;
        }
        if !self.enabled {
            return None;
        }
        let mut a = self.listen;
        if est_cli.is_some_and(|l| l.port() == 0) {
            a.set_port(0);
        }
        Some(a)
    }
}

/// `[cmc_server_keygen]`: the draft's five OIDs (all "TBD" there). By default they sit under
/// Estuary's private arc `arc` (`arc.1.1` request, `arc.1.2` response, `arc.2.1` shroud with
/// public key, `arc.2.2` shroud with shared secret, `arc.3.1` error type); each can be set
/// on its own (e.g. to interoperate with a peer that picked other values).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmcKeygenSection {
    /// The arc the defaults sit under; absent: `2.25.35258263107720737511850855134089286928`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_oid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_oid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shroud_public_key_oid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shroud_shared_secret_oid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type_oid: Option<String>,
}

impl CmcKeygenSection {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The configured OIDs, checked (each parses, all differ).
    pub fn oids(&self) -> Result<est_cmc::serverkeygen::SkgOids, String> {
        let arc = self
            .arc
            .as_deref()
            .unwrap_or(est_cmc::serverkeygen::SkgOids::ESTUARY_ARC);
        let base = est_cmc::serverkeygen::SkgOids::under_arc(arc)
            .map_err(|e| format!("cmc_server_keygen.arc {arc:?}: {e}"))?;
        let pick = |name: &str, v: &Option<String>, d: est_cmc::Oid| match v {
            Some(t) => t
                .parse::<est_cmc::Oid>()
                .map_err(|e| format!("cmc_server_keygen.{name} {t:?}: {e}")),
            None => Ok(d),
        };
        est_cmc::serverkeygen::SkgOids::new(
            pick(
                "request_oid",
                &self.request_oid,
                base.server_key_gen_request,
            )?,
            pick(
                "response_oid",
                &self.response_oid,
                base.server_key_gen_response,
            )?,
            pick(
                "shroud_public_key_oid",
                &self.shroud_public_key_oid,
                base.shroud_with_public_key,
            )?,
            pick(
                "shroud_shared_secret_oid",
                &self.shroud_shared_secret_oid,
                base.shroud_with_shared_secret,
            )?,
            pick(
                "error_type_oid",
                &self.error_type_oid,
                base.cet_server_key_gen,
            )?,
        )
        .map_err(|e| format!("cmc_server_keygen: {e}"))
    }
}

/// `[keygen]`: the in-memory pool of pre-generated keys for /serverkeygen.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeygenSection {
    /// Keys of each type kept ready (`rsa2048 = 8`); absent types are generated on demand.
    /// Pooled keys live in memory only and are cleared when handed out or at shutdown.
    #[serde(default)]
    pub pool: std::collections::BTreeMap<est_ca::KeyType, usize>,
}

impl Default for KeygenSection {
    fn default() -> Self {
        Self {
            pool: [
                (est_ca::KeyType::Rsa2048, 4),
                (est_ca::KeyType::Rsa3072, 2),
                (est_ca::KeyType::P256, 16),
            ]
            .into_iter()
            .collect(),
        }
    }
}

/// The CA's CMC encryption certificate and its private key (PEM).
pub type CmcEncryption = (Certificate, Zeroizing<Vec<u8>>);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// The CA's CMC encryption certificate (PEM) and key (PEM, kept 0600): clients may
    /// encrypt /fullcmc requests to it (CMC-20). Absent: EnvelopedData requests are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmc_encryption_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmc_encryption_key: Option<PathBuf>,
    #[serde(default = "d_body")]
    pub max_body_bytes: usize,
    #[serde(default = "d_10")]
    pub handshake_timeout_secs: u64,
    #[serde(default = "d_10")]
    pub header_read_timeout_secs: u64,
    #[serde(default = "d_30")]
    pub request_timeout_secs: u64,
    #[serde(default = "d_conns")]
    pub max_connections: usize,
    /// Open connections at most from one IPv4 address or IPv6 /64.
    #[serde(default = "d_conns_per_source")]
    pub max_connections_per_source: usize,
    /// Realm of the Basic and Digest challenges; Digest secrets are computed for it.
    #[serde(default = "d_realm")]
    pub auth_realm: String,
    /// Seconds a Digest nonce is accepted before the client must retry (stale=true).
    #[serde(default = "d_nonce")]
    pub digest_nonce_lifetime_secs: u64,
    /// Failed authentications (per user name and per source address) within
    /// `auth_failure_window_secs` that lock the key out for `auth_lockout_secs` (SEC-3).
    #[serde(default = "d_fail_limit")]
    pub auth_failure_limit: u32,
    #[serde(default = "d_300")]
    pub auth_failure_window_secs: u64,
    #[serde(default = "d_300")]
    pub auth_lockout_secs: u64,
    /// PEM files of third-party roots whose client certificates are accepted as implicit
    /// trust anchors (e.g. an IDevID manufacturer CA); empty (the default) turns them off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub implicit_trust_anchors: Vec<PathBuf>,
    /// Base URL clients reach this server at (`https://ca.example.com:8443`): issued
    /// certificates point at `<public_url>/crl/<ca>.crl` (RFC 5280 §4.2.1.13). Absent:
    /// `https://<listen address>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Renew the server's own TLS certificate from the Estuary CA that issued it, at start and
    /// every 12 hours, once it is within `tls_renew_before_days` of its notAfter (a new key,
    /// the same names; recorded in the store; swapped in without dropping connections). A
    /// certificate from another CA is left alone (replace the files and send SIGHUP).
    #[serde(default = "d_true")]
    pub tls_auto_renew: bool,
    #[serde(default = "d_renew_days")]
    pub tls_renew_before_days: u32,
}

impl ServerSection {
    /// The settings `init` writes: every default, listening on `listen` with this TLS
    /// certificate chain and key.
    pub fn new(listen: SocketAddr, tls_cert: PathBuf, tls_key: PathBuf) -> Self {
        Self {
            listen,
            tls_cert,
            tls_key,
            cmc_encryption_cert: None,
            cmc_encryption_key: None,
            max_body_bytes: d_body(),
            handshake_timeout_secs: d_10(),
            header_read_timeout_secs: d_10(),
            request_timeout_secs: d_30(),
            max_connections: d_conns(),
            max_connections_per_source: d_conns_per_source(),
            auth_realm: d_realm(),
            digest_nonce_lifetime_secs: d_nonce(),
            implicit_trust_anchors: Vec::new(),
            auth_failure_limit: d_fail_limit(),
            auth_failure_window_secs: d_300(),
            auth_lockout_secs: d_300(),
            public_url: None,
            tls_auto_renew: true,
            tls_renew_before_days: d_renew_days(),
        }
    }
}

impl StoreSection {
    /// SQLite in the data dir (`estuary.db`), the defaults of `init`.
    pub fn default_sqlite() -> Self {
        Self {
            url: "sqlite://estuary.db".into(),
            acquire_timeout_secs: d_acquire_timeout(),
            sqlite_writer_cache_mib: d_sqlite_cache(),
        }
    }
}

impl KeysSection {
    /// Keys in files under `keys/`, sealed with `secrets/key-passphrase` (what `init` writes).
    pub fn default_files() -> Self {
        Self {
            backend: "file".into(),
            dir: "keys".into(),
            passphrase_file: "secrets/key-passphrase".into(),
        }
    }
}

impl CaSection {
    /// An issuing CA with the default CRL, OCSP and profile settings.
    pub fn new(name: &str, cert: PathBuf, chain: Vec<PathBuf>, key: String) -> Self {
        Self {
            name: name.into(),
            cert,
            chain,
            key,
            rollover: Vec::new(),
            crl_validity_hours: d_crl_hours(),
            ocsp_validity_minutes: d_ocsp_minutes(),
            ocsp_url: None,
            ocsp_responder_cert: None,
            ocsp_responder_key: None,
            profile: ProfileSection::default(),
        }
    }
}

impl LabelSection {
    /// A label of CA `ca` with every default of the configuration file.
    pub fn new(name: &str, ca: &str) -> Self {
        Self {
            name: name.into(),
            ca: ca.into(),
            upstream: None,
            auth_basic: true,
            auth_digest: true,
            digest_algorithms: None,
            auth_client_cert: true,
            require_pop_linking: false,
            server_keygen: false,
            require_encrypted_keys: false,
            implicit_enroll: None,
            allow: Vec::new(),
            approval: ApprovalMode::Auto,
            approval_retry_after_secs: d_retry(),
            csr_attrs: Vec::new(),
            cmc_authentication: true,
            cmc_allow_sha1_pop: false,
            cmc_ras: Vec::new(),
            cmc_confirm_required: false,
            cmc_server_keygen: false,
        }
    }
}

fn d_renew_days() -> u32 {
    30
}

fn d_fail_limit() -> u32 {
    10
}
fn d_300() -> u64 {
    300
}
fn d_realm() -> String {
    est_server::DEFAULT_REALM.into()
}
fn d_nonce() -> u64 {
    300
}

fn d_body() -> usize {
    256 * 1024
}
fn d_10() -> u64 {
    10
}
fn d_30() -> u64 {
    30
}
fn d_conns() -> usize {
    1024
}
fn d_conns_per_source() -> usize {
    128
}
fn d_true() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `sqlite://estuary.db` (relative to the data dir) or `postgres://user@host/db`.
    pub url: String,
    /// How long a request waits for a database connection before it is answered 503 with
    /// `Retry-After` (a database outage is refused promptly; the pool reconnects by itself).
    #[serde(default = "d_acquire_timeout")]
    pub acquire_timeout_secs: u64,
    /// SQLite: the writer's page cache in MiB (resident once the store outgrows it).
    #[serde(default = "d_sqlite_cache")]
    pub sqlite_writer_cache_mib: u32,
}

fn d_sqlite_cache() -> u32 {
    8
}

fn d_acquire_timeout() -> u64 {
    3
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// Only `file` for now (PKCS#11 comes later).
    pub backend: String,
    pub dir: PathBuf,
    /// File holding the passphrase that encrypts the key files.
    pub passphrase_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSection {
    pub name: String,
    /// The issuing CA certificate (PEM).
    pub cert: PathBuf,
    /// The rest of the chain up to the root (PEM files), for /cacerts.
    #[serde(default)]
    pub chain: Vec<PathBuf>,
    /// Key id in the key backend.
    pub key: String,
    /// After a root key rollover (`estuary ca rollover`): PEM files of the old root
    /// (OldWithOld) and the links OldWithNew and NewWithOld, served in /cacerts beside the
    /// chain (EST-66) and trusted for client certificates; remove them once every client
    /// trusts the new root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollover: Vec<PathBuf>,
    /// Hours a CRL of this CA is valid (nextUpdate - thisUpdate, RFC 5280 §5.1.2.5); a new
    /// one is made after half of it, or at once after a revocation.
    #[serde(default = "d_crl_hours")]
    pub crl_validity_hours: u32,
    /// Minutes an OCSP answer about this CA's certificates is valid (nextUpdate - thisUpdate,
    /// RFC 6960 §4.2.2.1; also the HTTP max-age of a GET answer).
    #[serde(default = "d_ocsp_minutes")]
    pub ocsp_validity_minutes: u32,
    /// The OCSP responder URL put in issued certificates' Authority Information Access
    /// (id-ad-ocsp); default `<public_url>/ocsp`, this server's own responder; `""`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp_url: Option<String>,
    /// A delegated OCSP responder certificate (PEM, issued by this CA with id-kp-OCSPSigning,
    /// `estuary ca ocsp-responder`) that signs OCSP answers instead of the CA key (RFC 6960
    /// §4.2.2.2); with `ocsp_responder_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp_responder_cert: Option<PathBuf>,
    /// Key id of the delegated responder's key in the key backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp_responder_key: Option<String>,
    #[serde(default)]
    pub profile: ProfileSection,
}

fn d_crl_hours() -> u32 {
    7 * 24
}

fn d_ocsp_minutes() -> u32 {
    60
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSection {
    pub validity_days: u32,
    pub key_usage: Vec<KeyUsageBit>,
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
    /// Minimum RSA modulus size; 0 refuses RSA.
    pub rsa_min_bits: u32,
    pub allow_p256: bool,
    pub allow_p384: bool,
    pub allow_ed25519: bool,
    pub copy_san: bool,
    /// Issue wildcard dNSNames (`*.example.com`); off by default.
    #[serde(default)]
    pub allow_wildcard: bool,
    pub allow_key_reuse: bool,
    #[serde(default)]
    pub allow_sha1_csr: bool,
}

impl Default for ProfileSection {
    fn default() -> Self {
        let p = Profile::default();
        Self {
            validity_days: 365,
            key_usage: p.key_usage,
            extended_key_usage: p.extended_key_usage,
            rsa_min_bits: 2048,
            allow_p256: true,
            allow_p384: true,
            allow_ed25519: true,
            copy_san: true,
            allow_wildcard: false,
            allow_key_reuse: true,
            allow_sha1_csr: false,
        }
    }
}

impl ProfileSection {
    fn to_profile(
        &self,
        crl_validity_hours: u32,
        crl_url: Option<String>,
        ocsp_url: Option<String>,
        ocsp_validity_minutes: u32,
    ) -> Profile {
        Profile {
            validity: Duration::from_secs(u64::from(self.validity_days) * 86400),
            backdate: Duration::from_secs(300),
            key_usage: self.key_usage.clone(),
            extended_key_usage: self.extended_key_usage.clone(),
            keys: KeyPolicy {
                rsa_min_bits: (self.rsa_min_bits > 0).then_some(self.rsa_min_bits),
                p256: self.allow_p256,
                p384: self.allow_p384,
                ed25519: self.allow_ed25519,
            },
            copy_san: self.copy_san,
            allow_wildcard: self.allow_wildcard,
            allow_key_reuse: self.allow_key_reuse,
            allow_sha1_csr: self.allow_sha1_csr,
            crl_validity: Duration::from_secs(u64::from(crl_validity_hours) * 3600),
            crl_distribution_point: crl_url,
            ocsp_url,
            ocsp_validity: Duration::from_secs(u64::from(ocsp_validity_minutes) * 60),
        }
    }
}

/// Name patterns of a label's access rule, each usable (see docs/configuration.md).
fn check_name_patterns(label: &str, key: &str, patterns: &[String]) -> Result<(), String> {
    for p in patterns {
        est_ca::NamePolicy::check_pattern(p)
            .map_err(|e| format!("label {label:?}: allow.{key}: {e}"))?;
    }
    Ok(())
}

/// A label's `digest_algorithms`, checked: known names, none twice, not empty.
fn digest_algorithms(
    l: &LabelSection,
) -> Result<Option<Vec<est_server::digest::DigestAlgorithm>>, String> {
    let Some(names) = &l.digest_algorithms else {
        return Ok(None);
    };
    let mut algs = Vec::new();
    for n in names {
        let a = est_server::digest::DigestAlgorithm::parse(n).ok_or_else(|| {
            format!(
                "label {:?}: digest_algorithms: unknown algorithm {n:?} (SHA-256, SHA-512-256, MD5)",
                l.name
            )
        })?;
        if algs.contains(&a) {
            return Err(format!(
                "label {:?}: digest_algorithms lists {n:?} twice",
                l.name
            ));
        }
        algs.push(a);
    }
    if algs.is_empty() {
        return Err(format!(
            "label {:?}: digest_algorithms is empty (turn Digest off with auth_digest = false)",
            l.name
        ));
    }
    Ok(Some(algs))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSection {
    /// The label path segment; "" is the label-less path `/.well-known/est/<op>`.
    pub name: String,
    /// Name of the `[[ca]]` that serves it (empty on an RA label).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca: String,
    /// RA mode: the `[[upstream]]` this label forwards to instead of issuing itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(default = "d_true")]
    pub auth_basic: bool,
    /// HTTP Digest (RFC 7616) with the users of `estuary user add`.
    #[serde(default = "d_true")]
    pub auth_digest: bool,
    /// The Digest algorithms offered, one challenge each in this order, and the only ones
    /// accepted: "SHA-256", "SHA-512-256", "MD5". Absent: ["SHA-256", "MD5"]. Clients that
    /// answer only the first challenge and know only MD5 (libest's estclient) need "MD5"
    /// first (docs/interop.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_algorithms: Option<Vec<String>>,
    #[serde(default = "d_true")]
    pub auth_client_cert: bool,
    #[serde(default)]
    pub require_pop_linking: bool,
    /// Serve /serverkeygen on this label (SKG-1: off unless configured).
    #[serde(default)]
    pub server_keygen: bool,
    /// With server_keygen: refuse requests that do not ask for an encrypted key (SKG-11).
    #[serde(default)]
    pub require_encrypted_keys: bool,
    /// Clients with a certificate from an implicit trust anchor may do initial enrollment
    /// here: `"serial-number"` (keep the certificate's subject serialNumber) or `"subject"`
    /// (the same subject). Absent: they may not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implicit_enroll: Option<String>,
    /// `"manual"`: initial enrollments wait for `estuary request approve` (202 meanwhile).
    #[serde(default, skip_serializing_if = "ApprovalMode::is_auto")]
    pub approval: ApprovalMode,
    /// Retry-After of the 202 answers, seconds.
    #[serde(default = "d_retry", skip_serializing_if = "is_default_retry")]
    pub approval_retry_after_secs: u64,
    /// Access rules (EST-47): `[[label.allow]]` tables; none: no label restriction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<AllowSection>,
    /// Entries of /csrattrs; none → 204.
    #[serde(default)]
    pub csr_attrs: Vec<CsrAttrEntry>,
    /// /fullcmc: accept requests without HTTP credentials when the CMC layer authenticates
    /// them (signed by an existing certificate of this CA, or a verified Identity Proof).
    #[serde(default = "d_true")]
    pub cmc_authentication: bool,
    /// /fullcmc: accept SHA-1 signatures as proof of possession of inner requests.
    #[serde(default)]
    pub cmc_allow_sha1_pop: bool,
    /// /fullcmc: subjects (`*` globs) of this CA's id-kp-cmcRA certificates whose RA controls
    /// (Modify Certification Request, Add Extensions, RA POP Witness, Batch Requests) and
    /// wrapping this label honours (CMC-56); empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmc_ras: Vec<String>,
    /// /fullcmc: answer issued certificates with confirmRequired (CMC-69).
    #[serde(default)]
    pub cmc_confirm_required: bool,
    /// /fullcmc: act on the ServerKeyGenRequest control (CMC server-side key generation,
    /// draft-turner-cmc-serverkeygeneration-02; OIDs from `[cmc_server_keygen]`). Off by
    /// default. On an RA label the RA then generates the keys itself and has its CA certify
    /// them (SKGD-35); without it a ServerKeyGenRequest goes to the CA untouched (SKGD-38).
    #[serde(default)]
    pub cmc_server_keygen: bool,
}

fn d_retry() -> u64 {
    60
}
fn is_default_retry(v: &u64) -> bool {
    *v == d_retry()
}

/// How a label's initial enrollments are decided (EST-49).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    #[default]
    Auto,
    Manual,
}

impl ApprovalMode {
    fn is_auto(&self) -> bool {
        *self == ApprovalMode::Auto
    }
}

/// One access rule of a label; see [`est_ca::AccessRule`] and docs/configuration.md.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowSection {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cert_subjects: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cert_issuers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cert_sans: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

/// One /csrattrs entry: a bare OID, or an attribute with OID values (RFC 8951 §4).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrAttrEntry {
    /// Name (`challengePassword`, `ecdsa-with-SHA256`) or dotted OID.
    pub oid: String,
    /// When present, the entry is an attribute whose values are these OIDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

impl Config {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("estuary.toml")
    }

    pub fn load(data_dir: &Path) -> Result<Self, AnyError> {
        let p = Self::path(data_dir);
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let cfg: Config = toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        cfg.validate()
            .map_err(|e| format!("{}: {e}", p.display()))?;
        cfg.check_files(data_dir)?;
        Ok(cfg)
    }

    /// Checks `text` as [`Config::load`] would check the file (syntax, semantics, the files
    /// it names), before it is written.
    pub fn check_text(text: &str, data_dir: &Path) -> Result<(), AnyError> {
        let cfg: Config = toml::from_str(text)?;
        cfg.validate()?;
        cfg.check_files(data_dir)
    }

    /// Every file the configuration names exists (relative paths under `data_dir`); the error
    /// names the setting and the path, so a mistyped path is found at load, not at first use.
    fn check_files(&self, data_dir: &Path) -> Result<(), AnyError> {
        let mut files: Vec<(String, &Path)> = vec![
            ("server.tls_cert".into(), &self.server.tls_cert),
            ("server.tls_key".into(), &self.server.tls_key),
            ("keys.passphrase_file".into(), &self.keys.passphrase_file),
        ];
        if let Some(p) = &self.server.cmc_encryption_cert {
            files.push(("server.cmc_encryption_cert".into(), p));
        }
        if let Some(p) = &self.server.cmc_encryption_key {
            files.push(("server.cmc_encryption_key".into(), p));
        }
        for p in &self.server.implicit_trust_anchors {
            files.push(("server.implicit_trust_anchors".into(), p));
        }
        for u in &self.upstreams {
            files.push((format!("upstream {:?} ca_certs", u.name), &u.ca_certs));
            files.push((format!("upstream {:?} cert", u.name), &u.cert));
            files.push((format!("upstream {:?} key", u.name), &u.key));
        }
        for ca in &self.cas {
            for p in &ca.rollover {
                files.push((format!("ca {:?} rollover", ca.name), p));
            }
            files.push((format!("ca {:?} cert", ca.name), &ca.cert));
            if let Some(p) = &ca.ocsp_responder_cert {
                files.push((format!("ca {:?} ocsp_responder_cert", ca.name), p));
            }
            for p in &ca.chain {
                files.push((format!("ca {:?} chain", ca.name), p));
            }
        }
        for (setting, path) in files {
            let full = data_dir.join(path);
            if !full.is_file() {
                return Err(format!(
                    "{setting}: {} does not exist or is not a file",
                    full.display()
                )
                .into());
            }
        }
        let keys = data_dir.join(&self.keys.dir);
        if !keys.is_dir() {
            return Err(format!("keys.dir: {} is not a directory", keys.display()).into());
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), AnyError> {
        for l in &self.labels {
            match &l.upstream {
                Some(u) => {
                    if !l.ca.is_empty() {
                        return Err(format!(
                            "label {:?}: an RA label names its upstream, not a ca",
                            l.name
                        )
                        .into());
                    }
                    if !self.upstreams.iter().any(|x| x.name == *u) {
                        return Err(
                            format!("label {:?} names unknown upstream {u:?}", l.name).into()
                        );
                    }
                    if l.approval == ApprovalMode::Manual {
                        return Err(format!(
                            "label {:?}: approval is the upstream CA's business on an RA label",
                            l.name
                        )
                        .into());
                    }
                    // SKGD-35: the RA generates keys itself and asks its CA over /fullcmc.
                    if l.cmc_server_keygen
                        && self
                            .upstreams
                            .iter()
                            .any(|x| x.name == *u && x.protocol != UpstreamProtocol::Fullcmc)
                    {
                        return Err(format!(
                            "label {:?}: cmc_server_keygen on an RA label (the RA generates the keys) needs an upstream with protocol = \"fullcmc\"",
                            l.name
                        )
                        .into());
                    }
                }
                None => {
                    if !self.cas.iter().any(|c| c.name == l.ca) {
                        return Err(
                            format!("label {:?} names unknown ca {:?}", l.name, l.ca).into()
                        );
                    }
                }
            }
        }
        for u in &self.upstreams {
            if !u.url.starts_with("https://") {
                return Err(format!("upstream {:?}: url must be https://", u.name).into());
            }
            if let Some(l) = &u.label {
                est_proto::validate_label(l)
                    .map_err(|e| format!("upstream {:?}: label: {e}", u.name))?;
            }
        }
        for ca in &self.cas {
            if ca.profile.validity_days == 0 {
                return Err(format!("ca {:?}: validity_days must be at least 1", ca.name).into());
            }
            if ca.crl_validity_hours == 0 {
                return Err(
                    format!("ca {:?}: crl_validity_hours must be at least 1", ca.name).into(),
                );
            }
            if ca.ocsp_validity_minutes == 0 {
                return Err(
                    format!("ca {:?}: ocsp_validity_minutes must be at least 1", ca.name).into(),
                );
            }
            if let Some(url) = ca.ocsp_url.as_deref().filter(|u| !u.is_empty()) {
                check_public_url(url).map_err(|_| {
                    format!(
                        "ca {:?}: ocsp_url {url:?}: expected http(s)://host[:port][/path], ASCII, without query or fragment",
                        ca.name
                    )
                })?;
            }
            if ca.ocsp_responder_cert.is_some() != ca.ocsp_responder_key.is_some() {
                return Err(format!(
                    "ca {:?}: ocsp_responder_cert and ocsp_responder_key go together",
                    ca.name
                )
                .into());
            }
        }
        if self.labels.iter().any(|l| l.cmc_server_keygen) {
            self.cmc_server_keygen.oids()?;
        }
        if let Some(url) = &self.server.public_url {
            check_public_url(url)?;
        }
        if self.server.tls_renew_before_days == 0 {
            return Err("server: tls_renew_before_days must be at least 1".into());
        }
        if self.server.max_connections == 0 || self.server.max_connections_per_source == 0 {
            return Err(
                "server: max_connections and max_connections_per_source must be at least 1".into(),
            );
        }
        if self.keys.backend != "file" {
            return Err(format!(
                "unsupported key backend {:?} (only \"file\")",
                self.keys.backend
            )
            .into());
        }
        Ok(())
    }

    /// The HTTP authentication settings of the server.
    pub fn auth_settings(&self) -> est_server::AuthSettings {
        est_server::AuthSettings {
            realm: self.server.auth_realm.clone(),
            nonce_lifetime: Duration::from_secs(self.server.digest_nonce_lifetime_secs),
            failures: est_server::FailurePolicy {
                max_failures: self.server.auth_failure_limit.max(1),
                window: Duration::from_secs(self.server.auth_failure_window_secs),
                lockout: Duration::from_secs(self.server.auth_lockout_secs),
                ..est_server::FailurePolicy::default()
            },
            ..est_server::AuthSettings::default()
        }
    }

    pub fn store_url(&self, data_dir: &Path) -> String {
        resolve_store_url(&self.store.url, data_dir)
    }

    /// Seals secrets at rest (client keys for /serverkeygen, users' Digest HA1 values): derived
    /// from the key-file passphrase, the server's secret.
    pub fn secret_box(&self, data_dir: &Path) -> Result<est_ca::SecretBox, AnyError> {
        let pass = read_secret(&data_dir.join(&self.keys.passphrase_file))?;
        Ok(est_ca::SecretBox::from_server_secret(&pass)?)
    }

    pub fn key_backend(&self, data_dir: &Path) -> Result<FileKeyBackend, AnyError> {
        let pass = read_secret(&data_dir.join(&self.keys.passphrase_file))?;
        Ok(FileKeyBackend::new(data_dir.join(&self.keys.dir), pass)?)
    }

    /// The base of the URLs this server is reached at: `public_url`, or `https://<bound>` (the
    /// address the listener actually bound, so port 0 gives the real port).
    pub fn public_url(&self, bound: SocketAddr) -> String {
        match &self.server.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                if bound.ip().is_unspecified() {
                    tracing::warn!(%bound, "listening on an unspecified address: set [server] public_url so certificates carry a reachable CRL URL");
                }
                format!("https://{bound}")
            }
        }
    }

    /// The CA domains with their keys loaded. With `public_url`, end-entity certificates carry
    /// the CRL distribution point `<public_url>/crl/<ca>.crl`.
    pub fn domains(
        &self,
        data_dir: &Path,
        keys: &dyn KeyBackend,
        public_url: Option<&str>,
    ) -> Result<Vec<CaDomain>, AnyError> {
        let mut out = Vec::new();
        for ca in &self.cas {
            let cert_der = pem_certs(&data_dir.join(&ca.cert))?
                .into_iter()
                .next()
                .ok_or("empty CA certificate file")?;
            let mut chain = Vec::new();
            for p in &ca.chain {
                for der in pem_certs(&data_dir.join(p))? {
                    chain.push(<Certificate as der::Decode>::from_der(&der)?);
                }
            }
            let key = keys.load(&KeyId(ca.key.clone()))?;
            let issuer =
                Issuer::new(cert_der, chain, key).map_err(|e| format!("ca {:?}: {e}", ca.name))?;
            let crl_url = match (public_url, est_proto::crl_path(&ca.name)) {
                (Some(base), Some(path)) => Some(format!("{base}{path}")),
                (Some(_), None) => {
                    tracing::warn!(ca = %ca.name, "this CA name cannot appear in a URL (only letters, digits and . _ ~ -, at most 64): its certificates get no CRL distribution point and its CRL is not served over HTTP (use `estuary crl`)");
                    None
                }
                (None, _) => None,
            };
            // The responder answers for every CA at one path: the CertID names the issuer.
            let ocsp_url = match (&ca.ocsp_url, public_url) {
                (Some(u), _) if u.is_empty() => None,
                (Some(u), _) => Some(u.clone()),
                (None, Some(base)) => Some(format!("{base}{}", est_proto::OCSP_PATH)),
                (None, None) => None,
            };
            out.push(CaDomain {
                name: ca.name.clone(),
                issuer,
                profile: ca.profile.to_profile(
                    ca.crl_validity_hours,
                    crl_url,
                    ocsp_url,
                    ca.ocsp_validity_minutes,
                ),
            });
        }
        Ok(out)
    }

    /// The delegated OCSP responders (RFC 6960 §4.2.2.2) of the CAs that have one, checked
    /// against their CA: (CA name, responder).
    pub fn ocsp_responders(
        &self,
        data_dir: &Path,
        keys: &dyn KeyBackend,
        domains: &[CaDomain],
    ) -> Result<Vec<(String, est_ca::OcspResponder)>, AnyError> {
        let mut out = Vec::new();
        for ca in &self.cas {
            let (Some(cert), Some(key)) = (&ca.ocsp_responder_cert, &ca.ocsp_responder_key) else {
                continue;
            };
            let domain = domains
                .iter()
                .find(|d| d.name == ca.name)
                .ok_or_else(|| format!("ca {:?}: not loaded", ca.name))?;
            let der = pem_certs(&data_dir.join(cert))?
                .into_iter()
                .next()
                .ok_or_else(|| format!("ca {:?}: ocsp_responder_cert is empty", ca.name))?;
            let key = keys
                .load(&KeyId(key.clone()))
                .map_err(|e| format!("ca {:?}: ocsp_responder_key: {e}", ca.name))?;
            let r = est_ca::OcspResponder::new(der, key, &domain.issuer)
                .map_err(|e| format!("ca {:?}: {e}", ca.name))?;
            out.push((ca.name.clone(), r));
        }
        Ok(out)
    }

    /// The trust anchor (the last certificate of the chain) of a CA.
    /// The CMC encryption certificate and its PEM key, when configured.
    pub fn cmc_encryption(&self, data_dir: &Path) -> Result<Option<CmcEncryption>, AnyError> {
        match (
            &self.server.cmc_encryption_cert,
            &self.server.cmc_encryption_key,
        ) {
            (Some(c), Some(k)) => {
                let pem = std::fs::read(data_dir.join(c))
                    .map_err(|e| format!("{}: {e}", data_dir.join(c).display()))?;
                let der = openssl::x509::X509::from_pem(&pem)?.to_der()?;
                let cert = <Certificate as der::Decode>::from_der(&der)?;
                Ok(Some((cert, read_secret(&data_dir.join(k))?)))
            }
            (None, None) => Ok(None),
            _ => Err("cmc_encryption_cert and cmc_encryption_key go together".into()),
        }
    }

    pub fn trust_anchor_pem(&self, data_dir: &Path, ca: &str) -> Result<String, AnyError> {
        let ca = self.cas.iter().find(|c| c.name == ca).ok_or("unknown ca")?;
        let path = ca.chain.last().unwrap_or(&ca.cert);
        Ok(std::fs::read_to_string(data_dir.join(path))?)
    }

    pub fn server_config(
        &self,
        data_dir: &Path,
        domains: &[CaDomain],
    ) -> Result<ServerConfig, AnyError> {
        let s = &self.server;
        let (mut anchors, mut intermediates) = (Vec::new(), Vec::new());
        for d in domains {
            let mut chain = d.issuer.full_chain();
            let root = chain.pop().ok_or("empty chain")?;
            if !anchors.contains(&root) {
                anchors.push(root);
            }
            for c in chain {
                if !intermediates.contains(&c) {
                    intermediates.push(c);
                }
            }
        }
        // After a root rollover the old root and the links are trusted too (EST-66).
        let mut rollover: std::collections::HashMap<&str, Vec<Certificate>> =
            std::collections::HashMap::new();
        for ca in &self.cas {
            let mut certs = Vec::new();
            for p in &ca.rollover {
                for der in pem_certs(&data_dir.join(p))? {
                    let c = <Certificate as der::Decode>::from_der(&der)?;
                    let tbs = c.tbs_certificate();
                    let list = if tbs.subject() == tbs.issuer() {
                        &mut anchors
                    } else {
                        &mut intermediates
                    };
                    if !list.contains(&c) {
                        list.push(c.clone());
                    }
                    certs.push(c);
                }
            }
            rollover.insert(&ca.name, certs);
        }
        // RA mode: one client per upstream, shared by its labels; the upstream CA's
        // certificates anchor the TLS client certificates of clients renewing through us.
        let mut upstreams: std::collections::HashMap<&str, Arc<dyn est_server::Upstream>> =
            std::collections::HashMap::new();
        for u in &self.upstreams {
            if !self
                .labels
                .iter()
                .any(|l| l.upstream.as_deref() == Some(&u.name))
            {
                continue;
            }
            let client = crate::ra::UpstreamClient::load(u, data_dir)?;
            let mut chain = client.configured_chain().to_vec();
            if let Some(root) = chain.pop()
                && !anchors.contains(&root)
            {
                anchors.push(root);
            }
            for c in chain {
                if !intermediates.contains(&c) {
                    intermediates.push(c);
                }
            }
            upstreams.insert(&u.name, Arc::new(client));
        }
        let mut labels = Vec::new();
        for l in &self.labels {
            labels.push(LabelConfig {
                name: l.name.clone(),
                domain: l.ca.clone(),
                extra_cacerts: rollover.get(l.ca.as_str()).cloned().unwrap_or_default(),
                csr_attrs: csr_attrs_der(&l.csr_attrs)?,
                auth: AuthMethods {
                    basic: l.auth_basic,
                    digest: l.auth_digest,
                    client_cert: l.auth_client_cert,
                    digest_algorithms: digest_algorithms(l)?,
                },
                require_pop_linking: l.require_pop_linking,
                server_keygen: l.server_keygen.then_some(est_server::ServerKeyGen {
                    require_encryption: l.require_encrypted_keys,
                }),
                implicit_enroll: l
                    .implicit_enroll
                    .as_deref()
                    .map(|m| {
                        est_ca::ImplicitNameMapping::parse(m).ok_or_else(|| {
                            format!(
                                "label {:?}: implicit_enroll must be \"serial-number\" or \"subject\", not {m:?}",
                                l.name
                            )
                        })
                    })
                    .transpose()?,
                approval: match l.approval {
                    ApprovalMode::Auto => est_server::Approval::Automatic,
                    ApprovalMode::Manual => est_server::Approval::Manual {
                        retry_after: Duration::from_secs(l.approval_retry_after_secs.max(1)),
                    },
                },
                policy: est_ca::LabelPolicy {
                    rules: l
                        .allow
                        .iter()
                        .map(|a| {
                            check_name_patterns(&l.name, "names", &a.names)?;
                            check_name_patterns(&l.name, "cert_sans", &a.cert_sans)?;
                            Ok::<_, String>(a)
                        })
                        .collect::<Result<Vec<_>, _>>()?
                        .into_iter()
                        .map(|a| est_ca::AccessRule {
                            users: a.users.clone(),
                            cert_subjects: a.cert_subjects.clone(),
                            cert_issuers: a.cert_issuers.clone(),
                            cert_sans: a.cert_sans.clone(),
                            names: a.names.clone(),
                        })
                        .collect(),
                },
                cmc: est_server::CmcPolicy {
                    accept_cmc_authentication: l.cmc_authentication,
                    allow_sha1_pop: l.cmc_allow_sha1_pop,
                    authorized_ras: l.cmc_ras.clone(),
                    confirm_required: l.cmc_confirm_required,
                    server_keygen: if l.cmc_server_keygen {
                        Some(self.cmc_server_keygen.oids()?)
                    } else {
                        None
                    },
                },
                upstream: match &l.upstream {
                    Some(u) => Some(
                        upstreams
                            .get(u.as_str())
                            .cloned()
                            .ok_or_else(|| format!("label {:?}: unknown upstream {u:?}", l.name))?,
                    ),
                    None => None,
                },
            });
        }
        Ok(ServerConfig {
            listen: s.listen,
            tls: TlsConfig {
                cert_chain_pem: std::fs::read(data_dir.join(&s.tls_cert))?,
                key_pem: read_secret(&data_dir.join(&s.tls_key))?,
                client_trust_anchors: anchors,
                client_intermediates: intermediates,
                implicit_trust_anchors: {
                    let mut v = Vec::new();
                    for p in &s.implicit_trust_anchors {
                        for der in pem_certs(&data_dir.join(p))? {
                            v.push(<Certificate as der::Decode>::from_der(&der)?);
                        }
                    }
                    v
                },
            },
            limits: Limits {
                max_body_bytes: s.max_body_bytes,
                handshake_timeout: Duration::from_secs(s.handshake_timeout_secs),
                header_read_timeout: Duration::from_secs(s.header_read_timeout_secs),
                request_timeout: Duration::from_secs(s.request_timeout_secs),
                max_connections: s.max_connections,
                max_connections_per_source: s.max_connections_per_source,
                ..Limits::default()
            },
            labels,
        })
    }
}

pub fn resolve_store_url(url: &str, data_dir: &Path) -> String {
    match url.strip_prefix("sqlite://") {
        Some(rest) if !rest.starts_with('/') => {
            format!("sqlite://{}", data_dir.join(rest).display())
        }
        _ => url.to_string(),
    }
}

/// `[server] public_url`: an http(s) URL of ASCII characters (it goes into an IA5String) with
/// no query or fragment, since CRL paths are appended to it.
fn check_public_url(url: &str) -> Result<(), AnyError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        !r.is_empty()
            && !r.starts_with('/')
            && r.bytes().all(|b| b.is_ascii_graphic())
            && !r.contains(['?', '#'])
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "[server] public_url {url:?}: expected http(s)://host[:port][/path], ASCII, without query or fragment"
        )
        .into())
    }
}

/// Builds the authority with its store; `public_url` as in [`Config::domains`].
pub async fn authority(
    cfg: &Config,
    data_dir: &Path,
    public_url: Option<&str>,
    observer: Arc<dyn est_ca::Observer>,
) -> Result<(Arc<Authority>, Vec<CaDomain>), AnyError> {
    let keys = cfg.key_backend(data_dir)?;
    let domains = cfg.domains(data_dir, &keys, public_url)?;
    let store = Arc::new(
        est_store::SqlStore::connect_with(
            &cfg.store_url(data_dir),
            est_store::SqlStoreOptions {
                acquire_timeout: Duration::from_secs(cfg.store.acquire_timeout_secs.max(1)),
                sqlite_writer_cache_kib: cfg.store.sqlite_writer_cache_mib.saturating_mul(1024),
                ..Default::default()
            },
        )
        .await?,
    );
    // The pool spends CPU filling itself: only when some label serves /serverkeygen.
    let pool: Vec<_> = if cfg
        .labels
        .iter()
        .any(|l| l.server_keygen || l.cmc_server_keygen)
    {
        cfg.keygen.pool.iter().map(|(k, n)| (*k, *n)).collect()
    } else {
        Vec::new()
    };
    let mut auth = Authority::new(domains.clone(), store, Arc::new(SystemClock))?
        .with_secret_box(cfg.secret_box(data_dir)?)
        .with_key_pool(est_ca::KeyPool::start(&pool))
        .with_observer(observer);
    for (ca, responder) in cfg.ocsp_responders(data_dir, &keys, &domains)? {
        auth = auth.with_ocsp_responder(&ca, responder)?;
    }
    Ok((Arc::new(auth), domains))
}

pub fn read_secret(path: &Path) -> Result<Zeroizing<Vec<u8>>, AnyError> {
    let mut v =
        Zeroizing::new(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
    while v.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        v.pop();
    }
    Ok(v)
}

pub fn pem_certs(path: &Path) -> Result<Vec<Vec<u8>>, AnyError> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = openssl::x509::X509::stack_from_pem(&pem)?;
    Ok(certs.iter().map(|c| c.to_der()).collect::<Result<_, _>>()?)
}

fn csr_attrs_der(entries: &[CsrAttrEntry]) -> Result<Option<Vec<u8>>, AnyError> {
    use est_asn1::{AttrOrOid, CsrAttrs};
    if entries.is_empty() {
        return Ok(None);
    }
    let mut v = Vec::new();
    for e in entries {
        let oid = est_asn1::oid_from_str(&e.oid)
            .map_err(|_| format!("unknown OID {:?} in csr_attrs", e.oid))?;
        match &e.values {
            None => v.push(AttrOrOid::Oid(oid)),
            Some(vals) => {
                let mut set = Vec::new();
                for s in vals {
                    let o = est_asn1::oid_from_str(s)
                        .map_err(|_| format!("unknown OID {s:?} in csr_attrs"))?;
                    set.push(der::Any::encode_from(&o)?);
                }
                let values = der::asn1::SetOfVec::try_from(set)?;
                v.push(AttrOrOid::Attribute(x509_cert::attr::Attribute {
                    oid,
                    values,
                }));
            }
        }
    }
    Ok(Some(der::Encode::to_der(&CsrAttrs(v))?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn public_urls_are_checked() {
        for ok in [
            "https://ca.example.com",
            "https://127.0.0.1:8443",
            "http://[::1]:8080/pki",
            "https://ca.example.com/",
        ] {
            assert!(check_public_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ca.example.com",
            "ftp://ca.example.com",
            "https://",
            "https:///x",
            "https://ca.example.com/a b",
            "https://ca.example.com/?x=1",
            "https://caf\u{e9}.example",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn admin_listener_defaults_and_port_zero() {
        let d = AdminSection::default();
        assert_eq!(d.listen, "127.0.0.1:8444".parse().unwrap());
        assert!(d.enabled);
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let est: SocketAddr = "127.0.0.1:9443".parse().unwrap();
        assert_eq!(d.bind_addr(None, None), Some(d.listen));
        assert_eq!(d.bind_addr(Some(est), None), Some(d.listen));
        assert_eq!(d.bind_addr(Some(any), None), Some(any));
        let off = AdminSection {
            enabled: false,
            ..d.clone()
        };
        assert_eq!(off.bind_addr(Some(any), None), None);
        assert_eq!(off.bind_addr(None, Some(est)), Some(est));
        let parsed: AdminSection = toml::from_str("listen = \"[::1]:9000\"").unwrap();
        assert_eq!(parsed.listen, "[::1]:9000".parse().unwrap());
        assert!(parsed.enabled);
        assert!(toml::from_str::<AdminSection>("bogus = 1").is_err());
    }

    #[test]
    fn ca_crl_validity_defaults_to_a_week() {
        let ca: CaSection =
            toml::from_str("name = \"default\"\ncert = \"ca.pem\"\nkey = \"k\"").unwrap();
        assert_eq!(ca.crl_validity_hours, 168);
        let p = ca
            .profile
            .to_profile(ca.crl_validity_hours, None, None, ca.ocsp_validity_minutes);
        assert_eq!(p.crl_validity, Duration::from_secs(7 * 86400));
        assert_eq!(p.crl_distribution_point, None);
        // OCSP answers are valid for an hour; no ocsp_url: the server's own responder.
        assert_eq!(ca.ocsp_validity_minutes, 60);
        assert_eq!(p.ocsp_validity, Duration::from_secs(3600));
        assert_eq!(ca.ocsp_url, None);
        assert_eq!(ca.ocsp_responder_cert, None);
    }

    #[test]
    fn label_auth_keys_parse() {
        let l: LabelSection = toml::from_str(
            r#"
            name = "devices"
            ca = "devices"
            auth_digest = false
            implicit_enroll = "serial-number"
            [[allow]]
            users = ["provisioning"]
            names = ["*.devices.example"]
            [[allow]]
            cert_subjects = ["CN=*.devices.example*"]
            "#,
        )
        .unwrap();
        assert!(l.auth_basic && !l.auth_digest && l.auth_client_cert);
        assert_eq!(l.implicit_enroll.as_deref(), Some("serial-number"));
        assert_eq!(l.allow.len(), 2);
        assert_eq!(l.allow[0].users, ["provisioning"]);
        assert!(
            toml::from_str::<LabelSection>(
                "name = \"x\"\nca = \"y\"\n[[allow]]\nuser = [\"typo\"]"
            )
            .is_err()
        );
    }
}
