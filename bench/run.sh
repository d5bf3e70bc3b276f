#!/bin/bash
# Benchmark the lab manual's stock JupyterHub against pdal-hub on this machine, side by side.
# Usage: sudo bash bench/run.sh [python -m bench options, e.g. --students 40 --only storm]
# Builds (once) a venv from /usr/bin/python3 with pdal-hub from this checkout, which both
# hubs and all student servers use; results go to bench/results/ (Markdown, JSON, PNG).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${PDAL_HUB_BENCH_VENV:-/opt/pdal-hub-bench-venv}"
if [ "$(id -u)" != 0 ]; then
    echo "run as root: the benchmark creates (and removes) Linux users" >&2
    exit 2
fi
command -v configurable-http-proxy >/dev/null || npm install -g configurable-http-proxy
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps "$here"
"$venv/bin/python" -m pip install -q "$here[test]"
chmod -R a+rX "$venv"   # students' servers run from it
cd "$here"
exec "$venv/bin/python" -m bench "$@"
