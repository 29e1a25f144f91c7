//! CA lifecycle by `init` (issue 11): an existing CA (made here with the openssl CLI) imported
//! into a new data dir and served, its root key never seen; refusals of what is not a usable
//! CA; and a new issuing CA added to an existing data dir, served on its own label.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{client, estuary, restart, sh};

/// An openssl-made hierarchy in `work`: root.pem/root.key, int.pem/int.key (a CA), leaf.pem.
fn openssl_hierarchy(work: &std::path::Path) {
    let (ok, out) = sh(
        "set -e
        cat > ca.ext <<'EOF'
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
        cat > leaf.ext <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
EOF
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key -subj '/CN=Imported Root/O=Elsewhere' -days 3650 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out root.pem 2>/dev/null
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key -subj '/CN=Imported Issuing CA/O=Elsewhere' -out int.csr 2>/dev/null
        openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 1825 -extfile ca.ext -out int.pem 2>/dev/null
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -subj '/CN=not-a-ca' -out leaf.csr 2>/dev/null
        openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -CAcreateserial -days 30 -extfile leaf.ext -out leaf.pem 2>/dev/null",
        work,
    );
    assert!(ok, "{out}");
}

fn add_user(data: &std::path::Path, work: &std::path::Path) {
    let (ok, out) = sh(
        &format!(
            "echo user-password | {bin} user add --data-dir {d} alice --password-file -",
            bin = common::BIN,
            d = data.display()
        ),
        work,
    );
    assert!(ok, "{out}");
    std::fs::write(work.join("pw.txt"), "user-password\n").unwrap();
}

#[test]
fn an_existing_ca_is_imported_and_served_without_its_root_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, work) = (tmp.path().join("d"), tmp.path().join("w"));
    std::fs::create_dir_all(&work).unwrap();
    openssl_hierarchy(&work);
    let p = |f: &str| work.join(f).display().to_string();

    // Not usable: a leaf certificate, a key that is not the certificate's, a chain that does
    // not link. Nothing is created.
    for (cert, key, chain, why) in [
        ("leaf.pem", "leaf.key", "root.pem", "not a CA"),
        ("int.pem", "leaf.key", "root.pem", "does not match"),
        ("int.pem", "int.key", "leaf.pem", "does not link"),
    ] {
        let (ok, out) = estuary(
            &[
                "init",
                "--import-ca-cert",
                &p(cert),
                "--import-ca-key",
                &p(key),
                "--import-ca-chain",
                &p(chain),
            ],
            &tmp.path().join(format!("bad-{cert}-{key}-{chain}")),
        );
        assert!(!ok, "{cert}/{key}/{chain}: {out}");
        assert!(out.contains(why), "{why}: {out}");
    }

    let (ok, out) = estuary(
        &[
            "init",
            "--import-ca-cert",
            &p("int.pem"),
            "--import-ca-key",
            &p("int.key"),
            "--import-ca-chain",
            &p("root.pem"),
        ],
        &data,
    );
    assert!(ok, "{out}");
    // The imported key is stored encrypted; no root key exists here.
    let stored = std::fs::read_to_string(data.join("keys/default-issuing.key.pem")).unwrap();
    assert!(stored.contains("ENCRYPTED PRIVATE KEY"), "{stored}");
    assert!(!data.join("keys/root.key.pem").exists());
    add_user(&data, &work);
    let server = restart(&data, "");
    let url = format!("https://{}", server.addr);

    // The TLS certificate and an enrolled certificate chain to the imported root.
    let (ok, out) = client(
        &url,
        &work.join("root.pem"),
        &work,
        &[
            "--user",
            "alice",
            "--password-file",
            "pw.txt",
            "enroll",
            "--subject",
            "CN=dev.example",
            "--out-key",
            "dev.key",
            "--out-cert",
            "dev.pem",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = sh(
        "openssl verify -CAfile root.pem -untrusted int.pem dev.pem && openssl x509 -in dev.pem -noout -issuer -nameopt RFC2253",
        &work,
    );
    assert!(ok && out.contains("CN=Imported Issuing CA"), "{out}");
}

#[test]
fn a_new_issuing_ca_is_added_to_an_existing_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, work) = (tmp.path().join("d"), tmp.path().join("w"));
    std::fs::create_dir_all(&work).unwrap();
    let (ok, out) = estuary(&["init"], &data);
    assert!(ok, "{out}");
    let (ok, out) = estuary(&["init", "--add-ca", "second"], &data);
    assert!(ok, "{out}");
    let (ok, out) = estuary(&["init", "--add-ca", "second"], &data);
    assert!(!ok && out.contains("exists"), "{out}");
    let cfg = data.join("estuary.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        text.starts_with("# Estuary configuration"),
        "the header stays"
    );
    std::fs::write(
        &cfg,
        format!("{text}\n[[label]]\nname = \"second\"\nca = \"second\"\n"),
    )
    .unwrap();
    let (ok, out) = estuary(&["config", "check"], &data);
    assert!(ok && out.contains("2 CA(s)"), "{out}");
    add_user(&data, &work);
    let server = restart(&data, "");
    let url = format!("https://{}", server.addr);
    let (ok, out) = client(
        &url,
        &data.join("ca/root.pem"),
        &work,
        &[
            "--user",
            "alice",
            "--password-file",
            "pw.txt",
            "--label",
            "second",
            "enroll",
            "--subject",
            "CN=second.example",
            "--out-key",
            "s.key",
            "--out-cert",
            "s.pem",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = sh(
        &format!(
            "openssl verify -CAfile {d}/ca/root.pem -untrusted {d}/ca/second-issuing.pem s.pem && openssl x509 -in s.pem -noout -issuer -nameopt RFC2253",
            d = data.display()
        ),
        &work,
    );
    assert!(
        ok && out.contains("CN=Estuary second CA,O=Estuary"),
        "{out}"
    );
}
