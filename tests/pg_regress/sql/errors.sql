-- Errors and notices of the worker, relayed to the caller.

-- an error keeps its SQLSTATE; the context line appears once (fixed: twice in the C extension)
SELECT run('SELECT 1/0', 'r int');
SELECT run('INSERT INTO t VALUES (6); SELECT 1/0', 'r int');
SELECT count(*) AS rolled_back FROM t WHERE id = 6;
-- the worker's own context lines come first
SELECT run('DO $$BEGIN RAISE EXCEPTION ''boom'' USING DETAIL = ''d'', HINT = ''h'', ERRCODE = ''22023''; END$$');
-- a SQLSTATE the server does not predefine is the worker's own, not XX000
SELECT run('DO $$BEGIN RAISE EXCEPTION ''boom'' USING ERRCODE = ''P0042''; END$$');
SELECT run('DO $$BEGIN RAISE EXCEPTION ''custom'' USING ERRCODE = ''U0001'', HINT = ''h''; END$$');
DO $$
BEGIN
  PERFORM * FROM pg_background_result(pg_background_launch(
    'DO $j$BEGIN RAISE EXCEPTION ''boom'' USING ERRCODE = ''P0042''; END$j$')) AS (r int);
EXCEPTION WHEN SQLSTATE 'P0042' THEN
  RAISE NOTICE 'caught %', SQLSTATE;
END$$;
-- a syntax error carries the job's SQL as internal query
SELECT run('SELEC 1');
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT * FROM pg_background_result(pg_background_launch('SELECT 1 +* 2')) AS (r int);
\set SHOW_CONTEXT errors

-- catchable by condition name in PL/pgSQL
DO $$
BEGIN
  PERFORM * FROM pg_background_result(pg_background_launch('SELECT 1/0')) AS (r int);
EXCEPTION WHEN division_by_zero THEN
  RAISE NOTICE 'caught %', SQLSTATE;
END$$;

-- notices and warnings are relayed at their level; they are not failures
SELECT run('DO $$BEGIN RAISE NOTICE ''hi''; RAISE WARNING ''w''; END$$');
SET client_min_messages = warning;
SELECT run('DO $$BEGIN RAISE NOTICE ''not shown''; RAISE WARNING ''shown''; END$$');
RESET client_min_messages;

-- non-ASCII text survives a non-UTF8 client encoding
SET client_encoding = 'LATIN1';
SELECT convert_to(run('DO $$BEGIN RAISE EXCEPTION ''é''; END$$'), 'LATIN1') AS latin1_bytes;
RESET client_encoding;

-- refused statements
SELECT run('BEGIN; INSERT INTO t VALUES (5); COMMIT');
SELECT count(*) AS not_inserted FROM t WHERE id = 5;
SELECT run('SAVEPOINT a');
SELECT run('COMMIT');
SELECT run('COPY (SELECT 1) TO STDOUT');
SELECT run('COPY t FROM STDIN');
SELECT run('LISTEN c');

-- utility commands that cannot run in a function run as a single statement
SELECT run('VACUUM t');
SELECT run('VACUUM t; SELECT 1');
SELECT run('CREATE INDEX CONCURRENTLY t_id2 ON t(id); SELECT 1');

-- timeouts: pg_background.worker_timeout, else the inherited statement_timeout
SET pg_background.worker_timeout = '100ms';
SELECT pg_background_launch('SELECT pg_sleep(10)::text') AS pid \gset
RESET pg_background.worker_timeout;
SELECT read_outcome(:pid);
SET statement_timeout = '100ms';
SELECT pg_background_launch('SELECT pg_sleep(10)::text') AS pid \gset
RESET statement_timeout;
SELECT read_outcome(:pid);

-- a deferred constraint failing at the worker's commit
CREATE TABLE parent(id int PRIMARY KEY);
CREATE TABLE child(pid int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
SELECT run('INSERT INTO child VALUES (1)');
