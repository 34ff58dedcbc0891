-- Autonomous calls: one statement with bound parameters in a worker, synchronous.
-- The Oracle patterns of docs/oracle-migration.md are the sections marked "pattern".

CREATE TABLE app_log(id bigserial, at timestamptz DEFAULT now(), level text, msg text);

-- results and command tags
SELECT * FROM pg_background_autonomous('SELECT $1::int + $2, upper($3)', 40, 2, 'x'::text)
  AS (sum int, up text);
SELECT * FROM pg_background_autonomous('SELECT g FROM generate_series(1, $1) g', 3) AS (g int);
SELECT pg_background_autonomous_exec('INSERT INTO app_log(level, msg) VALUES ($1, $2)', 'info', 'first');
SELECT pg_background_autonomous_exec('UPDATE app_log SET msg = msg WHERE level = $1', 'none');
SELECT * FROM pg_background_autonomous('SELECT count(*) FROM app_log') AS (n bigint);
SELECT pg_background_autonomous_exec('');
-- an untyped literal's type is inferred from the statement, as for an untyped Parse parameter
SELECT * FROM pg_background_autonomous('SELECT $1 + 1', '41') AS (r int);
SELECT * FROM pg_background_autonomous('SELECT $1 || ''!''', 'text') AS (r text);
-- VARIADIC array form; VARIADIC NULL binds nothing
SELECT * FROM pg_background_autonomous('SELECT $1 * $2', VARIADIC ARRAY[6, 7]) AS (r int);
SELECT pg_background_autonomous_exec('SELECT 1', VARIADIC NULL::int[]);

-- pattern: an autonomous log entry survives the caller's ROLLBACK
BEGIN;
INSERT INTO t VALUES (500);
SELECT pg_background_autonomous_exec('INSERT INTO app_log(level, msg) VALUES ($1, $2)',
                                     'info', 'kept after rollback');
ROLLBACK;
SELECT count(*) FROM t WHERE id = 500;
SELECT level, msg FROM app_log WHERE msg = 'kept after rollback';

-- pattern: the logging procedure (PRAGMA AUTONOMOUS_TRANSACTION in Oracle)
CREATE PROCEDURE log_msg(p_level text, p_msg text) LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_background_autonomous_exec(
    'INSERT INTO app_log(level, msg) VALUES ($1, $2)', p_level, p_msg);
END$$;
BEGIN;
CALL log_msg('warn', 'from a procedure');
ROLLBACK;
SELECT level, msg FROM app_log WHERE msg = 'from a procedure';

-- pattern: an audit trigger whose rows survive the audited transaction's rollback
CREATE TABLE accounts(id int PRIMARY KEY, balance numeric);
CREATE TABLE audit_trail(tab text, op text, level text, row_data jsonb);
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_background_autonomous_exec(
    'INSERT INTO audit_trail VALUES ($1, $2, $3, $4)',
    TG_TABLE_NAME::text, TG_OP, TG_LEVEL, to_jsonb(NEW));
  RETURN NEW;
END$$;
CREATE TRIGGER accounts_audit AFTER INSERT OR UPDATE ON accounts
  FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE FUNCTION audit_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_background_autonomous_exec(
    'INSERT INTO audit_trail(tab, op, level) VALUES ($1, $2, $3)', TG_TABLE_NAME::text, TG_OP, TG_LEVEL);
  RETURN NULL;
END$$;
CREATE TRIGGER accounts_audit_stmt AFTER DELETE ON accounts
  FOR EACH STATEMENT EXECUTE FUNCTION audit_statement();
BEGIN;
INSERT INTO accounts VALUES (1, 100), (2, 200);
UPDATE accounts SET balance = balance - 50 WHERE id = 1;
DELETE FROM accounts;
ROLLBACK;
SELECT count(*) FROM accounts;
SELECT tab, op, level, row_data FROM audit_trail ORDER BY op, row_data->>'id';

-- pattern: an error logger in an exception handler; the error still reaches the caller
CREATE TABLE error_log(sqlstate text, message text, context text);
CREATE FUNCTION transfer(amount numeric) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  st text; msg text; ctx text;
BEGIN
  PERFORM 100 / amount;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, ctx = PG_EXCEPTION_CONTEXT;
  PERFORM pg_background_autonomous_exec('INSERT INTO error_log VALUES ($1, $2, $3)', st, msg, ctx);
  RAISE;
END$$;
BEGIN;
SELECT transfer(0);
ROLLBACK;
SELECT sqlstate, message, context FROM error_log;

-- an error of the autonomous statement is raised in the caller with its SQLSTATE, and can be
-- caught; the caller's transaction goes on
DO $$
BEGIN
  PERFORM pg_background_autonomous_exec('INSERT INTO accounts VALUES ($1, $2)', 1, 'not a number');
EXCEPTION WHEN invalid_text_representation THEN
  RAISE NOTICE 'caught %: %', SQLSTATE, SQLERRM;
END$$;
DO $$
BEGIN
  PERFORM pg_background_autonomous_exec('INSERT INTO accounts VALUES ($1, 1), ($1, 2)', 7);
EXCEPTION WHEN unique_violation THEN
  RAISE NOTICE 'caught %', SQLSTATE;
END$$;
SELECT count(*) FROM accounts WHERE id = 7;

-- the worker sees only committed data: a row referencing the caller's uncommitted row fails
CREATE TABLE order_head(id int PRIMARY KEY);
CREATE TABLE order_audit(head_id int REFERENCES order_head);
BEGIN;
INSERT INTO order_head VALUES (1);
SELECT try_sql('SELECT pg_background_autonomous_exec(''INSERT INTO order_audit VALUES ($1)'', 1)');
ROLLBACK;

-- parameters never become SQL: injection attempts are stored verbatim
SELECT pg_background_autonomous_exec('INSERT INTO app_log(level, msg) VALUES ($1, $2)',
  'evil', $$x'); DROP TABLE app_log; --$$);
SELECT pg_background_autonomous_exec('INSERT INTO app_log(level, msg) VALUES ($1, $2)',
  'evil', '$1; DELETE FROM app_log');
SELECT msg FROM app_log WHERE level = 'evil' ORDER BY id;
SELECT count(*) > 0 AS app_log_intact FROM app_log;

-- parameters of many types round-trip exactly (binary where the type has a send function)
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE TYPE pair AS (a int, b text);
SET TimeZone = 'Asia/Kolkata';
CREATE TEMP TABLE samples AS SELECT
  NULL::text AS a_null, 12345678901234::int8 AS an_int8, 3.14159265358979323846::numeric AS a_numeric,
  'NaN'::numeric AS a_nan, 1.5e300::float8 AS a_float, '2024-02-29 23:59:59.123456+05:30'::timestamptz AS a_tstz,
  '2024-02-29 23:59:59.123456'::timestamp AS a_ts, '1 year 2 mons 3 days 04:05:06.7'::interval AS an_interval,
  '\x00ff10'::bytea AS a_bytea, ARRAY[[1, 2], [3, NULL]]::int[] AS an_array, ARRAY['a b', NULL, 'é']::text[] AS a_text_array,
  ROW(1, 'x y')::pair AS a_composite, ARRAY[ROW(2, NULL)::pair] AS a_composite_array,
  '{"k": [1, null, "v"]}'::jsonb AS a_jsonb, 'happy'::mood AS an_enum, 5 AS a_domain,
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS a_uuid, 'ünïcødé ✓'::text AS a_unicode, ''::text AS an_empty,
  '[1,5)'::int4range AS a_range, '192.168.0.1/24'::inet AS an_inet, true AS a_bool;
SELECT r.* IS NOT DISTINCT FROM s.* AS all_equal, r.*
  FROM samples s,
  LATERAL pg_background_autonomous(
    'SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22',
    s.a_null, s.an_int8, s.a_numeric, s.a_nan, s.a_float, s.a_tstz, s.a_ts, s.an_interval, s.a_bytea,
    s.an_array, s.a_text_array, s.a_composite, s.a_composite_array, s.a_jsonb, s.an_enum, s.a_domain::positive,
    s.a_uuid, s.a_unicode, s.an_empty, s.a_range, s.an_inet, s.a_bool)
  AS r(a_null text, an_int8 int8, a_numeric numeric, a_nan numeric, a_float float8, a_tstz timestamptz,
       a_ts timestamp, an_interval interval, a_bytea bytea, an_array int[], a_text_array text[],
       a_composite pair, a_composite_array pair[], a_jsonb jsonb, an_enum mood, a_domain int,
       a_uuid uuid, a_unicode text, an_empty text, a_range int4range, an_inet inet, a_bool bool);
RESET TimeZone;
-- (a domain comes back as its base type, as in any RowDescription)
-- a domain's constraint is checked when the worker binds the value
SELECT * FROM pg_background_autonomous('SELECT $1::text', 0::int::positive) AS (r text);

-- CALL: OUT and INOUT parameters come back as a row
CREATE PROCEDURE add_and_name(IN a int, INOUT b int, OUT label text) LANGUAGE plpgsql AS $$
BEGIN
  b := a + b;
  label := 'sum of ' || a;
END$$;
SELECT * FROM pg_background_autonomous('CALL add_and_name($1, $2, NULL)', 1, 41) AS (b int, label text);
-- a procedure that commits inside: allowed, the CALL being the worker's only statement
CREATE PROCEDURE batch_commit(n int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..n LOOP
    INSERT INTO app_log(level, msg) VALUES ('batch', 'row ' || i);
    COMMIT;
  END LOOP;
END$$;
SELECT pg_background_autonomous_exec('CALL batch_commit($1)', 3);
SELECT count(*) FROM app_log WHERE level = 'batch';
-- where PostgreSQL's atomic execution forbids it (a CALL inside a function), its own error says so
\set VERBOSITY terse
CREATE FUNCTION calls_batch() RETURNS void LANGUAGE plpgsql AS $$ BEGIN CALL batch_commit(1); END $$;
SELECT pg_background_autonomous_exec('SELECT calls_batch()');
\set VERBOSITY default

-- bad calls: clean errors with their SQLSTATEs, the session alive
SELECT try_sql($q$SELECT pg_background_autonomous_exec(NULL)$q$);
SELECT try_sql($q$SELECT pg_background_autonomous_exec(NULL, 1)$q$);
SELECT try_sql($q$SELECT pg_background_autonomous('SELECT 1')$q$);
SELECT try_sql($q$SELECT r FROM pg_background_autonomous('SELECT $1', ROW(1, 'a')) AS (r text)$q$);
SELECT try_sql($q$SELECT r FROM pg_background_autonomous('SELECT 1; SELECT $1', 1) AS (r int)$q$);
SELECT try_sql($q$SELECT r FROM pg_background_autonomous('SELECT $2', 1) AS (r int)$q$);
SELECT try_sql($q$SELECT r FROM pg_background_autonomous('SELECT pg_typeof($1)', 'lit') AS (r regtype)$q$);
SELECT try_sql($q$SELECT r FROM pg_background_autonomous('SELECT $1::int', 'x'::text) AS (r int)$q$);
SELECT try_sql($q$SELECT r FROM pg_background_autonomous('SELECT $1', 1) AS (r text)$q$);
SELECT try_sql($q$SELECT pg_background_autonomous_exec('BEGIN')$q$);
SELECT try_sql($q$SELECT pg_background_autonomous_exec('COPY t TO STDOUT')$q$);
SELECT try_sql($q$SELECT pg_background_autonomous_exec('SELECT 1', VARIADIC (SELECT array_agg(g) FROM generate_series(1, 70000) g))$q$);
-- NULL of an untyped literal: typed by the statement
SELECT * FROM pg_background_autonomous('SELECT $1', NULL) AS (r text);
-- and the session is fine afterwards
SELECT * FROM pg_background_autonomous('SELECT $1', 'ok'::text) AS (r text);
SELECT count(*) AS tracked FROM pg_background_list;
