"""``cxrviewer selftest``: prove that this installation (or frozen bundle) works end to end.

Offscreen, with no user interaction: find the bundled sample, decode it, round-trip the
pylibjpeg codecs, build the real main window and show the image, load the active model,
run inference and Grad-CAM, render an annotated export with the heatmap to a temp file and
check it. One line per step; the exit code is 0 only when every step passed.

It exists mostly for the PyInstaller bundle, whose usual failures are silent until a user
clicks something: a Qt platform plugin left out, a codec plugin that pydicom cannot find
(they are discovered through package metadata entry points), a resource path that only
works in the source tree, a library (torch) that was excluded but is still imported.
Steps after a failed one that needs its result are reported as skipped, so the first
failure is the one to read.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: step names, in order (the CLI prints them in this order)
STEPS = ("runtime", "sample", "codecs", "viewer", "model", "inference", "export", "dicom", "pacs")


@dataclass
class StepResult:
    """The outcome of one step: ``status`` is ``"pass"``, ``"fail"`` or ``"skip"``."""

    name: str
    status: str
    detail: str
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "pass"

    def line(self) -> str:
        return f"{self.status.upper():4s}  {self.name:9s}  {self.detail}  ({self.seconds:.2f} s)"


class StepFailed(Exception):
    """A check inside a step did not hold (the message says which and why)."""


@dataclass
class Context:
    """What the steps hand each other."""

    model: str | None = None
    sample: str | None = None
    out: str | None = None
    backend: str = "auto"
    device: str = "auto"
    gui: bool = True
    img: Any = None
    engine: Any = None
    pred: Any = None
    export_path: Path | None = None
    extras: dict = field(default_factory=dict)


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise StepFailed(msg)


# --------------------------------------------------------------------------- steps


def step_runtime(ctx: Context) -> str:
    import cxrviewer
    from cxrviewer import paths
    from cxrviewer.about import is_frozen

    res = paths.resources_dir()
    _check(res.is_dir(), f"resources folder missing: {res}")
    _check(
        paths.resource("styles", "dark.qss").is_file(), f"theme missing: {res / 'styles' / 'dark.qss'}"
    )
    where = "frozen bundle" if is_frozen() else "Python environment"
    return f"cxrviewer {cxrviewer.__version__}, Python {sys.version.split()[0]}, {where}, resources {res}"


def step_sample(ctx: Context) -> str:
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.paths import sample_paths

    if ctx.sample:
        path = Path(ctx.sample)
    else:
        found = sample_paths()
        _check(bool(found), "no sample study: resources/sample/ is missing from this installation")
        path = found[0]
    img = load_image(path)
    _check(img.rows > 0 and img.cols > 0, f"{path}: decoded to an empty image")
    ctx.img = img
    ts = img.transfer_syntax
    return f"{path.name} {img.rows}x{img.cols}" + (f" ({ts})" if ts else "") + f" from {path.parent}"


def step_codecs(ctx: Context) -> str:
    """pylibjpeg's decoders are found through entry points (package metadata): a bundle that
    lost the metadata decodes uncompressed files and fails on every JPEG one. Encode a crop
    of the sample as JPEG 2000 lossless and decode it back through pylibjpeg only."""
    import copy

    import numpy as np
    import pydicom
    from pydicom.pixels import get_decoder, get_encoder, pixel_array
    from pydicom.uid import (
        ExplicitVRLittleEndian,
        JPEG2000Lossless,
        JPEGBaseline8Bit,
        JPEGLosslessSV1,
    )

    missing = []
    for uid in (JPEGBaseline8Bit, JPEGLosslessSV1, JPEG2000Lossless):
        dec = get_decoder(uid)
        if "pylibjpeg" not in dec.available_plugins:
            missing.append(f"{uid.name}: {sorted(dec.missing_dependencies) or 'no plugin'}")
    _check(not missing, "pylibjpeg decoders unavailable: " + "; ".join(missing))
    enc = get_encoder(JPEG2000Lossless)
    _check("pylibjpeg" in enc.available_plugins, "pylibjpeg-openjpeg encoder unavailable")

    src = ctx.img
    path = getattr(src, "path", None) if src is not None else None
    if path and getattr(src, "kind", "") == "dicom" and not src.is_color:
        ds = pydicom.dcmread(path)
    else:  # the codec check must not depend on the sample step
        ds = _synthetic_dataset()
    full = ds.pixel_array
    crop = np.ascontiguousarray(full[:128, :128])
    ds2 = copy.deepcopy(ds)
    ds2.Rows, ds2.Columns = crop.shape
    ds2.PixelData = crop.tobytes()
    # the sample may itself be compressed (RG1 ships as JPEG 2000 lossless): start uncompressed
    ds2.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds2.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    back = pixel_array(ds2, decoding_plugin="pylibjpeg")
    _check(np.array_equal(back, crop), "JPEG 2000 lossless round trip through pylibjpeg changed pixels")
    return (
        f"pylibjpeg decodes JPEG baseline, JPEG lossless, JPEG 2000; "
        f"J2K lossless round trip exact ({crop.nbytes} -> {len(ds2.PixelData)} bytes)"
    )


def _synthetic_dataset():
    """A 12-bit 128x128 MONOCHROME2 dataset with a ramp and noise (lossless codecs must keep
    every value)."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    rng = np.random.default_rng(0)
    a = (np.add.outer(np.arange(128), np.arange(128)) * 16 + rng.integers(0, 64, (128, 128)))
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = a.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.clip(a, 0, 4095).astype(np.uint16).tobytes()
    return ds


def step_viewer(ctx: Context) -> str:
    """The real main window, offscreen: Qt platform plugin, pyqtgraph, the AI panel, the
    canvas showing the sample. Nothing is loaded into the AI worker here."""
    if not ctx.gui:
        raise _Skip("--no-gui")
    _check(ctx.img is not None, "needs the sample")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtCore, QtWidgets

    from cxrviewer.ui.app import get_app
    from cxrviewer.ui.shell.main_window import MainWindow

    app = get_app()
    platform = QtWidgets.QApplication.platformName()

    def quiet(mode, context, message):  # the offscreen plugin's one harmless complaint
        if "propagateSizeHints" not in message:
            sys.stderr.write(message + "\n")

    previous = QtCore.qInstallMessageHandler(quiet)
    w = MainWindow()
    try:
        w.resize(1024, 768)
        w.show()
        w.canvas.set_image(ctx.img)
        app.processEvents()
        shown = w.canvas.shown_array()
        _check(shown is not None, "the canvas shows no image after set_image")
        pix = w.canvas.grab()
        _check(not pix.isNull() and pix.width() > 0, "grabbing the canvas gave an empty picture")
        qimg = pix.toImage()
        # A window that painted the radiograph is not one flat colour.
        colours = {qimg.pixel(x, y) for x in range(0, qimg.width(), max(1, qimg.width() // 16))
                   for y in range(0, qimg.height(), max(1, qimg.height() // 16))}
        _check(len(colours) > 4, "the canvas painted a flat picture: the image was not drawn")
        size = f"{pix.width()}x{pix.height()}"
    finally:
        w.close()
        w.deleteLater()
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
        app.processEvents()
        QtCore.qInstallMessageHandler(previous)
    return f"Qt {QtCore.qVersion()} platform '{platform}', main window painted the sample ({size})"


def step_model(ctx: Context) -> str:
    model = ctx.model
    if model and not os.path.isdir(model):
        _check(os.sep not in model and "/" not in model, f"{model}: no such model directory")
        from cxrviewer.ml.registry import Registry

        model = str(Registry().get(model).path)  # "no model named ..." lists the installed ones
    from cxrviewer.ml.inference import Engine

    t0 = time.perf_counter()
    engine = Engine.load(model, backend=ctx.backend, device=ctx.device)
    ctx.engine = engine
    return (
        f"{engine.name} {engine.version} on {engine.device} via {engine.backend} "
        f"(threshold {float(engine.threshold):.3f}, loaded in {time.perf_counter() - t0:.1f} s)"
    )


def step_inference(ctx: Context) -> str:
    import numpy as np

    _check(ctx.img is not None, "needs the sample")
    _check(ctx.engine is not None, "needs the model")
    pred = ctx.engine.predict(ctx.img, cam=True)
    ctx.pred = pred
    p = np.asarray(pred.probabilities, dtype=np.float64)
    _check(p.shape == (2,) and bool(np.isfinite(p).all()), f"probabilities {tuple(p)} are not 2 finite numbers")
    _check(abs(p.sum() - 1.0) < 1e-3 and (p >= 0).all(), f"probabilities {tuple(p)} do not sum to 1")
    _check(abs(float(pred.probability_abnormal) - p[1]) < 1e-6, "probability_abnormal != probabilities[1]")
    want = "Abnormal" if p[1] >= float(pred.threshold) else "Normal"
    _check(pred.label == want, f"label {pred.label!r} but P(Abnormal) {p[1]:.4f} vs threshold {pred.threshold}")
    cam = pred.cam
    _check(cam is not None, "no Grad-CAM map returned")
    cam = np.asarray(cam)
    shape = (ctx.img.rows, ctx.img.cols)
    _check(cam.shape == shape, f"Grad-CAM shape {cam.shape}, expected the image's {shape}")
    _check(bool(np.isfinite(cam).all()), "Grad-CAM has NaN/inf")
    _check(float(cam.min()) >= 0.0 and float(cam.max()) <= 1.0 + 1e-6, "Grad-CAM outside [0, 1]")
    _check(float(cam.max()) > 0.0, "Grad-CAM is flat (all zeros)")
    return (
        f"P(Abnormal) {p[1]:.3f} -> {pred.label}; Grad-CAM {cam.shape[0]}x{cam.shape[1]} "
        f"peak at {tuple(int(v) for v in np.unravel_index(int(np.argmax(cam)), cam.shape))} ({float(pred.elapsed_ms):.0f} ms, "
        f"{pred.backend} on {pred.device})"
    )


def step_export(ctx: Context) -> str:
    """Annotated export with the heatmap, written atomically, read back and checked."""
    import numpy as np
    from PIL import Image

    from cxrviewer.render.colormaps import DEFAULT_THRESHOLD, cam_to_index, threshold_index
    from cxrviewer.render.compose import compose_export, prediction_overlay
    from cxrviewer.render.export import save_image

    _check(ctx.pred is not None and ctx.pred.cam is not None, "needs a prediction with a heatmap")
    img = ctx.img
    cam_u8 = cam_to_index(ctx.pred.cam)
    layer, ai_lines = prediction_overlay(ctx.pred)
    max_size = 1024
    with_heat = compose_export(img, layers=[layer], anonymize=True, ai_lines=ai_lines,
                               native=False, max_size=max_size)
    without = compose_export(img, anonymize=True, ai_lines=ai_lines, native=False, max_size=max_size)
    if ctx.out:
        out = Path(ctx.out)
    else:
        out = Path(tempfile.mkdtemp(prefix="cxrviewer-selftest-")) / "selftest_export.png"
    save_image(with_heat, out)
    ctx.export_path = out
    _check(out.is_file() and out.stat().st_size > 0, f"{out}: not written or empty")
    with Image.open(out) as im:
        im.load()
        got = np.asarray(im.convert("RGB"))
        size = im.size
    _check(got.shape[:2] == with_heat.shape[:2], f"{out}: {size} but rendered {with_heat.shape[1]}x{with_heat.shape[0]}")
    _check(max(size) == min(max_size, max(size)) and max(size) > 0, f"{out}: size {size} over {max_size}")
    # Expected size: longest side max_size (or less for a small image), aspect as on screen.
    from cxrviewer.core.geometry import display_aspect

    sx, sy = display_aspect(img.geometry)
    w0, h0 = img.cols * sx, img.rows * sy
    f = min(1.0, max_size / max(w0, h0))
    want = (max(1, round(w0 * f)), max(1, round(h0 * f)))
    _check(size == want, f"{out}: size {size}, expected {want}")
    ref = without if without.ndim == 3 else np.repeat(without[..., None], 3, axis=2)
    _check(np.array_equal(got, with_heat if with_heat.ndim == 3 else np.repeat(with_heat[..., None], 3, axis=2)),
           f"{out}: pixels read back differ from what was rendered")
    changed = float(np.any(got != ref, axis=2).mean())
    hot = float((cam_u8 >= threshold_index(DEFAULT_THRESHOLD)).mean())
    _check(hot > 0.0, "the heatmap is below its display threshold everywhere")
    _check(changed > 0.5 * hot, f"heatmap not visible in the export: {changed:.1%} pixels changed, {hot:.1%} hot")
    colour = got.astype(np.int16)
    coloured = float((colour.max(axis=2) - colour.min(axis=2) > 40).mean())
    _check(coloured > 0.0, "the export has no coloured pixels: no heatmap burned in")
    return (
        f"{out} {size[0]}x{size[1]} PNG, {out.stat().st_size} bytes; heatmap changes {changed:.1%} "
        f"of pixels ({hot:.1%} above threshold), anonymized corner text"
    )


def step_dicom(ctx: Context) -> str:
    """The DICOM-object stack is in this install: the sample's TID 1500 SR (with the model's
    result when inference passed), GSPS and SC built with highdicom, the SR de-identified with
    dicognito, written atomically, re-read with pydicom and its result read back."""
    import numpy as np
    import pydicom

    from cxrviewer.dicom.build import ai_result_from_prediction, length_measurement
    from cxrviewer.dicom.common import NOT_FOR_DIAGNOSTIC, ReaderView, source_dataset, write_dataset
    from cxrviewer.dicom.deid import deidentify
    from cxrviewer.dicom.gsps import make_gsps, read_gsps
    from cxrviewer.dicom.sc import make_sc
    from cxrviewer.dicom.sr import make_sr, read_ai_results, read_measurements

    img = ctx.img
    if img is None or img.kind != "dicom":
        raise _Skip("the sample is not DICOM (objects join a DICOM study)")
    src = source_dataset(img.path)
    ruler = length_measurement(img, (img.cols * 0.25, img.rows * 0.25), (img.cols * 0.75, img.rows * 0.75))
    ai = ai_result_from_prediction(ctx.pred) if ctx.pred is not None else None
    sr, changes = deidentify(make_sr(src, ai, [ruler], frame=img.frame), seed="selftest")
    pr = make_gsps(src, ReaderView(1000.0, 2000.0, rotation=1, measurements=(ruler,))) if not img.is_color else None
    sc = make_sc(src, np.zeros((64, 64), np.uint8))
    _check(NOT_FOR_DIAGNOSTIC in str(sc.ImageComments) and sc.BurnedInAnnotation == "YES", "SC lacks its markings")
    out = Path(tempfile.mkdtemp(prefix="cxrviewer-selftest-dicom-")) / "sr.dcm"
    write_dataset(sr, out)
    back = pydicom.dcmread(out)
    _check(back.PatientIdentityRemoved == "YES" and str(back.PatientID) != str(src.PatientID or "x"),
           "the de-identified SR still names the patient")
    _check(len(read_measurements(back)) == 1, "the SR's length did not read back")
    if ai is not None:
        (got,) = read_ai_results(back)
        _check(abs(got.probability_abnormal - ai.probability_abnormal) < 1e-6, "the SR's AI result did not read back")
    if pr is not None:
        _check(read_gsps(pr).rotation == 1, "the presentation state's rotation did not read back")
    return (f"SR{' with the AI result' if ai is not None else ''}, GSPS, SC built; SR de-identified "
            f"({len(changes)} attributes changed), written and read back ({out.stat().st_size} bytes)")


def step_pacs(ctx: Context) -> str:
    """The PACS stack is in this install: a C-ECHO through :mod:`cxrviewer.net` to a pynetdicom
    Verification SCP that this step starts on 127.0.0.1 (loopback only, stopped at once), and
    the DICOMweb client's modules import (a bundle that lost them fails here, not at a site)."""
    import dicomweb_client
    import pynetdicom
    import requests  # noqa: F401 - DICOMweb's HTTP stack must be in the bundle
    from pynetdicom import AE

    from cxrviewer.net import api
    from cxrviewer.net.dimse import VERIFICATION
    from cxrviewer.net.nodes import DimseNode

    scp = AE(ae_title="SELFTEST")
    scp.add_supported_context(VERIFICATION)
    server = scp.start_server(("127.0.0.1", 0), block=False)
    try:
        port = server.server_address[1]
        out = api.echo(DimseNode("selftest", "127.0.0.1", port, "SELFTEST", timeout=10))
    finally:
        server.shutdown()
    _check(out.get("ok") is True, "C-ECHO to the loopback SCP failed")
    return (f"C-ECHO over loopback in {out['ms']:.0f} ms (pynetdicom {pynetdicom.__version__}, "
            f"dicomweb-client {dicomweb_client.__version__})")


class _Skip(Exception):
    """A step that does not apply (its reason is printed)."""


_FUNCS: dict[str, Callable[[Context], str]] = {
    "runtime": step_runtime,
    "sample": step_sample,
    "codecs": step_codecs,
    "viewer": step_viewer,
    "model": step_model,
    "inference": step_inference,
    "export": step_export,
    "dicom": step_dicom,
    "pacs": step_pacs,
}

#: a step is skipped when one it depends on did not pass
_NEEDS = {
    "codecs": (),
    "viewer": ("sample",),
    "inference": ("sample", "model"),
    "export": ("inference",),
    "dicom": ("sample",),
}


def run(
    model: str | None = None,
    sample: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    *,
    backend: str = "auto",
    device: str = "auto",
    gui: bool = True,
    echo: Callable[[str], None] | None = print,
    verbose: bool = False,
) -> list[StepResult]:
    """Run every step in :data:`STEPS`; return their results (each printed through ``echo``).

    Parameters
    ----------
    model
        Model directory or registry name; ``None``: the registry's active model.
    sample
        DICOM/PNG/JPEG file to use instead of the bundled sample.
    out
        Where to write the export (default: a new temp folder, left for inspection).
    backend, device
        Passed to ``Engine.load`` (``"auto"``: ONNX Runtime when the model has its .onnx).
    gui
        ``False`` skips the main-window step (e.g. a machine without Qt's system libraries).
    verbose
        Print the traceback of a failed step (to stderr).
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    ctx = Context(
        model=model,
        sample=None if sample is None else os.fspath(sample),
        out=None if out is None else os.fspath(out),
        backend=backend,
        device=device,
        gui=gui,
    )
    results: list[StepResult] = []
    status: dict[str, str] = {}
    for name in STEPS:
        t0 = time.perf_counter()
        blocked = [d for d in _NEEDS.get(name, ()) if status.get(d) != "pass"]
        if blocked:
            r = StepResult(name, "skip", f"needs {', '.join(blocked)}", 0.0)
        else:
            try:
                r = StepResult(name, "pass", _FUNCS[name](ctx), 0.0)
            except _Skip as e:
                r = StepResult(name, "skip", str(e), 0.0)
            except Exception as e:  # noqa: BLE001 - every failure is a reported FAIL, never a crash
                msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
                r = StepResult(name, "fail", f"{type(e).__name__}: {msg}", 0.0)
                if verbose:
                    traceback.print_exc(file=sys.stderr)
        r.seconds = time.perf_counter() - t0
        status[name] = r.status
        results.append(r)
        if echo is not None:
            echo(r.line())
    return results


def passed(results: list[StepResult], allow_skip: tuple[str, ...] = ()) -> bool:
    """True when every step passed (a skipped step counts as passed only if named in
    ``allow_skip``, e.g. ``"viewer"`` with ``--no-gui``)."""
    return all(r.ok or (r.status == "skip" and r.name in allow_skip) for r in results)


def to_json(results: list[StepResult]) -> list[dict]:
    return [asdict(r) for r in results]
