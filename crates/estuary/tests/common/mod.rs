//! Shared by the binary's integration tests: the real `estuary serve` on a demo data dir.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_estuary");

pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// The admin listener (/metrics, /healthz, /readyz), `127.0.0.1:PORT`; empty when off.
    pub admin: String,
    /// The demo user's password, from the banner.
    pub password: String,
}

impl Server {
    /// The server's process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Restarts `estuary serve` on an existing data dir; `password` is carried over.
pub fn restart(dir: &Path, password: &str) -> Server {
    restart_with_env(dir, password, &[])
}

/// [`restart`] with extra environment variables for the server.
pub fn restart_with_env(dir: &Path, password: &str, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Owned by a Server at once: its Drop kills and reaps the child on any panic below.
    let mut server = Server {
        child,
        addr: String::new(),
        admin: String::new(),
        password: password.to_string(),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("server banner");
        if let Some(a) = admin_addr(&line) {
            server.admin = a;
        }
        if let Some(rest) = line.strip_prefix("Estuary EST server listening on https://") {
            server.addr = rest.trim_end_matches("/.well-known/est/").to_string();
            return server;
        }
    }
}

/// Starts `estuary serve --demo` on a fresh data dir (demo setup) and reads its banner.
pub fn start_demo(dir: &Path) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--demo", "--data-dir"])
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Keep reading after the caller stopped listening: a closed pipe would make the
        // server's next println! fail.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut addr, mut password, mut admin) = (None, None, String::new());
    while addr.is_none() || password.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("server banner");
        if let Some(a) = admin_addr(&line) {
            admin = a;
        }
        if let Some(rest) = line.strip_prefix("Estuary EST server listening on https://") {
            addr = Some(rest.trim_end_matches("/.well-known/est/").to_string());
        }
        if let Some(rest) = line.strip_prefix("demo user: demo    password: ") {
            password = Some(rest.split_whitespace().next().unwrap().to_string());
        }
    }
    Server {
        child,
        addr: addr.unwrap(),
        admin,
        password: password.unwrap(),
    }
}

/// The address on the banner's admin line (printed before the EST line).
fn admin_addr(line: &str) -> Option<String> {
    let rest = line.strip_prefix("Estuary admin listening on https://")?;
    Some(rest.split_whitespace().next()?.to_string())
}

/// Runs a bash script in `dir`; returns success and stdout+stderr.
/// Runs `estuary ARGS --data-dir DATA`: whether it succeeded, and its stdout then stderr.
pub fn estuary(args: &[&str], data: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

pub fn sh(script: &str, dir: &Path) -> (bool, String) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const BC_JARS: [&str; 4] = ["bcprov", "bcpkix", "bctls", "bcutil"];

/// Compiles `interop/bc/<name>.java` against Debian's Bouncy Castle jars into `dir`; returns
/// the classpath to run it with. Missing tools fail the test: no skipping.
pub fn compile_bc(name: &str, dir: &Path) -> String {
    let classes = dir.join("classes");
    std::fs::create_dir_all(&classes).unwrap();
    let mut parts: Vec<String> = BC_JARS
        .iter()
        .map(|j| {
            let p = std::path::PathBuf::from(format!("/usr/share/java/{j}.jar"));
            assert!(
                p.exists(),
                "{} missing: apt-get install libbcprov-java libbcpkix-java libbctls-java libbcutil-java (scripts/test.sh does)",
                p.display()
            );
            p.display().to_string()
        })
        .collect();
    parts.push(classes.display().to_string());
    let cp = parts.join(":");
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../interop/bc/{name}.java"));
    let out = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .args(["-cp", &cp])
        .arg(&source)
        .output()
        .expect("javac (apt-get install default-jdk-headless; scripts/test.sh does)");
    assert!(
        out.status.success(),
        "javac failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cp
}

/// Runs `java -cp CP CLASS ARGS...` (an interop/bc program compiled by [`compile_bc`]),
/// prints what it said, asserts that it exited 0 with its "ALL OK" summary; its stdout.
pub fn run_bc(cp: &str, class: &str, args: &[&str]) -> String {
    run_bc_with_env(cp, class, args, &[])
}

/// [`run_bc`] with extra environment variables for the Java program.
pub fn run_bc_with_env(cp: &str, class: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new("java")
        .args(["-cp", cp, class])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("java (apt-get install default-jdk-headless; scripts/test.sh does)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "Bouncy Castle {class} failed:\n{stdout}"
    );
    assert!(stdout.contains("ALL OK"), "{stdout}");
    stdout
}

/// `estuary client --url URL --trust-anchor ROOT <args>` in `work`: (success, stdout+stderr).
pub fn client(url: &str, root: &Path, work: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("client")
        .args(["--url", url])
        .arg("--trust-anchor")
        .arg(root)
        .args(args)
        .current_dir(work)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `openssl verify` against the root with the issuing CA as intermediate, the certificate's
/// public key equal to the key file's, and the key file mode 0600.
pub fn check_cert(work: &Path, data: &Path, cert: &str, key: &str) {
    use std::os::unix::fs::PermissionsExt;
    let (ok, out) = sh(
        &format!(
            "set -e
            openssl verify -CAfile {root} -untrusted {issuing} {cert}
            openssl x509 -in {cert} -noout -pubkey | cmp - <(openssl pkey -in {key} -pubout)",
            root = data.join("ca/root.pem").display(),
            issuing = data.join("ca/default-issuing.pem").display(),
        ),
        work,
    );
    assert!(ok && out.contains(&format!("{cert}: OK")), "{cert}: {out}");
    let mode = std::fs::metadata(work.join(key))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{key}");
}

/// `estuary cmc-secret add --data-dir DATA --ident IDENT --secret-file -` with `secret` on
/// standard input (as an operator provisions a CMC shared secret).
pub fn add_cmc_secret(data: &Path, ident: &str, secret: &str) {
    add_cmc_secret_for(data, ident, secret, "");
}

/// [`add_cmc_secret`] linked to `subject` (RFC 4514; `""`: none), as `--subject` does.
pub fn add_cmc_secret_for(data: &Path, ident: &str, secret: &str, subject: &str) {
    use std::io::Write;
    let mut add = Command::new(BIN)
        .args(["cmc-secret", "add", "--data-dir"])
        .arg(data)
        .args(["--ident", ident, "--secret-file", "-", "--subject", subject])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(secret.as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success(), "cmc-secret add {ident}");
}
