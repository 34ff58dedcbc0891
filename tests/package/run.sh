# Part of scripts/test.sh: the Debian package of PostgreSQL 15 (`scripts/package.sh 15`), installed
# with dpkg onto Debian's PostgreSQL 15 in place of a package that stands in for the C
# extension's (same name, same files): the C package is replaced, the extension is created in a
# fresh cluster and runs jobs, an installation made with a C release's scripts is updated, and
# removing the package removes its files. Prints "package: N passed, N failed".

PACKAGE_C_STAND_IN=postgresql-15-pg-background

# A package named as the C extension's for 15, owning the same two files (their contents are
# placeholders: it is replaced before anything loads them).
build_c_stand_in_package() {
    local stage=$1/c-stand-in
    mkdir -p "$stage/DEBIAN" "$stage/usr/lib/postgresql/15/lib" "$stage/usr/share/postgresql/15/extension"
    echo "stand-in for the C extension's library" > "$stage/usr/lib/postgresql/15/lib/pg_background.so"
    echo "# stand-in for the C extension's control file" \
        > "$stage/usr/share/postgresql/15/extension/pg_background.control"
    cat > "$stage/DEBIAN/control" <<EOF
Package: $PACKAGE_C_STAND_IN
Version: 1.9.1-1
Architecture: $(dpkg --print-architecture)
Maintainer: pg_background tests <tests@invalid>
Description: stand-in for the C extension's package in the tests of pg_background (Rust)
EOF
    dpkg-deb --root-owner-group --build "$stage" "$1/c-stand-in.deb" >/dev/null
}

run_package_test() {
    local name=postgresql-15-pg-background-rs deb work lib ext q
    checks_reset
    use_pg 15
    lib=$("$PG_CONFIG" --pkglibdir)
    ext="$("$PG_CONFIG" --sharedir)/extension"
    deb=$ROOT/dist/${name}_${EXT_VERSION}_$(dpkg --print-architecture).deb
    work=$(mktemp -d /tmp/pg_background-package-test.XXXXXX)
    dpkg -r "$name" "$PACKAGE_C_STAND_IN" >/dev/null 2>&1 || true

    rm -f "$deb"
    mkdir -p /tmp/pg_background-pgrx-home
    PGRX_HOME=/tmp/pg_background-pgrx-home bash "$ROOT/scripts/package.sh" 15
    check "package.sh 15 writes ${deb#"$ROOT"/}" t "$([ -s "$deb" ] && echo t)"
    check "the package conflicts with and replaces the C extension's" \
        "$PACKAGE_C_STAND_IN $PACKAGE_C_STAND_IN" \
        "$(dpkg-deb --field "$deb" Conflicts) $(dpkg-deb --field "$deb" Replaces)"
    check "the package depends on PostgreSQL 15" t \
        "$(dpkg-deb --field "$deb" Depends | grep -q '^postgresql-15\b' && echo t)"

    # What cargo-pgrx installed goes, so that only the packages provide the files.
    rm -f "$lib/pg_background.so" "$ext"/pg_background*
    build_c_stand_in_package "$work"
    dpkg -i "$work/c-stand-in.deb" >/dev/null
    check "the C extension's stand-in package is installed" t \
        "$(dpkg -s "$PACKAGE_C_STAND_IN" 2>/dev/null | grep -q '^Status: install ok installed' && echo t)"
    dpkg -i "$deb" > "$work/dpkg.out" 2>&1
    check "dpkg -i installs ours" 0 $?
    check "… and removes the C extension's package" f \
        "$(dpkg -s "$PACKAGE_C_STAND_IN" 2>/dev/null | grep -q '^Status: install ok installed' && echo t || echo f)"
    check "the library and the control file are ours now" "$name $name" \
        "$(dpkg -S "$lib/pg_background.so" | cut -d: -f1) $(dpkg -S "$ext/pg_background.control" | cut -d: -f1)"
    check "every committed update script is in the package" \
        "$(ls "$ROOT"/sql/pg_background--*--*.sql | wc -l)" \
        "$(dpkg -L "$name" | grep -c "/extension/pg_background--.*--.*\.sql$")"

    start_cluster "${PGBG_TEST_PORT:-55433}" shared_preload_libraries=pg_background
    q="SELECT * FROM pg_background_result(pg_background_launch('SELECT 41 + 1')) AS (r int)"
    psql_ -d postgres -c "CREATE DATABASE fresh" -c "CREATE DATABASE from_c"
    check "CREATE EXTENSION with the package's files" "$EXT_VERSION" \
        "$(psql_ -At -d fresh -c "CREATE EXTENSION pg_background" \
             -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_background'")"
    check "a job runs" 42 "$(psql_ -At -d fresh -c "$q")"
    check "the jobs view shows it" finished \
        "$(psql_ -At -d fresh -c "SELECT state FROM pg_background_jobs ORDER BY job_id DESC LIMIT 1")"
    # an installation made with the C extension's 1.8 scripts, updated by the package's script
    install_stand_in 1.8
    psql_ -d from_c -c "CREATE EXTENSION pg_background VERSION '1.8'"
    check "1.8: a job through the C extension's catalog" 42 "$(psql_ -At -d from_c -c "$q")"
    check "1.8: ALTER EXTENSION UPDATE to the package's version" "$EXT_VERSION" \
        "$(psql_ -At -d from_c -c "ALTER EXTENSION pg_background UPDATE" \
             -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_background'")"
    check "1.8: a job after the update" 42 "$(psql_ -At -d from_c -c "$q")"
    rm -f "$ext/pg_background--1.8.sql"
    stop_cluster

    dpkg -r "$name" >/dev/null
    check "dpkg -r removes the library and the scripts" "f 0" \
        "$([ -e "$lib/pg_background.so" ] && echo t || echo f) $(ls "$ext" | grep -c '^pg_background')"
    rm -rf "$work"
    checks_report package
}
