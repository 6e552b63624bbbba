#!/usr/bin/env bash
# What the browser checks (inv validate --browser) need from Debian: Chromium and
# certutil (libnss3-tools, to trust the local CA in the browser's NSS database) and
# fonts for readable screenshots. Playwright for Python comes with the venv and is
# pointed at this Chromium; it never downloads a browser (docs/decisions/0014).
# Idempotent.
set -euo pipefail
PKGS=(chromium libnss3-tools fonts-liberation)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "==> browser packages already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: ${missing[*]} missing; install them as root: sudo apt-get install ${missing[*]}" >&2
  exit 3
fi
echo "==> installing ${missing[*]}"
apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "==> done"
