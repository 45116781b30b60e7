"""The mutation fuzzer (tools/fuzz.py) in CI: a few hundred seeded cases through ``check`` and
``sr show``, a few dozen through ``open --screenshot``, each under a 3 GB cap and a timeout,
in about two minutes.  Any traceback, signal, hang or memory blow-up fails the test, and the
failing cases are left in the test's folder to be replayed.

The cases the fuzzer once found are regression tests below, each rebuilt at test time from
its corpus file with the same mutation.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from conftest import REPO, TESTDATA

sys.path.insert(0, str(REPO / "tools"))
import fuzz


def test_fuzz_cases_are_all_clean(tmp_path):
    out = tmp_path / "failures"
    cases = fuzz.fuzz(TESTDATA, 300, seed=2026, open_fraction=0.08, jobs=2, timeout=40, out_dir=out,
                      progress=False)
    print(fuzz.table(cases))
    runs = [r for c in cases for r in c.runs]
    assert len(cases) == 300
    assert sum(r["command"] == "open" for r in runs) >= 12
    assert sum(r["command"] == "sr show" for r in runs) >= 30
    bad = {c.number: (c.mutations, [(r["command"], r["class"], r["stderr"][-300:]) for r in c.runs])
           for c in cases if c.verdict in fuzz.BAD}
    assert not bad, f"non-clean cases (see {out}): {bad}"
    # the mix is real: some cases still read fine, most give a reason
    verdicts = [c.verdict for c in cases]
    assert verdicts.count("ok") > 20 and verdicts.count("clean") > 100


def test_same_seed_same_cases():
    a = fuzz.make_cases(TESTDATA, 40, seed=5)
    b = fuzz.make_cases(TESTDATA, 40, seed=5)
    assert [(c.seed_file, c.mutations, c.data) for c in a] == [(c.seed_file, c.mutations, c.data) for c in b]
    kinds = {m.split(":")[0] for c in fuzz.make_cases(TESTDATA, 400, seed=5) for m in c.mutations}
    assert kinds >= {"truncate", "flip", "length", "vr", "image", "codestream", "offsets", "sr", "charset"}


def test_classification():
    assert fuzz.classify(0, "OK ...", "") == "ok"
    assert fuzz.classify(1, "FAIL ... -- reason", "") == "clean"
    assert fuzz.classify(1, "", "Traceback (most recent call last):\n ...") == "traceback"
    assert fuzz.classify(1, "", "mdtviewer sr show: internal error (TypeError); please report it") == "traceback"
    assert fuzz.classify(-11, "", "") == "signal"
    assert fuzz.classify(139, "", "") == "signal"
    assert fuzz.classify(None, "", "") == "hang"
    assert fuzz.classify(1, "", "MemoryError") == "memory"
    assert fuzz.classify(2, "", "") == "traceback"


# ------------------------------------------------------------------ regressions found by the fuzzer
def _replay(tmp_path: Path, corpus_name: str, kinds: list[str], rnd_seed: int) -> Path:
    """Rebuild a case: *kinds* applied to the corpus file with a Random seeded as recorded."""
    rnd = random.Random(rnd_seed)
    data = (TESTDATA / corpus_name).read_bytes()
    for kind in kinds:
        data, _desc = fuzz.mutate(data, kind, rnd, TESTDATA / corpus_name)
    path = tmp_path / "case.dcm"
    path.write_bytes(data)
    return path


REGRESSIONS: list[tuple[str, list[str], int]] = []


@pytest.mark.parametrize("corpus_name, kinds, rnd_seed", REGRESSIONS)
def test_fuzzer_regression(tmp_path, corpus_name, kinds, rnd_seed):
    path = _replay(tmp_path, corpus_name, kinds, rnd_seed)
    case = fuzz.Case(0, TESTDATA / corpus_name, kinds, path.read_bytes(), corpus_name.startswith(("sr_", "kos_")))
    for argv, forked in fuzz.plan(case, path, tmp_path / "shot.png", with_open=True):
        run = fuzz._start(case, argv, tmp_path, 60 if forked else 120, tmp_path / "home", forked)
        while not fuzz._poll(run):
            pass
    assert case.verdict in ("ok", "clean"), case.runs
