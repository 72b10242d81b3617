"""What a person reads after a run: PNG plots (matplotlib, Agg) and ``report.md``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from cxrviewer import atomic
from training import metrics as M


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic.write_bytes(path, buf.getvalue())
    return path


def plots(out: Path, history: list[dict], evals: dict[str, tuple[np.ndarray, np.ndarray]], thr: float,
          conf: dict[str, int]) -> list[Path]:
    """``roc.png``, ``confusion.png``, ``curves.png`` in ``out``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    written = []
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for name, (y, s) in evals.items():
        if len(set(np.asarray(y).tolist())) < 2:
            continue
        fpr, tpr, thrs = M.roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {M.fmt(M.roc_auc(y, s))}, n={len(y)})")
        sel = M.confusion(y, s, thr)
        sens = sel["tp"] / max(1, sel["tp"] + sel["fn"])
        fp_rate = sel["fp"] / max(1, sel["fp"] + sel["tn"])
        ax.plot([fp_rate], [sens], "o", color=ax.lines[-1].get_color())
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=0.8)
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    ax.set_title(f"ROC (dots: operating threshold {thr:.3f})")
    ax.legend(loc="lower right", fontsize=8)
    written.append(_save(fig, out / "roc.png"))

    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    mat = np.array([[conf["tn"], conf["fp"]], [conf["fn"], conf["tp"]]])
    ax.imshow(mat, cmap="Blues")
    for (i, j), v in np.ndenumerate(mat):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if v > mat.max() / 2 else "black", fontsize=14)
    ax.set_xticks([0, 1], ["Normal", "Abnormal"])
    ax.set_yticks([0, 1], ["Normal", "Abnormal"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Confusion matrix (threshold {thr:.3f})")
    written.append(_save(fig, out / "confusion.png"))

    fig = Figure(figsize=(9, 3.5))
    a1, a2 = fig.subplots(1, 2)
    ep = [h["epoch"] for h in history]
    a1.plot(ep, [h["train_loss"] for h in history], label="train")
    a1.plot(ep, [h["val_loss"] for h in history], label="val")
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.legend()
    a2.plot(ep, [h["train_auc"] for h in history], label="train (augmented)")
    a2.plot(ep, [h["val_auc"] for h in history], label="val")
    a2.set_xlabel("epoch")
    a2.set_ylabel("AUC")
    a2.legend()
    fig.suptitle("Learning curves")
    written.append(_save(fig, out / "curves.png"))
    return written


def feedback_lines(sources: list[dict[str, Any]]) -> list[str]:
    """"Labels from reader feedback: N of M (readers ...)" when a source was a feedback export."""
    fed = [s for s in sources if s.get("feedback")]
    if not fed:
        return []
    total = sum(s["images"] for s in sources)
    n = sum(s["feedback"]["labels"] for s in fed)
    readers: dict[str, int] = {}
    for s in fed:
        for r, k in s["feedback"]["readers"].items():
            readers[r] = readers.get(r, 0) + k
    who = ", ".join(f"{r} ({k})" for r, k in sorted(readers.items()))
    return [f"- **Labels from reader feedback: {n} of {total}**, from {len(readers)} "
            f"reader{'s' if len(readers) != 1 else ''}: {who}"]


def report_md(card: dict[str, Any], results: dict[str, Any], history: list[dict], pngs: list[Path]) -> str:
    """A report a person can read: data, leak check, recipe, curves, metrics with intervals."""
    m = results["metrics"]
    split = results["report_split"]
    L = [f"# Training report: {card['name']} {card['version']}", ""]
    L.append("> " + card.get("intended_use", ""))
    L.append("")
    L.append("## Data")
    for s in results["sources"]:
        L.append(f"- `{s['path']}` ({s['format']}, used as {s['role']}): {s['images']} images, "
                 f"{s['normal']} normal / {s['abnormal']} abnormal, {s['patients']} patients")
    L += feedback_lines(results["sources"])
    L.append("")
    L.append("| split | images | normal | abnormal | patients |")
    L.append("|---|---|---|---|---|")
    for k, v in results["splits"].items():
        L.append(f"| {k} | {v['images']} | {v['normal']} | {v['abnormal']} | {v['patients']} |")
    L.append("")
    L.append(f"**Leak check:** {results['leak_check']}")
    for n in results["notes"]:
        L.append(f"- {n}")
    sk = results["skipped"]
    L.append(f"- unreadable images skipped: {len(sk)}")
    for s in sk[:50]:
        L.append(f"  - `{s['path']}`: {s['reason']}")
    if len(sk) > 50:
        L.append(f"  - ... and {len(sk) - 50} more (metrics.json lists all)")
    L.append("")
    tr = card.get("training", {})
    L.append("## Training")
    L.append(f"- image size {card['preprocessing']['size']} px, preprocessing {json.dumps(card['preprocessing'])}")
    L.append(f"- recipe: {json.dumps(tr.get('recipe', {}))}")
    L.append(f"- started from: {tr.get('init') or 'random initialisation'}")
    L.append(f"- {tr.get('epochs_run')} epochs run{' (early stop)' if results['stopped_early'] else ''}, "
             f"best validation AUC {M.fmt(results['best_val_auc'], 4)} at epoch {results['best_epoch']}; "
             f"{tr.get('device')} x{tr.get('processes')}, amp {tr.get('amp')}, {tr.get('seconds')} s")
    L.append(f"- shipped weights: {results.get('selection', 'best validation epoch')}")
    L.append("")
    L.append("| epoch | train loss | val loss | train AUC | val AUC | val acc | lr | s |")
    L.append("|---|---|---|---|---|---|---|---|")
    for h in history:
        L.append(f"| {h['epoch']}{' *' if h.get('best') else ''} | {h['train_loss']:.4f} | {h['val_loss']:.4f} | "
                 f"{M.fmt(h['train_auc'])} | {M.fmt(h['val_auc'])} | {M.fmt(h['val_accuracy'])} | {h['lr']:.2e} | {h['seconds']:.1f} |")
    L.append("")
    L.append(f"## Results on the {split} split")
    L.append(f"Operating threshold on P(Abnormal): **{results['threshold']:.4f}** ({results['threshold_rule']}). "
             "Intervals: 95% percentile bootstrap over images.")
    L.append("")
    L.append("| metric | value [95% CI] |")
    L.append("|---|---|")
    for k in M.METRIC_NAMES:
        L.append(f"| {M.METRIC_TITLES[k]} | {M.fmt_ci(m[k])} |")
    c = results["confusion"]
    L.append("")
    L.append(f"Confusion at the threshold: TP {c['tp']}, FP {c['fp']}, TN {c['tn']}, FN {c['fn']}.")
    L.append("")
    for p in pngs:
        L.append(f"![{p.stem}]({p.name})")
    L.append("")
    return "\n".join(L) + "\n"


def cv_summary(out: Path, results: list[dict], k: int) -> dict[str, Any]:
    """Mean and SD of each metric over folds -> ``cv_summary.json`` + ``cv_report.md``."""
    keys = list(M.METRIC_NAMES)
    split = results[0].get("report_split", "test") if results else "test"
    summary: dict[str, Any] = {"folds": k, "split": split, "metrics": {}, "val_auc": None, "per_fold": []}
    for key in keys:
        summary["metrics"][key] = M.summarize_folds([r["metrics"][key]["value"] for r in results])
    summary["val_auc"] = M.summarize_folds([r["best_val_auc"] for r in results])
    for r in results:
        summary["per_fold"].append({"fold": (r.get("fold") or 0) + 1, "best_val_auc": r["best_val_auc"],
                                    "threshold": r["threshold"], "leak_check": r["leak_check"],
                                    **{key: r["metrics"][key]["value"] for key in keys}})
    atomic.write_text(out / "cv_summary.json", json.dumps(M.jsonable(summary), indent=1) + "\n")
    L = [f"# {k}-fold cross-validation (patient-wise, stratified)", ""]
    L.append(f"Validation AUC over folds: {M.fmt(summary['val_auc']['mean'])} ± {M.fmt(summary['val_auc']['sd'])} (mean ± SD)")
    L.append("")
    L.append(f"| metric ({split}) | mean ± SD over folds |")
    L.append("|---|---|")
    for key in keys:
        s = summary["metrics"][key]
        L.append(f"| {M.METRIC_TITLES[key]} | {M.fmt(s['mean'])} ± {M.fmt(s['sd'])} |")
    L.append("")
    L.append("| fold | val AUC | " + " | ".join(keys) + " | leak check |")
    L.append("|---|---|" + "---|" * len(keys) + "---|")
    for f in summary["per_fold"]:
        L.append(f"| {f['fold']} | {M.fmt(f['best_val_auc'])} | " + " | ".join(M.fmt(f[key]) for key in keys)
                 + f" | {f['leak_check']} |")
    atomic.write_text(out / "cv_report.md", "\n".join(L) + "\n")
    print(f"cross-validation: val AUC {M.fmt(summary['val_auc']['mean'])} ± {M.fmt(summary['val_auc']['sd'])}; "
          f"{split} AUC {M.fmt(summary['metrics']['auc']['mean'])} ± {M.fmt(summary['metrics']['auc']['sd'])}; "
          f"report {out / 'cv_report.md'}", flush=True)
    return summary
