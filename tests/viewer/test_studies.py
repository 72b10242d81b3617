"""Studies accumulate: a retrieved study joins what is open, nothing is replaced."""

from __future__ import annotations

from cxrviewer.core.types import InstanceInfo, PatientInfo, ScanResult, SeriesInfo, StudyInfo
from cxrviewer.viewer.studies import merge_scans


def _scan(pid, study, series, *paths, date="20240101"):
    inst = [InstanceInfo(path=p, kind="dicom") for p in paths]
    return ScanResult(patients=[PatientInfo(pid, studies=[StudyInfo(study, date, series=[SeriesInfo(series, instances=inst)])])],
                      files_seen=len(paths))


def test_a_retrieved_prior_joins_the_open_patient():
    open_ = _scan("P1", "1.2", "1.2.1", "/a/now.dcm")
    got = merge_scans(open_, _scan("P1", "1.1", "1.1.1", "/store/old.dcm", date="20190314"))
    (p,) = got.patients
    assert [st.study_instance_uid for st in p.studies] == ["1.2", "1.1"]  # what was open keeps its place
    assert [i.path for i in got.instances()] == ["/a/now.dcm", "/store/old.dcm"] and got.files_seen == 2
    assert [i.path for i in open_.instances()] == ["/a/now.dcm"]  # the arguments are not changed


def test_the_same_files_twice_add_nothing_and_other_patients_append():
    a = _scan("P1", "1.2", "1.2.1", "/a/1.dcm", "/a/2.dcm")
    got = merge_scans(merge_scans(a, _scan("P1", "1.2", "1.2.1", "/a/2.dcm", "/a/3.dcm")), _scan("P2", "9", "9.1", "/b.dcm"))
    assert [i.path for i in got.instances()] == ["/a/1.dcm", "/a/2.dcm", "/a/3.dcm", "/b.dcm"]
    assert [p.patient_id for p in got.patients] == ["P1", "P2"]
    assert merge_scans(None, a).instances() == a.instances()
