"""Read DICOM (through pydicom and its codec plugins) and PNG/JPEG files into :class:`LoadedImage`.

Source files are only ever opened for reading. Every failure becomes a
:class:`~cxrviewer.core.errors.DicomReadError` naming the file and the reason.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from cxrviewer.core import dicom_warnings, limits
from cxrviewer.core.dicom_header import (  # noqa: F401 - re-exported: callers import them from here
    _lut_data,
    _rescale_value,
    _s,
    geometry_from_dataset,
    header_from_dataset,
    presets_from_dataset,
)
from cxrviewer.core.errors import DicomReadError, ImageTooLargeError, UnsupportedTransferSyntaxError
from cxrviewer.core.frame_groups import FrameAttributes
from cxrviewer.core.pixel_data import (
    MISSING_PIXELS_REASON,
    NATIVE_SYNTAXES,
    check_codestream,
    jpeg_sof_dims,
    native_length,
    short_native_reason,
    truncation_reason,
)
from cxrviewer.core.types import ImageHeader, LoadedImage, WindowPreset
from cxrviewer.core.window import apply_lut, apply_rescale, robust_window

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}

#: Transfer syntaxes that need a plugin, and the package that decodes each.
_DECODER_HINTS = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg (or Pillow / python-gdcm)",
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.80": "pylibjpeg-libjpeg or pyjpegls (or python-gdcm)",
    "1.2.840.10008.1.2.4.81": "pylibjpeg-libjpeg or pyjpegls (or python-gdcm)",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg >= 2.4 (HTJ2K)",
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg >= 2.4 (HTJ2K)",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg >= 2.4 (HTJ2K)",
    "1.2.840.10008.1.2.5": "pydicom's RLE decoder (or pylibjpeg-rle)",
}

#: SOP classes without pixel data that show up in exported folders.
_NON_IMAGE_HINT = "no Pixel Data (7FE0,0010): not an image (e.g. a structured report, PDF or presentation state)"

#: Media Storage SOP Class UID of a DICOMDIR (Media Storage Directory Storage, PS3.10 7.2).
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
DICOMDIR_REASON = "DICOMDIR (a directory file, not an image)"


def is_dicomdir(ds) -> bool:
    """A DICOMDIR by its Media Storage SOP Class (0002,0002), whatever the file is called
    (a DICOMDIR without File Meta: by its Directory Record Sequence (0004,1220))."""
    meta = getattr(ds, "file_meta", None)
    sop = _s(meta.get("MediaStorageSOPClassUID")) if meta is not None else ""
    if sop:
        return sop == DICOMDIR_SOP_CLASS
    return _s(ds.get("SOPClassUID")) == DICOMDIR_SOP_CLASS or 0x00041220 in ds


def _missing_pixels_reason(path: str) -> str | None:
    """Why a dataset came back without Pixel Data when its header declares an image
    (``None`` when it does not): re-read up to the pixel data and walk it as the scan does."""
    try:
        head = read_dataset(path, stop_before_pixels=True)
    except DicomReadError:
        return None
    if "Rows" not in head or "Columns" not in head:
        return None
    reason = truncation_reason(path, head, getattr(head, "_cxr_header_end", None), _transfer_syntax(head))
    return reason or MISSING_PIXELS_REASON


def _check_size(path: str, rows: int, cols: int, spp: int, frames: int, bits_alloc: int) -> None:
    if rows <= 0 or cols <= 0:
        raise DicomReadError(path, f"Rows (0028,0010) = {rows} / Columns (0028,0011) = {cols}: an image needs both > 0")
    if rows > limits.MAX_DIMENSION or cols > limits.MAX_DIMENSION:
        raise ImageTooLargeError(
            path, f"{rows}x{cols} pixels exceeds the limit of {limits.MAX_DIMENSION} per side"
        )
    if frames > limits.MAX_FRAMES:
        raise ImageTooLargeError(path, f"Number of Frames {frames} exceeds the limit of {limits.MAX_FRAMES}")
    nbytes = rows * cols * spp * max(frames, 1) * max(1, math.ceil(bits_alloc / 8))
    # and the working copy of one frame: float32 modality values for grayscale
    nbytes = max(nbytes, rows * cols * (4 if spp == 1 else spp))
    if nbytes > limits.MAX_PIXEL_BYTES:
        raise ImageTooLargeError(
            path,
            f"declared pixel data (or its float32 working copy) of {nbytes / 2**20:.0f} MiB exceeds the limit of "
            f"{limits.MAX_PIXEL_BYTES / 2**20:.0f} MiB",
        )


_QUIET = []


def _quiet_pydicom() -> None:
    """Read without pydicom's per-element validation warnings (once per process).

    They are about a file's conformance ("Invalid value for VR DS: 'nan'"), not actionable
    by a reader, and would flood stderr and the log; whatever matters for display is checked
    here and reported per file as a clean error. Writing validation is left as it is.
    """
    if not _QUIET:
        from pydicom import config

        config.settings.reading_validation_mode = config.IGNORE
        _QUIET.append(True)


def read_dataset(path: str | os.PathLike, stop_before_pixels: bool = False):
    """``dcmread`` read-only, accepting files without the 128-byte preamble.

    pydicom's warnings about the file go to the log (and, inside a caller's
    :func:`cxrviewer.core.dicom_warnings.collect`, to that caller's notes), never to stderr.

    Raises :class:`DicomReadError` for anything that is not DICOM.
    """
    with dicom_warnings.collect(path):
        return _read_dataset(path, stop_before_pixels)


def _read_dataset(path: str | os.PathLike, stop_before_pixels: bool):
    import pydicom
    from pydicom.errors import InvalidDicomError

    _quiet_pydicom()

    p = os.fspath(path)
    try:
        if os.path.getsize(p) == 0:
            raise DicomReadError(p, "empty file (0 bytes)")
    except OSError as e:
        raise DicomReadError(p, f"cannot read: {e.strerror or e}") from None
    try:
        with open(p, "rb") as fh:
            try:
                ds = pydicom.dcmread(fh, stop_before_pixels=stop_before_pixels)
                # Where the header ended (the Pixel Data element when stopped before it): lets
                # a header-only scan notice a file cut short in its pixel data.
                ds._cxr_header_end = fh.tell()
                if not stop_before_pixels:
                    _materialize(ds)
                return ds
            except InvalidDicomError:
                fh.seek(0)
                head = fh.read(8)
                # No preamble/'DICM': accept only when the first tag is plausibly a DICOM
                # group (0002, 0008 or 0010) in either byte order.
                if len(head) < 8 or head[:2] not in (b"\x02\x00", b"\x08\x00", b"\x10\x00", b"\x00\x02", b"\x00\x08"):
                    raise DicomReadError(p, "not a DICOM file (no 'DICM' marker and no DICOM tags at the start)") from None
                fh.seek(0)
                ds = pydicom.dcmread(fh, stop_before_pixels=stop_before_pixels, force=True)
                if "SOPClassUID" not in ds and "PixelData" not in ds and "Rows" not in ds:
                    raise DicomReadError(p, "not a DICOM file (no preamble and no image attributes)") from None
                _ensure_transfer_syntax(ds)
                ds._cxr_header_end = fh.tell()
                if not stop_before_pixels:
                    _materialize(ds)
                return ds
    except DicomReadError:
        raise
    except RecursionError:
        raise DicomReadError(p, "corrupt DICOM: sequences nested too deeply to read") from None
    except PermissionError as e:
        raise DicomReadError(p, f"permission denied: {e.strerror or e}") from None
    except OSError as e:
        raise DicomReadError(p, f"cannot read: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - pydicom raises many types on corrupt input
        raise DicomReadError(p, f"corrupt or truncated DICOM: {type(e).__name__}: {e}") from None


def _materialize(ds) -> None:
    """Convert every top-level element now, inside :func:`read_dataset`'s error handling.

    pydicom parses element values lazily, on first access; a corrupt value (an unknown VR
    after a bit flip, a bad UID) would otherwise raise ``NotImplementedError`` or
    ``ValueError`` from deep inside the display code. Sequence items stay lazy and are read
    under their own guards.
    """
    for _elem in ds:
        pass


def _ensure_transfer_syntax(ds) -> None:
    """Give a dataset read without File Meta (no preamble) the Transfer Syntax it was read in.

    pydicom's pixel decoders look the syntax up in ``file_meta``; without it they refuse
    even a plain uncompressed image. The encoding the parser detected is the right answer.
    """
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if implicit is None:
        implicit, little = True, True
    uid = ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    if meta is None:
        meta = FileMetaDataset()
        ds.file_meta = meta
    meta.TransferSyntaxUID = uid


def _transfer_syntax(ds) -> str:
    try:
        return str(ds.file_meta.TransferSyntaxUID)
    except AttributeError:
        return "1.2.840.10008.1.2"  # implicit VR little endian: the default without meta


def _ts_name(uid: str) -> str:
    try:
        from pydicom.uid import UID

        return f"{UID(uid).name} ({uid})"
    except Exception:  # noqa: BLE001
        return uid


def load_image(path: str | os.PathLike, frame: int = 0) -> LoadedImage:
    """Decode one frame of a DICOM, PNG or JPEG file.

    Raises
    ------
    DicomReadError
        (or a subclass) naming the file and the reason, for anything that is not a
        displayable image.
    """
    p = os.fspath(path)
    if Path(p).suffix.lower() in IMAGE_SUFFIXES:
        return load_image_file(p)
    with dicom_warnings.collect(p) as notes:
        ds = read_dataset(p)
        img = image_from_dataset(ds, p, frame)
    img.warnings = list(notes)
    return img


def _pixel_int(ds, path: str, keyword: str, tag: str, default: int | None = None) -> int:
    """An Image Pixel integer; absent, empty or 0 -> ``default`` where the attribute may be
    absent, else refused with its name."""
    raw = ds.get(keyword)
    if default is not None and not raw:
        return default
    from pydicom.datadict import dictionary_description

    name = f"{dictionary_description(keyword)} {tag}"
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise DicomReadError(path, f"missing or invalid Image Pixel attribute: {name} is absent")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise DicomReadError(path, f"missing or invalid Image Pixel attribute: {name} = {_s(raw)!r} "
                                   "is not an integer") from None


def image_pixel_module(ds, path: str) -> tuple[int, int, int, int, int, int, str]:
    """The Image Pixel attributes (PS3.3 C.7.6.3) checked for display, from the header alone.

    Returns ``(rows, cols, samples per pixel, bits allocated, bits stored, frames,
    photometric interpretation)``. The scan calls it too, so a file it lists as an image
    is refused for the same header reasons, in the same words, as when it is opened.

    Raises
    ------
    DicomReadError
        (or :class:`ImageTooLargeError`) naming the attribute and the rule.
    """
    rows = _pixel_int(ds, path, "Rows", "(0028,0010)")
    cols = _pixel_int(ds, path, "Columns", "(0028,0011)")
    spp = _pixel_int(ds, path, "SamplesPerPixel", "(0028,0002)", 1)
    bits_alloc = _pixel_int(ds, path, "BitsAllocated", "(0028,0100)")
    bits_stored = _pixel_int(ds, path, "BitsStored", "(0028,0101)", bits_alloc)
    frames = _pixel_int(ds, path, "NumberOfFrames", "(0028,0008)", 1)
    if frames < 1:
        raise DicomReadError(path, f"Number of Frames (0028,0008) = {frames}: must be >= 1")
    if bits_alloc not in (1, 8, 16, 32, 64):
        raise DicomReadError(path, f"Bits Allocated (0028,0100) = {bits_alloc} is not 1, 8, 16, 32 or 64")
    if not 1 <= bits_stored <= bits_alloc:
        raise DicomReadError(path, f"Bits Stored (0028,0101) = {bits_stored} must be between 1 and Bits Allocated ({bits_alloc})")
    if spp not in (1, 3):
        raise DicomReadError(path, f"Samples per Pixel (0028,0002) = {spp}: only 1 or 3 are images")
    _check_size(path, rows, cols, spp, frames, bits_alloc)

    photometric = _s(ds.get("PhotometricInterpretation")).upper() or ("MONOCHROME2" if spp == 1 else "RGB")
    if spp == 1 and photometric not in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"):
        raise DicomReadError(path, f"Photometric Interpretation {photometric} with 1 sample per pixel")
    if spp == 3 and photometric.startswith("MONOCHROME"):
        raise DicomReadError(path, f"Photometric Interpretation {photometric} with 3 samples per pixel")

    return rows, cols, spp, bits_alloc, bits_stored, frames, photometric


def image_from_dataset(ds, path: str, frame: int = 0) -> LoadedImage:
    """Build a :class:`LoadedImage` from a dataset read with its pixel data."""
    if is_dicomdir(ds):
        raise DicomReadError(path, DICOMDIR_REASON)
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        if ("Rows" in ds and "Columns" in ds) or "SOPClassUID" not in ds:
            # pydicom drops a Pixel Data element that the file ends inside (and, when the
            # delimiter is missing, everything read before it): say so, in the scan's
            # words, from the same check on the same bytes.
            reason = _missing_pixels_reason(path)
            if reason is not None:
                raise DicomReadError(path, reason)
        raise DicomReadError(path, _NON_IMAGE_HINT)
    rows, cols, spp, bits_alloc, bits_stored, frames, photometric = image_pixel_module(ds, path)
    if not 0 <= frame < frames:
        raise DicomReadError(path, f"frame {frame} requested, the file has {frames}")

    ts = _transfer_syntax(ds)
    if ts in NATIVE_SYNTAXES and isinstance(ds.get("PixelData"), bytes):
        need = native_length(rows, cols, frames, spp, bits_alloc, photometric)
        if len(ds.PixelData) < need:
            raise DicomReadError(path, short_native_reason(len(ds.PixelData), need))
    arr = _decode(ds, path, ts, frame, frames)
    if arr.ndim == 3 and spp == 1 and arr.shape[-1] not in (3, 4):
        arr = arr[0]
    expected = (rows, cols) if spp == 1 else (rows, cols, 3)
    if photometric == "PALETTE COLOR":
        arr = _apply_palette(ds, arr, path)
        spp = 3
        expected = (rows, cols, 3)
    if tuple(arr.shape) != expected:
        raise DicomReadError(path, f"decoded pixel array has shape {arr.shape}, the header declares {expected}")

    header = header_from_dataset(ds)
    # Enhanced multi-frame objects keep rescale, window and pixel spacing per frame in their
    # functional groups (PS3.3 C.7.6.16); classic objects answer from the top level.
    fa = FrameAttributes(ds, frame)
    geometry = geometry_from_dataset(fa)
    if spp == 3:
        rgb = _to_rgb8(arr, bits_stored)
        img = LoadedImage(
            path=path, stored=rgb, modality=None, photometric=photometric, is_color=True,
            bits_stored=bits_stored, header=header, geometry=geometry, frame=frame,
            n_frames=frames, transfer_syntax=ts, kind="dicom",
        )
        img.auto_preset = WindowPreset("Full range", 127.5, 256.0, "LINEAR_EXACT", "full", "Colour image: shown as stored")
        return img

    stored = arr
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1

    # Modality LUT (PS3.3 C.11.1): a Modality LUT Sequence wins over Rescale Slope/Intercept.
    slope = _rescale_value(fa, "RescaleSlope", "(0028,1053)", 1.0, path)
    intercept = _rescale_value(fa, "RescaleIntercept", "(0028,1052)", 0.0, path)
    if slope == 0.0:
        raise DicomReadError(path, "Rescale Slope (0028,1053) is 0: every pixel would map to the intercept")
    units = _s(fa.get("RescaleType"))
    mlut = fa.get("ModalityLUTSequence")
    modality = None
    if mlut:
        try:
            item = mlut[0]
            desc = [int(v) for v in item.LUTDescriptor]
            modality = apply_lut(stored, desc, _lut_data(item, desc))
            units = _s(item.get("ModalityLUTType")) or units
            slope, intercept = 1.0, 0.0
        except Exception:  # noqa: BLE001 - fall back to rescale, as most viewers do
            modality = None
    if modality is None:
        modality = apply_rescale(stored, slope, intercept)
    if not units and header.modality == "CT":
        units = "HU"

    padding_mask = _padding_mask(ds, stored, signed)
    presets, luts = presets_from_dataset(fa)
    c, w = robust_window(modality, padding_mask)
    auto = WindowPreset(
        "Auto", c, w, "LINEAR", "auto",
        "0.5–99.5 percentile of the non-padding pixels (the file has no window)" if not presets
        else "0.5–99.5 percentile of the non-padding pixels",
    )
    pls = _s(ds.get("PresentationLUTShape")).upper()
    # MONOCHROME1 and Presentation LUT Shape INVERSE describe the same single inversion: DX
    # requires INVERSE with MONOCHROME1 (PS3.3 C.8.11.7.1.1). Applying both would undo it.
    invert = photometric == "MONOCHROME1" or pls == "INVERSE"
    return LoadedImage(
        path=path, stored=stored, modality=modality, photometric=photometric, is_color=False,
        bits_stored=bits_stored, header=header, presets=presets, voi_luts=luts, invert=invert,
        padding_mask=padding_mask, geometry=geometry, units=units, rescale_slope=float(slope),
        rescale_intercept=float(intercept), frame=frame, n_frames=frames, transfer_syntax=ts,
        kind="dicom", auto_preset=auto,
    )


#: Transfer syntaxes newer than the installed pydicom knows, with what would decode them.
_JXL_HINT = (
    "pydicom has no JPEG XL decoder plugin yet (pydicom/pydicom#2214); decompress the file "
    "to an uncompressed transfer syntax with another DICOM toolkit"
)
_UNKNOWN_TS_HINTS = {
    "1.2.840.10008.1.2.4.110": ("JPEG XL Lossless", _JXL_HINT),
    "1.2.840.10008.1.2.4.111": ("JPEG XL JPEG Recompression", _JXL_HINT),
    "1.2.840.10008.1.2.4.112": ("JPEG XL", _JXL_HINT),
}


def _decoder_problem(ts: str) -> str | None:
    """Why no installed plugin can decode ``ts``, or ``None`` when one can (or may).

    Asked *before* decoding so that a corrupt JPEG 2000 stream is reported as corrupt, not
    as a missing package, and an unknown syntax never reaches pydicom's ``ValueError``.
    """
    from pydicom.uid import UID

    uid = UID(ts)
    if ts in _UNKNOWN_TS_HINTS:
        name, hint = _UNKNOWN_TS_HINTS[ts]
        return f"transfer syntax {name} ({ts}) cannot be decoded: {hint}"
    if not uid.is_transfer_syntax:
        return (f"transfer syntax {ts} is not a DICOM transfer syntax known to pydicom "
                "(private or newer than this pydicom): no decoder is available")
    if not uid.is_compressed:
        return None
    try:
        from pydicom.pixels import get_decoder

        decoder = get_decoder(uid)
    except NotImplementedError:
        return (f"transfer syntax {_ts_name(ts)} is not supported by pydicom's pixel decoders "
                "(e.g. video); no image can be shown")
    if not decoder.is_available:
        hint = _DECODER_HINTS.get(ts, "a pydicom decoding plugin for it")
        return f"transfer syntax {_ts_name(ts)} cannot be decoded here; install {hint}"
    return None


def _decode(ds, path: str, ts: str, frame: int, frames: int) -> np.ndarray:
    problem = _decoder_problem(ts)
    if problem is not None:
        raise UnsupportedTransferSyntaxError(path, problem)
    check_codestream(ds, path, ts, int(ds.get("SamplesPerPixel", 1) or 1))
    try:
        if frames > 1:
            from pydicom.pixels import pixel_array

            return np.asarray(pixel_array(ds, index=frame))
        return np.asarray(ds.pixel_array)
    except MemoryError:
        raise ImageTooLargeError(path, "not enough memory to decode the pixel data") from None
    except Exception as e:  # noqa: BLE001 - corrupt pixel data raises anything
        msg = decoder_message(e)
        raise DicomReadError(path, f"pixel data could not be decoded ({_ts_name(ts)}): {msg}") from None


def decoder_message(e: BaseException, max_line: int = 300) -> str:
    """A decoder's exception as one line, keeping every line of it.

    pydicom reports a failed decode as a header line followed by one indented line per
    plugin ("Unable to decode as exceptions were raised by all available plugins:" /
    "  pylibjpeg: ..." / "  pillow: ..."); each plugin's reason is what tells the reader
    which package or which defect it is, so they are joined with "; " rather than dropped.
    """
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    lines = [ln if len(ln) <= max_line else ln[: max_line - 1] + "…" for ln in lines]
    if len(lines) == 1:
        return lines[0]
    return f"{lines[0].rstrip(':')}: " + "; ".join(lines[1:])


def _apply_palette(ds, arr: np.ndarray, path: str) -> np.ndarray:
    """PALETTE COLOR indices through the palette, as 8-bit RGB.

    The entries have the palette's own depth (third value of the LUT Descriptor, 8 or 16
    bits: PS3.3 C.7.6.3.1.5), not Bits Stored's: an 8-bit image with a 16-bit palette
    scaled by Bits Stored renders white.
    """
    try:
        from pydicom.pixels import apply_color_lut

        rgb = np.asarray(apply_color_lut(arr, ds))
    except Exception as e:  # noqa: BLE001
        raise DicomReadError(path, f"PALETTE COLOR lookup tables unusable: {e}") from None
    return _to_rgb8(rgb, palette_bits(ds))


def palette_bits(ds) -> int:
    """Bits per palette entry (8 or 16) from the Red LUT Descriptor; 8 when an old file
    declares 16 but every entry of its palette fits in 8 bits (seen in the wild)."""
    from pydicom.pixels import apply_color_lut

    desc = ds.RedPaletteColorLookupTableDescriptor
    bits = int(desc[2])
    if bits > 8:
        n = int(desc[0]) or 65536  # 0 means 2**16 entries
        first = int(desc[1])
        dtype = np.uint16 if first + n <= 65536 else np.int32
        lut = np.asarray(apply_color_lut(np.arange(first, first + n, dtype=dtype), ds))
        if int(lut.max()) <= 255:
            bits = 8
    return 16 if bits > 8 else 8


def _to_rgb8(arr: np.ndarray, bits_stored: int) -> np.ndarray:
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    top = float(2 ** min(bits_stored, 16) - 1)
    return np.clip(arr.astype(np.float32) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _padding_mask(ds, stored: np.ndarray, signed: bool) -> np.ndarray | None:
    """Pixel Padding Value (0028,0120) [and Range Limit (0028,0121)], PS3.3 C.7.5.1.1.2."""
    pad = ds.get("PixelPaddingValue")
    if pad is None:
        return None
    try:
        pad = int(pad if not isinstance(pad, (bytes, bytearray)) else int.from_bytes(pad[:2], "little", signed=signed))
    except (TypeError, ValueError):
        return None
    limit = ds.get("PixelPaddingRangeLimit")
    if limit is not None:
        try:
            limit = int(limit)
            lo, hi = min(pad, limit), max(pad, limit)
            mask = (stored >= lo) & (stored <= hi)
        except (TypeError, ValueError):
            mask = stored == pad
    else:
        mask = stored == pad
    return mask if mask.any() else None


def _image_file_dims(data: np.ndarray) -> tuple[int, int, int, int] | None:
    """(height, width, channels, bits) from a PNG's IHDR or a JPEG's SOF marker, read before
    decoding so a hostile header is refused before OpenCV allocates for it; ``None`` when
    the header can't be found (OpenCV then reports the file as undecodable)."""
    b = data[: 1 << 16].tobytes()
    if b[:8] == b"\x89PNG\r\n\x1a\n" and len(b) >= 26 and b[12:16] == b"IHDR":
        w = int.from_bytes(b[16:20], "big")
        h = int.from_bytes(b[20:24], "big")
        depth = b[24]
        channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(b[25], 4)
        return h, w, channels, max(8, depth)
    return jpeg_sof_dims(b)


def load_image_file(path: str) -> LoadedImage:
    """A PNG/JPEG radiograph (the NIH ChestX-ray14 format): 8- or 16-bit, gray or colour."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode: unicode-safe paths
    except PermissionError as e:
        raise DicomReadError(path, f"permission denied: {e.strerror or e}") from None
    except OSError as e:
        raise DicomReadError(path, f"cannot read: {e.strerror or e}") from None
    if data.size == 0:
        raise DicomReadError(path, "empty file (0 bytes)")
    dims = _image_file_dims(data)
    if dims is not None:
        h, w, channels, depth = dims
        _check_size(path, h, w, channels, 1, depth)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise DicomReadError(path, "not a decodable PNG/JPEG image (corrupt or truncated)")
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = arr[:, :, :3]
        b, g, r = arr[:, :, 0], arr[:, :, 1], arr[:, :, 2]
        if np.array_equal(b, g) and np.array_equal(g, r):
            arr = np.ascontiguousarray(b)
        else:
            arr = np.ascontiguousarray(arr[:, :, ::-1])  # OpenCV is BGR; we are RGB everywhere
    stem = Path(path).name
    header = ImageHeader(
        series_description=stem,
        sop_instance_uid="",
        modality="",
    )
    bits = 16 if arr.dtype == np.uint16 else 8
    if arr.ndim == 3:
        img = LoadedImage(path=path, stored=_to_rgb8(arr, bits), modality=None, photometric="RGB",
                          is_color=True, bits_stored=8, header=header, kind="image")
        img.auto_preset = WindowPreset("Full range", 127.5, 256.0, "LINEAR_EXACT", "full", "Colour image: shown as stored")
        return img
    modality = arr.astype(np.float32)
    c, w = robust_window(modality)
    auto = WindowPreset("Auto", c, w, "LINEAR", "auto", "0.5–99.5 percentile of the pixels")
    presets = []
    if bits == 8:
        # An 8-bit PNG/JPEG is already a rendered image: its natural window is the full range.
        presets.append(WindowPreset("As stored (0–255)", 127.5, 256.0, "LINEAR_EXACT", "full",
                                    "8-bit image file: displayed as stored"))
    return LoadedImage(path=path, stored=arr, modality=modality, photometric="MONOCHROME2", is_color=False,
                       bits_stored=bits, header=header, presets=presets, kind="image", auto_preset=auto)
