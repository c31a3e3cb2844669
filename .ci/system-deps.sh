#!/usr/bin/env bash
# Install the Debian packages the test suite needs (real etcd 3.4.23 and the
# tools listed in .ci/apt-packages.txt). Idempotent: does nothing when all are
# present. Called by `nox -s tests` and therefore by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(etcd-server etcd-client)
mapfile -t extra < <(grep -v '^\s*#' .ci/apt-packages.txt | grep -v '^\s*$' || true)
packages+=("${extra[@]}")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "installing system packages: ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian may start an etcd service on install; tests choose their own ports,
# and nothing should hold the default ones.
$SUDO pkill -x etcd 2>/dev/null || true
