//! `estuary client fullcmc`: enrollment and renewal over /fullcmc (RFC 7030 §4.3) with Full
//! PKI Requests (RFC 5272 §3.2) built by `est-cmc`, Query Pending for requests held for the
//! operator (CMC-64), Get Certificate (CMC-70), Revocation Request (CMC-72) and Get CRL
//! (CMC-71). Every response is verified against the
//! trust anchor and matched to its request before anything is written.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Subcommand;
use der::Encode;
use der::asn1::{GeneralizedTime, Int};
use est_client::{ClientConfig, EstClient, KeyKind, San, Trust};
use est_cmc::client::{
    CertRequestBody, ID_QUERY_PENDING, RequestOptions, RequestSigner, SharedSecret,
    VerifiedResponse, build_get_cert, build_pki_data, build_query_pending, sign_request,
    verify_response,
};
use est_cmc::types::OtherStatusInfo;
use est_cmc::{BodyPartReference, CmcStatus, CmcStatusInfoV2, ResponseSummary, describe_status};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use openssl::x509::store::X509Store;
use serde::{Deserialize, Serialize};
use x509_cert::serial_number::SerialNumber;
use zeroize::Zeroizing;

use crate::cmd_client::{Error, new_key_like, read_key, write_cert, write_private};

/// Exit status of a request still held for the CA operator's approval.
pub const EXIT_PENDING: u8 = 2;

/// The request is pending (held for approval): `estuary` exits with [`EXIT_PENDING`].
#[derive(Debug)]
pub struct Pending(pub String);

impl std::fmt::Display for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Pending {}

#[derive(Subcommand)]
pub enum FullCmcCmd {
    /// Initial enrollment: a new key, its request (PKCS#10, or CRMF with --crmf) in a PKIData
    /// signed with that key (CMC-17). Authenticated by HTTP Basic (--user/--password-file), a
    /// TLS client certificate (--cert/--key), or a shared secret (--ident/--secret-file).
    Enroll {
        /// Key type to generate: p256, p384, rsa2048 (also rsa3072, rsa4096, ed25519).
        #[arg(long, default_value = "p256")]
        key_type: String,
        /// Subject, RFC 4514 (e.g. "CN=dev1,O=Acme").
        #[arg(long)]
        subject: String,
        /// SubjectAltName: dns:NAME, ip:ADDR, email:ADDR, uri:URI (repeatable).
        #[arg(long)]
        san: Vec<String>,
        /// Send a CRMF request (RFC 4211) instead of PKCS#10.
        #[arg(long)]
        crmf: bool,
        /// Prove possession of the key by decryption instead of a signature, as for a key that
        /// may only encrypt (CMC-67): a CRMF request with keyEncipherment (RSA) or
        /// keyAgreement (EC) POP; the CA answers popRequired with an Encrypted POP, which is
        /// decrypted and answered with a Decrypted POP in a second request. The key cannot
        /// sign the PKIData, so this needs --mac.
        #[arg(long, requires = "mac")]
        encryption_pop: bool,
        /// Identification to prove our identity with a shared secret the CA provisioned
        /// (`estuary cmc-secret add`): Identification + Identity Proof V2 (CMC-44). HTTP
        /// credentials are then optional.
        #[arg(long, requires = "secret_file")]
        ident: Option<String>,
        /// File holding the shared secret of --ident (`-` = standard input); trailing newlines
        /// are stripped.
        #[arg(long, requires = "ident")]
        secret_file: Option<PathBuf>,
        /// Opaque text for the dataReturn control; the response must echo it (CMC-54).
        #[arg(long)]
        data_return: Option<String>,
        /// Wrap the PKIData in AuthenticatedData keyed by --ident/--secret-file (a MAC with a
        /// password recipient, CMC-18) instead of signing it with the new key.
        #[arg(long, requires = "ident")]
        mac: bool,
        /// Encrypt the request to the CA's CMC encryption certificate (PEM, from `estuary ca
        /// cert --encryption`): EnvelopedData(SignedData(PKIData)) (CMC-20).
        #[arg(long, conflicts_with = "mac")]
        encrypt_to: Option<PathBuf>,
        #[arg(long)]
        out_key: PathBuf,
        #[arg(long)]
        out_cert: PathBuf,
        /// Where to keep the state of a request the CA holds for approval (pendToken,
        /// pendTime, transaction, key path, server and label; no secret) for `fullcmc poll`.
        /// Default: <out-cert>.pending.json. Written only when the answer is pending; the key
        /// is then written to --out-key and the exit status is 2.
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Renewal: the PKIData is signed with the current certificate and key given as --cert and
    /// --key (CMC-21), which authenticate the request at the CMC layer; they are not presented
    /// in TLS and no HTTP credentials are needed. Same subject and SAN; same key unless
    /// --new-key.
    Renew {
        /// Rekey: a new key of the same type (written to --out-key).
        #[arg(long)]
        new_key: bool,
        /// Send a CRMF request (RFC 4211) instead of PKCS#10.
        #[arg(long)]
        crmf: bool,
        /// Opaque text for the dataReturn control; the response must echo it (CMC-54).
        #[arg(long)]
        data_return: Option<String>,
        /// Where the new key goes (with --new-key).
        #[arg(long)]
        out_key: Option<PathBuf>,
        #[arg(long)]
        out_cert: PathBuf,
    },
    /// Ask about a request the CA held (Query Pending, CMC-64): a PKIData with only the
    /// queryPending control, signed with the held request's key, sent with the HTTP
    /// credentials given here (they must be those of the enrollment). Writes the certificate
    /// on success (and removes the state file); exit status 2 while still pending, 1 when
    /// the request was refused. Server URL and label come from the state file.
    Poll {
        /// The state file `fullcmc enroll` wrote.
        #[arg(long)]
        state: PathBuf,
        /// Keep asking, after pendTime and then every 5 s, for at most this many seconds.
        #[arg(long)]
        wait: Option<u64>,
        /// Write the certificate here instead of the enrollment's --out-cert.
        #[arg(long)]
        out_cert: Option<PathBuf>,
    },
    /// Fetch a certificate this CA issued by issuer and serial number (Get Certificate,
    /// CMC-70). The request is signed with --cert/--key, a certificate of this CA and its key
    /// (the server refuses a getCert signed with a bare key); they are not presented in TLS.
    GetCert {
        /// Serial number, hex (as `openssl x509 -serial` or `estuary cert list` prints it;
        /// colons and a 0x or serial= prefix are ignored).
        #[arg(long)]
        serial: String,
        /// The issuer is the issuer of this certificate (PEM; e.g. --cert, or any certificate
        /// the same CA issued).
        #[arg(long, required_unless_present = "issuer", conflicts_with = "issuer")]
        issuer_of: Option<PathBuf>,
        /// The issuer is this CA certificate (PEM): its subject is the issuerName.
        #[arg(long)]
        issuer: Option<PathBuf>,
        #[arg(long)]
        out_cert: PathBuf,
    },
    /// Revoke a certificate (Revocation Request, CMC-72). Signed with --cert/--key when given
    /// (the certificate itself, or an RA's); otherwise sent unsigned, authenticated by
    /// --passphrase-file (the shared secret the certificate was enrolled with) and/or the
    /// HTTP credentials of its requester.
    Revoke {
        /// The certificate to revoke (PEM).
        #[arg(long)]
        revoke_cert: PathBuf,
        /// CRLReason: unspecified, keyCompromise, affiliationChanged, superseded,
        /// cessationOfOperation, certificateHold, privilegeWithdrawn ... or its number.
        #[arg(long, default_value = "unspecified")]
        reason: String,
        /// A comment for the CA's records.
        #[arg(long)]
        comment: Option<String>,
        /// The shared secret (`-`: stdin) as passphrase.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// CMC server-side key generation (draft-turner-cmc-serverkeygeneration-02): the CA
    /// generates the key and returns it encrypted, with its certificate. Authenticated by
    /// --cert/--key (the request is signed with that certificate, SKGD-17: a rekey of it) or
    /// by --ident/--secret-file (AuthenticatedData). The response's layers are verified and
    /// decrypted (SKGD-24) before the key and certificate are written.
    #[command(name = "serverkeygen")]
    ServerKeygen(crate::cmd_cmc_keygen::ServerKeygenArgs),
    /// Fetch the current CRL of a CA (Get CRL, CMC-71), signed with --cert/--key; writes it
    /// DER (as `openssl crl -inform DER` reads it).
    GetCrl {
        /// The CA certificate (PEM) whose CRL is wanted.
        #[arg(
            long,
            required_unless_present = "issuer_of",
            conflicts_with = "issuer_of"
        )]
        issuer: Option<PathBuf>,
        /// The CA that issued this certificate (PEM).
        #[arg(long)]
        issuer_of: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
}

/// What `fullcmc enroll` keeps about a held request for `fullcmc poll` (JSON). No secret: the
/// key stays in its own file, HTTP credentials are given again.
#[derive(Debug, Serialize, Deserialize)]
struct PendingState {
    /// The server URL and label the request went to.
    url: String,
    label: Option<String>,
    /// pendToken, hex (the id `estuary request list` shows).
    pend_token: String,
    /// pendTime: ask again no earlier than this (RFC 3339, and Unix seconds).
    pend_time: String,
    pend_time_unix: u64,
    /// The request's transactionId (DER INTEGER content, hex): queries continue it (CMC-50).
    transaction_id: String,
    /// The senderNonce of the server's last answer, hex: sent back as recipientNonce.
    server_nonce: Option<String>,
    /// The held request's private key (absolute path); queries are signed with it.
    key: PathBuf,
    /// Where the certificate goes (absolute path).
    out_cert: PathBuf,
    subject: String,
    requested_at: String,
}

impl PendingState {
    fn read(p: &Path) -> Result<Self, Error> {
        let data = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(serde_json::from_slice(&data)
            .map_err(|e| format!("{}: not a fullcmc state file: {e}", p.display()))?)
    }

    fn write(&self, p: &Path) -> Result<(), Error> {
        let mut data = serde_json::to_vec_pretty(self)?;
        data.push(b'\n');
        write_private(p, &data)
    }

    /// Takes in a pending answer: its pendInfo and senderNonce.
    fn update(&mut self, p: &PendAnswer, server_nonce: Option<&[u8]>) -> Result<(), Error> {
        self.pend_token = hex::encode(&p.token);
        self.pend_time_unix = p.time.to_unix_duration().as_secs();
        self.pend_time = rfc3339(self.pend_time_unix);
        self.server_nonce = server_nonce.map(hex::encode);
        Ok(())
    }
}

fn rfc3339(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `<out-cert>.pending.json`
fn default_state_path(out_cert: &Path) -> PathBuf {
    let mut s = out_cert.as_os_str().to_owned();
    s.push(".pending.json");
    PathBuf::from(s)
}

/// Runs a `fullcmc` command with the connection settings of `estuary client`; `url_given`:
/// whether --url was on the command line (else `poll` takes the state file's).
pub async fn run(mut cfg: ClientConfig, url_given: bool, cmd: FullCmcCmd) -> Result<(), Error> {
    let anchors = match &cfg.trust {
        Trust::Explicit(a) => a.clone(),
        Trust::Bootstrap => return Err("/fullcmc needs --trust-anchor".into()),
    };
    match cmd {
        FullCmcCmd::Enroll {
            key_type,
            subject,
            san,
            crmf,
            encryption_pop,
            ident,
            secret_file,
            data_return,
            mac,
            encrypt_to,
            out_key,
            out_cert,
            state,
        } => {
            let kind: KeyKind = key_type.parse()?;
            let sans = parse_sans(&san)?;
            let identity = match (ident, secret_file) {
                (Some(ident), Some(f)) => Some(SharedSecret {
                    ident,
                    secret: crate::read_password(&f)?,
                }),
                _ => None,
            };
            if identity.is_none() && cfg.basic.is_none() && cfg.identity.is_none() {
                return Err("authenticate the enrollment: --user/--password-file, --cert/--key (TLS client certificate) or --ident/--secret-file".into());
            }
            let key = est_client::generate_key(kind)?;
            // CMC-17: signed with the key being certified, named by the SubjectKeyIdentifier
            // the request itself carries.
            let key_id = est_client::subject_key_id(&key)?;
            let ski = est_client::subject_key_id_extension(&key_id)?;
            let body = if crmf || encryption_pop {
                let mut extensions: Vec<_> =
                    est_client::san_extension(&sans)?.into_iter().collect();
                extensions.push(ski);
                let subject = est_client::parse_subject(&subject)?;
                if encryption_pop {
                    CertRequestBody::CrmfEncryption {
                        subject,
                        extensions,
                    }
                } else {
                    CertRequestBody::Crmf {
                        subject,
                        extensions,
                    }
                }
            } else {
                CertRequestBody::Pkcs10(est_client::build_csr_full(
                    &key,
                    &subject,
                    &sans,
                    None,
                    vec![ski],
                    Vec::new(),
                )?)
            };
            let mut opts = RequestOptions::random()?;
            opts.data_return = data_return.map(String::into_bytes);
            // CMC-44: Identification + Identity Proof V2 over the reqSequence.
            opts.identity = identity;
            let pki = build_pki_data(&opts, &body, &key)?;
            let request = match (&opts.identity, mac) {
                (Some(secret), true) => sign_request(&pki, &RequestSigner::SharedSecret(secret))?,
                _ => sign_request(
                    &pki,
                    &RequestSigner::RequestKey {
                        key: &key,
                        key_id: &key_id,
                    },
                )?,
            };
            let request = match &encrypt_to {
                Some(p) => est_cmc::client::envelope_request(&request, &first_cert(p)?)?,
                None => request,
            };
            let (url, label) = (cfg.url.clone(), cfg.label.clone());
            let mut answer = exchange(cfg.clone(), &anchors, &opts, &request).await?;
            let mut opts = opts;
            if let Some(challenge) = answer.pop_challenge() {
                // CMC-67, RFC 5272 §6.7 steps 3-4: decrypt, check the witness, answer.
                let secret = opts.identity.clone().ok_or("Encrypted POP needs --ident")?;
                let mut next = RequestOptions::continuing(
                    opts.transaction_id.clone(),
                    answer.v.summary.sender_nonce.clone(),
                )?;
                next.data_return = opts.data_return.clone();
                next.identity = Some(secret.clone());
                let pki = est_cmc::client::build_decrypted_pop(&next, &challenge, &key)?;
                let request = sign_request(&pki, &RequestSigner::SharedSecret(&secret))?;
                let request = match &encrypt_to {
                    Some(p) => est_cmc::client::envelope_request(&request, &first_cert(p)?)?,
                    None => request,
                };
                eprintln!("decrypted the CA's Encrypted POP challenge; sending the Decrypted POP");
                answer = exchange(cfg, &anchors, &next, &request).await?;
                opts = next;
            }
            match answer.outcome("issue")? {
                Outcome::Success => {
                    let certs = answer.issued_for(&key)?;
                    write_outputs(&key, Some(&out_key), &out_cert, &certs)
                }
                Outcome::Pending(p) => {
                    // The key must outlive this process: queries are signed with it.
                    write_private(&out_key, &Zeroizing::new(key.private_key_to_pem_pkcs8()?))?;
                    eprintln!("wrote key to {} (mode 0600)", out_key.display());
                    let state_path = state.unwrap_or_else(|| default_state_path(&out_cert));
                    let mut st = PendingState {
                        url,
                        label,
                        pend_token: String::new(),
                        pend_time: String::new(),
                        pend_time_unix: 0,
                        transaction_id: hex::encode(opts.transaction_id.as_bytes()),
                        server_nonce: None,
                        key: std::path::absolute(&out_key)?,
                        out_cert: std::path::absolute(&out_cert)?,
                        subject,
                        requested_at: rfc3339(now_unix()),
                    };
                    st.update(&p, answer.v.summary.sender_nonce.as_deref())?;
                    st.write(&state_path)?;
                    Err(report_pending(&st, &state_path).into())
                }
            }
        }
        FullCmcCmd::Renew {
            new_key,
            crmf,
            data_return,
            out_key,
            out_cert,
        } => {
            // CMC-21: --cert/--key sign the request instead of authenticating the TLS client.
            let id = cfg.identity.take().ok_or(
                "renew needs --cert and --key (the certificate being renewed and its key)",
            )?;
            let old = est_client::from_x509(&id.cert)?;
            if !id.cert.public_key()?.public_eq(&id.key) {
                return Err("--key is not the key of --cert".into());
            }
            let subject = old.tbs_certificate().subject().clone();
            let sans: Vec<San> = old
                .tbs_certificate()
                .get_extension::<x509_cert::ext::pkix::SubjectAltName>()
                .map_err(|e| format!("SAN of the old certificate: {e}"))?
                .map(|(_, s)| s.0.iter().filter_map(San::from_general_name).collect())
                .unwrap_or_default();
            if new_key && out_key.is_none() {
                return Err("--new-key needs --out-key".into());
            }
            let key = if new_key {
                new_key_like(&id.key)?
            } else {
                id.key.clone()
            };
            let body = if crmf {
                CertRequestBody::Crmf {
                    subject,
                    extensions: est_client::san_extension(&sans)?.into_iter().collect(),
                }
            } else {
                CertRequestBody::Pkcs10(est_client::build_csr(
                    &key,
                    &subject.to_string(),
                    &sans,
                    None,
                )?)
            };
            let mut opts = RequestOptions::random()?;
            opts.data_return = data_return.map(String::into_bytes);
            let pki = build_pki_data(&opts, &body, &key)?;
            let signer = est_cms::OpensslSigner::new(id.key.clone(), old)
                .map_err(|e| format!("signing with --key: {e}"))?;
            let request = sign_request(&pki, &RequestSigner::Certificate(&signer))?;
            let answer = exchange(cfg, &anchors, &opts, &request).await?;
            if let Outcome::Pending(_) = answer.outcome("issue")? {
                return Err("the renewal is pending: renewals are not held for approval here, so this is unexpected (poll is for enrollments)".into());
            }
            let certs = answer.issued_for(&key)?;
            let out_key = if new_key { out_key.as_deref() } else { None };
            write_outputs(&key, out_key, &out_cert, &certs)
        }
        FullCmcCmd::ServerKeygen(args) => crate::cmd_cmc_keygen::run(cfg, &anchors, args).await,
        FullCmcCmd::Poll {
            state,
            wait,
            out_cert,
        } => poll(cfg, url_given, &anchors, &state, wait, out_cert).await,
        FullCmcCmd::GetCert {
            serial,
            issuer_of,
            issuer,
            out_cert,
        } => {
            // Signed with a certificate of this CA (CMC-21 form); not a TLS client identity.
            let id = cfg.identity.take().ok_or(
                "get-cert needs --cert and --key (a certificate of this CA and its key) to sign the request",
            )?;
            if !id.cert.public_key()?.public_eq(&id.key) {
                return Err("--key is not the key of --cert".into());
            }
            let issuer_name = match (issuer_of, issuer) {
                (Some(p), _) => first_cert(&p)?.tbs_certificate().issuer().clone(),
                (None, Some(p)) => first_cert(&p)?.tbs_certificate().subject().clone(),
                (None, None) => return Err("give --issuer-of CERT or --issuer CA-CERT".into()),
            };
            let serial = parse_serial(&serial)?;
            let opts = RequestOptions::random()?;
            let pki = build_get_cert(&opts, &issuer_name, &serial)?;
            let signer =
                est_cms::OpensslSigner::new(id.key.clone(), est_client::from_x509(&id.cert)?)
                    .map_err(|e| format!("signing with --key: {e}"))?;
            let request = sign_request(&pki, &RequestSigner::Certificate(&signer))?;
            let answer = exchange(cfg, &anchors, &opts, &request).await?;
            if let Outcome::Pending(_) = answer.outcome("return the certificate")? {
                return Err("the server answered a getCert with pending".into());
            }
            let cert = answer
                .v
                .certificates
                .iter()
                .find(|c| {
                    c.tbs_certificate().serial_number() == &serial
                        && c.tbs_certificate().issuer() == &issuer_name
                })
                .ok_or("the response carries no certificate with this issuer and serial number")?;
            // The signed response vouches for it; an expired or since-revoked certificate
            // may no longer chain, which is worth saying but not a reason to withhold it.
            if let Err(e) = est_cms::validate_chain(&answer.store, cert, &answer.v.certificates) {
                eprintln!("note: the certificate does not validate to the trust anchor now: {e}");
            }
            write_cert(&out_cert, std::slice::from_ref(cert))
        }
        FullCmcCmd::Revoke {
            revoke_cert,
            reason,
            comment,
            passphrase_file,
        } => {
            let target = first_cert(&revoke_cert)?;
            let reason: est_ca::CrlReason = reason.parse().map_err(|e| format!("--reason: {e}"))?;
            let reason = x509_cert::ext::pkix::crl::CrlReason::try_from(reason.code() as u32)
                .map_err(|e| format!("--reason: {e}"))?;
            let passphrase = passphrase_file
                .map(|f| crate::read_password(&f))
                .transpose()?;
            let rr = est_cmc::client::revoke_request(
                &target,
                reason,
                passphrase.as_ref().map(|p| p.as_slice()),
                comment.as_deref(),
            )?;
            let opts = RequestOptions::random()?;
            let pki = est_cmc::client::build_revoke(&opts, &rr)?;
            let request = match cfg.identity.take() {
                Some(id) => {
                    let signer = est_cms::OpensslSigner::new(
                        id.key.clone(),
                        est_client::from_x509(&id.cert)?,
                    )
                    .map_err(|e| format!("signing with --key: {e}"))?;
                    sign_request(&pki, &RequestSigner::Certificate(&signer))?
                }
                None if passphrase.is_some() || cfg.basic.is_some() => {
                    est_cmc::client::unsigned_request(&pki)?
                }
                None => {
                    return Err(
                        "give --cert/--key to sign, or --passphrase-file, or HTTP credentials of the certificate's requester"
                            .into(),
                    );
                }
            };
            let answer = exchange(cfg, &anchors, &opts, &request).await?;
            if let Outcome::Pending(_) = answer.outcome("revoke the certificate")? {
                return Err("the server answered a revocation with pending".into());
            }
            println!(
                "revoked {}",
                est_ca::serial_hex(target.tbs_certificate().serial_number())
            );
            Ok(())
        }
        FullCmcCmd::GetCrl {
            issuer,
            issuer_of,
            out,
        } => {
            let id = cfg.identity.take().ok_or(
                "get-crl needs --cert and --key (a certificate of this CA and its key) to sign the request",
            )?;
            let issuer_name = match (issuer, issuer_of) {
                (Some(p), _) => first_cert(&p)?.tbs_certificate().subject().clone(),
                (None, Some(p)) => first_cert(&p)?.tbs_certificate().issuer().clone(),
                (None, None) => return Err("give --issuer CA-CERT or --issuer-of CERT".into()),
            };
            let opts = RequestOptions::random()?;
            let pki = est_cmc::client::build_get_crl(&opts, &issuer_name)?;
            let signer =
                est_cms::OpensslSigner::new(id.key.clone(), est_client::from_x509(&id.cert)?)
                    .map_err(|e| format!("signing with --key: {e}"))?;
            let request = sign_request(&pki, &RequestSigner::Certificate(&signer))?;
            let answer = exchange(cfg, &anchors, &opts, &request).await?;
            if let Outcome::Pending(_) = answer.outcome("return the CRL")? {
                return Err("the server answered a getCRL with pending".into());
            }
            // The CRL is signed by the CA: check it against the issuer we asked about.
            let crl_der = answer.v.crls.first().ok_or("the response carries no CRL")?;
            let crl = openssl::x509::X509Crl::from_der(crl_der)?;
            let issuer_cert = answer
                .v
                .certificates
                .iter()
                .find(|c| c.tbs_certificate().subject() == &issuer_name)
                .ok_or("the response does not carry the CRL issuer's certificate")?;
            let issuer_key = est_client::to_x509(issuer_cert)?.public_key()?;
            if !crl.verify(&issuer_key)? {
                return Err("the CRL's signature does not verify with its issuer's key".into());
            }
            std::fs::write(&out, crl_der).map_err(|e| format!("{}: {e}", out.display()))?;
            eprintln!(
                "wrote the CRL ({} revoked) to {}",
                crl.get_revoked().map_or(0, |r| r.len()),
                out.display()
            );
            Ok(())
        }
    }
}

pub(crate) fn first_cert(p: &Path) -> Result<x509_cert::Certificate, Error> {
    let data = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let x = X509::stack_from_pem(&data)
        .map_err(|e| format!("{}: {e}", p.display()))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{}: no certificate", p.display()))?;
    Ok(est_client::from_x509(&x)?)
}

/// A serial number in hex: `0A:1B..`, `0x0a1b`, `serial=0A1B` (openssl's form).
fn parse_serial(s: &str) -> Result<SerialNumber, Error> {
    let t = s.trim();
    let t = t.strip_prefix("serial=").unwrap_or(t);
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let mut h: String = t.chars().filter(|c| *c != ':').collect();
    if h.is_empty() {
        return Err("--serial is empty".into());
    }
    if h.len() % 2 == 1 {
        h.insert(0, '0');
    }
    let bytes = hex::decode(&h).map_err(|e| format!("--serial {s:?} is not hex: {e}"))?;
    // A positive INTEGER: no redundant leading zeros, a zero byte before a high bit.
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    let mut v = bytes[first..].to_vec();
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    Ok(SerialNumber::new(&v).map_err(|e| format!("--serial: {e}"))?)
}

fn report_pending(st: &PendingState, state_path: &Path) -> Pending {
    println!("pendToken: {}", st.pend_token);
    println!("pendTime: {}", st.pend_time);
    Pending(format!(
        "the request is held for the CA operator's approval (pending); ask again after {} with: estuary client --trust-anchor ... [credentials] fullcmc poll --state {}",
        st.pend_time,
        state_path.display()
    ))
}

/// How long `poll --wait` waits between queries once pendTime has passed.
const POLL_INTERVAL: Duration = Duration::from_secs(5);

async fn poll(
    mut cfg: ClientConfig,
    url_given: bool,
    anchors: &[X509],
    state_path: &Path,
    wait: Option<u64>,
    out_cert: Option<PathBuf>,
) -> Result<(), Error> {
    let mut st = PendingState::read(state_path)?;
    if url_given && cfg.url.trim_end_matches('/') != st.url.trim_end_matches('/') {
        return Err(format!(
            "the request in {} went to {}, not --url {}",
            state_path.display(),
            st.url,
            cfg.url
        )
        .into());
    }
    if cfg.label.is_some() && cfg.label != st.label {
        return Err(format!(
            "the request in {} went to label {:?}, not --label {:?}",
            state_path.display(),
            st.label.as_deref().unwrap_or(""),
            cfg.label.as_deref().unwrap_or("")
        )
        .into());
    }
    cfg.url = st.url.clone();
    cfg.label = st.label.clone();
    let key = read_key(&st.key)?;
    let key_id = est_client::subject_key_id(&key)?;
    let tid_bytes = hex::decode(&st.transaction_id)
        .map_err(|e| format!("{}: transaction_id: {e}", state_path.display()))?;
    let tid = Int::new(&tid_bytes).map_err(|e| format!("transaction_id: {e}"))?;
    let out_cert = out_cert.unwrap_or_else(|| st.out_cert.clone());
    let start = Instant::now();
    loop {
        let token = hex::decode(&st.pend_token)
            .map_err(|e| format!("{}: pend_token: {e}", state_path.display()))?;
        let server_nonce = st
            .server_nonce
            .as_deref()
            .map(hex::decode)
            .transpose()
            .map_err(|e| format!("{}: server_nonce: {e}", state_path.display()))?;
        // CMC-50/51: the same transaction, a fresh senderNonce, the server's back.
        let opts = RequestOptions::continuing(tid.clone(), server_nonce)?;
        let pki = build_query_pending(&opts, &token)?;
        let request = sign_request(
            &pki,
            &RequestSigner::RequestKey {
                key: &key,
                key_id: &key_id,
            },
        )?;
        let answer = exchange(cfg.clone(), anchors, &opts, &request).await?;
        match answer.outcome("issue")? {
            Outcome::Success => {
                if answer.v.summary.status_of(ID_QUERY_PENDING).is_none() {
                    return Err("the answer has no status for our queryPending".into());
                }
                let certs = answer.issued_for(&key)?;
                write_cert(&out_cert, &certs)?;
                std::fs::remove_file(state_path)?;
                eprintln!("removed {}", state_path.display());
                return Ok(());
            }
            Outcome::Pending(p) => {
                st.update(&p, answer.v.summary.sender_nonce.as_deref())?;
                st.write(state_path)?;
                let Some(secs) = wait else {
                    return Err(report_pending(&st, state_path).into());
                };
                // Not before pendTime (CMC-64), then every POLL_INTERVAL.
                let until_pend = Duration::from_secs(st.pend_time_unix.saturating_sub(now_unix()));
                let delay = until_pend.max(POLL_INTERVAL);
                if start.elapsed() + delay > Duration::from_secs(secs) {
                    return Err(report_pending(&st, state_path).into());
                }
                eprintln!("still pending; asking again in {} s", delay.as_secs());
                tokio::time::sleep(delay).await;
            }
        }
    }
}

pub(crate) fn parse_sans(san: &[String]) -> Result<Vec<San>, Error> {
    Ok(san
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<San>, _>>()?)
}

/// A verified response that answers our request.
pub(crate) struct Answer {
    pub(crate) http: u16,
    pub(crate) v: VerifiedResponse,
    /// The trust anchors, for validating what it carries.
    pub(crate) store: X509Store,
    /// The response as received (DER).
    pub(crate) der: Vec<u8>,
}

/// pendInfo of a pending answer.
pub(crate) struct PendAnswer {
    token: Vec<u8>,
    time: GeneralizedTime,
}

pub(crate) enum Outcome {
    Success,
    Pending(PendAnswer),
}

/// Every status in words, for error messages.
fn said(s: &ResponseSummary) -> String {
    let all: Vec<String> = s.statuses.iter().map(describe_status).collect();
    if all.is_empty() {
        "no status".to_string()
    } else {
        all.join("; ")
    }
}

impl Answer {
    /// The Encrypted POP challenge of a popRequired answer (CMC-67), if that is what it is.
    fn pop_challenge(&self) -> Option<est_cmc::controls::EncryptedPop> {
        let s = &self.v.summary;
        s.statuses
            .iter()
            .any(|st| st.status == CmcStatus::POP_REQUIRED)
            .then(|| s.encrypted_pop.first().cloned())
            .flatten()
    }

    /// success, pending (with its pendInfo), or an error saying why the CA did not `what`.
    pub(crate) fn outcome(&self, what: &str) -> Result<Outcome, Error> {
        let s = &self.v.summary;
        let http = self.http;
        let failed = http >= 300
            || s.statuses
                .iter()
                .any(|st| st.status != CmcStatus::SUCCESS && st.status != CmcStatus::PENDING);
        if failed {
            return Err(format!("the CA did not {what} (HTTP {http}): {}", said(s)).into());
        }
        let Some(pending) = s.statuses.iter().find(|st| st.status == CmcStatus::PENDING) else {
            return Ok(Outcome::Success);
        };
        match &pending.other_info {
            Some(OtherStatusInfo::PendInfo(p)) => Ok(Outcome::Pending(PendAnswer {
                token: p.pend_token.as_bytes().to_vec(),
                time: p.pend_time,
            })),
            _ => Err(format!(
                "the request is pending but the answer carries no pendInfo to ask again with: {}",
                said(s)
            )
            .into()),
        }
    }

    /// The issued certificate for `key` (chained to the trust anchor) first, then the other
    /// certificates the response carries.
    fn issued_for(&self, key: &PKey<Private>) -> Result<Vec<x509_cert::Certificate>, Error> {
        let spki = key.public_key_to_der()?;
        let pos = self
            .v
            .certificates
            .iter()
            .position(|c| {
                c.tbs_certificate()
                    .subject_public_key_info()
                    .to_der()
                    .is_ok_and(|d| d == spki)
            })
            .ok_or("the response carries no certificate for our key")?;
        let mut certs = self.v.certificates.clone();
        let issued = certs.remove(pos);
        est_cms::validate_chain(&self.store, &issued, &certs).map_err(|e| {
            format!("the issued certificate does not chain to the trust anchor: {e}")
        })?;
        certs.insert(0, issued);
        Ok(certs)
    }
}

/// Sends the request and checks the response: signature and signer chain to the trust anchor,
/// recipientNonce and transactionId (CMC-50, CMC-51), dataReturn (CMC-54), then prints every
/// status.
pub(crate) async fn exchange(
    cfg: ClientConfig,
    anchors: &[X509],
    opts: &RequestOptions,
    request: &[u8],
) -> Result<Answer, Error> {
    let client = EstClient::new(cfg)?;
    let mut conn = client.connect().await?;
    // EST-99: a CMC failure is an HTTP error status carrying a PKIResponse; read it as one.
    let (http, der) = conn.full_cmc(request).await?;
    let mut store = openssl::x509::store::X509StoreBuilder::new()?;
    for a in anchors {
        store.add_cert(a.clone())?;
    }
    let store = store.build();
    let v = verify_response(&der, &store)
        .map_err(|e| format!("the /fullcmc response (HTTP {http}) does not verify: {e}"))?;
    if v.simple {
        // Our request carries a senderNonce and transactionId: the answer must echo them,
        // which a Simple PKI Response cannot (CMC-4, CMC-51).
        return Err(format!(
            "the server answered (HTTP {http}) with a Simple PKI Response, which cannot echo our senderNonce: refusing it (CMC-51)"
        )
        .into());
    }
    let s = &v.summary;
    // CMC-51: recipientNonce must be our senderNonce, or this is not the answer to our request.
    match &s.recipient_nonce {
        Some(n) if *n == opts.sender_nonce => {}
        Some(n) => {
            return Err(format!(
                "the response's recipientNonce {} is not our senderNonce {}: not an answer to this request (CMC-51); it says: {}",
                hex::encode(n),
                hex::encode(&opts.sender_nonce),
                said(s)
            )
            .into());
        }
        None => {
            return Err(format!(
                "the response carries no recipientNonce, so it cannot be matched to this request (CMC-51); it says: {}",
                said(s)
            )
            .into());
        }
    }
    // CMC-50: the transactionId echoed.
    if s.transaction_id.as_ref() != Some(&opts.transaction_id) {
        return Err(format!(
            "the response's transactionId {} is not ours ({}) (CMC-50); it says: {}",
            s.transaction_id
                .as_ref()
                .map(|t| hex::encode(t.as_bytes()))
                .unwrap_or_else(|| "(absent)".into()),
            hex::encode(opts.transaction_id.as_bytes()),
            said(s)
        )
        .into());
    }
    // CMC-54: dataReturn echoed unchanged.
    if let Some(d) = &opts.data_return {
        if s.data_return.as_ref() != Some(d) {
            return Err(format!(
                "the response does not echo our dataReturn (CMC-54); it says: {}",
                said(s)
            )
            .into());
        }
        println!("dataReturn echoed: {}", String::from_utf8_lossy(d));
    }
    if let Some(signer) = &v.signer {
        eprintln!(
            "response (HTTP {http}) signed by {}, verified",
            signer.tbs_certificate().subject()
        );
    }
    for st in &s.statuses {
        println!("{}: {}", body_list(st), describe_status(st));
    }
    Ok(Answer {
        http,
        v,
        store,
        der,
    })
}

fn body_list(s: &CmcStatusInfoV2) -> String {
    let parts: Vec<String> = s
        .body_list
        .iter()
        .map(|r| match r {
            BodyPartReference::Id(0) => "0 (the whole PKIData)".to_string(),
            BodyPartReference::Id(i) => i.to_string(),
            BodyPartReference::Path(p) => {
                p.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
            }
        })
        .collect();
    match parts.len() {
        0 => "status".to_string(),
        1 => format!("body part {}", parts[0]),
        _ => format!("body parts {}", parts.join(", ")),
    }
}

fn write_outputs(
    key: &PKey<Private>,
    out_key: Option<&std::path::Path>,
    out_cert: &std::path::Path,
    certs: &[x509_cert::Certificate],
) -> Result<(), Error> {
    if let Some(p) = out_key {
        write_private(p, &Zeroizing::new(key.private_key_to_pem_pkcs8()?))?;
        eprintln!("wrote key to {} (mode 0600)", p.display());
    }
    write_cert(out_cert, certs)
}
