//! Group commit: one task owns certificate inserts and commits them in batches.
//!
//! A durable commit costs an fsync (SQLite's WAL, PostgreSQL's WAL flush); issuing callers that
//! each paid for their own would serialize on the disk and cap issuance at the fsync rate. The
//! writer instead takes everything that queued up while the previous commit was syncing, writes
//! it in one transaction, pays one fsync, then answers every caller. Under load batches grow by
//! themselves; an idle store commits a lone insert at once, with no added delay.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use est_ca::{CertRecord, StoreError};
use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::{backend_error, certificate_insert_error};
use crate::sql::{self, OnDuplicate};
use crate::{Backend, checkpoint};

/// Counters of the group-commit writer, to observe that batching happens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Transactions the writer committed.
    pub commits: u64,
    /// Certificates those transactions inserted.
    pub rows: u64,
    /// The most certificates one transaction inserted.
    pub largest_batch: u64,
}

#[derive(Debug, Default)]
struct Counters {
    commits: AtomicU64,
    rows: AtomicU64,
    largest_batch: AtomicU64,
}

impl Counters {
    fn committed(&self, rows: usize) {
        let rows = u64::try_from(rows).unwrap_or(u64::MAX);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.largest_batch.fetch_max(rows, Ordering::Relaxed);
    }
}

/// One caller waiting for its certificate to be committed.
#[derive(Debug)]
struct Job {
    record: CertRecord,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

impl Job {
    /// The caller may have gone away (its future dropped); the row is committed regardless, so
    /// there is nothing to do about a closed reply channel.
    fn answer(self, result: Result<(), StoreError>) {
        let _ = self.reply.send(result);
    }
}

/// The handle the store keeps: dropping it closes the queue, and the writer then finishes what
/// is queued and stops.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
    task: JoinHandle<()>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer task on the current tokio runtime.
    ///
    /// With `checkpoint_pool` (SQLite), the writer also runs [`crate::checkpoint`] on that pool
    /// (restarting the WAL past `wal_restart_pages`) and asks it for a checkpoint after each
    /// commit.
    pub(crate) fn spawn(
        pool: AnyPool,
        backend: Backend,
        max_batch: usize,
        queue_capacity: usize,
        checkpoint_pool: Option<AnyPool>,
        wal_restart_pages: i64,
    ) -> Writer {
        let (queue, jobs) = mpsc::channel(queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let checkpoints = checkpoint_pool.map(|pool| {
            let (requests, pending) = mpsc::channel(1);
            (
                requests,
                tokio::spawn(checkpoint::run(pool, pending, wal_restart_pages)),
            )
        });
        let target = Target {
            pool,
            backend,
            checkpoints,
        };
        let task = tokio::spawn(run(target, jobs, max_batch.max(1), Arc::clone(&counters)));
        Writer {
            queue,
            task,
            counters,
        }
    }

    /// Queues `record` and waits until it is committed (or refused).
    pub(crate) async fn insert(&self, record: CertRecord) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { record, reply })
            .await
            .map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }

    pub(crate) fn stats(&self) -> StoreStats {
        StoreStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            rows: self.counters.rows.load(Ordering::Relaxed),
            largest_batch: self.counters.largest_batch.load(Ordering::Relaxed),
        }
    }

    /// Closes the queue and waits for the writer to commit what was queued and exit.
    pub(crate) async fn shutdown(self) {
        let Writer { queue, task, .. } = self;
        drop(queue);
        if let Err(e) = task.await {
            tracing::error!(error = %e, "certificate writer task failed");
        }
    }
}

/// Where the writer writes, and who checkpoints after it.
#[derive(Debug)]
struct Target {
    pool: AnyPool,
    backend: Backend,
    checkpoints: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

fn writer_stopped() -> StoreError {
    StoreError::Backend("the certificate writer has stopped".into())
}

async fn run(
    target: Target,
    mut jobs: mpsc::Receiver<Job>,
    max_batch: usize,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    // `recv_many` waits for one job, then takes whatever else is already queued: that is the
    // whole batching policy. It returns 0 once every sender is gone and the queue is empty.
    while jobs.recv_many(&mut batch, max_batch).await > 0 {
        commit_batch(&target, std::mem::take(&mut batch), &counters).await;
        if let Some((requests, _)) = &target.checkpoints {
            // Full means a checkpoint is already due; it will cover this commit too.
            let _ = requests.try_send(());
        }
    }
    tracing::debug!("certificate writer stopping: store dropped");
    let Target {
        pool, checkpoints, ..
    } = target;
    if let Some((requests, checkpointer)) = checkpoints {
        drop(requests);
        if let Err(e) = checkpointer.await {
            tracing::error!(error = %e, "WAL checkpoint task failed");
        }
    }
    pool.close().await;
}

/// Commits one batch and answers each caller with its own outcome.
async fn commit_batch(target: &Target, batch: Vec<Job>, counters: &Counters) {
    // Two callers with the same serial in one batch: the first one queued keeps it. Settling
    // this here keeps the statement free of self-conflicting rows.
    let mut seen = HashSet::with_capacity(batch.len());
    let mut jobs = Vec::with_capacity(batch.len());
    for job in batch {
        if seen.insert(job.record.serial.clone()) {
            jobs.push(job);
        } else {
            job.answer(Err(StoreError::DuplicateSerial));
        }
    }
    let records: Vec<&CertRecord> = jobs.iter().map(|job| &job.record).collect();
    match insert_committed(target, &records).await {
        Ok(inserted) => {
            counters.committed(inserted.len());
            for job in jobs {
                let result = if inserted.contains(&job.record.serial) {
                    Ok(())
                } else {
                    Err(StoreError::DuplicateSerial)
                };
                job.answer(result);
            }
        }
        Err(error) if jobs.len() == 1 => {
            if let Some(job) = jobs.into_iter().next() {
                job.answer(Err(error));
            }
        }
        Err(error) => {
            // Something in the batch broke the whole transaction (not a duplicate serial: those
            // are skipped, not failed). Retry each row alone so only its own caller sees the
            // error; the others still get their certificate.
            tracing::warn!(%error, rows = jobs.len(), "group commit failed; retrying rows one by one");
            for job in jobs {
                let result = match insert_committed(target, &[&job.record]).await {
                    Ok(inserted) => {
                        counters.committed(inserted.len());
                        if inserted.is_empty() {
                            Err(StoreError::DuplicateSerial)
                        } else {
                            Ok(())
                        }
                    }
                    Err(error) => Err(error),
                };
                job.answer(result);
            }
        }
    }
}

/// Inserts `records` in one transaction, skipping serials that already exist, and returns the
/// serials actually inserted once the commit is durable.
async fn insert_committed(
    target: &Target,
    records: &[&CertRecord],
) -> Result<HashSet<String>, StoreError> {
    let mut tx = target.pool.begin().await.map_err(backend_error)?;
    let mut inserted = HashSet::with_capacity(records.len());
    for chunk in records.chunks(sql::ROWS_PER_STATEMENT) {
        let rows = sql::insert_certificates(chunk, OnDuplicate::Skip, target.backend)
            .fetch_all(&mut *tx)
            .await
            .map_err(certificate_insert_error)?;
        for row in rows {
            inserted.insert(row.try_get::<String, _>(0).map_err(backend_error)?);
        }
    }
    if !inserted.is_empty() {
        let added = i64::try_from(inserted.len()).unwrap_or(i64::MAX);
        sqlx::query(sql::ADD_TO_COUNT)
            .bind(added)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
    }
    tx.commit().await.map_err(backend_error)?;
    Ok(inserted)
}
