-- list_v2, stats_v2, progress (run in a fresh session: the statistics are per session).

-- a fresh session: nothing launched yet
SELECT * FROM pg_background_stats_v2();

-- list_v2 needs the 1.8 (9 columns) or 1.9 (10 columns) column definition list
SELECT pg_advisory_lock(6161);
SELECT (h).pid AS pid, (h).cookie AS cookie
  FROM pg_background_launch_v2('SELECT pg_advisory_lock(6161)::text', 2048) h \gset
SELECT pid = :pid AS is_ours, cookie = :cookie AS same_cookie, launched_at <= now() AS launched,
       user_id = 'postgres'::regrole AS owner, queue_size, state IN ('starting', 'running') AS live,
       sql_preview, last_error, consumed
  FROM pg_background_list_v2() AS (pid int4, cookie int8, launched_at timestamptz, user_id oid,
       queue_size int4, state text, sql_preview text, last_error text, consumed bool);
SELECT label FROM pg_background_list_v2() AS (pid int4, cookie int8, launched_at timestamptz,
       user_id oid, queue_size int4, state text, sql_preview text, last_error text, consumed bool,
       label text);
SELECT * FROM pg_background_list_v2() AS (pid int4);
SELECT pg_background_list_v2();
-- the preview is the first 120 bytes, cut at a character boundary
SELECT (h).pid AS long_pid, (h).cookie AS long_cookie
  FROM pg_background_launch_v2('SELECT ''' || repeat('é', 100) || '''') h \gset
SELECT octet_length(sql_preview), sql_preview = 'SELECT ''' || repeat('é', 56) AS cut
  FROM pg_background_list_v2() AS (pid int4, cookie int8, launched_at timestamptz, user_id oid,
       queue_size int4, state text, sql_preview text, last_error text, consumed bool)
 WHERE pid = :long_pid;
SELECT pg_background_wait_v2(:long_pid, :long_cookie);
SELECT state FROM pg_background_list_v2() AS (pid int4, cookie int8, launched_at timestamptz,
       user_id oid, queue_size int4, state text, sql_preview text, last_error text, consumed bool)
 WHERE pid = :long_pid;
SELECT pg_background_detach_v2(:long_pid, :long_cookie);
SELECT workers_launched, workers_active, workers_completed FROM pg_background_stats_v2();
SELECT pg_advisory_unlock(6161);
SELECT * FROM pg_background_result_v2(:pid, :cookie) AS (r text);
SELECT count(*) AS left_in_list FROM pg_background_list_v2() AS (pid int4, cookie int8,
       launched_at timestamptz, user_id oid, queue_size int4, state text, sql_preview text,
       last_error text, consumed bool);

-- failures, notices and cancels are counted from the worker's own outcome
SELECT * FROM pg_background_result(pg_background_launch('DO $$BEGIN RAISE NOTICE ''n''; END$$')) AS (r text);
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch_v2('SELECT 1/0') h \gset
SELECT pg_background_wait_v2(:pid, :cookie);
SELECT pg_background_detach_v2(:pid, :cookie);
SELECT workers_launched, workers_completed, workers_failed, workers_canceled, workers_active,
       avg_execution_ms >= 0 AS has_avg, max_workers
  FROM pg_background_stats_v2();

-- progress: only inside a worker; read back while it runs
SELECT pg_background_progress(10, 'x');
SELECT pg_background_get_progress_v2(0, 0) IS NULL AS unknown_is_null;
SELECT pg_advisory_lock(6162);
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch_v2(
  'SELECT pg_background_progress(150, repeat(''é'', 40)); SELECT pg_advisory_lock(6162)::text') h \gset
SELECT wait_until(format('(pg_background_get_progress_v2(%s, %s)).progress_pct IS NOT NULL', :pid, :cookie));
SELECT progress_pct, octet_length(progress_msg), progress_msg = repeat('é', 31) AS cut
  FROM pg_background_get_progress_v2(:pid, :cookie);
SELECT pg_background_get_progress_v2(:pid, :cookie + 1) IS NULL AS stale_cookie_is_null;
SELECT pg_advisory_unlock(6162);
SELECT * FROM pg_background_result_v2(:pid, :cookie) AS (r text);

-- stats_v2 is not STRICT, as in 1.8-1.10
SELECT proisstrict FROM pg_proc WHERE proname = 'pg_background_stats_v2';
-- every failed job counts as failed, also when its reader raised the error before the worker
-- had detached
SELECT workers_failed AS failed_before FROM pg_background_stats_v2() \gset
DO $$
BEGIN
  FOR i IN 1..100 LOOP
    BEGIN
      PERFORM * FROM pg_background_result(pg_background_launch('SELECT 1/0')) AS (r int);
    EXCEPTION WHEN division_by_zero THEN NULL;
    END;
  END LOOP;
END$$;
SELECT workers_failed - :failed_before AS failed, workers_active FROM pg_background_stats_v2();
