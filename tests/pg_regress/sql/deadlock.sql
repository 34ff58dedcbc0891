-- Deadlock between a session and its own job: the session waits for the job while the job
-- waits for the session's lock. Detected after deadlock_timeout with 40P01 (the C extension
-- waited forever).
CREATE TABLE dl(v int);
INSERT INTO dl VALUES (1), (2);
SET deadlock_timeout = '100ms';

-- a table lock the caller holds, while it reads the result
BEGIN;
LOCK TABLE dl IN ACCESS EXCLUSIVE MODE;
SELECT try_sql('SELECT r::text FROM pg_background_result(pg_background_launch(''SELECT count(*) FROM dl'')) AS (r bigint)');
ROLLBACK;

-- a row lock, with the full message; the job was detached by the error and goes on once the
-- caller's transaction has ended
BEGIN;
UPDATE dl SET v = v WHERE v = 1;
SELECT pg_background_launch('UPDATE dl SET v = 11 WHERE v = 1') AS pid \gset
\set VERBOSITY default
SELECT regexp_replace(read_outcome(:pid), '(rocess|worker) \d+', '\1 N', 'g') AS outcome;
ROLLBACK;
SELECT wait_until('EXISTS (SELECT FROM dl WHERE v = 11)');

-- CREATE INDEX CONCURRENTLY waits for the caller's open transaction; here the caller waits with
-- wait_v2, which does not consume: once the caller's transaction is over, the job completes
BEGIN;
SELECT count(*) FROM dl;
SELECT (h).pid, (h).cookie FROM pg_background_launch_v2('CREATE INDEX CONCURRENTLY dl_v ON dl(v)') h \gset
SELECT try_sql(format('SELECT pg_background_wait_v2(%s, %s)', :pid, :cookie));
ROLLBACK;
SELECT pg_background_wait_v2(:pid, :cookie);
SELECT * FROM pg_background_result_v2(:pid, :cookie) AS (tag text);
SELECT indexrelid::regclass FROM pg_index WHERE indrelid = 'dl'::regclass;

-- and the same through the helpers that wait
BEGIN;
LOCK TABLE dl IN ACCESS EXCLUSIVE MODE;
SELECT try_sql('SELECT r::text FROM pg_background_run_query_v2(''SELECT count(*) FROM dl'') AS (r bigint)');
SELECT try_sql('SELECT pg_background_autonomous_exec(''SELECT count(*) FROM dl'')');
ROLLBACK;
-- (an aborted read forgets its job, which goes on and completes)
SELECT pg_background_detach_all_v2() AS still_attached;
RESET deadlock_timeout;
