"""The wheel is the whole application: built from the sources, installed in a fresh venv, run from
another folder, `open --demo --screenshot`, `sr protocols` and a preceptorship `sr write` work exactly
as from the repository (issue 14.1).

No download: the wheel is built without build isolation (the venv's setuptools, which the test extra
pins to the build-system's floor), installed with ``--no-deps``, and the fresh venv sees the main
venv's site-packages through a ``.pth`` file for the dependencies only (checked: ``mdtviewer`` itself
is imported from the fresh venv).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from importlib import metadata
from pathlib import Path

import pydicom
import pytest

REPO = Path(__file__).resolve().parent.parent


def _setuptools_ok() -> None:
    have = metadata.version("setuptools")
    major = int(have.split(".")[0])
    assert major >= 77, (
        f"setuptools {have} in the venv: building the wheel without isolation needs >= 77 "
        "(pip install -e '.[test]' installs it)"
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the sources (the checkout gets no build/ or egg-info)."""
    _setuptools_ok()
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "mdtviewer", src / "mdtviewer", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = out.glob("mdtviewer-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding only the wheel; the dependencies are the main venv's (via a .pth file)."""
    root = tmp_path_factory.mktemp("venv") / "v"
    venv.create(root, with_pip=False, symlinks=True)
    py = root / "bin" / "python"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    site = Path(
        subprocess.check_output(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (site / "zz_main_venv_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return root


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update({"QT_QPA_PLATFORM": "offscreen", "MDTVIEWER_HOME": str(tmp / "home")})
    return env


def _run(installed: Path, tmp: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    cwd = tmp / "elsewhere"
    cwd.mkdir(exist_ok=True)
    return subprocess.run(
        [str(installed / "bin" / "mdtviewer"), *args],
        cwd=cwd,
        env=_env(tmp),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_wheel_holds_the_data_and_licence(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    protocols = {p.name for p in (REPO / "mdtviewer" / "resources" / "protocols").glob("*.json")}
    demo = {p.name for p in (REPO / "mdtviewer" / "resources" / "demo").glob("*.dcm")}
    assert len(protocols) >= 5 and len(demo) >= 6
    assert {f"mdtviewer/resources/protocols/{n}" for n in protocols} <= names
    assert {f"mdtviewer/resources/demo/{n}" for n in demo} | {"mdtviewer/resources/demo/LICENSE"} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in meta and "Classifier: Topic :: Scientific/Engineering :: Medical" in meta
    assert "Requires-Dist: dicomweb-client" in meta
    assert not any(n.endswith("make_demo.py") for n in names)  # a repository tool, not the application


def test_installed_wheel_is_what_runs(installed, tmp_path):
    py = installed / "bin" / "python"
    where = subprocess.check_output(
        [str(py), "-c", "import mdtviewer; print(mdtviewer.__file__)"], cwd=tmp_path, env=_env(tmp_path), text=True
    ).strip()
    assert Path(where).resolve().is_relative_to(installed.resolve()), where


def test_demo_screenshot_from_the_wheel(installed, tmp_path):
    shot = tmp_path / "demo.png"
    r = _run(installed, tmp_path, "open", "--demo", "--screenshot", str(shot))
    assert r.returncode == 0, r.stderr
    assert "3 viewport(s) painted" in r.stdout, r.stdout
    assert shot.stat().st_size > 20_000
    # the same as `open PATH` from the repository shows
    ref = tmp_path / "ref.png"
    r2 = subprocess.run(
        [
            sys.executable,
            "-m",
            "mdtviewer",
            "open",
            str(REPO / "mdtviewer" / "resources" / "demo"),
            "--screenshot",
            str(ref),
        ],
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r2.returncode == 0, r2.stderr
    assert r.stdout.replace(str(shot), "X") == r2.stdout.replace(str(ref), "X")


def test_sr_protocols_from_the_wheel(installed, tmp_path):
    r = _run(installed, tmp_path, "sr", "protocols")
    assert r.returncode == 0, r.stderr
    ref = subprocess.run(
        [sys.executable, "-m", "mdtviewer", "sr", "protocols"],
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ref.returncode == 0 and r.stdout == ref.stdout
    for pid in ("aaa-surveillance", "carotid-duplex"):
        assert pid in r.stdout


def test_preceptorship_review_written_from_the_wheel(installed, tmp_path):
    py = installed / "bin" / "python"
    demo = Path(
        subprocess.check_output(
            [str(py), "-c", "from mdtviewer.infra.paths import resources_dir; print(resources_dir() / 'demo')"],
            cwd=tmp_path,
            env=_env(tmp_path),
            text=True,
        ).strip()
    )
    cine = demo / "study1_series1_cine.dcm"
    sop = pydicom.dcmread(cine, stop_before_pixels=True).SOPInstanceUID
    review = tmp_path / "review.json"
    review.write_text(
        json.dumps(
            {
                "kind": "preceptorship",
                "author": {"name": "Trainer^Tom", "role": "trainer"},
                "trainee": {"name": "Trainee^Tim"},
                "protocol": "aaa-surveillance",
                "views": [{"view": "AO-MAX-TS", "sop_instance_uid": sop, "frame": 2}],
                "summary": "From the installed wheel",
            }
        )
    )
    out = tmp_path / "p.dcm"
    r = _run(installed, tmp_path, "sr", "write", "--review", str(review), "--study", str(cine), "--out", str(out))
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    from mdtviewer.sr.review_reader import review_from_sr

    got = review_from_sr(out)
    assert got.trainee.name == "Trainee^Tim"
    views = {v.view_id: v for v in got.views}
    assert (views["AO-MAX-TS"].present, views["AO-MAX-TS"].frame) == (True, 2)
    assert pydicom.dcmread(out).StudyInstanceUID == pydicom.dcmread(cine, stop_before_pixels=True).StudyInstanceUID
