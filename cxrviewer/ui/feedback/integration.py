"""Reader calls in the main window: the Reading menu and its keys, the "Reader call" dock,
the calls on the browser's rows, and the handles the shell passes on to the model card
(agreement) and the Train dialog (data source).

Keys (none clashes with the viewer's others; Help → Keyboard Shortcuts lists them):
N Normal, B Abnormal, Y agree with the AI result on screen, Shift+Y disagree with it,
Shift+Backspace withdraw, Shift+N the note. Each keystroke is one transaction in the store
(:class:`cxrviewer.feedback.FeedbackStore`, ~7 ms with its fsync, so on the GUI thread); a
change is a new call (the latest wins) and a withdrawal keeps the history.

The image's key is its pixel digest (:func:`cxrviewer.feedback.image_key`): computed off the
GUI thread when an image is shown (~20 ms for a large radiograph), memoised per file (path,
frame, size, mtime); a key pressed before it is ready waits for it. Browser rows get their
calls by path when a folder is scanned (a hint: the store's last path of each image), and by
key for the images the reader opened, which is authoritative (a renamed copy has the same key).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
from collections.abc import Callable

from PySide6 import QtCore, QtWidgets

from cxrviewer.feedback import (
    Call,
    FeedbackError,
    FeedbackSource,
    FeedbackStore,
    ModelOutput,
    agreement_stats,
    data_source,
    default_reader,
    image_key,
    label_from_model,
)
from cxrviewer.feedback.keys import READER_ENV
from cxrviewer.ui.common.file_memo import FileMemo
from cxrviewer.ui.common.screen import scrolling_dock
from cxrviewer.ui.feedback.panel import CallPanel
from cxrviewer.ui.feedback.text import LABEL_TEXT, agreement_rows, row_cell

_log = logging.getLogger(__name__)

#: the settings key of the reader's name (``[feedback] reader`` in settings.ini, read by
#: :func:`cxrviewer.feedback.default_reader` too)
READER_KEY = "feedback/reader"
#: (action attribute, menu text, shortcut, tip)
KEYS = {
    "normal": ("Call &Normal", "N", "Your call on this image: Normal"),
    "abnormal": ("Call &Abnormal", "B", "Your call on this image: Abnormal"),
    "agree": ("A&gree with AI", "Y", "Your call = the AI result on screen"),
    "disagree": ("&Disagree with AI", "Shift+Y", "Your call = the opposite of the AI result on screen"),
    "withdraw": ("&Withdraw My Call", "Shift+Backspace", "Withdraw your call on this image (history kept)"),
    "note": ("Call &Note…", "Shift+N", "Type a note kept with your call (Enter)"),
}
AGREEMENT_TITLE = "Agreement with this site's readers"
#: browser cell: (image path, text, tooltip, label for the colour)
CallCell = tuple[str, str, str, str | None]


def install(window, model, set_calls: Callable[[list[CallCell]], None] | None = None) -> FeedbackIntegration:
    """Add reader calls to a :class:`~cxrviewer.ui.shell.main_window.MainWindow` (the shell
    calls it and hands in the viewer ``model`` and the browser's ``set_calls``)."""
    return FeedbackIntegration(window, model, set_calls)


class FeedbackIntegration(QtCore.QObject):
    """Owns the store connection, the Reading menu, the dock and the browser cells of one window.

    Signals
    -------
    callChanged(object)
        The reader's current call on the image being read (``Call`` or ``None``), after a
        keystroke or when another image is shown and its call is known.
    keyReady(str)
        The image being read has its key (the call shown is its call from then on).
    rowsChanged(list)
        Browser cells were set for these paths.
    """

    callChanged = QtCore.Signal(object)
    keyReady = QtCore.Signal(str)
    rowsChanged = QtCore.Signal(list)
    _keyComputed = QtCore.Signal(int, object)

    def __init__(self, window, model, set_calls: Callable[[list[CallCell]], None] | None = None) -> None:
        super().__init__(window)
        self.window, self.model, self._set_calls = window, model, set_calls
        self.store: FeedbackStore | None = None
        self.error: str | None = None
        try:
            self.store = FeedbackStore()
        except FeedbackError as e:  # a broken database must not take the viewer down
            self.error = str(e)
            _log.warning("reader feedback unavailable: %s", e)
        self.reader = self._reader_name()
        self.image = None  # the LoadedImage being read
        self.key: str | None = None
        self.call: Call | None = None
        self._verdicts: dict[str, str] = {}
        self._memo: FileMemo[str] = FileMemo()  # image keys
        self._rid = 0
        self._future: concurrent.futures.Future | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedback-key")
        self._scan_paths: list[str] = []
        self._keyComputed.connect(self._key_computed)

        self.panel = CallPanel()
        self.dock, _ = scrolling_dock(window, "Reader call", "dock_reader_call", self.panel)
        self._build_actions()
        self.panel.set_reader(self.reader)
        self.panel.noteEdited.connect(self._note_edited)
        self.panel.verdictChanged.connect(self._verdict_changed)
        self.panel.readerChangeRequested.connect(self.ask_reader)

        window.imageLoaded.connect(self._on_image)
        window.imageCleared.connect(self._on_cleared)
        window.scanFinished.connect(self._on_scan)
        for vp in model:
            vp.ai_changed.connect(self._ai_changed)
        model.active_changed.connect(self._active_changed)
        self._update_enabled()

    # ------------------------------------------------------------------ actions
    def _build_actions(self) -> None:
        w = self.window
        before = (w.menus.get("model") or w.menus["help"]).menuAction()
        self.menu = QtWidgets.QMenu("&Reading", w.menuBar())
        w.menuBar().insertMenu(before, self.menu)
        w.menus["reading"] = self.menu
        slots = {"normal": lambda: self.record("normal"), "abnormal": lambda: self.record("abnormal"),
                 "agree": lambda: self.agree(True), "disagree": lambda: self.agree(False),
                 "withdraw": self.withdraw, "note": self.focus_note}
        self.actions = {}
        for name, (text, key, tip) in KEYS.items():
            if name in ("agree", "withdraw"):
                self.menu.addSeparator()
            self.actions[name] = w.add_action(self.menu, text, slots[name], key, tip=tip)
        self.menu.addSeparator()
        # no key of its own (rare; every keyed action is in the window's shortcut list)
        self.act_reader = self.menu.addAction("Reader &Name…")
        self.act_reader.setStatusTip("Who is reading: calls are kept per reader")
        self.act_reader.triggered.connect(lambda _=False: self.ask_reader())
        toggle = self.dock.toggleViewAction()
        self.menu.addAction(toggle)
        panels = w.menus.get("panels")
        if panels is not None:
            panels.addAction(toggle)
        for name, text, row, col in (("normal", "Normal  N", 0, 0), ("abnormal", "Abnormal  B", 0, 1),
                                     ("agree", "Agree AI  Y", 1, 0), ("disagree", "Disagree  ⇧Y", 1, 1),
                                     ("withdraw", "Withdraw  ⇧⌫", 2, 0), ("note", "Note…  ⇧N", 2, 1)):
            self.panel.add_button(name, text, self.actions[name], row, col)

    def _update_enabled(self) -> None:
        ok = self.store is not None and self.image is not None
        mo = self.model_output() if ok else None
        scored = mo is not None and mo.scored and mo.label in LABEL_TEXT
        for name in ("normal", "abnormal", "note"):
            self.actions[name].setEnabled(ok)
        self.actions["agree"].setEnabled(ok and scored)
        self.actions["disagree"].setEnabled(ok and scored)
        self.actions["withdraw"].setEnabled(ok and self.call is not None)

    # ------------------------------------------------------------------ reader
    def _reader_name(self) -> str:
        """``$CXRVIEWER_READER``, else the window's setting, else the OS user."""
        env = os.environ.get(READER_ENV, "").strip()
        if env:
            return env
        v = self.window.settings.get(READER_KEY)
        if isinstance(v, str) and v.strip():
            return v.strip()
        return default_reader(self.window.settings.q.fileName())

    def set_reader(self, name: str) -> None:
        """Read as ``name`` from now on (kept in the settings); the panel and rows follow."""
        name = name.strip()
        if not name or name == self.reader:
            return
        self.window.settings.set(READER_KEY, name)
        self.window.settings.sync()
        self.reader = name
        self.panel.set_reader(name)
        self._load_call()
        self.refresh_rows(self._scan_paths)

    def ask_reader(self) -> None:
        name, ok = QtWidgets.QInputDialog.getText(self.window, "Reader", "Your name (calls are kept per reader):",
                                                  text=self.reader)
        if ok:
            self.set_reader(name)

    # ------------------------------------------------------------------ the image and its key
    def _on_image(self, img) -> None:
        if self.image is not None and img.path == self.image.path and img.frame == self.image.frame:
            self._ai_changed()  # the same image again (another viewport became active)
            return
        self.image, self.key, self.call = img, None, None
        self._verdicts = {}
        self._rid += 1
        self.panel.set_call(None)
        self.panel.set_others([])
        self._ai_changed()
        key = self._memo_key(img.path, img.frame)
        if key is not None:
            self._set_key(key)
            return
        rid = self._rid
        self._future = self._pool.submit(image_key, img)
        self._future.add_done_callback(lambda f, rid=rid: self._keyComputed.emit(rid, f))

    def _on_cleared(self) -> None:
        self.image, self.key, self.call, self._future = None, None, None, None
        self._rid += 1
        self._verdicts = {}
        self.panel.set_call(None, image=False)
        self.panel.set_others([])
        self.panel.set_findings(None, {})
        self._update_enabled()

    def _memo_key(self, path: str, frame: int) -> str | None:
        return self._memo.get(path, frame)

    def _remember(self, path: str, frame: int, key: str) -> None:
        self._memo.put(path, frame, key)

    @QtCore.Slot(int, object)
    def _key_computed(self, rid: int, fut: concurrent.futures.Future) -> None:
        if rid != self._rid or self.key is not None:
            return  # another image by now, or a keystroke already waited for this key
        try:
            key = fut.result()
        except Exception as e:  # noqa: BLE001 - shown, never raised into Qt
            self.window.show_message(f"Reader call: cannot key {os.path.basename(self.image.path)}: {e}", error=True)
            return
        self._set_key(key)

    def _set_key(self, key: str) -> None:
        self.key = key
        self._remember(self.image.path, self.image.frame, key)
        self._load_call()
        self.keyReady.emit(key)

    def ensure_key(self) -> str | None:
        """The key of the image being read, waiting for the worker if it is still hashing."""
        if self.key is None and self.image is not None:
            fut = self._future
            try:
                key = fut.result() if fut is not None else image_key(self.image)
            except Exception as e:  # noqa: BLE001
                self.window.show_message(f"Reader call: {e}", error=True)
                return None
            self._set_key(key)
        return self.key

    def _load_call(self) -> None:
        """The reader's call and the others' on the image being read, from the store."""
        if self.store is None or self.key is None:
            return
        try:
            calls = self.store.calls_for(self.key)
        except FeedbackError as e:
            self.window.show_message(str(e), error=True)
            return
        self.call = next((c for c in calls if c.reader == self.reader), None)
        self._verdicts = dict(self.call.findings) if self.call else {}
        self._show(calls)

    def _show(self, calls: list[Call]) -> None:
        self.panel.set_call(self.call, pending=self._verdicts)
        self.panel.set_others([c for c in calls if c.reader != self.reader])
        self.panel.set_findings(self.model_output() or (self.call.model if self.call else None), self._verdicts)
        self._update_enabled()
        self._set_row(self.image.path, calls)
        self.callChanged.emit(self.call)

    # ------------------------------------------------------------------ the AI on screen
    def model_output(self) -> ModelOutput | None:
        """The AI result on screen for the image being read, as the store records it."""
        img = self.image
        if img is None or self.model is None:
            return None
        ai = self.model.active.ai
        if ai is None or ai.prediction is None or ai.path != img.path or int(ai.frame) != int(img.frame):
            return None
        return ModelOutput.from_prediction(ai.prediction, {"weights_sha256": ai.weights_sha256},
                                           content_key=ai.content_key)

    def _ai_changed(self, *_a) -> None:
        if self.image is None:
            return
        self.panel.set_findings(self.model_output() or (self.call.model if self.call else None), self._verdicts)
        self._update_enabled()

    def _active_changed(self, *_a) -> None:
        self._ai_changed()

    # ------------------------------------------------------------------ changes
    def record(self, label: str, findings: dict[str, str] | None = None, model: ModelOutput | None = None) -> Call | None:
        """Record the reader's ``label`` on the image being read (with the AI result on screen,
        the finding verdicts and the note); ``None`` (and the reason shown) when it cannot."""
        if self.store is None:
            self.window.show_message(f"Reader calls are unavailable: {self.error}", error=True)
            return None
        key = self.ensure_key()
        if key is None:
            return None
        img = self.image
        mo = model or self.model_output() or (self.call.model if self.call else None)
        verdicts = dict(self._verdicts if findings is None else findings)
        known = set(mo.findings) if mo is not None else set()
        verdicts = {n: v for n, v in verdicts.items() if n in known or (v == "added" and mo is None)}
        try:
            call = self.store.record(key, self.reader, label, findings=verdicts, note=self.panel.note_text(),
                                     path=img.path, frame=img.frame, patient_id=img.header.patient_id.strip(),
                                     model=mo)
        except FeedbackError as e:
            self.window.show_message(str(e), error=True)
            return None
        self.call = call
        self._verdicts = dict(call.findings)
        self._show(self.store.calls_for(key))
        self.window.show_message(f"Your call on {os.path.basename(img.path)}: {LABEL_TEXT[call.label]} "
                                 "(N / B to change, Shift+Backspace to withdraw)")
        return call

    def agree(self, agree: bool) -> Call | None:
        """*Agree* / *Disagree* with the AI result on screen: the label follows from it; with
        *Agree*, each finding the model flagged that has no verdict yet is agreed with."""
        mo = self.model_output()
        if mo is None:
            self.window.show_message("No AI result on screen to agree or disagree with (Ctrl+Shift+A analyses)",
                                     error=True)
            return None
        try:
            label = label_from_model(agree, mo)
        except FeedbackError as e:
            self.window.show_message(str(e), error=True)
            return None
        verdicts = dict(self._verdicts)
        if agree:
            for name in mo.flagged:
                verdicts.setdefault(name, "agree")
        return self.record(label, verdicts, mo)

    def withdraw(self) -> bool:
        """Withdraw the reader's call on the image being read (its history stays)."""
        if self.store is None or self.ensure_key() is None:
            return False
        try:
            done = self.store.withdraw(self.key, self.reader, path=self.image.path)
        except FeedbackError as e:
            self.window.show_message(str(e), error=True)
            return False
        if done is None:
            return False
        self.call = None
        self._verdicts = {}
        self.panel._set_note("")
        self._show(self.store.calls_for(self.key))
        self.window.show_message(f"Your call on {os.path.basename(self.image.path)} was withdrawn")
        return True

    def focus_note(self) -> None:
        self.dock.show()
        self.dock.raise_()
        self.panel.note_edit.setFocus(QtCore.Qt.FocusReason.ShortcutFocusReason)
        self.panel.note_edit.selectAll()

    def _note_edited(self, _text: str) -> None:
        if self.call is not None:  # without a call the note waits for N / B / Y
            self.record(self.call.label)

    def _verdict_changed(self, name: str, verdict) -> None:
        if verdict is None:
            self._verdicts.pop(name, None)
        else:
            self._verdicts[name] = verdict
        if self.call is not None:
            self.record(self.call.label)
        else:
            self.panel.set_call(None, pending=self._verdicts)

    # ------------------------------------------------------------------ browser rows
    def _cell(self, path: str, calls: list[Call]) -> CallCell:
        text, tip, label = row_cell(calls, self.reader)
        return path, text, tip, label

    def _set_row(self, path: str, calls: list[Call]) -> None:
        if self._set_calls is not None:
            self._set_calls([self._cell(path, calls)])
            self.rowsChanged.emit([path])

    def _on_scan(self, res) -> None:
        self._scan_paths = [inst.path for inst in res.instances()]
        self.refresh_rows(self._scan_paths)

    def refresh_rows(self, paths: list[str]) -> None:
        """Set the call cells of ``paths``: by key for images hashed in this session, else by
        the store's last path of each image (one indexed query per 500 rows)."""
        if self._set_calls is None or self.store is None or not paths:
            return
        keyed: dict[str, str] = {}
        for p in paths:
            k = self._memo.peek(p, 0)
            if k is not None:
                keyed[p] = k
        try:
            by_key = self.store.calls_for_many(list(set(keyed.values())))
            by_path = self.store.calls_by_path([p for p in paths if p not in keyed])
        except FeedbackError as e:
            self.window.show_message(str(e), error=True)
            return
        cells = [self._cell(p, by_key.get(keyed[p], []) if p in keyed else by_path.get(os.path.abspath(p), []))
                 for p in paths]
        self._set_calls(cells)
        self.rowsChanged.emit(list(paths))

    # ------------------------------------------------------------------ for the shell's other features
    def agreement_sections(self, card: dict) -> list[tuple[str, list[tuple[str, str]]]]:
        """The model card dialog's "Agreement with this site's readers" section for ``card``."""
        if self.store is None:
            return [(AGREEMENT_TITLE, [("Reader calls", f"unavailable: {self.error}")])]
        try:
            stats = agreement_stats(self.store.current(), model=str(card.get("name", "")) or None)
        except FeedbackError as e:
            return [(AGREEMENT_TITLE, [("Reader calls", f"unavailable: {e}")])]
        return [(AGREEMENT_TITLE, agreement_rows(stats))]

    def reader_call(self):
        """The reader's current call on the image being read as the SR writes it
        (:class:`cxrviewer.dicom.sr_reader.ReaderCall`), ``None`` without one. The note stays
        out of DICOM (it may carry patient data)."""
        if self.call is None:
            return None
        from cxrviewer.dicom.sr_reader import ReaderCall

        return ReaderCall(self.call.reader, self.call.label, self.call.finding_present())

    def data_source(self) -> FeedbackSource | None:
        """The Train dialog's "Reader feedback (N labelled images)" source (``None``: no store)."""
        if self.store is None:
            return None
        try:
            return data_source(self.store)
        except FeedbackError:
            return None

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.store is not None:
            self.store.close()
            self.store = None
