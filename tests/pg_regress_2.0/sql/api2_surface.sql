-- The functions of the 2.0 API: arguments with their defaults, result, STRICT, comment.
SELECT p.proname || '(' || pg_get_function_arguments(p.oid) || ')' AS function,
       pg_get_function_result(p.oid) AS result,
       CASE WHEN p.proisstrict THEN 'strict' ELSE '' END AS strict,
       CASE WHEN p.prosecdef THEN 'definer' ELSE '' END AS security,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_background' AND d.deptype = 'e'
 ORDER BY 1;

-- Its composite types and views.
SELECT c.relname AS name, c.relkind AS kind,
       string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) AS columns
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE EXISTS (SELECT FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                WHERE e.extname = 'pg_background' AND d.deptype = 'e'
                  AND ((c.relkind = 'v' AND d.classid = 'pg_class'::regclass AND d.objid = c.oid)
                    OR (c.relkind = 'c' AND d.classid = 'pg_type'::regclass AND d.objid = c.reltype)))
 GROUP BY c.relname, c.relkind ORDER BY 1;

-- The `_v2` names are deprecated aliases, bound to the same code as the canonical names.
SELECT obj_description('pg_background_wait_v2(int4, int8, int4)'::regprocedure) AS comment;
SELECT count(*) AS aliases_on_other_code
  FROM pg_proc a JOIN pg_proc c ON c.proname = regexp_replace(a.proname, '_v2$', '')
                               AND c.proargtypes = a.proargtypes
 WHERE a.proname LIKE 'pg\_background\_%\_v2' AND a.prosrc <> c.prosrc;

-- Nothing for PUBLIC, everything a user needs for pgbackground_role.
SELECT has_function_privilege('public', 'pg_background_launch(text, int4)', 'EXECUTE') AS public_launch,
       has_function_privilege('pgbackground_role', 'pg_background_launch(text, int4)', 'EXECUTE') AS role_launch,
       has_function_privilege('pgbackground_role', 'pg_background_grant_privileges(text, boolean)', 'EXECUTE') AS role_grants;
