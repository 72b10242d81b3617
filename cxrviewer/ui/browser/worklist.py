"""The flat worklist for triage: one row per image (patient, date, view, file name, AI).

Beside the study tree (the browser's *Worklist* mode): every image of every patient, study and
series in one list, so sorting by the AI column ranks the whole folder, not one series. It is
filled from the same (partial) scan results as the tree and gets the same AI badges; the
sort/filter proxy is the tree's (:class:`cxrviewer.ui.browser.study_browser.BadgeProxy`): a click on
any column header sorts, the AI column by probability with unscored and refused images last.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.core.types import ScanResult

WORKLIST_COLUMNS = ("Patient", "Date", "View", "File", "AI", "Call")
W_PATIENT, W_DATE, W_VIEW, W_FILE, W_AI, W_CALL = range(6)  # Call: the readers' calls (browser/calls.py)


def _date(d: str) -> str:
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


class WorklistModel(QtGui.QStandardItemModel):
    """One row per image; ``by_path`` maps an image path to its first cell."""

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.setHorizontalHeaderLabels(list(WORKLIST_COLUMNS))
        self.by_path: dict[str, QtGui.QStandardItem] = {}

    def clear_all(self) -> None:
        self.removeRows(0, self.rowCount())
        self.by_path.clear()

    def update_from(self, res: ScanResult) -> int:
        """Append the images of ``res`` not listed yet (scan order); returns how many."""
        from cxrviewer.ui.browser.study_browser import BADGE_ROLE, KIND_ROLE, PATH_ROLE, SORT_ROLE

        new = 0
        for p in res.patients:
            who = (p.patient_name or "(no name)").replace("^", " ").strip()
            if p.patient_id:
                who += f" [{p.patient_id}]"
            for st in p.studies:
                for se in st.series:
                    for inst in se.instances:
                        if inst.path in self.by_path:
                            continue
                        name = os.path.basename(inst.path)
                        view = " ".join(x for x in (inst.modality, inst.view_position) if x)
                        texts = [who, _date(st.study_date), view, name, "", ""]
                        sorts = [who.lower(), st.study_date + st.study_time, view.lower(), name.lower(), None, ""]
                        row = []
                        for col, (t, sv) in enumerate(zip(texts, sorts, strict=True)):
                            it = QtGui.QStandardItem(t)
                            it.setEditable(False)
                            it.setData("image", KIND_ROLE)
                            it.setData(inst.path, PATH_ROLE)
                            it.setData(sv, SORT_ROLE)
                            it.setToolTip(inst.path if col == W_FILE else t)
                            row.append(it)
                        row[W_AI].setData(None, BADGE_ROLE)
                        self.appendRow(row)
                        self.by_path[inst.path] = row[0]
                        new += 1
        return new

    def set_badge_cell(self, path: str, text: str, value: float | None) -> int | None:
        """Set one AI cell (signals are the caller's business); returns its row or ``None``."""
        from cxrviewer.ui.browser.study_browser import BADGE_ROLE, SORT_ROLE

        it = self.by_path.get(path)
        if it is None:
            return None
        cell = self.item(it.row(), W_AI)
        cell.setText(text)
        cell.setData(None if value is None else float(value), BADGE_ROLE)
        cell.setData(None if value is None else float(value), SORT_ROLE)
        cell.setToolTip(text)
        return it.row()


def make_worklist_view(parent: QtWidgets.QWidget, proxy: QtCore.QSortFilterProxyModel) -> QtWidgets.QTableView:
    """The table: narrow columns sized from the font, the file name takes the rest and elides
    in the middle (the full path is its tooltip); header clicks sort."""
    v = QtWidgets.QTableView(parent)
    v.setModel(proxy)
    v.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
    v.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
    v.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
    v.setAlternatingRowColors(True)
    v.setWordWrap(False)
    v.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)
    v.verticalHeader().hide()
    v.verticalHeader().setDefaultSectionSize(v.fontMetrics().height() + 6)
    h = v.horizontalHeader()
    h.setStretchLastSection(False)
    fm = v.fontMetrics()
    for c, sample in ((W_PATIENT, "Doe Jane [PID-0000]"), (W_DATE, "2024-01-01"), (W_VIEW, "CR PA"),
                      (W_AI, "0.00 Abnormal"), (W_CALL, "A+1")):
        h.setSectionResizeMode(c, QtWidgets.QHeaderView.ResizeMode.Interactive)
        v.setColumnWidth(c, fm.horizontalAdvance(sample) + 12)
    h.setSectionResizeMode(W_FILE, QtWidgets.QHeaderView.ResizeMode.Stretch)
    return v


def link_ai_filter(browser, act) -> None:
    """When the reader clears the browser's filter (its *clear* link), the AI menu's
    "Show only images at or above the threshold" (``act``, handed in by the shell) unticks too."""

    def changed(value) -> None:
        if value is None and act.isChecked():
            act.setChecked(False)

    browser.badgeFilterChanged.connect(changed)


def make_sortable(header: QtWidgets.QHeaderView, proxy: QtCore.QSortFilterProxyModel) -> None:
    """Header clicks sort (ascending, descending, then back to scan order)."""
    header.setSectionsClickable(True)
    header.setSortIndicatorShown(True)
    header.setSortIndicatorClearable(True)
    header.setSortIndicator(-1, QtCore.Qt.SortOrder.AscendingOrder)
    header.sortIndicatorChanged.connect(lambda col, order: proxy.sort(col, order))


def make_mode_bar(parent: QtWidgets.QWidget, set_mode: Callable[[str], None]
                  ) -> tuple[QtWidgets.QHBoxLayout, dict[str, QtWidgets.QToolButton]]:
    """The Tree / Worklist switch above the browser."""
    bar = QtWidgets.QHBoxLayout()
    bar.setContentsMargins(2, 2, 2, 0)
    buttons: dict[str, QtWidgets.QToolButton] = {}
    group = QtWidgets.QButtonGroup(parent)
    for mode, text, tip in (("tree", "Tree", "Patient › study › series › image"),
                            ("worklist", "Worklist", "One row per image: patient, date, view, file, AI")):
        b = QtWidgets.QToolButton(parent)
        b.setObjectName(f"browser_mode_{mode}")
        b.setText(text)
        b.setToolTip(tip)
        b.setCheckable(True)
        b.setAutoRaise(True)
        group.addButton(b)
        b.toggled.connect(lambda on, m=mode: on and set_mode(m))
        bar.addWidget(b)
        buttons[mode] = b
    bar.addStretch(1)
    buttons["tree"].blockSignals(True)  # the initial mode is the caller's, not a switch
    buttons["tree"].setChecked(True)
    buttons["tree"].blockSignals(False)
    return bar, buttons


def make_filter_label(parent: QtWidgets.QWidget, clear: Callable[[], None]) -> QtWidgets.QLabel:
    """The line that says a filter is on; its *clear* link turns it off."""
    lab = QtWidgets.QLabel(parent)
    lab.setObjectName("browser_filter_state")
    lab.setTextFormat(QtCore.Qt.TextFormat.RichText)
    lab.setStyleSheet("color: #ffcc80; padding: 1px 4px;")
    lab.linkActivated.connect(lambda _link: clear())
    lab.hide()
    return lab
