"""Boxes in both layouts, the pointing game against the centre baseline, border mass and the
heatmap grid."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from cxrviewer.core.errors import CxrError
from cxrviewer.ml.preprocess import ResizeMapping
from training import localization as LOC


def test_generic_box_csv_is_keyed_by_path_and_file_name(tmp_path):
    f = tmp_path / "boxes.csv"
    f.write_text("path,x,y,w,h\nimgs/a.png,10,20,30,40\nimgs/a.png,0,0,5,5\nb.png,1,2,3,4\n")
    t = LOC.read_boxes(f)
    assert len(t["imgs/a.png"]) == 2 and len(t["a.png"]) == 2
    assert LOC.boxes_for(t, "/elsewhere/imgs/a.png")[0].scaled(100, 100) == (10, 20, 30, 40)
    assert LOC.boxes_for(t, "c.png") == []


def test_corner_boxes_of_the_synthetic_sets(tmp_path):
    f = tmp_path / "boxes.csv"
    f.write_text("path,x0,y0,x1,y1\nimages/00000002_000.png,10,12,20,30\n")
    assert LOC.read_boxes(f)["00000002_000.png"][0].scaled(64, 64) == (10, 12, 10, 18)


def test_nih_table_is_scaled_from_1024(tmp_path):
    f = tmp_path / "BBox_List_2017.csv.gz"
    f.write_bytes(gzip.compress(b"Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
                                b"00000001_000.png,Mass,512,256,100,200\n"))
    b = LOC.read_boxes(f)["00000001_000.png"][0]
    assert b.finding == "Mass" and b.scaled(512, 512) == (256, 128, 50, 100)


def test_real_nih_box_table_reads(shared_data):
    t = LOC.read_boxes(shared_data / "labels" / "BBox_List_2017.csv.gz")
    assert sum(len(v) for k, v in t.items()) == 984  # NIH's 984 boxes (keys are file names)


def test_bad_box_tables_name_the_file(tmp_path):
    f = tmp_path / "b.csv"
    f.write_text("file,x\na,1\n")
    with pytest.raises(CxrError, match="b.csv.*missing column"):
        LOC.read_boxes(f)
    f.write_text("path,x,y,w,h\na.png,1,2,zero,4\n")
    with pytest.raises(CxrError, match="not a number"):
        LOC.read_boxes(f)
    with pytest.raises(CxrError, match="cannot read"):
        LOC.read_boxes(tmp_path / "absent.csv")


def test_border_mass_of_uniform_and_edge_maps():
    ring, bottom = LOC.border_mass(np.ones((7, 7)), 224)
    assert ring == pytest.approx(LOC.RING_AREA, abs=0.01) and bottom == pytest.approx(LOC.BOTTOM_AREA, abs=0.01)
    edge = np.zeros((7, 7))
    edge[6, :] = 1.0
    ring, bottom = LOC.border_mass(edge, 224)
    assert ring > 0.9 and bottom > 0.6
    centre = np.zeros((7, 7))
    centre[3, 3] = 1.0
    assert LOC.border_mass(centre, 224)[0] < 0.05
    assert np.isnan(LOC.border_mass(np.zeros((4, 4)), 128)[0])


def test_pointing_game_hits_misses_and_centre_baseline():
    # a 4x4 CAM over a 1000x800 (cols x rows) image, stretched to 128 px
    mp = ResizeMapping(src_rows=800, src_cols=1000, size=128, inner_h=128, inner_w=128)
    cam_tl = np.zeros((4, 4))
    cam_tl[0, 0] = 1.0  # peak in the top-left cell
    cam_c = np.zeros((4, 4))
    cam_c[2, 2] = 1.0
    table = {"a.png": [LOC.Box(0, 0, 300, 300)], "b.png": [LOC.Box(600, 600, 100, 100)]}
    x, y = LOC.peak_in_image(cam_tl, mp)
    assert 0 <= x < 250 and 0 <= y < 200
    items = [{"path": "/d/a.png", "cam": cam_tl, "mapping": mp}, {"path": "/d/b.png", "cam": cam_c, "mapping": mp},
             {"path": "/d/nobox.png", "cam": cam_c, "mapping": mp}]
    pg = LOC.pointing_game(items, table)
    assert pg["n"] == 2 and pg["hits"] == 1 and pg["pointing_game"] == 0.5
    assert pg["centre_baseline"] == 0.0
    assert pg["random_baseline"] == pytest.approx((0.09 / 0.8 + 0.01 / 0.8) / 2, rel=0.05)
    loc = LOC.summarize(items, table, "test")
    assert loc["pointing_n"] == 2 and loc["mass_n"] == 3 and loc["cam_grid"] == [4, 4]
    assert "Pointing game on 2 images" in "\n".join(LOC.markdown(loc))


def test_heatmap_grid_png(tmp_path):
    mp = ResizeMapping(64, 64, 64, 64, 64)
    items = [{"path": f"{i}.png", "cam": np.random.default_rng(i).random((2, 2)), "mapping": mp,
              "label_text": "A p=0.9"} for i in range(5)]
    out = LOC.heatmap_grid(tmp_path / "g.png", items, [np.full((64, 64), 128, np.uint8)] * 5, cols=4)
    import cv2

    g = cv2.imread(str(out))
    assert g.shape[1] == 4 * 160 and g.shape[0] == 2 * 160  # no title: two rows of four tiles
