#!/usr/bin/env bash
# Installs the Debian packages the tests drive for real (CI must never skip
# them): Puppet, Facter and Ohai for the configuration management agents and
# fact sources. Quick when everything is already there: apt is only run for
# what is missing.
set -euo pipefail

# command:package pairs.
want=(puppet:puppet-agent facter:facter ohai:ohai)

missing=()
for pair in "${want[@]}"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "test packages present: puppet $(puppet --version 2>/dev/null), facter $(facter --version 2>/dev/null)"
  exit 0
fi
echo "installing test packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"
