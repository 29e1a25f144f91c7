use base64::Engine;

/// The channel binding of a TLS connection (RFC 7030 §3.5), carried base64-encoded in the CSR's
/// challengePassword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelBinding {
    /// TLS 1.2 tls-unique (RFC 5929 §3.1): the first Finished message of the handshake.
    TlsUnique(Vec<u8>),
    /// TLS 1.3 tls-exporter (RFC 9266), our documented extension EST-59.
    TlsExporter(Vec<u8>),
}

impl ChannelBinding {
    pub fn value(&self) -> &[u8] {
        match self {
            Self::TlsUnique(v) | Self::TlsExporter(v) => v,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::TlsUnique(_) => "tls-unique",
            Self::TlsExporter(_) => "tls-exporter",
        }
    }

    /// The challengePassword value: base64 of the binding (EST-52, EST-59).
    pub fn challenge_password(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.value())
    }
}

/// EST-54, EST-58, EST-59: the challengePassword bytes are the base64 (white space tolerated)
/// of the connection's channel binding. Compared in constant time over equal lengths.
pub fn binding_matches(challenge_password: &[u8], binding: &[u8]) -> bool {
    let Ok(decoded) = crate::decode_body(challenge_password) else {
        return false;
    };
    if decoded.len() != binding.len() || binding.is_empty() {
        return false;
    }
    decoded
        .iter()
        .zip(binding)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_password_round_trips() {
        let b = ChannelBinding::TlsExporter(vec![7u8; 32]);
        assert_eq!(b.challenge_password().len(), 44);
        assert!(binding_matches(
            b.challenge_password().as_bytes(),
            b.value()
        ));
        assert_eq!(
            ChannelBinding::TlsUnique(vec![1; 12])
                .challenge_password()
                .len(),
            16
        );
    }

    #[test]
    fn rfc7030_a3_style_value() {
        // A.3's challengePassword is base64 of a 12-byte tls-unique.
        let v = [
            0xfa, 0xba, 0xc2, 0x8a, 0xbf, 0xfb, 0xf8, 0x46, 0x2e, 0xe7, 0x44, 0xf8,
        ];
        assert!(binding_matches(b"+rrCir/7+EYu50T4", &v));
        assert!(!binding_matches(b"+rrCir/7+EYu50T5", &v));
        assert!(!binding_matches(b"+rrCir/7+EYu", &v));
        assert!(!binding_matches(b"not base64!", &v));
        assert!(!binding_matches(b"", &[]));
    }
}
