"""Labelled chest X-ray sets: discovery, patient-wise splits, an in-memory cache, augmentation.

Formats (detected from what ``--data`` points at, overridable with ``--format``):

``nih``
    NIH ChestX-ray14: ``Data_Entry_2017*.csv[.gz]`` with ``Image Index``, ``Finding Labels``
    and ``Patient ID``, the images anywhere below the CSV's folder. "No Finding" -> Normal,
    anything else -> Abnormal. Rows whose image file is not present are ignored (counted):
    people download a subset of the 112,120 images.
``csv``
    ``path,label[,patient_id][,split]``; ``path`` relative to the CSV's folder; ``label``
    ``normal``/``abnormal`` (or 0/1); ``split`` ``train``/``val``/``valid``/``test``. Other
    columns are ignored, except ``reader`` and ``content_key`` of a reader-feedback export
    (``cxrviewer feedback export``): each sample then remembers its reader, so the run's
    report can say how many labels came from feedback and from whom
    (:func:`feedback_provenance`).
``folders``
    one folder per class with any common name, case-insensitive (``normal/``, ``NORMAL/``,
    ``0_normal/``, ``negative/`` vs ``abnormal/``, ``PNEUMONIA/``, ``1_abnormal/``,
    ``positive/``; ``--class-map`` for others, see :mod:`training.layouts`), optionally already
    split into ``train/``, ``valid/`` or ``val/`` and ``test/``. A folder matching no class is
    skipped and named.

Patient IDs come from the CSV, else from NIH file names (``00000001_000.png`` -> ``1``),
else each image is its own patient (reported). Images are read through the core
(:func:`cxrviewer.core.dicom_io.load_image`: PNG, JPEG, DICOM) and preprocessed with the
one function of the model layer (:func:`cxrviewer.ml.preprocess.prepare_uint8`); training
augments that uint8 array and normalises it with :func:`normalize_batch`, which computes
exactly :func:`cxrviewer.ml.preprocess.normalize`.

No torch import at module level (the data code is usable without it).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cxrviewer.core.errors import CxrError
from training.layouts import ClassMap, images_in, scan_class_folders, unmatched_line

CLASSES = ("Normal", "Abnormal")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom"}
SPLITS = ("train", "val", "test")
_NIH_NAME = re.compile(r"^(\d{8})_(\d{3})\.[A-Za-z]+$")
_NORMAL_WORDS = {"0", "normal", "no finding", "negative", "neg", "false", "healthy"}
_ABNORMAL_WORDS = {"1", "abnormal", "positive", "pos", "true"}
_SPLIT_WORDS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                "validation": "val", "test": "test", "testing": "test"}


class DataError(CxrError):
    """A labelled set that cannot be used (empty, missing column, one class only...)."""


@dataclass(frozen=True)
class Sample:
    """One labelled image. ``patient`` is a string id, unique within a source family."""

    path: str
    label: int
    patient: str
    split: str | None = None  # predefined split from the data ("train"/"val"/"test")
    #: the reader whose call this label is (a reader-feedback export), else None
    reader: str | None = None


@dataclass
class DataSet:
    """The samples of one ``--data`` argument and what was learnt while reading it."""

    source: str
    fmt: str
    samples: list[Sample]
    notes: list[str] = field(default_factory=list)
    #: folders holding images that matched no class (path, image count): skipped, named in
    #: warnings and in the one-class error
    unmatched: list[tuple[str, int]] = field(default_factory=list)

    @property
    def has_splits(self) -> bool:
        return any(s.split for s in self.samples)


# --------------------------------------------------------------------------- discovery

def patient_from_name(path: str | os.PathLike) -> str | None:
    """NIH file names carry the patient: ``00000013_005.png`` -> ``"13"``."""
    m = _NIH_NAME.match(Path(path).name)
    return str(int(m.group(1))) if m else None


def parse_label(value: str, where: str, cmap: ClassMap | None = None) -> int:
    v = str(value).strip().lower()
    if cmap is not None and cmap.label_of(v) is not None:
        return cmap.label_of(v)
    if v in _NORMAL_WORDS:
        return 0
    if v in _ABNORMAL_WORDS:
        return 1
    raise DataError(where, f"label {value!r} is neither normal/0 nor abnormal/1 (map it with --class-map)")


def _open_text(path: Path):
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with _open_text(path) as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = [h.strip() for h in (reader.fieldnames or [])]
    except OSError as e:
        raise DataError(path, f"cannot read the CSV: {e.strerror or e}") from None
    except (csv.Error, UnicodeDecodeError) as e:
        raise DataError(path, f"not a readable CSV: {e}") from None
    rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in rows]
    return header, rows


def _is_nih_csv(name: str) -> bool:
    n = name.lower()
    return n.startswith("data_entry_2017") and (n.endswith(".csv") or n.endswith(".csv.gz"))


def detect_format(path: str | os.PathLike) -> str:
    """``nih``, ``csv`` or ``folders`` from what ``path`` is; raises :class:`DataError`."""
    p = Path(path)
    if not p.exists():
        raise DataError(p, "does not exist")
    if p.is_file():
        if _is_nih_csv(p.name):
            return "nih"
        if p.name.lower().endswith((".csv", ".csv.gz")):
            header, _ = _read_csv(p)
            return "nih" if {"Image Index", "Finding Labels"} <= set(header) else "csv"
        raise DataError(p, "not a CSV file nor a folder (expected labels.csv, Data_Entry_2017.csv or a folder)")
    entries = {c.name.lower(): c for c in p.iterdir()}
    if any(_is_nih_csv(n) for n in entries):
        return "nih"
    if "labels.csv" in entries:
        return "csv"
    return "folders"


def load_dataset(path: str | os.PathLike, fmt: str = "auto", images: str | os.PathLike | None = None,
                 class_map: ClassMap | None = None) -> DataSet:
    """Read the sample list of one labelled set (no pixels decoded yet).

    ``images``: for the NIH layout, the folder holding the images when it is not the CSV's.
    ``class_map``: folder and label names of the classes (default :class:`ClassMap()`).
    """
    p = Path(path)
    cmap = class_map or ClassMap()
    fmt = detect_format(p) if fmt == "auto" else fmt
    if fmt == "nih":
        ds = _load_nih(p, Path(images) if images else None)
    elif fmt == "csv":
        ds = _load_csv(p if p.is_file() else p / "labels.csv", cmap)
    elif fmt == "folders":
        ds = _load_folders(p, cmap)
    else:
        raise DataError(p, f"unknown --format {fmt!r} (auto, nih, csv, folders)")
    if not ds.samples:
        skipped = unmatched_line(ds.unmatched, cmap)
        raise DataError(p, "no labelled images found" + (f": {skipped}" if skipped else " (empty folder or CSV?)"))
    return ds


def _load_nih(p: Path, images: Path | None = None) -> DataSet:
    if p.is_dir():
        cands = sorted(c for c in p.iterdir() if _is_nih_csv(c.name))
        if not cands:
            raise DataError(p, "no Data_Entry_2017.csv in this folder")
        csv_path, root = cands[0], p
    else:
        csv_path, root = p, p.parent
    if images is not None:
        if not images.is_dir():
            raise DataError(images, "--images: not a folder")
        root = images
    header, rows = _read_csv(csv_path)
    for col in ("Image Index", "Finding Labels", "Patient ID"):
        if col not in header:
            raise DataError(csv_path, f"missing column {col!r} (NIH layout needs Image Index, Finding Labels, Patient ID)")
    # The images may sit in images/, images_001/images/, ... : index every image below root once.
    index: dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if Path(f).suffix.lower() in IMAGE_SUFFIXES:
                index.setdefault(f, os.path.join(dirpath, f))
    samples, missing, seen = [], 0, set()
    for i, r in enumerate(rows, start=2):
        name = r["Image Index"]
        fp = index.get(name)
        if fp is None:
            missing += 1
            continue
        if fp in seen:  # the v2020 table repeats some rows
            continue
        seen.add(fp)
        label = 0 if r["Finding Labels"].strip().lower() == "no finding" else 1
        pid = r["Patient ID"].strip()
        if not pid:
            raise DataError(csv_path, f"line {i}: empty Patient ID")
        pid = str(int(pid)) if pid.isdigit() else pid
        samples.append(Sample(fp, label, pid))
    ds = DataSet(str(csv_path), "nih", samples)
    if missing:
        ds.notes.append(f"{missing} of {len(rows)} CSV rows have no image file below {root} (ignored)")
    return ds


def _load_csv(csv_path: Path, cmap: ClassMap | None = None) -> DataSet:
    header, rows = _read_csv(csv_path)
    for col in ("path", "label"):
        if col not in header:
            raise DataError(csv_path, f"missing column {col!r} (expected path,label[,patient_id][,split]; found {', '.join(header) or 'nothing'})")
    root = csv_path.parent
    feedback = {"reader", "content_key"} <= set(header)
    samples, own_patient = [], 0
    for i, r in enumerate(rows, start=2):
        if not r.get("path"):
            raise DataError(csv_path, f"line {i}: empty path")
        fp = r["path"] if os.path.isabs(r["path"]) else str(root / r["path"])
        label = parse_label(r["label"], f"{csv_path}: line {i}", cmap)
        pid = r.get("patient_id") or ""
        if not pid:
            pid = patient_from_name(fp) or ""
        if not pid:
            own_patient += 1
            pid = "img:" + fp
        elif pid.isdigit():
            pid = str(int(pid))
        split = None
        if r.get("split"):
            split = _SPLIT_WORDS.get(r["split"].lower())
            if split is None:
                raise DataError(csv_path, f"line {i}: split {r['split']!r} is not train/val/valid/test")
        samples.append(Sample(fp, label, pid, split, (r.get("reader") or "unknown") if feedback else None))
    ds = DataSet(str(csv_path), "csv", samples)
    if own_patient:
        ds.notes.append(f"{own_patient} images without a patient id: each counted as its own patient")
    if feedback:
        ds.notes += _feedback_notes(rows)
    return ds


def _feedback_notes(rows: list[dict[str, str]]) -> list[str]:
    """Images called by several readers: each call is one sample (same patient, same split)."""
    labels: dict[str, set[str]] = defaultdict(set)
    calls: Counter[str] = Counter()
    for r in rows:
        k = r.get("content_key", "")
        if k:
            labels[k].add(r.get("label", "").lower())
            calls[k] += 1
    multi = sum(1 for n in calls.values() if n > 1)
    if not multi:
        return []
    differ = sum(1 for k, n in calls.items() if n > 1 and len(labels[k]) > 1)
    return [f"reader feedback: {multi} images called by more than one reader ({differ} with different labels); "
            "each call is one sample, all of an image's calls in one split"]


def feedback_provenance(samples: Iterable[Sample]) -> dict | None:
    """How many labels came from reader feedback and from which readers (``None``: none)."""
    readers = Counter(s.reader for s in samples if s.reader is not None)
    if not readers:
        return None
    return {"labels": sum(readers.values()), "readers": dict(sorted(readers.items()))}


def _load_folders(p: Path, cmap: ClassMap) -> DataSet:
    subs = {c.name.lower(): c for c in p.iterdir() if c.is_dir()}
    split_dirs = [(s, subs[n]) for n, s in _SPLIT_WORDS.items() if n in subs]
    parts: list[tuple[str | None, Path]] = list(split_dirs) if split_dirs else [(None, p)]
    samples, own_patient, unmatched = [], 0, []
    for split, d in parts:
        scan = scan_class_folders(d, cmap)
        unmatched += [(str(f), n) for f, n in scan.unmatched]
        if not scan.classes and not scan.unmatched:
            found = sorted(c.name for c in d.iterdir() if c.is_dir())
            raise DataError(d, "no class folders" + (f" (found {', '.join(found)}/)" if found else "")
                            + f": expected one folder per class named {cmap.describe()} (or --class-map)")
        for label, dirs in sorted(scan.classes.items()):
            for cd in dirs:
                for f in images_in(cd):
                    pid = patient_from_name(f)
                    if pid is None:
                        own_patient += 1
                        pid = "img:" + str(f)
                    samples.append(Sample(str(f), label, pid, split))
    ds = DataSet(str(p), "folders", samples, unmatched=unmatched)
    if own_patient:
        ds.notes.append(f"{own_patient} images without an NIH-style name: each counted as its own patient")
    if unmatched:
        ds.notes.append("warning: " + unmatched_line(unmatched, cmap))
    return ds


# --------------------------------------------------------------------------- splits

def _largest_remainder(n: int, fractions: Sequence[float]) -> list[int]:
    raw = [n * f for f in fractions]
    counts = [math.floor(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    # Every split asked for gets at least one patient of each class when there are enough.
    for i, f in enumerate(fractions):
        if f > 0 and counts[i] == 0 and n >= sum(1 for x in fractions if x > 0):
            j = max(range(len(counts)), key=lambda k: counts[k])
            counts[j] -= 1
            counts[i] += 1
    return counts


def patient_labels(samples: Iterable[Sample]) -> dict[str, int]:
    """Per patient: 1 when any of their images is Abnormal (the stratum of the split)."""
    out: dict[str, int] = {}
    for s in samples:
        out[s.patient] = max(out.get(s.patient, 0), s.label)
    return out


def split_patients(samples: Sequence[Sample], fractions: Sequence[float], seed: int,
                   names: Sequence[str] = SPLITS) -> dict[str, list[Sample]]:
    """Stratified patient-wise split: every patient's images land in exactly one split.

    Patients are stratified by :func:`patient_labels`, shuffled with ``seed`` and cut by
    patient count per stratum (largest remainder), so each split keeps the class balance.
    """
    if len(fractions) != len(names):
        raise ValueError("one fraction per split name")
    total = float(sum(fractions))
    fr = [f / total for f in fractions]
    rng = np.random.default_rng(seed)
    plabel = patient_labels(samples)
    assign: dict[str, str] = {}
    for stratum in (0, 1):
        pats = sorted(p for p, lab in plabel.items() if lab == stratum)
        rng.shuffle(pats)
        counts = _largest_remainder(len(pats), fr)
        start = 0
        for name, c in zip(names, counts, strict=True):
            for pt in pats[start : start + c]:
                assign[pt] = name
            start += c
    out: dict[str, list[Sample]] = {n: [] for n in names}
    for s in samples:
        out[assign[s.patient]].append(s)
    return out


def kfold_patients(samples: Sequence[Sample], k: int, seed: int) -> list[list[Sample]]:
    """Stratified patient-wise K folds (patients of each class dealt round-robin)."""
    if k < 2:
        raise ValueError("--folds needs at least 2")
    rng = np.random.default_rng(seed)
    plabel = patient_labels(samples)
    fold_of: dict[str, int] = {}
    offset = 0
    for stratum in (0, 1):
        pats = sorted(p for p, lab in plabel.items() if lab == stratum)
        rng.shuffle(pats)
        for i, pt in enumerate(pats):
            fold_of[pt] = (i + offset) % k
        offset += len(pats)  # keeps fold sizes even across strata
    folds: list[list[Sample]] = [[] for _ in range(k)]
    for s in samples:
        folds[fold_of[s.patient]].append(s)
    return folds


def remove_leaks(splits: dict[str, list[Sample]], order: Sequence[str] = ("test", "val", "train")) -> list[str]:
    """Drop from lower-priority splits every image of a patient already in a higher one.

    Sets given separately (``--val-data``, ``--test-data``, ``--train-data``) may share
    patients; the test set wins, then validation. Returns report lines for what was dropped.
    """
    notes = []
    seen: set[str] = set()
    for name in order:
        if name not in splits:
            continue
        keep = [s for s in splits[name] if s.patient not in seen]
        dropped = len(splits[name]) - len(keep)
        if dropped:
            pats = len({s.patient for s in splits[name]} & seen)
            notes.append(f"{name}: dropped {dropped} images of {pats} patients who are also in a held-out split")
        splits[name] = keep
        seen |= {s.patient for s in keep}
    return notes


def leak_line(splits: dict[str, Sequence[Sample]]) -> str:
    """One line that proves (or disproves) that no patient is in two splits."""
    pats = {n: {s.patient for s in v} for n, v in splits.items() if v}
    names = list(pats)
    shared = set()
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared |= pats[a] & pats[b]
    counts = ", ".join(f"{n} {len(pats[n])}" for n in names)
    return f"patients in more than one split: {len(shared)} (patients per split: {counts})"


def check_two_classes(name: str, samples: Sequence[Sample], skipped: str = "") -> None:
    """Raise a :class:`DataError` when a split is empty or holds one class; ``skipped`` (see
    :func:`training.layouts.unmatched_line`) names the folders that were not read."""
    c = Counter(s.label for s in samples)
    hint = f"; {skipped}" if skipped else ""
    if not samples:
        raise DataError(None, f"the {name} split is empty{hint}")
    if len(c) < 2:
        only = CLASSES[next(iter(c))]
        raise DataError(None, f"the {name} split has only {only} images ({len(samples)}): it needs both Normal "
                              f"and Abnormal{hint}")


def describe(samples: Sequence[Sample]) -> dict[str, int]:
    c = Counter(s.label for s in samples)
    return {"images": len(samples), "normal": c.get(0, 0), "abnormal": c.get(1, 0),
            "patients": len({s.patient for s in samples})}


# --------------------------------------------------------------------------- pixels

@dataclass
class Cache:
    """Preprocessed uint8 ``(N, size, size)`` arrays of the readable samples."""

    samples: list[Sample]
    arrays: np.ndarray
    skipped: list[tuple[str, str]]  # (path, reason)

    @property
    def labels(self) -> np.ndarray:
        return np.asarray([s.label for s in self.samples], dtype=np.int64)


def _prepare(path: str, spec) -> np.ndarray:
    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.ml.preprocess import prepare_uint8

    u8, _ = prepare_uint8(load_image(path), spec)
    return u8


def build_cache(samples: Sequence[Sample], spec, workers: int = 0,
                progress: Callable[[int, int], None] | None = None) -> Cache:
    """Decode and preprocess every sample once (datasets here fit in memory).

    Unreadable images are skipped and listed with the reason, never fatal.
    """
    n = len(samples)
    # torchxrayvision's pipeline ends in floats in [-1024, 1024] (cxrviewer.ml.preprocess.xrv_input)
    dtype = np.float32 if getattr(spec, "pipeline", "imagenet") == "xrv" else np.uint8
    out = np.zeros((n, spec.size, spec.size), dtype=dtype)
    ok = np.zeros(n, dtype=bool)
    skipped: list[tuple[str, str]] = []

    def one(i: int) -> tuple[int, str | None]:
        try:
            out[i] = _prepare(samples[i].path, spec)
            return i, None
        except CxrError as e:
            return i, e.reason
        except Exception as e:  # noqa: BLE001 - a bad file must not stop training
            return i, f"{type(e).__name__}: {e}"

    workers = workers if workers and workers > 0 else min(8, os.cpu_count() or 1)
    done = 0
    # Threads: OpenCV/numpy release the GIL for the heavy parts (decode, resize, equalise).
    with ThreadPoolExecutor(max_workers=workers) as ex:
        for i, err in ex.map(one, range(n)):
            if err is None:
                ok[i] = True
            else:
                skipped.append((samples[i].path, err))
            done += 1
            if progress:
                progress(done, n)
    keep = [s for s, k in zip(samples, ok, strict=True) if k]
    return Cache(keep, out[ok], skipped)


def augment(u8: np.ndarray, rng: np.random.Generator, hflip: bool = True, rotation: float = 10.0,
            brightness: float = 0.2, contrast: float = 0.2) -> np.ndarray:
    """The seed's training augmentations on the uint8 model input (before normalisation).

    Horizontal flip (p=0.5, configurable: it mirrors anatomy), rotation uniform in
    ±``rotation`` degrees (zero fill, like torchvision's RandomRotation), brightness and
    contrast jitter (factors in [1-b, 1+b], torchvision's ColorJitter definitions).
    """
    import cv2

    x = u8
    if hflip and rng.random() < 0.5:
        x = x[:, ::-1]
    angle = rng.uniform(-rotation, rotation) if rotation > 0 else 0.0
    b = rng.uniform(1 - brightness, 1 + brightness) if brightness > 0 else 1.0
    c = rng.uniform(1 - contrast, 1 + contrast) if contrast > 0 else 1.0
    if angle:
        h, w = x.shape
        m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
        x = cv2.warpAffine(np.ascontiguousarray(x), m, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if b != 1.0 or c != 1.0:
        f = x.astype(np.float32) * np.float32(b)
        f = np.clip(f, 0, 255)
        mean = np.float32(f.mean())
        f = np.clip(c * f + (1 - c) * mean, 0, 255)
        x = np.rint(f).astype(np.uint8)
    return np.ascontiguousarray(x)


class CachedDataset:
    """``torch.utils.data.Dataset`` over a :class:`Cache`: ``(uint8 (H, W) tensor, label)``.

    Augmentation randomness comes from ``(seed, epoch, index)`` only, so a sample's
    augmentation does not depend on worker count, rank or on a resume.
    """

    def __init__(self, cache: Cache, train: bool, seed: int = 0, hflip: bool = True,
                 rotation: float = 10.0, jitter: float = 0.2, shortcut_aug=None) -> None:
        self.cache = cache
        self.shortcut_aug = shortcut_aug  # training.augment.ShortcutAug (or None)
        self.train = train
        self.seed = seed
        self.hflip = hflip
        self.rotation = rotation
        self.jitter = jitter
        self.epoch = 0
        self.labels = cache.labels

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.cache.samples)

    def __getitem__(self, i: int):
        import torch

        x = self.cache.arrays[i]
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, int(i)])
            x = augment(x, rng, hflip=self.hflip, rotation=self.rotation,
                        brightness=self.jitter, contrast=self.jitter)
            if self.shortcut_aug is not None and self.shortcut_aug.active:
                x = self.shortcut_aug(x, rng)
        return torch.from_numpy(np.array(x, copy=True)), int(self.labels[i])


def normalize_batch(u8, mean: Sequence[float], std: Sequence[float]):
    """uint8 ``(B, H, W)`` tensor -> float32 ``(B, 3, H, W)``: exactly
    :func:`cxrviewer.ml.preprocess.normalize`, on whatever device ``u8`` lives (GPU: 4x
    less to copy than float input)."""
    import torch

    x = u8.to(torch.float32) * torch.tensor(1.0 / 255.0, dtype=torch.float32, device=u8.device)
    m = torch.tensor(mean, dtype=torch.float32, device=u8.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=u8.device).view(1, 3, 1, 1)
    return (x.unsqueeze(1).expand(-1, 3, -1, -1) - m) / s


def group_by_split(samples: Iterable[Sample]) -> dict[str | None, list[Sample]]:
    out: dict[str | None, list[Sample]] = defaultdict(list)
    for s in samples:
        out[s.split].append(s)
    return out
