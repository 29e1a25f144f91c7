-- Estuary store, SQLite schema v5: CMC shared secrets and replay records. Keep in step with
-- ../postgres/0005_cmc.sql.

-- Shared secrets for CMC (RFC 5272 §6.2, §6.3, §3.2), named by the Identification value a
-- client sends (CMC-46). `sealed` is AES-256-GCM ciphertext made by the authority, bound to the
-- ident: the store never holds a secret in the clear. label '' = any label, subject '' = none.
CREATE TABLE cmc_secrets (
    ident      TEXT    NOT NULL PRIMARY KEY,
    label      TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    sealed     BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Replay protection (CMC-53): every (transactionId, senderNonce) pair seen, transaction_id the
-- decimal INTEGER ('' when absent). The primary key decides "new or replayed" in one
-- INSERT ... ON CONFLICT DO NOTHING; seen_at serves pruning past the replay window.
CREATE TABLE cmc_nonces (
    transaction_id TEXT    NOT NULL,
    sender_nonce   BLOB    NOT NULL,
    seen_at        INTEGER NOT NULL,
    PRIMARY KEY (transaction_id, sender_nonce)
) WITHOUT ROWID;
CREATE INDEX cmc_nonces_seen_at ON cmc_nonces (seen_at);
