-- Estuary store, PostgreSQL schema v7: the hash-chained audit trail (issue 11, item 4). Keep in
-- step with ../sqlite/0007_audit.sql (see there). Appenders on every node take the
-- transaction-scoped advisory lock est-store's audit module names before they read the head,
-- so the chain stays linear.
CREATE TABLE audit_log (
    seq       BIGINT NOT NULL PRIMARY KEY,
    prev_hash TEXT   NOT NULL,
    hash      TEXT   NOT NULL,
    at        BIGINT NOT NULL,
    actor     TEXT   NOT NULL,
    source    TEXT   NOT NULL,
    action    TEXT   NOT NULL,
    target    TEXT   NOT NULL,
    label     TEXT   NOT NULL,
    details   TEXT   NOT NULL
);
