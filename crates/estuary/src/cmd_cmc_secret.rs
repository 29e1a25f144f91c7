//! `estuary cmc-secret ...`: CMC shared secrets (RFC 5272 §6.2, §6.3, §3.2), named by the
//! Identification value a client sends (CMC-46) and keying its identity proof (CMC-44), POP
//! link witness and AuthenticatedData MAC (CMC-18). Sealed at rest like client keys; the secret
//! is never printed or logged.
use std::path::PathBuf;

use clap::Subcommand;
use est_ca::{CaError, Store, StoreError};

use crate::config::{AnyError, Config};

#[derive(Subcommand)]
pub enum CmcSecretCmd {
    /// Store a shared secret (16 bytes at least, CMC-45) under an ident, sealed with the
    /// server secret and bound to the ident.
    Add {
        #[command(flatten)]
        dir: crate::DataDir,
        /// The Identification value (id-cmc-identification) clients send to name the secret.
        #[arg(long)]
        ident: String,
        /// File holding the secret, or `-` for stdin; trailing newlines are stripped.
        #[arg(long)]
        secret_file: PathBuf,
        /// The CA label the secret may be used on; any label when omitted.
        #[arg(long, default_value = "")]
        label: String,
        /// Subject (RFC 4514) the secret is linked to: requests proven with it must ask for
        /// exactly this subject (CMC-49). None when omitted.
        #[arg(long, default_value = "")]
        subject: String,
    },
    /// List the stored secrets: ident, label, subject and creation time, never the secret.
    List {
        #[command(flatten)]
        dir: crate::DataDir,
        /// One JSON object per secret (JSON lines).
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret; requests naming its ident then fail.
    Remove {
        #[command(flatten)]
        dir: crate::DataDir,
        #[arg(long)]
        ident: String,
    },
}

pub async fn run(cmd: CmcSecretCmd) -> Result<(), AnyError> {
    match cmd {
        CmcSecretCmd::Add {
            dir,
            ident,
            secret_file,
            label,
            subject,
        } => {
            let cfg = Config::load(&dir.data_dir)?;
            if !label.is_empty() && !cfg.labels.iter().any(|l| l.name == label) {
                return Err(format!("unknown label {label:?}").into());
            }
            let secret = crate::read_password(&secret_file)?;
            let (store, sealer) = crate::client_key_registry(&dir.data_dir).await?;
            let added = est_ca::CmcSecrets {
                store: &store,
                sealer: &sealer,
            }
            .add(&ident, &secret, &label, &subject, crate::now_secs())
            .await;
            let audited = match &added {
                Ok(r) => {
                    let details = format!(
                        "label={}; subject={}",
                        shown_label(&r.label),
                        shown_subject(&r.subject)
                    );
                    crate::cmd_audit::record(
                        &store,
                        est_ca::audit_action::CMC_SECRET_ADD,
                        &ident,
                        details,
                    )
                    .await
                }
                Err(_) => Ok(()),
            };
            store.close().await;
            audited?;
            let record = match added {
                Err(CaError::Store(StoreError::Conflict(_))) => {
                    return Err(format!(
                        "a CMC shared secret with ident {ident:?} exists; remove it first"
                    )
                    .into());
                }
                other => other?,
            };
            println!(
                "stored a {}-byte CMC shared secret under ident {ident:?} (label {}, subject {})",
                secret.len(),
                shown_label(&record.label),
                shown_subject(&record.subject)
            );
            Ok(())
        }
        CmcSecretCmd::List { dir, json } => {
            let store = crate::open_store(&dir.data_dir).await?;
            let secrets = store.list_cmc_secrets().await;
            store.close().await;
            for s in secrets? {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "ident": s.ident,
                            "label": s.label,
                            "subject": s.subject,
                            "created_at": crate::fmt_time(s.created_at),
                        })
                    );
                    continue;
                }
                println!(
                    "ident {:?}\tlabel {}\tsubject {}\tcreated {}",
                    s.ident,
                    shown_label(&s.label),
                    shown_subject(&s.subject),
                    crate::fmt_time(s.created_at)
                );
            }
            Ok(())
        }
        CmcSecretCmd::Remove { dir, ident } => {
            let store = crate::open_store(&dir.data_dir).await?;
            let removed = store.remove_cmc_secret(&ident).await;
            let audited = match &removed {
                Ok(true) => {
                    crate::cmd_audit::record(
                        &store,
                        est_ca::audit_action::CMC_SECRET_REMOVE,
                        &ident,
                        "",
                    )
                    .await
                }
                _ => Ok(()),
            };
            store.close().await;
            audited?;
            if removed? {
                println!("removed the CMC shared secret {ident:?}");
                Ok(())
            } else {
                Err(format!("no CMC shared secret with ident {ident:?}").into())
            }
        }
    }
}

fn shown_label(label: &str) -> &str {
    if label.is_empty() { "(any)" } else { label }
}

fn shown_subject(subject: &str) -> &str {
    if subject.is_empty() {
        "(none)"
    } else {
        subject
    }
}
