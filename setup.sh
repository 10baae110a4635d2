#!/usr/bin/env bash
# Set up tsdcheck on a Debian machine: the C toolchains it drives, then a virtualenv with the
# package.  Idempotent: a second run only checks.  `--dev` adds the test and lint tools.
set -euo pipefail
cd "$(dirname "$0")"

DEBS=(gcc libc6-dev musl-tools dietlibc-dev libpth-dev)
# redis-server: the example database that cluster campaigns share (the tests start their own)
[ "${1:-}" = "--dev" ] && DEBS+=(redis-server)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
  missing+=("python3-venv")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}"
