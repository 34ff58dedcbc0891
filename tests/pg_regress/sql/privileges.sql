-- Privileges: no PUBLIC execute, the pgbackground_role role, the grant and revoke helpers.
SELECT rolname, rolcanlogin, rolinherit FROM pg_roles WHERE rolname = 'pgbackground_role';

-- nothing for PUBLIC; everything a user needs for the role; the helpers for nobody
SELECT p.oid::regprocedure AS function,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public,
       has_function_privilege('pgbackground_role', p.oid, 'EXECUTE') AS role
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_background')
 ORDER BY p.oid::regprocedure::text COLLATE "C";
SELECT t.oid::regtype AS type, has_type_privilege('public', t.oid, 'USAGE') AS public,
       has_type_privilege('pgbackground_role', t.oid, 'USAGE') AS role
  FROM pg_type t JOIN pg_depend d ON d.objid = t.oid AND d.classid = 'pg_type'::regclass
  JOIN pg_class r ON r.oid = t.typrelid AND r.relkind = 'c'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_background')
 ORDER BY t.oid::regtype::text COLLATE "C";
-- the views: SELECT for the role, nothing for PUBLIC
SELECT c.oid::regclass AS view, has_table_privilege('public', c.oid, 'SELECT') AS public,
       has_table_privilege('pgbackground_role', c.oid, 'SELECT') AS role
  FROM pg_class c JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_background')
 ORDER BY c.oid::regclass::text COLLATE "C";
-- the helpers are SECURITY DEFINER with a pinned search_path
SELECT proname, prosecdef, proconfig FROM pg_proc
 WHERE proname IN ('grant_pg_background_privileges', 'revoke_pg_background_privileges',
                   'pg_background_drop_executor_role')
 ORDER BY 1;

-- a role without grants cannot launch; with the role it can
CREATE ROLE pgbg_nogrant;
SET ROLE pgbg_nogrant;
SELECT pg_background_launch('SELECT 1');
RESET ROLE;
GRANT pgbackground_role TO pgbg_nogrant;
SET ROLE pgbg_nogrant;
SELECT * FROM pg_background_result(pg_background_launch('SELECT 1')) AS (r int);
-- and cannot use the helpers to grant itself anything
SELECT grant_pg_background_privileges('pgbg_nogrant');
RESET ROLE;

-- the helpers, with printed commands, an unknown role, and a role name built to break quoting
CREATE ROLE pgbg_app2;
SELECT grant_pg_background_privileges('pgbg_app2', true);
SELECT has_function_privilege('pgbg_app2', 'pg_background_launch(text,int4)', 'EXECUTE');
SELECT revoke_pg_background_privileges('pgbg_app2', true);
SELECT has_function_privilege('pgbg_app2', 'pg_background_launch(text,int4)', 'EXECUTE');
SELECT grant_pg_background_privileges('nosuch');
SELECT revoke_pg_background_privileges('nosuch');
CREATE ROLE "pgbg x"" ; DROP ROLE pgbg_app2; --";
SELECT grant_pg_background_privileges('pgbg x" ; DROP ROLE pgbg_app2; --');
SELECT has_function_privilege('pgbg x" ; DROP ROLE pgbg_app2; --', 'pg_background_launch(text,int4)', 'EXECUTE');
SELECT count(*) AS app2_still_exists FROM pg_roles WHERE rolname = 'pgbg_app2';
SELECT revoke_pg_background_privileges('pgbg x" ; DROP ROLE pgbg_app2; --');
DROP ROLE "pgbg x"" ; DROP ROLE pgbg_app2; --";
DROP ROLE pgbg_app2;
REVOKE pgbackground_role FROM pgbg_nogrant;
DROP ROLE pgbg_nogrant;

-- relocatable: in another schema, callable with and without it on the search_path
CREATE DATABASE pgbg_reloc;
\c pgbg_reloc
CREATE SCHEMA pgbg_elsewhere;
CREATE EXTENSION pg_background WITH SCHEMA pgbg_elsewhere;
SELECT * FROM pgbg_elsewhere.pg_background_result(pgbg_elsewhere.pg_background_launch('SELECT 5')) AS (r int);
SELECT (pgbg_elsewhere.pg_background_launch_v2('SELECT 6')).cookie <> 0 AS handle_works;
SELECT ROW(1, 2)::pgbg_elsewhere.pg_background_handle;
SET search_path = pgbg_elsewhere;
SELECT * FROM pg_background_result(pg_background_launch('SELECT 7')) AS (r int);
SELECT pgbg_elsewhere.grant_pg_background_privileges('pgbackground_role');
RESET search_path;
-- the role survives DROP EXTENSION, and a reinstall works (pg_background_drop_executor_role()
-- drops it once no installation grants it anything any more)
DROP EXTENSION pg_background;
SELECT count(*) AS role_kept FROM pg_roles WHERE rolname = 'pgbackground_role';
CREATE EXTENSION pg_background;
SELECT has_function_privilege('pgbackground_role', 'pg_background_launch(text,int4)', 'EXECUTE');
\c postgres
DROP DATABASE pgbg_reloc;
