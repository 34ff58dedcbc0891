-- The start of the update from a version with the 2.0 API to one with the 1.x API (after
-- api-change-begin.sql; the 1.x install script and api-change-end.sql follow). It runs only
-- when pg_background.allow_api_change is on: a plain ALTER EXTENSION pg_background UPDATE
-- targets the default version, which has the 1.x API, and must not change the API under the
-- callers of an installation with the 2.0 API.
DO $gate$
BEGIN
  IF NOT coalesce(pg_catalog.current_setting('pg_background.allow_api_change', true), 'off')::boolean THEN
    RAISE EXCEPTION 'this update would replace the 2.0 API of pg_background with the 1.x API'
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'The version updated to has the 1.x API, in which pg_background_launch returns a process ID, not a handle.',
            HINT = 'To keep the 2.0 API, update to the version of the same release that has it: ALTER EXTENSION pg_background UPDATE TO ''@API2_VERSION@''. To change the API, SET pg_background.allow_api_change = on and update again.';
  END IF;
END$gate$;

-- The 1.x API's composite types (the install script creates those that are absent).
SELECT pg_background_api_change_reshape('pg_background_stats',
  'workers_launched bigint, workers_completed bigint, workers_failed bigint, '
  'workers_canceled bigint, workers_active integer, avg_execution_ms double precision, '
  'max_workers integer');
SELECT pg_background_api_change_reshape('pg_background_progress_info', NULL);
SELECT pg_background_api_change_reshape('pg_background_result_info',
  'row_count bigint, command_tag text, completed boolean, has_error boolean');
SELECT pg_background_api_change_reshape('pg_background_error',
  'sqlstate text, message text, detail text, hint text, context text');
SELECT pg_background_api_change_reshape('pg_background_run_result',
  'pid integer, completed boolean, timed_out boolean, has_error boolean, row_count bigint, '
  'command_tag text, sqlstate text, error_message text, elapsed_ms bigint');
