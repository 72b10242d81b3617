"""File -> Export as DICOM... in the real window (pytest-qt, offscreen), and reading our
objects back: an SR's stored AI result is shown for its image, a presentation state selected
in the browser is applied to its image."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from conftest import PHI, open_and_wait, ramp, show_image, write_cr
from PySide6 import QtCore, QtWidgets

from cxrviewer.dicom.common import AiResult, Measurement, ReaderView, source_dataset, write_dataset
from cxrviewer.dicom.gsps import make_gsps, read_gsps
from cxrviewer.dicom.sr import make_sr, read_measurements
from cxrviewer.dicom.validate import dciodvfy_path, validate_file
from cxrviewer.ui.dicom.dicom_objects import ExportDicomDialog


def _valid(path) -> pydicom.Dataset:
    if dciodvfy_path() is not None:
        v = validate_file(path)
        assert v.errors == (), "\n".join(v.errors)
    return pydicom.dcmread(path)


def test_export_as_dicom_dialog_writes_a_presentation_state(qtbot, viewer, tmp_path):
    assert not viewer.dicom.act_export.isEnabled()  # nothing on screen yet
    p = write_cr(tmp_path / "cr.dcm", ramp(64, 48), pixel_spacing=(0.2, 0.2), window=(1500.0, 2000.0))
    show_image(qtbot, viewer, p)
    assert viewer.dicom.act_export.isEnabled()
    c = viewer.canvas
    viewer.measure_tools.add("ruler", [(10.0, 10.0), (40.0, 50.0)])
    c.set_window(1200.0, 1800.0)
    c.rotate(1)
    c.flip_h()
    viewer.dicom.act_export.trigger()
    dlg = viewer.findChild(ExportDicomDialog)
    assert dlg is not None and dlg.isVisible()
    dlg.kind.setCurrentIndex(dlg.kind.findData("gsps"))
    out = tmp_path / "out" / "view.dcm"
    dlg.path.setText(str(out))
    with qtbot.waitSignal(viewer.dicom.exported, timeout=15000):
        dlg.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).click()
    ps = read_gsps(_valid(out))
    assert ps.applies_to(viewer.current_image.header.sop_instance_uid)
    assert (ps.window_center, ps.window_width) == (1200.0, 1800.0)
    assert (ps.rotation, ps.flip_h) == (1, True)
    (pts, label), = ps.lines
    assert np.allclose(pts, [(10, 10), (40, 50)])
    assert label == "10.0 mm"  # 30 x 40 px at 0.2 mm
    assert "Exported GSPS" in viewer.status_label.text()


def test_each_export_kind_has_its_own_name_and_nothing_is_replaced_unasked(qtbot, viewer, tmp_path, monkeypatch):
    # the reader's bug: SC, SR and GSPS all proposed one name in the home folder, and the
    # second export replaced the first without asking
    src = tmp_path / "study"
    src.mkdir()
    p = write_cr(src / "cr.dcm", ramp(64, 48), pixel_spacing=(0.2, 0.2), window=(1500.0, 2000.0))
    viewer.settings.set("export_dir", "")  # no export yet in this profile
    show_image(qtbot, viewer, p)
    viewer.measure_tools.add("ruler", [(10.0, 10.0), (40.0, 50.0)])

    def open_dialog() -> ExportDicomDialog:
        viewer.dicom.act_export.trigger()
        dlg = [d for d in viewer.findChildren(ExportDicomDialog) if d.isVisible()][-1]
        return dlg

    dlg = open_dialog()
    names = {}
    for kind in ("sc-view", "sr", "gsps", "sc-native"):
        dlg.kind.setCurrentIndex(dlg.kind.findData(kind))
        names[kind] = dlg.path.text()
    assert names == {"sc-view": str(src / "cr_sc.dcm"), "sr": str(src / "cr_sr.dcm"),
                     "gsps": str(src / "cr_gsps.dcm"), "sc-native": str(src / "cr_sc.dcm")}  # beside the source
    out = tmp_path / "exports"
    out.mkdir()
    dlg.kind.setCurrentIndex(dlg.kind.findData("gsps"))
    dlg.path.setText(str(out / "cr_gsps.dcm"))
    with qtbot.waitSignal(viewer.dicom.exported, timeout=15000):
        dlg.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).click()
    first = (out / "cr_gsps.dcm").read_bytes()
    # the next export starts in the folder last used, and asks before replacing a file there
    dlg = open_dialog()
    assert dlg.path.text() == str(out / "cr_sc.dcm")
    dlg.kind.setCurrentIndex(dlg.kind.findData("gsps"))
    asked = []
    B = QtWidgets.QMessageBox.StandardButton
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or B.No)
    dlg.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).click()
    assert asked and "cr_gsps.dcm exists" in asked[0]
    assert dlg.isVisible() and (out / "cr_gsps.dcm").read_bytes() == first  # No: nothing written
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", lambda *a, **k: B.Yes)
    with qtbot.waitSignal(viewer.dicom.exported, timeout=15000):
        dlg.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).click()
    assert (out / "cr_gsps.dcm").read_bytes() != first  # a new object (new UIDs): replaced


def test_deidentified_capture_from_the_viewer_has_no_phi(qtbot, viewer, tmp_path):
    p = write_cr(tmp_path / "cr.dcm", ramp(96, 80), pixel_spacing=(0.2, 0.2), window=(1500.0, 2000.0))
    show_image(qtbot, viewer, p)
    viewer.measure_tools.add("ruler", [(5.0, 5.0), (60.0, 70.0)])
    out = tmp_path / "sc.dcm"
    res = viewer.dicom.export("sc-native", out, anonymize=True)
    back = _valid(out)
    data = out.read_bytes()
    for v in (*PHI.values(), "20240102", "1.2.826.0.1.3680043.8.498.100"):
        assert v.encode() not in data, v
    assert (back.Rows, back.Columns) == (96, 80)
    assert back.BurnedInAnnotation == "NO" and back.PatientIdentityRemoved == "YES"
    assert any(c.keyword == "PatientName" and c.action == "replaced" for c in res.changes)


def test_sr_from_the_viewer_holds_the_rulers(qtbot, viewer, tmp_path):
    p = write_cr(tmp_path / "cr.dcm", ramp(64, 48), pixel_spacing=(0.5, 0.25))
    show_image(qtbot, viewer, p)
    viewer.model.active.add_measurement("ruler", [(0.0, 0.0), (40.0, 0.0)])
    out = tmp_path / "sr.dcm"
    viewer.dicom.export("sr", out)
    (m,) = read_measurements(_valid(out))
    assert m.values == (("Length", pytest.approx(10.0), "mm"),)  # 40 columns x 0.25 mm


def test_stored_result_is_shown_and_a_presentation_state_is_applied(qtbot, viewer, tmp_path):
    d = tmp_path / "study"
    d.mkdir()
    p = write_cr(d / "cr.dcm", ramp(64, 48), pixel_spacing=(0.2, 0.2), window=(1500.0, 2000.0))
    src = source_dataset(p)
    write_dataset(make_sr(src, AiResult(0.73, "Abnormal", 0.55, "cxr-resnet50-demo", "9.9")), d / "sr.dcm")
    view = ReaderView(900.0, 1100.0, "Reader", rotation=2, flip_v=True, invert=True,
                      measurements=(Measurement.length((3, 4), (30, 40), 9.0, "mm"),))
    write_dataset(make_gsps(src, view), d / "pr.dcm")
    with qtbot.waitSignal(viewer.dicom.storedResultShown, timeout=15000,
                          check_params_cb=lambda results: bool(results)):
        open_and_wait(qtbot, viewer, d)
    label = viewer.dicom.stored_label
    assert label.isVisible()
    assert "Stored AI result" in label.text() and "0.73" in label.text() and "9.9" in label.text()
    assert viewer.errors.errors() == []  # the SR and the PR are not "unreadable"
    assert viewer.browser.count_images() == 1
    with qtbot.waitSignal(viewer.dicom.presentationApplied, timeout=15000):
        assert viewer.browser.select_object(str(d / "pr.dcm"))
    c = viewer.canvas
    v = c.view_state()
    # 180 degrees + vertical flip is a horizontal flip
    assert (v.rotation, v.flip_h, v.flip_v) == (0, True, False)
    assert v.invert is True and viewer.act_invert.isChecked()
    assert c.window() == (900.0, 1100.0)
    assert [(m.kind, m.points()) for m in viewer.measure_tools.measurements] == [("ruler", [(3.0, 4.0), (30.0, 40.0)])]


def test_export_errors_are_one_message(qtbot, viewer, tmp_path, monkeypatch):
    p = write_cr(tmp_path / "cr.dcm", ramp(32, 32))
    show_image(qtbot, viewer, p)
    # an SR with neither an AI result nor a measurement has nothing to say
    from cxrviewer.core.errors import CxrError

    with pytest.raises(CxrError, match="nothing to report"):
        viewer.dicom.export("sr", tmp_path / "empty.dcm")
    assert not (tmp_path / "empty.dcm").exists()
    # the dialog path reports it in a message box instead of raising
    shown = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "critical", lambda *a, **k: shown.append(a[2]))
    viewer.dicom._dialog_accepted({"kind": "sr", "anonymize": False, "path": str(tmp_path / "e.dcm")})
    assert shown and "nothing to report" in shown[0]
    QtCore.QCoreApplication.processEvents()


def test_viewer_sr_round_trip_with_the_bundled_model(qtbot, tmp_path):
    """The real demo model analyses the image in the real window; the SR exported from the
    viewer holds exactly that result (for an image the gate refuses: the verdict, never a
    probability), and reopening the folder shows it as stored."""
    import json
    from pathlib import Path

    from cxrviewer.ui.common.settings import Settings
    from cxrviewer.ui.shell.main_window import MainWindow

    demo = Path(__file__).resolve().parents[2] / "resources" / "models" / "cxr-resnet50-demo"
    if not (demo / "card.json").is_file():
        pytest.skip("the bundled demo model is not in this checkout")
    card = json.loads((demo / "card.json").read_text())

    def factory(_model_dir):
        from cxrviewer.ml.inference import Engine

        return Engine.load(demo)

    w = MainWindow(Settings(str(tmp_path / "s.ini")))
    w.ai.controller.worker._factory = factory  # the worker thread loads the real model
    qtbot.addWidget(w)
    w.show()
    try:
        with qtbot.waitSignal(w.ai.controller.modelChanged, timeout=180000):
            w.ai.start()
        d = tmp_path / "study"
        d.mkdir()
        p = write_cr(d / "cr.dcm", ramp(96, 80), pixel_spacing=(0.2, 0.2), window=(1500.0, 2000.0))
        show_image(qtbot, w, p)
        w.ai.act_analyze.trigger()  # reader first: the AI runs when asked
        qtbot.waitUntil(lambda: w.ai.panel.result is not None, timeout=60000)
        live = w.ai.panel.result.prediction
        w.dicom.export("sr", d / "report.dcm")
        from cxrviewer.dicom.sr import read_ai_results

        (got,) = read_ai_results(_valid(d / "report.dcm"))
        # a 96x80 image: the gate's header rules refuse it (under 256 px a side), so the SR
        # holds the verdict and its reason but no probability and no Normal/Abnormal
        assert not live.gate.ok and got.refused
        assert got.probability_abnormal is None and got.label == ""
        assert got.ood_status == live.gate.status and got.ood_reason == live.gate.reason
        assert (got.model_name, got.model_version) == (card["name"], card["version"])
        assert got.weights_sha256 == card["weights_sha256"]
        with qtbot.waitSignal(w.dicom.storedResultShown, timeout=30000, check_params_cb=bool):
            open_and_wait(qtbot, w, d)
        assert "not scored" in w.dicom.stored_label.text()
        assert f"{live.probability_abnormal:.2f}" not in w.dicom.stored_label.text()
        assert card["version"] in w.dicom.stored_label.text()
    finally:
        w.shutdown()


def test_opening_a_presentation_state_file_applies_it_to_its_image(qtbot, viewer, tmp_path):
    d = tmp_path / "study"
    d.mkdir()
    p = write_cr(d / "cr.dcm", ramp(64, 48), pixel_spacing=(0.2, 0.2), window=(1500.0, 2000.0))
    write_cr(d / "other.dcm", ramp(64, 48, seed=3), instance=2)
    write_dataset(make_gsps(source_dataset(p), ReaderView(700.0, 900.0, rotation=1)), d / "pr.dcm")
    with qtbot.waitSignal(viewer.dicom.presentationApplied, timeout=30000) as blk:
        viewer.open_path(d / "pr.dcm")
    assert blk.args[0].applies_to(viewer.current_image.header.sop_instance_uid)
    assert str(viewer.current_image.path) == str(p)
    assert viewer.canvas.window() == (700.0, 900.0) and viewer.canvas.view_state().rotation == 1


def test_measurement_tools_go_into_the_sr_and_gsps(qtbot, viewer, tmp_path):
    """Angle, Cobb, CTR and ROI statistics drawn with the viewer's tools reach the SR with
    their units (and the GSPS as graphics); both validate."""
    from cxrviewer.core import measure as M

    p = write_cr(tmp_path / "cr.dcm", ramp(96, 80), pixel_spacing=(0.5, 0.5), slope=1.0, intercept=-1024.0,
                 rescale_type="HU", window=(0.0, 2000.0))
    img = show_image(qtbot, viewer, p)
    tools = viewer.measure_tools
    tools.add("angle", [(10.0, 10.0), (30.0, 30.0), (60.0, 30.0)])
    tools.add("cobb", [(5.0, 5.0), (40.0, 10.0), (5.0, 60.0), (40.0, 50.0)])
    tools.add("ctr", [(2.0, 70.0), (78.0, 70.0), (20.0, 80.0), (50.0, 80.0)])
    roi = tools.add("rect", [(10.0, 10.0), (30.0, 40.0)])
    viewer.dicom.export("sr", tmp_path / "sr.dcm")
    got = {m.kind: m for m in read_measurements(_valid(tmp_path / "sr.dcm"))}
    assert set(got) == {"angle", "cobb", "ctr", "roi"}
    sp = (0.5, 0.5)
    assert got["angle"].values == (("Angle", pytest.approx(M.angle_deg((30, 30), (10, 10), (60, 30), sp)), "deg"),)
    assert got["cobb"].values[0][0] == "Cobb Angle" and got["cobb"].values[0][2] == "deg"
    assert got["ctr"].values == (("Cardiothoracic Ratio", pytest.approx(30 / 76), ""),)
    st = roi.stats()
    names = {n: (v, u) for n, v, u in got["roi"].values}
    assert names["Mean"] == (pytest.approx(st.mean), "HU") and names["Area"] == (pytest.approx(st.area_mm2), "mm2")
    assert img.units == "HU"
    viewer.dicom.export("gsps", tmp_path / "pr.dcm")
    ps = read_gsps(_valid(tmp_path / "pr.dcm"))
    assert len(ps.lines) == 1 + 2 + 2 + 1  # angle polyline, two lines each for Cobb and CTR, the ROI outline


def test_presentation_state_brings_the_measurement_tools_back(qtbot, viewer, tmp_path):
    p = write_cr(tmp_path / "cr.dcm", ramp(96, 80), pixel_spacing=(0.5, 0.5))
    show_image(qtbot, viewer, p)
    tools = viewer.measure_tools
    drawn = {"angle": [(10.0, 10.0), (30.0, 30.0), (60.0, 30.0)],
             "cobb": [(5.0, 5.0), (40.0, 10.0), (5.0, 60.0), (40.0, 50.0)],
             "ctr": [(2.0, 70.0), (78.0, 70.0), (20.0, 80.0), (50.0, 80.0)],
             "rect": [(10.0, 10.0), (30.0, 40.0)],
             "ellipse": [(40.0, 40.0), (70.0, 60.0)]}
    for kind, pts in drawn.items():
        tools.add(kind, pts)
    tools.add("ruler", [(1.0, 1.0), (20.0, 1.0)])
    viewer.dicom.export("gsps", tmp_path / "pr.dcm")
    tools.clear()
    assert tools.measurements == [] and viewer.model.active.measurements == ()
    viewer.dicom.apply_presentation(read_gsps(pydicom.dcmread(tmp_path / "pr.dcm")))
    back = {m.kind: m.points() for m in tools.measurements}
    assert set(back) == {*drawn, "ruler"}
    for kind, pts in drawn.items():
        assert np.allclose(back[kind], pts, atol=1e-3), kind
    assert back["ruler"] == [(1.0, 1.0), (20.0, 1.0)]
