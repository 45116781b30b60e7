#!/bin/sh
# Build the one-folder desktop bundle with PyInstaller, then smoke-test it.
#   sh packaging/build-bundle.sh            build into dist/mdtviewer/ and test it
#   sh packaging/build-bundle.sh --test     test an existing dist/mdtviewer/ only
# Needs the venv with the bundle extra: .venv/bin/pip install -e '.[bundle]'.
# Why PyInstaller (not Briefcase): it freezes the venv we test against, as it is, on Linux,
# Windows and macOS alike, with hooks for PySide6 and pydicom; Briefcase would rebuild the
# dependencies from its own templates and needs a platform SDK toolchain per target.
# The smoke test runs the bundle with no Python on PATH and no venv: `open --demo --screenshot`,
# `check` on a corpus file, `sr protocols`.  Linux only here; .github/workflows/bundle.yml builds
# Windows and macOS (built, not tested here).
set -eu
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
case "$PY" in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac  # absolute: used from a temp folder
OUT="${BUNDLE_DIST:-dist}"
if [ "${1:-}" != "--test" ]; then
  "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$OUT" --workpath build/pyinstaller packaging/pyinstaller/mdtviewer.spec
fi
APP="$OUT/mdtviewer/mdtviewer"
[ -x "$APP" ] || { echo "no bundle at $APP" >&2; exit 1; }
APP="$(cd "$OUT/mdtviewer" && pwd)/mdtviewer"  # absolute: BUNDLE_DIST may be relative or absolute
TESTDATA="${MDTVIEWER_TESTDATA:-../shared/testdata}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# no Python, no venv, no repository on the path: what a machine without Python has
run() { (cd "$tmp" && env -i HOME="$tmp" PATH=/usr/bin:/bin QT_QPA_PLATFORM=offscreen \
  MDTVIEWER_HOME="$tmp/home" "$APP" "$@"); }
run open --demo --screenshot "$tmp/demo.png"
[ -s "$tmp/demo.png" ] || { echo "no screenshot" >&2; exit 1; }
# every decoder travels: `check` gives the same verdicts from the bundle as from the venv
ls "$TESTDATA"/us*.dcm >/dev/null
abs_testdata="$(cd "$TESTDATA" && pwd)"
run check "$abs_testdata" | grep -E '^(OK|FAIL|WARN)' | sed 's/  [0-9.]* s$//' | sort > "$tmp/bundle-check.txt" || true
(cd "$tmp" && env MDTVIEWER_HOME="$tmp/home2" "$PY" -m mdtviewer check "$abs_testdata") \
  | grep -E '^(OK|FAIL|WARN)' | sed 's/  [0-9.]* s$//' | sort > "$tmp/venv-check.txt" || true
[ -s "$tmp/venv-check.txt" ] || { echo "check printed nothing" >&2; exit 1; }
if ! cmp -s "$tmp/bundle-check.txt" "$tmp/venv-check.txt"; then
  echo "check from the bundle differs from the venv:" >&2
  diff "$tmp/venv-check.txt" "$tmp/bundle-check.txt" >&2 || true
  exit 1
fi
run sr protocols | grep -q "aaa-surveillance"
echo "bundle OK: $(du -sh "$OUT/mdtviewer" | cut -f1) in $OUT/mdtviewer"
