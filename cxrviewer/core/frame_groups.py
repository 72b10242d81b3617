"""The attributes of one frame of an enhanced multi-frame object (PS3.3 C.7.6.16).

Enhanced CT/MR/XA/PET... objects keep Rescale Slope/Intercept/Type (Pixel Value
Transformation, C.7.6.16.2.9), Window Center/Width (Frame VOI LUT, C.7.6.16.2.10) and Pixel
Spacing (Pixel Measures, C.7.6.16.2.1) inside functional group macros, not at the top level.
A macro sits in the Shared Functional Groups Sequence (5200,9229) when it holds for every
frame, or in the frame's item of the Per-frame Functional Groups Sequence (5200,9230); the
per-frame item wins. :class:`FrameAttributes` answers ``get(keyword)`` for one frame from the
right macro, falling back to the top level only when no functional group carries the macro,
so the header readers in :mod:`cxrviewer.core.dicom_io` work unchanged on classic and
enhanced objects.
"""

from __future__ import annotations

from typing import Any

#: Functional group macro (its sequence keyword) -> the attributes it carries.
MACROS: dict[str, tuple[str, ...]] = {
    "PixelValueTransformationSequence": (
        "RescaleIntercept", "RescaleSlope", "RescaleType", "ModalityLUTSequence",
    ),
    "FrameVOILUTSequence": (
        "WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction", "VOILUTSequence",
    ),
    "PixelMeasuresSequence": ("PixelSpacing", "SliceThickness"),
}
_MACRO_OF = {kw: macro for macro, kws in MACROS.items() for kw in kws}


def _first_item(container: Any, keyword: str) -> Any:
    """Item 0 of ``container.<keyword>`` (a macro sequence), or ``None``; never raises on a
    malformed sequence (a corrupt item must not make the frame unreadable)."""
    if container is None:
        return None
    try:
        seq = container.get(keyword)
        if seq is None or len(seq) == 0:
            return None
        return seq[0]
    except Exception:  # noqa: BLE001 - corrupt nested data: as if the macro were absent
        return None


class FrameAttributes:
    """``get(keyword, default)`` for one frame: per-frame macro, else shared macro, else the
    top-level attribute.

    Parameters
    ----------
    ds
        The dataset (classic objects have no functional groups: every lookup is ``ds.get``).
    frame
        0-based frame index.
    """

    def __init__(self, ds: Any, frame: int = 0) -> None:
        self._ds = ds
        self.frame = frame
        self._shared = _first_item(ds, "SharedFunctionalGroupsSequence")
        self._per_frame = None
        try:
            pf = ds.get("PerFrameFunctionalGroupsSequence")
            if pf is not None and 0 <= frame < len(pf):
                self._per_frame = pf[frame]
        except Exception:  # noqa: BLE001 - a corrupt per-frame sequence: shared groups still apply
            self._per_frame = None
        self._macro_items: dict[str, Any] = {}
        for macro in MACROS:
            item = _first_item(self._per_frame, macro)
            if item is None:
                item = _first_item(self._shared, macro)
            if item is not None:
                self._macro_items[macro] = item

    @property
    def has_functional_groups(self) -> bool:
        """Whether any of the macros above came from a functional group."""
        return bool(self._macro_items)

    def source(self, keyword: str) -> str:
        """Where ``keyword`` is looked up for this frame, for explanations: the macro's name
        (e.g. ``"Frame VOI LUT"``) or ``""`` for the top level."""
        macro = _MACRO_OF.get(keyword)
        if macro is None or macro not in self._macro_items:
            return ""
        return {"PixelValueTransformationSequence": "Pixel Value Transformation",
                "FrameVOILUTSequence": "Frame VOI LUT",
                "PixelMeasuresSequence": "Pixel Measures"}[macro]

    def get(self, keyword: str, default: Any = None) -> Any:
        macro = _MACRO_OF.get(keyword)
        if macro is not None and macro in self._macro_items:
            # The macro is the whole answer for its attributes: never mix a frame's window
            # center with a top-level width.
            try:
                return self._macro_items[macro].get(keyword, default)
            except Exception:  # noqa: BLE001 - a corrupt value inside the item
                return default
        return self._ds.get(keyword, default)

    def __contains__(self, keyword: str) -> bool:
        return self.get(keyword) is not None
