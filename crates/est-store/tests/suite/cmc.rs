//! CMC shared secrets and replay records (CMC-53), through `&dyn Store`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use est_ca::{CmcSecretRecord, Store, StoreError};
use tokio::task::JoinSet;

use super::open;

fn secret(ident: &str) -> CmcSecretRecord {
    CmcSecretRecord {
        ident: ident.into(),
        label: "cmc".into(),
        subject: "CN=dev1.example,O=Acme".into(),
        sealed: (0..=255u8).rev().cycle().take(60).collect(),
        created_at: 1_700_000_000,
    }
}

/// Stored and read back exactly; a second secret under the same ident is a conflict that
/// leaves the first intact; listed in byte order of the ident; removed once.
pub async fn cmc_secrets_add_get_list_remove(url: &str) {
    let sql = open(url).await;
    let store: &dyn Store = &sql;
    assert_eq!(store.list_cmc_secrets().await.unwrap(), vec![]);
    assert_eq!(store.get_cmc_secret("dev-1").await.unwrap(), None);

    let one = CmcSecretRecord {
        sealed: vec![1, 0, 0xff, 0x80, 0],
        created_at: -1,
        ..secret("dev-1")
    };
    let any = CmcSecretRecord {
        label: String::new(),
        subject: String::new(),
        created_at: i64::MAX,
        ..secret("Zeta")
    };
    // Byte order: "Zeta" < "dev-1" < "dev-10" < "dév" (UTF-8 0xc3 after ASCII).
    let ten = secret("dev-10");
    let accented = CmcSecretRecord {
        subject: "CN=Grüße\\, Ltd.+SN=42,O=Ex\"ample".into(),
        ..secret("dév")
    };
    for s in [&accented, &one, &ten, &any] {
        store.add_cmc_secret(s).await.unwrap();
    }
    let err = store
        .add_cmc_secret(&CmcSecretRecord {
            label: "other".into(),
            ..secret("dev-1")
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "got {err:?}");

    assert_eq!(
        store.get_cmc_secret("dev-1").await.unwrap(),
        Some(one.clone())
    );
    assert_eq!(
        store.get_cmc_secret("dév").await.unwrap(),
        Some(accented.clone())
    );
    // Exact lookups: no case folding, no prefix match.
    assert_eq!(store.get_cmc_secret("DEV-1").await.unwrap(), None);
    assert_eq!(store.get_cmc_secret("dev-").await.unwrap(), None);
    assert_eq!(
        store.list_cmc_secrets().await.unwrap(),
        vec![any.clone(), one.clone(), ten.clone(), accented.clone()]
    );

    assert!(store.remove_cmc_secret("dev-1").await.unwrap());
    assert!(!store.remove_cmc_secret("dev-1").await.unwrap());
    assert!(!store.remove_cmc_secret("nope").await.unwrap());
    assert_eq!(store.get_cmc_secret("dev-1").await.unwrap(), None);
    assert_eq!(
        store.list_cmc_secrets().await.unwrap(),
        vec![any, ten, accented]
    );
    // The ident is free again.
    store.add_cmc_secret(&secret("dev-1")).await.unwrap();
    sql.close().await;
}

/// A pair is new once: the same pair again is a replay, while another nonce, another
/// transaction id, or no transaction id make another pair. Nonces are compared as bytes.
pub async fn cmc_nonces_new_then_replayed(url: &str) {
    let sql = open(url).await;
    let store: &dyn Store = &sql;
    let t = 1_700_000_000;
    assert!(store.record_cmc_nonce("42", b"nonce-1", t).await.unwrap());
    assert!(!store.record_cmc_nonce("42", b"nonce-1", t).await.unwrap());
    // A later sighting does not refresh the first.
    assert!(
        !store
            .record_cmc_nonce("42", b"nonce-1", t + 100)
            .await
            .unwrap()
    );
    assert!(store.record_cmc_nonce("42", b"nonce-2", t).await.unwrap());
    assert!(store.record_cmc_nonce("43", b"nonce-1", t).await.unwrap());
    assert!(store.record_cmc_nonce("", b"nonce-1", t).await.unwrap());
    assert!(!store.record_cmc_nonce("", b"nonce-1", t).await.unwrap());
    assert!(store.record_cmc_nonce("-42", b"nonce-1", t).await.unwrap());
    assert!(store.record_cmc_nonce("42", b"NONCE-1", t).await.unwrap());
    assert!(store.record_cmc_nonce("42", b"nonce-1\0", t).await.unwrap());
    let binary: Vec<u8> = (0..=255u8).collect();
    assert!(store.record_cmc_nonce("42", &binary, t).await.unwrap());
    assert!(!store.record_cmc_nonce("42", &binary, t).await.unwrap());
    assert!(store.record_cmc_nonce("42", b"", t).await.unwrap());
    assert!(!store.record_cmc_nonce("42", b"", t).await.unwrap());
    // A long transaction id (a 512-bit INTEGER) works like a short one.
    let long = "1".repeat(155);
    assert!(store.record_cmc_nonce(&long, b"nonce-1", t).await.unwrap());
    assert!(!store.record_cmc_nonce(&long, b"nonce-1", t).await.unwrap());
    sql.close().await;
}

/// The same pair from 16 concurrent tasks on two independent store instances (separate
/// connections, as two nodes would have): exactly one is told it is new.
pub async fn cmc_nonces_concurrent_exactly_one_new(url: &str) {
    let a = Arc::new(open(url).await);
    let b = Arc::new(open(url).await);
    for round in 0..3 {
        let nonce = format!("race-{round}").into_bytes();
        let mut tasks = JoinSet::new();
        for i in 0..16 {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let nonce = nonce.clone();
            tasks.spawn(async move {
                store
                    .record_cmc_nonce("7", &nonce, 1_700_000_000 + i)
                    .await
                    .unwrap()
            });
        }
        let mut new = 0;
        while let Some(fresh) = tasks.join_next().await {
            new += usize::from(fresh.unwrap());
        }
        assert_eq!(
            new, 1,
            "round {round}: exactly one caller sees the pair as new"
        );
        assert!(!a.record_cmc_nonce("7", &nonce, 1).await.unwrap());
        assert!(!b.record_cmc_nonce("7", &nonce, 1).await.unwrap());
    }
    Arc::try_unwrap(a).unwrap().close().await;
    Arc::try_unwrap(b).unwrap().close().await;
}

/// Pruning forgets exactly the pairs seen before the cut-off (strictly earlier), counts them,
/// and a forgotten pair is new again.
pub async fn cmc_nonces_pruned_before(url: &str) {
    let sql = open(url).await;
    let store: &dyn Store = &sql;
    assert_eq!(store.prune_cmc_nonces(i64::MAX).await.unwrap(), 0);
    for (i, at) in [100, 200, 200, 300].into_iter().enumerate() {
        assert!(
            store
                .record_cmc_nonce("1", format!("n{i}").as_bytes(), at)
                .await
                .unwrap()
        );
    }
    assert_eq!(store.prune_cmc_nonces(100).await.unwrap(), 0);
    assert_eq!(store.prune_cmc_nonces(201).await.unwrap(), 3);
    assert_eq!(store.prune_cmc_nonces(201).await.unwrap(), 0);
    assert!(store.record_cmc_nonce("1", b"n0", 400).await.unwrap());
    assert!(store.record_cmc_nonce("1", b"n2", 400).await.unwrap());
    // Kept: seen at 300.
    assert!(!store.record_cmc_nonce("1", b"n3", 400).await.unwrap());
    assert_eq!(store.prune_cmc_nonces(i64::MAX).await.unwrap(), 3);
    assert!(store.record_cmc_nonce("1", b"n3", 500).await.unwrap());
    sql.close().await;
}

/// Many distinct pairs at once (they share group commits): every one is new once, then a
/// replay, and each caller gets its own answer.
pub async fn cmc_nonces_batched_distinct_pairs(url: &str) {
    let store = Arc::new(open(url).await);
    for pass in [true, false] {
        let mut tasks = JoinSet::new();
        for i in 0..200u32 {
            let store = store.clone();
            tasks.spawn(async move {
                let tid = (i % 7).to_string();
                let nonce = format!("distinct-{i}").into_bytes();
                (
                    i,
                    store
                        .record_cmc_nonce(&tid, &nonce, 1_700_000_000)
                        .await
                        .unwrap(),
                )
            });
        }
        let mut answers = 0;
        while let Some(r) = tasks.join_next().await {
            let (i, fresh) = r.unwrap();
            assert_eq!(fresh, pass, "pair {i}, first pass {pass}");
            answers += 1;
        }
        assert_eq!(answers, 200);
    }
    Arc::try_unwrap(store).unwrap().close().await;
}

/// Replay records and certificates queued together share the writer's commits (one
/// transaction each): 200 concurrent "requests" each record a pair and then store a
/// certificate, while a replay of every pair races them. Every certificate is durable, every
/// pair is new exactly once, and both survive a reopen.
pub async fn cmc_nonces_and_certificates_commit_together(url: &str) {
    const N: u64 = 200;
    let sql = Arc::new(open(url).await);
    let mut tasks = JoinSet::new();
    for i in 0..N {
        for _replay in 0..2 {
            let store = Arc::clone(&sql);
            tasks.spawn(async move {
                let nonce = format!("mixed-{i}").into_bytes();
                let fresh = store
                    .record_cmc_nonce("99", &nonce, 1_700_000_000)
                    .await
                    .unwrap();
                if fresh {
                    let mut r = super::record(format!("{:040x}", 0x7e00_0000_0000_0000_u64 + i));
                    r.issued_at += i as i64;
                    store.insert_certificate(&r).await.unwrap();
                }
                fresh
            });
        }
    }
    let mut new = 0;
    while let Some(joined) = tasks.join_next().await {
        let fresh = joined.unwrap();
        new += u64::from(fresh);
    }
    assert_eq!(new, N, "each pair is new exactly once");
    assert_eq!(sql.stats().rows, N);
    Arc::into_inner(sql).unwrap().close().await;

    let sql = open(url).await;
    let store: &dyn Store = &sql;
    for i in 0..N {
        let serial = format!("{:040x}", 0x7e00_0000_0000_0000_u64 + i);
        assert!(
            store
                .certificate_by_serial(&serial)
                .await
                .unwrap()
                .is_some(),
            "{serial} lost"
        );
        let nonce = format!("mixed-{i}").into_bytes();
        assert!(!store.record_cmc_nonce("99", &nonce, 1).await.unwrap());
    }
    sql.close().await;
}

fn pair(tid: &str, nonce: &[u8]) -> est_ca::ReplayPair {
    est_ca::ReplayPair {
        transaction_id: tid.into(),
        sender_nonce: nonce.to_vec(),
        seen_at: 1_700_000_000,
    }
}

/// A certificate that claims a replay record (CMC-53, one commit for both): recorded only if
/// the pair is new, and the pair with it; a pair seen before (by a claim or by
/// `record_cmc_nonce`) refuses the certificate with `Replayed` and stores nothing; a duplicate
/// serial still records the pair; of 16 concurrent claims of one pair on two store instances,
/// exactly one certificate is stored.
pub async fn certificates_claiming_replay_records(url: &str) {
    let serial = |i: u64| format!("{:040x}", 0x5c00_0000_0000_0000_u64 + i);
    let sql = Arc::new(open(url).await);
    let store: &dyn Store = sql.as_ref();

    store
        .insert_certificate_claiming(&super::record(serial(1)), &pair("1", b"p"))
        .await
        .unwrap();
    assert!(
        store
            .certificate_by_serial(&serial(1))
            .await
            .unwrap()
            .is_some()
    );
    let again = store
        .insert_certificate_claiming(&super::record(serial(2)), &pair("1", b"p"))
        .await;
    assert!(matches!(again, Err(StoreError::Replayed)), "got {again:?}");
    assert!(
        store
            .certificate_by_serial(&serial(2))
            .await
            .unwrap()
            .is_none()
    );
    // The claim recorded the pair for everyone.
    assert!(!store.record_cmc_nonce("1", b"p", 1).await.unwrap());

    // Recorded first by a request that had other work: a later claim is a replay.
    assert!(store.record_cmc_nonce("2", b"q", 1).await.unwrap());
    let r = store
        .insert_certificate_claiming(&super::record(serial(3)), &pair("2", b"q"))
        .await;
    assert!(matches!(r, Err(StoreError::Replayed)), "got {r:?}");
    assert!(
        store
            .certificate_by_serial(&serial(3))
            .await
            .unwrap()
            .is_none()
    );

    // A serial collision: the pair is recorded, the certificate is not (draw again).
    let r = store
        .insert_certificate_claiming(&super::record(serial(1)), &pair("3", b"r"))
        .await;
    assert!(matches!(r, Err(StoreError::DuplicateSerial)), "got {r:?}");
    assert!(!store.record_cmc_nonce("3", b"r", 1).await.unwrap());

    // Concurrent claims of one pair, mixed with plain inserts, on two instances.
    let other = Arc::new(open(url).await);
    let mut tasks = JoinSet::new();
    for i in 0..16u64 {
        let s: Arc<est_store::SqlStore> = if i % 2 == 0 {
            sql.clone()
        } else {
            other.clone()
        };
        tasks.spawn(async move {
            let claimed = s
                .insert_certificate_claiming(&super::record(serial(100 + i)), &pair("4", b"race"))
                .await;
            s.insert_certificate(&super::record(serial(200 + i)))
                .await
                .unwrap();
            match claimed {
                Ok(()) => true,
                Err(StoreError::Replayed) => false,
                Err(e) => panic!("claim {i}: {e:?}"),
            }
        });
    }
    let mut won = Vec::new();
    while let Some(j) = tasks.join_next().await {
        won.push(j.unwrap());
    }
    assert_eq!(
        won.iter().filter(|w| **w).count(),
        1,
        "exactly one claim wins"
    );
    let mut stored = 0;
    for i in 0..16u64 {
        stored += usize::from(
            store
                .certificate_by_serial(&serial(100 + i))
                .await
                .unwrap()
                .is_some(),
        );
        assert!(
            store
                .certificate_by_serial(&serial(200 + i))
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(stored, 1, "only the winning claim's certificate is stored");
    Arc::try_unwrap(other).unwrap().close().await;
    Arc::try_unwrap(sql).unwrap().close().await;
}
