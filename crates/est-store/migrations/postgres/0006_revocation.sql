-- Estuary store, PostgreSQL schema v6: revocation details and CRL numbers (RFC 5280 §5). Keep
-- in step with ../sqlite/0006_revocation.sql (see there for the columns).
-- Constant defaults: PostgreSQL 11+ adds these columns without rewriting the table.
ALTER TABLE certificates ADD COLUMN revoked_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE certificates ADD COLUMN revocation_reason BIGINT NOT NULL DEFAULT 0;
ALTER TABLE certificates ADD COLUMN invalidity_date BIGINT NOT NULL DEFAULT 0;

UPDATE certificates SET revoked_at = CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)
    WHERE status = 'revoked';

CREATE INDEX certificates_revoked
    ON certificates (ca, revoked_at, serial, revocation_reason, invalidity_date)
    WHERE status = 'revoked';

-- One row per CA; `INSERT ... ON CONFLICT DO UPDATE` takes the row lock, so concurrent
-- increments from every node sharing the database serialize and never repeat a number.
CREATE TABLE crl_state (
    ca         TEXT   NOT NULL PRIMARY KEY,
    crl_number BIGINT NOT NULL
);
