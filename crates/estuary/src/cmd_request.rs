//! `estuary request ...`: the operator's side of manual approval (EST-49). A held request is
//! approved or rejected here; the client's next identical retry then gets the certificate or a
//! 403.
use std::path::PathBuf;
use std::time::SystemTime;

use clap::Subcommand;
use est_ca::Store;

use crate::config::{AnyError, Config};

#[derive(Subcommand)]
pub enum RequestCmd {
    /// List held requests (all states with --all; default: pending only), oldest first.
    List {
        #[arg(long, env = "ESTUARY_DATA_DIR", default_value = "./estuary-data")]
        data_dir: PathBuf,
        #[arg(long)]
        all: bool,
    },
    /// Approve a pending request: the client's next retry is issued its certificate.
    Approve {
        #[arg(long, env = "ESTUARY_DATA_DIR", default_value = "./estuary-data")]
        data_dir: PathBuf,
        id: String,
    },
    /// Reject a pending request: the client's next retry gets 403.
    Reject {
        #[arg(long, env = "ESTUARY_DATA_DIR", default_value = "./estuary-data")]
        data_dir: PathBuf,
        id: String,
    },
}

async fn open(data_dir: &std::path::Path) -> Result<est_store::SqlStore, AnyError> {
    let cfg = Config::load(data_dir)?;
    Ok(est_store::SqlStore::connect(&cfg.store_url(data_dir)).await?)
}

pub async fn run(cmd: RequestCmd) -> Result<(), AnyError> {
    match cmd {
        RequestCmd::List { data_dir, all } => {
            let store = open(&data_dir).await?;
            let rows = store
                .list_pending(if all { None } else { Some("pending") })
                .await?;
            println!(
                "{:<16} {:<9} {:<10} {:<20} {:<24} SUBJECT",
                "ID", "STATUS", "LABEL", "CREATED", "REQUESTER"
            );
            for r in &rows {
                println!(
                    "{:<16} {:<9} {:<10} {:<20} {:<24} {}",
                    r.id,
                    r.status,
                    if r.label.is_empty() {
                        "(none)"
                    } else {
                        &r.label
                    },
                    r.created_at,
                    r.requester,
                    r.subject
                );
            }
            store.close().await;
            Ok(())
        }
        RequestCmd::Approve { data_dir, id } => decide(&data_dir, &id, "approved").await,
        RequestCmd::Reject { data_dir, id } => decide(&data_dir, &id, "rejected").await,
    }
}

async fn decide(data_dir: &std::path::Path, id: &str, to: &str) -> Result<(), AnyError> {
    let store = open(data_dir).await?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let changed = store
        .transition_pending(id, "pending", to, Some(i64::try_from(now)?), None)
        .await?;
    let current = store.pending_by_id(id).await?;
    store.close().await;
    match (changed, current) {
        (true, Some(r)) => {
            println!("request {id} {to}: {} for {}", r.subject, r.requester);
            Ok(())
        }
        (false, Some(r)) => Err(format!("request {id} is {}, not pending", r.status).into()),
        (_, None) => Err(format!("no request {id}").into()),
    }
}
