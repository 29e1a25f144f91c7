//! The store conformance suite: each function takes the URL of an empty store location and
//! checks one part of the `est_ca::Store` contract, the same way on every backend.
//!
//! Operations go through `&dyn Store` wherever the trait offers them, so what is tested is what
//! the authority sees; only `bulk_insert`, `stats` and reopening use `SqlStore` directly.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;

use est_ca::{CertFilter, CertRecord, CertStatus, Store, StoreError, UserRecord};
use est_store::SqlStore;
use tokio::task::JoinSet;

mod audit;
mod cmc;
mod revocation;
pub use audit::*;
pub use cmc::*;
pub use revocation::*;

/// A serial as the authority writes them: lowercase hex, 20 bytes.
pub fn serial(i: u64) -> String {
    format!("{:040x}", 0x7a00_0000_0000_0000_u64 + i)
}

/// A plausible record; tests change the fields they care about.
pub fn record(serial: String) -> CertRecord {
    CertRecord {
        ski: format!("5c{}", &serial[2..]),
        spki_sha256: format!("{:064x}", serial.len()),
        serial,
        ca: "default".into(),
        subject: "CN=device-1,O=Example".into(),
        issuer: "CN=Estuary Test CA,O=Example".into(),
        requester: "user:alice".into(),
        label: String::new(),
        not_before: 1_700_000_000,
        not_after: 1_731_536_000,
        issued_at: 1_700_000_060,
        status: CertStatus::Valid,
        revocation: None,
        der: vec![0x30, 0x82, 0x01, 0x0a, 0x00, 0xff, 0x00],
    }
}

async fn open(url: &str) -> SqlStore {
    SqlStore::connect(url).await.expect("open the store")
}

pub async fn insert_and_get_round_trip(url: &str) {
    let sql = open(url).await;
    let store: &dyn Store = &sql;

    let mut valid = record(serial(1));
    valid.subject = "CN=Grüße\\, Ltd.+SN=42,O=Ex\"ample".into();
    valid.der = (0..=255u8).cycle().take(1_500).collect();
    valid.not_before = -1;
    valid.not_after = i64::MAX;
    valid.issued_at = 1_700_000_123;
    let mut revoked = record(serial(2));
    revoked.status = CertStatus::Revoked;
    revoked.ski = String::new();
    revoked.requester = "cert:0a1b".into();

    store.insert_certificate(&valid).await.unwrap();
    store.insert_certificate(&revoked).await.unwrap();

    assert_eq!(
        store.certificate_by_serial(&valid.serial).await.unwrap(),
        Some(valid.clone())
    );
    assert_eq!(
        store.certificate_by_serial(&revoked.serial).await.unwrap(),
        Some(revoked)
    );
    assert_eq!(store.certificate_by_serial(&serial(3)).await.unwrap(), None);
    // Lookups are exact: no case folding or prefix matching of serials.
    assert_eq!(
        store
            .certificate_by_serial(&valid.serial.to_uppercase())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .certificate_by_serial(&valid.serial[..39])
            .await
            .unwrap(),
        None
    );
    sql.close().await;
}

pub async fn duplicate_serial_rejected(url: &str) {
    let sql = open(url).await;
    let store: &dyn Store = &sql;
    let original = record(serial(1));
    store.insert_certificate(&original).await.unwrap();

    let mut again = record(serial(1));
    again.subject = "CN=someone-else".into();
    let err = store.insert_certificate(&again).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateSerial), "got {err:?}");
    assert_eq!(
        store.certificate_by_serial(&original.serial).await.unwrap(),
        Some(original)
    );
    assert_eq!(store.count_certificates().await.unwrap(), 1);

    // bulk_insert detects it from the database's unique-violation code and keeps nothing of
    // the failed transaction.
    let fresh = record(serial(2));
    let err = sql.bulk_insert(&[fresh.clone(), again]).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateSerial), "got {err:?}");
    let err = sql
        .bulk_insert(&[record(serial(3)), record(serial(3))])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateSerial), "got {err:?}");
    assert_eq!(
        store.certificate_by_serial(&fresh.serial).await.unwrap(),
        None
    );
    assert_eq!(store.count_certificates().await.unwrap(), 1);

    // Both paths still work after refusals.
    sql.bulk_insert(&[record(serial(4))]).await.unwrap();
    store.insert_certificate(&fresh).await.unwrap();
    assert_eq!(store.count_certificates().await.unwrap(), 3);
    assert!(
        store
            .certificate_by_serial(&serial(4))
            .await
            .unwrap()
            .is_some()
    );
    sql.close().await;
}

/// In a burst, only the callers whose serial is taken get `DuplicateSerial`; the others in the
/// same group commit get their certificate, and for a serial asked twice the stored record is
/// exactly the one whose caller was told `Ok`.
pub async fn concurrent_duplicates_fail_only_offenders(url: &str) {
    let sql = Arc::new(open(url).await);
    let existing: Vec<CertRecord> = (0..10).map(|i| record(serial(i))).collect();
    sql.bulk_insert(&existing).await.unwrap();

    let mut attempts = Vec::new();
    for i in 0..10 {
        let mut r = record(serial(i));
        r.requester = "user:late".into();
        attempts.push(r);
    }
    for i in 100..140 {
        for who in ["user:first", "user:second"] {
            let mut r = record(serial(i));
            r.requester = who.into();
            attempts.push(r);
        }
    }
    attempts.extend((200..250).map(|i| record(serial(i))));

    let mut tasks = JoinSet::new();
    for r in attempts {
        let store = Arc::clone(&sql);
        tasks.spawn(async move {
            let result = store.insert_certificate(&r).await;
            (r, result)
        });
    }
    let mut winners: HashMap<String, CertRecord> = HashMap::new();
    let mut refused: HashMap<String, usize> = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (r, result) = joined.unwrap();
        match result {
            Ok(()) => assert!(
                winners.insert(r.serial.clone(), r).is_none(),
                "two callers won one serial"
            ),
            Err(StoreError::DuplicateSerial) => *refused.entry(r.serial).or_default() += 1,
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    for i in 0..10 {
        assert_eq!(
            refused.get(&serial(i)),
            Some(&1),
            "existing serial {i} must be refused"
        );
        assert!(!winners.contains_key(&serial(i)));
    }
    for i in 100..140 {
        assert_eq!(
            refused.get(&serial(i)),
            Some(&1),
            "exactly one of the pair for {i} is refused"
        );
        assert!(winners.contains_key(&serial(i)));
    }
    for i in 200..250 {
        assert!(
            winners.contains_key(&serial(i)),
            "unique serial {i} must be accepted"
        );
    }
    for (serial, winner) in &winners {
        assert_eq!(
            sql.certificate_by_serial(serial).await.unwrap().as_ref(),
            Some(winner)
        );
    }
    for r in &existing {
        assert_eq!(
            sql.certificate_by_serial(&r.serial).await.unwrap().as_ref(),
            Some(r)
        );
    }
    assert_eq!(sql.count_certificates().await.unwrap(), 10 + 40 + 50);
    Arc::into_inner(sql).unwrap().close().await;
}

pub async fn certificates_by_ski(url: &str) {
    let sql = open(url).await;
    let store: &dyn Store = &sql;
    let mut old = record(serial(1));
    old.ski = "0102abcd".into();
    old.issued_at = 1_000;
    let mut new = record(serial(2));
    new.ski = "0102abcd".into();
    new.issued_at = 2_000;
    let mut other = record(serial(3));
    other.ski = "ffee".into();
    let mut no_ski_a = record(serial(4));
    no_ski_a.ski = String::new();
    let mut no_ski_b = record(serial(5));
    no_ski_b.ski = String::new();
    for r in [&old, &new, &other, &no_ski_a, &no_ski_b] {
        store.insert_certificate(r).await.unwrap();
    }

    assert_eq!(
        store.certificates_by_ski("0102abcd").await.unwrap(),
        vec![new, old]
    );
    assert_eq!(
        store.certificates_by_ski("ffee").await.unwrap(),
        vec![other]
    );
    assert_eq!(store.certificates_by_ski("0102").await.unwrap(), vec![]);
    assert_eq!(store.certificates_by_ski("FFEE").await.unwrap(), vec![]);
    // Certificates without the extension do not all share the "empty" key.
    assert_eq!(store.certificates_by_ski("").await.unwrap(), vec![]);
    sql.close().await;
}

/// What a listing must return, computed in memory from the same records.
fn expected(all: &[CertRecord], filter: &CertFilter) -> Vec<CertRecord> {
    let mut out: Vec<CertRecord> = all
        .iter()
        .filter(|r| filter.ca.as_ref().is_none_or(|ca| &r.ca == ca))
        .filter(|r| filter.requester.as_ref().is_none_or(|q| &r.requester == q))
        .filter(|r| filter.subject.as_ref().is_none_or(|s| &r.subject == s))
        .filter(|r| filter.valid_at.is_none_or(|t| r.not_after >= t))
        .filter(|r| filter.expires_before.is_none_or(|t| r.not_after < t))
        .filter(|r| filter.status.is_none_or(|s| r.status == s))
        .cloned()
        .collect();
    out.sort_by(|a, b| {
        b.issued_at
            .cmp(&a.issued_at)
            .then_with(|| b.serial.cmp(&a.serial))
    });
    let out = out.into_iter().skip(filter.offset as usize);
    match filter.limit {
        0 => out.collect(),
        n => out.take(n as usize).collect(),
    }
}

fn listing_fixture() -> Vec<CertRecord> {
    (0..60u64)
        .map(|i| {
            let mut r = record(serial(i * 7919 % 1000));
            r.ca = ["alpha", "beta"][(i % 2) as usize].into();
            r.requester = ["user:alice", "user:bob", "cert:00ff"][(i % 3) as usize].into();
            r.subject = format!("CN=dev-{}", i % 4);
            // Pairs share issued_at, so the serial tie-break is exercised.
            r.issued_at = 1_700_000_000 + (i / 2) as i64;
            r.not_after = r.issued_at + if i % 5 == 0 { 10 } else { 1_000 };
            r.status = if i % 7 == 0 {
                CertStatus::Revoked
            } else {
                CertStatus::Valid
            };
            r
        })
        .collect()
}

pub async fn list_filters_limit_offset_newest_first(url: &str) {
    let sql = Arc::new(open(url).await);
    let all = listing_fixture();
    // Half through the bulk path, half through the group-commit writer.
    sql.bulk_insert(&all[..30]).await.unwrap();
    let mut tasks = JoinSet::new();
    for r in &all[30..] {
        let (store, r) = (Arc::clone(&sql), r.clone());
        tasks.spawn(async move { store.insert_certificate(&r).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap().unwrap();
    }
    let store: &dyn Store = &*sql;

    let filters = [
        CertFilter::default(),
        CertFilter {
            ca: Some("beta".into()),
            ..Default::default()
        },
        CertFilter {
            requester: Some("user:bob".into()),
            ..Default::default()
        },
        CertFilter {
            subject: Some("CN=dev-3".into()),
            ..Default::default()
        },
        CertFilter {
            valid_at: Some(1_700_000_020),
            ..Default::default()
        },
        CertFilter {
            status: Some(CertStatus::Revoked),
            ..Default::default()
        },
        // An expiry window.
        CertFilter {
            valid_at: Some(1_700_000_010),
            expires_before: Some(1_700_000_030),
            status: Some(CertStatus::Valid),
            ..Default::default()
        },
        CertFilter {
            expires_before: Some(1_700_000_015),
            ..Default::default()
        },
        CertFilter {
            status: Some(CertStatus::Valid),
            ca: Some("alpha".into()),
            ..Default::default()
        },
        // The renewal lookup the authority does.
        CertFilter {
            requester: Some("user:alice".into()),
            subject: Some("CN=dev-0".into()),
            valid_at: Some(1_700_000_015),
            status: Some(CertStatus::Valid),
            limit: 2,
            ..Default::default()
        },
        CertFilter {
            ca: Some("nobody".into()),
            ..Default::default()
        },
        CertFilter {
            limit: 5,
            ..Default::default()
        },
        CertFilter {
            limit: 5,
            offset: 3,
            ..Default::default()
        },
        CertFilter {
            offset: 55,
            ..Default::default()
        },
        CertFilter {
            offset: 100,
            limit: 10,
            ..Default::default()
        },
        CertFilter {
            requester: Some("cert:00ff".into()),
            limit: 3,
            offset: 4,
            ..Default::default()
        },
    ];
    for filter in &filters {
        let got = store.list_certificates(filter).await.unwrap();
        assert_eq!(got, expected(&all, filter), "filter {filter:?}");
    }
    let everything = store
        .list_certificates(&CertFilter::default())
        .await
        .unwrap();
    assert_eq!(everything.len(), all.len());
    assert!(
        everything
            .windows(2)
            .all(|w| w[0].issued_at >= w[1].issued_at),
        "newest first"
    );

    // Pages of 7 put back together are the full listing, with no gaps or repeats.
    let mut paged = Vec::new();
    for page in 0.. {
        let filter = CertFilter {
            limit: 7,
            offset: page * 7,
            ..Default::default()
        };
        let rows = store.list_certificates(&filter).await.unwrap();
        if rows.is_empty() {
            break;
        }
        paged.extend(rows);
    }
    assert_eq!(paged, everything);
    Arc::into_inner(sql).unwrap().close().await;
}

pub async fn count_certificates(url: &str) {
    let sql = open(url).await;
    let store: &dyn Store = &sql;
    assert_eq!(store.count_certificates().await.unwrap(), 0);
    store.insert_certificate(&record(serial(1))).await.unwrap();
    assert_eq!(store.count_certificates().await.unwrap(), 1);
    assert!(store.insert_certificate(&record(serial(1))).await.is_err());
    assert_eq!(
        store.count_certificates().await.unwrap(),
        1,
        "a refused insert does not count"
    );
    let bulk: Vec<CertRecord> = (10..2_510).map(|i| record(serial(i))).collect();
    sql.bulk_insert(&bulk).await.unwrap();
    assert_eq!(store.count_certificates().await.unwrap(), 2_501);
    store
        .set_certificate_status(&serial(10), CertStatus::Revoked)
        .await
        .unwrap();
    assert_eq!(
        store.count_certificates().await.unwrap(),
        2_501,
        "revoked still counts"
    );
    // Concurrent inserts commit in shared batches, some of whose rows are skipped as
    // duplicates (of stored serials, or of each other): the count (kept by the trigger of
    // migration 0004) follows exactly what went in.
    let sql = Arc::new(sql);
    let mut tasks = JoinSet::new();
    for i in (3_000..3_040).chain(3_000..3_010).chain(10..20) {
        let sql = Arc::clone(&sql);
        tasks.spawn(async move { sql.insert_certificate(&record(serial(i))).await.is_ok() });
    }
    let mut inserted = 0;
    while let Some(ok) = tasks.join_next().await {
        inserted += usize::from(ok.unwrap());
    }
    assert_eq!(
        inserted, 40,
        "each new serial goes in once, no duplicate does"
    );
    assert_eq!(sql.count_certificates().await.unwrap(), 2_541);
    Arc::into_inner(sql).unwrap().close().await;
    let sql = open(url).await;
    assert_eq!(
        sql.count_certificates().await.unwrap(),
        2_541,
        "the count survives reopening"
    );
    sql.close().await;
}

pub async fn set_certificate_status(url: &str) {
    let sql = open(url).await;
    let store: &dyn Store = &sql;
    let r = record(serial(1));
    store.insert_certificate(&r).await.unwrap();
    store.insert_certificate(&record(serial(2))).await.unwrap();

    assert!(
        store
            .set_certificate_status(&r.serial, CertStatus::Revoked)
            .await
            .unwrap()
    );
    let got = store
        .certificate_by_serial(&r.serial)
        .await
        .unwrap()
        .unwrap();
    // The legacy path records an unspecified revocation at the current time.
    let revocation = got.revocation.expect("revocation details recorded");
    assert!(revocation.revoked_at > 1_700_000_000, "{revocation:?}");
    assert_eq!((revocation.reason, revocation.invalidity_date), (0, None));
    assert_eq!(
        got,
        CertRecord {
            status: CertStatus::Revoked,
            revocation: Some(revocation),
            ..r.clone()
        }
    );
    // Revoking again changes nothing but still finds the certificate.
    assert!(
        store
            .set_certificate_status(&r.serial, CertStatus::Revoked)
            .await
            .unwrap()
    );
    assert_eq!(
        store.certificate_by_serial(&r.serial).await.unwrap(),
        Some(got.clone())
    );
    let revoked = store
        .list_certificates(&CertFilter {
            status: Some(CertStatus::Revoked),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        revoked
            .iter()
            .map(|c| c.serial.as_str())
            .collect::<Vec<_>>(),
        [r.serial.as_str()]
    );
    let other = store
        .certificate_by_serial(&serial(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        other.status,
        CertStatus::Valid,
        "only the named certificate changes"
    );

    assert!(
        store
            .set_certificate_status(&r.serial, CertStatus::Valid)
            .await
            .unwrap()
    );
    assert_eq!(
        store.certificate_by_serial(&r.serial).await.unwrap(),
        Some(r)
    );
    assert!(
        !store
            .set_certificate_status(&serial(99), CertStatus::Revoked)
            .await
            .unwrap()
    );
    sql.close().await;
}

pub async fn users_add_get_list_remove(url: &str) {
    let sql = open(url).await;
    let store: &dyn Store = &sql;
    let bob = UserRecord {
        name: "bob".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
        allowed_names: vec![
            "*.devices.example.com".into(),
            "weird, \"quoted\"\nname".into(),
            "ünïcode.example".into(),
            String::new(),
        ],
        created_at: 1_700_000_000,
        // Opaque sealed bytes, including a zero and high bytes: stored byte for byte.
        digest_secrets: vec![1, 0, 0xff, 0x80, 42],
    };
    let alice = UserRecord {
        name: "alice".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$YWxpY2U$YWxpY2VoYXNo".into(),
        allowed_names: vec![],
        created_at: 1_700_000_100,
        digest_secrets: vec![],
    };
    assert_eq!(store.list_users().await.unwrap(), vec![]);
    store.add_user(&bob).await.unwrap();
    store.add_user(&alice).await.unwrap();
    assert_eq!(store.get_user("bob").await.unwrap(), Some(bob.clone()));
    assert_eq!(store.get_user("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.get_user("Bob").await.unwrap(), None);
    assert_eq!(store.get_user("carol").await.unwrap(), None);
    assert_eq!(
        store.list_users().await.unwrap(),
        vec![alice.clone(), bob.clone()],
        "sorted by name"
    );

    let imposter = UserRecord {
        password_hash: "$argon2id$other".into(),
        ..bob.clone()
    };
    let err = store.add_user(&imposter).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "got {err:?}");
    assert!(
        !format!("{err} {err:?}").contains("argon2id"),
        "errors must not carry password hashes"
    );
    assert_eq!(
        store.get_user("bob").await.unwrap(),
        Some(bob.clone()),
        "a conflict changes nothing"
    );

    assert!(store.remove_user("bob").await.unwrap());
    assert!(!store.remove_user("bob").await.unwrap());
    assert_eq!(store.get_user("bob").await.unwrap(), None);
    assert_eq!(store.list_users().await.unwrap(), vec![alice.clone()]);
    store.add_user(&bob).await.unwrap();
    sql.close().await;

    let sql = open(url).await;
    assert_eq!(
        sql.list_users().await.unwrap(),
        vec![alice, bob],
        "users survive reopening"
    );
    sql.close().await;
}

/// 500 callers at once: every insert is acknowledged, the writer grouped them into fewer
/// transactions than rows, and every row is there after closing and reopening the store.
pub async fn concurrent_inserts_group_commit_durable(url: &str) {
    const N: u64 = 500;
    let sql = Arc::new(open(url).await);
    let mut tasks = JoinSet::new();
    for i in 0..N {
        let store = Arc::clone(&sql);
        tasks.spawn(async move {
            let mut r = record(serial(i));
            r.issued_at += i as i64;
            store.insert_certificate(&r).await
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap().unwrap();
    }
    let stats = sql.stats();
    assert_eq!(stats.rows, N, "{stats:?}");
    assert!(
        stats.commits < stats.rows,
        "inserts were not batched: {stats:?}"
    );
    assert!(stats.largest_batch > 1, "{stats:?}");
    eprintln!("{N} concurrent inserts: {stats:?}");

    let sql = Arc::into_inner(sql).expect("all tasks finished");
    sql.close().await;

    let sql = open(url).await;
    let store: &dyn Store = &sql;
    assert_eq!(store.count_certificates().await.unwrap(), N);
    for i in 0..N {
        let mut r = record(serial(i));
        r.issued_at += i as i64;
        assert_eq!(
            store.certificate_by_serial(&r.serial).await.unwrap(),
            Some(r)
        );
    }
    let newest = store
        .list_certificates(&CertFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(newest[0].serial, serial(N - 1));
    assert_eq!(
        sql.stats().commits,
        0,
        "stats count this store's commits only"
    );
    sql.close().await;
}

/// Dropping the store (without `close`) must not lose acknowledged inserts, and reopening the
/// same location right away must work.
pub async fn drop_then_reopen(url: &str) {
    let sql = open(url).await;
    for i in 0..20 {
        sql.insert_certificate(&record(serial(i))).await.unwrap();
    }
    drop(sql);
    let sql = open(url).await;
    assert_eq!(sql.count_certificates().await.unwrap(), 20);
    sql.insert_certificate(&record(serial(20))).await.unwrap();
    assert_eq!(sql.count_certificates().await.unwrap(), 21);
    sql.close().await;
}

pub async fn bulk_insert_then_lookups(url: &str) {
    const N: u64 = 12_345;
    let sql = open(url).await;
    let records: Vec<CertRecord> = (0..N)
        .map(|i| {
            let mut r = record(serial(i));
            r.issued_at = 1_600_000_000 + i as i64;
            r.subject = format!("CN=bulk-{i}");
            r
        })
        .collect();
    sql.bulk_insert(&records).await.unwrap();
    sql.bulk_insert(&[]).await.unwrap();
    let store: &dyn Store = &sql;
    assert_eq!(store.count_certificates().await.unwrap(), N);
    for i in [0, 1, 999, 1_000, 1_001, N / 2, N - 1] {
        assert_eq!(
            store
                .certificate_by_serial(&serial(i))
                .await
                .unwrap()
                .as_ref(),
            Some(&records[i as usize])
        );
        assert_eq!(
            store
                .certificates_by_ski(&records[i as usize].ski)
                .await
                .unwrap(),
            vec![records[i as usize].clone()]
        );
    }
    let newest = store
        .list_certificates(&CertFilter {
            limit: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        newest,
        records[(N - 3) as usize..]
            .iter()
            .rev()
            .cloned()
            .collect::<Vec<_>>()
    );
    let by_subject = store
        .list_certificates(&CertFilter {
            subject: Some("CN=bulk-77".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_subject, vec![records[77].clone()]);
    // The writer path still works next to bulk data.
    store.insert_certificate(&record(serial(N))).await.unwrap();
    assert_eq!(store.count_certificates().await.unwrap(), N + 1);
    sql.close().await;
}

pub async fn client_keys_add_get_list_remove(url: &str) {
    use est_ca::{ClientKeyKind, ClientKeyRecord};
    let sql = open(url).await;
    let store: &dyn Store = &sql;
    let kek = ClientKeyRecord {
        owner: "user:alice".into(),
        kind: ClientKeyKind::Kek,
        key_id: b"kek-1".to_vec(),
        sealed: vec![1, 0, 255, 7],
        created_at: 1_700_000_000,
    };
    // The same identifier as a recipient, and under another owner, are different keys.
    let recipient = ClientKeyRecord {
        kind: ClientKeyKind::Recipient,
        key_id: b"kek-1".to_vec(),
        sealed: vec![9; 300],
        ..kek.clone()
    };
    let bobs = ClientKeyRecord {
        owner: "user:bob".into(),
        key_id: vec![0, 0xff, 0x80],
        ..kek.clone()
    };
    assert_eq!(store.list_client_keys(None).await.unwrap(), vec![]);
    for k in [&kek, &recipient, &bobs] {
        store.add_client_key(k).await.unwrap();
    }
    let err = store.add_client_key(&kek).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "got {err:?}");
    let get = |o: &'static str, k, id: &'static [u8]| store.get_client_key(o, k, id);
    assert_eq!(
        get("user:alice", ClientKeyKind::Kek, b"kek-1")
            .await
            .unwrap(),
        Some(kek.clone())
    );
    assert_eq!(
        get("user:alice", ClientKeyKind::Recipient, b"kek-1")
            .await
            .unwrap(),
        Some(recipient.clone())
    );
    assert_eq!(
        get("user:bob", ClientKeyKind::Kek, b"kek-1").await.unwrap(),
        None
    );
    assert_eq!(
        get("user:bob", ClientKeyKind::Kek, &[0, 0xff, 0x80])
            .await
            .unwrap(),
        Some(bobs.clone())
    );
    assert_eq!(
        get("user:alice", ClientKeyKind::Kek, b"kek-2")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.list_client_keys(None).await.unwrap(),
        vec![kek.clone(), recipient.clone(), bobs.clone()]
    );
    assert_eq!(
        store.list_client_keys(Some("user:bob")).await.unwrap(),
        vec![bobs.clone()]
    );
    assert!(
        store
            .remove_client_key("user:alice", ClientKeyKind::Kek, b"kek-1")
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_client_key("user:alice", ClientKeyKind::Kek, b"kek-1")
            .await
            .unwrap()
    );
    assert_eq!(
        store.list_client_keys(Some("user:alice")).await.unwrap(),
        vec![recipient]
    );
    sql.close().await;
}

fn token(id: &str, expires_at: i64) -> est_ca::TokenRecord {
    est_ca::TokenRecord {
        id: id.into(),
        label: "devices".into(),
        secret_sha256: "ab".repeat(32),
        subject: "CN=dev1.example".into(),
        created_at: 1_700_000_000,
        expires_at,
        used_at: None,
        used_by: String::new(),
    }
}

/// One-time enrollment tokens: stored and read back; a duplicate id is a conflict; an expired
/// token cannot be consumed; and of many concurrent consumers, from two independent store
/// instances (separate connections), exactly one wins.
pub async fn tokens_single_use_under_concurrency(url: &str) {
    let a = Arc::new(open(url).await);
    let b = Arc::new(open(url).await);
    let t = token("tok_race", 2_000_000_000);
    a.add_token(&t).await.unwrap();
    assert!(matches!(
        a.add_token(&t).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert_eq!(b.get_token("tok_race").await.unwrap().unwrap(), t);
    assert_eq!(a.get_token("tok_none").await.unwrap(), None);

    let mut tasks = JoinSet::new();
    for i in 0..16 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move {
            store
                .consume_token("tok_race", 1_800_000_000, &format!("user:racer-{i}"))
                .await
                .unwrap()
        });
    }
    let mut wins = 0;
    while let Some(won) = tasks.join_next().await {
        wins += usize::from(won.unwrap());
    }
    assert_eq!(wins, 1, "exactly one consumer wins");
    let used = a.get_token("tok_race").await.unwrap().unwrap();
    assert_eq!(used.used_at, Some(1_800_000_000));
    assert!(used.used_by.starts_with("user:racer-"));
    assert!(
        !a.consume_token("tok_race", 1_800_000_001, "late")
            .await
            .unwrap()
    );

    // Expired: never consumable.
    a.add_token(&token("tok_old", 1_000)).await.unwrap();
    assert!(!a.consume_token("tok_old", 1_000, "x").await.unwrap());
    assert!(!a.consume_token("tok_missing", 1, "x").await.unwrap());
    drop(tasks);
    Arc::try_unwrap(a).unwrap().close().await;
    Arc::try_unwrap(b).unwrap().close().await;
}

/// Requests held for manual approval: one per match key, looked up by key and id, listed by
/// status, and moved between states only from the expected state.
pub async fn pending_requests_lifecycle(url: &str) {
    let store = open(url).await;
    let p = est_ca::PendingRecord {
        id: "p1".into(),
        match_key: "ab".repeat(32),
        label: "manual".into(),
        requester: "user:alice".into(),
        subject: "CN=m1.example".into(),
        spki_sha256: "cd".repeat(32),
        csr: vec![0x30, 0x00, 0xff],
        status: "pending".into(),
        created_at: 1_700_000_000,
        decided_at: 0,
        serial: String::new(),
        client_addr: "192.0.2.7:50123".into(),
        reason: String::new(),
    };
    store.add_pending(&p).await.unwrap();
    let dup = est_ca::PendingRecord {
        id: "p2".into(),
        ..p.clone()
    };
    assert!(matches!(
        store.add_pending(&dup).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert_eq!(
        store
            .pending_by_match_key(&p.match_key)
            .await
            .unwrap()
            .unwrap(),
        p
    );
    assert_eq!(store.pending_by_id("p1").await.unwrap().unwrap(), p);
    assert_eq!(
        store.list_pending(Some("pending")).await.unwrap(),
        vec![p.clone()]
    );
    assert!(
        store
            .list_pending(Some("approved"))
            .await
            .unwrap()
            .is_empty()
    );
    // Only from the expected state; decided_at and serial set when given.
    assert!(
        !store
            .transition_pending("p1", "approved", "issuing", None, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .transition_pending("p1", "pending", "approved", Some(1_700_000_100), None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .transition_pending("p1", "pending", "rejected", Some(1_700_000_200), None)
            .await
            .unwrap()
    );
    assert!(
        store
            .transition_pending("p1", "approved", "issuing", None, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .transition_pending("p1", "issuing", "issued", None, Some("0a1b"))
            .await
            .unwrap()
    );
    let done = store.pending_by_id("p1").await.unwrap().unwrap();
    assert_eq!(
        (done.status.as_str(), done.decided_at, done.serial.as_str()),
        ("issued", 1_700_000_100, "0a1b")
    );
    assert_eq!(store.list_pending(None).await.unwrap().len(), 1);
    assert!(
        !store
            .transition_pending("nope", "pending", "approved", Some(1), None)
            .await
            .unwrap()
    );
    store.close().await;
}

/// Operators list tokens (newest first) and revoke unused ones: a revoked token cannot be
/// consumed; revoking a used, a revoked or an unknown token changes nothing and says so.
pub async fn tokens_listed_and_revoked(url: &str) {
    let sql = open(url).await;
    let store: &dyn Store = &sql;
    assert_eq!(store.list_tokens().await.unwrap(), vec![]);
    let mut older = token("tok_old", 2_000_000_000);
    older.created_at -= 10;
    let newer = token("tok_new", 2_000_000_000);
    let used = token("tok_used", 2_000_000_000);
    for t in [&older, &newer, &used] {
        store.add_token(t).await.unwrap();
    }
    assert!(
        store
            .consume_token("tok_used", 1_800_000_000, "user:x")
            .await
            .unwrap()
    );
    let ids: Vec<String> = store
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["tok_new", "tok_used", "tok_old"]);

    assert!(store.revoke_token("tok_new", 1_800_000_100).await.unwrap());
    assert!(!store.revoke_token("tok_new", 1_800_000_200).await.unwrap());
    assert!(!store.revoke_token("tok_used", 1_800_000_200).await.unwrap());
    assert!(!store.revoke_token("tok_none", 1_800_000_200).await.unwrap());
    assert!(
        !store
            .consume_token("tok_new", 1_800_000_300, "user:late")
            .await
            .unwrap()
    );
    let revoked = store.get_token("tok_new").await.unwrap().unwrap();
    assert_eq!(revoked.used_at, Some(1_800_000_100));
    assert_eq!(revoked.used_by, est_ca::TOKEN_REVOKED_BY);
    let still = store.get_token("tok_used").await.unwrap().unwrap();
    assert_eq!(still.used_by, "user:x");
    sql.close().await;
}

/// Console administrators (issue 11 item 1): added once, looked up, listed, removed; a TOTP
/// step is claimed once (a replayed code loses, also between two concurrent logins); and the
/// dashboard's counts by issuance time and expiry window.
pub async fn admins_and_console_counts(url: &str) {
    let store = open(url).await;
    let a = est_ca::AdminRecord {
        name: "alice".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        totp_sealed: vec![1, 2, 3, 0, 255],
        totp_last_step: 0,
        created_at: 1_700_000_000,
    };
    store.add_admin(&a).await.unwrap();
    assert!(matches!(
        store.add_admin(&a).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert_eq!(store.get_admin("alice").await.unwrap().unwrap(), a);
    assert!(store.get_admin("bob").await.unwrap().is_none());
    assert!(store.claim_totp_step("alice", 100).await.unwrap());
    assert!(
        !store.claim_totp_step("alice", 100).await.unwrap(),
        "replayed step"
    );
    assert!(
        !store.claim_totp_step("alice", 99).await.unwrap(),
        "older step"
    );
    assert!(
        !store.claim_totp_step("bob", 101).await.unwrap(),
        "no such admin"
    );
    let (x, y) = tokio::join!(
        store.claim_totp_step("alice", 101),
        store.claim_totp_step("alice", 101)
    );
    assert!(x.unwrap() ^ y.unwrap(), "exactly one concurrent claim wins");
    assert_eq!(
        store
            .get_admin("alice")
            .await
            .unwrap()
            .unwrap()
            .totp_last_step,
        101
    );
    assert_eq!(store.list_admins().await.unwrap().len(), 1);
    assert!(store.remove_admin("alice").await.unwrap());
    // An operator's decision with its reason, once.
    let held = est_ca::PendingRecord {
        id: "d1".into(),
        match_key: "d1".repeat(32),
        label: "manual".into(),
        requester: "user:bob".into(),
        subject: "CN=d1".into(),
        spki_sha256: "ef".repeat(32),
        csr: vec![0x30, 0x00],
        status: "pending".into(),
        created_at: 1_700_000_000,
        decided_at: 0,
        serial: String::new(),
        client_addr: String::new(),
        reason: String::new(),
    };
    store.add_pending(&held).await.unwrap();
    assert!(
        store
            .decide_pending("d1", "rejected", 1_700_000_100, "unknown device")
            .await
            .unwrap()
    );
    assert!(
        !store
            .decide_pending("d1", "approved", 1_700_000_200, "")
            .await
            .unwrap(),
        "decided once"
    );
    let got = store.pending_by_id("d1").await.unwrap().unwrap();
    assert_eq!(
        (got.status.as_str(), got.decided_at, got.reason.as_str()),
        ("rejected", 1_700_000_100, "unknown device")
    );
    assert!(!store.remove_admin("alice").await.unwrap());
    assert!(store.list_admins().await.unwrap().is_empty());

    let base = store.count_issued_since(0).await.unwrap();
    let mut old = record(serial(0x7101));
    old.issued_at = 1_000;
    old.not_after = 5_000;
    let mut new = record(serial(0x7102));
    new.issued_at = 2_000_000_000;
    new.not_after = 2_000_100_000;
    let mut gone = record(serial(0x7103));
    gone.issued_at = 2_000_000_001;
    gone.not_after = 2_000_100_000;
    gone.status = CertStatus::Revoked;
    for r in [&old, &new, &gone] {
        store.insert_certificate(r).await.unwrap();
    }
    assert_eq!(store.count_issued_since(0).await.unwrap(), base + 3);
    assert_eq!(store.count_issued_since(2_000_000_000).await.unwrap(), 2);
    assert_eq!(store.count_issued_since(2_000_000_002).await.unwrap(), 0);
    // Only valid certificates in [from, before).
    assert_eq!(
        store
            .count_expiring(2_000_000_000, 2_000_200_000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_expiring(2_000_000_000, 2_000_100_000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.count_expiring(4_000, 5_001).await.unwrap(), 1);
    // The label a certificate was requested on: recorded and filtered on.
    let mut labelled = record(serial(0x7104));
    labelled.label = "devices".into();
    store.insert_certificate(&labelled).await.unwrap();
    assert_eq!(
        store
            .certificate_by_serial(&labelled.serial)
            .await
            .unwrap()
            .unwrap()
            .label,
        "devices"
    );
    let by_label = store
        .list_certificates(&CertFilter {
            label: Some("devices".into()),
            ..CertFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(by_label.len(), 1);
    assert_eq!(by_label[0].serial, labelled.serial);
    store.close().await;
}
