"""Off-GUI-thread work: folder scanning, pixel decoding, thumbnails.

Rules (pyqtgraph #1398, napari's slicer): workers never touch widgets; they emit signals
(queued to the GUI thread because the emitting ``QObject`` lives there); every request
carries a ``request_id`` and the GUI drops results whose id is no longer current.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from PySide6 import QtCore, QtGui

from cxrviewer.core.errors import CxrError
from cxrviewer.core.types import LoadedImage


@dataclass(frozen=True)
class ScanRequest:
    request_id: int
    path: str


@dataclass(frozen=True)
class ImageRequest:
    request_id: int
    path: str
    frame: int = 0


class _ScanThread(QtCore.QThread):
    def __init__(self, req: ScanRequest, owner: Scanner):
        super().__init__()
        self.req = req
        self.owner = owner
        self.cancel_flag = threading.Event()

    def run(self) -> None:
        from cxrviewer.core.study_index import scan

        rid = self.req.request_id
        o = self.owner
        try:
            res = scan(
                self.req.path,
                progress=lambda d, t: o.progressed.emit(rid, d, t),
                cancel=self.cancel_flag.is_set,
                on_instances=lambda partial: o.partial.emit(rid, partial),
            )
        except CxrError as e:
            o.errored.emit(rid, str(e))
            return
        except Exception as e:  # noqa: BLE001 - shown to the user, never swallowed
            o.errored.emit(rid, f"{self.req.path}: {type(e).__name__}: {e}")
            return
        o.finished.emit(rid, res)


class Scanner(QtCore.QObject):
    """Scans one path at a time in a ``QThread`` (core ``scan`` with ``on_instances``).

    Signals carry the request id first: ``partial(id, ScanResult)`` after each chunk,
    ``progressed(id, done, total)``, ``finished(id, ScanResult)``, ``errored(id, message)``.
    """

    partial = QtCore.Signal(int, object)
    progressed = QtCore.Signal(int, int, int)
    finished = QtCore.Signal(int, object)
    errored = QtCore.Signal(int, str)

    def __init__(self, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self._next = 0
        self._thread: _ScanThread | None = None
        self._old: list[_ScanThread] = []

    @property
    def current_id(self) -> int:
        return self._next

    def start(self, path: str) -> int:
        """Start scanning ``path`` (cancelling any running scan); returns the request id."""
        self.cancel()
        self._next += 1
        t = _ScanThread(ScanRequest(self._next, str(path)), self)
        t.finished.connect(lambda t=t: self._reap(t))
        self._thread = t
        t.start()
        return self._next

    def _reap(self, t: _ScanThread) -> None:
        if t in self._old:
            self._old.remove(t)
        if self._thread is t:
            self._thread = None
        t.deleteLater()

    def running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def cancel(self) -> None:
        """Ask the running scan to stop after its current chunk."""
        if self._thread is not None:
            self._thread.cancel_flag.set()
            self._old.append(self._thread)
            self._thread = None

    def shutdown(self, timeout_ms: int = 5000) -> None:
        self.cancel()
        for t in list(self._old):
            t.wait(timeout_ms)


class _Task(QtCore.QRunnable):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.setAutoDelete(True)

    def run(self) -> None:
        self.fn()


class ImageLoader(QtCore.QObject):
    """Decodes images on a thread pool; results for superseded requests are dropped.

    ``loaded(request_id, LoadedImage)`` / ``failed(request_id, path, reason)``. A small LRU
    keeps the last few decoded images so Page Up/Down back and forth is instant.
    """

    loaded = QtCore.Signal(int, object)
    failed = QtCore.Signal(int, str, str)

    def __init__(self, parent: QtCore.QObject | None = None, cache_size: int = 4):
        super().__init__(parent)
        self.pool = QtCore.QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self._next = 0
        self._cache: OrderedDict[tuple[str, int], LoadedImage] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._closed = False
        self.loaded.connect(self._remember)

    @property
    def current_id(self) -> int:
        return self._next

    def request(self, path: str, frame: int = 0) -> int:
        """Decode ``path``; returns the request id (a cached image is emitted at once, queued)."""
        self._next += 1
        req = ImageRequest(self._next, str(path), frame)
        with self._lock:
            hit = self._cache.get((req.path, frame))
        if hit is not None:
            self._cache.move_to_end((req.path, frame))
            QtCore.QTimer.singleShot(0, lambda: self.loaded.emit(req.request_id, hit))
            return req.request_id
        if not self._closed:
            self.pool.start(_Task(lambda: self._work(req)))
        return req.request_id

    def supersede(self) -> None:
        """Drop the results of every request made so far (e.g. the viewport that asked is no
        longer the one this loader serves)."""
        self._next += 1

    def _work(self, req: ImageRequest) -> None:
        if req.request_id != self._next:
            return  # superseded before it started: don't spend the CPU
        from cxrviewer.core.dicom_io import load_image

        try:
            img = load_image(req.path, req.frame)
        except CxrError as e:
            self.failed.emit(req.request_id, req.path, e.reason)
            return
        except Exception as e:  # noqa: BLE001 - any decoder failure is shown, not swallowed
            self.failed.emit(req.request_id, req.path, f"{type(e).__name__}: {e}")
            return
        self.loaded.emit(req.request_id, img)

    def _remember(self, _rid: int, img: LoadedImage) -> None:
        with self._lock:
            self._cache[(img.path, img.frame)] = img
            self._cache.move_to_end((img.path, img.frame))
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def shutdown(self, timeout_ms: int = 10000) -> None:
        self._closed = True
        self._next += 1
        self.pool.clear()
        self.pool.waitForDone(timeout_ms)


def make_thumbnail(path: str, size: int = 64) -> QtGui.QImage:
    """Decode and render ``path`` at its default window, downscaled to ``size`` pixels.

    Runs in a worker: ``QImage`` (unlike ``QPixmap``) may be built off the GUI thread.
    """
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.core.display import render

    img = load_image(path)
    u8 = render(img)
    h, w = u8.shape[:2]
    step = max(1, int(max(h, w) // (size * 2)))
    small = np.ascontiguousarray(u8[::step, ::step])
    fmt = QtGui.QImage.Format.Format_Grayscale8 if small.ndim == 2 else QtGui.QImage.Format.Format_RGB888
    q = QtGui.QImage(small.data, small.shape[1], small.shape[0], small.strides[0], fmt).copy()
    return q.scaled(size, size, QtCore.Qt.AspectRatioMode.KeepAspectRatio, QtCore.Qt.TransformationMode.SmoothTransformation)


class ThumbnailLoader(QtCore.QObject):
    """Thumbnails on one background thread (image decoding has priority), LRU-bounded.

    ``ready(path, QImage)``; the browser turns it into an icon on the GUI thread.
    """

    ready = QtCore.Signal(str, QtGui.QImage)
    failed = QtCore.Signal(str, str)

    def __init__(self, parent: QtCore.QObject | None = None, size: int = 64, max_items: int = 512):
        super().__init__(parent)
        self.size = size
        self.pool = QtCore.QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.cache: OrderedDict[str, QtGui.QImage] = OrderedDict()
        self.max_items = max_items
        self._pending: set[str] = set()
        self._generation = 0
        self._closed = False
        self.ready.connect(self._store)

    def get(self, path: str) -> QtGui.QImage | None:
        """The cached thumbnail, or ``None`` after queueing its creation."""
        q = self.cache.get(path)
        if q is not None:
            self.cache.move_to_end(path)
            return q
        if path not in self._pending and not self._closed:
            self._pending.add(path)
            gen = self._generation
            self.pool.start(_Task(lambda: self._work(path, gen)))
        return None

    def _work(self, path: str, gen: int) -> None:
        if gen != self._generation or self._closed:
            return
        try:
            q = make_thumbnail(path, self.size)
        except CxrError as e:
            self._emit(self.failed, path, e.reason)
            return
        except Exception as e:  # noqa: BLE001
            self._emit(self.failed, path, f"{type(e).__name__}: {e}")
            return
        self._emit(self.ready, path, q)

    def _emit(self, signal, *args) -> None:
        if self._closed:
            return  # the browser is gone: nobody to tell
        try:
            signal.emit(*args)
        except RuntimeError:  # the QObject was deleted while this thumbnail was made
            pass

    def _store(self, path: str, q: QtGui.QImage) -> None:
        self._pending.discard(path)
        self.cache[path] = q
        while len(self.cache) > self.max_items:
            self.cache.popitem(last=False)

    def reset(self) -> None:
        """Forget queued work (a new folder was opened); finished thumbnails stay cached."""
        self._generation += 1
        self.pool.clear()
        self._pending.clear()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Stop: no new work is queued after this; running work is waited for."""
        self._closed = True
        self.reset()
        self.pool.waitForDone(timeout_ms)
