# Counted assertions of the shell tests that scripts/test.sh runs: each runner starts with
# checks_reset, asserts with check, and ends with checks_report, which prints its counts in the
# form the summary adds up ("NAME: N passed, N failed").

checks_reset() { CHECKS_PASSED=0; CHECKS_FAILED=0; }

check() {  # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        CHECKS_PASSED=$((CHECKS_PASSED + 1)); echo "ok: $1"
    else
        CHECKS_FAILED=$((CHECKS_FAILED + 1)); echo "FAILED: $1 (expected '$2', got '$3')"
    fi
}

checks_report() {  # checks_report NAME: print the counts; fails if a check failed
    echo "$1: $CHECKS_PASSED passed, $CHECKS_FAILED failed"
    [ "$CHECKS_FAILED" -eq 0 ]
}

# wait_until DB SQL: poll the query in database DB (bounded: 30 s) until it returns t
wait_until() {
    local i
    for i in $(seq 1 300); do
        [ "$(psql_ -At -d "$1" -c "$2" 2>/dev/null)" = t ] && return 0
        sleep 0.1
    done
    return 1
}

# dsm_segments: how many DSM segments the machine's PostgreSQL servers have (in /dev/shm)
dsm_segments() { dsm_segment_names | wc -l; }
# dsm_segment_names: their names, sorted
dsm_segment_names() { find /dev/shm -maxdepth 1 -name 'PostgreSQL.*' -printf '%f\n' | sort; }
