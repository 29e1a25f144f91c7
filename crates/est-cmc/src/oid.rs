//! A wide OBJECT IDENTIFIER: arcs up to 128 bits.
//!
//! `const-oid` stores arcs as `u32`, so it cannot hold OIDs under a UUID arc (`2.25.<128-bit
//! integer>`, X.667), such as the private arc Estuary uses for the unassigned OIDs of the CMC
//! server-side key generation draft (REQUIREMENTS §2.12, [`crate::serverkeygen::SkgOids`]).
//! Wherever a CMC message may carry such an OID (a control's attrType, an extendedFailInfo
//! failInfoOID, a shroudMethod algorithm), this type is used instead, so that one such OID does
//! not make the whole PKIData undecodable.
//!
//! The value is kept as its BER/DER content octets (X.690 §8.19), validated on construction:
//! at least one subidentifier, no subidentifier starting with 0x80 (non-minimal), the last
//! octet's high bit clear (complete), and every arc at most 128 bits wide.
use std::fmt;
use std::str::FromStr;

use const_oid::ObjectIdentifier;
use der::{DecodeValue, EncodeValue, FixedTag, Header, Length, Reader, Tag, Writer};

/// An OBJECT IDENTIFIER whose arcs may be up to 128 bits wide. Equality is byte equality of
/// the content octets (which DER makes canonical), also against a `const-oid` value.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(Vec<u8>);

/// Why bytes or a dotted string are not an OID this type accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OidError {
    #[error("empty OBJECT IDENTIFIER")]
    Empty,
    #[error("OBJECT IDENTIFIER subidentifier is not minimally encoded (leading 0x80)")]
    NotMinimal,
    #[error("OBJECT IDENTIFIER ends inside a subidentifier")]
    Truncated,
    #[error("OBJECT IDENTIFIER arc wider than 128 bits")]
    ArcTooWide,
    #[error("malformed dotted OBJECT IDENTIFIER: {0}")]
    Syntax(&'static str),
}

impl Oid {
    /// Validates BER content octets (the value of an OBJECT IDENTIFIER TLV).
    pub fn from_content(bytes: &[u8]) -> Result<Self, OidError> {
        if bytes.is_empty() {
            return Err(OidError::Empty);
        }
        if bytes.last().is_some_and(|b| b & 0x80 != 0) {
            return Err(OidError::Truncated);
        }
        let mut start = true;
        let mut bits = 0u32;
        for &b in bytes {
            if start && b == 0x80 {
                return Err(OidError::NotMinimal);
            }
            if start {
                // Significant bits of the first septet of this subidentifier.
                bits = 8 - (b & 0x7f).leading_zeros();
            } else {
                bits += 7;
            }
            if bits > 128 {
                return Err(OidError::ArcTooWide);
            }
            start = b & 0x80 == 0;
        }
        Ok(Self(bytes.to_vec()))
    }

    /// An OID from content octets known to be valid (a constant of this crate, tested).
    pub(crate) fn from_trusted_content(bytes: &[u8]) -> Self {
        debug_assert!(Self::from_content(bytes).is_ok());
        Self(bytes.to_vec())
    }

    /// The content octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The same OID as a `const-oid` value, when every arc fits its limits.
    pub fn to_const(&self) -> Option<ObjectIdentifier> {
        ObjectIdentifier::from_bytes(&self.0).ok()
    }

    /// The raw subidentifiers (the first one combines the first two arcs). Validation bounds
    /// each to 128 bits.
    fn subidentifiers(&self) -> impl Iterator<Item = u128> + '_ {
        let mut acc = 0u128;
        self.0.iter().filter_map(move |&b| {
            acc = (acc << 7) | u128::from(b & 0x7f);
            if b & 0x80 == 0 {
                let v = acc;
                acc = 0;
                Some(v)
            } else {
                None
            }
        })
    }

    /// The arcs, first two split out of the first subidentifier (X.690 §8.19.4).
    pub fn arcs(&self) -> Vec<u128> {
        let mut out = Vec::new();
        for (i, s) in self.subidentifiers().enumerate() {
            if i == 0 {
                let (a, b) = match s {
                    0..40 => (0, s),
                    40..80 => (1, s - 40),
                    _ => (2, s - 80),
                };
                out.push(a);
                out.push(b);
            } else {
                out.push(s);
            }
        }
        out
    }

    /// The OID `self.arc`: this OID with one more arc.
    pub fn child(&self, arc: u128) -> Self {
        let mut bytes = self.0.clone();
        push_base128(&mut bytes, arc);
        Self(bytes)
    }
}

fn push_base128(out: &mut Vec<u8>, v: u128) {
    let septets = (128 - v.leading_zeros()).div_ceil(7).max(1);
    for i in (0..septets).rev() {
        let s = ((v >> (7 * i)) & 0x7f) as u8;
        out.push(if i == 0 { s } else { s | 0x80 });
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.arcs().iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

impl FromStr for Oid {
    type Err = OidError;

    /// Dotted decimal, at least two arcs, each at most 128 bits; the first arc 0, 1 or 2 and
    /// the second below 40 under 0 and 1 (X.660).
    fn from_str(s: &str) -> Result<Self, OidError> {
        let arcs = s
            .split('.')
            .map(|a| {
                if a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(OidError::Syntax(
                        "arcs are decimal digits separated by dots",
                    ));
                }
                if a.len() > 1 && a.starts_with('0') {
                    return Err(OidError::Syntax("an arc has a leading zero"));
                }
                a.parse::<u128>().map_err(|_| OidError::ArcTooWide)
            })
            .collect::<Result<Vec<u128>, OidError>>()?;
        let [first, second, rest @ ..] = arcs.as_slice() else {
            return Err(OidError::Syntax("an OID has at least two arcs"));
        };
        let first_sub = match (*first, *second) {
            (0 | 1, b) if b < 40 => first * 40 + b,
            (0 | 1, _) => return Err(OidError::Syntax("the second arc under 0 or 1 is below 40")),
            (2, b) => b.checked_add(80).ok_or(OidError::ArcTooWide)?,
            _ => return Err(OidError::Syntax("the first arc is 0, 1 or 2")),
        };
        let mut bytes = Vec::new();
        push_base128(&mut bytes, first_sub);
        for a in rest {
            push_base128(&mut bytes, *a);
        }
        Ok(Self(bytes))
    }
}

impl From<ObjectIdentifier> for Oid {
    fn from(oid: ObjectIdentifier) -> Self {
        Self(oid.as_bytes().to_vec())
    }
}

impl From<&ObjectIdentifier> for Oid {
    fn from(oid: &ObjectIdentifier) -> Self {
        Self(oid.as_bytes().to_vec())
    }
}

impl PartialEq<ObjectIdentifier> for Oid {
    fn eq(&self, other: &ObjectIdentifier) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<Oid> for ObjectIdentifier {
    fn eq(&self, other: &Oid) -> bool {
        self.as_bytes() == other.0
    }
}

impl<'a> DecodeValue<'a> for Oid {
    type Error = der::Error;
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        let bytes = reader.read_slice(header.length())?;
        Self::from_content(bytes).map_err(|_| {
            der::ErrorKind::Value {
                tag: Tag::ObjectIdentifier,
            }
            .into()
        })
    }
}

impl EncodeValue for Oid {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.0.len())
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.0)
    }
}

impl FixedTag for Oid {
    const TAG: Tag = Tag::ObjectIdentifier;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use der::{Decode, Encode};

    use super::*;

    const ARC: &str = "2.25.35258263107720737511850855134089286928";

    #[test]
    fn dotted_round_trip_of_the_estuary_arc() {
        let oid: Oid = format!("{ARC}.1.1").parse().unwrap();
        assert_eq!(oid.to_string(), format!("{ARC}.1.1"));
        assert!(
            oid.to_const().is_none(),
            "const-oid cannot hold a 128-bit arc"
        );
        let der = oid.to_der().unwrap();
        assert_eq!(der[0], 0x06);
        let back = Oid::from_der(&der).unwrap();
        assert_eq!(back, oid);
        assert_eq!(back.to_der().unwrap(), der);
        assert_eq!(Oid::from_str(ARC).unwrap().child(1).child(1), oid);
        let arcs = oid.arcs();
        assert_eq!(arcs.len(), 5);
        assert_eq!(arcs[2], 35258263107720737511850855134089286928u128);
    }

    #[test]
    fn the_largest_128_bit_arc() {
        let s = format!("2.25.{}", u128::MAX);
        let oid: Oid = s.parse().unwrap();
        assert_eq!(oid.to_string(), s);
        assert_eq!(Oid::from_der(&oid.to_der().unwrap()).unwrap(), oid);
        // One bit more is refused, in both forms.
        assert_eq!(
            Oid::from_str("2.25.340282366920938463463374607431768211456"),
            Err(OidError::ArcTooWide)
        );
        let mut content = vec![0x69];
        content.extend([0x84]); // 3 significant bits + 18 septets = 129 bits
        content.extend([0xff; 17]);
        content.push(0x7f);
        assert_eq!(Oid::from_content(&content), Err(OidError::ArcTooWide));
        // 2 + 18*7 = 128 bits is accepted (u128::MAX's encoding starts 0x83).
        content[1] = 0x83;
        assert!(Oid::from_content(&content).is_ok());
    }

    #[test]
    fn agrees_with_const_oid() {
        for s in [
            "1.3.6.1.5.5.7.7.25",
            "2.5.4.3",
            "0.9.2342.19200300.100.1.25",
        ] {
            let c = ObjectIdentifier::new_unwrap(s);
            let w: Oid = s.parse().unwrap();
            assert_eq!(w, c);
            assert_eq!(c, w);
            assert_eq!(Oid::from(c), w);
            assert_eq!(w.to_const(), Some(c));
            assert_eq!(w.to_string(), s);
            assert_eq!(w.to_der().unwrap(), c.to_der().unwrap());
        }
    }

    /// X.690 §8.19.5's example: a second arc above 39 under 2, which const-oid refuses.
    #[test]
    fn x690_example_2_999_3() {
        let oid: Oid = "2.999.3".parse().unwrap();
        assert_eq!(oid.as_bytes(), &[0x88, 0x37, 0x03]);
        assert_eq!(oid.to_string(), "2.999.3");
    }

    #[test]
    fn rejects_malformed_encodings() {
        // empty
        assert!(Oid::from_der(&[0x06, 0x00]).is_err());
        // a leading 0x80 in the first and in a later subidentifier
        assert!(Oid::from_der(&[0x06, 0x02, 0x80, 0x01]).is_err());
        assert!(Oid::from_der(&[0x06, 0x03, 0x2b, 0x80, 0x01]).is_err());
        // the last octet has its high bit set (truncated)
        assert!(Oid::from_der(&[0x06, 0x02, 0x2b, 0x86]).is_err());
        // wrong tag
        assert!(Oid::from_der(&[0x04, 0x01, 0x2b]).is_err());
        assert_eq!(Oid::from_content(&[]), Err(OidError::Empty));
        assert_eq!(Oid::from_content(&[0x80, 0x01]), Err(OidError::NotMinimal));
        assert_eq!(Oid::from_content(&[0x2b, 0x86]), Err(OidError::Truncated));
    }

    #[test]
    fn rejects_malformed_dotted_forms() {
        for s in [
            "", "1", "3.1", "1.40", "0.40.1", "1..2", "1.2.", "a.b", "1.02", "-1.2", " 1.2",
        ] {
            assert!(Oid::from_str(s).is_err(), "{s:?}");
        }
        assert!(Oid::from_str("2.40").is_ok());
        assert!(Oid::from_str("1.39").is_ok());
    }

    /// A PKIData with a control under the wide arc decodes as a whole, and the control is
    /// reported unsupported by body part (CMC-9) with its dotted OID in the reason.
    #[test]
    fn pki_data_with_a_wide_control_decodes_and_is_reported() {
        use crate::types::{BodyPartReference, PkiData, TaggedAttribute};
        let wide: Oid = format!("{ARC}.9.9").parse().unwrap();
        let pki = PkiData {
            control_sequence: vec![
                TaggedAttribute::single(7, wide.clone(), &der::asn1::Null).unwrap(),
                TaggedAttribute::single(
                    8,
                    crate::oids::SENDER_NONCE,
                    &der::asn1::OctetString::new(vec![1u8; 16]).unwrap(),
                )
                .unwrap(),
            ],
            ..Default::default()
        };
        let der = pki.to_der().unwrap();
        let back = PkiData::from_der(&der).unwrap();
        assert_eq!(back, pki);
        assert_eq!(
            back.control_sequence[1].attr_type,
            crate::oids::SENDER_NONCE
        );
        let mut controls = crate::Controls::read(&back).unwrap();
        assert_eq!(controls.sender_nonce.as_deref(), Some(&[1u8; 16][..]));
        assert_eq!(controls.unsupported, vec![(7, wide.clone())]);
        let f = controls.unsupported_failure().unwrap();
        assert_eq!(f.body_list, vec![BodyPartReference::Id(7)]);
        assert!(f.reason.contains(&format!("{ARC}.9.9")), "{}", f.reason);
        assert_eq!(controls.take_unsupported(&wide), vec![7]);
        assert!(controls.unsupported_failure().is_none());
    }

    /// `openssl asn1parse` (an independent decoder) prints the dotted form we print.
    #[test]
    fn openssl_asn1parse_reads_the_wide_oid() {
        let oid: Oid = format!("{ARC}.1.1").parse().unwrap();
        let dir = std::env::temp_dir().join(format!("est-cmc-oid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("oid.der");
        std::fs::write(&path, oid.to_der().unwrap()).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["asn1parse", "-inform", "DER", "-in"])
            .arg(&path)
            .output()
            .expect("openssl CLI");
        let _ = std::fs::remove_dir_all(&dir);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains(&format!(":{ARC}.1.1")), "{text}");
    }
}
