"""`cxrviewer selftest` in this Python environment: every step passes with a real model,
and a broken input makes it fail loudly (non-zero exit, the failing step named)."""

from __future__ import annotations

import pytest
from PIL import Image

from cxrviewer import selftest
from cxrviewer.cli import main as cli_main


def _by_name(results):
    return {r.name: r for r in results}


def test_selftest_all_steps_pass(random_model_dir, tmp_path, rg1_unci):
    pytest.importorskip("cxrviewer.ml.inference", reason="the AI engine is not in this checkout yet")
    out = tmp_path / "export.png"
    lines: list[str] = []
    results = selftest.run(str(random_model_dir), out=out, echo=lines.append)
    assert [r.name for r in results] == list(selftest.STEPS)
    assert selftest.passed(results), "\n".join(lines)
    assert len(lines) == len(selftest.STEPS) and all(line.startswith("PASS") for line in lines)
    r = _by_name(results)
    assert "RG1_J2KR.dcm 1955x1841" in r["sample"].detail  # resources/sample/
    assert "selftest-random 0.0.1" in r["model"].detail
    # the export it checked is really there, with the heatmap's colours in it
    with Image.open(out) as im:
        assert im.format == "PNG" and max(im.size) == 1024
        rgb = im.convert("RGB")
    hsv = rgb.convert("HSV")
    assert hsv.getchannel("S").getextrema()[1] > 100  # saturated colours: the jet heatmap


def test_cli_exit_status_and_summary(random_model_dir, tmp_path, capsys):
    pytest.importorskip("cxrviewer.ml.inference", reason="the AI engine is not in this checkout yet")
    rc = cli_main(["selftest", "--model", str(random_model_dir), "--out", str(tmp_path / "x.png"), "--no-gui"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0, "\n".join(out)
    n = len(selftest.STEPS)
    assert out[-1].startswith(f"selftest: OK - {n - 1}/{n} steps passed")
    assert any(line.startswith("SKIP  viewer") for line in out)
    assert (tmp_path / "x.png").stat().st_size > 0


def test_missing_model_fails_and_skips_dependents(tmp_path, capsys):
    rc = cli_main(["selftest", "--model", str(tmp_path / "no-such-model"), "--no-gui", "--json"])
    text = capsys.readouterr().out
    assert rc == 1
    lines = text.splitlines()
    model_line = next(line for line in lines if line.split()[1:2] == ["model"])
    assert model_line.startswith("FAIL")
    assert "no-such-model" in model_line  # the reason names what was asked for
    assert next(line for line in lines if line.split()[1:2] == ["inference"]).startswith("SKIP")
    assert next(line for line in lines if line.split()[1:2] == ["export"]).startswith("SKIP")
    assert "selftest: FAILED" in text
    # steps that do not need the model still ran and passed
    assert next(line for line in lines if line.split()[1:2] == ["codecs"]).startswith("PASS")
    assert next(line for line in lines if line.split()[1:2] == ["pacs"]).startswith("PASS")
    assert '"ok": false' in text


def test_unreadable_sample_fails_with_its_name(tmp_path):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"DICM" + b"\0" * 200)
    results = selftest.run(str(tmp_path / "none"), sample=bad, gui=False, echo=None)
    r = _by_name(results)
    assert r["sample"].status == "fail" and "broken.dcm" in r["sample"].detail
    assert r["inference"].status == "skip" and r["export"].status == "skip"
    assert not selftest.passed(results)
    assert bad.read_bytes().startswith(b"DICM")  # the input is never written


def test_codec_step_without_a_sample_uses_synthetic_data():
    ctx = selftest.Context()
    detail = selftest.step_codecs(ctx)
    assert "round trip exact" in detail


def test_viewer_step_paints_the_sample(rg1_unci):
    pytest.importorskip("pytestqt", reason="pytest-qt drives the offscreen Qt tests")
    from cxrviewer.core.dicom_io import load_image

    ctx = selftest.Context(img=load_image(rg1_unci))
    detail = selftest.step_viewer(ctx)
    assert "platform 'offscreen'" in detail and "painted the sample" in detail


def _pred(cam):
    from types import SimpleNamespace

    return SimpleNamespace(
        cam=cam, probabilities=(0.3, 0.7), probability_abnormal=0.7, label="Abnormal", threshold=0.5,
        model_name="stand-in", model_version="0", device="cpu", backend="numpy", elapsed_ms=0.0,
    )


def test_export_step_checks_the_heatmap(rg1_unci, tmp_path):
    """The export check itself: a map with a hot region passes and changes those pixels;
    a map below the display threshold everywhere fails (no heatmap in the export)."""
    import numpy as np

    from cxrviewer.core.dicom_io import load_image

    img = load_image(rg1_unci)
    yy, xx = np.mgrid[0 : img.rows, 0 : img.cols]
    blob = np.exp(-(((yy - 900) / 250.0) ** 2 + ((xx - 600) / 250.0) ** 2)).astype(np.float32)
    ctx = selftest.Context(img=img, pred=_pred(blob), out=str(tmp_path / "ok.png"))
    detail = selftest.step_export(ctx)
    assert "1024" in detail and (tmp_path / "ok.png").is_file()
    with Image.open(tmp_path / "ok.png") as im:
        w, h = im.size
        rgb = np.asarray(im.convert("RGB")).astype(int)
    # the blob's centre (row 900, col 600 of 1955x1841) is coloured, a far corner is not
    cy, cx = round(900 * h / img.rows), round(600 * w / img.cols)
    assert rgb[cy, cx].max() - rgb[cy, cx].min() > 40  # jet red at 45 % opacity
    assert rgb[h - 5, 5].max() - rgb[h - 5, 5].min() < 10

    cold = selftest.Context(img=img, pred=_pred(np.full((img.rows, img.cols), 0.05, np.float32)),
                            out=str(tmp_path / "cold.png"))
    with pytest.raises(selftest.StepFailed, match="below its display threshold"):
        selftest.step_export(cold)
