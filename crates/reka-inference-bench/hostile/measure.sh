#!/usr/bin/env bash
# The CLI against a hostile server (issue 9): how long `wait --timeout 5`,
# `run --timeout 5` and `status --timeout 5` take against a silent and a
# dripping server, and the peak RSS of commands whose answer never ends.
# `cargo make hostile-cli`. Needs python3 and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
target="${CARGO_TARGET_DIR:-target}"
cargo build -q --release -p reka-inference-cli
bin="$target/release/reka-inference"
here=crates/reka-inference-bench/hostile
run() { # mode, then the command
    local mode=$1; shift
    local out; out=$(mktemp)
    python3 "$here/server.py" "$mode" > "$out" 2>/dev/null &
    local server=$!
    for _ in $(seq 50); do [ -s "$out" ] && break; sleep 0.1; done
    local port; port=$(head -n 1 "$out")
    /usr/bin/time -f "$mode $*: %e s wall, %M KiB peak RSS, exit %x" \
        "$bin" --api-key k --base-url "http://127.0.0.1:$port" "$@" 2>&1 >/dev/null | tail -n 1 || true
    kill "$server" 2>/dev/null || true
    rm -f "$out"
}
for mode in silent drip; do
    run "$mode" wait req_1 --timeout 5
    run "$mode" run a/text-to-image --set p=x --timeout 5
    run "$mode" status req_1 --timeout 5
done
for cmd in "models" "status req_1" "result req_1" "list" "wait req_1 --timeout 5"; do
    # shellcheck disable=SC2086
    run endless $cmd
done
