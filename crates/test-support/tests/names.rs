//! Never issue what RFC 5280 forbids (SEC-11), over real TLS: a table of hostile names sent by
//! a user allowed `*.allowed.example` on a profile without wildcards. Every name RFC 5280
//! forbids gets 400 with a text/plain reason; a name the policy does not cover gets 403 (EST-90:
//! "refused by policy"); nothing is stored either way. The same for /serverkeygen (SKG-7) and
//! /fullcmc (a CMC failure badRequest in the signed response, CMC-39, EST-99). And what is
//! allowed is issued: ordinary names, an empty subject with a critical SAN (RFC 5280
//! §4.1.2.6), a wildcard on a profile that allows it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;

use der::asn1::{Ia5String, OctetString};
use der::{Decode, Encode, Tag};
use est_ca::{KeyType, Store};
use est_client::{ClientConfig, EstClient, Trust};
use est_cmc::client::{
    CertRequestBody, RequestOptions, RequestSigner, build_pki_data, sign_request,
};
use est_cmc::{CmcFailInfo, OtherStatusInfo};
use openssl::pkey::{PKey, Private};
use test_support::*;
use x509_cert::Certificate;
use x509_cert::attr::{Attribute, AttributeTypeAndValue};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use zeroize::Zeroizing;

const P10: &str = "application/pkcs10";

fn dns(s: &str) -> GeneralName {
    GeneralName::DnsName(Ia5String::new(s).unwrap())
}

fn uri(s: &str) -> GeneralName {
    GeneralName::UniformResourceIdentifier(Ia5String::new(s).unwrap())
}

fn cn(s: &str) -> Name {
    Name::from_str(&format!("CN={s}")).unwrap()
}

/// A subject of one attribute with any string type and bytes (NUL included).
fn raw_name(oid: &str, tag: Tag, value: &[u8]) -> Name {
    let mut rdn = RelativeDistinguishedName::default();
    rdn.insert(AttributeTypeAndValue {
        oid: oid.parse().unwrap(),
        value: der::Any::new(tag, value).unwrap(),
    })
    .unwrap();
    Name::from_der(&RdnSequence::from(vec![rdn]).to_der().unwrap()).unwrap()
}

/// One case: a subject and the extensionRequest attributes of the CSR.
struct Case {
    what: &'static str,
    subject: Name,
    attrs: Vec<Attribute>,
    status: u16,
    reason: &'static str,
}

fn case(
    what: &'static str,
    subject: Name,
    sans: Option<Vec<GeneralName>>,
    status: u16,
    reason: &'static str,
) -> Case {
    let attrs = sans
        .map(|s| vec![extension_request(vec![san_extension(&s)])])
        .unwrap_or_default();
    Case {
        what,
        subject,
        attrs,
        status,
        reason,
    }
}

fn ok_cn() -> Name {
    cn("a.allowed.example")
}

/// A SAN whose dNSName is not ASCII: IA5String cannot hold it, so the DER is written by hand.
fn non_ascii_san() -> Extension {
    let name = "b\u{fc}cher.allowed.example".as_bytes();
    let mut gn = vec![0x82, name.len() as u8];
    gn.extend_from_slice(name);
    let mut seq = vec![0x30, gn.len() as u8];
    seq.extend(gn);
    raw_extension(const_oid_san(), &seq)
}

fn hostile_cases() -> Vec<Case> {
    let long_label = format!("{}.allowed.example", "a".repeat(64));
    // 254 octets: 59 + 1 + 59 + 1 + 59 + 1 + 57 + 17 ("." + "allowed.example").
    let long_name = format!(
        "{}.{}.{}.{}.allowed.example",
        "a".repeat(59),
        "b".repeat(59),
        "c".repeat(59),
        "d".repeat(58)
    );
    assert_eq!(long_name.len(), 254);
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let dup_sans: Vec<Extension> = (0..2000)
        .map(|i| san_extension(&[dns(&format!("h{i}.allowed.example"))]))
        .collect();
    let ip = |b: &[u8]| GeneralName::IpAddress(OctetString::new(b).unwrap());
    let email = |s: &str| GeneralName::Rfc822Name(Ia5String::new(s).unwrap());
    let s = |n: &str| Some(vec![dns(n)]);
    let mut v = vec![
        case(
            "NUL in dNSName",
            ok_cn(),
            s("evil.example\0.allowed.example"),
            400,
            "NUL",
        ),
        case(
            "slash in dNSName",
            ok_cn(),
            s("evil.example/.allowed.example"),
            400,
            "slash",
        ),
        case(
            "leading dot",
            ok_cn(),
            s(".allowed.example"),
            400,
            "empty label",
        ),
        case(
            "trailing dot",
            ok_cn(),
            s("a.allowed.example."),
            400,
            "empty label",
        ),
        case(
            "wildcard, profile without",
            ok_cn(),
            s("*.allowed.example"),
            400,
            "wildcard",
        ),
        case(
            "wildcard CN, profile without",
            cn("*.allowed.example"),
            None,
            400,
            "wildcard",
        ),
        case(
            "wildcard not leftmost",
            ok_cn(),
            s("a.*.allowed.example"),
            400,
            "wildcard",
        ),
        case(
            "partial wildcard",
            ok_cn(),
            s("a*.allowed.example"),
            400,
            "wildcard",
        ),
        case(
            "empty label",
            ok_cn(),
            s("a..allowed.example"),
            400,
            "empty label",
        ),
        case("space", ok_cn(), s("x y.allowed.example"), 400, "space"),
        case(
            "underscore",
            ok_cn(),
            s("x_y.allowed.example"),
            400,
            "letters, digits",
        ),
        case("64-octet label", ok_cn(), s(leak(long_label)), 400, "63"),
        case("254-octet name", ok_cn(), s(leak(long_name)), 400, "253"),
        case("IP as dNSName", ok_cn(), s("10.0.0.1"), 400, "iPAddress"),
        case(
            "10,000-character CN",
            cn(&"a".repeat(10_000)),
            None,
            400,
            "at most 64",
        ),
        case(
            "65-character CN",
            cn(&format!("{}.allowed.example", "a".repeat(49))),
            None,
            400,
            "at most 64",
        ),
        case(
            "NUL in CN",
            raw_name(
                "2.5.4.3",
                Tag::Utf8String,
                b"a.allowed.example\0.evil.example",
            ),
            None,
            400,
            "U+0000",
        ),
        case(
            "newline in O",
            Name::from_der(
                &RdnSequence::from(vec![
                    ok_cn().iter_rdn().next().unwrap().clone(),
                    raw_name("2.5.4.10", Tag::Utf8String, b"Acme\nInc")
                        .iter_rdn()
                        .next()
                        .unwrap()
                        .clone(),
                ])
                .to_der()
                .unwrap(),
            )
            .unwrap(),
            None,
            400,
            "U+000A",
        ),
        case(
            "BMPString CN",
            raw_name("2.5.4.3", Tag::BmpString, b"\0a"),
            None,
            400,
            "not accepted",
        ),
        case(
            "three-letter country",
            raw_name("2.5.4.6", Tag::PrintableString, b"DEU"),
            s("a.allowed.example"),
            400,
            "countryName",
        ),
        case(
            "empty subject without SAN",
            Name::default(),
            None,
            400,
            "4.1.2.6",
        ),
        case("empty SAN extension", ok_cn(), Some(vec![]), 400, "empty"),
        case(
            "URI with a newline",
            ok_cn(),
            Some(vec![uri("https://a.allowed.example/\nx")]),
            400,
            "control",
        ),
        case(
            "URI with userinfo",
            ok_cn(),
            Some(vec![uri("https://a.allowed.example@evil.example/")]),
            400,
            "userinfo",
        ),
        case(
            "relative URI",
            ok_cn(),
            Some(vec![uri("a.allowed.example/x")]),
            400,
            "scheme",
        ),
        case(
            "5-octet iPAddress",
            ok_cn(),
            Some(vec![ip(&[10, 0, 0, 1, 2])]),
            400,
            "5 octets",
        ),
        case(
            "8-octet iPAddress",
            ok_cn(),
            Some(vec![ip(&[10, 0, 0, 0, 255, 0, 0, 0])]),
            400,
            "8 octets",
        ),
        case(
            "rfc822Name without @",
            ok_cn(),
            Some(vec![email("alice.allowed.example")]),
            400,
            "\"@\"",
        ),
        case(
            "directoryName SAN",
            ok_cn(),
            Some(vec![GeneralName::DirectoryName(ok_cn())]),
            400,
            "unsupported",
        ),
        // Policy misses: well-formed names the user may not have (403, EST-90).
        case("policy miss", cn("evil.example"), None, 403, "evil.example"),
        case(
            "suffix trick, no dot",
            cn("allowedexample"),
            None,
            403,
            "allowedexample",
        ),
        case(
            "single-label dNSName",
            ok_cn(),
            s("allowedexample"),
            400,
            "fully qualified",
        ),
        case(
            "numeric-ending TLD",
            ok_cn(),
            s("a.allowed.example1"),
            400,
            "top-level",
        ),
        case(
            "suffix trick, glued label",
            ok_cn(),
            s("evilallowed.example"),
            403,
            "evilallowed",
        ),
        case(
            "the bare suffix",
            ok_cn(),
            s("allowed.example"),
            403,
            "allowed.example",
        ),
        case(
            "two labels under one *",
            ok_cn(),
            s("a.b.allowed.example"),
            403,
            "a.b.allowed",
        ),
        case(
            "email under the domain",
            ok_cn(),
            Some(vec![email("x@a.allowed.example")]),
            403,
            "x@a",
        ),
        Case {
            what: "non-ASCII dNSName",
            subject: ok_cn(),
            attrs: vec![extension_request(vec![non_ascii_san()])],
            status: 400,
            reason: "SubjectAltName",
        },
        Case {
            what: "2,000 duplicate SAN extensions",
            subject: ok_cn(),
            attrs: vec![extension_request(dup_sans)],
            status: 400,
            reason: "more than once",
        },
    ];
    // Two extensionRequest attributes, each with a SAN.
    v.push(Case {
        what: "two extensionRequest attributes",
        subject: ok_cn(),
        attrs: vec![
            extension_request(vec![san_extension(&[dns("a.allowed.example")])]),
            extension_request(vec![san_extension(&[dns("b.allowed.example")])]),
        ],
        status: 400,
        reason: "more than one extensionRequest",
    });
    v
}

async fn post(s: &TestServer, path: &str, user: (&str, &str), csr: &[u8]) -> RawResponse {
    raw_request(
        s,
        &RawTls::default(),
        &enroll_request(path, Some(user), P10, b64(csr).as_bytes()),
    )
    .await
}

fn certs_of(resp: &RawResponse) -> Vec<Certificate> {
    certs_only(resp)
        .iter()
        .map(|c| Certificate::from_der(&c.to_der().unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_get_400_with_a_reason_and_nothing_is_stored() {
    let s = TestServer::start(ServerOptions::default()).await;
    let k = key(KeyType::P256);
    let before = s.store.count_certificates().await.unwrap();
    // `ESTUARY_WRITE_FUZZ_CORPUS=fuzz/corpus/csr` saves every hostile CSR as a seed of the
    // `csr` fuzz target (issue 12 item 9: the corpus gains the inputs found by probing).
    let corpus = std::env::var_os("ESTUARY_WRITE_FUZZ_CORPUS").map(std::path::PathBuf::from);
    for (i, c) in hostile_cases().into_iter().enumerate() {
        let csr = make_csr_with(&k, &c.subject, c.attrs);
        if let Some(dir) = &corpus {
            std::fs::write(dir.join(format!("hostile-name-{i:02}.der")), &csr).unwrap();
        }
        for path in [
            "/.well-known/est/simpleenroll",
            "/.well-known/est/skg/serverkeygen",
        ] {
            let r = post(&s, path, ALLOWED, &csr).await;
            assert_eq!(r.status, c.status, "{}: {path}: {}", c.what, r.text());
            assert!(
                r.header("content-type")
                    .is_some_and(|t| t.starts_with("text/plain")),
                "{}: {:?}",
                c.what,
                r.headers
            );
            assert!(
                r.text().contains(c.reason),
                "{}: {path}: {:?} lacks {:?}",
                c.what,
                r.text(),
                c.reason
            );
            assert!(
                r.text().len() < 400,
                "{}: a bounded reason: {}",
                c.what,
                r.text()
            );
        }
        assert_eq!(
            s.store.count_certificates().await.unwrap(),
            before,
            "{}: nothing stored",
            c.what
        );
    }
    // A requester without name restrictions (alice may ask for any name) still gets no `*` in
    // a commonName on a profile without wildcards, well-formed wildcard name or not.
    for bad in [
        "*",
        "*.com",
        "*.a.example.",
        "a*.example.com",
        "*.allowed.example",
    ] {
        let csr = make_csr_with(&k, &cn(bad), Vec::new());
        let r = post(&s, "/.well-known/est/simpleenroll", ALICE, &csr).await;
        assert_eq!(r.status, 400, "CN={bad}: {}", r.text());
        assert!(r.text().contains("wildcard"), "CN={bad}: {}", r.text());
    }
    assert_eq!(s.store.count_certificates().await.unwrap(), before);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn good_names_empty_subjects_and_allowed_wildcards_are_issued() {
    let s = TestServer::start(ServerOptions::default()).await;
    let k = key(KeyType::P256);
    let with_sans = |subject: &Name, sans: &[GeneralName]| {
        make_csr_with(
            &k,
            subject,
            vec![extension_request(vec![san_extension(sans)])],
        )
    };
    let sans_of = |c: &Certificate| {
        c.tbs_certificate()
            .extensions()
            .unwrap()
            .iter()
            .find(|e| e.extn_id == const_oid_san())
            .cloned()
    };

    // Ordinary names, upper case too (compared case-insensitively).
    let csr = with_sans(
        &ok_cn(),
        &[dns("a.allowed.example"), dns("B.Allowed.Example")],
    );
    let r = post(&s, "/.well-known/est/simpleenroll", ALLOWED, &csr).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = &certs_of(&r)[0];
    assert!(!sans_of(c).unwrap().critical, "a subject is present");

    // An empty subject with a SAN: issued, the SAN critical (RFC 5280 §4.1.2.6, §4.2.1.6).
    let csr = with_sans(&Name::default(), &[dns("c.allowed.example")]);
    let r = post(&s, "/.well-known/est/simpleenroll", ALLOWED, &csr).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = &certs_of(&r)[0];
    assert!(c.tbs_certificate().subject().is_empty());
    assert!(
        sans_of(c).unwrap().critical,
        "SAN critical with an empty subject"
    );

    // A wildcard on the profile that allows it, within the user's `*.allowed.example`.
    let csr = with_sans(&cn("*.allowed.example"), &[dns("*.allowed.example")]);
    let r = post(&s, "/.well-known/est/wild/simpleenroll", ALLOWED, &csr).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let san = sans_of(&certs_of(&r)[0]).unwrap();
    assert!(
        san.extn_value
            .as_bytes()
            .windows(17)
            .any(|w| w == b"*.allowed.example")
    );
    // ... but still only as the whole leftmost label, and still within the policy.
    let csr = with_sans(&ok_cn(), &[dns("a*.allowed.example")]);
    let r = post(&s, "/.well-known/est/wild/simpleenroll", ALLOWED, &csr).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let csr = with_sans(&ok_cn(), &[dns("*.evil.example")]);
    let r = post(&s, "/.well-known/est/wild/simpleenroll", ALLOWED, &csr).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(s.store.count_certificates().await.unwrap(), 3);
    s.shutdown().await;
}

// --- /fullcmc ---------------------------------------------------------------------------

async fn full_cmc(s: &TestServer, der: &[u8]) -> (u16, Vec<u8>) {
    let cfg = ClientConfig {
        url: s.url(),
        label: None,
        trust: Trust::Explicit(vec![s.pki.root_x509()]),
        identity: None,
        basic: Some((ALLOWED.0.into(), Zeroizing::new(ALLOWED.1.into()))),
        max_tls12: false,
        http_auth: Default::default(),
    };
    let mut c = EstClient::new(cfg).unwrap().connect().await.unwrap();
    c.full_cmc(der).await.unwrap()
}

fn signed(key: &PKey<Private>, body: &CertRequestBody) -> Vec<u8> {
    let pki = build_pki_data(&RequestOptions::random().unwrap(), body, key).unwrap();
    let ski = est_client::subject_key_id(key).unwrap();
    sign_request(&pki, &RequestSigner::RequestKey { key, key_id: &ski }).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn fullcmc_refuses_hostile_names_with_a_cmc_failure() {
    let s = TestServer::start(ServerOptions::default()).await;
    let k = key(KeyType::P256);
    let ski =
        est_client::subject_key_id_extension(&est_client::subject_key_id(&k).unwrap()).unwrap();
    let p10 = |subject: &Name, exts: Vec<Extension>| {
        let mut all = vec![ski.clone()];
        all.extend(exts);
        CertRequestBody::Pkcs10(make_csr_with(&k, subject, vec![extension_request(all)]))
    };
    let crmf = |subject: Name, exts: Vec<Extension>| {
        let mut all = vec![ski.clone()];
        all.extend(exts);
        CertRequestBody::Crmf {
            subject,
            extensions: all,
        }
    };
    let san = |n: &str| san_extension(&[dns(n)]);
    let cases: Vec<(&str, CertRequestBody, &str)> = vec![
        (
            "PKCS#10, NUL in dNSName",
            p10(&ok_cn(), vec![san("evil.example\0.allowed.example")]),
            "NUL",
        ),
        (
            "PKCS#10, empty subject, no SAN",
            p10(&Name::default(), vec![]),
            "4.1.2.6",
        ),
        (
            "PKCS#10, two extensionRequest attributes",
            CertRequestBody::Pkcs10(make_csr_with(
                &k,
                &ok_cn(),
                vec![
                    extension_request(vec![ski.clone(), san("a.allowed.example")]),
                    extension_request(vec![san("b.allowed.example")]),
                ],
            )),
            "more than one extensionRequest",
        ),
        (
            "PKCS#10, 2,000 SAN extensions",
            p10(
                &ok_cn(),
                (0..2000)
                    .map(|i| san(&format!("h{i}.allowed.example")))
                    .collect(),
            ),
            "more than once",
        ),
        (
            "PKCS#10, wildcard, profile without",
            p10(&ok_cn(), vec![san("*.allowed.example")]),
            "wildcard",
        ),
        (
            "CRMF, two SAN extensions",
            crmf(
                ok_cn(),
                vec![san("a.allowed.example"), san("b.allowed.example")],
            ),
            "more than once",
        ),
        (
            "CRMF, 10,000-character CN",
            crmf(cn(&"a".repeat(10_000)), vec![]),
            "at most 64",
        ),
        (
            "CRMF, empty SAN extension",
            crmf(ok_cn(), vec![san_extension(&[])]),
            "empty",
        ),
        (
            "CRMF, URI with a newline",
            crmf(
                ok_cn(),
                vec![san_extension(&[uri("https://a.allowed.example/\n")])],
            ),
            "control",
        ),
        (
            "CRMF, 5-octet iPAddress",
            crmf(
                ok_cn(),
                vec![san_extension(&[GeneralName::IpAddress(
                    OctetString::new([1u8, 2, 3, 4, 5]).unwrap(),
                )])],
            ),
            "5 octets",
        ),
    ];
    let trust = {
        let mut b = openssl::x509::store::X509StoreBuilder::new().unwrap();
        b.add_cert(s.pki.root_x509()).unwrap();
        b.build()
    };
    for (what, body, reason) in cases {
        let (status, der) = full_cmc(&s, &signed(&k, &body)).await;
        assert_eq!(status, 400, "{what}");
        let v = est_cmc::client::verify_response(&der, &trust).unwrap();
        assert!(
            v.certificates
                .iter()
                .all(|c| c.tbs_certificate().subject() != &ok_cn())
        );
        let failed = v
            .summary
            .statuses
            .iter()
            .find(|st| {
                matches!(st.other_info, Some(OtherStatusInfo::FailInfo(f)) if f == CmcFailInfo::BAD_REQUEST)
            })
            .unwrap_or_else(|| panic!("{what}: {:?}", v.summary.statuses));
        let text = failed.status_string.clone().unwrap_or_default();
        assert!(text.contains(reason), "{what}: {text:?} lacks {reason:?}");
        assert_eq!(
            s.store.count_certificates().await.unwrap(),
            0,
            "{what}: nothing stored"
        );
    }
    // The same client with good names is issued.
    let (status, der) = full_cmc(
        &s,
        &signed(&k, &crmf(ok_cn(), vec![san("a.allowed.example")])),
    )
    .await;
    let v = est_cmc::client::verify_response(&der, &trust).unwrap();
    assert_eq!(status, 200, "{:?}", v.summary.statuses);
    assert_eq!(s.store.count_certificates().await.unwrap(), 1);
    s.shutdown().await;
}
