#!/bin/sh
# Install mdtviewer and everything it needs on Debian 12 (run as root).
#   sh packaging/install-debian.sh          app only: Qt's system libraries, Xvfb + xauth
#                                           (so `xvfb-run -a .venv/bin/mdtviewer` works
#                                           without a desktop) and .venv
#   sh packaging/install-debian.sh --test   also the test peers: Orthanc, DCMTK,
#                                           dicom3tools, and the test extras
# 7-Zip (p7zip-full) is an app package: `export --encrypt` writes the archive with 7z.
# fonts-wqy-microhei is the CJK font: Han, kana and all 11,172 Hangul syllables in 1.6 MB (Noto CJK
# is 56 MB), in Debian 12 and 13 (main) and Ubuntu 24.04 (universe); without one, Chinese, Japanese
# and Korean names show as boxes (tests/test_ui_pacs_open.py checks Qt draws Hangul with it).
# Idempotent: re-running only installs what is missing.  A re-run with everything
# present needs no network: apt is not asked when every package is installed, and
# pip is not run when .venv already holds this checkout's install of this
# pyproject.toml (a stamp in .venv records what was installed).
set -eu
cd "$(dirname "$0")/.."
MODE="${1:-app}"

# xvfb-run needs xauth, which Debian's xvfb only Recommends (and we install without
# recommends): both are named here, or the no-display advice would fail.
APP_PKGS="python3 python3-venv python3-pip ca-certificates \
  libgl1 libegl1 libxkbcommon0 libglib2.0-0 libfontconfig1 libfreetype6 libdbus-1-3 \
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 \
  libxcb-render0 libxcb-shape0 libxcb-util1 libxcb-xkb1 libxkbcommon-x11-0 libxcb-xinerama0 \
  libxcb-randr0 libxcb-xfixes0 libxcb-sync1 libxcb-shm0 libx11-xcb1 \
  fonts-dejavu-core fonts-wqy-microhei xvfb xauth tesseract-ocr p7zip-full"
TEST_PKGS="orthanc orthanc-dicomweb dcmtk dicom3tools openssl debootstrap poppler-utils"

PKGS="$APP_PKGS"
EXTRAS="."
if [ "$MODE" = "--test" ]; then
  PKGS="$APP_PKGS $TEST_PKGS"
  EXTRAS=".[test]"
fi

# One dpkg-query for all of them (one per package takes a second).
installed_pkgs=" $(dpkg-query -W -f='${Package}:${Status}\n' $PKGS 2>/dev/null | \
  sed -n 's/:install ok installed$//p' | sed 's/:.*//' | tr '\n' ' ')"
missing=""
for p in $PKGS; do
  case "$installed_pkgs" in *" $p "*) ;; *) missing="$missing $p" ;; esac
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
  # Once, for a new venv: Debian's pip is older than the packaging standards we use.
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
fi

# What pip would install: the build system, the project table (dependencies, extras,
# scripts) and package discovery.  Editing [tool.ruff] and the like needs no reinstall.
STAMP=.venv/.mdtviewer-install
want="$(.venv/bin/python -I -c '
import hashlib, json, sys, tomllib
with open("pyproject.toml", "rb") as f:
    d = tomllib.load(f)
keep = [d.get("build-system"), d.get("project"), d.get("tool", {}).get("setuptools")]
print(hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest())
' 2>/dev/null)" || want="$(sha256sum pyproject.toml | cut -d' ' -f1)"  # no tomllib before 3.11
have="$(cat "$STAMP" 2>/dev/null || true)"
installed=no
# -I: the check must not import the checkout from the current directory by accident.
if [ -x .venv/bin/mdtviewer ] && .venv/bin/python -I -c '
import pathlib, sys, mdtviewer
sys.exit(0 if pathlib.Path(mdtviewer.__file__).resolve().is_relative_to(pathlib.Path.cwd().resolve()) else 1)
' 2>/dev/null; then
  case "$have" in
    "$want $EXTRAS" | "$want .[test]") installed=yes ;;  # the test install includes the app
  esac
fi

if [ "$installed" = no ]; then
  # A venv that already has a new enough setuptools builds the editable install
  # itself; otherwise pip fetches the build requirements once, in isolation.
  NBI=""
  if .venv/bin/python -I -c '
import sys, setuptools
sys.exit(0 if int(setuptools.__version__.split(".")[0]) >= 77 else 1)
' 2>/dev/null; then
    NBI="--no-build-isolation"
  fi
  rm -f "$STAMP"
  .venv/bin/python -m pip install -q --disable-pip-version-check $NBI -e "$EXTRAS"
  echo "$want $EXTRAS" > "$STAMP"
  echo "mdtviewer installed in $(pwd)/.venv"
else
  echo "mdtviewer already installed in $(pwd)/.venv (pyproject.toml unchanged): nothing to do"
fi
