#!/bin/bash
# Install pdal-hub from this checkout on a Debian/Ubuntu machine and start the hub.
# Usage: sudo bash install.sh [pdal-hub install options, e.g. --admin NAME]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${PDAL_HUB_VENV:-/opt/jupyterhub-venv}"
# Students execute the venv and read the libs root: never inherit a private umask.
umask 022

if [ "$(id -u)" != 0 ]; then
    echo "Run as root: sudo bash $0" >&2
    exit 2
fi
# The lab manual's prerequisites: Python for the hub, Node.js for the proxy,
# a JDK for the Java kernel, R with IRkernel for the R kernel.
need=()
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3 python3-venv)
command -v npm >/dev/null || need+=(nodejs npm)
command -v jshell >/dev/null || need+=(default-jdk-headless)
command -v R >/dev/null || need+=(r-base-core)
[ -e /usr/share/jupyter/kernels/ir/kernel.json ] || need+=(r-cran-irkernel)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
# The venv must come from the system interpreter: students execute it.
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "$here"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--create-admin)
exec "$venv/bin/pdal-hub" install --start "${args[@]}"
