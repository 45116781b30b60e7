"""Per-scanner masking templates (issue 10 item 2): stored in settings, one keep area per
Manufacturer + Model + Rows + Columns, used by privacy mode and by export alike."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from mdtviewer.imaging import masking
from mdtviewer.imaging.pixels import FrameSource
from mdtviewer.imaging.templates import SECTION, ScannerKey, Template, TemplateStore
from mdtviewer.infra import paths, settings

GE = "us_ge_logiq700_rgb_explicit_le.dcm"  # 320x240, no US regions, hospital name burned in top left
SIEMENS = "us_siemens_s2000_rgb_explicit_le.dcm"  # has US regions
#: the GE LOGIQ 700 image area, drawn once on the corpus image (inclusive bounds)
GE_KEEP = (4, 50, 314, 167)


@pytest.fixture(autouse=True)
def _fresh_plans():
    masking.clear_plan_cache()
    yield
    masking.clear_plan_cache()


def _ge_template() -> Template:
    return Template(ScannerKey("G.E. Medical Systems", "LOGIQ 700", 240, 320), rects=(GE_KEEP,), note="room 3")


def test_none_shipped_and_a_saved_template_round_trips_through_the_settings_file(testdata):
    store = TemplateStore()
    assert store.all() == []  # a department's statement about its own scanners: nothing by default
    assert settings.load().get(SECTION) in (None, [])
    store.save(_ge_template())
    on_disk = json.loads(paths.settings_file().read_text(encoding="utf-8"))[SECTION]
    assert on_disk[0]["manufacturer"] == "G.E. Medical Systems" and on_disk[0]["rects"] == [list(GE_KEEP)]
    assert on_disk[0]["created"]  # when it was set
    back = TemplateStore().all()
    assert len(back) == 1 and back[0].rects == (GE_KEEP,) and back[0].note == "room 3"
    # saving for the same scanner layout replaces, never duplicates
    store.save(Template(_ge_template().key, rects=((0, 0, 10, 10),)))
    assert [t.rects for t in TemplateStore().all()] == [((0, 0, 10, 10),)]
    assert store.remove(_ge_template().key) and TemplateStore().all() == []


def test_key_is_manufacturer_model_rows_columns_ignoring_case_and_spacing(testdata):
    ds = pydicom.dcmread(testdata / GE, stop_before_pixels=True)
    key = ScannerKey.of(ds)
    assert key == ScannerKey("G.E. Medical Systems", "LOGIQ 700", 240, 320)
    assert ScannerKey("g.e.  medical systems ", "logiq 700", 240, 320).matches(key)
    assert not ScannerKey("G.E. Medical Systems", "LOGIQ 700", 480, 640).matches(key)  # another screen layout
    assert not ScannerKey("G.E. Medical Systems", "LOGIQ 7", 240, 320).matches(key)
    TemplateStore().save(_ge_template())
    # the 480x640 LOGIQ 700 files of the corpus are another layout: no template applies to them
    big = pydicom.dcmread(testdata / "us_ge_logiq700_j2k_lossless_ybr_rct.dcm", stop_before_pixels=True)
    assert TemplateStore().for_dataset(big) is None
    assert TemplateStore().for_dataset(ds) is not None


def test_bad_templates_are_refused_and_a_damaged_entry_is_ignored():
    with pytest.raises(ValueError):
        Template(ScannerKey("A", "B", 10, 10))  # no keep area at all
    with pytest.raises(ValueError):
        Template(ScannerKey("A", "B", 10, 10), rects=((5, 5, 1, 1),))
    with pytest.raises(ValueError):
        Template(ScannerKey("A", "B", 10, 10), polygons=(((0, 0), (1, 1)),))
    settings.set_section(SECTION, [{"manufacturer": "A", "rows": "x"}, _ge_template().to_json()])
    assert [t.key.model for t in TemplateStore().all()] == ["LOGIQ 700"]


def test_keep_region_order_regions_then_keep_rect_then_template(testdata):
    ge = pydicom.dcmread(testdata / GE, stop_before_pixels=True)
    siemens = pydicom.dcmread(testdata / SIEMENS, stop_before_pixels=True)
    assert masking.keep_region(ge) is None
    with pytest.raises(masking.CleanPixelError, match="template"):
        masking.keep_area(ge)
    TemplateStore().save(_ge_template())
    assert masking.keep_region(ge) == masking.KeepArea((GE_KEEP,), "template")
    assert masking.keep_region(ge, keep_rect=(1, 2, 3, 4)).source == "keep-rect"  # the user's choice this time
    # a template for the Siemens layout cannot override its own regions
    TemplateStore().save(Template(ScannerKey.of(siemens), rects=((0, 0, 5, 5),)))
    assert masking.keep_region(siemens).source == "regions"


def test_template_drives_the_privacy_screen_and_export(testdata):
    TemplateStore().save(_ge_template())
    plan = masking.privacy_plan(testdata / GE)
    assert plan.action == "mask" and plan.source == "template"
    assert "scanner template" in plan.message
    frame = FrameSource(testdata / GE).frame(0)
    shown = plan.apply(frame)
    x0, y0, x1, y1 = GE_KEEP
    outside = np.ones(frame.shape[:2], dtype=bool)
    outside[y0 : y1 + 1, x0 : x1 + 1] = False
    assert not shown[outside].any()  # the burned-in hospital (top left) is outside the template: black
    assert frame[:40, :120].any()
    assert (shown[y0 : y1 + 1, x0 : x1 + 1] == frame[y0 : y1 + 1, x0 : x1 + 1]).mean() > 0.99
    # export: Clean Pixel Data by the same template
    ds = pydicom.dcmread(testdata / GE)
    area = masking.clean_dataset_pixels(ds)
    assert area.source == "template"
    assert not ds.pixel_array[outside].any()


def test_polygon_template_keeps_only_the_fan(testdata):
    fan = ((160, 60), (300, 160), (20, 160))
    TemplateStore().save(Template(ScannerKey("G.E. Medical Systems", "LOGIQ 700", 240, 320), polygons=(fan,)))
    ds = pydicom.dcmread(testdata / GE, stop_before_pixels=True)
    keep = masking.keep_area(ds).mask(240, 320)
    assert keep[150, 160] and keep[61, 160] and keep[159, 25]
    assert not keep[70, 40] and not keep[10, 10] and not keep[200, 160]


def test_a_changed_template_is_used_at_once(testdata):
    TemplateStore().save(_ge_template())
    first = masking.privacy_plan(testdata / GE)
    TemplateStore().save(Template(_ge_template().key, rects=((0, 0, 319, 239),)))
    second = masking.privacy_plan(testdata / GE)
    assert first.show is not None and second.show is not None
    assert not first.show[0, 0] and second.show[0, 0]


def test_private_thumbnail_follows_the_template(testdata):
    """The study browser's thumbnail under privacy: a neutral tile without regions or template, the
    template's keep area once one is set."""
    from mdtviewer.ui.viewer.workers import private_thumbnail

    path = testdata / GE
    full = FrameSource(path).frame(0)
    assert private_thumbnail(path, full) is None
    TemplateStore().save(_ge_template())
    thumb = private_thumbnail(path, full)
    assert thumb is not None
    step = full.shape[1] // thumb.shape[1]
    assert not thumb[: 40 // step, : 120 // step].any()  # the hospital's corner blank
    assert thumb[60 // step : 160 // step].any()
