-- Estuary store, PostgreSQL schema v1. Keep this file in step with ../sqlite/0001_init.sql.
-- Times are unix seconds in BIGINT, bytes in BYTEA; no BOOLEAN columns (the sqlx Any driver
-- cannot carry them on SQLite, and both backends must decode the same rows).

-- Hex columns use the "C" collation: comparisons are plain byte comparisons (cheaper than a
-- locale collation), and ORDER BY serial gives the same order as SQLite's BINARY collation.
CREATE TABLE certificates (
    serial      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    ca          TEXT   NOT NULL,
    subject     TEXT   NOT NULL,
    issuer      TEXT   NOT NULL,
    ski         TEXT COLLATE "C" NOT NULL,
    spki_sha256 TEXT COLLATE "C" NOT NULL,
    requester   TEXT   NOT NULL,
    not_before  BIGINT NOT NULL,
    not_after   BIGINT NOT NULL,
    issued_at   BIGINT NOT NULL,
    status      TEXT   NOT NULL CHECK (status IN ('valid', 'revoked')),
    der         BYTEA  NOT NULL
);

-- One index per lookup the Store trait does, each ending in issued_at so that "newest first"
-- with a LIMIT is an index range scan read backwards, never a sort of the whole table.
CREATE INDEX certificates_ski ON certificates (ski, issued_at);
CREATE INDEX certificates_requester_subject ON certificates (requester, subject, issued_at);
CREATE INDEX certificates_subject ON certificates (subject, issued_at);
CREATE INDEX certificates_ca ON certificates (ca, issued_at);
CREATE INDEX certificates_issued_at ON certificates (issued_at);

-- A maintained row count: COUNT(*) is a full scan on PostgreSQL, and the trait promises
-- O(log n) operations. Each writer transaction adds what it inserted here.
CREATE TABLE store_meta (
    id                INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    certificate_count BIGINT  NOT NULL
);
INSERT INTO store_meta (id, certificate_count) VALUES (1, 0);

-- HTTP users. allowed_names is a JSON array of strings; password_hash a PHC string (secret).
CREATE TABLE users (
    name          TEXT   NOT NULL PRIMARY KEY,
    password_hash TEXT   NOT NULL,
    allowed_names TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);
