"""Listing a 10k-entry DICOMDIR (issue 12.4): first study and all studies, against ``dcmdump`` of the DICOMDIR.

How the file-set is made (cached under ``benchmarks/out/dicomdir_10000``, git-ignored): the
10,000-file folder of ``benchmarks/largefolder.py`` (corpus US images/cines, CT/MR slices,
SR/KOS/PDF documents, each copy with new Study/Series/SOP Instance UIDs, patient IDs and dates)
is hard-linked under ISO 9660 names (PT000000/ST000000/SE000000/IM000000) and a DICOMDIR is
written for it with pydicom: PATIENT/STUDY/SERIES records with the keys PS3.3 F.5 requires,
and minimal IMAGE / SR DOCUMENT / KEY OBJECT DOC / ENCAP DOC records (File ID, SOP class,
instance, transfer syntax, Instance Number: no Number of Frames, rows or columns, the
conservative case), linked by their byte offsets (pydicom's ``FileSet.add`` was tried first:
it is quadratic, over 5 CPU minutes for 10k files; DCMTK ``dcmmkdir`` refuses the mixed
transfer syntaxes and inconsistent Study IDs of the general-purpose profiles).  The truncated
files of the folder are left out.

Measured, interleaved in one process tree, ``--repeat`` times (default 7):

* ``dcmdump DICOMDIR > /dev/null``: DCMTK parsing and printing every record (a process);
* ``mdtviewer``: ``StudyIndex.add_paths(DICOMDIR)`` in a fresh Python process that has already
  imported the package (the application is running when the user opens the media): time to the
  first instance placed (the first study listed: the browser polls ``index.added_since``) and
  to every study listed;
* ``mdtviewer --read-files`` (diagnosis, ``--files``): the same folder listed by reading every
  file's header (what the app did before issue 12.4).

Prints median and spread (min-max) per figure, the 1-minute load average beside each run, and
the ratios against ``dcmdump``.  Targets: first study <= 0.5 s; all studies <= 2x dcmdump.

Usage: .venv/bin/python benchmarks/dicomdir_list.py [--n 10000] [--repeat 7] [--files]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
OUT = REPO / "benchmarks" / "out"
PY = sys.executable


def _record(rtype: str, **kw: object):
    from pydicom.dataset import Dataset

    rec = Dataset()
    rec.OffsetOfTheNextDirectoryRecord = 0
    rec.RecordInUseFlag = 0xFFFF
    rec.OffsetOfReferencedLowerLevelDirectoryEntity = 0
    rec.DirectoryRecordType = rtype
    for k, v in kw.items():
        if v not in (None, ""):
            setattr(rec, k, v)
    return rec


def build(n: int) -> Path:
    """The file-set folder with its DICOMDIR (cached)."""
    import largefolder
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    from mdtviewer.dicom.reader import read_header
    from mdtviewer.infra.errors import DicomInputError

    dest = OUT / f"dicomdir_{n}"
    stamp = OUT / f"dicomdir_{n}.complete"
    if stamp.exists():
        return dest
    src = largefolder.build(n, quiet=True)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    tree: dict = {}  # pid -> (fields, {study uid -> (fields, {series uid -> (inst, fields, [(fileid, inst)])})})
    for p in largefolder.files_of(src):
        try:
            inst, f = read_header(p)
        except DicomInputError:
            continue  # the truncated copies: left out
        pt = tree.setdefault(f["PatientID"], (f, {}))
        st = pt[1].setdefault(inst.study_instance_uid, (f, {}))
        se = st[1].setdefault(inst.series_instance_uid, (inst, f, []))
        ids = (f"PT{list(tree).index(f['PatientID']):06d}", f"ST{list(pt[1]).index(inst.study_instance_uid):06d}",
               f"SE{list(st[1]).index(inst.series_instance_uid):06d}", f"IM{len(se[2]):06d}")
        d = dest.joinpath(*ids[:3])
        d.mkdir(parents=True, exist_ok=True)
        os.link(p, d / ids[3])  # the copy's own bytes under an ISO 9660 name
        se[2].append((list(ids), inst))
    recs: list = []
    links: list[tuple[int, int | None, list[int]]] = []  # (record, parent record, children records)

    def add(rec, parent: int | None) -> int:
        recs.append(rec)
        links.append((len(recs) - 1, parent, []))
        if parent is not None:
            links[parent][2].append(len(recs) - 1)
        return len(recs) - 1

    roots: list[int] = []
    for pid, (pf, studies) in tree.items():
        pr = add(_record("PATIENT", PatientID=pid, PatientName=pf["PatientName"],
                         PatientBirthDate=pf["PatientBirthDate"], PatientSex=pf["PatientSex"]), None)
        roots.append(pr)
        for suid, (sf, series) in studies.items():
            sr = add(_record("STUDY", StudyInstanceUID=suid, StudyDate=sf["StudyDate"],
                             StudyTime=sf["StudyTime"] or "120000", StudyDescription=sf["StudyDescription"],
                             StudyID="1", AccessionNumber=sf["AccessionNumber"]), pr)
            for seuid, (first, ff, items) in series.items():
                ser = add(_record("SERIES", SeriesInstanceUID=seuid, Modality=first.modality or "OT",
                                  SeriesNumber=ff["SeriesNumber"] or "1"), sr)
                for ids, inst in items:
                    rtype = {"sr": "SR DOCUMENT", "kos": "KEY OBJECT DOC", "pdf": "ENCAP DOC"}.get(inst.kind, "IMAGE")
                    kw = dict(ReferencedFileID=ids, ReferencedSOPClassUIDInFile=inst.sop_class_uid,
                              ReferencedSOPInstanceUIDInFile=inst.sop_instance_uid,
                              ReferencedTransferSyntaxUIDInFile=inst.transfer_syntax,
                              InstanceNumber=str(inst.instance_number or 1))
                    add(_record(rtype, **kw), ser)
    ds = Dataset()
    ds.FileSetID = "BENCH"
    ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.FileSetConsistencyFlag = 0
    ds.DirectoryRecordSequence = recs
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    out = dest / "DICOMDIR"
    ds.save_as(out, enforce_file_format=True)
    # the offsets: where pydicom put each record (fixed-width UL fields: a rewrite moves nothing)
    pos = [r.seq_item_tell for r in pydicom.dcmread(out).DirectoryRecordSequence]
    for i, parent, children in links:
        if children:
            recs[i].OffsetOfReferencedLowerLevelDirectoryEntity = pos[children[0]]
        sibs = roots if parent is None else links[parent][2]
        j = sibs.index(i)
        if j + 1 < len(sibs):
            recs[i].OffsetOfTheNextDirectoryRecord = pos[sibs[j + 1]]
    ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = pos[roots[0]]
    ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = pos[roots[-1]]
    ds.save_as(out, enforce_file_format=True)
    assert [r.seq_item_tell for r in pydicom.dcmread(out).DirectoryRecordSequence] == pos
    stamp.write_text(str(len(recs)))
    return dest


_OURS = r"""
import json, sys, time, threading
sys.path.insert(0, sys.argv[1])
from mdtviewer.dicom.index import StudyIndex
from mdtviewer.dicom import reader  # noqa: F401  (imported by the app at start)
mode, target = sys.argv[2], sys.argv[3]
idx = StudyIndex()
first = []
t0 = time.perf_counter()
def on_instance(_inst):
    if not first:
        first.append(time.perf_counter() - t0)
if mode == "records":
    idx.add_paths(target, on_instance=on_instance, workers=1)
else:
    from mdtviewer.dicom.dicomdir import read_file_set
    files, _p = read_file_set(target)
    idx.add_paths([str(f) for f in files], on_instance=on_instance, workers=1)
t = time.perf_counter() - t0
print(json.dumps({"first": first[0] if first else None, "all": t, "studies": len(idx.studies()),
                  "instances": len(idx.instances())}))
"""


def run_ours(dicomdir: Path, mode: str) -> dict:
    out = subprocess.run([PY, "-c", _OURS, str(REPO), mode, str(dicomdir)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_dcmdump(dicomdir: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["dcmdump", str(dicomdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):6.3f} s ({min(xs):.3f}-{max(xs):.3f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--files", action="store_true", help="also list by reading every file (the old way)")
    a = ap.parse_args()
    folder = build(a.n)
    dicomdir = folder / "DICOMDIR"
    records = sum(1 for _ in folder.rglob("IM*"))
    print(f"file-set: {folder} ({records} referenced files, DICOMDIR {dicomdir.stat().st_size / 1e6:.1f} MB)")
    dump: list[float] = []
    first: list[float] = []
    alls: list[float] = []
    ffirst: list[float] = []
    fall: list[float] = []
    loads: list[float] = []
    info: dict = {}
    for r in range(a.repeat):
        load = os.getloadavg()[0]
        loads.append(load)
        d = run_dcmdump(dicomdir)
        o = run_ours(dicomdir, "records")
        line = f"run {r + 1}: load {load:4.2f}  dcmdump {d:.3f} s  ours first {o['first']:.3f} s all {o['all']:.3f} s"
        if a.files:
            f = run_ours(dicomdir, "files")
            ffirst.append(f["first"])
            fall.append(f["all"])
            line += f"  read-files first {f['first']:.3f} s all {f['all']:.3f} s"
        print(line, flush=True)
        dump.append(d)
        first.append(o["first"])
        alls.append(o["all"])
        info = o
    print(f"\nlisted {info['studies']} studies, {info['instances']} instances "
          f"(median, spread min-max; load average {statistics.median(loads):.2f}, "
          f"{min(loads):.2f}-{max(loads):.2f})")
    print(f"  dcmdump DICOMDIR           {fmt(dump)}")
    print(f"  mdtviewer first study      {fmt(first)}   target <= 0.5 s")
    print(
        f"  mdtviewer all studies      {fmt(alls)}   {statistics.median(alls) / statistics.median(dump):.2f}x dcmdump "
        "(target <= 2x)"
    )
    if a.files:
        print(
            f"  reading every file: first {fmt(ffirst)}, all {fmt(fall)} "
            f"({statistics.median(fall) / statistics.median(dump):.2f}x dcmdump)"
        )


if __name__ == "__main__":
    main()
