-- The handle API under the unsuffixed names.
SELECT r FROM pg_background_launch('SELECT 41 + 1') h,
       LATERAL pg_background_result((h).pid, (h).cookie) AS (r int);
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch('SELECT pg_sleep(30)::text', 0, 'sleeper') h \gset
-- wait with timeout_ms > 0: false when the time runs out
SELECT pg_background_wait(:pid, :cookie, 50) AS stopped;
SELECT label, state, sql_preview FROM pg_background_list WHERE pid = :pid;
SELECT label, pgbg_state, backend_state IS NOT NULL AS has_backend FROM pg_background_activity WHERE pid = :pid;
SELECT pg_background_full_sql(:pid, :cookie);
-- cancel with a grace period waits for the worker to exit
SELECT pg_background_cancel(:pid, :cookie, 5000);
-- wait with timeout_ms <= 0 blocks until the worker exits, then true
SELECT pg_background_wait(:pid, :cookie) AS stopped;
SELECT sqlstate, message FROM pg_background_error_info(:pid, :cookie);
SELECT try_sql(format('SELECT count(*) FROM pg_background_result(%s, %s) AS (r text)', :pid, :cookie));

-- result_info, with when the job started and finished; it does not consume the result
SELECT (h).pid AS pid2, (h).cookie AS cookie2 FROM pg_background_launch('SELECT 7') h \gset
SELECT pg_background_wait(:pid2, :cookie2, 0);
SELECT row_count, command_tag, completed, has_error, started_at <= finished_at AS ordered
  FROM pg_background_result_info(:pid2, :cookie2);
SELECT r FROM pg_background_result(:pid2, :cookie2) AS (r int);

-- error_info names the schema, table, column and constraint of the error
SELECT (h).pid AS pid3, (h).cookie AS cookie3 FROM pg_background_launch('INSERT INTO t2 VALUES (-1)') h \gset
SELECT pg_background_wait(:pid3, :cookie3);
SELECT sqlstate, message, schema_name, table_name, column_name, constraint_name
  FROM pg_background_error_info(:pid3, :cookie3);
SELECT (h).pid AS pid4, (h).cookie AS cookie4 FROM pg_background_launch('INSERT INTO t2 VALUES (NULL)') h \gset
SELECT pg_background_wait(:pid4, :cookie4);
SELECT sqlstate, schema_name, table_name, column_name, constraint_name
  FROM pg_background_error_info(:pid4, :cookie4);
SELECT pg_background_detach(:pid3, :cookie3), pg_background_detach(:pid4, :cookie4);
-- a SQLSTATE of the user's own
SELECT try_sql($$SELECT * FROM pg_background_run_query('DO $b$ BEGIN RAISE EXCEPTION ''boom'' USING ERRCODE = ''P0042''; END $b$') AS (r text)$$);

-- progress, reported from inside the job
SELECT (h).pid AS pid5, (h).cookie AS cookie5
  FROM pg_background_launch('SELECT pg_background_report_progress(40, ''loading''), pg_sleep(30)') h \gset
SELECT wait_until(format('pg_background_get_progress(%s, %s) IS NOT NULL', :pid5, :cookie5)) AS reported;
SELECT progress_pct, progress_msg FROM pg_background_get_progress(:pid5, :cookie5);
SELECT try_sql('SELECT pg_background_report_progress(1)');
SELECT pg_background_cancel_all() AS cancelled;
SELECT pg_background_wait(:pid5, :cookie5);

-- submit runs the job and keeps no result
SELECT (h).pid AS pid6, (h).cookie AS cookie6 FROM pg_background_submit('INSERT INTO t2 VALUES (6)') h \gset
SELECT pg_background_wait(:pid6, :cookie6);
SELECT id FROM t2;

-- the session's statistics, with the jobs given up on after a timeout
SELECT pg_background_record_timeout();
SELECT workers_timed_out, workers_failed >= 2 AS failed FROM pg_background_stats();
SELECT pg_background_detach_all() >= 1 AS detached;
SELECT count(*) AS left_over FROM pg_background_list;

-- the deprecated aliases work as their canonical names do
SELECT r FROM pg_background_launch_v2('SELECT 8', 0, 'alias') h,
       LATERAL pg_background_result_v2((h).pid, (h).cookie) AS (r int);
SELECT (h).pid AS pid7, (h).cookie AS cookie7 FROM pg_background_launch_v2('SELECT pg_sleep(30)') h \gset
SELECT pg_background_wait_v2(:pid7, :cookie7, 20) AS stopped;
SELECT pg_background_cancel_v2(:pid7, :cookie7, 5000);
SELECT pg_background_wait_v2(:pid7, :cookie7) AS stopped;
SELECT workers_timed_out FROM pg_background_stats_v2();
SELECT pg_background_detach_all_v2();
