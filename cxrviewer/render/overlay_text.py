"""The four-corner text shown over the image and burned into exports (no Qt).

One function builds it for both the canvas and the exporter, so what is exported is what
was on screen, and the Anonymize option works on the header (``ImageHeader.anonymized()``),
never on rendered strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cxrviewer.core import orientation
from cxrviewer.core.geometry import format_date as _date
from cxrviewer.core.geometry import format_person_name as _name
from cxrviewer.core.types import ImageHeader, LoadedImage

CORNERS = ("tl", "tr", "bl", "br")


@dataclass
class CornerText:
    """Lines of text per corner: top-left, top-right, bottom-left, bottom-right."""

    tl: list[str] = field(default_factory=list)
    tr: list[str] = field(default_factory=list)
    bl: list[str] = field(default_factory=list)
    br: list[str] = field(default_factory=list)
    #: Orientation letters at the edge midpoints: ``{"top": "H", "right": "L", ...}`` or ``{}``
    edges: dict[str, str] = field(default_factory=dict)

    def corners(self) -> dict[str, list[str]]:
        return {"tl": self.tl, "tr": self.tr, "bl": self.bl, "br": self.br}

    def strings(self) -> list[str]:
        """Every line, in corner order (tests check these for PHI)."""
        return [s for c in CORNERS for s in getattr(self, c)]


def corner_text(
    img: LoadedImage,
    *,
    center: float | None = None,
    width: float | None = None,
    window_name: str = "",
    zoom: float | None = None,
    anonymize: bool = False,
    extra_br: list[str] | None = None,
    view=None,
) -> CornerText:
    """Build the corner text for ``img``.

    Parameters
    ----------
    center, width
        The current window in modality units (shown as ``W/L``).
    zoom
        Screen pixels per image pixel, shown as a percentage; ``None`` omits it (native export).
    anonymize
        Use :meth:`ImageHeader.anonymized` so no PHI field reaches the text.
    extra_br
        Extra lines for the bottom-right corner (e.g. the AI result).
    view
        The reader's rotation/flips (anything with ``rotation``, ``flip_h``, ``flip_v``) for
        the orientation letters (``edges``); ``None``: as stored.
    """
    h: ImageHeader = img.header.anonymized() if anonymize else img.header
    ct = CornerText()
    # Top-left: who (PHI, dropped when anonymized).
    if h.patient_name:
        ct.tl.append(_name(h.patient_name))
    if h.patient_id:
        ct.tl.append(f"ID: {h.patient_id}")
    sa = " ".join(x for x in (h.patient_sex, h.patient_age) if x)
    if sa:
        ct.tl.append(sa)
    if h.patient_birth_date:
        ct.tl.append(f"DOB: {_date(h.patient_birth_date)}")
    if h.institution_name:
        ct.tl.append(h.institution_name)
    if anonymize:
        ct.tl.append("ANONYMIZED")
    # Top-right: what study.
    if h.study_date:
        ct.tr.append(_date(h.study_date))
    if h.study_description:
        ct.tr.append(h.study_description)
    mv = " ".join(x for x in (h.modality, h.view_position, f"Lat {h.laterality}" if h.laterality else "") if x)
    if mv:
        ct.tr.append(mv)
    if h.accession_number:
        ct.tr.append(f"Acc: {h.accession_number}")
    # Bottom-left: where in the series.
    if h.series_number:
        ct.bl.append(f"Se: {h.series_number}")
    if h.instance_number:
        ct.bl.append(f"Im: {h.instance_number}")
    if getattr(img, "n_frames", 1) > 1:  # multi-frame: which one is shown (cine, wheel)
        ct.bl.append(f"Frame {img.frame + 1}/{img.n_frames}")
    ct.bl.append(f"{img.cols} x {img.rows}")
    # Bottom-right: how it is displayed.
    if center is not None and width is not None and not img.is_color:
        w = f"W {width:.0f} L {center:.0f}"
        if window_name:
            w += f" ({window_name})"
        ct.br.append(w)
    if zoom is not None:
        ct.br.append(f"Zoom {zoom * 100:.0f}%")
    if extra_br:
        ct.br.extend(extra_br)
    # Edge midpoints: orientation letters from the header only, turned with the view.
    dirs = orientation.directions_from_header(h.patient_orientation, h.image_orientation or None)
    if view is None:
        ct.edges = orientation.edge_letters(dirs)
    else:
        ct.edges = orientation.edge_letters(dirs, view.rotation, view.flip_h, view.flip_v)
    return ct
