-- Client keys registered for encrypted delivery of server-generated keys (RFC 7030 §4.4):
-- key-encryption keys (kind 'kek', named by a DecryptKeyIdentifier) and recipient certificates
-- (kind 'recipient', named by their SubjectKeyIdentifier). `sealed` is AES-256-GCM ciphertext
-- made by the authority: the store never holds these secrets in the clear.
-- Keep this file in step with ../postgres/0002_client_keys.sql.
CREATE TABLE client_keys (
    owner      TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('kek', 'recipient')),
    key_id     BLOB    NOT NULL,
    sealed     BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (owner, kind, key_id)
);
