#!/usr/bin/env bash
# Run every test of pg_background on a fresh machine of this kind (Debian 12, root):
# formatting and lints, pure-Rust unit tests and #[pg_test]s (cargo pgrx test), the SQL contract
# (pg_regress) and the multi-session tests against a throwaway cluster. Idempotent; ends with
# one line "all: N passed, N failed".
source "$(dirname "$0")/common.sh"
source "$ROOT/scripts/regress.sh"
cd "$ROOT"

TOTAL_PASSED=0
TOTAL_FAILED=0
FAILED_STEPS=()

# count_cargo FILE: add up cargo's "test result:" lines
count_cargo() {
    local p f
    p=$(grep -oE 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$1" | awk '{s+=$4} END {print s+0}')
    f=$(grep -oE 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$1" | awk '{s+=$6} END {print s+0}')
    TOTAL_PASSED=$((TOTAL_PASSED + p))
    TOTAL_FAILED=$((TOTAL_FAILED + f))
}

step() {  # step NAME COMMAND...: run, remember a failure, go on
    local name=$1; shift
    log "$name"
    if ! "$@"; then
        FAILED_STEPS+=("$name")
    fi
}

ensure_deps
LOGS=$(mktemp -d /tmp/pg_background-test-logs.XXXXXX)

step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --locked --workspace --all-targets -- -D warnings

# Unit tests and #[pg_test]s; pgrx starts its own cluster as `postgres`.
pgrx_tests() {
    local data
    data=$(mktemp -u /tmp/pgrx-test-data.XXXXXX)
    local status=0
    cargo pgrx test pg15 --runas postgres --pgdata "$data" 2>&1 | tee "$LOGS/pgrx.log" || status=$?
    count_cargo "$LOGS/pgrx.log"
    rm -rf "$data"
    return $status
}
step "cargo pgrx test (unit tests and #[pg_test])" pgrx_tests

# `cargo pgrx test` left its test build installed; install the real one.
step "install" install_extension

start_cluster "${PGBG_TEST_PORT:-55433}"

regress() {
    local status=0
    run_regress || status=$?
    TOTAL_PASSED=$((TOTAL_PASSED + REGRESS_PASSED))
    TOTAL_FAILED=$((TOTAL_FAILED + REGRESS_FAILED))
    return $status
}
step "pg_regress (SQL contract)" regress

session_tests() {
    psql_ -d postgres -c "DROP DATABASE IF EXISTS pgbg_sessions" -c "CREATE DATABASE pgbg_sessions"
    psql_ -d pgbg_sessions -c "CREATE EXTENSION pg_background"
    local status=0
    PGBG_TEST_DB=pgbg_sessions cargo test --locked -p session-tests -- --test-threads=4 2>&1 \
        | tee "$LOGS/sessions.log" || status=$?
    count_cargo "$LOGS/sessions.log"
    return $status
}
step "multi-session tests" session_tests

stop_cluster
log "summary"
if [ ${#FAILED_STEPS[@]} -gt 0 ]; then
    printf 'failed step: %s\n' "${FAILED_STEPS[@]}"
    # a failed step that ran no counted test still counts as one failure
    [ "$TOTAL_FAILED" -eq 0 ] && TOTAL_FAILED=${#FAILED_STEPS[@]}
fi
echo "all: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
[ ${#FAILED_STEPS[@]} -eq 0 ]
