-- The handle API of 1.8: pg_background_handle and the _v2 functions.

-- the type
SELECT ROW(1, 2)::pg_background_handle;
SELECT (ROW(1, 2)::pg_background_handle).cookie;

-- launch_v2: a handle with a non-zero cookie, read with result_v2
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch_v2('SELECT 1') h \gset
SELECT :cookie <> 0 AS cookie_is_not_zero, :pid > 0 AS pid_is_positive;
-- a wrong cookie: result_v2 says "not attached (cookie mismatch)", the others 55000 with a hint
SELECT try_sql(format('SELECT r FROM pg_background_result_v2(%s, %s) AS (r int)', :pid, :cookie + 1));
SELECT try_sql(format('SELECT pg_background_detach_v2(%s, %s)', :pid, :cookie + 1));
SELECT try_sql(format('SELECT pg_background_wait_v2(%s, %s)', :pid, :cookie + 1));
SELECT try_sql(format('SELECT pg_background_wait_v2_timeout(%s, %s, 0)', :pid, :cookie + 1));
SELECT try_sql(format('SELECT pg_background_cancel_v2(%s, %s)', :pid, :cookie + 1));
SELECT try_sql(format('SELECT pg_background_cancel_v2_grace(%s, %s, 10)', :pid, :cookie + 1));
-- the right one reads it; after a read the PID is no longer attached
SELECT * FROM pg_background_result_v2(:pid, :cookie) AS (r int);
SELECT try_sql(format('SELECT pg_background_detach_v2(%s, %s)', :pid, :cookie));

-- the APIs mix: a v1 PID with cookie 0, a v2 PID through the v1 functions
SELECT pg_background_launch('SELECT 2') AS pid \gset
SELECT * FROM pg_background_result_v2(:pid, 0) AS (r int);
SELECT (h).pid AS pid FROM pg_background_launch_v2('SELECT 3') h \gset
SELECT * FROM pg_background_result(:pid) AS (r int);

-- queue size checks as for launch; STRICT
SELECT pg_background_launch_v2('SELECT 1', 63);
SELECT pg_background_launch_v2(NULL) IS NULL AS null_gives_null;
SELECT pg_background_result_v2(NULL, 1) IS NULL AS null_gives_no_rows;

-- submit_v2: runs and commits, but results are disabled; the handle still detaches
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_submit_v2('INSERT INTO t VALUES (12)') h \gset
SELECT pg_background_wait_v2(:pid, :cookie);
SELECT count(*) FROM t WHERE id = 12;
SELECT try_sql(format('SELECT r FROM pg_background_result_v2(%s, %s) AS (r text)', :pid, :cookie));
SELECT try_sql(format('SELECT pg_background_detach_v2(%s, %s)', :pid, :cookie));
-- a submitted job never blocks on its queue (fixed: the C extension's worker hung forever)
SELECT (h).pid AS pid, (h).cookie AS cookie
  FROM pg_background_submit_v2('SELECT g FROM generate_series(1, 100000) g', 1024) h \gset
SELECT pg_background_wait_v2_timeout(:pid, :cookie, 60000) AS stopped;
SELECT pg_background_detach_v2(:pid, :cookie);
-- a stopped submitted job holds no worker slot and no segment, but stays listed until detached
-- (fixed: the C extension counted it against max_workers until detached)
SET pg_background.max_workers = 1;
CREATE TEMP TABLE submitted(pid int, cookie int8);
DO $$
DECLARE h pg_background_handle;
BEGIN
  FOR g IN 1..3 LOOP
    h := pg_background_submit_v2(format('INSERT INTO t VALUES (%s)', 100 + g));
    PERFORM pg_background_wait_v2(h.pid, h.cookie);
    INSERT INTO submitted VALUES (h.pid, h.cookie);
  END LOOP;
END$$;
SELECT count(*) FROM t WHERE id > 100;
SELECT l.state, count(*) FROM pg_background_list l JOIN submitted s USING (pid, cookie) GROUP BY 1;
SELECT count(pg_background_detach_v2(pid, cookie)) FROM submitted;
SELECT count(*) FROM pg_background_list l JOIN submitted s USING (pid);
RESET pg_background.max_workers;

-- wait_v2_timeout: false while running, true once stopped; 0 is a single look
SELECT pg_advisory_lock(5151);
SELECT (h).pid AS pid, (h).cookie AS cookie
  FROM pg_background_launch_v2('SELECT pg_advisory_lock(5151)::text') h \gset
SELECT pg_background_wait_v2_timeout(:pid, :cookie, 100) AS stopped;
SELECT pg_background_wait_v2_timeout(:pid, :cookie, 0) AS stopped;
SELECT pg_advisory_unlock(5151);
SELECT pg_background_wait_v2_timeout(:pid, :cookie, 60000) AS stopped;
SELECT pg_background_wait_v2(:pid, :cookie);
SELECT pg_background_wait_v2_timeout(:pid, :cookie, 0) AS stopped;
SELECT * FROM pg_background_result_v2(:pid, :cookie) AS (r text);

-- cancel_v2: the job is rolled back and its reader gets 57014 (1.10's outcome)
SELECT pg_advisory_lock(5152);
SELECT (h).pid AS pid, (h).cookie AS cookie
  FROM pg_background_launch_v2('SELECT pg_advisory_lock(5152); INSERT INTO t VALUES (13)') h \gset
SELECT pg_background_cancel_v2(:pid, :cookie);
SELECT pg_background_wait_v2(:pid, :cookie);
SELECT pg_advisory_unlock(5152);
SELECT count(*) AS not_inserted FROM t WHERE id = 13;
SELECT try_sql(format('SELECT r FROM pg_background_result_v2(%s, %s) AS (r text)', :pid, :cookie));

-- cancel_v2_grace returns once the worker is gone (and never kills anything)
SELECT pg_advisory_lock(5153);
SELECT (h).pid AS pid, (h).cookie AS cookie
  FROM pg_background_launch_v2('SELECT pg_advisory_lock(5153)::text') h \gset
SELECT pg_background_cancel_v2_grace(:pid, :cookie, 60000);
SELECT pg_background_wait_v2_timeout(:pid, :cookie, 0) AS stopped;
SELECT pg_advisory_unlock(5153);
SELECT pg_background_detach_v2(:pid, :cookie);

-- cancel_v2 on a stopped worker: no signal, no error; the result is still there
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch_v2('SELECT 4') h \gset
SELECT pg_background_wait_v2(:pid, :cookie);
SELECT pg_background_cancel_v2(:pid, :cookie);
SELECT * FROM pg_background_result_v2(:pid, :cookie) AS (r int);
