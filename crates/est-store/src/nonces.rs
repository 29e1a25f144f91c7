//! CMC replay records (CMC-53): every /fullcmc request with a senderNonce records its
//! (transactionId, senderNonce) pair durably before it is answered.
//!
//! One durable INSERT per request would serialize requests on the write connection and its
//! fsync (it cost /fullcmc a quarter of the server's CPU and most of its throughput,
//! docs/performance.md), and a group commit of their own beside the certificates' still cost
//! every round two syncs. So the pairs ride in the certificate writer's group commit (see
//! `writer`): whatever pairs and certificates queued up while the previous commit was syncing
//! go into one transaction, the pairs in one statement (`ON CONFLICT DO NOTHING RETURNING`),
//! and each caller learns whether its pair was new or seen before. The unique key decides,
//! across concurrent callers and nodes. A request that only asks for certificates claims its
//! pair with its first certificate instead (`Store::insert_certificate_claiming`): the pair and
//! the certificate then share the commit, the certificate recorded only if the pair was new,
//! and the request waits for one commit instead of two.
use std::collections::HashSet;

use est_ca::{ReplayPair, StoreError};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Row};
use tokio::sync::oneshot;

use crate::Backend;
use crate::error::backend_error;

/// One caller waiting to learn whether its pair is new.
#[derive(Debug)]
pub(crate) struct NonceJob {
    pub(crate) pair: ReplayPair,
    pub(crate) reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// The unique key of a pair.
pub(crate) type PairKey = (String, Vec<u8>);

pub(crate) fn key(pair: &ReplayPair) -> PairKey {
    (pair.transaction_id.clone(), pair.sender_nonce.clone())
}

/// The multi-row INSERT for `rows` pairs (anonymous `?` on SQLite, see
/// `sql::insert_certificates_sql`).
pub(crate) fn insert_sql(rows: usize, backend: Backend) -> String {
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

/// The statement inserting every pair of `pairs` (deduplicated, at most a few hundred: three
/// parameters each); its rows are the pairs actually inserted.
pub(crate) fn insert<'q>(
    pairs: &[&'q ReplayPair],
    backend: Backend,
) -> Query<'q, Any, AnyArguments> {
    // The text holds only our own column names and placeholders; values are bound.
    let mut query = sqlx::query(AssertSqlSafe(insert_sql(pairs.len(), backend)));
    for pair in pairs {
        query = query
            .bind(pair.transaction_id.as_str())
            .bind(pair.sender_nonce.as_slice())
            .bind(pair.seen_at);
    }
    query
}

/// The pairs the statement of [`insert`] returned.
pub(crate) fn inserted(rows: &[AnyRow]) -> Result<HashSet<PairKey>, StoreError> {
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>(0).map_err(backend_error)?,
                r.try_get::<Vec<u8>, _>(1).map_err(backend_error)?,
            ))
        })
        .collect()
}

/// Answers every caller once the commit that held `new` is durable (or failed).
pub(crate) fn answer(jobs: Vec<NonceJob>, new: Result<&HashSet<PairKey>, &StoreError>) {
    match new {
        Ok(new) => {
            for job in jobs {
                let fresh = new.contains(&key(&job.pair));
                let _ = job.reply.send(Ok(fresh));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, rows = jobs.len(), "recording CMC replay records failed");
            for job in jobs {
                let _ = job.reply.send(Err(if e.is_unavailable() {
                    StoreError::Unavailable("recording the replay record failed".into())
                } else {
                    StoreError::Backend("recording the replay record failed".into())
                }));
            }
        }
    }
}
