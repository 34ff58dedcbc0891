-- The examples of docs/reference.md's handle API reference, one per function, as they appear there.
CREATE TABLE big AS SELECT g FROM generate_series(1, 1000) g;

-- launch_v2, wait_v2_timeout, result_v2
SELECT (h).pid, (h).cookie FROM pg_background_launch_v2('SELECT count(*) FROM big') h \gset
SELECT pg_background_wait_v2_timeout(:pid, :cookie, 60000) AS exited;
SELECT * FROM pg_background_result_v2(:pid, :cookie) AS (n bigint);

-- labelled launch, result_info_v2, full_sql_v2, list, detach_v2
SELECT (h).pid, (h).cookie FROM pg_background_launch_v2('UPDATE big SET g = g', 0, 'nightly') h \gset
SELECT pg_background_wait_v2(:pid, :cookie);
SELECT row_count, command_tag, completed, has_error FROM pg_background_result_info_v2(:pid, :cookie);
SELECT pg_background_full_sql_v2(:pid, :cookie);
SELECT label, state, sql_preview FROM pg_background_list WHERE pid = :pid;
SELECT pg_background_detach_v2(:pid, :cookie);

-- submit_v2: fire and forget
SELECT (h).pid, (h).cookie FROM pg_background_submit_v2('ANALYZE big') h \gset
SELECT pg_background_wait_v2(:pid, :cookie);
SELECT pg_background_detach_v2(:pid, :cookie);

-- error_info_v2 and outcome_v2 of a failed job
SELECT (h).pid, (h).cookie FROM pg_background_launch_v2('SELECT 1/0') h \gset
SELECT pg_background_wait_v2(:pid, :cookie);
SELECT sqlstate, message FROM pg_background_error_info_v2(:pid, :cookie);
SELECT state, has_error, sqlstate, error_message FROM pg_background_outcome_v2(:pid, :cookie);
SELECT pg_background_status_v2(:pid, :cookie) ->> 'sqlstate' AS sqlstate;
SELECT pg_background_purge_v2() AS purged;

-- progress, reported inside a job and read by the launcher
SELECT (h).pid, (h).cookie
  FROM pg_background_launch_v2($$SELECT pg_background_progress(50, 'half way')$$) h \gset
SELECT pg_background_wait_v2(:pid, :cookie);
SELECT * FROM pg_background_get_progress_v2(:pid, :cookie);
SELECT pg_background_detach_v2(:pid, :cookie);

-- cancel_v2 and cancel_v2_grace
SELECT (h).pid, (h).cookie FROM pg_background_launch_v2('SELECT pg_sleep(60)') h \gset
SELECT pg_background_cancel_v2_grace(:pid, :cookie, 5000);
SELECT state, sqlstate FROM pg_background_outcome_v2(:pid, :cookie);
SELECT pg_background_detach_v2(:pid, :cookie);
SELECT (h).pid, (h).cookie FROM pg_background_launch_v2('SELECT pg_sleep(60)', 0, 'slow') h \gset
SELECT pg_background_cancel_v2(:pid, :cookie);
SELECT pg_background_detach_v2(:pid, :cookie);

-- cancel_by_label_v2, cancel_all_v2, detach_all_v2
SELECT pg_background_launch_v2('SELECT pg_sleep(60)', 0, 'batch-' || g) IS NOT NULL AS launched
  FROM generate_series(1, 2) g;
SELECT pg_background_cancel_by_label_v2('batch-%', 5000) AS canceled;
SELECT pg_background_cancel_all_v2() AS canceled;
SELECT pg_background_detach_all_v2() AS detached;

-- run_v2 and run_query_v2: launch, wait, read in one call
SELECT completed, timed_out, command_tag, row_count FROM pg_background_run_v2('DELETE FROM big WHERE g > 900');
SELECT * FROM pg_background_run_query_v2('SELECT max(g) FROM big') AS (m int);

-- wait_any_v2 and drain_v2 over an array of handles
CREATE TEMP TABLE jobs AS
  SELECT pg_background_launch_v2(format('SELECT count(*) FROM big WHERE g %% 3 = %s', g)) AS h
    FROM generate_series(0, 2) g;
SELECT pg_background_wait_any_v2(array_agg(h)) IS NOT NULL AS one_exited FROM jobs;
SELECT state, command_tag, row_count FROM pg_background_drain_v2((SELECT array_agg(h) FROM jobs));

-- list_v2 with the 1.8 column definition list; the activity view, joined to pg_stat_activity
SELECT pg_advisory_lock(7070);
SELECT (h).pid, (h).cookie FROM pg_background_launch_v2('SELECT pg_advisory_lock(7070)::text', 0, 'waiter') h \gset
SELECT wait_until(format('EXISTS (SELECT FROM pg_background_activity WHERE pid = %s AND wait_event = ''advisory'')', :pid));
SELECT label, pgbg_state, backend_state, wait_event_type, wait_event FROM pg_background_activity WHERE pid = :pid;
SELECT state, sql_preview, consumed
  FROM pg_background_list_v2() AS (pid int4, cookie int8, launched_at timestamptz, user_id oid, queue_size int4,
                                   state text, sql_preview text, last_error text, consumed bool)
 WHERE pid = :pid;
SELECT pg_advisory_unlock(7070);
SELECT * FROM pg_background_result_v2(:pid, :cookie) AS (r text);

-- stats_v2
SELECT workers_launched >= 12 AS launched, workers_active, max_workers FROM pg_background_stats_v2();
