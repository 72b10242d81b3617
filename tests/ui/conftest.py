"""Fixtures for the viewer tests: one fixture builds the window and owns its cleanup; small
real DICOM files written with pydicom; mouse drags sent as real Qt events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402

PHI = {
    "PatientName": "Doe^Jane^Q",
    "PatientID": "PID-778899",
    "PatientBirthDate": "19511224",
    "AccessionNumber": "ACC-445566",
    "InstitutionName": "St Example Hospital",
}


def write_cr(
    path: Path,
    pixels: np.ndarray,
    *,
    pixel_spacing: tuple[float, float] | None = None,
    imager_spacing: tuple[float, float] | None = None,
    slope: float | None = None,
    intercept: float | None = None,
    rescale_type: str | None = None,
    window: tuple[float, float] | None = None,
    photometric: str = "MONOCHROME2",
    instance: int = 1,
    series_uid: str | None = None,
    study_uid: str | None = None,
    phi: dict | None = None,
) -> Path:
    """Write a real Part 10 CR image (explicit VR little endian) with the given attributes."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    for k, v in (phi or PHI).items():
        setattr(ds, k, v)
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study_uid or "1.2.826.0.1.3680043.8.498.100"
    ds.SeriesInstanceUID = series_uid or "1.2.826.0.1.3680043.8.498.200"
    ds.StudyDate = "20240102"
    ds.StudyDescription = "CHEST PA"
    ds.Modality = "CR"
    ds.ViewPosition = "PA"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance
    a = np.asarray(pixels, dtype=np.uint16)
    ds.Rows, ds.Columns = a.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if pixel_spacing:
        ds.PixelSpacing = list(pixel_spacing)
    if imager_spacing:
        ds.ImagerPixelSpacing = list(imager_spacing)
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept or 0
    if rescale_type:
        ds.RescaleType = rescale_type
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = a.astype("<u2").tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path


def ramp(rows: int = 64, cols: int = 48, seed: int = 0) -> np.ndarray:
    """A 12-bit image with structure (distinct values, no padding)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    v = 200 + 30 * x + 20 * y + rng.integers(0, 50, size=(rows, cols))
    return np.clip(v, 0, 4095).astype(np.uint16)


@pytest.fixture
def study_dir(tmp_path) -> Path:
    """Three readable images (one series) and one corrupt file."""
    d = tmp_path / "study"
    d.mkdir()
    for i in range(3):
        write_cr(d / f"img{i + 1}.dcm", ramp(64, 48, seed=i), pixel_spacing=(0.2, 0.2),
                 window=(1500.0, 2000.0), instance=i + 1)
    (d / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage" * 3)
    return d


@pytest.fixture
def viewer(qtbot):
    """The real main window, shown offscreen; closed and its workers stopped afterwards.
    Each starts as a first run would: no remembered geometry, docks or viewport layout (the
    window saves them on close, and tests must not inherit the previous test's)."""
    from cxrviewer.ui.app import create_window
    from cxrviewer.ui.common.settings import Settings

    s = Settings()
    for key in ("window/geometry", "window/state", "viewer/layout"):
        s.q.remove(key)
    s.q.sync()

    w = create_window()
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.shutdown()
    w.close()


def open_and_wait(qtbot, w, path, timeout: int = 15000):
    """Open ``path`` and wait for the scan to finish and the first image to be shown."""
    with qtbot.waitSignals([w.scanFinished, w.imageLoaded], timeout=timeout, order="none"):
        w.open_path(path)


def show_image(qtbot, w, path, timeout: int = 15000):
    """Open a single file and wait until it is on the canvas."""
    open_and_wait(qtbot, w, path, timeout)
    assert w.current_image is not None and Path(w.current_image.path) == Path(path)
    return w.current_image


def _send(widget, etype, pos, button, buttons):
    ev = QtGui.QMouseEvent(
        etype, QtCore.QPointF(pos), QtCore.QPointF(widget.mapToGlobal(pos)), button, buttons,
        QtCore.Qt.KeyboardModifier.NoModifier,
    )
    QtWidgets.QApplication.sendEvent(widget, ev)


_last_release = [0.0]


def drag(canvas, button, start: QtCore.QPoint, end: QtCore.QPoint, steps: int = 10) -> None:
    """A real press-move-release on the canvas viewport (QTest.mouseMove can't hold buttons).

    Two drags in a row are kept a double-click interval apart, as a hand would: a press right
    after a release is taken by pyqtgraph for the second click of a double click."""
    import time

    gap = QtWidgets.QApplication.doubleClickInterval() / 1000.0 + 0.05
    while time.monotonic() - _last_release[0] < gap:
        QtWidgets.QApplication.processEvents()
        time.sleep(0.01)
    vp = canvas.graphics.viewport()
    T = QtCore.QEvent.Type
    NoB = QtCore.Qt.MouseButton.NoButton
    _send(vp, T.MouseButtonPress, start, button, button)
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        _send(vp, T.MouseMove, QtCore.QPoint(round(p.x()), round(p.y())), NoB, button)
        QtWidgets.QApplication.processEvents()
    _send(vp, T.MouseButtonRelease, end, button, NoB)
    QtWidgets.QApplication.processEvents()
    _last_release[0] = time.monotonic()


def image_point_to_viewport(canvas, x: float, y: float) -> QtCore.QPoint:
    sp = canvas.image_to_scene(x, y)
    vp = canvas.graphics.mapFromScene(sp)
    return QtCore.QPoint(vp.x(), vp.y())
