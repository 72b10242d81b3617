"""Pack the demo model's training data into a compact folder (default ``.devdata/``, git-ignored).

``python -m training.demo.pack_data [--src ../shared/data] [--dst .devdata]`` writes:

- ``kermany-224/``: the Kermany pediatric set as is (224 px JPEGs + labels.csv with its split column),
- ``nih1000-64/``: as is (64 px PNGs in train|valid/0_normal|1_abnormal),
- ``nih-starter-256/``: nih-starter-512 downscaled to 256×256 8-bit PNGs (INTER_AREA), with its
  labels.csv rewritten to point at them (all other columns kept).

About 54 MiB in all, so it travels to a GPU machine that has no ``shared/``. The source files are
only read. Never commit the output: the data's licences allow training, not redistribution here.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import sys
from pathlib import Path

from cxrviewer import atomic

REPO = Path(__file__).resolve().parents[2]


def _size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def pack(src: Path, dst: Path, size: int = 256) -> dict[str, int]:
    import cv2
    import numpy as np

    for name in ("kermany-224", "nih1000-64", "nih-starter-512"):
        if not (src / name).is_dir():
            raise SystemExit(f"pack_data: {src / name} is missing (point --src at shared/data)")
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("kermany-224", "nih1000-64"):
        target = dst / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(src / name, target)
    out = dst / f"nih-starter-{size}"
    with open(src / "nih-starter-512" / "labels.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    for r in rows:
        im = cv2.imdecode(np.fromfile(str(src / "nih-starter-512" / r["path"]), np.uint8), cv2.IMREAD_UNCHANGED)
        if im is None:
            raise SystemExit(f"pack_data: cannot read {r['path']}")
        small = cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".png", small, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        atomic.write_bytes(out / r["path"], buf.tobytes())
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)  # same relative paths, now 256 px files
    atomic.write_text(out / "labels.csv", text.getvalue())
    atomic.write_text(dst / "README.txt",
                      "Demo training data packed by training/demo/pack_data.py from shared/data "
                      "(see its README for sources and licences). Do not commit.\n")
    return {p.name: _size(p) for p in (dst / "kermany-224", dst / "nih1000-64", out)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.demo.pack_data", description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--dst", type=Path, default=REPO / ".devdata")
    ap.add_argument("--size", type=int, default=256, help="side of the downscaled nih-starter images")
    a = ap.parse_args(argv)
    sizes = pack(a.src, a.dst, a.size)
    for k, v in sizes.items():
        print(f"{k}: {v / 2**20:.1f} MiB")
    total = sum(sizes.values())
    print(f"total {total / 2**20:.1f} MiB in {a.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
