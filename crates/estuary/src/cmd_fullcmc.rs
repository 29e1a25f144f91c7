//! `estuary client fullcmc`: enrollment and renewal over /fullcmc (RFC 7030 §4.3) with Full
//! PKI Requests (RFC 5272 §3.2) built by `est-cmc`. Every response is verified against the
//! trust anchor and matched to its request before anything is written.
use std::path::PathBuf;

use clap::Subcommand;
use der::Encode;
use est_client::{ClientConfig, EstClient, KeyKind, San, Trust};
use est_cmc::client::{
    CertRequestBody, RequestOptions, RequestSigner, SharedSecret, build_pki_data, sign_request,
    verify_response,
};
use est_cmc::{BodyPartReference, CmcStatus, CmcStatusInfoV2, describe_status};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use zeroize::Zeroizing;

use crate::cmd_client::{Error, new_key_like, write_cert, write_private};

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
        #[arg(long)]
        out_key: PathBuf,
        #[arg(long)]
        out_cert: PathBuf,
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
}

/// Runs a `fullcmc` command with the connection settings of `estuary client`.
pub async fn run(mut cfg: ClientConfig, cmd: FullCmcCmd) -> Result<(), Error> {
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
            ident,
            secret_file,
            data_return,
            out_key,
            out_cert,
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
            let body = if crmf {
                let mut extensions: Vec<_> =
                    est_client::san_extension(&sans)?.into_iter().collect();
                extensions.push(ski);
                CertRequestBody::Crmf {
                    subject: est_client::parse_subject(&subject)?,
                    extensions,
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
            let request = sign_request(
                &pki,
                &RequestSigner::RequestKey {
                    key: &key,
                    key_id: &key_id,
                },
            )?;
            let certs = exchange(cfg, &anchors, &opts, &request, &key).await?;
            write_outputs(&key, Some(&out_key), &out_cert, &certs)
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
            let certs = exchange(cfg, &anchors, &opts, &request, &key).await?;
            let out_key = if new_key { out_key.as_deref() } else { None };
            write_outputs(&key, out_key, &out_cert, &certs)
        }
    }
}

fn parse_sans(san: &[String]) -> Result<Vec<San>, Error> {
    Ok(san
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<San>, _>>()?)
}

/// Sends the request and checks the response: signature and signer chain to the trust anchor,
/// recipientNonce and transactionId (CMC-50, CMC-51), dataReturn (CMC-54), then every status
/// (printed); returns the issued certificate for `key` with the others the response carries.
async fn exchange(
    cfg: ClientConfig,
    anchors: &[X509],
    opts: &RequestOptions,
    request: &[u8],
    key: &PKey<Private>,
) -> Result<Vec<x509_cert::Certificate>, Error> {
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
    let said = || {
        let all: Vec<String> = s.statuses.iter().map(describe_status).collect();
        if all.is_empty() {
            "no status".to_string()
        } else {
            all.join("; ")
        }
    };
    // CMC-51: recipientNonce must be our senderNonce, or this is not the answer to our request.
    match &s.recipient_nonce {
        Some(n) if *n == opts.sender_nonce => {}
        Some(n) => {
            return Err(format!(
                "the response's recipientNonce {} is not our senderNonce {}: not an answer to this request (CMC-51); it says: {}",
                hex::encode(n),
                hex::encode(&opts.sender_nonce),
                said()
            )
            .into());
        }
        None => {
            return Err(format!(
                "the response carries no recipientNonce, so it cannot be matched to this request (CMC-51); it says: {}",
                said()
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
            said()
        )
        .into());
    }
    // CMC-54: dataReturn echoed unchanged.
    if let Some(d) = &opts.data_return {
        if s.data_return.as_ref() != Some(d) {
            return Err(format!(
                "the response does not echo our dataReturn (CMC-54); it says: {}",
                said()
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
    let mut failed = http >= 300;
    for st in &s.statuses {
        println!("{}: {}", body_list(st), describe_status(st));
        failed |= st.status != CmcStatus::SUCCESS;
    }
    if failed {
        if s.statuses.iter().any(|st| st.status == CmcStatus::PENDING) {
            return Err(format!(
                "the request is pending (HTTP {http}); this client does not send Query Pending yet: {}",
                said()
            )
            .into());
        }
        return Err(format!("the CA did not issue (HTTP {http}): {}", said()).into());
    }
    // The issued certificate is the one for our key; it must chain to the trust anchor too.
    let spki = key.public_key_to_der()?;
    let pos = v
        .certificates
        .iter()
        .position(|c| {
            c.tbs_certificate()
                .subject_public_key_info()
                .to_der()
                .is_ok_and(|d| d == spki)
        })
        .ok_or("the response carries no certificate for our key")?;
    let mut certs = v.certificates.clone();
    let issued = certs.remove(pos);
    est_cms::validate_chain(&store, &issued, &certs)
        .map_err(|e| format!("the issued certificate does not chain to the trust anchor: {e}"))?;
    certs.insert(0, issued);
    Ok(certs)
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
