"""Find burned-in text in the pixels of an image that has neither ultrasound regions nor a template.

Two facts about ultrasound screens do the work:

* the image itself (the fan of a curved or phased probe, the rectangle of a
  linear one) is one large textured area, and the scanner's text (name, ID,
  date, hospital, settings) sits *outside* it on a dark background;
* in a cine the image changes from frame to frame and the text does not.

So :func:`detect` finds the image area (the largest region that changes
across the frames of a cine; on a single frame the largest densely-filled
region), takes its convex hull (fans and rectangles are convex), and blanks
everything outside it except large thin structures that cannot be text
(colour/grey bars, depth scales, ECG traces).  When it cannot tell the image
from its surroundings (no such area, or one that fills the whole frame) the
result is *unsafe* and the caller hides the image.

A second, optional pass (:func:`find_identifier_words`) runs Tesseract OCR
(Debian's ``tesseract-ocr``, as a subprocess with a timeout) on what is left
and returns the boxes of words that match the patient's own identifiers (a
name part burned into the fan, as some scanners let the sonographer type):
those boxes are blanked too.  Without the binary that pass is skipped and
the caller says so.

Pure numpy; no Qt, no pydicom.  Rectangles are inclusive pixel bounds
``(x0, y0, x1, y1)`` like the rest of :mod:`mdtviewer.imaging.masking`.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

Rect = tuple[int, int, int, int]

#: a pixel is "lit" above this grey level (0..255, the max over colour channels)
LIT = 24
#: speckle of the image counts as "there" above this level (the background is black)
DIM = 2
#: share of lit pixels around a point of the image area (text lines on black stay well below)
DENSE = 0.55
#: a pixel "changes" in a cine when its grey level moves more than this across the sampled frames
CHANGE = 24
#: the image area must cover at least / at most this share of the frame to be told apart from its text
MIN_CONTENT = 0.03
MAX_CONTENT = 0.80
#: more pieces than this outside the image area: not text on black (and labelling them would be slow)
MAX_RUNS = 200_000
#: seconds one OCR run may take
OCR_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Detection:
    """What :func:`detect` found on one image (all frames share it: the text is static)."""

    safe: bool
    reason: str
    #: True where the pixels are shown (HxW bool); None when not safe
    show: np.ndarray | None = None
    #: bounding box of the image area kept
    content: Rect | None = None
    #: bounding boxes of what was blanked outside the image area (text lines, labels)
    blanked: tuple[Rect, ...] = field(default_factory=tuple)
    #: "cine" (the image area is what changes) or "still" (the densest large area)
    method: str = ""


# -- small numpy morphology ---------------------------------------------------------------
def _box_sum(mask: np.ndarray, r: int) -> np.ndarray:
    """Sum of *mask* over the (2r+1)^2 square around each pixel (zero outside the image)."""
    m = mask.astype(np.int32)
    h, w = m.shape
    ii = np.zeros((h + 1, w + 1), dtype=np.int64)
    ii[1:, 1:] = m.cumsum(0).cumsum(1)
    y0 = np.clip(np.arange(h) - r, 0, h)
    y1 = np.clip(np.arange(h) + r + 1, 0, h)
    x0 = np.clip(np.arange(w) - r, 0, w)
    x1 = np.clip(np.arange(w) + r + 1, 0, w)
    return ii[y1][:, x1] - ii[y0][:, x1] - ii[y1][:, x0] + ii[y0][:, x0]


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    return _box_sum(mask, r) > 0 if r > 0 else mask.copy()


def erode(mask: np.ndarray, r: int) -> np.ndarray:
    if r <= 0:
        return mask.copy()
    return _box_sum(~mask, r) == 0


def close(mask: np.ndarray, r: int) -> np.ndarray:
    return erode(dilate(mask, r), r)


@dataclass
class Component:
    label: int
    x0: int
    y0: int
    x1: int
    y1: int
    area: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0 + 1

    @property
    def height(self) -> int:
        return self.y1 - self.y0 + 1

    @property
    def rect(self) -> Rect:
        return (self.x0, self.y0, self.x1, self.y1)


def label(mask: np.ndarray) -> tuple[np.ndarray, list[Component]]:
    """8-connected components of a bool mask: (labels HxW int32, 0 = background; components by label-1).

    Run-length based: the rows' runs are joined with a union-find, so the
    Python work grows with the number of runs, not of pixels.
    """
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    sy, sx = np.nonzero(d == 1)
    ey, ex = np.nonzero(d == -1)  # ex: exclusive end
    n = len(sy)
    labels = np.zeros((h, w), dtype=np.int32)
    if n == 0:
        return labels, []
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    # runs are in row-major order: index ranges per row
    row_start = np.searchsorted(sy, np.arange(h + 1))
    sxl = sx.tolist()
    exl = ex.tolist()
    for y in range(1, h):
        a0, a1 = int(row_start[y - 1]), int(row_start[y])
        b0, b1 = int(row_start[y]), int(row_start[y + 1])
        i, j = a0, b0
        while i < a1 and j < b1:
            # 8-connectivity: runs touch when they overlap or meet diagonally
            if sxl[i] <= exl[j] and sxl[j] <= exl[i]:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[rj] = ri
            if exl[i] < exl[j]:
                i += 1
            else:
                j += 1
    roots = [find(i) for i in range(n)]
    ids: dict[int, int] = {}
    comps: list[Component] = []
    syl = sy.tolist()
    for i in range(n):
        r = roots[i]
        k = ids.get(r)
        y, x0, x1 = syl[i], sxl[i], exl[i] - 1
        if k is None:
            k = len(comps) + 1
            ids[r] = k
            comps.append(Component(k, x0, y, x1, y, 0))
        c = comps[k - 1]
        c.x0 = min(c.x0, x0)
        c.x1 = max(c.x1, x1)
        c.y0 = min(c.y0, y)
        c.y1 = max(c.y1, y)
        c.area += x1 - x0 + 1
        labels[y, x0 : x1 + 1] = k
    return labels, comps


def convex_fill(mask: np.ndarray) -> np.ndarray:
    """The convex hull of a bool mask, filled (monotone chain over each row's extreme pixels)."""
    h, w = mask.shape
    rows = np.nonzero(mask.any(axis=1))[0]
    if rows.size == 0:
        return mask.copy()
    left = mask[rows].argmax(axis=1)
    right = w - 1 - mask[rows, ::-1].argmax(axis=1)
    pts = sorted(set([(int(x), int(y)) for x, y in zip(left, rows)] + [(int(x), int(y)) for x, y in zip(right, rows)]))

    def cross(o, a, b) -> int:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[int, int]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[int, int]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    return fill_polygon(h, w, hull) | mask


def fill_polygon(h: int, w: int, poly: Sequence[tuple[float, float]]) -> np.ndarray:
    """Bool HxW mask of the pixels whose centres lie inside *poly* (even-odd rule), edges included."""
    out = np.zeros((h, w), dtype=bool)
    pts = [(float(x), float(y)) for x, y in poly]
    if len(pts) < 3:
        for x, y in pts:
            xi, yi = int(round(x)), int(round(y))
            if 0 <= yi < h and 0 <= xi < w:
                out[yi, xi] = True
        return out
    ys = [p[1] for p in pts]
    y_lo, y_hi = max(0, int(np.floor(min(ys)))), min(h - 1, int(np.ceil(max(ys))))
    m = len(pts)
    for y in range(y_lo, y_hi + 1):
        yc = float(y)
        xs: list[float] = []
        for k in range(m):
            (xa, ya), (xb, yb) = pts[k], pts[(k + 1) % m]
            if (ya <= yc < yb) or (yb <= yc < ya):
                xs.append(xa + (yc - ya) * (xb - xa) / (yb - ya))
        xs.sort()
        for a, b in zip(xs[0::2], xs[1::2]):
            x0, x1 = max(0, int(np.ceil(a - 0.5))), min(w - 1, int(np.floor(b + 0.5)))
            if x1 >= x0:
                out[y, x0 : x1 + 1] = True
    # the outline itself (a drawn rectangle's bottom/right edges are inside for the user)
    for k in range(m):
        (xa, ya), (xb, yb) = pts[k], pts[(k + 1) % m]
        n = int(max(abs(xb - xa), abs(yb - ya))) + 1
        for t in np.linspace(0.0, 1.0, n + 1):
            xi, yi = int(round(xa + t * (xb - xa))), int(round(ya + t * (yb - ya)))
            if 0 <= yi < h and 0 <= xi < w:
                out[yi, xi] = True
    return out


# -- detection ---------------------------------------------------------------------------
def grey_of(frame: np.ndarray) -> np.ndarray:
    """uint8 HxW brightness (the brightest channel: coloured text counts as bright)."""
    a = np.asarray(frame)
    if a.ndim == 3:
        a = a.max(axis=2)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    return a


def _large_parts(mask: np.ndarray, share: float = 0.3) -> np.ndarray | None:
    """The largest component of *mask*, with every other component at least *share* of its size
    (a dual-screen image has two fans), each filled to its convex hull."""
    labels, comps = label(mask)
    if not comps:
        return None
    big = max(c.area for c in comps)
    out = np.zeros(mask.shape, dtype=bool)
    for c in comps:
        if c.area >= share * big:
            out |= convex_fill(labels == c.label)
    return out


def _content_area(greys: list[np.ndarray], frames: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray | None, str]:
    h, w = greys[0].shape
    r = max(2, round(min(h, w) / 120))  # ~4 px at 480 rows
    if len(greys) >= 3:
        stack = np.stack(greys)
        changing = (stack.max(axis=0).astype(np.int16) - stack.min(axis=0)) > CHANGE
        if changing.mean() > MIN_CONTENT / 3:
            area = _large_parts(close(changing, 2 * r))
            if area is not None and area.mean() >= MIN_CONTENT:
                return area, "cine"
    # a still: the image is where nearly every pixel is textured mid-grey speckle (or Doppler colour);
    # text is sharp bright strokes on black, banners behind text are flat: both stay sparse
    like = tissue_like(frames[0] if frames is not None else greys[0])
    k = 4 * r
    dense = _box_sum(like, k) >= DENSE * (2 * k + 1) ** 2
    return _large_parts(dense), "still"


def tissue_like(frame: np.ndarray) -> np.ndarray:
    """Pixels that look like image (speckle of mid grey that varies locally, or Doppler colour), not text."""
    a = np.asarray(frame)
    g = grey_of(a).astype(np.float32)
    n = 25.0
    s1 = _box_sum_f(g, 2)
    s2 = _box_sum_f(g * g, 2)
    var = s2 / n - (s1 / n) ** 2
    speckle = (g > DIM) & (g < 170) & (var > 2.0)
    if a.ndim == 3:
        spread = a.max(axis=2).astype(np.int16) - a.min(axis=2)
        speckle |= (spread > 60) & (g > 60)
    return speckle


def _box_sum_f(a: np.ndarray, r: int) -> np.ndarray:
    h, w = a.shape
    ii = np.zeros((h + 1, w + 1), dtype=np.float64)
    ii[1:, 1:] = a.astype(np.float64).cumsum(0).cumsum(1)
    y0 = np.clip(np.arange(h) - r, 0, h)
    y1 = np.clip(np.arange(h) + r + 1, 0, h)
    x0 = np.clip(np.arange(w) - r, 0, w)
    x1 = np.clip(np.arange(w) + r + 1, 0, w)
    return ii[y1][:, x1] - ii[y0][:, x1] - ii[y1][:, x0] + ii[y0][:, x0]


def detect(frames: Sequence[np.ndarray]) -> Detection:
    """Where the burned-in text of an image is, from a few of its display frames (uint8, HxW or HxWx3).

    Pass up to ~8 frames spread over a cine; one for a still image.
    """
    if not frames:
        return Detection(False, "no frames to check")
    greys = [grey_of(f) for f in frames]
    h, w = greys[0].shape
    if any(g.shape != (h, w) for g in greys):
        return Detection(False, "frames differ in size")
    if h < 8 or w < 8:
        return Detection(False, f"{w}x{h} image is too small to tell apart from text")
    content, method = _content_area(greys, frames)
    if content is None:
        return Detection(False, "no image area found: cannot tell the image from burned-in text", method=method)
    share = float(content.mean())
    if share < MIN_CONTENT:
        return Detection(False, "the image area is too small to tell apart from burned-in text", method=method)
    if share > MAX_CONTENT:
        return Detection(False, "the image fills the frame: burned-in text cannot be told apart from it", method=method)
    margin = max(1, round(min(h, w) / 160))
    keep = dilate(content, margin)
    ys, xs = np.nonzero(content)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    # outside the image area: keep only large thin structures that cannot be text
    lit_any = np.zeros((h, w), dtype=bool)
    for g in greys:
        lit_any |= g > LIT
    outside = lit_any & ~keep
    runs = int(np.count_nonzero(np.diff(outside.astype(np.int8), axis=1) == 1))
    if runs > MAX_RUNS:
        # speckle-like texture everywhere outside the image area: the detector's view of it is not to be trusted
        return Detection(False, "too much texture outside the image area to tell text from image", method=method)
    labels, comps = label(outside)
    show = keep.copy()
    blanked: list[Rect] = []
    for c in comps:
        density = c.area / float(c.width * c.height)
        tall_bar = c.height >= 0.25 * h and c.width <= 0.08 * w
        trace = c.width >= 0.25 * w and c.height <= 0.15 * h and density < 0.12
        if tall_bar or trace:
            part = labels[c.y0 : c.y1 + 1, c.x0 : c.x1 + 1] == c.label
            if _plain(part, axis=1 if tall_bar else 0, allowed=0.03 if tall_bar else 0.06):
                show[c.y0 : c.y1 + 1, c.x0 : c.x1 + 1] |= part
                continue
        blanked.append(c.rect)
    return Detection(
        True,
        f"burned-in text detected and masked ({len(blanked)} area(s) outside the image)",
        show=show,
        content=bbox,
        blanked=_merge_rects(blanked),
        method=method,
    )


def _plain(part: np.ndarray, axis: int, allowed: float) -> bool:
    """A bar or trace with nothing attached: its thickness across *axis* stays even along its length
    (a label glued to a colour bar, or a line of text touching a scale, makes it uneven: then it is blanked)."""
    counts = part.sum(axis=axis)
    counts = counts[counts > 0]
    if counts.size == 0:
        return False
    med = float(np.median(counts))
    odd = (counts > 1.5 * med + 2).sum()
    return odd <= max(1, allowed * counts.size)


def _merge_rects(rects: Iterable[Rect], gap: int = 6) -> tuple[Rect, ...]:
    """Merge boxes that lie within *gap* px of each other (characters into lines) for a short summary."""
    out: list[list[int]] = []
    for r in sorted(rects, key=lambda r: (r[1], r[0])):
        for o in out:
            if r[0] <= o[2] + gap and o[0] <= r[2] + gap and r[1] <= o[3] + gap and o[1] <= r[3] + gap:
                o[0], o[1], o[2], o[3] = min(o[0], r[0]), min(o[1], r[1]), max(o[2], r[2]), max(o[3], r[3])
                break
        else:
            out.append(list(r))
    return tuple((a, b, c, d) for a, b, c, d in out)


# -- OCR: the patient's own identifiers, wherever they are left ----------------------------
def tesseract_path() -> str | None:
    return shutil.which("tesseract")


@dataclass(frozen=True)
class Word:
    text: str
    rect: Rect
    conf: float


def ocr_words(frame: np.ndarray, scale: int = 2, timeout: float = OCR_TIMEOUT_S) -> list[Word] | None:
    """Words Tesseract reads in *frame* (uint8), boxes in the frame's pixels; None without tesseract.

    Raises ``subprocess.TimeoutExpired`` / ``OSError`` for the caller to treat as "could not check".
    """
    exe = tesseract_path()
    if exe is None:
        return None
    from PIL import Image  # a dependency already (exports)

    img = Image.fromarray(np.ascontiguousarray(frame))
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    proc = subprocess.run(
        [exe, "stdin", "stdout", "--psm", "11", "tsv"],
        input=buf.getvalue(),
        capture_output=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise OSError(f"tesseract exited with {proc.returncode}")
    words: list[Word] = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) < 12 or not parts[11].strip():
            continue
        try:
            left, top, width, height = (int(v) for v in parts[6:10])
            conf = float(parts[10])
        except ValueError:
            continue
        x0, y0 = left // scale, top // scale
        x1, y1 = (left + width - 1) // scale, (top + height - 1) // scale
        words.append(Word(parts[11].strip(), (x0, y0, x1, y1), conf))
    return words


_TOKEN = re.compile(r"[0-9a-z]+")


def _norm(text: str) -> str:
    return "".join(_TOKEN.findall(text.casefold()))


def _close_enough(a: str, b: str) -> bool:
    """Equal, or one edit apart for tokens of 5+ characters (OCR misreads a letter)."""
    if a == b:
        return True
    if min(len(a), len(b)) < 5 or abs(len(a) - len(b)) > 1:
        return False
    # one substitution, insertion or deletion
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) <= 1
    s, t = (a, b) if len(a) < len(b) else (b, a)
    return any(s == t[:i] + t[i + 1 :] for i in range(len(t)))


def find_identifier_words(words: Iterable[Word], needles: Iterable[str]) -> list[Word]:
    """The OCR words that spell one of *needles* (identifier tokens), alone or with their neighbours."""
    want = {n for n in (_norm(x) for x in needles) if len(n) >= 3}
    if not want:
        return []
    ws = [w for w in words if _norm(w.text)]
    hits: list[Word] = []
    for i, w in enumerate(ws):
        t = _norm(w.text)
        if any(_close_enough(t, n) or (len(n) >= 4 and n in t) for n in want):
            hits.append(w)
            continue
        # an ID or date read as several words ("11-05-25 142825"): join up to 3 neighbours on a line
        joined, group = t, [w]
        for v in ws[i + 1 : i + 3]:
            if abs(v.rect[1] - w.rect[1]) > max(4, (w.rect[3] - w.rect[1])):
                break
            joined += _norm(v.text)
            group.append(v)
            if any(_close_enough(joined, n) for n in want if len(n) >= 6):
                hits.extend(group)
                break
    return hits
