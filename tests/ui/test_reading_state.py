"""Per-image reading state: measure, leave, come back, restart -- the image is as the reader
left it; a corrupt or foreign state file gives the defaults and a log line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import drag, image_point_to_viewport, open_and_wait, ramp, write_cr
from PySide6 import QtCore

from cxrviewer.core.types import WindowPreset
from cxrviewer.ui.reading.reading_state import (
    ReadingState,
    ReadingStateStore,
    StateKey,
    content_hash,
)


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    """Build real main windows whose user data dir is this test's own (so a 'restart' is a new
    MainWindow reading the same folder)."""
    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(tmp_path / "userdata"))
    made = []

    def make():
        from cxrviewer.ui.app import create_window

        w = create_window()
        qtbot.addWidget(w)
        w.resize(1200, 800)
        w.show()
        qtbot.waitExposed(w)
        made.append(w)
        return w

    yield make
    for w in made:
        w.shutdown()
        w.close()


@pytest.fixture
def two_images(tmp_path) -> Path:
    d = tmp_path / "series"
    d.mkdir()
    for i in range(2):
        write_cr(d / f"img{i + 1}.dcm", ramp(80, 60, seed=i), pixel_spacing=(0.2, 0.25),
                 window=(1500.0, 2000.0), instance=i + 1)
    return d


def _goto(qtbot, w, action):
    with qtbot.waitSignal(w.imageLoaded, timeout=10000):
        action.trigger()


def _snapshot(w):
    c = w.canvas
    v = c.view_state()
    centre, zoom = c.center_zoom()
    return {
        "path": w.current_image.path,
        "window": c.window(),
        "view": (v.rotation, v.flip_h, v.flip_v, v.invert),
        "invert_action": w.act_invert.isChecked(),
        "fit": c.is_fit(),
        "centre": centre,
        "zoom": zoom,
        "rulers": [(*m.points(), m.text()) for m in w.measure_tools.measurements if m.kind == "ruler"],
        "measurements": [(m.kind, m.points(), m.text()) for m in w.measure_tools.measurements if m.kind != "ruler"],
    }


def _read_like_a_reader(qtbot, w):
    """Measure with the ruler tool (a real drag), set a window, rotate, flip, invert, zoom and pan."""
    c = w.canvas
    w.tool_actions["ruler"].trigger()
    a = image_point_to_viewport(c, 10, 12)
    b = image_point_to_viewport(c, 40, 60)
    drag(c, QtCore.Qt.MouseButton.LeftButton, a, b)
    assert [m.kind for m in w.measure_tools.measurements] == ["ruler"]
    c.set_window(1234.0, 567.0)
    w.act_rot_cw.trigger()
    w.act_flip_h.trigger()
    w.act_invert.trigger()
    c.set_center_zoom(20.0, 30.0, 3.0)
    assert not c.is_fit()
    w.measure_tools.add("angle", [(50, 10), (20, 20), (30, 60)])
    w.measure_tools.add("ellipse", [(5, 5), (30, 25)])


def _same(a, b):
    assert a["path"] == b["path"]
    assert a["window"] == pytest.approx(b["window"])
    assert a["view"] == b["view"] and a["invert_action"] == b["invert_action"]
    assert a["fit"] == b["fit"]
    if not a["fit"]:  # fitted, the zoom follows the window's size
        assert a["zoom"] == pytest.approx(b["zoom"], rel=1e-3)
        assert a["centre"] == pytest.approx(b["centre"], abs=0.05)
    assert len(a["rulers"]) == len(b["rulers"])
    for (p0, p1, t), (q0, q1, u) in zip(a["rulers"], b["rulers"], strict=True):
        assert p0 == pytest.approx(q0) and p1 == pytest.approx(q1) and t == u
    assert [(k, t) for k, _p, t in a["measurements"]] == [(k, t) for k, _p, t in b["measurements"]]
    for (_k, p, _t), (_k2, q, _u) in zip(a["measurements"], b["measurements"], strict=True):
        assert np.allclose(p, q, atol=1e-6)


def test_measure_pgdown_pgup_restores_everything(qtbot, make_window, two_images):
    w = make_window()
    open_and_wait(qtbot, w, two_images)
    _read_like_a_reader(qtbot, w)
    before = _snapshot(w)
    assert "mm" in before["rulers"][0][2] and len(before["measurements"]) == 2
    _goto(qtbot, w, w.act_next)
    # the next image has its own (default) state, not the first one's
    assert w.model.active.measurements == () and w.canvas.view_state().rotation == 0 and w.canvas.is_fit()
    assert w.measure_tools.measurements == []
    assert not w.act_invert.isChecked()
    _goto(qtbot, w, w.act_prev)
    _same(_snapshot(w), before)


def test_state_survives_a_restart(qtbot, make_window, two_images):
    w = make_window()
    open_and_wait(qtbot, w, two_images)
    _read_like_a_reader(qtbot, w)
    before = _snapshot(w)
    w.shutdown()  # what closing the window does: the pending state is written
    files = list((Path(w.reading_state.store.folder)).glob("*.json"))
    assert len(files) == 1
    d = json.loads(files[0].read_text())
    assert d["key"]["sop_instance_uid"] == w.current_image.header.sop_instance_uid
    assert d["key"]["content"] == content_hash(w.current_image)

    w2 = make_window()
    open_and_wait(qtbot, w2, two_images)
    _same(_snapshot(w2), before)


def test_reset_restores_defaults_and_forgets_the_view(qtbot, make_window, two_images):
    w = make_window()
    open_and_wait(qtbot, w, two_images)
    c = w.canvas
    default_window = c.window()
    c.set_window(999.0, 111.0)
    w.act_rot_cw.trigger()
    c.set_center_zoom(20.0, 30.0, 2.0)
    w.reading_state.flush()
    assert list(w.reading_state.store.folder.glob("*.json"))
    w.act_reset.trigger()
    assert c.window() == pytest.approx(default_window) and c.view_state().rotation == 0 and c.is_fit()
    w.reading_state.flush()
    # the defaults need no file
    assert not list(w.reading_state.store.folder.glob("*.json"))
    _goto(qtbot, w, w.act_next)
    _goto(qtbot, w, w.act_prev)
    assert c.window() == pytest.approx(default_window) and c.view_state().rotation == 0 and c.is_fit()


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00", json.dumps({"format": "something-else"}).encode(),
                                     None])
def test_corrupt_or_foreign_state_file_gives_defaults_and_a_log_line(qtbot, make_window, two_images, caplog, content):
    w = make_window()
    open_and_wait(qtbot, w, two_images)
    default = _snapshot(w)
    img = w.current_image
    key = StateKey.of(img)
    path = w.reading_state.store.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:  # a well-formed state of another image, under this image's name
        other = StateKey(key.sop_instance_uid, "0" * 64, 0)
        content = json.dumps(ReadingState(rotation=1, rulers=[(1, 2, 3, 4)]).to_json(other)).encode()
    _goto(qtbot, w, w.act_next)
    path.write_bytes(content)  # while the reader is on the other image
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cxrviewer.ui.reading.reading_state"):
        _goto(qtbot, w, w.act_prev)
    _same(_snapshot(w), default)
    lines = [r.getMessage() for r in caplog.records if r.name == "cxrviewer.ui.reading.reading_state"]
    assert len(lines) == 1 and str(path) in lines[0] and "ignored" in lines[0], lines


def test_two_files_sharing_a_uid_never_share_state(qtbot, make_window, tmp_path):
    d = tmp_path / "twins"
    d.mkdir()
    a = write_cr(d / "a.dcm", ramp(64, 48, seed=1), window=(1500.0, 2000.0))
    import pydicom

    ds = pydicom.dcmread(a)
    ds.PixelData = ramp(64, 48, seed=2).astype("<u2").tobytes()
    ds.InstanceNumber = 2
    ds.save_as(d / "b.dcm")
    w = make_window()
    open_and_wait(qtbot, w, d)
    assert w.current_image.header.sop_instance_uid == ds.SOPInstanceUID
    w.act_rot_cw.trigger()
    _goto(qtbot, w, w.act_next)
    assert w.current_image.header.sop_instance_uid == ds.SOPInstanceUID
    assert w.canvas.view_state().rotation == 0  # same UID, other pixels: its own state


def test_status_bar_drops_the_previous_images_mm_on_an_uncalibrated_image(qtbot, make_window, tmp_path):
    d = tmp_path / "mixed"
    d.mkdir()
    write_cr(d / "a.dcm", ramp(), pixel_spacing=(0.2, 0.2), instance=1)
    write_cr(d / "b.dcm", ramp(seed=3), instance=2)  # no spacing at all
    w = make_window()
    open_and_wait(qtbot, w, d)
    w.canvas.probed.emit(w.canvas.probe_at(10.5, 10.5))
    assert "mm" in w.probe_label.text()
    _goto(qtbot, w, w.act_next)
    assert w.current_image.geometry is None
    assert "mm" not in w.probe_label.text()
    w.canvas.probed.emit(w.canvas.probe_at(10.5, 10.5))
    assert "row 10" in w.probe_label.text() and "mm" not in w.probe_label.text()


def test_store_round_trip_and_validation(tmp_path):
    store = ReadingStateStore(tmp_path)
    key = StateKey("1.2.3", "ab" * 32, 2)
    st = ReadingState(window=WindowPreset("User", 10.0, 20.0, "LINEAR", "user"), rotation=3, flip_v=True,
                      invert=True, center=(1.5, 2.5), zoom=0.75, rulers=[(0.0, 1.0, 2.0, 3.5)],
                      measurements=[("angle", [(1.0, 2.0), (3.0, 4.0), (5.0, 6.5)])])
    store.save(key, st)
    assert store.load(key) == st
    assert store.load(StateKey("1.2.3", "ab" * 32, 1)) is None  # another frame: nothing stored
    d = json.loads(store.path(key).read_text())
    d["zoom"]["zoom"] = -1  # a negative zoom is refused
    store.path(key).write_text(json.dumps(d))
    assert store.load(key) is None
    store.save(key, ReadingState())
    assert not store.path(key).exists()
