"""Hanging protocols as data: frontal+lateral 1x2, compare 2x2 when both studies have both."""

from __future__ import annotations

import json

import pytest

from cxrviewer.viewer import ImageRef
from cxrviewer.viewer.protocols import BUILTIN, hang, loads


def img(path, study, view, date="20240105"):
    return ImageRef(path=path, patient_id="P1", study_uid=study, study_date=date, view_position=view,
                    modality="CR", body_part="CHEST")


CUR = [img("c_pa", "1", "PA"), img("c_ll", "1", "LL")]
PRI = [img("p_pa", "0", "PA", "20190314"), img("p_ll", "0", "LL", "20190314")]


def test_frontal_and_lateral_hang_side_by_side():
    h = hang(BUILTIN, CUR[1], CUR)
    assert h.layout == "1x2" and [i.path for i in h.images] == ["c_pa", "c_ll"]


def test_a_lone_frontal_hangs_alone():
    h = hang(BUILTIN, CUR[0], CUR[:1])
    assert h.layout == "1x1" and [i.path for i in h.images] == ["c_pa"]


def test_compare_hangs_2x2_when_both_studies_have_both_views():
    h = hang(BUILTIN, CUR[0], CUR, PRI, compare=True)
    assert h.layout == "2x2" and [i.path for i in h.images] == ["c_pa", "c_ll", "p_pa", "p_ll"]


def test_compare_falls_back_to_1x2_with_the_same_view():
    h = hang(BUILTIN, CUR[1], CUR, PRI[:1] + PRI[1:], compare=True)
    assert h.layout == "2x2"  # both have both
    h = hang(BUILTIN, CUR[1], CUR, PRI[1:], compare=True)  # the prior has a lateral only
    assert h.layout == "1x2" and [i.path for i in h.images] == ["c_ll", "p_ll"]
    h = hang(BUILTIN, CUR[0], CUR[:1], PRI, compare=True)
    assert h.layout == "1x2" and [i.path for i in h.images] == ["c_pa", "p_pa"]


def test_protocols_from_settings_json_and_their_errors():
    mine = [{"name": "Mine", "modalities": ["DX"], "compare": False, "layout": "1x1", "cells": [["current", "lateral"]]}]
    got = loads(json.dumps(mine))
    assert hang(got, CUR[0], CUR) is None  # CR does not match DX
    assert loads(None) == [dict(p) for p in BUILTIN]
    with pytest.raises(ValueError, match="'Bad': layout must be one of"):
        loads(json.dumps([{"name": "Bad", "layout": "5x5", "cells": []}]))
    with pytest.raises(ValueError, match="a prior cell needs"):
        loads(json.dumps([{"name": "P", "layout": "1x2", "cells": [["current", "frontal"], ["prior", "frontal"]]}]))


def test_compare_without_a_prior_hangs_nothing_and_never_one_image_twice():
    # the window's "no earlier study": nothing applies, the layout is left as it was
    assert hang(BUILTIN, CUR[0], CUR, (), compare=True) is None
    # the selected image goes to the first cell whichever viewport it was opened in
    h = hang(BUILTIN, CUR[1], CUR[1:], PRI, compare=True)
    assert h.images[0].path == "c_ll" and h.name == "Compare with prior"
    # a protocol whose cells would show one image twice does not apply: the next one does
    twice = [{"name": "Twice", "modalities": [], "compare": False, "layout": "1x2",
              "cells": [["current", "selected"], ["current", "frontal"]]}]
    assert hang(twice, CUR[0], CUR) is None
    assert hang(twice + list(BUILTIN), CUR[0], CUR[:1]).layout == "1x1"
