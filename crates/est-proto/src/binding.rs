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
