//! RA mode (issue 10): two `estuary serve` processes over real TLS on loopback, client → RA →
//! CA. The RA data dir comes from `estuary init --ra`, its certificate from `estuary ca
//! issue-ra` on the CA; the CA authorizes it per label with `cmc_ras` (CMC-56) and refuses
//! an RA it does not authorize. Every EST operation goes through the RA: /cacerts,
//! /simpleenroll, /simplereenroll, /serverkeygen and /fullcmc, over an upstream /fullcmc
//! (RA-signed PKIData) and over plain EST; a request the CA holds is answered on the client's
//! retry by the RA's Query Pending.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Server, client, estuary, restart, sh, start_demo};

/// CA labels for RAs, appended to the demo's configuration: "ra" authorizes RA certificates
/// whose subject starts with "CN=Test RA" (with /serverkeygen and CMC server-side key
/// generation on); "ra-manual" holds initial
/// enrollments for the operator.
const CA_LABELS: &str = r#"
[[label]]
name = "ra"
ca = "default"
server_keygen = true
cmc_server_keygen = true
cmc_ras = ["CN=Test RA*"]

[[label]]
name = "ra-manual"
ca = "default"
approval = "manual"
approval_retry_after_secs = 1
cmc_ras = ["CN=Test RA*"]
"#;

/// The CA: the demo, restarted with the RA labels.
fn start_ca(dir: &Path) -> Server {
    let demo = start_demo(dir);
    let password = demo.password.clone();
    drop(demo);
    let cfg = dir.join("estuary.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(CA_LABELS);
    std::fs::write(&cfg, text).unwrap();
    restart(dir, &password)
}

/// An RA data dir in `dir` for `upstream_label` of the CA at `ca_addr`, its certificate
/// issued by the CA for `subject`, user alice (password "alice-password") added; started.
fn start_ra(
    ca_dir: &Path,
    ca_addr: &str,
    dir: &Path,
    upstream_label: &str,
    protocol: &str,
    subject: &str,
) -> Server {
    let chain = dir.with_extension("upstream.pem");
    let (ok, out) = sh(
        &format!(
            "cat {ca}/ca/default-issuing.pem {ca}/ca/root.pem > {chain}",
            ca = ca_dir.display(),
            chain = chain.display()
        ),
        ca_dir,
    );
    assert!(ok, "{out}");
    let url = format!("https://{ca_addr}");
    let (ok, out) = estuary(
        &[
            "init",
            "--ra",
            "--upstream",
            &url,
            "--upstream-label",
            upstream_label,
            "--upstream-ca",
            chain.to_str().unwrap(),
            "--upstream-protocol",
            protocol,
            "--subject",
            subject,
            "--hostname",
            "localhost",
            "--listen",
            "127.0.0.1:0",
        ],
        dir,
    );
    assert!(ok, "{out}");
    assert!(out.contains("no CA, no issuing key"), "{out}");
    // The RA holds no CA key: its key directory is empty and no [[ca]] is configured.
    assert_eq!(std::fs::read_dir(dir.join("keys")).unwrap().count(), 0);
    let cfg = std::fs::read_to_string(dir.join("estuary.toml")).unwrap();
    assert!(!cfg.contains("[[ca]]"), "{cfg}");
    // Before its certificate is installed the configuration names the missing file.
    let (ok, out) = estuary(&["config", "check"], dir);
    assert!(!ok && out.contains("ra/ra.pem"), "{out}");

    let csr = dir.join("ra/ra.csr.pem");
    let cert = dir.join("ra/ra.pem");
    let (ok, out) = estuary(
        &[
            "ca",
            "issue-ra",
            "--csr",
            csr.to_str().unwrap(),
            "--out",
            cert.to_str().unwrap(),
        ],
        ca_dir,
    );
    assert!(ok, "{out}");
    assert!(out.contains("cmc_ras"), "{out}");
    // id-kp-cmcRA (1.3.6.1.5.5.7.3.28) beside serverAuth and clientAuth, read by OpenSSL.
    let (ok, out) = sh(
        &format!(
            "openssl x509 -in {} -noout -ext extendedKeyUsage",
            cert.display()
        ),
        dir,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("TLS Web Server Authentication")
            && out.contains("TLS Web Client Authentication")
            && (out.contains("CMC Registration Authority") || out.contains("1.3.6.1.5.5.7.3.28")),
        "{out}"
    );
    let (ok, out) = sh(
        &format!(
            "echo alice-password | {bin} user add --data-dir {d} alice --password-file -",
            bin = common::BIN,
            d = dir.display()
        ),
        dir,
    );
    assert!(ok, "{out}");
    restart(dir, "")
}

fn alice() -> [&'static str; 4] {
    ["--user", "alice", "--password-file", "pw.txt"]
}

/// The CA's record of the newest certificate whose subject is `subject`.
fn record_at_ca(ca_dir: &Path, subject: &str) -> serde_json::Value {
    let (ok, out) = estuary(&["cert", "list", "--json"], ca_dir);
    assert!(ok, "{out}");
    out.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["subject"] == subject)
        .unwrap_or_else(|| panic!("no certificate for {subject} at the CA:\n{out}"))
}

/// Whether the CA recorded the RA `ra_subject` as the requester of `cn`'s certificate.
fn requested_by(ca_dir: &Path, cn: &str, ra_subject: &str) -> bool {
    let ra = record_at_ca(ca_dir, ra_subject);
    let ee = record_at_ca(ca_dir, &format!("CN={cn}"));
    ee["requester"].as_str() == Some(&format!("cert:{}", ra["serial"].as_str().unwrap()))
}

#[test]
fn ra_forwards_every_operation_to_an_estuary_ca_over_fullcmc() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca_dir, ra_dir, work) = (
        tmp.path().join("ca"),
        tmp.path().join("ra"),
        tmp.path().join("work"),
    );
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("pw.txt"), "alice-password\n").unwrap();
    let ca = start_ca(&ca_dir);
    let ra = start_ra(&ca_dir, &ca.addr, &ra_dir, "ra", "fullcmc", "CN=Test RA 1");
    let url = format!("https://{}", ra.addr);
    let root = ca_dir.join("ca/root.pem");

    // `estuary ra status`: the upstream answers with the configured CA certificates.
    let (ok, out) = estuary(&["ra", "status"], &ra_dir);
    assert!(ok, "{out}");
    assert!(out.contains("reachable: yes"), "{out}");
    assert!(out.contains("matches ca_certs"), "{out}");
    assert!(out.contains("id-kp-cmcRA: yes"), "{out}");

    // /cacerts through curl: the CA's certificates, though the RA has no CA of its own.
    let (ok, out) = sh(
        &format!(
            "set -e
            curl -sf --cacert {root} https://{ra}/.well-known/est/cacerts | openssl base64 -d | openssl pkcs7 -inform DER -print_certs -noout",
            root = root.display(),
            ra = ra.addr
        ),
        &work,
    );
    assert!(ok, "{out}");
    assert!(out.contains("Estuary Issuing CA"), "{out}");

    // /simpleenroll: alice is the RA's user, unknown to the CA, which takes the RA's word.
    let mut args = alice().to_vec();
    args.extend([
        "enroll",
        "--subject",
        "CN=ra-dev1.example",
        "--san",
        "dns:ra-dev1.example",
        "--out-key",
        "dev1.key",
        "--out-cert",
        "dev1.pem",
    ]);
    let (ok, out) = client(&url, &root, &work, &args);
    assert!(ok, "{out}");
    common::check_cert(&work, &ca_dir, "dev1.pem", "dev1.key");
    assert!(
        requested_by(&ca_dir, "ra-dev1.example", "CN=Test RA 1"),
        "the CA records the RA as requester"
    );

    // /simplereenroll with the certificate as TLS client certificate (the RA checks the
    // names, EST-82).
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "--cert",
            "dev1.pem",
            "--key",
            "dev1.key",
            "reenroll",
            "--out-key",
            "dev1b.key",
            "--out-cert",
            "dev1b.pem",
        ],
    );
    assert!(ok, "{out}");
    common::check_cert(&work, &ca_dir, "dev1b.pem", "dev1b.key");
    let (_, serials) = sh(
        "openssl x509 -in dev1.pem -noout -serial; openssl x509 -in dev1b.pem -noout -serial",
        &work,
    );
    let s: Vec<&str> = serials.lines().collect();
    assert_eq!(s.len(), 2);
    assert_ne!(s[0], s[1], "a new certificate");
    // Revoked at the CA, the renewed certificate renews nothing: the RA asks the upstream's
    // OCSP responder first.
    let serial = s[1].trim().trim_start_matches("serial=").to_owned();
    let (ok, out) = estuary(
        &["cert", "revoke", &serial, "--reason", "keyCompromise"],
        &ca_dir,
    );
    assert!(ok, "{out}");
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "--cert",
            "dev1b.pem",
            "--key",
            "dev1b.key",
            "reenroll",
            "--out-key",
            "dev1c.key",
            "--out-cert",
            "dev1c.pem",
        ],
    );
    assert!(!ok && out.contains("revoked"), "{out}");
    // Without the certificate (Basic only), re-enrollment through the RA is refused.
    let mut args = alice().to_vec();
    args.extend([
        "reenroll",
        "--subject",
        "CN=ra-dev1.example",
        "--out-key",
        "x.key",
        "--out-cert",
        "x.pem",
    ]);
    let (ok, out) = client(&url, &root, &work, &args);
    assert!(!ok, "{out}");

    // /serverkeygen: generated by the CA, relayed by the RA.
    let mut args = alice().to_vec();
    args.extend([
        "serverkeygen",
        "--key-type",
        "p256",
        "--subject",
        "CN=ra-skg.example",
        "--out-key",
        "skg.key",
        "--out-cert",
        "skg.pem",
    ]);
    let (ok, out) = client(&url, &root, &work, &args);
    assert!(ok, "{out}");
    common::check_cert(&work, &ca_dir, "skg.pem", "skg.key");

    // /fullcmc: the client's own Full PKI Request, wrapped by the RA; the answer is the CA's
    // response to the client (its nonces), checked by the client.
    let mut args = alice().to_vec();
    args.extend([
        "fullcmc",
        "enroll",
        "--subject",
        "CN=ra-cmc.example",
        "--data-return",
        "through-the-ra",
        "--out-key",
        "cmc.key",
        "--out-cert",
        "cmc.pem",
    ]);
    let (ok, out) = client(&url, &root, &work, &args);
    assert!(ok, "{out}");
    assert!(out.contains("success"), "{out}");
    assert!(out.contains("dataReturn echoed: through-the-ra"), "{out}");
    common::check_cert(&work, &ca_dir, "cmc.pem", "cmc.key");
    assert!(requested_by(&ca_dir, "ra-cmc.example", "CN=Test RA 1"));

    // CMC server-side key generation (SKGD-38): the client's Full PKI Request, signed with
    // its certificate, carries a ServerKeyGenRequest and no certification request: the RA
    // forwards it untouched and the CA generates the key for the signer's name.
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "--cert",
            "cmc.pem",
            "--key",
            "cmc.key",
            "fullcmc",
            "serverkeygen",
            "--out-key",
            "rskg.key",
            "--out-cert",
            "rskg.pem",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("decrypted and verified"), "{out}");
    common::check_cert(&work, &ca_dir, "rskg.pem", "rskg.key");
    let (ok, out) = sh(
        "openssl x509 -in rskg.pem -noout -subject -nameopt RFC2253",
        &work,
    );
    assert!(ok && out.contains("CN=ra-cmc.example"), "{out}");

    // The RA applies its users' own name policies before it vouches (the CA takes its
    // word): bob may have *.bob.example only, over /simpleenroll and /fullcmc alike.
    let (ok, out) = sh(
        &format!(
            "echo bob-password | {bin} user add --data-dir {d} bob --password-file - --allow-name '*.bob.example'",
            bin = common::BIN,
            d = ra_dir.display()
        ),
        &work,
    );
    assert!(ok, "{out}");
    std::fs::write(work.join("bob.txt"), "bob-password\n").unwrap();
    let bob = ["--user", "bob", "--password-file", "bob.txt"];
    for (op, cn) in [
        ("enroll", "x.other.example"),
        ("fullcmc", "y.other.example"),
    ] {
        let subject = format!("CN={cn}");
        let mut args = bob.to_vec();
        if op == "fullcmc" {
            args.extend(["fullcmc", "enroll"]);
        } else {
            args.push("enroll");
        }
        args.extend([
            "--subject",
            &subject,
            "--out-key",
            "bob.key",
            "--out-cert",
            "bob.pem",
        ]);
        let (ok, out) = client(&url, &root, &work, &args);
        assert!(!ok && out.contains("403"), "{op}: {out}");
        let (_, list) = estuary(&["cert", "list"], &ca_dir);
        assert!(!list.contains(cn), "{list}");
    }
    let mut args = bob.to_vec();
    args.extend([
        "enroll",
        "--subject",
        "CN=ok.bob.example",
        "--out-key",
        "bob.key",
        "--out-cert",
        "bob.pem",
    ]);
    let (ok, out) = client(&url, &root, &work, &args);
    assert!(ok, "{out}");

    // Wrong credentials stop at the RA: nothing is forwarded.
    std::fs::write(work.join("bad.txt"), "wrong\n").unwrap();
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "--user",
            "alice",
            "--password-file",
            "bad.txt",
            "enroll",
            "--subject",
            "CN=ra-nope.example",
            "--out-key",
            "n.key",
            "--out-cert",
            "n.pem",
        ],
    );
    assert!(!ok && out.contains("401"), "{out}");
    let (_, list) = estuary(&["cert", "list"], &ca_dir);
    assert!(!list.contains("ra-nope.example"), "{list}");

    // The RA records what it forwarded and what came back (issue 10); both chains verify.
    let (ok, out) = estuary(&["audit", "list", "--json", "--limit", "0"], &ra_dir);
    assert!(ok, "{out}");
    let forwards: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["action"] == "ra.forward")
        .collect();
    for op in ["simpleenroll", "simplereenroll", "serverkeygen", "fullcmc"] {
        assert!(
            forwards.iter().any(|v| v["target"] == op),
            "no ra.forward of {op}: {out}"
        );
    }
    assert!(
        forwards.iter().any(|v| v["actor"] == "user:alice"
            && v["details"].as_str().unwrap_or("").starts_with("issued ")),
        "{out}"
    );
    for dir in [&ra_dir, &ca_dir] {
        let (ok, out) = estuary(&["audit", "verify"], dir);
        assert!(ok && out.contains("audit chain OK"), "{out}");
    }
    let (ok, out) = estuary(&["audit", "list", "--json", "--limit", "0"], &ca_dir);
    assert!(ok && out.contains("estuary:ra-certificate"), "{out}");

    // The CA's own label-less path does not authorize this RA: going there directly with the
    // RA certificate for another subject is refused (CMC-56).
    let (ok, out) = client(
        &format!("https://{}", ca.addr),
        &root,
        &work,
        &[
            "--cert",
            ra_dir.join("ra/ra.pem").to_str().unwrap(),
            "--key",
            ra_dir.join("secrets/ra.key.pem").to_str().unwrap(),
            "--label",
            "devices",
            "enroll",
            "--subject",
            "CN=not-via-ra.example",
            "--out-key",
            "v.key",
            "--out-cert",
            "v.pem",
        ],
    );
    assert!(!ok && out.contains("CMC-56"), "{out}");
}

#[test]
fn ca_refuses_an_ra_it_does_not_authorize_and_plain_est_upstream_works() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca_dir, work) = (tmp.path().join("ca"), tmp.path().join("work"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("pw.txt"), "alice-password\n").unwrap();
    let ca = start_ca(&ca_dir);
    let root = ca_dir.join("ca/root.pem");
    let enroll = |url: &str, cn: &str| {
        let mut args = alice().to_vec();
        let subject = format!("CN={cn}");
        let (k, c) = (format!("{cn}.key"), format!("{cn}.pem"));
        args.extend([
            "enroll",
            "--subject",
            &subject,
            "--out-key",
            &k,
            "--out-cert",
            &c,
        ]);
        client(url, &root, &work, &args)
    };

    // An RA certificate of this CA whose subject no cmc_ras lists: refused over CMC and over
    // plain EST, and nothing is issued.
    for (name, protocol) in [("rogue-cmc", "fullcmc"), ("rogue-est", "est")] {
        let dir = tmp.path().join(name);
        let ra = start_ra(&ca_dir, &ca.addr, &dir, "ra", protocol, "CN=Rogue RA");
        let url = format!("https://{}", ra.addr);
        let cn = format!("{name}.example");
        let (ok, out) = enroll(&url, &cn);
        assert!(!ok, "{protocol}: {out}");
        assert!(out.contains("CMC-56"), "{protocol}: {out}");
        let (_, list) = estuary(&["cert", "list"], &ca_dir);
        assert!(!list.contains(&cn), "{list}");
    }

    // Plain EST upstream (/simpleenroll with the RA's TLS client certificate), for CAs
    // without CMC: enrollment and re-enrollment.
    let dir = tmp.path().join("ra-est");
    let ra = start_ra(&ca_dir, &ca.addr, &dir, "ra", "est", "CN=Test RA est");
    let url = format!("https://{}", ra.addr);
    let (ok, out) = enroll(&url, "est-dev.example");
    assert!(ok, "{out}");
    common::check_cert(&work, &ca_dir, "est-dev.example.pem", "est-dev.example.key");
    assert!(requested_by(&ca_dir, "est-dev.example", "CN=Test RA est"));
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "--cert",
            "est-dev.example.pem",
            "--key",
            "est-dev.example.key",
            "reenroll",
            "--out-key",
            "est-dev2.key",
            "--out-cert",
            "est-dev2.pem",
        ],
    );
    assert!(ok, "{out}");
    common::check_cert(&work, &ca_dir, "est-dev2.pem", "est-dev2.key");
    // /fullcmc needs a CMC upstream: refused with the reason.
    let mut args = alice().to_vec();
    args.extend([
        "fullcmc",
        "enroll",
        "--subject",
        "CN=x.example",
        "--out-key",
        "x.key",
        "--out-cert",
        "x.pem",
    ]);
    let (ok, out) = client(&url, &root, &work, &args);
    assert!(!ok && out.contains("plain EST"), "{out}");

    // The upstream down: 502 with the reason; `ra status` says so and fails.
    drop(ca);
    let (ok, out) = enroll(&url, "down.example");
    assert!(!ok && out.contains("502"), "{out}");
    let (ok, out) = estuary(&["ra", "status"], &dir);
    assert!(!ok && out.contains("reachable: NO"), "{out}");
}

#[test]
fn a_request_the_ca_holds_is_polled_by_the_ra_on_the_clients_retry() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca_dir, ra_dir, work) = (
        tmp.path().join("ca"),
        tmp.path().join("ra"),
        tmp.path().join("work"),
    );
    std::fs::create_dir_all(&work).unwrap();
    let ca = start_ca(&ca_dir);
    let ra = start_ra(
        &ca_dir,
        &ca.addr,
        &ra_dir,
        "ra-manual",
        "fullcmc",
        "CN=Test RA held",
    );
    let root = ca_dir.join("ca/root.pem");
    // curl + openssl as the EST client: one CSR, sent twice.
    let post = format!(
        "curl -s -o resp.b64 -w '%{{http_code}}' --cacert {root} -u alice:alice-password -H 'Content-Type: application/pkcs10' --data-binary @held.csr.b64 https://{ra}/.well-known/est/simpleenroll",
        root = root.display(),
        ra = ra.addr
    );
    let (ok, out) = sh(
        &format!(
            "set -e
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout held.key -subj /CN=held.example -outform DER -out held.csr 2>/dev/null
            openssl base64 -in held.csr -out held.csr.b64
            {post}"
        ),
        &work,
    );
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "202", "held at the CA: 202 from the RA");

    // The operator approves at the CA; the client's retry is answered by the RA's Query
    // Pending with the certificate.
    let (ok, list) = estuary(&["request", "list", "--json"], &ca_dir);
    assert!(ok, "{list}");
    let line = list
        .lines()
        .find(|l| l.contains("CN=held.example"))
        .unwrap_or_else(|| panic!("{list}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    let (ok, out) = estuary(&["request", "approve", &id], &ca_dir);
    assert!(ok, "{out}");
    let (ok, out) = sh(&post, &work);
    assert!(ok, "{out}");
    let body = std::fs::read_to_string(work.join("resp.b64")).unwrap_or_default();
    assert_eq!(out.trim(), "200", "{body}");
    let (ok, out) = sh(
        "set -e
        openssl base64 -d -in resp.b64 | openssl pkcs7 -inform DER -print_certs -out held.pem
        openssl x509 -in held.pem -noout -subject -nameopt RFC2253",
        &work,
    );
    assert!(ok && out.contains("CN=held.example"), "{out}");
    common::check_cert(&work, &ca_dir, "held.pem", "held.key");
    // One held request at the CA, not two: the retry was a query, not a new request.
    let (_, list) = estuary(&["request", "list", "--all", "--json"], &ca_dir);
    assert_eq!(
        list.lines()
            .filter(|l| l.contains("CN=held.example"))
            .count(),
        1,
        "{list}"
    );

    // A CMC client's own Query Pending (CMC-64) for a request the RA vouched for: the CA
    // holds it under the RA's name, so the RA forwards the query of the same client (and only
    // of it) under its own.
    std::fs::write(work.join("alice.pw"), "alice-password\n").unwrap();
    let url = format!("https://{}", ra.addr);
    let alice = ["--user", "alice", "--password-file", "alice.pw"];
    let mut args = alice.to_vec();
    args.extend([
        "fullcmc",
        "enroll",
        "--subject",
        "CN=held-cmc.example",
        "--out-key",
        "held-cmc.key",
        "--out-cert",
        "held-cmc.pem",
    ]);
    let (ok, out) = client(&url, &root, &work, &args);
    assert!(!ok && out.contains(": pending"), "held at the CA: {out}");
    let state = "held-cmc.pem.pending.json";
    assert!(work.join(state).exists(), "{out}");
    let poll = |creds: &[&str]| {
        let mut args = creds.to_vec();
        args.extend(["fullcmc", "poll", "--state", state]);
        client(&url, &root, &work, &args)
    };
    let (ok, out) = poll(&alice);
    assert!(!ok && out.contains(": pending"), "still held: {out}");
    let (_, list) = estuary(&["request", "list", "--json"], &ca_dir);
    let line = list
        .lines()
        .find(|l| l.contains("CN=held-cmc.example"))
        .unwrap_or_else(|| panic!("{list}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    let (ok, out) = estuary(&["request", "approve", &id], &ca_dir);
    assert!(ok, "{out}");
    // Without alice's credentials the RA vouches for nothing: the CA does not answer it.
    let (ok, out) = poll(&[]);
    assert!(!ok && !out.contains("success"), "{out}");
    assert!(!work.join("held-cmc.pem").exists());
    let (ok, out) = poll(&alice);
    assert!(ok, "approved: {out}");
    assert!(out.contains("success"), "{out}");
    common::check_cert(&work, &ca_dir, "held-cmc.pem", "held-cmc.key");
}

/// An independent EST client through the RA: Bouncy Castle's ESTService (interop/bc/
/// EstInterop.java in its RA mode) does /cacerts, Basic enrollment and a refused password,
/// re-enrollment with its certificate as TLS client certificate, tls-unique PoP linking at
/// TLS 1.2 (the RA checks the binding of its own connection; a corrupted one is refused) and
/// /serverkeygen, against an RA in front of an Estuary CA over /fullcmc.
#[test]
fn bouncy_castle_est_client_through_the_ra() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = common::compile_bc("EstInterop", tmp.path());
    let (ca_dir, ra_dir) = (tmp.path().join("ca"), tmp.path().join("ra"));
    let ca = start_ca(&ca_dir);
    let ra = start_ra(&ca_dir, &ca.addr, &ra_dir, "ra", "fullcmc", "CN=Test RA bc");
    let root = ca_dir.join("ca/root.pem").display().to_string();
    let stdout = common::run_bc(
        &cp,
        "EstInterop",
        &[&ra.addr, &root, "alice", "alice-password", "ra"],
    );
    for must in [
        "ok: basic enroll: certificate carries the requested public key",
        "ok: reenroll: a new serial number",
        "ok: a corrupted tls-unique gets 400",
        "ok: serverkeygen: the private key matches the certificate",
    ] {
        assert!(stdout.contains(must), "missing {must:?} in:\n{stdout}");
    }
    let (_, list) = estuary(&["cert", "list"], &ca_dir);
    for cn in ["bc-basic.example", "bc-pop.example", "bc-skg.example"] {
        assert!(
            list.contains(&format!("CN={cn}")),
            "{cn} not at the CA:\n{list}"
        );
    }
    assert!(!list.contains("bc-pop-bad.example"), "{list}");
}

/// SKGD-42 with an independent client: Bouncy Castle's ASN.1, CMC and CMS classes
/// (`interop/bc/CmcSkgInterop.java` with EST_SKG_RA=1) enroll through the RA, then ask an RA
/// with `cmc_server_keygen` for keys: kari to an EC certificate, ktri by certIdentifier, kari
/// to a bare key, and the draft's errors (archiveNotSupported, badCertificate). BC requires
/// the key package and the response to be signed by the RA's id-kp-cmcRA certificate, and the
/// CA's own signed success response in the RA's response through Response Body (SKGD-36).
#[test]
fn bouncy_castle_opens_keys_the_ra_generated() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = common::compile_bc("CmcSkgInterop", tmp.path());
    let (ca_dir, ra_dir) = (tmp.path().join("ca"), tmp.path().join("ra"));
    let ca = start_ca(&ca_dir);
    let first = start_ra(
        &ca_dir,
        &ca.addr,
        &ra_dir,
        "ra",
        "fullcmc",
        "CN=Test RA bc-kg",
    );
    drop(first);
    let cfg = ra_dir.join("estuary.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("cmc_server_keygen = false", "cmc_server_keygen = true"),
    )
    .unwrap();
    let ra = restart(&ra_dir, "");
    let root = ca_dir.join("ca/root.pem").display().to_string();
    let stdout = common::run_bc_with_env(
        &cp,
        "CmcSkgInterop",
        &[
            &ra.addr,
            &root,
            "alice",
            "alice-password",
            "unused",
            "unused",
            "unused",
            "unused",
            "unused",
        ],
        &[("EST_SKG_RA", "1"), ("EST_SKG_LABEL", "")],
    );
    for case in [
        "enroll",
        "shroud-certificate",
        "shroud-cert-id",
        "shroud-bare-key",
        "archive-key",
        "bad-cert-id",
    ] {
        assert!(
            stdout.contains(&format!("CASE {case} OK")),
            "case {case}:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("the key package is signed by the RA") && stdout.contains("Response Body"),
        "{stdout}"
    );
    // Each generated key's certificate is at the CA, requested by the RA.
    let ra_serial = record_at_ca(&ca_dir, "CN=Test RA bc-kg")["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, list) = estuary(&["cert", "list", "--json"], &ca_dir);
    let records: Vec<serde_json::Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let issued: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ISSUED "))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(issued.len(), 3, "{stdout}");
    for serial in issued {
        let r = records
            .iter()
            .find(|r| {
                r["serial"].as_str().unwrap_or("").trim_start_matches('0')
                    == serial.trim_start_matches('0')
            })
            .unwrap_or_else(|| panic!("{serial} not at the CA: {list}"));
        assert_eq!(r["requester"], format!("cert:{ra_serial}").as_str());
    }
}

/// The serial (as `estuary cert list` prints it) of a PEM certificate in `work`.
fn serial_of(work: &Path, pem: &str) -> String {
    use der::Decode;
    let x = openssl::x509::X509::from_pem(&std::fs::read(work.join(pem)).unwrap()).unwrap();
    let c = x509_cert::Certificate::from_der(&x.to_der().unwrap()).unwrap();
    est_ca::serial_hex(c.tbs_certificate().serial_number())
}

/// The subject (RFC 2253) of the signer `openssl cms -verify` finds in the DER CMS `input`,
/// whose content it writes to `out`; it verifies to `root` with the certificates it carries.
fn cms_signer(work: &Path, root: &Path, input: &str, out: &str) -> String {
    let (ok, text) = sh(
        &format!(
            "set -e
            openssl cms -verify -inform DER -in {input} -CAfile {root} -binary -purpose any -out {out} -signer {input}.signer.pem
            openssl x509 -in {input}.signer.pem -noout -subject -nameopt RFC2253",
            root = root.display()
        ),
        work,
    );
    assert!(
        ok && text.contains("Verification successful"),
        "{input}: {text}"
    );
    text
}

/// SKGD-34..SKGD-37, SKGD-42: an RA label with `cmc_server_keygen` generates the key itself.
/// The client's ServerKeyGenRequest never reaches the CA: the RA asks for a certificate in a
/// PKIData of its own (its name, ChangeSubjectName to the client's), seals the key in a key
/// package it signs, and answers with a PKIResponse it signs that carries the CA's response
/// through Response Body. Checked with `openssl cms` layer by layer (ktri, kari by bare key,
/// pwri with the RA's shared secret), and a CA that refuses the RA leaves the client with no
/// key (SKGD-37).
#[test]
fn an_ra_generates_the_key_itself_and_the_ca_certifies_it() {
    use der::{Decode, Encode};
    let tmp = tempfile::tempdir().unwrap();
    let (ca_dir, ra_dir, work) = (
        tmp.path().join("ca"),
        tmp.path().join("ra"),
        tmp.path().join("work"),
    );
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("pw.txt"), "alice-password\n").unwrap();
    let ca = start_ca(&ca_dir);
    let root = ca_dir.join("ca/root.pem");
    let enable_ra_keygen = |dir: &Path| {
        let cfg = dir.join("estuary.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        assert!(text.contains("cmc_server_keygen = false"), "{text}");
        let text = text.replace("cmc_server_keygen = false", "cmc_server_keygen = true");
        std::fs::write(&cfg, text).unwrap();
    };
    let first = start_ra(&ca_dir, &ca.addr, &ra_dir, "ra", "fullcmc", "CN=Test RA kg");
    drop(first);
    enable_ra_keygen(&ra_dir);
    let ra = restart(&ra_dir, "");
    let url = format!("https://{}", ra.addr);

    // alice's RSA-3072 certificate through the RA (an enrollment, forwarded as usual): it
    // signs the key generation requests and protects a key by key transport.
    let mut args = alice().to_vec();
    args.extend([
        "fullcmc",
        "enroll",
        "--key-type",
        "rsa3072",
        "--subject",
        "CN=ra-kg.example",
        "--san",
        "dns:ra-kg.example",
        "--out-key",
        "signer.key",
        "--out-cert",
        "signer.pem",
    ]);
    let (ok, out) = client(&url, &root, &work, &args);
    assert!(ok, "{out}");
    let skg = |extra: &[&str]| {
        let mut all = vec!["--cert", "signer.pem", "--key", "signer.key"];
        all.extend(["fullcmc", "serverkeygen"]);
        all.extend(extra);
        client(&url, &root, &work, &all)
    };
    let ra_serial = record_at_ca(&ca_dir, "CN=Test RA kg")["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    let requester_at_ca = |pem: &str| -> String {
        let serial = serial_of(&work, pem);
        let (ok, out) = estuary(&["cert", "list", "--json"], &ca_dir);
        assert!(ok, "{out}");
        out.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["serial"] == serial.as_str())
            .unwrap_or_else(|| panic!("{pem} ({serial}) is not recorded at the CA: {out}"))
            ["requester"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // ktri: the key protected for the signing certificate, named by certIdentifier.
    let (ok, out) = skg(&[
        "--shroud",
        "certificate",
        "--save-response",
        "ktri.resp.der",
        "--out-key",
        "ktri.key",
        "--out-cert",
        "ktri.pem",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("decrypted and verified"), "{out}");
    common::check_cert(&work, &ca_dir, "ktri.pem", "ktri.key");
    let (ok, out) = sh(
        "openssl x509 -in ktri.pem -noout -subject -ext subjectAltName -nameopt RFC2253",
        &work,
    );
    assert!(ok, "{out}");
    // The client's names, not the RA's (ChangeSubjectName, SKGD-35).
    assert!(out.contains("subject=CN=ra-kg.example"), "{out}");
    assert!(out.contains("DNS:ra-kg.example"), "{out}");
    // Certified by the CA at the RA's request.
    assert_eq!(requester_at_ca("ktri.pem"), format!("cert:{ra_serial}"));

    // Layer by layer with OpenSSL: the RA signed the response (SKGD-36, SKGD-42) ...
    let signer = cms_signer(&work, &root, "ktri.resp.der", "ktri.pkiresp.der");
    assert!(signer.contains("CN=Test RA kg"), "{signer}");
    let pki = std::fs::read(work.join("ktri.pkiresp.der")).unwrap();
    let response = est_cmc::types::PkiResponse::from_der(&pki).unwrap();
    // ... and carries the CA's own signed response through Response Body (CMC-63), in which
    // the CA answered the RA's request with success.
    let bodies = est_cmc::ra_keygen::response_bodies(&pki).unwrap();
    assert_eq!(bodies.len(), 1);
    std::fs::write(work.join("ca.resp.der"), &bodies[0]).unwrap();
    let ca_signer = cms_signer(&work, &root, "ca.resp.der", "ca.pkiresp.der");
    assert!(ca_signer.contains("Issuing CA"), "{ca_signer}");
    let ca_summary =
        est_cmc::ResponseSummary::read(&std::fs::read(work.join("ca.pkiresp.der")).unwrap())
            .unwrap();
    assert!(
        !ca_summary.statuses.is_empty()
            && ca_summary
                .statuses
                .iter()
                .all(|s| s.status == est_cmc::CmcStatus::SUCCESS),
        "{ca_summary:?}"
    );
    // The RA's own answer: success, and the key in an EnvelopedData that OpenSSL decrypts
    // with the signing certificate's key to a key package the RA signed.
    let summary = est_cmc::ResponseSummary::read(&pki).unwrap();
    assert!(
        !summary.statuses.is_empty()
            && summary
                .statuses
                .iter()
                .all(|s| s.status == est_cmc::CmcStatus::SUCCESS),
        "{summary:?}"
    );
    let enveloped = response
        .cms_sequence
        .iter()
        .find(|t| t.content_info.content_type == est_cms::oids::ID_ENVELOPED_DATA)
        .expect("an EnvelopedData in cmsSequence");
    std::fs::write(
        work.join("ktri.env.der"),
        enveloped.content_info.to_der().unwrap(),
    )
    .unwrap();
    let (ok, out) = sh(
        "openssl cms -decrypt -inform DER -in ktri.env.der -recip signer.pem -inkey signer.key -binary -out ktri.akp.signed.der",
        &work,
    );
    assert!(ok, "{out}");
    let generator = cms_signer(&work, &root, "ktri.akp.signed.der", "ktri.akp.der");
    assert!(
        generator.contains("CN=Test RA kg"),
        "the RA made the key package: {generator}"
    );
    let keys =
        est_cms::decode_key_package(&std::fs::read(work.join("ktri.akp.der")).unwrap()).unwrap();
    assert_eq!(keys.len(), 1);
    let (ok, out) = sh(
        "openssl x509 -in ktri.pem -noout -pubkey | cmp - <(openssl pkey -in ktri.key -pubout) && echo same",
        &work,
    );
    assert!(ok && out.contains("same"), "{out}");

    // bareKey (kari to a fresh P-256 key of the client).
    let (ok, out) = skg(&["--out-key", "bare.key", "--out-cert", "bare.pem"]);
    assert!(ok, "{out}");
    common::check_cert(&work, &ca_dir, "bare.pem", "bare.key");
    let (ok, out) = sh("openssl pkey -in bare.key -noout -text", &work);
    assert!(ok && out.contains("P-256"), "{out}");

    // pwri: a shared secret of the RA's, linked to the client's subject (SKGD-15).
    common::add_cmc_secret_for(
        &ra_dir,
        "kg-key",
        "ra-kg-protection-secret-01\n",
        "CN=ra-kg.example",
    );
    std::fs::write(work.join("kgsecret.txt"), "ra-kg-protection-secret-01\n").unwrap();
    let (ok, out) = skg(&[
        "--shroud",
        "shared-secret",
        "--shroud-secret-name",
        "kg-key",
        "--shroud-secret-file",
        "kgsecret.txt",
        "--save-response",
        "pwri.resp.der",
        "--out-key",
        "pwri.key",
        "--out-cert",
        "pwri.pem",
    ]);
    assert!(ok, "{out}");
    common::check_cert(&work, &ca_dir, "pwri.pem", "pwri.key");
    cms_signer(&work, &root, "pwri.resp.der", "pwri.pkiresp.der");
    let pki = std::fs::read(work.join("pwri.pkiresp.der")).unwrap();
    let response = est_cmc::types::PkiResponse::from_der(&pki).unwrap();
    let enveloped = response
        .cms_sequence
        .iter()
        .find(|t| t.content_info.content_type == est_cms::oids::ID_ENVELOPED_DATA)
        .unwrap();
    std::fs::write(
        work.join("pwri.env.der"),
        enveloped.content_info.to_der().unwrap(),
    )
    .unwrap();
    let (ok, out) = sh(
        "openssl cms -decrypt -inform DER -in pwri.env.der -pwri_password ra-kg-protection-secret-01 -binary -out pwri.akp.signed.der",
        &work,
    );
    assert!(ok, "{out}");
    let generator = cms_signer(&work, &root, "pwri.akp.signed.der", "pwri.akp.der");
    assert!(generator.contains("CN=Test RA kg"), "{generator}");

    // A request MACed with a shared secret (AuthenticatedData, SKGD-17) is the CA's to check:
    // the RA forwards it as it is and the CA generates the key (SKGD-38), with its own secret.
    common::add_cmc_secret_for(
        &ca_dir,
        "kg-mac",
        "ca-kg-identification-secret-01\n",
        "CN=ra-mac.example",
    );
    std::fs::write(work.join("mac.txt"), "ca-kg-identification-secret-01\n").unwrap();
    let (ok, out) = client(
        &url,
        &root,
        &work,
        &[
            "fullcmc",
            "serverkeygen",
            "--ident",
            "kg-mac",
            "--secret-file",
            "mac.txt",
            "--subject",
            "CN=ra-mac.example",
            "--save-response",
            "mac.resp.der",
            "--out-key",
            "mac.key",
            "--out-cert",
            "mac.pem",
        ],
    );
    assert!(ok, "{out}");
    common::check_cert(&work, &ca_dir, "mac.pem", "mac.key");
    let signer = cms_signer(&work, &root, "mac.resp.der", "mac.pkiresp.der");
    assert!(
        signer.contains("Issuing CA"),
        "generated by the CA: {signer}"
    );

    // Refusals at the RA, before any key exists or the CA hears of it: another subject than
    // the signer's (SKGD-16), and a secret linked to another subject (SKGD-15).
    let (_, before) = estuary(&["cert", "list"], &ca_dir);
    let (ok, out) = skg(&[
        "--subject",
        "CN=not-mine.example",
        "--out-key",
        "nm.key",
        "--out-cert",
        "nm.pem",
    ]);
    assert!(!ok && out.contains("badIdentity"), "{out}");
    common::add_cmc_secret_for(
        &ra_dir,
        "other-key",
        "ra-kg-protection-secret-02\n",
        "CN=someone-else.example",
    );
    std::fs::write(work.join("other.txt"), "ra-kg-protection-secret-02\n").unwrap();
    let (ok, out) = skg(&[
        "--shroud",
        "shared-secret",
        "--shroud-secret-name",
        "other-key",
        "--shroud-secret-file",
        "other.txt",
        "--out-key",
        "o.key",
        "--out-cert",
        "o.pem",
    ]);
    assert!(!ok && out.contains("(SKGD-15)"), "{out}");
    let (_, after) = estuary(&["cert", "list"], &ca_dir);
    assert_eq!(before.lines().count(), after.lines().count(), "{after}");
    assert!(!work.join("nm.key").exists() && !work.join("o.key").exists());

    // A SubjectAltName the signing certificate does not carry (SKGD-16, and the RA's own
    // vouching): refused before any key exists.
    let (ok, out) = skg(&[
        "--subject",
        "CN=ra-kg.example",
        "--san",
        "dns:ra-kg.example",
        "--san",
        "dns:evil.example",
        "--out-key",
        "evil.key",
        "--out-cert",
        "evil.pem",
    ]);
    assert!(!ok && out.contains("badIdentity"), "{out}");
    let (_, after) = estuary(&["cert", "list"], &ca_dir);
    assert_eq!(before.lines().count(), after.lines().count(), "{after}");

    // The RA recorded what it asked the CA for, and what it refused itself.
    let (ok, out) = estuary(&["audit", "list"], &ra_dir);
    assert!(ok, "{out}");
    assert!(out.contains("RA-generated key; certified"), "{out}");
    assert!(out.contains("enroll.refused"), "{out}");

    // SKGD-37: an RA the CA does not authorize gets a refusal; the client receives the RA's
    // failure (with the CA's reason, CMC-56), no key and no certificate.
    let rogue_dir = tmp.path().join("rogue");
    let rogue = start_ra(
        &ca_dir,
        &ca.addr,
        &rogue_dir,
        "ra",
        "fullcmc",
        "CN=Rogue RA kg",
    );
    drop(rogue);
    enable_ra_keygen(&rogue_dir);
    let rogue = restart(&rogue_dir, "");
    let rogue_url = format!("https://{}", rogue.addr);
    let (ok, out) = client(
        &rogue_url,
        &root,
        &work,
        &[
            "--cert",
            "signer.pem",
            "--key",
            "signer.key",
            "fullcmc",
            "serverkeygen",
            "--out-key",
            "rogue.key",
            "--out-cert",
            "rogue.pem",
        ],
    );
    assert!(!ok && out.contains("CMC-56"), "{out}");
    assert!(!work.join("rogue.key").exists() && !work.join("rogue.pem").exists());
    let (ok, out) = estuary(&["audit", "list"], &rogue_dir);
    assert!(ok && out.contains("CMC-56"), "{out}");

    // A signing certificate revoked at the CA gets no key: the RA asks the CA's OCSP
    // responder (check_revocation), as the CA never sees the client's certificate.
    let (ok, out) = sh("openssl x509 -in signer.pem -noout -serial", &work);
    assert!(ok, "{out}");
    let serial = out.trim().trim_start_matches("serial=").to_owned();
    let (ok, out) = estuary(
        &["cert", "revoke", &serial, "--reason", "keyCompromise"],
        &ca_dir,
    );
    assert!(ok, "{out}");
    let (ok, out) = skg(&["--out-key", "rv.key", "--out-cert", "rv.pem"]);
    assert!(!ok && out.contains("revoked"), "{out}");
    assert!(!work.join("rv.key").exists());
}

/// EST-84..EST-86 through the RA: a /simplereenroll the RA checked reaches the CA as a renewal
/// of the client's certificate (named in the RA's regInfo), not as a new enrollment: on a CA
/// label with manual approval it is issued at once, as a renewal sent to the CA directly is,
/// and a CA whose profile forbids key reuse refuses the same key with 400.
#[test]
fn a_renewal_through_the_ra_is_a_renewal_at_the_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca_dir, ra_dir, work) = (
        tmp.path().join("ca"),
        tmp.path().join("ra"),
        tmp.path().join("work"),
    );
    std::fs::create_dir_all(&work).unwrap();
    let ca = start_ca(&ca_dir);
    let password = ca.password.clone();
    drop(ca);
    let cfg = ca_dir.join("estuary.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("allow_key_reuse = true"), "{text}");
    std::fs::write(
        &cfg,
        text.replace("allow_key_reuse = true", "allow_key_reuse = false"),
    )
    .unwrap();
    let ca = restart(&ca_dir, &password);
    let root = ca_dir.join("ca/root.pem");
    std::fs::write(work.join("demo.pw"), format!("{password}\n")).unwrap();
    // A certificate issued by the CA directly.
    let (ok, out) = client(
        &format!("https://{}", ca.addr),
        &root,
        &work,
        &[
            "--user",
            "demo",
            "--password-file",
            "demo.pw",
            "enroll",
            "--subject",
            "CN=renew-ra.example",
            "--san",
            "dns:renew-ra.example",
            "--out-key",
            "r0.key",
            "--out-cert",
            "r0.pem",
        ],
    );
    assert!(ok, "{out}");
    // The RA forwards to the CA label that holds initial enrollments for the operator.
    let ra = start_ra(
        &ca_dir,
        &ca.addr,
        &ra_dir,
        "ra-manual",
        "fullcmc",
        "CN=Test RA renew",
    );
    let url = format!("https://{}", ra.addr);
    let reenroll = |cert: &str, key: &str, out: &str, same_key: bool| {
        let (k, c) = (format!("{out}.key"), format!("{out}.pem"));
        let mut args = vec!["--cert", cert, "--key", key, "reenroll"];
        if same_key {
            args.push("--same-key");
        } else {
            args.extend(["--out-key", &k]);
        }
        args.extend(["--out-cert", &c]);
        client(&url, &root, &work, &args)
    };
    // Rekey: issued at once (a renewal is not held), for the same names.
    let (ok, out) = reenroll("r0.pem", "r0.key", "r1", false);
    assert!(ok, "{out}");
    assert!(!out.contains("pending"), "{out}");
    common::check_cert(&work, &ca_dir, "r1.pem", "r1.key");
    let (ok, out) = sh(
        "openssl x509 -in r1.pem -noout -subject -ext subjectAltName -nameopt RFC2253",
        &work,
    );
    assert!(
        ok && out.contains("CN=renew-ra.example") && out.contains("DNS:renew-ra.example"),
        "{out}"
    );
    let (ok, held) = estuary(&["request", "list", "--all"], &ca_dir);
    assert!(ok, "{held}");
    assert!(!held.contains("renew-ra.example"), "nothing held: {held}");
    let ra_serial = record_at_ca(&ca_dir, "CN=Test RA renew")["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    let r1_serial = serial_of(&work, "r1.pem");
    let (ok, list) = estuary(&["cert", "list", "--json"], &ca_dir);
    assert!(ok, "{list}");
    let r1 = list
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["serial"] == r1_serial.as_str())
        .unwrap_or_else(|| panic!("r1 not at the CA: {list}"));
    assert_eq!(r1["requester"], format!("cert:{ra_serial}").as_str());
    // The same key again: the CA's profile forbids key reuse (EST-86): 400 with its reason.
    let (ok, out) = reenroll("r1.pem", "r1.key", "r2", true);
    assert!(!ok, "{out}");
    assert!(out.contains("400") && out.contains("noKeyReuse"), "{out}");
    assert!(!work.join("r2.pem").exists());
}
