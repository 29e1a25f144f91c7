use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

/// Standard alphabet, padding optional on input (RFC 8951 §3 senders may omit wrapping; some
/// omit padding too).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Base64Error(String);

/// Decodes an EST body: base64 of DER whatever Content-Transfer-Encoding said (EST-9, EST-10),
/// with CR, LF, space and tab tolerated anywhere (EST-12). Never allocates more than the input.
pub fn decode_body(body: &[u8]) -> Result<Vec<u8>, Base64Error> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        .collect();
    if compact.is_empty() {
        return Err(Base64Error("empty body".into()));
    }
    LENIENT
        .decode(&compact)
        .map_err(|e| Base64Error(e.to_string()))
}

/// Encodes an EST body: base64 wrapped at 64 columns with CRLF, ending with CRLF (EST-13).
pub fn encode_body(der: &[u8]) -> String {
    let b64 = general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 * 2 + 2);
    for chunk in b64.as_bytes().chunks(64) {
        // Chunks of an ASCII string are ASCII.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps_at_64() {
        let s = encode_body(&[0u8; 100]);
        let lines: Vec<&str> = s.split("\r\n").collect();
        assert_eq!(lines[0].len(), 64);
        assert!(s.ends_with("\r\n"));
        assert!(decode_body(b"").is_err());
        assert!(decode_body(b"@@@@").is_err());
        assert_eq!(decode_body(b"AAE").unwrap(), [0, 1]);
        assert_eq!(decode_body(b"A A\tE=\r\n").unwrap(), [0, 1]);
    }

    proptest! {
        #[test]
        fn round_trip_with_whitespace(data in proptest::collection::vec(any::<u8>(), 1..600), ws in proptest::collection::vec((0usize..1000, 0usize..4), 0..30)) {
            let mut enc = encode_body(&data).into_bytes();
            for (pos, which) in ws {
                let at = pos % (enc.len() + 1);
                enc.insert(at, [b' ', b'\t', b'\r', b'\n'][which]);
            }
            prop_assert_eq!(decode_body(&enc).unwrap(), data);
        }
    }
}
