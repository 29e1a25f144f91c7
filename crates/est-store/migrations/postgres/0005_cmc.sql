-- Estuary store, PostgreSQL schema v5: CMC shared secrets and replay records. Keep in step
-- with ../sqlite/0005_cmc.sql (see there).
-- COLLATE "C": listings in byte order, as on SQLite.
CREATE TABLE cmc_secrets (
    ident      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    label      TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    sealed     BYTEA  NOT NULL,
    created_at BIGINT NOT NULL
);

-- The primary key is the arbiter between concurrent requests on every node sharing this
-- database: ON CONFLICT DO NOTHING lets exactly one insert the pair.
CREATE TABLE cmc_nonces (
    transaction_id TEXT COLLATE "C" NOT NULL,
    sender_nonce   BYTEA  NOT NULL,
    seen_at        BIGINT NOT NULL,
    PRIMARY KEY (transaction_id, sender_nonce)
);
CREATE INDEX cmc_nonces_seen_at ON cmc_nonces (seen_at);
