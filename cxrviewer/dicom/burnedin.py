"""Burned-in text: which images may carry it in their pixels, and blanking the regions the
user marks (``--mask-region X Y W H``; the viewer's rectangle tool calls the same API).

A de-identified copy of an image whose pixels may carry text (an ultrasound's patient name
and institution in its header bar, a screen capture's) is refused unless the user blanks
the text regions: nothing here can read pixels, so the masks are the user's assertion that
the text is covered. With masks, Burned In Annotation says NO, Patient Identity Removed YES,
and the Deidentification Method records the Clean Pixel Data Option with the regions and
that they are the user's assertion (PS3.15 E.3.1), so a receiver knows what was done and by whom.

Qt-free: the viewer's rectangle tool (UI lane) turns a drawn rectangle into a
:class:`MaskRegion` in image pixel coordinates and calls :func:`burned_in_risk` /
:func:`mask_array` like the CLI does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cxrviewer.dicom.common import DicomObjectError

#: Modalities whose images commonly carry text in the pixels (PS3.15 E.3.1's examples: US,
#: secondary capture, screen shots), and the SOP classes of Secondary Capture.
TEXT_MODALITIES = frozenset({"US", "SC", "OT", "XC"})
_SC_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.7"  # SC Image Storage and its multi-frame classes


@dataclass(frozen=True)
class MaskRegion:
    """A rectangle to blank, in image pixel coordinates: ``x`` = first column, ``y`` = first
    row, ``w`` columns by ``h`` rows (the image's stored orientation, every frame)."""

    x: int
    y: int
    w: int
    h: int

    def __post_init__(self) -> None:
        for name in ("x", "y", "w", "h"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise ValueError(f"mask region {name} must be a whole number of pixels, not {v!r}")
        if self.x < 0 or self.y < 0:
            raise ValueError(f"mask region {self}: x and y must be >= 0")
        if self.w < 1 or self.h < 1:
            raise ValueError(f"mask region {self}: width and height must be >= 1")

    @classmethod
    def parse(cls, values: Sequence[float | str]) -> MaskRegion:
        """From ``X Y W H`` as typed (``--mask-region 0 0 800 60``)."""
        if len(values) != 4:
            raise ValueError(f"a mask region is X Y W H (4 numbers), got {len(values)}")
        nums = []
        for v in values:
            f = float(v)
            if not f.is_integer():
                raise ValueError(f"mask region values are whole pixels, not {v}")
            nums.append(int(f))
        return cls(*nums)

    def check_inside(self, rows: int, cols: int) -> None:
        """Refuse a region that does not lie inside a ``rows`` x ``cols`` image (a typo there
        would leave the text in place)."""
        if self.x + self.w > cols or self.y + self.h > rows:
            raise ValueError(f"mask region {self.text()} lies outside the {cols}x{rows} image")

    def text(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"


def regions_text(masks: Sequence[MaskRegion]) -> str:
    """``"x,y,w,h; ..."`` for Deidentification Method."""
    return "; ".join(m.text() for m in masks)


def burned_in_risk(ds) -> str | None:
    """Why the pixels of ``ds`` may carry burned-in text, or ``None`` when they are not
    expected to.

    Burned In Annotation YES always counts; for US, SC, OT and XC (by modality or SOP class)
    so does its absence. An explicit NO from the source is believed.
    """
    bia = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if bia == "YES":
        return "Burned In Annotation is YES"
    modality = str(ds.get("Modality", "") or "").strip().upper()
    sop = str(ds.get("SOPClassUID", "") or "")
    kind = None
    if modality in TEXT_MODALITIES:
        kind = f"a {modality} image"
    elif sop.startswith(_SC_CLASS_PREFIX):
        kind = "a Secondary Capture"
    if kind and bia != "NO":
        return f"{kind} without Burned In Annotation NO"
    return None


def refusal(path, reason: str) -> DicomObjectError:
    """The one-line refusal for a de-identified copy without masks."""
    return DicomObjectError(path, f"not de-identified: its pixels may carry burned-in text ({reason}); "
                                  "blank the text with --mask-region X Y W H (repeatable)")


def check_burned_in(ds, masks: Sequence[MaskRegion], path=None) -> bool:
    """Whether the de-identified pixels are known to carry no identifying text.

    Returns ``True`` when the source is not expected to carry text, or the user blanked
    regions (their assertion). Raises :class:`DicomObjectError` (one line, naming burned-in
    text as the reason) when it may carry text and no region is masked.
    """
    reason = burned_in_risk(ds)
    if reason is None:
        return True
    if not masks:
        raise refusal(path, reason)
    rows, cols = int(ds.Rows), int(ds.Columns)
    for m in masks:
        m.check_inside(rows, cols)
    return True


def blank_value(photometric: str, dtype, bits_stored: int | None = None, signed: bool = False,
                data: np.ndarray | None = None):
    """The stored value that displays black: the lowest for MONOCHROME2 and colour, the
    highest for MONOCHROME1 (the image's own extreme when ``data`` is given)."""
    if photometric == "MONOCHROME1":
        if data is not None and data.size:
            return data.max()
        bits = int(bits_stored or np.iinfo(dtype).bits)
        return (2 ** (bits - 1) - 1) if signed else (2 ** bits - 1)
    if photometric.startswith("MONOCHROME") and data is not None and data.size:
        return data.min()
    return 0


def mask_array(arr: np.ndarray, masks: Sequence[MaskRegion], value=0, *, frames: bool = False) -> np.ndarray:
    """A copy of ``arr`` with every region set to ``value``.

    ``arr``: ``(rows, cols)`` or ``(rows, cols, samples)``; with ``frames`` the first axis
    is the frame (every frame is blanked).
    """
    out = np.array(arr, copy=True)
    rows, cols = (out.shape[1:3] if frames else out.shape[:2])
    for m in masks:
        m.check_inside(rows, cols)
        if frames:
            out[:, m.y:m.y + m.h, m.x:m.x + m.w, ...] = value
        else:
            out[m.y:m.y + m.h, m.x:m.x + m.w, ...] = value
    return out


def _darkest_palette_index(ds) -> int:
    from pydicom.pixels import apply_color_lut

    desc = ds.RedPaletteColorLookupTableDescriptor
    n, first = int(desc[0]) or 65536, int(desc[1])
    idx = np.arange(first, first + n, dtype=np.uint16 if first + n <= 65536 else np.int32)
    lut = np.asarray(apply_color_lut(idx, ds)).astype(np.int64)
    return int(idx[int(np.argmin(lut.sum(axis=-1)))])


def mask_dataset_pixels(ds, masks: Sequence[MaskRegion]) -> None:
    """Blank ``masks`` in every frame of ``ds``'s Pixel Data, in place.

    The pixels are decoded (compressed sources included) and written back uncompressed in
    Explicit VR Little Endian: YBR sources become RGB, a palette image keeps its palette (the
    regions get its darkest entry), lossy history (Lossy Image Compression) is kept.
    """
    from pydicom.uid import ExplicitVRLittleEndian

    lossy_history(ds, str(ds.file_meta.get("TransferSyntaxUID", "")))
    arr = ds.pixel_array  # YBR -> RGB by pydicom's default conversion
    frames = int(ds.get("NumberOfFrames", 1) or 1) > 1
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if photometric == "PALETTE COLOR":
        value = _darkest_palette_index(ds)
    else:
        value = blank_value(photometric, arr.dtype, ds.get("BitsStored"),
                            int(ds.get("PixelRepresentation", 0) or 0) == 1, arr)
    out = mask_array(arr, masks, value, frames=frames)
    if int(ds.get("SamplesPerPixel", 1) or 1) == 3:
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PixelData = np.ascontiguousarray(out).tobytes()
    ds["PixelData"].VR = "OW" if out.dtype.itemsize > 1 else "OB"
    ds["PixelData"].is_undefined_length = False


def mask_loaded_image(img, masks: Sequence[MaskRegion]):
    """A copy of a ``LoadedImage`` (one decoded frame) with ``masks`` blanked in what the
    renderer draws from (stored values, and the Modality LUT output for grayscale), so a
    rendering of it -- Secondary Capture or PNG -- shows black there at any window."""
    import dataclasses

    if not masks:
        return img
    mono1 = bool(getattr(img, "invert", False)) and not img.is_color
    stored_value = 0 if img.is_color else (img.stored.max() if mono1 else img.stored.min())
    changes = {"stored": mask_array(img.stored, masks, stored_value)}
    if img.modality is not None:
        changes["modality"] = mask_array(img.modality, masks, img.modality.max() if mono1 else img.modality.min())
    return dataclasses.replace(img, **changes)


def lossy_history(ds, source_ts: str) -> None:
    """Keep Lossy Image Compression YES when decoded pixels from a lossy transfer syntax are
    written uncompressed (PS3.3 C.7.6.1.1.5: once lossy, always lossy)."""
    lossy = {"1.2.840.10008.1.2.4.50": "ISO_10918_1", "1.2.840.10008.1.2.4.51": "ISO_10918_1",
             "1.2.840.10008.1.2.4.81": "ISO_14495_1", "1.2.840.10008.1.2.4.91": "ISO_15444_1",
             "1.2.840.10008.1.2.4.203": "ISO_15444_15"}
    if source_ts in lossy and str(ds.get("LossyImageCompression", "")) != "01":
        ds.LossyImageCompression = "01"
        if "LossyImageCompressionMethod" not in ds:
            ds.LossyImageCompressionMethod = lossy[source_ts]
