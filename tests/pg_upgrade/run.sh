# Part of scripts/test.sh: pg_upgrade of a cluster that uses pg_background from PostgreSQL 15 to
# 18 (with 18's pg_upgrade; both servers have the library installed): the extension's objects
# are those of a fresh install on 18, a role granted pgbackground_role and a role granted by the
# helper (pgbg_upgrade_app, whose grants the catalog comparison leaves out) keep what they were
# given, and jobs run on the upgraded cluster. Prints "pg_upgrade: N passed, N failed".

# Servers a run of this test left behind (interrupted), stopped and removed.
stop_upgrade_clusters() {
    local data
    for data in /tmp/pg_background-pg_upgrade.*/old /tmp/pg_background-pg_upgrade.*/new; do
        [ -f "$data/postmaster.pid" ] || continue
        runuser -u postgres -- "$(dirname "$(pg_config_for 18)")/pg_ctl" -D "$data" -m fast -w stop \
            >/dev/null 2>&1 || runuser -u postgres -- "$(dirname "$(pg_config_for 15)")/pg_ctl" \
            -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    done
    rm -rf /tmp/pg_background-pg_upgrade.*
}

run_pg_upgrade_test() {
    local dir old_bin new_bin old_port=55441 new_port=55442 q
    local -x PGUSER=postgres
    checks_reset
    stop_upgrade_clusters
    dir=$(mktemp -d /tmp/pg_background-pg_upgrade.XXXXXX)
    chmod 755 "$dir"
    chown postgres:postgres "$dir"
    old_bin=$(dirname "$(pg_config_for 15)")
    new_bin=$(dirname "$(pg_config_for 18)")
    upgrade_as_postgres() { (cd "$dir" && env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE runuser -u postgres -- "$@"); }
    upgrade_sql() { "$old_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" "$@"; }

    # PostgreSQL 15: the extension in use
    upgrade_as_postgres "$old_bin/initdb" -D "$dir/old" -U postgres --auth=trust --no-sync -E UTF8 \
        --locale=C.UTF-8 >/dev/null
    echo "shared_preload_libraries = 'pg_background'" >> "$dir/old/postgresql.conf"
    upgrade_as_postgres "$old_bin/pg_ctl" -D "$dir/old" -l "$dir/old.log" -w \
        -o "-p $old_port -k $dir -c listen_addresses=''" start >/dev/null
    upgrade_sql -p $old_port -d postgres <<'SQL'
CREATE DATABASE app;
CREATE ROLE app_user LOGIN;
CREATE ROLE pgbg_upgrade_app LOGIN;
SQL
    upgrade_sql -p $old_port -d app <<'SQL'
CREATE EXTENSION pg_background;
GRANT pgbackground_role TO app_user;
SELECT grant_pg_background_privileges('pgbg_upgrade_app');
CREATE TABLE audit (id int, note text);
GRANT SELECT, INSERT ON audit TO app_user, pgbg_upgrade_app;
SQL
    q="SELECT * FROM pg_background_result(pg_background_launch('INSERT INTO audit VALUES (1, ''before'')')) AS (r text)"
    check "15: a job of app_user writes" "INSERT 0 1" "$(upgrade_sql -At -p $old_port -U app_user -d app -c "$q")"
    # Debian 12's PostgreSQL 15.20 records a column option pg_attver on every column, which the
    # older 18.6 of the PyPI wheel does not know: its pg_restore fails on any table (with or
    # without the extension). The two minor releases, not pg_background, disagree, so the test
    # takes the option off its table's columns before the upgrade.
    upgrade_sql -p $old_port -d app -c "UPDATE pg_catalog.pg_attribute
        SET attoptions = (SELECT array_agg(o) FROM unnest(attoptions) o WHERE o NOT LIKE 'pg_attver=%')
        WHERE attrelid = 'audit'::regclass AND attoptions::text LIKE '%pg_attver=%'"
    upgrade_as_postgres "$old_bin/pg_ctl" -D "$dir/old" -m fast -w stop >/dev/null

    # PostgreSQL 18: a new cluster (without data checksums, as the old one), pg_upgrade
    upgrade_as_postgres "$new_bin/initdb" -D "$dir/new" -U postgres --auth=trust --no-sync -E UTF8 \
        --locale=C.UTF-8 --no-data-checksums >/dev/null
    upgrade_as_postgres "$new_bin/pg_upgrade" -b "$old_bin" -B "$new_bin" -d "$dir/old" -D "$dir/new" \
        -p $old_port -P $new_port -s "$dir" -U postgres > "$dir/pg_upgrade.out" 2>&1
    local status=$?
    check "pg_upgrade from 15 to 18 succeeds" 0 $status
    if [ $status != 0 ]; then
        tail -n 30 "$dir/pg_upgrade.out"
        tail -n 30 "$dir"/new/pg_upgrade_output.d/*/log/pg_upgrade_dump_*.log 2>/dev/null
    fi
    echo "shared_preload_libraries = 'pg_background'" >> "$dir/new/postgresql.conf"
    upgrade_as_postgres "$new_bin/pg_ctl" -D "$dir/new" -l "$dir/new.log" -w \
        -o "-p $new_port -k $dir -c listen_addresses=''" start >/dev/null
    upgrade_sql() { "$new_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" "$@"; }
    check "18: the server runs the upgraded cluster" 18 \
        "$(upgrade_sql -At -p $new_port -d app -c "SELECT current_setting('server_version_num')::int / 10000")"
    check "18: the extension keeps its version" "$EXT_VERSION" \
        "$(upgrade_sql -At -p $new_port -d app -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_background'")"
    upgrade_sql -p $new_port -d postgres -c "CREATE DATABASE fresh"
    upgrade_sql -p $new_port -d fresh -c "CREATE EXTENSION pg_background"
    PGHOST=$dir PGPORT=$new_port PG_BIN=$new_bin extension_catalog app > "$dir/upgraded.txt"
    PGHOST=$dir PGPORT=$new_port PG_BIN=$new_bin extension_catalog fresh > "$dir/fresh.txt"
    if diff "$dir/upgraded.txt" "$dir/fresh.txt"; then
        check "18: the extension's objects and grants equal a fresh install's" same same
    else
        check "18: the extension's objects and grants equal a fresh install's" same different
    fi
    check "18: app_user is still a member of pgbackground_role" t \
        "$(upgrade_sql -At -p $new_port -d app -c "SELECT pg_has_role('app_user', 'pgbackground_role', 'MEMBER')")"
    check "18: the rows written on 15 are there" "1 before" \
        "$(upgrade_sql -At -F ' ' -p $new_port -d app -c "SELECT * FROM audit")"
    q="SELECT * FROM pg_background_result(pg_background_launch('INSERT INTO audit VALUES (2, ''after'')')) AS (r text)"
    check "18: a job of app_user writes" "INSERT 0 1" "$(upgrade_sql -At -p $new_port -U app_user -d app -c "$q")"
    q="SELECT r FROM pg_background_launch_v2('SELECT count(*) FROM audit') h, LATERAL pg_background_result_v2((h).pid, (h).cookie) AS (r int8)"
    check "18: a job of pgbg_upgrade_app (granted by the helper on 15) reads" 2 \
        "$(upgrade_sql -At -p $new_port -U pgbg_upgrade_app -d app -c "$q")"
    check "18: the jobs view shows app_user's job" "app_user finished" \
        "$(upgrade_sql -At -F ' ' -p $new_port -d app -c "SELECT usename, state FROM pg_background_jobs WHERE usename = 'app_user'")"
    upgrade_as_postgres "$new_bin/pg_ctl" -D "$dir/new" -m fast -w stop >/dev/null
    rm -rf "$dir"
    checks_report pg_upgrade
}
