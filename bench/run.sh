#!/usr/bin/env bash
# Benchmark of pg_background against plain SQL, local PL/pgSQL functions and dblink on the same
# throwaway cluster, and against the C extension on a second one (bench/c_extension.sh), with
# every figure as a ratio to a baseline measured in the same run (none is a fixed figure). Builds and installs the
# release build (BENCH_BUILD=debug skips it), runs the pgbench scripts of bench/*.sql (templates:
# @CONN@, @QUEUE@, @N@) REPEAT times each, interleaved, and prints medians, spreads and ratios.
# Writes bench/results/latest.csv and bench/results/latest.png (gnuplot).
#   bash bench/run.sh                       # the whole benchmark, about 15 minutes
#   LEAK_LAUNCHES=10000 bash bench/run.sh   # a shorter leak check
# Writes bench/results/latest.txt too: what it prints.
source "$(dirname "$0")/../scripts/common.sh"
REPEAT=${REPEAT:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CLIENTS=${CLIENTS:-"1 2 8"}
STREAM_RUNS=${STREAM_RUNS:-3}
QUEUES=${QUEUES:-"65536 1048576 16777216"}
FANOUT=${FANOUT:-"8 32"}
LEAK_LAUNCHES=${LEAK_LAUNCHES:-100000}

mkdir -p "$ROOT/bench/results"
# everything printed also goes to bench/results/latest.txt (keep a run: copy it beside, dated)
exec > >(tee "$ROOT/bench/results/latest.txt") 2>&1
ensure_deps
command -v gnuplot >/dev/null || apt-get install -y -qq gnuplot-nox >/dev/null
if [ "${BENCH_BUILD:-release}" = release ]; then RELEASE=1 install_extension; else install_extension; fi
# (preloaded, as the job registry needs on 15 and 16: caps on running jobs, kept results)
start_cluster "${PGBG_BENCH_PORT:-55439}" max_worker_processes=128 shared_preload_libraries=pg_background
psql_ -d postgres -c "CREATE EXTENSION pg_background" -c "CREATE EXTENSION dblink" \
    -c "CREATE TABLE bench_log(id bigserial, at timestamptz DEFAULT now(), msg text)"
# The local baselines of streaming: the same rows from a PL/pgSQL function, whose RETURN QUERY
# fills a tuplestore as every set-returning function read in FROM does (ours included).
psql_ -d postgres <<'SQL'
CREATE FUNCTION bench_ints() RETURNS SETOF int LANGUAGE plpgsql AS
$$ BEGIN RETURN QUERY SELECT g FROM generate_series(1, 1000000) g; END $$;
CREATE FUNCTION bench_wide() RETURNS SETOF text LANGUAGE plpgsql AS
$$ BEGIN RETURN QUERY SELECT repeat('x', 1000) FROM generate_series(1, 100000); END $$;
SQL

WORK=$(mktemp -d /tmp/pg_background-bench.XXXXXX)
CONN="host=$PGHOST port=$PGPORT user=postgres dbname=postgres"
# The C extension on a cluster of its own (same settings, not preloaded: it needs no preloading)
source "$ROOT/bench/c_extension.sh"
C_EXT=
C_TREE=$(mktemp -d /tmp/pg_background-c-extension.XXXXXX)
if C_TREE_BIN=$(c_extension_tree "$C_TREE"); then
    start_c_cluster "$C_TREE_BIN" "$(( ${PGBG_BENCH_PORT:-55439} + 1 ))" max_worker_processes=128 && C_EXT=1
    trap 'stop_c_cluster; stop_cluster' EXIT
fi
[ -n "$C_EXT" ] || echo "the C extension: left out of this run"
mkdir -p "$ROOT/bench/results"
CSV=$ROOT/bench/results/latest.csv
echo "kind,name,median,spread,unit" > "$CSV"

# script NAME VARIANT [QUEUE] [N]: the template bench/NAME.sql expanded into $WORK/NAME-VARIANT.sql (no "@": pgbench reads it as a weight)
script() {
    local f="$WORK/$1-$2.sql"
    sed -e "s|@CONN@|$CONN|g" -e "s|@QUEUE@|${3:-0}|g" -e "s|@N@|${4:-0}|g" \
        "$ROOT/bench/$1.sql" > "$f"
    echo "$f"
}

declare -A RESULTS
# measure KEY FILE [pgbench options]: one pgbench run, its average latency (ms) appended to KEY
measure() {
    local key=$1 file=$2; shift 2
    local ms target=()
    # (the C extension's runs go to its cluster)
    [[ $key != cext_* ]] || target=(-h "$C_HOST" -p "$C_PORT")
    ms=$("$PG_BIN/pgbench" "${target[@]}" -n -d postgres -f "$file" "$@" 2>&1 \
        | sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' || true)
    RESULTS[$key]="${RESULTS[$key]:-} ${ms:-NaN}"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
spread() { tr ' ' '\n' | grep -v '^$' | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%s..%s", lo, hi}'; }
med() { echo "${RESULTS[$1]}" | median; }
# ratio A B: B / A (how many times faster A is than B; < 1: slower)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b / a}'; }

# rounds KEY=FILE... -- [pgbench options]: REPEAT rounds, each running every pair once
rounds() {
    local pairs=() opts=() seen=0 a r p
    for a in "$@"; do
        if [ "$a" = -- ]; then seen=1; elif [ $seen = 0 ]; then pairs+=("$a"); else opts+=("$a"); fi
    done
    for r in $(seq "$REPEAT"); do
        for p in "${pairs[@]}"; do measure "${p%%=*}" "${p#*=}" "${opts[@]}"; done
    done
}

RATIOS=()
report_ratio() {  # report_ratio LABEL VALUE TARGET-TEXT
    printf '  %-58s %8s   %s\n' "$1" "$2" "$3"
    echo "ratio,\"$1\",$2,,\"$3\"" >> "$CSV"
    RATIOS+=("$1|$2")
}

# 1. Round trip of SELECT 2+2 with 1, 2 and 8 clients
for c in $CLIENTS; do
    log "round trip of SELECT 2+2, $c client(s), ${SECONDS_PER_RUN}s x $REPEAT"
    pairs=("rt_plain_c$c=$(script roundtrip_plain c$c)" "rt_ours_c$c=$(script roundtrip_pg_background c$c)"
           "rt_dblink_fresh_c$c=$(script roundtrip_dblink_fresh c$c)" "rt_dblink_open_c$c=$(script roundtrip_dblink_open c$c)")
    [ -z "$C_EXT" ] || pairs+=("cext_rt_c$c=$(script roundtrip_pg_background c$c)")
    rounds "${pairs[@]}" -- -c "$c" -j "$c" -T "$SECONDS_PER_RUN"
done
# the cold path: a new worker process per job (pg_background.worker_idle_timeout = 0)
log "round trip of SELECT 2+2 without warm workers, 1 client, ${SECONDS_PER_RUN}s x $REPEAT"
rounds "rt_cold_c1=$(script roundtrip_pg_background_cold c1)" -- -c 1 -T "$SECONDS_PER_RUN"
# the first job of a new session (pgbench -C: a new connection per transaction), run by the
# worker the previous connection of the role left waiting, or by a new process; the job's share is
# what the session takes beyond the same session without it (newsession_plain)
log "first job of a new session, 1 client, ${SECONDS_PER_RUN}s x $REPEAT"
rounds "ns_plain=$(script newsession_plain c1)" "ns_pooled=$(script newsession_pooled c1)" \
       "ns_cold=$(script newsession_cold c1)" -- -C -c 1 -T "$SECONDS_PER_RUN"
# what admission under a cap (a per-role cap: the registry is scanned at each launch) and a
# result launched to be kept (read here by its job id) add to the warm round trip
log "round trip of SELECT 2+2 under a cap, and kept, 1 client, ${SECONDS_PER_RUN}s x $REPEAT"
rounds "rt_capped_c1=$(script roundtrip_capped c1)" "rt_kept_c1=$(script roundtrip_kept c1)" \
       -- -c 1 -T "$SECONDS_PER_RUN"

# 2. Streaming 1,000,000 int rows and 100 MB of 1 kB text rows, per queue size; and 1,000,000
# int rows read only after the job has ended (through its spill file)
log "streaming 1,000,000 int rows and 100 MB of 1 kB rows, queues $QUEUES, $STREAM_RUNS runs x $REPEAT"
pairs=("int_local=$(script stream_local x)" "int_plpgsql=$(script stream_plpgsql x)"
       "int_dblink=$(script stream_dblink x)" "int_spilled=$(script stream_spilled x)"
       "wide_local=$(script wide_local x)" "wide_plpgsql=$(script wide_plpgsql x)"
       "wide_dblink=$(script wide_dblink x)")
for q in $QUEUES; do
    pairs+=("int_ours_q$q=$(script stream_pg_background "q$q" "$q")" "wide_ours_q$q=$(script wide_pg_background "q$q" "$q")")
done
# (the C extension with the default queue of both, 64 kB)
[ -z "$C_EXT" ] || pairs+=("cext_int=$(script stream_pg_background q65536 65536)" "cext_wide=$(script wide_pg_background q65536 65536)")
rounds "${pairs[@]}" -- -c 1 -t "$STREAM_RUNS"

# 3. Fan-out: N jobs launched at once, then read
log "fan-out of $FANOUT jobs (pg_sleep(0.1) and a CPU-bound count), 3 runs x $REPEAT"
pairs=("cpu_local=$(script cpu_local x)")
for n in $FANOUT; do
    pairs+=("fanout_sleep_n$n=$(script fanout_sleep "n$n" 0 "$n")" "fanout_cpu_n$n=$(script fanout_cpu "n$n" 0 "$n")")
done
rounds "${pairs[@]}" -- -c 1 -t 3

# 4./5. Launch cost per queue size; fire and forget (launch + detach) per second
log "launch + detach, queue 64 kB and 16 MB, ${SECONDS_PER_RUN}s x $REPEAT"
rounds "launch_q65536=$(script launch_detach q65536 65536)" "launch_q16777216=$(script launch_detach q16777216 16777216)" \
       -- -c 1 -T "$SECONDS_PER_RUN"

# Autonomous logging calls next to launch + result and dblink
log "autonomous logging INSERT, 1 client, ${SECONDS_PER_RUN}s x $REPEAT"
rounds "log_plain=$(script log_plain x)" "log_autonomous=$(script log_autonomous x)" \
       "log_launch_result=$(script log_launch_result x)" "log_dblink_open=$(script log_dblink_open x)" \
       -- -c 1 -T "$SECONDS_PER_RUN"

# 6. Leak check: LEAK_LAUNCHES launch + read in one session
log "leak check: $LEAK_LAUNCHES launch + read in one session"
leak_sql() {  # psql input: warms up, measures, runs the launches in batches of 10,000, measures again
    local state="SELECT pg_backend_pid() AS pid, sum(total_bytes) AS mem FROM pg_backend_memory_contexts \\gset
\\setenv LEAK_PID :pid
\\setenv LEAK_MEM :mem"
    local report='\! echo "$LEAK_WHEN: session memory $LEAK_MEM bytes, RSS $(awk '"'"'/VmRSS/ {print $2}'"'"' /proc/$LEAK_PID/status) kB, DSM segments $(find /dev/shm -maxdepth 1 -name '"'"'PostgreSQL.*'"'"' | wc -l), pg_background workers $(ps -e -o cmd | grep -c '"'"'^postgres: pg_background'"'"')"'
    # warm-up: the first launches fill catalog caches and the registry's context
    echo "DO \$\$ BEGIN FOR i IN 1..200 LOOP PERFORM * FROM pg_background_result(pg_background_launch('SELECT 1')) AS (r int); END LOOP; END \$\$;"
    echo "$state"; echo '\setenv LEAK_WHEN before'; echo "$report"
    local batches=$(( (LEAK_LAUNCHES + 9999) / 10000 )) i
    for i in $(seq "$batches"); do
        cat <<SQL
DO \$\$ BEGIN FOR i IN 1..least(10000, $LEAK_LAUNCHES - ($i - 1) * 10000) LOOP
  PERFORM * FROM pg_background_result(pg_background_launch('SELECT 1')) AS (r int);
END LOOP; END \$\$;
SQL
    done
    echo "$state"; echo '\setenv LEAK_WHEN after'; echo "$report"
}
leak_start=$(date +%s)
leak_out=$(leak_sql | psql_ -At -d postgres)
leak_secs=$(( $(date +%s) - leak_start ))
echo "$leak_out"
mem_before=$(echo "$leak_out" | sed -n 's/^before: session memory \([0-9]*\) bytes.*/\1/p')
mem_after=$(echo "$leak_out" | sed -n 's/^after: session memory \([0-9]*\) bytes.*/\1/p')
dsm_before=$(echo "$leak_out" | sed -n 's/^before:.*DSM segments \([0-9]*\).*/\1/p')
dsm_after=$(echo "$leak_out" | sed -n 's/^after:.*DSM segments \([0-9]*\).*/\1/p')

# 4b. Launch cost again with preallocated DSM memory: segments then come from the main shared
# memory region instead of a new /dev/shm file that the kernel must zero-fill (posix_fallocate)
log "launch + detach with min_dynamic_shared_memory = 256MB, ${SECONDS_PER_RUN}s x $REPEAT"
stop_c_cluster
stop_cluster
start_cluster "${PGBG_BENCH_PORT:-55439}" max_worker_processes=128 min_dynamic_shared_memory=256MB
psql_ -d postgres -c "CREATE EXTENSION pg_background" -c "CREATE EXTENSION dblink"
CONN="host=$PGHOST port=$PGPORT user=postgres dbname=postgres"
rounds "launchpool_q65536=$(script launch_detach q65536 65536)" \
       "launchpool_q16777216=$(script launch_detach q16777216 16777216)" -- -c 1 -T "$SECONDS_PER_RUN"
log "round trip of SELECT 2+2 with min_dynamic_shared_memory = 256MB, 1 client, ${SECONDS_PER_RUN}s x $REPEAT"
rounds "rtpool_ours_c1=$(script roundtrip_pg_background c1)" "rtpool_cold_c1=$(script roundtrip_pg_background_cold c1)" \
       "rtpool_dblink_open_c1=$(script roundtrip_dblink_open c1)" -- -c 1 -T "$SECONDS_PER_RUN"

# Results
echo
printf '%-28s %12s %22s\n' benchmark "median ms" "spread ms"
for key in $(printf '%s\n' "${!RESULTS[@]}" | sort); do
    m=$(med "$key"); s=$(echo "${RESULTS[$key]}" | spread)
    printf '%-28s %12s %22s\n' "$key" "$m" "$s"
    echo "latency,$key,$m,$s,ms" >> "$CSV"
done
echo
echo "ratios (how many times the speed of the other; 1.00 = as fast, < 1 slower) and targets:"
for c in $CLIENTS; do
    report_ratio "round trip, $c client(s): vs plain SQL" "$(ratio "$(med rt_ours_c$c)" "$(med rt_plain_c$c)")" ""
    report_ratio "round trip, $c client(s): vs dblink fresh connection" "$(ratio "$(med rt_ours_c$c)" "$(med rt_dblink_fresh_c$c)")" ""
    report_ratio "round trip, $c client(s): vs dblink open connection" "$(ratio "$(med rt_ours_c$c)" "$(med rt_dblink_open_c$c)")" "warm workers: >= 1"
done
if [ -n "$C_EXT" ]; then
    for c in $CLIENTS; do
        report_ratio "round trip, $c client(s): vs the C extension" "$(ratio "$(med rt_ours_c$c)" "$(med cext_rt_c$c)")" ""
    done
    report_ratio "round trip, 1 client, cold (no warm worker): vs the C extension" "$(ratio "$(med rt_cold_c1)" "$(med cext_rt_c1)")" ""
    report_ratio "1M int rows, queue 65536: vs the C extension" "$(ratio "$(med int_ours_q65536)" "$(med cext_int)")" ""
    report_ratio "100 MB wide rows, queue 65536: vs the C extension" "$(ratio "$(med wide_ours_q65536)" "$(med cext_wide)")" ""
fi
report_ratio "round trip, 1 client, cold (no warm worker): vs dblink fresh connection" "$(ratio "$(med rt_cold_c1)" "$(med rt_dblink_fresh_c1)")" ""
report_ratio "round trip, 1 client: under a per-role cap vs no cap" "$(ratio "$(med rt_capped_c1)" "$(med rt_ours_c1)")" ""
report_ratio "round trip, 1 client: kept result read by job id vs by PID" "$(ratio "$(med rt_kept_c1)" "$(med rt_ours_c1)")" ""
report_ratio "round trip, 1 client: warm worker vs cold" "$(ratio "$(med rt_ours_c1)" "$(med rt_cold_c1)")" ">= 20"
report_ratio "first job of a new session: another session's waiting worker vs cold" \
    "$(awk -v p="$(med ns_pooled)" -v c="$(med ns_cold)" -v b="$(med ns_plain)" 'BEGIN {printf "%.2f", (c - b) / (p - b)}')" ">= 5"
report_ratio "round trip, min_dynamic_shared_memory: warm vs cold" "$(ratio "$(med rtpool_ours_c1)" "$(med rtpool_cold_c1)")" ">= 20"
report_ratio "round trip, min_dynamic_shared_memory: warm vs dblink open" "$(ratio "$(med rtpool_ours_c1)" "$(med rtpool_dblink_open_c1)")" ">= 1.3"
for q in $QUEUES; do
    report_ratio "1M int rows, queue $q: vs local" "$(ratio "$(med int_ours_q$q)" "$(med int_local)")" ">= 0.7"
    report_ratio "1M int rows, queue $q: vs a local PL/pgSQL RETURN QUERY" "$(ratio "$(med int_ours_q$q)" "$(med int_plpgsql)")" ">= 1"
    report_ratio "1M int rows, queue $q: vs dblink" "$(ratio "$(med int_ours_q$q)" "$(med int_dblink)")" ""
    report_ratio "100 MB wide rows, queue $q: vs local" "$(ratio "$(med wide_ours_q$q)" "$(med wide_local)")" ""
    report_ratio "100 MB wide rows, queue $q: vs a local PL/pgSQL RETURN QUERY" "$(ratio "$(med wide_ours_q$q)" "$(med wide_plpgsql)")" ">= 1"
    report_ratio "100 MB wide rows, queue $q: vs dblink" "$(ratio "$(med wide_ours_q$q)" "$(med wide_dblink)")" ""
    report_ratio "100 MB wide rows, queue $q: MB/s" "$(awk -v ms="$(med wide_ours_q$q)" 'BEGIN {printf "%.0f", 100000 * 1000 / 1e6 / (ms / 1000)}')" ">= 3 x 310"
done
# a job whose reader waits for its end: the rows go through the spill file
report_ratio "1M int rows, spilled (wait for the job, then read): vs local" "$(ratio "$(med int_spilled)" "$(med int_local)")" ""
report_ratio "1M int rows, spilled: vs read while the job runs (64 kB)" "$(ratio "$(med int_spilled)" "$(med int_ours_q65536)")" ""
for n in $FANOUT; do
    report_ratio "fan-out $n x pg_sleep(0.1): end-to-end ms" "$(med fanout_sleep_n$n)" "32 jobs: <= 115"
    report_ratio "fan-out $n x pg_sleep(0.1): sleep / end-to-end" "$(ratio "$(med fanout_sleep_n$n)" 100)" ""
    report_ratio "fan-out $n x CPU query: vs $n local runs in a row" \
        "$(awk -v a="$(med fanout_cpu_n$n)" -v b="$(med cpu_local)" -v n="$n" 'BEGIN {printf "%.2f", b * n / a}')" "(2 cores)"
done
report_ratio "launch cost: 16 MB queue / 64 kB queue" "$(ratio "$(med launch_q65536)" "$(med launch_q16777216)")" "<= 1.5"
report_ratio "launch cost, min_dynamic_shared_memory: 16 MB / 64 kB" "$(ratio "$(med launchpool_q65536)" "$(med launchpool_q16777216)")" "<= 1.2"
report_ratio "fire and forget (launch + detach) per second" "$(awk -v a="$(med launch_q65536)" 'BEGIN {printf "%.0f", 1000 / a}')" ""
report_ratio "autonomous log call: vs launch + result" "$(ratio "$(med log_autonomous)" "$(med log_launch_result)")" ""
report_ratio "autonomous log call: vs dblink_exec, open connection" "$(ratio "$(med log_autonomous)" "$(med log_dblink_open)")" ""
report_ratio "autonomous log calls per second" "$(awk -v a="$(med log_autonomous)" 'BEGIN {printf "%.0f", 1000 / a}')" ""
report_ratio "leak check: session memory growth, bytes ($LEAK_LAUNCHES launches, ${leak_secs}s)" "$((mem_after - mem_before))" "0"
report_ratio "leak check: DSM segment growth" "$((dsm_after - dsm_before))" "0"

# The plot: the dimensionless ratios as horizontal bars
PLOT_DATA=$WORK/ratios.dat
for r in "${RATIOS[@]}"; do
    case "${r%%|*}" in *"ms"|*"MB/s"|*"per second"|*"bytes"*|*"growth"*) continue ;; esac
    printf '"%s" %s\n' "${r%%|*}" "${r#*|}" >> "$PLOT_DATA"
done
PNG=$ROOT/bench/results/latest.png
gnuplot <<GP && echo "(plot: $PNG)"
set terminal pngcairo size 1400,900 font ",9" noenhanced
set output "$PNG"
set title "pg_background: speed relative to each baseline (1.0 = as fast; measured $(date -u +%Y-%m-%d))"
set style fill solid 0.6
set yrange [-1:*] reverse
set xrange [0:*]
set xlabel "ratio"
set grid x
unset key
set arrow from 1, graph 0 to 1, graph 1 nohead dt 2
plot "$PLOT_DATA" using (\$2/2):0:(\$2/2):(0.35):yticlabels(1) with boxxyerror
GP
echo "(CSV: $CSV)"
rm -rf "$WORK" "$C_TREE"
