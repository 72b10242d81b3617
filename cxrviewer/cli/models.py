"""``cxrviewer models list | show NAME | import DIR | activate NAME | onnx DIR | fit-ood NAME | quantize [NAME]``: the model registry."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list, show, import and activate models")
    msub = p.add_subparsers(dest="models_cmd", metavar="ACTION", required=True)

    ls = msub.add_parser("list", help="installed models (* = active)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=run_list)

    show = msub.add_parser("show", help="print a model's card (default: the active model)")
    show.add_argument("name", nargs="?", default=None)
    show.set_defaults(func=run_show)

    imp = msub.add_parser(
        "import", help="install a model directory (model.safetensors + card.json), atomically"
    )
    imp.add_argument("dir")
    imp.add_argument("--activate", action="store_true", help="make it the active model")
    imp.add_argument(
        "--replace", action="store_true", help="replace an installed model of the same name"
    )
    imp.add_argument(
        "--onnx", action="store_true", help="(always on) write model.onnx beside the weights, recorded in card.json, for torch-free viewing"
    )
    imp.set_defaults(func=run_import)

    act = msub.add_parser(
        "activate", help="make NAME the active model (also rolls back to an older one)"
    )
    act.add_argument("name")
    act.set_defaults(func=run_activate)

    ox = msub.add_parser(
        "onnx", help="write DIR/model.onnx in place and record it in DIR/card.json (needs the train extra)"
    )
    ox.add_argument("dir")
    ox.set_defaults(func=run_onnx)

    xi = msub.add_parser(
        "import-xrv",
        help="install a published torchxrayvision model (18 findings) from its weights file",
    )
    xi.add_argument("weights", help="torchxrayvision weights name (resnet50-res512-all)")
    xi.add_argument("--weights", dest="weights_file", default=None, metavar="FILE",
                    help="the published state dict downloaded elsewhere (air-gapped sites); without it "
                         "the published URL is downloaded into the user cache")
    xi.add_argument("--name", default=None, help="registry name (default xrv-WEIGHTS)")
    xi.add_argument("--activate", action="store_true", help="make it the active model")
    xi.add_argument("--replace", action="store_true", help="replace an installed model of the same name")
    xi.add_argument("--url", default=None, help=argparse.SUPPRESS)  # tests: an unreachable mirror
    xi.set_defaults(func=run_import_xrv)

    from cxrviewer.cli import fit_ood, quantize

    fit_ood.add_parser(msub)
    quantize.add_parser(msub)


def run_list(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import print_json
    from cxrviewer.ml.registry import Registry

    reg = Registry()
    entries = reg.list()
    active = reg.active()
    if args.json:
        print_json(
            [
                {**e.to_dict(), "active": active is not None and e.name == active.name}
                for e in entries
            ]
        )
        return 0
    if not entries:
        print("no models installed (import one with `cxrviewer models import DIR`)")
        return 0
    w = max(len(e.name) for e in entries)
    for e in entries:
        mark = "*" if active is not None and e.name == active.name else " "
        src = "bundled" if e.bundled else "user"
        print(f"{mark} {e.name:<{w}}  {e.version:<10} {src:<8} {e.created}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    import json

    from cxrviewer.cli._common import fail
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml.registry import Registry

    reg = Registry()
    try:
        entry = reg.get(args.name) if args.name else reg.active()
    except CxrError as e:
        return fail(str(e), 1)
    if entry is None:
        return fail("no model installed", 1)
    active = reg.active()
    print(
        f"# {entry.name} {entry.version} ({'bundled' if entry.bundled else 'user'}{', active' if active and active.name == entry.name else ''})"
    )
    print(f"# {entry.path}")
    from cxrviewer.ml.validation import card_with_validations

    print(json.dumps(card_with_validations(entry.path, entry.card).to_dict(), indent=2, default=str))
    return 0


def run_import(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import fail
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml.registry import Registry

    reg = Registry()
    before = reg.active()
    try:
        # model.onnx always (the --onnx flag is kept for old scripts): the base install infers
        # through ONNX Runtime without torch
        entry = reg.import_dir(args.dir, replace=args.replace, activate=args.activate, onnx=True)
    except CxrError as e:
        kept = f"; active model unchanged ({before.name})" if before is not None else ""
        return fail(f"{e}{kept}", 1)
    print(
        f"imported {entry.name} {entry.version} -> {entry.path}{' (active)' if args.activate else ''}"
    )
    return 0


def run_activate(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import fail
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml.registry import Registry

    reg = Registry()
    before = reg.active()
    try:
        entry = reg.activate(args.name)
    except CxrError as e:
        kept = f"; active model unchanged ({before.name})" if before is not None else ""
        return fail(f"{e}{kept}", 1)
    print(f"active model: {entry.name} {entry.version}")
    return 0


def run_onnx(args: argparse.Namespace) -> int:
    """For a model folder kept outside the registry (e.g. the bundled one after a retrain)."""
    from cxrviewer.cli._common import fail
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml.extras import missing_train_extra

    missing = missing_train_extra("Writing model.onnx")
    if missing:
        return fail(missing)
    from cxrviewer.ml.onnx_model import write_model_onnx

    try:
        out = write_model_onnx(args.dir)
    except CxrError as e:
        return fail(str(e), 1)
    print(f"{out} ({out.stat().st_size} bytes; weights read from {out.parent / 'model.safetensors'})")
    return 0


def run_import_xrv(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import fail
    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml.extras import missing_train_extra

    missing = missing_train_extra("Importing torchxrayvision weights")
    if missing:
        return fail(missing)
    from cxrviewer.ml.xrv import import_xrv

    try:
        entry = import_xrv(args.weights, args.weights_file, name=args.name, activate=args.activate,
                           replace=args.replace, url=args.url)
    except CxrError as e:
        return fail(str(e))
    card = entry.card
    with_op = sum(f.op_point is not None for f in card.findings)
    print(f"imported {entry.name} ({len(card.findings)} findings, {with_op} with an operating point) -> "
          f"{entry.path}{' (active)' if args.activate else ''}")
    print("published figures only, not verified here: validate it on your own labelled cases with "
          f"`cxrviewer evaluate --model {entry.name} --data CSV --record`")
    return 0
