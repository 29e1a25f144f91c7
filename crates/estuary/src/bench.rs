//! `estuary bench`: a load generator against a running server, printing throughput and
//! latency beside the crypto ceiling of this machine measured in the same run.
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use openssl::ssl::{SslConnector, SslMethod, SslSessionCacheMode, SslVerifyMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::config::AnyError;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    cmd: BenchCmd,
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Drive a running server with enrollments or /cacerts requests.
    Run(RunArgs),
    /// Fill a data dir's store with N synthetic certificate records (for "1M stored" runs).
    Prefill {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Op {
    Enroll,
    Cacerts,
    /// /serverkeygen (plain PKCS#8 delivery) of `--key-type` keys.
    Serverkeygen,
    /// /fullcmc: SignedData(PKIData) carrying a PKCS#10 (P-256), signed with the request's
    /// key (CMC-17). Every request has its own transactionId and senderNonce (the server
    /// refuses a replayed pair) and so its own signature; they are built before the run.
    Fullcmc,
    /// /fullcmc with a ServerKeyGenRequest (CMC server-side key generation): a P-256 key
    /// (`--key-type`) protected with ShroudWithPublicKey bareKey (a P-256 key of the driver's,
    /// ECDH), the PKIData signed with a certificate the driver enrolls at start (SKGD-17).
    /// Each request has its own transactionId, senderNonce and signature, built before the run.
    CmcServerkeygen,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Mode {
    /// A new TCP + full TLS handshake for every request.
    Fresh,
    /// Requests over persistent HTTP/1.1 connections.
    Keepalive,
}

#[derive(Args)]
struct RunArgs {
    /// Server base URL, e.g. https://127.0.0.1:8443
    #[arg(long)]
    url: String,
    #[arg(long)]
    trust_anchor: PathBuf,
    #[arg(long, value_enum, default_value = "enroll")]
    op: Op,
    #[arg(long, value_enum, default_value = "keepalive")]
    mode: Mode,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long)]
    label: Option<String>,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Number of distinct pre-generated CSRs (P-256) to cycle through.
    #[arg(long, default_value_t = 512)]
    csrs: usize,
    /// With `--op fullcmc`: how many signed requests to build before the run (each is sent
    /// once). Default: duration × 8,000 (keep-alive) or × 2,000 (fresh). Should the run use
    /// them all, the workers build more as they go, which is then reported.
    #[arg(long)]
    cmc_requests: Option<usize>,
    /// PID of the server process, to report its RSS and CPU time per operation.
    #[arg(long)]
    server_pid: Option<u32>,
    /// With `--op serverkeygen`: the key type asked for (p256, p384, rsa2048, rsa3072, ...).
    #[arg(long, default_value = "p256")]
    key_type: String,
    /// Total request rate to hold (requests per second, spread over the workers); without it
    /// every worker sends as fast as it can. For latency at a given (low) load.
    #[arg(long)]
    rate: Option<f64>,
    /// A password guesser (issue 12, the guessing-flood benchmark): every request carries
    /// Basic credentials of a new user name (`guess-N`) with a wrong password instead of
    /// `--user`; 401 and 429 answers are its expected outcome and are what its latency covers.
    #[arg(long)]
    guess: bool,
    /// Rotate the source address of every new connection over 127.0.0.2 ..= 127.0.0.(N+1)
    /// (all of 127.0.0.0/8 loops back on Linux), so that one driver plays N clients; 0 = the
    /// system's choice. Only for an IPv4 loopback `--url`.
    #[arg(long, default_value_t = 0)]
    source_ips: u8,
}

pub async fn run(args: BenchArgs) -> Result<(), AnyError> {
    match args.cmd {
        BenchCmd::Run(a) => run_load(a).await,
        BenchCmd::Prefill { data_dir, count } => prefill(&data_dir, count).await,
    }
}

struct Target {
    host: String,
    addr: std::net::SocketAddr,
    connector: SslConnector,
    request_prefix: Vec<u8>,
    csr_bodies: Vec<String>,
    op: Op,
    cmc: Option<CmcPool>,
    guess: bool,
    source_ips: u8,
    /// Connections opened so far (source-address rotation) and guesses sent.
    opened: AtomicUsize,
}

/// Full PKI Requests for `--op fullcmc`, each sent once.
struct CmcPool {
    /// base64 bodies, built before the run.
    requests: Vec<String>,
    next: AtomicUsize,
    /// (key, its SubjectKeyIdentifier, DER PKCS#10 carrying it), to build more if needed.
    keys: Vec<(
        openssl::pkey::PKey<openssl::pkey::Private>,
        Vec<u8>,
        Vec<u8>,
    )>,
    built_live: AtomicU64,
    /// With `--op cmc-serverkeygen`: what the ServerKeyGenRequests are signed with and ask for.
    skg: Option<SkgTemplate>,
}

/// The constant parts of the driver's ServerKeyGenRequests.
struct SkgTemplate {
    signer: est_cms::OpensslSigner,
    subject: x509_cert::name::Name,
    algorithm: x509_cert::spki::AlgorithmIdentifierOwned,
    shroud: est_cmc::serverkeygen::Shroud,
    oids: est_cmc::serverkeygen::SkgOids,
}

impl CmcPool {
    fn new(count: usize) -> Result<Self, AnyError> {
        let mut keys = Vec::with_capacity(count);
        for i in 0..count.max(1) {
            let key = est_keys::generate_key(est_ca::KeyType::P256)?;
            let key_id = est_client::subject_key_id(&key)?;
            let ski = est_client::subject_key_id_extension(&key_id)?;
            let csr = est_client::build_csr_full(
                &key,
                &format!("CN=bench-{i}"),
                &[],
                None,
                vec![ski],
                Vec::new(),
            )?;
            keys.push((key, key_id, csr));
        }
        Ok(Self {
            requests: Vec::new(),
            next: AtomicUsize::new(0),
            keys,
            built_live: AtomicU64::new(0),
            skg: None,
        })
    }

    /// Requests for `--op cmc-serverkeygen`, signed with `key`/`cert`, asking for `key_type`.
    fn server_keygen(
        key: openssl::pkey::PKey<openssl::pkey::Private>,
        cert: x509_cert::Certificate,
        key_type: est_ca::KeyType,
    ) -> Result<Self, AnyError> {
        use est_cmc::serverkeygen::{BareKey, Shroud, ShroudWithPublicKey};
        // At least as strong as the key asked for (SKGD-44): P-384 protects a P-384 key.
        let protect = est_keys::generate_key(if key_type == est_ca::KeyType::P384 {
            est_ca::KeyType::P384
        } else {
            est_ca::KeyType::P256
        })?;
        let ski = est_client::subject_key_id(&protect)?;
        let shroud = Shroud::PublicKey(ShroudWithPublicKey::BareKey(BareKey {
            public_key: x509_cert::spki::SubjectPublicKeyInfoOwned::try_from(
                protect.public_key_to_der()?.as_slice(),
            )?,
            ski: x509_cert::ext::pkix::SubjectKeyIdentifier(der::asn1::OctetString::new(ski)?),
        }));
        // The wanted algorithm (SKGD-3) is that of a key of the type, its key left out.
        let sample = est_keys::generate_key(key_type)?;
        let algorithm = x509_cert::spki::SubjectPublicKeyInfoOwned::try_from(
            sample.public_key_to_der()?.as_slice(),
        )?
        .algorithm;
        let subject = cert.tbs_certificate().subject().clone();
        Ok(Self {
            requests: Vec::new(),
            next: AtomicUsize::new(0),
            keys: Vec::new(),
            built_live: AtomicU64::new(0),
            skg: Some(SkgTemplate {
                signer: est_cms::OpensslSigner::new(key, cert)?,
                subject,
                algorithm,
                shroud,
                oids: est_cmc::serverkeygen::SkgOids::default(),
            }),
        })
    }

    /// A fresh Full PKI Request (new transactionId, senderNonce and signature) for CSR `i`.
    fn build(&self, i: usize) -> Result<String, String> {
        use est_cmc::client::{
            CertRequestBody, RequestOptions, RequestSigner, build_pki_data, sign_request,
        };
        if let Some(t) = &self.skg {
            use est_cmc::serverkeygen::client::{
                build_request, default_capabilities, placeholder_request,
            };
            let opts = RequestOptions::random()?;
            let req = placeholder_request(t.subject.clone(), t.algorithm.clone(), &[])?;
            let caps = default_capabilities(&t.oids, &t.shroud);
            let pki = build_request(&opts, &t.oids, req, &t.shroud, caps)?;
            let der = sign_request(&pki, &RequestSigner::Certificate(&t.signer))?;
            return Ok(openssl::base64::encode_block(&der));
        }
        let (key, key_id, csr) = &self.keys[i % self.keys.len()];
        let opts = RequestOptions::random()?;
        let pki = build_pki_data(&opts, &CertRequestBody::Pkcs10(csr.clone()), key)?;
        let der = sign_request(&pki, &RequestSigner::RequestKey { key, key_id })?;
        Ok(openssl::base64::encode_block(&der))
    }

    /// Builds `count` requests on every core.
    fn prebuild(&mut self, count: usize) -> Result<(), AnyError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per = count.div_ceil(threads);
        let this = &*self;
        let parts: Vec<Result<Vec<String>, String>> = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    sc.spawn(move || {
                        (t * per..((t + 1) * per).min(count))
                            .map(|i| this.build(i))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("builder thread panicked".into()))
                })
                .collect()
        });
        for p in parts {
            self.requests.extend(p?);
        }
        Ok(())
    }

    /// The next unsent request, built now if the pool is used up.
    fn take(&self) -> Result<std::borrow::Cow<'_, str>, String> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match self.requests.get(i) {
            Some(r) => Ok(std::borrow::Cow::Borrowed(r.as_str())),
            None => {
                self.built_live.fetch_add(1, Ordering::Relaxed);
                Ok(std::borrow::Cow::Owned(self.build(i)?))
            }
        }
    }
}

fn build_target(
    a: &RunArgs,
    skg_signer: Option<(
        openssl::pkey::PKey<openssl::pkey::Private>,
        x509_cert::Certificate,
    )>,
) -> Result<Target, AnyError> {
    let rest = a
        .url
        .strip_prefix("https://")
        .ok_or("--url must start with https://")?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport)?
        .next()
        .ok_or("cannot resolve --url")?;
    let host = hostport
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(hostport)
        .trim_matches(['[', ']'])
        .to_string();
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    for c in openssl::x509::X509::stack_from_pem(&std::fs::read(&a.trust_anchor)?)? {
        b.cert_store_mut().add_cert(c)?;
    }
    b.set_verify(SslVerifyMode::PEER);
    // Every "fresh" connection is a full handshake: no client-side session cache.
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    let connector = b.build();
    let label = a
        .label
        .as_deref()
        .map(|l| format!("{l}/"))
        .unwrap_or_default();
    let mut req = match a.op {
        Op::Cacerts => format!("GET /.well-known/est/{label}cacerts HTTP/1.1\r\nHost: {host}\r\n"),
        Op::Enroll => format!(
            "POST /.well-known/est/{label}simpleenroll HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/pkcs10\r\n"
        ),
        Op::Serverkeygen => format!(
            "POST /.well-known/est/{label}serverkeygen HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/pkcs10\r\n"
        ),
        Op::Fullcmc | Op::CmcServerkeygen => format!(
            "POST /.well-known/est/{label}fullcmc HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/pkcs7-mime; smime-type=CMC-request\r\n"
        ),
    };
    if a.source_ips > 0 && !matches!(addr.ip(), std::net::IpAddr::V4(ip) if ip.is_loopback()) {
        return Err("--source-ips needs an IPv4 loopback --url".into());
    }
    if a.guess {
        // Credentials are added per request (see `exchange`).
    } else if let (Some(u), Some(pf)) = (&a.user, &a.password_file) {
        let pw = crate::config::read_secret(pf)?;
        let mut cred = u.as_bytes().to_vec();
        cred.push(b':');
        cred.extend_from_slice(&pw);
        req.push_str(&format!(
            "Authorization: Basic {}\r\n",
            openssl::base64::encode_block(&cred)
        ));
    }
    let mut csr_bodies = Vec::new();
    let mut cmc = None;
    if a.op == Op::Fullcmc || a.op == Op::CmcServerkeygen {
        let count = a.cmc_requests.unwrap_or_else(|| {
            let per_s = if a.mode == Mode::Keepalive {
                8000
            } else {
                2000
            };
            usize::try_from(a.duration)
                .unwrap_or(usize::MAX)
                .saturating_mul(per_s)
        });
        let t0 = Instant::now();
        let mut pool = match skg_signer {
            Some((key, cert)) => {
                let kt = est_ca::KeyType::parse(&a.key_type).ok_or("unknown --key-type")?;
                CmcPool::server_keygen(key, cert, kt)?
            }
            None => CmcPool::new(a.csrs)?,
        };
        pool.prebuild(count.max(1))?;
        let secs = t0.elapsed().as_secs_f64();
        if pool.skg.is_some() {
            println!(
                "pre-built {} ServerKeyGenRequests ({} keys, bareKey P-256 protection; each its own transactionId, senderNonce and signature by the enrolled certificate) in {secs:.1} s",
                pool.requests.len(),
                a.key_type
            );
        } else {
            println!(
                "pre-built {} Full PKI Requests (each its own transactionId, senderNonce and P-256 signature over the PKIData; {} distinct CSRs) in {secs:.1} s",
                pool.requests.len(),
                pool.keys.len()
            );
        }
        cmc = Some(pool);
    } else if a.op != Op::Cacerts {
        // For /serverkeygen the CSR key is only the type hint: one key serves every CSR.
        let key_type = est_ca::KeyType::parse(&a.key_type).ok_or("unknown --key-type")?;
        let hint = est_keys::generate_key(key_type)?;
        for i in 0..a.csrs.max(1) {
            let key = if a.op == Op::Enroll {
                est_keys::generate_key(est_ca::KeyType::P256)?
            } else {
                hint.clone()
            };
            let mut rb = openssl::x509::X509ReqBuilder::new()?;
            let mut n = openssl::x509::X509NameBuilder::new()?;
            n.append_entry_by_text("CN", &format!("bench-{i}"))?;
            rb.set_subject_name(&n.build())?;
            rb.set_pubkey(&key)?;
            rb.sign(&key, openssl::hash::MessageDigest::sha256())?;
            csr_bodies.push(openssl::base64::encode_block(&rb.build().to_der()?));
        }
    }
    Ok(Target {
        host,
        addr,
        connector,
        request_prefix: req.into_bytes(),
        csr_bodies,
        op: a.op,
        cmc,
        guess: a.guess,
        source_ips: a.source_ips,
        opened: AtomicUsize::new(0),
    })
}

type Conn = SslStream<TcpStream>;

async fn connect(t: &Target) -> Result<Conn, AnyError> {
    let tcp = if t.source_ips > 0 {
        let n = t.opened.fetch_add(1, Ordering::Relaxed) % usize::from(t.source_ips);
        let last = u8::try_from(n + 2).unwrap_or(u8::MAX);
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind(std::net::SocketAddr::from(([127, 0, 0, last], 0)))?;
        sock.connect(t.addr).await?
    } else {
        TcpStream::connect(t.addr).await?
    };
    tcp.set_nodelay(true)?;
    let ssl = t.connector.configure()?.into_ssl(&t.host)?;
    let mut s = SslStream::new(ssl, tcp)?;
    std::pin::Pin::new(&mut s).connect().await?;
    Ok(s)
}

/// Sends one request and reads one response; returns the status.
async fn exchange(
    conn: &mut Conn,
    t: &Target,
    i: usize,
    close: bool,
    buf: &mut Vec<u8>,
) -> Result<u16, AnyError> {
    let mut req = t.request_prefix.clone();
    let cmc_body;
    let body = match (&t.cmc, t.op) {
        (Some(pool), _) => {
            cmc_body = pool.take()?;
            cmc_body.as_bytes()
        }
        (None, Op::Cacerts) => &[][..],
        (None, _) => t.csr_bodies[i % t.csr_bodies.len()].as_bytes(),
    };
    if t.op != Op::Cacerts {
        req.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    if t.guess {
        let mut pw = [0u8; 9];
        openssl::rand::rand_bytes(&mut pw)?;
        let cred = format!("guess-{i}:{}", openssl::base64::encode_block(&pw));
        req.extend_from_slice(
            format!(
                "Authorization: Basic {}\r\n",
                openssl::base64::encode_block(cred.as_bytes())
            )
            .as_bytes(),
        );
    }
    if close {
        req.extend_from_slice(b"Connection: close\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    conn.write_all(&req).await?;
    buf.clear();
    let mut tmp = [0u8; 16384];
    let head_end = loop {
        let n = conn.read(&mut tmp).await?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = std::str::from_utf8(&buf[..head_end])?;
    let status: u16 = head.split(' ').nth(1).ok_or("bad status line")?.parse()?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut tmp).await?;
        if n == 0 {
            return Err("connection closed mid-body".into());
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    Ok(status)
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u32>,
    /// Answers by HTTP status.
    statuses: std::collections::BTreeMap<u16, u64>,
    errors: u64,
    first_error: Option<String>,
}

async fn worker(
    t: Arc<Target>,
    mode: Mode,
    deadline: Instant,
    seed: usize,
    interval: Option<Duration>,
) -> WorkerResult {
    let mut r = WorkerResult::default();
    let mut conn: Option<Conn> = None;
    let mut buf = Vec::with_capacity(8192);
    let mut i = seed;
    let mut next = Instant::now();
    while Instant::now() < deadline {
        if let Some(iv) = interval {
            // Open-loop pacing: the next request is due one interval after the previous one
            // was due, so a slow response does not lower the offered load.
            tokio::time::sleep_until(next.into()).await;
            next += iv;
        }
        let t0 = Instant::now();
        let outcome: Result<u16, AnyError> = async {
            if mode == Mode::Fresh || conn.is_none() {
                conn = Some(connect(&t).await?);
            }
            let c = conn.as_mut().ok_or("no connection")?;
            exchange(c, &t, i, mode == Mode::Fresh, &mut buf).await
        }
        .await;
        i = i.wrapping_add(1);
        if let Ok(s) = outcome {
            *r.statuses.entry(s).or_default() += 1;
        }
        let expected = match outcome {
            Ok(200) => true,
            Ok(401 | 429) => t.guess,
            _ => false,
        };
        match outcome {
            Ok(_) if expected => r
                .latencies_us
                .push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX)),
            Ok(s) => {
                r.errors += 1;
                r.first_error.get_or_insert_with(|| {
                    format!(
                        "HTTP {s}: {}",
                        String::from_utf8_lossy(&buf).lines().last().unwrap_or("")
                    )
                });
            }
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert_with(|| e.to_string());
                conn = None;
            }
        }
        if mode == Mode::Fresh
            && let Some(mut c) = conn.take()
        {
            let _ = c.shutdown().await;
        }
    }
    r
}

fn proc_stat(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks as f64 / 100.0, rss_kb))
}

/// CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq, steal).
fn machine_busy() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let busy = [0usize, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|i| f.get(*i))
        .sum::<u64>();
    Some(busy as f64 / 100.0)
}

/// Operations per second of `f` on one core, over ~`ms` milliseconds.
fn rate(ms: u64, mut f: impl FnMut()) -> f64 {
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < Duration::from_millis(ms) {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

struct Ceiling {
    sign: f64,
    verify: f64,
    ecdh: f64,
    cores: f64,
}

fn measure_ceiling() -> Result<Ceiling, AnyError> {
    use openssl::derive::Deriver;
    use openssl::sign::{Signer, Verifier};
    let k = est_keys::generate_key(est_ca::KeyType::P256)?;
    let peer = est_keys::generate_key(est_ca::KeyType::P256)?;
    let msg = [7u8; 256];
    let sig = Signer::new(openssl::hash::MessageDigest::sha256(), &k)?.sign_oneshot_to_vec(&msg)?;
    let sign = rate(700, || {
        let _ = Signer::new(openssl::hash::MessageDigest::sha256(), &k)
            .and_then(|mut s| s.sign_oneshot_to_vec(&msg));
    });
    let verify = rate(700, || {
        let _ = Verifier::new(openssl::hash::MessageDigest::sha256(), &k)
            .and_then(|mut v| v.verify_oneshot(&sig, &msg));
    });
    let ecdh = rate(700, || {
        let _ = Deriver::new(&k).and_then(|mut d| {
            d.set_peer(&peer)?;
            d.derive_to_vec()
        });
    });
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    Ok(Ceiling {
        sign,
        verify,
        ecdh,
        cores,
    })
}

/// Keys of `kt` generated per second by this machine: one generating thread per core, all at
/// once, over at least 5 s and 20 keys each: RSA keygen time varies by a factor of several
/// from key to key, and fewer keys left the ceiling itself ±20% off.
/// Measured this way the ceiling also sees whatever else is using the cores right now.
fn keygen_rate(kt: est_ca::KeyType, cores: usize) -> Result<f64, AnyError> {
    let threads: Vec<_> = (0..cores.max(1))
        .map(|_| {
            std::thread::spawn(move || -> Result<f64, String> {
                let t0 = Instant::now();
                let mut n = 0u32;
                while n < 20 || t0.elapsed() < Duration::from_secs(5) {
                    drop(kt.generate().map_err(|e| e.to_string())?);
                    n += 1;
                }
                Ok(f64::from(n) / t0.elapsed().as_secs_f64())
            })
        })
        .collect();
    let mut total = 0.0;
    for t in threads {
        total += t.join().map_err(|_| "keygen thread panicked")??;
    }
    Ok(total)
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

/// The certificate `--op cmc-serverkeygen` signs its requests with: a P-256 key enrolled by
/// /simpleenroll with the run's credentials on its label.
async fn enroll_signer(
    a: &RunArgs,
) -> Result<
    (
        openssl::pkey::PKey<openssl::pkey::Private>,
        x509_cert::Certificate,
    ),
    AnyError,
> {
    let (Some(u), Some(pf)) = (&a.user, &a.password_file) else {
        return Err(
            "--op cmc-serverkeygen needs --user/--password-file to enroll its signing certificate"
                .into(),
        );
    };
    let pw = crate::config::read_secret(pf)?;
    let mut anchors = Vec::new();
    for c in openssl::x509::X509::stack_from_pem(&std::fs::read(&a.trust_anchor)?)? {
        anchors.push(c);
    }
    let client = est_client::EstClient::new(est_client::ClientConfig {
        url: a.url.clone(),
        label: a.label.clone(),
        trust: est_client::Trust::Explicit(anchors),
        identity: None,
        basic: Some((
            u.clone(),
            zeroize::Zeroizing::new(String::from_utf8_lossy(&pw).into_owned()),
        )),
        max_tls12: false,
        http_auth: Default::default(),
    })?;
    let key = est_keys::generate_key(est_ca::KeyType::P256)?;
    let certs = est_client::enroll_with_key(
        &client,
        &key,
        "CN=bench-cmc-serverkeygen",
        &[],
        false,
        Duration::from_secs(10),
    )
    .await?;
    let cert = certs
        .into_iter()
        .next()
        .ok_or("enrollment returned no certificate")?;
    Ok((key, cert))
}

async fn run_load(a: RunArgs) -> Result<(), AnyError> {
    let signer = if a.op == Op::CmcServerkeygen {
        Some(enroll_signer(&a).await?)
    } else {
        None
    };
    let target = Arc::new(build_target(&a, signer)?);
    // Warm up (and fail fast on a configuration error).
    let mut c = connect(&target).await?;
    let mut buf = Vec::new();
    let st = exchange(&mut c, &target, 0, true, &mut buf).await?;
    if st != 200 && !(target.guess && st == 401) {
        return Err(format!(
            "warm-up request failed: HTTP {st}: {}",
            String::from_utf8_lossy(&buf)
        )
        .into());
    }
    let ceiling = tokio::task::spawn_blocking(measure_ceiling).await??;
    let keygen_ceiling = if a.op == Op::Serverkeygen || a.op == Op::CmcServerkeygen {
        let kt = est_ca::KeyType::parse(&a.key_type).ok_or("unknown --key-type")?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Some(tokio::task::spawn_blocking(move || keygen_rate(kt, cores)).await??)
    } else {
        None
    };
    let before = a.server_pid.and_then(proc_stat);
    let machine_before = machine_busy();
    let self_before = proc_stat(std::process::id());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.duration);
    let interval = a
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(a.concurrency as f64 / r));
    let tasks: Vec<_> = (0..a.concurrency)
        .map(|i| tokio::spawn(worker(target.clone(), a.mode, deadline, i * 7919, interval)))
        .collect();
    let mut lat = Vec::new();
    let (mut errors, mut first_error) = (0u64, None);
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    for t in tasks {
        let r = t.await?;
        lat.extend(r.latencies_us);
        for (s, n) in r.statuses {
            *statuses.entry(s).or_default() += n;
        }
        errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = a.server_pid.and_then(proc_stat);
    let machine_after = machine_busy();
    let self_after = proc_stat(std::process::id());
    lat.sort_unstable();
    let ops = lat.len() as f64 / elapsed;
    println!(
        "estuary bench: op={:?} mode={:?} concurrency={} duration={:.1}s",
        a.op, a.mode, a.concurrency, elapsed
    );
    println!(
        "  throughput   {ops:>10.0} ok/s   ({} ok, {errors} errors)",
        lat.len()
    );
    println!(
        "  latency ms   p50 {:.2}   p90 {:.2}   p99 {:.2}   max {:.2}",
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    println!(
        "  statuses     {}{}",
        statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        if a.guess {
            "   (guesser: 401/429 expected)"
        } else {
            ""
        }
    );
    if let Some(e) = first_error {
        println!("  first error  {e}");
    }
    if let Some(pool) = &target.cmc {
        let live = pool.built_live.load(Ordering::Relaxed);
        if live > 0 {
            println!(
                "  note         the {} pre-built requests ran out: {live} more were built by the workers during the run (driver CPU inside the measurement)",
                pool.requests.len()
            );
        }
    }
    // The machine is shared: what else ran meanwhile, in cores, so a disturbed run shows.
    if let (Some(m0), Some(m1), Some((s0, _)), Some((s1, _)), Some((d0, _)), Some((d1, _))) = (
        machine_before,
        machine_after,
        before,
        after,
        self_before,
        self_after,
    ) {
        let (server, driver) = ((s1 - s0) / elapsed, (d1 - d0) / elapsed);
        let busy = (m1 - m0) / elapsed;
        println!(
            "  machine      {busy:.2} cores busy: server {server:.2}, driver {driver:.2}, other processes {:.2}",
            (busy - server - driver).max(0.0)
        );
    }
    if let (Some((cpu0, _)), Some((cpu1, rss))) = (before, after) {
        let per_op = if lat.is_empty() {
            0.0
        } else {
            (cpu1 - cpu0) * 1000.0 / lat.len() as f64
        };
        println!(
            "  server       RSS {:.1} MiB, CPU {:.2} s = {per_op:.3} ms per ok op",
            rss as f64 / 1024.0,
            cpu1 - cpu0
        );
    }
    println!(
        "  ceiling      this machine, P-256, one core: sign {:.0}/s, verify {:.0}/s, ECDH {:.0}/s; {} cores",
        ceiling.sign, ceiling.verify, ceiling.ecdh, ceiling.cores
    );
    // The work that cannot be avoided per operation, summed over server and driver (which share
    // the machine): an enrollment verifies the CSR and signs the certificate; a fresh TLS
    // handshake (ECDHE-ECDSA) costs each side one ECDH and a key generation (~ one ECDH), the
    // server one signature and the client two verifications (server cert + issuing CA).
    let cost = |sign: f64, verify: f64, ecdh: f64| {
        sign / ceiling.sign + verify / ceiling.verify + ecdh / ceiling.ecdh
    };
    if let Some(limit) = keygen_ceiling {
        println!(
            "  keygen       this machine, {}, all {} cores at once: {limit:.1} keys/s; achieved {:.1}% of it",
            a.key_type,
            ceiling.cores,
            100.0 * ops / limit
        );
        return Ok(());
    }
    let mut per_op = 0.0;
    if a.op == Op::Enroll {
        per_op += cost(1.0, 1.0, 0.0);
    }
    // /fullcmc: the outer SignedData and the CSR are verified, the certificate and the
    // response signed (the driver's signature over each request was made before the run).
    if a.op == Op::Fullcmc {
        per_op += cost(2.0, 2.0, 0.0);
    }
    if a.mode == Mode::Fresh {
        per_op += cost(1.0, 2.0, 4.0);
    }
    if per_op > 0.0 {
        let limit = ceiling.cores / per_op;
        println!(
            "  crypto bound {limit:>10.0} ops/s (cores / unavoidable crypto per op); achieved {:.1}% of it",
            100.0 * ops / limit
        );
    }
    Ok(())
}

async fn prefill(data_dir: &std::path::Path, count: u64) -> Result<(), AnyError> {
    let cfg = crate::config::Config::load(data_dir)?;
    let store = est_store::SqlStore::connect(&cfg.store_url(data_dir)).await?;
    let t0 = Instant::now();
    let batch = 10_000u64;
    let mut done = 0u64;
    while done < count {
        let n = batch.min(count - done);
        let mut recs = Vec::with_capacity(n as usize);
        for _ in 0..n {
            // Serials as the CA makes them; key identifiers and subjects random, as real
            // keys and device names are.
            let (_, serial) = est_ca::new_serial(std::time::SystemTime::now())?;
            let mut key = [0u8; 32];
            openssl::rand::rand_bytes(&mut key)?;
            let ski = hex::encode(&key[..20]);
            recs.push(est_ca::CertRecord {
                serial,
                ca: "prefill".into(),
                subject: format!("CN=prefill-{}", &ski[..16]),
                issuer: "CN=prefill".into(),
                ski,
                spki_sha256: hex::encode(key),
                requester: "prefill".into(),
                label: String::new(),
                not_before: 0,
                not_after: 0,
                issued_at: 0,
                status: est_ca::CertStatus::Valid,
                revocation: None,
                der: vec![0u8; 16],
            });
        }
        store.bulk_insert(&recs).await?;
        done += n;
    }
    println!(
        "inserted {count} records in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
