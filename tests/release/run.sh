# Part of scripts/test.sh: release hygiene. META.json validates against the PGXN meta spec
# (pgxn_meta, installed with cargo at a pinned version); the version is the same in Cargo.toml,
# META.json and the newest CHANGELOG.md entry; the licence is the PostgreSQL licence.
# Prints "release: N passed, N failed".

PGXN_META_VERSION=0.7.0

run_release_test() {
    local out
    checks_reset
    if [ "$(pgxn_meta --version 2>/dev/null)" != "pgxn_meta $PGXN_META_VERSION" ]; then
        log "installing pgxn_meta $PGXN_META_VERSION (the PGXN META.json validator, about a minute)"
        cargo install pgxn_meta --version "$PGXN_META_VERSION" --locked >/dev/null 2>&1
    fi
    out=$(cd "$ROOT" && pgxn_meta META.json 2>&1)
    check "META.json validates against the PGXN meta spec" "META.json is OK" "$out"
    check "META.json has the version of Cargo.toml" "$EXT_VERSION $EXT_VERSION" \
        "$(python3 -c 'import json, sys; m = json.load(open(sys.argv[1]));
print(m["version"], m["provides"]["pg_background"]["version"])' "$ROOT/META.json")"
    check "the newest CHANGELOG.md entry is this version" "$EXT_VERSION" \
        "$(sed -n 's/^## \([^ ]*\).*/\1/p' "$ROOT/CHANGELOG.md" | head -n1)"
    check "the control file takes its version from Cargo.toml" "default_version = '@CARGO_VERSION@'" \
        "$(grep '^default_version' "$ROOT/pg_background.control")"
    check "LICENSE is the PostgreSQL licence, as Cargo.toml and META.json say" "PostgreSQL License PostgreSQL postgresql" \
        "$(head -n1 "$ROOT/LICENSE") $(sed -n 's/^license = "\(.*\)"/\1/p' "$ROOT/Cargo.toml") $(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["license"])' "$ROOT/META.json")"
    checks_report release
}
