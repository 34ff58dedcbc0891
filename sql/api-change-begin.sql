-- The start of an update that changes the API of an installation between 1.x and 2.0 (see
-- docs/operations.md). The functions and views of either API ("the surface") are dropped and the
-- other API's are created; the extension's own additions (jobs view, kept results, autonomous
-- calls) are shared and stay. Grants are carried over by api-change-end.sql:
-- * a role that could execute every function the grant helper grants keeps all of them (under
--   the new API's names too);
-- * any other grant follows its object by name: EXECUTE on every function of that name, USAGE on
--   the type, SELECT on the view, where the new API has one.
-- Grants to PUBLIC are not carried over: the extension grants PUBLIC nothing.
-- A user object that depends on a dropped function, view or type (a view calling
-- pg_background_stats_v2(), a column of type pg_background_stats) stops the update with
-- PostgreSQL's error, and nothing changes.

DO $keep$
DECLARE
  acl jsonb;
  whole jsonb;
BEGIN
  WITH members AS (
    SELECT d.classid, d.objid
      FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND e.extname = 'pg_background' AND d.deptype = 'e'),
  granted AS (
    SELECT 'FUNCTION' AS kind, p.proname::text AS name, p.oid, NOT p.prosecdef AS grantable, a.*
      FROM members m JOIN pg_catalog.pg_proc p
        ON m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = m.objid,
           pg_catalog.aclexplode(p.proacl) a
     WHERE a.grantee NOT IN (0, p.proowner)
    UNION ALL
    SELECT 'TYPE', t.typname::text, t.oid, true, a.*
      FROM members m JOIN pg_catalog.pg_type t
        ON m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.oid = m.objid
      JOIN pg_catalog.pg_class r ON r.oid = t.typrelid AND r.relkind = 'c',
           pg_catalog.aclexplode(t.typacl) a
     WHERE a.grantee NOT IN (0, t.typowner)
    UNION ALL
    SELECT 'TABLE', c.relname::text, c.oid, true, a.*
      FROM members m JOIN pg_catalog.pg_class c
        ON m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.oid = m.objid,
           pg_catalog.aclexplode(c.relacl) a
     WHERE c.relkind = 'v' AND a.grantee NOT IN (0, c.relowner)),
  everything AS (
    -- (the functions the grant helper grants: all but the SECURITY DEFINER helpers, the two
    -- functions behind them and the cluster's counters)
    SELECT g.grantee FROM granted g
     WHERE g.kind = 'FUNCTION' AND g.grantable AND g.privilege_type = 'EXECUTE'
       AND g.name NOT IN ('pg_background_grantable_objects', 'pg_background_apply_privileges',
                          'pg_background_get_cluster_stats', 'pg_background_cluster_stats_reset')
     GROUP BY g.grantee
    HAVING count(DISTINCT g.oid) =
           (SELECT count(*) FROM members m JOIN pg_catalog.pg_proc p
                 ON m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = m.objid
             WHERE NOT p.prosecdef
               AND p.proname NOT IN ('pg_background_grantable_objects',
                                     'pg_background_apply_privileges',
                                     'pg_background_get_cluster_stats',
                                     'pg_background_cluster_stats_reset')))
  SELECT (SELECT coalesce(jsonb_agg(DISTINCT r.rolname), '[]')
            FROM everything w JOIN pg_catalog.pg_roles r ON r.oid = w.grantee),
         (SELECT coalesce(jsonb_agg(DISTINCT jsonb_build_array(g.kind, g.name, r.rolname,
                                                                g.privilege_type, g.is_grantable)),
                          '[]')
            FROM granted g JOIN pg_catalog.pg_roles r ON r.oid = g.grantee
           WHERE g.grantee NOT IN (SELECT grantee FROM everything))
    INTO whole, acl;
  PERFORM pg_catalog.set_config('pg_background_api_change.whole', whole::text, true);
  PERFORM pg_catalog.set_config('pg_background_api_change.acl', acl::text, true);
END$keep$;

-- Drops the functions and views of both APIs (called again by the update from the C
-- extension's 2.0, which passes through the 1.x API).
CREATE FUNCTION pg_background_api_change_drop_surface() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  f record;
BEGIN
  DROP VIEW IF EXISTS pg_background_activity;
  DROP VIEW IF EXISTS pg_background_list;
  FOR f IN
    SELECT p.oid::pg_catalog.regprocedure AS signature
      FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
      JOIN pg_catalog.pg_proc p ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                               AND p.oid = d.objid
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND e.extname = 'pg_background' AND d.deptype = 'e'
       AND p.proname IN (
         -- both APIs
         'pg_background_launch', 'pg_background_result', 'pg_background_detach',
         'pg_background_launch_v2', 'pg_background_submit_v2', 'pg_background_result_v2',
         'pg_background_detach_v2', 'pg_background_cancel_v2', 'pg_background_wait_v2',
         'pg_background_list_v2', 'pg_background_stats_v2', 'pg_background_get_progress_v2',
         'pg_background_result_info_v2', 'pg_background_error_info_v2',
         'pg_background_detach_all_v2', 'pg_background_cancel_all_v2',
         'pg_background_full_sql_v2', 'pg_background_outcome_v2', 'pg_background_run_v2',
         'pg_background_run_query_v2', 'pg_background_drain_v2', 'pg_background_wait_any_v2',
         'pg_background_cancel_by_label_v2', 'pg_background_purge_v2',
         -- 1.x only
         'pg_background_cancel_v2_grace', 'pg_background_wait_v2_timeout',
         'pg_background_progress', 'pg_background_status_v2',
         'grant_pg_background_privileges', 'revoke_pg_background_privileges',
         -- 2.0 only
         'pg_background_submit', 'pg_background_cancel', 'pg_background_wait',
         'pg_background_list', 'pg_background_stats', 'pg_background_record_timeout',
         'pg_background_report_progress', 'pg_background_get_progress',
         'pg_background_result_info', 'pg_background_error_info', 'pg_background_detach_all',
         'pg_background_cancel_all', 'pg_background_full_sql', 'pg_background_outcome',
         'pg_background_run', 'pg_background_run_query', 'pg_background_drain',
         'pg_background_wait_any', 'pg_background_cancel_by_label', 'pg_background_purge',
         'pg_background_grant_privileges', 'pg_background_revoke_privileges',
         -- the extension's own, named differently in the two APIs
         'pg_background_wait_any_job')
  LOOP
    EXECUTE pg_catalog.format('DROP FUNCTION %s', f.signature);
  END LOOP;
END$$;
SELECT pg_background_api_change_drop_surface();

-- Gives the composite type type_name the columns `columns` (as format_type spells their
-- types): drops it if it has others, creates it if absent. NULL columns: the type goes.
CREATE FUNCTION pg_background_api_change_reshape(type_name text, columns text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  t regtype := pg_catalog.to_regtype(type_name);
BEGIN
  IF t IS NOT NULL AND columns IS DISTINCT FROM (
      SELECT pg_catalog.string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod),
                                   ', ' ORDER BY a.attnum)
        FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON a.attrelid = ty.typrelid
       WHERE ty.oid = t AND a.attnum > 0 AND NOT a.attisdropped) THEN
    EXECUTE pg_catalog.format('DROP TYPE %s', t);
    t := NULL;
  END IF;
  IF t IS NULL AND columns IS NOT NULL THEN
    EXECUTE pg_catalog.format('CREATE TYPE %I AS (%s)', type_name, columns);
  END IF;
END$$;

-- The family of a function or type name (see api-change-end.sql).
CREATE FUNCTION pg_background_api_change_family(name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT pg_catalog.regexp_replace(
           pg_catalog.regexp_replace(name, '_v2(_grace|_timeout)?$', ''),
           '^pg_background_(report_progress|progress_info)$', 'pg_background_progress')
$$;
