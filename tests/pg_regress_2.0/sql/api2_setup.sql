-- The version with the C extension's 2.0 API: its SQL surface and behaviour.
-- It is the version of the same release with the suffix -api2.
SELECT default_version || '-api2' AS version FROM pg_available_extensions
 WHERE name = 'pg_background' \gset
SELECT :'version' IN (SELECT version FROM pg_available_extension_versions
                       WHERE name = 'pg_background') AS available;
CREATE EXTENSION pg_background VERSION :'version';
SELECT extversion = :'version' AS installed FROM pg_extension WHERE extname = 'pg_background';

CREATE TABLE t2(id int NOT NULL CONSTRAINT t2_positive CHECK (id > 0));

-- Outcome of any statement: 'ok: <first column>' or 'ERROR <sqlstate>: <message>'.
CREATE FUNCTION try_sql(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE v text; st text; msg text;
BEGIN
  EXECUTE sql INTO v;
  RETURN 'ok: ' || coalesce(v, '(null)');
EXCEPTION WHEN OTHERS OR query_canceled THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
  RETURN 'ERROR ' || st || ': ' || regexp_replace(msg, 'PID "?\d+"?', 'PID N', 'g');
END$$;

-- Wait (bounded) until a condition holds.
CREATE FUNCTION wait_until(cond text, timeout_ms int DEFAULT 10000)
RETURNS bool LANGUAGE plpgsql AS $$
DECLARE ok bool;
BEGIN
  FOR i IN 1..greatest(timeout_ms / 10, 1) LOOP
    EXECUTE 'SELECT ' || cond INTO ok;
    IF ok THEN RETURN true; END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN false;
END$$;
