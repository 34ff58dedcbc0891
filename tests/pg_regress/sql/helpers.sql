-- The helpers of 1.10: outcome, status, run, run_query, drain, wait_any, cancel_by_label,
-- purge, full_sql.

-- run_v2: launch, wait, report, detach
SELECT completed, timed_out, has_error, row_count, command_tag, sqlstate, error_message, elapsed_ms >= 0 AS timed
  FROM pg_background_run_v2('INSERT INTO t VALUES (21), (22)');
SELECT completed, timed_out, has_error, sqlstate, error_message FROM pg_background_run_v2('SELECT 1/0');
-- a timeout cancels the job (never a cluster restart)
SELECT completed, timed_out FROM pg_background_run_v2('SELECT pg_sleep(5)', 0, 200);
SELECT count(*) AS nothing_left FROM pg_background_list;
SELECT pg_background_run_v2(NULL);

-- run_query_v2: the rows, typed by the column definition list
SELECT * FROM pg_background_run_query_v2('SELECT g, g * 2 FROM generate_series(1, 3) g') AS (a int, b int);
SELECT * FROM pg_background_run_query_v2('SELECT pg_sleep(5)::text', 0, 200) AS (r text);
SELECT count(*) AS nothing_left FROM pg_background_list;

-- outcome_v2 and status_v2 never raise
SELECT state, completed, has_error FROM pg_background_outcome_v2(0, 0);
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch_v2('SELECT 1/0', 0, 'oc') h \gset
SELECT pg_background_wait_v2(:pid, :cookie);
SELECT pid = :pid AS same, state, consumed, completed, has_error, row_count, command_tag,
       sqlstate, error_message, label, launched_at <= now() AS launched
  FROM pg_background_outcome_v2(:pid, :cookie);
SELECT pg_background_status_v2(:pid, :cookie) - 'pid' - 'cookie' - 'launched_at' AS status;
-- full_sql_v2: the whole text, cut at 64 KiB
SELECT pg_background_full_sql_v2(:pid, :cookie);
SELECT (h).pid AS long_pid, (h).cookie AS long_cookie
  FROM pg_background_launch_v2('SELECT ''' || repeat('x', 70000) || '''::text') h \gset
SELECT octet_length(pg_background_full_sql_v2(:long_pid, :long_cookie)) AS len,
       right(pg_background_full_sql_v2(:long_pid, :long_cookie), 5) AS tail;
SELECT count(*) FROM pg_background_result_v2(:long_pid, :long_cookie) AS (r text);
-- purge_v2 detaches stopped workers only
SELECT pg_advisory_lock(8181);
SELECT (h).pid AS blocked, (h).cookie AS blocked_cookie
  FROM pg_background_launch_v2('SELECT pg_advisory_lock(8181)::text', 0, 'purge-me-not') h \gset
SELECT pg_background_purge_v2() AS purged;
SELECT label FROM pg_background_list;
-- cancel_by_label_v2 matches with LIKE
SELECT pg_background_cancel_by_label_v2('nomatch%') AS canceled;
SELECT pg_background_cancel_by_label_v2('purge-%', 60000) AS canceled;
SELECT pg_advisory_unlock(8181);
SELECT state FROM pg_background_outcome_v2(:blocked, :blocked_cookie);
SELECT pg_background_purge_v2() AS purged;

-- wait_any_v2 and drain_v2 over an array of handles
SELECT pg_advisory_lock(8182);
SELECT (h).pid AS slow, (h).cookie AS slow_cookie
  FROM pg_background_launch_v2('SELECT pg_advisory_lock(8182)::text', 0, 'slow') h \gset
SELECT (h).pid AS fast, (h).cookie AS fast_cookie FROM pg_background_launch_v2('SELECT 5', 0, 'fast') h \gset
SELECT (pg_background_wait_any_v2(ARRAY[ROW(:slow, :slow_cookie), ROW(:fast, :fast_cookie)]::pg_background_handle[])).pid = :fast AS fast_first;
SELECT pg_background_wait_any_v2(ARRAY[ROW(:slow, :slow_cookie)]::pg_background_handle[], 100) IS NULL AS timed_out;
SELECT pg_advisory_unlock(8182);
SELECT label, state, completed, has_error
  FROM pg_background_drain_v2(ARRAY[ROW(:slow, :slow_cookie), ROW(:fast, :fast_cookie)]::pg_background_handle[])
 ORDER BY label;
SELECT count(*) AS drained FROM pg_background_list;

-- outcome-only helpers drop the output while they wait, so a result larger than the queue does
-- not keep them waiting (in 1.x they never returned); run_query_v2 without a timeout streams it
SELECT completed, row_count, command_tag
  FROM pg_background_run_v2('SELECT repeat(''x'', 1000) FROM generate_series(1, 1000)', 1024);
SELECT count(*), sum(length(r)) FROM pg_background_run_query_v2(
  'SELECT repeat(''x'', 1000) FROM generate_series(1, 1000)', 1024) AS (r text);
SELECT state, completed, row_count FROM pg_background_drain_v2(ARRAY[
  pg_background_launch_v2('SELECT repeat(''x'', 1000) FROM generate_series(1, 1000)', 1024)]);
