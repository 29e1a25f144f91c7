-- Estuary store, SQLite schema v7: the hash-chained audit trail (issue 11, item 4). Keep in
-- step with ../postgres/0007_audit.sql.
--
-- One row per est_ca::AuditRecord. seq is consecutive from 1; hash is the SHA-256 (hex) of the
-- record's canonical encoding (est_ca::AuditRecord::canonical_bytes), which includes prev_hash,
-- the hash of record seq - 1 (64 zeros for the first). Rows are only ever appended: an edited,
-- removed or reordered row is found by `estuary audit verify`.
-- at: unix seconds.
CREATE TABLE audit_log (
    seq       INTEGER NOT NULL PRIMARY KEY,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    source    TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    label     TEXT    NOT NULL,
    details   TEXT    NOT NULL
);
