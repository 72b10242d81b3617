"""The AI in the viewer: puts the worker, the prediction panel, the heatmap layer and the Model
menu into a main window.

The main window creates one :class:`AiIntegration` after its canvas and study browser exist and
calls :meth:`AiIntegration.start` once it is shown: the model (and torch) then load in the
worker thread while the window is already usable. Everything works without a model.

Reader first: an image opens alone (no analysis, no heatmap, no AI text in the corners or the
browser) until the reader asks: *Analyze image*, *Analyze study/folder*, or the heatmap (H).
With the heatmap on, each image opened is analysed (the reader asked to see AI); a result the
reader already asked for is shown again from the cache. The setting "Analyse automatically
when an image opens" (off by default) restores analysing every image on selection.

An image the out-of-distribution gate refuses shows "Not scored: <reason>" with *Score
anyway*; a result scored anyway carries its caution in the panel, the corner text, exports
and the browser badge.

A multi-finding model: the panel lists the findings; the finding chosen there (the top one
for each new image) is the one whose map the heatmap shows (``Prediction.finding_map``), whose
name the legend, the corner text and the viewer model's AI result carry, and whose map an SC
export burns in. The browser's AI column shows each image's top finding.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.ui.ai import precision
from cxrviewer.ui.ai.heatmap import HeatmapControls, HeatmapLayer
from cxrviewer.ui.ai.prediction_panel import PredictionPanel, is_multi, top_finding
from cxrviewer.ui.ai.workers import (
    AiController,
    AnalyzeResult,
    BatchSummary,
    ModelInfo,
    WorkerError,
)
from cxrviewer.ui.common.screen import scrolling_dock

_log = logging.getLogger(__name__)

#: QSettings key: analyse the image on screen automatically when it is selected (off by default)
AUTO_ANALYZE_KEY = "ai/auto_analyze"
AUTO_ANALYZE_TEXT = "Analyse automatically when an image opens"
#: hidden: print startup timestamps and quit once the model is loaded (``bench startup``)
PROBE_ENV = "CXRVIEWER_STARTUP_PROBE"
#: how often the study browser's badges are refreshed during a folder run
BADGE_FLUSH_MS = 2000


def install(window, model=None) -> AiIntegration:
    """Add the AI to a :class:`~cxrviewer.ui.shell.main_window.MainWindow` (called by its
    ``__init__``; the model is loaded later by :meth:`AiIntegration.start`); results are
    published to the viewer ``model``."""
    ai = AiIntegration(window, window.canvas, window.browser, settings=window.settings.q,
                       toolbar=window.toolbar, model=model, help_menu=window.menus["help"])
    window.menus["model"] = ai.menu
    window.imageCleared.connect(ai._on_image_cleared)
    return ai


class StartupProbe(QtCore.QObject):
    """For ``cxrviewer bench startup``: prints ``CXRVIEWER_TIMING <event> <unix time>`` when the
    event loop first runs with the window shown and when the model is loaded, then quits."""

    def __init__(self, ai: AiIntegration) -> None:
        super().__init__(ai)
        import time

        self._emit("window_shown", time.time() if ai.window.isVisible() else None)
        ai.controller.modelChanged.connect(self._model)
        ai.controller.errored.connect(self._error)

    @staticmethod
    def _emit(what: str, t: float | None) -> None:
        import sys

        sys.stdout.write(f"CXRVIEWER_TIMING {what} {t if t is not None else 'null'}\n")
        sys.stdout.flush()

    def _model(self, info) -> None:
        import time

        if getattr(self, "_done", False):
            return
        self._done = True
        self._emit("model_ready", time.time() if info is not None else None)
        QtCore.QTimer.singleShot(0, QtWidgets.QApplication.instance().quit)

    def _error(self, err) -> None:
        if err.kind == "model":
            import sys

            sys.stdout.write(f"CXRVIEWER_TIMING model_error {err.message}\n")
            self._model(None)


class AiIntegration(QtCore.QObject):
    """Owns the :class:`AiController` and the AI widgets of one main window.

    Parameters
    ----------
    window
        The ``QMainWindow`` (menu bar, status bar, docks).
    canvas
        The :class:`~cxrviewer.ui.canvas.canvas.ImageCanvas` (``add_layer``, ``imageShown``, ``img``,
        ``set_extra_text``).
    browser
        The :class:`~cxrviewer.ui.browser.study_browser.StudyBrowser` (``set_badge``,
        ``image_paths``, ``set_badge_filter``, ``sort_by_badge``), or ``None``.
    engine_factory
        ``model_dir -> engine`` run on the worker thread (tests pass a stand-in);
        default ``Engine.load``.
    settings
        Where the auto-analyse choice is kept (default ``QSettings()``).
    """

    def __init__(self, window: QtWidgets.QMainWindow, canvas, browser=None,
                 engine_factory: Callable | None = None, settings: QtCore.QSettings | None = None,
                 toolbar: QtWidgets.QToolBar | None = None, open_train: Callable | None = None,
                 model=None, help_menu: QtWidgets.QMenu | None = None) -> None:
        super().__init__(window)
        self.window, self.canvas, self.browser = window, canvas, browser
        #: the viewer model (:class:`cxrviewer.viewer.ViewerModel`) the results are published
        #: to, for exports, SR and the other features to read (``None`` in a bare test window)
        self.model = model
        #: Model → Train opens ``open_train(self)`` (the shell hands in the Train dialog's opener)
        self.open_train = open_train
        #: ``card -> [(title, rows)]``: sections the shell adds to the model card (the readers'
        #: agreement, from ui/feedback), shown beside the validation figures
        self.agreement: Callable | None = None
        self.settings = settings if settings is not None else QtCore.QSettings()
        self.precision = precision.load(self.settings)  # Model > Precision (ui/precision.py)
        self.controller = AiController(engine_factory or precision.factory(self), parent=self)
        self.heatmap = HeatmapLayer(self)
        self.heatmap.attach(canvas)
        self.last_error: WorkerError | None = None
        self.last_summary: BatchSummary | None = None
        self._badges: dict[str, tuple[str, float | None]] = {}
        self._badge_model: tuple[str, str] | None = None  # (name, version) behind the browser's badges
        self._badge_timer = QtCore.QTimer(self)
        self._badge_timer.setSingleShot(True)
        self._badge_timer.timeout.connect(self.flush_badges)
        self._model_dir: str | None = None
        #: content keys of results the reader chose to see although the gate refused them
        self._forced: set[str] = set()
        #: (content key, finding) -> the finding's map as a uint8 index image (the last few)
        self._finding_cams: dict[tuple[str, str], object] = {}

        # -- panel (dock)
        self.panel = PredictionPanel()
        self.controls = HeatmapControls(self.heatmap)
        self.panel.extra.addWidget(self.controls)
        self.dock, self._scroll = scrolling_dock(window, "AI", "aiDock", self.panel)

        # -- status bar: device, folder progress + Cancel
        sb = window.statusBar()
        self.device_label = QtWidgets.QLabel("AI: starting…")
        self.device_label.setObjectName("aiDevice")
        self.progress_bar = QtWidgets.QProgressBar()
        self.progress_bar.setMaximumWidth(180)
        self.progress_bar.setFormat("AI %v/%m")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the analysis after the image in progress")
        self.cancel_button.clicked.connect(lambda _=False: self.cancel())
        for w in (self.progress_bar, self.cancel_button):
            w.hide()
            sb.addPermanentWidget(w)
        sb.addPermanentWidget(self.device_label)

        # -- actions and menu
        self._build_actions(toolbar, help_menu)
        precision.install_menu(self)

        # -- wiring
        c = self.controller
        c.modelChanged.connect(self._on_model)
        c.modelLoading.connect(self._on_loading)
        c.resultReady.connect(self._on_result)
        c.badgeReady.connect(self._on_badge)
        c.errored.connect(self._on_error)
        c.started.connect(self._on_batch_started)
        c.progress.connect(self._on_progress)
        c.finished.connect(self._on_batch_finished)
        canvas.imageShown.connect(self._on_image_shown)
        self.panel.analyzeRequested.connect(lambda: self.analyze_current())
        self.panel.cardRequested.connect(self.show_card)
        self.panel.scoreAnywayRequested.connect(self.score_anyway)
        self.panel.findingChosen.connect(self._on_finding_chosen)
        self.heatmap.toggled.connect(self._on_heatmap_toggled)
        app = QtWidgets.QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        window.installEventFilter(self)

    # ------------------------------------------------------------------ actions
    def _build_actions(self, toolbar: QtWidgets.QToolBar | None, help_menu: QtWidgets.QMenu | None = None) -> None:
        w = self.window
        A = QtGui.QAction
        self.act_heatmap = A("Show &heatmap", w, checkable=True, checked=self.heatmap.enabled)
        self.act_heatmap.setShortcut(QtGui.QKeySequence("H"))
        self.act_heatmap.setToolTip("Show or hide the Grad-CAM heatmap (H). Recomputes nothing.")
        self.act_heatmap.toggled.connect(lambda on: self.heatmap.set_enabled(on))  # the active viewport's layer
        self.heatmap.toggled.connect(self._sync_heatmap_action)
        self.act_analyze = A("&Analyze image", w)
        self.act_analyze.setShortcut(QtGui.QKeySequence("Ctrl+Shift+A"))
        self.act_analyze.triggered.connect(lambda _=False: self.analyze_current())
        self.act_analyze_all = A("Analyze &study/folder", w)
        self.act_analyze_all.setShortcut(QtGui.QKeySequence("Ctrl+Shift+F"))
        self.act_analyze_all.triggered.connect(lambda _=False: self.analyze_all())
        self.act_cancel = A("&Cancel analysis", w)
        self.act_cancel.setEnabled(False)
        self.act_cancel.triggered.connect(lambda _=False: self.cancel())
        self.act_auto = A(AUTO_ANALYZE_TEXT, w, checkable=True)
        self.act_auto.setToolTip("Off (default): the image opens alone and the AI runs only when you ask")
        self.act_auto.setChecked(self.auto_analyze)
        self.act_auto.toggled.connect(self.set_auto_analyze)
        self.act_models = A("&Models…", w)
        self.act_models.triggered.connect(self.show_models)
        self.act_card = A("Show model &card…", w)
        self.act_card.triggered.connect(self.show_card)
        self.act_reload = A("&Reload model", w)
        self.act_reload.triggered.connect(lambda: self.start(self._model_dir))
        self.act_train = A("&Train / Refresh model…", w)
        self.act_train.setToolTip("Train a model on labelled data in a separate process, then activate it")
        self.act_train.triggered.connect(lambda _=False: self.show_train())
        self.act_sort = A("Sort browser by P(Abnormal)", w)
        self.act_sort.triggered.connect(self.sort_by_probability)
        self.act_filter = A("Show only images at or above the threshold", w, checkable=True)
        self.act_filter.toggled.connect(self.filter_by_threshold)
        for a in (self.act_heatmap, self.act_analyze, self.act_analyze_all):
            a.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
            w.addAction(a)  # shortcuts work even when the menu bar is hidden
        self.menu = QtWidgets.QMenu("&Model", w)
        if help_menu is not None:  # keep Help last, as everywhere
            w.menuBar().insertMenu(help_menu.menuAction(), self.menu)
        else:
            w.menuBar().addMenu(self.menu)
        self.models_menu = self.menu.addMenu("Active model")
        self.models_menu.aboutToShow.connect(self._fill_models_menu)
        for a in (self.act_models, self.act_card, self.act_reload, self.act_train, None, self.act_analyze, self.act_analyze_all,
                  self.act_cancel, self.act_auto, None, self.act_heatmap, None, self.act_sort, self.act_filter):
            if a is None:
                self.menu.addSeparator()
            else:
                self.menu.addAction(a)
        if toolbar is None:
            toolbar = w.addToolBar("AI")
            toolbar.setObjectName("aiToolbar")
        self.toolbar = toolbar
        toolbar.addAction(self.act_heatmap)
        toolbar.addAction(self.act_analyze)

    def set_canvas(self, canvas, layer: HeatmapLayer) -> None:
        """Follow another viewport's ``canvas`` and its heatmap ``layer`` (the active viewport
        changed): the panel, the H action and the heatmap controls then show and act on it.
        Its image is already on screen, so a result for it comes from the cache, if any."""
        if canvas is self.canvas:
            return
        self.canvas.imageShown.disconnect(self._on_image_shown)
        self.heatmap.toggled.disconnect(self._on_heatmap_toggled)
        self.heatmap.toggled.disconnect(self._sync_heatmap_action)
        self.canvas, self.heatmap = canvas, layer
        canvas.imageShown.connect(self._on_image_shown)
        layer.toggled.connect(self._on_heatmap_toggled)
        layer.toggled.connect(self._sync_heatmap_action)
        self.controls.set_layer(layer)
        self._sync_heatmap_action(layer.enabled)
        self.panel.clear_result()
        self.controller.forget_current()  # a result still coming belongs to the other viewport
        img = self._current()
        if img is not None and self.controller.ready:
            hit = self.controller.lookup(img.path, img.frame, cam=False)
            if hit is not None:
                refused, forced = self._shown(hit)
                self.panel.show_result(hit, forced=forced)
                if layer.cam is not None and is_multi(hit.prediction) and (forced or not refused):
                    # the panel leads with the top finding again: so does this viewport's map
                    full = self.controller.lookup(img.path, img.frame, cam=True)
                    if full is not None:
                        layer.set_cam(self._cam_for(full))
                self._publish(hit, forced)
            if layer.enabled and layer.cam is None:
                # its heatmap is on but has no map yet (an image opened there while another
                # viewport was active): the reader asked to see AI on this viewport
                self.analyze_current(explicit=False, asked=True)
        self._name_subject()

    def _sync_heatmap_action(self, on: bool) -> None:
        if self.act_heatmap.isChecked() != on:
            blocker = QtCore.QSignalBlocker(self.act_heatmap)
            self.act_heatmap.setChecked(on)
            del blocker

    # ------------------------------------------------------------------ settings
    @property
    def auto_analyze(self) -> bool:
        v = self.settings.value(AUTO_ANALYZE_KEY, False)
        return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")

    def set_auto_analyze(self, on: bool) -> None:
        self.settings.setValue(AUTO_ANALYZE_KEY, bool(on))
        if on:
            self.analyze_current(explicit=False)

    # ------------------------------------------------------------------ model
    def start(self, model_dir: str | os.PathLike | None = None) -> None:
        """Load the model in the worker (``None``: ``$CXRVIEWER_MODEL`` if set, else the
        registry's active model). Call it once the window is shown."""
        if model_dir is None:
            model_dir = os.environ.get("CXRVIEWER_MODEL") or None
        self._model_dir = None if model_dir is None else os.fspath(model_dir)
        if os.environ.get(PROBE_ENV) and not getattr(self, "_probe", None):
            self._probe = StartupProbe(self)
        self.controller.load_model(self._model_dir)

    def _on_loading(self) -> None:
        self.device_label.setText("AI: loading model…")
        self.panel.set_loading()

    def _on_model(self, info: ModelInfo | None) -> None:
        if info is None:
            reason = self.controller.model_error
            self.device_label.setText("AI: no model")
            self.device_label.setToolTip(reason or "")
            self.panel.set_no_model(reason)
            return
        if self._badge_model is not None and self._badge_model != (info.name, info.version):
            self.clear_badges()  # the browser's results are the previous model's
        shown = self.panel.result
        if shown is not None and (shown.prediction.model_name, shown.prediction.model_version) != (info.name, info.version):
            # another model: the map and numbers on screen are the old model's
            self.heatmap.set_cam(None)
            self.panel.clear_result()
            self.canvas.set_extra_text([])
        self.device_label.setText(f"AI: {info.device} · {info.backend}" + (" · int8" if info.precision == "int8" else ""))
        self.device_label.setToolTip(f"{info.name} {info.version} loaded in {info.load_s:.1f} s")
        self.panel.set_model(info)
        self._name_subject()
        self._fit_dock(multi=bool(info.card.get("findings")) if info.card else False)
        self.analyze_current(explicit=False)

    def _fit_dock(self, multi: bool) -> None:
        """A multi-finding model's panel needs room for its findings list: the docks sharing the
        right side (Window/Level, Reader call) would otherwise press it to a few lines (seen at
        1920x1080 with the Reader call's 18-row table). Up to a third of the screen: the docks
        above and below keep their room and the window still fits the screen."""
        if not multi:
            self._scroll.setMinimumHeight(0)
            return
        screen = self.window.screen()
        avail = screen.availableGeometry().height() if screen is not None else 720
        self._scroll.setMinimumHeight(min(self.panel.sizeHint().height(), int(avail * 0.35)))

    def show_models(self) -> None:
        from cxrviewer.ml.registry import Registry  # reads card.json files only (no torch)
        from cxrviewer.ui.ai.model_dialogs import ModelsDialog

        active = self.controller.model.name if self.controller.model else None
        dlg = ModelsDialog(Registry(), active, self.window, agreement=self.agreement)
        dlg.activateRequested.connect(self.activate)
        self.controller.modelChanged.connect(dlg.refresh)
        dlg.exec()
        self.controller.modelChanged.disconnect(dlg.refresh)

    def show_card(self) -> None:
        from cxrviewer.ui.ai.model_dialogs import ModelCardDialog

        m = self.controller.model
        if m is None:
            QtWidgets.QMessageBox.information(self.window, "Model card",
                                              self.controller.model_error or "No model is loaded.")
            return
        extra = self.agreement(m.card) if self.agreement is not None else ()
        ModelCardDialog(m.card, self.window, extra=extra).exec()

    def score_anyway(self) -> None:
        """The reader chose to see the score of an image the gate refused: shown everywhere
        with its caution (panel, corner text, exports, badge)."""
        res = self.panel.result
        if res is None:
            return
        self._forced.add(res.key)
        self._on_result(res)
        self._on_badge(res)

    def show_train(self):
        """Model → Train / Refresh model… (modeless; training runs in a child process)."""
        # the shell hands the Train dialog's opener in (features never import each other)
        return self.open_train(self) if self.open_train is not None else None

    def activate(self, name: str) -> None:
        self.controller.activate_model(name)

    def _fill_models_menu(self) -> None:
        self.models_menu.clear()
        try:
            from cxrviewer.ml.registry import Registry

            entries = Registry().list()
        except Exception as e:  # show why instead of an empty menu
            self.models_menu.addAction(f"(registry unreadable: {e})").setEnabled(False)
            return
        if not entries:
            self.models_menu.addAction("(no model installed)").setEnabled(False)
        cur = self.controller.model
        group = QtGui.QActionGroup(self.models_menu)
        for e in entries:
            a = self.models_menu.addAction(f"{e.name} {e.version}" + (" (bundled)" if e.bundled else ""))
            a.setCheckable(True)
            a.setChecked(cur is not None and cur.name == e.name and cur.version == e.version)
            a.triggered.connect(lambda _=False, n=e.name: self.activate(n))
            group.addAction(a)

    # ------------------------------------------------------------------ analysis
    def _current(self):
        """The LoadedImage on screen, or None."""
        return getattr(self.canvas, "img", None)

    def analyze_current(self, explicit: bool = True, asked: bool = False) -> int | None:
        """Analyse the image on screen (``explicit=False``: only if auto-analyse is on or
        ``asked``, i.e. the heatmap is on)."""
        img = self._current()
        if img is None:
            return None
        if not explicit and not (asked or self.auto_analyze):
            return None
        if not self.controller.ready and not self.controller.loading:
            if explicit:
                self.panel.set_no_model(self.controller.model_error or "No model is loaded.")
            return None
        self.panel.set_pending()
        return self.controller.analyze(img.path, img.frame, img)

    def _on_image_cleared(self) -> None:
        self.heatmap.set_cam(None)
        self.panel.clear_result()
        self.controller.forget_current()

    def _on_image_shown(self) -> None:
        # a new image: the old map and text belong to another image
        self.heatmap.set_cam(None)
        self.canvas.set_extra_text([])
        self.panel.clear_result()
        self.controller.forget_current()
        if self.auto_analyze or self.heatmap.enabled:
            # the reader asked for AI on screen (setting, or the heatmap is on)
            self.analyze_current(explicit=False, asked=True)
            return
        img = self._current()
        if img is not None and self.controller.ready:
            # a result the reader asked for earlier (this image, or a study/folder run)
            # the heatmap is off here: a result without its map (a folder run's) will do
            hit = self.controller.lookup(img.path, img.frame, cam=False)
            if hit is not None:
                self._on_result(hit)

    def _on_heatmap_toggled(self, on: bool) -> None:
        # H is a request for AI on screen: analyse the image if it has no result yet, or one
        # without its map (a folder run computes no maps)
        res = self.panel.result
        if on and self._current() is not None and (res is None or res.cam_u8 is None):
            self.analyze_current(explicit=True)

    def _is_current(self, res: AnalyzeResult) -> bool:
        img = self._current()
        return img is not None and os.fspath(img.path) == res.path and int(img.frame) == res.frame

    def _shown(self, res: AnalyzeResult) -> tuple[bool, bool]:
        """(refused by the gate, scored anyway by the reader)."""
        gate = getattr(res.prediction, "gate", None)
        refused = gate is not None and not gate.ok
        return refused, refused and res.key in self._forced

    def _on_result(self, res: AnalyzeResult) -> None:
        if not self._is_current(res):
            return
        refused, forced = self._shown(res)
        self.panel.show_result(res, forced=forced)  # chooses the finding shown (multi-finding)
        # a refused image shows no map until the reader scores it anyway
        self.heatmap.set_cam(self._cam_for(res) if (forced or not refused) else None)
        self._name_subject()
        self.canvas.set_extra_text(self.panel.text_lines())  # the panel applies the verdict policy
        self._publish(res, forced)

    def _cam_for(self, res: AnalyzeResult):
        """The map to show for ``res``: the worker's (the top finding's, or Abnormal's), or the
        chosen finding's from the same forward pass (``Prediction.finding_map``)."""
        name = self.panel.chosen
        pred = res.prediction
        if name is None or not is_multi(pred) or res.cam_u8 is None:
            return res.cam_u8
        cls = getattr(pred, "cam_class", None)
        if cls is not None and 0 <= cls < len(pred.findings) and pred.findings[cls].name == name:
            return res.cam_u8  # the worker's map is this finding's
        hit = self._finding_cams.get((res.key, name))
        if hit is None:
            from cxrviewer.render.colormaps import cam_to_index

            m = pred.finding_map(name)
            if m is None:
                return None
            hit = cam_to_index(m)
            while len(self._finding_cams) >= 4:  # full-size maps: keep only the last few
                self._finding_cams.pop(next(iter(self._finding_cams)))
            self._finding_cams[(res.key, name)] = hit
        return hit

    def _name_subject(self) -> None:
        """The legend names what the map explains: the chosen finding, or Abnormal."""
        self.controls.set_subject(self.panel.chosen or ("the top finding" if self.panel.multi_model else "Abnormal"))

    def _on_finding_chosen(self, name: str) -> None:
        """The reader chose a finding in the panel's list: its map, legend, corner text, model."""
        res = self.panel.result
        if res is None or not self._is_current(res):
            return
        refused, forced = self._shown(res)
        if forced or not refused:
            self.heatmap.set_cam(self._cam_for(res))
        self._name_subject()
        self.canvas.set_extra_text(self.panel.text_lines())
        self._publish(res, forced)

    def _publish(self, res: AnalyzeResult, forced: bool, retry: bool = True) -> None:
        """The result into the viewer model, on the viewport that shows its image."""
        if self.model is None:
            return
        from cxrviewer.viewer import AiResult

        vp = self.model.active
        if vp.image is None or vp.image.path != res.path:
            i = self.model.index_of(res.path)
            if i is None:
                if retry:
                    # a cached result shown while the image opens: the canvas told us before the
                    # model bridge set the viewport's image (which would clear the AI result)
                    QtCore.QTimer.singleShot(0, lambda: self.panel.result is res and self._is_current(res)
                                             and self._publish(res, forced, retry=False))
                return
            vp = self.model[i]
        p = res.prediction
        card = getattr(self.controller.model, "card", None) or {}
        refused, _ = self._shown(res)
        f = self.panel.chosen_score() if self.panel.result is res and (forced or not refused) else None
        vp.set_ai(AiResult(label=str(p.label), probability=float(p.probability_abnormal), model=str(p.model_name),
                           threshold=float(p.threshold), path=res.path, frame=res.frame,
                           has_heatmap=res.cam_u8 is not None, forced=forced,
                           weights_sha256=str(card.get("weights_sha256", "")),
                           lines=tuple(self.panel.text_lines()), prediction=p, card=card or None,
                           content_key=str(getattr(res, "key", "") or ""),
                           finding=f.name if f is not None else "",
                           finding_probability=float(f.probability) if f is not None else None))

    def _on_badge(self, res: AnalyzeResult) -> None:
        if res.batch_id is not None and self.panel.result is None and self._is_current(res):
            self._on_result(res)  # a study/folder run reached the image on screen
        if self.browser is None:
            return
        p = res.probability
        self._badge_model = (res.prediction.model_name, res.prediction.model_version)
        refused, forced = self._shown(res)
        if refused and not forced:
            self._badges[res.path] = ("not scored (out of distribution)", None, False)
        elif (top := top_finding(res.prediction)) is not None:
            # a multi-finding model: the top finding, worded by its own policy (no verdict
            # word for a research score); the value (sort, filter) is the top probability
            pol = self.panel.finding_policy(top.name)
            if pol.verdict:  # validated here: its present/absent word
                text = f"{top.probability:.2f} {top.name} " + ("present" if top.positive else "absent")
            else:  # a research score: the number and the finding, no verdict word (short: the
                # column is narrow and elides)
                text = f"{top.probability:.2f} {top.name}" + ("" if top.op_point is not None
                                                               else " (no operating point)")
            self._badges[res.path] = (text + (" ⚠ scored anyway" if forced else ""), p, pol.verdict)
        else:
            # never oversold: without a validation behind it the badge is a number, no verdict word
            word = res.prediction.label if self.panel.policy.verdict else "research"
            # a research score is drawn in a neutral colour (no red), like the panel's bar
            self._badges[res.path] = (f"{p:.2f} {word}" + (" ⚠ scored anyway" if forced else ""), p,
                                      self.panel.policy.verdict)
        if not self._badge_timer.isActive():
            # coalesce: during a folder run the tree is updated about once a second, since
            # each update re-sorts/filters and repaints it on the GUI thread
            self._badge_timer.start(BADGE_FLUSH_MS if self.controller.batch_running else 0)

    def clear_badges(self) -> None:
        """Remove every AI badge from the browser (e.g. after switching to another model)."""
        self._badge_timer.stop()
        self._badges.clear()
        self._badge_model = None
        if self.browser is not None and hasattr(self.browser, "set_badges"):
            # every image, also those the threshold filter hides
            self.browser.set_badges([(path, "", None) for path in list(self.browser.model.by_path)])

    def flush_badges(self) -> None:
        """Show the pending browser badges now (one batched tree update)."""
        self._badge_timer.stop()
        if not self._badges or self.browser is None:
            return
        # (path, text, value, heat colours: a verdict may be red, a research score may not)
        items = [(path, text, value, heat) for path, (text, value, heat) in self._badges.items()]
        self._badges.clear()
        if hasattr(self.browser, "set_badges"):
            self.browser.set_badges(items)
        else:
            for it in items:
                self.browser.set_badge(*it[:3])

    def _on_error(self, err: WorkerError) -> None:
        self.last_error = err
        _log.warning("AI %s error%s: %s", err.kind, f" ({err.path})" if err.path else "", err.message)
        if err.kind == "image" and err.path and self.browser is not None and err.request_id == self.controller.batch_id:
            self._badges[err.path] = ("error", None, False)  # the browser shows which images failed
            if not self._badge_timer.isActive():
                self._badge_timer.start(BADGE_FLUSH_MS)
        where = f"{err.path}: " if err.path else ""
        self.window.statusBar().showMessage(f"AI: {where}{err.message}", 10000)
        if err.kind == "model":
            if self.controller.model is None:
                self.device_label.setText("AI: no model")
                self.panel.set_no_model(err.message)
            else:
                self.panel.state_label.setText(err.message)
        elif err.request_id == self.controller.current_id:
            self.panel.set_error(f"{where}{err.message}")

    def analyze_all(self) -> int | None:
        """Analyse every image in the study browser (progress in the status bar, Cancel)."""
        if self.controller.batch_running:
            return None  # one folder run at a time; Cancel stops it
        paths = self.browser.image_paths() if self.browser is not None else []
        if not paths:
            img = self._current()
            paths = [img.path] if img is not None else []
        if not paths:
            return None
        if not self.controller.ready and not self.controller.loading:
            self.panel.set_no_model(self.controller.model_error or "No model is loaded.")
            return None
        return self.controller.analyze_many(paths)

    def cancel(self) -> None:
        self.controller.cancel()
        self.cancel_button.setEnabled(False)

    def _on_batch_started(self, rid: int) -> None:
        self.act_analyze_all.setEnabled(False)
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.show()
        self.act_cancel.setEnabled(True)

    def _on_progress(self, rid: int, done: int, total: int) -> None:
        if rid != self.controller.batch_id:
            return
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)

    def _on_batch_finished(self, s: BatchSummary) -> None:
        self.last_summary = s
        self.flush_badges()
        self.progress_bar.hide()
        self.cancel_button.hide()
        self.act_cancel.setEnabled(False)
        self.act_analyze_all.setEnabled(True)
        what = "cancelled" if s.cancelled else "done"
        extra = f", {s.failed} failed" if s.failed else ""
        self.window.statusBar().showMessage(
            f"AI analysis {what}: {s.done}/{s.total} images in {s.elapsed_s:.1f} s{extra}", 10000)

    # ------------------------------------------------------------------ browser
    def sort_by_probability(self) -> None:
        if self.browser is not None:
            self.browser.sort_by_badge(descending=True)

    def filter_by_threshold(self, on: bool) -> None:
        if self.browser is None:
            return
        m = self.controller.model
        self.browser.set_badge_filter((m.threshold if m else 0.5) if on else None)

    # ------------------------------------------------------------------ lifetime
    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 - Qt name
        if obj is self.window and ev.type() == QtCore.QEvent.Type.Close:
            self.shutdown()
        return False

    def shutdown(self) -> None:
        self.controller.shutdown()
