//! `estuary`: the EST server, CA administration and client, in one binary. This is the only
//! place that picks backends and wires the crates together.
pub(crate) use est_ca::fmt_time;

mod bench;
mod cmd_admin;
mod cmd_audit;
mod cmd_client;
mod cmd_cmc_keygen;
mod cmd_cmc_secret;
mod cmd_crl;
mod cmd_fullcmc;
mod cmd_ocsp;
mod cmd_ra;
mod cmd_request;
mod cmd_rollover;
mod cmd_token;
mod config;
mod perms;
mod ra;
mod setup;
mod tls_renew;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::{Parser, Subcommand};
use est_ca::{CertFilter, CertStatus, Store};
use zeroize::Zeroizing;

use crate::config::{AnyError, Config};

#[derive(Parser)]
#[command(
    name = "estuary",
    version,
    about = "Estuary: EST (RFC 7030) certificate authority, server and client"
)]
struct Cli {
    /// Log format on stderr: `text` (ANSI colours only on a terminal) or `json` (one JSON
    /// object per line). The filter is ESTUARY_LOG (e.g. `warn`, `est_server=debug`).
    #[arg(long, global = true, env = "ESTUARY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Clone)]
pub(crate) struct DataDir {
    /// Data directory holding estuary.toml, keys, certificates and the database.
    #[arg(long, env = "ESTUARY_DATA_DIR", default_value = "./estuary-data")]
    pub(crate) data_dir: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the EST server. With --demo, an empty data dir first gets a DEMO setup, printed.
    Serve {
        #[command(flatten)]
        dir: DataDir,
        /// Listen address (overrides the config file).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Admin listener address for /metrics, /healthz and /readyz (overrides `[admin]`;
        /// with `--listen` on port 0 it defaults to an ephemeral port too).
        #[arg(long)]
        admin_listen: Option<std::net::SocketAddr>,
        /// On a data dir without estuary.toml, create a DEMO setup (demo CA, users with printed
        /// passwords) first. Without it, a missing configuration is an error, so a mistyped
        /// --data-dir never silently starts a new CA.
        #[arg(long)]
        demo: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout, e.g.
    /// `estuary completions bash > /etc/bash_completion.d/estuary`.
    Completions { shell: clap_complete::Shell },
    /// Write man pages (estuary.1 and one per subcommand, estuary-serve.1, ...) to a directory.
    Man {
        /// Directory to write the pages to (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a configuration without starting: syntax, semantics and the files it names.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Create a production-shaped data dir (CA hierarchy, TLS certificate, config) without starting.
    Init {
        #[command(flatten)]
        dir: DataDir,
        /// Organization name in the CA and server certificates.
        #[arg(long, default_value = "Estuary")]
        org: String,
        /// Host names for the TLS server certificate (repeatable).
        #[arg(long = "hostname", default_value = "localhost")]
        hostnames: Vec<String>,
        /// IP addresses for the TLS server certificate (repeatable).
        #[arg(long = "ip", default_values = ["127.0.0.1", "::1"])]
        ips: Vec<std::net::IpAddr>,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: std::net::SocketAddr,
        /// Create a registration authority instead of a CA: no CA and no issuing key; an RA
        /// key, its certificate request (ra/ra.csr.pem, to be certified by the upstream CA,
        /// e.g. with `estuary ca issue-ra`), and a label that forwards to --upstream.
        #[arg(long, requires_all = ["upstream", "upstream_ca"])]
        ra: bool,
        /// With --ra: the upstream CA's EST base URL, https://host[:port].
        #[arg(long)]
        upstream: Option<String>,
        /// With --ra: the upstream CA's label (absent: its label-less path).
        #[arg(long)]
        upstream_label: Option<String>,
        /// With --ra: PEM file of the upstream CA's certificates (issuing CA first), e.g. from
        /// `estuary ca cert` on the CA or `estuary client bootstrap`.
        #[arg(long)]
        upstream_ca: Option<PathBuf>,
        /// With --ra: how to reach the upstream: "fullcmc" (RA-signed CMC) or "est" (plain
        /// /simpleenroll with the RA's TLS client certificate).
        #[arg(long, default_value = "fullcmc", value_parser = ["fullcmc", "est"])]
        upstream_protocol: String,
        /// With --ra: the RA certificate's subject (RFC 4514).
        #[arg(long, default_value = "CN=Estuary RA")]
        subject: String,
        /// Serve an existing CA instead of creating a hierarchy: its certificate (PEM). With
        /// --import-ca-key and, unless it is a root, --import-ca-chain. Its root's key is not
        /// needed.
        #[arg(long, requires = "import_ca_key", conflicts_with_all = ["ra", "add_ca"])]
        import_ca_cert: Option<PathBuf>,
        /// The imported CA's private key (PEM, unencrypted; stored encrypted in keys/).
        #[arg(long, requires = "import_ca_cert")]
        import_ca_key: Option<PathBuf>,
        /// The imported CA's chain up to its self-signed root (PEM, nearest first).
        #[arg(long, requires = "import_ca_cert")]
        import_ca_chain: Option<PathBuf>,
        /// On an existing data dir: add a new issuing CA under the root (the root's key must be
        /// in the key directory for this) as `[[ca]] NAME`; point labels at it with
        /// `ca = "NAME"` and restart.
        #[arg(long, conflicts_with = "ra")]
        add_ca: Option<String>,
        /// With --add-ca: its subject (RFC 4514); default "CN=Estuary NAME CA,O=<root's O>".
        #[arg(long, requires = "add_ca")]
        ca_subject: Option<String>,
        /// With --add-ca: its lifetime in days.
        #[arg(long, default_value_t = 1825)]
        ca_days: u32,
    },
    /// Registration authority (RA mode): the state of its upstream CAs.
    Ra {
        #[command(subcommand)]
        cmd: cmd_ra::RaCmd,
    },
    /// Manage HTTP users (Basic authentication).
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Symmetric keys clients registered to receive server-generated keys encrypted (kekri,
    /// named by the DecryptKeyIdentifier of a /serverkeygen request). Sealed at rest.
    Kek {
        #[command(subcommand)]
        cmd: KekCmd,
    },
    /// Certificates clients registered to receive server-generated keys encrypted (ktri/kari,
    /// named by their SubjectKeyIdentifier = the AsymmetricDecryptKeyIdentifier). Sealed at rest.
    Recipient {
        #[command(subcommand)]
        cmd: RecipientCmd,
    },
    /// CMC shared secrets (identity proof, POP linking, AuthenticatedData), named by the
    /// Identification value clients send. Sealed at rest; never shown.
    CmcSecret {
        #[command(subcommand)]
        cmd: cmd_cmc_secret::CmcSecretCmd,
    },
    /// Certification requests held for manual approval.
    Request {
        #[command(subcommand)]
        cmd: cmd_request::RequestCmd,
    },
    /// One-time enrollment tokens.
    Token {
        #[command(subcommand)]
        cmd: cmd_token::TokenCmd,
    },
    /// CA information.
    Ca {
        #[command(subcommand)]
        cmd: CaCmd,
    },
    /// Inspect and revoke issued certificates.
    Cert {
        #[command(subcommand)]
        cmd: CertCmd,
    },
    /// Administrators of the web console on the admin listener (password + TOTP).
    Admin {
        #[command(subcommand)]
        cmd: cmd_admin::AdminCmd,
    },
    /// The hash-chained audit trail: verify it, export it as JSON lines, list it.
    Audit {
        #[command(subcommand)]
        cmd: cmd_audit::AuditCmd,
    },
    /// Write the current CRL (DER, RFC 5280 §5) of a CA to a file; the server serves the same
    /// at /crl/<ca>.crl.
    Crl {
        #[command(flatten)]
        dir: DataDir,
        /// CA name (a `[[ca]]`); default: the CA of the label-less path.
        #[arg(long)]
        ca: Option<String>,
        /// Output file, `-` for standard output.
        #[arg(long)]
        out: PathBuf,
    },
    /// EST client: talk to any EST server.
    Client(Box<cmd_client::ClientArgs>),
    /// Load generator and store prefill for benchmarks (see docs/performance.md).
    Bench(bench::BenchArgs),
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Load estuary.toml as `serve` would (every setting and named file, the CA certificates
    /// and keys) and report the first problem, or OK.
    Check {
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user; the password is read from a file (or `-` for stdin) and stored argon2id-hashed.
    Add {
        #[command(flatten)]
        dir: DataDir,
        name: String,
        #[arg(long)]
        password_file: PathBuf,
        /// Name pattern the user may request (CN and SAN values; `*` wildcard; repeatable).
        /// Without any, the user may request any name.
        #[arg(long = "allow-name")]
        allow_names: Vec<String>,
    },
    /// List users.
    List {
        #[command(flatten)]
        dir: DataDir,
        /// One JSON object per user (JSON lines).
        #[arg(long)]
        json: bool,
    },
    /// Remove a user.
    Remove {
        #[command(flatten)]
        dir: DataDir,
        name: String,
    },
}

/// Whose key it is: an HTTP user, or the subject of a certificate-authenticated client.
#[derive(clap::Args, Clone)]
#[group(required = true, multiple = false)]
struct Owner {
    /// The HTTP user (Basic/Digest) the key belongs to.
    #[arg(long)]
    user: Option<String>,
    /// The certificate subject (RFC 4514) of a client that authenticates with a TLS certificate.
    #[arg(long)]
    subject: Option<String>,
}

impl Owner {
    fn name(&self) -> Result<String, AnyError> {
        match (&self.user, &self.subject) {
            (Some(u), _) => Ok(format!("user:{u}")),
            (_, Some(s)) => {
                let n = <x509_cert::name::Name as std::str::FromStr>::from_str(s)
                    .map_err(|e| format!("--subject {s:?}: {e}"))?;
                Ok(format!("subject:{n}"))
            }
            _ => Err("give --user or --subject".into()),
        }
    }
}

#[derive(Subcommand)]
enum KekCmd {
    /// Register a key: 16, 24 or 32 bytes (AES-128/192/256 key wrap), raw or hex, from a file.
    Add {
        #[command(flatten)]
        dir: DataDir,
        #[command(flatten)]
        owner: Owner,
        /// The identifier the client puts in DecryptKeyIdentifier (text).
        #[arg(long)]
        id: String,
        #[arg(long)]
        key_file: PathBuf,
    },
    /// List registered keys (never their values).
    List {
        #[command(flatten)]
        dir: DataDir,
        /// One JSON object per key (JSON lines).
        #[arg(long)]
        json: bool,
    },
    Remove {
        #[command(flatten)]
        dir: DataDir,
        #[command(flatten)]
        owner: Owner,
        #[arg(long)]
        id: String,
    },
}

#[derive(Subcommand)]
enum RecipientCmd {
    /// Register a certificate (PEM) whose key may receive generated keys: RSA with
    /// keyEncipherment or EC P-256/P-384 with keyAgreement (or no KeyUsage); it needs a
    /// SubjectKeyIdentifier, which is printed.
    Add {
        #[command(flatten)]
        dir: DataDir,
        #[command(flatten)]
        owner: Owner,
        #[arg(long)]
        cert: PathBuf,
    },
    /// List registered recipient certificates by owner and SubjectKeyIdentifier.
    List {
        #[command(flatten)]
        dir: DataDir,
        /// One JSON object per recipient (JSON lines).
        #[arg(long)]
        json: bool,
    },
    Remove {
        #[command(flatten)]
        dir: DataDir,
        #[command(flatten)]
        owner: Owner,
        /// SubjectKeyIdentifier, hex.
        #[arg(long)]
        ski: String,
    },
}

#[derive(Subcommand)]
enum CaCmd {
    /// Print the trust anchor (root CA certificate, PEM) of a label.
    Cert {
        #[command(flatten)]
        dir: DataDir,
        /// CA label; the label-less path when omitted.
        #[arg(long, default_value = "")]
        label: String,
        /// Print the CA's CMC encryption certificate instead (clients encrypt /fullcmc
        /// requests to it, RFC 5272 §5).
        #[arg(long)]
        encryption: bool,
    },
    /// Issue a delegated OCSP responder certificate for a CA (RFC 6960 §4.2.2.2): a new key in
    /// the key backend, a certificate with id-kp-OCSPSigning and id-pkix-ocsp-nocheck in
    /// ca/<CA>-ocsp-responder.pem, and the estuary.toml lines that make the server sign OCSP
    /// answers with it. Run again before it expires (nocheck: keep it short-lived).
    OcspResponder {
        #[command(flatten)]
        dir: DataDir,
        /// CA name (a `[[ca]]`).
        #[arg(long, default_value = "default")]
        ca: String,
        /// Lifetime of the certificate in days.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Roll the root CA key over (RFC 4210 §4.4, EST-66): a new root key and self-signed root
    /// replace ca/root.pem; the old root, OldWithNew and NewWithOld are served in /cacerts;
    /// every issuing CA is certified again under the new root (same name and key); the TLS
    /// chain carries NewWithOld. Needs the old root's key once; restart the server after.
    Rollover {
        #[command(flatten)]
        dir: DataDir,
        /// Key id of the current root's key in the key backend (`estuary init` names it "root").
        #[arg(long, default_value = "root")]
        root_key: String,
        /// Subject of the new root (RFC 4514); default: the old CN with " G2" (or the next
        /// generation number).
        #[arg(long)]
        subject: Option<String>,
        /// Lifetime of the new root in days.
        #[arg(long, default_value_t = 7300)]
        days: u32,
    },
    /// Certify a registration authority's request (from `estuary init --ra`): its subject and
    /// SubjectAltName, with id-kp-cmcRA beside the TLS server and client EKUs; recorded, and
    /// written with the CA chain. Authorize it on a label with `cmc_ras` (CMC-56).
    IssueRa {
        #[command(flatten)]
        dir: DataDir,
        /// CA name (a `[[ca]]`).
        #[arg(long, default_value = "default")]
        ca: String,
        /// The RA's PKCS#10 request (PEM or DER).
        #[arg(long)]
        csr: PathBuf,
        /// Where to write the certificate and its chain (PEM).
        #[arg(long)]
        out: PathBuf,
        /// Lifetime in days (at most the CA's own).
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
}

#[derive(Subcommand)]
enum CertCmd {
    /// List issued certificates, newest first.
    List {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        ca: Option<String>,
        /// Only certificates requested by this requester (e.g. `user:demo`).
        #[arg(long)]
        requester: Option<String>,
        /// Only `valid` or only `revoked` certificates.
        #[arg(long)]
        status: Option<String>,
        /// Only this subject (RFC 4514, exactly as `cert list` prints it).
        #[arg(long)]
        subject: Option<String>,
        /// Only certificates requested on this EST label (`""`: the label-less path;
        /// certificates issued before this was recorded have `""` too).
        #[arg(long)]
        label: Option<String>,
        /// Only certificates with this SubjectAltName (`dns:NAME`, `ip:ADDR`, `email:ADDR`,
        /// `uri:URI`; DNS names compared case-insensitively). Not indexed: the listing scans.
        #[arg(long)]
        san: Option<String>,
        /// Only valid certificates that expire within this time from now (e.g. `30d`, `12h`).
        #[arg(long)]
        expiring: Option<String>,
        /// One JSON object per certificate (JSON lines), with its SubjectAltNames.
        #[arg(long)]
        json: bool,
        /// How many certificates to show at most (0: all).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Skip this many matching certificates first.
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
    /// Show one certificate (details and PEM) by serial number (hex).
    Show {
        #[command(flatten)]
        dir: DataDir,
        serial: String,
    },
    /// Revoke a certificate by serial number (hex, as `openssl x509 -serial` prints it); it is
    /// on its CA's next CRL, which a running server picks up within a second, and OCSP answers
    /// say revoked at once.
    Revoke {
        #[command(flatten)]
        dir: DataDir,
        serial: String,
        /// CRLReason (RFC 5280 §5.3.1): unspecified, keyCompromise, cACompromise,
        /// affiliationChanged, superseded, cessationOfOperation, certificateHold,
        /// privilegeWithdrawn, aACompromise (any case), or the numeric code.
        #[arg(long)]
        reason: String,
        /// When the key was (suspected to be) compromised or the certificate otherwise became
        /// invalid, RFC 3339 (`2025-01-31T12:00:00Z`); goes into the CRL entry's
        /// invalidityDate.
        #[arg(long)]
        invalidity_date: Option<String>,
    },
}

/// mimalloc instead of glibc's malloc: request handling allocates many small, short-lived
/// buffers across threads, and glibc's malloc/free were ~10% of the server's CPU per enrollment
/// (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's settings for `estuary serve`, and the variable that marks them applied.
///
/// mimalloc 3's defaults keep freed memory for 1 s (arenas: 10 s) before returning it to the
/// OS and commit whole arenas eagerly: under the mixed soak load (issue 12 item 7) that held the
/// server at a steady ~145 MiB, a plateau, not a leak, but more than a small box should spend.
/// Purging after 10 ms (arenas too) and committing on demand brought the same load down by
/// half at no measurable CPU cost (docs/performance.md, "Memory").
const ALLOCATOR_ENV: [(&str, &str); 3] = [
    ("MIMALLOC_PURGE_DELAY", "10"),
    ("MIMALLOC_ARENA_PURGE_MULT", "1"),
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
];
const ALLOCATOR_TUNED: &str = "ESTUARY_ALLOCATOR_TUNED";

/// mimalloc reads its options from the environment when it initializes, before `main`, and its
/// first arena is reserved then: so `serve` re-executes itself once with them set (same
/// process id, same arguments; `exec` replaces the image). An operator's own `MIMALLOC_*`
/// variables win. Should `exec` fail, the server runs on with mimalloc's defaults.
fn apply_allocator_settings() {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let argv0 = args.next();
    let rest: Vec<std::ffi::OsString> = args.collect();
    // The subcommand: the first argument that is not a global option (`--log-format X`).
    let mut words = rest.iter();
    let mut subcommand = None;
    while let Some(a) = words.next() {
        if a == "--log-format" {
            words.next();
        } else if !a.to_str().is_some_and(|s| s.starts_with('-')) {
            subcommand = Some(a);
            break;
        }
    }
    if subcommand.is_none_or(|c| c != "serve") || std::env::var_os(ALLOCATOR_TUNED).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = std::process::Command::new(exe);
    if let Some(a0) = argv0 {
        cmd.arg0(a0);
    }
    cmd.args(rest).env(ALLOCATOR_TUNED, "1");
    for (name, value) in ALLOCATOR_ENV {
        if std::env::var_os(name).is_none() {
            cmd.env(name, value);
        }
    }
    let error = cmd.exec();
    eprintln!(
        "warning: could not apply the allocator settings ({error}); mimalloc's defaults apply"
    );
}

fn main() -> std::process::ExitCode {
    apply_allocator_settings();
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("ESTUARY_LOG")
        .unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.cmd)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `client fullcmc enroll|poll`: held for approval, not failed.
        Err(e) if e.is::<cmd_fullcmc::Pending>() => {
            eprintln!("{e}");
            std::process::ExitCode::from(cmd_fullcmc::EXIT_PENDING)
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cmd: Cmd) -> Result<(), AnyError> {
    match cmd {
        Cmd::Serve {
            dir,
            listen,
            admin_listen,
            demo,
        } => serve(&dir.data_dir, listen, admin_listen, demo).await,
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Into memory first: the generator panics on a write error (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "estuary", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script)?;
            Ok(())
        }
        Cmd::Man { out } => {
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::generate_to(cmd, &out).map_err(|e| format!("{}: {e}", out.display()))?;
            println!("man pages written to {}", out.display());
            Ok(())
        }
        Cmd::Config {
            cmd: ConfigCmd::Check { dir },
        } => {
            let cfg = Config::load(&dir.data_dir)?;
            // The CA certificates and keys load as `serve` would load them.
            let keys = cfg.key_backend(&dir.data_dir)?;
            let domains = cfg.domains(&dir.data_dir, &keys, None)?;
            cfg.ocsp_responders(&dir.data_dir, &keys, &domains)?;
            println!(
                "{}: OK ({} CA(s), {} label(s))",
                Config::path(&dir.data_dir).display(),
                cfg.cas.len(),
                cfg.labels.len()
            );
            Ok(())
        }
        Cmd::Init {
            dir,
            ra: true,
            upstream,
            upstream_label,
            upstream_ca,
            upstream_protocol,
            subject,
            hostnames,
            ips,
            listen,
            ..
        } => {
            cmd_ra::check_subject(&subject)?;
            let o = cmd_ra::RaInit {
                upstream_url: upstream.ok_or("--ra needs --upstream")?,
                upstream_label,
                upstream_ca: upstream_ca.ok_or("--ra needs --upstream-ca")?,
                protocol: if upstream_protocol == "est" {
                    config::UpstreamProtocol::Est
                } else {
                    config::UpstreamProtocol::Fullcmc
                },
                subject,
                dns_names: hostnames,
                ips,
                listen,
            };
            cmd_ra::init(&dir.data_dir, &o).await?;
            let d = dir.data_dir.display();
            println!("created RA data dir {d} (no CA, no issuing key)");
            println!("next:");
            println!(
                "  1. on the upstream CA: estuary ca issue-ra --csr {d}/ra/ra.csr.pem --out ra.pem"
            );
            println!("     and list the RA's subject in cmc_ras of the CA label it uses");
            println!("  2. copy ra.pem to {d}/ra/ra.pem");
            println!("  3. estuary ra status --data-dir {d}; estuary serve --data-dir {d}");
            Ok(())
        }
        Cmd::Init {
            dir,
            add_ca: Some(name),
            ca_subject,
            ca_days,
            ..
        } => {
            let file = setup::add_ca(&dir.data_dir, &name, ca_subject.as_deref(), ca_days)?;
            cmd_rollover::audit(
                &dir.data_dir,
                est_ca::audit_action::CA_ADD,
                &name,
                format!("issuing CA {}", file.display()),
            )
            .await?;
            println!(
                "added issuing CA {name:?} ({}) under the root; point labels at it with ca = \"{name}\" and restart the server",
                dir.data_dir.join(file).display()
            );
            Ok(())
        }
        Cmd::Init {
            dir,
            org,
            hostnames,
            ips,
            listen,
            import_ca_cert,
            import_ca_key,
            import_ca_chain,
            ..
        } => {
            let import = match (import_ca_cert, import_ca_key) {
                (Some(cert), Some(key)) => {
                    let first = |p: &Path| -> Result<Vec<u8>, AnyError> {
                        config::pem_certs(p)?
                            .into_iter()
                            .next()
                            .ok_or_else(|| format!("{}: no certificate", p.display()).into())
                    };
                    let key_pem = config::read_secret(&key)?;
                    Some(setup::ImportedCa {
                        cert_der: first(&cert)?,
                        chain_der: match &import_ca_chain {
                            Some(p) => config::pem_certs(p)?,
                            None => Vec::new(),
                        },
                        key: openssl::pkey::PKey::private_key_from_pem(&key_pem)
                            .map_err(|e| format!("{}: {e}", key.display()))?,
                    })
                }
                _ => None,
            };
            let opts = setup::SetupOptions {
                demo: false,
                org,
                listen,
                dns_names: hostnames,
                ips,
                import,
            };
            setup::create(&dir.data_dir, &opts).await?;
            let cfg = Config::load(&dir.data_dir)?;
            println!("created {}", Config::path(&dir.data_dir).display());
            print_fingerprint(&cfg, &dir.data_dir)?;
            println!(
                "add users with: estuary user add --data-dir {} NAME --password-file -",
                dir.data_dir.display()
            );
            Ok(())
        }
        Cmd::User { cmd } => user(cmd).await,
        Cmd::Kek { cmd } => kek(cmd).await,
        Cmd::Recipient { cmd } => recipient(cmd).await,
        Cmd::CmcSecret { cmd } => cmd_cmc_secret::run(cmd).await,
        Cmd::Token { cmd } => cmd_token::run(cmd).await,
        Cmd::Request { cmd } => cmd_request::run(cmd).await,
        Cmd::Ca {
            cmd:
                CaCmd::Cert {
                    dir,
                    label,
                    encryption,
                },
        } => {
            let cfg = Config::load(&dir.data_dir)?;
            if encryption {
                let (cert, _) = cfg
                    .cmc_encryption(&dir.data_dir)?
                    .ok_or("no CMC encryption certificate is configured")?;
                let der = der::Encode::to_der(&cert)?;
                print!(
                    "{}",
                    String::from_utf8(openssl::x509::X509::from_der(&der)?.to_pem()?)?
                );
                return Ok(());
            }
            let l = cfg
                .labels
                .iter()
                .find(|l| l.name == label)
                .ok_or_else(|| format!("unknown label {label:?}"))?;
            print!("{}", cfg.trust_anchor_pem(&dir.data_dir, &l.ca)?);
            Ok(())
        }
        Cmd::Ca {
            cmd: CaCmd::OcspResponder { dir, ca, days },
        } => cmd_ocsp::ocsp_responder(&dir.data_dir, &ca, days),
        Cmd::Ca {
            cmd:
                CaCmd::IssueRa {
                    dir,
                    ca,
                    csr,
                    out,
                    days,
                },
        } => cmd_ra::issue_ra(&dir.data_dir, &ca, &csr, &out, days).await,
        Cmd::Ra { cmd } => cmd_ra::run(cmd).await,
        Cmd::Ca {
            cmd:
                CaCmd::Rollover {
                    dir,
                    root_key,
                    subject,
                    days,
                },
        } => {
            cmd_rollover::rollover(
                &dir.data_dir,
                &cmd_rollover::RolloverArgs {
                    root_key,
                    subject,
                    days,
                },
            )
            .await
        }
        Cmd::Cert { cmd } => cert(cmd).await,
        Cmd::Admin { cmd } => cmd_admin::run(cmd).await,
        Cmd::Audit { cmd } => cmd_audit::run(cmd).await,
        Cmd::Crl { dir, ca, out } => cmd_crl::crl(&dir.data_dir, ca, &out).await,
        Cmd::Client(args) => cmd_client::run(*args).await,
        Cmd::Bench(args) => bench::run(args).await,
    }
}

async fn open_store(data_dir: &Path) -> Result<est_store::SqlStore, AnyError> {
    let cfg = Config::load(data_dir)?;
    Ok(est_store::SqlStore::connect(&cfg.store_url(data_dir)).await?)
}

fn read_password(path: &Path) -> Result<Zeroizing<Vec<u8>>, AnyError> {
    if path == Path::new("-") {
        let mut s = Zeroizing::new(Vec::new());
        std::io::stdin().read_to_end(&mut s)?;
        while s.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            s.pop();
        }
        Ok(s)
    } else {
        config::read_secret(path)
    }
}

async fn user(cmd: UserCmd) -> Result<(), AnyError> {
    match cmd {
        UserCmd::Add {
            dir,
            name,
            password_file,
            allow_names,
        } => {
            for p in &allow_names {
                est_ca::NamePolicy::check_pattern(p).map_err(|e| format!("--allow-name {e}"))?;
            }
            let cfg = Config::load(&dir.data_dir)?;
            let store = open_store(&dir.data_dir).await?;
            let pw = read_password(&password_file)?;
            let any = allow_names.is_empty();
            let names = if any {
                vec!["*".to_string()]
            } else {
                allow_names
            };
            let details = format!("allowed names: {}", names.join(", "));
            setup::add_user(&cfg, &dir.data_dir, &store, &name, &pw, names).await?;
            cmd_audit::record(&store, est_ca::audit_action::USER_ADD, &name, details).await?;
            store.close().await;
            println!("user {name:?} added");
            if any {
                println!(
                    "note: {name:?} may request any subject name; restrict with --allow-name PATTERN"
                );
            }
            Ok(())
        }
        UserCmd::List { dir, json } => {
            let store = open_store(&dir.data_dir).await?;
            for u in store.list_users().await? {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "name": u.name,
                            "created_at": fmt_time(u.created_at),
                            "allowed_names": u.allowed_names,
                        })
                    );
                    continue;
                }
                println!(
                    "{}\tcreated {}\tallowed names: {}",
                    u.name,
                    fmt_time(u.created_at),
                    u.allowed_names.join(", ")
                );
            }
            Ok(())
        }
        UserCmd::Remove { dir, name } => {
            let store = open_store(&dir.data_dir).await?;
            if store.remove_user(&name).await? {
                cmd_audit::record(&store, est_ca::audit_action::USER_REMOVE, &name, "").await?;
                store.close().await;
                println!("user {name:?} removed");
                Ok(())
            } else {
                Err(format!("no user {name:?}").into())
            }
        }
    }
}

/// The store and the sealer of client keys of a data dir.
async fn client_key_registry(
    data_dir: &Path,
) -> Result<(est_store::SqlStore, est_ca::SecretBox), AnyError> {
    let cfg = Config::load(data_dir)?;
    let sealer = cfg.secret_box(data_dir)?;
    Ok((
        est_store::SqlStore::connect(&cfg.store_url(data_dir)).await?,
        sealer,
    ))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

async fn list_client_keys(
    data_dir: &Path,
    kind: est_ca::ClientKeyKind,
    json: bool,
) -> Result<(), AnyError> {
    let store = open_store(data_dir).await?;
    for k in store.list_client_keys(None).await? {
        if k.kind != kind {
            continue;
        }
        if json {
            let v = match (kind, std::str::from_utf8(&k.key_id)) {
                (est_ca::ClientKeyKind::Kek, Ok(text)) => serde_json::json!({
                    "owner": k.owner, "id": text, "registered_at": fmt_time(k.created_at),
                }),
                _ => serde_json::json!({
                    "owner": k.owner, "ski": hex::encode(&k.key_id),
                    "registered_at": fmt_time(k.created_at),
                }),
            };
            println!("{v}");
            continue;
        }
        let id = match (kind, std::str::from_utf8(&k.key_id)) {
            (est_ca::ClientKeyKind::Kek, Ok(text)) => format!("id {text:?}"),
            _ => format!("ski {}", hex::encode(&k.key_id)),
        };
        println!("{}	{id}	registered {}", k.owner, fmt_time(k.created_at));
    }
    Ok(())
}

async fn kek(cmd: KekCmd) -> Result<(), AnyError> {
    match cmd {
        KekCmd::Add {
            dir,
            owner,
            id,
            key_file,
        } => {
            let (store, sealer) = client_key_registry(&dir.data_dir).await?;
            let key = cmd_client::read_kek(&key_file)?;
            let owner = owner.name()?;
            est_ca::ClientKeys {
                store: &store,
                sealer: &sealer,
            }
            .register_kek(&owner, id.as_bytes(), &key, now_secs())
            .await?;
            cmd_audit::record(
                &store,
                est_ca::audit_action::KEK_ADD,
                &id,
                format!("owner={owner}; {} bits", key.len() * 8),
            )
            .await?;
            store.close().await;
            println!(
                "registered a {}-bit key-encryption key {id:?} for {owner}",
                key.len() * 8
            );
            Ok(())
        }
        KekCmd::List { dir, json } => {
            list_client_keys(&dir.data_dir, est_ca::ClientKeyKind::Kek, json).await
        }
        KekCmd::Remove { dir, owner, id } => {
            let store = open_store(&dir.data_dir).await?;
            let owner = owner.name()?;
            if store
                .remove_client_key(&owner, est_ca::ClientKeyKind::Kek, id.as_bytes())
                .await?
            {
                let details = format!("owner={owner}");
                cmd_audit::record(&store, est_ca::audit_action::KEK_REMOVE, &id, details).await?;
                store.close().await;
                println!("removed key {id:?} of {owner}");
                Ok(())
            } else {
                Err(format!("no key {id:?} for {owner}").into())
            }
        }
    }
}

async fn recipient(cmd: RecipientCmd) -> Result<(), AnyError> {
    match cmd {
        RecipientCmd::Add { dir, owner, cert } => {
            let (store, sealer) = client_key_registry(&dir.data_dir).await?;
            let der = config::pem_certs(&cert)?
                .into_iter()
                .next()
                .ok_or("no certificate in the file")?;
            let owner = owner.name()?;
            let ski = est_ca::ClientKeys {
                store: &store,
                sealer: &sealer,
            }
            .register_recipient(&owner, &der, now_secs())
            .await?;
            cmd_audit::record(
                &store,
                est_ca::audit_action::RECIPIENT_ADD,
                &hex::encode(&ski),
                format!("owner={owner}"),
            )
            .await?;
            store.close().await;
            println!(
                "registered recipient certificate for {owner}; its AsymmetricDecryptKeyIdentifier (SKI) is {}",
                hex::encode(ski)
            );
            Ok(())
        }
        RecipientCmd::List { dir, json } => {
            list_client_keys(&dir.data_dir, est_ca::ClientKeyKind::Recipient, json).await
        }
        RecipientCmd::Remove { dir, owner, ski } => {
            let store = open_store(&dir.data_dir).await?;
            let owner = owner.name()?;
            let id = hex::decode(ski.replace(':', "")).map_err(|e| format!("--ski: {e}"))?;
            if store
                .remove_client_key(&owner, est_ca::ClientKeyKind::Recipient, &id)
                .await?
            {
                let details = format!("owner={owner}");
                let target = hex::encode(&id);
                cmd_audit::record(
                    &store,
                    est_ca::audit_action::RECIPIENT_REMOVE,
                    &target,
                    details,
                )
                .await?;
                store.close().await;
                println!("removed recipient {ski} of {owner}");
                Ok(())
            } else {
                Err(format!("no recipient {ski} for {owner}").into())
            }
        }
    }
}

/// The wall clock in unix seconds.
pub(crate) fn unix_now() -> i64 {
    unix_secs(SystemTime::now())
}

/// `t` in unix seconds (0 before the epoch, saturating far after it).
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

async fn cert(cmd: CertCmd) -> Result<(), AnyError> {
    match cmd {
        CertCmd::List {
            dir,
            ca,
            requester,
            status,
            subject,
            label,
            san,
            expiring,
            json,
            limit,
            offset,
        } => {
            let store = open_store(&dir.data_dir).await?;
            let status = status
                .map(|s| CertStatus::parse(&s).ok_or(format!("--status {s:?}: valid or revoked")))
                .transpose()?;
            let san = san.map(|s| s.parse::<est_client::San>()).transpose()?;
            let now = unix_now();
            let window = expiring
                .map(|e| est_ca::parse_lifetime(&e))
                .transpose()?
                .map(|d| now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
            if window.is_some() && status == Some(CertStatus::Revoked) {
                return Err("--expiring lists valid certificates: drop --status revoked".into());
            }
            let filter = CertFilter {
                ca,
                requester,
                subject,
                label,
                status: if window.is_some() {
                    Some(CertStatus::Valid)
                } else {
                    status
                },
                valid_at: window.map(|_| now),
                expires_before: window,
                limit,
                offset,
            };
            let rows = match &san {
                None => store.list_certificates(&filter).await?,
                // The SAN is in the certificate only: scan the other filters' matches.
                Some(wanted) => {
                    let wanted = wanted.to_string();
                    let keep = |r: &est_ca::CertRecord| {
                        est_server::console::certificate_sans(&r.der)
                            .iter()
                            .any(|s| est_server::console::san_matches(s, &wanted))
                    };
                    est_ca::scan_certificates(
                        &store,
                        &filter,
                        keep,
                        offset as usize,
                        limit as usize,
                        0,
                    )
                    .await?
                    .0
                }
            };
            if json {
                for r in &rows {
                    println!(
                        "{}",
                        serde_json::json!({
                            "serial": r.serial, "ca": r.ca, "status": r.status.as_str(),
                            "subject": r.subject,
                            "san": est_server::console::certificate_sans(&r.der),
                            "requester": r.requester, "label": r.label, "issuer": r.issuer,
                            "issued_at": fmt_time(r.issued_at),
                            "not_before": fmt_time(r.not_before),
                            "not_after": fmt_time(r.not_after),
                            "revoked_at": r.revocation.map(|v| fmt_time(v.revoked_at)),
                        })
                    );
                }
                return Ok(());
            }
            println!(
                "{:<34} {:<10} {:<8} {:<21} {:<21} {:<16} SUBJECT",
                "SERIAL", "CA", "STATUS", "ISSUED", "EXPIRES", "REQUESTER"
            );
            for r in &rows {
                println!(
                    "{:<34} {:<10} {:<8} {:<21} {:<21} {:<16} {}",
                    r.serial,
                    r.ca,
                    r.status.as_str(),
                    fmt_time(r.issued_at),
                    fmt_time(r.not_after),
                    r.requester,
                    r.subject
                );
            }
            println!(
                "{} shown, {} stored in total",
                rows.len(),
                store.count_certificates().await?
            );
            Ok(())
        }
        CertCmd::Revoke {
            dir,
            serial,
            reason,
            invalidity_date,
        } => cmd_crl::revoke(&dir.data_dir, &serial, &reason, invalidity_date.as_deref()).await,
        CertCmd::Show { dir, serial } => {
            let store = open_store(&dir.data_dir).await?;
            let serial = est_ca::normalize_serial(&serial)
                .ok_or_else(|| format!("{serial:?} is not a hexadecimal serial number"))?;
            let r = store
                .certificate_by_serial(&serial)
                .await?
                .ok_or_else(|| format!("no certificate with serial {serial}"))?;
            println!(
                "serial:    {}\nca:        {}\nsubject:   {}\nissuer:    {}\nrequester: {}\nissued:    {}\nvalid:     {} .. {}\nstatus:    {}\nski:       {}",
                r.serial,
                r.ca,
                r.subject,
                r.issuer,
                r.requester,
                fmt_time(r.issued_at),
                fmt_time(r.not_before),
                fmt_time(r.not_after),
                if r.status == CertStatus::Valid {
                    "valid"
                } else {
                    "revoked"
                },
                r.ski
            );
            if let Some(rev) = &r.revocation {
                let reason = est_ca::CrlReason::from_code(rev.reason)
                    .map_or_else(|| rev.reason.to_string(), |c| c.name().to_owned());
                println!("revoked:   {} ({reason})", fmt_time(rev.revoked_at));
                if let Some(t) = rev.invalidity_date {
                    println!("invalid:   since {}", fmt_time(t));
                }
            }
            let x = openssl::x509::X509::from_der(&r.der)?;
            print!("{}", String::from_utf8_lossy(&x.to_pem()?));
            Ok(())
        }
    }
}

fn print_fingerprint(cfg: &Config, data_dir: &Path) -> Result<(), AnyError> {
    let first = cfg.labels.first();
    // An RA's clients trust its upstream CA, whose root is the last of ca_certs.
    let (path, x) = match first.and_then(|l| l.upstream.as_deref()) {
        Some(u) => {
            let up = cfg
                .upstreams
                .iter()
                .find(|x| x.name == u)
                .ok_or("unknown upstream")?;
            let path = data_dir.join(&up.ca_certs);
            let root = config::pem_certs(&path)?
                .pop()
                .ok_or("the upstream's ca_certs is empty")?;
            (path, openssl::x509::X509::from_der(&root)?)
        }
        None => {
            let pem =
                cfg.trust_anchor_pem(data_dir, &first.map(|l| l.ca.clone()).unwrap_or_default())?;
            (
                data_dir.join("ca/root.pem"),
                openssl::x509::X509::from_pem(pem.as_bytes())?,
            )
        }
    };
    let fp = x.digest(openssl::hash::MessageDigest::sha256())?;
    let hexfp: Vec<String> = fp.iter().map(|b| format!("{b:02X}")).collect();
    println!("trust anchor: {}", path.display());
    println!("trust anchor SHA-256 fingerprint: {}", hexfp.join(":"));
    Ok(())
}

async fn serve(
    data_dir: &Path,
    listen: Option<std::net::SocketAddr>,
    admin_listen: Option<std::net::SocketAddr>,
    demo: bool,
) -> Result<(), AnyError> {
    let mut demo_password = None;
    if !Config::path(data_dir).exists() {
        if !demo {
            return Err(format!(
                "{} does not exist: create a CA with `estuary init --data-dir {dir}`, or start a demo with `estuary serve --demo --data-dir {dir}`",
                Config::path(data_dir).display(),
                dir = data_dir.display()
            )
            .into());
        }
        let opts = setup::SetupOptions {
            demo: true,
            org: "Estuary Demo".into(),
            listen: listen.unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8443))),
            dns_names: vec!["localhost".into()],
            ips: vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()],
            import: None,
        };
        let r = setup::create(data_dir, &opts).await?;
        demo_password = r.demo_password;
    }
    let cfg = Config::load(data_dir)?;
    perms::check_private_files(data_dir, &cfg)?;
    fd_capacity(cfg.server.max_connections);
    // Bound first: the CRL URL in issued certificates defaults to the address actually bound.
    let listener = tokio::net::TcpListener::bind(listen.unwrap_or(cfg.server.listen)).await?;
    let public_url = cfg.public_url(listener.local_addr()?);
    let admin_listener = match cfg.admin.bind_addr(listen, admin_listen) {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await.map_err(|e| {
            format!(
                "admin listener {a}: {e} (set [admin] listen or enabled = false, or --admin-listen)"
            )
        })?),
        None => None,
    };
    let metrics = Arc::new(est_server::Metrics::new());
    let (authority, domains) =
        config::authority(&cfg, data_dir, Some(&public_url), metrics.clone()).await?;
    // The server's own TLS certificate, renewed from our CA before it is read when due.
    renew_tls(&cfg, data_dir, &authority, &domains).await;
    let server_cfg = cfg.server_config(data_dir, &domains)?;
    warn_expiring(&domains, &server_cfg.tls.cert_chain_pem, SystemTime::now());
    let acceptor = est_server::build_acceptor(&server_cfg.tls)?;
    let runtime = Runtime {
        authority: authority.clone(),
        domains: domains.clone(),
        metrics: metrics.clone(),
        started: cfg.clone(),
    };
    let state = Arc::new(runtime.state(&cfg, data_dir, &server_cfg)?);
    let mut signals = Signals::new()?;
    let server = est_server::serve_listener(listener, acceptor, state)?;
    let hooks = Arc::new(cmd_admin::Hooks::new(
        &cfg,
        data_dir,
        authority.store().clone(),
    ));
    let admin = match admin_listener {
        Some(l) => {
            let mut st =
                est_server::AdminState::new(metrics, authority.clone(), &server_cfg.limits)
                    .watching(&server);
            if cfg.admin.console {
                match est_server::console::Console::new(
                    authority.clone(),
                    hooks.clone(),
                    cmd_admin::console_config(&cfg),
                ) {
                    Ok(c) => st = st.with_console(c),
                    Err(e) => tracing::warn!(error = %e, "the web console is off"),
                }
            }
            let acceptor = est_server::build_acceptor(&server_cfg.tls)?;
            Some(est_server::serve_admin(l, acceptor, st)?)
        }
        None => None,
    };
    banner(
        &cfg,
        data_dir,
        server.local_addr,
        admin.as_ref().map(|a| a.local_addr),
        demo_password.as_deref().map(String::as_str),
    )?;
    for ca in &cfg.cas {
        if let Some(path) = est_proto::crl_path(&ca.name) {
            println!("CRL of CA {}: {public_url}{path}", ca.name);
        }
    }
    println!(
        "OCSP responder (every CA): {public_url}{}",
        est_proto::OCSP_PATH
    );
    // SIGHUP: check the configuration again and reload what a running server can swap
    // without dropping a connection; SIGINT/SIGTERM: graceful shutdown.
    // Every 12 hours: is the TLS certificate due for renewal?
    // ESTUARY_TLS_RENEW_CHECK_SECS shortens the period (tests).
    let period = std::env::var("ESTUARY_TLS_RENEW_CHECK_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(TLS_RENEW_CHECK, Duration::from_secs);
    let mut renew_check = tokio::time::interval(period);
    renew_check.tick().await;
    loop {
        tokio::select! {
            sig = signals.next() => {
                if sig == Signal::Stop {
                    break;
                }
                reload(data_dir, &runtime, &server, admin.as_ref(), &hooks);
            }
            _ = renew_check.tick() => {
                if renew_tls(&cfg, data_dir, &authority, &domains).await {
                    reload(data_dir, &runtime, &server, admin.as_ref(), &hooks);
                }
            }
        }
    }
    eprintln!("shutting down");
    server.shutdown().await;
    if let Some(a) = admin {
        a.shutdown().await;
    }
    Ok(())
}

/// How often a running server checks whether its TLS certificate is due for renewal.
const TLS_RENEW_CHECK: Duration = Duration::from_secs(12 * 3600);

/// Renews the TLS certificate when due ([`tls_renew::renew_if_due`]); whether it did. A
/// failure is logged and the current certificate keeps serving.
async fn renew_tls(
    cfg: &Config,
    data_dir: &Path,
    authority: &est_ca::Authority,
    domains: &[est_ca::CaDomain],
) -> bool {
    match tls_renew::renew_if_due(cfg, data_dir, authority, domains, SystemTime::now()).await {
        Ok(tls_renew::Renewal::Renewed { serial, not_after }) => {
            let until = fmt_time(not_after);
            tracing::info!(%serial, not_after = %until, "TLS certificate renewed from our CA");
            eprintln!("renewed the TLS server certificate: serial {serial}, valid until {until}");
            true
        }
        Ok(tls_renew::Renewal::Skipped(why)) => {
            tracing::debug!(reason = %why, "TLS certificate not renewed");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "TLS certificate renewal failed; the current one keeps serving");
            eprintln!("warning: renewing the TLS certificate failed: {e}");
            false
        }
    }
}

/// SIGHUP: loads estuary.toml as at start (a broken one is refused and the running
/// configuration keeps serving), then swaps in the TLS certificate, key and client trust
/// anchors it names: new connections handshake with them, open ones keep theirs. CRLs need no
/// reload (the served CRL follows the store within a second); other settings apply at restart.
/// What a running server keeps across reloads: the authority (CA keys and store are loaded
/// once) and the configuration it started with.
struct Runtime {
    authority: Arc<est_ca::Authority>,
    domains: Vec<est_ca::CaDomain>,
    metrics: Arc<est_server::Metrics>,
    started: Config,
}

impl Runtime {
    /// The EST state of `cfg` over this runtime's authority.
    fn state(
        &self,
        cfg: &Config,
        data_dir: &Path,
        server_cfg: &est_server::ServerConfig,
    ) -> Result<est_server::EstState, AnyError> {
        let mut state = est_server::EstState::new(
            self.authority.clone(),
            server_cfg.labels.clone(),
            server_cfg.limits.clone(),
        )?
        .with_auth_settings(cfg.auth_settings())?
        .with_metrics(self.metrics.clone());
        if let Some((cert, key)) = cfg.cmc_encryption(data_dir)? {
            state = state.with_cmc_decryption(&key, cert)?;
        }
        Ok(state)
    }

    /// The settings a reload cannot apply (they need a restart), by name, where `cfg` differs
    /// from the configuration the server started with.
    fn needs_restart(&self, cfg: &Config) -> Vec<&'static str> {
        fn differ<T: serde::Serialize>(a: &T, b: &T) -> bool {
            toml::Value::try_from(a).ok() != toml::Value::try_from(b).ok()
        }
        let old = &self.started;
        let mut out = Vec::new();
        if old.server.listen != cfg.server.listen {
            out.push("server.listen");
        }
        if old.server.max_connections != cfg.server.max_connections
            || old.server.max_connections_per_source != cfg.server.max_connections_per_source
        {
            out.push("server.max_connections");
        }
        // The connection timeouts belong to the accept loop, set at start.
        if old.server.handshake_timeout_secs != cfg.server.handshake_timeout_secs
            || old.server.header_read_timeout_secs != cfg.server.header_read_timeout_secs
            || old.server.request_timeout_secs != cfg.server.request_timeout_secs
        {
            out.push("server timeouts");
        }
        if differ(&old.store, &cfg.store) {
            out.push("[store]");
        }
        if differ(&old.keys, &cfg.keys) {
            out.push("[keys]");
        }
        if differ(&old.cas, &cfg.cas) {
            out.push("[[ca]]");
        }
        if old.admin != cfg.admin {
            out.push("[admin]");
        }
        if differ(&old.keygen, &cfg.keygen) {
            out.push("[keygen]");
        }
        out
    }
}

/// SIGHUP (issue 11): checks the configuration again and applies what a running server can
/// swap without dropping a connection: the TLS certificate, key and client trust anchors
/// (both listeners), and for later requests the labels (methods, policies, approval,
/// /serverkeygen, CMC settings, CSR attributes, upstreams), HTTP authentication settings and
/// the body size limit. A configuration that does not load is refused whole and the
/// running one keeps serving; settings that need a restart are named in the log.
fn reload(
    data_dir: &Path,
    runtime: &Runtime,
    server: &est_server::RunningServer,
    admin: Option<&est_server::RunningServer>,
    hooks: &cmd_admin::Hooks,
) {
    let loaded = (|| -> Result<(Vec<u8>, Vec<&'static str>), AnyError> {
        let cfg = Config::load(data_dir)?;
        let server_cfg = cfg.server_config(data_dir, &runtime.domains)?;
        let acceptor = est_server::build_acceptor(&server_cfg.tls)?;
        // The admin listener shares the certificate and key: built before either is swapped.
        let admin_acceptor = match admin {
            Some(_) => Some(est_server::build_acceptor(&server_cfg.tls)?),
            None => None,
        };
        let state = runtime.state(&cfg, data_dir, &server_cfg)?;
        server.replace_acceptor(acceptor);
        if let (Some(a), Some(acc)) = (admin, admin_acceptor) {
            a.replace_acceptor(acc);
        }
        server.replace_state(state);
        hooks.update(&cfg);
        Ok((server_cfg.tls.cert_chain_pem, runtime.needs_restart(&cfg)))
    })();
    match loaded {
        Ok((chain, restart)) => {
            tracing::info!(
                "SIGHUP: configuration checked; TLS certificate, key, client trust anchors, labels and authentication settings reloaded"
            );
            eprintln!(
                "reloaded the TLS certificate, key and client trust anchors, the labels and the authentication settings"
            );
            if !restart.is_empty() {
                tracing::warn!(settings = %restart.join(", "), "SIGHUP: these settings changed and take effect only after a restart");
                eprintln!(
                    "changed settings that need a restart to take effect: {}",
                    restart.join(", ")
                );
            }
            warn_expiring(&runtime.domains, &chain, SystemTime::now());
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: reload refused; the previous configuration keeps serving");
            eprintln!("reload refused, the previous configuration keeps serving: {e}");
        }
    }
}

/// Certificates this close to their notAfter get a warning at every start.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86400);

/// Warns (log and stderr) about every CA certificate (issuing and chain) and TLS server
/// certificate that has expired or expires within [`EXPIRY_WARNING`] of `now`.
fn warn_expiring(domains: &[est_ca::CaDomain], tls_chain_pem: &[u8], now: SystemTime) {
    let mut certs: Vec<(String, x509_cert::Certificate)> = Vec::new();
    for d in domains {
        certs.push((format!("CA {:?}", d.name), d.issuer.cert.clone()));
        for c in &d.issuer.chain {
            certs.push((format!("CA {:?} chain", d.name), c.clone()));
        }
    }
    match x509_cert::Certificate::load_pem_chain(tls_chain_pem) {
        Ok(chain) => certs.extend(chain.into_iter().map(|c| ("TLS server".to_string(), c))),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the TLS certificate chain for its expiry")
        }
    }
    for (role, cert) in certs {
        let not_after = cert.tbs_certificate().validity().not_after.to_system_time();
        let subject = cert.tbs_certificate().subject().to_string();
        let when = fmt_time(unix_secs(not_after));
        match not_after.duration_since(now) {
            Err(_) => {
                tracing::warn!(%role, %subject, not_after = %when, "certificate has expired");
                eprintln!("warning: the {role} certificate {subject} expired on {when}");
            }
            Ok(left) if left < EXPIRY_WARNING => {
                let days = left.as_secs() / 86400;
                tracing::warn!(%role, %subject, not_after = %when, days, "certificate expires within 30 days");
                eprintln!(
                    "warning: the {role} certificate {subject} expires on {when} (in {days} days)"
                );
            }
            Ok(_) => {}
        }
    }
}

/// Raises the open-file limit to the hard limit (a soft limit of 1024 is common and would
/// refuse connections below `max_connections`) and says how many connections fit.
fn fd_capacity(max_connections: usize) {
    match est_server::raise_fd_limit() {
        Ok(Some(limit)) => {
            let capacity = est_server::connection_capacity(limit);
            tracing::info!(
                open_file_limit = limit,
                connection_capacity = capacity,
                max_connections,
                "open-file limit"
            );
            if max_connections as u64 > capacity {
                tracing::warn!(
                    "max_connections = {max_connections} exceeds the {capacity} connections the \
                     open-file limit ({limit}) leaves room for; raise the hard limit (ulimit -Hn, \
                     LimitNOFILE=) or lower max_connections"
                );
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Stop,
    Reload,
}

/// SIGINT/SIGTERM (stop) and SIGHUP (reload), registered once at start so that a signal
/// arriving while the server is busy (a reload, a TLS renewal) is queued, not lost.
struct Signals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, AnyError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next stop or reload signal.
    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.int.recv() => Signal::Stop,
            _ = self.term.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

fn banner(
    cfg: &Config,
    data_dir: &Path,
    addr: std::net::SocketAddr,
    admin: Option<std::net::SocketAddr>,
    demo_password: Option<&str>,
) -> Result<(), AnyError> {
    let d = data_dir.display();
    let url = format!("https://{addr}");
    // Before the EST line, which tests (and scripts) wait for.
    if let Some(a) = admin {
        println!(
            "Estuary admin listening on https://{a} (web console at /, /metrics, /healthz, /readyz; `estuary admin add` creates a console login)"
        );
    }
    println!("Estuary EST server listening on {url}/.well-known/est/");
    print_fingerprint(cfg, data_dir)?;
    let labels: Vec<String> = cfg
        .labels
        .iter()
        .map(|l| {
            if l.name.is_empty() {
                "(none)".into()
            } else {
                l.name.clone()
            }
        })
        .collect();
    println!("CA labels: {}", labels.join(", "));
    if let Some(pw) = demo_password {
        println!();
        println!("*** DEMO SETUP created in {d} -- NOT FOR PRODUCTION ***");
        println!("demo user: demo    password: {pw}    (shown only once; stored argon2id-hashed)");
        println!();
        println!("Try it with curl + openssl:");
        println!(
            "  curl -s --cacert {d}/ca/root.pem {url}/.well-known/est/cacerts | openssl base64 -d | openssl pkcs7 -inform DER -print_certs"
        );
        println!(
            "  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev1.key -subj /CN=dev1 -outform DER -out dev1.csr"
        );
        println!("  openssl base64 -in dev1.csr -out dev1.csr.b64");
        println!(
            "  curl -s --cacert {d}/ca/root.pem -u 'demo:{pw}' -H 'Content-Type: application/pkcs10' --data-binary @dev1.csr.b64 {url}/.well-known/est/simpleenroll | openssl base64 -d | openssl pkcs7 -inform DER -print_certs -out dev1.pem"
        );
        println!(
            "  curl -s --cacert {d}/ca/root.pem --digest -u 'demo:{pw}' -H 'Content-Type: application/pkcs10' --data-binary @dev1.csr.b64 {url}/.well-known/est/digest/simpleenroll | openssl base64 -d | openssl pkcs7 -inform DER -print_certs"
        );
        println!();
        println!("Or with the estuary client:");
        println!(
            "  echo '{pw}' | estuary client --url {url} --trust-anchor {d}/ca/root.pem --user demo --password-file - enroll --subject CN=dev2 --out-key dev2.key --out-cert dev2.pem"
        );
        println!(
            "  echo '{pw}' | estuary client --url {url} --label demo --trust-anchor {d}/ca/root.pem --user demo --password-file - serverkeygen --key-type rsa2048 --subject CN=dev3 --out-key dev3.key --out-cert dev3.pem"
        );
        println!(
            "  estuary client --url {url} --trust-anchor {d}/ca/root.pem --cert dev2.pem --key dev2.key reenroll --out-key dev2.key --out-cert dev2.pem"
        );
        println!();
    }
    Ok(())
}
