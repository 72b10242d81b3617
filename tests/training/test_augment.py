"""Anti-shortcut augmentations: each removes the cue it targets, is reproducible from its seed,
and bad flag values are refused with the flag's name."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from training import augment as A
from training.args import get_args_parser


def _image(size: int = 128) -> np.ndarray:
    """A sharp test pattern: fine checkerboard over a gradient (uint8)."""
    yy, xx = np.mgrid[0:size, 0:size]
    g = (xx * 255 // (size - 1)).astype(np.int32)
    board = (((yy // 2) + (xx // 2)) % 2) * 60
    return np.clip(g // 2 + board + 40, 0, 255).astype(np.uint8)


def _sharpness(u8: np.ndarray) -> float:
    import cv2

    return float(cv2.Laplacian(u8.astype(np.float32), cv2.CV_32F).var())


def test_resample_blurs_and_keeps_shape():
    x = _image()
    rng = np.random.default_rng(3)
    outs = [A.resample(x, rng, 0.25) for _ in range(8)]
    for o in outs:
        assert o.shape == x.shape and o.dtype == np.uint8
    # a 2-pixel checkerboard does not survive a downscale below the original size
    assert max(_sharpness(o) for o in outs) < 0.5 * _sharpness(x)


def test_erase_borders_touches_only_the_borders():
    x = _image()
    k = int(0.15 * 128)
    changed_any = False
    for seed in range(20):
        o = A.erase_borders(x, np.random.default_rng(seed), 0.15)
        assert np.array_equal(o[k:-k, k:-k], x[k:-k, k:-k])
        changed_any |= not np.array_equal(o, x)
    assert changed_any


def test_lung_crop_zooms_in_around_the_centre():
    x = np.zeros((128, 128), np.uint8)
    x[60:68, 60:68] = 255  # a bright square at the centre
    o = A.lung_crop(x, np.random.default_rng(1), 0.5)
    assert o.shape == x.shape
    assert (o > 127).sum() > (x > 127).sum()  # magnified
    r, c = np.argwhere(o > 127).mean(axis=0)
    assert abs(r - 63.5) < 16 and abs(c - 63.5) < 16


def test_burn_text_draws_marks():
    x = np.full((128, 128), 100, np.uint8)
    o = A.burn_text(x, np.random.default_rng(5))
    assert ((o == 255) | (o == 0)).sum() > 10 or np.abs(o.astype(int) - 100).sum() > 1000


def test_shortcut_aug_is_reproducible_and_off_by_default():
    x = _image()
    aug = A.ShortcutAug(resolution_p=1.0, border_p=1.0, crop_scale=0.7, text_p=1.0)
    a = aug(x, np.random.default_rng([0, 1, 2]))
    b = aug(x, np.random.default_rng([0, 1, 2]))
    c = aug(x, np.random.default_rng([0, 1, 3]))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not A.ShortcutAug().active
    assert np.array_equal(A.ShortcutAug()(x, np.random.default_rng(0)), x)


def test_flags_parse_and_bad_values_name_the_flag():
    args = get_args_parser().parse_args(["--data", "d", "--out", "o", "--resolution-aug", "0.5",
                                         "--border-erase", "0.4", "--crop-scale", "0.8", "--text-aug", "0.2"])
    aug = A.shortcut_aug_from_args(args)
    assert aug.to_dict() == {"resolution_p": 0.5, "resolution_min": 0.25, "border_p": 0.4, "border_max": 0.15,
                             "crop_scale": 0.8, "text_p": 0.2}
    from cxrviewer.core.errors import CxrError

    with pytest.raises(CxrError, match="--border-erase"):
        A.shortcut_aug_from_args(argparse.Namespace(border_erase=1.5))
    with pytest.raises(CxrError, match="--crop-scale"):
        A.shortcut_aug_from_args(argparse.Namespace(crop_scale=0.1))


def test_cached_dataset_applies_them_to_training_only():
    from training.data import Cache, CachedDataset, Sample

    arr = np.stack([_image(64)] * 2)
    cache = Cache([Sample("a.png", 0, "1"), Sample("b.png", 1, "2")], arr, [])
    aug = A.ShortcutAug(resolution_p=1.0, resolution_min=0.3)
    train = CachedDataset(cache, train=True, hflip=False, rotation=0.0, jitter=0.0, shortcut_aug=aug)
    val = CachedDataset(cache, train=False, shortcut_aug=aug)
    assert not np.array_equal(train[0][0].numpy(), arr[0])
    assert np.array_equal(val[0][0].numpy(), arr[0])
