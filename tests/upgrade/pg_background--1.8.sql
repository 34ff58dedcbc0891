-- A stand-in for the install script of the C extension pg_background 1.8, written from the
-- signatures in the behaviour reference (not from its code): the catalog surface that a real
-- 1.8 installation has, each C function's prosrc equal to its SQL name, bound to whatever
-- library is installed as $libdir/pg_background. tests/upgrade/run.sh installs it as version
-- '1.8', exercises it, and updates it to ours.

CREATE TYPE pg_background_handle AS (pid int4, cookie int8);
CREATE TYPE pg_background_stats AS (
    workers_launched int8, workers_completed int8, workers_failed int8, workers_canceled int8,
    workers_active int4, avg_execution_ms float8, max_workers int4);
CREATE TYPE pg_background_progress AS (progress_pct int4, progress_msg text);

CREATE FUNCTION pg_background_launch(sql text, queue_size int4 DEFAULT 0) RETURNS int4
    STRICT VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_launch';
CREATE FUNCTION pg_background_result(pid int4) RETURNS SETOF record
    STRICT VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_result';
CREATE FUNCTION pg_background_detach(pid int4) RETURNS void
    STRICT VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_detach';
CREATE FUNCTION pg_background_launch_v2(sql text, queue_size int4 DEFAULT 0) RETURNS pg_background_handle
    STRICT VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_launch_v2';
CREATE FUNCTION pg_background_submit_v2(sql text, queue_size int4 DEFAULT 0) RETURNS pg_background_handle
    STRICT VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_submit_v2';
CREATE FUNCTION pg_background_result_v2(pid int4, cookie int8) RETURNS SETOF record
    STRICT VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_result_v2';
CREATE FUNCTION pg_background_detach_v2(pid int4, cookie int8) RETURNS void
    STRICT VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_detach_v2';
CREATE FUNCTION pg_background_cancel_v2(pid int4, cookie int8) RETURNS void
    STRICT VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_cancel_v2';
CREATE FUNCTION pg_background_cancel_v2_grace(pid int4, cookie int8, grace_ms int4) RETURNS void
    STRICT VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_cancel_v2_grace';
CREATE FUNCTION pg_background_wait_v2(pid int4, cookie int8) RETURNS void
    STRICT VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_wait_v2';
CREATE FUNCTION pg_background_wait_v2_timeout(pid int4, cookie int8, timeout_ms int4) RETURNS bool
    STRICT VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_wait_v2_timeout';
CREATE FUNCTION pg_background_list_v2() RETURNS SETOF record
    VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_list_v2';
CREATE FUNCTION pg_background_stats_v2() RETURNS pg_background_stats
    VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_stats_v2';
CREATE FUNCTION pg_background_progress(pct int4, msg text DEFAULT NULL) RETURNS void
    VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_progress';
CREATE FUNCTION pg_background_get_progress_v2(pid int4, cookie int8) RETURNS pg_background_progress
    VOLATILE PARALLEL UNSAFE LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_get_progress_v2';

CREATE FUNCTION grant_pg_background_privileges(role_name text, print_commands boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
  s text;
  f text;
BEGIN
  SELECT n.nspname INTO s FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'pg_background';
  IF s IS NULL THEN RAISE EXCEPTION 'pg_background extension not found'; END IF;
  FOREACH f IN ARRAY ARRAY['pg_background_launch(text,int4)', 'pg_background_result(int4)',
      'pg_background_detach(int4)', 'pg_background_launch_v2(text,int4)',
      'pg_background_submit_v2(text,int4)', 'pg_background_result_v2(int4,int8)',
      'pg_background_detach_v2(int4,int8)', 'pg_background_cancel_v2(int4,int8)',
      'pg_background_cancel_v2_grace(int4,int8,int4)', 'pg_background_wait_v2(int4,int8)',
      'pg_background_wait_v2_timeout(int4,int8,int4)', 'pg_background_list_v2()',
      'pg_background_stats_v2()', 'pg_background_progress(int4,text)',
      'pg_background_get_progress_v2(int4,int8)'] LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.%s TO %I', s, f, role_name);
  END LOOP;
  EXECUTE format('GRANT USAGE ON TYPE %I.pg_background_handle, %I.pg_background_stats, %I.pg_background_progress TO %I', s, s, s, role_name);
  RETURN true;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'Error granting pg_background privileges to %: %', role_name, SQLERRM;
  RETURN false;
END$$;

CREATE FUNCTION revoke_pg_background_privileges(role_name text, print_commands boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
  RETURN true;
END$$;

CREATE FUNCTION pg_background_drop_executor_role() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgbackground_role') THEN
    DROP ROLE pgbackground_role;
  END IF;
END$$;

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgbackground_role') THEN
    CREATE ROLE pgbackground_role NOLOGIN INHERIT;
  END IF;
END$$;
REVOKE ALL ON FUNCTION pg_background_launch(text, int4), pg_background_result(int4),
    pg_background_detach(int4), pg_background_launch_v2(text, int4),
    pg_background_submit_v2(text, int4), pg_background_result_v2(int4, int8),
    pg_background_detach_v2(int4, int8), pg_background_cancel_v2(int4, int8),
    pg_background_cancel_v2_grace(int4, int8, int4), pg_background_wait_v2(int4, int8),
    pg_background_wait_v2_timeout(int4, int8, int4), pg_background_list_v2(),
    pg_background_stats_v2(), pg_background_progress(int4, text),
    pg_background_get_progress_v2(int4, int8),
    grant_pg_background_privileges(text, boolean), revoke_pg_background_privileges(text, boolean),
    pg_background_drop_executor_role() FROM PUBLIC;
REVOKE USAGE ON TYPE pg_background_handle, pg_background_stats, pg_background_progress FROM PUBLIC;
SELECT grant_pg_background_privileges('pgbackground_role', false);
