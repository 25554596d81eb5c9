#!/usr/bin/env bash
# The official MCP Python SDK (`mcp` from PyPI) against `reka-inference
# --sim mcp`, over stdio and Streamable HTTP (issue 23).
# Installs nothing outside target/interop-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/interop-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# The script uses the SDK's 2.x API (snake_case fields, mcp.Client).
"$venv/bin/python" -c 'import mcp.client.streamable_http' 2>/dev/null || "$venv/bin/pip" install --quiet 'mcp>=2.3,<3'
cargo build -p reka-inference-cli --bin reka-inference
"$venv/bin/python" interop/mcp_client.py "${CARGO_TARGET_DIR:-target}/debug/reka-inference"
