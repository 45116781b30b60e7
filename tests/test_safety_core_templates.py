"""HAZ-022 C3: a masking template records the scanner's Software Versions and is never applied to an image of
another version: that image is hidden with the reason until the department confirms the template for it.

The "updated scanner" is the corpus GE LOGIQ 700 still (320x240, no US regions, Software Versions R1.0.D)
copied with pydicom and its Software Versions set to R2.0.A: same Manufacturer, Model and matrix, so only
the version tells the two apart.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from mdtviewer.imaging import masking
from mdtviewer.imaging.templates import SECTION, ScannerKey, Template, TemplateStore
from mdtviewer.infra import settings

GE = "us_ge_logiq700_rgb_explicit_le.dcm"
KEEP = (20, 30, 300, 220)


@pytest.fixture
def updated_ge(tmp_path, testdata):
    ds = pydicom.dcmread(testdata / GE)
    assert str(ds.SoftwareVersions) == "R1.0.D" and "SequenceOfUltrasoundRegions" not in ds
    ds.SoftwareVersions = "R2.0.A"
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    path = tmp_path / "ge_after_update.dcm"
    ds.save_as(path, enforce_file_format=False)
    return path


def test_a_template_is_not_applied_to_another_software_version_until_confirmed(testdata, updated_ge):
    ds = pydicom.dcmread(testdata / GE, stop_before_pixels=True)
    key = ScannerKey.of(ds)  # as the template dialog reads it from the image it is drawn on
    assert key.software_version == "R1.0.D"
    TemplateStore().save(Template(key, rects=(KEEP,), note="room 3"))
    saved = settings.get_section(SECTION)
    assert saved[0]["software_versions"] == ["R1.0.D"]  # recorded in the settings file

    same = masking.privacy_plan(testdata / GE)
    assert same.action == "mask" and same.source == "template"

    other = masking.privacy_plan(updated_ge)
    assert other.hidden and other.source == ""
    assert "set for software version R1.0.D" in other.message and "R2.0.A" in other.message
    assert other.message.startswith(masking.HIDDEN_MESSAGE)
    # export with masking on by default refuses it with the same reason (written only with --no-mask)
    with pytest.raises(masking.CleanPixelError, match="set for software version R1.0.D"):
        masking.keep_area_or_detect(pydicom.dcmread(updated_ge), ocr=False)

    # the department confirms the same keep area for the new version: used for both versions from then on
    TemplateStore().confirm_version(ScannerKey.of(pydicom.dcmread(updated_ge, stop_before_pixels=True)), "R2.0.A")
    confirmed = masking.privacy_plan(updated_ge)
    assert confirmed.action == "mask" and confirmed.source == "template"
    assert masking.privacy_plan(testdata / GE).source == "template"
    assert TemplateStore().all()[0].software_versions == ("R1.0.D", "R2.0.A")
    shown = confirmed.apply(np.asarray(pydicom.dcmread(updated_ge).pixel_array))
    assert not shown[:KEEP[1]].any() and not shown[KEEP[3] + 1:].any()  # outside the keep area blanked
    assert shown[KEEP[1]:KEEP[3] + 1, KEEP[0]:KEEP[2] + 1].any()


def test_redrawn_on_the_new_version_replaces_and_saved_unchanged_merges(testdata, updated_ge):
    old_key = ScannerKey.of(pydicom.dcmread(testdata / GE, stop_before_pixels=True))
    new_key = ScannerKey.of(pydicom.dcmread(updated_ge, stop_before_pixels=True))
    store = TemplateStore()
    store.save(Template(old_key, rects=(KEEP,)))
    store.save(Template(new_key, rects=(KEEP,)))  # the same area saved from an image of the new version
    assert store.all()[0].software_versions == ("R1.0.D", "R2.0.A")
    store.save(Template(new_key, rects=((0, 40, 319, 239),)))  # redrawn: a statement about R2.0.A only
    assert store.all()[0].software_versions == ("R2.0.A",)
    assert masking.privacy_plan(updated_ge).source == "template"
    old = masking.privacy_plan(testdata / GE)
    assert old.hidden and "set for software version R2.0.A" in old.message


def test_a_template_that_names_no_version_applies_to_any(testdata, updated_ge):
    # saved before versions were recorded (no "software_versions" in its entry), e.g. copied from another machine
    settings.set_section(SECTION, [{"manufacturer": "G.E. Medical Systems", "model": "LOGIQ 700", "rows": 240,
                                   "columns": 320, "rects": [list(KEEP)], "polygons": [], "note": "",
                                   "created": ""}])
    assert TemplateStore().all()[0].software_versions is None
    assert masking.privacy_plan(updated_ge).source == "template"
    assert masking.privacy_plan(testdata / GE).source == "template"


@pytest.mark.gui
def test_the_window_hides_an_image_of_another_version_and_says_why(qtbot, window, testdata, updated_ge):
    """In the real window with privacy on: the updated scanner's image is black and the overlay names the
    version the template was set for; privacy off shows it (the hiding belongs to privacy only)."""
    TemplateStore().save(Template(ScannerKey.of(pydicom.dcmread(testdata / GE, stop_before_pixels=True)),
                                  rects=(KEEP,)))
    window.set_privacy(True)
    with qtbot.waitSignal(window.scanFinished, timeout=60_000):
        window.open_paths([str(updated_ge)])
    vp = window.viewports[0]
    qtbot.waitUntil(lambda: bool(vp.stack) and vp.is_settled() and vp.displayed_array() is not None, timeout=20_000)
    assert not vp.displayed_array().any()
    text = " ".join(" ".join(v) for v in vp.overlay_lines().values())
    assert masking.HIDDEN_MESSAGE in text and "software version R1.0.D" in " ".join(text.split())
    window.set_privacy(False)
    qtbot.waitUntil(lambda: vp.displayed_array() is not None and vp.displayed_array().any(), timeout=5_000)
