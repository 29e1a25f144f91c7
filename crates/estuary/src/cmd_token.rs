//! `estuary token ...`: one-time enrollment tokens (SEC-1: a single-use secret, exchanged once
//! for a certificate that is then used for everything else).
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64::Engine;
use clap::Subcommand;
use est_ca::{Store, TokenRecord};

use crate::config::{AnyError, Config};

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create a token for one enrollment on a label; prints its id (the Basic user name) and
    /// secret (the password). Only the SHA-256 of the secret is stored.
    Create {
        /// Data directory holding estuary.toml.
        #[arg(long, env = "ESTUARY_DATA_DIR", default_value = "./estuary-data")]
        data_dir: PathBuf,
        /// The CA label it is valid on ("" for the label-less path).
        #[arg(long, default_value = "")]
        label: String,
        /// Subject (RFC 4514, e.g. `CN=dev1.example`) the certificate must have; any if omitted.
        #[arg(long)]
        subject: Option<String>,
        /// Lifetime: seconds, or a number with s, m, h or d.
        #[arg(long, default_value = "7d")]
        expires: String,
        /// Print `{"id": ..., "secret": ...}`.
        #[arg(long)]
        json: bool,
    },
    /// List tokens, newest first, with their state (unused, used, expired, revoked); secrets
    /// are never stored, so never shown.
    List {
        /// Data directory holding estuary.toml.
        #[arg(long, env = "ESTUARY_DATA_DIR", default_value = "./estuary-data")]
        data_dir: PathBuf,
        /// One JSON object per token (JSON lines).
        #[arg(long)]
        json: bool,
    },
    /// Revoke an unused token: it can no longer be used to enroll.
    Revoke {
        /// Data directory holding estuary.toml.
        #[arg(long, env = "ESTUARY_DATA_DIR", default_value = "./estuary-data")]
        data_dir: PathBuf,
        /// The token id (`tok_...`).
        id: String,
    },
}

/// What an operator needs to know about a token.
fn token_state(t: &TokenRecord, now: i64) -> &'static str {
    match t.used_at {
        Some(_) if t.used_by == est_ca::TOKEN_REVOKED_BY => "revoked",
        Some(_) => "used",
        None if t.expires_at <= now => "expired",
        None => "unused",
    }
}

/// `90`, `90s`, `30m`, `24h`, `7d`.
pub(crate) fn parse_lifetime(s: &str) -> Result<Duration, AnyError> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| format!("invalid lifetime {s:?}"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("invalid lifetime unit in {s:?} (s, m, h or d)").into()),
    };
    if n == 0 {
        return Err("the lifetime must be positive".into());
    }
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

fn random_b64(bytes: usize) -> Result<String, AnyError> {
    let mut b = zeroize::Zeroizing::new(vec![0u8; bytes]);
    openssl::rand::rand_bytes(&mut b)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&*b))
}

pub async fn run(cmd: TokenCmd) -> Result<(), AnyError> {
    match cmd {
        TokenCmd::Create {
            data_dir,
            label,
            subject,
            expires,
            json,
        } => {
            let cfg = Config::load(&data_dir)?;
            if !cfg.labels.iter().any(|l| l.name == label) {
                return Err(format!("unknown label {label:?}").into());
            }
            if let Some(s) = &subject {
                // Normalise to the form the server compares against.
                let name = <x509_cert::name::Name as std::str::FromStr>::from_str(s)
                    .map_err(|e| format!("invalid subject {s:?}: {e}"))?;
                if name.to_string() != *s {
                    return Err(format!(
                        "write the subject as {:?} (RFC 4514, as the server compares it)",
                        name.to_string()
                    )
                    .into());
                }
            }
            let lifetime = parse_lifetime(&expires)?;
            let mut idb = [0u8; 8];
            openssl::rand::rand_bytes(&mut idb)?;
            let id = format!("{}{}", est_server::TOKEN_PREFIX, hex::encode(idb));
            let secret = zeroize::Zeroizing::new(random_b64(24)?);
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let rec = TokenRecord {
                id: id.clone(),
                label: label.clone(),
                secret_sha256: est_ca::token_secret_hash(secret.as_bytes()),
                subject: subject.unwrap_or_default(),
                created_at: i64::try_from(now)?,
                expires_at: i64::try_from(now.saturating_add(lifetime.as_secs()))?,
                used_at: None,
                used_by: String::new(),
            };
            let store = est_store::SqlStore::connect(&cfg.store_url(&data_dir)).await?;
            store.add_token(&rec).await?;
            let details = format!(
                "subject={}; expires_at={}",
                if rec.subject.is_empty() {
                    "any"
                } else {
                    &rec.subject
                },
                crate::fmt_time(rec.expires_at)
            );
            let audited =
                crate::cmd_audit::record(&store, est_ca::audit_action::TOKEN_CREATE, &id, details)
                    .await;
            store.close().await;
            audited?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"id": id, "secret": secret.as_str(), "label": label, "expires_at": rec.expires_at})
                );
            } else {
                println!("token id:     {id}");
                println!("token secret: {}   (shown only once)", secret.as_str());
                println!(
                    "valid once on label {label:?} until {}; use it as HTTP Basic credentials",
                    crate::fmt_time(rec.expires_at)
                );
            }
            Ok(())
        }
        TokenCmd::List { data_dir, json } => {
            let cfg = Config::load(&data_dir)?;
            let store = est_store::SqlStore::connect(&cfg.store_url(&data_dir)).await?;
            let tokens = store.list_tokens().await;
            store.close().await;
            let now = crate::unix_now();
            for t in tokens? {
                let state = token_state(&t, now);
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": t.id, "label": t.label, "subject": t.subject, "state": state,
                            "created_at": crate::fmt_time(t.created_at),
                            "expires_at": crate::fmt_time(t.expires_at),
                            "used_at": t.used_at.map(crate::fmt_time),
                            "used_by": (state == "used").then_some(t.used_by.as_str()),
                        })
                    );
                } else {
                    let used = match (state, t.used_at) {
                        ("used", Some(at)) => {
                            format!(" by {} at {}", t.used_by, crate::fmt_time(at))
                        }
                        ("revoked", Some(at)) => format!(" at {}", crate::fmt_time(at)),
                        _ => String::new(),
                    };
                    println!(
                        "{}  label={:?}  subject={:?}  expires {}  {state}{used}",
                        t.id,
                        t.label,
                        t.subject,
                        crate::fmt_time(t.expires_at)
                    );
                }
            }
            Ok(())
        }
        TokenCmd::Revoke { data_dir, id } => {
            let cfg = Config::load(&data_dir)?;
            let store = est_store::SqlStore::connect(&cfg.store_url(&data_dir)).await?;
            let revoked = store.revoke_token(&id, crate::unix_now()).await;
            let found = store.get_token(&id).await;
            let audited = match &revoked {
                Ok(true) => {
                    crate::cmd_audit::record(&store, est_ca::audit_action::TOKEN_REVOKE, &id, "")
                        .await
                }
                _ => Ok(()),
            };
            store.close().await;
            audited?;
            if revoked? {
                println!("revoked token {id}");
                return Ok(());
            }
            match found? {
                None => Err(format!("no token {id:?}").into()),
                Some(t) => Err(format!(
                    "token {id} is already {}: nothing to revoke",
                    token_state(&t, crate::unix_now())
                )
                .into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_lifetime("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_lifetime("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_lifetime("7d").unwrap(), Duration::from_secs(604800));
        for bad in ["", "0", "5w", "h", "-1d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}
