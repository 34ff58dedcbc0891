#!/usr/bin/env bash
# Benchmark of pg_background against plain SQL and dblink on the same throwaway cluster.
# Builds and installs the release build (BENCH_BUILD=debug to skip the ~2 minute release build),
# then runs each pgbench script of bench/*.sql REPEAT times, interleaved, and prints the median
# latency of each and the ratios. Writes bench/results/latest.csv.
#   bash bench/run.sh            # REPEAT=3 SECONDS_PER_RUN=5 by default
source "$(dirname "$0")/../scripts/common.sh"
REPEAT=${REPEAT:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
STREAM_RUNS=${STREAM_RUNS:-5}

ensure_deps
if [ "${BENCH_BUILD:-release}" = release ]; then RELEASE=1 install_extension; else install_extension; fi
start_cluster "${PGBG_BENCH_PORT:-55439}"
psql_ -d postgres -c "CREATE EXTENSION pg_background" -c "CREATE EXTENSION dblink" \
    -c "CREATE TABLE bench_log(id bigserial, at timestamptz DEFAULT now(), msg text)"

WORK=$(mktemp -d /tmp/pg_background-bench.XXXXXX)
CONN="host=$PGHOST port=$PGPORT user=postgres dbname=postgres"
# expand @CONN@ in the scripts
for f in "$ROOT"/bench/*.sql; do sed "s|@CONN@|$CONN|g" "$f" > "$WORK/$(basename "$f")"; done

# latency NAME [pgbench options]: average latency in ms of one pgbench run
latency() {
    local name=$1; shift
    "$PG_BIN/pgbench" -n -d postgres -f "$WORK/$name.sql" "$@" 2>&1 \
        | sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p'
}

declare -A RESULTS
run_group() {  # run_group OPTIONS -- NAMES...: each name once per round, REPEAT rounds
    local opts=() names=() seen=0 a
    for a in "$@"; do
        if [ "$a" = -- ]; then seen=1; elif [ $seen = 0 ]; then opts+=("$a"); else names+=("$a"); fi
    done
    local r n
    for r in $(seq "$REPEAT"); do
        for n in "${names[@]}"; do
            RESULTS[$n]="${RESULTS[$n]:-} $(latency "$n" "${opts[@]}")"
        done
    done
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
spread() { tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%s..%s", lo, hi}'; }

log "round trip of SELECT 2+2, 1 client, ${SECONDS_PER_RUN}s x $REPEAT"
run_group -c 1 -T "$SECONDS_PER_RUN" -- roundtrip_plain roundtrip_pg_background roundtrip_dblink_fresh roundtrip_dblink_open
log "autonomous logging INSERT, 1 client, ${SECONDS_PER_RUN}s x $REPEAT"
run_group -c 1 -T "$SECONDS_PER_RUN" -- log_plain log_autonomous log_launch_result log_dblink_open
log "streaming 1,000,000 int rows, $STREAM_RUNS runs x $REPEAT"
run_group -c 1 -t "$STREAM_RUNS" -- stream_local stream_pg_background stream_dblink

mkdir -p "$ROOT/bench/results"
CSV=$ROOT/bench/results/latest.csv
echo "benchmark,median_ms,spread_ms,runs" > "$CSV"
printf '\n%-28s %12s %22s\n' benchmark "median ms" "spread ms"
for n in roundtrip_plain roundtrip_pg_background roundtrip_dblink_fresh roundtrip_dblink_open \
         log_plain log_autonomous log_launch_result log_dblink_open stream_local stream_pg_background stream_dblink; do
    m=$(echo "${RESULTS[$n]}" | median); s=$(echo "${RESULTS[$n]}" | spread)
    printf '%-28s %12s %22s\n' "$n" "$m" "$s"
    echo "$n,$m,$s,$REPEAT" >> "$CSV"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b / a}'; }
med() { echo "${RESULTS[$1]}" | median; }
ours_rt=$(med roundtrip_pg_background); ours_st=$(med stream_pg_background)
echo
echo "ratios (speed of pg_background relative to the other; 1.00 = as fast, < 1 slower):"
echo "  round trip vs plain SQL:            $(ratio "$ours_rt" "$(med roundtrip_plain)")"
echo "  round trip vs dblink, fresh conn:   $(ratio "$ours_rt" "$(med roundtrip_dblink_fresh)")"
echo "  round trip vs dblink, open conn:    $(ratio "$ours_rt" "$(med roundtrip_dblink_open)")"
echo "  1M rows vs local execution:         $(ratio "$ours_st" "$(med stream_local)")"
echo "  1M rows vs dblink (open conn):      $(ratio "$ours_st" "$(med stream_dblink)")"
echo "  pg_background round trips/s:        $(awk -v a="$ours_rt" 'BEGIN {printf "%.0f", 1000 / a}')"
ours_log=$(med log_autonomous)
echo "  autonomous log calls/s:             $(awk -v a="$ours_log" 'BEGIN {printf "%.0f", 1000 / a}')"
echo "  autonomous log vs launch+result:    $(ratio "$ours_log" "$(med log_launch_result)")"
echo "  autonomous log vs dblink_exec open: $(ratio "$ours_log" "$(med log_dblink_open)")"
echo "  autonomous log vs plain INSERT:     $(ratio "$ours_log" "$(med log_plain)")"
echo "(CSV: $CSV)"
rm -rf "$WORK"
