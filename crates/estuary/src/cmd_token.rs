//! `estuary token ...`: one-time enrollment tokens (SEC-1: a single-use secret, exchanged once
//! for a certificate that is then used for everything else).
use std::path::PathBuf;

use clap::Subcommand;
use est_ca::Store;

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
                est_ca::check_token_subject(s)?;
            }
            let lifetime = est_ca::parse_lifetime(&expires)?;
            let (rec, secret) = est_ca::new_token(
                &label,
                subject.as_deref().unwrap_or_default(),
                lifetime,
                crate::unix_now(),
            )?;
            let id = rec.id.clone();
            let store = est_store::SqlStore::connect(&cfg.store_url(&data_dir)).await?;
            store.add_token(&rec).await?;
            let details = rec.audit_details();
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
                let state = t.state(now);
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
                    t.state(crate::unix_now())
                )
                .into()),
            }
        }
    }
}
