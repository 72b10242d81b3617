"""Usable at common screen sizes: the whole toolbar and the AI panel at 1280x720, corner texts
and orientation letters that never overlap (they elide and drop lines), names in a narrow
browser; the first window fits the screen and remembers its geometry and layout; the Train
dialog fits 1280x720; the Studies dock grows with the screen."""

from __future__ import annotations

import itertools

import pytest
from conftest import open_and_wait, show_image
from PySide6 import QtCore, QtWidgets

from cxrviewer.render.text_fit import corner_boxes, elide_right, fit_lines


def _settle(w, size):
    w.resize(*size)
    for _ in range(5):
        QtWidgets.QApplication.processEvents()


def _overlaps(canvas):
    labs = [lab for lab in canvas._labels.values() if lab.isVisible() and lab.text()]
    return [(a.objectName(), b.objectName()) for a, b in itertools.combinations(labs, 2)
            if a.geometry().intersects(b.geometry())]


def test_toolbar_ai_panel_corner_texts_and_browser_fit_common_sizes(qtbot, viewer, rg1_unci, study_dir):
    """One window, resized as a reader's screens would (these were four window tests, one of
    them test_ai_panel_fit.py): the whole toolbar at 1280x720 and 1366x768, the AI panel's
    controls at their height, corner texts and letters that never overlap, names in a narrow
    browser."""
    show_image(qtbot, viewer, rg1_unci)
    tb = viewer.toolbar
    for size in ((1280, 720), (1366, 768)):
        _settle(viewer, size)
        hidden = [a.iconText() for a in tb.actions()
                  if not a.isSeparator() and tb.widgetForAction(a) is not None and not tb.widgetForAction(a).isVisible()]
        assert hidden == [], size
        assert tb.sizeHint().width() <= size[0]
        assert viewer.ai.act_heatmap in tb.actions()
        # the canvas keeps more than half of the width
        assert viewer.canvas.width() > size[0] / 2, size
        if size == (1280, 720):
            # the AI panel's controls keep their height (the dock scrolls) instead of being
            # pressed below their minimum and drawn over each other, as an Xvfb screenshot showed
            panel = viewer.ai.panel
            squeezed = [
                (type(c).__name__, c.objectName() or getattr(c, "text", lambda: "")(), c.height(),
                 c.minimumSizeHint().height())
                for c in panel.findChildren(QtWidgets.QWidget)
                if c.isVisible() and isinstance(c, (QtWidgets.QAbstractButton, QtWidgets.QSlider, QtWidgets.QComboBox))
                and c.height() < c.minimumSizeHint().height()
            ]
            assert squeezed == []

    # corner texts and orientation letters never overlap: squeezed, then given room again
    c = viewer.canvas
    for size in ((960, 660), (700, 420)):
        _settle(viewer, size)
        assert c.width() < 500
        assert _overlaps(c) == [], size
        for lab in c._labels.values():
            assert c.rect().contains(lab.geometry()), (size, lab.objectName())
        assert c._labels["top"].text() == "H"  # the letters stay
        # the reader's full text is back when there is room again
        _settle(viewer, (1920, 1080))
        assert "Philips Medical Systems Hamburg" in c._labels["tl"].text()

    # a narrow browser shows the image names
    open_and_wait(qtbot, viewer, study_dir)
    viewer.browser_dock.setMinimumWidth(250)
    viewer.resizeDocks([viewer.browser_dock], [250], QtCore.Qt.Orientation.Horizontal)
    _settle(viewer, (1280, 720))
    b = viewer.browser
    assert b.width() < 340
    assert b.view.isColumnHidden(1) and b.view.isColumnHidden(3)  # count and modality give way
    assert not b.view.isColumnHidden(2)  # the date stays (studies of a patient told apart)
    assert b.view.columnWidth(0) > 120
    # AI results coming in keep the names readable (the badge is cut, its tooltip whole)
    path = next(iter(b.model.by_path))
    b.set_badge(path, "0.86 Abnormal", 0.86)
    QtWidgets.QApplication.processEvents()
    assert not b.view.isColumnHidden(4) and b.view.columnWidth(0) > 80


def test_fit_helpers():
    def measure(s):
        return 7.0 * len(s)

    assert elide_right("short", measure, 100) == "short"
    t = elide_right("a very long institution name", measure, 70)
    assert t.endswith("…") and measure(t) <= 70 and "a very long institution name".startswith(t[:-1])
    assert elide_right("abc", measure, 3) == ""
    lines = fit_lines(["one", "two", "three", "four"], measure, 28, 2)
    assert lines == ["one", "two"]
    max_w, max_n = corner_boxes(400, 300, 15, margin=8, letter_room=36)
    assert max_w == pytest.approx(400 / 2 - 8 - 18 - 4) and max_n == int((150 - 8 - 18 - 2) // 15)


def test_the_first_window_fits_the_screen_and_remembers_geometry_and_layout(qtbot, tmp_path):
    # the reader's bug: 1400x900 whatever the screen (clipped at 1280x720), layout forgotten
    from cxrviewer.ui.common.settings import Settings
    from cxrviewer.ui.shell.main_window import MainWindow

    ini = str(tmp_path / "settings.ini")
    w = MainWindow(Settings(ini))
    qtbot.addWidget(w)
    avail = w.screen().availableGeometry()
    assert w.width() <= avail.width() and w.height() <= avail.height()
    w.show()
    qtbot.waitExposed(w)
    w.viewports.set_layout("2x1")
    w.resize(w.minimumSizeHint().expandedTo(QtCore.QSize(760, 600)))
    left = (w.width(), w.height())
    assert left[0] <= avail.width()  # (the test screen is 800 px wide)
    w.close()  # closeEvent saves geometry, docks and the layout
    w2 = MainWindow(Settings(ini))
    qtbot.addWidget(w2)
    assert w2.viewports.layout_name() == "2x1" and w2.model.layout == "2x1"
    assert (w2.width(), w2.height()) == left
    w2.shutdown()


def test_the_train_dialog_fits_1280x720(qtbot, tmp_path):
    import cxrviewer.ui  # noqa: F401  (the PySide6 refcount guard)
    from cxrviewer.ui.common.screen import FRAME_MARGIN, fit_to_screen
    from cxrviewer.ui.train.train_dialog import TrainDialog

    dlg = TrainDialog(None)
    qtbot.addWidget(dlg)
    small = QtCore.QRect(0, 0, 1280, 720)
    size = fit_to_screen(dlg, QtCore.QSize(900, 760), small)
    assert size.height() + FRAME_MARGIN.height() <= 720 and size.width() <= 1280
    dlg.show()
    qtbot.waitExposed(dlg)
    assert dlg.height() <= 720 - FRAME_MARGIN.height()
    for b in (dlg.start_button, dlg.close_button):  # the buttons stay inside the dialog
        r = QtCore.QRect(b.mapTo(dlg, QtCore.QPoint(0, 0)), b.size())
        assert dlg.rect().contains(r), (b.text(), r, dlg.rect())
    dlg.close()


def _name_room(b, index):
    """(text width, room) of a Name cell: the cell's rectangle less its thumbnail and margins."""
    from cxrviewer.ui.browser.study_browser import COL_NAME

    idx = index.siblingAtColumn(COL_NAME)
    text = idx.data()
    icon = idx.data(QtCore.Qt.ItemDataRole.DecorationRole)
    room = b.view.visualRect(idx).width() - 12 - (b.view.iconSize().width() + 4 if icon is not None else 0)
    return b.view.fontMetrics().horizontalAdvance(text), room, text


@pytest.mark.parametrize("screen", [(1920, 1080), (1280, 720)])
def test_the_studies_dock_grows_with_the_screen_so_names_read(qtbot, tmp_path, monkeypatch, study_dir, screen):
    # the reader's bug: at 1920x1080 the Studies dock was ~250 px, names read "(s...y)", "De...1]"
    import cxrviewer.ui.common.screen as scr
    from cxrviewer.ui.common.settings import Settings
    from cxrviewer.ui.shell.main_window import MainWindow

    avail = QtCore.QRect(0, 0, *screen)
    monkeypatch.setattr(scr, "available", lambda widget=None: avail)
    w = MainWindow(Settings(str(tmp_path / "settings.ini")))  # a first run: nothing remembered
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    open_and_wait(qtbot, w, study_dir)
    b = w.browser
    b.view.expandAll()
    for path in b.model.by_path:  # AI results in: the AI column takes its room too
        b.set_badge(path, "0.86 Abnormal", 0.86)
    QtWidgets.QApplication.processEvents()
    assert w.frameGeometry().width() <= screen[0] and w.frameGeometry().height() <= screen[1]
    assert w.canvas.width() > w.width() / 2  # the image keeps most of the window
    assert not b.view.isColumnHidden(2) and not b.view.isColumnHidden(4)  # dates and AI shown
    if screen[0] >= 1920:
        assert b.width() >= 0.18 * screen[0]
        rows, model = [], b.proxy
        stack = [QtCore.QModelIndex()]
        while stack:
            parent = stack.pop()
            for r in range(model.rowCount(parent)):
                idx = model.index(r, 0, parent)
                rows.append(_name_room(b, idx))
                stack.append(idx)
        assert len(rows) >= 5
        # patient, study, series and image names are whole (not elided), dates shown whole
        cut = [(t, need, room) for need, room, t in rows if need > room]
        assert cut == [], cut
    else:  # 1280x720: the dock keeps its narrow width and the names still have room
        assert 250 <= b.width() < 340 and b.view.columnWidth(0) > 80, (b.width(), b.view.columnWidth(0))
    w.shutdown()
    w.close()
