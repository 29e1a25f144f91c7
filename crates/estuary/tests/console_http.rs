//! Issue 11 item 1, the web console's security at the HTTP level, against the real
//! `estuary serve` (demo setup) with curl over TLS (the browser flows are in `console.rs`):
//! - unauthenticated pages redirect to /login; every answer is `no-store` with a CSP that
//!   loads nothing but our stylesheet and forbids framing;
//! - `estuary admin add` + password + TOTP (the code computed by `openssl mac`, independent of
//!   our RFC 6238 code): the session cookie is `__Host-`, Secure, HttpOnly, SameSite=Strict;
//!   a wrong code or password and a replayed code are refused, and repeated failures are
//!   locked out (429);
//! - CSRF: a POST without the session's token, or from another origin, is refused (403) and
//!   changes nothing;
//! - administrator client certificates: one issued by our CA whose subject matches
//!   `[admin] admin_subjects` logs in without a password; another subject does not; once
//!   revoked, it no longer does;
//! - logout ends the session server-side (the old cookie is refused).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{BIN, client, restart, sh, start_demo};

/// The RFC 6238 code of the base32 `secret` at `unix` time, computed by the openssl CLI.
fn openssl_totp(secret_b32: &str, unix: u64, work: &Path) -> String {
    let key = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .unwrap();
    std::fs::write(work.join("step.bin"), (unix / 30).to_be_bytes()).unwrap();
    let (ok, out) = sh(
        &format!(
            "openssl mac -digest SHA1 -macopt hexkey:{} -in step.bin HMAC",
            hex::encode(&key)
        ),
        work,
    );
    assert!(ok, "{out}");
    let mac = hex::decode(out.trim().to_ascii_lowercase()).unwrap();
    let off = usize::from(mac[19] & 0x0f);
    let bin = u32::from_be_bytes(mac[off..off + 4].try_into().unwrap()) & 0x7fff_ffff;
    format!("{:06}", bin % 1_000_000)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `curl` against the console: (status, headers, body).
struct Curl {
    base: String,
    root: String,
}

impl Curl {
    fn run(&self, args: &str, path: &str, work: &Path) -> (u16, String, String) {
        let (ok, out) = sh(
            &format!(
                "curl -sS --cacert {} -D hdr -o body -w '%{{http_code}}' {args} '{}{path}'; echo; cat hdr; echo '@@BODY@@'; cat body",
                self.root, self.base
            ),
            work,
        );
        assert!(ok, "curl {path}: {out}");
        let (code, rest) = out.split_once('\n').unwrap();
        let (hdr, body) = rest.split_once("@@BODY@@").unwrap();
        (
            code.trim().parse().unwrap(),
            hdr.to_ascii_lowercase(),
            body.to_string(),
        )
    }
}

/// `estuary admin add NAME --json` with `password`: the JSON it printed (name, totp_secret,
/// otpauth).
fn add_admin(data: &Path, work: &Path, name: &str, password: &str) -> serde_json::Value {
    let file = format!("{name}.pw");
    std::fs::write(work.join(&file), format!("{password}\n")).unwrap();
    let (ok, out) = sh(
        &format!(
            "{BIN} admin add {name} --password-file {file} --json --data-dir {}",
            data.display()
        ),
        work,
    );
    assert!(ok, "{out}");
    serde_json::from_str(out.trim()).unwrap()
}

fn csrf_of(body: &str) -> String {
    let i = body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    body[i..i + 64].to_string()
}

#[test]
fn console_sessions_csrf_totp_and_admin_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    assert!(!server.admin.is_empty());
    let c = Curl {
        base: format!("https://{}", server.admin),
        root: data.join("ca/root.pem").display().to_string(),
    };
    let jar = "-b jar -c jar";

    // Unauthenticated: every page redirects to the login form; the headers hold anyway.
    let (code, hdr, _) = c.run("", "/certs", &work);
    assert_eq!(code, 303);
    assert!(hdr.contains("location: /login"), "{hdr}");
    let (code, hdr, body) = c.run("", "/login", &work);
    assert_eq!(code, 200);
    assert!(body.contains("id=\"login\""), "{body}");
    for h in [
        "cache-control: no-store",
        "content-security-policy: default-src 'none'; style-src 'self'",
        "frame-ancestors 'none'",
        "x-frame-options: deny",
        "x-content-type-options: nosniff",
        "content-type: text/html; charset=utf-8",
    ] {
        assert!(hdr.contains(h), "{h} missing: {hdr}");
    }
    // A POST without a session is refused, not redirected.
    assert_eq!(c.run("-d x=1", "/users", &work).0, 403);

    // An administrator: password + TOTP.
    let v = add_admin(&data, &work, "alice", "a long console password");
    let secret = v["totp_secret"].as_str().unwrap().to_string();
    assert!(
        v["otpauth"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    // Too short a password is refused.
    std::fs::write(work.join("short"), "short\n").unwrap();
    let (ok, out) = sh(
        &format!(
            "{BIN} admin add bob --password-file short --data-dir {}",
            data.display()
        ),
        &work,
    );
    assert!(!ok && out.contains("at least 12"), "{out}");

    let login = |user: &str, pw: &str, code: &str| {
        c.run(
            &format!(
                "{jar} --data-urlencode username={user} --data-urlencode 'password={pw}' --data-urlencode totp={code}"
            ),
            "/login",
            &work,
        )
    };
    let t = now();
    let good = openssl_totp(&secret, t, &work);
    assert_eq!(
        good,
        format!(
            "{:06}",
            est_ca::admin::totp_code(
                &data_encoding::BASE32_NOPAD
                    .decode(secret.as_bytes())
                    .unwrap(),
                t / 30
            )
            .unwrap()
        ),
        "openssl and est_ca agree on the code"
    );
    let wrong = format!("{:06}", (good.parse::<u32>().unwrap() + 1) % 1_000_000);
    let (code, hdr, body) = login("alice", "a long console password", &wrong);
    assert_eq!(code, 401);
    assert!(
        body.contains("id=\"error\"") && !hdr.contains("set-cookie"),
        "{body}"
    );
    let (code, _, _) = login("alice", "not the password", &good);
    assert_eq!(code, 401);
    let (code, hdr, _) = login("alice", "a long console password", &good);
    assert_eq!(code, 303, "{hdr}");
    let cookie = hdr
        .lines()
        .find(|l| l.starts_with("set-cookie: __host-estuary-console="))
        .expect("session cookie")
        .to_string();
    for attr in ["path=/", "secure", "httponly", "samesite=strict"] {
        assert!(cookie.contains(attr), "{attr}: {cookie}");
    }
    assert!(!cookie.contains("domain="), "{cookie}");
    // The same code again (a replay, also from another browser) is refused.
    let (code, _, _) = c.run(
        &format!("--data-urlencode username=alice --data-urlencode 'password=a long console password' --data-urlencode totp={good}"),
        "/login",
        &work,
    );
    assert_eq!(code, 401, "a TOTP code is good once");

    // Logged in: the dashboard.
    let (code, _, body) = c.run(jar, "/", &work);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("id=\"whoami\">alice<"), "{body}");
    assert!(
        body.contains("id=\"store-health\" class=\"good\">ok<"),
        "{body}"
    );

    // CSRF: no token, a wrong token, another origin: refused, nothing added.
    let (_, _, page) = c.run(jar, "/users", &work);
    let csrf = csrf_of(&page);
    let add = |extra: &str| {
        c.run(
            &format!(
                "{jar} {extra} --data-urlencode name=mallory --data-urlencode password=mallory-pw-1"
            ),
            "/users",
            &work,
        )
        .0
    };
    assert_eq!(add(""), 403);
    assert_eq!(
        add(&format!("--data-urlencode csrf={}", "0".repeat(64))),
        403
    );
    assert_eq!(
        add(&format!("--data-urlencode csrf={}", &csrf[..10])),
        403,
        "short token"
    );
    assert_eq!(
        add(&format!(
            "--data-urlencode csrf={csrf} -H 'Origin: https://evil.example'"
        )),
        403
    );
    assert_eq!(
        add(&format!(
            "--data-urlencode csrf={csrf} -H 'Sec-Fetch-Site: cross-site'"
        )),
        403
    );
    let (ok, out) = sh(
        &format!("{BIN} user list --json --data-dir {}", data.display()),
        &work,
    );
    assert!(ok && !out.contains("mallory"), "{out}");
    // With the token (and a same-origin Origin) it works.
    let origin = format!("-H 'Origin: {}'", c.base);
    assert_eq!(add(&format!("--data-urlencode csrf={csrf} {origin}")), 303);
    let (ok, out) = sh(
        &format!("{BIN} user list --json --data-dir {}", data.display()),
        &work,
    );
    assert!(ok && out.contains("\"mallory\""), "{out}");

    // Logout ends the session on the server: the saved cookie no longer works.
    let saved = std::fs::read_to_string(work.join("jar")).unwrap();
    assert_eq!(
        c.run(
            &format!("{jar} --data-urlencode csrf={csrf}"),
            "/logout",
            &work
        )
        .0,
        303
    );
    std::fs::write(work.join("old-jar"), saved).unwrap();
    let (code, hdr, _) = c.run("-b old-jar", "/", &work);
    assert_eq!(code, 303, "{hdr}");
    assert!(hdr.contains("location: /login"));

    // Guessing: failures from one address are locked out.
    let mut last = 0;
    for _ in 0..12 {
        last = login("alice", "guess", "000000").0;
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429, "repeated failed logins are locked out");

    // Administrator certificates: CN=ops-* may log in; issue two through EST.
    let est = format!("https://{}", server.addr);
    let root = data.join("ca/root.pem");
    std::fs::write(work.join("demo-pw"), format!("{}\n", server.password)).unwrap();
    for cn in ["ops-admin", "dev-1"] {
        let (ok, out) = client(
            &est,
            &root,
            &work,
            &[
                "--user",
                "demo",
                "--password-file",
                "demo-pw",
                "enroll",
                "--subject",
                &format!("CN={cn}"),
                "--out-key",
                &format!("{cn}.key"),
                "--out-cert",
                &format!("{cn}.pem"),
            ],
        );
        assert!(ok, "{out}");
    }
    drop(server);
    let cfg_path = data.join("estuary.toml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    assert!(cfg.contains("admin_subjects = []"), "{cfg}");
    std::fs::write(
        &cfg_path,
        cfg.replace("admin_subjects = []", "admin_subjects = [\"CN=ops-*\"]"),
    )
    .unwrap();
    let server = restart(&data, "");
    let c = Curl {
        base: format!("https://{}", server.admin),
        root: c.root,
    };
    let (code, hdr, body) = c.run("--cert ops-admin.pem --key ops-admin.key", "/", &work);
    assert_eq!(code, 200, "{hdr}{body}");
    assert!(body.contains("CN=ops-admin (certificate "), "{body}");
    assert!(hdr.contains("set-cookie: __host-estuary-console="), "{hdr}");
    // Its session cookie is good only with the certificate.
    let (code, _, _) = c.run(
        "-c cjar --cert ops-admin.pem --key ops-admin.key",
        "/audit",
        &work,
    );
    assert_eq!(code, 200);
    let (code, _, _) = c.run(
        "-b cjar --cert ops-admin.pem --key ops-admin.key",
        "/audit",
        &work,
    );
    assert_eq!(code, 200);
    let (code, _, _) = c.run("-b cjar", "/audit", &work);
    assert_eq!(code, 303, "a certificate session without the certificate");
    let (code, _, _) = c.run("--cert dev-1.pem --key dev-1.key", "/", &work);
    assert_eq!(code, 303, "a certificate outside admin_subjects is nobody");
    // Revoked: no longer an administrator (a new connection, no session cookie).
    let (ok, out) = sh(
        &format!(
            "set -e; s=$(openssl x509 -in ops-admin.pem -noout -serial | cut -d= -f2); {BIN} cert revoke --data-dir {} $s --reason keyCompromise",
            data.display()
        ),
        &work,
    );
    assert!(ok, "{out}");
    let (code, _, _) = c.run("--cert ops-admin.pem --key ops-admin.key", "/", &work);
    assert_eq!(code, 303, "a revoked administrator certificate is nobody");
    // Nor is an administrator removed with the CLI, also with a session open.
    let t = now();
    let v = add_admin(&data, &work, "carol", "another long password");
    let code = openssl_totp(v["totp_secret"].as_str().unwrap(), t, &work);
    let (status, _, _) = c.run(
        &format!("-c carol --data-urlencode username=carol --data-urlencode 'password=another long password' --data-urlencode totp={code}"),
        "/login",
        &work,
    );
    assert_eq!(status, 303);
    assert_eq!(c.run("-b carol", "/", &work).0, 200);
    let (ok, out) = sh(
        &format!("{BIN} admin remove carol --data-dir {}", data.display()),
        &work,
    );
    assert!(ok, "{out}");
    assert_eq!(
        c.run("-b carol", "/", &work).0,
        303,
        "a removed administrator's session ends"
    );
    // The audit trail holds the console's actions.
    let (ok, out) = sh(
        &format!(
            "{BIN} audit list --json --limit 0 --data-dir {}",
            data.display()
        ),
        &work,
    );
    assert!(ok, "{out}");
    for action in [
        "\"admin.add\"",
        "\"admin.login\"",
        "\"admin.login_failed\"",
        "\"admin.logout\"",
        "\"user.add\"",
    ] {
        assert!(
            out.contains(action),
            "{action} not in the audit trail: {out}"
        );
    }
    assert!(out.contains("\"actor\":\"admin:alice\""), "{out}");
}

/// A SIGHUP reload reaches the console: a label added to the configuration is offered by the
/// token form without a restart, and the session survives the reload.
#[test]
fn console_follows_a_sighup_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    let c = Curl {
        base: format!("https://{}", server.admin),
        root: data.join("ca/root.pem").display().to_string(),
    };
    let v = add_admin(&data, &work, "alice", "a long console password");
    let code = openssl_totp(v["totp_secret"].as_str().unwrap(), now(), &work);
    let (status, _, _) = c.run(
        &format!("-c jar --data-urlencode username=alice --data-urlencode 'password=a long console password' --data-urlencode totp={code}"),
        "/login",
        &work,
    );
    assert_eq!(status, 303);
    let (_, _, page) = c.run("-b jar", "/tokens", &work);
    assert!(!page.contains("value=\"factory\""), "{page}");
    let cfg_path = data.join("estuary.toml");
    let mut cfg = std::fs::read_to_string(&cfg_path).unwrap();
    cfg.push_str("\n[[label]]\nname = \"factory\"\nca = \"default\"\n");
    std::fs::write(&cfg_path, cfg).unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &server.pid().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, _, page) = c.run("-b jar", "/tokens", &work);
        assert_eq!(status, 200, "the session survives the reload");
        if page.contains("value=\"factory\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reloaded label never reached the token form: {page}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
