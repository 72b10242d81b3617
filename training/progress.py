"""Console output of a training run: rank-0 log lines and progress.

On a terminal, progress is a bar on stderr redrawn in place. Without one (nohup, cron, a log
file, the app's child process) it is one plain line at most every ``interval`` seconds
(step, images/s, ETA), so a log is never silent for long and never floods.
"""

from __future__ import annotations

import sys
import time

from cxrviewer.core.durations import fmt_duration  # noqa: F401  (training's callers import it from here)


def log(msg: str, rank: int = 0) -> None:
    """Print one line on stdout from rank 0 only."""
    if rank == 0:
        print(msg, flush=True)


class Progress:
    """Step progress with rate and ETA on stderr (rank 0 only).

    Parameters
    ----------
    enabled
        False on ranks other than 0.
    interval
        Without a terminal: seconds between two progress lines (the first comes after one
        interval too: a short phase prints none).
    tty
        Force the terminal (True) or the line (False) form; default: ``sys.stderr.isatty()``.
    """

    def __init__(self, enabled: bool, interval: float = 30.0, tty: bool | None = None) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.interval = max(0.0, float(interval))
        self.items_per_step = 1
        #: seconds the run needs after the current phase (set by the trainer; adds to the ETA)
        self.after_s: float | None = None
        self.t0 = time.monotonic()
        self._last = 0.0
        self._last_line = self.t0

    def start(self, items_per_step: int = 1, after_s: float | None = None) -> None:
        self.t0 = self._last_line = time.monotonic()
        self.items_per_step = max(1, int(items_per_step))
        self.after_s = after_s

    def __call__(self, label: str, done: int, total: int, extra: str = "") -> None:
        if not self.enabled or total <= 0:
            return
        now = time.monotonic()
        el = now - self.t0
        eta = el / max(done, 1) * (total - done)
        if self.tty:
            if done < total and now - self._last < 0.1:  # ~10 redraws a second at most
                return
            self._last = now
            width = 24
            bar = "#" * int(width * done / total) + "-" * (width - int(width * done / total))
            sys.stderr.write(f"\r{label} [{bar}] {done}/{total} ETA {eta:5.0f}s {extra}   ")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()
            return
        if done >= total or now - self._last_line < self.interval:
            return
        self._last_line = now
        rate = done * self.items_per_step / max(el, 1e-9)
        run = f", run ETA {fmt_duration(eta + self.after_s)}" if self.after_s is not None else ""
        step = "step " if self.items_per_step > 1 else ""
        print(f"{label} {step}{done}/{total}, {rate:.1f} images/s, ETA {fmt_duration(eta)}{run}"
              f"{', ' + extra if extra else ''}", file=sys.stderr, flush=True)
