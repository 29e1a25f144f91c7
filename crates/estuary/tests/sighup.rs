//! Lifecycle (issue 11): SIGHUP makes `estuary serve` check its configuration again and swap
//! in the TLS certificate it names, without dropping an open connection; a broken
//! configuration is refused and the running one keeps serving. (Before, SIGHUP killed it.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{sh, start_demo};

/// The subject of the certificate the server presents to a new connection.
fn served_subject(addr: &str, work: &std::path::Path) -> String {
    let (ok, out) = sh(
        &format!(
            "openssl s_client -connect {addr} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -subject"
        ),
        work,
    );
    assert!(ok, "{out}");
    out.trim().to_owned()
}

fn hup(pid: u32) {
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn sighup_reloads_the_tls_certificate_keeps_connections_and_refuses_a_broken_config() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, work) = (tmp.path().join("d"), tmp.path().to_path_buf());
    let server = start_demo(&data);
    let before = served_subject(&server.addr, &work);
    assert!(!before.contains("reloaded.example"), "{before}");

    // A connection opened before the reload, used after it.
    let mut open = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            &server.addr,
            "-servername",
            "localhost",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));

    // A new certificate for the same key, then SIGHUP.
    let (ok, out) = sh(
        &format!(
            "openssl req -new -x509 -days 30 -subj /CN=reloaded.example -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -key {d}/tls/server.key.pem -out {d}/tls/server-chain.pem",
            d = data.display()
        ),
        &work,
    );
    assert!(ok, "{out}");
    hup(server.pid());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut now_served = served_subject(&server.addr, &work);
    while !now_served.contains("reloaded.example") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        now_served = served_subject(&server.addr, &work);
    }
    assert!(now_served.contains("reloaded.example"), "{now_served}");
    // The admin listener shares the certificate and reloads with it.
    let admin_served = served_subject(&server.admin, &work);
    assert!(admin_served.contains("reloaded.example"), "{admin_served}");

    // The old connection still works.
    let mut stdin = open.stdin.take().unwrap();
    stdin
        .write_all(b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let status = BufReader::new(open.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .next()
        .unwrap_or_default();
    let _ = open.kill();
    let _ = open.wait();
    assert!(status.starts_with("HTTP/1.1 200"), "{status:?}");

    // A broken configuration: refused, and the server keeps serving what it had.
    let toml = data.join("estuary.toml");
    let good = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, "this is = not [valid toml").unwrap();
    hup(server.pid());
    std::thread::sleep(Duration::from_millis(500));
    assert!(served_subject(&server.addr, &work).contains("reloaded.example"));
    std::fs::write(&toml, good).unwrap();
}

/// The HTTP status of `curl` against the server (`-k`: the demo's TLS certificate is not the
/// point here).
fn status(addr: &str, path: &str, extra: &str, work: &std::path::Path) -> String {
    let (ok, out) = sh(
        &format!("curl -sk -o /dev/null -w '%{{http_code}}' {extra} https://{addr}{path}"),
        work,
    );
    assert!(ok, "{out}");
    out.trim().to_owned()
}

#[test]
fn sighup_applies_label_changes_to_later_requests_and_refuses_a_label_of_an_unknown_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, work) = (tmp.path().join("d"), tmp.path().to_path_buf());
    let server = start_demo(&data);
    let added = "/.well-known/est/added/cacerts";
    assert_eq!(status(&server.addr, added, "", &work), "404");

    // A new label, Digest only: served after SIGHUP, with its own methods.
    let toml = data.join("estuary.toml");
    let good = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        format!("{good}\n[[label]]\nname = \"added\"\nca = \"default\"\nauth_basic = false\n"),
    )
    .unwrap();
    hup(server.pid());
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&server.addr, added, "", &work) != "200" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status(&server.addr, added, "", &work), "200");
    // Basic is not taken there: 401 with a Digest challenge only; the demo's label-less path
    // still takes it (the demo user's password is right, the body empty: 400 or 415, not 401).
    let basic = format!(
        "-u demo:{} -X POST -H 'Content-Type: application/pkcs10' --data-binary x",
        server.password
    );
    assert_eq!(
        status(
            &server.addr,
            "/.well-known/est/added/simpleenroll",
            &basic,
            &work
        ),
        "401"
    );
    assert_ne!(
        status(&server.addr, "/.well-known/est/simpleenroll", &basic, &work),
        "401"
    );

    // A label naming a CA the server did not load: the reload is refused whole; "added" stays.
    let with_added = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        format!("{with_added}\n[[label]]\nname = \"bad\"\nca = \"no-such-ca\"\n"),
    )
    .unwrap();
    hup(server.pid());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status(&server.addr, added, "", &work), "200");
    assert_eq!(
        status(&server.addr, "/.well-known/est/bad/cacerts", "", &work),
        "404"
    );
    std::fs::write(&toml, good).unwrap();
}
