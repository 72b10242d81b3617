"""Per-image reading state: window, zoom/pan, rotation/flip/invert and measurements belong to the image.

Leaving an image and coming back (PgDown, PgUp, another series, a restart) puts back what the
reader left: the same window, the same part of the image at the same zoom, the same
orientation and the same measurements. *Reset View* puts the defaults back (rulers stay: they
are the reader's work; *Clear All Rulers* removes them).

Key
    SOPInstanceUID + a hash of the decoded pixels (and how they are read) + frame, so two files
    that share a UID (it happens: the shared SIIM pair) never share state, and a PNG (no UID) is
    known by its pixels. The pixel hash is :func:`content_hash`, the image part of the AI's
    content key.
Storage
    One small JSON per image in ``user_data_dir()/reading_state/``, named by a hash of the key
    and written atomically (:mod:`cxrviewer.atomic`) a moment after the last change and
    whenever the reader leaves the image or closes the window. A file that is not valid JSON,
    has another format, or belongs to another key (a foreign file) is ignored with one log
    line: the image opens with its defaults, never a crash.

The data part (:class:`ReadingState`, :class:`ReadingStateStore`) is Qt-free;
:class:`ReadingStateKeeper` is the glue to a main window.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6 import QtCore

from cxrviewer.core.hashing import sha256_parts
from cxrviewer.core.types import LoadedImage, WindowPreset
from cxrviewer.ml.results import pixel_digest
from cxrviewer.viewer import Measurement
from cxrviewer.viewer import measurements as registry

_log = logging.getLogger(__name__)

FORMAT = "cxrviewer-reading-state"
VERSION = 1
#: milliseconds after the last change before the state is written
SAVE_DELAY_MS = 500


def content_hash(img: LoadedImage) -> str:
    """The image part of the project's one content key (:func:`cxrviewer.ml.results.pixel_digest`):
    sha256 of the decoded frame and how it is read (photometric, inversion, rescale, default
    window). The shared SIIM pair (same UID, same stored values, one flagged MONOCHROME1) thus
    gets two states, as it gets two AI results."""
    return pixel_digest(img)


@dataclass(frozen=True)
class StateKey:
    """Which image (and frame) a state belongs to."""

    sop_instance_uid: str
    content: str
    frame: int = 0

    @classmethod
    def of(cls, img: LoadedImage) -> StateKey:
        return cls(img.header.sop_instance_uid or "", content_hash(img), int(img.frame))

    def as_dict(self) -> dict[str, Any]:
        return {"sop_instance_uid": self.sop_instance_uid, "content": self.content, "frame": self.frame}

    def file_name(self) -> str:
        s = json.dumps(self.as_dict(), sort_keys=True)
        return sha256_parts(s)[:40] + ".json"


@dataclass
class ReadingState:
    """What the reader did to one image.

    ``window`` is ``None`` for "the image's default"; ``center`` is the image point (x =
    column, y = row) at the middle of the view and ``zoom`` screen pixels per image pixel,
    both ``None`` when the image is fitted to the window. ``rulers`` are ``(x0, y0, x1, y1)``
    in image coordinates (the model's ``ruler`` measurements: kept apart in the file, the
    format it always had).
    """

    window: WindowPreset | None = None
    rotation: int = 0
    flip_h: bool = False
    flip_v: bool = False
    invert: bool = False
    center: tuple[float, float] | None = None
    zoom: float | None = None
    rulers: list[tuple[float, float, float, float]] = field(default_factory=list)
    #: the other measurements (:mod:`cxrviewer.ui.reading.measure_tools`): ``(kind, points)``, or
    #: ``(kind, points, text)`` for a text label or an arrow with text
    measurements: list[tuple] = field(default_factory=list)

    def is_default(self) -> bool:
        return self == ReadingState()

    def to_json(self, key: StateKey) -> dict[str, Any]:
        w = self.window
        return {
            "format": FORMAT,
            "version": VERSION,
            "key": key.as_dict(),
            "window": None
            if w is None
            else {"name": w.name, "center": w.center, "width": w.width, "function": w.function, "source": w.source,
                  "explanation": w.explanation, "lut_index": w.lut_index},
            "view": {"rotation": self.rotation % 4, "flip_h": self.flip_h, "flip_v": self.flip_v, "invert": self.invert},
            "zoom": None if self.zoom is None or self.center is None else {"center": list(self.center), "zoom": self.zoom},
            "rulers": [list(r) for r in self.rulers],
            "measurements": [{"kind": m[0], "points": [list(p) for p in m[1]], **({"text": m[2]} if len(m) > 2 and m[2] else {})}
                             for m in self.measurements],
        }

    @classmethod
    def from_json(cls, d: Any, key: StateKey) -> ReadingState:
        """Parse and check a stored state; raises ``ValueError`` saying what is wrong."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError("not a cxrviewer reading-state file")
        if d.get("version") != VERSION:
            raise ValueError(f"unsupported version {d.get('version')!r}")
        if d.get("key") != key.as_dict():
            raise ValueError("it belongs to another image (key differs)")
        st = cls()
        w = d.get("window")
        if w is not None:
            if not isinstance(w, dict):
                raise ValueError("window is not an object")
            lut = w.get("lut_index")
            st.window = WindowPreset(
                str(w.get("name", "User")), _num(w.get("center"), "window center"),
                max(_num(w.get("width"), "window width"), 1e-6), str(w.get("function", "LINEAR")),
                str(w.get("source", "user")), str(w.get("explanation", "")),
                int(lut) if isinstance(lut, int) and not isinstance(lut, bool) else None,
            )
        v = d.get("view") or {}
        if not isinstance(v, dict):
            raise ValueError("view is not an object")
        rot = v.get("rotation", 0)
        if not isinstance(rot, int) or isinstance(rot, bool):
            raise ValueError("rotation is not an integer")
        st.rotation = rot % 4
        for name in ("flip_h", "flip_v", "invert"):
            val = v.get(name, False)
            if not isinstance(val, bool):
                raise ValueError(f"{name} is not true/false")
            setattr(st, name, val)
        z = d.get("zoom")
        if z is not None:
            if not isinstance(z, dict) or not isinstance(z.get("center"), list) or len(z["center"]) != 2:
                raise ValueError("zoom is malformed")
            st.center = (_num(z["center"][0], "centre x"), _num(z["center"][1], "centre y"))
            st.zoom = _num(z.get("zoom"), "zoom")
            if not st.zoom > 0:
                raise ValueError("zoom is not positive")
        rulers = d.get("rulers") or []
        if not isinstance(rulers, list):
            raise ValueError("rulers is not a list")
        for r in rulers:
            if not isinstance(r, list) or len(r) != 4:
                raise ValueError("a ruler is not four numbers")
            st.rulers.append(tuple(_num(x, "ruler end") for x in r))  # type: ignore[arg-type]
        meas = d.get("measurements") or []
        if not isinstance(meas, list) or len(meas) > 1000:
            raise ValueError("measurements is not a list")
        for m in meas:
            if not isinstance(m, dict) or not isinstance(m.get("kind"), str) or not isinstance(m.get("points"), list):
                raise ValueError("a measurement is malformed")
            pts = []
            for p in m["points"][:8]:
                if not isinstance(p, list) or len(p) != 2:
                    raise ValueError("a measurement point is not two numbers")
                pts.append((_num(p[0], "measurement point"), _num(p[1], "measurement point")))
            text = m.get("text", "")
            if not isinstance(text, str) or len(text) > 2000:
                raise ValueError("a measurement's text is not a short string")
            st.measurements.append((m["kind"], pts, text) if text else (m["kind"], pts))
        return st


def _num(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise ValueError(f"{what} is not a finite number")
    return float(x)


class ReadingStateStore:
    """One JSON file per image under ``folder`` (default ``user_data_dir()/reading_state``)."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        if folder is None:
            from cxrviewer.paths import user_data_dir

            folder = user_data_dir() / "reading_state"
        self.folder = Path(folder)

    def path(self, key: StateKey) -> Path:
        return self.folder / key.file_name()

    def load(self, key: StateKey) -> ReadingState | None:
        """The stored state, or ``None`` (nothing stored, or a file that is ignored with a log
        line because it is unreadable, corrupt or foreign)."""
        p = self.path(key)
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            _log.warning("reading state %s ignored (defaults used): %s", p, e.strerror or e)
            return None
        try:
            if len(raw) > 1 << 20:
                raise ValueError("larger than 1 MiB")
            return ReadingState.from_json(json.loads(raw.decode("utf-8")), key)
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            _log.warning("reading state %s ignored (defaults used): %s", p, e)
            return None

    def save(self, key: StateKey, state: ReadingState) -> None:
        """Write atomically; a state equal to the defaults removes the file."""
        from cxrviewer.atomic import write_text

        p = self.path(key)
        if state.is_default():
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                _log.warning("reading state %s not removed: %s", p, e.strerror or e)
            return
        write_text(p, json.dumps(state.to_json(key), indent=1))


class ReadingStateKeeper(QtCore.QObject):
    """Keeps the canvas's state per image for a main window.

    Every change of the image the state belongs to (the canvas's window and view, the
    measurements: the tools' ``changed``) is captured at once (cheap) and written
    :data:`SAVE_DELAY_MS` later, or at once when the reader moves to another image or the
    window closes (:meth:`flush`). Changes that the canvas makes while it switches images are
    not captured: they belong to no one yet.
    """

    restored = QtCore.Signal(object)  # the ReadingState put back, after an image is shown

    def __init__(self, window, store: ReadingStateStore | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.canvas = window.canvas
        self.store = store or ReadingStateStore()
        self._img: LoadedImage | None = None
        self._key: StateKey | None = None
        self._state: ReadingState | None = None
        self._dirty = False
        self._restoring = False
        self._keys: list[tuple[LoadedImage, StateKey]] = []  # see key_for
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SAVE_DELAY_MS)
        self._timer.timeout.connect(self.flush)
        self.tools = window.measure_tools
        sigs = [self.canvas.windowChanged, self.canvas.viewChanged]
        if self.tools is not None:
            sigs.append(self.tools.changed)
        for sig in sigs:
            sig.connect(self._changed)
        window.imageLoaded.connect(self._image_loaded)
        window.imageCleared.connect(self._image_cleared)

    @property
    def restoring(self) -> bool:
        """A remembered state is being put back (its changes are not the reader's)."""
        return self._restoring

    def key_for(self, img: LoadedImage) -> StateKey:
        """``StateKey.of(img)``, remembered for the last few images by identity: hashing a
        2500x2048 frame costs ~30 ms, and switching viewports asks for the same images again."""
        for known, key in self._keys:
            if known is img:
                return key
        key = StateKey.of(img)
        self._keys = [(img, key), *self._keys[:7]]
        return key

    def set_canvas(self, canvas, tools=None) -> None:
        """Keep the state of ``canvas`` (and its measurement ``tools``) from now on: the
        active viewport changed. Its image is already on screen with its state, so nothing
        is restored; the previous image's pending state is written first."""
        self.flush()
        for sig in (self.canvas.windowChanged, self.canvas.viewChanged):
            sig.disconnect(self._changed)
        if self.tools is not None:
            self.tools.changed.disconnect(self._changed)
        self.canvas, self.tools = canvas, tools
        for sig in (canvas.windowChanged, canvas.viewChanged):
            sig.connect(self._changed)
        if tools is not None:
            tools.changed.connect(self._changed)
        img = canvas.img
        self._img, self._key, self._state = img, (self.key_for(img) if img is not None else None), None
        self._dirty = False

    # ------------------------------------------------------------ capture
    def capture(self) -> ReadingState:
        """The canvas's current state (its image must be the keyed one)."""
        c = self.canvas
        v = c.view_state()
        img = c.img
        win = c.current_preset()
        default = img.default_preset if img is not None else None
        ms = self.tools.model.measurements if self.tools is not None else ()
        notes = [registry.own_text(m) for m in ms]
        st = ReadingState(
            window=None if win is None or win == default else win,
            rotation=v.rotation % 4, flip_h=v.flip_h, flip_v=v.flip_v, invert=v.invert,
            rulers=[(*m.points[0], *m.points[1]) for m in ms if m.kind == "ruler"],
            measurements=[(m.kind, [tuple(p) for p in m.points], n) if n else (m.kind, [tuple(p) for p in m.points])
                          for m, n in zip(ms, notes, strict=True) if m.kind != "ruler"],
        )
        if not c.is_fit():
            st.center, st.zoom = c.center_zoom()
        return st

    def _changed(self, *_a) -> None:
        if self._restoring or self._img is None or self.canvas.img is not self._img:
            return
        self._state = self.capture()
        self._dirty = True
        self._timer.start()

    def flush(self) -> None:
        """Write the pending state now (if any)."""
        self._timer.stop()
        if not self._dirty or self._key is None or self._state is None:
            return
        self._dirty = False
        try:
            self.store.save(self._key, self._state)
        except Exception as e:  # noqa: BLE001 - a full disk must not break reading
            _log.warning("reading state for %s not saved: %s", self._img.path if self._img else "?", e)

    # ------------------------------------------------------------ restore
    def _image_cleared(self) -> None:
        self.flush()
        self._img = self._key = self._state = None

    def _image_loaded(self, img: LoadedImage) -> None:
        self.flush()
        self._img = img
        self._key = self.key_for(img)
        st = self.store.load(self._key)
        self._state = st
        if st is not None:
            self.apply(st)
        self.restored.emit(st)

    def apply(self, st: ReadingState, canvas=None, tools=None) -> None:
        """Put ``st`` on the canvas (shown image = the keyed one), or on another viewport's
        ``canvas`` and ``tools`` (an image opened in a viewport that is not the active one)."""
        c = canvas if canvas is not None else self.canvas
        own = c is self.canvas
        tools = self.tools if own else tools
        self._restoring = True
        try:
            v = c.view_state()
            c.rotate((st.rotation - v.rotation) % 4)
            if st.flip_h != v.flip_h:
                c.flip_h()
            if st.flip_v != v.flip_v:
                c.flip_v()
            if own:
                self.window.act_invert.setChecked(st.invert)  # the action drives canvas.set_invert
            if c.view_state().invert != st.invert:
                c.set_invert(st.invert)
            if st.window is not None and c.img is not None and not c.img.is_color:
                c.set_preset(st.window)
            if tools is not None:  # on the viewer model, which the canvas draws
                known = [(kind, pts, text) for kind, pts, *text in st.measurements if kind in registry.REGISTRY]
                for kind, *_rest in st.measurements:
                    if kind not in registry.REGISTRY:
                        _log.warning("reading state of %s: measurement %r skipped: unknown kind",
                                     c.img.path if c.img else "?", kind)
                tools.model.set_measurements(
                    [Measurement("ruler", ((x0, y0), (x1, y1))) for x0, y0, x1, y1 in st.rulers]
                    + [Measurement(kind, tuple(tuple(p) for p in pts), label=text[0] if text else "")
                       for kind, pts, text in known])
            if st.center is not None and st.zoom is not None:
                c.set_center_zoom(st.center[0], st.center[1], st.zoom)
            else:
                c.fit()
        finally:
            self._restoring = False


def install(window) -> ReadingStateKeeper:
    """Keep reading state per image for a main window."""
    return ReadingStateKeeper(window)
