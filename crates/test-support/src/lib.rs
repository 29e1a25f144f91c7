//! Shared test fixtures: a throwaway PKI (root, two issuing CAs, a TLS server certificate),
//! an authority on a real store, and an EST server on a loopback port with real TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use est_ca::{
    Authority, CaDomain, Issuer, KeyBackend, KeyId, KeyType, PasswordHasher, Profile, SigningKey,
    Store, SystemClock, UserRecord, setup,
};
use est_keys::{FileKeyBackend, SoftwareKey, generate_key};
use est_server::{AuthMethods, LabelConfig, Limits, RunningServer, TlsConfig};
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::X509;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use x509_cert::name::Name;
use zeroize::Zeroizing;

pub const ALICE: (&str, &str) = ("alice", "alice-password-1");
/// Bob may only request names under bob.example.
pub const BOB: (&str, &str) = ("bob", "bob-password-12");
/// May only request `*.allowed.example` (one label in front).
pub const ALLOWED: (&str, &str) = ("allowed", "allowed-password-1");

/// The server secret of the fixture (the binary uses its key-file passphrase): it seals
/// client keys and Digest secrets.
pub const SERVER_SECRET: &[u8] = b"test-support server secret";

/// The server's sealer for secrets at rest, as the fixture's authority has it.
pub fn secret_box() -> est_ca::SecretBox {
    est_ca::SecretBox::from_server_secret(SERVER_SECRET).unwrap()
}

/// The PostgreSQL URL tests use: `$ESTUARY_TEST_PG`, default the local server.
pub fn pg_url() -> String {
    std::env::var("ESTUARY_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Which store backs the fixture.
#[derive(Debug, Clone)]
pub enum StoreKind {
    Sqlite,
    /// A PostgreSQL server URL: each test server gets a fresh database of its own there.
    Postgres(String),
}

#[derive(Debug)]
pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub root: Issuer,
    pub issuing: Issuer,
    pub devices: Issuer,
    pub root_pem: PathBuf,
    pub tls_chain_pem: Vec<u8>,
    pub tls_key_pem: Zeroizing<Vec<u8>>,
}

impl TestPki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = FileKeyBackend::new(
            dir.path().join("keys"),
            Zeroizing::new(b"test-passphrase".to_vec()),
        )
        .unwrap();
        let now = SystemTime::now();
        let y = Duration::from_secs(365 * 86400);
        let root = setup::self_signed_root(
            keys.generate(&KeyId("root".into()), KeyType::P384).unwrap(),
            Name::from_str("CN=Test Root CA,O=Estuary Tests").unwrap(),
            10 * y,
            now,
        )
        .unwrap();
        let issuing = setup::subordinate_ca(
            &root,
            keys.generate(&KeyId("issuing".into()), KeyType::P256)
                .unwrap(),
            Name::from_str("CN=Test Issuing CA,O=Estuary Tests").unwrap(),
            5 * y,
            now,
        )
        .unwrap();
        let devices = setup::subordinate_ca(
            &root,
            keys.generate(&KeyId("devices".into()), KeyType::P256)
                .unwrap(),
            Name::from_str("CN=Test Devices CA,O=Estuary Tests").unwrap(),
            5 * y,
            now,
        )
        .unwrap();
        let tls_key = generate_key(KeyType::P256).unwrap();
        let soft = SoftwareKey::new(tls_key.clone()).unwrap();
        let tls = setup::tls_server_certificate(
            &issuing,
            soft.public_key_info().clone(),
            Name::from_str("CN=localhost").unwrap(),
            &["localhost"],
            &["127.0.0.1".parse().unwrap()],
            y,
            now,
        )
        .unwrap();
        let mut tls_chain_pem = X509::from_der(&der::Encode::to_der(&tls).unwrap())
            .unwrap()
            .to_pem()
            .unwrap();
        tls_chain_pem.extend(X509::from_der(&issuing.cert_der).unwrap().to_pem().unwrap());
        let root_pem = dir.path().join("root.pem");
        std::fs::write(
            &root_pem,
            X509::from_der(&root.cert_der).unwrap().to_pem().unwrap(),
        )
        .unwrap();
        Self {
            dir,
            root,
            issuing,
            devices,
            root_pem,
            tls_chain_pem,
            tls_key_pem: Zeroizing::new(tls_key.private_key_to_pem_pkcs8().unwrap()),
        }
    }

    pub fn issuing_x509(&self) -> X509 {
        X509::from_der(&self.issuing.cert_der).unwrap()
    }

    pub fn root_x509(&self) -> X509 {
        X509::from_der(&self.root.cert_der).unwrap()
    }

    /// Writes a PEM file in the fixture's directory and returns its path.
    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

/// Options for [`TestServer::start`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub store: StoreKind,
    pub limits: Limits,
    pub require_pop_linking: bool,
    pub auth: est_server::AuthSettings,
    /// Implicit trust anchors for client certificates (e.g. an IDevID root); none by default.
    pub implicit_trust_anchors: Vec<x509_cert::Certificate>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        let limits = Limits {
            handshake_timeout: Duration::from_secs(2),
            header_read_timeout: Duration::from_secs(2),
            ..Limits::default()
        };
        Self {
            store: StoreKind::Sqlite,
            limits,
            require_pop_linking: false,
            auth: est_server::AuthSettings::default(),
            implicit_trust_anchors: Vec::new(),
        }
    }
}

/// A PostgreSQL database of its own for one test server, created on the server at the given
/// URL and dropped (best effort, `WITH (FORCE)`) with it: tests never share schema state, and
/// a branch with new migrations never touches the database other branches test against.
#[derive(Debug)]
struct PgScratch {
    admin_url: String,
    name: String,
}

impl PgScratch {
    async fn create(admin_url: &str) -> (Self, String) {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut admin = sqlx::AnyConnection::connect(admin_url)
            .await
            .expect("PostgreSQL (is it running at $ESTUARY_TEST_PG?)");
        let mut raw = [0u8; 8];
        openssl::rand::rand_bytes(&mut raw).unwrap();
        let name = format!(
            "estuary_ts_{}",
            raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        // `name` is ours (fixed prefix, hex): safe to splice.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.ok();
        let (base, query) = match admin_url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (admin_url, None),
        };
        let server = &base[..base.rfind('/').unwrap()];
        let url = match query {
            Some(q) => format!("{server}/{name}?{q}"),
            None => format!("{server}/{name}"),
        };
        (
            Self {
                admin_url: admin_url.to_owned(),
                name,
            },
            url,
        )
    }
}

impl Drop for PgScratch {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            use sqlx::Connection;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut admin = sqlx::AnyConnection::connect(&admin_url).await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
    }
}

#[derive(Debug)]
pub struct TestServer {
    pub pki: TestPki,
    /// The certificate /fullcmc requests may be encrypted to (CMC-20).
    pub cmc_encryption_cert: x509_cert::Certificate,
    pub addr: SocketAddr,
    pub store: Arc<est_store::SqlStore>,
    pub authority: Arc<Authority>,
    server: Option<RunningServer>,
    /// Declared last: dropped after the store's connections.
    _pg: Option<PgScratch>,
}

impl TestServer {
    /// Labels: "" and "main" → the issuing CA (default profile); "devices" → the devices CA,
    /// EC keys only, with /csrattrs; "pop" → the issuing CA with PoP linking required;
    /// "digest" → the issuing CA, HTTP Digest only (no Basic, no client certificates);
    /// "ra" → the issuing CA, certificates with id-kp-cmcRA; "idevid" → the issuing CA, open to
    /// implicit-TA clients keeping their subject serialNumber ("idevid-skg": the same with
    /// /serverkeygen, which they may not use); "restricted" → the issuing CA
    /// with an access policy (alice: *.team.example; *.devices.example certificates);
    /// "manual" → the issuing CA, initial enrollments held for approval (Retry-After 1 s);
    /// "skg" → the issuing CA with /serverkeygen; "skg-enc" → the same, encrypted delivery
    /// required; "wild" → the issuing CA, a profile that allows wildcard names.
    pub async fn start(opts: ServerOptions) -> Self {
        let pki = TestPki::new();
        let (url, pg) = match &opts.store {
            StoreKind::Sqlite => (
                format!("sqlite://{}", pki.dir.path().join("estuary.db").display()),
                None,
            ),
            StoreKind::Postgres(u) => {
                let (scratch, url) = PgScratch::create(u).await;
                (url, Some(scratch))
            }
        };
        let store = Arc::new(
            est_store::SqlStore::connect(&url)
                .await
                .expect("store (is PostgreSQL running at $ESTUARY_TEST_PG?)"),
        );
        for (user, pw, names) in [
            (ALICE.0, ALICE.1, vec!["*".to_string()]),
            (
                BOB.0,
                BOB.1,
                vec!["bob.example".to_string(), "*.bob.example".to_string()],
            ),
            (ALLOWED.0, ALLOWED.1, vec!["*.allowed.example".to_string()]),
        ] {
            let digest =
                est_server::user_digest_secrets(est_server::DEFAULT_REALM, user, pw.as_bytes())
                    .unwrap()
                    .seal(&secret_box(), user)
                    .unwrap();
            let _ = store
                .add_user(&UserRecord {
                    name: user.into(),
                    password_hash: PasswordHasher::hash(pw.as_bytes()).unwrap(),
                    allowed_names: names,
                    created_at: 0,
                    digest_secrets: digest,
                })
                .await;
        }
        let mut devices_profile = Profile::default();
        devices_profile.keys.rsa_min_bits = None;
        devices_profile.keys.ed25519 = false;
        devices_profile.validity = Duration::from_secs(90 * 86400);
        let ra_profile = Profile {
            extended_key_usage: vec![
                est_ca::ExtendedKeyUsage::ClientAuth,
                est_ca::ExtendedKeyUsage::CmcRa,
            ],
            ..Profile::default()
        };
        let domains = vec![
            CaDomain {
                name: "main".into(),
                issuer: pki.issuing.clone(),
                profile: Profile::default(),
            },
            CaDomain {
                name: "ra".into(),
                issuer: pki.issuing.clone(),
                profile: ra_profile,
            },
            CaDomain {
                name: "devices".into(),
                issuer: pki.devices.clone(),
                profile: devices_profile,
            },
            CaDomain {
                name: "wild".into(),
                issuer: pki.issuing.clone(),
                profile: Profile {
                    allow_wildcard: true,
                    ..Profile::default()
                },
            },
        ];
        let authority = Arc::new(
            Authority::new(domains, store.clone(), Arc::new(SystemClock))
                .unwrap()
                .with_secret_box(secret_box()),
        );
        let csr_attrs = der::Encode::to_der(&est_asn1::CsrAttrs(vec![est_asn1::AttrOrOid::Oid(
            est_asn1::oid_from_str("challengePassword").unwrap(),
        )]))
        .unwrap();
        let label = |name: &str, domain: &str, pop: bool, attrs: Option<Vec<u8>>| LabelConfig {
            name: name.into(),
            domain: domain.into(),
            csr_attrs: attrs,
            auth: AuthMethods::default(),
            require_pop_linking: pop,
            implicit_enroll: None,
            policy: est_ca::LabelPolicy::default(),
            approval: est_server::Approval::Automatic,
            cmc: est_server::CmcPolicy {
                // The label-less path takes RA certificates of this CA (EST-48, CMC-56).
                authorized_ras: if name.is_empty() {
                    vec!["*".into()]
                } else {
                    Vec::new()
                },
                ..Default::default()
            },
            server_keygen: None,
            upstream: None,
        };
        let keygen = |name: &str, require_encryption: bool| LabelConfig {
            server_keygen: Some(est_server::ServerKeyGen { require_encryption }),
            ..label(name, "main", false, None)
        };
        let labels = vec![
            label("", "main", opts.require_pop_linking, None),
            label("main", "main", opts.require_pop_linking, None),
            label("devices", "devices", false, Some(csr_attrs.clone())),
            label("pop", "main", true, Some(csr_attrs)),
            keygen("skg", false),
            keygen("skg-enc", true),
            LabelConfig {
                auth: AuthMethods {
                    basic: false,
                    digest: true,
                    client_cert: false,
                    digest_algorithms: None,
                },
                ..label("digest", "main", false, None)
            },
            // Issues RA certificates (id-kp-cmcRA, EST-48).
            label("ra", "ra", false, None),
            // A profile that issues wildcard dNSNames.
            label("wild", "wild", false, None),
            // IDevID holders (implicit trust anchors) may enroll, keeping their serialNumber.
            LabelConfig {
                implicit_enroll: Some(est_ca::ImplicitNameMapping::SameSerialNumber),
                ..label("idevid", "main", false, None)
            },
            // The same with /serverkeygen on: still refused to implicit-TA clients (SEC-6).
            LabelConfig {
                implicit_enroll: Some(est_ca::ImplicitNameMapping::SameSerialNumber),
                server_keygen: Some(est_server::ServerKeyGen::default()),
                ..label("idevid-skg", "main", false, None)
            },
            // EST-47: alice only for *.team.example; certificates of *.devices.example only
            // for their own domain; nobody else.
            LabelConfig {
                policy: est_ca::LabelPolicy {
                    rules: vec![
                        est_ca::AccessRule {
                            users: vec![ALICE.0.into()],
                            names: vec!["*.team.example".into()],
                            ..Default::default()
                        },
                        est_ca::AccessRule {
                            cert_subjects: vec!["CN=*.devices.example".into()],
                            names: vec!["*.devices.example".into()],
                            ..Default::default()
                        },
                    ],
                },
                ..label("restricted", "main", false, None)
            },
            // /fullcmc with RA controls honoured from any id-kp-cmcRA certificate of this CA
            // (CMC-56).
            LabelConfig {
                cmc: est_server::CmcPolicy {
                    authorized_ras: vec!["*".into()],
                    ..Default::default()
                },
                ..label("cmc-ra", "main", false, None)
            },
            // /fullcmc answering confirmRequired (CMC-69).
            LabelConfig {
                cmc: est_server::CmcPolicy {
                    confirm_required: true,
                    ..Default::default()
                },
                ..label("cmc-confirm", "main", false, None)
            },
            // CMC server-side key generation (draft-turner-cmc-serverkeygeneration-02) under
            // Estuary's default OIDs.
            LabelConfig {
                cmc: est_server::CmcPolicy {
                    server_keygen: Some(est_cmc::serverkeygen::SkgOids::default()),
                    ..Default::default()
                },
                ..label("cmc-skg", "main", false, None)
            },
            // The same held for approval: refused, pending is not supported (SKGD-27).
            LabelConfig {
                cmc: est_server::CmcPolicy {
                    server_keygen: Some(est_cmc::serverkeygen::SkgOids::default()),
                    ..Default::default()
                },
                approval: est_server::Approval::Manual {
                    retry_after: Duration::from_secs(1),
                },
                ..label("cmc-skg-manual", "main", false, None)
            },
            // EST-49: held for the operator, retry after 1 s.
            LabelConfig {
                approval: est_server::Approval::Manual {
                    retry_after: Duration::from_secs(1),
                },
                ..label("manual", "main", false, None)
            },
        ];
        let tls = TlsConfig {
            cert_chain_pem: pki.tls_chain_pem.clone(),
            key_pem: pki.tls_key_pem.clone(),
            client_trust_anchors: vec![pki.root.cert.clone()],
            client_intermediates: vec![pki.issuing.cert.clone(), pki.devices.cert.clone()],
            implicit_trust_anchors: opts.implicit_trust_anchors.clone(),
        };
        let acceptor = est_server::build_acceptor(&tls).unwrap();
        // The CA's CMC encryption certificate (CMC-20), RSA key transport.
        let enc_key = key(KeyType::Rsa2048);
        let enc_spki = <x509_cert::spki::SubjectPublicKeyInfoOwned as der::Decode>::from_der(
            &enc_key.public_key_to_der().unwrap(),
        )
        .unwrap();
        let enc_cert = est_ca::setup::cmc_encryption_certificate(
            &pki.issuing,
            enc_spki,
            "CN=CMC Encryption,O=Estuary Test".parse().unwrap(),
            Duration::from_secs(86400),
            std::time::SystemTime::now(),
        )
        .unwrap();
        let state = Arc::new(
            est_server::EstState::new(authority.clone(), labels, opts.limits.clone())
                .unwrap()
                .with_auth_settings(opts.auth.clone())
                .unwrap()
                .with_cmc_decryption(
                    &enc_key.private_key_to_pem_pkcs8().unwrap(),
                    enc_cert.clone(),
                )
                .unwrap(),
        );
        let server = est_server::serve("127.0.0.1:0".parse().unwrap(), acceptor, state)
            .await
            .unwrap();
        Self {
            addr: server.local_addr,
            cmc_encryption_cert: enc_cert,
            pki,
            store,
            authority,
            server: Some(server),
            _pg: pg,
        }
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// The server's connection table: open connections by phase, evictions, refusals.
    pub fn connection_stats(&self) -> est_server::ConnStats {
        self.server
            .as_ref()
            .map(|s| s.connection_stats())
            .unwrap_or_default()
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

/// A parsed HTTP/1.1 response from [`raw_request`].
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Client-side TLS options for [`raw_request`].
#[derive(Debug, Default, Clone)]
pub struct RawTls {
    pub client_cert: Option<(X509, PKey<Private>)>,
    pub max_tls12: bool,
}

/// Sends `request` verbatim over a fresh TLS connection (server verified against the root)
/// and reads one response (`Connection: close` is expected in the request).
pub async fn raw_request(server: &TestServer, tls: &RawTls, request: &[u8]) -> RawResponse {
    parse_response(&raw_bytes(server, tls, request).await)
}

/// Sends `request` verbatim over a fresh TLS connection and returns every byte the server
/// writes until it closes (at most 20 s), unparsed: for checks of the exact wire format.
pub async fn raw_bytes(server: &TestServer, tls: &RawTls, request: &[u8]) -> Vec<u8> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.cert_store_mut().add_cert(server.pki.root_x509()).unwrap();
    b.set_verify(SslVerifyMode::PEER);
    if tls.max_tls12 {
        b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
    }
    if let Some((c, k)) = &tls.client_cert {
        b.set_certificate(c).unwrap();
        b.set_private_key(k).unwrap();
    }
    let ssl = b
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut s = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    std::pin::Pin::new(&mut s).connect().await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
    buf
}

pub fn parse_response(buf: &[u8]) -> RawResponse {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete response head");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n =
            usize::from_str_radix(std::str::from_utf8(&b[..i]).unwrap().trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 2 + n + 2..];
    }
    out
}

/// The certificates of a base64 certs-only body (an /simpleenroll or /cacerts answer), decoded
/// by OpenSSL, independently of our own decoder.
pub fn certs_only(r: &RawResponse) -> Vec<X509> {
    let der =
        openssl::base64::decode_block(&r.text().replace(['\r', '\n'], "")).expect("base64 body");
    let p7 = openssl::pkcs7::Pkcs7::from_der(&der).expect("PKCS#7");
    p7.signed()
        .expect("signedData")
        .certificates()
        .expect("certificates")
        .iter()
        .map(|c| c.to_owned())
        .collect()
}

/// A PKCS#10 request (x509-cert types, signed by OpenSSL), optionally with a SAN extension
/// request and a challengePassword (UTF8String).
pub fn make_csr(
    key: &PKey<Private>,
    cn: &str,
    dns_sans: &[&str],
    challenge_password: Option<&str>,
) -> Vec<u8> {
    use der::Any;
    use der::asn1::{Ia5String, SetOfVec, Utf8StringRef};
    use x509_cert::attr::Attribute;
    use x509_cert::ext::pkix::name::GeneralName;
    let mut attrs = Vec::new();
    if !dns_sans.is_empty() {
        let sans: Vec<GeneralName> = dns_sans
            .iter()
            .map(|d| GeneralName::DnsName(Ia5String::new(d).unwrap()))
            .collect();
        attrs.push(extension_request(vec![san_extension(&sans)]));
    }
    if let Some(cp) = challenge_password {
        attrs.push(Attribute {
            oid: est_asn1::oid_from_str("challengePassword").unwrap(),
            values: SetOfVec::try_from(vec![
                Any::encode_from(&Utf8StringRef::new(cp).unwrap()).unwrap(),
            ])
            .unwrap(),
        });
    }
    make_csr_with(key, &Name::from_str(&format!("CN={cn}")).unwrap(), attrs)
}

/// A SubjectAltName extension (non-critical) of these names.
pub fn san_extension(
    names: &[x509_cert::ext::pkix::name::GeneralName],
) -> x509_cert::ext::Extension {
    let san = x509_cert::ext::pkix::SubjectAltName(names.to_vec());
    raw_extension(const_oid_san(), &der::Encode::to_der(&san).unwrap())
}

/// An extension with `value` as its extnValue contents, verbatim (so malformed ones can be
/// requested too).
pub fn raw_extension(oid: der::oid::ObjectIdentifier, value: &[u8]) -> x509_cert::ext::Extension {
    x509_cert::ext::Extension {
        extn_id: oid,
        critical: false,
        extn_value: der::asn1::OctetString::new(value).unwrap(),
    }
}

/// An extensionRequest attribute (PKCS#9) with these extensions, duplicates and all.
pub fn extension_request(exts: Vec<x509_cert::ext::Extension>) -> x509_cert::attr::Attribute {
    use der::asn1::SetOfVec;
    x509_cert::attr::Attribute {
        oid: est_asn1::oid_from_str("extensionRequest").unwrap(),
        values: SetOfVec::try_from(vec![der::Any::encode_from(&exts).unwrap()]).unwrap(),
    }
}

/// A PKCS#10 request for `subject` with these attributes, signed with `key`.
pub fn make_csr_with(
    key: &PKey<Private>,
    subject: &Name,
    attrs: Vec<x509_cert::attr::Attribute>,
) -> Vec<u8> {
    use der::asn1::SetOfVec;
    use der::{Any, Decode, Encode};
    use x509_cert::request::{CertReq, CertReqInfo, Version};
    let spki =
        x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(&key.public_key_to_der().unwrap())
            .unwrap();
    let info = CertReqInfo {
        version: Version::V1,
        subject: subject.clone(),
        public_key: spki,
        attributes: SetOfVec::try_from(attrs).unwrap(),
    };
    let tbs = info.to_der().unwrap();
    let (alg, mut signer) = match key.id() {
        openssl::pkey::Id::ED25519 => (
            "1.3.101.112",
            openssl::sign::Signer::new_without_digest(key).unwrap(),
        ),
        openssl::pkey::Id::RSA => (
            "1.2.840.113549.1.1.11",
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), key).unwrap(),
        ),
        _ => (
            "1.2.840.10045.4.3.2",
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), key).unwrap(),
        ),
    };
    let sig = signer.sign_oneshot_to_vec(&tbs).unwrap();
    let mut algorithm = x509_cert::spki::AlgorithmIdentifierOwned {
        oid: alg.parse().unwrap(),
        parameters: None,
    };
    if key.id() == openssl::pkey::Id::RSA {
        algorithm.parameters = Some(Any::from(der::asn1::Null));
    }
    CertReq {
        info,
        algorithm,
        signature: der::asn1::BitString::from_bytes(&sig).unwrap(),
    }
    .to_der()
    .unwrap()
}

pub fn const_oid_san() -> der::oid::ObjectIdentifier {
    "2.5.29.17".parse().unwrap()
}

pub fn key(kt: KeyType) -> PKey<Private> {
    generate_key(kt).unwrap()
}

/// base64 of DER, as EST bodies are.
pub fn b64(der: &[u8]) -> String {
    est_proto::encode_body(der)
}

/// An enrollment request (Basic auth) with `Connection: close`.
pub fn enroll_request(
    path: &str,
    user: Option<(&str, &str)>,
    content_type: &str,
    body: &[u8],
) -> Vec<u8> {
    use std::fmt::Write;
    let mut h = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some((u, p)) = user {
        let tok = openssl::base64::encode_block(format!("{u}:{p}").as_bytes());
        let _ = write!(h, "Authorization: Basic {tok}\r\n");
    }
    h.push_str("\r\n");
    let mut v = h.into_bytes();
    v.extend_from_slice(body);
    v
}

pub fn get_request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes()
}

pub use est_ca;
pub use est_keys;
pub fn signing_key_arc(k: PKey<Private>) -> Arc<dyn SigningKey> {
    Arc::new(SoftwareKey::new(k).unwrap())
}
