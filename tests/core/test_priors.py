"""Prior selection (issue 14) on real DICOM files written with pydicom and scanned by the real
index: same patient (ID and issuer, never the name), most recent earlier study by date and
time, same view."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxrviewer.core.priors import (
    NO_EARLIER_STUDY,
    find_prior,
    format_date,
    normalize_date,
    normalize_time,
)
from cxrviewer.core.study_index import scan
from cxrviewer.core.synthetic import write_study_image

write_image = write_study_image


def three_plus_one(root: Path) -> dict[str, str]:
    """Three studies of patient P1 (2017, 2019, 2021) and one of P2 dated between them,
    with the same name: the other patient's study must never be chosen."""
    paths = {
        "oldest": write_image(root / "a", "old.dcm", patient_id="P1", study_uid="1.2.3.1", date="20170105"),
        "middle": write_image(root / "b", "mid.dcm", patient_id="P1", study_uid="1.2.3.2", date="20190314"),
        "newest": write_image(root / "c", "new.dcm", patient_id="P1", study_uid="1.2.3.3", date="20210720"),
        # P2, same name, dated just before P1's newest: the closest date, and wrong
        "other": write_image(root / "d", "other.dcm", patient_id="P2", study_uid="1.2.3.9", date="20210701"),
    }
    return paths


def prior_path(folder: Path, path: str) -> str | None:
    r = find_prior(scan(folder), path)
    return r.match.instance.path if r.match else None


def test_three_studies_of_one_patient_and_one_of_another(tmp_path):
    p = three_plus_one(tmp_path)
    res = scan(tmp_path)
    newest = find_prior(res, p["newest"])
    assert newest.match is not None and newest.match.instance.path == p["middle"]
    assert newest.match.date_text == "2019-03-14"
    assert newest.match.same_view
    middle = find_prior(res, p["middle"])
    assert middle.match is not None and middle.match.instance.path == p["oldest"]
    oldest = find_prior(res, p["oldest"])
    assert oldest.match is None and oldest.reason == NO_EARLIER_STUDY
    # the other patient has no prior at all, although P1's studies are earlier and share its name
    other = find_prior(res, p["other"])
    assert other.match is None and other.reason == NO_EARLIER_STUDY


def test_other_patient_never_chosen_even_with_a_fitting_date(tmp_path):
    cur = write_image(tmp_path, "cur.dcm", patient_id="P1", study_uid="1.5.1", date="20220101")
    write_image(tmp_path, "own.dcm", patient_id="P1", study_uid="1.5.2", date="20150101")
    write_image(tmp_path, "x.dcm", patient_id="P1X", study_uid="1.5.3", date="20211231")
    write_image(tmp_path, "noid.dcm", patient_id="", study_uid="1.5.4", date="20211230")
    assert prior_path(tmp_path, cur) == str(tmp_path / "own.dcm")


def test_issuer_tells_same_ids_apart(tmp_path):
    cur = write_image(tmp_path, "cur.dcm", patient_id="123", issuer="HOSP-A", study_uid="1.6.1", date="20220101")
    write_image(tmp_path, "b.dcm", patient_id="123", issuer="HOSP-B", study_uid="1.6.2", date="20211201")
    assert find_prior(scan(tmp_path), cur).reason == NO_EARLIER_STUDY
    # a file without an issuer is matched on the ID alone (exports often drop it)
    write_image(tmp_path, "none.dcm", patient_id="123", issuer=None, study_uid="1.6.3", date="20200101")
    assert prior_path(tmp_path, cur) == str(tmp_path / "none.dcm")


def test_same_view_chosen_among_pa_and_lateral(tmp_path):
    old = tmp_path / "old"
    lat = write_image(old, "1.dcm", patient_id="P", study_uid="1.7.1", date="20200101", view="LL", instance=1)
    pa = write_image(old, "2.dcm", patient_id="P", study_uid="1.7.1", date="20200101", view="PA", instance=2)
    cur_pa = write_image(tmp_path / "new", "pa.dcm", patient_id="P", study_uid="1.7.2", date="20230101", view="PA")
    cur_lat = write_image(tmp_path / "new", "ll.dcm", patient_id="P", study_uid="1.7.2", date="20230101",
                          view="LL", instance=2)
    res = scan(tmp_path)
    assert find_prior(res, cur_pa).match.instance.path == pa
    assert find_prior(res, cur_lat).match.instance.path == lat
    # a view the prior study lacks: its first image, flagged as not the same view
    cur_ap = write_image(tmp_path / "new", "ap.dcm", patient_id="P", study_uid="1.7.2", date="20230101",
                         view="AP", instance=3)
    m = find_prior(scan(tmp_path), cur_ap).match
    assert m.instance.path == lat and not m.same_view


def test_laterality_breaks_a_view_tie_and_body_part_comes_first(tmp_path):
    old = tmp_path / "old"
    write_image(old, "1.dcm", patient_id="P", study_uid="1.8.1", date="20200101", view="PA", laterality="L",
                instance=1)
    right = write_image(old, "2.dcm", patient_id="P", study_uid="1.8.1", date="20200101", view="PA",
                        laterality="R", instance=2)
    abd = write_image(old, "3.dcm", patient_id="P", study_uid="1.8.1", date="20200101", view="AP",
                      body_part="ABDOMEN", instance=3)
    cur = write_image(tmp_path, "cur.dcm", patient_id="P", study_uid="1.8.2", date="20230101", view="PA",
                      laterality="R")
    cur_abd = write_image(tmp_path, "abd.dcm", patient_id="P", study_uid="1.8.2", date="20230101", view="PA",
                          body_part="ABDOMEN", instance=2)
    res = scan(tmp_path)
    assert find_prior(res, cur).match.instance.path == right
    # the abdomen film, though its view differs: a chest PA is no comparison for an abdomen
    assert find_prior(res, cur_abd).match.instance.path == abd


def test_same_date_earlier_time_counts_later_or_unknown_does_not(tmp_path):
    cur = write_image(tmp_path, "cur.dcm", patient_id="P", study_uid="1.9.1", date="20230101", time="140000")
    morning = write_image(tmp_path, "am.dcm", patient_id="P", study_uid="1.9.2", date="20230101", time="0830")
    write_image(tmp_path, "pm.dcm", patient_id="P", study_uid="1.9.3", date="20230101", time="163000.5")
    write_image(tmp_path, "unk.dcm", patient_id="P", study_uid="1.9.4", date="20230101", time=None)
    write_image(tmp_path, "old.dcm", patient_id="P", study_uid="1.9.5", date="20221231", time="235959")
    assert prior_path(tmp_path, cur) == morning
    # from the afternoon study: this afternoon's earlier one (14:00), not the untimed one
    assert prior_path(tmp_path, str(tmp_path / "pm.dcm")) == cur


def test_untimed_current_study_takes_an_earlier_day_not_the_same_day(tmp_path):
    cur = write_image(tmp_path, "cur.dcm", patient_id="P", study_uid="1.10.1", date="20230101", time=None)
    write_image(tmp_path, "same.dcm", patient_id="P", study_uid="1.10.2", date="20230101", time="0100")
    old = write_image(tmp_path, "old.dcm", patient_id="P", study_uid="1.10.3", date="20220101", time=None)
    assert prior_path(tmp_path, cur) == old


def test_studies_without_a_date_are_never_priors(tmp_path):
    cur = write_image(tmp_path, "cur.dcm", patient_id="P", study_uid="1.11.1", date="20230101")
    write_image(tmp_path, "nodate.dcm", patient_id="P", study_uid="1.11.2", date=None)
    write_image(tmp_path, "bad.dcm", patient_id="P", study_uid="1.11.3", date="2019")
    assert find_prior(scan(tmp_path), cur).reason == NO_EARLIER_STUDY
    # and an undated current study has no prior, with its own reason
    r = find_prior(scan(tmp_path), str(tmp_path / "nodate.dcm"))
    assert r.match is None and "no Study Date" in r.reason


def test_tie_at_the_same_date_and_time_is_deterministic_and_prefers_the_same_view(tmp_path):
    cur = write_image(tmp_path, "cur.dcm", patient_id="P", study_uid="1.12.1", date="20230101", view="PA")
    write_image(tmp_path, "ll.dcm", patient_id="P", study_uid="1.12.9", date="20200101", view="LL")
    pa = write_image(tmp_path, "pa.dcm", patient_id="P", study_uid="1.12.2", date="20200101", view="PA")
    assert prior_path(tmp_path, cur) == pa
    for _ in range(2):  # same answer every time, whatever the file order
        assert prior_path(tmp_path, cur) == pa


def test_no_patient_id_no_scan_and_unknown_path(tmp_path):
    cur = write_image(tmp_path, "cur.dcm", patient_id="", study_uid="1.13.1", date="20230101")
    write_image(tmp_path, "old.dcm", patient_id="", study_uid="1.13.2", date="20200101")
    r = find_prior(scan(tmp_path), cur)
    assert r.match is None and "no Patient ID" in r.reason
    assert not find_prior(None, cur)
    assert "not in the open folder" in find_prior(scan(tmp_path), str(tmp_path / "elsewhere.dcm")).reason


@pytest.mark.parametrize(("value", "expected"), [
    ("20190314", "20190314"), ("2019.03.14", "20190314"), ("", None), ("2019", None), ("20191399", None),
])
def test_normalize_date(value, expected):
    assert normalize_date(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("0830", "083000.000000"), ("14", "140000.000000"), ("163000.5", "163000.500000"),
    ("16:30:00", "163000.000000"), ("", None), ("2561", None), ("12345", None),
])
def test_normalize_time(value, expected):
    assert normalize_time(value) == expected


def test_format_date():
    assert format_date("20190314") == "2019-03-14"
    assert format_date("garbage") == "garbage"
