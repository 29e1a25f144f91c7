//! Authorization rules for certificate-authenticated requesters that are not ordinary end
//! entities of this CA: registration authorities (id-kp-cmcRA, EST-48) and clients whose
//! certificate validated only to an implicit (third-party) trust anchor, such as a device's
//! manufacturer-installed IDevID (EST-28, SEC-2, SEC-23).
use der::Encode;
use der::asn1::ObjectIdentifier;
use x509_cert::Certificate;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::name::Name;

use crate::CaError;
use crate::csr::VerifiedCsr;

/// id-kp-cmcRA (RFC 6402 §2.10): the certificate holder is a registration authority.
pub const ID_KP_CMC_RA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.28");

/// X.520 serialNumber (2.5.4.5), the device serial number in IDevID subjects (IEEE 802.1AR).
const SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");

/// Whether the certificate carries id-kp-cmcRA in its extended key usage (EST-48).
pub fn is_registration_authority(cert: &Certificate) -> bool {
    matches!(
        cert.tbs_certificate().get_extension::<ExtendedKeyUsage>(),
        Ok(Some((_, eku))) if eku.0.contains(&ID_KP_CMC_RA)
    )
}

/// Which subject a client authenticated through an implicit trust anchor may request
/// (initial enrollment only, never renewal or anything else: SEC-23).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImplicitNameMapping {
    /// The CSR subject must equal the certificate's subject, byte for byte.
    SameSubject,
    /// The CSR subject must carry the certificate's serialNumber attribute(s) unchanged (the
    /// IDevID's device serial number); other attributes are free.
    SameSerialNumber,
}

impl ImplicitNameMapping {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "subject" => Some(Self::SameSubject),
            "serial-number" => Some(Self::SameSerialNumber),
            _ => None,
        }
    }

    /// Checks a CSR of an implicit-TA client; SubjectAltNames are never granted to it, since
    /// nothing vouches for them.
    pub(crate) fn check(self, cert: &Certificate, csr: &VerifiedCsr) -> Result<(), CaError> {
        if csr.san.as_ref().is_some_and(|s| !s.0.is_empty()) {
            return Err(CaError::NameNotAllowed(
                "a client authenticated by an implicit trust anchor may not request SubjectAltNames"
                    .into(),
            ));
        }
        let have = cert.tbs_certificate().subject();
        let want = csr.subject();
        let ok = match self {
            Self::SameSubject => have.to_der()? == want.to_der()?,
            Self::SameSerialNumber => {
                let theirs = serial_numbers(have)?;
                !theirs.is_empty() && theirs == serial_numbers(want)?
            }
        };
        if ok {
            Ok(())
        } else {
            Err(CaError::NameNotAllowed(match self {
                Self::SameSubject => format!(
                    "the requested subject \"{want}\" must equal the client certificate's \"{have}\""
                ),
                Self::SameSerialNumber => format!(
                    "the requested subject \"{want}\" must keep the serialNumber of the client certificate's \"{have}\""
                ),
            }))
        }
    }
}

/// The values of every serialNumber attribute of a name, in order: the characters for the
/// ASCII-compatible string types (a device may encode PrintableString where its IDevID has
/// UTF8String), the whole DER otherwise.
fn serial_numbers(name: &Name) -> Result<Vec<Vec<u8>>, CaError> {
    use der::{Tag, Tagged};
    let mut out = Vec::new();
    for atv in name.iter() {
        if atv.oid == SERIAL_NUMBER {
            out.push(match atv.value.tag() {
                Tag::PrintableString | Tag::Utf8String | Tag::Ia5String => {
                    atv.value.value().to_vec()
                }
                _ => atv.value.to_der()?,
            });
        }
    }
    Ok(out)
}
