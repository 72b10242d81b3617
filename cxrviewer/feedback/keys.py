"""Which image a call is about, and who made it.

A reader's call belongs to the *pixels*, never to a path or a UID: a renamed file, or a copy
re-encoded losslessly in another transfer syntax with new UIDs, is the same image and keeps
its calls. The key is the model-free part of the app's content key
(:func:`cxrviewer.ml.results.pixel_digest`: decoded stored values plus how they are read)
and the frame number. It deliberately leaves the model identity out, unlike the results
cache's :func:`~cxrviewer.ml.results.content_key`: a call made under one model must still be
found after the site activates the next one (that is what it is for). The model's own
content key at the moment of the call is kept in the call's model output.
"""

from __future__ import annotations

import configparser
import getpass
import os
from pathlib import Path

from cxrviewer.core.hashing import sha256_parts
from cxrviewer.core.types import LoadedImage
from cxrviewer.ml.results import KEY_VERSION, pixel_digest

#: the settings key (``settings.ini``, section ``feedback``) the viewer writes the reader's name to
READER_SETTING = "feedback/reader"
#: environment override of the reader's name (scripts, tests)
READER_ENV = "CXRVIEWER_READER"


def image_key(image: LoadedImage | str, frame: int | None = None) -> str:
    """The feedback key of one frame: ``"i:" + sha256(pixel digest, frame)``.

    Parameters
    ----------
    image
        The decoded frame, or its :func:`~cxrviewer.ml.results.pixel_digest` when the caller
        has it memoised (the viewer's ``ImageKeys`` does).
    frame
        The frame number; defaults to ``image.frame`` (0 for a digest).
    """
    if isinstance(image, str):
        digest, fr = image, 0 if frame is None else int(frame)
    else:
        digest, fr = pixel_digest(image), int(image.frame if frame is None else frame)
    return "i:" + sha256_parts(KEY_VERSION, "feedback", digest, str(fr))


def load_keyed(path: str | os.PathLike, frame: int = 0) -> tuple[str, LoadedImage]:
    """Decode ``path`` (DICOM, PNG, JPEG) and return ``(image_key, image)``.

    Raises :class:`~cxrviewer.core.errors.CxrError` (naming the file) when it is unreadable.
    """
    from cxrviewer.core.dicom_io import load_image

    img = load_image(path, frame)
    return image_key(img, frame), img


def _settings_reader(settings_file: Path) -> str:
    """The reader's name from the viewer's ``settings.ini`` (QSettings INI format), or ''."""
    cp = configparser.ConfigParser(interpolation=None)
    try:
        cp.read(settings_file, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return ""  # a broken settings file must not stop a reader from recording a call
    section, _, option = READER_SETTING.partition("/")
    value = cp.get(section, option, fallback="").strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':  # QSettings quotes values with commas
        value = value[1:-1]
    return value.strip()


def default_reader(settings_file: str | os.PathLike | None = None) -> str:
    """Who is reading: ``$CXRVIEWER_READER``, else the viewer's setting ``feedback/reader``,
    else the operating-system user (a shared workstation login still separates readers who set
    their name)."""
    env = os.environ.get(READER_ENV, "").strip()
    if env:
        return env
    if settings_file is None:
        from cxrviewer.paths import user_data_dir

        settings_file = user_data_dir() / "settings.ini"
    name = _settings_reader(Path(settings_file))
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return f"uid{os.getuid()}" if hasattr(os, "getuid") else "reader"
