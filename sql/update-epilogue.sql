-- The end of every update script that starts with update-prelude.sql: the grants on the
-- pg_background_jobs view and its function that the prelude remembered before it dropped them.
DO $restore$
DECLARE
  grant_entry jsonb;
BEGIN
  FOR grant_entry IN
    SELECT pg_catalog.jsonb_array_elements(
             pg_catalog.current_setting('pg_background_update.jobs_grants')::jsonb)
  LOOP
    EXECUTE pg_catalog.format('GRANT %s ON %s TO %I%s', grant_entry->>2, grant_entry->>0,
                              grant_entry->>1,
                              CASE WHEN (grant_entry->>3)::boolean THEN ' WITH GRANT OPTION'
                                   ELSE '' END);
  END LOOP;
END$restore$;
