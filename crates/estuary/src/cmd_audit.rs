//! `estuary audit ...`: the hash-chained audit trail (issue 11, item 4). Every issuance,
//! refusal, held request, approval, rejection, revocation and administrative action is a
//! record in the store, chained by SHA-256 to the one before it (`est_ca::AuditRecord`);
//! `verify` walks the chain and names the first record that was edited, removed or reordered.
//!
//! Removing the newest records leaves a consistent, shorter chain: only a head hash noted
//! elsewhere (`verify` prints it; `--expect-head` checks it) shows that. Operators should copy
//! the head out of the machine now and then (a ticket, a log host, a notebook).
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use est_ca::{AuditEvent, AuditRecord, ChainVerifier, Store};

use crate::DataDir;
use crate::config::AnyError;

/// Records fetched per page while walking the trail: memory stays bounded for any length.
const PAGE: u32 = 1_000;

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Walk the whole audit chain from its first record and check every hash and link.
    /// Prints the record count and the head hash (note it outside this machine: a removal of
    /// the newest records is only detectable against a noted head). Exits non-zero, naming
    /// the first broken record, if a record was edited, removed or reordered.
    Verify {
        #[command(flatten)]
        dir: DataDir,
        /// A head hash noted earlier: fail unless the chain still contains that record (the
        /// chain may have grown since, but not lost it).
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
    },
    /// Write audit records as JSON lines (one object per record: seq, prev_hash, hash, time,
    /// actor, source, action, target, label, details; time in unix seconds, plus `at` in
    /// RFC 3339), oldest first.
    Export {
        #[command(flatten)]
        dir: DataDir,
        /// Write to this file instead of standard output (replaced if it exists).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Only records at or after this time: RFC 3339 (`2026-12-01T00:00:00Z`) or unix
        /// seconds.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only records with a sequence number above this one (for incremental exports:
        /// give the last seq exported before).
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        after_seq: u64,
    },
    /// Show the newest audit records, oldest of them first.
    List {
        #[command(flatten)]
        dir: DataDir,
        /// One JSON object per record (JSON lines) instead of the table.
        #[arg(long)]
        json: bool,
        /// How many of the newest records to show (0: all).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Appends an administrative action of the command line to the audit trail: actor
/// `cli:<unix user>`, source `cli`.
pub(crate) async fn record(
    store: &dyn Store,
    action: &str,
    target: &str,
    details: impl Into<String>,
) -> Result<(), AnyError> {
    let event = AuditEvent::new(crate::unix_now(), crate::cmd_crl::actor(), "cli", action)
        .target(target)
        .details(details);
    store
        .append_audit(&event)
        .await
        .map_err(|e| format!("the action was done, but its audit record was not written: {e}"))?;
    Ok(())
}

pub async fn run(cmd: AuditCmd) -> Result<(), AnyError> {
    match cmd {
        AuditCmd::Verify { dir, expect_head } => {
            let store = crate::open_store(&dir.data_dir).await?;
            let result = verify(&store, expect_head.as_deref()).await;
            store.close().await;
            let (count, head) = result?;
            println!("audit chain OK: {count} record(s)");
            println!("head: {head}");
            Ok(())
        }
        AuditCmd::Export {
            dir,
            out,
            since,
            after_seq,
        } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            let store = crate::open_store(&dir.data_dir).await?;
            let result = export(&store, out.as_deref(), since, after_seq).await;
            store.close().await;
            let n = result?;
            if let Some(path) = out {
                eprintln!("{n} record(s) written to {}", path.display());
            }
            Ok(())
        }
        AuditCmd::List { dir, json, limit } => {
            let store = crate::open_store(&dir.data_dir).await?;
            let result = newest(&store, limit).await;
            store.close().await;
            let records = result?;
            if json {
                for r in &records {
                    println!("{}", json_line(r)?);
                }
                return Ok(());
            }
            println!(
                "{:>6} {:<20} {:<16} {:<18} {:<22} {:<34} DETAILS",
                "SEQ", "TIME", "ACTION", "ACTOR", "SOURCE", "TARGET"
            );
            for r in &records {
                let e = &r.event;
                let target = if e.label.is_empty() {
                    e.target.clone()
                } else {
                    format!("{} (label {})", e.target, e.label)
                };
                // Fields hold what clients sent (subject names): no control characters reach
                // the terminal, so no record can fake a line of the table.
                println!(
                    "{:>6} {:<20} {:<16} {:<18} {:<22} {:<34} {}",
                    r.seq,
                    crate::fmt_time(e.time),
                    printable(&e.action),
                    printable(&e.actor),
                    printable(&e.source),
                    printable(&target),
                    printable(&e.details)
                );
            }
            Ok(())
        }
    }
}

/// Walks the chain page by page: (count, head) or the first break, as an error naming it.
async fn verify(store: &dyn Store, expect_head: Option<&str>) -> Result<(u64, String), AnyError> {
    let mut verifier = ChainVerifier::new();
    if let Some(head) = expect_head {
        verifier = verifier.expect_head(head);
    }
    let mut after = 0;
    loop {
        let page = store.list_audit(after, PAGE).await?;
        let Some(last) = page.last().map(|r| r.seq) else {
            break;
        };
        for r in &page {
            verifier
                .push(r)
                .map_err(|e| format!("audit chain BROKEN: {e}"))?;
        }
        after = last;
    }
    Ok(verifier
        .finish()
        .map_err(|e| format!("audit chain BROKEN: {e}"))?)
}

async fn export(
    store: &dyn Store,
    out: Option<&Path>,
    since: Option<i64>,
    after_seq: u64,
) -> Result<u64, AnyError> {
    let mut sink: Box<dyn Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut after = after_seq;
    let mut written = 0u64;
    loop {
        let page = store.list_audit(after, PAGE).await?;
        let Some(last) = page.last().map(|r| r.seq) else {
            break;
        };
        for r in page
            .iter()
            .filter(|r| since.is_none_or(|t| r.event.time >= t))
        {
            writeln!(sink, "{}", json_line(r)?)?;
            written += 1;
        }
        after = last;
    }
    sink.flush()?;
    Ok(written)
}

/// The newest `limit` records (0: all), oldest of them first.
async fn newest(store: &dyn Store, limit: u32) -> Result<Vec<AuditRecord>, AnyError> {
    let head = store.audit_head().await?.map_or(0, |r| r.seq);
    let after = if limit == 0 {
        0
    } else {
        head.saturating_sub(u64::from(limit))
    };
    Ok(store.list_audit(after, limit).await?)
}

/// One record as a JSON object: its fields, plus `at` (RFC 3339) for people.
fn json_line(r: &AuditRecord) -> Result<String, AnyError> {
    let mut v = serde_json::to_value(r)?;
    if let Some(map) = v.as_object_mut() {
        map.insert("at".into(), crate::fmt_time(r.event.time).into());
    }
    Ok(v.to_string())
}

/// `s` with control characters escaped (`\n`, `\u{1b}`).
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn parse_since(s: &str) -> Result<i64, AnyError> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            format!("--since {s:?}: expected RFC 3339 (2026-12-01T00:00:00Z) or unix seconds: {e}")
        })?;
    Ok(t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_escapes_control_characters() {
        assert_eq!(
            printable("CN=a\n     2 fake\u{1b}[31m"),
            "CN=a\\n     2 fake\\u{1b}[31m"
        );
        assert_eq!(printable("CN=é"), "CN=é");
    }

    #[test]
    fn since_takes_rfc3339_or_unix_seconds() {
        assert_eq!(parse_since("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_since("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000);
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn json_lines_carry_every_field_and_a_readable_time() {
        let r = AuditRecord::chain(
            None,
            AuditEvent::new(1_700_000_000, "user:a", "192.0.2.1:1", "cert.issue")
                .target("01ab")
                .label("l")
                .details("d"),
        );
        let v: serde_json::Value = serde_json::from_str(&json_line(&r).unwrap()).unwrap();
        for (k, want) in [
            ("actor", "user:a"),
            ("source", "192.0.2.1:1"),
            ("action", "cert.issue"),
            ("target", "01ab"),
            ("label", "l"),
            ("details", "d"),
            ("at", "2023-11-14T22:13:20Z"),
        ] {
            assert_eq!(v[k], want, "{k}");
        }
        assert_eq!(v["seq"], 1);
        assert_eq!(v["time"], 1_700_000_000);
        assert_eq!(v["prev_hash"], est_ca::AUDIT_GENESIS);
        assert_eq!(v["hash"], r.hash.as_str());
        // The record reads back from its line (serde_json ignores the extra `at`).
        let back: AuditRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
