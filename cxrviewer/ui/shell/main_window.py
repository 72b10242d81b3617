"""The main window: study browser (left), canvas (centre), window/level (right), unreadable
files (bottom), menus with a shortcut for every action, status bar with scan progress,
Cancel and the pixel probe.

Hooks for other layers (the AI layer uses them): ``menus`` (dict by name), ``toolbar``,
``imageLoaded(LoadedImage)`` and ``imageCleared()`` signals, ``current_image``,
``canvas.add_layer`` / ``canvas.set_extra_text``, ``browser.set_badge``.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.core.types import FileError, LoadedImage, ScanResult
from cxrviewer.ui.browser.study_browser import StudyBrowser
from cxrviewer.ui.canvas.canvas import TOOL_NAMES, ImageCanvas, rgb_to_qimage
from cxrviewer.ui.canvas.window_level import WindowLevelPanel
from cxrviewer.ui.common.loaders import ImageLoader, Scanner
from cxrviewer.ui.common.settings import Settings
from cxrviewer.ui.shell.dialogs import (
    ErrorPanel,
    ExportDialog,
    ShortcutsDialog,
    TagBrowser,
    show_about,
)
from cxrviewer.viewer import LAYOUTS, ViewerModel

TOOL_KEYS = {"wl": "W", "pan": "P", "zoom": "Z", "ruler": "D", "probe": "O", "magnify": "M"}


class MainWindow(QtWidgets.QMainWindow):
    """The viewer window.

    Signals
    -------
    scanFinished(ScanResult)
        A folder scan completed (or was cancelled: ``result.cancelled``).
    imageLoaded(LoadedImage)
        A decoded image is on the canvas.
    imageFailed(path, reason)
        The selected image could not be decoded (it is listed in the error panel).
    imageCleared()
        No image is shown any more (new folder, decode failure).
    openingPath(str)
        A folder or file is about to be opened (the viewports empty; its scan follows).
    """

    scanFinished = QtCore.Signal(object)
    imageLoaded = QtCore.Signal(object)
    imageFailed = QtCore.Signal(str, str)
    imageCleared = QtCore.Signal()
    openingPath = QtCore.Signal(str)

    def __init__(self, settings: Settings | None = None, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.settings = settings or Settings()
        self.setWindowTitle("cxrviewer")
        self.setAcceptDrops(True)
        from cxrviewer.ui.common.screen import fit_to_screen

        fit_to_screen(self, QtCore.QSize(1600, 1000))  # the first time; later, what the reader left
        self.current_image: LoadedImage | None = None
        self.current_path: str | None = None
        self.last_scan: ScanResult | None = None
        self._scan_root: str | None = None
        self._want_first = False
        #: a scan that adds to what is open (add_path) rather than replacing it, and those waiting
        self._adding: str | None = None
        self._add_queue: list[str] = []
        #: the state of the reading, outside the widgets (Qt-free; exports read it)
        self.model = ViewerModel()
        # The features, handed to each other by this shell (set as they are installed below;
        # declared here so that every feature can rely on the attribute, never probe for it).
        self.ai = None
        self.measure_tools = None  # the active viewport's measurement tools
        self.reading_state = None
        self.annotation_history = None
        self.cine = None
        self.dicom = None
        self.pacs = None
        self.viewport_binding = None
        self.prior_compare = None
        self.feedback = None
        self.train = None  # Model → Train's opener; it keeps the Train dialog

        self.canvas = ImageCanvas(self)  # always the active viewport's canvas (viewport 0 at start)
        from cxrviewer.ui.canvas.viewports import ViewportGrid

        self.viewports = ViewportGrid(self.canvas, self)
        self.setCentralWidget(self.viewports)
        self.browser = StudyBrowser(self)
        self.wl_panel = WindowLevelPanel(self.canvas, self)
        self.errors = ErrorPanel(self)
        self.scanner = Scanner(self)
        self.loader = ImageLoader(self)

        self.browser_dock = self._dock("Studies", self.browser, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, "studies")
        self.wl_dock = self._dock("Window / Level", self.wl_panel, QtCore.Qt.DockWidgetArea.RightDockWidgetArea, "window_level")
        self.errors_dock = self._dock("Unreadable files", self.errors, QtCore.Qt.DockWidgetArea.BottomDockWidgetArea, "errors")
        self.errors_dock.hide()
        # Narrow enough that the canvas keeps most of a 1280x720 (or 960-wide) window.
        self.browser_dock.setMinimumWidth(240)
        self.wl_dock.setMinimumWidth(220)

        self._build_status_bar()
        self.actions_list: list[QtGui.QAction] = []
        self.menus: dict[str, QtWidgets.QMenu] = {}
        self._build_actions()
        self._connect()
        # The AI layer (prediction panel, heatmap, Model menu); its model loads later, in its
        # own thread, when app.run calls ai.start() after the window is shown.
        from cxrviewer.ui.ai.integration import install as install_ai

        self.ai = install_ai(self, self.model)
        from cxrviewer.ui.train.train_dialog import TrainOpener

        self.train = TrainOpener()  # Model → Train / Refresh model… (reader feedback joins below)
        self.ai.open_train = self.train
        # Measurement tools, per-image reading state (window, zoom/pan, orientation, annotations;
        # before the DICOM objects, so that a presentation state the reader opens wins over the
        # remembered state), Undo/Redo, cine, the browser filter's link to the AI menu.
        from cxrviewer.ui.reading.reading_tools import install as install_reading_tools

        install_reading_tools(self)
        from cxrviewer.ui.browser.worklist import link_ai_filter

        link_ai_filter(self.browser, self.ai.act_filter)
        # File -> Export as DICOM..., stored AI results from SRs, presentation states applied
        from cxrviewer.ui.dicom.dicom_objects import install as install_dicom

        self.dicom = install_dicom(self, self.model)
        if self.ai is not None:  # a stored AI result (SR) beside the live one
            self.ai.panel.extra.insertWidget(0, self.dicom.stored_label)
        else:
            self.statusBar().addPermanentWidget(self.dicom.stored_label)
        # File → Query/Retrieve… and Send to PACS… (nothing connects until the reader asks)
        from cxrviewer.ui.pacs.integration import install as install_pacs

        self.pacs = install_pacs(self, export=self.dicom.export)
        # Layouts, drag into a viewport, sync; panels and keys follow the active viewport
        from cxrviewer.ui.shell.viewport_binding import install as install_viewports

        self.viewport_binding = install_viewports(self)
        from cxrviewer.ui.reading.prior_compare import (
            install as install_prior,  # View → Compare with Prior
        )

        self.prior_compare = install_prior(self)
        # Reading → the reader's call (N/B/Y…), its dock, the Call column; the model card's
        # agreement and the Train dialog's "Reader feedback" source come from it
        from cxrviewer.ui.feedback.integration import install as install_feedback

        self.feedback = install_feedback(self, self.model, set_calls=self.browser.set_calls)
        self.ai.agreement = self.feedback.agreement_sections
        self.train.feedback = self.feedback.data_source
        self.dicom.reader_call = self.feedback.reader_call  # Export as DICOM → SR carries the call
        self._restore_layout()

    # ------------------------------------------------------------------ layout
    def _dock(self, title: str, w: QtWidgets.QWidget, area, name: str) -> QtWidgets.QDockWidget:
        d = QtWidgets.QDockWidget(title, self)
        d.setObjectName(f"dock_{name}")
        d.setWidget(w)
        d.setFeatures(
            QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, d)
        return d

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.status_label = QtWidgets.QLabel("Ready", self)
        self.probe_label = QtWidgets.QLabel("", self)
        self.probe_label.setMinimumWidth(360)
        self.progress = QtWidgets.QProgressBar(self)
        self.progress.setMaximumWidth(200)
        self.progress.setFormat("%v / %m files")
        self.progress.hide()
        self.cancel_button = QtWidgets.QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop scanning (what was read so far stays)")
        self.cancel_button.hide()
        self.errors_button = QtWidgets.QPushButton("", self)
        self.errors_button.setFlat(True)
        self.errors_button.hide()
        sb.addWidget(self.status_label, 1)
        sb.addPermanentWidget(self.probe_label)
        sb.addPermanentWidget(self.errors_button)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)

    def add_action(self, menu: QtWidgets.QMenu, text: str, slot, shortcut=None, checkable=False,
                   tip: str = "") -> QtGui.QAction:
        """An action in ``menu`` with a window-wide shortcut, listed by the shortcuts dialog
        (the factory every feature uses for its menu entries)."""
        a = QtGui.QAction(text, self)
        if shortcut:
            if isinstance(shortcut, (list, tuple)):
                a.setShortcuts([QtGui.QKeySequence(s) for s in shortcut])
            else:
                a.setShortcut(QtGui.QKeySequence(shortcut))
        a.setCheckable(checkable)
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(f"{text.replace('&', '').rstrip('.…')} ({a.shortcut().toString()})" if shortcut else tip)
        if checkable:
            a.toggled.connect(slot)
        else:
            a.triggered.connect(lambda _=False: slot())
        menu.addAction(a)
        self.addAction(a)  # shortcuts work even when the menu bar is hidden
        self.actions_list.append(a)
        return a

    _action = add_action  # the name the window's own menus were built with

    def _build_actions(self) -> None:
        mb = self.menuBar()
        K = QtGui.QKeySequence.StandardKey
        m_file = self.menus["file"] = mb.addMenu("&File")
        self.act_open_folder = self._action(m_file, "Open &Folder…", self.open_folder_dialog, "Ctrl+Shift+O", tip="Open a folder (or CD) of DICOM/PNG/JPEG files")
        self.act_open_file = self._action(m_file, "&Open File…", self.open_file_dialog, K.Open, tip="Open a file or a DICOMDIR")
        self.recent_menu = m_file.addMenu("Open &Recent")
        self.menus["recent"] = self.recent_menu
        self._refresh_recent()
        self.act_open_sample = self._action(m_file, "Open &Sample Study", self.open_sample, "Ctrl+Shift+S", tip="The bundled RG1 chest CR")
        m_file.addSeparator()
        self.act_export = self._action(m_file, "&Export Screenshot…", self.export_dialog, "Ctrl+E", tip="PNG/JPEG of the view or the whole image, annotations burned in")
        self.act_copy = self._action(m_file, "&Copy View to Clipboard", self.copy_to_clipboard, "Ctrl+Shift+C", tip="Copy what is on screen")
        m_file.addSeparator()
        self.act_cancel_scan = self._action(m_file, "Cancel &Scan", self.cancel_scan, "Ctrl+.", tip="Stop scanning the folder")
        self.act_quit = self._action(m_file, "&Quit", self.close, "Ctrl+Q")

        m_view = self.menus["view"] = mb.addMenu("&View")
        self.act_fit = self._action(m_view, "&Fit to Window", lambda: self.canvas.fit(), "F", tip="Whole image in the window")
        self.act_one = self._action(m_view, "&1:1 (Actual Pixels)", lambda: self.canvas.one_to_one(), "Ctrl+1", tip="One screen pixel per image pixel")
        self.act_zoom_in = self._action(m_view, "Zoom &In", lambda: self.canvas.zoom_by(1.25), ["+", "="])
        self.act_zoom_out = self._action(m_view, "Zoom &Out", lambda: self.canvas.zoom_by(0.8), "-")
        m_view.addSeparator()
        self.act_rot_cw = self._action(m_view, "Rotate 90° &Clockwise", lambda: self.canvas.rotate(1), "R")
        self.act_rot_ccw = self._action(m_view, "Rotate 90° Counter-clockwise", lambda: self.canvas.rotate(-1), "Shift+R")
        self.act_flip_h = self._action(m_view, "Flip &Horizontal", lambda: self.canvas.flip_h(), "Shift+H")
        self.act_flip_v = self._action(m_view, "Flip &Vertical", lambda: self.canvas.flip_v(), "Shift+V")
        self.act_invert = self._action(m_view, "&Invert", lambda on: self.canvas.set_invert(on), "I", checkable=True)
        self.act_reset = self._action(m_view, "&Reset View", self._reset_view, "Ctrl+R", tip="Orientation, zoom and window back to the defaults")
        m_view.addSeparator()
        self.act_overlay = self._action(m_view, "Corner &Text", lambda on: self.canvas.set_overlay_visible(on), "T", checkable=True)
        self.act_overlay.setChecked(True)
        self.act_tags = self._action(m_view, "DICOM &Tags…", self.show_tags, "Ctrl+T")
        m_view.addSeparator()
        self.act_next = self._action(m_view, "&Next Image", lambda: self.browser.select_next(1), "PgDown")
        self.act_prev = self._action(m_view, "&Previous Image", lambda: self.browser.select_next(-1), "PgUp")
        self.act_next_frame = self._action(m_view, "Next &Frame", lambda: self.step_frame(1), "Ctrl+PgDown",
                                           tip="Multi-frame images: the next frame")
        self.act_prev_frame = self._action(m_view, "Previous F&rame", lambda: self.step_frame(-1), "Ctrl+PgUp",
                                           tip="Multi-frame images: the previous frame")
        m_view.addSeparator()
        m_panels = m_view.addMenu("&Panels")
        for d, key in ((self.browser_dock, "Ctrl+Shift+B"), (self.wl_dock, "Ctrl+Shift+W"), (self.errors_dock, "Ctrl+Shift+E")):
            a = d.toggleViewAction()
            a.setShortcut(QtGui.QKeySequence(key))
            m_panels.addAction(a)
            self.addAction(a)
            self.actions_list.append(a)
        self.menus["panels"] = m_panels

        m_win = self.menus["window"] = mb.addMenu("&Window/Level")
        self.act_auto = self._action(m_win, "&Auto Window", self.wl_panel.apply_auto, "A", tip="Robust 0.5–99.5 percentile window")
        self.preset_actions = []
        for i in range(9):
            a = self._action(m_win, f"Preset {i + 1}", lambda i=i: self.wl_panel.apply_preset_index(i), str(i + 1))
            self.preset_actions.append(a)

        m_tools = self.menus["tools"] = mb.addMenu("&Tools")
        self.tool_group = QtGui.QActionGroup(self)
        self.tool_group.setExclusive(True)
        self.tool_actions: dict[str, QtGui.QAction] = {}
        for tool, name in TOOL_NAMES.items():
            a = self._action(m_tools, name, lambda on, t=tool: on and self.canvas.set_tool(t), TOOL_KEYS[tool], checkable=True,
                             tip=f"Left button: {name}")
            self.tool_group.addAction(a)
            self.tool_actions[tool] = a
        self.tool_actions["wl"].setChecked(True)
        self.tool_actions["magnify"].setStatusTip("Left button: a loupe under the cursor (Tools → Magnifier Zoom: 2–4×)")
        from cxrviewer.ui.canvas.magnifier import FACTORS, Loupe

        m_zoom = m_tools.addMenu("Magnifier Zoom")
        zoom_group = QtGui.QActionGroup(self)
        for f in FACTORS:
            a = m_zoom.addAction(f"{f:g}×")
            a.setCheckable(True)
            a.setChecked(f == Loupe.factor)
            a.triggered.connect(lambda _=False, f=f: Loupe.set_factor(f))
            zoom_group.addAction(a)
        m_tools.addSeparator()
        # the rulers are the active viewport's measurement tools' (the viewer model's "ruler" kind)
        self.act_del_ruler = self._action(m_tools, "&Delete Selected Ruler", lambda: self.measure_tools is not None and self.measure_tools.delete_ruler(), [QtGui.QKeySequence.StandardKey.Delete, "Backspace"])
        self.act_clear_rulers = self._action(m_tools, "&Clear All Rulers", lambda: self.measure_tools is not None and self.measure_tools.clear_kind("ruler"), "Ctrl+Shift+Del")

        m_help = self.menus["help"] = mb.addMenu("&Help")
        self.act_shortcuts = self._action(m_help, "&Keyboard Shortcuts", self.show_shortcuts, "F1")
        self.act_about = self._action(m_help, "&About cxrviewer", lambda: show_about(self), "Shift+F1")

        tb = self.toolbar = QtWidgets.QToolBar("Main", self)
        tb.setObjectName("toolbar_main")
        tb.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.setMovable(False)
        self.addToolBar(tb)
        tb.addAction(self.act_open_folder)  # Open File stays in the menu (Ctrl+O): room at 1280 px
        tb.addSeparator()
        for tool, a in self.tool_actions.items():
            if tool != "magnify":  # M and the Tools menu: the toolbar keeps its room at 1280 px
                tb.addAction(a)
        tb.addSeparator()
        for a in (self.act_auto, self.act_fit, self.act_one, self.act_rot_cw, self.act_flip_h, self.act_flip_v, self.act_invert, self.act_reset):
            tb.addAction(a)
        tb.addSeparator()
        for a in (self.act_overlay, self.act_tags, self.act_export):
            tb.addAction(a)
        self._short_labels()
        self._update_enabled()

    def _short_labels(self) -> None:
        """Compact toolbar texts (menus keep the long ones)."""
        short = {
            self.act_open_folder: "Open Folder", self.act_open_file: "Open File", self.act_auto: "Auto",
            self.act_fit: "Fit", self.act_one: "1:1", self.act_rot_cw: "Rotate", self.act_flip_h: "Flip H",
            self.act_flip_v: "Flip V", self.act_invert: "Invert", self.act_reset: "Reset",
            self.act_overlay: "Text", self.act_tags: "Tags", self.act_export: "Export",
        }
        short[self.tool_actions["wl"]] = "W/L"
        for a, t in short.items():
            a.setIconText(t)

    def _connect(self) -> None:
        self.scanner.partial.connect(self._scan_partial)
        self.scanner.progressed.connect(self._scan_progress)
        self.scanner.finished.connect(self._scan_finished)
        self.scanner.errored.connect(self._scan_errored)
        self.cancel_button.clicked.connect(self.cancel_scan)
        self.loader.loaded.connect(self._image_loaded)
        self.loader.failed.connect(self._image_failed)
        self.browser.imageSelected.connect(self.load_path)
        self.browser.thumbs.failed.connect(lambda p, r: self.add_error(FileError(p, r)))
        self.canvas.probed.connect(self._probed)
        # named slots, not lambdas: the viewport binding moves them to the active canvas
        self.canvas.windowChanged.connect(self._canvas_window_changed)
        self.canvas.toolChanged.connect(self._canvas_tool_changed)
        self.canvas.frameStepRequested.connect(self._wheel_frame)  # the wheel on a multi-frame image
        self.errors.countChanged.connect(self._errors_count)
        self.errors_button.clicked.connect(lambda: (self.errors_dock.show(), self.errors_dock.raise_()))

    @property
    def scan_root(self) -> str | None:
        """The folder or file the last scan was started on."""
        return self._scan_root

    def bind_canvas(self, canvas) -> None:
        """Make ``canvas`` the window's canvas (the active viewport changed): the probe text,
        the title and the tool actions follow it; its tool becomes the old canvas's."""
        old = self.canvas
        if old is canvas:
            return
        tool = old.tool()
        old.probed.disconnect(self._probed)
        old.windowChanged.disconnect(self._canvas_window_changed)
        old.toolChanged.disconnect(self._canvas_tool_changed)
        old.frameStepRequested.disconnect(self._wheel_frame)
        self.canvas = canvas
        canvas.frameStepRequested.connect(self._wheel_frame)
        canvas.probed.connect(self._probed)
        canvas.windowChanged.connect(self._canvas_window_changed)
        canvas.toolChanged.connect(self._canvas_tool_changed)
        canvas.set_tool(tool)
        self.probe_label.setText("")

    def show_loaded(self, img: LoadedImage) -> None:
        """Show an already decoded image in the active viewport, as if the window's loader had
        just delivered it (a drop or a viewport's own load that became the active one's)."""
        self.current_path = img.path
        self._image_loaded(self.loader.current_id, img)

    def refresh(self) -> None:
        """Actions enabled and title for the current image (after the active viewport changed)."""
        self._update_enabled()
        self._update_title()

    def _canvas_window_changed(self, *_a) -> None:
        self._update_title()

    def _canvas_tool_changed(self, tool: str) -> None:
        self.tool_actions[tool].setChecked(True)

    def fit_docks_to_screen(self, avail: QtCore.QRect) -> None:
        """Give the Studies dock its first width for a screen of ``avail`` (about a fifth of it,
        at least its minimum), so names and dates read on a wide screen."""
        from cxrviewer.ui.common.screen import side_dock_width

        d = self.browser_dock
        # never narrower than it opens by itself (the width a 1280x720 screen has always had)
        width = side_dock_width(avail, minimum=max(d.minimumWidth(), d.sizeHint().width()))
        self.resizeDocks([self.browser_dock], [width], QtCore.Qt.Orientation.Horizontal)

    def _restore_layout(self) -> None:
        from cxrviewer.ui.common.screen import available, fit_to_screen, on_screen

        geo = self.settings.get("window/geometry")
        state = self.settings.get("window/state")
        if isinstance(geo, QtCore.QByteArray):
            self.restoreGeometry(geo)
            if not on_screen(self.frameGeometry(), available(self)):  # e.g. the monitor is gone
                fit_to_screen(self, QtCore.QSize(1600, 1000))
        layout = self.settings.get("viewer/layout")
        if self.viewport_binding is not None and layout in LAYOUTS:
            self.viewports.set_layout(layout)
        if isinstance(state, QtCore.QByteArray):
            self.restoreState(state)
            self.errors_dock.hide()
        else:  # the first run: the Studies dock grows with the screen (what the reader left, later)
            self.fit_docks_to_screen(available(self))
        if self.cine is not None:
            self.cine.bar.sync()  # a restored state must not show the cine bar for no image

    def _update_enabled(self) -> None:
        has = self.current_image is not None
        for a in (self.act_export, self.act_copy, self.act_tags, self.act_fit, self.act_one, self.act_rot_cw,
                  self.act_rot_ccw, self.act_flip_h, self.act_flip_v, self.act_reset, self.act_zoom_in, self.act_zoom_out):
            a.setEnabled(has)
        self.act_tags.setEnabled(has and self.current_image.kind == "dicom" if has else False)
        multi = has and self.current_image.n_frames > 1
        self.act_next_frame.setEnabled(multi)
        self.act_prev_frame.setEnabled(multi)

    # -------------------------------------------------------------- opening
    def open_folder_dialog(self) -> None:
        start = self.settings.get("last_dir", str(Path.home()))
        d = QtWidgets.QFileDialog.getExistingDirectory(self, "Open folder", start)
        if d:
            self.open_path(d)

    def open_file_dialog(self) -> None:
        start = self.settings.get("last_dir", str(Path.home()))
        f, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open file", start, "Images (*.dcm *.dicom *.DCM DICOMDIR *.png *.jpg *.jpeg);;All files (*)"
        )
        if f:
            self.open_path(f)

    def open_sample(self) -> None:
        from cxrviewer.paths import sample_paths

        paths = sample_paths()
        if not paths:
            self.show_message("The sample study (resources/sample/) is not in this installation", error=True)
            return
        self.open_path(str(paths[0]) if len(paths) == 1 else str(Path(paths[0]).parent))

    def open_path(self, path: str | os.PathLike) -> int:
        """Scan ``path`` (folder, file or DICOMDIR) and show its first image when decoded.

        Returns the scan request id.
        """
        path = os.fspath(path)
        self._adding, self._add_queue = None, []
        self.openingPath.emit(path)
        self.browser.clear()
        self.errors.clear()
        self.canvas.clear()
        self.current_image = None
        self.current_path = None
        self.imageCleared.emit()
        self._update_enabled()
        self._scan_root = path
        self._want_first = True
        self.settings.add_recent(path)
        self.settings.set("last_dir", str(Path(path).parent if os.path.isfile(path) else path))
        self._refresh_recent()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.show_message(f"Scanning {path} …")
        self.setWindowTitle(f"cxrviewer — {os.path.basename(path.rstrip(os.sep)) or path}")
        return self.scanner.start(path)

    def cancel_scan(self) -> None:
        if self.scanner.running():
            self.scanner.cancel()
            self._scan_done_ui()
            self.show_message(f"Scan cancelled: {self.browser.count_images()} images listed")

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        items = self.settings.recent()
        for p in items:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, p=p: self.open_path(p))
        if items:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear Recent", lambda: (self.settings.clear_recent(), self._refresh_recent()))
        self.recent_menu.setEnabled(bool(items))

    # -------------------------------------------------------------- scanning
    def add_path(self, path: str | os.PathLike) -> int | None:
        """Add the studies under ``path`` to those open (a PACS retrieve: the local store
        accumulates): the browser gains rows, the open folder and the image on screen stay, and
        priors are found across both. Returns the scan request id (``None``: queued behind the
        scan running now)."""
        path = os.fspath(path)
        if self.scanner.running():
            self._add_queue.append(path)
            return None
        self._adding = path
        self._want_first = self.current_image is None  # nothing on screen yet: show its first image
        self.progress.setRange(0, 0)
        self.progress.show()
        self.show_message(f"Adding {path} …")
        return self.scanner.start(path)

    def _scan_partial(self, rid: int, res: ScanResult) -> None:
        if rid != self.scanner.current_id:
            return
        if self._adding is not None:  # what this scan found joins what was open
            from cxrviewer.viewer.studies import merge_scans

            res = merge_scans(self.last_scan, res)
        self.browser.update_from(res)
        for e in res.errors:
            self.add_error(e)
        if self._want_first and self.browser.count_images():
            self._want_first = False
            self.browser.select_next(1)

    def _scan_progress(self, rid: int, done: int, total: int) -> None:
        if rid != self.scanner.current_id:
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _scan_finished(self, rid: int, res: ScanResult) -> None:
        if rid != self.scanner.current_id:
            return
        self._scan_partial(rid, res)
        added, self._adding = self._adding, None
        if added is not None:
            from cxrviewer.viewer.studies import merge_scans

            n_new = len(res.instances())
            res = merge_scans(self.last_scan, res)
        self.last_scan = res
        self._scan_done_ui()
        n = len(res.instances())
        msg = f"{n} image{'s' if n != 1 else ''} in {res.files_seen} files"
        if added is not None:
            msg = f"Added {n_new} image{'s' if n_new != 1 else ''} from {added}: {n} open in all"
        if res.cancelled:
            msg = "Scan cancelled: " + msg + " read so far"
        if res.errors:
            msg += f", {len(res.errors)} unreadable (see the panel)"
        if n == 0:
            self.canvas.clear()
            self.canvas.set_placeholder("No readable images here" + (" — see Unreadable files" if res.errors else ""))
        self.show_message(msg, error=n == 0)
        self.scanFinished.emit(res)
        if self._add_queue:
            self.add_path(self._add_queue.pop(0))

    def _scan_errored(self, rid: int, message: str) -> None:
        if rid != self.scanner.current_id:
            return
        self._adding, self._add_queue = None, []
        self._scan_done_ui()
        self.add_error(FileError(self._scan_root or "", message.split(": ", 1)[-1]))
        self.show_message(message, error=True)
        self.canvas.set_placeholder(f"Cannot open: {message}")
        self.scanFinished.emit(ScanResult(errors=[FileError(self._scan_root or "", message)]))

    def _scan_done_ui(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()

    # ---------------------------------------------------------------- images
    def load_path(self, path: str, frame: int = 0) -> int:
        """Decode ``path`` (frame ``frame``) off the GUI thread; stale results are dropped by
        request id."""
        self.current_path = path
        self.show_message(f"Loading {os.path.basename(path)} …")
        return self.loader.request(path, frame)

    def step_frame(self, step: int) -> int | None:
        """Show the next/previous frame of a multi-frame image (wrapping), keeping the
        orientation and the window the reader chose."""
        img = self.current_image
        if img is None or img.n_frames <= 1:
            return None
        return self.load_path(img.path, (img.frame + step) % img.n_frames)

    def show_frame(self, frame: int) -> int | None:
        """Show frame ``frame`` (0-based, clamped) of the multi-frame image on screen, keeping
        the orientation and the window (the cine bar's slider)."""
        img = self.current_image
        if img is None or img.n_frames <= 1:
            return None
        frame = max(0, min(int(frame), img.n_frames - 1))
        if frame == img.frame:
            return None
        return self.load_path(img.path, frame)

    def _wheel_frame(self, step: int) -> None:
        # the wheel stops at the first and last frame (PgUp/PgDown and cine wrap)
        img = self.current_image
        if img is not None:
            self.show_frame(img.frame + step)

    def _image_loaded(self, rid: int, img: LoadedImage) -> None:
        if rid != self.loader.current_id:
            return  # the reader has moved on
        prev = self.current_image
        self.current_image = img
        if prev is not None and prev.path == img.path and not img.is_color:
            # another frame of the same image: same window and orientation
            self.canvas.set_image(img, preset=self.canvas.current_preset(), keep_view=True)
        else:
            self.canvas.set_image(img)
            self.act_invert.setChecked(False)
        self._update_enabled()
        self._update_title()
        tip = f"{os.path.basename(img.path)}: {img.cols}x{img.rows}, {img.photometric}"
        if img.n_frames > 1:
            tip += f", frame {img.frame + 1}/{img.n_frames} (Ctrl+PgUp/PgDown)"
        if img.transfer_syntax:
            tip += f", {img.transfer_syntax}"
        g = img.geometry
        tip += f", {g.col_spacing_mm:.3f}x{g.row_spacing_mm:.3f} {g.label}" if g else ", uncalibrated (px)"
        self.show_message(tip)
        self.imageLoaded.emit(img)

    def _image_failed(self, rid: int, path: str, reason: str) -> None:
        self.add_error(FileError(path, reason))
        if rid != self.loader.current_id:
            return
        self.current_image = None
        self.canvas.clear()
        self.canvas.set_placeholder(f"Cannot display {os.path.basename(path)}:\n{reason}")
        self._update_enabled()
        self.show_message(f"{os.path.basename(path)}: {reason}", error=True)
        self.imageCleared.emit()
        self.imageFailed.emit(path, reason)

    def add_error(self, err: FileError) -> None:
        self.errors.add(err)

    def _errors_count(self, n: int) -> None:
        self.errors_button.setVisible(n > 0)
        self.errors_button.setText(f"⚠ {n} unreadable")
        if n == 1:
            self.errors_dock.show()

    # ------------------------------------------------------------- status
    def show_message(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #ff8a80;" if error else "")

    def _probed(self, info) -> None:
        self.probe_label.setText(info.text() if info is not None else "")

    def _update_title(self) -> None:
        img = self.current_image
        if img is None:
            return
        h = img.header
        who = " ".join(x for x in (h.modality, h.view_position) if x)
        self.setWindowTitle(f"cxrviewer — {os.path.basename(img.path)}" + (f" ({who})" if who else ""))

    def _reset_view(self) -> None:
        self.canvas.reset_view()
        self.act_invert.setChecked(False)

    # -------------------------------------------------------------- dialogs
    def show_tags(self) -> TagBrowser | None:
        if self.current_image is None or self.current_image.kind != "dicom":
            return None
        dlg = TagBrowser(self.current_image.path, self)
        dlg.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.show()
        return dlg

    def show_shortcuts(self) -> ShortcutsDialog:
        from cxrviewer.ui.shell.shortcuts import action_rows

        dlg = ShortcutsDialog(action_rows(self), self)  # from the real actions: cannot drift
        dlg.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.show()
        return dlg

    # --------------------------------------------------------------- export
    def export_image(self, path: str | os.PathLike, *, native: bool = False, anonymize: bool = False,
                     annotations: bool = True, fmt: str | None = None) -> Path:
        """Render (see :meth:`ImageCanvas.render_array`) and write atomically as PNG/JPEG."""
        from cxrviewer.render.export import save_image

        arr = self.canvas.render_array(native=native, anonymize=anonymize, annotations=annotations)
        return save_image(arr, path, fmt)

    def export_dialog(self) -> None:
        if self.current_image is None:
            return
        dlg = ExportDialog(self)
        dlg.copy_button.clicked.connect(lambda: (self._copy(dlg.options()), dlg.reject()))
        if dlg.exec() != QtWidgets.QDialog.DialogCode.Accepted:
            return
        o = dlg.options()
        ext = ".jpg" if o["format"] == "JPEG" else ".png"
        base = Path(self.current_image.path).stem + ("_anon" if o["anonymize"] else "") + ext
        from cxrviewer.viewer.exports import default_folder

        # the last export folder, else beside the image when writable (never just home)
        start = os.path.join(default_folder(self.current_image.path, self.settings.get("export_dir", None)), base)
        f, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export screenshot", start, "PNG (*.png);;JPEG (*.jpg *.jpeg)")
        if not f:
            return
        if not Path(f).suffix:
            f += ext
        try:
            self.export_image(f, native=o["native"], anonymize=o["anonymize"], annotations=o["annotations"])
        except Exception as e:  # noqa: BLE001 - shown to the user
            QtWidgets.QMessageBox.critical(self, "Export failed", str(e))
            return
        self.settings.set("export_dir", str(Path(f).parent))
        self.show_message(f"Exported {f}")

    def _copy(self, o: dict) -> None:
        arr = self.canvas.render_array(native=o["native"], anonymize=o["anonymize"], annotations=o["annotations"])
        QtGui.QGuiApplication.clipboard().setImage(rgb_to_qimage(arr))
        self.show_message("Copied to the clipboard")

    def copy_to_clipboard(self) -> None:
        if self.current_image is not None:
            self._copy({"native": False, "anonymize": False, "annotations": True})

    # ---------------------------------------------------------- drag & drop
    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:  # noqa: N802
        if ev.mimeData().hasUrls() and any(u.isLocalFile() for u in ev.mimeData().urls()):
            ev.acceptProposedAction()

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if paths:
            ev.acceptProposedAction()
            # Several dropped files: open their common folder.
            self.open_path(paths[0] if len(paths) == 1 else os.path.commonpath(paths))

    # ----------------------------------------------------------------- close
    def shutdown(self) -> None:
        """Stop background work (called on close and by the test fixture)."""
        if self.reading_state is not None:
            self.reading_state.flush()
        self.scanner.shutdown()
        self.loader.shutdown()
        self.browser.shutdown()
        if self.ai is not None:
            self.ai.shutdown()
        if self.pacs is not None:
            self.pacs.shutdown()
        if self.viewport_binding is not None:
            self.viewport_binding.shutdown()
        if self.feedback is not None:
            self.feedback.shutdown()
        if self.train is not None:  # a training still running stops with the window
            self.train.shutdown()

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:  # noqa: N802
        self.settings.set("window/geometry", self.saveGeometry())
        self.settings.set("window/state", self.saveState())
        self.settings.set("viewer/layout", self.viewports.layout_name())
        self.settings.sync()
        self.shutdown()
        super().closeEvent(ev)
