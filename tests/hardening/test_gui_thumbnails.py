"""Big folders stay bounded in the GUI: the thumbnail cache (and the browser's icons made from
it) is an LRU with a size limit, however many thumbnails are made."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")

from PIL import Image  # noqa: E402

from cxrviewer.core.synthetic import chest_like, make_dataset, write_dataset  # noqa: E402


def _folder(tmp_path, n: int) -> list[str]:
    d = tmp_path / "big"
    d.mkdir()
    out = []
    for k in range(n):
        if k % 2:
            p = d / f"img{k:03d}.png"
            Image.fromarray(chest_like(24, 20, bits=8, seed=k).astype(np.uint8)).save(p)
        else:
            p = d / f"img{k:03d}.dcm"
            write_dataset(make_dataset(chest_like(24, 20, seed=k), instance_number=k), p)
        out.append(str(p))
    return out


def test_thumbnail_cache_is_lru_bounded(qtbot, tmp_path):
    from cxrviewer.ui.common.loaders import ThumbnailLoader

    paths = _folder(tmp_path, 14)
    bound = 5
    loader = ThumbnailLoader(size=16, max_items=bound)
    made = []
    loader.ready.connect(lambda p, _q: made.append(p))
    try:
        for p in paths[:10]:
            assert loader.get(p) is None  # queued, not made on the GUI thread
        qtbot.waitUntil(lambda: len(made) == 10, timeout=30000)
        assert len(loader.cache) == bound
        assert list(loader.cache) == paths[5:10]  # the most recently made ones
        # a hit refreshes an entry: it survives the next evictions, the older ones go
        assert loader.get(paths[5]) is not None
        for p in paths[10:12]:
            loader.get(p)
        qtbot.waitUntil(lambda: len(made) == 12, timeout=30000)
        assert len(loader.cache) == bound
        assert list(loader.cache) == [paths[8], paths[9], paths[5], paths[10], paths[11]]
        assert all(q.width() <= 16 and q.height() <= 16 for q in loader.cache.values())
    finally:
        loader.shutdown()


def test_browser_thumbnails_and_icons_stay_within_the_bound(qtbot, tmp_path):
    """The real study browser over a folder with more images than the bound."""
    from cxrviewer.ui.app import create_window

    paths = _folder(tmp_path, 16)
    w = create_window()
    qtbot.addWidget(w)
    w.resize(900, 1400)  # tall: many rows on screen at once
    w.show()
    qtbot.waitExposed(w)
    try:
        thumbs = w.browser.thumbs
        thumbs.max_items = 6
        made = []
        thumbs.ready.connect(lambda p, _q: made.append(p))
        with qtbot.waitSignals([w.scanFinished, w.imageLoaded], timeout=30000, order="none"):
            w.open_path(tmp_path / "big")
        assert len(w.browser.image_paths()) == len(paths)
        for p in w.browser.image_paths():  # as if the user scrolled through all of them
            thumbs.get(p)
        qtbot.waitUntil(lambda: len(set(made)) == len(paths), timeout=60000)
        qtbot.wait(50)
        assert len(thumbs.cache) == 6
        assert len(w.browser.model._icons) <= 6
    finally:
        w.shutdown()
        w.close()
