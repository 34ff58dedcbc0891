#!/usr/bin/env bash
# Run every test of pg_background on a fresh machine of this kind (Debian 12, root):
# formatting and lints once, then for each PostgreSQL version (default: 15 16 17 18, or those
# given as arguments, e.g. `scripts/test.sh 15`): pure-Rust unit tests and #[pg_test]s
# (cargo pgrx test), the committed update scripts, the SQL contract (pg_regress), the
# multi-session tests, the monitoring queries, a hot standby, a full disk, updates from older
# versions, a 60-second soak (first version only), server shutdown and a crash restart against
# a throwaway cluster; then the install command into Debian's 15 and the 17 build (again under
# load), pg_upgrade from 15 to 18, the Debian package of 15 and the release files. Idempotent;
# ends with one line "all: N passed, N failed".
source "$(dirname "$0")/common.sh"
source "$ROOT/scripts/regress.sh"
source "$ROOT/tests/checks.sh"
source "$ROOT/tests/upgrade/run.sh"
source "$ROOT/tests/shutdown/run.sh"
source "$ROOT/tests/monitoring/run.sh"
source "$ROOT/tests/job_slots/run.sh"
source "$ROOT/tests/standby/run.sh"
source "$ROOT/tests/crash/run.sh"
source "$ROOT/tests/full_disk/run.sh"
source "$ROOT/bench/soak.sh"
source "$ROOT/tests/install/run.sh"
source "$ROOT/tests/pg_upgrade/run.sh"
source "$ROOT/tests/package/run.sh"
source "$ROOT/tests/release/run.sh"
cd "$ROOT"
STARTED=$(date +%s)

VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || read -r -a VERSIONS <<< "${PGBG_PG_VERSIONS:-${SUPPORTED_PG[*]}}"

TOTAL_PASSED=0
TOTAL_FAILED=0
FAILED_STEPS=()

# count_cargo FILE: add up cargo's "test result:" lines
count_cargo() {
    local lines
    lines=$(grep -oE 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$1" || true)
    TOTAL_PASSED=$((TOTAL_PASSED + $(echo "$lines" | awk '{s+=$4} END {print s+0}')))
    TOTAL_FAILED=$((TOTAL_FAILED + $(echo "$lines" | awk '{s+=$6} END {print s+0}')))
}

step() {  # step NAME COMMAND...: run, remember a failure, go on
    local name=$1; shift
    log "$name"
    if ! "$@"; then
        FAILED_STEPS+=("$name")
    fi
}

ensure_deps
for v in "${VERSIONS[@]}"; do ensure_pg "$v"; done
ensure_pgrx_init
LOGS=$(mktemp -d /tmp/pg_background-test-logs.XXXXXX)

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --locked --workspace --all-targets -- -D warnings

# Unit tests and #[pg_test]s; pgrx starts its own cluster as `postgres`.
pgrx_tests() {
    local data status=0
    data=$(mktemp -u /tmp/pgrx-test-data.XXXXXX)
    # one test at a time: a #[pg_test] exhausts the cluster's DSM segments on purpose
    RUST_TEST_THREADS=1 cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$data" 2>&1 \
        | tee "$LOGS/pgrx-$PG_MAJOR.log" || status=$?
    count_cargo "$LOGS/pgrx-$PG_MAJOR.log"
    rm -rf "$data"
    return $status
}

# run_counted FUNCTION [PREFIX]: run a runner that leaves its counts in PREFIX_PASSED and
# PREFIX_FAILED (CHECKS_PASSED and CHECKS_FAILED, tests/checks.sh, by default), and add them to
# the totals.
run_counted() {
    local status=0 passed="${2:-CHECKS}_PASSED" failed="${2:-CHECKS}_FAILED"
    CHECKS_PASSED=0 CHECKS_FAILED=0
    "$1" || status=$?
    TOTAL_PASSED=$((TOTAL_PASSED + ${!passed}))
    TOTAL_FAILED=$((TOTAL_FAILED + ${!failed}))
    return $status
}

regress() { run_counted run_regress REGRESS; }
upgrade() { run_counted run_upgrade_test; }
shutdown_test() { run_counted run_shutdown_test; }
monitoring_test() { run_counted run_monitoring_test; }
job_slots_test() { run_counted run_job_slots_test; }
standby_test() { run_counted run_standby_test; }
crash_test() { run_counted run_crash_test; }
full_disk_test() { run_counted run_full_disk_test; }
soak_test() { SOAK_SECONDS=${PGBG_SOAK_SECONDS:-60} run_counted run_soak; }
install_test() { run_counted run_install_test; }
pg_upgrade_test() { run_counted run_pg_upgrade_test; }
package_test() { run_counted run_package_test; }
release_test() { run_counted run_release_test; }

# the committed update scripts against the install script just installed
update_scripts() {
    local out status=0
    out=$(bash "$ROOT/scripts/update-scripts.sh" --check \
        "$("$PG_CONFIG" --sharedir)/extension/pg_background--$EXT_VERSION.sql") || status=$?
    echo "$out"
    CHECKS_PASSED=$(echo "$out" | grep -c '^ok: ' || true)
    CHECKS_FAILED=$(echo "$out" | grep -c '^FAILED: ' || true)
    return $status
}
headers_match() {
    checks_reset
    check "the server and the headers agree" 0 "$(check_headers_match_server >&2; echo $?)"
    checks_report headers
}
has_version() { [[ " ${VERSIONS[*]} " == *" $1 "* ]]; }

session_tests() {
    psql_ -d postgres -c "DROP DATABASE IF EXISTS pgbg_sessions" -c "CREATE DATABASE pgbg_sessions"
    psql_ -d pgbg_sessions -c "CREATE EXTENSION pg_background"
    local status=0
    PGBG_TEST_DB=pgbg_sessions cargo test --locked -p session-tests -- --test-threads=4 2>&1 \
        | tee "$LOGS/sessions-$PG_MAJOR.log" || status=$?
    count_cargo "$LOGS/sessions-$PG_MAJOR.log"
    return $status
}

for v in "${VERSIONS[@]}"; do
    use_pg "$v"
    step "PostgreSQL $v: cargo pgrx test (unit tests and #[pg_test])" pgrx_tests
    # `cargo pgrx test` left its test build installed; install the real one.
    step "PostgreSQL $v: install" install_extension
    step "PostgreSQL $v: the committed update scripts are current" run_counted update_scripts
    start_cluster "${PGBG_TEST_PORT:-55433}" shared_preload_libraries=pg_background
    step "PostgreSQL $v: the server and the headers the library was built with agree" run_counted headers_match
    step "PostgreSQL $v: pg_regress (SQL contract)" regress
    step "PostgreSQL $v: multi-session tests" session_tests
    step "PostgreSQL $v: the monitoring queries of examples/monitoring" monitoring_test
    step "PostgreSQL $v: jobs on a hot standby of the cluster, and after its promotion" standby_test
    step "PostgreSQL $v: spill files on a disk that fills up (a tablespace on an 8 MB tmpfs)" full_disk_test
    step "PostgreSQL $v: update from the C extension (1.0 … 1.10) and rust-0.1" upgrade
    if [ "$v" = "${VERSIONS[0]}" ]; then
        step "PostgreSQL $v: a soak of ${PGBG_SOAK_SECONDS:-60} s (bench/soak.sh)" soak_test
    fi
    # last: they stop and start the cluster
    step "PostgreSQL $v: a registry of 16 slots (pg_background.job_slots)" job_slots_test
    step "PostgreSQL $v: server shutdown (fast, smart) with jobs running" shutdown_test
    step "PostgreSQL $v: a crash restart (a backend killed by a signal) with jobs running" crash_test
    stop_cluster
done

# Installing into servers we did not build, upgrading the server, packaging.
if has_version 15 && has_version 18; then
    step "pg_upgrade from PostgreSQL 15 to 18 with the extension in use" pg_upgrade_test
fi
for v in 15 17; do
    if has_version $v; then
        use_pg $v
        step "PostgreSQL $v: the install command (release build) into $PG_CONFIG" install_test
    fi
done
if has_version 15; then
    step "Debian package for PostgreSQL 15, installed with dpkg" package_test
fi
step "release files (META.json, versions, licence)" release_test

log "summary (PostgreSQL ${VERSIONS[*]}, $(( ($(date +%s) - STARTED) / 60 )) min)"
if [ ${#FAILED_STEPS[@]} -gt 0 ]; then
    printf 'failed step: %s\n' "${FAILED_STEPS[@]}"
    # a failed step that ran no counted test still counts as one failure
    [ "$TOTAL_FAILED" -eq 0 ] && TOTAL_FAILED=${#FAILED_STEPS[@]}
fi
echo "all: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ ${#FAILED_STEPS[@]} -eq 0 ]
