-- Estuary store, SQLite schema v6: revocation details and CRL numbers (RFC 5280 §5). Keep in
-- step with ../postgres/0006_revocation.sql.
--
-- revoked_at:        revocationDate, unix seconds; 0 = not revoked.
-- revocation_reason: CRLReason code (RFC 5280 §5.3.1); 0 (unspecified) when not revoked.
-- invalidity_date:   invalidityDate (§5.3.2), unix seconds; 0 = none.
-- Constant defaults: SQLite adds these columns without rewriting the table.
ALTER TABLE certificates ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE certificates ADD COLUMN revocation_reason INTEGER NOT NULL DEFAULT 0;
ALTER TABLE certificates ADD COLUMN invalidity_date INTEGER NOT NULL DEFAULT 0;

-- Certificates revoked before this version have no recorded time: they get the time of the
-- upgrade, so that they appear on the CRL (reason unspecified). A one-time scan.
UPDATE certificates SET revoked_at = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE status = 'revoked';

-- The CRL of a CA reads its revoked certificates only: a partial index holding nothing but
-- them, covering every column a CRL entry needs, in CRL order. Queries must say
-- `status = 'revoked'` literally for SQLite to use it.
CREATE INDEX certificates_revoked
    ON certificates (ca, revoked_at, serial, revocation_reason, invalidity_date)
    WHERE status = 'revoked';

-- The last CRL number issued per CA (RFC 5280 §5.2.3), incremented by one upsert statement.
CREATE TABLE crl_state (
    ca         TEXT    NOT NULL PRIMARY KEY,
    crl_number INTEGER NOT NULL
) WITHOUT ROWID;
