"""Issue 21 in the viewer: *Export as DICOM* of a de-identified capture of an ultrasound (pixels
that may carry burned-in text) is refused until the reader draws rectangles over the text with
the rectangle tool; the written SC is black there and records the regions as the reader's
assertion."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402


def _us_file(path):
    """An 8-bit ultrasound frame with a bright 'text' bar in its top-left corner."""
    from cxrviewer.core.synthetic import make_dataset, write_dataset

    rng = np.random.default_rng(3)
    a = rng.integers(40, 200, size=(48, 64)).astype(np.uint8)
    a[2:10, 2:30] = 255  # where an ultrasound writes the patient's name
    ds = make_dataset(a, patient_name="Doe^Jane", patient_id="PID-1", extra={"Modality": "US"})
    write_dataset(ds, path)
    return a


def _drag(widget, a: QtCore.QPointF, b: QtCore.QPointF) -> None:
    """A real press-move-release with the left button held (QTest cannot hold buttons on move)."""
    L, No = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.NoButton
    T = QtCore.QEvent.Type
    for etype, pos, button, buttons in ((T.MouseButtonPress, a, L, L), (T.MouseMove, (a + b) / 2, No, L),
                                        (T.MouseMove, b, No, L), (T.MouseButtonRelease, b, L, No)):
        ev = QtGui.QMouseEvent(etype, pos, widget.mapToGlobal(pos), button, buttons,
                               QtCore.Qt.KeyboardModifier.NoModifier)
        QtWidgets.QApplication.sendEvent(widget, ev)


def test_deidentified_capture_of_an_ultrasound_needs_and_gets_the_text_blanked(qtbot, tmp_path, monkeypatch):
    import pydicom

    from cxrviewer.core.errors import CxrError
    from cxrviewer.ui.app import create_window

    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(tmp_path / "data"))
    src = tmp_path / "us.dcm"
    pixels = _us_file(src)
    w = create_window()
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignals([w.scanFinished, w.imageLoaded], timeout=15000, order="none"):
        w.open_path(src)
    # without regions: refused in one line, nothing written
    with pytest.raises(CxrError, match="burned-in text"):
        w.dicom.export("sc-native", tmp_path / "refused.dcm", anonymize=True)
    assert not (tmp_path / "refused.dcm").exists()

    w.act_overlay.setChecked(False)  # no corner text: what is black is the mask alone
    dlg = w.dicom.export_dialog()
    assert dlg.mask_button is not None and not dlg.mask_button.isEnabled()  # only for a de-identified capture
    dlg.kind.setCurrentIndex(dlg.kind.findData("sc-native"))
    dlg.anonymize.setChecked(True)
    assert dlg.mask_button.isEnabled() and "(0 drawn)" in dlg.mask_button.text()
    drawn = []

    def draw():  # runs inside the rectangle tool's modal loop
        tool = QtWidgets.QApplication.activeModalWidget()
        c = tool.canvas
        _drag(c, c.to_widget(1.5, 1.5), c.to_widget(31.5, 11.5))
        drawn.extend(tool.regions)
        tool.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).click()

    QtCore.QTimer.singleShot(0, draw)
    qtbot.mouseClick(dlg.mask_button, QtCore.Qt.MouseButton.LeftButton)
    from cxrviewer.dicom.burnedin import MaskRegion

    assert drawn == [MaskRegion(1, 1, 31, 11)] and "(1 drawn)" in dlg.mask_button.text()
    out = tmp_path / "deid.dcm"
    dlg.path.setText(str(out))
    with qtbot.waitSignal(w.dicom.exported, timeout=15000):
        dlg.accept()
    ds = pydicom.dcmread(out)
    # the same capture with a region drawn away from the text: the reference (the SC carries our
    # own "NOT FOR DIAGNOSTIC USE" banner over the top rows in both)
    ref_path = tmp_path / "ref.dcm"
    w.dicom.export("sc-native", ref_path, anonymize=True, masks=[MaskRegion(40, 30, 10, 10)])

    def gray(d):
        a = d.pixel_array.astype(int)
        return a.mean(axis=2) if a.ndim == 3 else a

    arr, ref = gray(ds), gray(pydicom.dcmread(ref_path))
    assert arr.shape == ref.shape == pixels.shape  # native resolution: the region is where it was drawn
    r = (slice(1, 12), slice(1, 32))
    assert (ref[2:5, 2:30] >= 250).all()  # the 'text' is in the reference capture (above the banner)
    assert (arr[2:5, 2:30] == 0).all()  # and black where the reader drew
    diff = arr[r] != ref[r]
    assert diff.sum() >= 3 * 28 and (arr[r][diff] == 0).all()  # the banner's glyphs are the same in both
    outside = np.ones(arr.shape, bool)
    outside[r] = False
    outside[30:40, 40:50] = False
    np.testing.assert_array_equal(arr[outside], ref[outside])  # nothing else changed
    assert ds.BurnedInAnnotation == "NO" and ds.PatientIdentityRemoved == "YES"
    method = " ".join(ds.DeidentificationMethod if ds["DeidentificationMethod"].VM > 1 else [ds.DeidentificationMethod])
    assert "1,1,31,11" in method and "assertion" in method
    assert "Doe" not in str(ds.PatientName)
    w.shutdown()
    w.close()
