"""The state of a reading, outside the widgets (napari's ``ViewerModel`` in small).

A :class:`ViewerModel` holds the layout, which viewport is active and, per
:class:`ViewportModel`, what it shows: a reference to the image (:class:`ImageRef`: the file,
frame and the header fields that relate studies), the window, the view transform, the
measurements, the AI result. Everything is plain data (frozen dataclasses) and every change is
announced by a psygnal signal, so the Qt widgets render the model and send intent to it, while
exports, SR and GSPS read it, and tests of the reading workflow run without Qt.

Captions are *derived*, never stored: :meth:`ViewerModel.caption` computes a viewport's caption
from what every viewport shows and which one is active, so it cannot go stale when an image
changes (a viewport reads "Prior · date" only while it shows an earlier study of the patient in
the active viewport).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from psygnal import Signal

from cxrviewer.core.priors import format_date, normalize_date, normalize_time, same_issuer
from cxrviewer.viewer import measurements as registry

#: layout name -> (rows, columns); the grid shows the first rows*columns viewports
LAYOUTS: dict[str, tuple[int, int]] = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1), "2x2": (2, 2)}
#: how many viewports a model has (the largest layout's cells; hidden ones keep their image)
MAX_VIEWPORTS = 4


@dataclass(frozen=True)
class ImageRef:
    """What a viewport shows: a file (and frame) plus the header fields that relate studies.

    Attributes
    ----------
    path
        The file.
    frame, n_frames
        The frame shown (0-based) and how many the image has.
    patient_id, study_uid, series_uid, sop_uid
        Identity (empty when the file has none, e.g. PNG).
    issuer
        Issuer of Patient ID ('' when absent): with it, the same Patient ID from another issuer
        is another patient (as :func:`cxrviewer.core.priors.find_prior` decides).
    study_date, study_time
        As written (DA / TM); see :attr:`study_key`.
    modality, view_position, body_part, laterality
        What hanging protocols choose by.
    """

    path: str
    frame: int = 0
    n_frames: int = 1
    patient_id: str = ""
    issuer: str = ""
    study_uid: str = ""
    series_uid: str = ""
    sop_uid: str = ""
    study_date: str = ""
    study_time: str = ""
    modality: str = ""
    view_position: str = ""
    body_part: str = ""
    laterality: str = ""

    @classmethod
    def from_image(cls, img: Any, path: str | None = None) -> ImageRef:
        """The reference for a decoded :class:`~cxrviewer.core.types.LoadedImage`."""
        h = img.header
        return cls(path=str(path or img.path), frame=int(img.frame), n_frames=int(img.n_frames),
                   patient_id=h.patient_id.strip(), issuer=h.issuer_of_patient_id.strip(),
                   study_uid=h.study_instance_uid.strip(),
                   series_uid=h.series_instance_uid.strip(), sop_uid=h.sop_instance_uid.strip(),
                   study_date=h.study_date.strip(), study_time=h.study_time.strip(),
                   modality=h.modality.strip().upper(), view_position=h.view_position.strip().upper(),
                   body_part=h.body_part.strip().upper(), laterality=h.laterality.strip().upper())

    @classmethod
    def from_instance(cls, inst: Any, study: Any, patient_id: str = "") -> ImageRef:
        """The reference for a scanned (not yet decoded) image: an ``InstanceInfo`` of the
        ``StudyInfo`` ``study`` (what hanging protocols choose from)."""
        return cls(path=str(inst.path), n_frames=int(inst.number_of_frames or 1), patient_id=patient_id.strip(),
                   issuer=study.issuer_of_patient_id.strip(),
                   study_uid=study.study_instance_uid.strip(), sop_uid=inst.sop_instance_uid.strip(),
                   study_date=study.study_date.strip(), study_time=study.study_time.strip(),
                   modality=inst.modality.strip().upper(), view_position=inst.view_position.strip().upper(),
                   body_part=inst.body_part.strip().upper(), laterality=inst.laterality.strip().upper())

    @property
    def study_key(self) -> tuple[str, str] | None:
        """``(YYYYMMDD, HHMMSS.ffffff)`` for ordering studies, ``None`` without a valid date."""
        d = normalize_date(self.study_date)
        if d is None:
            return None
        return d, normalize_time(self.study_time) or ""

    @property
    def date_text(self) -> str:
        """The study date as ``YYYY-MM-DD`` (as written when not a valid DA)."""
        return format_date(self.study_date)

    @property
    def multi_frame(self) -> bool:
        return self.n_frames > 1

    def same_patient(self, other: ImageRef) -> bool:
        """Both carry the same non-empty Patient ID, and the same Issuer of Patient ID when both
        carry one (the rule of :func:`cxrviewer.core.priors.find_prior`)."""
        return (bool(self.patient_id) and self.patient_id == other.patient_id
                and same_issuer(self.issuer, other.issuer))

    def same_study(self, other: ImageRef) -> bool:
        """Same Study Instance UID (else, without UIDs, the same file)."""
        if self.study_uid and other.study_uid:
            return self.study_uid == other.study_uid
        return self.path == other.path


@dataclass(frozen=True)
class ViewTransform:
    """How an image is turned and scaled on screen (what the reader did, in image terms).

    ``zoom`` is a multiple of fit-to-window (1.0 = fit); ``center`` the image point at the view
    centre as a fraction of the image size ((0.5, 0.5) = centred); ``rotation`` in quarter turns
    clockwise, applied after the flips.
    """

    zoom: float = 1.0
    center: tuple[float, float] = (0.5, 0.5)
    rotation: int = 0
    flip_h: bool = False
    flip_v: bool = False
    invert: bool = False


@dataclass(frozen=True)
class Window:
    """A VOI window in modality units (PS3.3 C.11.2.1.2)."""

    center: float
    width: float


@dataclass(frozen=True)
class Measurement:
    """One measurement on an image, in image pixel coordinates (x, y).

    ``kind`` names an entry of the measurement registry (ruler, angle, cobb, ctr, ellipse,
    rectangle, arrow, text); ``value``/``unit`` are what it measured (``None`` for arrows and
    text), ``label`` the text shown beside it.
    """

    kind: str
    points: tuple[tuple[float, float], ...]
    value: float | None = None
    unit: str = ""
    label: str = ""


@dataclass(frozen=True)
class AiResult:
    """The AI's finding for the image a viewport shows.

    ``probability`` of ``label`` from the model ``model``, for ``path`` frame ``frame``;
    ``lines`` the text the viewer shows for it (burned into a capture); ``prediction`` the
    model's own answer (``cxrviewer.ml.inference.Prediction``, what an SR is built from: kept
    opaque here, not compared); ``has_heatmap`` whether a Grad-CAM map exists for it (the map
    itself stays with the widget that draws it).
    """

    label: str
    probability: float
    model: str = ""
    threshold: float | None = None
    path: str = ""
    frame: int = 0
    has_heatmap: bool = False
    forced: bool = False
    weights_sha256: str = ""
    lines: tuple[str, ...] = ()
    prediction: Any = field(default=None, compare=False, repr=False)
    #: the results cache's content key of this result (a reader's call records it)
    content_key: str = ""
    #: the model's card (``cxrviewer.ml.card.ModelCard``: its findings' codes go into an SR); opaque here
    card: Any = field(default=None, compare=False, repr=False)
    #: a multi-finding model: the finding shown (its heatmap, the corner text), "" otherwise
    finding: str = ""
    #: that finding's probability (``None`` when no finding is shown, e.g. a refused image)
    finding_probability: float | None = None


class ViewportModel:
    """One viewport's state. Setters emit only on a change.

    Signals
    -------
    image_changed(ImageRef | None)
        Another image (or frame) is shown, or none; the measurements and AI result went with it.
    window_changed(Window | None), view_changed(ViewTransform)
    measurements_changed(tuple), ai_changed(AiResult | None)
    """

    image_changed = Signal(object)
    window_changed = Signal(object)
    view_changed = Signal(object)
    measurements_changed = Signal(tuple)
    ai_changed = Signal(object)

    def __init__(self, index: int) -> None:
        self.index = index
        self._image: ImageRef | None = None
        self._window: Window | None = None
        self._view = ViewTransform()
        self._measurements: tuple[Measurement, ...] = ()
        self._ai: AiResult | None = None
        self._pixels: Any = None

    def __repr__(self) -> str:
        return f"ViewportModel({self.index}, {self._image.path if self._image else None!r})"

    # -------------------------------------------------------------- image
    @property
    def image(self) -> ImageRef | None:
        return self._image

    def set_image(self, ref: ImageRef | None) -> None:
        """Show ``ref`` (``None``: nothing). Another file drops the measurements and the AI
        result (they were the old image's); another frame of the same file keeps them."""
        if ref == self._image:
            return
        old, self._image = self._image, ref
        if ref is None or old is None or ref.path != old.path:
            if ref is None:
                self._pixels = None
            self.set_measurements(())
            self.set_ai(None)
            self._window = None
        self.image_changed.emit(ref)

    def set_frame(self, frame: int) -> None:
        """Step to ``frame`` of the multi-frame image shown (clamped to its frames)."""
        if self._image is None:
            return
        frame = max(0, min(int(frame), self._image.n_frames - 1))
        self.set_image(replace(self._image, frame=frame))

    # -------------------------------------------------------------- window, view
    @property
    def window(self) -> Window | None:
        return self._window

    def set_window(self, window: Window | None) -> None:
        if window != self._window:
            self._window = window
            self.window_changed.emit(window)

    @property
    def view(self) -> ViewTransform:
        return self._view

    def set_view(self, view: ViewTransform) -> None:
        if view != self._view:
            self._view = view
            self.view_changed.emit(view)

    # -------------------------------------------------------------- measurements, AI
    @property
    def measurements(self) -> tuple[Measurement, ...]:
        return self._measurements

    def set_measurements(self, items) -> None:
        """Replace every measurement (undo/redo, a remembered reading state): the canvas
        draws what the model holds. One without a value gets it from the registry."""
        items = tuple(self._valued(m) for m in items)
        if items != self._measurements:
            self._measurements = items
            self.measurements_changed.emit(items)

    @property
    def pixels(self) -> Any:
        """The decoded image shown (``cxrviewer.core.types.LoadedImage``, opaque here): what
        measurement values are computed on (pixel spacing, ROI statistics); ``None`` without."""
        return self._pixels

    def set_pixels(self, img: Any) -> None:
        self._pixels = img

    def _valued(self, m: Measurement) -> Measurement:
        """``m`` with its value and its text (the label shown beside it) from the registry, on
        the pixels shown; what it has already is kept (an arrow's or text label's own text)."""
        if self._pixels is None or not registry.finished(m) or registry.kind(m.kind).compute is None:
            return m
        try:
            value, unit = (m.value, m.unit) if m.value is not None else registry.compute(m, self._pixels)
            label = m.label or registry.text(m, self._pixels)
        except (ValueError, ZeroDivisionError, IndexError):  # a degenerate shape
            return m
        return replace(m, value=value, unit=unit, label=label)

    # intent: what a tool (or any feature, Qt-free) asks for; the canvas draws the result
    def add_measurement(self, kind: str, points, label: str = "") -> Measurement:
        """Add a ``kind`` measurement (a key of the registry) through ``points`` (image x, y);
        its value comes from the registry. ``label``: the text of an arrow or a text label."""
        k = registry.kind(kind)
        pts = tuple((float(x), float(y)) for x, y in points)
        if len(pts) < k.points:
            raise ValueError(f"a {k.name} needs {k.points} points, got {len(pts)}")
        m = self._valued(Measurement(kind, pts, label=label))
        self.set_measurements((*self._measurements, m))
        return self._measurements[-1]

    def remove_measurement(self, index: int) -> Measurement:
        """Remove measurement ``index`` (its position in :attr:`measurements`)."""
        items = list(self._measurements)
        m = items.pop(index)
        self.set_measurements(items)
        return m

    def move_measurement(self, index: int, points) -> Measurement:
        """Move measurement ``index`` to ``points`` (its value is computed again)."""
        items = list(self._measurements)
        old = items[index]
        pts = tuple((float(x), float(y)) for x, y in points)
        keep = old.label if old.value is None else ""  # a value's text is recomputed by whoever draws it
        items[index] = self._valued(Measurement(old.kind, pts, label=keep))
        self.set_measurements(items)
        return self._measurements[index]

    @property
    def ai(self) -> AiResult | None:
        return self._ai

    def set_ai(self, result: AiResult | None) -> None:
        if result != self._ai:
            self._ai = result
            self.ai_changed.emit(result)


@dataclass
class _Caption:
    text: str = ""
    relation: str = ""  # "current", "prior", "later" or ""


class ViewerModel:
    """The viewer: viewports, layout and the active viewport.

    Signals
    -------
    layout_changed(str)
        The layout's name (a key of :data:`LAYOUTS`).
    active_changed(int, int)
        The active viewport moved from the first index to the second.
    captions_changed(tuple)
        The captions of every viewport (index order), after any change that alters one.
    image_changed(int, ImageRef | None)
        Viewport ``index`` shows another image (any viewport: one signal to connect to).
    open_requested(int, str, int)
        A feature asked for ``(index, path, frame)`` to be shown (:meth:`request_open`); the
        shell's loaders decode it and :attr:`image_changed` follows when it is on screen.
    """

    layout_changed = Signal(str)
    active_changed = Signal(int, int)
    captions_changed = Signal(tuple)
    image_changed = Signal(int, object)
    open_requested = Signal(int, str, int)

    def __init__(self, n: int = MAX_VIEWPORTS) -> None:
        self.viewports: list[ViewportModel] = [ViewportModel(i) for i in range(n)]
        self._layout = "1x1"
        self._active = 0
        self._captions: tuple[str, ...] = ("",) * n
        for vp in self.viewports:
            vp.image_changed.connect(lambda ref, i=vp.index: self._image_changed(i, ref))

    def __iter__(self) -> Iterator[ViewportModel]:
        return iter(self.viewports)

    def __getitem__(self, index: int) -> ViewportModel:
        return self.viewports[index]

    # -------------------------------------------------------------- layout, active
    @property
    def layout(self) -> str:
        return self._layout

    def set_layout(self, name: str) -> None:
        """Show ``name``'s cells; an active viewport the layout hides hands over to the first."""
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}: one of {', '.join(LAYOUTS)}")
        if name == self._layout:
            return
        self._layout = name
        self.layout_changed.emit(name)
        if self._active >= self.visible_count():
            self.set_active(0)
        self._refresh_captions()

    def visible_count(self) -> int:
        r, c = LAYOUTS[self._layout]
        return r * c

    def visible(self) -> list[ViewportModel]:
        return self.viewports[: self.visible_count()]

    @property
    def active_index(self) -> int:
        return self._active

    @property
    def active(self) -> ViewportModel:
        return self.viewports[self._active]

    def set_active(self, index: int) -> None:
        if not 0 <= index < len(self.viewports):
            raise IndexError(f"no viewport {index}")
        if index == self._active:
            return
        old, self._active = self._active, index
        self.active_changed.emit(old, index)
        self._refresh_captions()

    def request_open(self, index: int, path: str, frame: int = 0) -> None:
        """Ask for ``path`` (frame ``frame``) in viewport ``index``: intent, not state (the
        image is the viewport's once it is decoded and shown)."""
        if not 0 <= index < len(self.viewports):
            raise IndexError(f"no viewport {index}")
        self.open_requested.emit(index, str(path), int(frame))

    @property
    def current_image(self) -> ImageRef | None:
        """The active viewport's image (what keys, panels, the AI and exports act on)."""
        return self.active.image

    def index_of(self, path: str) -> int | None:
        """The first visible viewport showing ``path``."""
        for vp in self.visible():
            if vp.image is not None and vp.image.path == path:
                return vp.index
        return None

    # -------------------------------------------------------------- captions
    def _image_changed(self, index: int, ref: ImageRef | None) -> None:
        self.image_changed.emit(index, ref)
        self._refresh_captions()

    def relation(self, index: int) -> str:
        """How viewport ``index``'s image relates to the active one's: ``"prior"`` (an earlier
        study of the same patient), ``"later"``, ``"current"`` (the active viewport, or the same
        study, while some visible viewport shows another study of the patient), or ``""``."""
        return self._relations()[index].relation

    def caption(self, index: int) -> str:
        """The caption viewport ``index`` shows (derived; see :meth:`relation`)."""
        return self._relations()[index].text

    def captions(self) -> tuple[str, ...]:
        return tuple(c.text for c in self._relations())

    def _relations(self) -> list[_Caption]:
        out = [_Caption() for _ in self.viewports]
        cur = self.active.image
        if cur is None or not cur.patient_id:
            return out
        shown = [vp for vp in self.visible() if vp.image is not None and vp.image.same_patient(cur)]
        if not any(not vp.image.same_study(cur) for vp in shown):
            return out  # no other study of the patient on screen: nothing to tell apart
        cur_key = cur.study_key
        for vp in shown:
            ref = vp.image
            if ref.same_study(cur):
                rel, word = "current", "Current"
            else:
                key = ref.study_key
                if key is None or cur_key is None or key == cur_key:
                    rel, word = "", "Other study"
                elif key < cur_key:
                    rel, word = "prior", "Prior"
                else:
                    rel, word = "later", "Later"
            out[vp.index] = _Caption(f"{word} · {ref.date_text}" if ref.date_text else word, rel)
        return out

    def _refresh_captions(self) -> None:
        caps = self.captions()
        if caps != self._captions:
            self._captions = caps
            self.captions_changed.emit(caps)


@dataclass
class ModelSnapshot:
    """What an export reads: the active viewport's image, window, view, measurements and AI
    result at one moment (plain data, no widget)."""

    image: ImageRef | None
    window: Window | None
    view: ViewTransform
    measurements: tuple[Measurement, ...] = field(default_factory=tuple)
    ai: AiResult | None = None

    @classmethod
    def of(cls, vp: ViewportModel) -> ModelSnapshot:
        return cls(vp.image, vp.window, vp.view, vp.measurements, vp.ai)
