"""A seeded mutation fuzzer over the test corpus: does any damaged file crash the viewer?

    .venv/bin/python tools/fuzz.py --cases 2000 --seed 1 [--open 0.05] [--jobs 2] [--out fuzz-failures]

Each case takes a corpus file (../shared/testdata, or --corpus) and applies one or two
mutations, chosen and parameterised by the seed:

    truncate      cut the file at a random offset (often inside an element or a fragment)
    flip          change 1-16 random bytes
    length        set an element's length field to 0, odd, huge, or off by a little
    vr            replace an element's VR by garbage or another VR
    image         a bogus Rows / Columns / Bits Allocated / Bits Stored / Number of Frames /
                  Samples per Pixel / Photometric Interpretation / Planar Configuration value
    codestream    damage the first frame's codestream: frame header size / components /
                  precision, bytes inside it, or a fragment length
    offsets       damage the Basic Offset Table
    sr            a hostile SR tree: deep nesting, by-reference loops, bogus value types,
                  empty or missing code sequences, huge numbers, control characters
    charset       a broken or exotic Specific Character Set with undecodable name/text bytes

and runs the result through ``mdtviewer check`` and ``mdtviewer sr show`` (each in a child
process forked from a parent that has already imported the package: start-up costs
milliseconds, and a crash, hang or blow-up stays in the child; check's worker pool runs in
that child instead of a forkserver per case) and, for a fraction of cases (--open),
``mdtviewer open --screenshot`` in a fresh process.  Every child runs under a 3 GB
address-space cap and a timeout.  Each run is classified:

    ok            exit status 0
    clean         exit status 1 with a one-line reason, no traceback
    traceback     a Python traceback, "internal error", or raw Python/library text given as
                  the reason (a fault of ours, even if caught)
    signal        killed by a signal (segfault, abort ...)
    hang          still running at the timeout
    memory        MemoryError / out of memory under the cap

A case is as bad as its worst run.  Prints a table of counts; every non-clean case is written
to --out (the mutated file, and a JSON record of its seed, mutations, commands and output),
so it can be replayed and become a regression test.  Exit status 1 when any case is not
ok/clean.  Same --seed, same corpus: the same cases.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "testdata"
MEMORY_CAP = 3_000_000_000
CLASSES = ("ok", "clean", "traceback", "signal", "hang", "memory")
BAD = ("traceback", "signal", "hang", "memory")
MUTATIONS = ("truncate", "flip", "length", "vr", "image", "codestream", "offsets", "sr", "charset")

_VRS = [b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"OB", b"OD",
        b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM", b"UC", b"UI",
        b"UL", b"UN", b"UR", b"US", b"UT", b"UV"]
_IMAGE_TAGS = {  # (group, element) -> values to try
    (0x0028, 0x0010): [0, 1, 2, 3, 7, 4095, 32768, 65535],           # Rows
    (0x0028, 0x0011): [0, 1, 3, 7, 4095, 32768, 65535],              # Columns
    (0x0028, 0x0100): [0, 1, 7, 12, 24, 32, 64, 65535],              # Bits Allocated
    (0x0028, 0x0101): [0, 1, 7, 9, 15, 17, 33, 65535],               # Bits Stored
    (0x0028, 0x0002): [0, 2, 4, 255, 65535],                         # Samples per Pixel
    (0x0028, 0x0006): [1, 2, 255],                                   # Planar Configuration
    (0x0028, 0x0103): [1, 2, 65535],                                 # Pixel Representation
}
_FRAMES = [b"0", b"-1", b"2", b"1000000", b"2147483647", b"1e9", b"abc", b"1.5", b"99999999999"]
_PHOTOMETRICS = [b"MONOCHROME1 ", b"RGB ", b"YBR_FULL", b"PALETTE COLOR ", b"YBR_PARTIAL_420 ", b"HSV ",
                 b"CMYK", b"XXXX", b"", b"YBR_RCT "]
_CHARSETS = ["ISO 2022 IR 87", "ISO 2022 IR 149", "ISO_IR 192", "GB18030", "ISO_IR 100\\ISO 2022 IR 87",
             "ISO 2022 IR 13\\ISO 2022 IR 87", "NOT A CHARSET", "ISO_IR 6", "ISO 2022 IR 58", "\\\\"]


# ------------------------------------------------------------------ mutations
def _element_headers(data: bytes) -> list[tuple[int, bytes, int]]:
    """(offset, VR, length-field offset) of plausible explicit-VR element headers, nested ones too."""
    out = []
    valid = set(_VRS)
    long_vrs = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
    for i in range(132 if data[128:132] == b"DICM" else 0, len(data) - 12, 2):
        vr = data[i + 4:i + 6]
        if vr in valid and data[i + 1] < 0x80 and data[i] | data[i + 1]:
            if vr in long_vrs:
                if data[i + 6:i + 8] == b"\0\0":
                    out.append((i, vr, i + 8))
            else:
                out.append((i, vr, i + 6))
        if len(out) > 4000:
            break
    return out


def _find_value(data: bytes, group: int, elem: int) -> tuple[int, int] | None:
    """(value offset, length) of the first (group,elem) element, explicit or implicit VR LE."""
    tag = struct.pack("<HH", group, elem)
    at = data.find(tag, 128)
    while at >= 0:
        vr = data[at + 4:at + 6]
        if vr.isalpha() and vr.isupper():
            if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR"):
                return at + 12, struct.unpack_from("<L", data, at + 8)[0]
            return at + 8, struct.unpack_from("<H", data, at + 6)[0]
        length = struct.unpack_from("<L", data, at + 4)[0]
        if length < 1 << 20:
            return at + 8, length
        at = data.find(tag, at + 1)
    return None


def _fragments(data: bytes) -> list[tuple[int, int]]:
    """(item header offset, length) of the items of encapsulated Pixel Data, if any."""
    at = data.rfind(b"\xe0\x7f\x10\x00")
    if at < 0 or data[at + 4:at + 6] not in (b"OB", b"OW") or data[at + 8:at + 12] != b"\xff\xff\xff\xff":
        return []
    pos, out = at + 12, []
    while pos + 8 <= len(data) and data[pos:pos + 4] == b"\xfe\xff\x00\xe0" and len(out) < 10_000:
        (n,) = struct.unpack_from("<L", data, pos + 4)
        out.append((pos, n))
        pos += 8 + n
    return out


def mutate(data: bytes, kind: str, rnd: random.Random, seed_path: Path) -> tuple[bytes, str]:
    """One mutation of *kind*; returns the new bytes and what was done (for the record)."""
    b = bytearray(data)
    n = len(b)
    if n < 16:
        return data, f"{kind}: file too short to mutate ({n} bytes)"
    if kind == "truncate":
        cut = rnd.choice([rnd.randrange(1, n), rnd.randrange(max(1, n - 4096), n),
                          rnd.randrange(min(128, n - 1), min(n, 4096))])
        return bytes(b[:cut]), f"truncate at {cut} of {n}"
    if kind == "flip":
        k = rnd.randint(1, 16)
        spots = [rnd.randrange(132 if n > 200 else 0, n) for _ in range(k)]
        for s in spots:
            b[s] = rnd.randrange(256)
        return bytes(b), f"flip {k} byte(s) at {spots[:4]}..."
    if kind in ("length", "vr"):
        return _mutate_header(data, kind, rnd, seed_path)
    if kind == "image":
        return _mutate_image(data, rnd, seed_path)
    if kind in ("codestream", "offsets"):
        return _mutate_codestream(data, kind, rnd, seed_path)
    if kind == "sr":
        return _mutate_sr(data, rnd, seed_path)
    if kind == "charset":
        return _mutate_charset(data, rnd, seed_path)
    raise ValueError(kind)


def _mutate_header(data: bytes, kind: str, rnd: random.Random, seed_path: Path) -> tuple[bytes, str]:
    b = bytearray(data)
    n = len(b)
    heads = _element_headers(data)
    if not heads:
        return mutate(data, "flip", rnd, seed_path)
    at, vr, len_at = rnd.choice(heads)
    if kind == "vr":
        new = rnd.choice(_VRS + [b"\0\0", b"ZZ", b"  ", bytes([rnd.randrange(256), rnd.randrange(256)])])
        b[at + 4:at + 6] = new
        return bytes(b), f"VR {vr.decode(errors='replace')} -> {new!r} at {at}"
    short = len_at == at + 6
    choices = [0, 1, 3, 0xFF, 0x7FFF, 0xFFFE, 0xFFFF] if short else \
        [0, 1, 3, 0xFFFF, 0x7FFFFFF0, 0xFFFFFFFF, 0xFFFFFFFE, n, n * 4]
    (old,) = struct.unpack_from("<H" if short else "<L", b, len_at)
    new = rnd.choice(choices + [old + rnd.randint(-8, 8) & (0xFFFF if short else 0xFFFFFFFF)])
    struct.pack_into("<H" if short else "<L", b, len_at, new)
    return bytes(b), f"length of {vr.decode(errors='replace')} at {at}: {old} -> {new}"
    raise ValueError(kind)


def _mutate_image(data: bytes, rnd: random.Random, seed_path: Path) -> tuple[bytes, str]:
    b = bytearray(data)
    pick = rnd.randrange(len(_IMAGE_TAGS) + 2)
    if pick < len(_IMAGE_TAGS):
        (g, e), values = list(_IMAGE_TAGS.items())[pick]
        found = _find_value(data, g, e)
        if found is None or found[1] != 2:
            return mutate(data, "flip", rnd, seed_path)
        v = rnd.choice(values)
        struct.pack_into("<H", b, found[0], v)
        return bytes(b), f"({g:04X},{e:04X}) = {v}"
    if pick == len(_IMAGE_TAGS):
        found = _find_value(data, 0x0028, 0x0008)
        value = rnd.choice(_FRAMES)
        if found is None:
            return mutate(data, "flip", rnd, seed_path)
        v = value[:found[1]].ljust(found[1], b" ")
        b[found[0]:found[0] + found[1]] = v
        return bytes(b), f"Number of Frames = {v!r}"
    found = _find_value(data, 0x0028, 0x0004)
    if found is None:
        return mutate(data, "flip", rnd, seed_path)
    v = rnd.choice(_PHOTOMETRICS)[:found[1]].ljust(found[1], b" ")
    b[found[0]:found[0] + found[1]] = v
    return bytes(b), f"Photometric Interpretation = {v!r}"


def _mutate_codestream(data: bytes, kind: str, rnd: random.Random, seed_path: Path) -> tuple[bytes, str]:
    b = bytearray(data)
    n = len(b)
    frags = _fragments(data)
    if len(frags) < 2:
        return mutate(data, rnd.choice(["image", "truncate", "length"]), rnd, seed_path)
    if kind == "offsets":
        bot_at, bot_len = frags[0]
        if bot_len >= 4 and rnd.random() < 0.7:
            k = rnd.randrange(bot_len // 4)
            v = rnd.choice([0, 1, 0xFFFFFFFF, rnd.randrange(1 << 32), n])
            struct.pack_into("<L", b, bot_at + 8 + 4 * k, v)
            return bytes(b), f"offset table entry {k} = {v}"
        v = rnd.choice([4, 8, 0xFFFFFFF0, bot_len + 4, 3])
        struct.pack_into("<L", b, bot_at + 4, v)
        return bytes(b), f"offset table length {bot_len} -> {v}"
    f_at, f_len = frags[1]
    start = f_at + 8
    what = rnd.choice(["size", "components", "precision", "bytes", "fraglen", "marker"])
    head = bytes(b[start:start + min(f_len, 4096)])
    sof = -1
    for m in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc3", b"\xff\xf7", b"\xff\x51"):
        sof = head.find(m, 2)
        if sof >= 0:
            break
    if what in ("size", "components", "precision") and sof >= 0:
        s = start + sof
        if head[sof + 1] == 0x51:  # J2K SIZ: Xsiz at +6, Ysiz at +10, Csiz at +38
            if what == "size":
                struct.pack_into(">L", b, s + rnd.choice([6, 10]), rnd.choice([0, 1, 65535, 1 << 20, 0xFFFFFFFF]))
            elif what == "components":
                struct.pack_into(">H", b, s + 38, rnd.choice([0, 2, 4, 16384]))
            else:
                b[s + 40] = rnd.choice([0, 0x0F, 0x1F, 0x7F])
        else:  # JPEG SOF: P at +4, Y at +5, X at +7, Nf at +9
            if what == "size":
                struct.pack_into(">H", b, s + rnd.choice([5, 7]), rnd.choice([0, 1, 2, 8000, 18000, 65535]))
            elif what == "components":
                b[s + 9] = rnd.choice([0, 2, 4, 255])
            else:
                b[s + 4] = rnd.choice([0, 1, 2, 17, 255])
        return bytes(b), f"codestream {what} damaged at {s}"
    if what == "fraglen":
        v = rnd.choice([0, 1, f_len + 2, 0xFFFFFFFF, f_len // 2])
        struct.pack_into("<L", b, f_at + 4, v)
        return bytes(b), f"fragment length {f_len} -> {v}"
    if what == "marker":
        struct.pack_into(">H", b, start, rnd.choice([0, 0xFFD9, 0xFF4F, 0x1234]))
        return bytes(b), "codestream start marker damaged"
    for _ in range(rnd.randint(1, 8)):
        b[start + rnd.randrange(max(1, min(f_len, 2048, len(b) - start)))] = rnd.randrange(256)
    return bytes(b), "bytes inside the codestream header damaged"


def _save(ds) -> bytes:
    bio = io.BytesIO()
    ds.save_as(bio, enforce_file_format=False)
    return bio.getvalue()


def _mutate_sr(data: bytes, rnd: random.Random, seed_path: Path) -> tuple[bytes, str]:
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        if "ContentSequence" not in ds:
            raise ValueError("not an SR")
        items = []

        def walk(d):
            for it in d.get("ContentSequence", []) or []:
                items.append(it)
                walk(it)

        walk(ds)
        what = rnd.choice(["deep", "loop", "valuetype", "nocode", "number", "control", "empty", "relationship"])
        target = rnd.choice(items) if items else ds
        if what == "deep":
            depth = rnd.choice([70, 200, 1000])
            inner = Dataset()
            inner.ValueType, inner.RelationshipType = "TEXT", "CONTAINS"
            inner.TextValue = "deep"
            for _ in range(depth):
                outer = Dataset()
                outer.ValueType, outer.RelationshipType = "CONTAINER", "CONTAINS"
                outer.ContinuityOfContent = "SEPARATE"
                outer.ContentSequence = Sequence([inner])
                inner = outer
            ds.ContentSequence.append(inner)
            desc = f"SR nested {depth} containers deep"
        elif what == "loop":
            ref = Dataset()
            ref.RelationshipType = "CONTAINS"
            ref.ReferencedContentItemIdentifier = [1, 1, 1]
            target.ContentSequence = Sequence(list(target.get("ContentSequence", []) or []) + [ref])
            desc = "SR by-reference item pointing at its own ancestor"
        elif what == "valuetype":
            target.ValueType = rnd.choice(["NUM", "IMAGE", "SCOORD", "WAVEFORM", "XYZ", "", "CONTAINER"])
            desc = f"SR value type -> {target.ValueType!r}"
        elif what == "nocode":
            target.ConceptNameCodeSequence = Sequence(rnd.choice([[], [Dataset()]]))
            desc = "SR concept name empty"
        elif what == "number":
            mv = Dataset()
            mv.NumericValue = rnd.choice(["1e999", "NaN", "-0", "9" * 16, "abc"])
            mv.MeasurementUnitsCodeSequence = Sequence([])
            target.ValueType = "NUM"
            target.MeasuredValueSequence = Sequence(rnd.choice([[], [mv]]))
            desc = "SR NUM with a hostile value"
        elif what == "control":
            target.ValueType = "TEXT"
            target.TextValue = "line\x1b[31mred\r\nfake: line\x00\x07" * rnd.randint(1, 50)
            desc = "SR text with control characters"
        elif what == "empty":
            ds.ContentSequence = Sequence([])
            desc = "SR with no content items"
        else:
            target.RelationshipType = rnd.choice(["", "HAS PROPERTIES", "XX", "SELECTED FROM"])
            desc = f"SR relationship -> {target.RelationshipType!r}"
        return _save(ds), desc
    except Exception:  # noqa: BLE001 - pydicom could not write it: damage the bytes instead
        return mutate(data, rnd.choice(["flip", "length", "vr"]), rnd, seed_path)


def _mutate_charset(data: bytes, rnd: random.Random, seed_path: Path) -> tuple[bytes, str]:
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        ds.SpecificCharacterSet = rnd.choice(_CHARSETS)
        junk = bytes(rnd.randrange(256) for _ in range(rnd.randint(2, 30)))
        junk = rnd.choice([junk, b"\x1b$B" + junk, b"\x1b(J" + junk + b"\x1b", b"\xff\xfe" + junk])
        ds.PatientName = "X"
        ds.StudyDescription = "X"
        out = bytearray(_save(ds))
        for tag in (b"\x10\x00\x10\x00PN", b"\x08\x00\x30\x10LO"):
            at = out.find(tag)
            if at >= 0:
                j = junk[: len(junk) // 2 * 2]
                out[at + 6:at + 8] = struct.pack("<H", len(j))
                out[at + 8:at + 10] = b""
                out[at + 8:at + 8] = j
        return bytes(out), f"charset {ds.SpecificCharacterSet!r} with {len(junk)} undecodable bytes"
    except Exception:  # noqa: BLE001
        return mutate(data, "flip", rnd, seed_path)


# ------------------------------------------------------------------ cases
@dataclass
class Case:
    number: int
    seed_file: Path
    mutations: list[str]
    data: bytes
    is_sr: bool
    runs: list[dict] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        worst = "ok"
        for r in self.runs:
            if CLASSES.index(r["class"]) > CLASSES.index(worst):
                worst = r["class"]
        return worst


def corpus_seeds(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.glob("*.dcm") if p.stat().st_size < 8 << 20)


def make_cases(corpus: Path, n: int, seed: int) -> list[Case]:
    import warnings

    warnings.simplefilter("ignore")  # pydicom's complaints about the values we broke on purpose
    rnd = random.Random(seed)  # noqa: S311 - seeded on purpose: the same seed makes the same cases
    seeds = corpus_seeds(corpus)
    cache: dict[Path, bytes] = {}
    cases = []
    for i in range(n):
        path = rnd.choice(seeds)
        data = cache.setdefault(path, path.read_bytes())
        is_sr = path.name.startswith(("sr_", "kos_"))
        kinds = [rnd.choice(MUTATIONS)]
        if is_sr and rnd.random() < 0.5:
            kinds = ["sr"]
        if rnd.random() < 0.25:
            kinds.append(rnd.choice(MUTATIONS))
        done = []
        for kind in kinds:
            try:
                data, desc = mutate(data, kind, rnd, path)
            except (IndexError, ValueError, struct.error):  # the file was already too damaged for this one
                kind = "flip"
                data, desc = mutate(data, kind, rnd, path)
            done.append(f"{kind}: {desc}")
        cases.append(Case(i, path, done, data, is_sr))
    return cases


# ------------------------------------------------------------------ running
def classify(rc: int | None, out: str, err: str) -> str:
    text = out + err
    if rc is None:
        return "hang"
    if "MemoryError" in text or "std::bad_alloc" in text or "Cannot allocate memory" in text \
            or "not enough memory" in text:
        return "memory"
    if rc < 0 or rc >= 128:
        return "signal"
    if "Traceback (most recent call last)" in text or "internal error" in text:
        return "traceback"
    if rc == 0:
        return "ok"
    if rc == 1 and text.strip():
        # a reason that is raw Python/library text ("ValueError: ...", "'NoneType' object ...") is a
        # fault that was caught, not a reason: counted with the tracebacks
        return "traceback" if RAW_TEXT.search(text) else "clean"
    return "traceback"  # another exit status, or a failure without a reason: a fault of ours


#: Python-level fault text that must never be shown as a reason
RAW_TEXT = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b:|object has no attribute|'NoneType'|"
                      r"object of type|Alias '|could not broadcast|index out of range|not subscriptable")


def _in_process_checks(jobs, workers, fn=None):
    """check's worker pool, run in this (already isolated, forked) child: starting a forkserver
    per case would cost more than the case; a crash still shows, as this child's signal."""
    from mdtviewer.imaging import check

    return [(fn or check.check_file)(*job) for job in jobs]


def _child(argv: list[str], out_path: str, err_path: str) -> None:  # pragma: no cover - runs in a fork
    os.setpgid(0, 0)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), write_through=True)
    rc = 1
    try:
        from mdtviewer.cli import main
        from mdtviewer.imaging import check

        check._run_checks = _in_process_checks
        rc = int(main(argv) or 0)
    except SystemExit as exc:
        rc = int(exc.code or 0) if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the whole point: show it
        import traceback

        traceback.print_exc()
        rc = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(rc)


@dataclass
class _Running:
    case: Case
    command: str
    started: float
    timeout: float
    out_path: Path
    err_path: Path
    pid: int = 0
    popen: subprocess.Popen | None = None


def _start(case: Case, argv: list[str], work: Path, timeout: float, home: Path, forked: bool) -> _Running:
    io_dir = work / f"io{case.number:05d}_{len(case.runs)}_{argv[0]}"
    io_dir.mkdir(exist_ok=True)
    run = _Running(case, " ".join(argv[:2]) if argv[0] == "sr" else argv[0], time.monotonic(), timeout,
                   io_dir / "out.txt", io_dir / "err.txt")
    if forked:
        pid = os.fork()
        if pid == 0:  # pragma: no cover
            _child(argv, str(run.out_path), str(run.err_path))
        run.pid = pid
    else:
        env = dict(os.environ, MDTVIEWER_HOME=str(home), QT_QPA_PLATFORM="offscreen")
        cmd = ["prlimit", f"--as={MEMORY_CAP}", sys.executable, "-m", "mdtviewer", *argv]
        run.popen = subprocess.Popen(cmd, stdout=open(run.out_path, "wb"), stderr=open(run.err_path, "wb"),  # noqa: SIM115
                                     env=env, cwd=REPO, start_new_session=True)
        run.pid = run.popen.pid
    return run


def _poll(run: _Running) -> bool:
    """Finished (or timed out and killed)?  Records the run on its case when it is."""
    rc: int | None
    if run.popen is not None:
        code = run.popen.poll()
        done = code is not None
        rc = code
    else:
        got, status = os.waitpid(run.pid, os.WNOHANG)
        done = bool(got)
        rc = (-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)) if done else None
    if not done and time.monotonic() - run.started <= run.timeout:
        return False
    try:
        os.killpg(run.pid, signal.SIGKILL)  # a hang, or workers left behind
    except (ProcessLookupError, PermissionError):
        pass
    if not done:
        if run.popen is not None:
            run.popen.wait()
        else:
            os.waitpid(run.pid, 0)
        rc = None
    out = run.out_path.read_text(errors="replace") if run.out_path.exists() else ""
    err = run.err_path.read_text(errors="replace") if run.err_path.exists() else ""
    run.case.runs.append({"command": run.command, "rc": rc, "class": classify(rc, out, err),
                          "seconds": round(time.monotonic() - run.started, 3),
                          "stdout": out[-2000:], "stderr": err[-3000:]})
    return True


def preload() -> None:
    """Import everything a child needs once, in the parent: each fork then starts in milliseconds."""
    import warnings

    warnings.simplefilter("ignore")
    os.environ.setdefault("MDTVIEWER_HOME", tempfile.mkdtemp(prefix="mdtfuzz-home-"))
    import mdtviewer.cli.check
    import mdtviewer.cli.sr
    import mdtviewer.dicom.index
    import mdtviewer.imaging.check
    import mdtviewer.imaging.pixels
    import mdtviewer.sr.reader
    import mdtviewer.sr.render  # noqa: F401

    for mod in ("simplejpeg", "imagecodecs", "jpeg_ls", "pylibjpeg", "libjpeg", "openjpeg", "rle"):
        try:
            __import__(mod)
        except ImportError:
            pass


def plan(case: Case, path: Path, shot: Path, with_open: bool) -> list[tuple[list[str], bool]]:
    """(argv, forked) of each run of *case*."""
    runs = [(["check", str(path)], True)]
    if case.is_sr or any(m.startswith("sr:") for m in case.mutations):
        runs.append((["sr", "show", str(path)], True))
    if with_open:
        runs.append((["open", str(path), "--screenshot", str(shot)], False))
    return runs


def fuzz(corpus: Path, n: int, seed: int, *, open_fraction: float, jobs: int, timeout: float,
         out_dir: Path | None, progress: bool = True) -> list[Case]:
    """Make and run *n* cases (every fork from this thread only: forking a threaded process can deadlock)."""
    preload()
    cases = make_cases(corpus, n, seed)
    rnd = random.Random(seed ^ 0x5EED)  # noqa: S311 - reproducible choice of the open runs
    opens = {c.number for c in cases if rnd.random() < open_fraction}
    home = Path(os.environ["MDTVIEWER_HOME"])
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mdtfuzz-") as tmpd:
        work = Path(tmpd)
        queue: list[tuple[Case, list[str], bool]] = []
        remaining: dict[int, int] = {}
        for c in cases:
            path = work / f"case{c.number:05d}.dcm"
            path.write_bytes(c.data)
            steps = plan(c, path, work / f"shot{c.number:05d}.png", c.number in opens)
            remaining[c.number] = len(steps)
            queue += [(c, argv, forked) for argv, forked in steps]
        queue.reverse()
        running: list[_Running] = []
        finished = 0
        while queue or running:
            while queue and len(running) < max(1, jobs):
                c, argv, forked = queue.pop()
                running.append(_start(c, argv, work, timeout if forked else timeout * 2, home, forked))
            still = []
            for run in running:
                if _poll(run):
                    remaining[run.case.number] -= 1
                    if remaining[run.case.number] == 0:
                        finished += 1
                        if out_dir is not None and run.case.verdict in BAD:
                            save_case(run.case, out_dir, seed)
                        if progress and (finished % 100 == 0 or finished == n):
                            print(f"  {finished}/{n} cases, {time.monotonic() - t0:.0f} s", file=sys.stderr,
                                  flush=True)
                else:
                    still.append(run)
            running = still
            time.sleep(0.002)
    return cases


def save_case(case: Case, out_dir: Path, seed: int) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"seed{seed}_case{case.number:05d}_{case.verdict}"
    (out_dir / f"{stem}.dcm").write_bytes(case.data)
    record = {"seed": seed, "case": case.number, "corpus_file": case.seed_file.name, "mutations": case.mutations,
              "verdict": case.verdict, "runs": case.runs}
    (out_dir / f"{stem}.json").write_text(json.dumps(record, indent=1))


def table(cases: list[Case]) -> str:
    rows = {}
    for c in cases:
        for r in c.runs:
            rows.setdefault(r["command"], {k: 0 for k in CLASSES})[r["class"]] += 1
    verdicts = {k: 0 for k in CLASSES}
    for c in cases:
        verdicts[c.verdict] += 1
    lines = [f"{'':12}" + "".join(f"{k:>10}" for k in CLASSES) + f"{'runs':>8}"]
    for cmd, counts in sorted(rows.items()):
        lines.append(f"{cmd:12}" + "".join(f"{counts[k]:>10}" for k in CLASSES) + f"{sum(counts.values()):>8}")
    lines.append(f"{'cases':12}" + "".join(f"{verdicts[k]:>10}" for k in CLASSES) + f"{len(cases):>8}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tools/fuzz.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--open", type=float, default=0.05, dest="open_fraction",
                   help="fraction of cases also run through open --screenshot (default 0.05)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per run (open gets twice this)")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    p.add_argument("--out", type=Path, default=Path("fuzz-failures"), help="folder for non-clean cases")
    p.add_argument("--json", action="store_true", help="also print the counts as one JSON object")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    cases = fuzz(args.corpus, args.cases, args.seed, open_fraction=args.open_fraction, jobs=args.jobs,
                 timeout=args.timeout, out_dir=args.out)
    print(f"seed {args.seed}: {len(cases)} cases in {time.monotonic() - t0:.0f} s")
    print(table(cases))
    bad = [c for c in cases if c.verdict in BAD]
    if bad:
        print(f"{len(bad)} non-clean case(s) written to {args.out}/")
    if args.json:
        counts = {k: sum(1 for c in cases if c.verdict == k) for k in CLASSES}
        print(json.dumps({"seed": args.seed, "cases": len(cases), **counts}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
