# Part of scripts/test.sh: run the pg_regress files against the running cluster ($PGHOST/$PGPORT)
# and print "pg_regress: N passed, N failed": the suite of the 1.x API (the default version),
# then that of the 2.0 API, each in its own database. With REGRESS_UPDATE=1, copy results to
# the suites' expected/.
REGRESS_DIR=$ROOT/tests/pg_regress
REGRESS_TESTS=(setup launch result errors lifecycle handle inspect labels helpers privileges examples autonomous deadlock spill jobs badinput json cluster_stats)
REGRESS_2_DIR=$ROOT/tests/pg_regress_2.0
REGRESS_2_TESTS=(api2_setup api2_surface api2_jobs api2_helpers api2_additions)

# regress_suite INPUT_DIR OUTPUT_DIR DATABASE TEST...: adds to REGRESS_PASSED and REGRESS_FAILED
regress_suite() {
    local in=$1 out=$2 db=$3 pgxs status=0
    shift 3
    mkdir -p "$out"
    pgxs=$(dirname "$("$PG_CONFIG" --pgxs)")
    "$pgxs/../test/regress/pg_regress" --inputdir="$in" --outputdir="$out" \
        --bindir="$PG_BIN" --host="$PGHOST" --port="$PGPORT" --user=postgres \
        --dbname="$db" "$@" | tee "$out/summary.txt" || status=$?
    if [ "${REGRESS_UPDATE:-0}" = 1 ]; then
        # (variants such as launch_1.out, for other server versions, are kept by hand)
        cp "$out"/results/*.out "$in/expected/"
    fi
    [ -f "$out/regression.diffs" ] && cat "$out/regression.diffs"
    REGRESS_PASSED=$((REGRESS_PASSED + $(grep -cE '^ok |^test .* \.\.\. ok' "$out/summary.txt" || true)))
    REGRESS_FAILED=$((REGRESS_FAILED + $(grep -cE '^not ok |FAILED' "$out/summary.txt" || true)))
    return $status
}

run_regress() {
    local status=0
    REGRESS_PASSED=0 REGRESS_FAILED=0
    regress_suite "$REGRESS_DIR" "$CLUSTER_DIR/regress" pg_background_regress "${REGRESS_TESTS[@]}" \
        || status=$?
    regress_suite "$REGRESS_2_DIR" "$CLUSTER_DIR/regress-2.0" pg_background_regress_2 \
        "${REGRESS_2_TESTS[@]}" || status=$?
    echo "pg_regress: $REGRESS_PASSED passed, $REGRESS_FAILED failed"
    return $status
}
