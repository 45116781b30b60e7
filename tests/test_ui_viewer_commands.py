"""Issue 15.3/15.6 in the real window, on corpus files read in place: K marks the frame on screen as a key
image (a KOS written in the study, listed in the report panel, marked in the browser, sent to the review
node on a real Orthanc); window/level presets on a grey image (refused on colour); F11 full screen.

Waits use qtbot's event loops only (see tests/test_ui_report_panel.py on processEvents)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from sr_helpers import CINE
from ui_steps import open_and_show

pytestmark = [pytest.mark.gui, pytest.mark.filterwarnings("ignore::UserWarning")]

GREY = "us_philips_epiq7c_mono2_jpeg_lossless_sv1.dcm"  # MONOCHROME2, 8 bits, Window 127/254 in the file
COLOUR = "us_ge_logiq700_rgb_explicit_le.dcm"




@pytest.mark.orthanc
def test_k_marks_the_frame_on_screen_lists_marks_and_sends_it(qtbot, window, orthanc_peer_factory):
    from mdtviewer.infra import settings
    from mdtviewer.pacs import nodes
    from orthanc_peer import HOST, OUR_AET

    peer = orthanc_peer_factory(load=False)
    nodes.add_node(nodes.PacsNode("review-pacs", peer.aet, HOST, peer.dicom_port, calling_aet=OUR_AET,
                                  connect_timeout=3, acse_timeout=5, dimse_timeout=10), replace=True)
    settings.set_section("reviewer", {"name": "Łukasz Żółć", "send_to": "review-pacs"})
    vp = open_and_show(qtbot, window, [CINE])
    cine = pydicom.dcmread(CINE, stop_before_pixels=True)
    vp.set_frame(6)
    qtbot.waitUntil(lambda: vp.shown_frame() == 6, timeout=10_000)
    assert cine.SOPInstanceUID not in window.browser.key_uids
    with qtbot.waitSignal(window.commands.keyImageSaved, timeout=30_000) as sig:
        window.action("tools.key_image").trigger()  # K
    path, message = Path(sig.args[0]), sig.args[1]
    assert message == "Key image frame 7 saved (Of Interest); stored on review-pacs"
    ds = pydicom.dcmread(path)
    assert ds.StudyInstanceUID == cine.StudyInstanceUID and ds.ConceptNameCodeSequence[0].CodeValue == "113000"
    ref = next(it for it in ds.ContentSequence if it.ValueType == "IMAGE").ReferencedSOPSequence[0]
    assert (ref.ReferencedSOPInstanceUID, int(ref.ReferencedFrameNumber)) == (cine.SOPInstanceUID, 7)
    assert str(ds.SOPInstanceUID) in peer.sop_instance_uids()  # sent through the review path
    # marked in the browser; listed in the report panel
    assert cine.SOPInstanceUID in window.browser.key_uids
    panel = window.report_panel
    qtbot.waitUntil(lambda: any(e.sop_instance_uid == ds.SOPInstanceUID for e in panel.entries()), timeout=15_000)
    # Shift+K: For Teaching, another document; the first is not altered
    before = path.read_bytes()
    with qtbot.waitSignal(window.commands.keyImageSaved, timeout=30_000) as sig2:
        window.action("tools.key_image_teaching").trigger()
    teaching = pydicom.dcmread(sig2.args[0])
    assert teaching.ConceptNameCodeSequence[0].CodeMeaning == "For Teaching"
    assert teaching.SOPInstanceUID != ds.SOPInstanceUID and path.read_bytes() == before


def test_k_with_no_pacs_chosen_keeps_the_file_and_says_so(qtbot, window, testdata):
    open_and_show(qtbot, window, [testdata / COLOUR])
    with qtbot.waitSignal(window.commands.keyImageSaved, timeout=30_000) as sig:
        window.action("tools.key_image").trigger()
    assert sig.args[1] == "Key image saved (Of Interest); kept on this computer (no PACS chosen for reviews)"
    assert Path(sig.args[0]).is_file()


def test_k_with_nothing_on_screen_is_refused(qtbot, window):
    with qtbot.waitSignal(window.commands.keyImageFailed, timeout=5_000) as sig:
        window.action("tools.key_image").trigger()
    assert sig.args == ["no image on screen"]


def test_window_presets_on_a_grey_image_and_refused_on_colour(qtbot, window, testdata):
    vp = open_and_show(qtbot, window, [testdata / GREY])
    assert not vp.loaded.is_color and vp.loaded.default_window == (127.0, 254.0)
    shown: dict[str, np.ndarray] = {}
    for name, want in (("full", (127.0, 254.0)), ("contrast", (127.0, 127.0)), ("soft", (127.0, 381.0))):
        window.action(f"view.window.{name}").trigger()
        assert vp.window_level == pytest.approx(want)
        qtbot.waitUntil(lambda: vp.shows_window_level() and vp.shown_frame() is not None, timeout=10_000)
        shown[name] = vp.displayed_array().copy()
    # a narrower window saturates more pixels, a wider one fewer
    sat = {k: int(np.count_nonzero((a == 0) | (a == 255))) for k, a in shown.items()}
    assert sat["contrast"] > sat["full"] > sat["soft"]
    window.action("view.reset_window").trigger()
    assert vp.window_level is None

    window.set_layout(1, 2)
    colour = window.viewports[1]
    window.set_current_viewport(colour)
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(testdata / COLOUR)])
    uid = str(pydicom.dcmread(testdata / COLOUR, stop_before_pixels=True).SeriesInstanceUID)
    window.show_series(uid, viewport=colour)
    qtbot.waitUntil(lambda: colour.loaded is not None and colour.loaded.is_color, timeout=20_000)
    assert window.commands.window_preset("contrast") is False
    assert colour.window_level is None
    assert "colour" in window.statusBar().currentMessage()


def test_f11_full_screen_without_an_mdt_session(qtbot, window):
    from PySide6.QtCore import Qt

    a = window.action("view.full_screen")
    assert a.shortcut().toString() == "F11" and window.presenter.session is None and not window.presenter.active
    a.trigger()
    qtbot.waitUntil(lambda: bool(window.windowState() & Qt.WindowState.WindowFullScreen), timeout=5_000)
    assert a.isChecked() and window.menuBar().isVisible()
    a.trigger()
    qtbot.waitUntil(lambda: not window.windowState() & Qt.WindowState.WindowFullScreen, timeout=5_000)
    assert not a.isChecked()


def _person_observer(ds) -> str:
    return next((str(it.PersonName) for it in ds.ContentSequence
                 if it.ValueType == "PNAME" and it.ConceptNameCodeSequence[0].CodeValue == "121008"), "")


def test_k_names_the_reviewer_profile_not_the_last_review_author(qtbot, window, testdata):
    """The person who marks a key image is the reviewer profile, as in every record we write; the name
    remembered for the last review's author (another person at a shared workstation) is never used."""
    from mdtviewer.infra import settings
    from sr_helpers import sign_as

    settings.set_section("reviewer", {"name": "Other^Person"})
    open_and_show(qtbot, window, [testdata / COLOUR])
    with qtbot.waitSignal(window.commands.keyImageSaved, timeout=30_000) as sig:
        window.action("tools.key_image").trigger()
    assert _person_observer(pydicom.dcmread(sig.args[0])) == ""  # no profile: no person named
    sign_as("Okafor^Ada")
    with qtbot.waitSignal(window.commands.keyImageSaved, timeout=30_000) as sig:
        window.action("tools.key_image").trigger()
    assert _person_observer(pydicom.dcmread(sig.args[0])) == "Okafor^Ada"
