-- The examples of the README, run by scripts/demo.sh against a throwaway cluster.
CREATE EXTENSION pg_background;

-- Launch a command: the worker's PID comes back at once.
SELECT pg_background_launch('SELECT 2+2') AS pid \gset
-- Read its result with a column definition list.
SELECT * FROM pg_background_result(:pid) AS (result int);

-- While a job runs, it is visible in pg_stat_activity.
SELECT pg_background_launch('SELECT generate_series(1, 1000000)') AS pid \gset
-- (launch returns once the worker has attached its queue; give it a moment to connect)
SELECT set_config('demo.pid', :'pid', false) \gset
DO $$
BEGIN
  FOR i IN 1..500 LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN EXISTS (SELECT FROM pg_stat_activity
                      WHERE pid = current_setting('demo.pid')::int AND state = 'active');
    PERFORM pg_sleep(0.01);
  END LOOP;
END$$;
SELECT backend_type, state, query FROM pg_stat_activity WHERE pid = :pid;
-- Detach: the job goes on (or finishes) on its own; nothing is left behind.
SELECT pg_background_detach(:pid);

-- Reading those 1,000,000 rows instead streams them through the 64 kB queue.
SELECT pg_background_launch('SELECT generate_series(1, 1000000)') AS pid \gset
SELECT count(*), sum(g) FROM pg_background_result(:pid) AS (g int);

-- Statements without rows give their command tags; each statement sees the ones before it.
CREATE TABLE audit(msg text);
SELECT pg_background_launch($$INSERT INTO audit VALUES ('x'); SELECT count(*) FROM audit$$) AS pid \gset
SELECT * FROM pg_background_result(:pid) AS (n bigint);

-- An autonomous transaction: the worker's insert survives the caller's ROLLBACK.
BEGIN;
SELECT pg_background_launch($$INSERT INTO audit VALUES ('kept')$$) AS pid \gset
SELECT * FROM pg_background_result(:pid) AS (tag text);
ROLLBACK;
SELECT msg FROM audit ORDER BY msg;

-- The same in one call, with the values bound as parameters (never spliced into the SQL).
BEGIN;
SELECT pg_background_autonomous_exec('INSERT INTO audit VALUES ($1)', 'kept too');
ROLLBACK;
SELECT msg FROM audit ORDER BY msg;

-- VACUUM runs in a worker, where a function could not run it.
SELECT * FROM pg_background_result(pg_background_launch('VACUUM audit')) AS (tag text);

-- A worker's error is raised in the caller with its SQLSTATE and one context line.
\set ON_ERROR_STOP 0
SELECT * FROM pg_background_result(pg_background_launch('SELECT 1/0')) AS (r int);

-- A job waiting for a lock its caller holds, while the caller waits for it: 40P01, not a hang.
SET deadlock_timeout = '200ms';
BEGIN;
LOCK TABLE audit;
SELECT * FROM pg_background_result(pg_background_launch('SELECT count(*) FROM audit')) AS (n bigint);
ROLLBACK;

-- Every job of the cluster, from any session (the demo's cluster preloads the library, which
-- the job registry needs on PostgreSQL 15 and 16).
SELECT job_id, state, rows, sqlstate, left(query, 40) AS query
  FROM pg_background_jobs ORDER BY job_id DESC LIMIT 5;
