# Part of scripts/test.sh: every query of examples/monitoring/queries.yaml, run on the running
# cluster as a monitoring role with the privileges the file asks for, while a job runs and has
# reported progress. Each query must run, return at least one row, name exactly the columns the
# file lists as its metrics, and give numbers for every metric that is not a label. Prints
# "monitoring: N passed, N failed".

# monitoring_queries FILE: one line per query, "name<TAB>query<TAB>metric:usage,metric:usage…"
monitoring_queries() {
    awk '
        function flush() { if (name != "") print name "\t" query "\t" metrics }
        /^[a-z_]+:$/ { flush(); name = substr($0, 1, length($0) - 1); query = ""; metrics = ""; next }
        /^  query: / { query = $0; sub(/^  query: "/, "", query); sub(/"$/, "", query); next }
        /^    - [a-z_]+:$/ { metric = $2; sub(/:$/, "", metric); next }
        /^        usage: / { usage = $2; gsub(/"/, "", usage)
                             metrics = metrics (metrics == "" ? "" : ",") metric ":" usage; next }
        END { flush() }' "$1"
}

monitoring_sql() { psql_ -At -d pgbg_monitoring "$@"; }

run_monitoring_test() {
    local file="$ROOT/examples/monitoring/queries.yaml" name query metrics out header columns
    local metric usage column row value index numeric queries=0
    checks_reset
    psql_ -d postgres -c "DROP DATABASE IF EXISTS pgbg_monitoring" -c "CREATE DATABASE pgbg_monitoring"
    psql_ -d pgbg_monitoring -c "CREATE EXTENSION pg_background" -c "SET client_min_messages = warning;
        DO \$\$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgbg_monitor') THEN
            CREATE ROLE pgbg_monitor LOGIN;
          END IF;
        END \$\$;
        GRANT pg_read_all_stats TO pgbg_monitor;
        GRANT SELECT ON pg_background_jobs TO pgbg_monitor;
        GRANT EXECUTE ON FUNCTION pg_background_cluster_jobs() TO pgbg_monitor;" >/dev/null

    # a running job that reported progress: it waits for an advisory lock a session holds
    coproc HOLDER { psql_ -At -d pgbg_monitoring; }
    echo "SELECT pg_advisory_lock(4711);" >&"${HOLDER[1]}"
    wait_until pgbg_monitoring "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND objid = 4711 AND granted)"
    check "a session holds the advisory lock" 0 $?
    monitoring_sql -c "SELECT pg_background_detach(pg_background_launch(
        'SELECT pg_background_progress(42, ''half way''); SELECT pg_advisory_xact_lock(4711)'))" >/dev/null
    wait_until pgbg_monitoring "SELECT EXISTS (SELECT FROM pg_background_jobs WHERE state = 'running' AND progress_pct = 42)"
    check "the job runs and has reported progress" 0 $?

    while IFS=$'\t' read -r name query metrics; do
        queries=$((queries + 1))
        out=$(PGUSER=pgbg_monitor psql_ -A -F '|' -P footer=off -d pgbg_monitoring -c "$query" 2>&1 </dev/null)
        check "$name: runs as the monitoring role" 0 $?
        header=$(echo "$out" | head -1)
        columns=$(echo "$metrics" | sed 's/:[A-Z]*//g; s/,/|/g')
        check "$name: its columns are the metrics it lists" "$columns" "$header"
        check "$name: returns rows" 1 "$([ "$(echo "$out" | wc -l)" -gt 1 ] && echo 1 || echo 0)"
        numeric=1
        while IFS= read -r row; do
            index=0
            for metric in ${metrics//,/ }; do
                index=$((index + 1)); usage=${metric#*:}
                [ "$usage" = LABEL ] && continue
                value=$(echo "$row" | cut -d'|' -f"$index")
                [[ "$value" =~ ^-?[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?$ ]] || { numeric=0; echo "not a number: $name ${metric%%:*} = '$value'"; }
            done
        done < <(echo "$out" | tail -n +2)
        check "$name: every metric that is not a label is a number" 1 "$numeric"
    done < <(monitoring_queries "$file")
    check "the file has the three queries" 3 "$queries"

    # what the queries show of the running job
    out=$(PGUSER=pgbg_monitor psql_ -At -d pgbg_monitoring -c "SELECT jobs FROM ($(monitoring_queries "$file" | awk -F'\t' '$1 == "pg_background_jobs" {print $2}')) q WHERE state = 'running'")
    check "pg_background_jobs: counts the running job" 1 "$out"
    out=$(PGUSER=pgbg_monitor psql_ -At -d pgbg_monitoring -c "SELECT progress_pct FROM ($(monitoring_queries "$file" | awk -F'\t' '$1 == "pg_background_running" {print $2}')) q")
    check "pg_background_running: shows its progress" 42 "$out"

    echo "SELECT pg_advisory_unlock(4711);" >&"${HOLDER[1]}"
    exec {HOLDER[1]}>&-
    wait "$HOLDER_PID" 2>/dev/null
    wait_until pgbg_monitoring "SELECT NOT EXISTS (SELECT FROM pg_background_jobs WHERE state = 'running')"
    check "the job ends once the lock is released" 0 $?
    checks_report monitoring
}
