"""*Compare with prior* (View menu, Shift+P): the current image on the left, the same patient's
most recent earlier study on the right, each captioned with its study date, window/level and
zoom/pan synchronised.

Which image is the prior is decided by :func:`cxrviewer.core.priors.find_prior` (Qt-free,
tested on headers); this module only asks the viewport grid to show it. Shift+P because P is
the Pan tool and Ctrl+P is Print in most applications; nothing else uses it.
"""

from __future__ import annotations

import logging
import os

from PySide6 import QtCore

from cxrviewer.core.priors import PriorResult, find_prior

SHORTCUT = "Shift+P"

_log = logging.getLogger(__name__)


class PriorCompare(QtCore.QObject):
    """The *Compare with prior* action of one main window.

    Attributes
    ----------
    action
        The ``QAction`` (in the View menu, listed by the shortcuts dialog).
    last
        What the last request found (``None`` before the first).
    """

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.grid = window.viewports
        self.last: PriorResult | None = None
        self._pending_prior: str | None = None
        self.action = window.add_action(
            window.menus["view"], "Compare with &Prior", self.compare, SHORTCUT,
            tip="Open the same patient's most recent earlier study beside this image "
                "(window/level and zoom/pan synchronised)")
        self.action.setEnabled(False)
        window.imageLoaded.connect(self._update_enabled)
        window.imageCleared.connect(self._update_enabled)
        self.grid.activeChanged.connect(self._update_enabled)
        self.grid.opened.connect(self._opened)

    def _update_enabled(self, *_a) -> None:
        self.action.setEnabled(self.window.current_image is not None)

    def compare(self) -> PriorResult:
        """Find the prior of the current image and show it beside it; when there is none, say
        why in the status bar and leave the layout as it is.

        Returns
        -------
        PriorResult
            What :func:`~cxrviewer.core.priors.find_prior` found (also kept in :attr:`last`).
        """
        w, grid = self.window, self.grid
        img = w.current_image
        if img is None:
            self.last = PriorResult(None, "No image is shown")
        else:
            # the last finished scan (the index of a folder still being scanned is partial)
            self.last = find_prior(w.last_scan, w.current_path or img.path)
            if self.last.match is None and w.scanner.running():
                self.last = PriorResult(None, "The folder is still being scanned: try again when it is done")
        match = self.last.match
        if match is None:
            w.show_message(self.last.reason)
            return self.last
        current_path = w.current_path or img.path
        grid.set_layout("1x2")
        # the current image on the left, active (keys and panels stay on it); the decoded
        # image is handed over, so nothing is read again. The captions ("Current · date",
        # "Prior · date") come from the viewer model, which derives them from what is shown.
        if grid.active != 0 or grid.path(0) != current_path or grid.canvas(0).img is not img:
            grid.set_active(0)
            grid.open(0, img)
        self._pending_prior = match.instance.path
        grid.open(1, match.instance.path)
        grid.set_sync(wl=True, zoom=True)  # on by default for a comparison (issue 14)
        view = "" if match.same_view else " (no image of the same view there: its first image)"
        w.show_message(f"Prior · {match.date_text}: {os.path.basename(match.instance.path)}{view}")
        _log.info("prior compare opened (same view: %s)", match.same_view)  # no dates: PHI
        return self.last

    def _opened(self, index: int, img) -> None:
        if index == 1 and img.path == self._pending_prior:
            self._pending_prior = None
            # the prior arrives after sync was turned on: give it the current view's zoom/pan
            self.grid.set_sync(wl=True, zoom=True)


def install(window) -> PriorCompare:
    """Add *Compare with prior* to ``window`` (after its viewport grid exists)."""
    return PriorCompare(window)
