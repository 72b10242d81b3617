"""A model card in words: the lines the AI panel shows beside a probability and the sections of
the model card dialog (no Qt, no JSON on screen).

The reader sees the model's *validated* performance next to its verdict (test AUC with its
95 % interval and the data it was trained on, in one line each), and the card dialog puts
the intended use and the warnings first, then data, splits, metrics with intervals,
calibration, the out-of-distribution gate, localization and preprocessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

METRIC_TITLES = {
    "auc": "AUC-ROC",
    "accuracy": "Accuracy",
    "precision": "PPV (precision)",
    "recall": "Sensitivity (recall)",
    "specificity": "Specificity",
    "npv": "NPV",
    "f1": "F1",
    "val_auc": "Validation AUC",
    "ece": "ECE",
}

Section = tuple[str, list[tuple[str, str]]]


def _num(v: Any, digits: int = 3) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if v != 0 and abs(v) < 0.01 else f"{v:.{digits}f}"
    return str(v)


def fmt_metric(m: Any, digits: int = 3) -> str:
    """``{"value", "ci95", "split"}`` -> ``"0.494 [95% CI 0.354–0.642] (test)"``."""
    if not isinstance(m, Mapping):
        return _num(m, digits)
    s = _num(m.get("value"), digits)
    ci = m.get("ci95")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
        s += f" [95% CI {ci[0]:.{digits}f}–{ci[1]:.{digits}f}]"
    if m.get("split"):
        s += f" ({m['split']})"
    return s


def _splits(card: Mapping[str, Any]) -> Mapping[str, Any]:
    td = card.get("training_data")
    sp = td.get("splits") if isinstance(td, Mapping) else None
    return sp if isinstance(sp, Mapping) else {}


def _count(d: Any) -> str:
    if not isinstance(d, Mapping) or "images" not in d:
        return ""
    s = f"{d['images']} images"
    if "normal" in d and "abnormal" in d:
        s += f" ({d['normal']} normal / {d['abnormal']} abnormal"
        s += f", {d['patients']} patients)" if "patients" in d else ")"
    return s


def performance_line(card: Mapping[str, Any]) -> str:
    """The validated performance shown beside a probability: test AUC with its interval."""
    metrics = card.get("metrics") if isinstance(card.get("metrics"), Mapping) else {}
    auc = metrics.get("auc")
    if not isinstance(auc, Mapping) or auc.get("value") is None:
        pub = card.get("published")
        if isinstance(pub, Mapping) and pub.get("status"):
            return f"Validated performance: {pub['status']} (see the model card's citation)"
        return "Validated performance: none stated in the model card"
    split = auc.get("split") or "test"
    s = f"{split.capitalize()} AUC {fmt_metric({**auc, 'split': None}, 2)}"
    n = _count(_splits(card).get(split))
    if n:
        s += f" on {n.split(' (')[0]}"
        normals = _splits(card).get(split, {}).get("normal")
        if normals is not None:
            s += f" ({normals} normal)"
    spec = metrics.get("specificity")
    sens = metrics.get("recall")
    if isinstance(spec, Mapping) and isinstance(sens, Mapping):
        s += f"; at its threshold sensitivity {_num(sens.get('value'), 2)}, specificity {_num(spec.get('value'), 2)}"
    return s


def _source_name(path: str) -> str:
    p = PurePath(str(path))
    parts = [x for x in p.parts if x not in (".", "..", "/")]
    # ".../nih1000-64/train" -> "nih1000-64"; ".../nih-starter-256/labels.csv" -> "nih-starter-256"
    if parts and (parts[-1] in ("train", "valid", "val", "test") or "." in parts[-1]) and len(parts) > 1:
        return parts[-2]
    return parts[-1] if parts else str(path)


def training_data_line(card: Mapping[str, Any]) -> str:
    """One line: what the model was trained on."""
    src = card.get("source")
    if not card.get("training_data") and isinstance(src, Mapping) and src.get("description"):
        # an imported published model: its publisher's words, and where they come from
        return f"{src['description']} (published by {src.get('library', 'its publisher')})"
    td = card.get("training_data") if isinstance(card.get("training_data"), Mapping) else {}
    train = _splits(card).get("train")
    names = []
    for s in td.get("sources", []) or []:
        if isinstance(s, Mapping) and s.get("path") and s.get("role") in ("split", "train", None):
            n = _source_name(s["path"])
            if n not in names:
                names.append(n)
    s = "Trained on " + (_count(train) or "an unstated number of images")
    if names:
        s += " from " + ", ".join(names)
    init = (card.get("training") or {}).get("init") if isinstance(card.get("training"), Mapping) else None
    if init and str(init) not in ("none", "None", ""):
        s += f"; initialised from {str(init).split(' (')[0]}"
    return s


def _flat(v: Any) -> str:
    """Any value as readable text (nested dicts as ``key: value`` pairs, never JSON)."""
    if isinstance(v, Mapping):
        return "; ".join(f"{k}: {_flat(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        if all(isinstance(x, (int, float, str)) for x in v):
            return ", ".join(_num(x) for x in v)
        return "\n".join(_flat(x) for x in v)
    return _num(v)


def card_sections(card: Mapping[str, Any]) -> list[Section]:
    """The model card as titled sections of (label, text) rows, in reading order."""
    used: set[str] = set()

    def take(key: str) -> Any:
        used.add(key)
        return card.get(key)

    out: list[Section] = []
    warn: list[tuple[str, str]] = []
    for key, label in (("intended_use", "Intended use"), ("disclaimer", "Disclaimer")):
        if take(key):
            warn.append((label, str(card[key])))
    lim = take("known_limitations")
    if lim:
        warn.append(("Known limitations", "\n".join(f"• {x}" for x in lim) if isinstance(lim, list) else str(lim)))
    if take("summary"):
        warn.append(("Summary", str(card["summary"])))
    out.append(("Intended use and warnings", warn or [("Intended use", "not stated in the card")]))

    model = [("Name", f"{take('name')} {take('version') or ''}".strip())]
    for key, label in (("created", "Created"), ("architecture", "Architecture")):
        if take(key):
            model.append((label, str(card[key])))
    if take("classes"):
        model.append(("Classes", _flat(card["classes"])))
    if take("threshold") is not None:
        rule = take("threshold_rule")
        model.append(("Operating threshold", f"{_num(card['threshold'])}" + (f" ({rule})" if rule else "")))
    if take("weights_file"):
        model.append(("Weights", f"{card['weights_file']} ({take('weights_dtype') or '?'}), sha256 {str(take('weights_sha256'))[:16]}…"))
    take("weights_dtype")
    take("weights_sha256")
    if take("onnx_file"):
        model.append(("ONNX", f"{card['onnx_file']}, sha256 {str(take('onnx_sha256') or '')[:16]}…"))
    take("onnx_sha256")
    out.append(("Model", model))

    td = take("training_data")
    data: list[tuple[str, str]] = [("In one line", training_data_line(card))]
    if isinstance(td, Mapping):
        for s in td.get("sources", []) or []:
            if isinstance(s, Mapping):
                data.append((f"Source ({s.get('role', '?')})", f"{s.get('path', '?')}: {_count(s) or _flat(s)}"))
        for key, label in (("split_method", "Split method"), ("leak_check", "Leak check"),
                           ("skipped_unreadable", "Unreadable, skipped"), ("image_size", "Image size")):
            if key in td:
                data.append((label, _flat(td[key])))
        if td.get("notes"):
            data.append(("Notes", "\n".join(f"• {n}" for n in td["notes"])))
        rest = {k: v for k, v in td.items() if k not in ("sources", "splits", "split_method", "leak_check",
                                                          "skipped_unreadable", "image_size", "notes")}
        for k, v in rest.items():
            data.append((k.replace("_", " ").capitalize(), _flat(v)))
    out.append(("Training data", data))
    sp = _splits(card)
    if sp:
        out.append(("Splits", [(k.capitalize(), _count(v) or _flat(v)) for k, v in sp.items()]))

    m = take("metrics")
    if isinstance(m, Mapping) and m:
        rows = [("Validated performance", performance_line(card))]
        rows += [(METRIC_TITLES.get(k, k), fmt_metric(v)) for k, v in m.items()]
        out.append(("Metrics (95% bootstrap intervals)", rows))

    cal = take("calibration")
    if isinstance(cal, Mapping) and cal.get("temperature") is not None:
        rows = [("Temperature", f"{_num(cal.get('temperature'))} (probabilities are softmax(logits / T))")]
        if "ece_before" in cal or "ece_after" in cal:
            rows.append(("ECE", f"{_num(cal.get('ece_before'))} before → {_num(cal.get('ece_after'))} after"))
        rows += [(k.replace("_", " ").capitalize(), _flat(v)) for k, v in cal.items()
                 if k not in ("temperature", "ece_before", "ece_after")]
        out.append(("Calibration", rows))
    else:
        out.append(("Calibration", [("Temperature", "none in the card: uncalibrated probabilities (T = 1)")]))

    g = take("ood")
    if isinstance(g, Mapping) and g:
        rows = [("Method", str(g.get("method", g.get("feature", "?"))))]
        if "threshold" in g:
            rows.append(("Threshold", f"{_num(g['threshold'], 2)} (keeps {_num(100 * float(g.get('keep_rate_val', 0)), 1)} % of validation images)"))
        if "n_train" in g:
            rows.append(("Fitted on", f"{g.get('n_train')} training images; threshold on {g.get('n_val')} validation images"))
        rows += [(k.replace("_", " ").capitalize(), _flat(v)) for k, v in g.items()
                 if k not in ("method", "threshold", "n_train", "n_val", "keep_rate_val")]
        out.append(("Out-of-distribution gate", rows))
    else:
        out.append(("Out-of-distribution gate", [("Learned check", "none: only the DICOM header rules apply")]))

    q = take("int8")
    if isinstance(q, Mapping) and q:  # cxrviewer.ml.quantize: the measured INT8 graph
        rows = [("Used by default", "yes (precision auto, on CPU)" if q.get("default") else "no: opt-in (precision int8)")]
        if "auc_delta" in q:
            rows.append(("Test AUC", f"{_num(q.get('auc_fp32'), 4)} float32 → {_num(q.get('auc_int8'), 4)} INT8 "
                         f"(change {float(q['auc_delta']):+.4f}, {q.get('test_n')} test images)"))
            rows.append(("Grad-CAM vs float32", f"Pearson {_num(q.get('cam_pearson'), 4)} (mean; min {_num(q.get('cam_pearson_min'), 4)})"))
            rows.append(("Speed", f"{_num(q.get('speedup'), 2)}× float32 (batch {q.get('batch')}, where it was measured)"))
        if isinstance(q.get("isa"), Mapping):
            from cxrviewer.ml.cpu_isa import describe

            rows.append(("Measured on", f"{describe(q['isa'])}; precision auto uses it only on CPUs of this INT8 kernel class"))
        rows += [(k.replace("_", " ").capitalize(), _flat(v)) for k, v in q.items() if k in
                 ("file", "calibration_n", "calibration_data", "format", "weights", "activations", "quantized_for", "rule")]
        out.append(("INT8 (quantized graph)", rows))

    loc = take("localization")
    if isinstance(loc, Mapping) and loc:
        out.append(("Localization (Grad-CAM)", [(k.replace("_", " ").capitalize(), _flat(v)) for k, v in loc.items()]))

    pre = take("preprocessing")
    if isinstance(pre, Mapping):
        out.append(("Preprocessing", [(k.replace("_", " ").capitalize(), _flat(v)) for k, v in pre.items()]))
    head = take("head")
    tr = take("training")
    if isinstance(tr, Mapping) or head:
        rows = []
        if isinstance(tr, Mapping):
            rows = [(k.replace("_", " ").capitalize(), _flat(v)) for k, v in tr.items()]
        if head:
            rows.append(("Head", _flat(head)))
        out.append(("Training recipe", rows))
    rest = [(k.replace("_", " ").capitalize(), _flat(v)) for k, v in card.items() if k not in used]
    if rest:
        out.append(("Other", rest))
    return out


__all__ = ["METRIC_TITLES", "card_sections", "fmt_metric", "performance_line", "training_data_line"]
