-- Client keys registered for encrypted delivery of server-generated keys (RFC 7030 §4.4).
-- Keep this file in step with ../sqlite/0002_client_keys.sql (see there).
CREATE TABLE client_keys (
    owner      TEXT COLLATE "C" NOT NULL,
    kind       TEXT   NOT NULL CHECK (kind IN ('kek', 'recipient')),
    key_id     BYTEA  NOT NULL,
    sealed     BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (owner, kind, key_id)
);
