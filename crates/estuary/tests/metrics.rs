//! Issue 11, observability: the admin listener of the real `estuary serve` (demo setup, admin
//! listener on an ephemeral port, read from the banner), scraped with the curl CLI over TLS:
//! `/healthz`, `/readyz`, `/metrics` before and after an enrollment, a failed authentication,
//! a held request and TLS handshakes that fail; 404/405 on the admin listener.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{sh, start_demo};

/// `name{k="v",...}` → value, labels sorted by name.
type Samples = BTreeMap<String, f64>;

/// Parses the Prometheus text format line by line; panics on a line that is neither a
/// `# HELP`/`# TYPE` comment nor `name{labels} value`.
fn parse(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        let value: f64 = if value == "+Inf" {
            f64::INFINITY
        } else {
            value.parse().expect(line)
        };
        let key = match series.split_once('{') {
            None => series.to_string(),
            Some((name, rest)) => {
                let mut labels: Vec<&str> = rest
                    .strip_suffix('}')
                    .expect(line)
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .collect();
                for l in &labels {
                    let (_, v) = l.split_once('=').expect(line);
                    assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
                }
                labels.sort();
                format!("{name}{{{}}}", labels.join(","))
            }
        };
        assert!(out.insert(key, value).is_none(), "duplicate series: {line}");
    }
    out
}

/// The value of `name` with exactly `labels` (any order); 0 when the series does not exist
/// yet (a counter that has not been incremented).
fn value(s: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    l.sort();
    let key = if l.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", l.join(","))
    };
    s.get(&key).copied().unwrap_or(0.0)
}

struct Admin {
    base: String,
    curl: String,
}

impl Admin {
    /// (HTTP status, Content-Type, body) of `curl -X METHOD https://admin/PATH`.
    fn get(&self, method: &str, path: &str, work: &Path) -> (u16, String, String) {
        let (ok, out) = sh(
            &format!(
                "{} -X {method} -o body.txt -w '%{{http_code}} %{{content_type}}' {}{path}",
                self.curl, self.base
            ),
            work,
        );
        assert!(ok, "curl {path}: {out}");
        let (code, ct) = out.trim().split_once(' ').unwrap_or((out.trim(), ""));
        let body = std::fs::read_to_string(work.join("body.txt")).unwrap_or_default();
        (code.parse().expect(&out), ct.to_string(), body)
    }

    fn scrape(&self, work: &Path) -> Samples {
        let (code, ct, body) = self.get("GET", "/metrics", work);
        assert_eq!(code, 200, "{body}");
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        parse(&body)
    }
}

/// Sends `bytes` on a fresh TCP connection to `addr` and reads until the server closes it.
fn send_junk(addr: &str, bytes: &[u8]) {
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(bytes).unwrap();
    let mut buf = Vec::new();
    let _ = tcp.read_to_end(&mut buf);
}

/// Scrapes until `cond` holds (the server counts a failed handshake on its connection task,
/// which may run a moment after the client saw the close), at most 5 s.
fn scrape_until(admin: &Admin, work: &Path, cond: impl Fn(&Samples) -> bool) -> Samples {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let s = admin.scrape(work);
        if cond(&s) || Instant::now() > until {
            return s;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn admin_listener_health_and_metrics_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    assert!(
        !server.admin.is_empty(),
        "the banner names the admin listener"
    );
    assert_ne!(server.admin, server.addr);
    assert!(
        !server.admin.ends_with(":8444"),
        "--listen 127.0.0.1:0 gives the admin listener an ephemeral port too: {}",
        server.admin
    );
    let root = data.join("ca/root.pem");
    let curl = format!("curl -sS --cacert {}", root.display());
    let admin = Admin {
        base: format!("https://{}", server.admin),
        curl: curl.clone(),
    };
    let est = format!("https://{}/.well-known/est", server.addr);

    // Liveness and readiness (the SQLite store answers, the CA key signs).
    assert_eq!(
        admin.get("GET", "/healthz", &work),
        (200, "text/plain; charset=utf-8".into(), "ok\n".into())
    );
    let (code, _, body) = admin.get("GET", "/readyz", &work);
    assert_eq!((code, body.as_str()), (200, "ready\n"));
    // The three endpoints, only GET/HEAD; every other path is the web console's, which sends
    // a client without a session to its login page: EST is not served here.
    let (code, _, body) = admin.get("GET", "/.well-known/est/cacerts", &work);
    assert_eq!(code, 303, "{body}");
    let (code, _, _) = admin.get("POST", "/metrics", &work);
    assert_eq!(code, 405);

    let (ok, out) = sh(
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout m.key -subj /CN=metrics.example -outform DER 2>/dev/null | openssl base64 > m.b64",
        &work,
    );
    assert!(ok, "{out}");
    let enroll = |user: &str, pass: &str, path: &str| {
        let (ok, code) = sh(
            &format!(
                "{curl} -u '{user}:{pass}' -H 'Content-Type: application/pkcs10' --data-binary @m.b64 -o /dev/null -w '%{{http_code}}' {est}/{path}"
            ),
            &work,
        );
        assert!(ok, "{code}");
        code.trim().parse::<u16>().unwrap()
    };
    // Held for approval before the first scrape: the store snapshot (cached 15 s) sees it.
    assert_eq!(enroll("demo", &server.password, "manual/simpleenroll"), 202);

    let before = admin.scrape(&work);
    assert_eq!(value(&before, "estuary_pending_requests", &[]), 1.0);
    assert!(
        before.contains_key("estuary_certificates{status=\"valid\"}"),
        "{before:?}"
    );
    assert_eq!(
        value(
            &before,
            "estuary_http_requests_total",
            &[
                ("operation", "simpleenroll"),
                ("label", "manual"),
                ("status", "202")
            ]
        ),
        1.0
    );
    // The demo label serves /serverkeygen, so the key pool runs (16 P-256 keys by default).
    assert_eq!(
        value(&before, "estuary_keypool_target", &[("key_type", "p256")]),
        16.0
    );
    assert!(before.contains_key("estuary_keypool_ready{key_type=\"p256\"}"));
    // The scrape's own connection is not on the EST listener; curl's enrollments are closed.
    assert!(before.contains_key("estuary_connections_open{listener=\"est\",phase=\"busy\"}"));

    let ok_label = [
        ("operation", "simpleenroll"),
        ("label", ""),
        ("status", "200"),
    ];
    let denied = [
        ("operation", "simpleenroll"),
        ("label", ""),
        ("status", "401"),
    ];
    let issued = [("ca", "default")];
    assert_eq!(enroll("demo", &server.password, "simpleenroll"), 200);
    assert_eq!(enroll("demo", "not-the-password", "simpleenroll"), 401);
    let after = admin.scrape(&work);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert_eq!(delta("estuary_http_requests_total", &ok_label), 1.0);
    assert_eq!(delta("estuary_http_requests_total", &denied), 1.0);
    assert_eq!(delta("estuary_certificates_issued_total", &issued), 1.0);
    assert_eq!(
        delta(
            "estuary_http_request_duration_seconds_count",
            &[("operation", "simpleenroll")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            "estuary_store_commit_duration_seconds_count",
            &[("write", "certificate"), ("result", "ok")]
        ),
        1.0
    );
    // Admin requests are not EST requests.
    assert!(
        !after
            .keys()
            .any(|k| k.starts_with("estuary_http_requests_total") && k.contains("metrics")),
        "{after:?}"
    );

    // Plain HTTP on the TLS port, then a TLS 1.1-only client (EST-21 refuses it).
    let not_tls = [("listener", "est"), ("reason", "not_tls")];
    send_junk(
        &server.addr,
        b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let s = scrape_until(&admin, &work, |s| {
        value(s, "estuary_tls_handshake_failures_total", &not_tls) >= 1.0
    });
    assert_eq!(
        value(&s, "estuary_tls_handshake_failures_total", &not_tls)
            - value(&after, "estuary_tls_handshake_failures_total", &not_tls),
        1.0
    );
    let version = [("listener", "est"), ("reason", "protocol_version")];
    let (_, out) = sh(
        &format!(
            "openssl s_client -connect {} -tls1_1 -cipher DEFAULT@SECLEVEL=0 </dev/null",
            server.addr
        ),
        &work,
    );
    let s2 = scrape_until(&admin, &work, |s| {
        value(s, "estuary_tls_handshake_failures_total", &version) >= 1.0
    });
    assert_eq!(
        value(&s2, "estuary_tls_handshake_failures_total", &version),
        1.0,
        "openssl s_client -tls1_1: {out}"
    );
    // Junk on the admin listener is counted under its own name.
    send_junk(&server.admin, b"\x00\x01garbage\r\n\r\n");
    let s3 = scrape_until(&admin, &work, |s| {
        s.iter().any(|(k, v)| {
            k.starts_with("estuary_tls_handshake_failures_total{listener=\"admin\"") && *v >= 1.0
        })
    });
    assert!(
        s3.iter().any(|(k, v)| {
            k.starts_with("estuary_tls_handshake_failures_total{listener=\"admin\"") && *v == 1.0
        }),
        "{s3:?}"
    );
}
