"""``cxrviewer deid INPUT... --out DIR [--deid-seed SEED] [--mask-region X Y W H] [--json]``:
de-identified copies of the source images themselves (PS3.15 Table E.1-1).

With the same ``--deid-seed`` as ``export --anonymize``, an SR, GSPS or SC exported from an
original image references that image's copy here: the usual way a study is shared for
research. Inputs are files or folders (walked); sources are never written; each copy is
written atomically as ``DIR/<new SOP Instance UID>.dcm`` and never overwrites a file. A file
that cannot be de-identified is one line on stderr and the rest go on; the exit status is 2
when any file failed.
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("deid", help="write de-identified copies of DICOM files (PS3.15 Basic Profile)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="DICOM files or folders")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; files in it are never overwritten)")
    p.add_argument("--json", action="store_true", help="print a JSON summary (written, exists, failed, files)")
    from cxrviewer.cli.export import add_deid_arguments

    add_deid_arguments(p, seed_help="the de-identification key: the same seed gives the same pseudonyms, UIDs and "
                                    "date shift on every run and in `export --anonymize --deid-seed` (keep it "
                                    "secret; default: a random one)")
    p.set_defaults(func=run)


def _inside(child: str, parent: str) -> bool:
    import os

    c, p = os.path.realpath(child), os.path.realpath(parent)
    return c == p or c.startswith(p.rstrip(os.sep) + os.sep)


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from cxrviewer.cli._common import fail, print_json
    from cxrviewer.cli.export import mask_regions
    from cxrviewer.core.errors import CxrError

    try:
        masks = mask_regions(args)
    except ValueError as e:
        return fail(f"--mask-region: {e}")
    for inp in args.inputs:
        if os.path.isdir(inp) and _inside(args.out, inp):
            return fail(f"{args.out}: the output folder must not be inside the input folder {inp}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        return fail(f"{args.out}: exists and is not a folder")
    from cxrviewer.dicom.deid_files import copy_deidentified

    def report(o) -> None:
        if o.status == "failed":
            print(f"cxrviewer: {o.source}: {o.reason}", file=sys.stderr)
        elif o.status == "exists":
            print(f"cxrviewer: {o.source}: {o.output} exists (an earlier copy); not overwritten", file=sys.stderr)
        elif not args.json:
            print(o.output)

    try:
        rep = copy_deidentified(args.inputs, args.out, seed=args.deid_seed, masks=masks, on_outcome=report)
    except CxrError as e:
        return fail(str(e))
    if args.json:
        print_json(rep.to_dict())
    else:
        print(f"de-identified {rep.count('written')} file(s) into {args.out}"
              + (f", {rep.count('exists')} already there" if rep.count("exists") else "")
              + (f", {rep.count('failed')} failed" if rep.count("failed") else ""), file=sys.stderr)
    return 2 if rep.count("failed") else 0
