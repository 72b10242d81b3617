"""``cxrviewer selftest``: offscreen end-to-end check of this install or frozen bundle.

Loads the active model, opens the bundled sample, runs inference and Grad-CAM, renders an
annotated export to a temp file and checks it; one line per step; exit 0 only if all pass.
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "selftest",
        help="offscreen end-to-end check: sample, codecs, window, model, Grad-CAM, export",
        description="Check this installation (or the frozen app) end to end, offscreen: "
        "one line per step, exit status 0 only if every step passed.",
    )
    p.add_argument("--model", default=None, help="model directory or registry name (default: the active model)")
    p.add_argument("--sample", default=None, help="image to use instead of the bundled sample")
    p.add_argument("--out", default=None, help="write the export here (default: a new temp folder)")
    p.add_argument("--backend", default="auto", choices=("auto", "onnxruntime", "torch"),
                   help="inference backend (default auto: ONNX Runtime when the model has its .onnx)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--no-gui", action="store_true",
                   help="skip the main-window step (machines without Qt's system libraries); still exits 0 if the rest pass")
    p.add_argument("--json", action="store_true", help="print the results as JSON after the summary lines")
    p.add_argument("-v", "--verbose", action="store_true", help="print the traceback of a failed step")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os
    import sys
    import time

    # Before anything imports Qt: no display is needed (or wanted) for a self-test.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from cxrviewer import selftest

    t0 = time.perf_counter()
    results = selftest.run(
        args.model,
        args.sample,
        args.out,
        backend=args.backend,
        device=args.device,
        gui=not args.no_gui,
        echo=lambda line: print(line, flush=True),
        verbose=args.verbose,
    )
    ok = selftest.passed(results, allow_skip=("viewer",) if args.no_gui else ())
    n_pass = sum(r.ok for r in results)
    print(
        f"selftest: {'OK' if ok else 'FAILED'} - {n_pass}/{len(results)} steps passed "
        f"in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    if args.json:
        print(json.dumps({"ok": ok, "steps": selftest.to_json(results)}, indent=2))
    sys.stdout.flush()
    return 0 if ok else 1
