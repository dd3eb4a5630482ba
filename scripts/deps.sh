#!/usr/bin/env bash
# Installs the Debian packages dqo needs when any is missing: as root through
# apt-get, otherwise it prints the exact apt-get line to run and fails.
# Sourced or run by scripts/run.sh and scripts/test.sh.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libhwloc-dev libhwloc-plugins hwloc-nox libcmocka-dev
      ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd clinfo gnuplot-nox
      python3 python3-pip)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  line="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then
    echo "dqo: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "dqo: missing Debian packages; run as root:" >&2
    echo "  $line" >&2
    exit 1
  fi
fi
