#!/usr/bin/env bash
# The CLI against a hostile world, wall time and peak RSS of each case.
# `cargo make hostile-cli`. Needs python3, GNU time (/usr/bin/time) and
# prlimit (util-linux). BIN=path/to/reka-inference measures another build
# of the CLI (an older one, for a before/after table).
#
# Issue 9: `wait --timeout 5`, `run --timeout 5` and `status --timeout 5`
# against a silent and a dripping server, and the peak RSS of commands whose
# answer never ends.
# Issue 27: `run --webhook-listen` with the delivery lost, under a flood of
# forged deliveries, against slow connections with 128 file descriptors,
# against 100 connections holding 1 MiB bodies, and a declared 64 MiB body;
# `chat --stream` still coming at `--timeout 5s`, and a 196 MB streamed
# answer; `wait` on a server that contradicts itself forever.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
target="${CARGO_TARGET_DIR:-target}"
cargo build -q --release -p reka-inference-cli -p reka-inference-sim
bin="${BIN:-$target/release/reka-inference}"
sim_bin="$target/release/reka-inference-sim"
here=crates/reka-inference-bench/hostile
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One line per case: the label, the last line the command wrote on stderr,
# then its wall time, peak RSS and exit code.
timed() { # label, then the command
    local label=$1; shift
    local err="$tmp/err"
    /usr/bin/time -o "$tmp/time" -f "%e s wall, %M KiB peak RSS, exit %x" "$@" >/dev/null 2>"$err" || true
    printf '%s: %s | %s\n' "$label" "$(cat "$tmp/time" | tail -n 1)" "$(grep -v '^\s*$' "$err" | tail -n 1 | cut -c1-160)"
}

# --- Issue 9 -------------------------------------------------------------
run() { # mode, then the command
    local mode=$1; shift
    local out; out=$(mktemp)
    python3 "$here/server.py" "$mode" > "$out" 2>/dev/null &
    local server=$!
    for _ in $(seq 50); do [ -s "$out" ] && break; sleep 0.1; done
    local port; port=$(head -n 1 "$out")
    timed "$mode $*" "$bin" --api-key k --base-url "http://127.0.0.1:$port" "$@"
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

# --- Issue 27 ------------------------------------------------------------
# Chat streams and a self-contradicting server (server.py).
chat() { # mode, label, then chat's arguments
    local mode=$1 label=$2; shift 2
    local out; out=$(mktemp)
    python3 "$here/server.py" "$mode" > "$out" 2>/dev/null &
    local server=$!
    for _ in $(seq 50); do [ -s "$out" ] && break; sleep 0.1; done
    local port; port=$(head -n 1 "$out")
    timed "$label" "$bin" --api-key k chat --chat-base-url "http://127.0.0.1:$port/v1" "$@"
    kill "$server" 2>/dev/null || true
    rm -f "$out"
}
chat chat-drip "chat --stream, tokens still coming, --timeout 5s" --stream hello --timeout 5s
chat chat-drip "chat (whole), tokens still coming, --timeout 5s" hello --timeout 5s
chat chat-huge "chat --stream, a 196 MB answer" --stream hello --timeout 10m
run contradicts wait req_1 --timeout 5m

# The simulator at real time, with jobs of 1.5 s, 10 s and 44 s.
cat > "$tmp/catalog.json" <<'JSON'
{"chat_models": ["qwen3-vl-32b"], "models": [
  {"model_id": "quick", "capability": "text-to-image", "workers": 64, "duration": {"fixed": 1.5}},
  {"model_id": "ten", "capability": "text-to-image", "workers": 64, "duration": {"fixed": 10}},
  {"model_id": "long", "capability": "text-to-image", "workers": 64, "duration": {"fixed": 44}}
]}
JSON
sim_pid=
start_sim() { # extra flags of the simulator
    "$sim_bin" --addr 127.0.0.1:0 --catalog "$tmp/catalog.json" "$@" > "$tmp/sim" 2>/dev/null &
    sim_pid=$!
    for _ in $(seq 100); do [ -s "$tmp/sim" ] && break; sleep 0.1; done
    sim_url=$(head -n 1 "$tmp/sim")
}
stop_sim() { kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_sim --faults webhook:lost=1
timed "run --webhook-listen, delivery lost (1.5 s job)" \
    "$bin" --api-key sim-dev-key --base-url "$sim_url" run quick/text-to-image --set p=x --webhook-listen 127.0.0.1:0
timed "run --webhook-listen --timeout 60s, delivery lost (1.5 s job)" \
    "$bin" --api-key sim-dev-key --base-url "$sim_url" run quick/text-to-image --set p=x --webhook-listen 127.0.0.1:0 --timeout 60s
stop_sim

# An attack on the receiver while `run` waits for its job: the attack
# starts once the receiver listens, and stops when the command ends.
attacked() { # label, job endpoint, limit prefix ("" or "prlimit --nofile=128"), attack mode, count
    local label=$1 endpoint=$2 limit=$3 mode=$4 n=$5
    local port; port=$(free_port)
    start_sim
    # shellcheck disable=SC2086
    timed "$label" $limit "$bin" --api-key sim-dev-key --base-url "$sim_url" \
        run "$endpoint" --set p=x --webhook-listen "127.0.0.1:$port" &
    local cmd=$!
    python3 "$here/receiver_attack.py" "$mode" "$port" "$n" 2>>"$tmp/attack" >>"$tmp/attack" &
    local attack=$!
    wait "$cmd" || true
    kill "$attack" 2>/dev/null || true
    wait "$attack" 2>/dev/null || true
    stop_sim
}
attacked "run --webhook-listen (44 s job), 110,000 forged deliveries" long/text-to-image "" flood 110000
attacked "run --webhook-listen (10 s job), 300 slowloris connections, 128 fds" ten/text-to-image "prlimit --nofile=128" slowloris 300
attacked "run --webhook-listen (10 s job), 100 connections holding 1 MiB bodies" ten/text-to-image "" bodies 100

# A declared 64 MiB body: how soon the receiver answers.
port=$(free_port)
start_sim
"$bin" --api-key sim-dev-key --base-url "$sim_url" run long/text-to-image --set p=x \
    --webhook-listen "127.0.0.1:$port" >/dev/null 2>&1 &
cmd=$!
printf 'run --webhook-listen, a declared 64 MiB body: %s\n' "$(python3 "$here/receiver_attack.py" oversize "$port")"
kill "$cmd" 2>/dev/null || true
wait "$cmd" 2>/dev/null || true
stop_sim
grep -h "flood:" "$tmp/attack" 2>/dev/null || true
