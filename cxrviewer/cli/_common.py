"""Small helpers shared by subcommands (one-line errors, JSON output)."""

from __future__ import annotations

import json
import sys
from typing import Any


def fail(message: str, code: int = 2) -> int:
    """Print a one-line error to stderr and return the exit code."""
    print(f"cxrviewer: error: {message}", file=sys.stderr)
    return code


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


class TtyProgress:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self, label: str, enabled: bool | None = None) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        width = 30
        filled = int(width * done / total)
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def resolve_model(name: str | None):
    """``--model``: a model directory, or a registry name; ``None`` = the active model."""
    from pathlib import Path

    if name is None:
        return None
    if Path(name).is_dir():
        return Path(name)
    from cxrviewer.ml.registry import Registry

    return Registry().get(name).path
