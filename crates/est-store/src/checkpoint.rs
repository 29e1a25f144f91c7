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
//! Passive checkpoints alone do not bound the WAL under sustained load: SQLite starts writing
//! the WAL from its beginning again only when a writer finds every frame checkpointed and no
//! reader on it, which a busy server almost never offers, so the file kept growing (400 MB for
//! a 20 MB database after 20,000 enrollments), every commit extended it (the kernel zeroing
//! fresh pages) and readers searched an ever larger WAL index. So when a passive checkpoint
//! reports more than `restart_frames` frames (default [`RESTART_FRAMES`]) in the WAL, the task runs a `RESTART`
//! checkpoint: it waits (within the busy timeout) for readers of old snapshots, finishes the
//! copy and makes the next commit start the WAL over. The writer waits for that checkpoint, so
//! it happens about once per `restart_frames` frames of load, not per commit.
//! `journal_size_limit` then keeps the file itself at a bounded size.
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

/// Checkpoints everything and makes the next writer start the WAL from its beginning.
const RESTART: &str = "PRAGMA wal_checkpoint(RESTART)";

/// WAL frames (of one page each) beyond which the task restarts the WAL by default: 8,192
/// pages, 32 MiB (see `SqlStoreOptions::wal_restart_pages`).
pub(crate) const RESTART_FRAMES: i64 = 8_192;

/// Set on the write connection: after a restart, the WAL file is truncated to this size
/// (bytes) instead of keeping its high-water mark.
pub(crate) const JOURNAL_SIZE_LIMIT: &str = "PRAGMA journal_size_limit = 67108864";

/// Pause after each checkpoint, so that under load one checkpoint covers several commits.
const PAUSE: Duration = Duration::from_millis(100);

/// Runs until `requests` closes (the writer stopped). A request is a `try_send(())` after a
/// commit; the channel holds one, so requests made during a checkpoint collapse into one more.
pub(crate) async fn run(pool: AnyPool, mut requests: mpsc::Receiver<()>, restart_frames: i64) {
    while requests.recv().await.is_some() {
        match checkpoint(&pool, CHECKPOINT).await {
            // (busy, frames in the WAL, frames checkpointed)
            Ok(frames) if frames > restart_frames => {
                if let Err(error) = checkpoint(&pool, RESTART).await {
                    tracing::warn!(%error, "WAL restart checkpoint failed; retrying later");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "WAL checkpoint failed; retrying after the next commit");
            }
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// Runs a checkpoint and returns the number of frames in the WAL it reported.
async fn checkpoint(pool: &AnyPool, sql: &'static str) -> Result<i64, sqlx::Error> {
    use sqlx::Row;
    let row = sqlx::query(sql).fetch_one(pool).await?;
    row.try_get::<i64, _>(1)
}
