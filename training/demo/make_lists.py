"""Label lists for the CPU demo recipe, read from the shared data folder (nothing is copied).

``python -m training.demo.make_lists --src ../shared/data --dst WORK`` writes, with absolute
image paths:

``adult-pretrain.csv``
    ``adult-cxr-128`` without every image listed in its ``overlaps_shared_nih.csv`` (the same
    or a look-alike radiograph as an NIH evaluation image), with a ``split`` column: the
    source's ``validation`` rows subsampled to ``--adult-val`` images (stratified) as ``val``,
    everything else ``train``. Patient ids are unknown there (each image its own patient).
``nih-starter-split.csv``
    ``nih-starter-512`` (one image per patient, 512 px) with a fixed patient-wise stratified
    ``split`` column (``--nih-split``, seeded), so every candidate model is compared on the same
    validation images and the ``test`` rows are never trained or tuned on.

Both files list their counts on stdout. The source files are only read.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np

from cxrviewer import atomic
from training import data as D

REPO = Path(__file__).resolve().parents[2]


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        r = csv.DictReader(fh)
        return list(r.fieldnames or []), list(r)


def _write(path: Path, fields: list[str], rows: list[dict[str, str]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic.write_text(path, buf.getvalue())


def adult_list(src: Path, n_val: int, seed: int) -> tuple[list[dict[str, str]], dict[str, int]]:
    """``adult-cxr-128`` minus the NIH overlaps, with a train/val ``split`` column."""
    root = src / "adult-cxr-128"
    _, rows = _rows(root / "labels.csv")
    _, over = _rows(root / "overlaps_shared_nih.csv")
    drop = {o["lundis_file"].split("/")[-1] for o in over}
    kept = [r for r in rows if r["path"].split("/")[-1] not in drop]
    rng = np.random.default_rng(seed)
    val_pool = [i for i, r in enumerate(kept) if r["source_split"] == "validation"]
    val: set[int] = set()
    for lab in ("normal", "abnormal"):
        idx = [i for i in val_pool if kept[i]["label"] == lab]
        k = round(n_val * len(idx) / max(1, len(val_pool)))
        val.update(int(i) for i in rng.permutation(idx)[:k])
    out = []
    for i, r in enumerate(kept):
        out.append({"path": str((root / r["path"]).resolve()), "label": r["label"], "finding": r["finding"],
                    "source": r["source"], "split": "val" if i in val else "train"})
    counts = {"listed": len(rows), "dropped_overlaps": len(rows) - len(kept), "train": len(kept) - len(val),
              "val": len(val)}
    return out, counts


def nih_list(src: Path, fractions: tuple[float, float, float], seed: int) -> tuple[list[dict[str, str]], dict[str, int]]:
    """``nih-starter-512`` with a patient-wise stratified ``split`` column."""
    root = src / "nih-starter-512"
    _, rows = _rows(root / "labels.csv")
    samples = [D.Sample(str((root / r["path"]).resolve()), D.parse_label(r["label"], "nih-starter-512"),
                        str(int(r["patient_id"]))) for r in rows]
    cut = D.split_patients(samples, fractions, seed)
    where = {s.path: k for k, v in cut.items() for s in v}
    out = []
    for r, s in zip(rows, samples, strict=True):
        out.append({"path": s.path, "label": r["label"], "patient_id": s.patient, "split": where[s.path],
                    "finding_labels": r["finding_labels"], "view": r["view"]})
    counts = {k: len(v) for k, v in cut.items()}
    counts.update({f"{k}_normal": sum(1 for s in v if s.label == 0) for k, v in cut.items()})
    return out, counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.demo.make_lists", description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, default=REPO.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--dst", type=Path, required=True, help="where the two CSVs go (outside the repository)")
    ap.add_argument("--adult-val", type=int, default=600, help="adult-cxr-128 validation images kept (default 600)")
    ap.add_argument("--nih-split", default="0.6,0.15,0.25", help="nih-starter-512 train,val,test fractions")
    ap.add_argument("--seed", type=int, default=12)
    a = ap.parse_args(argv)
    fr = tuple(float(x) for x in a.nih_split.split(","))
    if len(fr) != 3:
        ap.error("--nih-split needs three fractions")
    for need in ("adult-cxr-128/labels.csv", "adult-cxr-128/overlaps_shared_nih.csv", "nih-starter-512/labels.csv"):
        if not (a.src / need).is_file():
            print(f"make_lists: {a.src / need} is missing (point --src at the shared data folder)", file=sys.stderr)
            return 2
    rows, c = adult_list(a.src, a.adult_val, a.seed)
    _write(a.dst / "adult-pretrain.csv", ["path", "label", "finding", "source", "split"], rows)
    print(f"adult-pretrain.csv: {c}")
    rows, c = nih_list(a.src, fr, a.seed)  # type: ignore[arg-type]
    _write(a.dst / "nih-starter-split.csv", ["path", "label", "patient_id", "split", "finding_labels", "view"], rows)
    print(f"nih-starter-split.csv: {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
