#!/usr/bin/env bash
# Install the real services vigil's tests talk to (Debian 12). Idempotent; needs root (or sudo).
# Starting and stopping them is the tests' job: this script only installs.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(snmpd snmp)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-services: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-services: all of ${PACKAGES[*]} already installed"
fi
# Debian's snmpd package may start a system agent on :161; tests use their own on high ports.
