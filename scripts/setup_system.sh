#!/usr/bin/env bash
# Debian packages the project needs besides Python and Node: Chromium and its driver (browser tests of
# the platform and of browser-side sealing), TrueType CJK fonts (embedded in PDF letters), poppler
# (pdftotext/pdftoppm in the letter tests) and PostgreSQL (the platform's tests also run on it).
# Installs only what is missing; `make` runs it once (stamp in .venv).
set -euo pipefail
packages=(chromium chromium-driver fonts-wqy-microhei fonts-arphic-uming poppler-utils postgresql)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
