//! HTTP credentials other than Basic passwords: users' Digest HA1 values (sealed at rest,
//! EST-42) and one-time enrollment tokens (SEC-1). The front end verifies the protocol; this
//! module only looks the secrets up and checks them against the store.
use zeroize::Zeroizing;

use crate::authority::{Authority, Identity};
use crate::clock::unix_secs;
use crate::{CaError, DigestSecrets, NamePolicy};

impl Authority {
    /// The Digest HA1 (lowercase hex) of `name` for `realm` and `algorithm` (RFC 7616 token),
    /// with the identity it authenticates. `Ok(None)` for an unknown user, a user without
    /// Digest secrets for this realm/algorithm, or no digest key: the caller answers all of
    /// them alike (SEC-17).
    pub async fn digest_ha1(
        &self,
        name: &str,
        realm: &str,
        algorithm: &str,
    ) -> Result<Option<(Zeroizing<String>, Identity)>, CaError> {
        let Some(sealer) = self.secret_box.as_deref() else {
            return Ok(None);
        };
        let Some(user) = self.store().get_user(name).await? else {
            return Ok(None);
        };
        if user.digest_secrets.is_empty() {
            return Ok(None);
        }
        let secrets = match DigestSecrets::open(sealer, &user.name, &user.digest_secrets) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(user = %user.name, error = %e, "cannot open the Digest secrets of a user");
                return Ok(None);
            }
        };
        if secrets.realm != realm {
            return Ok(None);
        }
        Ok(secrets.get(algorithm).map(|h| {
            (
                Zeroizing::new(h.to_owned()),
                Identity::User {
                    name: user.name.clone(),
                    names: NamePolicy::new(user.allowed_names.clone()),
                },
            )
        }))
    }

    /// Checks a one-time enrollment token presented on `label`: the secret (SHA-256, compared
    /// in constant time), the label, expiry and that it is unused. `Ok(None)` for any failure,
    /// alike (SEC-17). Does not consume it: [`Authority::enroll`] does, atomically.
    pub async fn authenticate_token(
        &self,
        id: &str,
        secret: &[u8],
        label: &str,
    ) -> Result<Option<Identity>, CaError> {
        let presented = crate::token_secret_hash(secret);
        let Some(t) = self.store().get_token(id).await? else {
            return Ok(None);
        };
        let secret_ok = t.secret_sha256.len() == presented.len()
            && openssl::memcmp::eq(t.secret_sha256.as_bytes(), presented.as_bytes());
        let now = unix_secs(self.clock().now());
        if !secret_ok || t.label != label || t.used_at.is_some() || t.expires_at <= now {
            return Ok(None);
        }
        Ok(Some(Identity::Token {
            id: t.id,
            subject: t.subject,
        }))
    }
}
