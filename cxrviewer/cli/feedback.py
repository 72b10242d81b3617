"""``cxrviewer feedback add|withdraw|export|stats|sr``: the readers' calls from scripts and tests.

``add`` records the same rows the viewer writes. By default it runs the active model (or
``--model NAME``) on the image through the app's inference engine (ONNX Runtime where the
model has a graph), so the call carries the model's identity and output at that moment,
exactly as a call made in the viewer with the AI result on screen; ``--no-model`` records
the call without any model output (then it counts in ``stats``'s ``n`` but not in the
model figures). When no model is installed, the call is recorded without model output and
the JSON says so (``"model": null``, ``"model_note"``).
"""

from __future__ import annotations

import argparse
import os


def add_parser(sub) -> None:
    p = sub.add_parser("feedback", help="the readers' calls: add, withdraw, export labels, agreement stats",
                       description="Reader feedback: each reader's Normal/Abnormal call on each image, kept by "
                                   "the image's pixels in feedback.sqlite in the user data folder.")
    fsub = p.add_subparsers(dest="feedback_command", metavar="ACTION")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--db", metavar="PATH", help="the feedback database (default: feedback.sqlite in the user data folder)")
        q.add_argument("--json", action="store_true", help="print the result as JSON")

    a = fsub.add_parser("add", help="record (or change) a reader's call on an image")
    a.add_argument("path", metavar="PATH", help="the image (DICOM, PNG, JPEG)")
    a.add_argument("--label", required=True, type=str.lower, choices=("normal", "abnormal"))
    a.add_argument("--finding", action="append", default=[], metavar="NAME",
                   help="a finding the reader sees (from the model's list for a multi-finding model); repeatable")
    a.add_argument("--agree", action="append", default=[], metavar="NAME",
                   help="agree with the model's call on this finding (multi-finding model); repeatable")
    a.add_argument("--disagree", action="append", default=[], metavar="NAME",
                   help="disagree with the model's call on this finding (multi-finding model); repeatable")
    a.add_argument("--reader", metavar="NAME", help="who reads (default: the viewer's setting, else the OS user)")
    a.add_argument("--note", default="", metavar="TEXT", help="a free-text note (never leaves the machine unless exported)")
    a.add_argument("--frame", type=int, default=0, help="frame of a multi-frame image (0-based)")
    g = a.add_mutually_exclusive_group()
    g.add_argument("--model", metavar="NAME", help="the model whose output is recorded (default: the active model)")
    g.add_argument("--no-model", action="store_true", help="record the call without running a model")
    common(a)
    a.set_defaults(func=run_add)

    w = fsub.add_parser("withdraw", help="withdraw a reader's call on an image (its history is kept)")
    w.add_argument("path", metavar="PATH")
    w.add_argument("--reader", metavar="NAME")
    w.add_argument("--frame", type=int, default=0)
    common(w)
    w.set_defaults(func=run_withdraw)

    e = fsub.add_parser("export", help="write the current calls as a labelled CSV for `cxrviewer train --data`")
    e.add_argument("--out", required=True, metavar="labels.csv")
    e.add_argument("--reader", metavar="NAME", help="only this reader's calls")
    e.add_argument("--since", metavar="DATE", help="only calls recorded at or after this ISO date/time (UTC)")
    e.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    common(e)
    e.set_defaults(func=run_export)

    d = fsub.add_parser("sr", help="write a DICOM SR with the reader's call beside the AI result they saw")
    d.add_argument("path", metavar="PATH", help="the DICOM image the call is about")
    d.add_argument("--out", required=True, metavar="FILE.dcm")
    d.add_argument("--reader", metavar="NAME", help="whose call (default: the viewer's setting, else the OS user)")
    d.add_argument("--frame", type=int, default=0)
    d.add_argument("--anonymize", action="store_true",
                   help="write the de-identified copy (PS3.15 Basic Profile): the reader's name is left out too")
    d.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    common(d)
    d.set_defaults(func=run_sr)

    s = fsub.add_parser("stats", help="the model's agreement with the readers (kappa, sensitivity, specificity)")
    s.add_argument("--model", metavar="NAME", help="only calls made with this model's output (by name)")
    s.add_argument("--reader", metavar="NAME", help="only this reader's calls")
    common(s)
    s.set_defaults(func=run_stats)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _store(args):
    from cxrviewer.feedback import FeedbackStore

    return FeedbackStore(args.db)


def _model_output(args, img, key_frame: int):
    """``(ModelOutput or None, note)``: the model's output on ``img`` unless --no-model."""
    from cxrviewer.cli._common import resolve_model
    from cxrviewer.core.errors import CxrError
    from cxrviewer.feedback import ModelOutput
    from cxrviewer.ml.inference import Engine
    from cxrviewer.ml.registry import Registry
    from cxrviewer.ml.results import content_key, pixel_digest

    if args.no_model:
        return None, "--no-model: no model output recorded"
    if args.model is None and Registry().active() is None:
        return None, "no model installed: the call is recorded without model output"
    try:
        engine = Engine.load(resolve_model(args.model))
    except CxrError as e:
        raise CxrError(None, f"model: {e} (use --no-model to record the call without it)") from None
    pred = engine.predict(img, cam=False)
    ident = {**engine.card, "name": engine.name, "version": engine.version}
    if engine.precision != "fp32":
        ident["precision"] = engine.precision
    ckey = content_key(pixel_digest(img), key_frame, ident)
    out = ModelOutput.from_prediction(pred, engine.card, content_key=ckey)
    note = "" if out.scored else f"the model did not score this image: {pred.gate.reason}"
    return out, note


def run_add(args) -> int:
    from cxrviewer.cli._common import fail, print_json
    from cxrviewer.core.errors import CxrError
    from cxrviewer.feedback import default_reader, load_keyed

    if not os.path.isfile(args.path):
        return fail(f"{args.path}: no such file")
    findings: dict[str, str] = {}
    for verdict, names in (("added", args.finding), ("agree", args.agree), ("disagree", args.disagree)):
        for n in names:
            if n in findings:
                return fail(f"finding {n!r} given twice (--finding, --agree, --disagree)")
            findings[n] = verdict
    try:
        key, img = load_keyed(args.path, args.frame)
        model, note = _model_output(args, img, args.frame)
        reader = args.reader or default_reader()
        with _store(args) as store:
            call = store.record(key, reader, args.label, findings=findings, note=args.note, path=args.path,
                                frame=args.frame, patient_id=img.header.patient_id, model=model)
    except CxrError as e:
        return fail(str(e))
    if args.json:
        print_json({**call.to_dict(), "model_note": note})
    else:
        m = ""
        if call.model is not None:
            p = "not scored" if call.model.probability is None else f"P(Abnormal) {call.model.probability:.3f}"
            m = f"; model {call.model.name} {call.model.version}: {p}"
        print(f"{call.reader}: {call.label} for {args.path} (call {call.id}){m}" + (f" ({note})" if note else ""))
    return 0


def run_withdraw(args) -> int:
    from cxrviewer.cli._common import fail, print_json
    from cxrviewer.core.errors import CxrError
    from cxrviewer.feedback import default_reader, load_keyed

    try:
        key, _ = load_keyed(args.path, args.frame)
        reader = args.reader or default_reader()
        with _store(args) as store:
            row = store.withdraw(key, reader, path=args.path)
    except CxrError as e:
        return fail(str(e))
    if row is None:
        return fail(f"{args.path}: {reader} has no call on this image to withdraw")
    if args.json:
        print_json(row.to_dict())
    else:
        print(f"{reader}: call on {args.path} withdrawn")
    return 0


def run_export(args) -> int:
    from cxrviewer.cli._common import fail, print_json
    from cxrviewer.core.errors import CxrError
    from cxrviewer.feedback import export_csv, parse_since

    if os.path.exists(args.out) and not args.force:
        return fail(f"{args.out}: exists (use --force to overwrite it)")
    try:
        since = parse_since(args.since)
        with _store(args) as store:
            summary = export_csv(store, args.out, reader=args.reader, since=since)
    except CxrError as e:
        return fail(str(e))
    if args.json:
        print_json(summary.to_dict())
    else:
        who = ", ".join(f"{r} ({n})" for r, n in summary.readers.items())
        print(f"{summary.rows} calls on {summary.images} images by {who} -> {summary.out}")
        if summary.missing:
            print(f"warning: {summary.missing} images are no longer at any path they were seen at")
    return 0


def run_stats(args) -> int:
    from cxrviewer.cli._common import fail, print_json
    from cxrviewer.core.errors import CxrError
    from cxrviewer.feedback import agreement_line, agreement_stats

    try:
        with _store(args) as store:
            stats = agreement_stats(store.current(reader=args.reader), model=args.model)
    except CxrError as e:
        return fail(str(e))
    if args.json:
        print_json(stats)
    else:
        print(f"{stats['n']} current calls by {stats['n_readers']} readers; {stats['n_with_model']} with a model output")
        print(agreement_line(stats))
    return 0


def sr_parts(call):
    """``(AiResult or None, ReaderCall)`` of a stored call: the AI result is the model output
    recorded with the call (what the reader saw), not a fresh prediction."""
    from cxrviewer.dicom.common import AiResult
    from cxrviewer.dicom.sr_reader import ReaderCall

    ai = None
    m = call.model
    if m is not None and m.scored and m.probability is not None:
        ai = AiResult(probability_abnormal=m.probability, label=(m.label or "").capitalize(),
                      threshold=float(m.threshold if m.threshold is not None else 0.5), model_name=m.name,
                      model_version=m.version, weights_sha256=m.weights_sha256)
    return ai, ReaderCall(call.reader, call.label, call.finding_present())


def run_sr(args) -> int:
    from cxrviewer.cli._common import fail, print_json
    from cxrviewer.core.errors import CxrError
    from cxrviewer.dicom.build import export_object
    from cxrviewer.feedback import default_reader, load_keyed

    if not os.path.isfile(args.path):
        return fail(f"{args.path}: no such file")
    if os.path.exists(args.out) and not args.force:
        return fail(f"{args.out}: exists (use --force to overwrite it)")
    try:
        key, _ = load_keyed(args.path, args.frame)
        reader = args.reader or default_reader()
        with _store(args) as store:
            call = store.latest(key, reader)
        if call is None:
            return fail(f"{args.path}: {reader} has no call on this image")
        ai, rc = sr_parts(call)
        res = export_object("sr", args.path, args.out, ai=ai, frame=args.frame, anonymize=args.anonymize,
                            reader_call=rc)
    except CxrError as e:
        return fail(str(e))
    if args.json:
        print_json({"out": str(res.path), "reader_call": call.id, "ai_result": ai is not None,
                    "anonymized": bool(args.anonymize)})
    else:
        print(res.path)
    return 0
