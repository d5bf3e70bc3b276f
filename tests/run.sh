#!/bin/bash
# Run the whole pdal-hub test suite on a Debian/Ubuntu machine, as root.
# Installs what the tests need (Debian packages, configurable-http-proxy, a venv
# from the system Python with pdal-hub built from this checkout), then runs pytest.
# Usage: sudo bash tests/run.sh [pytest arguments]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${PDAL_HUB_TEST_VENV:-/opt/pdal-hub-test-venv}"

apt_packages=(python3-venv python3-dev nodejs npm mosquitto mosquitto-clients
    r-base-core r-cran-irkernel default-jdk-headless chromium fonts-dejavu-core systemd passwd
    nginx fail2ban openssl)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs may come from elsewhere with npm inside it
if command -v npm >/dev/null; then
    missing=("${missing[@]/npm}")
    missing=("${missing[@]/nodejs}")
fi
missing=(${missing[@]+"${missing[@]}"})
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v configurable-http-proxy >/dev/null || npm install -g configurable-http-proxy

echo "== building the test venv $venv from /usr/bin/python3"
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps "$here"
"$venv/bin/python" -m pip install -q "$here[test]"
chmod -R a+rX "$venv"

cd "$here"
exec "$venv/bin/pytest" -p no:cacheprovider "$@"
