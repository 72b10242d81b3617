"""*Compare with prior* in the real main window (issue 14): a folder with three studies of one
patient and one of another (real DICOM files, scanned and decoded by the real code)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import open_and_wait
from PySide6 import QtWidgets

from cxrviewer.core.priors import NO_EARLIER_STUDY
from cxrviewer.core.synthetic import chest_like, write_study_image
from cxrviewer.ui.reading.prior_compare import SHORTCUT


def three_plus_one(root: Path) -> dict[str, str]:
    """P1 in 2017, 2019, 2021 (PA, and a lateral in 2019); P2, same name, in 2021-07-01."""
    def w(sub, name, pid, uid, date, view="PA", instance=1, seed=0):
        return write_study_image(root / sub, name, patient_id=pid, study_uid=uid, date=date, view=view,
                                 instance=instance, pixels=chest_like(64, 48, seed=seed))
    return {
        "oldest": w("a", "old.dcm", "P1", "1.2.3.1", "20170105", seed=1),
        "middle_lat": w("b", "mid_lat.dcm", "P1", "1.2.3.2", "20190314", view="LL", instance=1, seed=2),
        "middle": w("b", "mid_pa.dcm", "P1", "1.2.3.2", "20190314", view="PA", instance=2, seed=3),
        "newest": w("c", "new.dcm", "P1", "1.2.3.3", "20210720", seed=4),
        "other": w("d", "other.dcm", "P2", "1.2.3.9", "20210701", seed=5),
    }


def show(qtbot, w, path: str) -> None:
    qtbot.waitUntil(lambda: not w.scanner.running(), timeout=15000)  # its thread ends after scanFinished
    if w.current_image is None or w.current_image.path != path:
        with qtbot.waitSignal(w.imageLoaded, timeout=15000):
            assert w.browser.select_path(path)
    assert w.current_image.path == path


def _compare(qtbot, w, index: int = 1, path: str | None = None) -> None:
    """Compare with prior, waiting for viewport ``index`` (showing ``path`` when given)."""
    def done(i, img):
        return i == index and (path is None or img.path == path)

    with qtbot.waitSignal(w.viewports.opened, timeout=15000, check_params_cb=done):
        w.prior_compare.action.trigger()


def test_compare_with_prior_along_one_readers_path(qtbot, viewer, tmp_path):
    """Three studies of one patient and one of another: the browser lists them newest first
    with dates; the oldest has no prior; the newest gets the middle one beside it, synced, with
    captions that follow the images; a current image in the right viewport moves left."""
    from cxrviewer.ui.browser.study_browser import COL_DATE
    from cxrviewer.ui.shell.shortcuts import key_rows

    p = three_plus_one(tmp_path)
    open_and_wait(qtbot, viewer, tmp_path)
    grid = viewer.viewports

    # the reader's bug: oldest first, and at the default width three rows read "THORAX"
    viewer.resize(1280, 720)  # the smallest screen we support, the Studies dock at its default width
    QtWidgets.QApplication.processEvents()
    b = viewer.browser
    patient = next(b.model.item(r) for r in range(b.model.rowCount()) if "P1" in b.model.item(r).text())
    dates = [patient.child(r, COL_DATE).text() for r in range(patient.rowCount())]
    assert dates == ["2021-07-20", "2019-03-14", "2017-01-05"]
    view = b.view
    assert not view.isColumnHidden(COL_DATE)
    fm = view.fontMetrics()
    left = view.header().sectionViewportPosition(COL_DATE)
    assert view.columnWidth(COL_DATE) >= fm.horizontalAdvance("2019-03-14")
    assert 0 <= left and left + view.columnWidth(COL_DATE) <= view.viewport().width()

    # the oldest study has no prior: the status says so and the layout is left as it was
    show(qtbot, viewer, p["oldest"])
    before = (grid.layout_name(), grid.sync(), grid.caption(0))
    viewer.prior_compare.action.trigger()
    assert viewer.status_label.text() == NO_EARLIER_STUDY
    assert (grid.layout_name(), grid.sync(), grid.caption(0)) == before
    assert grid.canvas(0).img.path == p["oldest"]

    # the newest: Compare with prior opens the middle study beside it
    show(qtbot, viewer, p["newest"])
    act = viewer.prior_compare.action
    assert act.shortcut().toString() == SHORTCUT and act in viewer.actions()
    assert any(r.action is act and r.shortcut for r in key_rows(viewer))  # the dialog lists it
    assert grid.layout_name() == "1x1"
    _compare(qtbot, viewer)
    assert grid.canvas(1).img.path == grid.path(1) == p["middle"]
    assert grid.layout_name() == "1x2"
    assert grid.canvas(0).img.path == p["newest"]  # the current image stays on the left
    assert grid.caption(1) == "Prior · 2019-03-14"
    assert grid.caption(0) == "Current · 2021-07-20"
    assert grid.sync() == (True, True)
    assert viewer.prior_compare.last.match.same_view  # the PA, not the lateral of that study

    # the comparison is synced: window and zoom follow the current image
    left_c, right_c = grid.canvas(0), grid.canvas(1)
    assert viewer.canvas is left_c  # the current image stays the active one
    (c0, w0), (c1, w1) = left_c.window(), right_c.window()
    left_c.set_window(c0 + 100.0, w0 + 40.0)  # the reader moves the current image's window
    assert right_c.window() == pytest.approx((c1 + 100.0, w1 + 40.0))
    left_c.zoom_by(2.0)
    assert grid.relative_view(right_c)[2] == pytest.approx(grid.relative_view(left_c)[2], rel=1e-3)
    # another image dropped into the right viewport: the caption describes it (from the model)
    with qtbot.waitSignal(grid.opened, timeout=15000, check_params_cb=lambda i, img: i == 1):
        grid.open(1, p["oldest"])
    assert grid.caption(1) == "Prior · 2017-01-05" and grid.caption(0).startswith("Current")
    with qtbot.waitSignal(grid.opened, timeout=15000, check_params_cb=lambda i, img: i == 1):
        grid.open(1, p["other"])  # another patient: no relation to tell
    assert grid.caption(1) == "" and grid.caption(0) == ""

    # the reader's bug: after the left viewport moved to an older study, the right one still
    # said "Prior · 2019-03-14" though it was now the newer image
    _compare(qtbot, viewer, 1, p["middle"])
    assert grid.caption(1) == "Prior · 2019-03-14"
    show(qtbot, viewer, p["oldest"])  # PgDown/click in the browser: the left viewport moves on
    assert grid.path(0) == p["oldest"] and grid.path(1) == p["middle"]
    assert grid.caption(1) == "Later · 2019-03-14" and grid.caption(0) == "Current · 2017-01-05"
    assert viewer.model.caption(1) == grid.caption(1) and viewer.model.relation(1) == "later"

    # the current image in the right viewport: Compare with prior moves it to the left
    grid.set_active(1)
    show(qtbot, viewer, p["middle"])
    assert grid.path(1) == p["middle"]
    _compare(qtbot, viewer, 1, p["oldest"])
    assert grid.active == 0 and grid.path(0) == p["middle"] and viewer.current_image.path == p["middle"]
    assert grid.caption(1) == "Prior · 2017-01-05"


def two_views_twice(root: Path) -> dict[str, str]:
    """P1: a PA and a lateral in 2024, and in 2019."""
    def w(sub, name, uid, date, view, instance, seed):
        return write_study_image(root / sub, name, patient_id="P1", study_uid=uid, date=date, view=view,
                                 instance=instance, pixels=chest_like(64, 48, seed=seed))

    return {"pa": w("now", "pa.dcm", "1.2.9.2", "20240105", "PA", 1, 1),
            "ll": w("now", "ll.dcm", "1.2.9.2", "20240105", "LL", 2, 2),
            "old_pa": w("old", "pa.dcm", "1.2.9.1", "20190314", "PA", 1, 3),
            "old_ll": w("old", "ll.dcm", "1.2.9.1", "20190314", "LL", 2, 4)}


def test_hanging_protocols_and_retrieved_priors(qtbot, viewer, tmp_path):
    """A PA and a lateral in 2024 and in 2019: the current study alone hangs frontal+lateral;
    the prior retrieved from the PACS joins it (the reader's bug: each retrieve replaced the open
    folder); Compare with prior hangs 2x2; the whole folder opened hangs the same way."""
    p = two_views_twice(tmp_path)
    grid = viewer.viewports
    # opening the current study alone: its frontal and lateral hang side by side
    with qtbot.waitSignal(grid.opened, timeout=15000, check_params_cb=lambda i, img: i == 1):
        open_and_wait(qtbot, viewer, tmp_path / "now")
    assert grid.layout_name() == "1x2"
    assert {grid.path(0), grid.path(1)} == {p["pa"], p["ll"]} and grid.path(0) == p["pa"]

    # a retrieved study accumulates beside the open folder
    shown = viewer.current_path
    qr = viewer.pacs.open_query()  # the Query/Retrieve dialog: its retrieves land in the local store
    with qtbot.waitSignal(viewer.scanFinished, timeout=15000):
        qr.studyRetrieved.emit(str(tmp_path / "old"))
    qr.close()
    assert viewer.current_path == shown and viewer.scan_root == str(tmp_path / "now")  # nothing replaced
    paths = {i.path for i in viewer.last_scan.instances()}
    assert paths == set(p.values())
    b = viewer.browser
    (patient,) = [b.model.item(r) for r in range(b.model.rowCount())]
    assert patient.rowCount() == 2  # both studies under the one patient, newest first
    assert all(b.model.by_path.get(x) is not None for x in p.values())
    opened = []
    grid.opened.connect(lambda i, img: opened.append(i))
    viewer.prior_compare.action.trigger()  # the retrieved prior is found
    qtbot.waitUntil(lambda: {1, 2, 3} <= set(opened), timeout=15000)
    assert grid.caption(2) == "Prior · 2019-03-14"
    assert grid.layout_name() == "2x2"
    assert [grid.path(i) for i in range(4)] == [p["pa"], p["ll"], p["old_pa"], p["old_ll"]]

    # the whole folder, then Compare with prior: current and prior, frontal and lateral, 2x2
    open_and_wait(qtbot, viewer, tmp_path)
    if viewer.current_path != p["pa"]:
        with qtbot.waitSignal(viewer.imageLoaded, timeout=15000):
            viewer.browser.select_path(p["pa"])
    qtbot.waitUntil(lambda: all(grid.canvas(i).img is not None and grid.path(i) == grid.canvas(i).img.path
                                for i in range(grid.count())), timeout=15000)
    opened.clear()
    viewer.prior_compare.action.trigger()
    qtbot.waitUntil(lambda: {1, 2, 3} <= set(opened), timeout=15000)
    assert grid.layout_name() == "2x2"
    assert [grid.path(i) for i in range(4)] == [p["pa"], p["ll"], p["old_pa"], p["old_ll"]]
    assert [grid.caption(i) for i in range(4)] == ["Current · 2024-01-05"] * 2 + ["Prior · 2019-03-14"] * 2
    assert grid.sync() == (True, True) and viewer.canvas is grid.canvas(0)
