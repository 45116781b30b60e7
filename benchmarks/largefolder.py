"""Build a large study folder from corpus files with new UIDs (shared by scan_large.py and index.py).

How it is made: each template (a small, well-formed corpus file: US images and
cines, CT/MR slices from the DICOMDIR set, SR/KOS/PDF documents) is rewritten
ONCE with pydicom so that its Study/Series/SOP Instance UIDs (and the file
meta's Media Storage SOP Instance UID), Patient ID, Patient's Name and Study
Date hold fixed-length placeholders.  Every copy is then that template's bytes
with the placeholders replaced by same-length new values (``bytes.replace``),
so element lengths stay valid without re-encoding 50,000 files.  Copies are
grouped into patients (two studies each, a prior and a later one), studies of
five series (one template each) and series of about 25 instances; one file
in 200 is a truncated corpus file, so the Problems list has work too.

The folder is cached under ``benchmarks/out/`` (git-ignored): built once per N.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"
CORPUS = Path(os.environ.get("MDTVIEWER_TESTDATA", str(REPO.parent / "shared" / "testdata")))

#: templates: small well-formed files (the pixel data is not read by a scan)
TEMPLATES = (
    "us_philips_cx50_palette_rle.dcm",
    "us_atl_hdi5000_jpeg_baseline_ybr422.dcm",
    "us_ge_logiq700_j2k_lossy_ybr_ict.dcm",
    "usmf_philips_cx50_palette_rle_2f_no_frametime.dcm",
    "dicomdir_pydicom_ct_mr_2patients/77654033/CR1/6154",
    "dicomdir_pydicom_ct_mr_2patients/98892003/MR1/5641",
)
DOC_TEMPLATES = (
    "sr_enhanced_tid1500_dcmjs.dcm",
    "kos_clearcanvas_of_interest.dcm",
    "pdf_encapsulated_orthanc_sample.dcm",
)
BROKEN = "bad_truncated_dataset_rtplan.dcm"

PH_STUDY = "2.25.1" + "1" * 38  # 44 characters (even: no padding byte)
PH_SERIES = "2.25.2" + "2" * 38
PH_SOP = "2.25.3" + "3" * 38
PH_PID = "PIDPLACEHOLD"  # 12
PH_NAME = "ZZPLACEHOLDER^NAME"  # 18
PH_DATE = "18880808"
SERIES_PER_STUDY = 5
PER_SERIES = 25


def _uid(kind: int, n: int) -> str:
    s = f"2.25.9{kind}{n:037d}"
    assert len(s) == len(PH_STUDY)
    return s


def _templates(dest: Path) -> dict[str, bytes]:
    """name -> template bytes with the placeholders in."""
    import pydicom

    warnings.simplefilter("ignore")
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    out: dict[str, bytes] = {}
    for name in TEMPLATES + DOC_TEMPLATES:
        ds = pydicom.dcmread(CORPUS / name)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = PH_STUDY, PH_SERIES, PH_SOP
        ds.file_meta.MediaStorageSOPInstanceUID = PH_SOP
        ds.PatientID, ds.PatientName, ds.StudyDate = PH_PID, PH_NAME, PH_DATE
        for kw in ("AccessionNumber", "OtherPatientIDs"):
            if kw in ds:
                del ds[kw]
        p = dest / (Path(name).name + ".tpl")
        ds.save_as(p, enforce_file_format=False)
        data = p.read_bytes()
        p.unlink()
        for ph in (PH_STUDY, PH_SERIES, PH_SOP, PH_PID, PH_NAME, PH_DATE):
            assert ph.encode() in data, (name, ph)
        out[name] = data
    return out


def build(n: int, *, quiet: bool = False) -> Path:
    """The folder of *n* instances (cached); returns its path."""
    folder = OUT / f"scan_{n}"
    stamp = OUT / f"scan_{n}.complete"
    if stamp.exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    tpl = _templates(folder)
    images = [tpl[t] for t in TEMPLATES]
    docs = [tpl[t] for t in DOC_TEMPLATES]
    broken = (CORPUS / BROKEN).read_bytes()
    made = sop = series_no = 0
    study = 0
    while made < n:
        patient, second = divmod(study, 2)
        pdir = folder / f"P{patient:05d}" / f"ST{second}"
        date = f"20{10 + second * 5 + patient % 5:02d}{1 + patient % 12:02d}{1 + patient % 28:02d}"
        pid = f"B{patient:011d}"
        name = f"BENCH^P{patient:011d}"
        common = [
            (PH_STUDY.encode(), _uid(1, study).encode()),
            (PH_PID.encode(), pid.encode()),
            (PH_NAME.encode(), name.encode()),
            (PH_DATE.encode(), date.encode()),
        ]
        for s in range(SERIES_PER_STUDY):
            if made >= n:
                break
            series_no += 1
            sdir = pdir / f"SE{s:02d}"
            sdir.mkdir(parents=True, exist_ok=True)
            last_series = s == SERIES_PER_STUDY - 1
            for i in range(min(PER_SERIES, n - made)):
                if last_series and i == 0:
                    data = docs[study % len(docs)]
                elif made % 200 == 199:
                    (sdir / f"IM{i:05d}.dcm").write_bytes(broken)
                    made += 1
                    continue
                else:
                    data = images[(study + s) % len(images)]
                sop += 1
                for old, new in common + [
                    (PH_SERIES.encode(), _uid(2, series_no).encode()),
                    (PH_SOP.encode(), _uid(3, sop).encode()),
                ]:
                    data = data.replace(old, new)
                (sdir / f"IM{i:05d}.dcm").write_bytes(data)
                made += 1
        study += 1
        if not quiet and study % 50 == 0:
            print(f"  built {made}/{n} files", flush=True)
    stamp.write_text(hashlib.sha1(str(n).encode(), usedforsecurity=False).hexdigest())
    return folder


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.dcm"))


if __name__ == "__main__":
    import sys

    for arg in sys.argv[1:] or ["1000"]:
        print(build(int(arg)))
