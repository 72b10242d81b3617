"""Headless export with the heatmap: the same layer as the canvas, exactly where above threshold."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from test_ai_support import StandInEngine, write_pngs

from cxrviewer.core.dicom_io import load_image
from cxrviewer.render.colormaps import (
    COLORMAPS,
    cam_to_index,
    colormap_rgb,
    heat_lut,
    threshold_index,
)
from cxrviewer.render.compose import prediction_overlay
from cxrviewer.render.export import render_export


def test_colormaps_are_rgb_tables_and_the_threshold_rule_is_exact():
    for name in COLORMAPS:
        t = colormap_rgb(name)
        assert t.shape == (256, 3) and t.dtype == np.uint8
    jet = colormap_rgb("jet")
    assert tuple(jet[0]) == (0, 0, 128) and tuple(jet[255]) == (128, 0, 0)  # dark blue -> dark red (RGB, not BGR)
    assert tuple(colormap_rgb("viridis")[0]) == (68, 1, 84)
    lut = heat_lut("jet", 0.2)
    t = threshold_index(0.2)
    assert (lut[:t, 3] == 0).all() and (lut[t:, 3] == 255).all()
    assert threshold_index(0.0) == 0 and threshold_index(1.0) == 255
    cam = np.array([[0.0, 0.2, 0.5, 1.0, np.nan]], np.float32)
    assert cam_to_index(cam).tolist() == [[0, 51, 128, 255, 0]]


def test_headless_export_differs_exactly_where_the_heatmap_is_above_threshold(tmp_path):
    (p,) = write_pngs(tmp_path, 1, size=(50, 70))
    img = load_image(p)
    eng = StandInEngine()
    pred = eng.predict(img, cam=True)
    layer, lines = prediction_overlay(pred, threshold=0.35, opacity=0.5)
    assert eng.calls == 1
    with_map = render_export(img, None, layers=[layer], native=True)
    without = render_export(img, None, native=True)
    assert without.shape == (50, 70) and with_map.shape == (50, 70, 3)
    above = cam_to_index(pred.cam) >= threshold_index(0.35)
    assert 0 < above.sum() < above.size
    differs = (with_map != without[..., None]).any(axis=2)
    np.testing.assert_array_equal(differs, above)
    assert lines[0].startswith("AI: P(Abnormal)") and "not a diagnosis" in lines[-1]


def test_cli_export_heatmap_uses_the_provider_and_burns_in_the_text(tmp_path, monkeypatch):
    from cxrviewer.cli import export as cli_export

    (p,) = write_pngs(tmp_path, 1, size=(200, 240))
    eng = StandInEngine()

    def provider(img, args):
        layer, lines = prediction_overlay(eng.predict(img, cam=True), colormap=args.colormap)
        return [layer], lines

    monkeypatch.setattr(cli_export, "HEATMAP_PROVIDER", provider)
    outs = {}
    for name, extra in (("plain", []), ("heat", ["--heatmap", "--colormap", "magma"])):
        out = tmp_path / f"{name}.png"
        parser = argparse.ArgumentParser()
        cli_export.add_parser(parser.add_subparsers())
        args = parser.parse_args(["export", str(p), "--out", str(out), "--native", *extra])
        assert args.func(args) == 0
        outs[name] = load_image(out).stored
    assert eng.calls == 1
    assert outs["plain"].shape[:2] == outs["heat"].shape[:2] == (200, 240)
    assert outs["heat"].ndim == 3 and not np.array_equal(outs["heat"][..., 0], outs["heat"][..., 2])


@pytest.mark.parametrize("bad", ["nonexistent-model-name"])
def test_cli_export_heatmap_with_a_missing_model_fails_cleanly(tmp_path, bad, capsys):
    pytest.importorskip("cxrviewer.ml.inference", reason="the AI engine is not in this checkout yet")
    from cxrviewer.cli import main

    (p,) = write_pngs(tmp_path, 1)
    out = tmp_path / "x.png"
    rc = main(["export", str(p), "--out", str(out), "--heatmap", "--model", bad])
    assert rc != 0 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and bad in err[0]
