//! Guessing protection over real TLS (SEC-3, SEC-17): failed authentications slow down and
//! then lock out (429 + Retry-After) the guessing source (its address, and the user name from
//! it), never the victim: the same user from another address still gets in (issue 12);
//! successes are not counted; the lockout ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use est_ca::KeyType;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use test_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATH: &str = "/.well-known/est/simpleenroll";

/// One Basic-authenticated enrollment from the local address `from` (127.0.0.0/8 all loops
/// back on Linux, so tests can play several clients).
async fn enroll_from(s: &TestServer, from: &str, user: (&str, &str)) -> (RawResponse, Duration) {
    let csr = make_csr(&key(KeyType::P256), "g.example", &[], None);
    let req = enroll_request(PATH, Some(user), "application/pkcs10", b64(&csr).as_bytes());
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.cert_store_mut().add_cert(s.pki.root_x509()).unwrap();
    b.set_verify(SslVerifyMode::PEER);
    let ssl = b
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    let tcp = sock.connect(s.addr).await.unwrap();
    let mut st = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    std::pin::Pin::new(&mut st).connect().await.unwrap();
    let t = Instant::now();
    st.write_all(&req).await.unwrap();
    let mut buf = Vec::new();
    let _ = st.read_to_end(&mut buf).await;
    (parse_response(&buf), t.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_slow_down_then_lock_out_user_and_address() {
    let s = TestServer::start(ServerOptions {
        auth: est_server::AuthSettings {
            failures: est_server::FailurePolicy {
                max_failures: 3,
                window: Duration::from_secs(60),
                lockout: Duration::from_secs(3),
                step: Duration::from_millis(300),
                max_delay: Duration::from_secs(1),
            },
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let wrong = (ALICE.0, "not-her-password");
    // Successes are neither counted nor slowed.
    for _ in 0..4 {
        let (r, _) = enroll_from(&s, "127.0.0.1", ALICE).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // Failures: the first answered at once, the next ones later and later.
    let (r, t1) = enroll_from(&s, "127.0.0.1", wrong).await;
    assert_eq!(r.status, 401);
    let (r, t2) = enroll_from(&s, "127.0.0.1", wrong).await;
    assert_eq!(r.status, 401);
    assert!(t2 >= Duration::from_millis(300) && t2 > t1, "{t1:?} {t2:?}");
    let (r, t3) = enroll_from(&s, "127.0.0.1", wrong).await;
    assert_eq!(r.status, 401);
    assert!(t3 >= Duration::from_millis(600), "{t3:?}");
    // Locked out: even the right password gets 429 with Retry-After, from this address...
    let (r, _) = enroll_from(&s, "127.0.0.1", ALICE).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let ra: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3).contains(&ra), "{ra}");
    assert!(!r.text().contains(ALICE.1));
    // ... but not alice herself from another address (the guesser cannot lock her out);
    // bob on the locked address is refused too.
    let (r, _) = enroll_from(&s, "127.0.0.2", ALICE).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (r, _) = enroll_from(&s, "127.0.0.1", BOB).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let (r, _) = enroll_from(&s, "127.0.0.2", BOB).await;
    // bob may not request g.example (his name policy): authenticated, so 403, not 429.
    assert_eq!(r.status, 403, "{}", r.text());
    // The lockout ends.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (r, _) = enroll_from(&s, "127.0.0.1", ALICE).await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.shutdown().await;
}

/// Issue 12: 30 guesses at one user name from 30 addresses (run in parallel) lock out none of
/// them for her: she still enrolls from a 31st address and from each guessing address's
/// neighbour; each guessing address, having failed only once, is not locked either.
#[tokio::test(flavor = "multi_thread")]
async fn guesses_spread_over_addresses_do_not_lock_the_victim_out() {
    let s = std::sync::Arc::new(
        TestServer::start(ServerOptions {
            auth: est_server::AuthSettings {
                failures: est_server::FailurePolicy {
                    max_failures: 3,
                    window: Duration::from_secs(60),
                    lockout: Duration::from_secs(60),
                    step: Duration::from_millis(10),
                    max_delay: Duration::from_millis(200),
                },
                ..Default::default()
            },
            ..Default::default()
        })
        .await,
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 2..32 {
        let s = s.clone();
        tasks.spawn(async move {
            let (r, _) = enroll_from(&s, &format!("127.0.1.{i}"), (ALICE.0, "guess")).await;
            r.status
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 401);
    }
    let (r, _) = enroll_from(&s, "127.0.2.1", ALICE).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (r, _) = enroll_from(&s, "127.0.1.2", ALICE).await;
    assert_eq!(
        r.status,
        200,
        "one failure from this address locks nothing: {}",
        r.text()
    );
    std::sync::Arc::try_unwrap(s).ok().unwrap().shutdown().await;
}
