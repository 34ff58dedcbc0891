-- Bad input of every kind: a clean ERROR with its SQLSTATE (or the documented NULL result), and
-- the backend alive afterwards (each statement below runs in the same session).

-- every function of the extension with every argument NULL
SELECT p.oid::regprocedure AS function,
       try_sql(CASE
         WHEN p.prorettype = 'record'::regtype
              AND NOT coalesce(p.proargmodes && ARRAY['o', 'b', 't']::"char"[], false)
           THEN format('SELECT count(*) FROM %s AS (r text)', c.call)
         WHEN p.proretset THEN format('SELECT count(*) FROM %s', c.call)
         ELSE format('SELECT (%s) IS NULL', c.call) END) AS outcome
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
  CROSS JOIN LATERAL (SELECT format('%I(%s)', p.proname, string_agg(
           CASE WHEN t = '"any"'::regtype THEN 'NULL' ELSE 'NULL::' || format_type(t, NULL) END,
           ', ' ORDER BY i)) AS call
         FROM unnest(p.proargtypes) WITH ORDINALITY AS a(t, i)) c
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_background')
   AND p.pronargs > 0 AND p.proname NOT IN ('pg_background_apply_privileges')
 ORDER BY 1::text COLLATE "C";

-- the functions that are not STRICT, with one NULL at a time among valid arguments
SELECT f.name, i AS null_at, try_sql(format(f.shape, format('%s(%s)', f.name, (
         SELECT string_agg(CASE WHEN j = i THEN 'NULL' ELSE a END, ', ' ORDER BY j)
           FROM unnest(f.args) WITH ORDINALITY AS u(a, j))))) AS outcome
  FROM (VALUES
    ('pg_background_launch_v2', 'SELECT (%s).cookie <> 0', ARRAY['''SELECT 1''', '0', '''l''']),
    ('pg_background_submit_v2', 'SELECT (%s).cookie <> 0', ARRAY['''SELECT 1''', '0', '''l''']),
    ('pg_background_run_v2', 'SELECT (%s).sqlstate IS NULL', ARRAY['''SELECT 1''', '0', '1000', '''l''']),
    ('pg_background_run_query_v2', 'SELECT count(*) FROM %s AS (r int)', ARRAY['''SELECT 1''', '0', '1000', '''l''', '''r int''']),
    ('pg_background_autonomous', 'SELECT count(*) FROM %s AS (r text)', ARRAY['''SELECT $1::text''', '1']),
    ('pg_background_autonomous_exec', 'SELECT %s', ARRAY['''SELECT $1''', '1']),
    ('pg_background_progress', 'SELECT (%s) IS NULL', ARRAY['1', '''m''']),
    ('grant_pg_background_privileges', 'SELECT %s', ARRAY['''pgbackground_role''', 'false']),
    ('revoke_pg_background_privileges', 'SELECT %s', ARRAY['''nosuch''', 'false'])
  ) AS f(name, shape, args)
  CROSS JOIN LATERAL generate_series(1, cardinality(f.args)) AS i
 ORDER BY 1, 2;

-- sizes: queue sizes from the smallest to the largest int4
SELECT q, try_sql(format('SELECT read_outcome(pg_background_launch(''SELECT 1'', %s), ''r int'')', q)) AS outcome
  FROM unnest(ARRAY[-2147483648, -1, 0, 1, 63, 64, 268435456, 268435457, 2147483647]) AS q;
SELECT q, try_sql(format('SELECT (pg_background_launch_v2(''SELECT 1'', %s)).cookie <> 0', q)) AS outcome
  FROM unnest(ARRAY[-2147483648, 63, 268435457, 2147483647]) AS q;

-- timeouts and grace periods: negative, zero, huge (clamped, never an error); the job waits for a
-- lock this session holds until it is cancelled
SELECT pg_advisory_lock(4242);
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch_v2('SELECT pg_advisory_lock(4242)') h \gset
SELECT ms, try_sql(format('SELECT pg_background_wait_v2_timeout(%s, %s, %s)::text', :pid, :cookie, ms)) AS waited
  FROM unnest(ARRAY[-2147483648, -1, 0]) AS ms;
SELECT try_sql(format('SELECT pg_background_cancel_v2_grace(%s, %s, -1)::text', :pid, :cookie)) AS negative_grace;
SELECT pg_background_wait_v2_timeout(:pid, :cookie, 2147483647) AS waited;
SELECT try_sql(format('SELECT pg_background_cancel_v2_grace(%s, %s, 2147483647)::text', :pid, :cookie)) AS huge_grace;
SELECT pg_background_detach_v2(:pid, :cookie);
SELECT pg_advisory_unlock(4242);
SELECT t, try_sql(format('SELECT (pg_background_run_v2(''SELECT 1'', 0, %s)).sqlstate IS NULL', t)) AS run_timeout
  FROM unnest(ARRAY[-2147483648, -1, 0, 2147483647]) AS t;
-- settings outside their ranges (SQLSTATE only: the message's units differ between versions)
SELECT name, value, substr(try_sql(format('SELECT set_config(%L, %L, false)', name, value)), 1, 11) AS outcome
  FROM (VALUES ('pg_background.worker_timeout', '-1'), ('pg_background.worker_timeout', '25 days'),
               ('pg_background.max_workers', '0'), ('pg_background.max_workers', '1001'),
               ('pg_background.max_unread_results', '0'), ('pg_background.default_queue_size', '63'),
               ('pg_background.default_queue_size', '1GB'),
               ('pg_background.worker_idle_timeout', '-1'), ('pg_background.worker_idle_timeout', '2h'),
               ('pg_background.on_capacity', 'maybe'), ('pg_background.on_capacity', ''),
               ('pg_background.capacity_wait_timeout', '-1'),
               ('pg_background.spill_after', '-2'), ('pg_background.spill_after', '2h'),
               ('pg_background.spill_limit', '-2'), ('pg_background.spill_limit', '3TB')) AS s(name, value);

-- SQL text: empty, blank, comments only, invalid, multibyte, invalid encodings, 1 MB
SELECT run('');
SELECT run('   ');
SELECT run('-- nothing but a comment');
SELECT run('/* nothing */ ;;');
SELECT run('SELECT');
SELECT run('SELECT 1 FROM');
SELECT run('SELECT ''unterminated');
SELECT run('SELECT $$é ü 日本 🐘$$');
SELECT run('SELECT "é"');
SELECT run('SELECT convert_from(''\xff''::bytea, ''UTF8'')');
SELECT try_sql('SELECT pg_background_launch(convert_from(''\xc3''::bytea, ''UTF8''))') AS invalid_utf8_sql;
SELECT run(format('SELECT length(%L)', repeat('x', 1000000)), 'r int') AS one_mb_literal;
SELECT run('SELECT ' || repeat('1+', 300000) || '1', 'r int') AS deep_expression;
SELECT run(repeat('SELECT 1;', 100000), 'r int') AS hundred_thousand_statements;
SELECT length(pg_background_full_sql_v2((h).pid, (h).cookie)) AS full_sql_capped
  FROM pg_background_launch_v2(format('SELECT %L', repeat('y', 1000000))) h;
SELECT pg_background_detach_all_v2() >= 1 AS detached;

-- PIDs and handles: unknown, our own backend, the postmaster, stale cookies
SELECT try_sql('SELECT count(*) FROM pg_background_result(-1) AS (r text)') AS negative_pid;
SELECT try_sql('SELECT count(*) FROM pg_background_result(2147483647) AS (r text)') AS huge_pid;
SELECT try_sql(format('SELECT count(*) FROM pg_background_result(%s) AS (r text)', pg_backend_pid())) AS own_backend;
SELECT try_sql(format('SELECT pg_background_detach(%s)', pid)) AS unrelated_backend
  FROM pg_stat_activity WHERE backend_type = 'checkpointer';
SELECT try_sql(format('SELECT pg_background_cancel_v2(%s, 1)', pid)) AS unrelated_backend_v2
  FROM pg_stat_activity WHERE backend_type = 'checkpointer';
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch_v2('SELECT 1') h \gset
SELECT try_sql(format('SELECT count(*) FROM pg_background_result_v2(%s, %s) AS (r int)', :pid, :cookie + 1)) AS wrong_cookie;
SELECT try_sql(format('SELECT pg_background_wait_v2(%s, 0)', :pid)) AS zero_cookie;
SELECT try_sql(format('SELECT count(*) FROM pg_background_result_v2(%s, %s) AS (r int)', :pid, :cookie)) AS right_cookie;
SELECT try_sql(format('SELECT count(*) FROM pg_background_result_v2(%s, %s) AS (r int)', :pid, :cookie)) AS stale_cookie;
SELECT try_sql(format('SELECT pg_background_detach_v2(%s, %s)', :pid, :cookie)) AS stale_detach;
SELECT try_sql('SELECT pg_background_wait_any_v2(ARRAY[]::pg_background_handle[], 0)') AS wait_any_empty;
SELECT try_sql('SELECT pg_background_wait_any_v2(ARRAY[ROW(NULL, NULL)]::pg_background_handle[], 0)') AS wait_any_null_handle;
SELECT try_sql('SELECT count(*) FROM pg_background_drain_v2(ARRAY[ROW(1, 1)]::pg_background_handle[], 0)') AS drain_unknown;

-- column definition lists: count, type, typmod, domain, record, pseudo-types, arrays, composites
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
SELECT run('SELECT 1, 2', 'r int, b int, c int') AS too_many;
SELECT run('SELECT 1, 2', 'r int') AS too_few;
SELECT run('SELECT 1', 'r int8') AS other_type;
SELECT run('SELECT 1', 'r posint') AS domain_over_the_type;
SELECT run('SELECT 1::posint', 'r int') AS type_under_the_domain;
SELECT run('SELECT ''abc''::varchar(3)', 'r varchar(2)') AS typmod_too_short;
SELECT run('SELECT 1.25::numeric', 'r numeric(3,1)') AS numeric_typmod;
SELECT run('SELECT ROW(1, 2)', 'r record') AS anonymous_record;
SELECT run('SELECT 1', 'r anyelement') AS pseudo_anyelement;
SELECT run('SELECT ''x''::cstring', 'r cstring') AS pseudo_cstring;
SELECT run('SELECT ARRAY[1, 2]', 'r int[]') AS int_array;
SELECT run('SELECT ARRAY[1, 2]', 'r int8[]') AS other_array;
SELECT run('SELECT ROW(1, ''x'')::pg_background_handle', 'r pg_background_handle') AS wrong_composite;
SELECT run('SELECT (1, 2)::pg_background_handle', 'r pg_background_handle') AS composite;
SELECT try_sql('SELECT count(*) FROM pg_background_result(pg_background_launch(''SELECT 1'')) AS ()') AS empty_list;
SELECT try_sql('SELECT count(*) FROM pg_background_result(pg_background_launch(''SELECT 1''))') AS no_list;

-- statements a job cannot run, and a procedure that commits
SELECT run('COPY t TO STDOUT');
SELECT run('COPY (SELECT 1) TO STDOUT WITH (FORMAT binary)');
SELECT run('UNLISTEN *');
SELECT run('NOTIFY c');
SELECT run('PREPARE TRANSACTION ''x''');
SELECT run('ROLLBACK');
SELECT run('START TRANSACTION ISOLATION LEVEL SERIALIZABLE');
SELECT run('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; SELECT current_setting(''transaction_isolation'')');
CREATE TABLE committed(n int);
CREATE PROCEDURE commit_twice() LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO committed VALUES (1); COMMIT;
  INSERT INTO committed VALUES (2); ROLLBACK;
  INSERT INTO committed VALUES (3);
END$$;
SELECT run('CALL commit_twice()');
SELECT array_agg(n ORDER BY n) AS kept FROM committed;
SELECT run('CALL commit_twice(); SELECT 1');
SELECT run('DO $$BEGIN COMMIT; END$$');

-- labels: the longest, one byte too long, multibyte at the limit, built to break quoting
SELECT try_sql(format('SELECT (pg_background_launch_v2(''SELECT 1'', 0, %L)).cookie <> 0', repeat('l', 64))) AS label_64;
SELECT try_sql(format('SELECT (pg_background_launch_v2(''SELECT 1'', 0, %L)).cookie <> 0', repeat('l', 65))) AS label_65;
SELECT try_sql(format('SELECT (pg_background_launch_v2(''SELECT 1'', 0, %L)).cookie <> 0', repeat('é', 32))) AS label_64_bytes_multibyte;
SELECT try_sql(format('SELECT (pg_background_launch_v2(''SELECT 1'', 0, %L)).cookie <> 0', repeat('é', 33))) AS label_66_bytes_multibyte;
SELECT (h).pid AS pid, (h).cookie AS cookie
  FROM pg_background_launch_v2('SELECT pg_sleep(30)', 0, $l$x'); DROP TABLE t; --"%s\$l$) h \gset
SELECT label FROM pg_background_list WHERE pid = :pid;
SELECT wait_until(format('EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s AND application_name LIKE ''pg_background:%%'')', :pid));
SELECT regexp_replace(application_name, '\d+$', 'N') AS application_name FROM pg_stat_activity WHERE pid = :pid;
SELECT try_sql($$SELECT pg_background_cancel_by_label_v2('x''); DROP TABLE t; --"%s\')$$) AS ends_with_the_like_escape;
SELECT try_sql($$SELECT pg_background_cancel_by_label_v2('x''); DROP TABLE t; --"%s\\')$$) AS escaped_like_escape;
SELECT count(*) AS t_still_exists FROM pg_class WHERE relname = 't';
SELECT pg_background_detach_all_v2() >= 1 AS detached;

-- the session is still alive and well
SELECT 1 AS alive;
