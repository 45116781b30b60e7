"""The review model validates when built; protocols are editable data files."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from mdtviewer.infra import paths
from mdtviewer.sr import protocols
from mdtviewer.sr.model import ImageComment, ImageRating, Person, Review, Verifier, ViewCheck
from sr_helpers import preceptorship, second_opinion

STUDY = "1.2.826.0.1.3680043.8.498.1"
IMG = "1.2.826.0.1.3680043.8.498.2"


def base(**kw) -> Review:
    d = dict(kind="second-opinion", author=Person("Reader^Rita", "second-reader"), study_instance_uid=STUDY)
    d.update(kw)
    return Review(**d)


@pytest.mark.parametrize("kw, message", [
    ({"kind": "audit"}, "unknown review kind"),
    ({"study_instance_uid": "1.2.abc"}, "not a valid DICOM UID"),
    ({"agreement": "sort-of"}, "unknown agreement"),
    ({"agreement_reason": "why"}, "without an agreement"),
    ({"outcome": "competent"}, "second opinion has no"),
    ({"author": Person("Tina^Trainee", "trainee")}, "cannot be written by a trainee"),
    ({"verifier": Verifier("Reader^Rita", "Trust")}, "without an agreement grade"),
    ({"predecessor_sop_instance_uid": "x"}, "predecessor"),
])
def test_invalid_second_opinion_raises_one_line(kw, message):
    with pytest.raises(ValueError, match=message) as exc:
        base(**kw)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("factory, message", [
    (lambda: Person("", "trainer"), "needs a name"),
    (lambda: Person("A^B", "boss"), "unknown role"),
    (lambda: Person("A\\B", "trainer"), "backslash"),
    (lambda: Verifier("A^B", ""), "organisation"),
    (lambda: Verifier("A^B", "Org", "yesterday"), "YYYYMMDDHHMMSS"),
    (lambda: ViewCheck("R-ICA-PW", True), "not a valid DICOM UID"),
    (lambda: ViewCheck("R-ICA-PW", False, IMG), "marked missing"),
    (lambda: ViewCheck("a view id that is far too long", False), "1-16"),
    (lambda: ImageRating(IMG, None, "superb"), "unknown image quality"),
    (lambda: ImageComment(IMG, None, "   "), "needs some text"),
    (lambda: ImageComment(IMG, 0, "x"), "whole numbers from 1"),
    (lambda: ImageComment(IMG, True, "x"), "whole numbers from 1"),
])
def test_parts_validate(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_preceptorship_rules():
    p = dict(kind="preceptorship", author=Person("Trainer^T", "trainer"), study_instance_uid=STUDY)
    Review(**p)  # an empty draft is fine
    with pytest.raises(ValueError, match="not an agreement"):
        Review(**p, agreement="agree")
    with pytest.raises(ValueError, match="without the protocol"):
        Review(**p, views=[ViewCheck("R-ICA-PW", False)])
    with pytest.raises(ValueError, match="listed twice"):
        Review(**p, protocol="carotid-duplex", views=[ViewCheck("R-ICA-PW", False)] * 2)
    with pytest.raises(ValueError, match="trainee's role"):
        Review(**p, trainee=Person("X^Y", "trainer"))
    with pytest.raises(ValueError, match="without naming the trainee"):
        Review(**p, outcome="competent", verifier=Verifier("Trainer^T", "Trust"))


def test_dict_round_trip():
    for r in (second_opinion(), preceptorship()):
        d = json.loads(json.dumps(r.to_dict()))
        assert Review.from_dict(d) == r
    with pytest.raises(ValueError, match="malformed review"):
        Review.from_dict({"kind": "second-opinion"})


def test_five_builtin_protocols_with_sane_views():
    ps = protocols.load_protocols()
    assert set(ps) >= {
        "carotid-duplex",
        "lower-limb-arterial",
        "lower-limb-venous-reflux",
        "aaa-surveillance",
        "upper-limb-avf",
    }
    for p in ps.values():
        assert len(p.required_views) >= 6, p.id
        assert len({v.id for v in p.views}) == len(p.views)
        assert all(len(v.id) <= 16 and len(v.label) <= 64 for v in p.views)
    carotid = ps["carotid-duplex"]
    assert {"R-ICA-PW", "L-ICA-PW", "R-VA-PW", "L-VA-PW"} <= {v.id for v in carotid.required_views}
    assert ps["aaa-surveillance"].view("AO-MAX-TS").required
    assert "reflux" in ps["lower-limb-venous-reflux"].view("SFJ-REFLUX").label.lower()


def test_department_protocol_overrides_builtin_without_code_changes():
    d = paths.home() / "protocols"
    d.mkdir()
    (d / "carotid.json").write_text(
        json.dumps(
            {"id": "carotid-duplex", "name": "Our carotid", "views": [{"id": "ICA-ONLY", "label": "ICA spectral"}]}
        )
    )
    (d / "dvt.json").write_text(
        json.dumps(
            {
                "id": "dvt-leg",
                "name": "DVT",
                "views": [{"id": "CFV-COMP", "label": "CFV compression", "required": False}],
            }
        )
    )
    ps = protocols.load_protocols()
    assert [v.id for v in ps["carotid-duplex"].views] == ["ICA-ONLY"]
    assert ps["dvt-leg"].views[0].required is False
    assert protocols.get_protocol("dvt-leg").name == "DVT"
    with pytest.raises(ValueError, match="unknown protocol 'nope'"):
        protocols.get_protocol("nope")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"id": "x", "name": "X", "views": []}, "non-empty list"),
        ({"id": "x", "name": "X", "views": [{"id": "A" * 17, "label": "a"}]}, "1-16"),
        ({"id": "x", "name": "X", "views": [{"id": "A", "label": "a" * 65}]}, "64 characters"),
        ({"id": "x", "name": "X", "views": [{"id": "A", "label": "a"}, {"id": "A", "label": "b"}]}, "used twice"),
        ({"name": "X", "views": [{"id": "A", "label": "a"}]}, "'id'"),
    ],
)
def test_broken_protocol_file_is_named_with_the_problem(tmp_path, data, message):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message) as exc:
        protocols.load_protocol_file(f)
    assert str(exc.value).startswith("bad.json: ")


def test_signed_review_checks_stay_when_replacing():
    r = preceptorship()
    with pytest.raises(ValueError):
        replace(r, trainee=None)
