//! Group commits that append to the audit trail (see `crate::audit`): certificates with their
//! `cert.issue` records, replay records, and audit records of their own, in one transaction.
//!
//! The records of certificates are appended only for the certificates the transaction
//! actually inserted (a duplicate serial or a replayed pair inserts nothing), so the chain is
//! computed after the inserts, inside the transaction, from the head read under the write lock:
//! - SQLite, two round trips to its worker thread: `BEGIN IMMEDIATE`, the certificates, the
//!   pairs and the head in one statement list; then the audit rows and `COMMIT`.
//! - PostgreSQL (and SQLite batches too large for one statement list): a transaction with
//!   the advisory lock, the pairs, the certificates, the head, the audit rows.
//!
//! Should the transaction fail for another reason than an outage, each piece of work is retried
//! in a transaction of its own, so that only its own caller sees its error.

use super::*;

use crate::audit;

/// A batch sorted for one audited transaction.
#[derive(Debug, Default)]
struct Prepared {
    pairs: Vec<NonceJob>,
    certificates: Vec<Job>,
    /// Serials repeated within the batch (the first keeps it): answered DuplicateSerial.
    duplicates: Vec<Job>,
    audits: Vec<AuditJob>,
}

/// What the transaction did.
#[derive(Debug)]
struct Committed {
    new_pairs: HashSet<PairKey>,
    inserted: HashSet<String>,
    /// The audit records of the standalone audit jobs, in their order (the certificates'
    /// records come first in the chain and need no answer).
    audit_records: Vec<AuditRecord>,
}

/// Commits `batch` (which holds audited work) and answers every caller; returns the outage's
/// description if the database was unreachable.
pub(super) async fn commit(
    target: &Target,
    batch: Vec<Work>,
    counters: &Counters,
) -> Option<String> {
    let prepared = prepare(batch);
    let error = match transaction(target, &prepared).await {
        Ok(done) => {
            answer(prepared, done, counters);
            return None;
        }
        Err(error) => error,
    };
    if error.is_unavailable() {
        let why = error.to_string();
        tracing::error!(%error, "the database is unreachable; failing the queued commits");
        fail(prepared, &error);
        return Some(why);
    }
    let works = into_works(prepared);
    if works.len() == 1 {
        fail_works(works, &error);
        return None;
    }
    tracing::warn!(%error, rows = works.len(), "audited group commit failed; retrying one by one");
    let mut outage: Option<String> = None;
    for work in works {
        if let Some(why) = &outage {
            work.fail_unavailable(why);
            continue;
        }
        let alone = prepare(vec![work]);
        match transaction(target, &alone).await {
            Ok(done) => answer(alone, done, counters),
            Err(error) => {
                if error.is_unavailable() {
                    outage = Some(error.to_string());
                }
                fail(alone, &error);
            }
        }
    }
    outage
}

/// Sorts the batch; within-batch replays (a pair queued twice) are answered at once, as in
/// the unaudited path: the first one queued wins.
fn prepare(batch: Vec<Work>) -> Prepared {
    let Partition {
        certificates,
        pairs,
        audits,
        ..
    } = partition(batch);
    let (certificates, duplicates) = dedupe_serials(certificates);
    Prepared {
        pairs,
        certificates,
        duplicates,
        audits,
    }
}

fn into_works(p: Prepared) -> Vec<Work> {
    let Prepared {
        pairs,
        certificates,
        duplicates,
        audits,
    } = p;
    pairs
        .into_iter()
        .map(Work::Nonce)
        .chain(certificates.into_iter().map(Work::Certificate))
        .chain(duplicates.into_iter().map(Work::Certificate))
        .chain(audits.into_iter().map(Work::Audit))
        .collect()
}

/// The same error for another caller (StoreError is not `Clone`).
fn copy(error: &StoreError) -> StoreError {
    match error {
        StoreError::DuplicateSerial => StoreError::DuplicateSerial,
        StoreError::Replayed => StoreError::Replayed,
        StoreError::Conflict(s) => StoreError::Conflict(s.clone()),
        StoreError::Unavailable(s) => StoreError::Unavailable(s.clone()),
        other => StoreError::Backend(other.to_string()),
    }
}

fn fail(p: Prepared, error: &StoreError) {
    fail_works(into_works(p), error);
}

fn fail_works(works: Vec<Work>, error: &StoreError) {
    for work in works {
        match work {
            Work::Certificate(job) => job.answer(Err(copy(error))),
            Work::Nonce(job) => nonces::answer(vec![job], Err(error)),
            Work::Audit(job) => {
                let _ = job.reply.send(Err(copy(error)));
            }
        }
    }
}

fn answer(p: Prepared, done: Committed, counters: &Counters) {
    nonces::answer(p.pairs, Ok(&done.new_pairs));
    counters.committed(done.inserted.len());
    answer_certificates(p.certificates, &done.inserted, &done.new_pairs);
    answer_certificates(p.duplicates, &HashSet::new(), &done.new_pairs);
    for (job, record) in p.audits.into_iter().zip(done.audit_records) {
        let _ = job.reply.send(Ok(record));
    }
}

/// The audit events to append once the inserts are known: one per certificate recorded, then
/// the standalone ones. Returns them with the number of certificates' events first.
fn events(
    p: &Prepared,
    inserted: &HashSet<String>,
    new_pairs: &HashSet<PairKey>,
) -> (Vec<AuditEvent>, usize) {
    let mut events: Vec<AuditEvent> = p
        .certificates
        .iter()
        .filter(|j| inserted.contains(&j.record.serial))
        .filter(|j| {
            j.claim
                .as_ref()
                .is_none_or(|c| new_pairs.contains(&nonces::key(c)))
        })
        .filter_map(|j| j.audit.clone())
        .collect();
    let of_certificates = events.len();
    events.extend(p.audits.iter().map(|j| j.event.clone()));
    (events, of_certificates)
}

async fn transaction(target: &Target, p: &Prepared) -> Result<Committed, StoreError> {
    if target.backend == Backend::Sqlite && p.certificates.len() <= sql::ROWS_PER_STATEMENT / 2 {
        return transaction_sqlite(target, p).await;
    }
    let pairs = all_pairs(p);
    let mut tx = target.pool.begin().await.map_err(backend_error)?;
    audit::lock_chain(&mut tx, target.backend).await?;
    let new_pairs = if pairs.is_empty() {
        HashSet::new()
    } else {
        let rows = nonces::insert(&pairs, target.backend)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend_error)?;
        nonces::inserted(&rows)?
    };
    let records: Vec<&CertRecord> = p
        .certificates
        .iter()
        .filter(|j| {
            j.claim
                .as_ref()
                .is_none_or(|c| new_pairs.contains(&nonces::key(c)))
        })
        .map(|j| &j.record)
        .collect();
    let inserted = insert_in(&mut tx, target.backend, &records).await?;
    let (events, of_certificates) = events(p, &inserted, &new_pairs);
    let mut records = audit::append_in(&mut tx, target.backend, events).await?;
    tx.commit().await.map_err(backend_error)?;
    Ok(Committed {
        new_pairs,
        inserted,
        audit_records: records.split_off(of_certificates),
    })
}

/// Every pair the transaction inserts, in key order (see `commit_batch`: no deadlock between
/// nodes inserting overlapping pairs).
fn all_pairs(p: &Prepared) -> Vec<&ReplayPair> {
    let mut all: Vec<&ReplayPair> = p
        .pairs
        .iter()
        .map(|j| &j.pair)
        .chain(
            p.certificates
                .iter()
                .chain(&p.duplicates)
                .filter_map(|j| j.claim.as_ref()),
        )
        .collect();
    all.sort_unstable_by(|a, b| {
        (&a.transaction_id, &a.sender_nonce).cmp(&(&b.transaction_id, &b.sender_nonce))
    });
    all
}

/// SQLite in two round trips (see the module comment). On any failure the transaction is
/// rolled back on the same connection, and a connection whose state is then unknown is closed
/// rather than returned to the pool.
async fn transaction_sqlite(target: &Target, p: &Prepared) -> Result<Committed, StoreError> {
    let mut conn = target.pool.acquire().await.map_err(backend_error)?;
    let result = sqlite_steps(&mut conn, p).await;
    if result.is_err() && sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
        conn.close_on_drop();
    }
    result
}

async fn sqlite_steps(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    p: &Prepared,
) -> Result<Committed, StoreError> {
    let pairs = all_pairs(p);
    let certificates: Vec<(&CertRecord, Option<&ReplayPair>)> = p
        .certificates
        .iter()
        .map(|j| (&j.record, j.claim.as_ref()))
        .collect();
    let rows = sql::claiming_commit_sqlite(&certificates, &pairs, audit::HEAD_SQLITE_TAIL)
        .fetch_all(&mut **conn)
        .await
        .map_err(certificate_insert_error)?;
    let mut new_pairs = HashSet::new();
    let mut inserted = HashSet::with_capacity(certificates.len());
    let mut head = None;
    for row in rows {
        match row.len() {
            1 => {
                inserted.insert(row.try_get::<String, _>(0).map_err(backend_error)?);
            }
            2 => {
                new_pairs.insert((
                    row.try_get::<String, _>(0).map_err(backend_error)?,
                    row.try_get::<Vec<u8>, _>(1).map_err(backend_error)?,
                ));
            }
            _ => head = Some(audit::head_from_row(&row)?),
        }
    }
    let (events, of_certificates) = events(p, &inserted, &new_pairs);
    let mut records = audit::chain(head, events);
    let commit = if records.is_empty() {
        sqlx::query("COMMIT")
    } else {
        audit::insert(&records, Backend::Sqlite, "; COMMIT;")?
    };
    commit.execute(&mut **conn).await.map_err(backend_error)?;
    Ok(Committed {
        new_pairs,
        inserted,
        audit_records: records.split_off(of_certificates),
    })
}
