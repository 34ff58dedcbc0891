-- The end of an update that changes the API (see api-change-begin.sql): the grants remembered
-- there are given again on the new API's objects, then the update's own functions go. A grant
-- on one object follows it to every object of the same family: the name without `_v2` (and
-- 1.x's `_v2_grace`, `_v2_timeout`), with pg_background_progress, 2.0's
-- pg_background_report_progress and its type pg_background_progress_info one family.
DO $restore$
DECLARE
  schema_name text := (SELECT n.nspname FROM pg_catalog.pg_extension e
                         JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                        WHERE e.extname = 'pg_background');
  role_name text;
  entry jsonb;
  family text;
  obj record;
BEGIN
  FOR role_name IN
    SELECT jsonb_array_elements_text(current_setting('pg_background_api_change.whole')::jsonb)
  LOOP
    PERFORM pg_background_apply_privileges(true, role_name, false, schema_name);
  END LOOP;
  FOR entry IN
    SELECT jsonb_array_elements(current_setting('pg_background_api_change.acl')::jsonb)
  LOOP
    family := pg_background_api_change_family(entry->>1);
    FOR obj IN
      SELECT 'FUNCTION ' || p.oid::pg_catalog.regprocedure::text AS name
        FROM pg_catalog.pg_proc p
       WHERE entry->>0 = 'FUNCTION' AND pg_background_api_change_family(p.proname) = family
         AND p.pronamespace = schema_name::regnamespace
      UNION ALL
      SELECT 'TYPE ' || t.oid::pg_catalog.regtype::text
        FROM pg_catalog.pg_type t
       WHERE entry->>0 = 'TYPE' AND pg_background_api_change_family(t.typname) = family
         AND t.typnamespace = schema_name::regnamespace
      UNION ALL
      SELECT 'TABLE ' || c.oid::pg_catalog.regclass::text
        FROM pg_catalog.pg_class c
       WHERE entry->>0 = 'TABLE' AND c.relname = entry->>1 AND c.relkind = 'v'
         AND c.relnamespace = schema_name::regnamespace
    LOOP
      EXECUTE pg_catalog.format('GRANT %s ON %s TO %I%s', entry->>3, obj.name, entry->>2,
                                CASE WHEN (entry->>4)::boolean THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
  END LOOP;
END$restore$;

DROP FUNCTION pg_background_api_change_drop_surface();
DROP FUNCTION pg_background_api_change_reshape(text, text);
DROP FUNCTION pg_background_api_change_family(text);
