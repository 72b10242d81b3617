"""DICOM objects in the viewer: *File -> Export as DICOM...* (SC, SR, GSPS, optionally
de-identified), the stored AI result of an SR shown beside the live one, and presentation
states applied to their image when selected in the browser.

The objects themselves are built by the Qt-free :mod:`cxrviewer.dicom`; this module only
gathers what the reader has on screen (window, orientation, rulers, the AI result) and shows
what comes back.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.core.errors import CxrError

_log = logging.getLogger(__name__)

KINDS = (
    ("sc-view", "Secondary Capture of the view (as on screen)"),
    ("sc-native", "Secondary Capture of the whole image (native resolution)"),
    ("sr", "Structured report: AI result and measurements (TID 1500)"),
    ("gsps", "Presentation state: window, orientation, measurements"),
)


class ExportDicomDialog(QtWidgets.QDialog):
    """Choose the object, whether to de-identify it, and where to write it."""

    def __init__(self, parent: QtWidgets.QWidget | None = None, start_path: str = "", has_ai: bool = False,
                 n_rulers: int = 0, text_risk: str | None = None, draw_masks=None, call_text: str = ""):
        super().__init__(parent)
        #: regions to blank (``MaskRegion``) drawn with the rectangle tool (mask_tool.py)
        self.masks: list = []
        self.setWindowTitle("Export as DICOM")
        lay = QtWidgets.QFormLayout(self)
        self.kind = QtWidgets.QComboBox(self)
        self.kind.setObjectName("dicomKind")
        for key, text in KINDS:
            self.kind.addItem(text, key)
        lay.addRow("Object", self.kind)
        # each kind has its own default name (…_sc.dcm, …_sr.dcm, …_gsps.dcm): a default name
        # follows the kind, a name the reader typed stays
        self._kind_key = self.kind.currentData()
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.anonymize = QtWidgets.QCheckBox("De-identified copy (PS3.15 Basic Profile: names, IDs, UIDs and dates "
                                             "replaced; burned-in text without patient data)", self)
        self.anonymize.setObjectName("dicomAnonymize")
        lay.addRow("", self.anonymize)
        self.mask_button = None
        if text_risk:  # issue 21: a de-identified capture of this image needs its text blanked
            self.mask_button = QtWidgets.QPushButton("", self)
            self.mask_button.setObjectName("dicomMasks")
            self.mask_button.clicked.connect(lambda _=False: self._draw(draw_masks))
            warn = QtWidgets.QLabel(f"Its pixels may carry burned-in text ({text_risk}): a de-identified capture "
                                    "needs the text blanked.", self)
            warn.setWordWrap(True)
            warn.setStyleSheet("color: #ffcc80;")
            lay.addRow("", warn)
            lay.addRow("Burned-in text", self.mask_button)
            self.anonymize.toggled.connect(lambda _on: self._mask_state())
            self.kind.currentIndexChanged.connect(lambda _i: self._mask_state())
            self._mask_state()
        row = QtWidgets.QHBoxLayout()
        self.path = QtWidgets.QLineEdit(start_path, self)
        self.path.setObjectName("dicomPath")
        browse = QtWidgets.QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        lay.addRow("File", row)
        what = [f"AI result: {'yes' if has_ai else 'none yet (analyse the image first)'}",
                f"measurements: {n_rulers}"] + ([f"your call (SR): {call_text}"] if call_text else [])
        note = QtWidgets.QLabel(" · ".join(what) + "\nThe object joins the source image's study in a new series. "
                                "NOT FOR DIAGNOSTIC USE is written into it.", self)
        note.setWordWrap(True)
        lay.addRow("", note)
        self.buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addRow(self.buttons)

    def _kind_changed(self, _i: int) -> None:
        from cxrviewer.viewer.exports import with_kind

        new = self.kind.currentData()
        if self.path.text().strip():
            self.path.setText(str(with_kind(self.path.text().strip(), self._kind_key, new)))
        self._kind_key = new

    def _browse(self) -> None:
        # the native dialog asks before replacing a file, so accept() does not ask again
        f, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export as DICOM", self.path.text(), "DICOM (*.dcm)")
        if f:
            f = f if Path(f).suffix else f + ".dcm"
            self.path.setText(f)
            self._confirmed = f

    def accept(self) -> None:
        """OK: an existing file is replaced only when the reader says so (default: No, and
        the dialog stays open for another name)."""
        from cxrviewer.viewer.exports import needs_confirmation

        path = self.path.text().strip()
        if path and needs_confirmation(path) and getattr(self, "_confirmed", None) != path:
            B = QtWidgets.QMessageBox.StandardButton
            ans = QtWidgets.QMessageBox.question(self, "Export as DICOM", f"{path} exists. Replace it?",
                                                 B.Yes | B.No, B.No)
            if ans != B.Yes:
                return
        super().accept()

    def options(self) -> dict:
        return {"kind": self.kind.currentData(), "anonymize": self.anonymize.isChecked(),
                "path": self.path.text().strip(), "masks": list(self.masks)}

    def _mask_state(self) -> None:
        n = len(self.masks)
        self.mask_button.setText(f"Blank text regions… ({n} drawn)")
        self.mask_button.setEnabled(self.anonymize.isChecked() and str(self.kind.currentData()).startswith("sc"))

    def _draw(self, draw_masks) -> None:
        new = draw_masks(self.masks) if draw_masks is not None else None
        if new is not None:
            self.masks = list(new)
            self._mask_state()


class DicomObjects(QtCore.QObject):
    """The DICOM-object features of one main window.

    Signals
    -------
    exported(ExportResult)
        An object was written.
    storedResultShown(list)
        The stored AI results (``AiResult``) found for the image on screen (maybe empty).
    presentationApplied(PresentationState)
        A presentation state was applied to the image on screen.
    """

    exported = QtCore.Signal(object)
    storedResultShown = QtCore.Signal(list)
    presentationApplied = QtCore.Signal(object)

    def __init__(self, window, model) -> None:
        super().__init__(window)
        self.window = window
        self.model = model  # cxrviewer.viewer.ViewerModel: what the exports read
        self._pending_ps = None  # (image path, PresentationState) to apply once that image is shown
        self._sr_cache: dict[str, list] = {}
        self.stored = []
        #: ``() -> ReaderCall | None``: the reader's call on the image on screen, written into an
        #: SR beside the AI result (handed in by the shell from ui/feedback)
        self.reader_call = None
        self.stored_label = QtWidgets.QLabel("", window)
        self.stored_label.setObjectName("storedResult")
        self.stored_label.setWordWrap(True)
        self.stored_label.setStyleSheet("color: #9ecbff;")
        self.stored_label.hide()
        # where the label goes (beside the live AI result, else the status bar) is the shell's
        # call: MainWindow places it
        a = self.act_export = QtGui.QAction("Export as &DICOM…", window)
        a.setShortcut(QtGui.QKeySequence("Ctrl+Shift+D"))
        a.setStatusTip("Secondary Capture, structured report or presentation state into the image's study")
        a.triggered.connect(lambda _=False: self.export_dialog())
        menu = window.menus["file"]
        menu.insertAction(window.act_copy, a)
        window.addAction(a)
        window.actions_list.append(a)
        a.setEnabled(False)
        window.imageLoaded.connect(self._image_loaded)
        window.imageCleared.connect(self._image_cleared)
        window.browser.objectSelected.connect(self.open_object)
        window.scanFinished.connect(self._scan_finished)
        self._select_after_scan: str | None = None

    # ------------------------------------------------------------------ export
    def _live_ai(self):
        """The viewer model's AI result for the image on screen (``None`` when none, or when
        it is another frame's)."""
        res = self.model.active.ai
        img = self.window.current_image
        if res is None or img is None or os.fspath(res.path) != os.fspath(img.path) or res.frame != img.frame:
            return None
        return res

    def _ai_result(self):
        """The live AI result for the image on screen, as the SR's AiResult (or None)."""
        res = self._live_ai()
        if res is None or res.prediction is None:
            return None
        from cxrviewer.dicom.build import ai_result_from_prediction

        return ai_result_from_prediction(res.prediction, res.weights_sha256, res.card)

    def _ai_lines(self) -> list[str]:
        res = self._live_ai()
        return list(res.lines) if res is not None else []



    def export(self, kind: str, path: str | os.PathLike, anonymize: bool = False, masks=()):
        """Write ``kind`` (``sc-view``, ``sc-native``, ``sr``, ``gsps``) for the image on
        screen; returns the :class:`~cxrviewer.dicom.build.ExportResult`.

        Raises
        ------
        CxrError
            Nothing to export (no image, SR with neither a result nor measurements), a source
            that cannot carry the object, or a write failure.
        """
        from cxrviewer.dicom.build import export_object, reader_view
        from cxrviewer.viewer.measurements import to_dicom

        win = self.window
        img = win.current_image
        if img is None:
            raise CxrError(None, "no image is shown")
        canvas = win.canvas
        # every kind, the ruler included, through the one measurement registry
        rulers = to_dicom(img, self.model.active.measurements)
        view = canvas.view_state()
        ai = self._ai_result()
        call = self.reader_call() if kind == "sr" and self.reader_call is not None else None
        pixels = None
        if kind.startswith("sc"):
            pixels = self._sc_pixels(kind == "sc-native", anonymize, masks)
        obj = "sc" if kind.startswith("sc") else kind
        res = export_object(obj, img.path, path, view=reader_view(canvas.current_preset(), view, rulers), ai=ai,
                            pixels=pixels, frame=img.frame,
                            description="native image" if kind == "sc-native" else "view as on screen",
                            anonymize=anonymize, pixels_clean=anonymize, masks=tuple(masks) if anonymize else (),
                            reader_call=call)
        self.exported.emit(res)
        return res

    def _sc_pixels(self, native: bool, anonymize: bool, masks=()):
        """The capture: the screen as shown, or (native, or any de-identified capture) the
        export composition with the canvas's window, orientation, layers, measurements and text;
        de-identified text has no dates or study description (the header no longer has them)."""
        import numpy as np

        canvas = self.window.canvas
        if not native and not anonymize and not masks:
            return np.ascontiguousarray(canvas.render_array(native=False))
        from cxrviewer.render.compose import compose_export

        img = canvas.img
        if masks:  # the reader's rectangles: black at any window (burnedin.mask_loaded_image)
            from cxrviewer.dicom.burnedin import mask_loaded_image

            img = mask_loaded_image(img, masks)
        if anonymize:
            img = copy.copy(img)
            img.header = dataclasses.replace(img.header, study_date="", study_time="", study_description="")
        arr = compose_export(
            img, canvas.current_preset(), view=canvas.view_state(), layers=canvas.export_layers(),
            rulers=canvas.annotation_specs(), annotations=canvas.overlay_visible(), anonymize=anonymize,
            ai_lines=self._ai_lines(), native=native, max_size=max(canvas.width(), canvas.height(), 1024))
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        return np.ascontiguousarray(arr)

    def export_dialog(self) -> ExportDicomDialog | None:
        """*File -> Export as DICOM...*: the dialog, then the export (errors in a message box)."""
        win = self.window
        img = win.current_image
        if img is None:
            return None
        from cxrviewer.viewer.exports import default_path

        # the kind first listed (SC of the view); the name follows the kind chosen
        start = str(default_path(KINDS[0][0], img.path, win.settings.get("export_dir", None)))
        n = len(self.model.active.measurements)
        dlg = ExportDicomDialog(win, start, has_ai=self._ai_result() is not None, n_rulers=n,
                                text_risk=self.text_risk(img), draw_masks=self.draw_masks,
                                call_text=self._call_text())
        dlg.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.accepted.connect(lambda: self._dialog_accepted(dlg.options()))
        dlg.open()
        return dlg

    def _dialog_accepted(self, o: dict) -> None:
        if not o["path"]:
            return
        try:
            res = self.export(o["kind"], o["path"], o["anonymize"], masks=o.get("masks", ()))
        except CxrError as e:
            QtWidgets.QMessageBox.critical(self.window, "Export as DICOM failed", str(e))
            self.window.show_message(str(e), error=True)
            return
        self.window.settings.set("export_dir", str(Path(o["path"]).parent))
        msg = f"Exported {res.kind.upper()} to {res.path}"
        if res.changes:
            msg += f" (de-identified: {len(res.changes)} attributes changed)"
        self.window.show_message(msg)

    def _call_text(self) -> str:
        call = self.reader_call() if self.reader_call is not None else None
        return f"{call.label.capitalize()} ({call.reader})" if call is not None else ""

    def text_risk(self, img) -> str | None:
        """Why the pixels of ``img`` may carry burned-in text (``None``: not a risk, or not DICOM)."""
        if img.kind != "dicom":
            return None
        from cxrviewer.dicom.burnedin import burned_in_risk
        from cxrviewer.dicom.common import source_dataset

        try:
            return burned_in_risk(source_dataset(img.path))
        except CxrError:
            return None

    def mask_dialog(self, regions=()):
        """The rectangle tool on the image on screen, as stored, at the window on screen."""
        from cxrviewer.render.compose import compose_export
        from cxrviewer.ui.dicom.mask_tool import MaskDialog

        img, canvas = self.window.current_image, self.window.canvas
        display = compose_export(img, canvas.current_preset(), view=None, annotations=False, native=True,
                                 max_size=max(img.rows, img.cols))
        return MaskDialog(display, self.text_risk(img) or "marked by the reader", regions, self.window)

    def draw_masks(self, regions=()) -> list | None:
        """Open the rectangle tool; the regions drawn, or ``None`` when cancelled."""
        dlg = self.mask_dialog(regions)
        try:
            ok = dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted
            return dlg.regions if ok else None
        finally:
            dlg.deleteLater()  # parented to the window: not kept until it closes

    # -------------------------------------------------------------- reading back
    def _objects(self, kind: str):
        scan = self.window.last_scan
        return [o for o in (scan.objects() if scan is not None else []) if o.kind == kind]

    def _read_sr(self, path: str) -> list:
        if path not in self._sr_cache:
            try:
                from cxrviewer.core.dicom_io import read_dataset
                from cxrviewer.dicom.sr import read_ai_results

                self._sr_cache[path] = read_ai_results(read_dataset(path))
            except Exception as e:  # noqa: BLE001 - a damaged SR is logged, never fatal
                _log.warning("%s: cannot read the stored AI result: %s", path, e)
                self._sr_cache[path] = []
        return self._sr_cache[path]

    def stored_results(self, img) -> list:
        """AI results stored in SRs of the opened folder for ``img`` (newest file last)."""
        uid = img.header.sop_instance_uid if img is not None else ""
        if not uid:
            return []
        out = []
        for o in self._objects("sr"):
            if uid in o.referenced_sop_instance_uids:
                out += [r for r in self._read_sr(o.path) if r.source_sop_instance_uid in ("", uid)]
        return out

    def _image_loaded(self, img) -> None:
        self.act_export.setEnabled(img is not None and img.kind == "dicom")
        self.stored = self.stored_results(img)
        if self.stored:
            lines = []
            for r in self.stored:
                score = ("not scored (out of distribution)" if r.refused else
                         f"P(Abnormal) {r.probability_abnormal:.2f} → {r.label} (thr {r.threshold:.2f})")
                t = f"Stored AI result (SR): {score} · {r.model_name} {r.model_version}"
                if r.ood_status:
                    t += f" · OOD: {r.ood_status}"
                lines.append(t)
            self.stored_label.setText("\n".join(lines))
            self.stored_label.show()
        else:
            self.stored_label.clear()
            self.stored_label.hide()
        self.storedResultShown.emit(list(self.stored))
        pending, self._pending_ps = self._pending_ps, None
        if pending is not None and os.fspath(pending[0]) == os.fspath(img.path):
            self.apply_presentation(pending[1])

    def _image_cleared(self) -> None:
        self.act_export.setEnabled(False)
        self.stored = []
        self.stored_label.hide()

    def _scan_finished(self, res) -> None:
        """A lone SR / presentation state opened as a file: open its folder (where its image
        usually is) and select it there, so opening it shows it on its image."""
        self._sr_cache.clear()
        pending, self._select_after_scan = self._select_after_scan, None
        if pending is not None:
            self.window.browser.select_object(pending)
            return
        root = self.window.scan_root
        objs = res.objects() if hasattr(res, "objects") else []
        if root and os.path.isfile(root) and not res.instances() and len(objs) == 1 and not res.cancelled:
            folder = os.path.dirname(os.path.abspath(root))
            self._select_after_scan = objs[0].path
            self.window.show_message(f"Opening {folder} to show {os.path.basename(root)} on its image")
            self.window.open_path(folder)

    def _image_path_for(self, uids) -> str | None:
        scan = self.window.last_scan
        if scan is None:
            return None
        by_uid = {i.sop_instance_uid: i.path for i in scan.instances() if i.sop_instance_uid}
        return next((by_uid[u] for u in uids if u in by_uid), None)

    def open_object(self, path: str) -> bool:
        """Show an SR / presentation state: load the image it refers to (a presentation state
        is applied to it once shown). Returns False when that image is not in the folder."""
        obj = next((o for o in (self._objects("sr") + self._objects("pr")) if o.path == path), None)
        if obj is None:
            return False
        target = self._image_path_for(obj.referenced_sop_instance_uids)
        if target is None:
            self.window.show_message(f"{os.path.basename(path)} refers to an image that is not in the opened folder",
                                     error=True)
            return False
        if obj.kind == "pr":
            try:
                from cxrviewer.core.dicom_io import read_dataset
                from cxrviewer.dicom.gsps import read_gsps

                ps = read_gsps(read_dataset(path), path)
            except CxrError as e:
                self.window.show_message(str(e), error=True)
                return False
            cur = self.window.current_image
            if cur is not None and os.fspath(cur.path) == os.fspath(target):
                self.apply_presentation(ps)
                return True
            self._pending_ps = (target, ps)
        if self.window.current_image is None or os.fspath(self.window.current_image.path) != os.fspath(target):
            self.window.load_path(target)
        return True

    def apply_presentation(self, ps) -> None:
        """Window, orientation, invert and measurements of a presentation state on the image shown."""
        from cxrviewer.core.types import WindowPreset

        win = self.window
        img = win.current_image
        if img is None or not ps.applies_to(img.header.sop_instance_uid):
            return
        canvas = win.canvas
        canvas.reset_view()
        if ps.rotation:
            canvas.rotate(ps.rotation)
        if ps.flip_h:
            canvas.flip_h()
        if ps.flip_v:
            canvas.flip_v()
        invert = ps.reader_invert(img.photometric)
        win.act_invert.setChecked(invert)  # the action inverts the canvas
        if ps.window_center is not None and ps.window_width is not None and not img.is_color:
            fn = "SIGMOID" if ps.voi_function.upper() == "SIGMOID" else "LINEAR"
            canvas.set_preset(WindowPreset(ps.window_name or "Presentation state", ps.window_center,
                                           max(ps.window_width, 1.0), fn, "user"))
        tools = win.measure_tools
        if tools is not None:  # on the viewer model (every kind, the ruler included), which the canvas draws
            from cxrviewer.viewer import Measurement
            from cxrviewer.viewer.measurements import REGISTRY

            tools.model.set_measurements([Measurement(kind, tuple(tuple(p) for p in pts))
                                          for kind, pts in ps.measurements() if kind in REGISTRY])
        win.show_message(f"Presentation state {ps.label or ps.sop_instance_uid} applied")
        self.presentationApplied.emit(ps)


def install(window, model) -> DicomObjects:
    """Add the DICOM-object features to a main window; exports read the viewer ``model``."""
    return DicomObjects(window, model)
