"""Facts about a file's Pixel Data that can be checked without decoding it.

Shared by the header-only scan (:mod:`cxrviewer.core.study_index`) and the loader
(:mod:`cxrviewer.core.dicom_io`), so both give a truncated file the same reason:

* :func:`native_length` - the bytes an uncompressed image needs (PS3.5 8.1.1, with the 4:2:2
  subsampling of YBR_FULL_422, PS3.3 C.7.6.3.1.2);
* :func:`truncation_reason` - whether the file ends inside its (native or encapsulated) pixel
  data, from the file's size or by walking the encapsulated items (PS3.5 A.4) with seeks only;
* :func:`check_codestream` - a JPEG / JPEG 2000 codestream declaring an image over the limits.
"""

from __future__ import annotations

import os
import struct

from cxrviewer.core import limits
from cxrviewer.core.errors import ImageTooLargeError

#: Uncompressed transfer syntaxes whose pixel data length follows from the header.
NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
_IMPLICIT_VR_LE = "1.2.840.10008.1.2"
#: Deflated syntaxes: the file holds a compressed dataset, so its size says nothing here.
_DEFLATED = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1"}

J2K_SYNTAXES = {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.92",
                "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
                "1.2.840.10008.1.2.4.203"}
JPEG_SYNTAXES = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                 "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}

_ITEM = (0xFFFE, 0xE000)
_SEQ_DELIM = (0xFFFE, 0xE0DD)
_UNDEFINED = 0xFFFFFFFF
#: Most encapsulated items walked before giving up (a fragment per frame, a few per frame
#: at most; limits.MAX_FRAMES bounds the frames).
_MAX_ITEMS = 64 * limits.MAX_FRAMES


def native_length(rows: int, cols: int, frames: int, spp: int, bits_allocated: int,
                  photometric: str = "") -> int:
    """Bytes of uncompressed Pixel Data the Image Pixel attributes declare (without the
    padding byte to an even length).

    1-bit data is packed across pixel and frame boundaries (PS3.5 8.1.1). YBR_FULL_422
    stores two luminance samples and one pair of chrominance samples per two pixels,
    i.e. two samples per pixel instead of three (PS3.3 C.7.6.3.1.2).
    """
    frames = max(frames, 1)
    if bits_allocated == 1:
        return (rows * cols * frames * spp + 7) // 8
    n = rows * cols * frames * spp * max(1, (bits_allocated + 7) // 8)
    if spp == 3 and photometric.strip().upper() == "YBR_FULL_422":
        n = n // 3 * 2
    return n


#: Rows/Columns but no Pixel Data element at all (the read ended at the end of the file).
MISSING_PIXELS_REASON = ("truncated: Rows/Columns declare an image but the file ends before its "
                         "Pixel Data (7FE0,0010)")


def short_native_reason(present: int, needed: int) -> str:
    """The one wording of a short uncompressed pixel data, for the scan and the loader."""
    return (f"truncated: the pixel data has {present} of the {needed} bytes its header declares "
            "(the file ends early)")


def _header_ints(ds) -> tuple[int, int, int, int, int, str] | None:
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.get("BitsAllocated", 16) or 16)
        frames = max(int(ds.get("NumberOfFrames", 1) or 1), 1)
        photometric = str(ds.get("PhotometricInterpretation", "") or "")
    except (AttributeError, TypeError, ValueError):
        return None  # the loader reports inconsistent Image Pixel attributes precisely
    return rows, cols, frames, spp, bits, photometric


def truncation_reason(path: str, ds, header_end: int | None, ts: str) -> str | None:
    """A reason when the file ends inside its pixel data, else ``None``.

    Parameters
    ----------
    ds
        The dataset read with ``stop_before_pixels=True``.
    header_end
        The file offset where that read stopped: the Pixel Data element's tag.
    ts
        The transfer syntax UID.
    """
    if header_end is None or ts in _DEFLATED:
        return None
    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    if size <= header_end:
        return MISSING_PIXELS_REASON if "Rows" in ds and "Columns" in ds else None
    if ts in NATIVE_SYNTAXES:
        dims = _header_ints(ds)
        if dims is None:
            return None
        need = native_length(*dims)
        # element header: tag + length (8 bytes, implicit VR) or tag + VR + 2 reserved + length (12)
        present = size - header_end - (8 if ts == _IMPLICIT_VR_LE else 12)
        if present < need:
            return short_native_reason(max(present, 0), need)
        return None
    return _encapsulated_truncation(path, header_end, size)


def _encapsulated_truncation(path: str, header_end: int, size: int) -> str | None:
    """Walk the encapsulated Pixel Data items (PS3.5 A.4) by their lengths; seeks only.

    Reports only the file *ending* inside the items or before the Sequence Delimitation Item;
    anything else unexpected (a malformed item tag) is left to the decoder to describe.
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(header_end)
            head = fh.read(12)
            if len(head) < 12:
                return "truncated: the file ends inside the Pixel Data (7FE0,0010) element header"
            group, elem = struct.unpack("<HH", head[:4])
            vr = head[4:6]
            (length,) = struct.unpack("<I", head[8:12])
            if (group, elem) != (0x7FE0, 0x0010) or vr not in (b"OB", b"OW") or length != _UNDEFINED:
                return None  # not encapsulated after all: the decoder will say what it is
            pos = header_end + 12
            fragments = -1  # the first item is the Basic Offset Table
            for _ in range(_MAX_ITEMS):
                fh.seek(pos)
                item = fh.read(8)
                if len(item) < 8:
                    return (f"truncated: the encapsulated pixel data ends after {max(fragments, 0)} "
                            "fragment(s), without its Sequence Delimitation Item (FFFE,E0DD)")
                g, e, n = struct.unpack("<HHI", item)
                if (g, e) == _SEQ_DELIM:
                    return None
                if (g, e) != _ITEM or n == _UNDEFINED:
                    return None
                fragments += 1
                pos += 8 + n
                if pos > size:
                    what = "Basic Offset Table" if fragments == 0 else f"fragment {fragments}"
                    return (f"truncated: the file ends inside the encapsulated pixel data "
                            f"({what} declares {n} bytes, {size - (pos - n)} are present)")
    except OSError:
        return None
    return None


def check_codestream(ds, path: str, ts: str, spp: int) -> None:
    """Refuse a compressed first frame whose *codestream* declares an image over the limits.

    The decoders allocate what the JPEG / JPEG 2000 header inside the Pixel Data says, not
    what Rows/Columns say; a file can claim 8x8 in its DICOM header and 60000x60000 in its
    codestream. Mismatches within the limits are left to the shape check after decoding.
    """
    if ts not in J2K_SYNTAXES and ts not in JPEG_SYNTAXES:
        return
    try:
        from pydicom.encaps import generate_fragments

        fragments = generate_fragments(ds.PixelData)
        next(fragments)  # the Basic Offset Table item
        first = next(fragments)[: 1 << 16]
    except Exception:  # noqa: BLE001 - malformed encapsulation: the decoder will say so
        return
    if ts in J2K_SYNTAXES:
        dims = j2k_siz_dims(first)
    else:
        sof = jpeg_sof_dims(first)
        dims = None if sof is None else (sof[0], sof[1])
    if dims is None:
        return
    r, c = dims
    if r > limits.MAX_DIMENSION or c > limits.MAX_DIMENSION or r * c * max(spp, 1) * 4 > limits.MAX_PIXEL_BYTES:
        raise ImageTooLargeError(
            path,
            f"the compressed pixel data declares {r}x{c} pixels (the header says {ds.get('Rows')}x"
            f"{ds.get('Columns')}), over the limit of {limits.MAX_DIMENSION} per side / "
            f"{limits.MAX_PIXEL_BYTES / 2**20:.0f} MiB",
        )


def jpeg_sof_dims(b: bytes) -> tuple[int, int, int, int] | None:
    """(height, width, components, precision) from a JPEG / JPEG-LS SOF marker, or None."""
    if b[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(b):
        if b[i] != 0xFF:
            i += 1
            continue
        marker = b[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        seg = int.from_bytes(b[i + 2 : i + 4], "big")
        if (0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)) or marker == 0xF7:
            depth = b[i + 4]
            h = int.from_bytes(b[i + 5 : i + 7], "big")
            w = int.from_bytes(b[i + 7 : i + 9], "big")
            channels = b[i + 9] if i + 9 < len(b) else 1
            return h, w, max(1, channels), max(8, depth)
        i += 2 + seg
    return None


def j2k_siz_dims(b: bytes) -> tuple[int, int] | None:
    """(height, width) of the image area from a JPEG 2000 SIZ marker (15444-1 A.5.1)."""
    k = b.find(b"\xff\x4f\xff\x51")
    if k < 0 or len(b) < k + 24:
        return None
    siz = k + 4
    xsiz = int.from_bytes(b[siz + 4 : siz + 8], "big")
    ysiz = int.from_bytes(b[siz + 8 : siz + 12], "big")
    xo = int.from_bytes(b[siz + 12 : siz + 16], "big")
    yo = int.from_bytes(b[siz + 16 : siz + 20], "big")
    return max(0, ysiz - yo), max(0, xsiz - xo)
