"""Text from a PACS, made safe to print on a terminal or show in a table.

A peer controls every string it answers with.  Printed raw, an ESC starts a
terminal control sequence (colours, cursor moves, window titles), a CR or LF
starts a fake line ("0 studies" printed over the real answer), and bidi
overrides reorder what the eye reads.  :func:`printable` writes each such
character as a visible escape (``\\x1b``, ``\\r``, ``\\u202e``) and keeps
everything else, accents and CJK included.
"""

from __future__ import annotations

import re

# C0 controls (TAB included: it moves columns), DEL, C1 controls, and the Unicode
# formatting characters that change how a line reads: bidi embeddings, overrides
# and isolates, zero-width marks, line and paragraph separators, BOM.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(m: re.Match) -> str:
    ch = m.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text) -> str:
    """*text* with every control or formatting character written as a visible escape."""
    if text is None:
        return ""
    text = str(text)
    return _UNSAFE.sub(_escape, text)
