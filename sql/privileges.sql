-- Privileges (the end of the install script): PUBLIC may only read the cluster's counters
-- (pg_background_cluster_stats), and only superusers may reset them unless they grant it; the
-- NOLOGIN role pgbackground_role gets what a user needs; SECURITY DEFINER helpers grant and
-- revoke the same to other roles. The helpers pin search_path = pg_catalog, pg_temp, name every object with
-- schema-qualified text derived from its OID, quote the role with %I, and are granted to no one.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgbackground_role') THEN
    CREATE ROLE pgbackground_role NOLOGIN INHERIT;
  END IF;
END$$;

-- What a user of the extension needs, as (privilege, object) clauses of GRANT and REVOKE:
-- EXECUTE on every member function but the helpers, USAGE on every member type, SELECT on
-- every member view; but not the cluster's counters, which are PUBLIC's.
CREATE OR REPLACE FUNCTION pg_background_grantable_objects()
RETURNS TABLE (privilege text, object text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  WITH members AS (
    SELECT d.classid, d.objid
      FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND e.extname = 'pg_background' AND d.deptype = 'e')
  SELECT 'EXECUTE', 'FUNCTION ' || p.oid::pg_catalog.regprocedure::text
    FROM members m JOIN pg_catalog.pg_proc p
      ON m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = m.objid
   WHERE NOT p.prosecdef   -- (the grant, revoke and drop-role helpers)
     AND p.proname NOT IN ('pg_background_grantable_objects', 'pg_background_apply_privileges',
                           'pg_background_get_cluster_stats', 'pg_background_cluster_stats_reset')
  UNION ALL
  -- (only the composite types created with CREATE TYPE: PostgreSQL 18 also records the array
  -- types of views' row types as members)
  SELECT 'USAGE', 'TYPE ' || t.oid::pg_catalog.regtype::text
    FROM members m JOIN pg_catalog.pg_type t
      ON m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.oid = m.objid
    JOIN pg_catalog.pg_class r ON r.oid = t.typrelid AND r.relkind = 'c' 
  UNION ALL
  SELECT 'SELECT', 'TABLE ' || c.oid::pg_catalog.regclass::text
    FROM members m JOIN pg_catalog.pg_class c
      ON m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.oid = m.objid
   WHERE c.relkind = 'v' AND c.relname <> 'pg_background_cluster_stats'
  ORDER BY 1, 2
$$;

-- The body of both 1.x helpers below; runs with their (superuser) owner's privileges.
CREATE OR REPLACE FUNCTION pg_background_apply_privileges(grant_them boolean, role_name text,
                                               print_commands boolean, schema_name text)
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  obj record;
  cmd text;
BEGIN
  FOR obj IN EXECUTE pg_catalog.format('SELECT * FROM %I.pg_background_grantable_objects()',
                                       schema_name) LOOP
    IF grant_them THEN
      cmd := pg_catalog.format('GRANT %s ON %s TO %I', obj.privilege, obj.object, role_name);
    ELSE
      cmd := pg_catalog.format('REVOKE %s ON %s FROM %I', obj.privilege, obj.object, role_name);
    END IF;
    IF print_commands THEN
      RAISE INFO '%', cmd;
    END IF;
    EXECUTE cmd;
  END LOOP;
  RETURN true;
EXCEPTION WHEN OTHERS THEN
  IF grant_them THEN
    RAISE NOTICE 'Error granting pg_background privileges to %: %', role_name, SQLERRM;
  ELSE
    RAISE NOTICE 'Error revoking pg_background privileges from %: %', role_name, SQLERRM;
  END IF;
  RETURN false;
END$$;

-- The 1.x helpers. The pinned search_path has only pg_catalog and pg_temp, so the extension's
-- own functions are called through its schema, looked up each time (it is relocatable).
CREATE OR REPLACE FUNCTION grant_pg_background_privileges(role_name text, print_commands boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  schema_name text;
  ok boolean;
BEGIN
  SELECT n.nspname INTO schema_name
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'pg_background';
  IF schema_name IS NULL THEN
    RAISE EXCEPTION 'pg_background extension not found';
  END IF;
  EXECUTE pg_catalog.format('SELECT %I.pg_background_apply_privileges(true, $1, $2, $3)', schema_name)
    INTO ok USING role_name, print_commands, schema_name;
  RETURN ok;
END$$;

CREATE OR REPLACE FUNCTION revoke_pg_background_privileges(role_name text, print_commands boolean DEFAULT false)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  schema_name text;
  ok boolean;
BEGIN
  SELECT n.nspname INTO schema_name
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'pg_background';
  IF schema_name IS NULL THEN
    RAISE EXCEPTION 'pg_background extension not found';
  END IF;
  EXECUTE pg_catalog.format('SELECT %I.pg_background_apply_privileges(false, $1, $2, $3)', schema_name)
    INTO ok USING role_name, print_commands, schema_name;
  RETURN ok;
END$$;

-- Drops the role the extension created (it is cluster-wide and survives DROP EXTENSION).
CREATE OR REPLACE FUNCTION pg_background_drop_executor_role()
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgbackground_role') THEN
    DROP ROLE pgbackground_role;
  END IF;
END$$;

-- PUBLIC gets the counters only; the role gets what a user needs; the helpers and the reset of
-- the counters stay with their owner.
DO $$
DECLARE
  obj record;
BEGIN
  FOR obj IN SELECT * FROM pg_background_grantable_objects() LOOP
    EXECUTE pg_catalog.format('REVOKE %s ON %s FROM PUBLIC', obj.privilege, obj.object);
  END LOOP;
END$$;
REVOKE ALL ON FUNCTION grant_pg_background_privileges(text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION revoke_pg_background_privileges(text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_background_drop_executor_role() FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_background_grantable_objects() FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_background_apply_privileges(boolean, text, boolean, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pg_background_cluster_stats_reset() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_background_get_cluster_stats() TO PUBLIC;
GRANT SELECT ON pg_background_cluster_stats TO PUBLIC;
SELECT grant_pg_background_privileges('pgbackground_role', false);

COMMENT ON FUNCTION pg_background_stats_v2() IS
  'Returns session-local statistics about background workers: launched, completed, failed, canceled, active count, and average execution time.';
