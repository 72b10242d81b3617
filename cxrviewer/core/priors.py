"""Find the prior of an image: the same patient's most recent earlier study, same view.

Qt-free, on the scan result (:mod:`cxrviewer.core.study_index`), so the rule is tested on
headers alone and the viewer's *Compare with prior* only displays what this returns.

The rules (issue 14), each chosen so that a wrong prior is never shown:

* **Same patient** means the same Patient ID, and the same Issuer of Patient ID when both
  files carry one. Names are never compared: two patients may share a name, and one
  patient's name may be spelled differently across studies. An image without a Patient ID
  (a PNG, an anonymised file) has no prior.
* **Earlier** is by Study Date, then Study Time. A study without a (valid) date cannot be
  placed in time, so it is never a prior, and an image whose own study has no date has
  none. On the same date, both times are needed to order the two studies (a missing time is
  not "midnight"). The current study itself is never its own prior.
* **Most recent** earlier study wins; studies at exactly the same date and time are told apart
  by which one has the image of the same view, then by Study Instance UID (deterministic).
* **Within the prior study**, the image of the same body part, View Position, then
  laterality is taken (each compared only when both images say it); when none matches
  better, the first image in browser order.
"""

from __future__ import annotations

from dataclasses import dataclass

from cxrviewer.core.types import InstanceInfo, PatientInfo, ScanResult, StudyInfo

#: Status-bar text when the patient has no earlier study among the scanned files.
NO_EARLIER_STUDY = "No earlier study for this patient in the open folder"


@dataclass(frozen=True)
class PriorMatch:
    """A prior found for an image.

    Attributes
    ----------
    study
        The prior study.
    instance
        The image of ``study`` to show beside the current one.
    same_view
        True when ``instance`` has the current image's View Position (both non-empty).
    """

    study: StudyInfo
    instance: InstanceInfo
    same_view: bool

    @property
    def date_text(self) -> str:
        """The prior's Study Date as ``YYYY-MM-DD`` (for the viewport caption)."""
        return format_date(self.study.study_date)


@dataclass(frozen=True)
class PriorResult:
    """What :func:`find_prior` returns: a match, or ``None`` and the reason there is none."""

    match: PriorMatch | None
    reason: str = ""

    def __bool__(self) -> bool:
        return self.match is not None


def normalize_date(value: str) -> str | None:
    """``YYYYMMDD`` from a DA value (also the old ``YYYY.MM.DD``), or None when it is not one.

    A date that is not a date (``"0"``, ``"2019"``, ``"20191399"``) cannot order studies.
    """
    v = (value or "").strip().replace(".", "").replace("-", "")
    if len(v) != 8 or not v.isdigit():
        return None
    month, day = int(v[4:6]), int(v[6:8])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return v


def normalize_time(value: str) -> str | None:
    """``HHMMSS.ffffff`` from a TM value (``HH``, ``HHMM``, ``HHMMSS[.f]``, old ``HH:MM:SS``),
    or None when it is empty or not a time. Omitted trailing components are zero, as PS3.5
    defines for TM."""
    v = (value or "").strip().replace(":", "")
    if not v:
        return None
    whole, _, frac = v.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6) or (frac and not frac.isdigit()):
        return None
    whole = whole.ljust(6, "0")
    if int(whole[:2]) > 23 or int(whole[2:4]) > 59 or int(whole[4:6]) > 60:
        return None
    return f"{whole}.{frac[:6].ljust(6, '0')}"


def format_date(value: str) -> str:
    """``YYYY-MM-DD`` for a valid DA value, else the value as written."""
    d = normalize_date(value)
    return f"{d[:4]}-{d[4:6]}-{d[6:]}" if d else (value or "").strip()


def _locate(scan: ScanResult, path: str) -> tuple[PatientInfo, StudyInfo, InstanceInfo] | None:
    for p in scan.patients:
        for st in p.studies:
            for se in st.series:
                for inst in se.instances:
                    if inst.path == path:
                        return p, st, inst
    return None


def same_issuer(a: str, b: str) -> bool:
    """Whether two Issuers of Patient ID allow the same patient: compared only when both files
    carry one (many exports drop the issuer from some files). The viewer model's captions use it too."""
    return not a or not b or a == b


def _earlier(cand: StudyInfo, cur_date: str, cur_time: str | None) -> tuple[str, str] | None:
    """The sort key of ``cand`` when it is strictly earlier than the current study, else None."""
    d = normalize_date(cand.study_date)
    if d is None or d > cur_date:
        return None
    t = normalize_time(cand.study_time)
    if d == cur_date:
        # same day: only two known times can order the studies
        if t is None or cur_time is None or t >= cur_time:
            return None
    # an earlier day orders the studies whatever the times; an unknown time sorts first
    return d, t or ""


def _both_equal(a: str, b: str) -> bool:
    return bool(a) and bool(b) and a.strip().upper() == b.strip().upper()


def _view_rank(cur: InstanceInfo, inst: InstanceInfo) -> tuple[bool, bool, bool]:
    # body part first: a prior abdomen film is no comparison for a chest, whatever its view
    return (
        _both_equal(cur.body_part, inst.body_part),
        _both_equal(cur.view_position, inst.view_position),
        _both_equal(cur.laterality, inst.laterality),
    )


def best_image(study: StudyInfo, current: InstanceInfo) -> InstanceInfo | None:
    """The image of ``study`` that best matches ``current``'s view (see the module doc);
    the first image on a tie; None when the study has no image."""
    best: InstanceInfo | None = None
    best_rank: tuple[bool, bool, bool] | None = None
    for se in study.series:
        for inst in se.instances:
            rank = _view_rank(current, inst)
            if best_rank is None or rank > best_rank:  # strict: the first of equals stays
                best, best_rank = inst, rank
    return best


def find_prior(scan: ScanResult | None, path: str) -> PriorResult:
    """The prior of the image at ``path`` among the studies of ``scan``.

    Parameters
    ----------
    scan
        The scan result of the open folder (``None`` before a scan: no prior).
    path
        The current image's file path, as listed in ``scan``.

    Returns
    -------
    PriorResult
        ``match`` set, or ``None`` with ``reason`` a sentence for the status bar
        (:data:`NO_EARLIER_STUDY` when the patient has no earlier study).
    """
    if scan is None:
        return PriorResult(None, "No folder is open")
    found = _locate(scan, path)
    if found is None:
        return PriorResult(None, "The current image is not in the open folder's index")
    _, cur_study, cur = found
    patient_id = next(p.patient_id for p in scan.patients if cur_study in p.studies)
    if not patient_id:
        return PriorResult(None, "The current image has no Patient ID: its priors cannot be found")
    cur_date = normalize_date(cur_study.study_date)
    if cur_date is None:
        return PriorResult(None, "The current study has no Study Date: earlier studies cannot be told")
    cur_time = normalize_time(cur_study.study_time)

    candidates: list[tuple[tuple[str, str], bool, str, StudyInfo, InstanceInfo]] = []
    for p in scan.patients:
        if p.patient_id != patient_id:  # exact ID, never the name
            continue
        for st in p.studies:
            if st is cur_study or st.study_instance_uid == cur_study.study_instance_uid:
                continue
            if not same_issuer(cur_study.issuer_of_patient_id, st.issuer_of_patient_id):
                continue
            key = _earlier(st, cur_date, cur_time)
            if key is None:
                continue
            inst = best_image(st, cur)
            if inst is None:
                continue
            same_view = _both_equal(cur.view_position, inst.view_position)
            candidates.append((key, same_view, st.study_instance_uid, st, inst))
    if not candidates:
        return PriorResult(None, NO_EARLIER_STUDY)
    key, same_view, _, st, inst = max(candidates, key=lambda c: (c[0], c[1], c[2]))
    return PriorResult(PriorMatch(st, inst, same_view))
