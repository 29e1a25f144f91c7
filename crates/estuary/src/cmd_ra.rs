//! RA mode's commands (issue 10): `estuary init --ra` (an RA data dir: RA key, certificate
//! request for the upstream CA, config), `estuary ca issue-ra` (on the CA: certify it) and
//! `estuary ra status` (is the upstream reachable, and is the RA certificate in order).
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use clap::Subcommand;
use est_client::San;
use est_keys::{generate_key, write_private};
use zeroize::Zeroizing;

use crate::config::{
    AnyError, Config, KeysSection, LabelSection, ServerSection, StoreSection, UpstreamProtocol,
    UpstreamSection,
};
use crate::setup::{random_secret, write};

#[derive(Subcommand)]
pub enum RaCmd {
    /// Show each upstream CA of this RA: URL, protocol, whether it answers /cacerts with the
    /// RA's certificate, whether its certificates are the configured ones, and the RA
    /// certificate's subject, id-kp-cmcRA and expiry. Exits 1 when an upstream is unreachable.
    Status {
        #[command(flatten)]
        dir: crate::DataDir,
    },
}

/// What `estuary init --ra` needs.
pub struct RaInit {
    pub upstream_url: String,
    pub upstream_label: Option<String>,
    pub upstream_ca: PathBuf,
    pub protocol: UpstreamProtocol,
    pub subject: String,
    pub dns_names: Vec<String>,
    pub ips: Vec<std::net::IpAddr>,
    pub listen: std::net::SocketAddr,
}

/// The RA data dir: no CA and no issuing key. The RA key (secrets/ra.key.pem) serves the
/// EST listener, authenticates the RA to the upstream and signs its PKIData; its certificate
/// (ra/ra.pem) comes from the upstream CA for the request written to ra/ra.csr.pem.
pub async fn init(data_dir: &Path, o: &RaInit) -> Result<(), AnyError> {
    if Config::path(data_dir).exists() {
        return Err(format!("{} already exists", Config::path(data_dir).display()).into());
    }
    if !o.upstream_url.starts_with("https://") {
        return Err("--upstream must be an https:// URL".into());
    }
    let ca_pem =
        std::fs::read(&o.upstream_ca).map_err(|e| format!("{}: {e}", o.upstream_ca.display()))?;
    let ca_certs = openssl::x509::X509::stack_from_pem(&ca_pem)
        .map_err(|e| format!("{}: {e}", o.upstream_ca.display()))?;
    if ca_certs.is_empty() {
        return Err(format!("{}: no certificate", o.upstream_ca.display()).into());
    }
    for sub in ["", "ra", "upstream", "secrets", "keys"] {
        std::fs::create_dir_all(data_dir.join(sub))?;
    }
    use std::os::unix::fs::PermissionsExt;
    for dir in ["", "secrets", "keys"] {
        std::fs::set_permissions(data_dir.join(dir), std::fs::Permissions::from_mode(0o700))?;
    }
    // The passphrase seals the RA's own secrets at rest (users' Digest values).
    let pass = random_secret(32)?;
    write_private(&data_dir.join("secrets/key-passphrase"), pass.as_bytes())?;
    let mut chain_pem = Vec::new();
    for c in &ca_certs {
        chain_pem.extend(c.to_pem()?);
    }
    write(data_dir, "upstream/ca.pem", &chain_pem)?;
    let key = generate_key(est_ca::KeyType::P256)?;
    write_private(
        &data_dir.join("secrets/ra.key.pem"),
        &Zeroizing::new(key.private_key_to_pem_pkcs8()?),
    )?;
    let mut sans: Vec<San> = o.dns_names.iter().cloned().map(San::Dns).collect();
    sans.extend(o.ips.iter().copied().map(San::Ip));
    let csr = est_client::build_csr(&key, &o.subject, &sans, None)?;
    let csr_pem = openssl::x509::X509Req::from_der(&csr)?.to_pem()?;
    write(data_dir, "ra/ra.csr.pem", &csr_pem)?;
    let label = LabelSection {
        upstream: Some("upstream".into()),
        server_keygen: true,
        ..LabelSection::new("", "")
    };
    let config = Config {
        server: ServerSection {
            // The RA certificate comes from the upstream CA: renewed there, not here.
            tls_auto_renew: false,
            ..ServerSection::new(o.listen, "ra/ra.pem".into(), "secrets/ra.key.pem".into())
        },
        store: StoreSection::default_sqlite(),
        keys: KeysSection::default_files(),
        cas: Vec::new(),
        upstreams: vec![UpstreamSection {
            name: "upstream".into(),
            url: o.upstream_url.trim_end_matches('/').to_owned(),
            label: o.upstream_label.clone(),
            protocol: o.protocol,
            ca_certs: "upstream/ca.pem".into(),
            cert: "ra/ra.pem".into(),
            key: "secrets/ra.key.pem".into(),
            check_revocation: true,
            renewal_info: true,
        }],
        labels: vec![label],
        keygen: crate::config::KeygenSection {
            pool: Default::default(),
        },
        cmc_server_keygen: Default::default(),
        admin: Default::default(),
    };
    let mut text = String::from(
        "# Estuary RA configuration, created by `estuary init --ra`. See docs/ra.md.\n\n",
    );
    text.push_str(&toml::to_string_pretty(&config)?);
    write(data_dir, "estuary.toml", text.as_bytes())?;
    est_store::SqlStore::connect(&config.store_url(data_dir)).await?;
    Ok(())
}

/// `estuary ca issue-ra`: certifies an RA's request (its subject and SubjectAltName, a
/// verified self-signature) with id-kp-cmcRA beside the TLS server and client EKUs, records
/// it, and writes it with its chain.
pub async fn issue_ra(
    data_dir: &Path,
    ca: &str,
    csr_path: &Path,
    out: &Path,
    days: u32,
) -> Result<(), AnyError> {
    let cfg = Config::load(data_dir)?;
    let pem = std::fs::read(csr_path).map_err(|e| format!("{}: {e}", csr_path.display()))?;
    let der = match openssl::x509::X509Req::from_pem(&pem) {
        Ok(r) => r.to_der()?,
        Err(_) => pem,
    };
    let csr = est_ca::VerifiedCsr::verify(&der, false)?;
    let (authority, _) = crate::config::authority(
        &cfg,
        data_dir,
        None,
        std::sync::Arc::new(est_ca::NoObserver),
    )
    .await?;
    let issued = est_ca::setup::issue_ra_certificate(
        &authority,
        ca,
        csr.subject().clone(),
        csr.san.clone(),
        csr.spki.clone(),
        Duration::from_secs(u64::from(days.max(1)) * 86400),
        SystemTime::now(),
    )
    .await?;
    let mut pem = crate::setup::pem_of(&issued.der)?;
    let domain = authority.domain(ca).ok_or("unknown CA")?;
    for c in domain.issuer.full_chain() {
        pem.extend(crate::setup::pem_of(&der::Encode::to_der(&c)?)?);
    }
    crate::cmd_client::replace_file(out, &pem, 0o644)?;
    println!(
        "issued RA certificate {} for \"{}\" to {}",
        issued.record.serial,
        issued.record.subject,
        out.display()
    );
    println!(
        "authorize it on a label of this CA with: cmc_ras = [\"{}\"] (CMC-56)",
        issued.record.subject
    );
    Ok(())
}

pub async fn run(cmd: RaCmd) -> Result<(), AnyError> {
    match cmd {
        RaCmd::Status { dir } => status(&dir.data_dir).await,
    }
}

async fn status(data_dir: &Path) -> Result<(), AnyError> {
    let cfg = Config::load(data_dir)?;
    if cfg.upstreams.is_empty() {
        return Err("this data dir has no [[upstream]]: it is not an RA".into());
    }
    let mut down = 0;
    for u in &cfg.upstreams {
        let client = crate::ra::UpstreamClient::load(u, data_dir)?;
        let labels: Vec<String> = cfg
            .labels
            .iter()
            .filter(|l| l.upstream.as_deref() == Some(&u.name))
            .map(|l| format!("{:?}", l.name))
            .collect();
        println!("upstream {}", u.name);
        println!(
            "  url:       {}{}",
            client.url(),
            u.label
                .as_deref()
                .map(|l| format!(" (label {l})"))
                .unwrap_or_default()
        );
        println!(
            "  protocol:  {}",
            match u.protocol {
                UpstreamProtocol::Fullcmc => "fullcmc",
                UpstreamProtocol::Est => "est",
            }
        );
        println!("  labels:    {}", labels.join(", "));
        let ra = client.ra_certificate();
        let not_after = ra.tbs_certificate().validity().not_after.to_system_time();
        println!("  RA cert:   {}", ra.tbs_certificate().subject());
        println!(
            "  id-kp-cmcRA: {}",
            if est_ca::is_registration_authority(ra) {
                "yes"
            } else {
                "NO (the upstream will not take this RA's word, CMC-56)"
            }
        );
        println!(
            "  expires:   {}{}",
            crate::fmt_time(crate::unix_secs(not_after)),
            if not_after < SystemTime::now() + Duration::from_secs(30 * 86400) {
                " (within 30 days: renew it at the upstream CA)"
            } else {
                ""
            }
        );
        let started = std::time::Instant::now();
        match client.probe().await {
            Ok(chain) => {
                // /cacerts is a SET OF: compare as sets.
                let configured = client.configured_chain();
                let same =
                    chain.len() == configured.len() && configured.iter().all(|c| chain.contains(c));
                println!(
                    "  reachable: yes ({} ms); /cacerts {}",
                    started.elapsed().as_millis(),
                    if same {
                        "matches ca_certs"
                    } else {
                        "DIFFERS from ca_certs: the upstream CA changed (rollover?)"
                    }
                );
            }
            Err(e) => {
                down += 1;
                println!("  reachable: NO: {e}");
            }
        }
    }
    if down > 0 {
        return Err(format!("{down} upstream(s) unreachable").into());
    }
    Ok(())
}

/// Checks an RFC 4514 subject before anything is created.
pub fn check_subject(s: &str) -> Result<(), AnyError> {
    x509_cert::name::Name::from_str(s).map_err(|e| format!("--subject {s:?}: {e}"))?;
    Ok(())
}
