"""A folder holding our SR and GSPS beside the image: the scan lists them with the study
(not as unreadable files) and names the image each one refers to."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np

from cxrviewer.core.study_index import scan
from cxrviewer.dicom.common import AiResult, ReaderView, source_dataset, write_dataset
from cxrviewer.dicom.gsps import make_gsps
from cxrviewer.dicom.sc import make_sc
from cxrviewer.dicom.sr import make_sr


def _study_folder(rg1_unci, tmp_path):
    d = tmp_path / "study"
    d.mkdir()
    shutil.copy(rg1_unci, d / "image.dcm")
    src = source_dataset(rg1_unci)
    write_dataset(make_sr(src, AiResult(0.61, "Abnormal", 0.5, "m", "3")), d / "sr.dcm")
    write_dataset(make_gsps(src, ReaderView(100.0, 300.0, rotation=1)), d / "pr.dcm")
    write_dataset(make_sc(src, np.zeros((40, 40), np.uint8)), d / "sc.dcm")
    return d, src


def test_scan_lists_sr_and_pr_with_their_study(rg1_unci, tmp_path):
    d, src = _study_folder(rg1_unci, tmp_path)
    res = scan(d)
    assert res.errors == []
    (patient,) = res.patients
    (study,) = patient.studies
    assert study.study_instance_uid == src.StudyInstanceUID
    kinds = sorted((o.kind, o.path.rsplit("/", 1)[-1]) for o in study.objects)
    assert kinds == [("pr", "pr.dcm"), ("sr", "sr.dcm")]
    for o in study.objects:
        assert o.referenced_sop_instance_uids == [src.SOPInstanceUID]
    # images stay images: the source and the SC (which is an image in its own series)
    assert sorted(i.path.rsplit("/", 1)[-1] for i in res.instances()) == ["image.dcm", "sc.dcm"]
    assert len(res.objects()) == 2


def test_scan_json_has_objects(rg1_unci, tmp_path):
    d, _src = _study_folder(rg1_unci, tmp_path)
    r = subprocess.run([sys.executable, "-m", "cxrviewer", "scan", str(d), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["errors"] == []
    objs = out["patients"][0]["studies"][0]["objects"]
    assert sorted(o["kind"] for o in objs) == ["pr", "sr"]
