//! Group commit for CMC replay records (CMC-53): every /fullcmc request with a senderNonce
//! records its (transactionId, senderNonce) pair durably before it is answered. One durable
//! INSERT per request would serialize requests on the write connection and its fsync (it cost
//! /fullcmc a quarter of the server's CPU and most of its throughput, docs/performance.md), so
//! a task takes whatever pairs queued up while the previous commit was syncing and inserts
//! them in one statement (`ON CONFLICT DO NOTHING RETURNING`), then answers each caller: new,
//! or seen before. The unique key decides, across concurrent callers and nodes.
use std::collections::HashSet;

use est_ca::StoreError;
use sqlx::{AnyPool, AssertSqlSafe, Row};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::Backend;
use crate::error::backend_error;

/// Pairs per statement at most (3 parameters each).
const MAX_BATCH: usize = 256;

#[derive(Debug)]
struct Job {
    transaction_id: String,
    sender_nonce: Vec<u8>,
    seen_at: i64,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

#[derive(Debug)]
pub(crate) struct NonceWriter {
    queue: mpsc::Sender<Job>,
    task: JoinHandle<()>,
}

fn stopped() -> StoreError {
    StoreError::Backend("the replay-record writer has stopped".into())
}

impl NonceWriter {
    pub(crate) fn spawn(pool: AnyPool, backend: Backend) -> Self {
        let (queue, jobs) = mpsc::channel(4 * MAX_BATCH);
        let task = tokio::spawn(run(pool, backend, jobs));
        Self { queue, task }
    }

    /// Records the pair; `true` if it was new (and is now durable), `false` if seen before.
    pub(crate) async fn record(
        &self,
        transaction_id: &str,
        sender_nonce: &[u8],
        seen_at: i64,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job {
                transaction_id: transaction_id.to_owned(),
                sender_nonce: sender_nonce.to_vec(),
                seen_at,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    pub(crate) async fn shutdown(self) {
        drop(self.queue);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "replay-record writer task failed");
        }
    }
}

async fn run(pool: AnyPool, backend: Backend, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(&pool, backend, std::mem::take(&mut batch)).await;
    }
}

/// The multi-row INSERT for `rows` pairs (anonymous `?` on SQLite, see
/// `sql::insert_certificates_sql`).
fn insert_sql(rows: usize, backend: Backend) -> String {
    let mut sql =
        String::from("INSERT INTO cmc_nonces (transaction_id, sender_nonce, seen_at) VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        match backend {
            Backend::Sqlite => sql.push_str("(?,?,?)"),
            Backend::Postgres => {
                let n = row * 3;
                sql.push_str(&format!("(${},${},${})", n + 1, n + 2, n + 3));
            }
        }
    }
    sql.push_str(
        " ON CONFLICT (transaction_id, sender_nonce) DO NOTHING RETURNING transaction_id, sender_nonce",
    );
    sql
}

async fn commit(pool: &AnyPool, backend: Backend, batch: Vec<Job>) {
    // The same pair twice in one batch: the first one queued is new, the others replays.
    let mut seen = HashSet::with_capacity(batch.len());
    let mut jobs = Vec::with_capacity(batch.len());
    for job in batch {
        if seen.insert((job.transaction_id.clone(), job.sender_nonce.clone())) {
            jobs.push(job);
        } else {
            let _ = job.reply.send(Ok(false));
        }
    }
    // The text holds only our own column names and placeholders; values are bound.
    let sql = insert_sql(jobs.len(), backend);
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for job in &jobs {
        query = query
            .bind(job.transaction_id.as_str())
            .bind(job.sender_nonce.as_slice())
            .bind(job.seen_at);
    }
    let inserted: Result<HashSet<(String, Vec<u8>)>, StoreError> = async {
        let rows = query.fetch_all(pool).await.map_err(backend_error)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0).map_err(backend_error)?,
                    r.try_get::<Vec<u8>, _>(1).map_err(backend_error)?,
                ))
            })
            .collect()
    }
    .await;
    match inserted {
        Ok(new) => {
            for job in jobs {
                let fresh = new.contains(&(job.transaction_id.clone(), job.sender_nonce.clone()));
                let _ = job.reply.send(Ok(fresh));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, rows = jobs.len(), "recording CMC replay records failed");
            for job in jobs {
                let _ = job.reply.send(Err(StoreError::Backend(
                    "recording the replay record failed".into(),
                )));
            }
        }
    }
}
