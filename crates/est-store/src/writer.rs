//! Group commit: one task owns certificate inserts and commits them in batches.
//!
//! A durable commit costs an fsync (SQLite's WAL, PostgreSQL's WAL flush); issuing callers that
//! each paid for their own would serialize on the disk and cap issuance at the fsync rate. The
//! writer instead takes everything that queued up while the previous commit was syncing, writes
//! it in one statement (one round trip; the count follows by trigger), pays one fsync, then
//! answers every caller. Under load batches grow by themselves, and a small batch waits up to
//! `commit_delay` for company (see [`Linger`]); an idle store commits a lone insert at
//! once, with no added delay. CMC replay records (see `nonces`) ride in the same commits, and
//! so do audit records: a certificate's own, appended in its transaction, and standalone ones
//! (see `audited` and `crate::audit`).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use est_ca::{AuditEvent, AuditRecord, CertRecord, ReplayPair, StoreError};
use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::{backend_error, certificate_insert_error};
use crate::nonces::{self, NonceJob, PairKey};
use crate::sql::{self, OnDuplicate};
use crate::{Backend, SqlStoreOptions, checkpoint};

mod audited;

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

/// What callers queue: a certificate, a CMC replay record or an audit record.
// Most of what is queued is certificates: boxing them would cost an allocation per insert to
// shrink the rarer replay records' slots.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Work {
    Certificate(Job),
    Nonce(NonceJob),
    Audit(AuditJob),
}

/// One caller waiting for its audit record to be appended.
#[derive(Debug)]
struct AuditJob {
    event: AuditEvent,
    reply: oneshot::Sender<Result<AuditRecord, StoreError>>,
}

impl Work {
    fn fail_unavailable(self, why: &str) {
        let error = StoreError::Unavailable(why.to_owned());
        match self {
            Work::Certificate(job) => job.answer(Err(error)),
            Work::Nonce(job) => {
                let _ = job.reply.send(Err(error));
            }
            Work::Audit(job) => {
                let _ = job.reply.send(Err(error));
            }
        }
    }

    /// Whether committing this appends to the audit trail.
    fn is_audited(&self) -> bool {
        match self {
            Work::Certificate(job) => job.audit.is_some(),
            Work::Nonce(_) => false,
            Work::Audit(_) => true,
        }
    }
}

/// One caller waiting for its certificate to be committed.
#[derive(Debug)]
struct Job {
    record: CertRecord,
    /// A replay record to claim with it: the certificate is recorded only if the pair is new.
    claim: Option<ReplayPair>,
    /// Its audit record, appended in the same transaction if (and only if) the certificate is
    /// recorded.
    audit: Option<AuditEvent>,
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
    queue: mpsc::Sender<Work>,
    task: JoinHandle<()>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer task on the current tokio runtime.
    ///
    /// With `checkpoint_pool` (SQLite), the writer also runs [`crate::checkpoint`] on that pool,
    /// asks it for a checkpoint after each commit, and catches up itself past
    /// `options.wal_restart_pages` so that the WAL starts over.
    pub(crate) fn spawn(
        pool: AnyPool,
        backend: Backend,
        options: &SqlStoreOptions,
        checkpoint_pool: Option<AnyPool>,
    ) -> Writer {
        let (queue, jobs) = mpsc::channel(options.queue_capacity.max(1));
        let wal_restart_pages = options.wal_restart_pages;
        let counters = Arc::new(Counters::default());
        let checkpoints = checkpoint_pool.map(|pool| {
            let (requests, pending) = mpsc::channel(1);
            let wal_frames = Arc::new(AtomicI64::new(0));
            Checkpoints {
                requests,
                task: tokio::spawn(checkpoint::run(pool, pending, Arc::clone(&wal_frames))),
                wal_frames,
                restart_frames: wal_restart_pages.max(1),
            }
        });
        let target = Target {
            pool,
            backend,
            checkpoints,
        };
        let task = tokio::spawn(run(
            target,
            jobs,
            options.max_batch.max(1),
            options.commit_delay,
            Arc::clone(&counters),
        ));
        Writer {
            queue,
            task,
            counters,
        }
    }

    /// Queues `record` and waits until it is committed (or refused). With `claim`, the pair is
    /// recorded in the same transaction and the certificate only if the pair was new
    /// ([`StoreError::Replayed`] otherwise).
    pub(crate) async fn insert(
        &self,
        record: CertRecord,
        claim: Option<ReplayPair>,
        audit: Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Work::Certificate(Job {
                record,
                claim,
                audit,
                reply,
            }))
            .await
            .map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }

    /// Queues a CMC replay record and waits until it is committed: `true` if the pair was new
    /// (and is now durable), `false` if it was seen before.
    pub(crate) async fn record_nonce(
        &self,
        transaction_id: &str,
        sender_nonce: &[u8],
        seen_at: i64,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Work::Nonce(NonceJob {
                pair: ReplayPair {
                    transaction_id: transaction_id.to_owned(),
                    sender_nonce: sender_nonce.to_vec(),
                    seen_at,
                },
                reply,
            }))
            .await
            .map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }

    /// Queues an audit record and waits until it is committed, chained after whatever was
    /// appended before it.
    pub(crate) async fn append_audit(&self, event: AuditEvent) -> Result<AuditRecord, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Work::Audit(AuditJob { event, reply }))
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
    checkpoints: Option<Checkpoints>,
}

/// SQLite: the checkpoint task, and what the writer needs to keep the WAL bounded.
#[derive(Debug)]
struct Checkpoints {
    /// Asks the task for a checkpoint (see [`checkpoint::run`]).
    requests: mpsc::Sender<()>,
    task: JoinHandle<()>,
    /// Frames in the WAL, as the task's last checkpoint saw them.
    wal_frames: Arc<AtomicI64>,
    /// Past this many frames the writer catches up so that the WAL starts over.
    restart_frames: i64,
}

fn writer_stopped() -> StoreError {
    StoreError::Backend("the certificate writer has stopped".into())
}

async fn run(
    target: Target,
    mut jobs: mpsc::Receiver<Work>,
    max_batch: usize,
    commit_delay: Duration,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    let mut catch_up_at = target.checkpoints.as_ref().map_or(0, |c| c.restart_frames);
    // `recv_many` waits for one job, then takes whatever else is already queued: that is the
    // whole batching policy. It returns 0 once every sender is gone and the queue is empty.
    let mut linger = Linger::new(commit_delay);
    while jobs.recv_many(&mut batch, max_batch).await > 0 {
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        if linger.should_wait(batch.len(), tasks) {
            tokio::time::sleep(commit_delay).await;
            while batch.len() < max_batch {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        let rows = batch.len();
        if let Some(outage) = commit_batch(&target, std::mem::take(&mut batch), &counters).await {
            // The database is unreachable: whatever queued while this batch waited for it has
            // waited long enough (up to the acquire timeout); fail it now instead of making it
            // wait a timeout of its own (issue 12). Later work tries the database again.
            while let Ok(work) = jobs.try_recv() {
                work.fail_unavailable(&outage);
            }
        }
        linger.committed(rows, Instant::now());
        if let Some(checkpoints) = &target.checkpoints {
            // Full means a checkpoint is already due; it will cover this commit too.
            let _ = checkpoints.requests.try_send(());
            if checkpoints.wal_frames.load(Ordering::Relaxed) > catch_up_at {
                catch_up_at = catch_up(&target.pool, checkpoints).await;
            }
        }
    }
    tracing::debug!(
        commits = counters.commits.load(Ordering::Relaxed),
        rows = counters.rows.load(Ordering::Relaxed),
        largest_batch = counters.largest_batch.load(Ordering::Relaxed),
        "certificate writer stopping: store dropped"
    );
    let Target {
        pool, checkpoints, ..
    } = target;
    if let Some(Checkpoints { requests, task, .. }) = checkpoints {
        drop(requests);
        if let Err(e) = task.await {
            tracing::error!(error = %e, "WAL checkpoint task failed");
        }
    }
    pool.close().await;
}

/// Batches smaller than this (recently, on average) are worth waiting `commit_delay` for.
const LINGER_BELOW: usize = 8;

/// "Under load": the previous commit ended less than this long ago.
const BUSY_WINDOW: Duration = Duration::from_millis(10);

/// Tasks alive in the runtime beyond those whose certificates are queued (counting the
/// server's own background tasks, about six) for a wait to be worth it; see [`Linger`].
const SIBLINGS: usize = 16;

/// The commit delay, like PostgreSQL's `commit_delay`: with fresh-TLS clients, requests reach
/// the writer one by one between handshakes, batches were 2-3 rows, and each commit's fixed
/// cost (its sequential pages, the WAL sync, the device notification, the wake-ups) was paid by
/// too few certificates. Waiting `commit_delay` (a few percent of a fresh-TLS enrollment's
/// latency at that load, when the cores are busy with handshakes anyway) about doubles the
/// batches (docs/performance.md).
///
/// The writer waits only while batches have been small on average (a moving average of the
/// last few), only for a small batch, only while commits follow each other closely (an idle
/// store commits a lone insert at once), only while the runtime has many more tasks alive than
/// certificates queued, and never with a zero delay. The last condition is PostgreSQL's
/// `commit_siblings`: waiting pays when much other work is in flight (connections in their
/// handshakes) and some of it will reach the queue meanwhile; when few clients exist and all
/// of them are waiting for this commit (8 clients doing P-256 /serverkeygen), a wait only adds
/// to everyone's latency, and it cost that run a third of its throughput. Keep-alive clients
/// already make batches of 10-20 while they wait for the previous commit; the average keeps
/// the delay away from them.
#[derive(Debug)]
struct Linger {
    delay: Duration,
    last_commit: Option<Instant>,
    /// Exponential moving average of the rows per commit.
    average_rows: f64,
}

impl Linger {
    fn new(delay: Duration) -> Self {
        Linger {
            delay,
            last_commit: None,
            average_rows: 1.0,
        }
    }

    /// `tasks`: tasks alive in the runtime (tokio's `num_alive_tasks`).
    fn should_wait(&self, queued: usize, tasks: usize) -> bool {
        !self.delay.is_zero()
            && queued < LINGER_BELOW
            && tasks >= queued + SIBLINGS
            && self.average_rows < LINGER_BELOW as f64
            && self.last_commit.is_some_and(|t| t.elapsed() < BUSY_WINDOW)
    }

    fn committed(&mut self, rows: usize, at: Instant) {
        self.average_rows = 0.75 * self.average_rows + 0.25 * rows as f64;
        self.last_commit = Some(at);
    }
}

/// SQLite: the writer's own passive checkpoint past `restart_frames` frames of WAL, so that its
/// next transaction starts the WAL over (see the `checkpoint` module). Returns the WAL size at
/// which to try again: at once after a lock conflict with the checkpoint task, a little later
/// if a reader kept the checkpoint from completing.
async fn catch_up(pool: &AnyPool, checkpoints: &Checkpoints) -> i64 {
    let restart = checkpoints.restart_frames;
    match checkpoint::passive(pool).await {
        Ok(outcome) if outcome.complete => {
            checkpoints.wal_frames.store(0, Ordering::Relaxed);
            restart
        }
        // The checkpoint task held the lock: try again once it has seen more frames.
        Ok(outcome) if outcome.frames < 0 => checkpoints.wal_frames.load(Ordering::Relaxed),
        Ok(outcome) => {
            checkpoints
                .wal_frames
                .store(outcome.frames, Ordering::Relaxed);
            outcome.frames + restart / 8
        }
        Err(error) => {
            tracing::warn!(%error, "WAL catch-up checkpoint failed; retrying later");
            checkpoints.wal_frames.load(Ordering::Relaxed) + restart / 8
        }
    }
}

/// Commits one batch and answers each caller with its own outcome.
///
/// Certificates and replay records queued together go into one transaction, so a round of
/// /fullcmc requests pays one sync for both; a certificate that claims a pair is recorded
/// only if its pair is new. Should that transaction fail, each kind is retried on its own, so
/// that a failure is reported only to the callers it concerns; not when the database is
/// unreachable, which fails them all at once. Returns the outage's description if the
/// database was unreachable.
/// A batch sorted by kind. Each replay pair goes once per statement, the first queued wins:
/// later callers with the same pair are replays (no self-conflicting rows in the statement),
/// answered here at once.
struct Partition {
    certificates: Vec<Job>,
    pairs: Vec<NonceJob>,
    audits: Vec<AuditJob>,
    /// Some certificate claims a pair, or some pair is recorded alone.
    any_pair: bool,
}

fn partition(batch: Vec<Work>) -> Partition {
    let mut p = Partition {
        certificates: Vec::with_capacity(batch.len()),
        pairs: Vec::new(),
        audits: Vec::new(),
        any_pair: false,
    };
    let mut seen: HashSet<PairKey> = HashSet::new();
    for work in batch {
        match work {
            Work::Certificate(job) => match &job.claim {
                Some(pair) if !seen.insert(nonces::key(pair)) => {
                    job.answer(Err(StoreError::Replayed));
                }
                _ => p.certificates.push(job),
            },
            Work::Nonce(job) => {
                if seen.insert(nonces::key(&job.pair)) {
                    p.pairs.push(job);
                } else {
                    let _ = job.reply.send(Ok(false));
                }
            }
            Work::Audit(job) => p.audits.push(job),
        }
    }
    p.any_pair = !seen.is_empty();
    p
}

async fn commit_batch(target: &Target, batch: Vec<Work>, counters: &Counters) -> Option<String> {
    if batch.iter().any(Work::is_audited) {
        return audited::commit(target, batch, counters).await;
    }
    let Partition {
        certificates,
        pairs,
        audits,
        any_pair,
    } = partition(batch);
    // Batches with audit records go to `audited::commit` (above).
    for job in audits {
        let _ = job.reply.send(Err(StoreError::Backend(
            "internal: audit record on the unaudited commit path".into(),
        )));
    }
    if !any_pair {
        return commit_certificates(target, certificates, counters).await;
    }
    if certificates.is_empty() {
        return commit_nonces(target, pairs).await;
    }
    let (certificates, duplicates) = dedupe_serials(certificates);
    let mut all_pairs: Vec<&ReplayPair> = pairs
        .iter()
        .map(|j| &j.pair)
        .chain(
            certificates
                .iter()
                .chain(&duplicates)
                .filter_map(|j| j.claim.as_ref()),
        )
        .collect();
    // In key order: two nodes inserting overlapping pairs then lock them in the same order
    // (no deadlock between their transactions on PostgreSQL).
    all_pairs.sort_unstable_by(|a, b| {
        (&a.transaction_id, &a.sender_nonce).cmp(&(&b.transaction_id, &b.sender_nonce))
    });
    match insert_together(target, &all_pairs, &certificates).await {
        Ok((new_pairs, inserted)) => {
            nonces::answer(pairs, Ok(&new_pairs));
            counters.committed(inserted.len());
            answer_certificates(certificates, &inserted, &new_pairs);
            answer_certificates(duplicates, &HashSet::new(), &new_pairs);
        }
        Err(error) if error.is_unavailable() => {
            let why = error.to_string();
            tracing::error!(%error, "the database is unreachable; failing the queued commits");
            nonces::answer(pairs, Err(&error));
            for job in certificates.into_iter().chain(duplicates) {
                job.answer(Err(StoreError::Unavailable(why.clone())));
            }
            return Some(why);
        }
        Err(error) => {
            tracing::warn!(%error, "combined commit failed; retrying replay records and certificates apart");
            let mut outage = commit_nonces(target, pairs).await;
            let (claiming, plain): (Vec<Job>, Vec<Job>) = certificates
                .into_iter()
                .chain(duplicates)
                .partition(|j| j.claim.is_some());
            for job in claiming {
                if let Some(why) = &outage {
                    job.answer(Err(StoreError::Unavailable(why.clone())));
                    continue;
                }
                outage = commit_claiming_alone(target, job, counters).await;
            }
            return commit_certificates(target, plain, counters)
                .await
                .or(outage);
        }
    }
    None
}

/// One certificate with its replay record in a transaction of its own (the retry path).
async fn commit_claiming_alone(target: &Target, job: Job, counters: &Counters) -> Option<String> {
    let pairs: Vec<&ReplayPair> = job.claim.iter().collect();
    let result = insert_together(target, &pairs, std::slice::from_ref(&job)).await;
    match result {
        Ok((new_pairs, inserted)) => {
            counters.committed(inserted.len());
            answer_certificates(vec![job], &inserted, &new_pairs);
            None
        }
        Err(error) => {
            let outage = error.is_unavailable().then(|| error.to_string());
            job.answer(Err(error));
            outage
        }
    }
}

/// Replay records alone: one autocommit statement. Returns the outage, if any.
async fn commit_nonces(target: &Target, pairs: Vec<NonceJob>) -> Option<String> {
    if pairs.is_empty() {
        return None;
    }
    let refs: Vec<&ReplayPair> = pairs.iter().map(|j| &j.pair).collect();
    let new = match nonces::insert(&refs, target.backend)
        .fetch_all(&target.pool)
        .await
    {
        Ok(rows) => nonces::inserted(&rows),
        Err(e) => Err(backend_error(e)),
    };
    let outage = new
        .as_ref()
        .err()
        .filter(|e| e.is_unavailable())
        .map(ToString::to_string);
    nonces::answer(pairs, new.as_ref());
    outage
}

/// Both kinds in one transaction: the pairs first, then the certificates that claim no pair
/// or a pair that was new. Returns the new pairs and the serials inserted.
async fn insert_together(
    target: &Target,
    pairs: &[&ReplayPair],
    jobs: &[Job],
) -> Result<(HashSet<PairKey>, HashSet<String>), StoreError> {
    if target.backend == Backend::Sqlite && jobs.len() <= sql::ROWS_PER_STATEMENT / 2 {
        return insert_together_sqlite(target, pairs, jobs).await;
    }
    let mut tx = target.pool.begin().await.map_err(backend_error)?;
    let new_pairs = if pairs.is_empty() {
        HashSet::new()
    } else {
        let rows = nonces::insert(pairs, target.backend)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend_error)?;
        nonces::inserted(&rows)?
    };
    let records: Vec<&CertRecord> = jobs
        .iter()
        .filter(|j| {
            j.claim
                .as_ref()
                .is_none_or(|p| new_pairs.contains(&nonces::key(p)))
        })
        .map(|j| &j.record)
        .collect();
    let inserted = insert_in(&mut tx, target.backend, &records).await?;
    tx.commit().await.map_err(backend_error)?;
    Ok((new_pairs, inserted))
}

/// SQLite: [`insert_together`] in one round trip to the database (see
/// [`sql::claiming_commit_sqlite_sql`]). Should any statement fail, the transaction is rolled
/// back on the same connection, and a connection whose state is then unknown is closed rather
/// than returned to the pool.
async fn insert_together_sqlite(
    target: &Target,
    pairs: &[&ReplayPair],
    jobs: &[Job],
) -> Result<(HashSet<PairKey>, HashSet<String>), StoreError> {
    let certificates: Vec<(&CertRecord, Option<&ReplayPair>)> =
        jobs.iter().map(|j| (&j.record, j.claim.as_ref())).collect();
    let mut conn = target.pool.acquire().await.map_err(backend_error)?;
    let rows = match sql::claiming_commit_sqlite(&certificates, pairs, " COMMIT;")
        .fetch_all(&mut *conn)
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                conn.close_on_drop();
            }
            return Err(certificate_insert_error(e));
        }
    };
    let mut new_pairs = HashSet::new();
    let mut inserted = HashSet::with_capacity(jobs.len());
    for row in rows {
        if row.len() == 1 {
            inserted.insert(row.try_get::<String, _>(0).map_err(backend_error)?);
        } else {
            new_pairs.insert((
                row.try_get::<String, _>(0).map_err(backend_error)?,
                row.try_get::<Vec<u8>, _>(1).map_err(backend_error)?,
            ));
        }
    }
    Ok((new_pairs, inserted))
}

/// Inserts `records` inside `tx` (statements of [`sql::ROWS_PER_STATEMENT`] rows, duplicate
/// serials skipped); returns the serials inserted.
async fn insert_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    records: &[&CertRecord],
) -> Result<HashSet<String>, StoreError> {
    let mut inserted = HashSet::with_capacity(records.len());
    for chunk in records.chunks(sql::ROWS_PER_STATEMENT) {
        let rows = sql::insert_certificates(chunk, OnDuplicate::Skip, backend)
            .fetch_all(&mut **tx)
            .await
            .map_err(certificate_insert_error)?;
        for row in rows {
            inserted.insert(row.try_get::<String, _>(0).map_err(backend_error)?);
        }
    }
    Ok(inserted)
}

/// Two callers with the same serial in one batch: the first one queued keeps it, the others are
/// returned apart (they get [`StoreError::DuplicateSerial`]). Settling this here keeps the
/// statement free of self-conflicting rows.
fn dedupe_serials(batch: Vec<Job>) -> (Vec<Job>, Vec<Job>) {
    let mut seen = HashSet::with_capacity(batch.len());
    let mut jobs = Vec::with_capacity(batch.len());
    let mut duplicates = Vec::new();
    for job in batch {
        if seen.insert(job.record.serial.clone()) {
            jobs.push(job);
        } else {
            duplicates.push(job);
        }
    }
    (jobs, duplicates)
}

/// `new_pairs`: the replay records the same commit inserted. A certificate whose claimed pair
/// is not among them was a replay and was not inserted.
fn answer_certificates(jobs: Vec<Job>, inserted: &HashSet<String>, new_pairs: &HashSet<PairKey>) {
    for job in jobs {
        let replayed = job
            .claim
            .as_ref()
            .is_some_and(|p| !new_pairs.contains(&nonces::key(p)));
        let result = if replayed {
            Err(StoreError::Replayed)
        } else if inserted.contains(&job.record.serial) {
            Ok(())
        } else {
            Err(StoreError::DuplicateSerial)
        };
        job.answer(result);
    }
}

/// Certificates alone.
/// Returns the outage, if the database was unreachable.
async fn commit_certificates(
    target: &Target,
    batch: Vec<Job>,
    counters: &Counters,
) -> Option<String> {
    let (jobs, duplicates) = dedupe_serials(batch);
    for job in duplicates {
        job.answer(Err(StoreError::DuplicateSerial));
    }
    if jobs.is_empty() {
        return None;
    }
    let records: Vec<&CertRecord> = jobs.iter().map(|job| &job.record).collect();
    match insert_committed(target, &records).await {
        Ok(inserted) => {
            counters.committed(inserted.len());
            answer_certificates(jobs, &inserted, &HashSet::new());
        }
        Err(error) if error.is_unavailable() => {
            // Retrying row by row would make every caller wait an acquire timeout of its own.
            let why = error.to_string();
            tracing::error!(%error, rows = jobs.len(), "the database is unreachable; failing the batch");
            for job in jobs {
                job.answer(Err(StoreError::Unavailable(why.clone())));
            }
            return Some(why);
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
            let mut outage: Option<String> = None;
            for job in jobs {
                if let Some(why) = &outage {
                    job.answer(Err(StoreError::Unavailable(why.clone())));
                    continue;
                }
                let result = match insert_committed(target, &[&job.record]).await {
                    Ok(inserted) => {
                        counters.committed(inserted.len());
                        if inserted.is_empty() {
                            Err(StoreError::DuplicateSerial)
                        } else {
                            Ok(())
                        }
                    }
                    Err(error) => {
                        if error.is_unavailable() {
                            outage = Some(error.to_string());
                        }
                        Err(error)
                    }
                };
                job.answer(result);
            }
            return outage;
        }
    }
    None
}

/// Inserts `records` durably, skipping serials that already exist, and returns the serials
/// actually inserted once the commit is durable.
///
/// A batch that fits one statement (the usual case: `max_batch` defaults to 256 rows) is a
/// single autocommit INSERT: one round trip to the database (on SQLite, to sqlx's worker
/// thread), which is atomic by itself, and the certificate count follows inside the same
/// statement by trigger (migration 0004). Only larger batches need an explicit transaction.
async fn insert_committed(
    target: &Target,
    records: &[&CertRecord],
) -> Result<HashSet<String>, StoreError> {
    let mut inserted = HashSet::with_capacity(records.len());
    if records.len() <= sql::ROWS_PER_STATEMENT {
        let rows = sql::insert_certificates(records, OnDuplicate::Skip, target.backend)
            .fetch_all(&target.pool)
            .await
            .map_err(certificate_insert_error)?;
        for row in rows {
            inserted.insert(row.try_get::<String, _>(0).map_err(backend_error)?);
        }
        return Ok(inserted);
    }
    let mut tx = target.pool.begin().await.map_err(backend_error)?;
    let inserted = insert_in(&mut tx, target.backend, records).await?;
    tx.commit().await.map_err(backend_error)?;
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lingers_only_for_small_batches_under_load() {
        let delay = Duration::from_micros(500);
        let many = 64;
        let mut linger = Linger::new(delay);
        assert!(!linger.should_wait(1, many), "first commit: idle store");
        linger.committed(1, Instant::now());
        assert!(linger.should_wait(1, many));
        assert!(linger.should_wait(LINGER_BELOW - 1, many));
        assert!(!linger.should_wait(LINGER_BELOW, many), "big enough");
        // Few clients, all waiting for this commit: nobody else will come.
        assert!(!linger.should_wait(4, 4 + 6));
        assert!(!linger.should_wait(1, SIBLINGS));
        assert!(linger.should_wait(1, SIBLINGS + 1));

        let mut idle = Linger::new(delay);
        idle.committed(1, Instant::now().checked_sub(BUSY_WINDOW * 2).unwrap());
        assert!(!idle.should_wait(1, many), "idle store");

        let mut disabled = Linger::new(Duration::ZERO);
        disabled.committed(1, Instant::now());
        assert!(!disabled.should_wait(1, many), "disabled");

        // Keep-alive load: batches of 15 make a small one the exception, not worth a wait.
        let mut busy = Linger::new(delay);
        for _ in 0..10 {
            busy.committed(15, Instant::now());
        }
        assert!(!busy.should_wait(2, many), "batches are large on average");
        // Fresh-TLS load: batches of 3.
        for _ in 0..10 {
            busy.committed(3, Instant::now());
        }
        assert!(busy.should_wait(2, many));
    }
}
