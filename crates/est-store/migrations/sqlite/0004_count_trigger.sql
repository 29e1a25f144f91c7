-- Estuary store, SQLite schema v4: the certificate count kept by a trigger. Keep in step with
-- ../postgres/0004_count_trigger.sql.
--
-- Every insert into certificates adds one to store_meta inside the inserting statement, so an
-- INSERT on its own (one autocommit statement, one round trip to the database) keeps the count
-- exact; the group-commit writer needs no explicit transaction and no second statement.
-- (SQLite has only row-level triggers; the update hits one cached page.)
CREATE TRIGGER certificates_counted AFTER INSERT ON certificates
BEGIN
    UPDATE store_meta SET certificate_count = certificate_count + 1 WHERE id = 1;
END;
