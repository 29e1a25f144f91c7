//! `estuary client fullcmc serverkeygen`: CMC server-side key generation
//! (draft-turner-cmc-serverkeygeneration-02, REQUIREMENTS §2.12). The request is a PKIData
//! with only the ServerKeyGenRequest control (SKGD-1) proposing the certificate fields with a
//! placeholder key (SKGD-2, SKGD-3), signed with the client's certificate or MACed with a
//! shared secret (SKGD-17). The response is opened layer by layer (SKGD-24): outer signature,
//! EnvelopedData, the key generator's signature, the key matching the issued certificate.
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use der::asn1::OctetString;
use est_client::{ClientConfig, KeyKind};
use est_cmc::client::{RequestOptions, RequestSigner, SharedSecret, sign_request};
use est_cmc::serverkeygen::client::{build_request, default_capabilities, placeholder_request};
use est_cmc::serverkeygen::{BareKey, Shroud, ShroudWithPublicKey, SignerIdentifier, SkgOids};
use openssl::x509::X509;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use crate::cmd_client::{Error, read_key, write_cert, write_private};
use crate::cmd_fullcmc::{Outcome, exchange, first_cert, parse_sans};

/// How the CA is asked to protect the key it generates (SKGD-6, SKGD-11, SKGD-15).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShroudKind {
    /// A bare public key (bareKey): --shroud-key, or a fresh key kept in memory only for this
    /// exchange. RSA: key transport (ktri); EC: key agreement (kari).
    PublicKey,
    /// A certificate of this CA with keyEncipherment (RSA) or keyAgreement (EC):
    /// --shroud-cert/--shroud-key, by default --cert/--key (then named by certIdentifier).
    Certificate,
    /// A shared secret the CA provisioned (`estuary cmc-secret add`), named by
    /// --shroud-secret-name: password-based encryption (pwri).
    SharedSecret,
}

#[derive(Args, Debug)]
pub struct ServerKeygenArgs {
    /// The key the CA generates: p256, p384, rsa2048, rsa3072, rsa4096, ed25519.
    #[arg(long, default_value = "p256")]
    pub key_type: String,
    /// Subject, RFC 4514. Default with --cert: that certificate's subject (a rekey, which
    /// keeps the names).
    #[arg(long)]
    pub subject: Option<String>,
    /// SubjectAltName: dns:NAME, ip:ADDR, email:ADDR, uri:URI (repeatable). Default with
    /// --cert: that certificate's.
    #[arg(long)]
    pub san: Vec<String>,
    /// How the CA protects the generated key.
    #[arg(long, value_enum, default_value = "public-key")]
    pub shroud: ShroudKind,
    /// With --shroud certificate: the protecting certificate (PEM); default --cert.
    #[arg(long)]
    pub shroud_cert: Option<PathBuf>,
    /// With --shroud public-key or certificate: the protecting private key (PEM).
    #[arg(long)]
    pub shroud_key: Option<PathBuf>,
    /// With --shroud shared-secret: the Identification of the secret the key is protected
    /// with (it may differ from --ident).
    #[arg(long, requires = "shroud_secret_file")]
    pub shroud_secret_name: Option<String>,
    /// With --shroud shared-secret: the file holding that secret (`-`: standard input).
    #[arg(long, requires = "shroud_secret_name")]
    pub shroud_secret_file: Option<PathBuf>,
    /// Authenticate with a shared secret: the request is an AuthenticatedData under this
    /// Identification (SKGD-17). Without it, --cert/--key sign the request.
    #[arg(long, requires = "secret_file")]
    pub ident: Option<String>,
    /// The secret of --ident (`-`: standard input).
    #[arg(long, requires = "ident")]
    pub secret_file: Option<PathBuf>,
    /// The arc of the CA's `[cmc_server_keygen]` OIDs, when it is not Estuary's default
    /// (2.25.35258263107720737511850855134089286928).
    #[arg(long)]
    pub oid_arc: Option<String>,
    /// Also write the response as received (DER), e.g. for `openssl cms`.
    #[arg(long)]
    pub save_response: Option<PathBuf>,
    #[arg(long)]
    pub out_key: PathBuf,
    #[arg(long)]
    pub out_cert: PathBuf,
}

/// SKGD-3: the wanted algorithm, with its parameters; the key itself stays empty.
fn wanted_algorithm(kind: KeyKind) -> Result<AlgorithmIdentifierOwned, Error> {
    let curve = |c: const_oid::ObjectIdentifier| -> Result<AlgorithmIdentifierOwned, Error> {
        Ok(AlgorithmIdentifierOwned {
            oid: est_cms::oids::ID_EC_PUBLIC_KEY,
            parameters: Some(der::Any::encode_from(&c)?),
        })
    };
    Ok(match kind {
        KeyKind::P256 => curve(est_cms::oids::SECP256R1)?,
        KeyKind::P384 => curve(est_cms::oids::SECP384R1)?,
        KeyKind::Ed25519 => AlgorithmIdentifierOwned {
            oid: est_cms::oids::ID_ED25519,
            parameters: None,
        },
        KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => AlgorithmIdentifierOwned {
            oid: est_cms::oids::RSA_ENCRYPTION,
            parameters: Some(der::Any::encode_from(&der::asn1::Null)?),
        },
    })
}

pub async fn run(
    mut cfg: ClientConfig,
    anchors: &[X509],
    a: ServerKeygenArgs,
) -> Result<(), Error> {
    let oids = match &a.oid_arc {
        Some(arc) => SkgOids::under_arc(arc).map_err(|e| format!("--oid-arc {arc:?}: {e}"))?,
        None => SkgOids::default(),
    };
    let kind: KeyKind = a.key_type.parse()?;
    // SKGD-17: signed with a certificate (taken out of TLS, as for renew), or MACed.
    let signer_id = if a.ident.is_none() {
        Some(cfg.identity.take().ok_or(
            "authenticate the request: --cert/--key (signs it with that certificate) or --ident/--secret-file (a shared secret)",
        )?)
    } else {
        None
    };
    let identity = match (&a.ident, &a.secret_file) {
        (Some(ident), Some(f)) => Some(SharedSecret {
            ident: ident.clone(),
            secret: crate::read_password(f)?,
        }),
        _ => None,
    };
    let signer_cert = match &signer_id {
        Some(id) => {
            if !id.cert.public_key()?.public_eq(&id.key) {
                return Err("--key is not the key of --cert".into());
            }
            Some(est_client::from_x509(&id.cert)?)
        }
        None => None,
    };
    // The proposed names: given, or the signing certificate's (SKGD-16).
    let (subject, extensions) = match (&a.subject, &signer_cert) {
        (Some(s), _) => {
            let sans = parse_sans(&a.san)?;
            (
                est_client::parse_subject(s)?,
                est_client::san_extension(&sans)?
                    .into_iter()
                    .collect::<Vec<_>>(),
            )
        }
        (None, Some(c)) => {
            let tbs = c.tbs_certificate();
            let san: Vec<_> = tbs
                .extensions()
                .into_iter()
                .flatten()
                .filter(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
                .cloned()
                .collect();
            if !a.san.is_empty() {
                return Err("--san needs --subject".into());
            }
            (tbs.subject().clone(), san)
        }
        (None, None) => return Err("--subject is required without --cert".into()),
    };
    // The protection, and what opens it.
    let (shroud, secret): (Shroud, est_cms::RecipientSecret) = match a.shroud {
        ShroudKind::PublicKey => {
            let key = match &a.shroud_key {
                Some(p) => read_key(p)?,
                // A key for this exchange only, at least as strong as the one asked for
                // (SKGD-44).
                None => est_client::generate_key(if kind == KeyKind::P384 {
                    KeyKind::P384
                } else {
                    KeyKind::P256
                })?,
            };
            let spki = SubjectPublicKeyInfoOwned::try_from(key.public_key_to_der()?.as_slice())
                .map_err(|e| format!("the protecting key: {e}"))?;
            let ski = est_client::subject_key_id(&key)?;
            let shroud = Shroud::PublicKey(ShroudWithPublicKey::BareKey(BareKey {
                public_key: spki,
                ski: x509_cert::ext::pkix::SubjectKeyIdentifier(OctetString::new(ski.clone())?),
            }));
            (
                shroud,
                est_cms::RecipientSecret::PrivateKey {
                    key,
                    cert: None,
                    ski: Some(ski),
                },
            )
        }
        ShroudKind::Certificate => {
            let (cert, key, by_reference) = match (&a.shroud_cert, &a.shroud_key, &signer_id) {
                (Some(c), Some(k), _) => (first_cert(c)?, read_key(k)?, false),
                (None, None, Some(id)) => (est_client::from_x509(&id.cert)?, id.key.clone(), true),
                _ => {
                    return Err("--shroud certificate needs --shroud-cert and --shroud-key, or --cert/--key to use the signing certificate".into());
                }
            };
            let choice = if by_reference {
                // SKGD-11: certIdentifier names the certificate the SignedData carries.
                ShroudWithPublicKey::CertIdentifier(SignerIdentifier::IssuerAndSerialNumber(
                    est_cms::issuer_and_serial(&cert),
                ))
            } else {
                ShroudWithPublicKey::Certificate(cert.clone())
            };
            (
                Shroud::PublicKey(choice),
                est_cms::RecipientSecret::PrivateKey {
                    key,
                    cert: Some(cert),
                    ski: None,
                },
            )
        }
        ShroudKind::SharedSecret => {
            let (Some(name), Some(f)) = (&a.shroud_secret_name, &a.shroud_secret_file) else {
                return Err(
                    "--shroud shared-secret needs --shroud-secret-name and --shroud-secret-file"
                        .into(),
                );
            };
            let secret = crate::read_password(f)?;
            (
                Shroud::SharedSecret(name.clone()),
                est_cms::RecipientSecret::Password(Zeroizing::new(secret.to_vec())),
            )
        }
    };
    let request = placeholder_request(subject, wanted_algorithm(kind)?, &extensions)?;
    let mut opts = RequestOptions::random()?;
    opts.identity = identity;
    let caps = default_capabilities(&oids, &shroud);
    let pki = build_request(&opts, &oids, request, &shroud, caps)?;
    let body = match (&opts.identity, &signer_id, &signer_cert) {
        (Some(s), _, _) => sign_request(&pki, &RequestSigner::SharedSecret(s))?,
        (None, Some(id), Some(cert)) => {
            let signer = est_cms::OpensslSigner::new(id.key.clone(), cert.clone())
                .map_err(|e| format!("signing with --key: {e}"))?;
            sign_request(&pki, &RequestSigner::Certificate(&signer))?
        }
        _ => return Err("no way to authenticate the request".into()),
    };
    let answer = exchange(cfg, anchors, &opts, &body).await?;
    if let Some(p) = &a.save_response {
        std::fs::write(p, &answer.der).map_err(|e| format!("{}: {e}", p.display()))?;
        eprintln!("wrote the response (DER) to {}", p.display());
    }
    if let Outcome::Pending(_) = answer.outcome("generate a key")? {
        return Err(
            "the CA answered pending, which server key generation does not use here".into(),
        );
    }
    // SKGD-24: every layer verified, the key decrypted and matched to its certificate.
    let got =
        est_cmc::serverkeygen::client::read_response(&answer.der, &answer.store, &oids, &secret)?;
    if let Some((parts, code)) = got.errors.first() {
        return Err(format!("the CA refused: {} (body parts {parts:?})", code.name()).into());
    }
    let k = got
        .keys
        .into_iter()
        .next()
        .ok_or("the response carries no generated key")?;
    eprintln!(
        "key generated by {}, decrypted and verified",
        k.generator.tbs_certificate().subject()
    );
    let mut certs = vec![k.certificate.clone()];
    certs.extend(got.certificates.into_iter().filter(|c| {
        *c != k.certificate && c.tbs_certificate().subject() != c.tbs_certificate().issuer()
    }));
    write_private(
        &a.out_key,
        &Zeroizing::new(k.key.private_key_to_pem_pkcs8()?),
    )?;
    eprintln!("wrote key to {} (mode 0600)", a.out_key.display());
    write_cert(&a.out_cert, &certs)?;
    Ok(())
}
