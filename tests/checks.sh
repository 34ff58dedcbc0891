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
