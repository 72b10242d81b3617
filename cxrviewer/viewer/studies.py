"""The studies the reader has at hand: the folder opened plus every study added since (PACS
retrieves accumulate instead of replacing the folder). Qt-free."""

from __future__ import annotations

import copy

from cxrviewer.core.types import ScanResult


def merge_scans(base: ScanResult | None, extra: ScanResult) -> ScanResult:
    """``base`` with ``extra``'s patients, studies, series and images added (a new result;
    neither argument is changed). Patients match by Patient ID, studies by Study Instance UID,
    series by Series Instance UID, images by path; what ``base`` has keeps its place, so a
    browser filled from ``base`` only gains rows."""
    out = copy.deepcopy(base) if base is not None else ScanResult()
    by_pid = {p.patient_id: p for p in out.patients}
    for p in extra.patients:
        mine = by_pid.get(p.patient_id)
        if mine is None:
            out.patients.append(copy.deepcopy(p))
            by_pid[p.patient_id] = out.patients[-1]
            continue
        studies = {st.study_instance_uid: st for st in mine.studies}
        for st in p.studies:
            have = studies.get(st.study_instance_uid)
            if have is None:
                mine.studies.append(copy.deepcopy(st))
                continue
            series = {se.series_instance_uid: se for se in have.series}
            for se in st.series:
                hs = series.get(se.series_instance_uid)
                if hs is None:
                    have.series.append(copy.deepcopy(se))
                    continue
                paths = {i.path for i in hs.instances}
                hs.instances += [copy.deepcopy(i) for i in se.instances if i.path not in paths]
            objs = {o.path for o in have.objects}
            have.objects += [copy.deepcopy(o) for o in st.objects if o.path not in objs]
    seen = {(e.path, e.reason) for e in out.errors}
    out.errors += [e for e in extra.errors if (e.path, e.reason) not in seen]
    out.files_seen += extra.files_seen
    out.cancelled = out.cancelled or extra.cancelled
    return out
