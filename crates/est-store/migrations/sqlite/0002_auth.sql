-- Estuary store, SQLite schema v2: authentication. Keep in step with ../postgres/0002_auth.sql.

-- HTTP Digest HA1 values of a user, sealed with AES-256-GCM under a key derived from the
-- server secret (never a password or a clear HA1); empty when the user has none.
ALTER TABLE users ADD COLUMN digest_secrets BLOB NOT NULL DEFAULT x'';
