"""The study browser: Patient -> Study -> Series -> Image in a ``QTreeView``.

The model fills progressively from partial scan results (core ``scan(on_instances=)``):
new rows are inserted at their sorted position, existing rows are never rebuilt, so the
selection and scroll position survive while a 2,000-file folder loads. Thumbnails are
requested lazily, only for rows the view actually paints, and built off the GUI thread.

An "AI" column is filled by the AI layer through :meth:`StudyBrowser.set_badge`; it sorts by
the numeric value and :meth:`StudyBrowser.set_badge_filter` keeps images at or above a value.
A click on any column header sorts (again: the other way; a third time: scan order), the AI
column by probability with unscored and refused images last either way. An active filter is
said above the list ("12 of 30 shown · Abnormal ≥ 0.55 · clear"). *Worklist* mode shows the
same images as one flat list (:mod:`cxrviewer.ui.browser.worklist`), for triage across series.
"""

from __future__ import annotations

import os

from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.core.geometry import format_date as _date
from cxrviewer.core.types import InstanceInfo, ObjectInfo, ScanResult
from cxrviewer.ui.common.loaders import ThumbnailLoader

KIND_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
PATH_ROLE = QtCore.Qt.ItemDataRole.UserRole + 2
SORT_ROLE = QtCore.Qt.ItemDataRole.UserRole + 3
KEY_ROLE = QtCore.Qt.ItemDataRole.UserRole + 4
BADGE_ROLE = QtCore.Qt.ItemDataRole.UserRole + 5
#: Path of an SR / presentation-state row (not PATH_ROLE: these rows are not images).
OBJECT_ROLE = QtCore.Qt.ItemDataRole.UserRole + 6

COLUMNS = ("Name", "#", "Date", "Type", "AI", "Call")
#: from this width on the browser also shows the count and modality columns and the AI
#: label whole; below it they give way to the names (an image row needs ~80 px of indentation
#: and thumbnail before its name; the first dock at 1920x1080 is ~365 px: see ui.common.screen)
WIDE = 440
#: below this width (a 1280x720 screen) the AI column shows "0.86 Abn…" (whole on hover)
NARROW = 340
COL_NAME, COL_COUNT, COL_DATE, COL_MOD, COL_AI, COL_CALL = range(6)  # Call: the readers' calls (ui/feedback)


def _row(kind: str, key: str, texts: list[str], sort_values: list | None = None) -> list[QtGui.QStandardItem]:
    items = []
    texts = list(texts) + [""] * (len(COLUMNS) - len(texts))  # columns no caller fills (Call)
    for i, t in enumerate(texts):
        it = QtGui.QStandardItem(t)
        it.setEditable(False)
        it.setData(kind, KIND_ROLE)
        it.setData(key, KEY_ROLE)
        sv = sort_values[i] if sort_values is not None and i < len(sort_values) else None
        it.setData(sv if sv is not None else t.lower(), SORT_ROLE)
        if i == 0:
            it.setToolTip(t)  # the name column elides in the middle: the whole name on hover
        items.append(it)
    return items


class BrowserModel(QtGui.QStandardItemModel):
    """Tree model; thumbnails come lazily from a :class:`ThumbnailLoader`."""

    def __init__(self, thumbs: ThumbnailLoader, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self.thumbs = thumbs
        self.thumbnails_enabled = True
        self.by_key: dict[str, QtGui.QStandardItem] = {}
        self.by_path: dict[str, QtGui.QStandardItem] = {}
        self._icons: dict[str, QtGui.QIcon] = {}
        self._blank: QtGui.QIcon | None = None
        self.new_parents: list[QtGui.QStandardItem] = []
        thumbs.ready.connect(self._thumb_ready)

    def data(self, index: QtCore.QModelIndex, role: int = QtCore.Qt.ItemDataRole.DisplayRole):
        if (
            role == QtCore.Qt.ItemDataRole.DecorationRole
            and index.column() == 0
            and self.thumbnails_enabled
        ):
            path = super().data(index, PATH_ROLE)
            if path:
                # Cached icon, else a blank one of the same size (row heights never jump).
                # Thumbnails are *requested* only for rows on screen (StudyBrowser), because
                # the view also asks for decorations of rows it merely measures.
                icon = self._icons.get(path)
                if icon is None:
                    q = self.thumbs.cache.get(path)
                    icon = self._icon_for(path, q) if q is not None else self._placeholder()
                return icon
        return super().data(index, role)

    def _placeholder(self) -> QtGui.QIcon:
        if self._blank is None:
            pm = QtGui.QPixmap(self.thumbs.size, self.thumbs.size)
            pm.fill(QtGui.QColor(40, 41, 45))
            self._blank = QtGui.QIcon(pm)
        return self._blank

    def _icon_for(self, path: str, q: QtGui.QImage) -> QtGui.QIcon:
        icon = QtGui.QIcon(QtGui.QPixmap.fromImage(q))  # QPixmap: GUI thread only (here)
        self._icons[path] = icon
        # Icons are bounded like the thumbnail cache.
        if len(self._icons) > self.thumbs.max_items:
            for k in list(self._icons)[: len(self._icons) - self.thumbs.max_items]:
                del self._icons[k]
        return icon

    def _thumb_ready(self, path: str, q: QtGui.QImage) -> None:
        it = self.by_path.get(path)
        if it is not None:
            self._icon_for(path, q)
            idx = it.index()
            self.dataChanged.emit(idx, idx, [QtCore.Qt.ItemDataRole.DecorationRole])

    def clear_all(self) -> None:
        self.removeRows(0, self.rowCount())
        self.by_key.clear()
        self.by_path.clear()

    # ---------------------------------------------------------- progressive fill
    def _ensure(self, parent: QtGui.QStandardItem, pos: int, key: str, make) -> QtGui.QStandardItem:
        it = self.by_key.get(key)
        if it is None:
            row = make()
            parent.insertRow(min(pos, parent.rowCount()), row)
            it = row[0]
            self.by_key[key] = it
            if not key.startswith("I:"):
                self.new_parents.append(it)
        return it

    def _set(self, item: QtGui.QStandardItem, col: int, text: str, sort=None) -> None:
        parent = item.parent() or self.invisibleRootItem()
        cell = parent.child(item.row(), col)
        if cell is not None and cell.text() != text:
            cell.setText(text)
            cell.setData(sort if sort is not None else text.lower(), SORT_ROLE)

    def update_from(self, res: ScanResult) -> int:
        """Insert what ``res`` has that the model lacks; returns the number of new images."""
        root = self.invisibleRootItem()
        new = 0
        for pi, p in enumerate(res.patients):
            pkey = "P:" + (p.patient_id or f"(no ID) {p.patient_name}")
            pname = (p.patient_name or "(no name)").replace("^", " ").strip()
            pit = self._ensure(
                root, pi, pkey,
                lambda p=p, pname=pname, pkey=pkey: _row(
                    "patient", pkey, [f"{pname} [{p.patient_id}]" if p.patient_id else pname, "", "", "", ""]
                ),
            )
            p_count = 0
            # newest study first: the current one on top, its priors below it (the scan lists
            # them oldest first); rows arriving later are inserted at their place in this order
            studies = sorted(p.studies, key=lambda st: (st.study_date, st.study_time), reverse=True)
            for si, st in enumerate(studies):
                skey = "S:" + st.study_instance_uid
                sit = self._ensure(
                    pit, si, skey,
                    lambda st=st, skey=skey: _row(
                        "study", skey,
                        [st.study_description or "(study)", "", _date(st.study_date), "", ""],
                        [None, None, st.study_date + st.study_time],
                    ),
                )
                mods = sorted({se.modality for se in st.series if se.modality})
                self._set(sit, COL_MOD, "/".join(mods))
                for ri, se in enumerate(st.series):
                    rkey = f"R:{st.study_instance_uid}/{se.series_instance_uid}"
                    label = " ".join(x for x in (f"Se {se.series_number}" if se.series_number else "Series", se.series_description) if x)
                    rit = self._ensure(
                        sit, ri, rkey,
                        lambda se=se, rkey=rkey, label=label: _row(
                            "series", rkey, [label, "", "", se.modality, ""],
                            [int(se.series_number) if se.series_number.isdigit() else 0],
                        ),
                    )
                    for ii, inst in enumerate(se.instances):
                        if inst.path in self.by_path:
                            continue
                        it = self._ensure(rit, ii, "I:" + inst.path, lambda inst=inst: self._image_row(inst))
                        self.by_path[inst.path] = it
                        new += 1
                    self._set(rit, COL_COUNT, str(len(se.instances)), len(se.instances))
                for oi, o in enumerate(st.objects):
                    self._object_row(sit, len(st.series) + oi, o)
                self._set(sit, COL_COUNT, str(st.n_images), st.n_images)
                p_count += st.n_images
            self._set(pit, COL_COUNT, str(p_count), p_count)
        return new

    def _object_row(self, study_item: QtGui.QStandardItem, pos: int, o: ObjectInfo) -> None:
        """A structured report or presentation state, listed under its study after the series."""
        key = "O:" + o.path
        if key in self.by_key:
            return
        what = {"sr": "Report", "pr": "Presentation state"}.get(o.kind, o.kind)
        label = f"{what}: {o.series_description or os.path.basename(o.path)}"
        row = _row("object", key, [label, "", _date(o.content_date), o.kind.upper(), ""],
                   [f"~{o.content_date}{o.content_time}"])  # sorts after the series
        row[0].setData(o.path, OBJECT_ROLE)
        tip = "\n".join(x for x in (o.path, f"refers to {len(o.referenced_sop_instance_uids)} image(s)",
                                     "select to show it on its image") if x)
        for it in row:
            it.setToolTip(tip)
        study_item.insertRow(min(pos, study_item.rowCount()), row)
        self.by_key[key] = row[0]

    def _image_row(self, inst: InstanceInfo) -> list[QtGui.QStandardItem]:
        name = os.path.basename(inst.path)
        label = f"{inst.instance_number}: {name}" if inst.instance_number is not None else name
        size = f"{inst.columns}x{inst.rows}" if inst.rows and inst.columns else ""
        frames = f"{inst.number_of_frames} fr" if inst.number_of_frames > 1 else "1"
        row = _row(
            "image", "I:" + inst.path,
            [label, frames, "", " ".join(x for x in (inst.modality, inst.view_position) if x), ""],
            [f"{inst.instance_number if inst.instance_number is not None else 999999999:010d} {name}", inst.number_of_frames],
        )
        row[0].setData(inst.path, PATH_ROLE)
        tip = "\n".join(
            x for x in (inst.path, size, inst.photometric_interpretation, inst.transfer_syntax, inst.image_comments) if x
        )
        for it in row:
            it.setToolTip(tip)
        row[COL_AI].setData(None, BADGE_ROLE)
        row[COL_AI].setData(None, SORT_ROLE)  # unanalysed images sort after any probability
        return row


class BadgeProxy(QtCore.QSortFilterProxyModel):
    """Sorts by ``SORT_ROLE`` (the AI column by its value, images without one last in either
    order); filters images by their AI badge value."""

    def __init__(self, parent=None, ai_col: int = COL_AI):
        super().__init__(parent)
        self.min_badge: float | None = None
        self.ai_col = ai_col
        self.setSortRole(SORT_ROLE)
        self.setRecursiveFilteringEnabled(True)
        self.setDynamicSortFilter(True)

    def lessThan(self, a, b) -> bool:  # noqa: N802
        if a.column() == self.ai_col:
            va, vb = a.data(BADGE_ROLE), b.data(BADGE_ROLE)
            if va is None or vb is None:
                if (va is None) == (vb is None):
                    return False
                # Unscored / refused / failed last whatever the order (Qt calls lessThan(b, a)
                # to sort descending).
                ascending = self.sortOrder() == QtCore.Qt.SortOrder.AscendingOrder
                return (vb is None) if ascending else (va is None)
            return float(va) < float(vb)
        va, vb = a.data(SORT_ROLE), b.data(SORT_ROLE)
        try:
            return va < vb
        except TypeError:
            return str(va) < str(vb)

    def filterAcceptsRow(self, row: int, parent: QtCore.QModelIndex) -> bool:  # noqa: N802
        if self.min_badge is None:
            return True
        m = self.sourceModel()
        idx = m.index(row, 0, parent)
        if m.data(idx, KIND_ROLE) != "image":
            return False  # parents are kept by recursive filtering when a child matches
        v = m.data(m.index(row, self.ai_col, parent), BADGE_ROLE)
        return v is not None and float(v) >= self.min_badge


_Proxy = BadgeProxy  # the earlier name


class StudyBrowser(QtWidgets.QWidget):
    """Tree of the scanned folder with thumbnails; emits ``imageSelected(path)``.

    Keyboard: arrows move, Page Up/Down go to the previous/next *image* anywhere in the tree.
    """

    imageSelected = QtCore.Signal(str)
    #: an SR / presentation-state row was selected (its path)
    objectSelected = QtCore.Signal(str)
    #: the AI threshold filter changed (its value, ``None``: off, e.g. the reader clicked *clear*)
    badgeFilterChanged = QtCore.Signal(object)

    def __init__(self, parent: QtWidgets.QWidget | None = None, thumb_size: int = 40):
        super().__init__(parent)
        self._selected_path: str | None = None
        # While the mouse is down on a row, the selection it makes is held back: the press may
        # be the start of a drag into another viewport, which must not also open the image in
        # the active one (see hold_selection)
        self._held = False
        self._pending: str | None = None
        self.thumbs = ThumbnailLoader(self, size=thumb_size)
        self.model = BrowserModel(self.thumbs, self)
        self.proxy = BadgeProxy(self)
        self.proxy.setSourceModel(self.model)
        self.view = QtWidgets.QTreeView(self)
        self.view.setModel(self.proxy)
        self.view.setIconSize(QtCore.QSize(thumb_size, thumb_size))
        self.view.setUniformRowHeights(False)
        self.view.setIndentation(12)
        self.view.setAlternatingRowColors(True)
        self.view.setSortingEnabled(False)
        self.view.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.header().setStretchLastSection(False)
        # Name takes what the other (narrow) columns leave; long file names elide in the middle.
        self.view.header().setSectionResizeMode(COL_NAME, QtWidgets.QHeaderView.ResizeMode.Stretch)
        # Fixed widths from the font, not ResizeToContents: that mode measures every row of
        # the column on each insert (~1M data() calls and seconds of GUI time per chunk of a
        # 2,000-image folder).
        fm = self.view.fontMetrics()
        for c, sample in ((COL_COUNT, "000"), (COL_DATE, "2024-01-01"), (COL_MOD, "CR PA"), (COL_AI, "0.00 Abnormal")):
            self.view.header().setSectionResizeMode(c, QtWidgets.QHeaderView.ResizeMode.Interactive)
            self.view.setColumnWidth(c, fm.horizontalAdvance(sample) + 10)
        self.view.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)
        self.model.setHeaderData(COL_COUNT, QtCore.Qt.Orientation.Horizontal, "Images (frames for an image)", QtCore.Qt.ItemDataRole.ToolTipRole)
        self.model.setHeaderData(COL_MOD, QtCore.Qt.Orientation.Horizontal, "Modality and view position", QtCore.Qt.ItemDataRole.ToolTipRole)
        self.view.setColumnHidden(COL_AI, True)  # shown once a badge exists
        self.view.setColumnHidden(COL_CALL, True)  # shown once a reader's call exists (browser/calls.py)
        self.view.installEventFilter(self)
        self._build_worklist()
        from cxrviewer.ui.browser.worklist import make_sortable

        make_sortable(self.view.header(), self.proxy)
        from cxrviewer.ui.browser.calls import place_call_columns

        place_call_columns(self)
        self._thumb_timer = QtCore.QTimer(self)
        self._thumb_timer.setSingleShot(True)
        self._thumb_timer.setInterval(60)
        self._thumb_timer.timeout.connect(self.request_visible_thumbnails)
        self.view.verticalScrollBar().valueChanged.connect(lambda _v: self._thumb_timer.start())
        self.view.expanded.connect(lambda _i: self._thumb_timer.start())
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addLayout(self._mode_bar)
        lay.addWidget(self.filter_label)
        lay.addWidget(self.stack)

    # ------------------------------------------------------------- worklist
    def _build_worklist(self) -> None:
        from cxrviewer.ui.browser import worklist as wl

        self.worklist_model = wl.WorklistModel(self)
        self.worklist_proxy = BadgeProxy(self, ai_col=wl.W_AI)
        self.worklist_proxy.setSourceModel(self.worklist_model)
        self.worklist = wl.make_worklist_view(self, self.worklist_proxy)
        self.worklist.installEventFilter(self)
        wl.make_sortable(self.worklist.horizontalHeader(), self.worklist_proxy)
        self.worklist.selectionModel().currentChanged.connect(self._current_changed)
        self.stack = QtWidgets.QStackedWidget(self)
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.worklist)
        self._mode_bar, self.mode_buttons = wl.make_mode_bar(self, self.set_mode)
        self.filter_label = wl.make_filter_label(self, lambda: self.set_badge_filter(None))

    def mode(self) -> str:
        """``"tree"`` or ``"worklist"``."""
        return "worklist" if self.stack.currentWidget() is self.worklist else "tree"

    def set_mode(self, mode: str) -> None:
        """Show the study tree or the flat worklist (the selection is kept)."""
        if mode not in ("tree", "worklist"):
            raise ValueError(f"unknown browser mode {mode!r}")
        self.stack.setCurrentWidget(self.worklist if mode == "worklist" else self.view)
        self.mode_buttons[mode].setChecked(True)
        if self._selected_path:
            self.select_path(self._selected_path)

    def filter_state_text(self) -> str:
        """What the filter line says (plain text), ``""`` when no filter is on."""
        t = self.proxy.min_badge
        if t is None:
            return ""
        shown = self.worklist_proxy.rowCount()
        return f"{shown} of {self.count_images()} shown · Abnormal ≥ {t:.2f} · clear"

    def _update_filter_label(self) -> None:
        text = self.filter_state_text()
        self.filter_label.setVisible(bool(text))
        if text:
            head = text.rsplit(" · clear", 1)[0]
            self.filter_label.setText(f'{head} · <a href="clear" style="color:#80d8ff">clear</a>')

    # ------------------------------------------------------------------ data
    def clear(self) -> None:
        self.thumbs.reset()
        self.model.clear_all()
        self.worklist_model.clear_all()
        self._selected_path = None
        self._update_filter_label()

    def update_from(self, res: ScanResult) -> int:
        """Add the new part of a (partial) scan result; returns the number of new images."""
        n = self.model.update_from(res)
        self.worklist_model.update_from(res)
        if self.proxy.min_badge is not None:
            self._update_filter_label()
        # Expand only what is new (expandAll on every chunk made a 2,000-file folder
        # freeze the GUI for seconds: it lays out every row again).
        for it in self.model.new_parents:
            self.view.expand(self.proxy.mapFromSource(it.index()))
        self.model.new_parents.clear()
        if n:
            self._thumb_timer.start()
        return n

    def request_visible_thumbnails(self) -> int:
        """Queue thumbnails for the image rows on screen (and a few below); returns how many."""
        vp = self.view.viewport()
        idx = self.view.indexAt(QtCore.QPoint(4, 4))
        n = 0
        seen = 0
        while idx.isValid() and seen < 200:
            seen += 1
            rect = self.view.visualRect(idx)
            if rect.top() > vp.height() + 2 * max(rect.height(), 1) * 4:
                break
            path = idx.data(PATH_ROLE)
            if path and path not in self.thumbs.cache:
                self.thumbs.get(path)
                n += 1
            idx = self.view.indexBelow(idx)
        return n

    def image_paths(self) -> list[str]:
        """Every image path in display (proxy) order of the mode shown (tree or worklist)."""
        out: list[str] = []
        if self.mode() == "worklist":
            px = self.worklist_proxy
            return [px.index(r, 0).data(PATH_ROLE) for r in range(px.rowCount())]

        def walk(parent: QtCore.QModelIndex) -> None:
            for r in range(self.proxy.rowCount(parent)):
                idx = self.proxy.index(r, 0, parent)
                p = idx.data(PATH_ROLE)
                if p:
                    out.append(p)
                walk(idx)

        walk(QtCore.QModelIndex())
        return out

    def count_images(self) -> int:
        return len(self.model.by_path)

    # -------------------------------------------------------------- selection
    def select_path(self, path: str) -> bool:
        """Select an image in the tree and the worklist (emits ``imageSelected`` once)."""
        wit = self.worklist_model.by_path.get(path)
        if wit is not None:
            widx = self.worklist_proxy.mapFromSource(wit.index())
            if widx.isValid():
                self.worklist.setCurrentIndex(widx)
                self.worklist.scrollTo(widx)
        it = self.model.by_path.get(path)
        if it is None:
            return False
        idx = self.proxy.mapFromSource(it.index())
        if not idx.isValid():
            return False
        self.view.setCurrentIndex(idx)
        self.view.scrollTo(idx)
        return True

    def hold_selection(self) -> None:
        """The mouse went down on a row: hold back the image it selects until
        :meth:`release_selection` (a click opens it) or :meth:`cancel_selection` (a drag)."""
        self._held, self._pending = True, None

    def release_selection(self) -> None:
        """The mouse came up without a drag: open the row it selected, as a click does."""
        self._held = False
        path, self._pending = self._pending, None
        if path and path != self._selected_path:
            self._selected_path = path
            self.imageSelected.emit(path)

    def cancel_selection(self) -> None:
        """The press became a drag: open nothing; the highlight goes back to the image the
        active viewport shows."""
        self._held, self._pending = False, None
        if self._selected_path:
            self.select_path(self._selected_path)

    def shutdown(self) -> None:
        """Stop making thumbnails (the window is closing)."""
        self._thumb_timer.stop()
        self.thumbs.shutdown()

    def show_path(self, path: str) -> bool:
        """Select ``path`` without loading it (it is already on screen: the active viewport's
        image), so PgDown goes on from there."""
        self._selected_path = path
        return self.select_path(path)

    def select_object(self, path: str) -> bool:
        """Select an SR / presentation-state row (emits ``objectSelected``)."""
        it = self.model.by_key.get("O:" + path)
        if it is None:
            return False
        idx = self.proxy.mapFromSource(it.index())
        if not idx.isValid():
            return False
        self.view.setCurrentIndex(idx)
        return True

    def selected_path(self) -> str | None:
        return self._selected_path

    def select_next(self, step: int = 1) -> bool:
        """Select the next (``step=1``) or previous (``-1``) image in tree order."""
        paths = self.image_paths()
        if not paths:
            return False
        if self._selected_path in paths:
            i = paths.index(self._selected_path) + step
        else:
            i = 0 if step > 0 else len(paths) - 1
        if not 0 <= i < len(paths):
            return False
        return self.select_path(paths[i])

    def _current_changed(self, cur: QtCore.QModelIndex, _prev) -> None:
        first = cur.siblingAtColumn(0) if cur.isValid() else None  # tree or worklist
        obj = first.data(OBJECT_ROLE) if first is not None else None
        if obj:
            self.objectSelected.emit(obj)
            return
        path = first.data(PATH_ROLE) if first is not None else None
        if path and self._held:
            self._pending = path  # opened on release, unless the press turns into a drag
            return
        if path and path != self._selected_path:
            self._selected_path = path
            self.imageSelected.emit(path)

    def _ai_width(self) -> int:
        """Narrow, the AI column shows the probability and the label's start ("0.86 Abn…", the
        whole text on hover), so the names keep their room once results come in."""
        sample = "0.00 Abn…" if self.width() < NARROW else "0.00 Abnormal"
        return self.view.fontMetrics().horizontalAdvance(sample) + 16

    def resizeEvent(self, ev) -> None:  # noqa: N802
        super().resizeEvent(ev)
        # Narrow (a 1280x720 screen): the names matter more than the count and modality
        # columns; the date stays, or a patient's studies would read "THORAX", "THORAX", "THORAX"
        narrow = self.width() < WIDE
        for c in (COL_COUNT, COL_MOD):
            self.view.setColumnHidden(c, narrow)
        self.view.setColumnWidth(COL_AI, self._ai_width())
        self._thumb_timer.start()

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802
        if obj in (self.view, getattr(self, "worklist", None)) and ev.type() == QtCore.QEvent.Type.KeyPress:
            if ev.key() == QtCore.Qt.Key.Key_PageDown:
                self.select_next(1)
                return True
            if ev.key() == QtCore.Qt.Key.Key_PageUp:
                self.select_next(-1)
                return True
        return super().eventFilter(obj, ev)

    # ----------------------------------------------------------------- badges
    def set_calls(self, items: list[tuple[str, str, str, str | None]]) -> None:
        """The readers' calls on image rows: ``(path, text, tooltip, label)`` (see browser/calls.py)."""
        from cxrviewer.ui.browser.calls import set_call_cells

        set_call_cells(self, items)

    def call_text(self, instance_path: str) -> tuple[str, str] | None:
        """The Call cell of an image row (text, tooltip) in the tree, ``None`` for no such row."""
        from cxrviewer.ui.browser.calls import call_cell_text

        return call_cell_text(self, instance_path)

    def set_badge(self, instance_path: str, text: str, value: float | None) -> None:
        """Show an AI result for one image (e.g. ``"0.82 Abnormal"``) with a sortable value
        (``None`` clears the numeric value: the row sorts below analysed ones)."""
        self.set_badges([(instance_path, text, value)])

    def set_badges(self, items: list[tuple]) -> None:
        """Many badges at once (an AI folder run): the cells change with the model's signals
        blocked, then one ``dataChanged`` per parent and one re-sort/filter. Per-cell signals
        cost ~20 ms each here (header resize + proxy), which would stall the GUI.

        ``items``: ``(path, text, value)`` or ``(path, text, value, heat)``; ``heat`` False draws
        the value in one neutral colour (a research score: never red)."""
        touched: dict[int, tuple[QtGui.QStandardItem, list[int]]] = {}
        self.model.blockSignals(True)
        self.worklist_model.blockSignals(True)
        wrows: list[int] = []
        try:
            for item in items:
                path, text, value = item[:3]
                heat = bool(item[3]) if len(item) > 3 else True
                r = self.worklist_model.set_badge_cell(path, text, value)
                if r is not None:
                    wrows.append(r)
                it = self.model.by_path.get(path)
                if it is None:
                    continue
                parent = it.parent() or self.model.invisibleRootItem()
                cell = parent.child(it.row(), COL_AI)
                cell.setText(text)
                cell.setData(None if value is None else float(value), BADGE_ROLE)
                cell.setData(None if value is None else float(value), SORT_ROLE)
                cell.setToolTip(text)
                if value is not None and not heat:
                    cell.setForeground(QtGui.QBrush(QtGui.QColor(150, 170, 200)))
                elif value is not None:
                    # Colour: red above 0.5 fades to green below (the AI layer may restyle).
                    v = max(0.0, min(1.0, float(value)))
                    cell.setForeground(QtGui.QBrush(QtGui.QColor.fromHsvF((1.0 - v) * 0.33, 0.7, 0.95)))
                touched.setdefault(id(parent), (parent, []))[1].append(it.row())
        finally:
            self.model.blockSignals(False)
            self.worklist_model.blockSignals(False)
        if wrows:
            from cxrviewer.ui.browser.worklist import W_AI

            wm = self.worklist_model
            wm.dataChanged.emit(wm.index(min(wrows), W_AI), wm.index(max(wrows), W_AI))
            self.worklist_proxy.invalidate()
        if not touched:
            return
        for parent, rows in touched.values():
            top, bottom = parent.child(min(rows), COL_AI), parent.child(max(rows), COL_AI)
            self.model.dataChanged.emit(top.index(), bottom.index())
        if self.view.isColumnHidden(COL_AI):
            # fixed width: a ResizeToContents column re-measures every row on each change
            self.view.header().setSectionResizeMode(COL_AI, QtWidgets.QHeaderView.ResizeMode.Interactive)
            self.view.setColumnWidth(COL_AI, self._ai_width())
            self.view.setColumnHidden(COL_AI, False)
        self.proxy.invalidate()
        self._update_filter_label()

    def badge(self, instance_path: str) -> tuple[str, float | None] | None:
        it = self.model.by_path.get(instance_path)
        if it is None:
            return None
        parent = it.parent() or self.model.invisibleRootItem()
        cell = parent.child(it.row(), COL_AI)
        return cell.text(), cell.data(BADGE_ROLE)

    def set_badge_filter(self, min_value: float | None) -> None:
        """Show only images whose badge value is ``>= min_value`` (``None``: show all)."""
        changed = self.proxy.min_badge != min_value
        self.proxy.min_badge = min_value
        self.worklist_proxy.min_badge = min_value
        self.proxy.invalidate()
        self.worklist_proxy.invalidate()
        self.view.expandAll()
        self._thumb_timer.start()
        self._update_filter_label()
        if changed:
            self.badgeFilterChanged.emit(min_value)

    def sort_by_badge(self, descending: bool = True) -> None:
        """Sort by AI value (highest first by default; images without one last): siblings in
        the tree, the whole list in the worklist."""
        from cxrviewer.ui.browser.worklist import W_AI

        order = QtCore.Qt.SortOrder.DescendingOrder if descending else QtCore.Qt.SortOrder.AscendingOrder
        self.view.header().setSortIndicator(COL_AI, order)  # sorts, through sortIndicatorChanged
        self.worklist.horizontalHeader().setSortIndicator(W_AI, order)
        self.proxy.sort(COL_AI, order)
        self.worklist_proxy.sort(W_AI, order)

    def sort_default(self) -> None:
        """Back to scan order (patient, date, series number, instance number)."""
        self.view.header().setSortIndicator(-1, QtCore.Qt.SortOrder.AscendingOrder)
        self.worklist.horizontalHeader().setSortIndicator(-1, QtCore.Qt.SortOrder.AscendingOrder)
        self.proxy.sort(-1)
        self.worklist_proxy.sort(-1)
