#!/usr/bin/env bash
# Build pg_background, install it into the local PostgreSQL 15, start a throwaway cluster and run
# the examples of examples/quickstart.sql, printing their results. Idempotent.
source "$(dirname "$0")/common.sh"
ensure_deps
install_extension
log "starting a throwaway cluster (preloading the library, for the jobs view on 15)"
start_cluster "${PGBG_DEMO_PORT:-55432}" shared_preload_libraries=pg_background
log "running examples/quickstart.sql"
"$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -e -d postgres -f "$ROOT/examples/quickstart.sql"
log "done (the cluster is removed again)"
