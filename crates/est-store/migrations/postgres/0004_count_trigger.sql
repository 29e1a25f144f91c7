-- Estuary store, PostgreSQL schema v4: the certificate count kept by a trigger. Keep in step
-- with ../sqlite/0004_count_trigger.sql.
--
-- One statement-level trigger per INSERT adds the number of rows it actually inserted (the
-- transition table holds no row skipped by ON CONFLICT DO NOTHING), inside the inserting
-- statement: a lone INSERT keeps the count exact, and a batch updates store_meta once.
CREATE FUNCTION estuary_count_certificates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE store_meta SET certificate_count = certificate_count + (SELECT count(*) FROM inserted)
        WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER certificates_counted AFTER INSERT ON certificates
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION estuary_count_certificates();

-- Upgrading several nodes: a node still running an earlier version adds its inserts to the
-- count itself as well, so stop or upgrade every node before this migration runs; the count
-- serves listings and statistics only, never issuance decisions.
