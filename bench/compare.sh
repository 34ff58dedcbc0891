#!/usr/bin/env bash
# Before and after: two builds of pg_background measured in the same run on the same throwaway
# cluster. BASE is a git revision (built in a worktree of its own), NEW the working tree; both
# release builds for PostgreSQL 15. The library is swapped between rounds (the cluster preloads
# it, so each swap restarts the server), in the order base, new, new, base, ... so that a drift
# of the machine during the run weighs on both alike. Prints per measure the median latency of
# each build, its spread, and base / new (above 1: the working tree is faster). Both builds
# must share the extension's SQL (same functions): the install script of NEW is used.
#   bash bench/compare.sh BASE                 # about 10 minutes after the builds
#   REPEAT=3 SECONDS_PER_RUN=3 bash bench/compare.sh BASE
source "$(dirname "$0")/../scripts/common.sh"
BASE=${1:?usage: bench/compare.sh BASE-REVISION}
REPEAT=${REPEAT:-4}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}

ensure_deps
use_pg 15
WORK=$(mktemp -d /tmp/pg_background-compare.XXXXXX)
finish() {
    stop_cluster
    git -C "$ROOT" worktree remove --force "$WORK/base" >/dev/null 2>&1 || true
}
trap finish EXIT
LIB=$("$PG_CONFIG" --pkglibdir)/pg_background.so

# The builds: each into a staging directory, then the working tree's into the server.
log "building $BASE (release) in a worktree"
git -C "$ROOT" worktree add --detach "$WORK/base" "$BASE" >/dev/null
CARGO_TARGET_DIR="$ROOT/target/compare-base" \
    bash "$WORK/base/scripts/install.sh" --pg-config "$PG_CONFIG" --destdir "$WORK/base-dest"
log "building the working tree (release)"
bash "$ROOT/scripts/install.sh" --pg-config "$PG_CONFIG" --destdir "$WORK/new-dest"
RELEASE=1 install_extension
for build in base new; do
    cp "$WORK/$build-dest$LIB" "$WORK/$build.so"
done

start_cluster "${PGBG_BENCH_PORT:-55441}" max_worker_processes=64 shared_preload_libraries=pg_background
trap finish EXIT
psql_ -d postgres -c "CREATE EXTENSION pg_background" \
    -c "CREATE TABLE bench_log(id bigserial, at timestamptz DEFAULT now(), msg text)" >/dev/null

# use BUILD: the server stopped, its library in place, the server started. (Never copied over
# the library while the server runs: every server process maps that file, and writing into it
# changes their code under them.)
use() {
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null
    cp "$WORK/$1.so" "$LIB.new" && mv "$LIB.new" "$LIB"
    env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE runuser -u postgres -- "$PG_BIN/pg_ctl" \
        -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w -o "$(cat "$CLUSTER_DIR/options")" \
        start >/dev/null
}

# script NAME QUEUE N: bench/NAME.sql with its templates filled in
script() {
    local f="$WORK/$1-$2-$3.sql"
    sed -e "s|@QUEUE@|$2|g" -e "s|@N@|$3|g" "$ROOT/bench/$1.sql" > "$f"
    echo "$f"
}

# The measures: name, script, pgbench options.
MEASURES=(
    "round trip of SELECT 2+2, warm worker|$(script roundtrip_pg_background 0 0)|-T $SECONDS_PER_RUN"
    "round trip of SELECT 2+2, new worker per job|$(script roundtrip_pg_background_cold 0 0)|-T $SECONDS_PER_RUN"
    "launch + detach, queue 64 kB|$(script launch_detach 65536 0)|-T $SECONDS_PER_RUN"
    "autonomous logging INSERT|$(script log_autonomous 0 0)|-T $SECONDS_PER_RUN"
    "1,000,000 int rows, queue 64 kB|$(script stream_pg_background 65536 0)|-t 3"
    "100 MB of 1 kB rows, queue 1 MB|$(script wide_pg_background 1048576 0)|-t 3"
    "1,000,000 int rows through the spill file|$(script stream_spilled 0 0)|-t 3"
    "fan-out of 8 CPU-bound jobs|$(script fanout_cpu 0 8)|-t 3"
)

declare -A RESULTS
measure() {  # measure KEY FILE OPTIONS: one pgbench run's average latency (ms), appended to KEY
    local ms
    # shellcheck disable=SC2086
    ms=$("$PG_BIN/pgbench" -n -d postgres -c 1 -f "$2" $3 2>&1 \
        | sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' || true)
    RESULTS[$1]="${RESULTS[$1]:-} ${ms:-NaN}"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
spread() { tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%s..%s", lo, hi}'; }

for r in $(seq "$REPEAT"); do
    if [ $((r % 2)) = 1 ]; then order="base new"; else order="new base"; fi
    for build in $order; do
        log "round $r of $REPEAT: $build"
        use "$build"
        for i in "${!MEASURES[@]}"; do
            IFS='|' read -r _ file opts <<< "${MEASURES[$i]}"
            measure "$build:$i" "$file" "$opts"
        done
    done
done
use new

log "base $BASE against the working tree ($(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD || echo ', changed')), PostgreSQL 15, $REPEAT rounds each"
mkdir -p "$ROOT/bench/results"
CSV=$ROOT/bench/results/compare.csv
echo "measure,base_ms,new_ms,base_over_new" > "$CSV"
printf '%-46s %16s %16s %8s\n' "median latency (ms), spread" "base" "new" "base/new"
for i in "${!MEASURES[@]}"; do
    IFS='|' read -r name _ _ <<< "${MEASURES[$i]}"
    b=$(echo "${RESULTS[base:$i]}" | median)
    n=$(echo "${RESULTS[new:$i]}" | median)
    ratio=$(awk -v b="$b" -v n="$n" 'BEGIN {printf "%.2f", b / n}')
    printf '%-46s %16s %16s %8s\n' "$name" "$b" "$n" "$ratio"
    printf '%-46s %16s %16s\n' "" "$(echo "${RESULTS[base:$i]}" | spread)" "$(echo "${RESULTS[new:$i]}" | spread)"
    echo "\"$name\",$b,$n,$ratio" >> "$CSV"
done
