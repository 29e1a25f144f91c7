//! One-time enrollment tokens (SEC-1, SEC-9) as operators make and list them, from the CLI or
//! the console: one way to create them, one way to name their state. The server's side
//! (single use at enrollment) is `Authority::authenticate_token` and `Store::consume_token`.
use std::time::Duration;

use zeroize::Zeroizing;

use crate::{CaError, TOKEN_REVOKED_BY, TokenRecord};

/// Token ids start with this, so that a token and an HTTP user cannot be confused.
pub const TOKEN_PREFIX: &str = "tok_";

impl TokenRecord {
    /// `unused`, `used`, `revoked` (by an operator) or `expired` at `now`.
    pub fn state(&self, now: i64) -> &'static str {
        match self.used_at {
            Some(_) if self.used_by == TOKEN_REVOKED_BY => "revoked",
            Some(_) => "used",
            None if self.expires_at <= now => "expired",
            None => "unused",
        }
    }

    /// The details of its `token.create` audit record.
    pub fn audit_details(&self) -> String {
        format!(
            "subject={}; expires_at={}",
            if self.subject.is_empty() {
                "any"
            } else {
                &self.subject
            },
            crate::fmt_time(self.expires_at)
        )
    }
}

/// A token lifetime as operators write it: seconds, or a number with `s`, `m`, `h` or `d`.
pub fn parse_lifetime(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| format!("invalid lifetime {s:?}"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("invalid lifetime unit in {s:?} (s, m, h or d)")),
    };
    if n == 0 {
        return Err("the lifetime must be positive".into());
    }
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

/// A subject a token binds: RFC 4514, written exactly as the server compares it.
pub fn check_token_subject(s: &str) -> Result<(), String> {
    let name = <x509_cert::name::Name as std::str::FromStr>::from_str(s)
        .map_err(|e| format!("invalid subject {s:?}: {e}"))?;
    if name.to_string() == s {
        Ok(())
    } else {
        Err(format!(
            "write the subject as {:?} (RFC 4514, as the server compares it)",
            name.to_string()
        ))
    }
}

/// A new token for `label` (and `subject`, `""`: any), valid from `now` for `lifetime`: the
/// record to store (the secret only as its SHA-256) and the secret, shown once.
pub fn new_token(
    label: &str,
    subject: &str,
    lifetime: Duration,
    now: i64,
) -> Result<(TokenRecord, Zeroizing<String>), CaError> {
    use base64::Engine;
    let mut id = [0u8; 8];
    openssl::rand::rand_bytes(&mut id)?;
    let mut secret = Zeroizing::new([0u8; 24]);
    openssl::rand::rand_bytes(secret.as_mut())?;
    let secret = Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*secret));
    let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
    let record = TokenRecord {
        id: format!("{TOKEN_PREFIX}{}", hex::encode(id)),
        label: label.to_owned(),
        secret_sha256: crate::token_secret_hash(secret.as_bytes()),
        subject: subject.to_owned(),
        created_at: now,
        expires_at: now.saturating_add(lifetime),
        used_at: None,
        used_by: String::new(),
    };
    Ok((record, secret))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_lifetime("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_lifetime("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_lifetime("7d").unwrap(), Duration::from_secs(604800));
        for bad in ["", "0", "5w", "h", "-1d", "0h"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn new_tokens_and_their_states() {
        let (t, secret) = new_token("devices", "", Duration::from_secs(60), 1_000).unwrap();
        assert!(t.id.starts_with(TOKEN_PREFIX) && t.id.len() == TOKEN_PREFIX.len() + 16);
        assert_eq!(t.secret_sha256, crate::token_secret_hash(secret.as_bytes()));
        assert_eq!((t.created_at, t.expires_at), (1_000, 1_060));
        assert_eq!(t.state(1_059), "unused");
        assert_eq!(t.state(1_060), "expired");
        let used = TokenRecord {
            used_at: Some(1_010),
            used_by: "user:x".into(),
            ..t.clone()
        };
        assert_eq!(used.state(2_000), "used");
        let revoked = TokenRecord {
            used_at: Some(1_010),
            used_by: TOKEN_REVOKED_BY.into(),
            ..t
        };
        assert_eq!(revoked.state(1_020), "revoked");
        assert!(check_token_subject("CN=a,O=b").is_ok());
        assert!(
            check_token_subject("CN=a, O=b")
                .unwrap_err()
                .contains("invalid subject")
        );
        assert!(
            check_token_subject("cn=a")
                .unwrap_err()
                .contains("write the subject as")
        );
    }
}
