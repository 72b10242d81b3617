"""Console output of a training run: rank-0 log lines and the terminal progress bar."""

from __future__ import annotations

import sys
import time


def log(msg: str, rank: int = 0) -> None:
    """Print one line on stdout from rank 0 only."""
    if rank == 0:
        print(msg, flush=True)


class Progress:
    """Epoch/batch progress with ETA on stderr, only on a terminal (and rank 0)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.t0 = time.monotonic()

    def start(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, label: str, done: int, total: int, extra: str = "") -> None:
        if not self.enabled or total <= 0:
            return
        now = time.monotonic()
        if done < total and now - getattr(self, "_last", 0.0) < 0.1:  # ~10 redraws a second at most
            return
        self._last = now
        el = now - self.t0
        eta = el / max(done, 1) * (total - done)
        width = 24
        bar = "#" * int(width * done / total) + "-" * (width - int(width * done / total))
        sys.stderr.write(f"\r{label} [{bar}] {done}/{total} ETA {eta:5.0f}s {extra}   ")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
