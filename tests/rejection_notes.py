"""IHE IOCM rejection notes for the tests, made with DCMTK, not with our writer.

How the files are made (so a reader can check it): a corpus ultrasound image is copied into tmp_path; a
second image of the SAME study is made from that copy with DCMTK ``dcmodify`` (new Series and SOP Instance
UIDs; dcmodify updates the file meta); the rejection note is a Key Object Selection Document written as a
DCMTK dump (text) and turned into a file with ``dump2dcm``: title (0040,A043) a DCM code of CID 7010,
Current Requested Procedure Evidence listing the rejected instance under its study and series, and a
TID 2010 content tree referencing it.  ``dciodvfy`` (dicom3tools) validates the note in the tests.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"
#: the corpus image both study images are made from (one study, one patient)
BASE = "us_esaote_ybr422_uncompressed.dcm"
STUDY_UID = "1.3.88.0.8.8.39.437.34.57.923810.141636"
PATIENT_ID = "34234dffse34"
US_CLASS = "1.2.840.10008.5.1.4.1.1.6.1"
KOS_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
#: the second image of the study, the one the notes withdraw
REJECTED_SERIES = "1.4.13.3.1.0.19.544194620.9411.768994.1520.2"
REJECTED_UID = "2.25.31415926535897932384626433832795"
#: a corpus image of another study and patient
OTHER_FILE = "us_ge_logiq700_rgb_explicit_le.dcm"
OTHER_STUDY_UID = "1.3.6.1.4.1.5962.1.2.13.20040826185059.5457"


def _item(lines: list[str]) -> list[str]:
    return ["(fffe,e000) na (Item with undefined length)", *lines, "(fffe,e00d) na (ItemDelimitationItem)"]


def _seq(tag: str, items: list[list[str]]) -> list[str]:
    out = [f"({tag}) SQ (Sequence with undefined length)"]
    for it in items:
        out += _item(it)
    return out + ["(fffe,e0dd) na (SequenceDelimitationItem)"]


def kos_dump(
    *,
    note_uid: str,
    title: tuple[str, str, str] = ("113038", "DCM", "Incorrect Modality Worklist Entry"),
    note_study: str = STUDY_UID,
    patient_id: str = PATIENT_ID,
    evidence_study: str | None = STUDY_UID,
    series_uid: str = REJECTED_SERIES,
    rejected: list[str] | None = None,
    evidence: bool = True,
    ref_class: str = US_CLASS,
) -> str:
    """The DCMTK dump of a KOS (rejection note when *title* is one of CID 7010's rejection codes)."""
    rejected = [REJECTED_UID] if rejected is None else rejected
    refs = [[f"(0008,1150) UI [{ref_class}]", f"(0008,1155) UI [{uid}]"] for uid in rejected]
    lines = [
        "(0008,0005) CS [ISO_IR 100]",
        f"(0008,0016) UI [{KOS_CLASS}]",
        f"(0008,0018) UI [{note_uid}]",
        "(0008,0020) DA [20200101]",
        "(0008,0023) DA [20200102]",
        "(0008,0030) TM [101010]",
        "(0008,0033) TM [101010]",
        "(0008,0050) SH []",
        "(0008,0060) CS [KO]",
        "(0008,0070) LO [DCMTK dump2dcm test]",
        "(0008,0090) PN []",
        *_seq("0008,1111", []),
        "(0010,0010) PN [Test^Rejection]",
        f"(0010,0020) LO [{patient_id}]",
        "(0010,0030) DA []",
        "(0010,0040) CS []",
        f"(0020,000d) UI [{note_study}]",
        f"(0020,000e) UI [{note_uid}.1]",
        "(0020,0010) SH []",
        "(0020,0011) IS [99]",
        "(0020,0013) IS [1]",
        *_seq("0040,a043", [[f"(0008,0100) SH [{title[0]}]", f"(0008,0102) SH [{title[1]}]",
                              f"(0008,0104) LO [{title[2]}]"]]),
        "(0040,a040) CS [CONTAINER]",
        "(0040,a050) CS [SEPARATE]",
    ]
    if evidence:
        ev_item = _seq("0008,1115", [[*_seq("0008,1199", refs), f"(0020,000e) UI [{series_uid}]"]])
        if evidence_study is not None:
            ev_item.append(f"(0020,000d) UI [{evidence_study}]")
        lines += _seq("0040,a375", [ev_item])
    lines += _seq("0040,a504", [["(0008,0105) CS [DCMR]", "(0040,db00) CS [2010]"]])
    lines += _seq("0040,a730", [[*_seq("0008,1199", [r]), "(0040,a010) CS [CONTAINS]", "(0040,a040) CS [IMAGE]"]
                                for r in refs])
    return "\n".join(lines) + "\n"


def make_kos(folder: Path, name: str, **kw) -> Path:
    """Write the note with DCMTK ``dump2dcm`` into *folder*; the file's path."""
    dump = folder / f"{name}.dump"
    dump.write_text(kos_dump(**kw), encoding="ascii")
    out = folder / f"{name}.dcm"
    subprocess.run(["dump2dcm", str(dump), str(out)], check=True, capture_output=True)
    dump.unlink()
    return out


def make_study(folder: Path) -> tuple[Path, Path]:
    """Two images of one study (the corpus file, and a copy re-identified by DCMTK ``dcmodify``)."""
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / "kept.dcm"
    shutil.copy(TESTDATA / BASE, kept)
    second = folder / "second.dcm"
    shutil.copy(TESTDATA / BASE, second)
    subprocess.run(
        ["dcmodify", "-nb", "-i", f"(0020,000e)={REJECTED_SERIES}", "-i", f"(0008,0018)={REJECTED_UID}",
         "-i", "(0020,0011)=2", str(second)],
        check=True, capture_output=True,
    )
    return kept, second


def rejected_folder(folder: Path, **kw) -> tuple[Path, Path, Path]:
    """*folder* with the study's two images and a rejection note (``kw`` for :func:`kos_dump`) withdrawing the second.

    Returns (kept image, rejected image, note)."""
    kept, second = make_study(folder)
    note = make_kos(folder, "rejection", note_uid=kw.pop("note_uid", "2.25.27182818284590452353602874713527"), **kw)
    return kept, second, note


def dciodvfy(path: Path) -> list[str]:
    """dicom3tools' verdict on *path*: its error lines (empty: valid)."""
    r = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("Error")]


#: a corpus measurement report (TID 1500) filed into the study by DCMTK ``dcmodify``
SR_FILE = "sr_enhanced_tid1500_dcmjs.dcm"
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"


def add_sr(folder: Path) -> tuple[Path, str, str]:
    """The corpus TID 1500 SR copied into the study (Study UID and patient set with ``dcmodify``):
    (path, its SOP Instance UID, its Series Instance UID)."""
    import pydicom

    sr = folder / "measurements.dcm"
    shutil.copy(TESTDATA / SR_FILE, sr)
    subprocess.run(["dcmodify", "-nb", "-i", f"(0020,000d)={STUDY_UID}", "-i", f"(0010,0020)={PATIENT_ID}",
                    str(sr)], check=True, capture_output=True)
    ds = pydicom.dcmread(sr, stop_before_pixels=True)
    return sr, str(ds.SOPInstanceUID), str(ds.SeriesInstanceUID)
