# Part of scripts/test.sh: ALTER EXTENSION UPDATE from stand-ins of the C extension's catalogs
# (1.0, 1.1, 1.4, 1.7, 1.8, 1.10) and of our rust-0.1 to the current version, with the committed
# update scripts, against the running cluster; each upgraded catalog must equal a fresh install.
# Prints "upgrade: N passed, N failed".

UPGRADE_DIR=$ROOT/tests/upgrade

# the catalog of the extension in database $1, as text to compare (privileges as they are in
# effect: no ACL at all is the object's default one)
extension_catalog() {
    psql_ -At -d "$1" <<'SQL'
WITH members AS (
  SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
   WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'pg_background' AND d.deptype = 'e')
SELECT 'function ' || p.oid::regprocedure || ' ' || pg_get_function_arguments(p.oid)
       || ' returns ' || pg_get_function_result(p.oid) || ' ' || l.lanname || ' ' || p.prosrc
       || ' strict=' || p.proisstrict || ' volatile=' || p.provolatile::text || ' parallel=' || p.proparallel::text
       || ' secdef=' || p.prosecdef || ' config=' || coalesce(p.proconfig::text, '')
       || ' acl=' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text)
                                 FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))) a
                               WHERE a::text NOT LIKE 'pgbg\_upgrade\_%=%'), '')
       || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '')
  FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
  JOIN pg_language l ON l.oid = p.prolang
UNION ALL
SELECT 'type ' || t.oid::regtype || ' (' || (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                                     FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0) || ')'
       || ' acl=' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text)
                                 FROM unnest(coalesce(t.typacl, acldefault('T', t.typowner))) a
                               WHERE a::text NOT LIKE 'pgbg\_upgrade\_%=%'), '')
  FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
  JOIN pg_class r ON r.oid = t.typrelid AND r.relkind = 'c'
UNION ALL
SELECT 'view ' || c.oid::regclass || ' ' || pg_get_viewdef(c.oid)
  FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
ORDER BY 1;
SQL
}

# the SQL surface of the extension in database $1 (functions with their arguments, result and
# STRICT-ness, composite types, views with their columns, which objects have a comment), leaving
# out the extension's own additions: to compare our 2.0 API with the C extension's
api2_surface() {
    psql_ -At -d "$1" <<'SQL'
WITH members AS (
  SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
   WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'pg_background' AND d.deptype = 'e')
SELECT 'function ' || p.proname || '(' || pg_get_function_arguments(p.oid) || ') returns '
       || pg_get_function_result(p.oid) || ' strict=' || p.proisstrict || ' secdef=' || p.prosecdef
       || ' commented=' || (obj_description(p.oid, 'pg_proc') IS NOT NULL)
  FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
 WHERE p.proname NOT IN ('pg_background_autonomous', 'pg_background_autonomous_exec',
                         'pg_background_cluster_jobs', 'pg_background_job_id',
                         'pg_background_launch_kept', 'pg_background_job_result',
                         'pg_background_result_json', 'pg_background_job_result_json',
                         'pg_background_wait_any_job', 'pg_background_get_cluster_stats',
                         'pg_background_cluster_stats_reset',
                         'pg_background_grantable_objects', 'pg_background_apply_privileges')
UNION ALL
SELECT 'type ' || t.typname || ' (' || (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                                     FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0) || ')'
  FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
  JOIN pg_class r ON r.oid = t.typrelid AND r.relkind = 'c'
UNION ALL
SELECT 'view ' || c.relname || ' (' || (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                                     FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0) || ')'
       || ' commented=' || (obj_description(c.oid, 'pg_class') IS NOT NULL)
  FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
 WHERE c.relkind = 'v' AND c.relname NOT IN ('pg_background_jobs', 'pg_background_cluster_stats')
ORDER BY 1;
SQL
}

# compare_catalogs NAME FILE EXPECTED_FILE: one check, the difference printed if any
compare_catalogs() {
    if diff "$2" "$3" > "$CLUSTER_DIR/upgrade.diff"; then
        check "$1" same same
    else
        cat "$CLUSTER_DIR/upgrade.diff"
        check "$1" same different
    fi
}

# The stand-in catalog of version $1, written to the server's extension directory. 1.0, 1.8 and
# rust-0.1 are files here; 1.1 and 1.4 are 1.0 with additions-1.1.sql and additions-1.4.sql; 1.7 is 1.8
# with the old queue size default; 1.10 is our own
# install script bound to the C symbol names, with 1.10's helper search_path and its grant of
# the SECURITY DEFINER helpers to pgbackground_role.
install_stand_in() {
    local v=$1 dir
    dir="$("$PG_CONFIG" --sharedir)/extension"
    case $v in
        1.1|1.4) cat "$UPGRADE_DIR/pg_background--1.0.sql" "$UPGRADE_DIR/additions-$v.sql" \
                     > "$dir/pg_background--$v.sql" ;;
        1.7) sed 's/queue_size int4 DEFAULT 0/queue_size int4 DEFAULT 65536/' \
                 "$UPGRADE_DIR/pg_background--1.8.sql" > "$dir/pg_background--1.7.sql" ;;
        1.10) { sed -E \
                  -e "s/'(pg_background_(launch|submit)_v2)_labelled_wrapper'/'\\1'/" \
                  -e "s/'(pg_background_(launch|result|detach|submit_v2|launch_v2|result_v2|detach_v2|cancel_v2|cancel_v2_grace|wait_v2|wait_v2_timeout|list_v2|stats_v2|progress|get_progress_v2|result_info_v2|error_info_v2|detach_all_v2|cancel_all_v2|full_sql_v2))_wrapper'/'\\1'/" \
                  -e 's/search_path = pg_catalog, pg_temp AS/search_path = pg_catalog AS/' \
                  "$dir/pg_background--$EXT_VERSION.sql"
                echo "GRANT EXECUTE ON FUNCTION grant_pg_background_privileges(text, boolean) TO pgbackground_role;"
                echo "GRANT EXECUTE ON FUNCTION revoke_pg_background_privileges(text, boolean) TO pgbackground_role;"
              } > "$dir/pg_background--1.10.sql" ;;
        *) cp "$UPGRADE_DIR/pg_background--$v.sql" "$dir/" ;;
    esac
}

# upgrade_from VERSION: install the stand-in, use it through our library, update, compare.
upgrade_from() {
    local v=$1 db=pgbg_upgrade u q
    install_stand_in "$v"
    psql_ -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" \
        -c "CREATE DATABASE $db"
    u="psql_ -At -d $db"
    q="SELECT * FROM pg_background_result(pg_background_launch('SELECT 41 + 1')) AS (r int)"
    $u -c "CREATE EXTENSION pg_background VERSION '$v'" \
       -c "GRANT EXECUTE ON FUNCTION pg_background_launch(text, int4), pg_background_result(int4) TO pgbg_upgrade_app" >/dev/null
    check "$v: installed" "$v" "$($u -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_background'")"
    if [ "$v" = rust-0.1 ]; then
        # (the update drops and makes again the jobs view, whose columns changed)
        $u -c "GRANT SELECT ON pg_background_jobs TO pgbg_upgrade_app WITH GRANT OPTION" \
           -c "GRANT EXECUTE ON FUNCTION pg_background_cluster_jobs() TO pgbg_upgrade_app" >/dev/null
    fi
    # between the file swap and the update, the old catalog calls our library by its symbols
    # (the C extension's names, or those of rust-0.1)
    check "$v: launch/result through the old catalog's symbols" "42" "$($u -c "$q")"
    check "$v: the app role can launch" "42" "$(psql_ -At -U pgbg_upgrade_app -d $db -c "$q")"
    if [ "$v" != 1.0 ] && [ "$v" != 1.1 ] && [ "$v" != 1.4 ]; then
        check "$v: handle API through the old catalog's symbols" "7" \
            "$($u -c "SELECT r FROM pg_background_launch_v2('SELECT 7') h, LATERAL pg_background_result_v2((h).pid, (h).cookie) AS (r int)")"
    fi
    if [ "$v" = 1.10 ]; then
        check "1.10: the stand-in calls the C symbol of full_sql_v2" "pg_background_full_sql_v2" \
            "$($u -c "SELECT prosrc FROM pg_proc WHERE proname = 'pg_background_full_sql_v2'")"
        check "1.10: full_sql_v2 through the C symbols" "SELECT 5" \
            "$($u -c "SELECT pg_background_full_sql_v2((h).pid, (h).cookie) FROM pg_background_launch_v2('SELECT 5') h")"
    fi
    $u -c "ALTER EXTENSION pg_background UPDATE" >/dev/null
    check "$v: updated" "$EXT_VERSION" "$($u -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_background'")"
    check "$v: launch/result after the update" "42" "$($u -c "$q")"
    check "$v: the app role's grants survive the update" "42" "$(psql_ -At -U pgbg_upgrade_app -d $db -c "$q")"
    if [ "$v" = rust-0.1 ]; then
        check "$v: the grant on the jobs view survives the update" "t t" \
            "$($u -c "SELECT has_table_privilege('pgbg_upgrade_app', 'pg_background_jobs', 'SELECT'),
                             has_table_privilege('pgbg_upgrade_app', 'pg_background_jobs', 'SELECT WITH GRANT OPTION')" | tr '|' ' ')"
        check "$v: the app role reads the jobs view's new columns" "t" \
            "$(psql_ -At -U pgbg_upgrade_app -d $db -c "SELECT count(progress_pct) >= 0 FROM pg_background_jobs")"
    fi
    check "$v: the labelled launch of 1.9 exists after the update" "t" \
        "$($u -c "SELECT (pg_background_launch_v2('SELECT 1', 0, 'x')).cookie <> 0")"
    check "$v: PUBLIC has nothing" "f" \
        "$($u -c "SELECT has_function_privilege('public', 'pg_background_launch(text,int4)', 'EXECUTE')")"
    check "$v: the helpers are their owner's only" "f f" \
        "$($u -c "SELECT has_function_privilege('pgbackground_role', 'grant_pg_background_privileges(text,boolean)', 'EXECUTE'),
                         has_function_privilege('pgbg_upgrade_app', 'revoke_pg_background_privileges(text,boolean)', 'EXECUTE')" | tr '|' ' ')"
    extension_catalog $db > "$CLUSTER_DIR/upgraded.txt"
    if diff "$CLUSTER_DIR/upgraded.txt" "$CLUSTER_DIR/fresh.txt" > "$CLUSTER_DIR/upgrade.diff"; then
        check "$v: upgraded catalog equals a fresh install" same same
    else
        cat "$CLUSTER_DIR/upgrade.diff"
        check "$v: upgraded catalog equals a fresh install" same different
    fi
    rm -f "$("$PG_CONFIG" --sharedir)/extension/pg_background--$v.sql"
    psql_ -d postgres -c "DROP DATABASE $db" >/dev/null
}

# An installation made with the C extension's 2.0 script keeps working with our library in
# place of its own (until an update to ours exists): the same C symbols serve 2.0's declarations.
through_2_0_catalog() {
    local db=pgbg_two out expected
    cp "$UPGRADE_DIR/pg_background--2.0.sql" "$("$PG_CONFIG" --sharedir)/extension/"
    psql_ -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" \
        -c "CREATE DATABASE $db" >/dev/null
    psql_ -d $db -c "CREATE EXTENSION pg_background VERSION '2.0'" \
        -c "CREATE TABLE two_t(id int NOT NULL CONSTRAINT two_t_positive CHECK (id > 0))" >/dev/null
    # one session: the jobs are its own
    out=$(psql_ -At -d $db <<'SQL'
SELECT r FROM pg_background_launch('SELECT 42') h, LATERAL pg_background_result((h).pid, (h).cookie) AS (r int);
SELECT (h).pid AS pid, (h).cookie AS cookie FROM pg_background_launch('SELECT pg_sleep(30)', 0, 'two-oh') h \gset
SELECT pg_background_wait(:pid, :cookie, 50);
SELECT label FROM pg_background_list WHERE pid = :pid;
SELECT pg_background_full_sql(:pid, :cookie);
SELECT pg_background_cancel(:pid, :cookie, 5000);
SELECT pg_background_wait(:pid, :cookie);
SELECT sqlstate FROM pg_background_error_info(:pid, :cookie);
SELECT pg_background_record_timeout();
SELECT workers_timed_out FROM pg_background_stats();
SELECT (h).pid AS pid2, (h).cookie AS cookie2 FROM pg_background_launch('SELECT 7') h \gset
SELECT pg_background_wait(:pid2, :cookie2, 0);
SELECT row_count, command_tag, completed, finished_at >= started_at FROM pg_background_result_info(:pid2, :cookie2);
SELECT pg_background_detach(:pid2, :cookie2);
SELECT (h).pid AS pid3, (h).cookie AS cookie3 FROM pg_background_launch('INSERT INTO two_t VALUES (-1)') h \gset
SELECT pg_background_wait(:pid3, :cookie3);
SELECT sqlstate, schema_name, table_name, column_name, constraint_name FROM pg_background_error_info(:pid3, :cookie3);
SELECT (h).pid AS pid4, (h).cookie AS cookie4 FROM pg_background_launch('INSERT INTO two_t VALUES (NULL)') h \gset
SELECT pg_background_wait(:pid4, :cookie4);
SELECT sqlstate, table_name, column_name FROM pg_background_error_info(:pid4, :cookie4);
SELECT (pg_background_submit('SELECT 1')).cookie <> 0;
SELECT pg_background_detach_all() >= 1;
SELECT r FROM pg_background_launch_v2('SELECT 8') h, LATERAL pg_background_result_v2((h).pid, (h).cookie) AS (r int);
SQL
)
    expected=$(printf '%s\n' 42 f two-oh "SELECT pg_sleep(30)" "" t 57014 "" 1 t "1|SELECT|t|t" "" \
        t "23514|public|two_t||two_t_positive" t "23502|two_t|id" t t 8)
    check "2.0: launch, result, wait, cancel, list, full_sql, error_info (with the objects it names), stats, result_info, detach, submit and a _v2 alias through 2.0's catalog" \
        "$expected" "$out"
    api2_surface $db > "$CLUSTER_DIR/surface-c.txt"
    api2_surface pgbg_fresh2 > "$CLUSTER_DIR/surface-ours.txt"
    check "2.0: the stand-in's surface has every function of 2.0" 51 "$(grep -c '^function ' "$CLUSTER_DIR/surface-c.txt")"
    compare_catalogs "$API2_VERSION: the SQL surface equals the C extension's 2.0 (functions, arguments, defaults, results, STRICT, types, views, comments)" \
        "$CLUSTER_DIR/surface-ours.txt" "$CLUSTER_DIR/surface-c.txt"

    # the update: a plain one stops (it would end on the 1.x API); the one to our 2.0 API works
    psql_ -d $db -c "SELECT pg_background_grant_privileges('pgbg_upgrade_app')" \
        -c "GRANT EXECUTE ON FUNCTION pg_background_stats() TO pgbg_upgrade_one" >/dev/null
    out=$(psql_ -d $db -c "ALTER EXTENSION pg_background UPDATE" 2>&1 || true)
    check "2.0: a plain update stops with a hint, since the default version has the 1.x API" "t t" \
        "$(grep -q 'would replace the 2.0 API' <<<"$out" && echo t) $(grep -q "UPDATE TO '$API2_VERSION'" <<<"$out" && echo t)"
    check "2.0: ... and changes nothing" 2.0 \
        "$(psql_ -At -d $db -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_background'")"
    psql_ -d $db -c "ALTER EXTENSION pg_background UPDATE TO '$API2_VERSION'" >/dev/null
    check "2.0: updated to $API2_VERSION" "$API2_VERSION" \
        "$(psql_ -At -d $db -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_background'")"
    check "2.0: a role granted by 2.0's helper runs jobs after the update, and reads the jobs view" "9 t" \
        "$(psql_ -At -U pgbg_upgrade_app -d $db -c "SELECT r FROM pg_background_launch('SELECT 9') h, LATERAL pg_background_result((h).pid, (h).cookie) AS (r int)" \
              -c "SELECT count(*) > 0 FROM pg_background_jobs WHERE query = 'SELECT 9'" | tr '\n' ' ' | sed 's/ $//')"
    check "2.0: a single grant is kept" "t f" \
        "$(psql_ -At -d $db -c "SELECT has_function_privilege('pgbg_upgrade_one', 'pg_background_stats()', 'EXECUTE'), has_function_privilege('pgbg_upgrade_one', 'pg_background_launch(text, int4)', 'EXECUTE')" | tr '|' ' ')"
    extension_catalog $db > "$CLUSTER_DIR/upgraded.txt"
    compare_catalogs "2.0: the updated catalog equals a fresh install of $API2_VERSION" \
        "$CLUSTER_DIR/upgraded.txt" "$CLUSTER_DIR/fresh2.txt"
    rm -f "$("$PG_CONFIG" --sharedir)/extension/pg_background--2.0.sql"
    psql_ -d postgres -c "DROP DATABASE $db" >/dev/null
}

# From the 1.x API to the 2.0 API of the same release and back, with grants kept.
between_apis() {
    local db=pgbg_apis u out
    psql_ -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" \
        -c "CREATE DATABASE $db" >/dev/null
    u="psql_ -At -d $db"
    $u -c "CREATE EXTENSION pg_background" -c "SELECT grant_pg_background_privileges('pgbg_upgrade_app')" \
       -c "GRANT EXECUTE ON FUNCTION pg_background_cancel_v2_grace(int4, int8, int4) TO pgbg_upgrade_one" >/dev/null
    $u -c "ALTER EXTENSION pg_background UPDATE TO '$API2_VERSION'" >/dev/null
    check "1.x -> 2.0 API: updated" "$API2_VERSION" "$($u -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_background'")"
    check "1.x -> 2.0 API: a role granted by the 1.x helper runs jobs through the 2.0 API" "6" \
        "$(psql_ -At -U pgbg_upgrade_app -d $db -c "SELECT r FROM pg_background_launch('SELECT 6') h, LATERAL pg_background_result((h).pid, (h).cookie) AS (r int)")"
    check "1.x -> 2.0 API: a single grant follows its function (cancel_v2_grace to cancel and cancel_v2)" "t t f" \
        "$($u -c "SELECT has_function_privilege('pgbg_upgrade_one', 'pg_background_cancel(int4, int8, int4)', 'EXECUTE'), has_function_privilege('pgbg_upgrade_one', 'pg_background_cancel_v2(int4, int8, int4)', 'EXECUTE'), has_function_privilege('pgbg_upgrade_one', 'pg_background_wait(int4, int8, int4)', 'EXECUTE')" | tr '|' ' ')"
    extension_catalog $db > "$CLUSTER_DIR/upgraded.txt"
    compare_catalogs "1.x -> 2.0 API: the catalog equals a fresh install of $API2_VERSION" \
        "$CLUSTER_DIR/upgraded.txt" "$CLUSTER_DIR/fresh2.txt"
    out=$(psql_ -d $db -c "ALTER EXTENSION pg_background UPDATE" 2>&1 || true)
    check "2.0 -> 1.x API: refused unless pg_background.allow_api_change is on (55000)" "t" \
        "$(grep -q 'ERROR:  this update would replace the 2.0 API' <<<"$out" && echo t)"
    $u -c "SET pg_background.allow_api_change = on" -c "ALTER EXTENSION pg_background UPDATE" >/dev/null
    check "2.0 -> 1.x API: updated" "$EXT_VERSION" "$($u -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_background'")"
    check "2.0 -> 1.x API: the role runs jobs through the 1.x API" "5" \
        "$(psql_ -At -U pgbg_upgrade_app -d $db -c "SELECT * FROM pg_background_result(pg_background_launch('SELECT 5')) AS (r int)")"
    extension_catalog $db > "$CLUSTER_DIR/upgraded.txt"
    compare_catalogs "2.0 -> 1.x API: the catalog equals a fresh install of $EXT_VERSION" \
        "$CLUSTER_DIR/upgraded.txt" "$CLUSTER_DIR/fresh.txt"
    $u -c "CREATE VIEW my_stats AS SELECT * FROM pg_background_stats_v2()" >/dev/null
    out=$(psql_ -d $db -c "ALTER EXTENSION pg_background UPDATE TO '$API2_VERSION'" 2>&1 || true)
    check "1.x -> 2.0 API: a user view over a function the update replaces stops it, and nothing changes" "t $EXT_VERSION" \
        "$(grep -q 'depend' <<<"$out" && echo t) $($u -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_background'")"
    psql_ -d postgres -c "DROP DATABASE $db" >/dev/null
}

run_upgrade_test() {
    local v
    checks_reset
    psql_ -d postgres -c "DROP DATABASE IF EXISTS pgbg_fresh" -c "CREATE DATABASE pgbg_fresh" \
        -c "DROP ROLE IF EXISTS pgbg_upgrade_app" -c "CREATE ROLE pgbg_upgrade_app LOGIN"
    psql_ -d pgbg_fresh -c "CREATE EXTENSION pg_background" >/dev/null
    extension_catalog pgbg_fresh > "$CLUSTER_DIR/fresh.txt"
    psql_ -d postgres -c "DROP ROLE IF EXISTS pgbg_upgrade_one" -c "CREATE ROLE pgbg_upgrade_one" \
        -c "DROP DATABASE IF EXISTS pgbg_fresh2" -c "CREATE DATABASE pgbg_fresh2" >/dev/null
    psql_ -d pgbg_fresh2 -c "CREATE EXTENSION pg_background VERSION '$API2_VERSION'" >/dev/null
    extension_catalog pgbg_fresh2 > "$CLUSTER_DIR/fresh2.txt"
    check "the catalog lists every member" "t" "$([ "$(wc -l < "$CLUSTER_DIR/fresh.txt")" -gt 40 ] && echo t || echo f)"
    for v in 1.0 1.1 1.4 1.7 1.8 1.10 rust-0.1; do
        upgrade_from "$v"
    done
    # the 1.8 grant helper, called before the update, grants what the update keeps
    install_stand_in 1.8
    psql_ -d postgres -c "CREATE DATABASE pgbg_upgrade"
    psql_ -At -d pgbg_upgrade -c "CREATE EXTENSION pg_background VERSION '1.8'" \
        -c "SELECT grant_pg_background_privileges('pgbg_upgrade_app')" \
        -c "ALTER EXTENSION pg_background UPDATE" >/dev/null
    check "1.8: a role granted by the 1.8 helper can read the handle API after the update" "7" \
        "$(psql_ -At -U pgbg_upgrade_app -d pgbg_upgrade -c "SELECT r FROM pg_background_launch_v2('SELECT 7') h, LATERAL pg_background_result_v2((h).pid, (h).cookie) AS (r int)")"
    # from a C 1.x release straight to the 2.0 API (through the 1.x API of this release)
    psql_ -d postgres -c "DROP DATABASE pgbg_upgrade" -c "CREATE DATABASE pgbg_upgrade" >/dev/null
    psql_ -At -d pgbg_upgrade -c "CREATE EXTENSION pg_background VERSION '1.8'" \
        -c "ALTER EXTENSION pg_background UPDATE TO '$API2_VERSION'" >/dev/null
    extension_catalog pgbg_upgrade > "$CLUSTER_DIR/upgraded.txt"
    compare_catalogs "1.8 -> $API2_VERSION: the catalog equals a fresh install of $API2_VERSION" \
        "$CLUSTER_DIR/upgraded.txt" "$CLUSTER_DIR/fresh2.txt"
    rm -f "$("$PG_CONFIG" --sharedir)/extension/pg_background--1.8.sql"
    through_2_0_catalog
    between_apis
    psql_ -d postgres -c "DROP DATABASE pgbg_upgrade" -c "DROP DATABASE pgbg_fresh" \
        -c "DROP DATABASE pgbg_fresh2" -c "DROP ROLE pgbg_upgrade_app" -c "DROP ROLE pgbg_upgrade_one" >/dev/null
    checks_report upgrade
}
