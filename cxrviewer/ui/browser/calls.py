"""The "Call" column of the study tree and the worklist: the readers' calls on each image.

The feedback feature (``ui/feedback``) decides what a cell says; the shell hands it
:meth:`StudyBrowser.set_calls`, which lands here. Cells change with the models' signals
blocked and one ``dataChanged`` per parent, as the AI badges do (per-cell signals re-sort and
repaint the whole view each time). The tree's column appears with the first call.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

#: below this browser width the tree hides its Call column (study_browser.WIDE hides # and Type)
NARROW_PX = 340
#: text colour of a cell by label (Abnormal amber, Normal green; mixed calls keep the default)
COLOURS = {"normal": "#7bd88f", "abnormal": "#ffb35c"}


def _paint(cell: QtGui.QStandardItem, text: str, tip: str, label: str | None) -> None:
    from cxrviewer.ui.browser.study_browser import SORT_ROLE

    cell.setText(text)
    cell.setToolTip(tip)
    cell.setData(text.lower(), SORT_ROLE)
    colour = COLOURS.get(label or "")
    cell.setData(QtGui.QBrush(QtGui.QColor(colour)) if colour else None,
                 QtCore.Qt.ItemDataRole.ForegroundRole)


def set_call_cells(browser, items: list[tuple[str, str, str, str | None]]) -> None:
    """Set the Call cells of ``(path, text, tooltip, label)`` in the tree and the worklist."""
    from cxrviewer.ui.browser.study_browser import COL_CALL
    from cxrviewer.ui.browser.worklist import W_CALL

    model, wl = browser.model, browser.worklist_model
    touched: dict[int, tuple[QtGui.QStandardItem, list[int]]] = {}
    wrows: list[int] = []
    any_text = False
    model.blockSignals(True)
    wl.blockSignals(True)
    try:
        for path, text, tip, label in items:
            any_text = any_text or bool(text)
            wit = wl.by_path.get(path)
            if wit is not None:
                _paint(wl.item(wit.row(), W_CALL), text, tip, label)
                wrows.append(wit.row())
            it = model.by_path.get(path)
            if it is None:
                continue
            parent = it.parent() or model.invisibleRootItem()
            _paint(parent.child(it.row(), COL_CALL), text, tip, label)
            touched.setdefault(id(parent), (parent, []))[1].append(it.row())
    finally:
        model.blockSignals(False)
        wl.blockSignals(False)
    if wrows:
        wl.dataChanged.emit(wl.index(min(wrows), W_CALL), wl.index(max(wrows), W_CALL))
        browser.worklist_proxy.invalidate()
    for parent, rows in touched.values():
        model.dataChanged.emit(parent.child(min(rows), COL_CALL).index(), parent.child(max(rows), COL_CALL).index())
    if touched:
        browser.proxy.invalidate()
    if any_text and not getattr(browser, "_calls_shown", False):
        browser._calls_shown = True
        browser.view.header().setSectionResizeMode(COL_CALL, QtWidgets.QHeaderView.ResizeMode.Interactive)
        browser.view.setColumnWidth(COL_CALL, browser.view.fontMetrics().horizontalAdvance("A+1") + 14)
        fit_call_column(browser)


def fit_call_column(browser) -> None:
    """The tree shows its Call column once a call exists and the dock is wide enough (as it
    hides # and Type when narrow: at 1280x720 the thumbnails need the room); the worklist,
    the reader's triage list, always shows it."""
    from cxrviewer.ui.browser.study_browser import COL_CALL

    show = getattr(browser, "_calls_shown", False) and browser.width() >= NARROW_PX
    if browser.view.isColumnHidden(COL_CALL) == show:
        browser.view.setColumnHidden(COL_CALL, not show)


class _Fit(QtCore.QObject):
    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 - Qt name
        if ev.type() == QtCore.QEvent.Type.Resize:
            fit_call_column(obj)
        return False


def place_call_columns(browser) -> None:
    """Show the Call column right after the name (tree) or the patient (worklist): visual
    order only, the models' column numbers stay. A narrow dock (1280x720) scrolls the AI and
    file columns out of sight first; the reader's own call stays in view."""
    from cxrviewer.ui.browser.study_browser import COL_CALL, COL_NAME
    from cxrviewer.ui.browser.worklist import W_CALL, W_PATIENT

    for header, call, first in ((browser.view.header(), COL_CALL, COL_NAME),
                                (browser.worklist.horizontalHeader(), W_CALL, W_PATIENT)):
        header.moveSection(header.visualIndex(call), header.visualIndex(first) + 1)
    browser._call_fit = _Fit(browser)
    browser.installEventFilter(browser._call_fit)
    for m, col in ((browser.model, COL_CALL), (browser.worklist_model, W_CALL)):
        m.setHeaderData(col, QtCore.Qt.Orientation.Horizontal,
                        "Reader calls: A Abnormal, N Normal (yours; +1 per other reader; others' alone in "
                        "parentheses). Hover a cell for who, when and the AI result then.",
                        QtCore.Qt.ItemDataRole.ToolTipRole)


def call_cell_text(browser, path: str) -> tuple[str, str] | None:
    """(text, tooltip) of an image's Call cell in the tree."""
    from cxrviewer.ui.browser.study_browser import COL_CALL

    it = browser.model.by_path.get(path)
    if it is None:
        return None
    parent = it.parent() or browser.model.invisibleRootItem()
    cell = parent.child(it.row(), COL_CALL)
    return cell.text(), cell.toolTip()
