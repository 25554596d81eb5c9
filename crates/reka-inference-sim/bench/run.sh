#!/bin/sh
# Status-poll benchmark: 10,000 jobs in flight, wrk against the release binary.
# usage: crates/reka-inference-sim/bench/run.sh   (from the workspace root; needs wrk and python3)
set -eu
BIN=${CARGO_TARGET_DIR:-target}/release/reka-inference-sim
DIR=$(dirname "$0")
PORT=${PORT:-18999}
cargo build --release -q -p reka-inference-sim --bin reka-inference-sim
"$BIN" --addr 127.0.0.1:$PORT --seed 1 > /tmp/sim-url.txt &
SIM=$!
trap 'kill $SIM' EXIT
sleep 0.5
BASE=$(head -1 /tmp/sim-url.txt)
echo "RSS idle:            $(grep VmRSS /proc/$SIM/status)"
python3 "$DIR/submit.py" "$BASE" 10000 /tmp/sim-ids.txt
echo "RSS with 10k jobs:   $(grep VmRSS /proc/$SIM/status)"
curl -s "$BASE/_sim/stats" | python3 -c 'import json,sys; print("jobs:", json.load(sys.stdin)["jobs_by_status"])'
IDS=/tmp/sim-ids.txt wrk -t2 -c64 -d20s --latency -s "$DIR/poll-status.lua" "$BASE"
echo "RSS after the run:   $(grep VmRSS /proc/$SIM/status)"
curl -s "$BASE/_sim/stats" | python3 -c 'import json,sys; print("jobs:", json.load(sys.stdin)["jobs_by_status"])'
