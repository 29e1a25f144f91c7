//! Issue 12 item 5: a PostgreSQL outage in the middle of a load. The test starts a PostgreSQL
//! server of its own (initdb + pg_ctl into a temporary directory), serves on it, stops it for a
//! few seconds while clients enroll, and checks that
//! - enrollment answers promptly (within the store's acquire timeout, 3 s by default, plus the
//!   request itself) with 503, `Retry-After` and a `text/plain` reason while the database is
//!   down, and never anything but 200 or 503;
//! - `/cacerts` and `/csrattrs` keep answering 200 throughout, fast;
//! - enrollment recovers once the database is back, without a restart;
//! - every certificate a client received is in the store (issuance is durable);
//! - the admin listener's `/readyz` answers 503 naming the store while the database is down,
//!   promptly, and 200 again once it is back (issue 11).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use est_ca::{KeyType, Store};
use test_support::*;
use tokio::sync::Mutex;

/// A PostgreSQL cluster of the test's own, on a free loopback port.
struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl OwnPostgres {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql (scripts/test.sh installs them)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("pg_ctl").exists())
            .max_by_key(|p| {
                p.parent()
                    .and_then(|v| v.file_name())
                    .and_then(|v| v.to_str())
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(0)
            })
            .expect("pg_ctl");
        let dir = tempfile::tempdir().unwrap();
        // initdb refuses to run as root: run the cluster as the `postgres` system user then.
        let as_postgres = running_as_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown the cluster directory to postgres");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Self {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        );
        pg.ctl_start();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `tool` of the cluster's PostgreSQL, as the `postgres` user when we are root.
    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl_start(&self) {
        let data = self.data();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// `-m immediate`: the server is gone at once, as in a crash or a lost network path; open
    /// connections break mid-session.
    fn ctl_stop(&self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let args = ["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"];
        let _ = self.command("pg_ctl").args(args).output();
    }
}

/// Whether this process runs as root (read from `id -u`, no libc call needed).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[derive(Debug, Clone)]
struct Answer {
    /// Seconds since the start of the test.
    at: f64,
    status: u16,
    took: Duration,
    retry_after: Option<String>,
    content_type: Option<String>,
    reason: String,
    serial: Option<String>,
}

fn serial_of(r: &RawResponse) -> String {
    let cert = certs_only(r).into_iter().next().unwrap();
    let parsed =
        <x509_cert::Certificate as der::Decode>::from_der(&cert.to_der().unwrap()).unwrap();
    est_ca::serial_hex(parsed.tbs_certificate().serial_number())
}

async fn answer(s: &TestServer, request: &[u8], t0: Instant) -> Answer {
    let start = Instant::now();
    let r = raw_request(s, &RawTls::default(), request).await;
    let took = start.elapsed();
    let serial = (r.status == 200
        && r.header("content-type")
            .is_some_and(|c| c.contains("pkcs7")))
    .then(|| serial_of(&r));
    Answer {
        at: start.duration_since(t0).as_secs_f64(),
        status: r.status,
        took,
        retry_after: r.header("retry-after").map(str::to_owned),
        content_type: r.header("content-type").map(str::to_owned),
        reason: r.text(),
        serial,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outage_mid_load_answers_503_promptly_and_recovers_without_loss() {
    let pg = OwnPostgres::start();
    let s = Arc::new(
        TestServer::start(ServerOptions {
            store: StoreKind::Postgres(pg.admin_url()),
            ..ServerOptions::default()
        })
        .await,
    );
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let enrolls = Arc::new(Mutex::new(Vec::<Answer>::new()));
    let reads = Arc::new(Mutex::new(Vec::<(String, Answer)>::new()));

    // Four enrolling clients, each with its own key and a fresh CN per request.
    let mut tasks = Vec::new();
    for client in 0..4 {
        let (s, stop, enrolls) = (s.clone(), stop.clone(), enrolls.clone());
        tasks.push(tokio::spawn(async move {
            let key = key(KeyType::P256);
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let csr = make_csr(&key, &format!("outage-{client}-{n}.example"), &[], None);
                let req = enroll_request(
                    "/.well-known/est/simpleenroll",
                    Some(ALICE),
                    "application/pkcs10",
                    b64(&csr).as_bytes(),
                );
                let a = answer(&s, &req, t0).await;
                if a.status == 503 {
                    // A polite client honours Retry-After; a short pause keeps the test short.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                enrolls.lock().await.push(a);
            }
        }));
    }
    // One client reading /cacerts and /csrattrs all along.
    {
        let (s, stop, reads) = (s.clone(), stop.clone(), reads.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for path in [
                    "/.well-known/est/cacerts",
                    "/.well-known/est/devices/csrattrs",
                ] {
                    let a = answer(&s, &get_request(path), t0).await;
                    reads.lock().await.push((path.to_string(), a));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    let down_at = t0.elapsed().as_secs_f64();
    tokio::task::block_in_place(|| pg.ctl_stop());
    tokio::time::sleep(Duration::from_secs(8)).await;
    let up_at = t0.elapsed().as_secs_f64();
    tokio::task::block_in_place(|| pg.ctl_start());
    // Recovery: enrollment succeeds again within a few seconds, without a restart.
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    let enrolls = enrolls.lock().await.clone();
    let reads = reads.lock().await.clone();
    let count = |f: &dyn Fn(&Answer) -> bool| enrolls.iter().filter(|a| f(a)).count();
    let before = count(&|a| a.status == 200 && a.at < down_at);
    // Requests sent inside the outage early enough that a prompt refusal (at most the 3 s
    // acquire timeout, plus the request) comes before the database is back.
    let during: Vec<&Answer> = enrolls
        .iter()
        .filter(|a| a.at > down_at + 0.5 && a.at < up_at - 4.0)
        .collect();
    let after = count(&|a| a.status == 200 && a.at > up_at);
    let first_ok_after = enrolls
        .iter()
        .filter(|a| a.status == 200 && a.at > up_at)
        .map(|a| a.at + a.took.as_secs_f64() - up_at)
        .fold(f64::INFINITY, f64::min);
    let worst_during = during.iter().map(|a| a.took).max().unwrap_or_default();
    let worst_read = reads.iter().map(|(_, a)| a.took).max().unwrap_or_default();
    println!(
        "outage test: {} enrollments ({before} ok before the outage, {} inside it, {after} ok \
         after it; first success {first_ok_after:.2} s after the restart); slowest answer \
         inside the outage {:?}; {} /cacerts + /csrattrs reads, slowest {worst_read:?}",
        enrolls.len(),
        during.len(),
        worst_during,
        reads.len()
    );

    for a in enrolls
        .iter()
        .filter(|a| a.status != 200 || a.took > Duration::from_secs(1))
    {
        println!(
            "  at {:.2} s: {} after {:?} {}",
            a.at,
            a.status,
            a.took,
            if a.status == 200 { "" } else { a.reason.trim() }
        );
    }
    println!("  outage from {down_at:.2} s to {up_at:.2} s");
    assert!(before > 0, "enrollment worked before the outage");
    for a in &enrolls {
        assert!(
            a.status == 200 || a.status == 503,
            "only 200 or 503, got {} at {:.2} s: {}",
            a.status,
            a.at,
            a.reason
        );
        if a.status == 503 {
            assert_eq!(
                a.retry_after.as_deref(),
                Some("10"),
                "503 carries Retry-After"
            );
            assert!(
                a.content_type
                    .as_deref()
                    .is_some_and(|c| c.starts_with("text/plain")),
                "503 is text/plain: {:?}",
                a.content_type
            );
            assert!(
                a.reason.contains("store is unavailable"),
                "a reason: {}",
                a.reason
            );
        }
    }
    assert!(!during.is_empty(), "requests were sent during the outage");
    for a in &during {
        assert_eq!(a.status, 503, "refused while the database is down: {a:?}");
        // The store's acquire timeout (3 s) bounds the wait, not the pool's default 30 s.
        assert!(a.took < Duration::from_secs(5), "a prompt refusal: {a:?}");
    }
    assert!(after > 0, "enrollment recovered after the restart");
    assert!(
        first_ok_after < 5.0,
        "recovered within 5 s of the restart ({first_ok_after:.2} s)"
    );
    // /cacerts and /csrattrs never need the store.
    assert!(
        reads
            .iter()
            .any(|(_, a)| a.at > down_at + 1.0 && a.at < up_at)
    );
    for (path, a) in &reads {
        assert_eq!(a.status, 200, "{path} at {:.2} s: {}", a.at, a.reason);
        assert!(a.took < Duration::from_secs(1), "{path} fast: {:?}", a.took);
    }
    // Durability: every certificate a client received is stored.
    let received: Vec<&String> = enrolls.iter().filter_map(|a| a.serial.as_ref()).collect();
    assert_eq!(received.len(), count(&|a| a.status == 200));
    for serial in received {
        assert!(
            s.store
                .certificate_by_serial(serial)
                .await
                .unwrap()
                .is_some(),
            "certificate {serial} was returned to a client but is not stored"
        );
    }
    // The server (and its scratch database) go before the cluster does.
    drop(s);
    drop(pg);
}

/// `curl` of the admin listener's /readyz: (status, body, time taken).
fn probe_readyz(port: u16, root: &std::path::Path) -> (u16, String, Duration) {
    let start = Instant::now();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(root)
        .args(["-w", "\n%{http_code}"])
        .arg(format!("https://127.0.0.1:{port}/readyz"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or(0),
        body.to_string(),
        start.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_while_postgres_is_down() {
    let pg = OwnPostgres::start();
    let s = TestServer::start(ServerOptions {
        store: StoreKind::Postgres(pg.admin_url()),
        ..ServerOptions::default()
    })
    .await;
    let tls = est_server::TlsConfig {
        cert_chain_pem: s.pki.tls_chain_pem.clone(),
        key_pem: s.pki.tls_key_pem.clone(),
        client_trust_anchors: Vec::new(),
        client_intermediates: Vec::new(),
        implicit_trust_anchors: Vec::new(),
    };
    let admin = est_server::serve_admin(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        est_server::build_acceptor(&tls).unwrap(),
        est_server::AdminState::new(
            Arc::new(est_server::Metrics::new()),
            s.authority.clone(),
            &est_server::Limits::default(),
        ),
    )
    .unwrap();
    let port = admin.local_addr.port();
    let root = s
        .pki
        .write("root.pem", &s.pki.root_x509().to_pem().unwrap());
    let probe = || tokio::task::block_in_place(|| probe_readyz(port, &root));

    let (code, body, _) = probe();
    assert_eq!((code, body.as_str()), (200, "ready\n"));
    tokio::task::block_in_place(|| pg.ctl_stop());
    let (code, body, took) = probe();
    println!("readyz with the database down: {code} after {took:?}: {body}");
    assert_eq!(code, 503, "{body}");
    assert!(body.starts_with("not ready\nstore: "), "{body}");
    // The probe's own 2 s bound (or the store's error), not the store's 3 s acquire timeout.
    assert!(took < Duration::from_secs(3), "a prompt answer: {took:?}");
    tokio::task::block_in_place(|| pg.ctl_start());
    let until = Instant::now() + Duration::from_secs(10);
    let mut last = probe();
    while last.0 != 200 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        last = probe();
    }
    assert_eq!(last.0, 200, "ready again after the restart: {}", last.1);
    admin.shutdown().await;
    drop(s);
    drop(pg);
}
