"""Start-up imports what the first frame needs and no more (issue 12.5); the rest is imported when first used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: build the window as `mdtviewer open` does, then list which heavy modules were imported
CHILD = r"""
import json, sys
from mdtviewer.ui.app import load_window

MainWindow, app_instance = load_window()
app = app_instance()
win = MainWindow()
win.show()
app.processEvents()
heavy = ["pynetdicom", "pyqtgraph", "pydicom.sr", "requests", "tqdm", "highdicom",
         "mdtviewer.ui.review.logbook_view", "mdtviewer.ui.dialogs.export_dialog",
         "mdtviewer.ui.dialogs.template_dialog", "mdtviewer.pacs.storescp"]
loaded = [m for m in heavy if m in sys.modules]
import pydicom.data.download as dl
import requests  # still importable afterwards (DICOMweb uses it)
print(json.dumps({"loaded": loaded, "pydicom_requests": dl.HAVE_REQUESTS, "requests": requests.__name__}))
win.close()
"""


def test_the_window_starts_without_the_libraries_of_screens_not_yet_opened(tmp_path, mdt_home):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, env=env,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["loaded"] == [], out
    assert out["pydicom_requests"] is False and out["requests"] == "requests"


def test_a_pacs_client_turns_identifier_logging_off_before_it_talks(orthanc):
    """pynetdicom is imported on the first association now: the client itself (not an import of
    storescp at start-up) must switch pynetdicom's identifier logging off before anything is sent."""
    import pynetdicom

    from mdtviewer.pacs.client import PacsClient
    from mdtviewer.pacs.nodes import PacsNode
    from orthanc_peer import HOST, OUR_AET

    cfg = pynetdicom._config
    cfg.LOG_RESPONSE_IDENTIFIERS = cfg.LOG_REQUEST_IDENTIFIERS = True
    try:
        with PacsClient(PacsNode("test", orthanc.aet, HOST, orthanc.dicom_port, listen_aet=OUR_AET)) as client:
            res = client.echo()
        assert res.ok, res.message
        assert cfg.LOG_RESPONSE_IDENTIFIERS is False and cfg.LOG_REQUEST_IDENTIFIERS is False
    finally:
        cfg.LOG_RESPONSE_IDENTIFIERS = cfg.LOG_REQUEST_IDENTIFIERS = False
