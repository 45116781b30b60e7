"""PACS nodes in settings, and the local store (no network)."""

from __future__ import annotations

import json
import time

import pydicom
import pytest

from mdtviewer.infra import paths
from mdtviewer.pacs import nodes
from mdtviewer.pacs.localstore import LocalStore
from mdtviewer.pacs.nodes import NodeError, PacsNode


def test_nodes_round_trip_through_settings(tmp_path):
    key = tmp_path / "client.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n-----END PRIVATE KEY-----\n")
    a = PacsNode("main", "PACS1", "10.0.0.5", 104, retrieve="move", listen_aet="MDTV", listen_port=11112,
                 tls_cert=str(tmp_path / "c.crt"), tls_key=str(key), tls_ca=str(tmp_path / "ca.crt"))
    b = PacsNode("backup", "PACS2", "pacs2.example", 11112)
    nodes.save_nodes([a, b])
    assert nodes.load_nodes() == [a, b]
    assert nodes.get_node("main").listen_port == 11112
    text = paths.settings_file().read_text()
    assert "SECRETSECRET" not in text  # the key is referenced by path, never copied
    assert json.loads(text)["pacs_nodes"][0]["tls_key"] == str(key)
    nodes.remove_node("backup")
    assert [n.name for n in nodes.load_nodes()] == ["main"]
    with pytest.raises(NodeError, match="no PACS node named 'nope'"):
        nodes.get_node("nope")


@pytest.mark.parametrize("kw, reason", [
    ({"called_aet": "A" * 17}, "called AE title"),
    ({"called_aet": "BAD\\AE"}, "called AE title"),
    ({"port": 70000}, "port 70000"),
    ({"retrieve": "ftp"}, "retrieve method"),
    ({"tls_cert": "/x.crt"}, "certificate and key"),
    ({"tls_key": "/x.key"}, "certificate and key"),
    ({"dimse_timeout": 0}, "response timeout 0"),
    ({"connect_timeout": -5}, "connection timeout -5"),
    ({"acse_timeout": "soon"}, "association timeout 'soon'"),
])
def test_node_validation_gives_one_line_reason(kw, reason):
    base = dict(name="n", called_aet="PACS", host="h", port=104)
    base.update(kw)
    with pytest.raises(NodeError, match=reason):
        PacsNode(**base).validate()


def test_add_node_refuses_duplicates_unless_replace():
    nodes.add_node(PacsNode("n", "A", "h", 104))
    with pytest.raises(NodeError, match="already exists"):
        nodes.add_node(PacsNode("n", "B", "h", 104))
    nodes.add_node(PacsNode("n", "B", "h", 104), replace=True)
    assert nodes.get_node("n").called_aet == "B"


def test_local_store_add_file_keeps_bytes_and_indexes(testdata, tmp_path):
    src = testdata / "us_ge_logiq700_j2k_lossless_ybr_rct.dcm"
    store = LocalStore(tmp_path / "store")
    p = store.add_file(src)
    assert p.read_bytes() == src.read_bytes()
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    assert store.has(ds.SOPInstanceUID)
    assert store.study_paths(ds.StudyInstanceUID) == [p]
    assert not store.has("1.2.3.4")
    # a file removed behind the index's back is not "had": a retry fetches it again
    p.unlink()
    assert not store.has(ds.SOPInstanceUID)
    assert store.study_paths(ds.StudyInstanceUID) == []


def test_local_store_default_root_is_user_store_dir(testdata):
    store = LocalStore()
    p = store.add_file(testdata / "us_philips_cx50_palette_rle.dcm")
    assert str(p).startswith(str(paths.store_dir()))
    assert (paths.store_dir() / "index.sqlite").is_file()


def test_local_store_add_dataset_writes_valid_file(testdata, tmp_path):
    ds = pydicom.dcmread(testdata / "us_retired_sopclass_rgb_planar.dcm")
    store = LocalStore(tmp_path)
    p = store.add_dataset(ds)
    back = pydicom.dcmread(p)
    assert back.SOPClassUID == "1.2.840.10008.5.1.4.1.1.6"
    assert back.PixelData == ds.PixelData
    assert not list(tmp_path.rglob("*.part"))  # nothing half-written left behind


def test_local_store_rejects_file_without_uids(testdata, tmp_path):
    from mdtviewer.infra.errors import MalformedHeaderError

    with pytest.raises(MalformedHeaderError):
        LocalStore(tmp_path).add_file(testdata / "bad_meta_missing_transfer_syntax.dcm")


def test_purge_removes_least_recently_used_whole_studies(testdata, tmp_path):
    store = LocalStore(tmp_path)
    files = ["us_ge_logiq700_j2k_lossless_ybr_rct.dcm", "us_ge_logiq700_rgb_explicit_le.dcm",  # one study, 2 instances
             "us_aloka_palette16_implicit_le.dcm", "usmf_hp_jpeg_ybr422_34f.dcm"]
    studies = []
    for f in files:
        store.add_file(testdata / f)
        studies.append(pydicom.dcmread(testdata / f, stop_before_pixels=True).StudyInstanceUID)
    ge, aloka, hp = studies[0], studies[2], studies[3]
    # make GE the least recently used, then HP, then Aloka
    with store._lock:
        for uid, t in ((ge, 1000.0), (hp, 2000.0), (aloka, time.time())):
            store._db.execute("UPDATE instances SET accessed=? WHERE study_instance_uid=?", (t, uid))
        store._db.commit()
    total = store.total_bytes()
    ge_size = sum(p.stat().st_size for p in store.study_paths(ge))
    with store._lock:  # study_paths marked it used; age it again
        store._db.execute("UPDATE instances SET accessed=1000 WHERE study_instance_uid=?", (ge,))
        store._db.commit()
    res = store.purge(max_bytes=total - 1)
    assert res.studies == 1 and res.instances == 2 and res.bytes == ge_size
    assert store.sop_uids(ge) == set() and not (tmp_path / ge).exists()
    assert len(store.sop_uids(hp)) == 1  # (sop_uids does not count as a use)
    # age limit: HP (accessed in 1970) goes, Aloka (now) stays; a kept study is never purged
    res = store.purge(max_age_days=30, keep=[aloka])
    assert res.studies == 1 and store.sop_uids(hp) == set()
    assert len(store.sop_uids(aloka)) == 1


def test_purge_to_limits_follows_the_saved_settings(testdata, tmp_path):
    """The cache limit a site sets (settings section local_store) is the one applied after a retrieve."""
    from mdtviewer.infra import settings
    from mdtviewer.pacs.localstore import SETTINGS_SECTION

    store = LocalStore(tmp_path)
    a, b = (store.add_file(testdata / f) for f in ("us_aloka_palette16_implicit_le.dcm", "usmf_hp_jpeg_ybr422_34f.dcm"))
    uid_a, uid_b = (pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID for p in (a, b))
    assert store.purge_to_limits().studies == 0  # defaults (20 GB, 90 days) leave a small fresh store alone
    settings.set_section(SETTINGS_SECTION, {"max_bytes": store.total_bytes() - 1, "max_age_days": 90})
    res = store.purge_to_limits(keep=[uid_a])
    assert res.studies == 1 and store.sop_uids(uid_b) == set() and len(store.sop_uids(uid_a)) == 1
    settings.set_section(SETTINGS_SECTION, {"max_bytes": None, "max_age_days": 0})
    assert store.purge_to_limits().studies == 1 and store.studies() == []


def test_outbox_queue_keeps_a_copy_and_survives_missing_node(testdata, tmp_path):
    from mdtviewer.pacs import outbox

    src = tmp_path / "review.dcm"
    src.write_bytes((testdata / "sr_enhanced_tid1500_dcmjs.dcm").read_bytes())
    item = outbox.queue(src, "nowhere", "PACS not reachable")
    src.unlink()  # the original may go: the outbox has its own copy
    [p] = outbox.pending()
    assert p.id == item.id and p.path.read_bytes() == (testdata / "sr_enhanced_tid1500_dcmjs.dcm").read_bytes()
    out = outbox.flush()  # node not configured: kept, with the reason
    assert len(out) == 1 and not out[0].ok and "no PACS node named 'nowhere'" in out[0].message
    [p] = outbox.pending()
    assert p.attempts == 2 and p.path.is_file()  # queued after a failed send (1), then this flush
