"""A hostile PACS for the tests: a real pynetdicom AE in its own process on 127.0.0.1.

It answers like a PACS that is broken or run by an attacker:

``--mode flood``    C-FIND answers ``--count`` studies (100,000 in the tests);
                    ``--ignore-cancel`` keeps sending after our C-CANCEL
``--mode control``  C-FIND answers with ESC, CR, LF, C1 and bidi characters in
                    every text field (a fake line for the terminal)
``--mode multi``    C-FIND answers one study whose Study Instance UID has two
                    values, one with ``..``, one with none, and one good study
``--mode partial``  C-FIND (IMAGE) lists two instances; C-GET / C-MOVE send one
                    and fail the other with ``--status`` (0xA702 by default) and
                    the Error Comment ``--comment``
``--mode paths``    C-FIND (IMAGE) lists one instance of the asked study, and
                    C-GET / C-MOVE send it with the Study / Series / SOP
                    Instance UIDs given by ``--study``/``--series``/``--sop``
                    (``..``, ``.``, ``/tmp/x`` ...), taken from a corpus file
``--mode drop``     C-STORE SCP that aborts the association instead of answering:
                    once for an instance whose SOP Instance UID ends in ``.1``,
                    every time for one ending in ``.2`` (others are stored)

Run as ``python tests/hostile_scp.py --port N --mode M``; the ``hostile_peer``
fixture starts it, waits for the port and kills it by PID at teardown.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"
AET = "HOSTILE"
HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent / "shared" / "testdata" / "us_philips_cx50_palette_rle.dcm"

CONTROL_TEXT = "ok\x1b[2J\x1b]0;owned\x07\r\n0 studies\x85\u202eevil\x00"


def _serve(args) -> None:
    import pydicom
    from pydicom import config
    from pydicom.dataset import Dataset
    from pydicom.uid import RLELossless
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import (
        StudyRootQueryRetrieveInformationModelFind as FIND,
    )
    from pynetdicom.sop_class import (
        StudyRootQueryRetrieveInformationModelGet as GET,
    )
    from pynetdicom.sop_class import (
        StudyRootQueryRetrieveInformationModelMove as MOVE,
    )
    from pynetdicom.sop_class import (
        UltrasoundImageStorage,
        Verification,
    )

    # a hostile peer writes what it likes: no value checks on our side of the test
    config.settings.writing_validation_mode = config.IGNORE
    config.settings.reading_validation_mode = config.IGNORE
    ae = AE(AET)
    ae.maximum_pdu_size = 0
    for cx in (Verification, FIND, GET, MOVE):
        ae.add_supported_context(cx)
    ae.add_supported_context(UltrasoundImageStorage, [RLELossless], scp_role=True, scu_role=True)
    ae.add_requested_context(UltrasoundImageStorage, [RLELossless])

    def study_row(i: int, uid) -> Dataset:
        d = Dataset()
        d.QueryRetrieveLevel = "STUDY"
        d.SpecificCharacterSet = "ISO_IR 192"
        d.StudyInstanceUID = uid
        d.PatientID = f"HOSTILE{i:06d}"
        d.PatientName = "HOSTILE^PEER"
        d.StudyDate = "20250101"
        d.StudyTime = "120000"
        d.StudyDescription = "flood row"
        d.ModalitiesInStudy = "US"
        d.NumberOfStudyRelatedInstances = "1"
        return d

    def handle_find(event):
        q = event.identifier
        level = str(q.get("QueryRetrieveLevel", ""))
        if args.mode == "flood":
            for i in range(args.count):
                if event.is_cancelled and not args.ignore_cancel:
                    yield 0xFE00, None
                    return
                yield 0xFF00, study_row(i, f"1.2.826.0.1.3680043.8.498.9.{i + 1}")
        elif args.mode == "control":
            d = study_row(1, "1.2.826.0.1.3680043.8.498.9.1")
            d.StudyDescription = CONTROL_TEXT
            d.PatientID = "ID\x1b[31mRED"
            d.ModalitiesInStudy = "US\rXX"
            d.StudyDate = "2025\n0101"
            yield 0xFF00, d
            yield 0xFF00, study_row(2, "1.2.\x1b[2J3")  # a UID with an ESC in it: not a UID
        elif args.mode == "multi":
            d = study_row(1, ["1.2.826.0.1.3680043.8.498.9.1", "1.2.826.0.1.3680043.8.498.9.2"])
            yield 0xFF00, d
            yield 0xFF00, study_row(2, "..")
            yield 0xFF00, study_row(3, "")
            good = study_row(4, "1.2.826.0.1.3680043.8.498.9.4")
            good.ModalitiesInStudy = ["US", "SR"]
            good.StudyDescription = "good"
            yield 0xFF00, good
        elif args.mode in ("paths", "partial") and level == "IMAGE":
            for k in range(1 if args.mode == "paths" else 2):
                d = Dataset()
                d.QueryRetrieveLevel = "IMAGE"
                d.StudyInstanceUID = q.StudyInstanceUID
                d.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.9.100"
                d.SOPInstanceUID = args.sop if k == 0 else args.sop + "2"
                d.SOPClassUID = UltrasoundImageStorage
                yield 0xFF00, d
        yield 0x0000, None

    def instance() -> Dataset:
        ds = pydicom.dcmread(SOURCE)
        ds.StudyInstanceUID = args.study
        ds.SeriesInstanceUID = args.series
        ds.SOPInstanceUID = args.sop
        ds.file_meta.MediaStorageSOPInstanceUID = args.sop
        return ds

    def failure() -> Dataset:
        st = Dataset()
        st.Status = args.status
        st.ErrorComment = args.comment
        return st

    def handle_get(event):
        if args.mode == "partial":
            yield 2
            yield 0xFF00, instance()
            yield failure(), None
            return
        yield 1
        yield 0xFF00, instance()

    def handle_move(event):
        yield HOST, args.move_port
        if args.mode == "partial":
            yield 2
            yield 0xFF00, instance()
            yield failure(), None
            return
        yield 1
        yield 0xFF00, instance()

    seen: dict[str, int] = {}

    def handle_store(event):
        uid = str(event.request.AffectedSOPInstanceUID)
        seen[uid] = seen.get(uid, 0) + 1
        if uid.endswith(".2") or (uid.endswith(".1") and seen[uid] == 1):
            event.assoc.abort()  # no C-STORE response: the association just ends
            return 0xA700
        return 0x0000

    ae.start_server(
        (HOST, args.port),
        block=True,
        evt_handlers=[(evt.EVT_C_FIND, handle_find), (evt.EVT_C_GET, handle_get), (evt.EVT_C_MOVE, handle_move),
                      (evt.EVT_C_STORE, handle_store)],
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=("flood", "control", "multi", "paths", "partial", "drop"), required=True)
    ap.add_argument("--status", type=lambda v: int(v, 0), default=0xA702)
    ap.add_argument("--comment", default="Cannot transcode from JPEG 2000")
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--ignore-cancel", action="store_true")
    ap.add_argument("--study", default="..")
    ap.add_argument("--series", default="..")
    ap.add_argument("--sop", default="1.2.826.0.1.3680043.8.498.9.101")
    ap.add_argument("--move-port", type=int, default=0)
    _serve(ap.parse_args(argv))


class HostilePeer:
    """A running hostile SCP process (``port``, ``aet``); :meth:`stop` kills it by PID."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.aet = AET

    def start(self, mode: str, *extra: str) -> HostilePeer:
        from orthanc_peer import free_port

        self.port = free_port()
        with open(self.workdir / "hostile.log", "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__)), "--port", str(self.port), "--mode", mode, *extra],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hostile SCP exited: {(self.workdir / 'hostile.log').read_text()[-800:]}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("hostile SCP did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


if __name__ == "__main__":
    main()
