-- Estuary store, SQLite schema v8: the admin console (issue 11, item 1). Keep in step with
-- ../postgres/0008_console.sql.
--
-- Console administrators: argon2id PHC hash of the password, the TOTP secret (RFC 6238) sealed
-- by the server's SecretBox, and the last TOTP time step accepted (a code is good once: the
-- conditional UPDATE that raises it decides, on every node).
CREATE TABLE admins (
    name           TEXT    NOT NULL PRIMARY KEY,
    password_hash  TEXT    NOT NULL,
    totp_sealed    BLOB    NOT NULL,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

-- Where a held request came from (the peer address), for the operator who approves it; and
-- the operator's reason for a decision, which a rejected client is told.
ALTER TABLE pending_requests ADD COLUMN client_addr TEXT NOT NULL DEFAULT '';
ALTER TABLE pending_requests ADD COLUMN reason TEXT NOT NULL DEFAULT '';

-- The EST label a certificate was requested on (console search; '' before v8 and for
-- certificates issued at setup).
ALTER TABLE certificates ADD COLUMN label TEXT NOT NULL DEFAULT '';

-- The dashboard's "expiring soon": a range count on not_after (issued roughly in order, so the
-- index grows at its end).
CREATE INDEX certificates_not_after ON certificates (not_after);
