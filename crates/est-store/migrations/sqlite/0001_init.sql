-- Estuary store, SQLite schema v1.
-- Times are unix seconds in INTEGER (64-bit); booleans would be integers too (BOOLEAN does not
-- survive the sqlx Any driver on SQLite). Keep this file in step with ../postgres/0001_init.sql.

-- Every issued certificate. A rowid table: the serial PRIMARY KEY is a separate unique index,
-- and secondary indexes point at the 8-byte rowid instead of repeating the 40-character serial.
CREATE TABLE certificates (
    serial      TEXT    NOT NULL PRIMARY KEY,
    ca          TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    issuer      TEXT    NOT NULL,
    ski         TEXT    NOT NULL,
    spki_sha256 TEXT    NOT NULL,
    requester   TEXT    NOT NULL,
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    issued_at   INTEGER NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('valid', 'revoked')),
    der         BLOB    NOT NULL
);

-- One index per lookup the Store trait does, each ending in issued_at so that "newest first"
-- with a LIMIT is an index range scan read backwards, never a sort of the whole table.
CREATE INDEX certificates_ski ON certificates (ski, issued_at);
CREATE INDEX certificates_requester_subject ON certificates (requester, subject, issued_at);
CREATE INDEX certificates_subject ON certificates (subject, issued_at);
CREATE INDEX certificates_ca ON certificates (ca, issued_at);
CREATE INDEX certificates_issued_at ON certificates (issued_at);

-- A maintained row count: COUNT(*) is a full index scan on both backends, and the trait
-- promises O(log n) operations. Only the store's writers insert certificates, and each of their
-- transactions adds what it inserted here.
CREATE TABLE store_meta (
    id                INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    certificate_count INTEGER NOT NULL
);
INSERT INTO store_meta (id, certificate_count) VALUES (1, 0);

-- HTTP users. allowed_names is a JSON array of strings; password_hash a PHC string (secret).
CREATE TABLE users (
    name          TEXT    NOT NULL PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    allowed_names TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);
