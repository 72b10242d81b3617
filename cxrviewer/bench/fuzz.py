"""Fuzz the DICOM reader and the display pipeline: every case must end as an image or a clean error.

Two generators:

1. :func:`hostile_params` (a hypothesis strategy) + :func:`build_hostile` write DICOM files
   with hostile values: Rows/Columns 0 or 65535, inconsistent BitsAllocated/BitsStored/HighBit,
   flipped PixelRepresentation, SamplesPerPixel 3 with MONOCHROME2, Pixel Data shorter or
   longer than declared, Window Width 0 or negative, Rescale Slope 0/NaN/inf, VOI and Modality
   LUTs with bad descriptors, NumberOfFrames 0, unknown transfer syntaxes, deeply nested
   sequences.
2. :func:`mutate` flips bits, truncates, inserts junk and corrupts length fields of real files
   (pydicom-data's RG1 in three encodings, the SIIM DICOMs in ``../shared/data/dicom``).

:func:`run_case` opens a file the way the viewer does (scan record, ``load_image``, ``render``
with every preset) and classifies the outcome: ``image``, ``clean_error`` (a
:class:`~cxrviewer.core.errors.CxrError` whose message names the file), ``crash`` (anything
else) or ``hang`` (over the per-case time bound, enforced with ``SIGALRM`` where available).
pydicom's warnings are ignored inside a case, as in the application (it warns about many
recoverable header problems); numpy's RuntimeWarnings (a NaN cast to uint8) count as crashes.

``cxrviewer bench fuzz --cases N --json`` runs a campaign; the test suite runs a quick slice.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Seconds one case may take before it counts as a hang (RG1 J2K decodes in ~1 s).
DEFAULT_TIME_BOUND_S = 20.0

TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # explicit VR little endian (most cases)
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian (retired)
    "1.2.840.10008.1.2.1.99",  # deflated
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.70",  # JPEG lossless
    "1.2.840.10008.1.2.4.80",  # JPEG-LS
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.201",  # HTJ2K
    "1.2.840.10008.1.2.5",  # RLE
    "1.2.840.10008.1.2.4.100",  # MPEG2 (video)
    "1.2.840.10008.1.2.4.110",  # JPEG XL (unknown to pydicom 3.0)
    "1.2.3.4.5.6.7.8.9",  # made up
)


# --- generator 1: hostile datasets -----------------------------------------------------------


def _number_text():
    """DS/IS text that may not be a usable number."""
    from hypothesis import strategies as st

    return st.one_of(
        st.sampled_from(["0", "-1", "1", "nan", "NaN", "inf", "-inf", "1e400", "-1e400", "1e-45",
                         "65535", "4294967296", "abc", "", " ", "1\\2", "0.5"]),
        st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda f: f"{f:.6g}"),
        st.integers(-(2**40), 2**40).map(str),
    )


def hostile_params():
    """A hypothesis strategy of dicts describing one hostile dataset (see :func:`build_hostile`)."""
    from hypothesis import strategies as st

    # Mostly plausible values, so cases get past the first sanity check and into the decoders
    # and LUTs; sometimes anything at all.
    us = st.one_of(st.sampled_from([0, 1, 2, 3, 8, 12, 15, 16, 32, 64, 255, 32768, 65535]),
                   st.integers(0, 65535))
    dim = st.one_of(st.sampled_from([0, 1, 2, 7, 8, 16, 24, 65535]), st.integers(0, 65535))
    bits = st.sampled_from([1, 8, 8, 16, 16, 16, 32, 64, 0, 12, 65535])
    stored = st.one_of(st.sampled_from([1, 7, 8, 10, 12, 15, 16, 17, 32, 0]), us)
    lut = st.tuples(
        st.one_of(st.sampled_from([0, 1, 2, 4, 256, 4096, 65535]), st.integers(0, 65535)),  # entries
        st.one_of(st.sampled_from([0, -1, -32768, 32767, 65535]), st.integers(-32768, 65535)),  # first
        st.sampled_from([0, 1, 8, 10, 12, 16, 17, 32, 255]),  # bits
        st.integers(0, 300),  # data length actually written
        st.booleans(),  # LUT Data as OW bytes (else US values)
    )
    return st.fixed_dictionaries(
        {
            "seed": st.integers(0, 2**16),
            "size": st.tuples(st.integers(1, 24), st.integers(1, 24)),
            "dtype": st.sampled_from(["u1", "u2", "i2", "u4"]),
        },
        optional={
            "rows": dim,
            "columns": dim,
            "bits_allocated": bits,
            "bits_stored": stored,
            "high_bit": stored,
            "pixel_representation": st.sampled_from([0, 1, 2, 65535]),
            "samples_per_pixel": st.sampled_from([0, 1, 2, 3, 4, 65535]),
            "planar_configuration": st.sampled_from([0, 1, 2]),
            "photometric": st.sampled_from(["MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422",
                                            "PALETTE COLOR", "HSV", "", "monochrome2", "YBR_RCT"]),
            "pixel_data_delta": st.one_of(st.integers(-600, 600), st.sampled_from([-(10**9), 1, -1])),
            "window_center": st.lists(_number_text(), max_size=3),
            "window_width": st.lists(_number_text(), max_size=3),
            "voi_function": st.sampled_from(["LINEAR", "LINEAR_EXACT", "SIGMOID", "BOGUS", "", "sigmoid"]),
            "rescale_slope": _number_text(),
            "rescale_intercept": _number_text(),
            "voi_luts": st.lists(lut, max_size=2),
            "modality_lut": lut,
            "frames": st.one_of(st.sampled_from(["0", "-1", "1", "2", "3", "5000", "abc", ""]),
                                st.integers(-5, 10).map(str)),
            "transfer_syntax": st.sampled_from(TRANSFER_SYNTAXES),
            # a *valid* compressed stream of the pixels, so hostile headers meet real decoders
            "codec": st.sampled_from(["j2k", "rle", "jpeg"]),
            "codestream_flips": st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 7)), max_size=4),
            "nesting": st.integers(0, 120),
            "padding": st.integers(-32768, 65535),
            "padding_limit": st.integers(-32768, 65535),
            "presentation_lut_shape": st.sampled_from(["INVERSE", "IDENTITY", "BOGUS", ""]),
            "pixel_spacing": st.lists(_number_text(), max_size=3),
            "imager_pixel_spacing": st.lists(_number_text(), max_size=3),
            "ermf": _number_text(),
            "drop": st.lists(st.sampled_from(["Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
                                              "PixelRepresentation", "SamplesPerPixel",
                                              "PhotometricInterpretation", "PixelData", "SOPClassUID"]),
                             max_size=3),
        },
    )


def _lut_item(spec, us_tag_values: bool = True):
    from pydicom.dataset import Dataset

    entries, first, bits, n_data, as_bytes = spec
    rng = np.random.default_rng(entries + n_data)
    data = rng.integers(0, 65536, n_data).astype("<u2")
    item = Dataset()
    item.add_new(0x00283002, "US", [entries, first & 0xFFFF, bits])
    if as_bytes:
        item.add_new(0x00283006, "OW", data.tobytes() + (b"\x01" if n_data % 3 == 1 else b""))
    else:
        item.add_new(0x00283006, "US", [int(x) for x in data])
    return item


def _nested(depth: int):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    inner = Dataset()
    inner.CodeValue = "X"
    for _ in range(depth):
        outer = Dataset()
        outer.ContentSequence = Sequence([inner])
        inner = outer
    return Sequence([inner])


def build_hostile(params: dict[str, Any], path: str | os.PathLike) -> str:
    """Write the dataset ``params`` describes; returns the path.

    The body is always valid to *write* (values are kept within their VR's binary range);
    hostility lies in what the values mean and in how they disagree with each other.
    """
    import pydicom
    from pydicom import config
    from pydicom.encaps import encapsulate
    from pydicom.sequence import Sequence
    from pydicom.uid import UID

    from cxrviewer.core.synthetic import make_dataset, write_any_transfer_syntax

    rng = np.random.default_rng(params["seed"])
    rows, cols = params["size"]
    if params.get("codec") == "j2k":
        rows, cols = max(64, rows), max(64, cols)  # openjpeg's minimum for its default levels
    dtype = np.dtype(params["dtype"])
    top = min(np.iinfo(dtype).max, 2**20)
    arr = rng.integers(0, top, (rows, cols), endpoint=True).astype(dtype)
    with config.disable_value_validation(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = make_dataset(arr)
        p = params
        for key, kw in (("rows", "Rows"), ("columns", "Columns"), ("bits_allocated", "BitsAllocated"),
                        ("bits_stored", "BitsStored"), ("high_bit", "HighBit"),
                        ("pixel_representation", "PixelRepresentation"),
                        ("samples_per_pixel", "SamplesPerPixel"),
                        ("planar_configuration", "PlanarConfiguration")):
            if key in p:
                setattr(ds, kw, p[key])
        if "photometric" in p:
            ds.PhotometricInterpretation = p["photometric"]
        if "pixel_data_delta" in p:
            data = ds.PixelData
            d = p["pixel_data_delta"]
            data = data[: max(0, len(data) + d)] if d < 0 else data + rng.bytes(d)
            if len(data) % 2:
                data += b"\0"
            ds.PixelData = data
        if p.get("window_center"):
            ds.add_new(0x00281050, "DS", "\\".join(p["window_center"]))
        if p.get("window_width"):
            ds.add_new(0x00281051, "DS", "\\".join(p["window_width"]))
        if "voi_function" in p:
            ds.VOILUTFunction = p["voi_function"]
        if "rescale_slope" in p:
            ds.add_new(0x00281053, "DS", p["rescale_slope"])
        if "rescale_intercept" in p:
            ds.add_new(0x00281052, "DS", p["rescale_intercept"])
        if p.get("voi_luts"):
            ds.VOILUTSequence = Sequence([_lut_item(s) for s in p["voi_luts"]])
        if "modality_lut" in p:
            ds.ModalityLUTSequence = Sequence([_lut_item(p["modality_lut"])])
        if "frames" in p:
            ds.add_new(0x00280008, "IS", p["frames"])
        if p.get("nesting"):
            ds.ContentSequence = _nested(p["nesting"])
        if "padding" in p:
            vr = "SS" if int(ds.get("PixelRepresentation", 0) or 0) == 1 else "US"
            val = p["padding"]
            val = max(-32768, min(32767, val)) if vr == "SS" else val & 0xFFFF
            ds.add_new(0x00280120, vr, val)
            if "padding_limit" in p:
                lim = p["padding_limit"]
                ds.add_new(0x00280121, vr, max(-32768, min(32767, lim)) if vr == "SS" else lim & 0xFFFF)
        if "presentation_lut_shape" in p:
            ds.PresentationLUTShape = p["presentation_lut_shape"]
        if p.get("pixel_spacing"):
            ds.add_new(0x00280030, "DS", "\\".join(p["pixel_spacing"]))
        if p.get("imager_pixel_spacing"):
            ds.add_new(0x00181164, "DS", "\\".join(p["imager_pixel_spacing"]))
        if "ermf" in p:
            ds.add_new(0x00181114, "DS", p["ermf"])
        out = os.fspath(path)
        if "codec" in p:
            ts = _encode(ds, arr, p["codec"], p.get("codestream_flips", []))
        else:
            ts = p.get("transfer_syntax", "1.2.840.10008.1.2.1")
        for kw in p.get("drop", []):
            if kw in ds:
                delattr(ds, kw)
        uid = UID(ts)
        if ts in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"):
            ds.file_meta.TransferSyntaxUID = uid
            if ts == "1.2.840.10008.1.2.2" and "PixelData" in ds:
                ds["PixelData"].VR = "OW" if int(ds.get("BitsAllocated", 16) or 16) > 8 else "OB"
            pydicom.dcmwrite(out, ds, implicit_vr=ts == "1.2.840.10008.1.2",
                             little_endian=ts != "1.2.840.10008.1.2.2", enforce_file_format=True)
            return out
        if "codec" in p:
            return write_any_transfer_syntax(ds, out)
        if ts != "1.2.840.10008.1.2.1":
            ds.file_meta.TransferSyntaxUID = uid
            if "PixelData" in ds:
                raw = ds.PixelData
                # a plausible start of each codestream type, then the raw bytes as payload
                head = {"1.2.840.10008.1.2.5": (1).to_bytes(4, "little") + (64).to_bytes(4, "little") + b"\0" * 56}.get(
                    ts, b"\xff\xd8\xff" if ts.startswith("1.2.840.10008.1.2.4.") else b"")
                ds.PixelData = encapsulate([head + raw])
                ds["PixelData"].VR = "OB"
        return write_any_transfer_syntax(ds, out)


def _fragments(pixel_data: bytes):
    from pydicom.encaps import generate_fragments

    it = generate_fragments(pixel_data)
    next(it)  # Basic Offset Table
    return it


def _encode(ds, arr: np.ndarray, codec: str, flips) -> str:
    """Put a valid codestream of ``arr`` in ``ds`` (then flip some of its bits); returns the
    transfer syntax. The header keeps whatever hostile values the case set."""
    from pydicom.encaps import encapsulate

    a = arr
    if a.dtype.itemsize > 2:
        a = np.minimum(a, 65535).astype(np.uint16)
    if codec == "jpeg":
        import cv2

        a8 = (a.astype(np.float64) / max(1, a.max()) * 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", a8)
        stream, ts = buf.tobytes(), "1.2.840.10008.1.2.4.50"
    else:
        from cxrviewer.core.synthetic import make_dataset

        if codec == "rle":
            src, ts = a, "1.2.840.10008.1.2.5"
        else:
            # openjpeg needs a few pixels per resolution level: pad small images to 64x64
            src = np.zeros((max(64, a.shape[0]), max(64, a.shape[1])), np.uint16)
            src[: a.shape[0], : a.shape[1]] = np.clip(a.astype(np.int64), 0, 65535)
            ts = "1.2.840.10008.1.2.4.90"
        if src.dtype.kind == "i":
            src = src.astype(src.dtype.str.replace("i", "u"))
        tmp = make_dataset(src)
        tmp.compress(ts)
        stream = next(iter(_fragments(tmp.PixelData)))
    b = bytearray(stream)
    for pos, bit in flips:
        if b:
            b[pos % len(b)] ^= 1 << bit
    ds.PixelData = encapsulate([bytes(b)])
    ds["PixelData"].VR = "OB"
    from pydicom.uid import UID

    ds.file_meta.TransferSyntaxUID = UID(ts)
    return ts


# --- generator 2: byte mutations of real files -------------------------------------------------


def seed_files(shared_dir: str | os.PathLike | None = None) -> list[tuple[str, float]]:
    """``(path, weight)`` of the real files to mutate; weights favour the fast ones."""
    out: list[tuple[str, float]] = []
    try:
        from pydicom.data import get_testdata_file

        for name, w in (("RG1_UNCR.dcm", 0.08), ("RG1_J2KI.dcm", 0.06), ("RG1_J2KR.dcm", 0.02)):
            f = get_testdata_file(name, download=False)
            if f:
                out.append((os.fspath(f), w))
    except Exception:  # noqa: BLE001 - pydicom-data is optional at run time
        pass
    if shared_dir is None:
        shared_dir = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dicom"
    d = Path(shared_dir)
    if d.is_dir():
        for f in sorted(d.glob("*.dcm")):
            out.append((os.fspath(f), 0.4))
    return out


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """1-3 random byte-level mutations; returns the new bytes and what was done."""
    b = bytearray(data)
    done = []
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["flip", "flip", "flip", "truncate", "insert", "length", "zero", "dup"])
        if not b:
            break
        header = min(len(b), 4096)  # most structure (and most parser code) is up front
        if op == "flip":
            n = rng.choice([1, 1, 2, 8, 64])
            for _ in range(n):
                i = rng.randrange(header) if rng.random() < 0.7 else rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
            done.append(f"flip{n}")
        elif op == "truncate":
            i = rng.randrange(header) if rng.random() < 0.5 else rng.randrange(len(b))
            del b[i:]
            done.append(f"truncate@{i}")
        elif op == "insert":
            i = rng.randrange(len(b))
            junk = bytes(rng.randrange(256) for _ in range(rng.choice([1, 3, 16, 200])))
            b[i:i] = junk
            done.append(f"insert{len(junk)}@{i}")
        elif op == "length":
            # explicit VR short/long lengths and implicit 4-byte lengths: make one huge or odd
            i = rng.randrange(132, max(133, header - 4))
            b[i : i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x01\x00\x00\x00",
                                       b"\xfe\xff\x00\xe0", b"\x00\x00\x01\x00"])
            done.append(f"length@{i}")
        elif op == "zero":
            i = rng.randrange(len(b))
            n = rng.choice([4, 64, 4096])
            b[i : i + n] = bytes(min(n, len(b) - i))
            done.append(f"zero{n}@{i}")
        elif op == "dup":
            i = rng.randrange(len(b))
            n = rng.choice([8, 128])
            b[i:i] = b[i : i + n]
            done.append(f"dup{n}@{i}")
    return bytes(b), "+".join(done)


# --- running one case ---------------------------------------------------------------------------


class _CaseTimeout(BaseException):
    """Raised by the alarm inside a case that ran past its bound (BaseException: no
    ``except Exception`` in the code under test may swallow it)."""


@contextlib.contextmanager
def _time_guard(seconds: float) -> Iterator[None]:
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise _CaseTimeout()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Outcome:
    kind: str  # "image" | "clean_error" | "crash" | "hang"
    seconds: float
    detail: str = ""
    source: str = ""


def exercise(path: str) -> str:
    """Open ``path`` as the viewer does; returns ``"image"`` or raises.

    Scan record (header only), ``load_image``, ``render`` with the default, every header
    preset, the chest presets and the auto window, the canvas levels, and the last frame of a
    multi-frame file.
    """
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.core.display import chest_presets, levels_for_preset, render
    from cxrviewer.core.study_index import read_record

    rec = read_record(path)
    assert rec.error is not None or rec.instance is not None
    img = load_image(path)
    out = render(img)
    assert out.dtype == np.uint8 and out.shape[:2] == (img.rows, img.cols)
    for preset in [*img.presets, *chest_presets(img), img.auto_preset]:
        if preset is None:
            continue
        out = render(img, preset)
        assert out.dtype == np.uint8 and out.shape[:2] == (img.rows, img.cols)
        lo, hi = levels_for_preset(img, preset)
        assert math.isfinite(lo) and math.isfinite(hi), (lo, hi)
    if img.n_frames > 1:
        last = load_image(path, frame=img.n_frames - 1)
        render(last)
    return "image"


def run_case(path: str, time_bound: float = DEFAULT_TIME_BOUND_S) -> Outcome:
    """Classify what opening ``path`` does (never raises, except KeyboardInterrupt)."""
    from cxrviewer.core.errors import CxrError

    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # numpy's RuntimeWarnings (NaN cast to uint8, overflow) mean garbage pixels on
            # screen: count them as crashes, unlike pydicom's header-quality UserWarnings.
            warnings.simplefilter("error", RuntimeWarning)
            with _time_guard(time_bound):
                kind = exercise(path)
        dt = time.perf_counter() - t0
        if dt > time_bound:
            return Outcome("hang", dt, f"took {dt:.1f} s")
        return Outcome(kind, dt)
    except _CaseTimeout:
        return Outcome("hang", time.perf_counter() - t0, f"interrupted after {time_bound} s")
    except CxrError as e:
        dt = time.perf_counter() - t0
        if e.path != path or path not in str(e) or not e.reason:
            return Outcome("crash", dt, f"CxrError without the file name: {e!r}")
        if dt > time_bound:
            return Outcome("hang", dt, f"took {dt:.1f} s")
        return Outcome("clean_error", dt, e.reason)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - that is what we are hunting
        tb = traceback.extract_tb(e.__traceback__)
        where = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "?"
        return Outcome("crash", time.perf_counter() - t0, f"{type(e).__name__}: {e} at {where}")


# --- campaign -----------------------------------------------------------------------------------


@dataclass
class Campaign:
    outcomes: list[Outcome] = field(default_factory=list)
    crashes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, o: Outcome, reproduce: dict[str, Any]) -> None:
        self.outcomes.append(o)
        if o.kind in ("crash", "hang"):
            self.crashes.append({"kind": o.kind, "detail": o.detail, **reproduce})


def run_hostile(n: int, workdir: Path, camp: Campaign, seed: int, time_bound: float) -> None:
    """``n`` hypothesis-generated hostile datasets (generation only, no shrinking)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    if n <= 0:
        return
    counter = [0]

    @hseed(seed)
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(hostile_params())
    def body(params):
        counter[0] += 1
        path = workdir / f"hostile_{counter[0]:06d}.dcm"
        try:
            build_hostile(params, path)
        except Exception:  # noqa: BLE001 - a dataset pydicom cannot write is not a case
            return
        camp.add(run_case(os.fspath(path), time_bound), {"generator": "hostile", "params": params})
        with contextlib.suppress(OSError):
            path.unlink()

    body()


def run_mutations(n: int, workdir: Path, camp: Campaign, seed: int, time_bound: float,
                  shared_dir: str | None = None) -> None:
    seeds = seed_files(shared_dir)
    if not seeds or n <= 0:
        return
    rng = random.Random(seed)
    cache: dict[str, bytes] = {}
    paths, weights = zip(*seeds, strict=True)
    for k in range(n):
        src = rng.choices(paths, weights)[0]
        if src not in cache:
            cache[src] = Path(src).read_bytes()
        state = rng.getstate()
        data, what = mutate(cache[src], rng)
        path = workdir / f"mut_{k:06d}{Path(src).suffix}"
        path.write_bytes(data)
        o = run_case(os.fspath(path), time_bound)
        o.source = Path(src).name
        camp.add(o, {"generator": "mutation", "source": Path(src).name, "mutation": what,
                     "rng_state_hash": hash(state) & 0xFFFFFFFF})
        path.unlink()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", type=int, default=1000, help="cases in all, half of each generator (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--time-bound", type=float, default=DEFAULT_TIME_BOUND_S,
                   help=f"seconds per case before it counts as a hang (default {DEFAULT_TIME_BOUND_S:g})")
    p.add_argument("--shared-dir", default=None, help="folder of real DICOMs to mutate (default ../shared/data/dicom)")


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def run(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="cxrviewer-fuzz-"))
    camp = Campaign()
    t0 = time.perf_counter()
    note = ""
    try:
        n_hostile = args.cases // 2
        try:
            import hypothesis  # noqa: F401 - a dev dependency; the mutations need nothing
        except ImportError:
            n_hostile = 0
            note = "hypothesis is not installed (pip install 'cxrviewer[dev]'): byte mutations only"
        run_hostile(n_hostile, workdir, camp, args.seed, args.time_bound)
        run_mutations(args.cases - len(camp.outcomes), workdir, camp, args.seed, args.time_bound, args.shared_dir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    kinds = [o.kind for o in camp.outcomes]
    reasons: dict[str, int] = {}
    for o in camp.outcomes:
        if o.kind == "clean_error":
            key = o.detail.split(":")[0][:60]
            reasons[key] = reasons.get(key, 0) + 1
    return {
        "cases": len(kinds),
        "images": kinds.count("image"),
        "clean_errors": kinds.count("clean_error"),
        "crashes": kinds.count("crash"),
        "hangs": kinds.count("hang"),
        "max_case_s": max((o.seconds for o in camp.outcomes), default=0.0),
        "hostile_cases": sum(1 for o in camp.outcomes if not o.source),
        "mutation_cases": sum(1 for o in camp.outcomes if o.source),
        "time_bound_s": args.time_bound,
        "total_s": time.perf_counter() - t0,
        "peak_rss_mb": _peak_rss_mb(),
        "seed": args.seed,
        "top_error_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])[:12]),
        "failures": camp.crashes[:20],
        **({"note": note} if note else {}),
    }
