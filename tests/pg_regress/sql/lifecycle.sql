-- Detach, autonomous transactions, identity and inherited settings.

-- detach: the worker goes on and commits; the PID is no longer ours
SELECT pg_background_launch('INSERT INTO t VALUES (9)') AS pid \gset
SELECT detach_outcome(:pid);
SELECT wait_until('EXISTS (SELECT FROM t WHERE id = 9)');
SELECT detach_outcome(:pid);
SELECT read_outcome(:pid);
SELECT pg_background_detach(NULL);
SELECT detach_outcome(0);

-- fire and forget, many times: finished workers hold no slot
SET pg_background.max_workers = 2;
SELECT count(pg_background_detach(pg_background_launch('INSERT INTO audit VALUES (''f'')')))
  FROM generate_series(1, 20);
SELECT wait_until('(SELECT count(*) = 20 FROM audit WHERE msg = ''f'')');
-- read ones too
SELECT sum(r) FROM generate_series(1, 20) g,
  LATERAL pg_background_result(pg_background_launch('SELECT 1')) AS (r int);
-- pg_background.max_workers counts running workers: a finished worker whose result is unread
-- does not block a launch (fixed: the C extension counted it), and its result stays readable
-- (each job first waits on a lock we hold, so that it is surely connected and visible; once it
-- has left pg_stat_activity it has also detached from its shared memory)
CREATE TEMP TABLE unread(n int, pid int);
CREATE FUNCTION unread_job(n int, value int) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_lock(4243);
  INSERT INTO unread SELECT n, pg_background_launch(
    format('SELECT pg_advisory_lock(4243); SELECT %s', value));
  PERFORM wait_until(format('EXISTS (SELECT FROM pg_stat_activity a JOIN unread u USING (pid)
                             WHERE u.n = %s AND a.wait_event = ''advisory'')', n));
  PERFORM pg_advisory_unlock(4243);
  RETURN wait_until(format('NOT EXISTS (SELECT FROM pg_stat_activity a JOIN unread u USING (pid)
                            WHERE u.n = %s)', n));
END$$;
SELECT unread_job(1, 10);
SELECT unread_job(2, 20);
INSERT INTO unread SELECT 3, pg_background_launch('SELECT 30');
SELECT n, r FROM unread, LATERAL pg_background_result(unread.pid) AS (r int) ORDER BY n;
-- but running ones do count
SELECT pg_advisory_lock(4242);
SELECT pg_background_launch('SELECT pg_advisory_lock(4242)::text') AS w1 \gset
SELECT pg_background_launch('SELECT pg_advisory_lock(4242)::text') AS w2 \gset
SELECT pg_background_launch('SELECT 1');
SELECT pg_advisory_unlock(4242);
SELECT read_outcome(:w1), read_outcome(:w2);
RESET pg_background.max_workers;

-- finished, unread results are kept in session memory, at most
-- pg_background.max_unread_results of them: the next launch then fails with 53400
SHOW pg_background.max_unread_results;
SET pg_background.max_unread_results = 2;
SELECT (h).pid AS u1, (h).cookie AS c1 FROM pg_background_launch_v2('SELECT ''kept 1''') h \gset
SELECT (h).pid AS u2, (h).cookie AS c2 FROM pg_background_launch_v2('SELECT ''kept 2''') h \gset
SELECT pg_background_wait_v2(:u1, :c1), pg_background_wait_v2(:u2, :c2);
SELECT state, consumed FROM pg_background_list WHERE pid IN (:u1, :u2);
SELECT try_sql('SELECT pg_background_launch(''SELECT 3'')');
SELECT pg_background_launch('SELECT 3');
-- reading one makes room; both results are intact
SELECT * FROM pg_background_result(:u1) AS (r text);
SELECT read_outcome(pg_background_launch('SELECT ''third'''));
SELECT * FROM pg_background_result(:u2) AS (r text);
SET pg_background.max_unread_results = 0;
RESET pg_background.max_unread_results;

-- an autonomous transaction: the worker's commit survives the caller's rollback
BEGIN;
SELECT pg_background_launch('INSERT INTO audit VALUES (''x'')') AS pid \gset
ROLLBACK;
SELECT read_outcome(:pid);
SELECT count(*) FROM audit WHERE msg = 'x';

-- the worker sees only committed data
BEGIN;
INSERT INTO audit VALUES ('uncommitted');
SELECT run('SELECT count(*) FROM audit WHERE msg = ''uncommitted''', 'r bigint');
ROLLBACK;

-- identity: session user = login role, current user = the caller's at launch
CREATE ROLE pgbg_alice IN ROLE pgbackground_role;
GRANT SELECT ON t TO pgbg_alice;
SET ROLE pgbg_alice;
SELECT pg_background_launch('SELECT session_user::text || '','' || current_user::text') AS pid \gset
RESET ROLE;
SELECT read_outcome(:pid);
SET ROLE pgbg_alice;
SELECT run('SELECT count(*) FROM audit', 'r bigint');
RESET ROLE;

-- a SECURITY DEFINER caller: the worker runs as the definer and cannot SET ROLE
CREATE FUNCTION launch_as_definer(sql text) RETURNS int
  LANGUAGE sql SECURITY DEFINER AS $$ SELECT pg_background_launch(sql) $$;
ALTER FUNCTION launch_as_definer(text) OWNER TO pgbg_alice;
SELECT read_outcome(launch_as_definer('SELECT current_user::text'));
SELECT read_outcome(launch_as_definer('SET ROLE postgres'));
DROP FUNCTION launch_as_definer(text);

-- a role that does not own the worker may not read or detach it
CREATE ROLE pgbg_bob IN ROLE pgbackground_role;
SET ROLE pgbg_alice;
SELECT pg_background_launch('SELECT 1') AS pid \gset
SET ROLE pgbg_bob;
SELECT read_outcome(:pid);
SELECT detach_outcome(:pid);
SET ROLE pgbg_alice;
SELECT read_outcome(:pid, 'r int');
RESET ROLE;
-- a superuser has the privileges of every role
SET ROLE pgbg_alice;
SELECT pg_background_launch('SELECT 2') AS pid \gset
RESET ROLE;
SELECT read_outcome(:pid, 'r int');

-- settings are inherited
SET work_mem = '7MB';
SET search_path = pg_catalog, public;
SELECT run('SHOW work_mem');
SELECT run('SHOW search_path');
RESET work_mem;
RESET search_path;
-- temp tables are not
CREATE TEMP TABLE tmp1(a int);
SELECT run('SELECT * FROM tmp1');

DROP OWNED BY pgbg_alice;
DROP ROLE pgbg_alice;
DROP ROLE pgbg_bob;
