//! Administrators of the web console (issue 11 item 1): a password (argon2id PHC hash at rest)
//! and a second factor, TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps from the Unix epoch,
//! the parameters every authenticator app takes from an `otpauth://` URI). The TOTP secret is
//! kept only sealed by the server's [`SecretBox`]; a code is accepted once (the store's
//! conditional [`Store::claim_totp_step`] decides, on every node).
use zeroize::Zeroizing;

use crate::password::{PasswordHasher, PasswordVerifier};
use crate::{AdminRecord, CaError, SecretBox, Store};

/// RFC 6238 time step, seconds.
pub const TOTP_PERIOD: u64 = 30;
/// Digits of a code.
pub const TOTP_DIGITS: u32 = 6;
/// Steps either side of the current one a code may come from (clock skew, a code typed at the
/// end of its step): RFC 6238 §5.2 recommends at most one.
pub const TOTP_SKEW_STEPS: i64 = 1;
/// Bytes of a generated TOTP secret (RFC 4226 §4 asks for at least 128 bits; 160 is SHA-1's
/// block-friendly length that authenticator apps expect).
pub const TOTP_SECRET_LEN: usize = 20;
/// Shortest console password accepted when an administrator is created.
pub const ADMIN_PASSWORD_MIN_LEN: usize = 12;

fn seal_context(name: &str) -> Vec<u8> {
    format!("admin-totp:{name}").into_bytes()
}

/// The RFC 6238 code of `secret` at time step `step` (RFC 4226 §5.3 dynamic truncation).
pub fn totp_code(secret: &[u8], step: u64) -> Result<u32, CaError> {
    let key = openssl::pkey::PKey::hmac(secret)?;
    let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha1(), &key)?;
    signer.update(&step.to_be_bytes())?;
    let mac = Zeroizing::new(signer.sign_to_vec()?);
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let bytes: [u8; 4] = mac
        .get(offset..offset + 4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| CaError::Internal("HMAC-SHA-1 output too short".into()))?;
    Ok((u32::from_be_bytes(bytes) & 0x7fff_ffff) % 10u32.pow(TOTP_DIGITS))
}

/// The time step of unix time `now`.
pub fn totp_step(now: i64) -> i64 {
    now.max(0) / TOTP_PERIOD as i64
}

/// RFC 4648 base32 without padding: how authenticator apps take a secret.
pub fn base32(bytes: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(bytes)
}

/// The Key URI an authenticator app scans or imports (the de-facto `otpauth://` format).
pub fn otpauth_uri(issuer: &str, name: &str, secret_b32: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_PERIOD}",
        enc(issuer),
        enc(name),
        enc(issuer)
    )
}

/// Checks an administrator name: 1..=64 of `A-Za-z0-9._-@`.
pub fn check_admin_name(name: &str) -> Result<(), CaError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CaError::InvalidSecret(format!(
            "administrator name {name:?}: 1 to 64 of A-Z a-z 0-9 . _ - @"
        )))
    }
}

/// A new administrator: its record (to store) and its TOTP secret in base32 (shown once).
pub struct NewAdmin {
    pub record: AdminRecord,
    pub totp_secret_b32: Zeroizing<String>,
}

impl std::fmt::Debug for NewAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAdmin")
            .field("name", &self.record.name)
            .finish_non_exhaustive()
    }
}

/// Creates and stores an administrator with a fresh TOTP secret.
pub async fn add_admin(
    store: &dyn Store,
    sealer: &SecretBox,
    name: &str,
    password: &[u8],
    now: i64,
) -> Result<NewAdmin, CaError> {
    check_admin_name(name)?;
    if password.len() < ADMIN_PASSWORD_MIN_LEN {
        return Err(CaError::InvalidSecret(format!(
            "an administrator password has at least {ADMIN_PASSWORD_MIN_LEN} characters"
        )));
    }
    let mut secret = Zeroizing::new(vec![0u8; TOTP_SECRET_LEN]);
    openssl::rand::rand_bytes(&mut secret)?;
    let record = AdminRecord {
        name: name.to_owned(),
        password_hash: PasswordHasher::hash(password)?,
        totp_sealed: sealer.seal(&seal_context(name), &secret)?,
        totp_last_step: 0,
        created_at: now,
    };
    store.add_admin(&record).await?;
    Ok(NewAdmin {
        record,
        totp_secret_b32: Zeroizing::new(base32(&secret)),
    })
}

/// Why a console login failed (the page says only "wrong credentials"; the log says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// No such administrator, or a wrong password (told apart only in the log).
    UnknownOrBadPassword,
    /// The password was right, the code wrong or outside the accepted steps.
    BadCode,
    /// The code was right but already used.
    ReplayedCode,
}

/// Checks a console login: the password (argon2id; a dummy verification for unknown names,
/// SEC-17), then the TOTP code against the steps around `now`, each code once.
pub async fn check_login(
    store: &dyn Store,
    sealer: &SecretBox,
    verifier: &PasswordVerifier,
    name: &str,
    password: &[u8],
    code: &str,
    now: i64,
) -> Result<Result<AdminRecord, LoginRefusal>, CaError> {
    let admin = store.get_admin(name).await?;
    let phc = admin.as_ref().map(|a| a.password_hash.as_str());
    // The password verifier's cache is keyed by name, hash and password, so a changed
    // password or a re-created administrator misses it.
    if !verifier.verify(&format!("admin:{name}"), phc, password)? {
        return Ok(Err(LoginRefusal::UnknownOrBadPassword));
    }
    let Some(admin) = admin else {
        return Ok(Err(LoginRefusal::UnknownOrBadPassword));
    };
    let code = code.trim();
    if code.len() != TOTP_DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Err(LoginRefusal::BadCode));
    }
    let secret = sealer.open(&seal_context(&admin.name), &admin.totp_sealed)?;
    let current = totp_step(now);
    let mut matched = None;
    for step in current - TOTP_SKEW_STEPS..=current + TOTP_SKEW_STEPS {
        let Ok(s) = u64::try_from(step) else { continue };
        let expected = format!(
            "{:0width$}",
            totp_code(&secret, s)?,
            width = TOTP_DIGITS as usize
        );
        // Every candidate is compared, in constant time, whatever matched before.
        if openssl::memcmp::eq(expected.as_bytes(), code.as_bytes()) {
            matched = Some(step);
        }
    }
    let Some(step) = matched else {
        return Ok(Err(LoginRefusal::BadCode));
    };
    if !store.claim_totp_step(&admin.name, step).await? {
        return Ok(Err(LoginRefusal::ReplayedCode));
    }
    Ok(Ok(admin))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits there; the 6-digit codes are the last six).
    #[test]
    fn rfc6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, code8) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(
                totp_code(secret, t / TOTP_PERIOD).unwrap(),
                code8 % 1_000_000,
                "T={t}"
            );
        }
    }

    #[test]
    fn base32_and_uri() {
        // RFC 4648 §10.
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        let uri = otpauth_uri("Estuary ca1", "alice@example", "MZXW6YTBOI");
        assert_eq!(
            uri,
            "otpauth://totp/Estuary%20ca1:alice%40example?secret=MZXW6YTBOI&issuer=Estuary%20ca1&algorithm=SHA1&digits=6&period=30"
        );
        assert!(check_admin_name("ops.alice-1@x").is_ok());
        assert!(check_admin_name("a b").is_err());
        assert!(check_admin_name("").is_err());
    }
}
