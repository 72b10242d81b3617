"""De-identified copies of source files (``cxrviewer deid INPUT... --out DIR``).

Each source file (a DICOM image, or any DICOM object) is read whole, de-identified with one
:class:`~cxrviewer.dicom.deid.Deidentifier` (so one seed gives the same pseudonyms, UIDs and
date shift as ``export --anonymize --deid-seed``: an SR or GSPS exported from the original
image references the copy) and written atomically as ``DIR/<its new SOP Instance UID>.dcm``
(no source file name: names often carry the patient's). Sources are only read. An existing
output is never overwritten (re-running with the same seed finds its earlier copies and says
so). A file that cannot be de-identified is reported with its reason and the others go on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cxrviewer.core.errors import CxrError
from cxrviewer.dicom.common import MANUFACTURER, DicomObjectError, ensure_not_source, write_dataset


@dataclass(frozen=True)
class CopyOutcome:
    """What happened to one source file."""

    source: str
    status: str  # "written", "exists" (an earlier copy; not overwritten) or "failed"
    output: str = ""
    reason: str = ""
    sop_instance_uid: str = ""  # the copy's
    masked: bool = False


@dataclass
class CopyReport:
    """All outcomes of a run (``to_dict`` is the ``--json`` summary)."""

    outcomes: list[CopyOutcome] = field(default_factory=list)
    seeded: bool = False

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    def to_dict(self) -> dict:
        return {"written": self.count("written"), "exists": self.count("exists"), "failed": self.count("failed"),
                "seed": "given" if self.seeded else "random", "files": [asdict(o) for o in self.outcomes]}


def input_files(inputs: Iterable[str | os.PathLike]) -> tuple[list[str], list[CopyOutcome]]:
    """The files named by ``inputs`` (files, folders walked recursively, DICOMDIRs) and a
    failed outcome for each input that cannot be listed."""
    from cxrviewer.core.file_list import collect_paths

    files: list[str] = []
    bad: list[CopyOutcome] = []
    seen: set[str] = set()
    for inp in inputs:
        errors: list = []
        try:
            found = collect_paths(inp, errors)
        except CxrError as e:
            bad.append(CopyOutcome(os.fspath(inp), "failed", reason=e.reason))
            continue
        bad.extend(CopyOutcome(e.path, "failed", reason=e.reason) for e in errors)
        for f in found:
            key = os.path.realpath(f)
            if key not in seen:
                seen.add(key)
                files.append(f)
    return files, bad


def copy_one(path: str, out_dir: Path, deidentifier, masks: Sequence = (), sources: Sequence[str] = ()) -> CopyOutcome:
    """De-identify one file into ``out_dir`` (see the module docstring)."""
    from cxrviewer.core.dicom_io import read_dataset
    from cxrviewer.dicom.burnedin import check_burned_in, mask_dataset_pixels, regions_text

    try:
        ds = read_dataset(path)
        if not str(ds.get("SOPInstanceUID", "") or "").strip():
            raise DicomObjectError(path, "no SOP Instance UID: not a DICOM object to de-identify")
        masked_text = ""
        if "PixelData" in ds:
            # refuses possible burned-in text without masks; past it, the pixels are clean
            # as far as can be known (Burned In Annotation NO, Patient Identity Removed YES)
            check_burned_in(ds, masks, path)
            if masks:
                mask_dataset_pixels(ds, masks)
                masked_text = regions_text(masks)
        # an SC, SR or presentation state we wrote: its text and content are ours (kept, walked)
        own = str(ds.get("Manufacturer", "") or "") == MANUFACTURER
        out, _ = deidentifier(ds, own=own, pixels_clean=True, masked_regions=masked_text)
        uid = str(out.SOPInstanceUID)
        target = out_dir / f"{uid}.dcm"
        ensure_not_source(target, sources)
        if target.exists():
            return CopyOutcome(path, "exists", str(target), "an earlier copy is there; not overwritten", uid,
                               bool(masks))
        write_dataset(out, target)
        return CopyOutcome(path, "written", str(target), "", uid, bool(masks))
    except CxrError as e:
        return CopyOutcome(path, "failed", reason=e.reason)
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return CopyOutcome(path, "failed", reason=f"cannot de-identify: {first}")


def copy_deidentified(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike, *, seed: str | None = None,
                      masks: Sequence = (), on_outcome: Callable[[CopyOutcome], None] | None = None) -> CopyReport:
    """De-identified copies of every file in ``inputs`` into ``out_dir``.

    ``masks`` (``burnedin.MaskRegion``) are blanked in every image (every frame); an image
    whose pixels may carry burned-in text is refused without them. ``on_outcome`` is called
    after each file (progress, one line per failure).
    """
    from cxrviewer.dicom.deid import Deidentifier

    d = Deidentifier(seed)
    out = Path(out_dir)
    files, bad = input_files(inputs)
    report = CopyReport(list(bad), d.seeded)
    for o in bad:
        if on_outcome:
            on_outcome(o)
    if files:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DicomObjectError(out, f"output folder cannot be created ({e.strerror or e})") from None
    for f in files:
        o = copy_one(f, out, d, masks, files)
        report.outcomes.append(o)
        if on_outcome:
            on_outcome(o)
    return report
