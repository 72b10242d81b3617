"""Usable at common screen sizes: the whole toolbar at 1280x720, corner texts and
orientation letters that never overlap (they elide and drop lines), names in a narrow browser."""

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


@pytest.mark.parametrize("size", [(1280, 720), (1366, 768)])
def test_whole_toolbar_fits_at_common_sizes(qtbot, viewer, rg1_unci, size):
    show_image(qtbot, viewer, rg1_unci)
    _settle(viewer, size)
    tb = viewer.toolbar
    hidden = [a.iconText() for a in tb.actions()
              if not a.isSeparator() and tb.widgetForAction(a) is not None and not tb.widgetForAction(a).isVisible()]
    assert hidden == []
    assert tb.sizeHint().width() <= size[0]
    assert viewer.ai.act_heatmap in tb.actions()
    # the canvas keeps more than half of the width
    assert viewer.canvas.width() > size[0] / 2


def _overlaps(canvas):
    labs = [lab for lab in canvas._labels.values() if lab.isVisible() and lab.text()]
    return [(a.objectName(), b.objectName()) for a, b in itertools.combinations(labs, 2)
            if a.geometry().intersects(b.geometry())]


@pytest.mark.parametrize("size", [(960, 660), (700, 420)])
def test_corner_texts_and_letters_never_overlap(qtbot, viewer, rg1_unci, size):
    show_image(qtbot, viewer, rg1_unci)
    _settle(viewer, size)
    c = viewer.canvas
    assert c.width() < 500
    assert _overlaps(c) == []
    for lab in c._labels.values():
        assert c.rect().contains(lab.geometry()), lab.objectName()
    assert c._labels["top"].text() == "H"  # the letters stay
    # the reader's full text is back when there is room again
    _settle(viewer, (1920, 1080))
    assert "Philips Medical Systems Hamburg" in c._labels["tl"].text()


def test_narrow_browser_shows_image_names(qtbot, viewer, study_dir):
    open_and_wait(qtbot, viewer, study_dir)
    viewer.browser_dock.setMinimumWidth(250)
    viewer.resizeDocks([viewer.browser_dock], [250], QtCore.Qt.Orientation.Horizontal)
    _settle(viewer, (1280, 720))
    b = viewer.browser
    assert b.width() < 340
    assert b.view.isColumnHidden(1) and b.view.isColumnHidden(3)  # count and modality give way
    assert not b.view.isColumnHidden(2)  # the date stays (studies of a patient told apart)
    assert b.view.columnWidth(0) > 120


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
