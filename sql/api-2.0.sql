-- The 2.0 API: the SQL surface of the C extension's 2.0 release (names, arguments and their
-- defaults, result types, composite types, views, STRICT-ness, the objects that carry a
-- comment), served by this library. It follows api-change-begin.sql, which has dropped the
-- other API's functions and views; api-change-end.sql follows it. The extension's additions
-- (pg_background_jobs, pg_background_launch_kept, pg_background_job_result,
-- pg_background_autonomous, …) are the same as with the 1.x API.
--
-- The unsuffixed names are the handle API; the `_v2` names are aliases of them, deprecated by
-- 2.0. The functions implemented in C by the C extension are bound to its symbol names, which
-- this library exports, so that an installation made by the C extension's 2.0 script and one
-- made by this script call the same code.

SELECT pg_background_api_change_reshape('pg_background_handle', 'pid integer, cookie bigint');
SELECT pg_background_api_change_reshape('pg_background_stats',
  'workers_launched bigint, workers_completed bigint, workers_failed bigint, '
  'workers_canceled bigint, workers_timed_out bigint, workers_active integer, '
  'avg_execution_ms double precision, max_workers integer');
SELECT pg_background_api_change_reshape('pg_background_progress', NULL);
SELECT pg_background_api_change_reshape('pg_background_progress_info',
  'progress_pct integer, progress_msg text');
SELECT pg_background_api_change_reshape('pg_background_result_info',
  'row_count bigint, command_tag text, completed boolean, has_error boolean, '
  'started_at timestamp with time zone, finished_at timestamp with time zone');
SELECT pg_background_api_change_reshape('pg_background_error',
  'sqlstate text, message text, detail text, hint text, context text, schema_name text, '
  'table_name text, column_name text, constraint_name text');
SELECT pg_background_api_change_reshape('pg_background_outcome',
  'pid integer, cookie bigint, state text, consumed boolean, completed boolean, '
  'has_error boolean, row_count bigint, command_tag text, sqlstate text, error_message text, '
  'label text, launched_at timestamp with time zone');
SELECT pg_background_api_change_reshape('pg_background_run_result',
  'pid integer, cookie bigint, state text, consumed boolean, completed boolean, '
  'has_error boolean, row_count bigint, command_tag text, sqlstate text, error_message text, '
  'label text, launched_at timestamp with time zone, timed_out boolean, elapsed_ms bigint');

-- Launching. The two-argument forms are STRICT; the labelled ones accept a NULL label.
CREATE FUNCTION pg_background_launch(sql text, queue_size int4 DEFAULT 0)
RETURNS pg_background_handle STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_launch';
CREATE FUNCTION pg_background_launch(sql text, queue_size int4, label text)
RETURNS pg_background_handle VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_launch';
CREATE FUNCTION pg_background_submit(sql text, queue_size int4 DEFAULT 0)
RETURNS pg_background_handle STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_submit';
CREATE FUNCTION pg_background_submit(sql text, queue_size int4, label text)
RETURNS pg_background_handle VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_submit';

-- Reading, detaching, cancelling, waiting.
CREATE FUNCTION pg_background_result(pid int4, cookie int8)
RETURNS SETOF record STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_result';
CREATE FUNCTION pg_background_detach(pid int4, cookie int8)
RETURNS void STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_detach';
CREATE FUNCTION pg_background_cancel(pid int4, cookie int8, grace_ms int4 DEFAULT 0)
RETURNS void STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_cancel';
COMMENT ON FUNCTION pg_background_cancel(int4, int8, int4) IS
  'Asks the job to stop (its query is cancelled with SQLSTATE 57014). With grace_ms > 0, '
  'also waits up to that long (at most one hour) for the worker to exit. The worker is never '
  'killed.';
CREATE FUNCTION pg_background_wait(pid int4, cookie int8, timeout_ms int4 DEFAULT 0)
RETURNS bool STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_wait';
COMMENT ON FUNCTION pg_background_wait(int4, int8, int4) IS
  'Waits until the worker has exited, without polling. With timeout_ms <= 0 waits as long as '
  'it takes and returns true; with timeout_ms > 0 returns false if the time ran out first.';

-- The session's jobs and statistics.
CREATE FUNCTION pg_background_list()
RETURNS SETOF record VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_list';
CREATE FUNCTION pg_background_stats()
RETURNS pg_background_stats VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_stats';
COMMENT ON FUNCTION pg_background_stats() IS
  'Counts of this session''s jobs: launched, completed, failed, cancelled, given up on after a '
  'timeout, still active; their mean run time; the session''s limit.';
CREATE FUNCTION pg_background_record_timeout()
RETURNS void VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_record_timeout';
COMMENT ON FUNCTION pg_background_record_timeout() IS
  'Counts one job given up on after a timeout in workers_timed_out of pg_background_stats() '
  '(pg_background_run and pg_background_run_query count theirs).';

-- Progress, reported from inside a job and read by its launcher.
CREATE FUNCTION pg_background_report_progress(pct int4, msg text DEFAULT NULL)
RETURNS void VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_report_progress';
COMMENT ON FUNCTION pg_background_report_progress(int4, text) IS
  'Called by the SQL a job runs: records a percentage (0 to 100) and a short message that the '
  'launcher reads with pg_background_get_progress.';
CREATE FUNCTION pg_background_get_progress(pid int4, cookie int8)
RETURNS pg_background_progress_info VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_get_progress';
COMMENT ON FUNCTION pg_background_get_progress(int4, int8) IS
  'The progress the job last reported, or NULL if it has reported none.';

-- Looking at a job without consuming its result.
CREATE FUNCTION pg_background_result_info(pid int4, cookie int8)
RETURNS pg_background_result_info STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_result_info';
COMMENT ON FUNCTION pg_background_result_info(int4, int8) IS
  'Rows and command tag of the job''s last statement, whether it has finished and whether it '
  'failed, and when it started and finished. Leaves the result to be read.';
CREATE FUNCTION pg_background_error_info(pid int4, cookie int8)
RETURNS pg_background_error STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_error_info';
COMMENT ON FUNCTION pg_background_error_info(int4, int8) IS
  'The error that ended the job (SQLSTATE, message, detail, hint, context, and the schema, '
  'table, column and constraint it names), or NULL if it has not failed.';

-- All of the session's jobs at once.
CREATE FUNCTION pg_background_detach_all()
RETURNS int4 VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_detach_all';
COMMENT ON FUNCTION pg_background_detach_all() IS
  'Detaches every job of this session; returns how many.';
CREATE FUNCTION pg_background_cancel_all()
RETURNS int4 VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_cancel_all';
COMMENT ON FUNCTION pg_background_cancel_all() IS
  'Asks every running job of this session to stop; returns how many were asked.';

CREATE VIEW pg_background_list AS
  SELECT * FROM pg_background_list() AS (
    pid int4, cookie int8, launched_at timestamptz, user_id oid, queue_size int4, state text,
    sql_preview text, last_error text, consumed bool, label text);
COMMENT ON VIEW pg_background_list IS
  'This session''s jobs, one row each (pg_background_list() without a column definition list).';
CREATE VIEW pg_background_activity AS
  SELECT l.pid, l.cookie, l.launched_at, l.user_id, l.queue_size, l.state AS pgbg_state,
         l.sql_preview, l.last_error, l.consumed, l.label,
         a.state AS backend_state, a.wait_event_type, a.wait_event, a.xact_start, a.query_start,
         a.backend_start, a.query
    FROM pg_background_list l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid;
COMMENT ON VIEW pg_background_activity IS
  'pg_background_list with what pg_stat_activity shows of each worker process.';

-- The helpers built on the handle API (not STRICT: a NULL argument has a meaning, given in
-- docs/operations.md).
CREATE FUNCTION pg_background_outcome(p_pid int4, p_cookie int8)
RETURNS pg_background_outcome VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_outcome_v2_wrapper';
COMMENT ON FUNCTION pg_background_outcome(int4, int8) IS
  'State, result information and error of a job in one row. Never raises: a handle this '
  'session does not have is in state unknown.';
CREATE FUNCTION pg_background_run(sql text, queue_size int4 DEFAULT 0, timeout_ms int4 DEFAULT 0,
                                  label text DEFAULT NULL)
RETURNS pg_background_run_result VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_run_v2_wrapper';
COMMENT ON FUNCTION pg_background_run(text, int4, int4, text) IS
  'Runs sql in a worker and waits for it: its outcome, whether it timed out (then it is '
  'cancelled with a second of grace, and counted in workers_timed_out) and the time taken. '
  'The rows are not returned: see pg_background_run_query.';
CREATE FUNCTION pg_background_run_query(sql text, queue_size int4 DEFAULT 0,
                                        timeout_ms int4 DEFAULT 0, label text DEFAULT NULL,
                                        col_def text DEFAULT NULL)
RETURNS SETOF record VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_run_query_v2_wrapper';
COMMENT ON FUNCTION pg_background_run_query(text, int4, int4, text, text) IS
  'Runs sql in a worker and returns its rows, typed by the column definition list of the call '
  '(col_def is accepted and not needed). A job that outlives timeout_ms > 0 is cancelled and '
  'the call fails with SQLSTATE 57014.';
CREATE FUNCTION pg_background_drain(handles pg_background_handle[], timeout_ms int4 DEFAULT 0)
RETURNS SETOF pg_background_outcome VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_drain_v2_wrapper';
COMMENT ON FUNCTION pg_background_drain(pg_background_handle[], int4) IS
  'Waits for each job (all within timeout_ms if > 0), returns their outcomes in the order '
  'given, and detaches them.';
CREATE FUNCTION pg_background_wait_any(handles pg_background_handle[], timeout_ms int4 DEFAULT 0)
RETURNS pg_background_handle VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_wait_any_v2_wrapper';
COMMENT ON FUNCTION pg_background_wait_any(pg_background_handle[], int4) IS
  'The first of the jobs to finish, or NULL if timeout_ms (> 0) passes first. Sleeps until a '
  'worker exits, without polling.';
-- The extension's wait for the first of several jobs by their ids, named so as not to overload
-- 2.0's pg_background_wait_any, which takes handles (with the 1.x API:
-- pg_background_wait_any(job_ids int8[], …)).
CREATE FUNCTION pg_background_wait_any_job(job_ids int8[], timeout_ms int4 DEFAULT 0)
RETURNS int8 STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_wait_any_wrapper';
CREATE FUNCTION pg_background_cancel_by_label(pattern text, grace_ms int4 DEFAULT 0)
RETURNS int4 VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_cancel_by_label_v2_wrapper';
COMMENT ON FUNCTION pg_background_cancel_by_label(text, int4) IS
  'Asks every running job of this session whose label matches the LIKE pattern to stop; '
  'returns how many.';
CREATE FUNCTION pg_background_purge()
RETURNS int4 VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_purge_v2_wrapper';
COMMENT ON FUNCTION pg_background_purge() IS
  'Detaches the jobs of this session whose worker has exited (pg_background_detach_all '
  'detaches all); returns how many.';
CREATE FUNCTION pg_background_full_sql(pid int4, cookie int8)
RETURNS text STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_full_sql';
COMMENT ON FUNCTION pg_background_full_sql(int4, int8) IS
  'The whole SQL of the job (pg_background_list shows its start), cut at 64 kB with [...].';

-- The aliases 2.0 keeps for code written against the `_v2` names, bound to the same code.
CREATE FUNCTION pg_background_launch_v2(sql text, queue_size int4 DEFAULT 0)
RETURNS pg_background_handle STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_launch';
CREATE FUNCTION pg_background_launch_v2(sql text, queue_size int4, label text)
RETURNS pg_background_handle VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_launch';
CREATE FUNCTION pg_background_submit_v2(sql text, queue_size int4 DEFAULT 0)
RETURNS pg_background_handle STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_submit';
CREATE FUNCTION pg_background_submit_v2(sql text, queue_size int4, label text)
RETURNS pg_background_handle VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_submit';
CREATE FUNCTION pg_background_result_v2(pid int4, cookie int8)
RETURNS SETOF record STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_result';
CREATE FUNCTION pg_background_detach_v2(pid int4, cookie int8)
RETURNS void STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_detach';
CREATE FUNCTION pg_background_cancel_v2(pid int4, cookie int8, grace_ms int4 DEFAULT 0)
RETURNS void STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_cancel';
CREATE FUNCTION pg_background_wait_v2(pid int4, cookie int8, timeout_ms int4 DEFAULT 0)
RETURNS bool STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_wait';
CREATE FUNCTION pg_background_list_v2()
RETURNS SETOF record VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_list';
CREATE FUNCTION pg_background_stats_v2()
RETURNS pg_background_stats VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_stats';
CREATE FUNCTION pg_background_get_progress_v2(pid int4, cookie int8)
RETURNS pg_background_progress_info VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_get_progress';
CREATE FUNCTION pg_background_result_info_v2(pid int4, cookie int8)
RETURNS pg_background_result_info STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_result_info';
CREATE FUNCTION pg_background_error_info_v2(pid int4, cookie int8)
RETURNS pg_background_error STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_error_info';
CREATE FUNCTION pg_background_detach_all_v2()
RETURNS int4 VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_detach_all';
CREATE FUNCTION pg_background_cancel_all_v2()
RETURNS int4 VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_cancel_all';
CREATE FUNCTION pg_background_full_sql_v2(pid int4, cookie int8)
RETURNS text STRICT VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_full_sql';
CREATE FUNCTION pg_background_outcome_v2(p_pid int4, p_cookie int8)
RETURNS pg_background_outcome VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_outcome_v2_wrapper';
CREATE FUNCTION pg_background_run_v2(sql text, queue_size int4 DEFAULT 0,
                                     timeout_ms int4 DEFAULT 0, label text DEFAULT NULL)
RETURNS pg_background_run_result VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_run_v2_wrapper';
CREATE FUNCTION pg_background_run_query_v2(sql text, queue_size int4 DEFAULT 0,
                                           timeout_ms int4 DEFAULT 0, label text DEFAULT NULL,
                                           col_def text DEFAULT NULL)
RETURNS SETOF record VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_run_query_v2_wrapper';
CREATE FUNCTION pg_background_drain_v2(handles pg_background_handle[], timeout_ms int4 DEFAULT 0)
RETURNS SETOF pg_background_outcome VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_drain_v2_wrapper';
CREATE FUNCTION pg_background_wait_any_v2(handles pg_background_handle[],
                                          timeout_ms int4 DEFAULT 0)
RETURNS pg_background_handle VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_wait_any_v2_wrapper';
CREATE FUNCTION pg_background_cancel_by_label_v2(pattern text, grace_ms int4 DEFAULT 0)
RETURNS int4 VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_cancel_by_label_v2_wrapper';
CREATE FUNCTION pg_background_purge_v2()
RETURNS int4 VOLATILE
LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_purge_v2_wrapper';

DO $deprecated$
DECLARE
  alias regprocedure;
BEGIN
  FOR alias IN
    SELECT p.oid::regprocedure
      FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
      JOIN pg_catalog.pg_proc p ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                               AND p.oid = d.objid
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND e.extname = 'pg_background' AND d.deptype = 'e'
       AND p.proname LIKE 'pg\_background\_%\_v2'
  LOOP
    EXECUTE pg_catalog.format(
      'COMMENT ON FUNCTION %s IS %L', alias,
      'DEPRECATED since 2.0 and to go in 3.0: call '
        || pg_catalog.regexp_replace(pg_catalog.split_part(alias::text, '(', 1), '_v2$', '')
        || ' instead.');
  END LOOP;
END$deprecated$;

-- 2.0's names of the grant helpers (1.x: grant_pg_background_privileges and
-- revoke_pg_background_privileges), on the same body.
CREATE FUNCTION pg_background_grant_privileges(role_name text, print_commands boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  schema_name text := (SELECT n.nspname FROM pg_catalog.pg_extension e
                         JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                        WHERE e.extname = 'pg_background');
  ok boolean;
BEGIN
  IF schema_name IS NULL THEN
    RAISE EXCEPTION 'pg_background extension not found';
  END IF;
  EXECUTE pg_catalog.format('SELECT %I.pg_background_apply_privileges(true, $1, $2, $3)', schema_name)
    INTO ok USING role_name, print_commands, schema_name;
  RETURN ok;
END$$;
CREATE FUNCTION pg_background_revoke_privileges(role_name text, print_commands boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  schema_name text := (SELECT n.nspname FROM pg_catalog.pg_extension e
                         JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                        WHERE e.extname = 'pg_background');
  ok boolean;
BEGIN
  IF schema_name IS NULL THEN
    RAISE EXCEPTION 'pg_background extension not found';
  END IF;
  EXECUTE pg_catalog.format('SELECT %I.pg_background_apply_privileges(false, $1, $2, $3)', schema_name)
    INTO ok USING role_name, print_commands, schema_name;
  RETURN ok;
END$$;

-- As with the 1.x API: PUBLIC gets nothing, pgbackground_role what a user needs, and the
-- helpers stay with their owner.
DO $$
DECLARE
  obj record;
BEGIN
  FOR obj IN SELECT * FROM pg_background_grantable_objects() LOOP
    EXECUTE pg_catalog.format('REVOKE %s ON %s FROM PUBLIC', obj.privilege, obj.object);
  END LOOP;
END$$;
REVOKE ALL ON FUNCTION pg_background_grant_privileges(text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_background_revoke_privileges(text, boolean) FROM PUBLIC;
SELECT pg_background_grant_privileges('pgbackground_role', false);
