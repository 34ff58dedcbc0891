# Part of scripts/test.sh: ALTER EXTENSION UPDATE from (a stand-in of) the C extension 1.8 to
# ours, against the running cluster. Prints "upgrade: N passed, N failed".

UPGRADE_DIR=$ROOT/tests/upgrade

# the catalog of the extension in database $1, as text to compare
extension_catalog() {
    psql_ -At -d "$1" <<'SQL'
WITH members AS (
  SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
   WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'pg_background' AND d.deptype = 'e')
SELECT 'function ' || p.oid::regprocedure || ' ' || pg_get_function_arguments(p.oid)
       || ' returns ' || pg_get_function_result(p.oid) || ' ' || l.lanname || ' ' || p.prosrc
       || ' strict=' || p.proisstrict || ' volatile=' || p.provolatile::text || ' parallel=' || p.proparallel::text
       || ' secdef=' || p.prosecdef || ' config=' || coalesce(p.proconfig::text, '')
       || ' acl=' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(p.proacl) a
                               WHERE a::text NOT LIKE 'pgbg_upgrade_app=%'), '')
       || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '')
  FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
  JOIN pg_language l ON l.oid = p.prolang
UNION ALL
SELECT 'type ' || t.oid::regtype || ' (' || (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                                     FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0) || ')'
       || ' acl=' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(t.typacl) a
                               WHERE a::text NOT LIKE 'pgbg_upgrade_app=%'), '')
  FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
  JOIN pg_class r ON r.oid = t.typrelid AND r.relkind = 'c'
UNION ALL
SELECT 'view ' || c.oid::regclass || ' ' || pg_get_viewdef(c.oid)
  FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
ORDER BY 1;
SQL
}

run_upgrade_test() {
    local passed=0 failed=0 dir
    check() {  # check NAME EXPECTED ACTUAL
        if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok: $1";
        else failed=$((failed + 1)); echo "FAILED: $1 (expected '$2', got '$3')"; fi
    }
    dir="$("$PG_CONFIG" --sharedir)/extension"
    cp "$UPGRADE_DIR/pg_background--1.8.sql" "$dir/"
    psql_ -d postgres -c "DROP DATABASE IF EXISTS pgbg_upgrade" -c "CREATE DATABASE pgbg_upgrade" \
        -c "DROP DATABASE IF EXISTS pgbg_fresh" -c "CREATE DATABASE pgbg_fresh" \
        -c "DROP ROLE IF EXISTS pgbg_upgrade_app" -c "CREATE ROLE pgbg_upgrade_app LOGIN"
    local u="psql_ -At -d pgbg_upgrade"
    $u -c "CREATE EXTENSION pg_background VERSION '1.8'" \
       -c "SELECT grant_pg_background_privileges('pgbg_upgrade_app')" >/dev/null
    check "1.8 installed" "1.8" "$($u -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_background'")"
    # between the file swap and the update, the 1.8 catalog calls our library by the C names
    check "1.8 launch/result through the C symbols" "42" \
        "$($u -c "SELECT * FROM pg_background_result(pg_background_launch('SELECT 41 + 1')) AS (r int)")"
    check "1.8 handle API through the C symbols" "7" \
        "$($u -c "SELECT r FROM pg_background_launch_v2('SELECT 7') h, LATERAL pg_background_result_v2((h).pid, (h).cookie) AS (r int)")"
    check "1.8 app role can launch" "1" \
        "$(psql_ -At -U pgbg_upgrade_app -d pgbg_upgrade -c "SELECT * FROM pg_background_result(pg_background_launch('SELECT 1')) AS (r int)")"
    $u -c "ALTER EXTENSION pg_background UPDATE" >/dev/null
    check "updated" "$EXT_VERSION" "$($u -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_background'")"
    check "launch/result after the update" "42" \
        "$($u -c "SELECT * FROM pg_background_result(pg_background_launch('SELECT 41 + 1')) AS (r int)")"
    check "the app role's grants survive the update" "42" \
        "$(psql_ -At -U pgbg_upgrade_app -d pgbg_upgrade -c "SELECT * FROM pg_background_result(pg_background_launch('SELECT 41 + 1')) AS (r int)")"
    check "1.9 labelled launch exists after the update" "t" \
        "$($u -c "SELECT (pg_background_launch_v2('SELECT 1', 0, 'x')).cookie <> 0")"
    check "PUBLIC still has nothing" "f" \
        "$($u -c "SELECT has_function_privilege('public', 'pg_background_launch(text,int4)', 'EXECUTE')")"
    psql_ -d pgbg_fresh -c "CREATE EXTENSION pg_background" >/dev/null
    extension_catalog pgbg_upgrade > "$CLUSTER_DIR/upgraded.txt"
    extension_catalog pgbg_fresh > "$CLUSTER_DIR/fresh.txt"
    check "the catalog lists every member" "t" "$([ "$(wc -l < "$CLUSTER_DIR/fresh.txt")" -gt 40 ] && echo t || echo f)"
    if diff "$CLUSTER_DIR/upgraded.txt" "$CLUSTER_DIR/fresh.txt" > "$CLUSTER_DIR/upgrade.diff"; then
        check "upgraded catalog equals a fresh install" same same
    else
        cat "$CLUSTER_DIR/upgrade.diff"
        check "upgraded catalog equals a fresh install" same different
    fi
    rm -f "$dir/pg_background--1.8.sql"
    psql_ -d postgres -c "DROP DATABASE pgbg_upgrade" -c "DROP DATABASE pgbg_fresh" \
        -c "DROP ROLE pgbg_upgrade_app" >/dev/null
    UPGRADE_PASSED=$passed UPGRADE_FAILED=$failed
    echo "upgrade: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
