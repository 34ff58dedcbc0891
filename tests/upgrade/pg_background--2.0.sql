-- A stand-in for the part of the C extension pg_background 2.0's install script that calls its
-- library, written by us from 2.0's published SQL surface (names, arguments, result types,
-- STRICT-ness): the composite types, every C function with its prosrc as 2.0 binds it, some of
-- the `_v2` aliases, which 2.0 binds to the same symbols, and the pg_background_list view. 2.0's
-- SQL-language helpers (outcome, run, drain, …) are left out: they only call these.
-- tests/upgrade/run.sh installs it as version '2.0' and runs jobs through it with our library.

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

-- the deprecated `_v2` aliases, bound to the same symbols
CREATE FUNCTION pg_background_launch_v2(sql text, queue_size int4 DEFAULT 0) RETURNS pg_background_handle
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_launch';
CREATE FUNCTION pg_background_result_v2(pid int4, cookie int8) RETURNS SETOF record
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_result';
CREATE FUNCTION pg_background_wait_v2(pid int4, cookie int8, timeout_ms int4 DEFAULT 0) RETURNS bool
    STRICT LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_wait';
CREATE FUNCTION pg_background_stats_v2() RETURNS pg_background_stats
    LANGUAGE C AS 'MODULE_PATHNAME', 'pg_background_stats';
