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
