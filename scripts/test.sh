#!/usr/bin/env bash
# Run every test of pg_background on a fresh machine of this kind (Debian 12, root):
# formatting and lints once, then for each PostgreSQL version (default: 15 16 18, or those given
# as arguments, e.g. `scripts/test.sh 15`): pure-Rust unit tests and #[pg_test]s
# (cargo pgrx test), the SQL contract (pg_regress) and the multi-session tests against a
# throwaway cluster. Idempotent; ends with one line "all: N passed, N failed".
source "$(dirname "$0")/common.sh"
source "$ROOT/scripts/regress.sh"
source "$ROOT/tests/upgrade/run.sh"
source "$ROOT/tests/shutdown/run.sh"
cd "$ROOT"

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

# run_counted FUNCTION PREFIX: run a runner that leaves its counts in PREFIX_PASSED and
# PREFIX_FAILED, and add them to the totals.
run_counted() {
    local status=0 passed="$2_PASSED" failed="$2_FAILED"
    "$1" || status=$?
    TOTAL_PASSED=$((TOTAL_PASSED + ${!passed}))
    TOTAL_FAILED=$((TOTAL_FAILED + ${!failed}))
    return $status
}

regress() { run_counted run_regress REGRESS; }
upgrade() { run_counted run_upgrade_test UPGRADE; }
shutdown_test() { run_counted run_shutdown_test SHUTDOWN; }

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
    start_cluster "${PGBG_TEST_PORT:-55433}" shared_preload_libraries=pg_background
    step "PostgreSQL $v: pg_regress (SQL contract)" regress
    step "PostgreSQL $v: multi-session tests" session_tests
    step "PostgreSQL $v: upgrade from the C extension (1.0 … 1.10)" upgrade
    # last: it stops and starts the cluster
    step "PostgreSQL $v: server shutdown (fast, smart) with jobs running" shutdown_test
    stop_cluster
done

log "summary (PostgreSQL ${VERSIONS[*]})"
if [ ${#FAILED_STEPS[@]} -gt 0 ]; then
    printf 'failed step: %s\n' "${FAILED_STEPS[@]}"
    # a failed step that ran no counted test still counts as one failure
    [ "$TOTAL_FAILED" -eq 0 ] && TOTAL_FAILED=${#FAILED_STEPS[@]}
fi
echo "all: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ ${#FAILED_STEPS[@]} -eq 0 ]
