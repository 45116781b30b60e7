#!/bin/sh
# Install mdtviewer and everything it needs on Debian 12 (run as root).
#   sh packaging/install-debian.sh          app only: Qt's system libraries + .venv
#   sh packaging/install-debian.sh --test   also the test peers: Orthanc, DCMTK,
#                                           dicom3tools, 7-Zip, Xvfb, and test extras
# Idempotent: re-running only installs what is missing.
set -eu
cd "$(dirname "$0")/.."
MODE="${1:-app}"

APP_PKGS="python3 python3-venv python3-pip ca-certificates \
  libgl1 libegl1 libxkbcommon0 libglib2.0-0 libfontconfig1 libfreetype6 libdbus-1-3 \
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 \
  libxcb-render0 libxcb-shape0 libxcb-util1 libxcb-xkb1 libxkbcommon-x11-0 libxcb-xinerama0 \
  libxcb-randr0 libxcb-xfixes0 libxcb-sync1 libxcb-shm0 libx11-xcb1 \
  fonts-dejavu-core fonts-wqy-microhei"
TEST_PKGS="orthanc dcmtk dicom3tools p7zip-full xvfb openssl debootstrap"

PKGS="$APP_PKGS"
EXTRAS="."
if [ "$MODE" = "--test" ]; then
  PKGS="$APP_PKGS $TEST_PKGS"
  EXTRAS=".[test]"
fi

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian's orthanc package tries to start its own service; without systemd that
  # is refused, which is harmless: the tests start their own Orthanc.
  apt-get install -y -qq --no-install-recommends $missing >/dev/null || \
    apt-get install -y --no-install-recommends $missing
fi
# Never let a packaged Orthanc service hold ports or files the tests use.
if [ "$MODE" = "--test" ] && command -v service >/dev/null 2>&1; then
  service orthanc stop >/dev/null 2>&1 || true
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e "$EXTRAS"
echo "mdtviewer installed in $(pwd)/.venv"
