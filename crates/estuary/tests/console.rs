//! Issue 11, the admin web console end to end in a real browser: headless Debian Chromium
//! driven over WebDriver (chromedriver, fantoccini) against the admin listener of the real
//! `estuary serve --demo`, the pages and element ids of the console contract.
//!
//! An admin made with `estuary admin add --json` logs in with its password and an RFC 6238
//! TOTP code computed here (a wrong code is refused, a replayed one too, a fresh one after
//! logout works). Then, all through the browser: the dashboard's counters and health; two
//! requests held on the demo's `manual` label (curl, and the real `estuary client enroll`
//! waiting for approval): one approved after reading its CSR (subject, SANs, key), which curl's
//! retry then receives as a PKCS#7 certificate; one rejected with a reason, which the waiting
//! client gets as 403 and the audit page shows; certificate search, detail, PEM download and
//! revocation (keyCompromise), which `openssl ocsp` then reports; a token created and used
//! once by curl; a user added (the CLI lists it, it enrolls within its allowed names) and
//! removed; a CMC secret added (the CLI lists it); the audit page naming the admin for each
//! action; CSRF: curl with the session cookie but without (or with a wrong) `csrf` field gets
//! 403; logout ends the session on the server too.
//!
//! Test artefacts: a PNG screenshot after each step in `<target dir>/console-screenshots/`
//! (`NN-step.png`; `NN-failure.png` where a step failed). Missing Chromium or chromedriver
//! fail the test: `apt-get install chromium chromium-driver` (scripts/test.sh does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{BIN, estuary, sh, start_demo};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

// ---------------------------------------------------------------------------------------------
// RFC 6238 TOTP (HMAC-SHA1, 6 digits, 30 s steps, T0 = 0) and RFC 4648 base32.

/// Decodes RFC 4648 base32 (upper or lower case, padding optional).
fn base32_decode(s: &str) -> Vec<u8> {
    let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.trim_end_matches('=').bytes() {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {s:?}"),
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The 6-digit code of `key` for time step `step` (RFC 4226 dynamic truncation).
fn totp(key: &[u8], step: u64) -> String {
    use openssl::{hash::MessageDigest, pkey::PKey, sign::Signer};
    let key = PKey::hmac(key).unwrap();
    let mut signer = Signer::new(MessageDigest::sha1(), &key).unwrap();
    signer.update(&step.to_be_bytes()).unwrap();
    let mac = signer.sign_to_vec().unwrap();
    let off = usize::from(mac[19] & 0x0f);
    let n = u32::from_be_bytes([mac[off] & 0x7f, mac[off + 1], mac[off + 2], mac[off + 3]]);
    format!("{:06}", n % 1_000_000)
}

fn now_step() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

// ---------------------------------------------------------------------------------------------
// chromedriver and the browser session.

/// A chromedriver on a loopback port, in its own process group: dropping it kills the group
/// (chromedriver and every Chromium process it started), also when the test panics.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let pgid = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &pgid]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ChromeDriver {
    /// Starts chromedriver on a free port (bound and released here, so retried if another
    /// process takes it first) and waits until it accepts connections.
    fn start(log: &Path) -> Self {
        use std::os::unix::process::CommandExt;
        for attempt in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("{CHROMEDRIVER}: {e}: apt-get install chromium chromium-driver")
                });
            let mut driver = ChromeDriver {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
            let until = Instant::now() + Duration::from_secs(30);
            while Instant::now() < until {
                if let Some(status) = driver.child.try_wait().unwrap() {
                    eprintln!("chromedriver on port {port} exited ({status}), attempt {attempt}");
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return driver;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("chromedriver did not start (log: {})", log.display());
    }
}

/// The base64 SHA-256 of the SubjectPublicKeyInfo of the server certificate (the first one in
/// `tls/server-chain.pem`, which the admin listener serves as the EST listener does).
fn server_spki_sha256(data: &Path) -> String {
    let pem = std::fs::read(data.join("tls/server-chain.pem")).unwrap();
    let chain = openssl::x509::X509::stack_from_pem(&pem).unwrap();
    let spki = chain[0].public_key().unwrap().public_key_to_der().unwrap();
    openssl::base64::encode_block(&openssl::sha::sha256(&spki))
}

async fn connect_browser(driver: &ChromeDriver, spki: &str) -> Client {
    let caps = json!({
        "browserName": "chrome",
        // Accept a confirm() a form might ask before a destructive POST.
        "unhandledPromptBehavior": "accept",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                // Root, in a container: no setuid/namespace sandbox.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1280,1600",
                // Trust exactly the server's key (its chain goes up to the demo root, which
                // Chromium does not know). This Chromium honours the SPKI list (chromedriver
                // gives it a --user-data-dir, which the flag requires), so
                // --ignore-certificate-errors is not needed.
                format!("--ignore-certificate-errors-spki-list={spki}"),
            ],
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("WebDriver session with {CHROMIUM}: {e}"))
}

/// The browser, on the console's base URL, with the screenshot directory.
struct Ui {
    c: Client,
    base: String,
    shots: PathBuf,
    n: AtomicU32,
}

impl Ui {
    async fn shot(&self, name: &str) {
        let n = self.n.fetch_add(1, Ordering::SeqCst) + 1;
        let png = self.c.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{n:02}-{name}.png")), png).unwrap();
    }

    /// A failure report: a screenshot, the URL and the page's text.
    async fn report(&self, msg: &str) -> String {
        let n = self.n.load(Ordering::SeqCst) + 1;
        if let Ok(png) = self.c.screenshot().await {
            let _ = std::fs::write(self.shots.join(format!("{n:02}-failure.png")), png);
        }
        let url = self
            .c
            .current_url()
            .await
            .map_or_else(|e| e.to_string(), |u| u.to_string());
        let text = match self.c.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        format!("{msg}\n  at {url}\n  page text:\n{text}")
    }

    async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        if let Err(e) = self.c.goto(&url).await {
            panic!("{}", self.report(&format!("GET {url}: {e}")).await);
        }
    }

    /// The current URL's path and query.
    async fn path(&self) -> String {
        let u = self.c.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    async fn expect_path(&self, want: &str) {
        let got = self.path().await;
        if got != want {
            panic!(
                "{}",
                self.report(&format!("expected {want}, on {got}")).await
            );
        }
    }

    async fn el(&self, css: &str) -> Element {
        match self.c.find(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("{}", self.report(&format!("no element {css:?}: {e}")).await),
        }
    }

    async fn all(&self, css: &str) -> Vec<Element> {
        self.c.find_all(Locator::Css(css)).await.unwrap()
    }

    async fn has(&self, css: &str) -> bool {
        !self.all(css).await.is_empty()
    }

    async fn text(&self, css: &str) -> String {
        self.el(css).await.text().await.unwrap().trim().to_string()
    }

    /// The texts of the `li` items under `css`.
    async fn items(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for li in self.all(&format!("{css} li")).await {
            out.push(li.text().await.unwrap().trim().to_string());
        }
        out
    }

    /// The `li` items under `css` as SAN entries: lowercased (the page writes `DNS:`) and
    /// sorted.
    async fn sans(&self, css: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .items(css)
            .await
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        out.sort();
        out
    }

    async fn attr(&self, css: &str, name: &str) -> String {
        match self.el(css).await.attr(name).await.unwrap() {
            Some(v) => v,
            None => panic!("{}", self.report(&format!("{css} has no {name}")).await),
        }
    }

    /// An integer shown as the text of `css`.
    async fn int(&self, css: &str) -> u64 {
        let t = self.text(css).await;
        match t.parse() {
            Ok(n) => n,
            Err(_) => panic!(
                "{}",
                self.report(&format!("{css} = {t:?}: not an integer")).await
            ),
        }
    }

    /// Types `value` into the input/textarea `css`, or selects it in a `<select>`.
    async fn fill(&self, css: &str, value: &str) {
        let e = self.el(css).await;
        if e.tag_name().await.unwrap().eq_ignore_ascii_case("select") {
            if let Err(err) = e.select_by_value(value).await {
                panic!(
                    "{}",
                    self.report(&format!("{css}: option {value:?}: {err}"))
                        .await
                );
            }
        } else {
            e.clear().await.unwrap();
            if !value.is_empty() {
                e.send_keys(value).await.unwrap();
            }
        }
    }

    /// Clicks `e` (a link or a submit button) and waits until a new page has loaded.
    async fn click_el(&self, e: &Element, what: &str) {
        self.c
            .execute("window.__estuaryOldPage = true;", vec![])
            .await
            .unwrap();
        if let Err(err) = e.click().await {
            panic!("{}", self.report(&format!("click {what}: {err}")).await);
        }
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let done = self
                .c
                .execute(
                    "return window.__estuaryOldPage === undefined && document.readyState === 'complete';",
                    vec![],
                )
                .await;
            if matches!(done, Ok(Value::Bool(true))) {
                return;
            }
            if Instant::now() > until {
                panic!(
                    "{}",
                    self.report(&format!("no new page after clicking {what}"))
                        .await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        let e = self.el(css).await;
        self.click_el(&e, css).await;
    }

    async fn login(&self, user: &str, password: &str, code: &str) {
        self.goto("/login").await;
        self.fill("#username", user).await;
        self.fill("#password", password).await;
        self.fill("#totp", code).await;
        self.click("#login-submit").await;
    }

    /// The browser's cookies for the console as a `Cookie:` header value (for curl).
    async fn cookie_header(&self) -> String {
        let cookies = self.c.get_all_cookies().await.unwrap();
        assert!(!cookies.is_empty(), "no session cookie after login");
        cookies
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value()))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Reloads `path` until the integer at `css` is `want` (the dashboard may show a cached
    /// snapshot of the store), at most 30 s; the last value.
    async fn wait_int(&self, path: &str, css: &str, want: impl Fn(u64) -> bool) -> u64 {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            self.goto(path).await;
            let v = self.int(css).await;
            if want(v) || Instant::now() > until {
                return v;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server side: data dir, curl, CLI.

struct Env {
    data: PathBuf,
    work: PathBuf,
    /// `https://127.0.0.1:PORT` of the EST listener.
    url: String,
    /// `https://127.0.0.1:PORT` of the admin listener (the console).
    admin: String,
    demo_password: String,
    root: PathBuf,
}

impl Env {
    fn est(&self) -> String {
        format!("{}/.well-known/est", self.url)
    }

    fn sh(&self, script: &str) -> String {
        let (ok, out) = sh(script, &self.work);
        assert!(ok, "{script}\n{out}");
        out
    }

    fn curl(&self) -> String {
        format!("curl -sS --cacert {}", self.root.display())
    }

    /// A P-256 (or `rsa`) key and CSR `NAME.b64` (base64 DER) with `subj` (openssl's /A=v
    /// form) and `san` (an -addext value, or empty).
    fn csr(&self, name: &str, subj: &str, san: &str, rsa: bool) {
        let newkey = if rsa {
            "-newkey rsa:2048"
        } else {
            "-newkey ec -pkeyopt ec_paramgen_curve:P-256"
        };
        let addext = if san.is_empty() {
            String::new()
        } else {
            format!("-addext 'subjectAltName={san}'")
        };
        self.sh(&format!(
            "openssl req -new {newkey} -nodes -keyout {name}.key -subj '{subj}' {addext} -outform DER -out {name}.csr 2>/dev/null && openssl base64 -in {name}.csr -out {name}.b64"
        ));
    }

    /// POSTs `NAME.b64` to `/simpleenroll` (`path`: `simpleenroll` or `LABEL/simpleenroll`)
    /// with Basic `user:pass`; the HTTP status; the body is in `NAME.out`.
    fn enroll(&self, name: &str, path: &str, user: &str, pass: &str) -> u16 {
        let out = self.sh(&format!(
            "{} -u '{user}:{pass}' -H 'Content-Type: application/pkcs10' --data-binary @{name}.b64 -o {name}.out -w '%{{http_code}}' {}/{path}",
            self.curl(),
            self.est()
        ));
        out.trim().parse().expect(&out)
    }

    /// The certificates of a 200 answer (`NAME.out`, base64 PKCS#7) as `NAME.pem`; openssl's
    /// `-subject -serial` of the first. Verified up to the demo root through `ca`'s issuing
    /// certificate.
    fn received_cert(&self, name: &str, ca: &str) -> String {
        self.sh(&format!(
            "set -e
            openssl base64 -d -in {name}.out | openssl pkcs7 -inform DER -print_certs -out {name}.pem
            openssl verify -CAfile {root} -untrusted {issuing} {name}.pem
            openssl x509 -in {name}.pem -noout -subject -serial",
            root = self.root.display(),
            issuing = self.data.join(format!("ca/{ca}-issuing.pem")).display(),
        ))
    }

    /// `estuary ARGS --data-dir D`, which must succeed; its standard output.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&self.data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "estuary {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `estuary ARGS --json --data-dir D` as JSON lines.
    fn cli_json(&self, args: &[&str]) -> Vec<Value> {
        let mut a = args.to_vec();
        a.push("--json");
        self.cli(&a)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// The id of the pending request whose subject contains `cn`, waiting for it (the real
    /// client may not have sent it yet) at most 60 s.
    fn pending_id(&self, cn: &str) -> String {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let rows = self.cli_json(&["request", "list"]);
            if let Some(r) = rows.iter().find(|r| {
                r["status"] == "pending" && r["subject"].as_str().unwrap_or("").contains(cn)
            }) {
                return r["id"].as_str().unwrap().to_string();
            }
            assert!(
                Instant::now() < until,
                "no pending request for {cn}: {rows:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// curl on the console with the browser's cookies: `-X METHOD`, extra arguments; the
    /// HTTP status and the `Location` header (empty when none).
    fn console_curl(&self, cookie: &str, extra: &str, path_or_url: &str) -> (u16, String) {
        let url = if path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.admin)
        };
        let cookie = if cookie.is_empty() {
            String::new()
        } else {
            format!("-b '{cookie}'")
        };
        let out = self.sh(&format!(
            "{} {cookie} {extra} -o curl.body -D curl.headers -w '%{{http_code}}' '{url}'",
            self.curl()
        ));
        let headers = std::fs::read_to_string(self.work.join("curl.headers")).unwrap();
        let location = headers
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("location")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        (out.trim().parse().expect(&out), location)
    }
}

/// Every byte but ASCII letters and digits as `%XX` (a query parameter value).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn normalize_serial(s: &str) -> String {
    let s = s.trim().to_ascii_lowercase().replace(':', "");
    let t = s.trim_start_matches('0');
    if t.is_empty() { "0".into() } else { t.into() }
}

/// The screenshot directory: `$CARGO_TARGET_DIR` (else the target dir holding this test
/// binary, `target/debug/deps/console-*`), `console-screenshots/`, emptied of old PNGs.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap();
            exe.ancestors().nth(3).unwrap().to_path_buf()
        });
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "png") {
            std::fs::remove_file(p).unwrap();
        }
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_console_in_headless_chromium() {
    for (p, what) in [(CHROMIUM, "Chromium"), (CHROMEDRIVER, "chromedriver")] {
        assert!(
            Path::new(p).exists(),
            "{what} missing at {p}: apt-get install chromium chromium-driver (scripts/test.sh does)"
        );
    }
    // The TOTP here against RFC 6238 Appendix B (SHA-1, T = 59 s: 94287082, 6 digits) and the
    // base32 decoder against RFC 4648 §10.
    assert_eq!(
        totp(&base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), 59 / 30),
        "287082"
    );
    assert_eq!(base32_decode("MZXW6YTBOI"), b"foobar");
    assert_eq!(base32_decode("mzxw6ytboi======"), b"foobar");

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = start_demo(&data);
    assert!(!server.admin.is_empty(), "the demo runs the admin listener");
    let env = Env {
        url: format!("https://{}", server.addr),
        admin: format!("https://{}", server.admin),
        demo_password: server.password.clone(),
        root: data.join("ca/root.pem"),
        data,
        work,
    };

    let shots = screenshot_dir();
    let driver = ChromeDriver::start(&tmp.path().join("chromedriver.log"));
    let client = connect_browser(&driver, &server_spki_sha256(&env.data)).await;
    let ui = Ui {
        c: client.clone(),
        base: env.admin.clone(),
        shots: shots.clone(),
        n: AtomicU32::new(0),
    };
    let started = Instant::now();
    let outcome = tokio::spawn(async move { flows(&ui, &env).await }).await;
    let _ = client.close().await;
    drop(driver);
    drop(server);
    match outcome {
        Ok(()) => println!(
            "console flows passed in {:.1} s; screenshots in {}",
            started.elapsed().as_secs_f64(),
            shots.display()
        ),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("{e}"),
    }
}

async fn flows(ui: &Ui, env: &Env) {
    // The admin account, from the CLI.
    let admin_pw = "alice-console-password-1";
    let pw_file = env.work.join("alice.pw");
    std::fs::write(&pw_file, format!("{admin_pw}\n")).unwrap();
    let pw_file = pw_file.display().to_string();
    let out = env.cli(&[
        "admin",
        "add",
        "alice",
        "--password-file",
        &pw_file,
        "--json",
    ]);
    let admin: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(admin["name"], "alice", "{admin}");
    let secret = admin["totp_secret"].as_str().expect("totp_secret");
    let key = base32_decode(secret);
    assert!(key.len() >= 10, "TOTP secret of {} bytes", key.len());
    let otpauth = admin["otpauth"].as_str().expect("otpauth");
    assert!(
        otpauth.starts_with("otpauth://totp/") && otpauth.contains(&format!("secret={secret}")),
        "{otpauth}"
    );

    // a. Not logged in: every page sends to /login (303); a wrong TOTP code is refused.
    let (code, location) = env.console_curl("", "", "/");
    assert_eq!(code, 303, "unauthenticated GET /");
    assert!(location.ends_with("/login"), "Location: {location}");
    let (code, location) = env.console_curl("", "", "/certs");
    assert!(
        code == 303 && location.ends_with("/login"),
        "{code} {location}"
    );
    ui.goto("/").await;
    ui.expect_path("/login").await;
    assert!(ui.has("form#login").await);
    ui.shot("login").await;
    let step = now_step();
    let near: Vec<String> = (step - 1..=step + 1).map(|s| totp(&key, s)).collect();
    let mut wrong = (near[1].parse::<u32>().unwrap() + 1) % 1_000_000;
    while near.contains(&format!("{wrong:06}")) {
        wrong = (wrong + 1) % 1_000_000;
    }
    ui.login("alice", admin_pw, &format!("{wrong:06}")).await;
    assert!(!ui.text("#error").await.is_empty(), "an empty #error");
    ui.expect_path("/login").await;
    ui.shot("login-wrong-totp").await;
    ui.goto("/").await;
    ui.expect_path("/login").await;

    // b. Logged in: the dashboard.
    let login_step = now_step();
    let login_code = totp(&key, login_step);
    ui.login("alice", admin_pw, &login_code).await;
    ui.expect_path("/").await;
    assert!(ui.text("#whoami").await.contains("alice"));
    for (id, path) in [
        ("nav-dashboard", "/"),
        ("nav-requests", "/requests"),
        ("nav-certs", "/certs"),
        ("nav-users", "/users"),
        ("nav-tokens", "/tokens"),
        ("nav-keys", "/keys"),
        ("nav-cmc-secrets", "/cmc-secrets"),
        ("nav-audit", "/audit"),
    ] {
        let href = ui.attr(&format!("nav #{id}"), "href").await;
        assert!(
            href == path || href == format!("{}{path}", env.admin),
            "#{id} href {href}"
        );
    }
    for id in [
        "#issued-24h",
        "#issued-1h",
        "#expiring-30d",
        "#valid-count",
        "#revoked-count",
    ] {
        ui.int(id).await;
    }
    assert_eq!(ui.int("#pending-count").await, 0, "nothing held yet");
    assert_eq!(ui.text("#store-health").await, "ok");
    assert_eq!(ui.text("#keys-health").await, "ok");
    assert!(ui.has("#key-pool").await);
    ui.shot("dashboard").await;
    assert!(ui.has("form #logout").await);
    let cookie = ui.cookie_header().await;

    // c/d. Two requests held on the `manual` label: curl's (RSA, approved below) and the real
    // client's (P-256, waiting for a decision; rejected below).
    env.csr(
        "approve",
        "/O=Console Test/CN=console-approve.example",
        "DNS:console-approve.example,DNS:www.console-approve.example",
        true,
    );
    let pw = env.demo_password.clone();
    assert_eq!(
        env.enroll("approve", "manual/simpleenroll", "demo", &pw),
        202
    );
    std::fs::write(env.work.join("demo.pw"), &pw).unwrap();
    let client_log = env.work.join("reject-client.log");
    let mut waiting_client = Command::new(BIN)
        .args(["client", "--url", &env.url, "--trust-anchor"])
        .arg(&env.root)
        .args([
            "--label",
            "manual",
            "--user",
            "demo",
            "--password-file",
            "demo.pw",
            "--max-wait",
            "300",
            "enroll",
            "--subject",
            "CN=console-reject.example",
            "--san",
            "dns:console-reject.example",
            "--out-key",
            "reject.key",
            "--out-cert",
            "reject.pem",
        ])
        .current_dir(&env.work)
        .stdout(File::create(&client_log).unwrap())
        .stderr(File::create(env.work.join("reject-client.err")).unwrap())
        .spawn()
        .unwrap();
    let approve_id = env.pending_id("console-approve.example");
    let reject_id = env.pending_id("console-reject.example");
    let pending = ui.wait_int("/", "#pending-count", |n| n == 2).await;
    assert_eq!(pending, 2, "#pending-count with two held requests");

    ui.click("#nav-requests").await;
    ui.expect_path("/requests").await;
    for id in [&approve_id, &reject_id] {
        let row = format!("#requests tr[data-id=\"{id}\"]");
        assert_eq!(ui.attr(&row, "data-status").await, "pending", "{row}");
    }
    ui.shot("requests").await;

    // c. Read the CSR, approve; curl's retry receives the certificate.
    ui.click(&format!(
        "#requests tr[data-id=\"{approve_id}\"] a.request-link"
    ))
    .await;
    ui.expect_path(&format!("/requests/{approve_id}")).await;
    assert_eq!(ui.text("#request-status").await, "pending");
    let subject = ui.text("#csr-subject").await;
    assert!(
        subject.contains("CN=console-approve.example") && subject.contains("O=Console Test"),
        "#csr-subject {subject}"
    );
    let sans = ui.sans("#csr-sans").await;
    assert_eq!(
        sans,
        [
            "dns:console-approve.example",
            "dns:www.console-approve.example"
        ],
        "#csr-sans"
    );
    let key_text = ui.text("#csr-key").await;
    assert!(
        key_text.contains("RSA") && key_text.contains("2048"),
        "#csr-key {key_text}"
    );
    assert!(ui.text("#requester").await.contains("demo"));
    assert_eq!(ui.text("#label").await, "manual");
    assert!(ui.text("#client-addr").await.contains("127.0.0.1"));
    assert!(!ui.text("#created").await.is_empty());
    assert!(
        ui.text("#csr-pem")
            .await
            .starts_with("-----BEGIN CERTIFICATE REQUEST-----")
    );
    assert!(ui.has("form#reject").await);
    ui.shot("request-detail").await;
    ui.click("#approve-submit").await;
    ui.expect_path(&format!("/requests/{approve_id}")).await;
    assert!(!ui.text("#flash").await.is_empty());
    assert_eq!(ui.text("#request-status").await, "approved");
    assert!(!ui.has("form#approve").await, "approve form after approval");
    ui.shot("request-approved").await;
    assert_eq!(
        env.enroll("approve", "manual/simpleenroll", "demo", &pw),
        200,
        "curl's retry after approval"
    );
    let got = env.received_cert("approve", "default");
    assert!(
        got.contains("CN = console-approve.example") && got.contains("O = Console Test"),
        "{got}"
    );
    let approved_serial = got
        .lines()
        .find_map(|l| l.strip_prefix("serial="))
        .unwrap()
        .to_string();
    ui.goto(&format!("/requests/{approve_id}")).await;
    assert_eq!(ui.text("#request-status").await, "issued");
    ui.goto("/requests").await;
    assert!(
        !ui.has(&format!("#requests tr[data-id=\"{approve_id}\"]"))
            .await,
        "an issued request among the pending ones"
    );
    ui.goto("/requests?all=1").await;
    assert_eq!(
        ui.attr(
            &format!("#requests tr[data-id=\"{approve_id}\"]"),
            "data-status"
        )
        .await,
        "issued"
    );

    // d. Reject the waiting client's request with a reason: its retry gets 403; the audit
    // page shows the decision, the admin and the reason.
    let reason = "duplicate device, see ticket CONSOLE-42";
    ui.goto("/requests").await;
    ui.click(&format!(
        "#requests tr[data-id=\"{reject_id}\"] a.request-link"
    ))
    .await;
    assert!(
        ui.text("#csr-subject")
            .await
            .contains("CN=console-reject.example")
    );
    let sans = ui.sans("#csr-sans").await;
    assert_eq!(sans, ["dns:console-reject.example"], "#csr-sans");
    let key_text = ui.text("#csr-key").await;
    assert!(
        key_text.contains("EC") && (key_text.contains("prime256v1") || key_text.contains("P-256")),
        "#csr-key {key_text}"
    );
    ui.fill("#reject-reason", reason).await;
    ui.click("#reject-submit").await;
    ui.expect_path(&format!("/requests/{reject_id}")).await;
    assert!(!ui.text("#flash").await.is_empty());
    assert_eq!(ui.text("#request-status").await, "rejected");
    assert!(!ui.has("form#reject").await, "reject form after rejection");
    ui.shot("request-rejected").await;
    let until = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = waiting_client.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > until {
            let _ = waiting_client.kill();
            panic!("the client still waits 60 s after the rejection");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let client_err = std::fs::read_to_string(env.work.join("reject-client.err")).unwrap();
    assert!(!status.success(), "rejected, yet: {client_err}");
    assert!(client_err.contains("403"), "{client_err}");
    assert!(
        client_err.contains(reason),
        "the operator's reason reaches the client: {client_err}"
    );
    assert_eq!(ui.text("#decision-reason").await, reason);
    assert!(!env.work.join("reject.pem").exists());

    ui.click("#nav-audit").await;
    ui.expect_path("/audit").await;
    let verify = ui.text("#audit-verify").await;
    assert!(verify.starts_with("chain ok"), "#audit-verify {verify}");
    let mut rows = Vec::new();
    for r in ui.all("#audit tr[data-seq]").await {
        rows.push(r.text().await.unwrap());
    }
    let reject_row = rows
        .iter()
        .find(|r| r.contains("request.reject"))
        .unwrap_or_else(|| panic!("no request.reject in the audit page: {rows:#?}"));
    assert!(
        reject_row.contains(reason) && reject_row.contains("alice"),
        "{reject_row}"
    );
    assert!(rows.iter().any(|r| r.contains(&reject_id)), "{rows:#?}");
    ui.shot("audit-reject").await;

    // e. Certificate search, detail, PEM download, revocation; OCSP says revoked.
    // The subject filter matches the whole RFC 4514 DN (as the request page showed it).
    ui.click("#nav-certs").await;
    ui.fill("#cert-search [name=\"subject\"]", &subject).await;
    ui.click("#search-submit").await;
    assert!(
        ui.path().await.starts_with("/certs?"),
        "{}",
        ui.path().await
    );
    let rows = ui.all("#certs tr[data-serial]").await;
    assert_eq!(rows.len(), 1, "certificates with subject {subject}");
    let serial = rows[0].attr("data-serial").await.unwrap().unwrap();
    assert_eq!(
        normalize_serial(&serial),
        normalize_serial(&approved_serial)
    );
    ui.shot("cert-search").await;
    ui.click("#certs tr[data-serial] a.cert-link").await;
    assert!(
        ui.path().await.starts_with("/certs/"),
        "{}",
        ui.path().await
    );
    assert_eq!(
        normalize_serial(&ui.text("#cert-serial").await),
        normalize_serial(&approved_serial)
    );
    assert_eq!(ui.text("#cert-status").await, "valid");
    assert!(
        ui.text("#cert-subject")
            .await
            .contains("CN=console-approve.example")
    );
    let sans = ui.sans("#cert-sans").await;
    assert_eq!(
        sans,
        [
            "dns:console-approve.example",
            "dns:www.console-approve.example"
        ]
    );
    assert!(ui.text("#cert-requester").await.contains("demo"));
    assert_eq!(ui.text("#cert-ca").await, "default");
    assert!(!ui.text("#cert-not-after").await.is_empty());
    let href = ui.attr("#pem-download", "href").await;
    assert!(href.ends_with(".pem"), "#pem-download {href}");
    let pem_url = if href.starts_with("https://") {
        href.clone()
    } else {
        format!("{}{href}", env.admin)
    };
    ui.shot("cert-detail").await;
    let (code, _) = env.console_curl(&cookie, "", &pem_url);
    assert_eq!(code, 200, "GET {pem_url}");
    let headers = std::fs::read_to_string(env.work.join("curl.headers"))
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("content-type: application/x-pem-file"),
        "{headers}"
    );
    assert!(
        headers.contains("content-disposition: attachment"),
        "{headers}"
    );
    let same = env.sh(
        "openssl x509 -in curl.body -outform DER -out dl.der && openssl x509 -in approve.pem -outform DER | cmp - dl.der && echo same",
    );
    assert!(same.contains("same"), "{same}");
    let (code, location) = env.console_curl("", "", &pem_url);
    assert!(
        code == 303 && location.ends_with("/login"),
        "the PEM without a session: {code} {location}"
    );
    ui.fill("#revoke-reason", "keyCompromise").await;
    ui.click("#revoke-submit").await;
    assert_eq!(ui.text("#cert-status").await, "revoked");
    assert!(!ui.text("#flash").await.is_empty());
    assert!(
        !ui.has("form#revoke").await,
        "revoke form on a revoked cert"
    );
    ui.shot("cert-revoked").await;
    let ocsp = env.sh(&format!(
        "openssl ocsp -issuer {} -cert approve.pem -url {}/ocsp -CAfile {} -resp_text",
        env.data.join("ca/default-issuing.pem").display(),
        env.url,
        env.root.display()
    ));
    assert!(ocsp.contains("Response verify OK"), "{ocsp}");
    assert!(ocsp.contains("approve.pem: revoked"), "{ocsp}");
    assert!(ocsp.contains("Reason: keyCompromise"), "{ocsp}");
    let by_subject = percent_encode(&subject);
    ui.goto(&format!("/certs?subject={by_subject}&status=valid"))
        .await;
    assert!(!ui.has("#certs tr[data-serial]").await, "status=valid");
    ui.goto(&format!("/certs?subject={by_subject}&status=revoked"))
        .await;
    assert_eq!(ui.all("#certs tr[data-serial]").await.len(), 1);
    // By the label it was requested on, and by a part of its subject.
    ui.goto(&format!("/certs?label=manual&subject={by_subject}"))
        .await;
    assert_eq!(
        ui.all("#certs tr[data-serial]").await.len(),
        1,
        "label=manual"
    );
    ui.goto(&format!("/certs?label=demo&subject={by_subject}"))
        .await;
    assert!(!ui.has("#certs tr[data-serial]").await, "label=demo");
    ui.goto("/certs?subject=console-approve").await;
    assert_eq!(
        ui.all("#certs tr[data-serial]").await.len(),
        1,
        "a part of the subject"
    );
    let revoked = ui.wait_int("/", "#revoked-count", |n| n >= 1).await;
    assert!(revoked >= 1, "#revoked-count {revoked}");

    // f. A token: shown once as ID:SECRET, good for exactly one enrollment.
    ui.click("#nav-tokens").await;
    ui.fill("#token-create [name=\"label\"]", "").await;
    ui.fill(
        "#token-create [name=\"subject\"]",
        "CN=console-token.example",
    )
    .await;
    ui.fill("#token-create [name=\"lifetime\"]", "1h").await;
    ui.click("#token-create-submit").await;
    let shown = ui.text("#token-secret").await;
    let (token_id, token_secret) = shown
        .split_once(':')
        .unwrap_or_else(|| panic!("#token-secret {shown:?}"));
    assert!(
        !token_id.is_empty() && token_secret.len() >= 16,
        "#token-secret {shown:?}"
    );
    ui.shot("token-created").await;
    ui.goto("/tokens").await;
    assert!(
        ui.has(&format!("#tokens tr[data-id=\"{token_id}\"]")).await,
        "token {token_id} listed"
    );
    assert!(!ui.has("#token-secret").await, "the secret shown twice");
    assert!(
        ui.has(&format!("#tokens tr[data-id=\"{token_id}\"] .token-revoke"))
            .await
    );
    env.csr("token", "/CN=console-token.example", "", false);
    assert_eq!(
        env.enroll("token", "simpleenroll", token_id, token_secret),
        200
    );
    let got = env.received_cert("token", "default");
    assert!(got.contains("CN = console-token.example"), "{got}");
    assert_eq!(
        env.enroll("token", "simpleenroll", token_id, token_secret),
        401,
        "the token used twice"
    );

    // g. A user added in the browser: the CLI lists it, it enrolls within its names only.
    ui.click("#nav-users").await;
    ui.fill("#user-add [name=\"name\"]", "carol").await;
    ui.fill("#user-add [name=\"password\"]", "carol-password-9")
        .await;
    ui.fill(
        "#user-add [name=\"allowed_names\"]",
        "carol.example *.carol.example",
    )
    .await;
    ui.click("#user-add-submit").await;
    assert!(!ui.text("#flash").await.is_empty());
    assert!(ui.has("#users tr[data-name=\"carol\"]").await);
    ui.shot("user-added").await;
    let users = env.cli_json(&["user", "list"]);
    let carol = users
        .iter()
        .find(|u| u["name"] == "carol")
        .unwrap_or_else(|| panic!("carol not in user list: {users:?}"));
    let mut allowed: Vec<&str> = carol["allowed_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    allowed.sort_unstable();
    assert_eq!(allowed, ["*.carol.example", "carol.example"], "{carol}");
    env.csr("carol", "/CN=www.carol.example", "", false);
    assert_eq!(
        env.enroll("carol", "simpleenroll", "carol", "carol-password-9"),
        200
    );
    env.csr("carol2", "/CN=elsewhere.example", "", false);
    let code = env.enroll("carol2", "simpleenroll", "carol", "carol-password-9");
    assert_ne!(code, 200, "a name outside carol's allowed names");

    // A CMC shared secret added in the browser: shown once, listed by the CLI.
    ui.click("#nav-cmc-secrets").await;
    ui.fill("#cmc-secret-add [name=\"ident\"]", "console-cmc-1")
        .await;
    ui.fill("#cmc-secret-add [name=\"label\"]", "").await;
    ui.fill(
        "#cmc-secret-add [name=\"subject\"]",
        "CN=cmc-console.example",
    )
    .await;
    ui.click("#cmc-secret-add-submit").await;
    let value = ui.text("#cmc-secret-value").await;
    assert!(value.len() >= 16, "#cmc-secret-value {value:?}");
    assert!(ui.text("#cmc-secrets").await.contains("console-cmc-1"));
    ui.shot("cmc-secret-added").await;
    let secrets = env.cli_json(&["cmc-secret", "list"]);
    let s = secrets
        .iter()
        .find(|s| s["ident"] == "console-cmc-1")
        .unwrap_or_else(|| panic!("console-cmc-1 not in cmc-secret list: {secrets:?}"));
    assert_eq!(s["subject"], "CN=cmc-console.example", "{s}");
    ui.goto("/cmc-secrets").await;
    assert!(!ui.has("#cmc-secret-value").await, "the secret shown twice");
    ui.goto("/keys").await;
    assert!(ui.has("#client-keys").await);
    // A key-encryption key generated in the console (shown once), listed by the CLI, removed.
    ui.fill("#kek-add [name=\"owner\"]", "user:carol").await;
    ui.fill("#kek-add [name=\"id\"]", "kek-console").await;
    ui.click("#kek-add-submit").await;
    let kek = ui.text("#kek-value").await;
    assert_eq!(kek.trim().len(), 44, "a base64 AES-256 key: {kek:?}");
    let kek_row = format!(
        "#client-keys tr[data-id=\"{}\"]",
        hex::encode("kek-console")
    );
    assert!(ui.has(&kek_row).await);
    ui.shot("kek-added").await;
    let keks = env.cli_json(&["kek", "list"]);
    assert!(
        keks.iter()
            .any(|k| k["id"] == "kek-console" && k["owner"] == "user:carol"),
        "{keks:?}"
    );
    // A recipient certificate pasted as PEM: registered under its SubjectKeyIdentifier.
    env.sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout recipient.key -subj /CN=recipient.example -days 30 -out recipient.pem 2>/dev/null",
    );
    let pem = std::fs::read_to_string(env.work.join("recipient.pem")).unwrap();
    ui.fill("#recipient-add [name=\"owner\"]", "user:carol")
        .await;
    ui.fill("#recipient-add [name=\"pem\"]", &pem).await;
    ui.click("#recipient-add-submit").await;
    assert!(
        ui.text("#flash")
            .await
            .contains("registered for user:carol"),
        "{}",
        ui.text("main").await
    );
    let recipients = env.cli_json(&["recipient", "list"]);
    assert!(
        recipients.iter().any(|r| r["owner"] == "user:carol"),
        "{recipients:?}"
    );
    ui.click(&format!("{kek_row} .key-remove button")).await;
    assert!(!ui.has(&kek_row).await, "the KEK was removed");
    assert!(
        !env.cli_json(&["kek", "list"])
            .iter()
            .any(|k| k["id"] == "kek-console")
    );

    // h. CSRF: the same form POST by curl with the session cookie is refused without the csrf
    // field or with a wrong one (403), and accepted with the page's.
    ui.goto("/users").await;
    let action = ui.attr("#user-add", "action").await;
    let action = if action.starts_with("https://") {
        action
    } else if action.starts_with('/') {
        format!("{}{action}", env.admin)
    } else {
        format!("{}/users", env.admin)
    };
    let csrf = ui.attr("#user-add input[name=\"csrf\"]", "value").await;
    assert!(csrf.len() >= 16, "csrf {csrf:?}");
    let post = |name: &str, csrf: Option<&str>| {
        let field = csrf.map_or(String::new(), |c| format!("--data-urlencode 'csrf={c}'"));
        env.console_curl(
            &cookie,
            &format!(
                "-X POST -H 'Origin: {}' --data-urlencode 'name={name}' --data-urlencode 'password={name}-password-1' --data-urlencode 'allowed_names=' {field}",
                env.admin
            ),
            &action,
        )
        .0
    };
    assert_eq!(post("mallory", None), 403, "POST without csrf");
    assert_eq!(
        post("mallory", Some("0000000000000000000000000000000000")),
        403,
        "POST with a wrong csrf"
    );
    let code = post("trent", Some(&csrf));
    assert!(
        code == 303 || code == 200,
        "POST with the page's csrf: {code}"
    );
    let names: Vec<Value> = env
        .cli_json(&["user", "list"])
        .into_iter()
        .map(|u| u["name"].clone())
        .collect();
    assert!(!names.contains(&json!("mallory")), "{names:?}");
    assert!(names.contains(&json!("trent")), "{names:?}");
    // Removed again in the browser.
    ui.goto("/users").await;
    let remove = ui.el("#users tr[data-name=\"trent\"] .user-remove").await;
    let button = if remove
        .tag_name()
        .await
        .unwrap()
        .eq_ignore_ascii_case("form")
    {
        remove
            .find(Locator::Css("button, input[type=\"submit\"]"))
            .await
            .unwrap()
    } else {
        remove
    };
    ui.click_el(&button, "trent's .user-remove").await;
    assert!(!ui.has("#users tr[data-name=\"trent\"]").await);
    let names: Vec<Value> = env
        .cli_json(&["user", "list"])
        .into_iter()
        .map(|u| u["name"].clone())
        .collect();
    assert!(!names.contains(&json!("trent")), "{names:?}");
    assert!(names.contains(&json!("carol")), "{names:?}");

    // Every console action is in the audit trail under the admin's name.
    ui.goto("/audit").await;
    let mut rows = Vec::new();
    for r in ui.all("#audit tr[data-seq]").await {
        rows.push(r.text().await.unwrap());
    }
    for action in [
        "request.approve",
        "request.reject",
        "cert.revoke",
        "token.create",
        "user.add",
        "user.remove",
        "cmc_secret.add",
    ] {
        assert!(
            rows.iter()
                .any(|r| r.contains(action) && r.contains("alice")),
            "no {action} by alice: {rows:#?}"
        );
    }
    let verify = ui.text("#audit-verify").await;
    assert!(verify.starts_with("chain ok"), "#audit-verify {verify}");
    ui.shot("audit").await;
    let (ok, out) = estuary(&["audit", "verify"], &env.data);
    assert!(ok, "estuary audit verify: {out}");

    // i. Logout: back on /login, and the old session cookie no longer works.
    ui.click("#logout").await;
    ui.goto("/").await;
    ui.expect_path("/login").await;
    ui.shot("logged-out").await;
    let (code, location) = env.console_curl(&cookie, "", "/");
    assert!(
        code == 303 && location.ends_with("/login"),
        "the old session after logout: {code} {location}"
    );

    // j. The code of the first login is not taken twice; one of a later step is.
    ui.login("alice", admin_pw, &login_code).await;
    assert!(
        !ui.text("#error").await.is_empty(),
        "a replayed TOTP code accepted"
    );
    ui.expect_path("/login").await;
    ui.shot("login-replay-refused").await;
    while now_step() <= login_step {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ui.login("alice", admin_pw, &totp(&key, now_step())).await;
    ui.expect_path("/").await;
    assert!(ui.text("#whoami").await.contains("alice"));
    ui.shot("login-again").await;
}
