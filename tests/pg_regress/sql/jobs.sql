-- The cluster-wide job registry (the test cluster preloads the library, as PostgreSQL 15 and 16
-- need for it).
SELECT * FROM pg_background_result(pg_background_launch('SELECT generate_series(1, 3)')) AS (r int);
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch_v2('SELECT 1/0', 0, 'nightly') h \gset
SELECT pg_background_wait_v2_timeout(:pid, :cookie, 30000) AS finished;
SELECT state, rows, bytes > 0 AS sent, label, sqlstate, message, query, usename = current_user AS mine,
       datname = current_database() AS here, started_at >= launched_at AS started,
       finished_at >= started_at AS ended
  FROM pg_background_jobs WHERE launcher_pid = pg_backend_pid() ORDER BY job_id;
SELECT count(DISTINCT job_id) AS distinct_ids FROM pg_background_jobs WHERE launcher_pid = pg_backend_pid();
-- Job ids, and results read by job id (kept after the session: tests/session-tests kept.rs).
SELECT pg_background_launch('SELECT 41 + 1') AS pid \gset
SELECT pg_background_job_id(:pid) = job_id AS same_id FROM pg_background_jobs WHERE worker_pid = :pid;
SELECT * FROM pg_background_job_result(pg_background_job_id(:pid)) AS (v int);
SELECT pg_background_job_id(0);
SELECT * FROM pg_background_job_result(pg_background_launch_kept('SELECT ''kept''', '5 min')) AS (v text);
SELECT pg_background_launch_kept('SELECT 1', '0 s');
SELECT pg_background_launch_kept('SELECT 1', '8 days');
SELECT pg_background_launch_kept(NULL);
SELECT * FROM pg_background_job_result(1) AS (v int);
SELECT * FROM pg_background_job_result(-1) AS (v int);
SET pg_background.keep_result = '90min';
SHOW pg_background.keep_result;
RESET pg_background.keep_result;
-- caps on running jobs: server-wide, and set per role only by superusers
SET pg_background.max_jobs = 1;
SHOW pg_background.max_jobs;
SHOW pg_background.max_jobs_per_role;
SET pg_background.max_jobs_per_role = 1025;
