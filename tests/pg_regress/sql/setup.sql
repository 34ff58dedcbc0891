-- Shared set-up of the regression tests (run first, in the same database).
CREATE EXTENSION pg_background;

CREATE TABLE t(id int);
CREATE TABLE audit(msg text);

-- Outcome of reading a worker's result, with PIDs masked so that the output is stable:
-- 'rows: ...' or 'ERROR <sqlstate>: <message> [| detail] [| hint] | context: <context>'.
CREATE FUNCTION read_outcome(pid int, coldef text DEFAULT 'r text')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  rows text;
  st text; msg text; det text; hnt text; ctx text;
BEGIN
  EXECUTE format('SELECT string_agg(r::text, '','') FROM pg_background_result(%s) AS t(%s)',
                 pid, coldef) INTO rows;
  RETURN 'rows: ' || coalesce(rows, '(none)');
EXCEPTION WHEN OTHERS OR query_canceled THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                          hnt = PG_EXCEPTION_HINT, ctx = PG_EXCEPTION_CONTEXT;
  -- keep the worker's own context lines, drop this function's, mask the PID
  ctx := regexp_replace(ctx, E'\\n?PL/pgSQL function read_outcome\\(integer,text\\) line \\d+ at EXECUTE', '', 'g');
  ctx := regexp_replace(ctx, E'\\n?SQL statement "SELECT string_agg[^\\n]*', '', 'g');
  ctx := regexp_replace(ctx, 'pid \d+', 'pid N', 'g');
  msg := regexp_replace(msg, 'PID "?\d+"?', 'PID N', 'g');
  RETURN 'ERROR ' || st || ': ' || msg
         || CASE WHEN det <> '' THEN ' | detail: ' || det ELSE '' END
         || CASE WHEN hnt <> '' THEN ' | hint: ' || hnt ELSE '' END
         || CASE WHEN ctx <> '' THEN ' | context: ' || replace(ctx, E'\n', ' / ') ELSE '' END;
END$$;

-- Outcome of detaching, with PIDs masked.
CREATE FUNCTION detach_outcome(pid int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_background_detach(pid);
  RETURN 'detached';
EXCEPTION WHEN OTHERS THEN
  RETURN 'ERROR ' || SQLSTATE || ': ' || regexp_replace(SQLERRM, 'PID "?\d+"?', 'PID N', 'g');
END$$;

-- Launch and read in one go.
CREATE FUNCTION run(sql text, coldef text DEFAULT 'r text')
RETURNS text LANGUAGE sql AS $$ SELECT read_outcome(pg_background_launch(sql), coldef) $$;

-- Wait (bounded) until a condition holds; for effects of detached workers.
CREATE FUNCTION wait_until(cond text, timeout_ms int DEFAULT 10000)
RETURNS bool LANGUAGE plpgsql AS $$
DECLARE ok bool;
BEGIN
  FOR i IN 1..greatest(timeout_ms / 10, 1) LOOP
    PERFORM pg_stat_clear_snapshot();  -- pg_stat_activity is otherwise frozen for the transaction
    EXECUTE 'SELECT ' || cond INTO ok;
    IF ok THEN RETURN true; END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN false;
END$$;

-- Outcome of any statement, with PIDs masked: 'ok: <first column>' or 'ERROR <sqlstate>: ...'
CREATE FUNCTION try_sql(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE v text; st text; msg text; hnt text;
BEGIN
  EXECUTE sql INTO v;
  RETURN 'ok: ' || coalesce(v, '(null)');
EXCEPTION WHEN OTHERS OR query_canceled THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hnt = PG_EXCEPTION_HINT;
  RETURN 'ERROR ' || st || ': ' || regexp_replace(msg, 'PID "?\d+"?', 'PID N', 'g')
         || CASE WHEN hnt <> '' THEN ' | hint: ' || hnt ELSE '' END;
END$$;

