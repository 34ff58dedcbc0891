-- A stand-in for the C extension pg_background 2.0's install script, written by us from 2.0's
-- published SQL surface: its composite types, its functions (names, argument names and
-- defaults, result types, STRICT-ness), its views, the objects it comments on, its role and its
-- grants. The C functions have their prosrc as 2.0 binds them. 2.0 writes its helpers (outcome,
-- run, run_query, drain, wait_any, cancel_by_label, purge and their `_v2` aliases) in PL/pgSQL
-- and SQL over the C functions; here they are bound to our library's implementations, with the
-- same declarations. Comments are placeholders: only which objects have one is 2.0's.
-- tests/upgrade/run.sh installs it as version '2.0', runs jobs through it with our library,
-- updates it to ours, and compares its surface with that of our version with the 2.0 API.

CREATE TYPE pg_background_handle AS (pid int4, cookie int8);
CREATE TYPE pg_background_stats AS (
    workers_launched int8, workers_completed int8, workers_failed int8, workers_canceled int8,
    workers_timed_out int8, workers_active int4, avg_execution_ms float8, max_workers int4);
CREATE TYPE pg_background_progress_info AS (progress_pct int4, progress_msg text);
CREATE TYPE pg_background_result_info AS (
    row_count int8, command_tag text, completed bool, has_error bool,
    started_at timestamptz, finished_at timestamptz);
CREATE TYPE pg_background_error AS (
    sqlstate text, message text, detail text, hint text, context text,
    schema_name text, table_name text, column_name text, constraint_name text);

-- the canonical names
CREATE FUNCTION pg_background_launch(sql text, queue_size int4 DEFAULT 0) RETURNS pg_background_handle
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_launch';
CREATE FUNCTION pg_background_launch(sql text, queue_size int4, label text) RETURNS pg_background_handle
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_launch';
CREATE FUNCTION pg_background_submit(sql text, queue_size int4 DEFAULT 0) RETURNS pg_background_handle
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_submit';
CREATE FUNCTION pg_background_submit(sql text, queue_size int4, label text) RETURNS pg_background_handle
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_submit';
CREATE FUNCTION pg_background_result(pid int4, cookie int8) RETURNS SETOF record
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_result';
CREATE FUNCTION pg_background_detach(pid int4, cookie int8) RETURNS void
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_detach';
CREATE FUNCTION pg_background_cancel(pid int4, cookie int8, grace_ms int4 DEFAULT 0) RETURNS void
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_cancel';
CREATE FUNCTION pg_background_wait(pid int4, cookie int8, timeout_ms int4 DEFAULT 0) RETURNS bool
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_wait';
CREATE FUNCTION pg_background_list() RETURNS SETOF record
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_list';
CREATE FUNCTION pg_background_stats() RETURNS pg_background_stats
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_stats';
CREATE FUNCTION pg_background_record_timeout() RETURNS void
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_record_timeout';
CREATE FUNCTION pg_background_report_progress(pct int4, msg text DEFAULT NULL) RETURNS void
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_report_progress';
CREATE FUNCTION pg_background_get_progress(pid int4, cookie int8) RETURNS pg_background_progress_info
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_get_progress';
CREATE FUNCTION pg_background_result_info(pid int4, cookie int8) RETURNS pg_background_result_info
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_result_info';
CREATE FUNCTION pg_background_error_info(pid int4, cookie int8) RETURNS pg_background_error
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_error_info';
CREATE FUNCTION pg_background_detach_all() RETURNS int4
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_detach_all';
CREATE FUNCTION pg_background_cancel_all() RETURNS int4
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_cancel_all';
CREATE FUNCTION pg_background_full_sql(pid int4, cookie int8) RETURNS text
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_full_sql';

CREATE VIEW pg_background_list AS
  SELECT * FROM pg_background_list()
    AS l(pid int4, cookie int8, launched_at timestamptz, user_id oid, queue_size int4,
         state text, sql_preview text, last_error text, consumed bool, label text);
CREATE VIEW pg_background_activity AS
  SELECT l.pid, l.cookie, l.launched_at, l.user_id, l.queue_size, l.state AS pgbg_state,
         l.sql_preview, l.last_error, l.consumed, l.label, s.state AS backend_state,
         s.wait_event_type, s.wait_event, s.xact_start, s.query_start, s.backend_start, s.query
    FROM pg_background_list l LEFT JOIN pg_catalog.pg_stat_activity s ON s.pid = l.pid;

CREATE TYPE pg_background_outcome AS (
    pid int4, cookie int8, state text, consumed bool, completed bool, has_error bool,
    row_count int8, command_tag text, sqlstate text, error_message text, label text,
    launched_at timestamptz);
CREATE TYPE pg_background_run_result AS (
    pid int4, cookie int8, state text, consumed bool, completed bool, has_error bool,
    row_count int8, command_tag text, sqlstate text, error_message text, label text,
    launched_at timestamptz, timed_out bool, elapsed_ms int8);

-- the helpers (not STRICT)
CREATE FUNCTION pg_background_outcome(p_pid int4, p_cookie int8) RETURNS pg_background_outcome
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_outcome_v2_wrapper';
CREATE FUNCTION pg_background_run(sql text, queue_size int4 DEFAULT 0, timeout_ms int4 DEFAULT 0,
    label text DEFAULT NULL) RETURNS pg_background_run_result
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_run_v2_wrapper';
CREATE FUNCTION pg_background_run_query(sql text, queue_size int4 DEFAULT 0, timeout_ms int4 DEFAULT 0,
    label text DEFAULT NULL, col_def text DEFAULT NULL) RETURNS SETOF record
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_run_query_v2_wrapper';
CREATE FUNCTION pg_background_drain(handles pg_background_handle[], timeout_ms int4 DEFAULT 0)
    RETURNS SETOF pg_background_outcome
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_drain_v2_wrapper';
CREATE FUNCTION pg_background_wait_any(handles pg_background_handle[], timeout_ms int4 DEFAULT 0)
    RETURNS pg_background_handle
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_wait_any_v2_wrapper';
CREATE FUNCTION pg_background_cancel_by_label(pattern text, grace_ms int4 DEFAULT 0) RETURNS int4
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_cancel_by_label_v2_wrapper';
CREATE FUNCTION pg_background_purge() RETURNS int4
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_purge_v2_wrapper';

-- the deprecated `_v2` aliases: the C ones bound to the canonical symbols, the helpers' as above
CREATE FUNCTION pg_background_launch_v2(sql text, queue_size int4 DEFAULT 0) RETURNS pg_background_handle
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_launch';
CREATE FUNCTION pg_background_launch_v2(sql text, queue_size int4, label text) RETURNS pg_background_handle
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_launch';
CREATE FUNCTION pg_background_submit_v2(sql text, queue_size int4 DEFAULT 0) RETURNS pg_background_handle
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_submit';
CREATE FUNCTION pg_background_submit_v2(sql text, queue_size int4, label text) RETURNS pg_background_handle
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_submit';
CREATE FUNCTION pg_background_result_v2(pid int4, cookie int8) RETURNS SETOF record
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_result';
CREATE FUNCTION pg_background_detach_v2(pid int4, cookie int8) RETURNS void
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_detach';
CREATE FUNCTION pg_background_cancel_v2(pid int4, cookie int8, grace_ms int4 DEFAULT 0) RETURNS void
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_cancel';
CREATE FUNCTION pg_background_wait_v2(pid int4, cookie int8, timeout_ms int4 DEFAULT 0) RETURNS bool
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_wait';
CREATE FUNCTION pg_background_list_v2() RETURNS SETOF record
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_list';
CREATE FUNCTION pg_background_stats_v2() RETURNS pg_background_stats
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_stats';
CREATE FUNCTION pg_background_get_progress_v2(pid int4, cookie int8) RETURNS pg_background_progress_info
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_get_progress';
CREATE FUNCTION pg_background_result_info_v2(pid int4, cookie int8) RETURNS pg_background_result_info
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_result_info';
CREATE FUNCTION pg_background_error_info_v2(pid int4, cookie int8) RETURNS pg_background_error
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_error_info';
CREATE FUNCTION pg_background_detach_all_v2() RETURNS int4
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_detach_all';
CREATE FUNCTION pg_background_cancel_all_v2() RETURNS int4
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_cancel_all';
CREATE FUNCTION pg_background_full_sql_v2(pid int4, cookie int8) RETURNS text
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_full_sql';
CREATE FUNCTION pg_background_outcome_v2(p_pid int4, p_cookie int8) RETURNS pg_background_outcome
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_outcome_v2_wrapper';
CREATE FUNCTION pg_background_run_v2(sql text, queue_size int4 DEFAULT 0, timeout_ms int4 DEFAULT 0,
    label text DEFAULT NULL) RETURNS pg_background_run_result
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_run_v2_wrapper';
CREATE FUNCTION pg_background_run_query_v2(sql text, queue_size int4 DEFAULT 0, timeout_ms int4 DEFAULT 0,
    label text DEFAULT NULL, col_def text DEFAULT NULL) RETURNS SETOF record
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_run_query_v2_wrapper';
CREATE FUNCTION pg_background_drain_v2(handles pg_background_handle[], timeout_ms int4 DEFAULT 0)
    RETURNS SETOF pg_background_outcome
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_drain_v2_wrapper';
CREATE FUNCTION pg_background_wait_any_v2(handles pg_background_handle[], timeout_ms int4 DEFAULT 0)
    RETURNS pg_background_handle
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_wait_any_v2_wrapper';
CREATE FUNCTION pg_background_cancel_by_label_v2(pattern text, grace_ms int4 DEFAULT 0) RETURNS int4
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_cancel_by_label_v2_wrapper';
CREATE FUNCTION pg_background_purge_v2() RETURNS int4
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_purge_v2_wrapper';

-- the objects 2.0 comments on
DO $c$
DECLARE
  o text;
BEGIN
  FOREACH o IN ARRAY ARRAY[
      'FUNCTION pg_background_cancel(int4, int8, int4)', 'FUNCTION pg_background_wait(int4, int8, int4)',
      'FUNCTION pg_background_stats()', 'FUNCTION pg_background_record_timeout()',
      'FUNCTION pg_background_report_progress(int4, text)', 'FUNCTION pg_background_get_progress(int4, int8)',
      'FUNCTION pg_background_result_info(int4, int8)', 'FUNCTION pg_background_error_info(int4, int8)',
      'FUNCTION pg_background_detach_all()', 'FUNCTION pg_background_cancel_all()',
      'VIEW pg_background_list', 'VIEW pg_background_activity',
      'FUNCTION pg_background_outcome(int4, int8)', 'FUNCTION pg_background_run(text, int4, int4, text)',
      'FUNCTION pg_background_run_query(text, int4, int4, text, text)',
      'FUNCTION pg_background_drain(pg_background_handle[], int4)',
      'FUNCTION pg_background_wait_any(pg_background_handle[], int4)',
      'FUNCTION pg_background_cancel_by_label(text, int4)', 'FUNCTION pg_background_purge()',
      'FUNCTION pg_background_full_sql(int4, int8)',
      'FUNCTION pg_background_launch_v2(text, int4)', 'FUNCTION pg_background_launch_v2(text, int4, text)',
      'FUNCTION pg_background_submit_v2(text, int4)', 'FUNCTION pg_background_submit_v2(text, int4, text)',
      'FUNCTION pg_background_result_v2(int4, int8)', 'FUNCTION pg_background_detach_v2(int4, int8)',
      'FUNCTION pg_background_cancel_v2(int4, int8, int4)', 'FUNCTION pg_background_wait_v2(int4, int8, int4)',
      'FUNCTION pg_background_list_v2()', 'FUNCTION pg_background_stats_v2()',
      'FUNCTION pg_background_get_progress_v2(int4, int8)', 'FUNCTION pg_background_result_info_v2(int4, int8)',
      'FUNCTION pg_background_error_info_v2(int4, int8)', 'FUNCTION pg_background_detach_all_v2()',
      'FUNCTION pg_background_cancel_all_v2()', 'FUNCTION pg_background_full_sql_v2(int4, int8)',
      'FUNCTION pg_background_outcome_v2(int4, int8)', 'FUNCTION pg_background_run_v2(text, int4, int4, text)',
      'FUNCTION pg_background_run_query_v2(text, int4, int4, text, text)',
      'FUNCTION pg_background_drain_v2(pg_background_handle[], int4)',
      'FUNCTION pg_background_wait_any_v2(pg_background_handle[], int4)',
      'FUNCTION pg_background_cancel_by_label_v2(text, int4)', 'FUNCTION pg_background_purge_v2()']
  LOOP
    EXECUTE format('COMMENT ON %s IS %L', o, 'stand-in');
  END LOOP;
END$c$;

-- the role, the grant helpers (SECURITY DEFINER, pinned search_path), the lockdown
DO $r$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgbackground_role') THEN
    CREATE ROLE pgbackground_role NOLOGIN INHERIT;
  END IF;
END$r$;
CREATE FUNCTION pg_background_grant_privileges(role_name text, print_commands boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $g$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
            JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_background'
           WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e' AND NOT p.prosecdef LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, role_name);
  END LOOP;
  RETURN true;
END$g$;
CREATE FUNCTION pg_background_revoke_privileges(role_name text, print_commands boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $g$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
            JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_background'
           WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e' LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %I', f, role_name);
  END LOOP;
  RETURN true;
END$g$;
SELECT pg_background_grant_privileges('pgbackground_role');
CREATE FUNCTION pg_background_drop_executor_role() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $d$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgbackground_role') THEN
    DROP ROLE pgbackground_role;
  END IF;
END$d$;
DO $l$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
            JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_background'
           WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e' LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM public', f);
  END LOOP;
END$l$;

