"""The study browser for triage: PNG folders as one series listing file names, header clicks
that sort (AI by probability, unscored last), the flat worklist across series, and a visible
filter state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import open_and_wait, ramp, write_cr
from PIL import Image
from PySide6 import QtCore
from PySide6.QtTest import QTest

from cxrviewer.ui.browser.study_browser import COL_NAME
from cxrviewer.ui.browser.worklist import W_AI, W_FILE, W_PATIENT


def _click_header(header, section: int) -> None:
    x = header.sectionViewportPosition(section) + header.sectionSize(section) // 2
    QTest.mouseClick(header.viewport(), QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier,
                     QtCore.QPoint(x, header.height() // 2))


def _two_series(tmp_path) -> Path:
    d = tmp_path / "triage"
    d.mkdir()
    for s in range(2):
        for i in range(3):
            write_cr(d / f"s{s}_{i}.dcm", ramp(32, 24, seed=10 * s + i), instance=i + 1,
                     study_uid=f"1.2.826.0.1.3680043.8.498.{s + 1}", series_uid=f"1.2.826.0.1.3680043.8.498.{s + 1}.1")
    return d


def test_triage_png_names_worklist_sorting_and_the_filter_on_one_window(qtbot, viewer, tmp_path):
    """One window (these were four window tests): a PNG folder, then two DICOM series."""
    # a PNG folder is one series listing the file names (elided in the middle, whole on hover)
    d = tmp_path / "pngs"
    d.mkdir()
    names = ["patient_0001_a_rather_long_file_name_PA.png", "b.png", "c.jpg"]
    for i, n in enumerate(names):
        Image.fromarray((np.arange(32 * 32).reshape(32, 32) * (i + 1) % 256).astype(np.uint8)).save(d / n)
    open_and_wait(qtbot, viewer, d)
    b = viewer.browser
    m = b.model
    series = [it for k, it in m.by_key.items() if k.startswith("R:")]
    assert len(series) == 1 and series[0].rowCount() == 3
    rows = sorted(series[0].child(r, COL_NAME).text() for r in range(3))
    assert rows == sorted(names)
    long_item = m.by_path[str(d / names[0])]
    assert names[0] in long_item.toolTip()  # the full name on hover (the cell elides in the middle)
    assert b.view.textElideMode() == QtCore.Qt.TextElideMode.ElideMiddle

    # two DICOM series: a click on the tree's AI header sorts within the series, both ways
    d = _two_series(tmp_path)
    open_and_wait(qtbot, viewer, d)
    first = b.image_paths()
    series_paths = first[:3]
    b.set_badges([(p, f"{v:.2f}", v) for p, v in zip(series_paths, [0.3, 0.8, 0.1], strict=True)])
    _click_header(b.view.header(), 4)  # AI, ascending: within the series
    assert b.image_paths()[:3] == [series_paths[2], series_paths[0], series_paths[1]]
    _click_header(b.view.header(), 4)
    assert b.image_paths()[:3] == [series_paths[1], series_paths[0], series_paths[2]]
    b.sort_default()

    # the worklist sorts by AI across series, unscored last
    paths = b.image_paths()
    assert len(paths) == 6
    values = dict(zip(paths, [0.2, 0.9, None, 0.5, 0.1, None], strict=True))  # interleaved across the two series
    b.set_badges([(p, "refused" if v is None and p == paths[2] else ("" if v is None else f"{v:.2f}"), v)
                  for p, v in values.items()])
    b.mode_buttons["worklist"].click()
    assert b.mode() == "worklist"
    wl = b.worklist
    assert wl.model().rowCount() == 6
    # every row shows the file name and the patient
    files = {wl.model().index(r, W_FILE).data() for r in range(6)}
    assert files == {Path(p).name for p in paths}
    assert all(wl.model().index(r, W_PATIENT).data() for r in range(6))
    scored = sorted((p for p in paths if values[p] is not None), key=lambda p: values[p])
    unscored = {p for p in paths if values[p] is None}
    _click_header(wl.horizontalHeader(), W_AI)
    order = b.image_paths()
    assert order[:4] == scored and set(order[4:]) == unscored
    _click_header(wl.horizontalHeader(), W_AI)
    order = b.image_paths()
    assert order[:4] == scored[::-1] and set(order[4:]) == unscored
    # PgDown follows the worklist's order, across series
    if viewer.current_path != order[0]:
        with qtbot.waitSignal(viewer.imageLoaded, timeout=10000):
            b.select_path(order[0])
    with qtbot.waitSignal(viewer.imageLoaded, timeout=10000) as blk:
        viewer.act_next.trigger()
    assert blk.args[0].path == order[1]
    # the AI menu's sort does the same in the worklist, and the tree keeps its own order
    b.sort_default()
    b.sort_by_badge(descending=True)
    assert b.image_paths()[:4] == scored[::-1]
    b.set_mode("tree")
    assert set(b.image_paths()) == set(paths)

    # the filter state is visible and "clear" turns it off
    b.sort_default()
    paths = b.image_paths()
    vals = [0.1, 0.6, 0.55, 0.9, None, 0.3]
    b.set_badges([(p, "" if v is None else f"{v:.2f}", v) for p, v in zip(paths, vals, strict=True)])
    assert not b.filter_label.isVisible() and b.filter_state_text() == ""
    viewer.browser_dock.show()
    viewer.ai.act_filter.setChecked(True)  # the AI menu's filter at the model's threshold
    b.set_badge_filter(0.55)
    assert b.filter_state_text() == "3 of 6 shown · Abnormal ≥ 0.55 · clear"
    assert b.filter_label.isVisible() and "3 of 6 shown" in b.filter_label.text()
    assert len(b.image_paths()) == 3
    with qtbot.waitSignal(b.badgeFilterChanged) as blk:
        b.filter_label.linkActivated.emit("clear")
    assert blk.args == [None]
    assert b.filter_state_text() == "" and not b.filter_label.isVisible()
    assert len(b.image_paths()) == 6 and not viewer.ai.act_filter.isChecked()
