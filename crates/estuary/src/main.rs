//! `estuary`: the EST server, CA administration and client, in one binary. This is the only
//! place that picks backends and wires the crates together.
mod bench;
mod cmd_client;
mod cmd_request;
mod cmd_token;
mod config;
mod setup;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct DataDir {
    /// Data directory holding estuary.toml, keys, certificates and the database.
    #[arg(long, env = "ESTUARY_DATA_DIR", default_value = "./estuary-data")]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the EST server. On an empty data dir, first creates a DEMO setup and prints how to use it.
    Serve {
        #[command(flatten)]
        dir: DataDir,
        /// Listen address (overrides the config file).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
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
    },
    /// Manage HTTP users (Basic authentication).
    User {
        #[command(subcommand)]
        cmd: UserCmd,
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
    /// Inspect issued certificates.
    Cert {
        #[command(subcommand)]
        cmd: CertCmd,
    },
    /// EST client: talk to any EST server.
    Client(cmd_client::ClientArgs),
    /// Load generator and store prefill for benchmarks (see docs/performance.md).
    Bench(bench::BenchArgs),
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
    },
    /// Remove a user.
    Remove {
        #[command(flatten)]
        dir: DataDir,
        name: String,
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
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, default_value_t = 0)]
        offset: u32,
    },
    /// Show one certificate (details and PEM) by serial number (hex).
    Show {
        #[command(flatten)]
        dir: DataDir,
        serial: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ESTUARY_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
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
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cmd: Cmd) -> Result<(), AnyError> {
    match cmd {
        Cmd::Serve { dir, listen } => serve(&dir.data_dir, listen).await,
        Cmd::Init {
            dir,
            org,
            hostnames,
            ips,
            listen,
        } => {
            let opts = setup::SetupOptions {
                demo: false,
                org,
                listen,
                dns_names: hostnames,
                ips,
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
        Cmd::Token { cmd } => cmd_token::run(cmd).await,
        Cmd::Request { cmd } => cmd_request::run(cmd).await,
        Cmd::Ca {
            cmd: CaCmd::Cert { dir, label },
        } => {
            let cfg = Config::load(&dir.data_dir)?;
            let l = cfg
                .labels
                .iter()
                .find(|l| l.name == label)
                .ok_or_else(|| format!("unknown label {label:?}"))?;
            print!("{}", cfg.trust_anchor_pem(&dir.data_dir, &l.ca)?);
            Ok(())
        }
        Cmd::Cert { cmd } => cert(cmd).await,
        Cmd::Client(args) => cmd_client::run(args)
            .await
            .map_err(|e| e.to_string().into()),
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
            let cfg = Config::load(&dir.data_dir)?;
            let store = open_store(&dir.data_dir).await?;
            let pw = read_password(&password_file)?;
            let any = allow_names.is_empty();
            let names = if any {
                vec!["*".to_string()]
            } else {
                allow_names
            };
            setup::add_user(&cfg, &dir.data_dir, &store, &name, &pw, names).await?;
            println!("user {name:?} added");
            if any {
                println!(
                    "note: {name:?} may request any subject name; restrict with --allow-name PATTERN"
                );
            }
            Ok(())
        }
        UserCmd::List { dir } => {
            let store = open_store(&dir.data_dir).await?;
            for u in store.list_users().await? {
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
                println!("user {name:?} removed");
                Ok(())
            } else {
                Err(format!("no user {name:?}").into())
            }
        }
    }
}

fn fmt_time(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

async fn cert(cmd: CertCmd) -> Result<(), AnyError> {
    match cmd {
        CertCmd::List {
            dir,
            ca,
            requester,
            limit,
            offset,
        } => {
            let store = open_store(&dir.data_dir).await?;
            let filter = CertFilter {
                ca,
                requester,
                limit,
                offset,
                ..Default::default()
            };
            let rows = store.list_certificates(&filter).await?;
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
        CertCmd::Show { dir, serial } => {
            let store = open_store(&dir.data_dir).await?;
            let serial = serial
                .trim()
                .trim_start_matches("0x")
                .replace(':', "")
                .to_ascii_lowercase();
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
            let x = openssl::x509::X509::from_der(&r.der)?;
            print!("{}", String::from_utf8_lossy(&x.to_pem()?));
            Ok(())
        }
    }
}

fn print_fingerprint(cfg: &Config, data_dir: &Path) -> Result<(), AnyError> {
    let pem = cfg.trust_anchor_pem(
        data_dir,
        &cfg.labels.first().map(|l| l.ca.clone()).unwrap_or_default(),
    )?;
    let x = openssl::x509::X509::from_pem(pem.as_bytes())?;
    let fp = x.digest(openssl::hash::MessageDigest::sha256())?;
    let hexfp: Vec<String> = fp.iter().map(|b| format!("{b:02X}")).collect();
    println!("trust anchor: {}", data_dir.join("ca/root.pem").display());
    println!("trust anchor SHA-256 fingerprint: {}", hexfp.join(":"));
    Ok(())
}

async fn serve(data_dir: &Path, listen: Option<std::net::SocketAddr>) -> Result<(), AnyError> {
    let mut demo_password = None;
    if !Config::path(data_dir).exists() {
        let opts = setup::SetupOptions {
            demo: true,
            org: "Estuary Demo".into(),
            listen: listen.unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8443))),
            dns_names: vec!["localhost".into()],
            ips: vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()],
        };
        let r = setup::create(data_dir, &opts).await?;
        demo_password = r.demo_password;
    }
    let cfg = Config::load(data_dir)?;
    let (authority, domains) = config::authority(&cfg, data_dir).await?;
    let mut server_cfg = cfg.server_config(data_dir, &domains)?;
    if let Some(l) = listen {
        server_cfg.listen = l;
    }
    let acceptor = est_server::build_acceptor(&server_cfg.tls)?;
    let state = Arc::new(
        est_server::EstState::new(
            authority,
            server_cfg.labels.clone(),
            server_cfg.limits.clone(),
        )?
        .with_auth_settings(cfg.auth_settings())?,
    );
    let server = est_server::serve(server_cfg.listen, acceptor, state).await?;
    banner(
        &cfg,
        data_dir,
        server.local_addr,
        demo_password.as_deref().map(String::as_str),
    )?;
    wait_for_signal().await;
    eprintln!("shutting down");
    server.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn banner(
    cfg: &Config,
    data_dir: &Path,
    addr: std::net::SocketAddr,
    demo_password: Option<&str>,
) -> Result<(), AnyError> {
    let d = data_dir.display();
    let url = format!("https://{addr}");
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
            "  estuary client --url {url} --trust-anchor {d}/ca/root.pem --cert dev2.pem --key dev2.key reenroll --out-key dev2.key --out-cert dev2.pem"
        );
        println!();
    }
    Ok(())
}
