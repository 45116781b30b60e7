#!/bin/sh
# Install the Linux bundle for the current user: the folder under ~/.local/opt/mdtviewer, the
# command in ~/.local/bin, the desktop entry and its icon (freedesktop locations).
#   sh packaging/install-bundle-linux.sh [dist/mdtviewer]
set -eu
cd "$(dirname "$0")/.."
SRC="${1:-dist/mdtviewer}"
[ -x "$SRC/mdtviewer" ] || { echo "no bundle at $SRC (build it: sh packaging/build-bundle.sh)" >&2; exit 1; }
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
DEST="$HOME/.local/opt/mdtviewer"
rm -rf "$DEST.new"
mkdir -p "$(dirname "$DEST")" "$HOME/.local/bin" "$DATA/applications" "$DATA/icons/hicolor/256x256/apps"
cp -a "$SRC" "$DEST.new"
rm -rf "$DEST" && mv "$DEST.new" "$DEST"
ln -sf "$DEST/mdtviewer" "$HOME/.local/bin/mdtviewer"
cp packaging/icons/mdtviewer.png "$DATA/icons/hicolor/256x256/apps/mdtviewer.png"
sed "s|^Exec=.*|Exec=$DEST/mdtviewer %F|" packaging/mdtviewer.desktop > "$DATA/applications/mdtviewer.desktop"
echo "installed: $DEST, $HOME/.local/bin/mdtviewer, $DATA/applications/mdtviewer.desktop"
