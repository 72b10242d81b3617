"""The project's own error types.

Every message names the file (or the tag) and the rule that was broken, in the style of
pydicom's "The (0028,1051) Window Width must be greater than or equal to 1...".
"""

from __future__ import annotations

import os


class CxrError(Exception):
    """Base class of every error cxrviewer raises on purpose.

    Parameters
    ----------
    path
        The file concerned, or ``None`` when the error is not about one file.
    reason
        One line saying what is wrong, without the path.
    """

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class DicomReadError(CxrError):
    """A file that cannot be read as an image (not DICOM, truncated, no pixel data...)."""


class UnsupportedTransferSyntaxError(DicomReadError):
    """Pixel data in a transfer syntax that no installed decoder handles."""


class ImageTooLargeError(DicomReadError):
    """An image whose declared size exceeds :data:`cxrviewer.core.limits.MAX_PIXEL_BYTES`."""


class ScanPathError(CxrError):
    """The path given to a scan does not exist or cannot be read at all."""
