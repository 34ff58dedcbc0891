-- The additions of 1.9: labels, result_info_v2, error_info_v2, detach_all_v2, cancel_all_v2,
-- and the views of 1.10.

-- labelled launch and submit: not STRICT; NULL label and queue size allowed, NULL sql refused
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch_v2('SELECT 1', NULL, 'job-a') h \gset
SELECT label, sql_preview FROM pg_background_list WHERE pid = :pid;
SELECT * FROM pg_background_result_v2(:pid, :cookie) AS (r int);
SELECT (pg_background_launch_v2('SELECT 1', 0, NULL)).cookie <> 0 AS unlabelled_works;
SELECT pg_background_detach_all_v2() AS detached;
SELECT pg_background_launch_v2(NULL, 0, 'x');
SELECT pg_background_submit_v2(NULL, 0, 'x');
SELECT pg_background_launch_v2('SELECT 1', 0, repeat('x', 65));

-- the label is in the worker's application_name, visible in pg_background_activity
SELECT pg_advisory_lock(7171);
SELECT (h).pid AS pid, (h).cookie AS cookie
  FROM pg_background_launch_v2('SELECT pg_advisory_lock(7171)::text', 0, 'job-b') h \gset
SELECT wait_until(format('EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s AND wait_event = ''advisory'')', :pid));
SELECT application_name = 'pg_background:job-b:' || :pid AS app_name FROM pg_stat_activity WHERE pid = :pid;
SELECT pgbg_state, label, backend_state, wait_event, query FROM pg_background_activity WHERE pid = :pid;
-- result_info_v2 before it finished: nothing consumed
SELECT completed, has_error FROM pg_background_result_info_v2(:pid, :cookie);
SELECT pg_advisory_unlock(7171);
SELECT pg_background_wait_v2(:pid, :cookie);
SELECT * FROM pg_background_result_info_v2(:pid, :cookie);
SELECT * FROM pg_background_result_v2(:pid, :cookie) AS (r text);

-- result_info_v2 and error_info_v2 of a failed job, read without consuming it
SELECT (h).pid AS pid, (h).cookie AS cookie
  FROM pg_background_launch_v2('INSERT INTO t VALUES (1), (2); SELECT 1/0') h \gset
SELECT pg_background_wait_v2(:pid, :cookie);
SELECT * FROM pg_background_result_info_v2(:pid, :cookie);
SELECT * FROM pg_background_error_info_v2(:pid, :cookie);
SELECT * FROM pg_background_error_info_v2(:pid, :cookie);
SELECT state FROM pg_background_list WHERE pid = :pid;
-- a successful job has no error info
SELECT (h).pid AS ok_pid, (h).cookie AS ok_cookie FROM pg_background_launch_v2('SELECT 1') h \gset
SELECT pg_background_wait_v2(:ok_pid, :ok_cookie);
SELECT pg_background_error_info_v2(:ok_pid, :ok_cookie) IS NULL AS no_error;
SELECT * FROM pg_background_result_info_v2(:ok_pid, :ok_cookie);
SELECT pg_background_detach_all_v2() AS detached;
SELECT count(*) AS listed FROM pg_background_list;

-- cancel_all_v2 cancels running workers only, and only those the caller may touch
SELECT pg_advisory_lock(7172);
SELECT (h).pid AS c1, (h).cookie AS k1 FROM pg_background_launch_v2('SELECT pg_advisory_lock(7172)::text') h \gset
SELECT (h).pid AS c2, (h).cookie AS k2 FROM pg_background_launch_v2('SELECT pg_advisory_lock(7172)::text') h \gset
SELECT (h).pid AS c3, (h).cookie AS k3 FROM pg_background_launch_v2('SELECT 3') h \gset
SELECT pg_background_wait_v2(:c3, :k3);
SELECT pg_background_cancel_all_v2() AS canceled;
SELECT pg_background_wait_v2(:c1, :k1), pg_background_wait_v2(:c2, :k2);
SELECT pg_advisory_unlock(7172);
SELECT try_sql(format('SELECT r FROM pg_background_result_v2(%s, %s) AS (r text)', :c1, :k1)) AS first,
       (SELECT r FROM pg_background_result_v2(:c3, :k3) AS (r int)) AS third;
SELECT workers_canceled FROM pg_background_stats_v2();
SELECT pg_background_detach_all_v2() AS detached;
