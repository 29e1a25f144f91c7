//! Access to the exact encoded bytes of fields, for signatures and MACs computed over the
//! encoding as received (a decoder that re-sorts a SET OF must not change what was signed).
use der::{Decode, Header, Reader, SliceReader, Tag};

use crate::error::{CmsError, Result};

/// The complete TLVs inside a constructed element with tag `expected` (SEQUENCE or SET).
pub(crate) fn elements(der: &[u8], expected: Tag) -> Result<Vec<&[u8]>> {
    let mut outer = SliceReader::new(der)?;
    let header = Header::decode(&mut outer)?;
    if header.tag() != expected {
        return Err(CmsError::malformed(format!(
            "expected {expected}, found {}",
            header.tag()
        )));
    }
    let body = outer.read_slice(header.length())?;
    outer.finish()?;
    let mut inner = SliceReader::new(body)?;
    let mut out = Vec::new();
    while !inner.is_finished() {
        out.push(inner.tlv_bytes()?);
    }
    Ok(out)
}

/// The TLV of the `[n]` IMPLICIT constructed field of a SEQUENCE, re-tagged as a DER SET
/// (RFC 5652 §5.4 and §9.2: signed/authenticated attributes are digested with a SET OF tag).
pub(crate) fn implicit_set_field(seq_der: &[u8], n: u8) -> Result<Option<Vec<u8>>> {
    let tag_byte = 0xA0 | n;
    for el in elements(seq_der, Tag::Sequence)? {
        if let Some((&first, rest)) = el.split_first()
            && first == tag_byte
        {
            let mut set = Vec::with_capacity(el.len());
            set.push(0x31);
            set.extend_from_slice(rest);
            return Ok(Some(set));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn finds_implicit_field_as_received() {
        // SEQUENCE { INTEGER 1, [0] { (unsorted) OCTET STRING 02, OCTET STRING 01 }, NULL }
        let der = [
            0x30, 0x0b, 0x02, 0x01, 0x01, 0xa0, 0x06, 0x04, 0x01, 0x02, 0x04, 0x01, 0x01, 0x05,
            0x00,
        ];
        // Note: the length above is wrong on purpose for the first call.
        assert!(implicit_set_field(&der, 0).is_err());
        let mut ok = der;
        ok[1] = 0x0d;
        assert_eq!(
            implicit_set_field(&ok, 0).unwrap().unwrap(),
            [0x31, 0x06, 0x04, 0x01, 0x02, 0x04, 0x01, 0x01]
        );
        assert_eq!(implicit_set_field(&ok, 2).unwrap(), None);
        assert!(elements(&ok, Tag::Set).is_err());
        assert!(elements(&[], Tag::Sequence).is_err());
    }
}
