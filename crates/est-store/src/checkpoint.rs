//! SQLite WAL checkpoints, off the commit path.
//!
//! In WAL mode a commit appends pages to the WAL; a checkpoint later copies them into the
//! database file and fsyncs it. By default SQLite checkpoints inside whichever commit pushes the
//! WAL past 1,000 pages, so that unlucky batch of certificates waits for the copy and a second
//! fsync. On a large store every batch dirties pages all over the random-keyed indexes, and the
//! built-in checkpoint made each group commit take about twice as long. Here the write
//! connection has `wal_autocheckpoint = 0`, and this task checkpoints on a read connection
//! after commits instead: `PASSIVE` checkpoints never block the writer or readers, and a page
//! changed by several batches in between is copied once.
//!
//! Durability does not depend on this task: a commit is durable once its WAL frames are synced.
//! If checkpoints fall behind (or fail), the WAL grows, and SQLite checkpoints it when the last
//! connection closes.

use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::mpsc;

/// Set on the write connection: the writer never checkpoints inside a commit.
pub(crate) const DISABLE_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 0";

/// Copies committed WAL frames into the database file without waiting for anyone.
pub(crate) const CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";

/// Pause after each checkpoint, so that under load one checkpoint covers several commits.
const PAUSE: Duration = Duration::from_millis(100);

/// Runs until `requests` closes (the writer stopped). A request is a `try_send(())` after a
/// commit; the channel holds one, so requests made during a checkpoint collapse into one more.
pub(crate) async fn run(pool: AnyPool, mut requests: mpsc::Receiver<()>) {
    while requests.recv().await.is_some() {
        if let Err(error) = sqlx::raw_sql(CHECKPOINT).execute(&pool).await {
            tracing::warn!(%error, "WAL checkpoint failed; retrying after the next commit");
        }
        tokio::time::sleep(PAUSE).await;
    }
}
