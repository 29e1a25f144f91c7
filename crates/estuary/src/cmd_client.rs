//! `estuary client`: every EST operation from the command line.
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use est_client::{ClientConfig, ClientIdentity, EstClient, KeyKind, KeyProtection, San, Trust};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use zeroize::Zeroizing;

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

const DEFAULT_URL: &str = "https://127.0.0.1:8443";

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum HttpAuthArg {
    Auto,
    Basic,
    Digest,
}

#[derive(Args)]
pub struct ClientArgs {
    /// Server URL, e.g. https://est.example:8443 (default https://127.0.0.1:8443; `fullcmc
    /// poll` takes the one in its state file).
    #[arg(long, global = true)]
    url: Option<String>,
    /// CA label (/.well-known/est/<label>/...).
    #[arg(long, global = true)]
    label: Option<String>,
    /// Explicit trust anchor(s) for the server (PEM).
    #[arg(long, global = true, conflicts_with = "bootstrap")]
    trust_anchor: Option<PathBuf>,
    /// No trust anchor yet: fetch /cacerts unauthenticated, show SHA-256 fingerprints and ask
    /// before trusting anything (EST-68). Only `cacerts` is allowed in this mode.
    #[arg(long, global = true)]
    bootstrap: bool,
    /// With --bootstrap: accept without asking if a CA certificate has this SHA-256 fingerprint.
    #[arg(long, global = true)]
    expect_fingerprint: Option<String>,
    /// HTTP Basic user name.
    #[arg(long, global = true)]
    user: Option<String>,
    /// File holding the password (`-` = standard input).
    #[arg(long, global = true)]
    password_file: Option<PathBuf>,
    /// TLS client certificate (PEM, leaf first, chain may follow).
    #[arg(long, global = true, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key of --cert (PEM).
    #[arg(long, global = true, requires = "cert")]
    key: Option<PathBuf>,
    /// Negotiate at most TLS 1.2 (channel binding becomes tls-unique).
    #[arg(long, global = true)]
    tls12: bool,
    /// How --user/--password-file answer the server's 401: `auto` (Basic when offered, else
    /// Digest), `basic`, or `digest` (RFC 7616: SHA-256, SHA-512-256 or MD5, the strongest
    /// the server offers; the password itself is never sent).
    #[arg(long, global = true, value_enum, default_value = "auto")]
    http_auth: HttpAuthArg,
    /// How long to keep retrying a request the server accepted for manual approval (202).
    #[arg(long, global = true, default_value_t = 600)]
    max_wait: u64,
    #[command(subcommand)]
    cmd: ClientCmd,
}

#[derive(Subcommand)]
enum ClientCmd {
    /// First contact with a server: fetch /cacerts without a trust anchor, show each CA
    /// certificate's SHA-256 fingerprint and ask (or compare with --expect-fingerprint), then
    /// save the accepted certificates as this server's trust anchor under the user's config
    /// dir ($XDG_CONFIG_HOME/estuary/trust/, else ~/.config/estuary/trust/). Later `estuary
    /// client` commands for the same server (host and port) use it when --trust-anchor is not
    /// given (EST-68, SEC-24).
    Bootstrap,
    /// Fetch the CA certificates (/cacerts).
    Cacerts {
        /// Write the certificates here (PEM); default: standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show the CSR attributes the server asks for (/csrattrs).
    Csrattrs,
    /// Enroll: generate a key locally (or send --csr) and get a certificate (/simpleenroll).
    Enroll {
        #[arg(long, default_value = "p256")]
        key_type: String,
        /// Subject, RFC 4514 (e.g. "CN=dev1,O=Acme").
        #[arg(long, required_unless_present = "csr")]
        subject: Option<String>,
        /// SubjectAltName: dns:NAME, ip:ADDR, email:ADDR, uri:URI (repeatable).
        #[arg(long)]
        san: Vec<String>,
        /// Send this CSR (PEM or DER) instead of generating a key.
        #[arg(long, conflicts_with_all = ["subject", "san"])]
        csr: Option<PathBuf>,
        #[arg(long, required_unless_present = "csr")]
        out_key: Option<PathBuf>,
        #[arg(long)]
        out_cert: PathBuf,
    },
    /// Have the server generate the key (/serverkeygen). Without --kek-* or --recipient-* the
    /// key comes as plain PKCS#8 under TLS; with them it comes encrypted for that key (CMS
    /// EnvelopedData: kekri, or ktri/kari), signed by the CA, and is verified here.
    Serverkeygen {
        /// Key type to generate: p256, p384, rsa2048, rsa3072, rsa4096, ed25519.
        #[arg(long, default_value = "p256")]
        key_type: String,
        /// Subject, RFC 4514 (e.g. "CN=dev1,O=Acme").
        #[arg(long)]
        subject: String,
        /// SubjectAltName: dns:NAME, ip:ADDR, email:ADDR, uri:URI (repeatable).
        #[arg(long)]
        san: Vec<String>,
        /// Identifier of a symmetric key registered with the server (`estuary kek add`), as text.
        #[arg(long, requires = "kek_file", conflicts_with = "recipient_cert")]
        kek_id: Option<String>,
        /// The symmetric key itself: 16, 24 or 32 raw bytes, or their hex.
        #[arg(long, requires = "kek_id")]
        kek_file: Option<PathBuf>,
        /// A certificate of ours the server knows (registered, our TLS client certificate, or
        /// one it issued us); its SubjectKeyIdentifier names it.
        #[arg(long, requires = "recipient_key")]
        recipient_cert: Option<PathBuf>,
        /// Private key of --recipient-cert (PEM).
        #[arg(long, requires = "recipient_cert")]
        recipient_key: Option<PathBuf>,
        #[arg(long)]
        out_key: PathBuf,
        #[arg(long)]
        out_cert: PathBuf,
    },
    /// Full CMC (/fullcmc, RFC 7030 §4.3): enroll or renew with a signed Full PKI Request;
    /// the response is verified against --trust-anchor and matched to the request.
    Fullcmc {
        #[command(subcommand)]
        cmd: crate::cmd_fullcmc::FullCmcCmd,
    },
    /// Re-enroll with --cert/--key as TLS client certificate (/simplereenroll): rekey by
    /// default (new key of the same type), same subject and SAN.
    Reenroll {
        /// Renew for the existing key instead of rekeying.
        #[arg(long)]
        same_key: bool,
        #[arg(long)]
        out_key: Option<PathBuf>,
        #[arg(long)]
        out_cert: PathBuf,
    },
}

fn read_pem_certs(p: &Path) -> Result<Vec<X509>, Error> {
    let data = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(X509::stack_from_pem(&data).map_err(|e| format!("{}: {e}", p.display()))?)
}

pub(crate) fn read_key(p: &Path) -> Result<PKey<Private>, Error> {
    let data = Zeroizing::new(std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?);
    Ok(PKey::private_key_from_pem(&data).map_err(|e| format!("{}: {e}", p.display()))?)
}

/// A symmetric key file: 16, 24 or 32 raw bytes, or their hex (white space ignored).
pub fn read_kek(p: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    let data = Zeroizing::new(std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?);
    parse_kek(&data).map_err(|e| format!("{}: {e}", p.display()).into())
}

pub fn parse_kek(data: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let text: Zeroizing<Vec<u8>> = Zeroizing::new(
        data.iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect(),
    );
    let key = if matches!(text.len(), 32 | 48 | 64) && text.iter().all(u8::is_ascii_hexdigit) {
        Zeroizing::new(hex::decode(&*text).map_err(|e| e.to_string())?)
    } else {
        Zeroizing::new(data.to_vec())
    };
    match key.len() {
        16 | 24 | 32 => Ok(key),
        n => Err(format!(
            "a key-encryption key is 16, 24 or 32 bytes (or their hex), not {n} bytes"
        )),
    }
}

fn read_password(p: &Path) -> Result<Zeroizing<String>, Error> {
    let mut s = Zeroizing::new(String::new());
    if p == Path::new("-") {
        std::io::stdin().read_to_string(&mut s)?;
    } else {
        *s = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let trimmed = Zeroizing::new(s.trim_end_matches(['\n', '\r']).to_string());
    Ok(trimmed)
}

/// Writes a file with mode 0600 (keys), replacing it atomically.
pub(crate) fn write_private(p: &Path, data: &[u8]) -> Result<(), Error> {
    replace_file(p, data, 0o600)
}

/// Writes `data` to a new temporary file beside `path` (created with `mode`; a stale one from
/// an interrupted run is removed first, so the mode always applies), syncs it, renames it over
/// `path` and syncs the directory, so that the rename survives a crash.
pub(crate) fn replace_file(path: &Path, data: &[u8], mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp-estuary");
    let tmp = path.with_file_name(tmp_name);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", tmp.display()).into()),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    // A bare file name's parent is "": the current directory.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn certs_pem(certs: &[x509_cert::Certificate]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for c in certs {
        out.extend(est_client::to_x509(c)?.to_pem()?);
    }
    Ok(out)
}

/// Where `estuary client bootstrap` keeps the trust anchor of the server at `url`:
/// `<config>/estuary/trust/<host>_<port>.pem`, `<config>` being $XDG_CONFIG_HOME or
/// ~/.config.
fn saved_anchor_path(url: &str) -> Result<PathBuf, Error> {
    let rest = url
        .strip_prefix("https://")
        .ok_or("the server URL must start with https://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = match authority.strip_prefix('[') {
        // [IPv6]:port or [IPv6]
        Some(v6) => {
            let (h, after) = v6
                .split_once(']')
                .ok_or("malformed IPv6 address in the URL")?;
            (h, after.strip_prefix(':').unwrap_or("443"))
        }
        None => authority.rsplit_once(':').unwrap_or((authority, "443")),
    };
    // A file name from the host: letters, digits, '.', '-' kept; anything else (':' of IPv6)
    // becomes '_'.
    let safe: String = host
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(
            std::env::var_os("HOME").ok_or("neither XDG_CONFIG_HOME nor HOME is set")?,
        )
        .join(".config"),
    };
    Ok(base
        .join("estuary")
        .join("trust")
        .join(format!("{safe}_{port}.pem")))
}

pub async fn run(mut a: ClientArgs) -> Result<(), Error> {
    let url = a.url.clone().unwrap_or_else(|| DEFAULT_URL.to_string());
    let bootstrap_cmd = matches!(a.cmd, ClientCmd::Bootstrap);
    if bootstrap_cmd {
        if a.trust_anchor.is_some() {
            return Err(
                "bootstrap is for a server whose CA is not trusted yet: drop --trust-anchor".into(),
            );
        }
        a.bootstrap = true;
    }
    let trust = match (&a.trust_anchor, a.bootstrap) {
        (Some(p), _) => Trust::Explicit(read_pem_certs(p)?),
        (None, true) => Trust::Bootstrap,
        (None, false) => {
            let saved = saved_anchor_path(&url)?;
            if !saved.exists() {
                return Err(format!(
                    "no trust anchor for {url}: give --trust-anchor FILE, or run `estuary client --url {url} bootstrap` once to fetch and confirm the CA (it is then kept in {})",
                    saved.display()
                )
                .into());
            }
            Trust::Explicit(read_pem_certs(&saved)?)
        }
    };
    if a.bootstrap && !matches!(a.cmd, ClientCmd::Cacerts { .. } | ClientCmd::Bootstrap) {
        return Err(
            "--bootstrap allows only `cacerts` (EST-68); accept the CA, then use --trust-anchor"
                .into(),
        );
    }
    let basic = match (&a.user, &a.password_file) {
        (Some(u), Some(p)) => Some((u.clone(), read_password(p)?)),
        (Some(_), None) => return Err("--user needs --password-file".into()),
        _ => None,
    };
    let identity = match (&a.cert, &a.key) {
        (Some(c), Some(k)) => {
            let mut certs = read_pem_certs(c)?.into_iter();
            let cert = certs.next().ok_or("empty --cert file")?;
            Some(ClientIdentity {
                cert,
                chain: certs.collect(),
                key: read_key(k)?,
            })
        }
        _ => None,
    };
    let client = EstClient::new(ClientConfig {
        url: url.clone(),
        label: a.label.clone(),
        trust,
        identity: identity.clone(),
        basic,
        max_tls12: a.tls12,
        http_auth: match a.http_auth {
            HttpAuthArg::Auto => est_client::HttpAuth::Auto,
            HttpAuthArg::Basic => est_client::HttpAuth::Basic,
            HttpAuthArg::Digest => est_client::HttpAuth::Digest,
        },
    })?;
    let max_wait = Duration::from_secs(a.max_wait);
    match a.cmd {
        ClientCmd::Bootstrap => {
            let mut conn = client.connect().await?;
            let certs = conn.cacerts().await?;
            confirm_bootstrap(&certs, a.expect_fingerprint.as_deref())?;
            let path = saved_anchor_path(&url)?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            replace_file(&path, &certs_pem(&certs)?, 0o644)?;
            eprintln!(
                "trusting {} CA certificate(s) for {url}; saved to {} (used when --trust-anchor is not given)",
                certs.len(),
                path.display()
            );
        }
        ClientCmd::Cacerts { out } => {
            let mut conn = client.connect().await?;
            let certs = conn.cacerts().await?;
            if a.bootstrap {
                confirm_bootstrap(&certs, a.expect_fingerprint.as_deref())?;
            }
            let pem = certs_pem(&certs)?;
            match out {
                Some(p) => {
                    std::fs::write(&p, &pem)?;
                    eprintln!("wrote {} CA certificate(s) to {}", certs.len(), p.display());
                }
                None => std::io::stdout().write_all(&pem)?,
            }
        }
        ClientCmd::Csrattrs => {
            let mut conn = client.connect().await?;
            match conn.csrattrs().await? {
                None => println!("no CSR attributes (the server has no specific requirements)"),
                Some(attrs) => {
                    for a in attrs.0 {
                        match a {
                            est_asn1::AttrOrOid::Oid(o) => println!("{}", oid_name(&o)),
                            // EST-106: unrecognised entries are ignored (shown, not used).
                            est_asn1::AttrOrOid::Other(_) => {
                                println!("(an entry with an OID this client does not know)")
                            }
                            est_asn1::AttrOrOid::Attribute(at) => {
                                let vals: Vec<String> = at
                                    .values
                                    .iter()
                                    .map(|v| {
                                        v.decode_as::<der::oid::ObjectIdentifier>()
                                            .map(|o| oid_name(&o))
                                            .unwrap_or_else(|_| "(value)".into())
                                    })
                                    .collect();
                                println!("{} = {}", oid_name(&at.oid), vals.join(", "));
                            }
                        }
                    }
                }
            }
        }
        ClientCmd::Enroll {
            key_type,
            subject,
            san,
            csr,
            out_key,
            out_cert,
        } => {
            let certs = match csr {
                Some(p) => {
                    let data = std::fs::read(&p)?;
                    let der = match openssl::x509::X509Req::from_pem(&data) {
                        Ok(r) => r.to_der()?,
                        Err(_) => data,
                    };
                    let mut conn = client.connect().await?;
                    match conn.simple_enroll(&der).await? {
                        est_client::EnrollOutcome::Issued(c) => c,
                        est_client::EnrollOutcome::Pending { retry_after } => {
                            return Err(format!(
                                "accepted for manual approval; send the same CSR again in {}s",
                                retry_after.as_secs()
                            )
                            .into());
                        }
                    }
                }
                None => {
                    let kind: KeyKind = key_type.parse()?;
                    let sans = san
                        .iter()
                        .map(|s| s.parse())
                        .collect::<Result<Vec<San>, _>>()?;
                    let subject = subject.ok_or("--subject is required")?;
                    let key = est_client::generate_key(kind)?;
                    let certs = est_client::enroll_with_key(
                        &client, &key, &subject, &sans, false, max_wait,
                    )
                    .await?;
                    let out_key = out_key.ok_or("--out-key is required")?;
                    write_private(&out_key, &Zeroizing::new(key.private_key_to_pem_pkcs8()?))?;
                    eprintln!("wrote key to {} (mode 0600)", out_key.display());
                    certs
                }
            };
            write_cert(&out_cert, &certs)?;
        }
        ClientCmd::Serverkeygen {
            key_type,
            subject,
            san,
            kek_id,
            kek_file,
            recipient_cert,
            recipient_key,
            out_key,
            out_cert,
        } => {
            let kind: KeyKind = key_type.parse()?;
            let sans = san
                .iter()
                .map(|s| s.parse())
                .collect::<Result<Vec<San>, _>>()?;
            let protection = match (kek_id, kek_file, recipient_cert, recipient_key) {
                (Some(id), Some(f), _, _) => KeyProtection::Kek {
                    id: id.into_bytes(),
                    key: read_kek(&f)?,
                },
                (_, _, Some(c), Some(k)) => KeyProtection::Recipient {
                    cert: read_pem_certs(&c)?
                        .into_iter()
                        .next()
                        .ok_or("empty --recipient-cert file")?,
                    key: read_key(&k)?,
                },
                _ => KeyProtection::Tls,
            };
            let got =
                est_client::server_keygen(&client, kind, &subject, &sans, &protection).await?;
            write_private(
                &out_key,
                &Zeroizing::new(got.key.private_key_to_pem_pkcs8()?),
            )?;
            eprintln!(
                "wrote server-generated key to {} (mode 0600; delivered {})",
                out_key.display(),
                if got.encrypted {
                    "encrypted and CA-signed, verified"
                } else {
                    "as PKCS#8 under TLS"
                }
            );
            write_cert(&out_cert, &got.certs)?;
        }
        ClientCmd::Fullcmc { cmd } => {
            crate::cmd_fullcmc::run(client.config().clone(), a.url.is_some(), cmd).await?;
        }
        ClientCmd::Reenroll {
            same_key,
            out_key,
            out_cert,
        } => {
            let id = identity
                .ok_or("reenroll needs --cert and --key (the certificate being renewed)")?;
            let old = est_client::from_x509(&id.cert)?;
            let subject = old.tbs_certificate().subject().to_string();
            let sans: Vec<San> = old
                .tbs_certificate()
                .get_extension::<x509_cert::ext::pkix::SubjectAltName>()
                .map_err(|e| format!("SAN of the old certificate: {e}"))?
                .map(|(_, s)| s.0.iter().filter_map(San::from_general_name).collect())
                .unwrap_or_default();
            let key = if same_key {
                id.key.clone()
            } else {
                new_key_like(&id.key)?
            };
            let certs =
                est_client::enroll_with_key(&client, &key, &subject, &sans, true, max_wait).await?;
            if !same_key {
                let out_key =
                    out_key.ok_or("--out-key is required when rekeying (or use --same-key)")?;
                write_private(&out_key, &Zeroizing::new(key.private_key_to_pem_pkcs8()?))?;
                eprintln!("wrote new key to {} (mode 0600)", out_key.display());
            }
            write_cert(&out_cert, &certs)?;
        }
    }
    Ok(())
}

pub(crate) fn write_cert(p: &Path, certs: &[x509_cert::Certificate]) -> Result<(), Error> {
    let first = certs.first().ok_or("no certificate returned")?;
    let pem = certs_pem(std::slice::from_ref(first))?;
    std::fs::write(p, pem)?;
    eprintln!(
        "wrote certificate {} (serial {}) to {}",
        first.tbs_certificate().subject(),
        first.tbs_certificate().serial_number(),
        p.display()
    );
    Ok(())
}

pub(crate) fn new_key_like(old: &PKey<Private>) -> Result<PKey<Private>, Error> {
    use openssl::pkey::Id;
    let kind = match old.id() {
        Id::RSA if old.bits() >= 4096 => KeyKind::Rsa4096,
        Id::RSA if old.bits() >= 3072 => KeyKind::Rsa3072,
        Id::RSA => KeyKind::Rsa2048,
        Id::EC if old.bits() > 256 => KeyKind::P384,
        Id::EC => KeyKind::P256,
        Id::ED25519 => KeyKind::Ed25519,
        _ => return Err("unsupported key type of the old certificate".into()),
    };
    Ok(est_client::generate_key(kind)?)
}

fn oid_name(o: &der::oid::ObjectIdentifier) -> String {
    let known = [
        (
            est_asn1::oids::CHALLENGE_PASSWORD,
            "challengePassword (channel binding required)",
        ),
        (est_asn1::oids::EXTENSION_REQUEST, "extensionRequest"),
        (est_asn1::oids::MAC_ADDRESS, "macAddress"),
    ];
    if let Some((_, n)) = known.iter().find(|(k, _)| k == o) {
        return format!("{n} ({o})");
    }
    match const_oid::db::DB.by_oid(o) {
        Some(n) => format!("{n} ({o})"),
        None => o.to_string(),
    }
}

/// Shows each CA certificate's subject and SHA-256 fingerprint and asks the user (EST-68,
/// SEC-24), unless `expected` names one of them.
fn confirm_bootstrap(
    certs: &[x509_cert::Certificate],
    expected: Option<&str>,
) -> Result<(), Error> {
    let norm = |s: &str| s.replace([':', ' '], "").to_ascii_uppercase();
    let mut fps = Vec::new();
    // EST-66/EST-67: during a root rollover /cacerts carries the old root and the links too.
    let roles = est_client::cacert_roles(certs);
    for (c, role) in certs.iter().zip(roles) {
        let fp = est_client::fingerprint(&est_client::to_x509(c)?)?;
        let what = match role {
            est_client::CaCertRole::NewWithNew => " (root; NewWithNew during a rollover)",
            est_client::CaCertRole::OldWithOld => " (previous root, OldWithOld)",
            est_client::CaCertRole::RolloverLink => " (rollover link, OldWithNew or NewWithOld)",
            est_client::CaCertRole::Other => "",
        };
        eprintln!(
            "CA certificate: {}{what}\n  SHA-256 fingerprint: {fp}",
            c.tbs_certificate().subject()
        );
        fps.push(fp);
    }
    if let Some(e) = expected {
        if fps.iter().any(|f| norm(f) == norm(e)) {
            return Ok(());
        }
        return Err("no CA certificate has the expected fingerprint: NOT trusted".into());
    }
    eprint!("Compare the fingerprint with one obtained out of band. Trust this CA? [y/N] ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim().eq_ignore_ascii_case("y") || line.trim().eq_ignore_ascii_case("yes") {
        Ok(())
    } else {
        Err("CA not accepted".into())
    }
}
