"""The data plan of a run: which images go to train, validation and test (patient-wise, leak-free)."""

from __future__ import annotations

import numpy as np

from cxrviewer.core.errors import CxrError
from training import data as D


def subsample(samples: list[D.Sample], n: int, seed: int) -> list[D.Sample]:
    """At most ``n`` samples, proportionally from each (split, label) group, seeded."""
    if n <= 0 or len(samples) <= n:
        return samples
    rng = np.random.default_rng(seed)
    groups: dict[tuple, list[D.Sample]] = {}
    for s in samples:
        groups.setdefault((s.split or "", s.label), []).append(s)
    out = []
    for key in sorted(groups):
        g = groups[key]
        k = min(len(g), max(2, round(n * len(g) / len(samples))))
        idx = rng.permutation(len(g))[:k]
        out += [g[i] for i in sorted(idx)]
    return out


def plan_splits(args) -> tuple[dict[str, list[D.Sample]], list[str], list[dict]]:
    """Read every ``--*data`` set and decide train/val/test (patient-wise, leak-free).

    Returns ``(splits, notes, sources)``; with ``--folds`` the ``"train"`` entry is the pool
    that the folds divide.
    """
    from training.layouts import ClassMap

    notes: list[str] = []
    sources: list[dict] = []
    cmap = ClassMap.parse(getattr(args, "class_map", None))

    def read(paths: list[str], role: str) -> list[D.DataSet]:
        out = []
        for i, pth in enumerate(paths):
            ds = D.load_dataset(pth, args.format, images=args.images, class_map=cmap)
            ds.samples = subsample(ds.samples, args.max_images, args.seed + i)
            for n in ds.notes:
                notes.append(f"{pth}: {n}")
            fb = D.feedback_provenance(ds.samples)
            sources.append({"path": str(pth), "role": role, "format": ds.fmt, **D.describe(ds.samples),
                            **({"unmatched_folders": [[f, n] for f, n in ds.unmatched]} if ds.unmatched else {}),
                            **({"feedback": fb} if fb else {})})
            out.append(ds)
        return out

    main_sets = read(args.data, "split")
    extra_train = [s for ds in read(args.train_data, "train") for s in ds.samples]
    val_fixed = [s for ds in read(args.val_data, "val") for s in ds.samples]
    test_fixed = [s for ds in read(args.test_data, "test") for s in ds.samples]
    predefined: dict[str, list[D.Sample]] = {"train": [], "val": [], "test": []}
    free: list[D.Sample] = []
    for ds in main_sets:
        for s in ds.samples:
            (predefined[s.split] if s.split else free).append(s)
        if ds.has_splits:
            notes.append(f"{ds.source}: predefined splits kept ({', '.join(f'{k} {len(v)}' for k, v in D.group_by_split(ds.samples).items())})")
    val_fixed += predefined["val"]
    test_fixed += predefined["test"]
    explicit = args.split is not None
    f_tr, f_va, f_te = args.split if explicit else (0.7, 0.1, 0.2)
    if args.folds:
        if args.val_data:
            raise CxrError(None, "--folds divides the data into validation folds itself: drop --val-data")
        f_va = 0.0
    if val_fixed and not explicit:
        f_va = 0.0
    if test_fixed and not explicit:
        f_te = 0.0
    candidates = free + predefined["train"]
    if candidates and (f_va > 0 or f_te > 0):
        cut = D.split_patients(candidates, (f_tr, f_va, f_te), args.seed)
        notes.append(f"patient-wise stratified split {f_tr:g}/{f_va:g}/{f_te:g} (seed {args.seed}) of {len(candidates)} images")
    else:
        cut = {"train": candidates, "val": [], "test": []}
    splits = {"train": cut["train"] + extra_train, "val": cut["val"] + val_fixed,
              "test": cut["test"] + test_fixed}
    notes += D.remove_leaks(splits)
    return splits, notes, sources


def check_data(args) -> dict:
    """``--check-data``: the data plan of ``args`` without decoding a pixel or importing torch.

    Returns ``{"event": "data", "ok", "message", "splits"}``; ``ok`` is False (and ``message``
    the reason) when a set cannot be read or a split lacks a class. Skipped class-less folders
    are named in the message either way."""
    from training.layouts import ClassMap, unmatched_line

    try:
        splits, notes, sources = plan_splits(args)
    except CxrError as e:
        return {"event": "data", "ok": False, "message": str(e), "splits": {}}
    folders = [(f, n) for src in sources for f, n in src.get("unmatched_folders", [])]
    hint = unmatched_line(folders, ClassMap.parse(getattr(args, "class_map", None)))
    desc = {k: D.describe(v) for k, v in splits.items() if v}
    text = "; ".join(f"{k} {v['images']} images ({v['normal']} normal / {v['abnormal']} abnormal)" for k, v in desc.items())
    try:
        for name in ("train", "val", "test"):
            if splits.get(name) or (name != "test" and not args.folds):
                D.check_two_classes(name, splits.get(name, []), hint)
    except CxrError as e:
        return {"event": "data", "ok": False, "message": str(e), "splits": desc}
    return {"event": "data", "ok": True, "message": text + (f". Warning: {hint}" if hint else ""), "splits": desc}
