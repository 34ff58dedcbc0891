-- The start of every update script, from a C release (1.0 … 1.10) or an earlier version of
-- ours; the rest is the install script with each CREATE FUNCTION made CREATE OR REPLACE, which
-- keeps the grants of the functions that already exist. What CREATE OR REPLACE cannot turn into
-- the current catalog is dropped first:
-- * 1.1's pg_background_discard_result, reverted in 1.2 but never dropped by the C updates;
-- * the grant/revoke helpers, whose parameter was called user_name in 1.3 and 1.4, which had
--   no pinned search_path before 1.8, and which 1.10 granted to pgbackground_role (so that its
--   members could grant themselves more) — they are recreated, executable by their owner only;
-- * pg_background_drop_executor_role, recreated likewise;
-- * rust-0.1's pg_background_result(int8), which made calls of the 1.x pg_background_result
--   with an untyped NULL or literal ambiguous: it is pg_background_job_result now.
-- * the pg_background_jobs view and its function, whose columns changed (a function's result
--   type cannot be replaced): their grants are remembered here and given again by
--   update-epilogue.sql, at the end of the script (PUBLIC had none).
-- The role is created further down if it does not exist (1.0 … 1.4 had none).
DROP FUNCTION IF EXISTS pg_background_discard_result(int4);
DROP FUNCTION IF EXISTS grant_pg_background_privileges(text, boolean);
DROP FUNCTION IF EXISTS revoke_pg_background_privileges(text, boolean);
DROP FUNCTION IF EXISTS pg_background_drop_executor_role();
DROP FUNCTION IF EXISTS pg_background_result(int8);
SELECT pg_catalog.set_config('pg_background_update.jobs_grants', coalesce(
  (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(g.object, r.rolname,
                                                            g.privilege_type, g.is_grantable))
     FROM (SELECT 'TABLE pg_background_jobs' AS object, a.*
             FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
            WHERE c.oid = pg_catalog.to_regclass('pg_background_jobs')
              AND a.grantee <> c.relowner
           UNION ALL
           SELECT 'FUNCTION pg_background_cluster_jobs()', a.*
             FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
            WHERE p.oid = pg_catalog.to_regprocedure('pg_background_cluster_jobs()')
              AND a.grantee <> p.proowner) g
     JOIN pg_catalog.pg_roles r ON r.oid = g.grantee),
  '[]')::text, true);
DROP VIEW IF EXISTS pg_background_jobs;
DROP FUNCTION IF EXISTS pg_background_cluster_jobs();
