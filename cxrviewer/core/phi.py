"""The process-wide register of patient identifiers seen by the app, and the scrubber that
removes them from text (log records, crash reports).

Every place that reads a header (``dicom_io.header_from_dataset``, the study index) registers
the patient's name, ID, birth date, accession number and institution here;
:class:`cxrviewer.logsetup.PhiFilter` replaces them with ``[PHI]`` in every log record.
Matching is case-insensitive on whole tokens (letters and digits; ``_``, ``^``, ``/``, ``-``
and spaces separate tokens), so a folder named ``DOE_JOHN`` is scrubbed too, while the name
``Li`` does not eat the middle of ``Limit``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

REPLACEMENT = "[PHI]"

#: Most values kept; beyond this the oldest are still scrubbed by their components only.
MAX_VALUES = 200_000

_lock = threading.Lock()
_values: dict[str, None] = {}  # insertion-ordered set of lower-cased values


def _variants(value: str) -> list[str]:
    """The forms a value may take in text: a DICOM PN's components ("Doe^John" -> "Doe",
    "John"), a DA's ISO form ("19700101" -> "1970-01-01")."""
    v = value.strip().replace("\x00", "")
    if not v:
        return []
    out = {v}
    parts = re.split(r"[\^=,\s]+", v)
    for p in parts:
        if len(p) >= 2:
            out.add(p)
    if len(parts) > 1:
        out.add(" ".join(p for p in parts if p))
    if re.fullmatch(r"\d{8}", v):
        out.add(f"{v[:4]}-{v[4:6]}-{v[6:]}")
        out.add(f"{v[6:]}.{v[4:6]}.{v[:4]}")
        out.add(f"{v[4:6]}/{v[6:]}/{v[:4]}")
    return [x for x in out if len(x) >= 2]


def register(*values: object) -> None:
    """Remember identifying values (None/empty ignored; PersonName and numbers accepted)."""
    new = []
    for val in values:
        if val is None:
            continue
        s = str(val)
        if not s.strip():
            continue
        for form in _variants(s):
            low = form.lower()
            if low not in _values:
                new.append(low)
    if not new:
        return
    with _lock:
        for low in new:
            _values[low] = None
        while len(_values) > MAX_VALUES:
            _values.pop(next(iter(_values)))


def register_header(header) -> None:
    """Register the PHI fields of an :class:`~cxrviewer.core.types.ImageHeader` (or any
    object with those attributes)."""
    from cxrviewer.core.types import PHI_FIELDS

    register(*(getattr(header, f, None) for f in PHI_FIELDS))


def clear() -> None:
    """Forget everything (tests)."""
    with _lock:
        _values.clear()


def registered() -> int:
    return len(_values)


def scrub(text: str) -> str:
    """``text`` with every registered value replaced by ``[PHI]``.

    A substring pre-check keeps this cheap with many registered values: only the values
    actually present are put into the (token-bounded, case-insensitive) regex.
    """
    if not text or not _values:
        return text
    low = text.lower()
    with _lock:
        present = [v for v in _values if v in low]
    if not present:
        return text
    present.sort(key=len, reverse=True)  # longest first: "Doe John" before "Doe"
    pat = re.compile(
        r"(?<![0-9a-z])(?:" + "|".join(re.escape(v) for v in present) + r")(?![0-9a-z])",
        re.IGNORECASE,
    )
    return pat.sub(REPLACEMENT, text)


def scrub_all(texts: Iterable[str]) -> list[str]:
    return [scrub(t) for t in texts]
