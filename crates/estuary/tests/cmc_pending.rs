//! `estuary client fullcmc enroll|poll|get-cert` against the real `estuary serve` on its demo
//! setup: an enrollment on the `manual` label is held (pending with pendInfo, exit status 2,
//! a state file), Query Pending signed with the held key stays pending until
//! `estuary request approve`, then returns the certificate (CMC-64, EST-100); a rejected
//! request fails with the operator's reason; `poll --wait` picks up an approval made while it
//! waits; Get Certificate (CMC-70) returns the issued certificate byte for byte. A getCert
//! signed with a bare key is refused by the server (badMessageCheck).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, check_cert, sh, start_demo};

/// `estuary client --trust-anchor ROOT <args>` in `work`: (exit code, stdout+stderr).
fn client(root: &Path, work: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("client")
        .arg("--trust-anchor")
        .arg(root)
        .args(args)
        .current_dir(work)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn admin(data: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{args:?}: {text}");
    text
}

/// The value after `name: ` on a line of `out`.
fn line_value(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in: {out}"))
        .trim()
        .to_string()
}

fn state(work: &Path, file: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(work.join(file)).unwrap()).unwrap()
}

#[test]
fn fullcmc_pending_query_pending_approve_reject_and_get_cert() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let url = format!("https://{}", server.addr);
    let root = data.join("ca/root.pem");
    std::fs::write(work.join("pw.txt"), format!("{}\n", server.password)).unwrap();
    let basic = ["--user", "demo", "--password-file", "pw.txt"];
    let enroll = |name: &str, extra: &[&str]| {
        let (subject, san) = (format!("CN={name}.example"), format!("dns:{name}.example"));
        let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
        let mut args = vec!["--url", &url, "--label", "manual"];
        args.extend(basic);
        args.extend([
            "fullcmc",
            "enroll",
            "--subject",
            &subject,
            "--san",
            &san,
            "--out-key",
            &key,
            "--out-cert",
            &cert,
        ]);
        args.extend(extra);
        client(&root, &work, &args)
    };
    let poll = |state: &str, extra: &[&str]| {
        let mut args: Vec<&str> = basic.to_vec();
        args.extend(["fullcmc", "poll", "--state", state]);
        args.extend(extra);
        client(&root, &work, &args)
    };

    // Held: pending with pendInfo, exit 2, the key kept, a state file beside --out-cert.
    let (code, out) = enroll("held", &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("pending"), "{out}");
    let token = line_value(&out, "pendToken");
    let pend_time = line_value(&out, "pendTime");
    assert_eq!(token.len(), 16, "{out}");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
    assert!(pend_time.ends_with('Z'), "{pend_time}");
    assert!(!work.join("held.pem").exists());
    let mode = std::fs::metadata(work.join("held.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let st = state(&work, "held.pem.pending.json");
    assert_eq!(st["pend_token"], token.as_str());
    assert_eq!(st["pend_time"], pend_time.as_str());
    assert_eq!(st["label"], "manual");
    assert_eq!(st["url"], url.as_str());
    assert_eq!(
        st["key"].as_str().unwrap(),
        work.join("held.key").to_str().unwrap()
    );
    // The operator sees it under the pendToken.
    let list = admin(&data, &["request", "list"]);
    assert!(
        list.lines().any(|l| l.starts_with(&token)
            && l.contains("pending")
            && l.contains("CN=held.example")),
        "{list}"
    );

    // Query Pending (signed with the held key, URL and label from the state file): still
    // pending, the same pendInfo.
    let (code, out) = poll("held.pem.pending.json", &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("body part 8: pending"), "{out}");
    assert_eq!(line_value(&out, "pendToken"), token);
    assert_eq!(line_value(&out, "pendTime"), pend_time);
    assert!(!work.join("held.pem").exists());
    // Without the enrollment's HTTP credentials the query is not the requester's: a failure
    // (exit 1), and the state stays.
    let (code, out) = client(
        &root,
        &work,
        &["fullcmc", "poll", "--state", "held.pem.pending.json"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("badIdentity"), "{out}");
    assert!(work.join("held.pem.pending.json").exists());

    // Approved: the next query gets the certificate for the held key; the state file goes.
    let approved = admin(&data, &["request", "approve", &token]);
    assert!(approved.contains("approved"), "{approved}");
    let (code, out) = poll("held.pem.pending.json", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("body part 8: success"), "{out}");
    check_cert(&work, &data, "held.pem", "held.key");
    assert!(!work.join("held.pem.pending.json").exists());
    let (ok, subject) = sh(
        "openssl x509 -in held.pem -noout -subject -nameopt RFC2253",
        &work,
    );
    assert!(
        ok && subject.trim() == "subject=CN=held.example",
        "{subject}"
    );

    // Get Certificate by the issued serial, signed with the certificate: the same bytes,
    // whether the issuer is named by a certificate it issued or by its own certificate.
    let (ok, serial) = sh("openssl x509 -in held.pem -noout -serial", &work);
    assert!(ok, "{serial}");
    let serial = serial.trim().to_string();
    let issuing = data.join("ca/default-issuing.pem");
    let get = |out_cert: &str, issuer: &[&str]| {
        let mut args = vec![
            "--url",
            &url,
            "fullcmc",
            "get-cert",
            "--cert",
            "held.pem",
            "--key",
            "held.key",
            "--serial",
            &serial,
            "--out-cert",
            out_cert,
        ];
        args.extend(issuer);
        client(&root, &work, &args)
    };
    let (code, out) = get("got.pem", &["--issuer-of", "held.pem"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("body part 9: success"), "{out}");
    assert_eq!(
        std::fs::read(work.join("got.pem")).unwrap(),
        std::fs::read(work.join("held.pem")).unwrap()
    );
    let (code, out) = get("got-by-ca.pem", &["--issuer", issuing.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read(work.join("got-by-ca.pem")).unwrap(),
        std::fs::read(work.join("held.pem")).unwrap()
    );
    // The root issued no such serial.
    let (code, out) = get("none.pem", &["--issuer", root.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("badCertId"), "{out}");
    assert!(!work.join("none.pem").exists());

    // Rejected by the operator: the query fails with the reason, nothing is written.
    let (code, out) = enroll("refused", &["--state", "refused.json"]);
    assert_eq!(code, 2, "{out}");
    let refused = line_value(&out, "pendToken");
    assert_ne!(refused, token);
    assert!(work.join("refused.json").exists());
    admin(
        &data,
        &["request", "reject", &refused, "--reason", "unknown device"],
    );
    let (code, out) = poll("refused.json", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("failed (badRequest)"), "{out}");
    assert!(
        out.contains("rejected by the CA operator: unknown device"),
        "the operator's reason reaches the client: {out}"
    );
    assert!(!work.join("refused.pem").exists());

    // poll --wait: approved while it waits (pendTime is 5 s after the request on `manual`).
    let (code, out) = enroll("waited", &[]);
    assert_eq!(code, 2, "{out}");
    let waited = line_value(&out, "pendToken");
    let child = Command::new(BIN)
        .arg("client")
        .arg("--trust-anchor")
        .arg(&root)
        .args(basic)
        .args([
            "fullcmc",
            "poll",
            "--state",
            "waited.pem.pending.json",
            "--wait",
            "60",
        ])
        .current_dir(&work)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    admin(&data, &["request", "approve", &waited]);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("still pending; asking again"), "{text}");
    check_cert(&work, &data, "waited.pem", "waited.key");

    // --wait that runs out before the next allowed query: still pending, exit 2.
    let (code, out) = enroll("late", &[]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = poll("late.pem.pending.json", &["--wait", "1"]);
    assert_eq!(code, 2, "{out}");
    assert!(work.join("late.pem.pending.json").exists());
}

/// The server's answer to a getCert signed with a bare key (sid = a key identifier, no
/// certificate, no held request): refused as badMessageCheck, so `get-cert` signs with a
/// certificate.
#[test]
fn get_cert_signed_with_a_bare_key_is_refused() {
    use est_cmc::client::{RequestOptions, RequestSigner, build_get_cert, sign_request};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let key = openssl::pkey::PKey::from_ec_key(
        openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let key_id = openssl::sha::sha1(&key.public_key_to_der().unwrap()).to_vec();
    let issuing =
        openssl::x509::X509::from_pem(&std::fs::read(data.join("ca/default-issuing.pem")).unwrap())
            .unwrap();
    let issuer: x509_cert::name::Name =
        der::Decode::from_der(&issuing.subject_name().to_der().unwrap()).unwrap();
    let opts = RequestOptions::random().unwrap();
    let serial = x509_cert::serial_number::SerialNumber::new(&[1, 2, 3]).unwrap();
    let pki = build_get_cert(&opts, &issuer, &serial).unwrap();
    let req = sign_request(
        &pki,
        &RequestSigner::RequestKey {
            key: &key,
            key_id: &key_id,
        },
    )
    .unwrap();
    std::fs::write(
        work.join("req.b64"),
        openssl::base64::encode_block(&req).into_bytes(),
    )
    .unwrap();
    let (ok, out) = sh(
        &format!(
            "curl -sS -o resp.b64 -w '%{{http_code}}' --cacert {root} -u 'demo:{pw}' \
             -H 'Content-Type: application/pkcs7-mime; smime-type=CMC-request' \
             --data-binary @req.b64 https://{addr}/.well-known/est/fullcmc",
            root = data.join("ca/root.pem").display(),
            pw = server.password,
            addr = server.addr,
        ),
        &work,
    );
    assert!(ok && out.trim() == "400", "{out}");
    let b64: String = std::fs::read_to_string(work.join("resp.b64"))
        .unwrap()
        .split_whitespace()
        .collect();
    let der = openssl::base64::decode_block(&b64).unwrap();
    let mut store = openssl::x509::store::X509StoreBuilder::new().unwrap();
    for c in openssl::x509::X509::stack_from_pem(&std::fs::read(data.join("ca/root.pem")).unwrap())
        .unwrap()
    {
        store.add_cert(c).unwrap();
    }
    let v = est_cmc::client::verify_response(&der, &store.build()).unwrap();
    let s = &v.summary.statuses[0];
    assert_eq!(s.status, est_cmc::CmcStatus::FAILED);
    let text = est_cmc::describe_status(s);
    assert!(text.contains("badMessageCheck"), "{text}");
}
