-- Estuary store, SQLite schema v3: authentication. Keep in step with ../postgres/0003_auth.sql.

-- HTTP Digest HA1 values of a user, sealed with AES-256-GCM under a key derived from the
-- server secret (never a password or a clear HA1); empty when the user has none.
ALTER TABLE users ADD COLUMN digest_secrets BLOB NOT NULL DEFAULT x'';

-- One-time enrollment tokens: the id is the Basic user name; only the SHA-256 of the random
-- secret is stored. used_at is NULL until the one use, which a conditional UPDATE
-- (... WHERE used_at IS NULL) makes atomic.
CREATE TABLE enrollment_tokens (
    id            TEXT    NOT NULL PRIMARY KEY,
    label         TEXT    NOT NULL,
    secret_sha256 TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER,
    used_by       TEXT    NOT NULL
);

-- Certification requests held for manual approval (EST-49, EST-91, EST-92). A retry is
-- recognised by match_key = SHA-256(requester, label, SHA-256 of the SPKI, subject), not by
-- the CSR bytes (its challengePassword changes with every connection).
CREATE TABLE pending_requests (
    id          TEXT    NOT NULL PRIMARY KEY,
    match_key   TEXT    NOT NULL UNIQUE,
    label       TEXT    NOT NULL,
    requester   TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    spki_sha256 TEXT    NOT NULL,
    csr         BLOB    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'issuing', 'issued')),
    created_at  INTEGER NOT NULL,
    decided_at  INTEGER NOT NULL,
    serial      TEXT    NOT NULL
);
CREATE INDEX pending_requests_status ON pending_requests (status, created_at);
