//! `estuary admin ...`: administrators of the web console (issue 11 item 1), and the console's
//! hooks into this binary's configuration ([`Hooks`]).
//!
//! An administrator logs in with a password (stored argon2id-hashed) and a TOTP code (RFC 6238;
//! the secret is printed once, as base32 and as an `otpauth://` URI for authenticator apps, and
//! stored sealed by the server secret). Administrator client certificates need no account:
//! `[admin] admin_subjects` lists the subjects they may have.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use clap::Subcommand;
use est_ca::Store;

use crate::DataDir;
use crate::config::{AnyError, Config};

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Create a console administrator. The password is read from a file (`-`: standard
    /// input; at least 12 characters); a fresh TOTP secret is printed once, for an
    /// authenticator app.
    Add {
        #[command(flatten)]
        dir: DataDir,
        /// Login name: 1 to 64 of A-Z a-z 0-9 . _ - @
        name: String,
        /// File holding the password (`-`: standard input).
        #[arg(long, value_name = "FILE")]
        password_file: PathBuf,
        /// Print one JSON object (name, totp_secret, otpauth) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List console administrators.
    List {
        #[command(flatten)]
        dir: DataDir,
        /// One JSON object per administrator (JSON lines).
        #[arg(long)]
        json: bool,
    },
    /// Remove a console administrator (open sessions end within the idle timeout; restart
    /// the server to end them now).
    Remove {
        #[command(flatten)]
        dir: DataDir,
        name: String,
    },
}

pub async fn run(cmd: AdminCmd) -> Result<(), AnyError> {
    match cmd {
        AdminCmd::Add {
            dir,
            name,
            password_file,
            json,
        } => {
            let cfg = Config::load(&dir.data_dir)?;
            let sealer = cfg.secret_box(&dir.data_dir)?;
            let password = crate::read_password(&password_file)?;
            let store = crate::open_store(&dir.data_dir).await?;
            let added =
                est_ca::admin::add_admin(&store, &sealer, &name, &password, crate::unix_now())
                    .await;
            let audited = match &added {
                Ok(_) => {
                    crate::cmd_audit::record(&store, est_ca::audit_action::ADMIN_ADD, &name, "")
                        .await
                }
                Err(_) => Ok(()),
            };
            store.close().await;
            let added = added?;
            audited?;
            let uri = est_ca::admin::otpauth_uri(&issuer(&cfg), &name, &added.totp_secret_b32);
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "name": name,
                        "totp_secret": added.totp_secret_b32.as_str(),
                        "otpauth": uri,
                    })
                );
            } else {
                println!("administrator {name:?} added");
                println!(
                    "TOTP secret (base32, shown only once): {}",
                    added.totp_secret_b32.as_str()
                );
                println!("authenticator URI: {uri}");
                println!(
                    "log in at https://{}/ with the password and the app's 6-digit code",
                    cfg.admin.listen
                );
            }
            Ok(())
        }
        AdminCmd::List { dir, json } => {
            let store = crate::open_store(&dir.data_dir).await?;
            let admins = store.list_admins().await;
            store.close().await;
            for a in admins? {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"name": a.name, "created_at": crate::fmt_time(a.created_at)})
                    );
                } else {
                    println!("{}\tcreated {}", a.name, crate::fmt_time(a.created_at));
                }
            }
            Ok(())
        }
        AdminCmd::Remove { dir, name } => {
            let store = crate::open_store(&dir.data_dir).await?;
            let removed = store.remove_admin(&name).await;
            let audited = match &removed {
                Ok(true) => {
                    crate::cmd_audit::record(&store, est_ca::audit_action::ADMIN_REMOVE, &name, "")
                        .await
                }
                _ => Ok(()),
            };
            store.close().await;
            audited?;
            if removed? {
                println!("administrator {name:?} removed");
                Ok(())
            } else {
                Err(format!("no administrator {name:?}").into())
            }
        }
    }
}

/// The name authenticator apps show: `Estuary` and the first CA's name.
fn issuer(cfg: &Config) -> String {
    match cfg.cas.first() {
        Some(ca) => format!("Estuary {}", ca.name),
        None => "Estuary".into(),
    }
}

/// The console settings of a configuration.
pub fn console_config(cfg: &Config) -> est_server::console::ConsoleConfig {
    est_server::console::ConsoleConfig {
        admin_subjects: cfg.admin.admin_subjects.clone(),
        issuer: issuer(cfg),
    }
}

/// What the console asks of this binary: user creation as `estuary user add` does it, and
/// the configured labels. Follows SIGHUP reloads ([`Hooks::update`]).
#[derive(Debug)]
pub struct Hooks {
    cfg: std::sync::RwLock<Config>,
    data_dir: PathBuf,
    store: Arc<dyn Store>,
}

impl Hooks {
    pub fn new(cfg: &Config, data_dir: &Path, store: Arc<dyn Store>) -> Self {
        Self {
            cfg: std::sync::RwLock::new(cfg.clone()),
            data_dir: data_dir.to_path_buf(),
            store,
        }
    }

    /// A reloaded configuration: later users get its realm, the token form its labels.
    pub fn update(&self, cfg: &Config) {
        *self.cfg.write().unwrap_or_else(|p| p.into_inner()) = cfg.clone();
    }

    fn cfg(&self) -> Config {
        self.cfg.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl est_server::console::ConsoleOps for Hooks {
    async fn add_user(
        &self,
        name: &str,
        password: &[u8],
        allowed_names: Vec<String>,
    ) -> Result<(), String> {
        crate::setup::add_user(
            &self.cfg(),
            &self.data_dir,
            self.store.as_ref(),
            name,
            password,
            allowed_names,
        )
        .await
        .map_err(|e| e.to_string())
    }

    fn labels(&self) -> Vec<String> {
        self.cfg().labels.iter().map(|l| l.name.clone()).collect()
    }
}
