"""The command line of ``python -m training`` / ``cxrviewer train`` (no numpy, no torch: the
``cxrviewer`` command builds this parser at start-up)."""

from __future__ import annotations

import argparse

from cxrviewer.core import durations
from training.distributed import DIST_TIMEOUT_MIN
from training.nets import ARCHES


def _fractions(s: str) -> tuple[float, float, float]:
    try:
        parts = [float(x) for x in s.replace("/", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--split {s!r}: expected three numbers like 0.7,0.1,0.2") from None
    if len(parts) != 3 or any(p < 0 for p in parts) or parts[0] <= 0:
        raise argparse.ArgumentTypeError(f"--split {s!r}: expected TRAIN,VAL,TEST fractions, train > 0")
    return tuple(parts)  # type: ignore[return-value]


def _shortcut_flags(g) -> None:
    """The flags of :class:`training.augment.ShortcutAug` (defaults: off; the demo recipe turns them on)."""
    g.add_argument("--resolution-aug", type=float, default=0.0, metavar="P",
                   help="probability of random down-then-up resampling (resolution augmentation; default 0: off)")
    g.add_argument("--resolution-min", type=float, default=0.25, metavar="F",
                   help="smallest side fraction of --resolution-aug (default 0.25: 128 px inputs down to 32 px)")
    g.add_argument("--border-erase", type=float, default=0.0, metavar="P",
                   help="probability of overwriting random strips at the image borders (film edges, markers; default 0)")
    g.add_argument("--border-max", type=float, default=0.15, metavar="F",
                   help="widest erased strip as a fraction of the side (default 0.15)")
    g.add_argument("--crop-scale", type=float, default=1.0, metavar="A",
                   help="centred lung-field crop keeping at least this area fraction, resized back (default 1: off)")
    g.add_argument("--text-aug", type=float, default=0.0, metavar="P",
                   help="probability of burning random annotation text into the image (default 0)")


def parse_duration(s: str) -> float:
    """``"20m"``, ``"1h30m"``, ``"90s"``, ``"1.5h"`` -> seconds (argparse type of ``--time-budget``)."""
    try:
        return durations.parse_duration(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _lr(s: str) -> float | str:
    if str(s).strip().lower() == "auto":
        return "auto"
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lr {s!r}: expected a number like 1e-3, or auto") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"--lr {s!r}: must be > 0")
    return v


def _minutes(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r}: expected minutes, e.g. 60") from None
    if not v > 0:  # a zero timeout would fail the first collective that waits at all
        raise argparse.ArgumentTypeError(f"{s!r}: must be > 0 minutes")
    return v


#: --lr auto: from random weights, and from existing weights (--init, --pretrained)
LR_SCRATCH, LR_FINETUNE = 1e-3, 1e-4


def resolve_lr(args) -> float:
    """The learning rate ``--lr auto`` stands for (a number is kept)."""
    if args.lr != "auto":
        return float(args.lr)
    return LR_FINETUNE if (args.init or args.pretrained != "none") else LR_SCRATCH


def _class_map_item(s: str) -> str:
    cls, sep, names = s.partition("=")
    if not sep or cls.strip().lower() not in ("normal", "abnormal") or not names.strip(" ,"):
        raise argparse.ArgumentTypeError(f"--class-map {s!r}: expected normal=NAME[,NAME...] or abnormal=NAME[,NAME...]")
    return s


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the text already states it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.help is argparse.SUPPRESS or not action.option_strings or action.required
                or action.default is argparse.SUPPRESS):
            return text
        if "default" in text.lower() or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            return text
        d = action.default
        if isinstance(action, argparse._StoreFalseAction):
            shown = f"{action.dest.replace('_', '-')} {'on' if d else 'off'}"  # --no-X: X is on unless given
        elif isinstance(action, argparse._StoreTrueAction):
            shown = "on" if d else "off"
        elif d is None or d == []:
            shown = "none"
        else:
            shown = "%(default)s"
        return f"{text} (default: {shown})" if text else f"default: {shown}"


def get_args_parser(add_help: bool = True, prog: str = "python -m training") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, add_help=add_help, formatter_class=DefaultsHelpFormatter,
        description="Train the Normal/Abnormal ResNet-50 on a labelled chest X-ray set "
                    "(NIH ChestX-ray14 layout, class folders, or a CSV). Multi-GPU: torchrun --nproc-per-node N -m training ...",
    )
    g = p.add_argument_group("data")
    g.add_argument("--data", action="append", required=True, metavar="PATH",
                   help="labelled set to split patient-wise into train/val/test (repeatable); "
                        "predefined splits (a split column, train/ valid/ test/ folders) are kept")
    g.add_argument("--train-data", action="append", default=[], metavar="PATH",
                   help="extra set used for training only (patients also in val/test are dropped)")
    g.add_argument("--val-data", action="append", default=[], metavar="PATH",
                   help="separate validation set (model selection, threshold); no val split is then cut")
    g.add_argument("--test-data", action="append", default=[], metavar="PATH",
                   help="separate test set; no test split is then cut")
    g.add_argument("--format", default="auto", choices=["auto", "nih", "csv", "folders"],
                   help="data layout (default: detected from what each PATH is)")
    g.add_argument("--class-map", nargs="+", type=_class_map_item, default=[], metavar="CLASS=NAMES",
                   help="folder (or CSV label) names of a class, case-insensitive, e.g. --class-map normal=NORMAL "
                        "abnormal=PNEUMONIA,COVID (default: normal|0_normal|negative vs "
                        "abnormal|pneumonia|1_abnormal|positive, any case)")
    g.add_argument("--images", default=None, metavar="DIR",
                   help="NIH layout: folder of the images when it is not the CSV's folder (searched recursively)")
    g.add_argument("--split", type=_fractions, default=None, metavar="TR,VA,TE",
                   help="patient-wise train,val,test fractions (default 0.7,0.1,0.2, with no val/test cut where "
                        "--val-data/--test-data or predefined splits provide them; an explicit --split is obeyed "
                        "and its cuts join those sets)")
    g.add_argument("--folds", type=int, default=0, help="patient-wise stratified K-fold cross-validation (e.g. 5)")
    g.add_argument("--fold", type=int, default=None, help="with --folds: run only this fold (0-based)")
    g.add_argument("--max-images", type=int, default=0, metavar="N",
                   help="use at most N images of each PATH (stratified, seeded; for quick trials)")
    g.add_argument("--boxes", default=None, metavar="CSV",
                   help="lesion boxes for the report's pointing game: path,x,y,w,h in the image's pixels, or NIH's "
                        "BBox_List_2017.csv[.gz] (matched by file name)")
    g.add_argument("--image-size", type=int, default=224,
                   help="image resolution in pixels (default 224): the model input, unless --min-input-size is larger")
    g.add_argument("--min-input-size", type=int, default=0, metavar="PX",
                   help="smallest model input (0: off): e.g. 64 reduces images to --image-size 28 and enlarges them "
                        "to 64 px, so ResNet-50's stride-32 stem leaves a 2x2 map (about 4x the compute of 28 px)")
    g.add_argument("--window-policy", default="default", choices=["default", "auto"],
                   help="preprocessing window (stored in the card; the viewer uses the same)")
    g.add_argument("--resize", default="stretch", choices=["stretch", "letterbox"],
                   help="stretch to a square (as the seed) or keep the aspect ratio and pad")
    g.add_argument("--workers", type=int, default=-1,
                   help="DataLoader worker processes (default: 0 on CPU, up to 8 per GPU); also image-decoding threads")

    g = p.add_argument_group("recipe")
    g.add_argument("--epochs", type=int, default=50,
                   help="at most this many epochs (early stopping and --time-budget may end sooner)")
    g.add_argument("--batch-size", type=int, default=32, help="per process (global batch = N x processes)")
    g.add_argument("--lr", type=_lr, default="auto",
                   help=f"Adam learning rate (peak, after the warm-up); auto: {LR_SCRATCH:g} from random weights, "
                        f"{LR_FINETUNE:g} from --init or --pretrained weights")
    g.add_argument("--weight-decay", type=float, default=1e-4, help="Adam weight decay (L2)")
    g.add_argument("--lr-schedule", default="cosine", choices=["cosine", "constant"],
                   help="after the warm-up: cosine decay to 1%% of --lr over the run, or constant")
    g.add_argument("--warmup-epochs", type=float, default=0.3,
                   help="linear learning-rate warm-up (epochs, may be a fraction)")
    g.add_argument("--loss", default="ce", choices=["ce", "bce"],
                   help="ce: CrossEntropy on the 2 logits; bce: the seed's BCEWithLogits on one-hot targets")
    g.add_argument("--class-weights", default="auto", metavar="auto|none|balanced|W0,W1",
                   help="loss weights per class (balanced: inverse class frequency of the train split; auto: "
                        "balanced when the train split's imbalance exceeds 3:1, else none)")
    g.add_argument("--dropout", type=float, default=0.0, help="dropout before the linear head")
    g.add_argument("--clip-grad", type=float, default=1.0, help="gradient norm clip (0: off)")
    g.add_argument("--patience", type=int, default=10, help="early stopping: epochs without a better val AUC (0: off)")
    g.add_argument("--average-last", type=int, default=0, metavar="N",
                   help="ship the average of the last N epochs' weights (BatchNorm statistics recomputed) instead "
                        "of the best-validation epoch: a fixed schedule for small, noisy validation sets; turns off early stopping")
    g.add_argument("--no-hflip", dest="hflip", action="store_false",
                   help="no horizontal flips (a flip mirrors anatomy: the heart changes side)")
    g.add_argument("--rotation", type=float, default=10.0, help="random rotation range in degrees (±)")
    g.add_argument("--jitter", type=float, default=0.2, help="brightness/contrast jitter (factor in [1-j, 1+j])")
    _shortcut_flags(g)
    g.add_argument("--pretrained", default="none", choices=["none", "imagenet"],
                   help="imagenet: torchvision weights from the local torch cache only (never downloaded)")
    g.add_argument("--init", default=None, metavar="MODEL",
                   help="start from a model directory (or a registry name), e.g. a pretraining run's RUN_DIR/model")
    g.add_argument("--freeze", default="none", choices=["none", "stem", "layer1", "layer2", "layer3"],
                   help="with --init: do not train the stem and the stages up to this one (cheaper fine-tuning on a CPU; default none)")
    g.add_argument("--seed", type=int, default=0, help="seed of the split, the initial weights and the augmentation")
    g.add_argument("--target-sensitivity", type=float, default=None, metavar="S",
                   help="operating threshold: the highest with validation sensitivity >= S (default: Youden's J)")
    g.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")

    g = p.add_argument_group("run")
    g.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="output folder (created; removed again when the run fails before its first checkpoint)")
    g.add_argument("--time-budget", type=parse_duration, default=None, metavar="DURATION",
                   help="e.g. 20m or 1h30m: measure a few steps, run as many epochs as fit (at most --epochs) and "
                        "stop early when the next epoch would overrun")
    g.add_argument("--check-data", action="store_true",
                   help="read the data lists only (no pixels, no torch): print the splits or the reason the data "
                        "cannot be used, then exit (exit 2)")
    g.add_argument("--estimate-only", action="store_true",
                   help="read the data list, measure a few steps and print the estimate, then exit (no training)")
    g.add_argument("--threads", type=int, default=0, metavar="N",
                   help="CPU threads for torch (0: auto; with several cores the speed check also tries 1 thread, "
                        "which wins on a machine busy with other work)")
    g.add_argument("--log-interval", type=float, default=30.0, metavar="S",
                   help="without a terminal: one progress line (step, images/s, ETA) at most every S seconds")
    g.add_argument("--resume", default=None, metavar="RUN_DIR|CKPT", help="continue an interrupted run")
    g.add_argument("--dist-timeout", type=_minutes, default=DIST_TIMEOUT_MIN, metavar="MIN",
                   help="DDP (torchrun): minutes a process waits for the others in a collective, e.g. while "
                        "rank 0 writes the model")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (DDP: one GPU per process)")
    g.add_argument("--amp", default="auto", choices=["auto", "on", "off"],
                   help="bf16 autocast (auto: on for CUDA only)")
    g.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                   help="keep the NCHW memory layout (channels_last is faster on most CPUs and GPUs)")
    g.add_argument("--name", default=None, help="model name in the card (default cxr-resnet50-YYYYMMDD-HHMM)")
    g.add_argument("--model-version", default="1.0", help="model version in the card")
    g.add_argument("--json-progress", action="store_true",
                   help="print one JSON object per epoch on stdout (for the app)")
    g.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                   help="write no TensorBoard scalars in RUN_DIR/tb")
    # Tests only: a tiny CNN exercises the loop's mechanics in seconds. Never a product model.
    p.add_argument("--arch", default="resnet50", choices=ARCHES, help=argparse.SUPPRESS)
    return p


def get_eval_args_parser(add_help: bool = True, prog: str = "python -m training.evaluate") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, add_help=add_help,
                                description="Evaluate a model on a labelled set: metrics with 95% bootstrap intervals "
                                            "at the card's operating threshold.")
    p.add_argument("--model", default=None,
                   help="registry name, model directory or run directory (default: the active model)")
    p.add_argument("--data", required=True, action="append", metavar="PATH",
                   help="labelled set (NIH layout, class folders or CSV, e.g. a run's splits.csv); repeatable")
    p.add_argument("--format", default="auto", choices=["auto", "nih", "csv", "folders"])
    p.add_argument("--images", default=None, metavar="DIR", help="NIH layout: the images' folder if not the CSV's")
    p.add_argument("--split", default="all", choices=["all", "train", "val", "test"],
                   help="with predefined splits in the data: evaluate only this one")
    p.add_argument("--threshold", type=float, default=None, help="override the card's operating threshold")
    p.add_argument("--boxes", default=None, metavar="CSV",
                   help="also measure where the Abnormal Grad-CAM points: pointing game on images with boxes "
                        "(path,x,y,w,h or NIH's BBox_List_2017.csv[.gz]) and the CAM mass at the borders of every image")
    p.add_argument("--out", default=None, metavar="DIR", help="write report.md, metrics.json, roc.png, confusion.png here")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=0, help="image-decoding threads (0: auto)")
    p.add_argument("--max-images", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--record", action="store_true",
                   help="store this validation in the model's card (local_validations; for a bundled model in "
                        "your user data, keyed by its weights): what earns a model its verdict in the viewer")
    return p
