//! Root CA key rollover (issue 11, EST-66/EST-67): `estuary ca rollover` on the demo, then
//! /cacerts serves the new root with OldWithOld, OldWithNew and NewWithOld (checked with
//! `openssl verify`), a client that trusts only the old root still connects and enrolls, a
//! client that trusts only the new one does too, a certificate issued before the rollover
//! re-enrolls, and the Estuary client bootstraps on the new root's fingerprint. Before it, the
//! server runs and issues with the root key moved out of the key directory (an offline root).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{client, estuary, restart, sh, start_demo};

fn fingerprint(work: &std::path::Path, pem: &str) -> String {
    let (ok, out) = sh(
        &format!("openssl x509 -in {pem} -noout -fingerprint -sha256"),
        work,
    );
    assert!(ok, "{out}");
    out.trim().rsplit('=').next().unwrap().to_owned()
}

#[test]
fn root_rollover_serves_the_links_and_keeps_old_and_new_clients_working() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, work) = (tmp.path().join("d"), tmp.path().join("w"));
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let password = server.password.clone();
    std::fs::write(work.join("pw.txt"), format!("{password}\n")).unwrap();
    std::fs::copy(data.join("ca/root.pem"), work.join("old-root.pem")).unwrap();
    let url = format!("https://{}", server.addr);
    let basic = ["--user", "demo", "--password-file", "pw.txt"];
    let enroll = |url: &str, anchor: &str, name: &str| {
        let mut args = basic.to_vec();
        let subject = format!("CN={name}.example");
        let (k, c) = (format!("{name}.key"), format!("{name}.pem"));
        args.extend([
            "enroll",
            "--subject",
            &subject,
            "--out-key",
            &k,
            "--out-cert",
            &c,
        ]);
        client(url, &work.join(anchor), &work, &args)
    };
    let (ok, out) = enroll(&url, "old-root.pem", "before");
    assert!(ok, "{out}");
    drop(server);

    // The root key offline: the server runs and issues without it.
    let root_key = data.join("keys/root.key.pem");
    let offline = tmp.path().join("offline-root.key.pem");
    std::fs::rename(&root_key, &offline).unwrap();
    let server = restart(&data, &password);
    let url = format!("https://{}", server.addr);
    let (ok, out) = enroll(&url, "old-root.pem", "offline");
    assert!(ok, "issuing with the root key offline: {out}");
    drop(server);
    // A rollover needs it: refused with the reason while it is away, then done with it back.
    let (ok, out) = estuary(&["ca", "rollover"], &data);
    assert!(!ok && out.contains("offline"), "{out}");
    std::fs::rename(&offline, &root_key).unwrap();

    let (ok, out) = estuary(&["ca", "rollover"], &data);
    assert!(ok, "{out}");
    assert!(out.contains("NewWithNew"), "{out}");
    std::fs::copy(data.join("ca/root.pem"), work.join("new-root.pem")).unwrap();
    assert_ne!(
        fingerprint(&work, "old-root.pem"),
        fingerprint(&work, "new-root.pem")
    );
    let (ok, out) = estuary(&["config", "check"], &data);
    assert!(ok, "{out}");
    let (ok, out) = estuary(&["audit", "list", "--json", "--limit", "0"], &data);
    assert!(ok && out.contains("ca.rollover"), "{out}");

    let server = restart(&data, &password);
    let url = format!("https://{}", server.addr);

    // /cacerts (curl, unauthenticated, trusting the old root): the new root, the issuing CAs
    // under it, and the three rollover certificates, each verified by OpenSSL.
    let (ok, out) = sh(
        &format!(
            "set -e
            curl -sf --cacert old-root.pem {url}/.well-known/est/cacerts | openssl base64 -d | openssl pkcs7 -inform DER -print_certs > cacerts.pem
            awk '/BEGIN CERT/{{n++}} {{print > (\"c\" n \".pem\")}}' cacerts.pem
            for f in c*.pem; do
              s=$(openssl x509 -in $f -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
              i=$(openssl x509 -in $f -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//')
              echo \"$f|$s|$i\"
            done"
        ),
        &work,
    );
    assert!(ok, "{out}");
    let lines: Vec<(String, String, String)> = out
        .lines()
        .filter(|l| l.starts_with('c'))
        .map(|l| {
            let p: Vec<&str> = l.split('|').collect();
            (p[0].to_owned(), p[1].to_owned(), p[2].to_owned())
        })
        .collect();
    let old_name = "CN=Estuary Root CA DEMO - NOT FOR PRODUCTION,O=Estuary Demo";
    let new_name = "CN=Estuary Root CA DEMO - NOT FOR PRODUCTION G2,O=Estuary Demo";
    let find = |s: &str, i: &str| {
        lines
            .iter()
            .find(|(_, ls, li)| ls == s && li == i)
            .map(|(f, _, _)| f.clone())
            .unwrap_or_else(|| panic!("no {s} issued by {i} in /cacerts: {lines:?}"))
    };
    let old_with_old = find(old_name, old_name);
    let new_with_new = find(new_name, new_name);
    let new_with_old = find(new_name, old_name);
    let old_with_new = find(old_name, new_name);
    let (ok, out) = sh(
        &format!(
            "set -e
            openssl verify -CAfile old-root.pem {new_with_old}
            openssl verify -CAfile new-root.pem {old_with_new}
            openssl verify -CAfile new-root.pem {new_with_new}
            openssl verify -CAfile old-root.pem {old_with_old}
            cmp <(openssl x509 -in {new_with_new} -outform DER) <(openssl x509 -in new-root.pem -outform DER)"
        ),
        &work,
    );
    assert!(ok, "{out}");

    // A client that trusts only the old root: connects (NewWithOld in the TLS chain) and
    // enrolls; its certificate chains to the old root through NewWithOld.
    let (ok, out) = enroll(&url, "old-root.pem", "old-client");
    assert!(ok, "{out}");
    let (ok, out) = sh(
        &format!(
            "cat {d}/ca/default-issuing.pem {new_with_old} > untrusted.pem
            openssl verify -CAfile old-root.pem -untrusted untrusted.pem old-client.pem",
            d = data.display()
        ),
        &work,
    );
    assert!(ok, "{out}");
    // One that trusts only the new root.
    let (ok, out) = enroll(&url, "new-root.pem", "new-client");
    assert!(ok, "{out}");
    let (ok, out) = sh(
        &format!(
            "openssl verify -CAfile new-root.pem -untrusted {d}/ca/default-issuing.pem new-client.pem before.pem",
            d = data.display()
        ),
        &work,
    );
    assert!(
        ok,
        "the certificate from before the rollover chains to the new root: {out}"
    );
    // The certificate from before the rollover re-enrolls with TLS client authentication.
    let (ok, out) = client(
        &url,
        &work.join("new-root.pem"),
        &work,
        &[
            "--cert",
            "before.pem",
            "--key",
            "before.key",
            "reenroll",
            "--out-key",
            "before2.key",
            "--out-cert",
            "before2.pem",
        ],
    );
    assert!(ok, "{out}");

    // EST-67: the Estuary client takes the rollover certificates and bootstraps on the new
    // root's fingerprint, naming it NewWithNew.
    let fp = fingerprint(&work, "new-root.pem");
    let (ok, out) = sh(
        &format!(
            "{bin} client --url {url} --bootstrap --expect-fingerprint {fp} cacerts --out boot.pem",
            bin = common::BIN
        ),
        &work,
    );
    assert!(ok, "{out}");
    assert!(out.contains("NewWithNew"), "{out}");
    drop(server);

    // The current root's key keeps the id "root": a CA added now is certified by the new
    // root and serves the rollover certificates too; a second rollover finds its key.
    let (ok, out) = estuary(&["init", "--add-ca", "later"], &data);
    assert!(ok, "{out}");
    let (ok, out) = sh(
        &format!(
            "openssl verify -CAfile new-root.pem {d}/ca/later-issuing.pem",
            d = data.display()
        ),
        &work,
    );
    assert!(ok, "{out}");
    let cfg = std::fs::read_to_string(data.join("estuary.toml")).unwrap();
    assert_eq!(cfg.matches("rollover = [").count(), 3, "{cfg}");
    let (ok, out) = estuary(&["ca", "rollover"], &data);
    assert!(ok && out.contains("G3"), "{out}");
    let (ok, out) = estuary(
        &[
            "ca",
            "rollover",
            "--subject",
            "CN=Estuary Root CA DEMO - NOT FOR PRODUCTION G3,O=Estuary Demo",
        ],
        &data,
    );
    assert!(!ok && out.contains("subject of its own"), "{out}");
    let (ok, out) = estuary(&["config", "check"], &data);
    assert!(ok, "{out}");
}
