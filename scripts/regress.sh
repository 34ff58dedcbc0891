# Part of scripts/test.sh: run the pg_regress files against the running cluster ($PGHOST/$PGPORT)
# and print "pg_regress: N passed, N failed". With REGRESS_UPDATE=1, copy results to expected/.
REGRESS_DIR=$ROOT/tests/pg_regress
REGRESS_TESTS=(setup launch result errors lifecycle handle inspect labels helpers privileges examples autonomous deadlock spill jobs badinput)

run_regress() {
    local out=$CLUSTER_DIR/regress
    mkdir -p "$out"
    local pgxs
    pgxs=$(dirname "$("$PG_CONFIG" --pgxs)")
    local status=0
    "$pgxs/../test/regress/pg_regress" --inputdir="$REGRESS_DIR" --outputdir="$out" \
        --bindir="$PG_BIN" --host="$PGHOST" --port="$PGPORT" --user=postgres \
        --dbname=pg_background_regress "${REGRESS_TESTS[@]}" | tee "$out/summary.txt" || status=$?
    if [ "${REGRESS_UPDATE:-0}" = 1 ]; then
        # (variants such as launch_1.out, for other server versions, are kept by hand)
        cp "$out"/results/*.out "$REGRESS_DIR/expected/"
    fi
    [ -f "$out/regression.diffs" ] && cat "$out/regression.diffs"
    REGRESS_PASSED=$(grep -cE '^ok |^test .* \.\.\. ok' "$out/summary.txt" || true)
    REGRESS_FAILED=$(grep -cE '^not ok |FAILED' "$out/summary.txt" || true)
    echo "pg_regress: $REGRESS_PASSED passed, $REGRESS_FAILED failed"
    return $status
}
