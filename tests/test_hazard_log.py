"""The hazard log (docs/safety/hazard-log.md) stays honest: every control in place is proven by a test
that exists, every open control says where the work is and claims no evidence, every risk class is the
one the DCB0129 matrix gives."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOG = REPO / "docs" / "safety" / "hazard-log.md"

SEVERITIES = ["Minor", "Significant", "Considerable", "Major", "Catastrophic"]
LIKELIHOODS = ["Very low", "Low", "Medium", "High", "Very high"]
#: DCB0160 risk matrix: MATRIX[likelihood][severity]
MATRIX = {
    "Very high": [3, 4, 4, 5, 5],
    "High": [2, 3, 3, 4, 5],
    "Medium": [2, 2, 3, 3, 4],
    "Low": [1, 2, 2, 3, 4],
    "Very low": [1, 1, 2, 2, 3],
}
FIELDS = [
    "Hazard",
    "Cause",
    "Effect on the patient",
    "Severity",
    "Likelihood (before controls)",
    "Risk class (before controls)",
    "Likelihood (with the controls in place)",
    "Residual risk class",
]
NODE = re.compile(r"`(tests/[\w/]+\.py::[\w\[\]\-.]+)`")
IN_PLACE = "control: in place"
OPEN = re.compile(r"control: open \(issue (\d+)\)")


@dataclass
class Control:
    name: str
    text: str
    status: str  # "in place" | "open"
    issue: int | None
    tests: list[str] = field(default_factory=list)


@dataclass
class Hazard:
    hid: str
    title: str
    fields: dict[str, str]
    controls: list[Control]


def parse(text: str) -> list[Hazard]:
    """Hazards as written: '## HAZ-NNN: title', a two-column field table, then '- **Cn** ...' controls."""
    hazards = []
    for block in re.split(r"^## (?=HAZ-\d{3})", text, flags=re.M)[1:]:
        head, _, body = block.partition("\n")
        m = re.match(r"(HAZ-\d{3}):\s*(.+)", head.strip())
        assert m, f"bad hazard heading {head!r}"
        fields = {}
        for row in re.findall(r"^\|([^|\n]+)\|([^|\n]+)\|\s*$", body, flags=re.M):
            k, v = row[0].strip(), row[1].strip()
            if k not in ("Field", "---"):
                fields[k] = v
        controls = []
        for cm in re.finditer(r"^- \*\*(C\d+)\*\*(.+)$", body, flags=re.M):
            line = cm.group(2)
            om = OPEN.search(line)
            status = "in place" if IN_PLACE in line else ("open" if om else "")
            controls.append(Control(cm.group(1), line, status, int(om.group(1)) if om else None, NODE.findall(line)))
        hazards.append(Hazard(m.group(1), m.group(2).strip(), fields, controls))
    return hazards


def collected_nodes(files: set[str]) -> set[str]:
    """Node ids pytest collects from *files* (a subprocess: collection only, no test runs)."""
    existing = sorted(f for f in files if (REPO / f).is_file())
    if not existing:
        return set()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         *existing],
        capture_output=True, text=True, timeout=300, cwd=str(REPO), env=env,
    )
    nodes = {line.strip() for line in proc.stdout.splitlines() if "::" in line}
    assert nodes, f"pytest collected nothing: {proc.stdout[-1500:]}{proc.stderr[-1500:]}"
    return nodes


def _exists(ref: str, nodes: set[str]) -> bool:
    # a parametrised test is named without its parameters in the log
    return ref in nodes or any(n.startswith(ref + "[") for n in nodes)


@pytest.fixture(scope="module")
def hazards() -> list[Hazard]:
    return parse(LOG.read_text(encoding="utf-8"))


def test_every_hazard_has_its_fields_and_a_consistent_risk_class(hazards):
    assert len(hazards) >= 13  # the ten of issue 10 and those of issue 11 that can harm a patient or their data
    ids = [h.hid for h in hazards]
    assert ids == [f"HAZ-{i:03d}" for i in range(1, len(ids) + 1)], "ids are unique and in order"
    for h in hazards:
        missing = [f for f in FIELDS if not h.fields.get(f)]
        assert not missing, f"{h.hid} lacks {missing}"
        sev = h.fields["Severity"]
        assert sev in SEVERITIES, f"{h.hid}: severity {sev!r}"
        for lk, rc in (("Likelihood (before controls)", "Risk class (before controls)"),
                       ("Likelihood (with the controls in place)", "Residual risk class")):
            like = h.fields[lk]
            assert like in LIKELIHOODS, f"{h.hid}: likelihood {like!r}"
            want = MATRIX[like][SEVERITIES.index(sev)]
            assert h.fields[rc] == str(want), f"{h.hid}: {rc} is {h.fields[rc]}, the matrix gives {want}"
        assert LIKELIHOODS.index(h.fields["Likelihood (with the controls in place)"]) <= LIKELIHOODS.index(
            h.fields["Likelihood (before controls)"]), f"{h.hid}: controls cannot make it more likely"
        assert h.controls, f"{h.hid} has no control"


def test_the_hazards_of_issue_10_and_11_are_all_logged(hazards):
    titles = " ".join(h.title.lower() + " " + h.fields.get("Hazard", "").lower() for h in hazards)
    for words in ("burned-in", "mode", "export", "wrong patient", "merged", "synchronised", "mdt session",
                  "output or logs", "sign-off", "patient's own copy", "hostile pacs", "memory", "truncated"):
        assert words in titles, f"no hazard about {words!r}"


def test_each_control_is_proven_by_a_collected_test_or_openly_open(hazards):
    refs = {t for h in hazards for c in h.controls for t in c.tests}
    nodes = collected_nodes({r.split("::")[0] for r in refs})
    problems = []
    for h in hazards:
        for c in h.controls:
            where = f"{h.hid} {c.name}"
            if c.status == "in place":
                if not c.tests:
                    problems.append(f"{where}: marked in place but names no test")
                problems += [f"{where}: no such test {t}" for t in c.tests if not _exists(t, nodes)]
            elif c.status == "open":
                if c.tests:
                    problems.append(f"{where}: open (issue {c.issue}) but names tests {c.tests}")
                if c.issue not in (10, 11, 12, 13, 14, 15, 16):
                    problems.append(f"{where}: open under issue {c.issue}, which is not one of this project's")
            else:
                problems.append(f"{where}: says neither '{IN_PLACE}' nor 'control: open (issue N)'")
    assert not problems, "\n".join(problems)


def test_the_checker_catches_a_dishonest_log(tmp_path):
    """The rules above can fail: a made-up test, a control without evidence, a wrong risk class."""
    bad = """
## HAZ-001: Example

| Field | Entry |
|---|---|
| Hazard | x |
| Cause | x |
| Effect on the patient | x |
| Severity | Major |
| Likelihood (before controls) | High |
| Risk class (before controls) | 2 |
| Likelihood (with the controls in place) | Low |
| Residual risk class | 3 |

Controls:

- **C1** proven by nothing — control: in place
- **C2** proven by a test that does not exist — control: in place — tests: `MISSING`
- **C3** not built, yet claims a test — control: open (issue 10) — tests: `REAL`
"""
    bad = bad.replace("MISSING", "tests/test_hazard_log.py::test_no_such_thing")
    bad = bad.replace("REAL", "tests/test_hazard_log.py::test_the_checker_catches_a_dishonest_log")
    (h,) = parse(bad)
    assert MATRIX[h.fields["Likelihood (before controls)"]][SEVERITIES.index("Major")] != int(
        h.fields["Risk class (before controls)"])
    c1, c2, c3 = h.controls
    assert c1.status == "in place" and not c1.tests
    nodes = collected_nodes({"tests/test_hazard_log.py"})
    assert not _exists(c2.tests[0], nodes)
    assert _exists("tests/test_hazard_log.py::test_the_checker_catches_a_dishonest_log", nodes)
    assert c3.status == "open" and c3.issue == 10 and c3.tests
