//! Scale check, not run by default (`cargo test -p est-store --test scale -- --ignored
//! --nocapture`): prefill one million certificates with `bulk_insert`, then time issuance-shaped
//! work against the full store and against an empty one. The two should be about the same,
//! because every operation is an index search.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use est_ca::{CertFilter, CertRecord, CertStatus, Store};
use est_store::SqlStore;
use tokio::task::JoinSet;

const PREFILL: u64 = 1_000_000;
const PER_CHUNK: u64 = 100_000;

fn record(i: u64) -> CertRecord {
    let serial = format!("{:040x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    CertRecord {
        ski: format!("{:040x}", i.wrapping_mul(0xc2b2_ae3d_27d4_eb4f)),
        spki_sha256: format!("{:064x}", i),
        serial,
        ca: ["default", "iot"][(i % 2) as usize].into(),
        subject: format!("CN=device-{i},O=Example"),
        issuer: "CN=Estuary CA,O=Example".into(),
        requester: format!("user:fleet-{}", i % 1_000),
        label: String::new(),
        not_before: 1_700_000_000 + i as i64,
        not_after: 1_731_536_000 + i as i64,
        issued_at: 1_700_000_000 + i as i64,
        status: CertStatus::Valid,
        revocation: None,
        der: vec![0x30; 700],
    }
}

/// 500 concurrent inserts, 500 point lookups and 500 renewal listings; returns their times.
async fn issuance_work(store: &Arc<SqlStore>, first: u64) -> (Duration, Duration, Duration) {
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for i in first..first + 500 {
        let store = Arc::clone(store);
        tasks.spawn(async move { store.insert_certificate(&record(i)).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap().unwrap();
    }
    let inserts = start.elapsed();

    let start = Instant::now();
    for i in first..first + 500 {
        assert!(
            store
                .certificate_by_serial(&record(i).serial)
                .await
                .unwrap()
                .is_some()
        );
    }
    let lookups = start.elapsed();

    let start = Instant::now();
    for i in first..first + 500 {
        let r = record(i);
        let filter = CertFilter {
            requester: Some(r.requester.clone()),
            subject: Some(r.subject.clone()),
            valid_at: Some(r.issued_at),
            status: Some(CertStatus::Valid),
            limit: 2,
            ..Default::default()
        };
        assert_eq!(store.list_certificates(&filter).await.unwrap().len(), 1);
    }
    (inserts, lookups, start.elapsed())
}

/// Runs the issuance work twice (the first round also warms caches) and prints the second.
async fn measure(store: &Arc<SqlStore>, label: &str, first: u64) {
    issuance_work(store, first).await;
    let (ins, get, list) = issuance_work(store, first + 500).await;
    eprintln!(
        "{label}: 500 concurrent inserts {ins:?}, 500 lookups {get:?}, 500 renewal listings {list:?}"
    );
}

async fn scale(url_empty: &str, url_full: &str) {
    let empty = Arc::new(SqlStore::connect(url_empty).await.unwrap());
    measure(&empty, "empty store", PREFILL).await;

    let full = Arc::new(SqlStore::connect(url_full).await.unwrap());
    let mut loading = Duration::ZERO;
    for chunk in 0..PREFILL / PER_CHUNK {
        let records: Vec<CertRecord> = (chunk * PER_CHUNK..(chunk + 1) * PER_CHUNK)
            .map(record)
            .collect();
        let start = Instant::now();
        full.bulk_insert(&records).await.unwrap();
        loading += start.elapsed();
        if chunk == 0 {
            measure(&full, "100,000 stored", PREFILL + 10_000).await;
        }
    }
    eprintln!("bulk_insert of {PREFILL} certificates: {loading:?} (record generation excluded)");
    assert_eq!(full.count_certificates().await.unwrap(), PREFILL + 1_000);
    measure(&full, "1,000,000 stored", PREFILL + 20_000).await;
    let newest = full
        .list_certificates(&CertFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(newest.len(), 10);
    eprintln!("group commit: {:?}", full.stats());
    Arc::into_inner(full).unwrap().close().await;
    Arc::into_inner(empty).unwrap().close().await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: one million rows, run by hand"]
async fn sqlite_million_certificates() {
    let (empty, full) = (harness::SqliteDb::new(), harness::SqliteDb::new());
    scale(empty.url(), full.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: one million rows, run by hand"]
async fn postgres_million_certificates() {
    let (empty, full) = (harness::PgDb::create().await, harness::PgDb::create().await);
    scale(empty.url(), full.url()).await;
}
