"""``cxrviewer scan PATH [--json]``: index a folder, a file or a DICOMDIR (headers only)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("scan", help="index a folder/file/DICOMDIR into patients, studies, series")
    p.add_argument("path", help="folder, file or DICOMDIR")
    p.add_argument("--json", action="store_true", help="print the index as JSON")
    p.add_argument("--workers", type=int, default=None, help="header-reading processes (default: auto)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import TtyProgress, fail, print_json
    from cxrviewer.core.errors import ScanPathError
    from cxrviewer.core.study_index import scan

    try:
        result = scan(args.path, progress=TtyProgress("scanning"), workers=args.workers)
    except ScanPathError as e:
        return fail(str(e))
    if args.json:
        print_json(result.to_dict())
        return 0
    for p in result.patients:
        print(f"{p.patient_name or '(no name)'} [{p.patient_id}]")
        for st in p.studies:
            print(f"  study {st.study_date} {st.study_description} ({st.n_images} images)")
            for se in st.series:
                print(f"    series {se.series_number} {se.modality} {se.series_description}: {len(se.instances)}")
            for o in st.objects:
                print(f"    {o.kind.upper()} {o.series_description or o.sop_class_uid}: {o.path}")
    print(f"{result.files_seen} files, {len(result.instances())} images, {len(result.errors)} unreadable")
    for e in result.errors:
        print(f"  unreadable: {e.path}: {e.reason}")
    # what pydicom tolerated in readable files (also in --json as each instance's "warnings")
    for i in result.instances():
        for w in i.warnings:
            print(f"  note: {i.path}: {w}")
    return 0
