"""The AI worker: one long-lived ``QThread`` whose worker ``QObject`` owns the inference engine.

Why a thread that owns the engine:

* torch (or onnxruntime) is imported *in the worker* when the model loads, after the window
  is up: ``import torch, torchvision`` alone takes ~5.5 s here.
* The engine is never touched by two threads, so it needs no locks.

Protocol (the napari layer-slicer / superqt pattern):

* Requests and results are frozen dataclasses carrying a ``request_id``; the GUI side
  (:class:`AiController`) keeps the id of the image on screen and drops any result that is
  not for it (a fast run of selections shows only the last one's result). The worker also
  skips queued single-image requests that a newer one has superseded, so a burst of Page
  Down costs one forward pass, not twenty.
* Signals are past tense: ``started``, ``resultReady``, ``errored``, ``finished``,
  ``modelLoaded``, ``progress``. Every exception comes back as ``errored`` with the file
  and the reason; nothing is swallowed. Widgets are only touched on the GUI thread.
* Cancellation is cooperative: a folder run checks a ``threading.Event`` between images.
  A forward pass itself cannot be interrupted (neither torch nor onnxruntime offers a safe
  way to abort one mid-flight), so Cancel takes effect after the image in progress.
* Results are cached by content (:func:`cxrviewer.ml.results.content_key`: the decoded
  pixels + frame + model + preprocessing, never a UID alone) in the app's one
  :class:`~cxrviewer.ml.results.ResultCache`, so re-selecting an image costs no engine call
  and two files that share a SOPInstanceUID but not their pixels get their own results.

The per-pixel work on a result (CAM -> ``uint8`` index image for the heatmap LUT) happens in
the worker too: colour-mapping a 2000×2000 map on the GUI thread would stall it.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PySide6 import QtCore

from cxrviewer.core.types import LoadedImage
from cxrviewer.ml.results import ResultCache, content_key, pixel_digest
from cxrviewer.ui.common.file_memo import FileMemo, file_stamp

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class ModelInfo:
    """What the UI shows about the loaded model."""

    name: str
    version: str
    device: str
    backend: str
    threshold: float
    card: dict = field(default_factory=dict, compare=False, repr=False)
    load_s: float = 0.0
    precision: str = "fp32"  # or "int8": the quantized ONNX graph (cxrviewer.ml.quantize)
    #: the out-of-distribution check in force, in words (``Engine.gate_mode_text``; "" if unknown)
    gate_mode_text: str = ""


@dataclass(frozen=True)
class AnalyzeRequest:
    """Analyse one image. ``image`` is the already-decoded frame when the viewer has it
    (saves a second decode); otherwise the worker decodes ``path``."""

    request_id: int
    path: str
    frame: int = 0
    image: LoadedImage | None = field(default=None, compare=False, repr=False)
    cam: bool = True
    key: str | None = None
    batch_id: int | None = None


@dataclass(frozen=True)
class BatchRequest:
    """Analyse many images (a study or a folder) with progress and Cancel."""

    request_id: int
    items: tuple[tuple[str, int], ...]
    cam: bool = False


@dataclass(frozen=True)
class AnalyzeResult:
    """One image's prediction. ``cam_u8`` is the heatmap as a ``uint8`` index image in the
    original geometry (``None`` when no CAM was asked for)."""

    request_id: int
    path: str
    frame: int
    key: str
    prediction: Any  # cxrviewer.ml.inference.Prediction (not imported here: it imports torch)
    cam_u8: np.ndarray | None = field(default=None, compare=False, repr=False)
    from_cache: bool = False
    batch_id: int | None = None

    @property
    def probability(self) -> float:
        return float(self.prediction.probability_abnormal)


@dataclass(frozen=True)
class WorkerError:
    """Something that went wrong in the worker: ``kind`` is ``"model"`` (loading),
    ``"image"`` (decoding or predicting one image) or ``"internal"``."""

    request_id: int
    kind: str
    message: str
    path: str | None = None
    detail: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class BatchSummary:
    request_id: int
    done: int
    total: int
    failed: int
    cancelled: bool
    elapsed_s: float


# --------------------------------------------------------------------------- image keys


class ImageKeys:
    """Content keys of images (:func:`~cxrviewer.ml.results.content_key`).

    Hashing a decoded frame costs ~20 ms for a large radiograph, so each file's pixel digest
    is memoised by (path, frame) with the file's size and mtime: re-selecting a file finds its
    result without decoding or hashing it again, and a file changed on disk is hashed anew.
    The dict is shared by both threads (single dict operations are atomic under the GIL).
    """

    def __init__(self) -> None:
        self._memo: FileMemo[str] = FileMemo()  # pixel digests

    def known(self, path: str, frame: int, model: ModelInfo | None) -> str | None:
        """The key if it is cheap to know now (memoised digest, no hashing), else ``None``."""
        if model is None:
            return None
        digest = self._memo.get(path, frame)
        return None if digest is None else content_key(digest, frame, _identity(model))

    def compute(self, path: str, frame: int, image: LoadedImage, model: ModelInfo) -> str:
        """The key, hashing the decoded pixels when not memoised (worker thread)."""
        k = self.known(path, frame, model)
        if k is not None:
            return k
        stamp = file_stamp(path)  # before hashing: a change while hashing is not memoised as old
        digest = pixel_digest(image)
        if stamp is not None:
            self._memo.put(path, frame, digest, stamp)
        return content_key(digest, frame, _identity(model))


def _identity(model: ModelInfo) -> dict:
    """The model's card with the loaded engine's own name and version on top."""
    ident = {**(model.card or {}), "name": model.name, "version": model.version}
    if model.precision != "fp32":  # another graph, other numbers; float32 keys stay as they were
        ident["precision"] = model.precision
    return ident


# --------------------------------------------------------------------------- worker

EngineFactory = Callable[[str | None], Any]


def default_engine_factory(model_dir: str | None, precision: str | None = None) -> Any:
    """``Engine.load`` of the given model dir (``None``: the registry's active model) at
    ``precision`` (default ``$CXRVIEWER_PRECISION``, else ``"auto"``).

    Imported here, i.e. on the worker thread, so torch/onnxruntime load after the window.
    """
    from cxrviewer.ml.inference import Engine

    backend = os.environ.get("CXRVIEWER_BACKEND", "auto")
    device = os.environ.get("CXRVIEWER_DEVICE", "auto")
    precision = precision or os.environ.get("CXRVIEWER_PRECISION", "auto")
    return Engine.load(model_dir, backend=backend, device=device, precision=precision)


def _describe(e: BaseException) -> str:
    msg = str(e).strip() or type(e).__name__
    return msg.splitlines()[0]


def _strip_cam(pred: Any) -> Any:
    try:
        return replace(pred, cam=None)
    except TypeError:  # not a dataclass (a stand-in): keep as is
        return pred


class AiWorker(QtCore.QObject):
    """Lives on the AI thread; all its slots run there. Never touches a widget."""

    started = QtCore.Signal(int)  # request_id
    resultReady = QtCore.Signal(object)  # AnalyzeResult
    errored = QtCore.Signal(object)  # WorkerError
    progress = QtCore.Signal(int, int, int)  # request_id, done, total
    finished = QtCore.Signal(object)  # BatchSummary
    modelLoaded = QtCore.Signal(object)  # ModelInfo
    modelUnloaded = QtCore.Signal()
    # private: queued self-call to continue a batch one chunk at a time, so single-image
    # requests that arrive meanwhile are served in between
    _continue = QtCore.Signal()

    def __init__(self, factory: EngineFactory, cache: ResultCache, keys: ImageKeys, chunk: int = 1) -> None:
        super().__init__()
        self._factory = factory
        self.cache = cache
        self.keys = keys
        self.engine: Any = None
        self.model: ModelInfo | None = None
        self.cancel_event = threading.Event()
        #: id of the newest single-image request (written by the GUI thread)
        self.latest_single = 0
        self.chunk = max(1, int(chunk))
        self._batch: dict | None = None
        self._continue.connect(self._run_batch_chunk, QtCore.Qt.QueuedConnection)

    # -- model
    @QtCore.Slot(object)
    def load_model(self, model_dir: str | None) -> None:
        _lower_thread_priority()
        t0 = time.perf_counter()
        try:
            engine = self._factory(model_dir)
        except Exception as e:  # any failure: the viewer stays usable, with "no model"
            self.errored.emit(WorkerError(0, "model", f"model could not be loaded: {_describe(e)}",
                                          model_dir, traceback.format_exc()))
            if self.engine is None:
                self.modelUnloaded.emit()
            return
        self.engine = engine
        self.model = ModelInfo(
            name=str(getattr(engine, "name", "model")),
            version=str(getattr(engine, "version", "")),
            device=str(getattr(engine, "device", "cpu")),
            backend=str(getattr(engine, "backend", "")),
            threshold=float(getattr(engine, "threshold", 0.5)),
            card=dict(getattr(engine, "card", {}) or {}),
            load_s=time.perf_counter() - t0,
            precision=str(getattr(engine, "precision", "fp32")),
            gate_mode_text=str(getattr(engine, "gate_mode_text", "") or ""),
        )
        self.modelLoaded.emit(self.model)

    @QtCore.Slot(str)
    def activate(self, name: str) -> None:
        """Make ``name`` the registry's active model (it verifies the weights: torch, so
        here and not on the GUI thread), then load it. On failure the previous model stays."""
        try:
            from cxrviewer.ml.registry import Registry

            entry = Registry().activate(name)
        except Exception as e:
            reason = getattr(e, "reason", None) or _describe(e)
            self.errored.emit(WorkerError(0, "model", f"model {name!r} could not be activated: {reason}",
                                          None, traceback.format_exc()))
            return
        self.load_model(str(entry.path))

    # -- one image
    @QtCore.Slot(object)
    def analyze(self, req: AnalyzeRequest) -> None:
        if req.request_id < self.latest_single:
            return  # superseded while queued: the user has moved on
        self.started.emit(req.request_id)
        res = self._analyze_one(req)
        if res is not None:
            self.resultReady.emit(res)

    def _analyze_one(self, req: AnalyzeRequest) -> AnalyzeResult | None:
        if self.engine is None or self.model is None:
            self.errored.emit(WorkerError(req.request_id, "image", "no model loaded", req.path))
            return None
        try:
            img = req.image if req.image is not None else _load(req.path, req.frame)
            # always this worker's model: a key the GUI computed may predate a model switch
            key = self.keys.compute(req.path, req.frame, img, self.model)
            hit = self.cache.get(key, need_cam=req.cam)
            if hit is not None:
                return AnalyzeResult(req.request_id, req.path, req.frame, key, hit[0], hit[1], True, req.batch_id)
            # The forward pass (and CAM) runs to completion once started: it cannot be
            # interrupted, only the next image can be skipped.
            pred = self.engine.predict(img, cam=req.cam)
            cam_u8 = _cam_index(getattr(pred, "cam", None)) if req.cam else None
            slim = _strip_cam(pred)
            self.cache.put(key, slim, cam_u8)
            return AnalyzeResult(req.request_id, req.path, req.frame, key, slim, cam_u8, False, req.batch_id)
        except Exception as e:
            path = getattr(e, "path", None) or req.path
            reason = getattr(e, "reason", None) or _describe(e)
            self.errored.emit(WorkerError(req.request_id, "image", reason, path, traceback.format_exc()))
            return None

    # -- many images
    @QtCore.Slot(object)
    def analyze_batch(self, req: BatchRequest) -> None:
        self.cancel_event.clear()
        self._batch = {"req": req, "next": 0, "done": 0, "failed": 0, "t0": time.perf_counter()}
        self.started.emit(req.request_id)
        self.progress.emit(req.request_id, 0, len(req.items))
        self._run_batch_chunk()

    @QtCore.Slot()
    def _run_batch_chunk(self) -> None:
        b = self._batch
        if b is None:
            return
        req: BatchRequest = b["req"]
        total = len(req.items)
        end = min(b["next"] + self.chunk, total)
        while b["next"] < end:
            # cooperative cancel: checked between images (a forward pass can't be stopped)
            if self.cancel_event.is_set():
                return self._end_batch(cancelled=True)
            path, frame = req.items[b["next"]]
            b["next"] += 1
            res = self._analyze_one(AnalyzeRequest(req.request_id, path, frame, cam=req.cam, batch_id=req.request_id))
            if res is None:
                b["failed"] += 1
            else:
                self.resultReady.emit(res)
            b["done"] += 1
            self.progress.emit(req.request_id, b["done"], total)
        if b["next"] >= total or self.cancel_event.is_set():
            return self._end_batch(cancelled=self.cancel_event.is_set() and b["next"] < total)
        self._continue.emit()  # queued: lets single-image requests in between chunks

    def _end_batch(self, cancelled: bool) -> None:
        b, self._batch = self._batch, None
        assert b is not None
        req: BatchRequest = b["req"]
        self.finished.emit(BatchSummary(req.request_id, b["done"], len(req.items), b["failed"], cancelled,
                                        time.perf_counter() - b["t0"]))


def _lower_thread_priority() -> None:
    """Let the GUI thread win the CPU over inference: nice +10 for this (worker) thread on
    Linux, where ``QThread.LowPriority`` has no effect for normal threads. torch/onnxruntime
    pool threads created from here inherit it. Best effort, once."""
    if getattr(_lower_thread_priority, "done", False) or not hasattr(os, "setpriority"):
        return
    _lower_thread_priority.done = True  # type: ignore[attr-defined]
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 10))
    except (OSError, AttributeError):
        pass


def _load(path: str, frame: int) -> LoadedImage:
    from cxrviewer.core.dicom_io import load_image

    return load_image(path, frame)


def _cam_index(cam: np.ndarray | None) -> np.ndarray | None:
    from cxrviewer.render.colormaps import cam_to_index

    return cam_to_index(cam)


# --------------------------------------------------------------------------- GUI side


class AiController(QtCore.QObject):
    """The GUI-thread face of the AI: owns the thread, the cache and the request ids.

    Signals (all emitted on the GUI thread)
    ---------------------------------------
    modelChanged(ModelInfo | None)
        a model was loaded (``None``: no model; the viewer works without one).
    resultReady(AnalyzeResult)
        the result for the image currently asked for (stale ones are dropped).
    badgeReady(AnalyzeResult)
        every result, current or not (study browser badges).
    started(int), progress(int, int, int), finished(BatchSummary)
        a folder/study run: started, done/total, ended (``cancelled`` says whether Cancel stopped it).
    errored(WorkerError)
        anything that failed; the window shows it.
    busyChanged(bool)
    """

    modelChanged = QtCore.Signal(object)
    resultReady = QtCore.Signal(object)
    badgeReady = QtCore.Signal(object)
    started = QtCore.Signal(int)
    progress = QtCore.Signal(int, int, int)
    finished = QtCore.Signal(object)
    errored = QtCore.Signal(object)
    busyChanged = QtCore.Signal(bool)
    modelLoading = QtCore.Signal()

    # cross-thread requests (queued into the worker's thread)
    _sigLoad = QtCore.Signal(object)
    _sigActivate = QtCore.Signal(str)
    _sigAnalyze = QtCore.Signal(object)
    _sigBatch = QtCore.Signal(object)

    def __init__(self, engine_factory: EngineFactory | None = None, parent: QtCore.QObject | None = None,
                 cam_budget_bytes: int = 384 << 20, chunk: int = 1) -> None:
        super().__init__(parent)
        self.cache = ResultCache(cam_budget_bytes)
        self.keys = ImageKeys()
        self._ids = itertools.count(1)
        self.current_id = 0  # the single request whose result may be shown
        self.batch_id = 0  # the running batch (0: none)
        self.model: ModelInfo | None = None
        self.model_error: str | None = None
        self.loading = False
        self._pending_single = 0
        self.thread = QtCore.QThread()
        self.thread.setObjectName("cxrviewer-ai")
        self.worker = AiWorker(engine_factory or default_engine_factory, self.cache, self.keys, chunk)
        self.worker.moveToThread(self.thread)
        self._sigLoad.connect(self.worker.load_model, QtCore.Qt.QueuedConnection)
        self._sigActivate.connect(self.worker.activate, QtCore.Qt.QueuedConnection)
        self._sigAnalyze.connect(self.worker.analyze, QtCore.Qt.QueuedConnection)
        self._sigBatch.connect(self.worker.analyze_batch, QtCore.Qt.QueuedConnection)
        self.worker.modelLoaded.connect(self._on_model_loaded)
        self.worker.modelUnloaded.connect(self._on_model_unloaded)
        self.worker.resultReady.connect(self._on_result)
        self.worker.errored.connect(self._on_error)
        self.worker.progress.connect(self.progress)
        self.worker.started.connect(self._on_started)
        self.worker.finished.connect(self._on_finished)
        self.thread.start(QtCore.QThread.Priority.LowPriority)
        # A QThread destroyed while running aborts the process: stop it at interpreter exit
        # too, for scripts that never close the window (weakref: no keep-alive).
        ref = weakref.ref(self)
        atexit.register(lambda: (c := ref()) is not None and c.shutdown(5000))

    # -- model
    def load_model(self, model_dir: str | os.PathLike | None = None) -> None:
        """Load (or switch to) a model in the worker; ``None`` = the registry's active one."""
        self.loading = True
        self.modelLoading.emit()
        self._sigLoad.emit(None if model_dir is None else os.fspath(model_dir))

    def activate_model(self, name: str) -> None:
        """Activate a registry model (verified and loaded in the worker)."""
        self.loading = True
        self.modelLoading.emit()
        self._sigActivate.emit(name)

    @property
    def ready(self) -> bool:
        return self.model is not None

    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.loading = False
        self.model = info
        self.model_error = None
        self.modelChanged.emit(info)

    def _on_model_unloaded(self) -> None:
        self.loading = False
        self.model = None
        self.modelChanged.emit(None)

    # -- single image
    def analyze(self, path: str | os.PathLike, frame: int = 0, image: LoadedImage | None = None,
                cam: bool = True) -> int:
        """Ask for one image's result; returns the request id. A cached result is emitted
        at once (no engine call); otherwise the worker computes it and older pending
        single-image requests are superseded."""
        path = os.fspath(path)
        rid = next(self._ids)
        self.current_id = rid
        self.worker.latest_single = rid  # an int store: atomic under the GIL
        key = self.keys.known(path, frame, self.model)
        if key is not None:
            hit = self.cache.get(key, need_cam=cam)
            if hit is not None:
                res = AnalyzeResult(rid, path, frame, key, hit[0], hit[1], True)
                self.badgeReady.emit(res)
                self.resultReady.emit(res)
                return rid
        if self.model is None and not self.loading:
            self.errored.emit(WorkerError(rid, "image", "no model loaded (Model menu → choose a model)", path))
            return rid
        self._set_busy(True)
        self._pending_single = rid
        self._sigAnalyze.emit(AnalyzeRequest(rid, path, frame, image, cam, key))
        return rid

    def lookup(self, path: str | os.PathLike, frame: int = 0, cam: bool = True) -> AnalyzeResult | None:
        """A cached result for ``path`` (no engine call, no hashing, nothing emitted), or None."""
        path = os.fspath(path)
        key = self.keys.known(path, frame, self.model)
        hit = self.cache.get(key, need_cam=cam) if key is not None else None
        if hit is None:
            return None
        return AnalyzeResult(self.current_id, path, frame, key, hit[0], hit[1], True)

    def forget_current(self) -> None:
        """Nothing on screen wants a result any more (image closed)."""
        self.current_id = next(self._ids)
        self.worker.latest_single = self.current_id

    # -- many images
    def analyze_many(self, items: Sequence[str | tuple[str, int]], cam: bool = False) -> int:
        """Analyse a study/folder; progress/finished report on it; :meth:`cancel` stops it."""
        norm = tuple((os.fspath(i), 0) if not isinstance(i, tuple) else (os.fspath(i[0]), int(i[1])) for i in items)
        rid = next(self._ids)
        self.batch_id = rid
        self.worker.cancel_event.clear()
        self._set_busy(True)
        self._sigBatch.emit(BatchRequest(rid, norm, cam))
        return rid

    def cancel(self) -> None:
        """Stop a folder run after the image in progress (a forward pass can't be interrupted)."""
        self.worker.cancel_event.set()

    @property
    def batch_running(self) -> bool:
        return self.batch_id != 0

    # -- results
    def _on_started(self, rid: int) -> None:
        if rid == self.batch_id:
            self.started.emit(rid)

    def _on_result(self, res: AnalyzeResult) -> None:
        self.badgeReady.emit(res)
        if res.batch_id is None and res.request_id == self._pending_single:
            self._pending_single = 0
            self._update_busy()
        if res.request_id == self.current_id:
            self.resultReady.emit(res)
        # else: stale (the user selected another image meanwhile): dropped

    def _on_error(self, err: WorkerError) -> None:
        if err.kind == "model":
            self.loading = False
            self.model_error = err.message
        if err.request_id == self._pending_single:
            self._pending_single = 0
            self._update_busy()
        if err.kind == "image" and err.request_id not in (self.current_id, self.batch_id):
            # about an image nobody looks at any more: logged, not shown
            _log.info("AI: stale error for %s: %s", err.path, err.message)
            return
        self.errored.emit(err)

    def _on_finished(self, summary: BatchSummary) -> None:
        if summary.request_id == self.batch_id:
            self.batch_id = 0
        self._update_busy()
        self.finished.emit(summary)

    def _set_busy(self, on: bool) -> None:
        self.busyChanged.emit(on)

    def _update_busy(self) -> None:
        self.busyChanged.emit(bool(self._pending_single or self.batch_id))

    # -- lifetime
    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Stop the thread (after the forward pass in progress, if any)."""
        if not self.thread.isRunning():
            return
        self.worker.cancel_event.set()
        self.worker.latest_single = 1 << 62  # skip queued single requests
        self.thread.quit()
        self.thread.wait(timeout_ms)
