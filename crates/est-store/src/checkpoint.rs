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
//! the WAL from its beginning again only when a write transaction begins with every frame
//! checkpointed and no reader on the WAL, which a busy server almost never offers, because
//! the writer appends new frames while this task copies the old ones. So the file kept growing
//! (400 MB for a 20 MB database after 20,000 enrollments), every commit extended it (the kernel
//! zeroing fresh pages) and readers searched an ever larger WAL index.
//!
//! So the writer catches up itself: once this task reports more than `restart_frames` frames
//! (default [`RESTART_FRAMES`]) in the WAL, the writer runs one `PASSIVE` checkpoint on its
//! own connection right after a commit (`writer::catch_up`). No frame can be appended while it
//! runs, so it copies the few frames this task has not copied yet and leaves the WAL fully
//! checkpointed; the writer's next transaction then starts the WAL over (unless a reader is
//! still on an old snapshot, in which case it tries again a little later).
//! `journal_size_limit` then keeps the file itself at a bounded size.
//!
//! An earlier version ran a `RESTART` checkpoint from this task instead. That mode waits for
//! the writer's transaction to end through the busy handler, which sleeps in steps of
//! milliseconds, and blocks new writers while it waits: with a million certificates stored
//! every such restart held the writer for 40-60 ms, several times a second, which was the
//! p99 latency of enrollment. A passive catch-up on the writer's own connection never waits
//! for a lock; it costs the writer the copy of the last frames and one fsync of the database.
//!
//! Durability does not depend on this task: a commit is durable once its WAL frames are synced.
//! If checkpoints fall behind (or fail), the WAL grows, and SQLite checkpoints it when the last
//! connection closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::mpsc;

/// Set on the write connection: the writer never checkpoints inside a commit.
pub(crate) const DISABLE_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 0";

/// Copies committed WAL frames into the database file without waiting for anyone.
pub(crate) const CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";

/// WAL frames (of one page each) beyond which the writer catches up so that the WAL starts
/// over, by default: 65,536 pages, 256 MiB (see `SqlStoreOptions::wal_restart_pages`). Each
/// catch-up holds the writer for the copy of the last frames and a sync of the database file,
/// 15-25 ms with a million certificates stored; at 8,192 frames that came three times a
/// second under full load, 5% of the writer's time and the p99 latency (31 ms), at 65,536
/// about every two seconds (p99 10 ms). The WAL index in shared memory grows by 32 KiB per
/// 4,096 frames; readers search at most 16 of its hash tables.
pub(crate) const RESTART_FRAMES: i64 = 65_536;

/// Set on the write connection: after a restart, the WAL file is truncated to this size
/// (bytes) instead of keeping its high-water mark: the restart threshold, so that the file is
/// reused rather than extended again (the kernel zeroing each new page) every cycle.
pub(crate) const JOURNAL_SIZE_LIMIT: &str = "PRAGMA journal_size_limit = 268435456";

/// Pause after each checkpoint, so that under load one checkpoint covers several commits.
const PAUSE: Duration = Duration::from_millis(100);

/// Runs until `requests` closes (the writer stopped). A request is a `try_send(())` after a
/// commit; the channel holds one, so requests made during a checkpoint collapse into one more.
/// Each checkpoint publishes the number of frames in the WAL in `wal_frames`, which the writer
/// compares with its catch-up threshold.
pub(crate) async fn run(
    pool: AnyPool,
    mut requests: mpsc::Receiver<()>,
    wal_frames: Arc<AtomicI64>,
) {
    while requests.recv().await.is_some() {
        match passive(&pool).await {
            Ok(Outcome { frames, .. }) => wal_frames.store(frames, Ordering::Relaxed),
            Err(error) => {
                tracing::warn!(%error, "WAL checkpoint failed; retrying after the next commit");
            }
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// What `PRAGMA wal_checkpoint` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Frames in the WAL (-1 when another connection held the checkpoint lock).
    pub(crate) frames: i64,
    /// Whether every frame is now in the database file, so that the next write transaction
    /// can start the WAL over.
    pub(crate) complete: bool,
}

/// One `PASSIVE` checkpoint on a connection of `pool`: this task's, or the writer's catch-up
/// between two commits (see the module documentation). It never waits for a lock: if another
/// connection holds the checkpoint lock, or a reader pins an old snapshot, the outcome says so.
pub(crate) async fn passive(pool: &AnyPool) -> Result<Outcome, sqlx::Error> {
    use sqlx::Row;
    let row = sqlx::query(CHECKPOINT).fetch_one(pool).await?;
    // (busy, frames in the WAL, frames checkpointed)
    let busy = row.try_get::<i64, _>(0)?;
    let frames = row.try_get::<i64, _>(1)?;
    let done = row.try_get::<i64, _>(2)?;
    Ok(Outcome {
        frames,
        complete: busy == 0 && frames >= 0 && done == frames,
    })
}
