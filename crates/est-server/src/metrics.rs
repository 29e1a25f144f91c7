//! Prometheus metrics of the server (issue 11, observability), exposed on the admin listener
//! ([`crate::admin`]) in the Prometheus text format 0.0.4.
//!
//! Every label is bounded: the EST operation comes from the fixed set of RFC 7030 operations
//! (`crl` for `/crl/`, `ocsp` for `/ocsp`, `other` for any other path), the CA label only from the configured
//! labels (`(unknown)` otherwise), the status is the numeric HTTP code, the CA from the
//! configured domains, the handshake failure reason from a fixed list. Nothing a client sends
//! becomes a label value as is.
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Request latency buckets: 1 ms to 10 s (enrollment with an RSA key from an empty pool, or a
/// store under load, takes seconds).
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Store commit buckets: 0.5 ms to 10 s (an fsync on SQLite, a round trip to PostgreSQL, the
/// acquire timeout in an outage).
const COMMIT_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn commit_histogram() -> Histogram {
    Histogram::new(COMMIT_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    label: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CaLabel {
    ca: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommitLabels {
    write: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandshakeLabels {
    listener: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyTypeLabel {
    key_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    listener: &'static str,
    phase: &'static str,
}

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenerKind {
    Est,
    Admin,
}

impl ListenerKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Est => "est",
            Self::Admin => "admin",
        }
    }
}

/// The counters and histograms the server updates as it works, and the gauges the admin
/// listener sets at each scrape. One per server process, shared through `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<OperationLabel, Histogram, fn() -> Histogram>,
    issued: Family<CaLabel, Counter>,
    revoked: Family<CaLabel, Counter>,
    commits: Family<CommitLabels, Histogram, fn() -> Histogram>,
    handshake_failures: Family<HandshakeLabels, Counter>,
    pub(crate) pending: Gauge,
    certificates: Family<StatusLabel, Gauge>,
    pub(crate) store_snapshot_age: Gauge,
    keypool_ready: Family<KeyTypeLabel, Gauge>,
    keypool_target: Family<KeyTypeLabel, Gauge>,
    connections: Family<ConnectionLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "estuary_http_requests",
            "EST requests answered, by operation, CA label and HTTP status",
            requests.clone(),
        );
        let durations =
            Family::<OperationLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "estuary_http_request_duration_seconds",
            "Time from the request head to the response head, by EST operation",
            durations.clone(),
        );
        let issued = Family::<CaLabel, Counter>::default();
        registry.register(
            "estuary_certificates_issued",
            "Certificates issued and recorded by this process, by CA",
            issued.clone(),
        );
        let revoked = Family::<CaLabel, Counter>::default();
        registry.register(
            "estuary_certificates_revoked",
            "Certificates revoked by this process (CMC revocation requests), by CA",
            revoked.clone(),
        );
        let commits = Family::<CommitLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            commit_histogram,
        );
        registry.register(
            "estuary_store_commit_duration_seconds",
            "Time the store took to commit an issued certificate or a revocation, by write and result",
            commits.clone(),
        );
        let handshake_failures = Family::<HandshakeLabels, Counter>::default();
        registry.register(
            "estuary_tls_handshake_failures",
            "TLS handshakes that did not complete, by listener and reason",
            handshake_failures.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "estuary_pending_requests",
            "Requests held for manual approval (from the store, refreshed at most every 15 s)",
            pending.clone(),
        );
        let certificates = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "estuary_certificates",
            "Certificates in the store by status: revoked, or valid (not revoked; expired ones included); refreshed at most every 15 s",
            certificates.clone(),
        );
        let store_snapshot_age = Gauge::default();
        registry.register(
            "estuary_store_snapshot_age_seconds",
            "Age of the store counts in this scrape (they are cached for 15 s; older when the store does not answer)",
            store_snapshot_age.clone(),
        );
        let keypool_ready = Family::<KeyTypeLabel, Gauge>::default();
        registry.register(
            "estuary_keypool_ready",
            "Pre-generated /serverkeygen keys ready, by key type",
            keypool_ready.clone(),
        );
        let keypool_target = Family::<KeyTypeLabel, Gauge>::default();
        registry.register(
            "estuary_keypool_target",
            "Pre-generated /serverkeygen keys the pool aims to hold, by key type",
            keypool_target.clone(),
        );
        let connections = Family::<ConnectionLabels, Gauge>::default();
        registry.register(
            "estuary_connections_open",
            "Open connections by listener and phase (handshaking, idle, busy)",
            connections.clone(),
        );
        Self {
            registry,
            requests,
            durations,
            issued,
            revoked,
            commits,
            handshake_failures,
            pending,
            certificates,
            store_snapshot_age,
            keypool_ready,
            keypool_target,
            connections,
        }
    }

    /// One EST request answered with `status` after `elapsed`.
    pub(crate) fn request(&self, class: &RequestClass, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                operation: class.operation,
                label: class.label.clone(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&OperationLabel {
                operation: class.operation,
            })
            .observe(elapsed.as_secs_f64());
    }

    pub(crate) fn handshake_failed(&self, listener: ListenerKind, reason: HandshakeFailure) {
        self.handshake_failures
            .get_or_create(&HandshakeLabels {
                listener: listener.as_str(),
                reason: reason.as_str(),
            })
            .inc();
    }

    pub(crate) fn key_pool(&self, key_type: est_ca::KeyType, ready: usize, target: usize) {
        let l = KeyTypeLabel {
            key_type: key_type.as_str(),
        };
        self.keypool_ready.get_or_create(&l).set(gauge_value(ready));
        self.keypool_target
            .get_or_create(&l)
            .set(gauge_value(target));
    }

    pub(crate) fn connections(&self, listener: ListenerKind, stats: &crate::ConnStats) {
        for (phase, n) in [
            ("handshaking", stats.handshaking),
            ("idle", stats.idle),
            ("busy", stats.busy),
        ] {
            self.connections
                .get_or_create(&ConnectionLabels {
                    listener: listener.as_str(),
                    phase,
                })
                .set(gauge_value(n));
        }
    }

    pub(crate) fn set_certificates(&self, status: &'static str, n: u64) {
        self.certificates
            .get_or_create(&StatusLabel { status })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The exposition, Prometheus text format 0.0.4.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would leave a partial text,
        // which a scraper rejects as a whole.
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::warn!(error = %e, "encoding metrics");
        }
        out
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl est_ca::Observer for Metrics {
    fn certificate_issued(&self, ca: &str) {
        self.issued.get_or_create(&CaLabel { ca: ca.into() }).inc();
    }

    fn certificate_revoked(&self, ca: &str) {
        self.revoked.get_or_create(&CaLabel { ca: ca.into() }).inc();
    }

    fn store_commit(&self, what: est_ca::StoreCommit, elapsed: Duration, ok: bool) {
        self.commits
            .get_or_create(&CommitLabels {
                write: what.as_str(),
                result: if ok { "ok" } else { "error" },
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// The bounded labels of one EST request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestClass {
    pub operation: &'static str,
    pub label: String,
}

/// The label value of a path that names no configured CA label.
pub(crate) const UNKNOWN_LABEL: &str = "(unknown)";

/// The operation and CA label of a request path; `is_label` says which labels are configured
/// (the label-less path is `""`).
pub(crate) fn classify(path: &str, is_label: impl Fn(&str) -> bool) -> RequestClass {
    if path.starts_with(est_proto::CRL_PATH_PREFIX) {
        return RequestClass {
            operation: "crl",
            label: String::new(),
        };
    }
    if est_proto::is_ocsp_path(path) {
        return RequestClass {
            operation: "ocsp",
            label: String::new(),
        };
    }
    match est_proto::parse_path(path) {
        Ok(p) => {
            let name = p.label.as_deref().unwrap_or("");
            RequestClass {
                operation: p.operation.as_str(),
                label: if is_label(name) {
                    name.to_owned()
                } else {
                    UNKNOWN_LABEL.to_owned()
                },
            }
        }
        Err(_) => RequestClass {
            operation: "other",
            label: UNKNOWN_LABEL.to_owned(),
        },
    }
}

/// Why a TLS handshake did not complete, from a fixed list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeFailure {
    /// Not finished within the handshake timeout in force.
    Timeout,
    /// The client closed or reset the connection before the handshake finished.
    Closed,
    /// The client sent something that is not TLS (plain HTTP, garbage).
    NotTls,
    /// The client offered only protocol versions we refuse (TLS < 1.2, EST-21).
    ProtocolVersion,
    /// No cipher suite or signature algorithm in common.
    NoSharedCipher,
    /// The client aborted with a TLS alert, e.g. it does not trust our certificate.
    Alert,
    /// Any other TLS error.
    Other,
}

impl HandshakeFailure {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Closed => "closed",
            Self::NotTls => "not_tls",
            Self::ProtocolVersion => "protocol_version",
            Self::NoSharedCipher => "no_shared_cipher",
            Self::Alert => "alert",
            Self::Other => "other",
        }
    }

    /// Classifies an OpenSSL handshake error by its error code and the reason codes on its
    /// error stack (OpenSSL's `sslerr.h`).
    pub(crate) fn of(e: &openssl::ssl::Error) -> Self {
        use openssl::ssl::ErrorCode;
        let code = e.code();
        if code == ErrorCode::ZERO_RETURN {
            return Self::Closed;
        }
        let reasons: Vec<i32> = e
            .ssl_error()
            .map(|s| {
                s.errors()
                    .iter()
                    // ERR_LIB_SSL: reason codes are per library.
                    .filter(|x| x.library_code() == 20)
                    .map(|x| x.reason_code())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(&r) = reasons.first() {
            return Self::from_reason(r);
        }
        if code == ErrorCode::SYSCALL {
            // An EOF (no I/O error) or a reset from the peer.
            return Self::Closed;
        }
        Self::Other
    }

    fn from_reason(r: i32) -> Self {
        // SSL_AD_REASON_OFFSET: reason codes from 1000 on are alerts the peer sent.
        const ALERT_OFFSET: i32 = 1000;
        match r {
            r if r >= ALERT_OFFSET => Self::Alert,
            // SSL_R_UNEXPECTED_EOF_WHILE_READING
            294 => Self::Closed,
            // SSL_R_HTTPS_PROXY_REQUEST, SSL_R_HTTP_REQUEST, SSL_R_PACKET_LENGTH_TOO_LONG,
            // SSL_R_UNKNOWN_PROTOCOL, SSL_R_WRONG_VERSION_NUMBER
            155 | 156 | 198 | 252 | 267 => Self::NotTls,
            // SSL_R_VERSION_TOO_HIGH, SSL_R_NO_PROTOCOLS_AVAILABLE, SSL_R_UNSUPPORTED_PROTOCOL,
            // SSL_R_VERSION_TOO_LOW
            166 | 191 | 258 | 396 => Self::ProtocolVersion,
            // SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM, SSL_R_NO_SHARED_CIPHER
            118 | 193 => Self::NoSharedCipher,
            _ => Self::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use est_ca::Observer;

    /// One sample line of the text format: `name{l="v",...} value` (RFC-free grammar of the
    /// Prometheus exposition format 0.0.4, without timestamps).
    fn parse_sample(line: &str) -> (String, Vec<(String, String)>, f64) {
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().expect("numeric value"),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let labels = body
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').expect("label=value");
                        let v = v
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .expect("quoted value");
                        (k.to_owned(), v.to_owned())
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name {name:?}"
        );
        (name.to_owned(), labels, value)
    }

    #[test]
    fn exposition_parses_line_by_line() {
        let m = Metrics::new();
        let class = classify("/.well-known/est/devices/simpleenroll", |l| l == "devices");
        m.request(&class, 200, Duration::from_millis(3));
        m.request(
            &classify("/.well-known/est/nope/cacerts", |_| false),
            404,
            Duration::from_micros(10),
        );
        m.certificate_issued("default");
        m.certificate_revoked("default");
        m.store_commit(
            est_ca::StoreCommit::Certificate,
            Duration::from_millis(2),
            true,
        );
        m.handshake_failed(ListenerKind::Est, HandshakeFailure::NotTls);
        m.key_pool(est_ca::KeyType::P256, 3, 16);
        m.connections(ListenerKind::Est, &crate::ConnStats::default());
        m.set_certificates("valid", 10);
        m.pending.set(2);
        let text = m.encode();
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
                continue;
            }
            assert!(!line.starts_with('#'), "unexpected comment {line:?}");
            samples.push(parse_sample(line));
        }
        let find = |name: &str, labels: &[(&str, &str)]| {
            samples
                .iter()
                .find(|(n, l, _)| {
                    n == name
                        && labels
                            .iter()
                            .all(|(k, v)| l.iter().any(|(a, b)| a == k && b == v))
                })
                .map(|s| s.2)
        };
        assert_eq!(
            find(
                "estuary_http_requests_total",
                &[
                    ("operation", "simpleenroll"),
                    ("label", "devices"),
                    ("status", "200")
                ]
            ),
            Some(1.0)
        );
        assert_eq!(
            find(
                "estuary_http_requests_total",
                &[("label", UNKNOWN_LABEL), ("status", "404")]
            ),
            Some(1.0)
        );
        assert_eq!(
            find(
                "estuary_http_request_duration_seconds_count",
                &[("operation", "simpleenroll")]
            ),
            Some(1.0)
        );
        assert_eq!(
            find(
                "estuary_http_request_duration_seconds_bucket",
                &[("operation", "simpleenroll"), ("le", "0.005")]
            ),
            Some(1.0)
        );
        assert_eq!(
            find(
                "estuary_http_request_duration_seconds_bucket",
                &[("operation", "simpleenroll"), ("le", "0.0025")]
            ),
            Some(0.0)
        );
        assert_eq!(
            find("estuary_certificates_issued_total", &[("ca", "default")]),
            Some(1.0)
        );
        assert_eq!(
            find("estuary_certificates_revoked_total", &[("ca", "default")]),
            Some(1.0)
        );
        assert_eq!(
            find(
                "estuary_store_commit_duration_seconds_count",
                &[("write", "certificate"), ("result", "ok")]
            ),
            Some(1.0)
        );
        assert_eq!(
            find(
                "estuary_tls_handshake_failures_total",
                &[("listener", "est"), ("reason", "not_tls")]
            ),
            Some(1.0)
        );
        assert_eq!(
            find("estuary_keypool_ready", &[("key_type", "p256")]),
            Some(3.0)
        );
        assert_eq!(
            find("estuary_keypool_target", &[("key_type", "p256")]),
            Some(16.0)
        );
        assert_eq!(find("estuary_pending_requests", &[]), Some(2.0));
        assert_eq!(
            find("estuary_certificates", &[("status", "valid")]),
            Some(10.0)
        );
        assert_eq!(
            find(
                "estuary_connections_open",
                &[("listener", "est"), ("phase", "idle")]
            ),
            Some(0.0)
        );
    }

    #[test]
    fn labels_are_bounded() {
        let is = |l: &str| l.is_empty() || l == "devices";
        assert_eq!(
            classify("/.well-known/est/cacerts", is),
            RequestClass {
                operation: "cacerts",
                label: String::new()
            }
        );
        assert_eq!(
            classify("/.well-known/est/attacker-chosen-1234/cacerts", is).label,
            UNKNOWN_LABEL
        );
        assert_eq!(classify("/anything/else?x=1", is).operation, "other");
        assert_eq!(
            classify("/.well-known/est/devices/bogus", is).operation,
            "other"
        );
        assert_eq!(classify("/crl/default.crl", is).operation, "crl");
        assert_eq!(classify("/ocsp/MFYwVKADAgEA", is).operation, "ocsp");
    }

    #[test]
    fn handshake_reasons_come_from_sslerr_codes() {
        assert_eq!(HandshakeFailure::from_reason(156), HandshakeFailure::NotTls);
        assert_eq!(HandshakeFailure::from_reason(267), HandshakeFailure::NotTls);
        assert_eq!(
            HandshakeFailure::from_reason(258),
            HandshakeFailure::ProtocolVersion
        );
        assert_eq!(HandshakeFailure::from_reason(1048), HandshakeFailure::Alert);
        assert_eq!(
            HandshakeFailure::from_reason(193),
            HandshakeFailure::NoSharedCipher
        );
        assert_eq!(HandshakeFailure::from_reason(294), HandshakeFailure::Closed);
        assert_eq!(HandshakeFailure::from_reason(1), HandshakeFailure::Other);
    }
}
