use x509_cert::serial_number::SerialNumber;

/// A random, positive serial number with 126 bits of entropy: 16 random bytes with the top bit
/// cleared (positive) and the first byte non-zero (so its DER encoding is always 16 octets).
/// Uniqueness is enforced by the store's constraint, not assumed.
pub fn random_serial() -> Result<(SerialNumber, String), crate::CaError> {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b)?;
    b[0] &= 0x7f;
    if b[0] == 0 {
        b[0] = 0x01;
    }
    let serial = SerialNumber::new(&b)?;
    Ok((serial, hex::encode(b)))
}

/// Lowercase hex of a serial number's magnitude (leading zero sign octet dropped), the form used
/// as the store key.
pub(crate) fn serial_hex(s: &SerialNumber) -> String {
    let b = s.as_bytes();
    let b = match b {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => b,
    };
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_distinct_and_16_octets() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let (s, h) = random_serial().unwrap();
            assert_eq!(s.as_bytes().len(), 16);
            assert!(s.as_bytes()[0] & 0x80 == 0 && s.as_bytes()[0] != 0);
            assert_eq!(serial_hex(&s), h);
            assert!(seen.insert(h));
        }
    }
}
