-- The cluster's counters and what the jobs view shows of a running job (their movement across
-- sessions is tested in session-tests stats.rs; here the shape, the privileges and the
-- settings).
SELECT attname, format_type(atttypid, atttypmod) AS type
  FROM pg_attribute WHERE attrelid = 'pg_background_cluster_stats'::regclass AND attnum > 0
 ORDER BY attnum;
SELECT count(*) AS one_row FROM pg_background_cluster_stats;
SELECT launched >= 0 AND completed >= 0 AND stats_reset <= now() AS sane FROM pg_background_cluster_stats;
-- a job of this session moves launched and completed
SELECT launched AS launched_before, completed AS completed_before FROM pg_background_cluster_stats \gset
SELECT * FROM pg_background_result(pg_background_launch('SELECT 1')) AS (r int);
SELECT launched - :launched_before AS launched FROM pg_background_cluster_stats;
-- readable by every role; reset only by superusers and the roles they grant it
CREATE ROLE regress_stats_reader;
SET ROLE regress_stats_reader;
SELECT count(*) AS readable FROM pg_background_cluster_stats;
SELECT pg_background_cluster_stats_reset();
SELECT count(*) FROM pg_background_jobs;
RESET ROLE;
SELECT has_function_privilege('regress_stats_reader', 'pg_background_cluster_stats_reset()', 'EXECUTE') AS may_reset,
       has_function_privilege('pgbackground_role', 'pg_background_cluster_stats_reset()', 'EXECUTE') AS role_may_reset,
       has_table_privilege('regress_stats_reader', 'pg_background_cluster_stats', 'SELECT') AS may_read;
-- the grant helpers leave the counters alone: they are PUBLIC's already
SELECT count(*) AS counters_among_grantable FROM pg_background_grantable_objects()
 WHERE object LIKE '%cluster_stats%';
GRANT EXECUTE ON FUNCTION pg_background_cluster_stats_reset() TO regress_stats_reader;
SET ROLE regress_stats_reader;
SELECT pg_background_cluster_stats_reset();
RESET ROLE;
-- (only launches move launched, and nobody else launches now)
SELECT launched = 0 AND cold_starts = 0 AND now() - stats_reset < interval '1 hour' AS reset
  FROM pg_background_cluster_stats;
REVOKE EXECUTE ON FUNCTION pg_background_cluster_stats_reset() FROM regress_stats_reader;
DROP ROLE regress_stats_reader;
-- the jobs view: progress columns beside rows and bytes
SELECT attname FROM pg_attribute
 WHERE attrelid = 'pg_background_jobs'::regclass AND attnum > 0 ORDER BY attnum;
SELECT (h).pid AS pid, (h).cookie AS cookie
  FROM pg_background_launch_v2('SELECT pg_background_progress(75, ''three quarters'')') h \gset
SELECT pg_background_wait_v2_timeout(:pid, :cookie, 30000) AS finished;
SELECT state, progress_pct, progress_msg FROM pg_background_jobs
 WHERE job_id = pg_background_job_id(:pid);
SELECT pg_background_detach_v2(:pid, :cookie);
SELECT pg_background_launch('SELECT 1') AS pid \gset
SELECT progress_pct, progress_msg FROM pg_background_jobs
 WHERE job_id = pg_background_job_id(:pid);
SELECT * FROM pg_background_result(:pid) AS (r int);
-- the number of slots: read at server start, not settable in a session
SHOW pg_background.job_slots;
SET pg_background.job_slots = 32;
