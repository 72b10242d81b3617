"""De-identified copies (PS3.15 Annex E Basic Application Level Confidentiality Profile), with
the list of what changed.

Two field libraries, each for what it does best:

* **the profile's table** -- every attribute of PS3.15 Table E.1-1 with its action (D, Z, X,
  U and the compound X/Z, X/D, X/Z/D, X/Z/U*, Z/D) -- comes from ``dicom-anonymizer``
  (KitwareMedical), which keeps the table as data generated from the standard (its
  ``dicomfields_2026c``). dicognito applies only part of the table (it has no rule for Device
  Serial Number, Device UID, Operators' Name, ...); pydicom and highdicom have no profile at
  all.
* **the pseudonyms** -- UIDs, person names, IDs, institution -- come from dicognito: a keyed
  hash of the original value, so one seed maps one value the same way in every object and on
  every run (an SR de-identified today still references the image de-identified yesterday).

The table is applied at every depth (sequences included, e.g. the source's acquisition
equipment that highdicom copies into Contributing Equipment Sequence). Where an action allows
a dummy value (D, Z, Z/D, X/D, X/Z/D, X/Z/U*) and dicognito has a consistent pseudonym for the
attribute (names, UIDs, IDs, institution), the pseudonym is the dummy; otherwise Z and the
X/Z... actions empty the value, D puts a dummy of the VR, and X removes the attribute. Private
attributes are removed.

Dates and times: every DA and DT is shifted back by one whole number of days (62 to 729, from
the seed, never zero); times of day (TM and the time part of DT) are therefore unchanged, and
every date/time pair moves together (PS3.15 "Retain Longitudinal Temporal Information with
Modified Dates Option"). Time zone offsets are removed.

Our own objects (SC, SR, GSPS) carry text we wrote (series description, image comments,
derivation, the SR's content tree and the GSPS's annotations): that text is kept (Clean
Descriptors / Clean Structured Content / Clean Graphics options), while person names, UIDs
and dates inside it are pseudonymized like everywhere else, and the identifying observer
items of an SR content tree (organization, device serial number, location) are replaced.
"""

from __future__ import annotations

import copy
import datetime
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

#: (code value, meaning) in DCM for Deidentification Method Code Sequence (PS3.16 CID 7050).
BASIC_PROFILE = ("113100", "Basic Application Confidentiality Profile")
CLEAN_PIXEL_DATA = ("113101", "Clean Pixel Data Option")
CLEAN_GRAPHICS = ("113103", "Clean Graphics Option")
CLEAN_STRUCTURED_CONTENT = ("113104", "Clean Structured Content Option")
CLEAN_DESCRIPTORS = ("113105", "Clean Descriptors Option")
MODIFIED_DATES = ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")

#: Text we write ourselves into our objects (top level): no patient data, kept (Clean Descriptors).
OWN_DESCRIPTORS = frozenset({"SeriesDescription", "ImageComments", "DerivationDescription", "ContentLabel",
                             "ContentDescription"})
#: Our objects' own timestamps that are type 1 (the table removes them): shifted like every date.
OWN_TIMESTAMPS = frozenset({"PresentationCreationDate", "PresentationCreationTime"})
#: Our objects' content (SR content tree, GSPS annotations), kept at any depth and walked.
OWN_CONTENT = frozenset({"ContentSequence", "TextValue", "GraphicAnnotationSequence", "UnformattedTextValue"})
#: SR observer context items (TID 1003/1004 concept codes, DCM) whose TEXT value identifies a
#: person, a site or a device: replaced even inside our own content tree.
_IDENTIFYING_CONCEPTS = frozenset({"121009", "121010", "121016", "121017", "121012"})

#: Shift range (days back), as dicognito's (62 to 730 days) but in whole days.
MIN_SHIFT_DAYS, MAX_SHIFT_DAYS = 62, 730

_ACTION_LISTS = {"D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "Z/D", "X_Z_TAGS": "X/Z",
                 "X_D_TAGS": "X/D", "X_Z_D_TAGS": "X/Z/D", "X_Z_U_STAR_TAGS": "X/Z/U*"}
#: Attributes dicognito gives a consistent pseudonym (besides every PN, UI, DA, DT, TM).
_DICOGNITO_KEYWORDS = frozenset({
    "AccessionNumber", "OtherPatientIDs", "FillerOrderNumberImagingServiceRequest", "PatientID",
    "FillerOrderNumberProcedure", "PerformedProcedureStepID", "PlacerOrderNumberImagingServiceRequest",
    "PlacerOrderNumberProcedure", "RequestedProcedureID", "ScheduledProcedureStepID", "StationName", "StudyID",
    "InstitutionName", "PatientAddress", "RegionOfResidence", "CountryOfResidence",
})
_DUMMY_TEXT = "ANONYMIZED"
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "SH", "ST", "UT", "UC"})
_NUMBER_VRS = frozenset({"DS", "IS", "FL", "FD", "SL", "SS", "UL", "US", "SV", "UV", "AT"})


@dataclass(frozen=True)
class Change:
    """One attribute that de-identification changed (values are never recorded: PHI)."""

    path: str  # e.g. "PatientName" or "ReferencedSeriesSequence[0].SeriesInstanceUID"
    keyword: str
    action: str  # "replaced", "removed" or "added"


@lru_cache(maxsize=1)
def e11_table() -> tuple[dict[int, str], tuple[tuple[int, int, int, int, str], ...]]:
    """PS3.15 Table E.1-1 as ``({tag: action}, ((group, element, group mask, element mask,
    action), ...))`` -- the second part for the repeating groups (curves 50xx, overlays 60xx)."""
    from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as table

    exact: dict[int, str] = {}
    masked: list[tuple[int, int, int, int, str]] = []
    for name, action in _ACTION_LISTS.items():
        for t in getattr(table, name):
            if len(t) == 2:
                exact[(t[0] << 16) | t[1]] = action
            else:
                masked.append((t[0], t[1], t[2], t[3], action))
    return exact, tuple(masked)


def e11_action(tag: int) -> str | None:
    """The E.1-1 action for ``tag`` (``None``: the table keeps it)."""
    exact, masked = e11_table()
    a = exact.get(int(tag))
    if a is not None:
        return a
    g, e = int(tag) >> 16, int(tag) & 0xFFFF
    for mg, me, gm, em, action in masked:
        if g & gm == mg and e & em == me & em:
            return action
    return None


def date_shift_days(seed: str) -> int:
    """The whole-day shift for ``seed``: negative, never zero (from dicognito's keyed hash)."""
    from dicognito.randomizer import Randomizer

    span = MAX_SHIFT_DAYS - MIN_SHIFT_DAYS
    return -(Randomizer(seed).to_int("date_offset_days") % span + MIN_SHIFT_DAYS)


def _shift_da(value: str, days: int) -> str:
    v = value.strip().replace(".", "")  # ACR-NEMA "YYYY.MM.DD"
    try:
        return (datetime.datetime.strptime(v, "%Y%m%d") + datetime.timedelta(days=days)).strftime("%Y%m%d")
    except ValueError:
        return ""  # not a date: nothing to shift it by, so nothing of it is kept


def _shift_dt(value: str, days: int) -> str:
    v = value.strip()
    m = re.fullmatch(r"(\d{8})(\d{0,6}(?:\.\d{1,6})?)([+-]\d{4})?", v)
    if not m:
        return ""
    d = _shift_da(m.group(1), days)
    return d + m.group(2) if d else ""  # the time zone offset goes (Timezone Offset From UTC is X)


def _date_handler(days: int):
    """A dicognito element handler shifting DA and DT by ``days`` whole days; TM is kept
    (a whole-day shift leaves the time of day as it is, so each date/time pair stays together)."""
    from dicognito.element_anonymizer import ElementAnonymizer
    from pydicom.multival import MultiValue

    class WholeDayShift(ElementAnonymizer):
        def __call__(self, dataset, data_element) -> bool:
            if data_element.VR not in ("DA", "DT", "TM"):
                return False
            if data_element.VR == "TM" or not data_element.value:
                return True
            fn = _shift_da if data_element.VR == "DA" else _shift_dt
            vals = data_element.value if isinstance(data_element.value, MultiValue) else [data_element.value]
            new = [fn(str(v), days) for v in vals]
            data_element.value = new if len(new) > 1 else new[0]
            return True

        def describe_actions(self) -> Iterator[str]:
            yield f"Shift all DA and DT elements by {days} days; keep TM (whole-day shift)"

    return WholeDayShift()


def _dicognito_handles(elem) -> bool:
    if elem.VR in ("PN", "DA", "DT", "TM"):
        return True
    if elem.VR == "UI":
        return not (elem.keyword or "").endswith("ClassUID") and elem.keyword != "TransferSyntaxUID"
    return elem.keyword in _DICOGNITO_KEYWORDS


def _dummy(elem):
    if elem.VR in _TEXT_VRS:
        return _DUMMY_TEXT
    if elem.VR == "AS":
        return "000Y"
    if elem.VR in _NUMBER_VRS:
        return "0" if elem.VR in ("DS", "IS") else 0
    return None  # bytes, sequences, URIs: empty


def _concept(item) -> str:
    seq = item.get("ConceptNameCodeSequence")
    return str(seq[0].get("CodeValue", "")) if seq else ""


def apply_e11(ds, *, own: bool = False, top: bool = True) -> None:
    """Apply Table E.1-1 to ``ds`` in place, at every depth (see the module docstring).

    ``own``: ``ds`` is one of our objects, whose own descriptors and content are kept.
    """
    doomed = []
    for elem in ds:
        kw = elem.keyword or ""
        if elem.tag.is_private:
            continue  # removed afterwards, in one pass
        if own and top and kw in OWN_TIMESTAMPS:
            continue  # the whole-day shift (dates) applies
        if own and (kw in OWN_CONTENT or (top and kw in OWN_DESCRIPTORS)):
            if kw == "TextValue" and _concept(ds) in _IDENTIFYING_CONCEPTS:
                elem.value = _DUMMY_TEXT
            elif elem.VR == "SQ":
                for item in elem.value or []:
                    apply_e11(item, own=own, top=False)
            continue
        action = e11_action(elem.tag)
        if action is None:
            if elem.VR == "SQ":  # not identifying itself; its items may hold what is
                for item in elem.value or []:
                    apply_e11(item, own=own, top=False)
            continue
        if action == "X/Z/U*" and elem.VR == "SQ":
            # a reference (Source Image, Referenced Image, ...): kept, its UIDs replaced
            # consistently (U*) and its items cleaned like the rest
            for item in elem.value or []:
                apply_e11(item, own=own, top=False)
        elif action == "X":
            doomed.append(elem.tag)
        elif action != "X/Z" and _dicognito_handles(elem):
            continue  # dicognito's consistent pseudonym (or the whole-day date shift) is the dummy
        elif action == "U":
            continue  # UIDs: dicognito (UI VR), consistent under one seed
        elif action == "D" and elem.VR != "SQ":
            elem.value = _dummy(elem)
        else:  # Z, Z/D, X/Z, X/D, X/Z/D, X/Z/U* without a pseudonym: empty (present for type 2)
            elem.value = [] if elem.VR == "SQ" else None
    for tag in doomed:
        del ds[tag]


def _method_items(codes) -> list:
    from pydicom.dataset import Dataset

    items = []
    for value, meaning in codes:
        it = Dataset()
        it.CodeValue, it.CodingSchemeDesignator, it.CodeMeaning = value, "DCM", meaning
        items.append(it)
    return items


def _flatten(ds, prefix: str = "") -> dict[str, tuple[str, object]]:
    out: dict[str, tuple[str, object]] = {}
    for elem in ds:
        kw = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
        if elem.tag == 0x7FE00010:
            out[prefix + kw] = (kw, len(elem.value or b""))  # pixels are compared by size only
        elif elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                out.update(_flatten(item, f"{prefix}{kw}[{i}]."))
            out[prefix + kw] = (kw, len(elem.value or []))
        else:
            out[prefix + kw] = (kw, str(elem.value))
    return out


def diff(before, after) -> list[Change]:
    """What changed between two datasets, attribute by attribute (nested paths included)."""
    a, b = _flatten(before), _flatten(after)
    changes = []
    for path in sorted(set(a) | set(b)):
        if path in a and path not in b:
            changes.append(Change(path, a[path][0], "removed"))
        elif path in b and path not in a:
            changes.append(Change(path, b[path][0], "added"))
        elif a[path][1] != b[path][1] and not path.endswith("]"):
            changes.append(Change(path, a[path][0], "replaced"))
    # a sequence whose length did not change is not itself a change (its items are listed)
    return [c for c in changes if not (c.action == "replaced" and isinstance(a.get(c.path, (0, ""))[1], int))]


def reencode(ds):
    """``ds`` written and read back: the dataset a receiver gets. Values become what a file
    holds (highdicom leaves ``datetime.date`` objects in DA elements, which a date shifter
    cannot parse), and the original is left untouched."""
    import io

    import pydicom

    buf = io.BytesIO()
    copy.deepcopy(ds).save_as(buf, enforce_file_format=True)
    buf.seek(0)
    return pydicom.dcmread(buf)


class Deidentifier:
    """One consistent de-identification: the same seed gives the same pseudonyms, UIDs and
    date shift, in every object and on every run.

    Parameters
    ----------
    seed
        The key of the pseudonyms (``--deid-seed``). Keep it secret: whoever has it can test
        guesses of original UIDs and names against the pseudonyms. ``None``: a random one
        (nothing links this run's output to another's).
    """

    def __init__(self, seed: str | None = None) -> None:
        from dicognito.anonymizer import Anonymizer

        self.seeded = seed is not None and str(seed) != ""
        self._seed = str(seed) if self.seeded else secrets.token_hex(16)
        self.shift_days = date_shift_days(self._seed)
        self._anonymizer = Anonymizer(seed=self._seed)
        # our handler first: dicognito stops at the first handler that takes an element, so
        # its own hour-based shifter never sees DA/DT/TM
        self._anonymizer.add_element_handler(_date_handler(self.shift_days))

    def describe_actions(self) -> str:
        return self._anonymizer.describe_actions()

    def __call__(self, ds, *, own: bool = False, pixels_clean: bool = False,
                 masked_regions: str = "") -> tuple[object, list[Change]]:
        """A de-identified copy of ``ds`` and the list of changes (``ds`` is not modified).

        Parameters
        ----------
        own
            ``ds`` is one of our objects (SC, SR, GSPS): keep the text we wrote.
        pixels_clean
            The pixels carry no identifying text: the source is known to have none and our
            burned-in text is anonymized, or ``masked_regions`` were blanked. Burned In
            Annotation becomes NO and Patient Identity Removed YES; otherwise Burned In
            Annotation stays as it is and Patient Identity Removed says NO.
        masked_regions
            The user's mask regions (text for Deidentification Method): the Clean Pixel Data
            Option is recorded, as the user's assertion.
        """
        before = reencode(ds)
        out = copy.deepcopy(before)
        apply_e11(out, own=own)
        out.remove_private_tags()
        if pixels_clean and "PixelData" in out:
            out.BurnedInAnnotation = "NO"
        self._anonymizer.anonymize(out)
        codes = [BASIC_PROFILE, CLEAN_DESCRIPTORS, MODIFIED_DATES]
        if own and "ContentSequence" in out:
            codes.append(CLEAN_STRUCTURED_CONTENT)
        if own and "GraphicAnnotationSequence" in out:
            codes.append(CLEAN_GRAPHICS)
        if masked_regions:
            codes.append(CLEAN_PIXEL_DATA)
        out.DeidentificationMethodCodeSequence = _method_items(codes)
        method = ["PS3.15 E.1-1 Basic Profile", f"dicognito pseudonyms, {'given' if self.seeded else 'random'} seed",
                  "dates shifted by whole days"]
        if masked_regions:
            method.append("burned-in text blanked by the user (assertion)")
            text = f"regions {masked_regions}"
            method.extend(text[i:i + 64] for i in range(0, len(text), 64))  # LO: 64 chars a value
        out.DeidentificationMethod = method
        if "PixelData" not in out:
            out.PatientIdentityRemoved = "YES"  # SR / presentation state: no pixels to carry text
        else:
            out.PatientIdentityRemoved = "YES" if str(out.get("BurnedInAnnotation", "")).upper() == "NO" else "NO"
        # the file meta mirrors the (new) SOP Instance UID
        if getattr(out, "file_meta", None) is not None and "SOPInstanceUID" in out:
            out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
        return out, diff(before, out)


def deidentify(ds, *, seed: str | None = None, pixels_clean: bool = False, anonymizer: Deidentifier | None = None,
               own: bool = True, masked_regions: str = ""):
    """A de-identified copy of ``ds`` and the list of changes (see :class:`Deidentifier`).

    ``anonymizer``: a :class:`Deidentifier` to reuse (else one is made from ``seed``).
    """
    d = anonymizer or Deidentifier(seed)
    return d(ds, own=own, pixels_clean=pixels_clean, masked_regions=masked_regions)


def summarize(changes: Iterable[Change]) -> list[str]:
    """One line per (action, attribute), nested occurrences counted: for a closing note."""
    counts: dict[tuple[str, str], int] = {}
    for c in changes:
        counts[(c.action, c.keyword)] = counts.get((c.action, c.keyword), 0) + 1
    return [f"{action} {kw}" + (f" (x{n})" if n > 1 else "") for (action, kw), n in sorted(counts.items())]
