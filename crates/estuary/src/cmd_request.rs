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
        /// One JSON object per request (JSON lines) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Show one held request in full: requester, label, times, and what the request asks
    /// for (subject, every SubjectAltName, key type and size, requested extensions, other
    /// attributes), then the PKCS#10 request as PEM for `openssl req -text`.
    Show {
        #[arg(long, env = "ESTUARY_DATA_DIR", default_value = "./estuary-data")]
        data_dir: PathBuf,
        id: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending request: the client's next retry is issued its certificate.
    Approve {
        #[arg(long, env = "ESTUARY_DATA_DIR", default_value = "./estuary-data")]
        data_dir: PathBuf,
        id: String,
    },
    /// Reject a pending request: the client's next retry gets 403, with the reason.
    Reject {
        #[arg(long, env = "ESTUARY_DATA_DIR", default_value = "./estuary-data")]
        data_dir: PathBuf,
        id: String,
        /// Why (recorded in the audit trail and told to the client in its 403 or CMC failure).
        #[arg(long, default_value = "")]
        reason: String,
    },
}

async fn open(data_dir: &std::path::Path) -> Result<est_store::SqlStore, AnyError> {
    let cfg = Config::load(data_dir)?;
    Ok(est_store::SqlStore::connect(&cfg.store_url(data_dir)).await?)
}

pub async fn run(cmd: RequestCmd) -> Result<(), AnyError> {
    match cmd {
        RequestCmd::List {
            data_dir,
            all,
            json,
        } => {
            let store = open(&data_dir).await?;
            let rows = store
                .list_pending(if all { None } else { Some("pending") })
                .await?;
            if json {
                for r in &rows {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": r.id,
                            "status": r.status,
                            "label": r.label,
                            "created_at": crate::fmt_time(r.created_at),
                            "requester": r.requester,
                            "subject": r.subject,
                        })
                    );
                }
                store.close().await;
                return Ok(());
            }
            println!(
                "{:<16} {:<9} {:<10} {:<25} {:<24} SUBJECT",
                "ID", "STATUS", "LABEL", "CREATED", "REQUESTER"
            );
            for r in &rows {
                println!(
                    "{:<16} {:<9} {:<10} {:<25} {:<24} {}",
                    r.id,
                    r.status,
                    if r.label.is_empty() {
                        "(none)"
                    } else {
                        &r.label
                    },
                    crate::fmt_time(r.created_at),
                    r.requester,
                    r.subject
                );
            }
            store.close().await;
            Ok(())
        }
        RequestCmd::Show { data_dir, id, json } => {
            let store = open(&data_dir).await?;
            let found = store.pending_by_id(&id).await;
            store.close().await;
            let r = found?.ok_or_else(|| format!("no request {id}"))?;
            show(&r, json)
        }
        RequestCmd::Approve { data_dir, id } => decide(&data_dir, &id, "approved", "").await,
        RequestCmd::Reject {
            data_dir,
            id,
            reason,
        } => decide(&data_dir, &id, "rejected", reason.trim()).await,
    }
}

async fn decide(
    data_dir: &std::path::Path,
    id: &str,
    to: &str,
    reason: &str,
) -> Result<(), AnyError> {
    let store = open(data_dir).await?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let changed = store
        .decide_pending(id, to, i64::try_from(now)?, reason)
        .await?;
    let current = store.pending_by_id(id).await?;
    let audited = match (&changed, &current) {
        (true, Some(r)) => {
            let action = if to == "approved" {
                est_ca::audit_action::REQUEST_APPROVE
            } else {
                est_ca::audit_action::REQUEST_REJECT
            };
            let mut details = format!(
                "subject={}; requester={}; label={}",
                r.subject, r.requester, r.label
            );
            if !reason.is_empty() {
                details.push_str(&format!("; reason={reason}"));
            }
            crate::cmd_audit::record(&store, action, id, details).await
        }
        _ => Ok(()),
    };
    store.close().await;
    audited?;
    match (changed, current) {
        (true, Some(r)) => {
            println!("request {id} {to}: {} for {}", r.subject, r.requester);
            Ok(())
        }
        (false, Some(r)) => Err(format!("request {id} is {}, not pending", r.status).into()),
        (_, None) => Err(format!("no request {id}").into()),
    }
}

fn show(r: &est_ca::PendingRecord, json: bool) -> Result<(), AnyError> {
    let a = est_server::console::describe_request(&r.csr);
    let decided = (r.decided_at != 0).then(|| crate::fmt_time(r.decided_at));
    if json {
        println!(
            "{}",
            serde_json::json!({
                "id": r.id, "status": r.status, "label": r.label, "requester": r.requester,
                "created_at": crate::fmt_time(r.created_at), "decided_at": decided,
                "reason": (!r.reason.is_empty()).then_some(r.reason.as_str()),
                "client_addr": (!r.client_addr.is_empty()).then_some(r.client_addr.as_str()),
                "serial": (!r.serial.is_empty()).then_some(r.serial.as_str()),
                "form": a.as_ref().map(|a| a.form),
                "subject": a.as_ref().map_or(r.subject.as_str(), |a| a.subject.as_str()),
                "san": a.as_ref().map(|a| a.sans.clone()).unwrap_or_default(),
                "key": a.as_ref().map(|a| a.key.as_str()),
                "signature_algorithm": a.as_ref().and_then(|a| a.signature.as_deref()),
                "extensions": a.as_ref().map(|a| a.extensions.clone()).unwrap_or_default(),
                "attributes": a.as_ref().map(|a| a.attributes.clone()).unwrap_or_default(),
            })
        );
        return Ok(());
    }
    println!("request:    {}", r.id);
    println!("status:     {}", r.status);
    println!(
        "label:      {}",
        if r.label.is_empty() {
            "(none)"
        } else {
            &r.label
        }
    );
    println!("requester:  {}", r.requester);
    println!("received:   {}", crate::fmt_time(r.created_at));
    if !r.client_addr.is_empty() {
        println!("from:       {}", r.client_addr);
    }
    if let Some(d) = &decided {
        println!("decided:    {d}");
    }
    if !r.reason.is_empty() {
        println!("reason:     {}", r.reason);
    }
    if !r.serial.is_empty() {
        println!("serial:     {}", r.serial);
    }
    let Some(a) = a else {
        println!("subject:    {}", r.subject);
        println!(
            "request:    {} bytes, neither PKCS#10 nor CRMF",
            r.csr.len()
        );
        return Ok(());
    };
    println!("form:       {}", a.form);
    println!("subject:    {}", a.subject);
    if a.sans.is_empty() {
        println!("SAN:        (none)");
    }
    for s in &a.sans {
        println!("SAN:        {s}");
    }
    println!("key:        {}", a.key);
    if let Some(s) = &a.signature {
        println!("signature:  {s}");
    }
    for e in &a.extensions {
        println!("extension:  {e}");
    }
    for at in &a.attributes {
        println!("attribute:  {at}");
    }
    if a.form == "PKCS#10" {
        let pem = der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &r.csr)?;
        print!("{pem}");
    }
    Ok(())
}
