"""The viewer model without Qt: captions derived from what the viewports show, active and
layout bookkeeping, per-viewport state that goes with its image."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cxrviewer.viewer import AiResult, ImageRef, Measurement, ViewerModel, ViewTransform, Window


def ref(path, pid="P1", study="1.2.3", date="20240105", view="PA", frames=1) -> ImageRef:
    return ImageRef(path=path, patient_id=pid, study_uid=study, study_date=date, view_position=view,
                    n_frames=frames, modality="CR")


NOW = ref("now.dcm", study="1.1", date="20240105")
NOW_LAT = ref("now_lat.dcm", study="1.1", date="20240105", view="LL")
OLD = ref("old.dcm", study="1.0", date="20190314")
OTHER_PATIENT = ref("x.dcm", pid="P2", study="9.9", date="20180101")


def test_importing_the_model_loads_no_qt():
    code = ("import sys, cxrviewer.viewer, cxrviewer.viewer.exports, cxrviewer.viewer.protocols; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_prior_caption_follows_the_active_viewport():
    m = ViewerModel()
    m.set_layout("1x2")
    m[0].set_image(NOW)
    assert m.captions()[:2] == ("", "")  # one study on screen: nothing to tell apart
    m[1].set_image(OLD)
    assert m.caption(0) == "Current · 2024-01-05" and m.caption(1) == "Prior · 2019-03-14"
    assert m.relation(1) == "prior"


def test_caption_is_not_stale_after_the_left_viewport_moves_to_an_older_study():
    # the reader's bug: left moved to an older study, right still said "Prior · 2019-03-14"
    m = ViewerModel()
    m.set_layout("1x2")
    m[0].set_image(ref("mid.dcm", study="1.05", date="20210101"))
    m[1].set_image(ref("2019.dcm", study="1.0", date="20190314"))
    assert m.caption(1) == "Prior · 2019-03-14"
    seen = []
    m.captions_changed.connect(seen.append)
    m[0].set_image(ref("2017.dcm", study="0.9", date="20170220"))
    assert m.caption(1) == "Later · 2019-03-14" and m.relation(1) == "later"
    assert m.caption(0) == "Current · 2017-02-20"
    assert seen and seen[-1][:2] == ("Current · 2017-02-20", "Later · 2019-03-14")


def test_captions_swap_when_the_other_viewport_becomes_active():
    m = ViewerModel()
    m.set_layout("1x2")
    m[0].set_image(NOW)
    m[1].set_image(OLD)
    m.set_active(1)
    assert m.caption(1) == "Current · 2019-03-14" and m.caption(0) == "Later · 2024-01-05"


def test_no_caption_across_patients_or_for_hidden_viewports():
    m = ViewerModel()
    m.set_layout("1x2")
    m[0].set_image(NOW)
    m[1].set_image(OTHER_PATIENT)
    assert m.captions()[:2] == ("", "")
    m[1].set_image(OLD)
    m.set_layout("1x1")  # the prior's viewport is hidden: the current one has nothing beside it
    assert m.captions() == ("",) * 4


def test_2x2_current_and_prior_each_with_two_views():
    m = ViewerModel()
    m.set_layout("2x2")
    for i, r in enumerate((NOW, NOW_LAT, OLD, ref("old_lat.dcm", study="1.0", date="20190314", view="LL"))):
        m[i].set_image(r)
    assert m.captions() == ("Current · 2024-01-05", "Current · 2024-01-05", "Prior · 2019-03-14",
                            "Prior · 2019-03-14")


def test_another_image_drops_the_old_ones_measurements_and_ai_but_a_frame_step_keeps_them():
    m = ViewerModel()
    vp = m[0]
    vp.set_image(ref("cine.dcm", frames=5))
    vp.set_measurements([Measurement("ruler", ((0, 0), (10, 0)), 5.0, "mm")])
    vp.set_ai(AiResult("Abnormal", 0.9, "m"))
    vp.set_window(Window(40, 400))
    vp.set_frame(3)
    assert vp.image.frame == 3 and len(vp.measurements) == 1 and vp.ai is not None
    vp.set_frame(99)
    assert vp.image.frame == 4  # clamped to the last frame
    vp.set_image(NOW)
    assert vp.measurements == () and vp.ai is None and vp.window is None


def test_signals_fire_only_on_change():
    m = ViewerModel()
    got = []
    m[0].view_changed.connect(got.append)
    m[0].set_view(ViewTransform())
    assert got == []
    m[0].set_view(ViewTransform(zoom=2.0))
    assert got == [ViewTransform(zoom=2.0)]
    act = []
    m.active_changed.connect(lambda a, b: act.append((a, b)))
    m.set_layout("2x2")
    m.set_active(3)
    m.set_layout("1x2")  # viewport 3 is hidden: the first takes over
    assert act == [(0, 3), (3, 0)] and m.active_index == 0


def test_bad_layout_and_index():
    m = ViewerModel()
    with pytest.raises(ValueError, match="unknown layout '3x3'"):
        m.set_layout("3x3")
    with pytest.raises(IndexError):
        m.set_active(7)


def test_open_is_intent_the_image_arrives_later():
    m = ViewerModel()
    asked = []
    m.open_requested.connect(lambda i, path, frame: asked.append((i, path, frame)))
    m.request_open(2, "x.dcm", 3)
    assert asked == [(2, "x.dcm", 3)] and m[2].image is None  # not shown until decoded
    with pytest.raises(IndexError):
        m.request_open(9, "x.dcm")


def test_the_same_patient_id_from_another_issuer_is_another_patient():
    # captions match patients as core.priors.find_prior does: Patient ID, and the Issuer of
    # Patient ID when both images carry one (an export that dropped it still matches)
    from dataclasses import replace

    m = ViewerModel()
    m.set_layout("1x2")
    m[0].set_image(replace(NOW, issuer="HOSP_A"))
    m[1].set_image(replace(OLD, issuer="HOSP_B"))  # P1 of another hospital
    assert m.captions()[:2] == ("", "") and m.relation(1) == ""
    m[1].set_image(replace(OLD, issuer="HOSP_A"))
    assert m.caption(1) == "Prior · 2019-03-14"
    m[1].set_image(OLD)  # no issuer on the prior: not told apart
    assert m.caption(1) == "Prior · 2019-03-14"


def test_the_issuer_reaches_the_image_reference_from_the_header_and_the_scan(tmp_path):
    from pydicom.dataset import Dataset

    from cxrviewer.core.dicom_header import header_from_dataset
    from cxrviewer.core.types import StudyInfo

    ds = Dataset()
    ds.PatientID, ds.IssuerOfPatientID, ds.StudyInstanceUID = "P1", "HOSP_A", "1.1"
    h = header_from_dataset(ds)
    assert h.issuer_of_patient_id == "HOSP_A" and h.anonymized().issuer_of_patient_id == ""

    class Img:  # the fields of a decoded LoadedImage that ImageRef reads
        header, path, frame, n_frames = h, str(tmp_path / "a.dcm"), 0, 1

    assert ImageRef.from_image(Img()).issuer == "HOSP_A"

    class Inst:  # a scanned InstanceInfo's fields
        path, number_of_frames, sop_instance_uid = "b.dcm", 1, "1.1.1"
        modality, view_position, body_part, laterality = "CR", "PA", "CHEST", ""

    st = StudyInfo("1.0", study_date="20190314", issuer_of_patient_id="HOSP_B")
    prior = ImageRef.from_instance(Inst(), st, "P1")
    assert prior.issuer == "HOSP_B" and not prior.same_patient(ImageRef.from_image(Img()))


def test_layouts_keep_every_viewports_image_and_only_visible_ones_are_found():
    # what the window's layout switch relies on: a hidden viewport keeps its image
    m = ViewerModel()
    m.set_layout("1x2")
    m[0].set_image(NOW)
    m[1].set_image(OLD)
    assert m.visible_count() == 2 and [vp.index for vp in m.visible()] == [0, 1]
    seen = []
    m.layout_changed.connect(seen.append)
    m.set_layout("1x1")
    assert m.visible_count() == 1 and m[1].image == OLD and m.index_of("old.dcm") is None
    m.set_layout("2x2")
    assert m[0].image == NOW and m[1].image == OLD and m[2].image is None and m[3].image is None
    assert m.index_of("old.dcm") == 1 and m.index_of("nowhere.dcm") is None
    m.set_layout("2x1")
    assert m.visible_count() == 2 and seen == ["1x1", "2x2", "2x1"]
    m.set_layout("2x1")  # no change: no signal
    assert seen == ["1x1", "2x2", "2x1"]


def test_the_active_viewport_is_what_keys_and_panels_act_on():
    # window, view and current image are per viewport: a change in the active one leaves the other
    m = ViewerModel()
    m.set_layout("1x2")
    m[0].set_image(NOW)
    m[1].set_image(OLD)
    assert m.current_image == NOW and m.active is m[0]
    m.set_active(1)
    assert m.current_image == OLD and m.active is m[1]
    m.active.set_window(Window(1234.0, 500.0))
    m.active.set_view(ViewTransform(rotation=1))
    assert m[1].window == Window(1234.0, 500.0) and m[1].view.rotation == 1
    assert m[0].window is None and m[0].view == ViewTransform()
    from cxrviewer.viewer import ModelSnapshot

    snap = ModelSnapshot.of(m.active)  # what an export reads
    assert (snap.image, snap.window, snap.view.rotation) == (OLD, Window(1234.0, 500.0), 1)
    m.set_active(0)
    assert m.current_image == NOW and m[1].window == Window(1234.0, 500.0)  # kept while not active


def test_a_study_without_a_date_or_of_the_same_date_is_another_study():
    m = ViewerModel()
    m.set_layout("1x2")
    m[0].set_image(NOW)
    m[1].set_image(ref("same_day.dcm", study="1.2", date="20240105"))
    assert m.caption(1) == "Other study · 2024-01-05" and m.relation(1) == ""
    assert m.caption(0) == "Current · 2024-01-05" and m.relation(0) == "current"
    m[1].set_image(ref("undated.dcm", study="1.3", date=""))
    assert m.caption(1) == "Other study" and m.relation(1) == ""


def test_an_image_without_a_patient_id_has_no_caption_and_clearing_one_clears_it():
    m = ViewerModel()
    m.set_layout("1x2")
    m[0].set_image(ref("png.png", pid=""))
    m[1].set_image(OLD)
    assert m.captions()[:2] == ("", "")
    m[0].set_image(NOW)
    assert m.caption(1) == "Prior · 2019-03-14"
    seen = []
    m.image_changed.connect(lambda i, r: seen.append((i, r)))
    m[1].set_image(None)  # a viewport emptied (another study opened): its caption goes with it
    assert seen == [(1, None)] and m.captions()[:2] == ("", "")
