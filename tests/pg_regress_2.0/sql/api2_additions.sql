-- The extension's own objects are there with the 2.0 API too.
SELECT r FROM pg_background_launch('SELECT 12', 0, 'seen') h,
       LATERAL pg_background_result((h).pid, (h).cookie) AS (r int);
SELECT state, label, rows FROM pg_background_jobs WHERE label = 'seen' AND launcher_pid = pg_backend_pid();
SELECT pg_background_launch_kept('SELECT 13') AS job \gset
SELECT * FROM pg_background_job_result(:job) AS (r int);
SELECT * FROM pg_background_autonomous('SELECT $1::int + 1', 41) AS (r int);
BEGIN;
SELECT pg_background_autonomous_exec('INSERT INTO t2 VALUES (99)');
ROLLBACK;
SELECT id FROM t2 WHERE id = 99;

-- 2.0's names of the grant helpers
CREATE ROLE api2_user;
SELECT pg_background_grant_privileges('api2_user');
SELECT has_function_privilege('api2_user', 'pg_background_launch(text, int4)', 'EXECUTE') AS launch,
       has_function_privilege('api2_user', 'pg_background_launch_kept(text, interval, int4, text)', 'EXECUTE') AS kept,
       has_function_privilege('api2_user', 'pg_background_revoke_privileges(text, boolean)', 'EXECUTE') AS helper;
SELECT pg_background_revoke_privileges('api2_user');
SELECT has_function_privilege('api2_user', 'pg_background_launch(text, int4)', 'EXECUTE') AS launch;
DROP ROLE api2_user;

-- JSON rows by handle, and the wait for the first of several jobs by id (named
-- pg_background_wait_any_job here: 2.0's pg_background_wait_any takes handles)
SELECT pg_background_result_json((h).pid, (h).cookie) FROM pg_background_launch('SELECT 5 AS five') h;
SELECT pg_background_launch_kept('SELECT 6') AS job6 \gset
SELECT pg_background_wait_any_job(ARRAY[:job6]) = :job6 AS first;
SELECT pg_background_job_result_json(:job6);
