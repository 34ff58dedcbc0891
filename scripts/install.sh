#!/usr/bin/env bash
# Build pg_background (release) and install it, with the update scripts from the C releases,
# into PostgreSQL MAJOR (15 by default; 16 and 18 as set up by scripts/common.sh). Idempotent.
# Usage: bash scripts/install.sh [MAJOR]
source "$(dirname "$0")/common.sh"
ensure_deps
ensure_pg "${1:-15}"
use_pg "${1:-15}"
RELEASE=1 install_extension
log "installed into $("$PG_CONFIG" --pkglibdir) and $("$PG_CONFIG" --sharedir)/extension"
