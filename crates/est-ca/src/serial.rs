use std::time::{SystemTime, UNIX_EPOCH};

use x509_cert::serial_number::SerialNumber;

/// A new certificate serial number: 16 octets, positive, unique in practice, with 80 bits from
/// the CSPRNG.
///
/// Layout: the issuing time in milliseconds since the Unix epoch as a 48-bit big-endian number
/// (octets 0-5), then 10 random octets. The random part alone exceeds the 64 bits of CSPRNG
/// output that RFC 5280 §4.1.2.2 deployments and the CA/Browser Forum require, so serials stay
/// unpredictable and non-sequential. The time prefix keeps new serials in ascending order, so
/// the store's unique index on the serial is appended to instead of updated at a random page
/// per certificate: with a million certificates stored, random serials made every issuance
/// write a cold index page (docs/performance.md). The first octet is 0x01 from 2004 to 2039
/// and stays within 0x01..=0x7f until the year 6429, so the DER INTEGER is always 16 octets,
/// positive, with no leading zero octet.
///
/// Uniqueness is enforced by the store's constraint, not assumed.
pub fn new_serial(now: SystemTime) -> Result<(SerialNumber, String), crate::CaError> {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b[6..])?;
    let ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    // 47 bits of milliseconds (top bit clear: positive); at least 1 in the first octet.
    let ms = ms.clamp(1 << 40, (1 << 47) - 1);
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    let serial = SerialNumber::new(&b)?;
    Ok((serial, hex::encode(b)))
}

/// Lowercase hex of a serial number's magnitude (leading zero sign octet dropped), the form used
/// as the store key.
/// The store form of a serial number: lowercase hex of the INTEGER content without a leading
/// sign octet.
pub fn serial_hex(s: &SerialNumber) -> String {
    let b = s.as_bytes();
    let b = match b {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => b,
    };
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn serials_are_positive_distinct_and_16_octets() {
        let mut seen = std::collections::HashSet::new();
        let now = SystemTime::now();
        for _ in 0..1000 {
            let (s, h) = new_serial(now).unwrap();
            assert_eq!(s.as_bytes().len(), 16);
            assert!(s.as_bytes()[0] & 0x80 == 0 && s.as_bytes()[0] != 0);
            assert_eq!(serial_hex(&s), h);
            assert!(seen.insert(h));
        }
    }

    /// 80 random bits per serial: among serials issued in the same millisecond, every one of
    /// the last 10 octets takes many values, and the random parts never repeat.
    #[test]
    fn serials_of_one_instant_differ_in_their_random_octets() {
        let now = SystemTime::now();
        let serials: Vec<Vec<u8>> = (0..512)
            .map(|_| new_serial(now).unwrap().0.as_bytes().to_vec())
            .collect();
        let prefix = &serials[0][..6];
        assert!(serials.iter().all(|s| &s[..6] == prefix));
        for octet in 6..16 {
            let values: std::collections::HashSet<u8> = serials.iter().map(|s| s[octet]).collect();
            assert!(values.len() > 200, "octet {octet}: {} values", values.len());
        }
    }

    /// Later serials sort after earlier ones, as stored (hex) and as integers.
    #[test]
    fn serials_ascend_with_time() {
        let t0 = SystemTime::now();
        let (a, ha) = new_serial(t0).unwrap();
        let (b, hb) = new_serial(t0 + Duration::from_millis(1)).unwrap();
        assert!(ha < hb);
        assert!(a.as_bytes() < b.as_bytes());
        // A clock before 2004 or at the epoch still gives a positive, 16-octet serial.
        let (old, _) = new_serial(UNIX_EPOCH).unwrap();
        assert_eq!(old.as_bytes().len(), 16);
        assert_eq!(old.as_bytes()[0], 0x01);
    }
}
