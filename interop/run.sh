#!/usr/bin/env bash
# The official `openai` Python package against the simulator binary.
# Installs nothing outside target/interop-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/interop-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -c 'import openai' 2>/dev/null || "$venv/bin/pip" install --quiet openai
cargo build -p reka-inference-sim --bin reka-inference-sim
out=$(mktemp)
target/debug/reka-inference-sim --addr 127.0.0.1:0 >"$out" 2>&1 &
sim=$!
trap 'kill "$sim" 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do
    url=$(head -n 1 "$out")
    case "$url" in http*) break ;; esac
    kill -0 "$sim" || { cat "$out" >&2; exit 1; }
    sleep 0.1
done
case "$url" in http*) ;; *) echo "the simulator did not start" >&2; cat "$out" >&2; exit 1 ;; esac
"$venv/bin/python" interop/openai_client.py "$url/v2/inference" sim-dev-key qwen3-vl-32b
