//! `estuary init` and the demo setup of `estuary serve --demo` on an empty data dir.
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use base64::Engine;
use est_ca::{
    KeyBackend, KeyId, KeyType, PasswordHasher, SigningKey, StoreError, UserRecord, setup,
};
use est_keys::{FileKeyBackend, SoftwareKey, generate_key, write_private};
use x509_cert::name::Name;
use zeroize::Zeroizing;

use crate::config::{
    AnyError, CaSection, Config, CsrAttrEntry, KeysSection, LabelSection, ProfileSection,
    ServerSection, StoreSection,
};

pub struct SetupOptions {
    pub demo: bool,
    pub org: String,
    pub listen: std::net::SocketAddr,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// An existing issuing CA to serve instead of a new hierarchy (`init --import-ca-cert`).
    pub import: Option<ImportedCa>,
}

/// An existing CA brought into a new data dir: its certificate, its chain up to the root
/// (empty when it is a root itself) and its private key (stored encrypted in the key
/// directory).
pub struct ImportedCa {
    pub cert_der: Vec<u8>,
    pub chain_der: Vec<Vec<u8>>,
    pub key: openssl::pkey::PKey<openssl::pkey::Private>,
}

/// Checks an imported CA certificate: a CA (basicConstraints cA) whose key signs certificates
/// (keyUsage keyCertSign, when present), currently valid, and its chain links up to a
/// self-signed root.
fn check_imported(ca: &ImportedCa) -> Result<(), AnyError> {
    use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
    let cert = <x509_cert::Certificate as der::Decode>::from_der(&ca.cert_der)?;
    let tbs = cert.tbs_certificate();
    let is_ca = tbs
        .get_extension::<BasicConstraints>()
        .map_err(|e| format!("the CA certificate's basicConstraints: {e}"))?
        .is_some_and(|(_, b)| b.ca);
    if !is_ca {
        return Err(
            "the imported certificate is not a CA certificate (basicConstraints cA)".into(),
        );
    }
    if let Some((_, ku)) = tbs
        .get_extension::<KeyUsage>()
        .map_err(|e| format!("the CA certificate's keyUsage: {e}"))?
        && !ku.0.contains(KeyUsages::KeyCertSign)
    {
        return Err("the imported CA certificate's keyUsage lacks keyCertSign".into());
    }
    let now = SystemTime::now();
    if tbs.validity().not_after.to_system_time() < now
        || tbs.validity().not_before.to_system_time() > now
    {
        return Err("the imported CA certificate is not currently valid".into());
    }
    let mut chain = vec![openssl::x509::X509::from_der(&ca.cert_der)?];
    for d in &ca.chain_der {
        chain.push(openssl::x509::X509::from_der(d)?);
    }
    for pair in chain.windows(2) {
        let parent = pair[1].public_key()?;
        if !pair[0].verify(&parent)? {
            return Err(format!(
                "the chain does not link: {:?} is not signed by the next certificate",
                pair[0].subject_name()
            )
            .into());
        }
    }
    let root = chain.last().ok_or("empty chain")?;
    let root_key = root.public_key()?;
    if !root.verify(&root_key)? {
        return Err(
            "the chain must end at a self-signed root (give --import-ca-chain up to it)".into(),
        );
    }
    Ok(())
}

pub struct SetupResult {
    /// The demo user's password, shown once.
    pub demo_password: Option<Zeroizing<String>>,
}

const YEAR: u64 = 365 * 86400;

pub(crate) fn random_secret(bytes: usize) -> Result<Zeroizing<String>, AnyError> {
    let mut b = Zeroizing::new(vec![0u8; bytes]);
    openssl::rand::rand_bytes(&mut b)?;
    Ok(Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&*b),
    ))
}

pub(crate) fn pem_of(der: &[u8]) -> Result<Vec<u8>, AnyError> {
    Ok(openssl::x509::X509::from_der(der)?.to_pem()?)
}

/// Creates the whole data dir: key passphrase, CA hierarchy, TLS certificate, config and
/// database. Refuses to touch a data dir that already has a config.
pub async fn create(data_dir: &Path, opts: &SetupOptions) -> Result<SetupResult, AnyError> {
    if Config::path(data_dir).exists() {
        return Err(format!("{} already exists", Config::path(data_dir).display()).into());
    }
    for sub in ["", "ca", "tls", "secrets", "keys"] {
        std::fs::create_dir_all(data_dir.join(sub))?;
    }
    use std::os::unix::fs::PermissionsExt;
    // The data dir and the secrets in it are the owner's alone, whatever the umask (issue 12).
    for dir in ["", "secrets", "keys"] {
        std::fs::set_permissions(data_dir.join(dir), std::fs::Permissions::from_mode(0o700))?;
    }
    let pass = random_secret(32)?;
    write_private(&data_dir.join("secrets/key-passphrase"), pass.as_bytes())?;
    let keys = FileKeyBackend::new(
        data_dir.join("keys"),
        Zeroizing::new(pass.as_bytes().to_vec()),
    )?;
    let now = SystemTime::now();
    let tag = if opts.demo {
        " DEMO - NOT FOR PRODUCTION"
    } else {
        ""
    };
    let name = |cn: &str| Name::from_str(&format!("CN={cn}{tag},O={}", opts.org));

    let (issuer, cas) = match &opts.import {
        Some(ca) => import_hierarchy(data_dir, &keys, ca)?,
        None => new_hierarchy(data_dir, &keys, opts, now, &name)?,
    };

    // The TLS server key is an ordinary file key (OpenSSL needs it for the handshake).
    let tls_key = generate_key(KeyType::P256)?;
    let tls_soft = SoftwareKey::new(tls_key.clone())?;
    let dns: Vec<&str> = opts.dns_names.iter().map(String::as_str).collect();
    let host_cn = dns.first().copied().unwrap_or("localhost");
    let tls_cert = setup::tls_server_certificate(
        &issuer,
        tls_soft.public_key_info().clone(),
        Name::from_str(&format!("CN={host_cn},O={}", opts.org))?,
        &dns,
        &opts.ips,
        Duration::from_secs(YEAR),
        now,
    )?;
    let mut chain_pem = pem_of(&der::Encode::to_der(&tls_cert)?)?;
    chain_pem.extend(pem_of(&issuer.cert_der)?);
    write(data_dir, "tls/server-chain.pem", &chain_pem)?;
    write_private(
        &data_dir.join("tls/server.key.pem"),
        &Zeroizing::new(tls_key.private_key_to_pem_pkcs8()?),
    )?;

    // The CMC encryption key (RSA key transport, CMC-30), certified by the default CA.
    let enc_key = generate_key(KeyType::Rsa2048)?;
    let enc_soft = SoftwareKey::new(enc_key.clone())?;
    let enc_cert = setup::cmc_encryption_certificate(
        &issuer,
        enc_soft.public_key_info().clone(),
        Name::from_str(&format!("CN=CMC Encryption,O={}", opts.org))?,
        Duration::from_secs(YEAR),
        now,
    )?;
    write(
        data_dir,
        "ca/cmc-encryption.pem",
        &pem_of(&der::Encode::to_der(&enc_cert)?)?,
    )?;
    write_private(
        &data_dir.join("secrets/cmc-encryption.key.pem"),
        &Zeroizing::new(enc_key.private_key_to_pem_pkcs8()?),
    )?;

    // Every label starts from the defaults of the config file and changes what it is for.
    let label = LabelSection::new;
    let mut labels = vec![label("", "default")];
    if opts.demo {
        // SKG-1: /serverkeygen is off by default; the demo shows it on its own label.
        // CMC server-side key generation is off by default too; on beside it in the demo.
        labels.push(LabelSection {
            server_keygen: true,
            cmc_server_keygen: true,
            ..label("demo", "default")
        });
        // Digest only (EST-42): what RFC 7030-era clients such as Bouncy Castle speak.
        labels.push(LabelSection {
            auth_basic: false,
            auth_client_cert: false,
            ..label("digest", "default")
        });
        // Digest for clients that answer only the first challenge and know only MD5 (libest's
        // estclient, docs/interop.md): MD5 offered first, SHA-256 after it; /serverkeygen on.
        labels.push(LabelSection {
            auth_basic: false,
            digest_algorithms: Some(vec!["MD5".into(), "SHA-256".into()]),
            server_keygen: true,
            ..label("legacy", "default")
        });
        // EST-49: initial enrollments wait for `estuary request approve`.
        labels.push(LabelSection {
            approval: crate::config::ApprovalMode::Manual,
            approval_retry_after_secs: 5,
            ..label("manual", "default")
        });
        labels.push(LabelSection {
            csr_attrs: vec![
                CsrAttrEntry {
                    oid: "id-ecPublicKey".into(),
                    values: Some(vec!["secp256r1".into()]),
                },
                CsrAttrEntry {
                    oid: "ecdsa-with-SHA256".into(),
                    values: None,
                },
                CsrAttrEntry {
                    oid: "extensionRequest".into(),
                    values: Some(vec!["macAddress".into()]),
                },
            ],
            ..label("devices", "devices")
        });
    }
    let config = Config {
        server: ServerSection {
            cmc_encryption_cert: Some("ca/cmc-encryption.pem".into()),
            cmc_encryption_key: Some("secrets/cmc-encryption.key.pem".into()),
            ..ServerSection::new(
                opts.listen,
                "tls/server-chain.pem".into(),
                "tls/server.key.pem".into(),
            )
        },
        store: StoreSection::default_sqlite(),
        keys: KeysSection::default_files(),
        cas,
        upstreams: Vec::new(),
        labels,
        keygen: crate::config::KeygenSection::default(),
        cmc_server_keygen: Default::default(),
        admin: Default::default(),
    };
    let mut text = String::from(if opts.demo {
        "# Estuary DEMO configuration, created by `estuary serve --demo` on an empty data dir.\n# NOT FOR PRODUCTION: see docs/configuration.md for every key.\n\n"
    } else {
        "# Estuary configuration, created by `estuary init`. See docs/configuration.md.\n\n"
    });
    text.push_str(&toml::to_string_pretty(&config)?);
    write(data_dir, "estuary.toml", text.as_bytes())?;

    let store = est_store::SqlStore::connect(&config.store_url(data_dir)).await?;
    let demo_password = if opts.demo {
        let pw = random_secret(12)?;
        add_user(
            &config,
            data_dir,
            &store,
            "demo",
            pw.as_bytes(),
            vec!["*".into()],
        )
        .await?;
        Some(pw)
    } else {
        None
    };
    Ok(SetupResult { demo_password })
}

/// A new hierarchy: a root and the issuing CAs (`default`, and `devices` in the demo).
fn new_hierarchy(
    data_dir: &Path,
    keys: &FileKeyBackend,
    opts: &SetupOptions,
    now: SystemTime,
    name: &dyn Fn(&str) -> Result<Name, x509_cert::der::Error>,
) -> Result<(est_ca::Issuer, Vec<CaSection>), AnyError> {
    // P-256 throughout: the chain is no stronger than its P-256 issuing CAs anyway, and OpenSSL
    // 3.0 verifies P-384 ten times slower (~1.4k/s vs ~14k/s here), a cost every TLS handshake
    // pays when it validates the issuing CA certificate against the root.
    let root_key = keys.generate(&KeyId("root".into()), KeyType::P256)?;
    let root = setup::self_signed_root(
        root_key,
        name("Estuary Root CA")?,
        Duration::from_secs(20 * YEAR),
        now,
    )?;
    write(data_dir, "ca/root.pem", &pem_of(&root.cert_der)?)?;

    let mut cas = Vec::new();
    let issuing_specs: &[(&str, &str, u32)] = if opts.demo {
        &[
            ("default", "Estuary Issuing CA", 365),
            ("devices", "Estuary Devices CA", 90),
        ]
    } else {
        &[("default", "Estuary Issuing CA", 365)]
    };
    let mut default_issuer = None;
    for (ca_name, cn, days) in issuing_specs {
        let key_id = format!("{ca_name}-issuing");
        let key = keys.generate(&KeyId(key_id.clone()), KeyType::P256)?;
        let issuer =
            setup::subordinate_ca(&root, key, name(cn)?, Duration::from_secs(5 * YEAR), now)?;
        let file = format!("ca/{ca_name}-issuing.pem");
        write(data_dir, &file, &pem_of(&issuer.cert_der)?)?;
        let mut profile = ProfileSection {
            validity_days: *days,
            ..ProfileSection::default()
        };
        if *ca_name == "devices" {
            // A stricter second profile: EC keys only.
            profile.rsa_min_bits = 0;
            profile.allow_ed25519 = false;
        }
        cas.push(CaSection {
            profile,
            ..CaSection::new(ca_name, file.into(), vec!["ca/root.pem".into()], key_id)
        });
        if *ca_name == "default" {
            default_issuer = Some(issuer);
        }
    }
    let issuer = default_issuer.ok_or("no default CA")?;
    Ok((issuer, cas))
}

/// An existing CA as the `default` issuing CA: its key stored encrypted in the key directory
/// (id `default-issuing`), its certificate and chain under ca/. Its root's key stays wherever
/// it is: the server never needs it.
fn import_hierarchy(
    data_dir: &Path,
    keys: &FileKeyBackend,
    ca: &ImportedCa,
) -> Result<(est_ca::Issuer, Vec<CaSection>), AnyError> {
    check_imported(ca)?;
    let chain = ca
        .chain_der
        .iter()
        .map(|d| <x509_cert::Certificate as der::Decode>::from_der(d))
        .collect::<Result<Vec<_>, _>>()?;
    // Issuer::new checks that the key is the certificate's, before anything is stored.
    let soft: std::sync::Arc<dyn SigningKey> =
        std::sync::Arc::new(SoftwareKey::new(ca.key.clone())?);
    est_ca::Issuer::new(ca.cert_der.clone(), chain.clone(), soft)?;
    let key_id = KeyId("default-issuing".into());
    keys.store(&key_id, &ca.key)?;
    let key = keys.load(&key_id)?;
    let issuer = est_ca::Issuer::new(ca.cert_der.clone(), chain, key)?;
    write(data_dir, "ca/default-issuing.pem", &pem_of(&ca.cert_der)?)?;
    let mut chain_files = Vec::new();
    if let Some((root, between)) = ca.chain_der.split_last() {
        for (i, d) in between.iter().enumerate() {
            let f = format!("ca/intermediate-{}.pem", i + 1);
            write(data_dir, &f, &pem_of(d)?)?;
            chain_files.push(PathBuf::from(f));
        }
        write(data_dir, "ca/root.pem", &pem_of(root)?)?;
        chain_files.push("ca/root.pem".into());
    }
    let cas = vec![CaSection::new(
        "default",
        "ca/default-issuing.pem".into(),
        chain_files,
        key_id.0,
    )];
    Ok((issuer, cas))
}

/// `estuary init --add-ca NAME` on an existing data dir: a new issuing CA under the root
/// (whose key must be in the key directory for this), as `[[ca]] NAME` in estuary.toml. Labels
/// that use it are the operator's to add (`ca = "NAME"`); a restart loads it.
pub fn add_ca(
    data_dir: &Path,
    ca_name: &str,
    subject: Option<&str>,
    days: u32,
) -> Result<PathBuf, AnyError> {
    let mut cfg = Config::load(data_dir)?;
    if cfg.cas.iter().any(|c| c.name == ca_name) {
        return Err(format!("a [[ca]] named {ca_name:?} exists").into());
    }
    if ca_name.is_empty()
        || !ca_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("the CA name is letters, digits, '-' and '_'".into());
    }
    let root_file = cfg
        .cas
        .iter()
        .find_map(|c| c.chain.last().cloned())
        .ok_or("no root in the configuration (chain of a [[ca]])")?;
    let root_der = crate::config::pem_certs(&data_dir.join(&root_file))?
        .into_iter()
        .next()
        .ok_or("no root certificate")?;
    let keys = cfg.key_backend(data_dir)?;
    let root_key = keys.load(&KeyId("root".into())).map_err(|e| {
        format!("the root's key \"root\": {e} (if it is kept offline, put it back in the key directory for this command)")
    })?;
    let root = est_ca::Issuer::new(root_der, Vec::new(), root_key)?;
    let org = root
        .subject()
        .to_string()
        .split(',')
        .find_map(|p| p.strip_prefix("O=").map(str::to_owned))
        .unwrap_or_else(|| "Estuary".into());
    let subject = match subject {
        Some(s) => Name::from_str(s).map_err(|e| format!("--ca-subject {s:?}: {e}"))?,
        None => Name::from_str(&format!("CN=Estuary {ca_name} CA,O={org}"))?,
    };
    let key_id = format!("{ca_name}-issuing");
    let key = keys.generate(&KeyId(key_id.clone()), KeyType::P256)?;
    let issuer = setup::subordinate_ca(
        &root,
        key,
        subject,
        Duration::from_secs(u64::from(days.max(1)) * 86400),
        SystemTime::now(),
    )?;
    let file = format!("ca/{ca_name}-issuing.pem");
    write(data_dir, &file, &pem_of(&issuer.cert_der)?)?;
    // After a rollover the new CA serves the same rollover certificates as the others.
    let rollover = cfg
        .cas
        .iter()
        .find(|c| c.chain.last() == Some(&root_file))
        .map(|c| c.rollover.clone())
        .unwrap_or_default();
    cfg.cas.push(CaSection {
        rollover,
        ..CaSection::new(ca_name, file.clone().into(), vec![root_file], key_id)
    });
    rewrite_config(data_dir, &cfg)?;
    Ok(file.into())
}

/// Writes `cfg` over estuary.toml (the old file kept as estuary.toml.<time>.bak), keeping the
/// comment lines at its top; the result must load.
pub(crate) fn rewrite_config(data_dir: &Path, cfg: &Config) -> Result<(), AnyError> {
    let path = Config::path(data_dir);
    let text = std::fs::read_to_string(&path)?;
    let stamp = crate::fmt_time(crate::unix_now())
        .replace([':', '-'], "")
        .trim_end_matches('Z')
        .to_owned();
    crate::cmd_client::replace_file(
        &data_dir.join(format!("estuary.toml.{stamp}.bak")),
        text.as_bytes(),
        0o600,
    )?;
    let header: String = text
        .lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let body = toml::to_string_pretty(cfg)?;
    let text = format!("{header}{body}");
    // Checked before it replaces the file in use.
    Config::check_text(&text, data_dir)?;
    crate::cmd_client::replace_file(&path, text.as_bytes(), 0o600)?;
    Ok(())
}

pub(crate) fn write(dir: &Path, rel: &str, data: &[u8]) -> Result<PathBuf, AnyError> {
    let p = dir.join(rel);
    std::fs::write(&p, data).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(p)
}

/// Adds a user: the password argon2id-hashed (Basic) and its Digest HA1 values for the
/// server realm sealed under the server secret (EST-42); never the password itself.
pub async fn add_user(
    config: &Config,
    data_dir: &Path,
    store: &dyn est_ca::Store,
    name: &str,
    password: &[u8],
    allowed_names: Vec<String>,
) -> Result<(), AnyError> {
    if password.len() < 8 {
        return Err("password too short (at least 8 characters)".into());
    }
    if name.starts_with(est_server::TOKEN_PREFIX) {
        return Err(format!(
            "user names starting with {:?} are reserved for enrollment tokens",
            est_server::TOKEN_PREFIX
        )
        .into());
    }
    let hash = PasswordHasher::hash(password)?;
    let digest_secrets =
        est_server::user_digest_secrets(&config.server.auth_realm, name, password)?
            .seal(&config.secret_box(data_dir)?, name)?;
    let rec = UserRecord {
        digest_secrets,
        name: name.to_string(),
        password_hash: hash,
        allowed_names,
        created_at: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    };
    match store.add_user(&rec).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict(_)) => Err(format!("user {name:?} already exists").into()),
        Err(e) => Err(e.into()),
    }
}
