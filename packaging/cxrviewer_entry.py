"""Entry point of the frozen app: ``dist/cxrviewer/cxrviewer [COMMAND] ...``.

The same command line as the ``cxrviewer`` console script. Two things only a frozen app needs:
``multiprocessing.freeze_support()`` (the study scanner reads headers in a spawn process pool;
without it each worker would start another copy of the app), and a clear message when a
command needs torch in the viewer-only bundle, which leaves torch out.
"""

import multiprocessing
import sys


def _main() -> int:
    from cxrviewer.cli import main

    try:
        return main()
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        if top in ("torch", "torchvision", "training", "tensorboard", "matplotlib", "onnx"):
            print(
                f"cxrviewer: this is the viewer-only build, which does not include {top!r}; "
                "training, evaluation, ONNX export and the torch backend need the full build "
                "(packaging/README.md) or a Python install with 'pip install cxrviewer[train]'",
                file=sys.stderr,
            )
            return 3
        raise


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(_main())
