"""A one-page PDF of plain text lines, written by hand (no PDF library).

Used where a small, valid PDF is all that is needed: the placeholder that
replaces an encapsulated PDF in a de-identified export, and the demo study's
report.  Text is Helvetica (latin-1); PDF string delimiters are escaped.
"""

from __future__ import annotations


def one_page_pdf(lines: list[str]) -> bytes:
    esc = [ln.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for ln in lines]
    text = "BT /F1 12 Tf 56 780 Td 16 TL " + " ".join(f"({s}) '" for s in esc) + " ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text.encode("latin-1") + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


# -- several pages of headings, text, fixed-width tables and bar charts ---------------------------

_TRANSLIT = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Đ": "D", "đ": "d", "ß": "ss", "Æ": "AE",
                           "æ": "ae", "Œ": "OE", "œ": "oe", "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"',
                           "”": '"', "…": "..."})
_COLOURS = ((0.20, 0.45, 0.70), (0.95, 0.65, 0.15), (0.80, 0.25, 0.25), (0.35, 0.65, 0.35))


class Chart:
    """A bar chart: ``[(label, value, ...), ...]``; several values per label are grouped bars."""

    height = 120

    def __init__(self, rows: list[tuple], legend: tuple[str, ...] = ()):
        self.rows = [(str(r[0]), [float(v) for v in r[1:]]) for r in rows]
        self.legend = legend


def _latin(s: str) -> str:
    """Text Helvetica (WinAnsi/latin-1) can show: accents kept where latin-1 has them, others dropped."""
    import unicodedata

    s = s.translate(_TRANSLIT)
    out = []
    for ch in s:
        try:
            ch.encode("latin-1")
            out.append(ch)
        except UnicodeEncodeError:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            out.append(base if base and all(ord(c) < 256 for c in base) else "?")
    return "".join(out)


def _esc(s: str) -> str:
    return _latin(s).replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _chart_ops(chart: Chart, top: float) -> str:
    left, width, h = 70.0, 460.0, chart.height - 30
    base = top - h
    peak = max([v for _lbl, vals in chart.rows for v in vals] + [1.0])
    n = max(1, len(chart.rows))
    slot = min(width / n, 80.0)
    per = max(1, max((len(vals) for _lbl, vals in chart.rows), default=1))
    bar = min(28.0, slot * 0.8 / per)
    ops = ["0.5 w 0 0 0 RG", f"{left} {base} m {left + width} {base} l S", f"{left} {base} m {left} {top} l S",
           f"BT /F1 7 Tf {left - 30} {base + 0.85 * h - 3:.1f} Td ({peak:g}) Tj ET"]
    for i, (label, vals) in enumerate(chart.rows):
        x0 = left + i * slot + (slot - bar * len(vals)) / 2
        for k, v in enumerate(vals):
            r, g, b = _COLOURS[k % len(_COLOURS)]
            bh = 0.85 * h * v / peak  # room above the tallest bar for its value
            ops.append(f"{r} {g} {b} rg {x0 + k * bar:.1f} {base:.1f} {bar:.1f} {bh:.1f} re f")
            if v:
                ops.append(f"0 0 0 rg BT /F1 7 Tf {x0 + k * bar + 1:.1f} {base + bh + 2:.1f} Td ({v:g}) Tj ET")
        text = _esc(label[:16])
        ops.append(f"0 0 0 rg BT /F1 7 Tf {left + i * slot + slot / 2 - 1.6 * len(text):.1f} {base - 10:.1f} Td "
                   f"({text}) Tj ET")
    for k, name in enumerate(chart.legend):
        r, g, b = _COLOURS[k % len(_COLOURS)]
        x = left + width - 90
        y = top - 10 - 11 * k
        ops.append(f"{r} {g} {b} rg {x} {y} 8 8 re f 0 0 0 rg BT /F1 8 Tf {x + 12} {y + 1} Td ({_esc(name)}) Tj ET")
    return "\n".join(ops)


def text_pdf(pages: list[list], title: str = "") -> bytes:
    """A PDF of A4 pages; each page is a list of lines: ``str`` (text), ``("h1"|"h2"|"mono", str)``
    or a :class:`Chart`.  A page that overflows continues on the next one; pages are numbered."""
    style = {"text": ("F1", 10, 14), "h1": ("F2", 15, 22), "h2": ("F2", 11, 17), "mono": ("F3", 8, 11)}
    streams: list[str] = []
    wrap = {"text": 95, "h1": 60, "h2": 80, "mono": 100}
    for raw in pages:
        lines: list = []
        for line in raw:  # long lines continue on the next line, indented
            if isinstance(line, Chart):
                lines.append(line)
                continue
            kind, text = line if isinstance(line, tuple) else ("text", line)
            first = True
            while len(text) > wrap[kind]:
                cut = text.rfind(" ", 0, wrap[kind])
                cut = cut if cut > wrap[kind] // 2 else wrap[kind]
                lines.append((kind, text[:cut]))
                text = "    " + text[cut:].lstrip()
                first = False
            lines.append((kind, text) if text.strip() or first else (kind, ""))
        ops: list[str] = []
        y = 800.0
        for line in lines:
            kind = "text" if isinstance(line, (str, Chart)) else line[0]
            need = line.height + 6 if isinstance(line, Chart) else style[kind][2]
            if y - need < 50:
                streams.append("\n".join(ops))
                ops, y = [], 800.0
            if isinstance(line, Chart):
                ops.append(_chart_ops(line, y - 6))
                y -= need
                continue
            kind, text = line if isinstance(line, tuple) else ("text", line)
            font, size, lead = style[kind]
            y -= lead
            ops.append(f"0 0 0 rg BT /{font} {size} Tf 50 {y:.1f} Td ({_esc(text)}) Tj ET")
        streams.append("\n".join(ops))
    total = len(streams)
    streams = [
        s + f"\n0 0 0 rg BT /F1 8 Tf 50 30 Td ({_esc(title)}  page {i} of {total}) Tj ET"
        for i, s in enumerate(streams, 1)
    ]
    fonts = "<< /F1 3 0 R /F2 4 0 R /F3 5 0 R >>"
    objs: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>",
    ]
    kids = []
    for s in streams:
        data = s.encode("latin-1")
        objs.append(b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream")
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {len(objs)} 0 R "
                    f"/Resources << /Font {fonts} >> >>".encode())
        kids.append(len(objs))
    objs[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>".encode()
    info = f"<< /Title ({_esc(title)}) /Producer (mdtviewer) >>".encode("latin-1")
    objs.append(info)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objs) + 1,
        len(objs),
        xref,
    )
    return bytes(out)
