"""Orientation letters at the edge midpoints, for all 8 rotate/flip states, against a table
written by hand (turning a PA chest film on a light box), and laterality; none without a header."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cxrviewer.core.orientation import (
    directions_from_header,
    edge_letters,
    laterality,
    letters_from_cosines,
    parse_patient_orientation,
)

# A PA chest, Patient Orientation L\F: the patient's left is on the image's right, feet down.
# (rotation clockwise, flip_h, flip_v) -> (top, right, bottom, left)
PA_TABLE = {
    (0, False, False): ("H", "L", "F", "R"),
    (1, False, False): ("R", "H", "L", "F"),
    (2, False, False): ("F", "R", "H", "L"),
    (3, False, False): ("L", "F", "R", "H"),
    (0, True, False): ("H", "R", "F", "L"),
    (1, True, False): ("R", "F", "L", "H"),
    (2, True, False): ("F", "L", "H", "R"),
    (3, True, False): ("L", "H", "R", "F"),
    # flip_v is rotation by 180 plus flip_h: the same 8 states, reached the other way
    (0, False, True): ("F", "L", "H", "R"),
    (1, False, True): ("L", "H", "R", "F"),
    (0, True, True): ("F", "R", "H", "L"),
}


@pytest.mark.parametrize("state", sorted(PA_TABLE))
def test_pa_chest_letters_in_every_view_state(state):
    got = edge_letters(("L", "F"), *state)
    assert (got["top"], got["right"], got["bottom"], got["left"]) == PA_TABLE[state]


def test_oblique_letters_and_the_8_states_are_distinct():
    # A lateral (row towards P, column towards F) and an oblique row direction.
    assert edge_letters(("P", "F")) == {"top": "H", "right": "P", "bottom": "F", "left": "A"}
    assert edge_letters(("LP", "F"), 1) == {"top": "RA", "right": "H", "bottom": "LP", "left": "F"}
    seen = {tuple(edge_letters(("L", "F"), r, fh).values()) for r in range(4) for fh in (False, True)}
    assert len(seen) == 8


def test_patient_orientation_parsing():
    assert parse_patient_orientation("L\\F") == ("L", "F")
    assert parse_patient_orientation(["a", "fl"]) == ("A", "FL")
    for bad in (None, "", "L", "L\\F\\H", "X\\F", "LR\\F", "L\\FF"):
        assert parse_patient_orientation(bad) is None, bad


def test_image_orientation_patient_gives_letters_when_patient_orientation_is_absent():
    # axial CT: rows towards the patient's left, columns towards posterior
    assert directions_from_header("", (1, 0, 0, 0, 1, 0)) == ("L", "P")
    # coronal: rows to the left, columns to the feet (a chest radiograph's plane)
    assert directions_from_header("", (1, 0, 0, 0, 0, -1)) == ("L", "F")
    c = np.cos(np.radians(30))
    assert letters_from_cosines((c, 0, -0.5)) == "LF"
    assert letters_from_cosines((0.1, -0.99, 0.05)) == "A"  # small parts add no letter
    # Patient Orientation wins; nothing usable -> no letters, never invented
    assert directions_from_header("R\\F", (1, 0, 0, 0, 1, 0)) == ("R", "F")
    assert directions_from_header("", ()) is None
    assert directions_from_header(None, (1, 0, 0, 0, 1)) is None
    assert directions_from_header("", (float("nan"), 0, 0, 0, 1, 0)) is None
    assert edge_letters(None, 1, True) == {}


def test_laterality_prefers_image_laterality():
    assert laterality("L", "R") == "L"
    assert laterality("", "r") == "R"
    assert laterality("U", "") == "" and laterality("", "") == ""


def test_real_rg1_header_and_corner_text(rg1_unci):
    import pydicom

    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.render.export import ViewState
    from cxrviewer.render.overlay_text import corner_text

    assert str(pydicom.dcmread(rg1_unci, stop_before_pixels=True).PatientOrientation[0]) == "L"
    img = load_image(str(rg1_unci))
    assert img.header.patient_orientation == "L\\F"
    ct = corner_text(img, view=ViewState(rotation=1))
    assert ct.edges == {"top": "R", "right": "H", "bottom": "L", "left": "F"}
    assert any("PA" in line for line in ct.tr)
    # with laterality in the header it is named next to the view; without orientation: no letters
    img2 = dataclasses.replace(img, header=dataclasses.replace(img.header, laterality="L", patient_orientation=""))
    ct2 = corner_text(img2)
    assert ct2.edges == {} and any(line.endswith("PA Lat L") for line in ct2.tr)
