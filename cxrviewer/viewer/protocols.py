"""Hanging protocols as plain data: which layout a study opens in and which image goes where.

A protocol is a dict (JSON in the settings, so a site can add its own without code)::

    {"name": "Chest PA + lateral", "modalities": ["CR", "DX"], "body_parts": ["CHEST", ""],
     "compare": false, "layout": "1x2",
     "cells": [["current", "frontal"], ["current", "lateral"]]}

``cells`` lists, in viewport order, which study (``current`` or ``prior``) and which view
(``frontal``, ``lateral``, or ``selected``: the image the reader opened, or for the prior its
image of that view, else its first) each viewport shows. A protocol applies when the modality
and body part match (an empty list matches any; ``""`` in the list matches a file without the
attribute), ``compare`` matches the request, and every cell finds an image. The first protocol
that applies wins, so specific ones come first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from cxrviewer.viewer.model import LAYOUTS, ImageRef

FRONTAL = frozenset({"PA", "AP", "FRONTAL"})
LATERAL = frozenset({"LL", "RL", "LAT", "LATERAL", "RLD", "LLD"})

#: the built-in protocols (listed in the README); settings may replace them
BUILTIN: tuple[dict, ...] = (
    {"name": "Compare with prior: frontal and lateral of each", "modalities": ["CR", "DX"], "body_parts": [],
     "compare": True, "layout": "2x2",
     "cells": [["current", "frontal"], ["current", "lateral"], ["prior", "frontal"], ["prior", "lateral"]]},
    {"name": "Compare with prior", "modalities": [], "body_parts": [], "compare": True, "layout": "1x2",
     "cells": [["current", "selected"], ["prior", "selected"]]},
    {"name": "Chest frontal + lateral", "modalities": ["CR", "DX"], "body_parts": [], "compare": False,
     "layout": "1x2", "cells": [["current", "frontal"], ["current", "lateral"]]},
    {"name": "Single image", "modalities": [], "body_parts": [], "compare": False, "layout": "1x1",
     "cells": [["current", "selected"]]},
)


def view_class(ref: ImageRef) -> str:
    """``frontal``, ``lateral`` or ``""`` from View Position (0018,5101)."""
    v = ref.view_position.upper()
    if v in FRONTAL:
        return "frontal"
    if v in LATERAL:
        return "lateral"
    return ""


@dataclass(frozen=True)
class Hanging:
    """A protocol's result: its name, the layout and each viewport's image (``None``: empty)."""

    name: str
    layout: str
    images: tuple[ImageRef | None, ...]


def validate(protocol: dict) -> dict:
    """``protocol`` itself when well formed; else ``ValueError`` naming the protocol and the rule."""
    name = protocol.get("name") or "<unnamed>"
    if protocol.get("layout") not in LAYOUTS:
        raise ValueError(f"hanging protocol {name!r}: layout must be one of {', '.join(LAYOUTS)}")
    cells = protocol.get("cells")
    r, c = LAYOUTS[protocol["layout"]]
    if not isinstance(cells, list) or not 1 <= len(cells) <= r * c:
        raise ValueError(f"hanging protocol {name!r}: cells must list 1 to {r * c} [study, view] pairs")
    for cell in cells:
        if (not isinstance(cell, (list, tuple)) or len(cell) != 2 or cell[0] not in ("current", "prior")
                or cell[1] not in ("frontal", "lateral", "selected")):
            raise ValueError(f"hanging protocol {name!r}: bad cell {cell!r} "
                             "(study: current or prior; view: frontal, lateral or selected)")
        if cell[0] == "prior" and not protocol.get("compare"):
            raise ValueError(f"hanging protocol {name!r}: a prior cell needs \"compare\": true")
    return protocol


def loads(text: str | None) -> list[dict]:
    """Protocols from the settings' JSON (``None``/empty: the built-in ones)."""
    if not text:
        return [dict(p) for p in BUILTIN]
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("hanging protocols: a JSON list of protocols is expected")
    return [validate(p) for p in data]


def _matches(values: Sequence[str], value: str) -> bool:
    return not values or value.upper() in {v.upper() for v in values}


def _pick(images: Sequence[ImageRef], view: str, selected: ImageRef | None) -> ImageRef | None:
    if view == "selected":
        if selected is not None:
            return selected
        return images[0] if images else None
    return next((i for i in images if view_class(i) == view), None)


def hang(protocols: Sequence[dict], selected: ImageRef, current: Sequence[ImageRef],
         prior: Sequence[ImageRef] = (), compare: bool = False) -> Hanging | None:
    """The first protocol that applies to ``selected`` (an image of the ``current`` study's
    images) and, when ``compare``, the ``prior`` study's images; ``None`` when none applies.

    For a prior cell of view ``selected``, the prior's image of the selected image's view is
    taken (else its first), as *Compare with prior* always did.
    """
    for p in protocols:
        if bool(p.get("compare")) != compare:
            continue
        if not _matches(p.get("modalities", []), selected.modality) or not _matches(p.get("body_parts", []),
                                                                                   selected.body_part):
            continue
        out: list[ImageRef | None] = []
        for study, view in p["cells"]:
            if study == "current":
                img = _pick(current, view, selected)
            else:
                same = [i for i in prior if view_class(i) and view_class(i) == view_class(selected)]
                img = _pick(prior, view, (same or list(prior) or [None])[0])
            if img is None:
                break
            out.append(img)
        else:
            if len({i.path for i in out}) == len(out):  # never one image twice
                return Hanging(p.get("name", ""), p["layout"], tuple(out))
    return None
