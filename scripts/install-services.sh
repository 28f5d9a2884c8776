#!/usr/bin/env bash
# Install the real services vigil's tests talk to (Debian 12). Idempotent; needs root (or sudo).
# Starting and stopping them is the tests' job: this script only installs.
#   snmpd, snmp            Net-SNMP agent and tools (snmpbulkwalk, snmptrap) — collectors' tests
#   postgresql             PostgreSQL 15 — the database tests run on SQLite and PostgreSQL
#   prometheus             Prometheus 2.42 — scrapes vigil's /metrics in the end-to-end test
#   chromium               headless browser for the hotline agent page (driven by Playwright)
#   fonts-wqy-microhei     CJK glyphs, so the page's Chinese renders in screenshots
#   prometheus-snmp-exporter  the peer that benchmarks/collector.py measures vigil against
#   prometheus-alertmanager   Alertmanager 0.25 — the alertmanager channel's tests post to it
#   kannel, kannel-extras  Kannel SMS gateway (bearerbox, smsbox) and its fake SMSC — the SMS sink's tests
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(snmpd snmp postgresql prometheus chromium fonts-wqy-microhei prometheus-snmp-exporter
          prometheus-alertmanager kannel kannel-extras)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-services: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-services: all of ${PACKAGES[*]} already installed"
fi
