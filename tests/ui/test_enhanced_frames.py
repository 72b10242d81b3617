"""The canvas on an enhanced multi-frame object (issue 13, outside-corpus edge cases): each
frame's rescale and window come from its functional groups, so the probe reads that frame's
modality values and the image item's levels put the file's window on the stored array."""

from __future__ import annotations

import numpy as np
import pytest

from cxrviewer.core.dicom_io import load_image
from cxrviewer.core.synthetic import add_functional_groups, make_dataset, write_dataset
from cxrviewer.core.window import linear_window_bounds
from cxrviewer.ui.canvas.canvas import ImageCanvas


@pytest.fixture()
def enhanced(tmp_path):
    arr = np.random.default_rng(3).integers(0, 4096, (2, 16, 12)).astype(np.uint16)
    ds = make_dataset(arr, sop_class="1.2.840.10008.5.1.4.1.1.2.1")  # Enhanced CT Image Storage
    ds.Modality = "CT"
    add_functional_groups(
        ds,
        {"PixelValueTransformationSequence": {"RescaleSlope": 1, "RescaleIntercept": -1024, "RescaleType": "HU"},
         "FrameVOILUTSequence": {"WindowCenter": 40, "WindowWidth": 400}},
        [{}, {"PixelValueTransformationSequence": {"RescaleSlope": 2, "RescaleIntercept": -1000, "RescaleType": "HU"},
              "FrameVOILUTSequence": {"WindowCenter": -600, "WindowWidth": 1500}}],
    )
    return write_dataset(ds, tmp_path / "ect.dcm"), arr


def test_probe_and_levels_follow_each_frames_functional_groups(qtbot, enhanced):
    path, arr = enhanced
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    for frame, (m, b, c, w) in enumerate([(1.0, -1024.0, 40.0, 400.0), (2.0, -1000.0, -600.0, 1500.0)]):
        canvas.set_image(load_image(path, frame))
        info = canvas.probe_at(5.5, 7.5)  # column 5, row 7
        assert info.stored == arr[frame, 7, 5]
        assert info.modality == pytest.approx(m * float(arr[frame, 7, 5]) + b)
        assert info.units == "HU"
        assert canvas.window() == pytest.approx((c, w))  # the file's window, not Auto
        lo, hi = linear_window_bounds(c, w)
        assert canvas.image_item.getLevels() == pytest.approx(((lo - b) / m, (hi - b) / m))
