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
        self._pending: set[str] = set()  # images of a comparison still being decoded
        self._hang_next = False  # hang the next opened study by the protocols
        self.action = window.add_action(
            window.menus["view"], "Compare with &Prior", self.compare, SHORTCUT,
            tip="Open the same patient's most recent earlier study beside this image "
                "(window/level and zoom/pan synchronised)")
        self.action.setEnabled(False)
        window.imageLoaded.connect(self._update_enabled)
        window.imageCleared.connect(self._update_enabled)
        self.grid.activeChanged.connect(self._update_enabled)
        self.grid.opened.connect(self._opened)
        # a study just opened (folder or file) hangs by the protocols once its scan is done
        window.openingPath.connect(lambda _p: setattr(self, "_hang_next", True))
        window.scanFinished.connect(self._scan_finished)

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
        hanging = self._hanging(w.last_scan, current_path, match.study)
        if hanging is None:  # no protocol applies: the prior beside the current image
            from cxrviewer.viewer.protocols import Hanging

            hanging = Hanging("", "1x2", (None, None))
            paths = [current_path, match.instance.path]
        else:
            paths = [ref.path for ref in hanging.images]
        model = w.model  # layout, active viewport and what to open are intent sent to the model
        model.set_layout(hanging.layout)
        # viewport 0 active (keys and panels stay on it); the decoded current image is handed
        # over, so nothing is read again. The captions ("Current · date", "Prior · date") come
        # from the viewer model, which derives them from what is shown.
        self._pending = set(paths[1:])
        model.set_active(0)
        if paths[0] == current_path:
            if grid.path(0) != current_path or grid.canvas(0).img is not img:
                grid.open(0, img)  # the decoded image itself: nothing is read again
        else:
            model.request_open(0, paths[0])
        for i, path in enumerate(paths[1:], start=1):
            model.request_open(i, path)
        grid.set_sync(wl=True, zoom=True)  # on by default for a comparison (issue 14)
        view = "" if match.same_view else " (no image of the same view there: its first image)"
        how = f" · {hanging.name}" if hanging.name else ""
        w.show_message(f"Prior · {match.date_text}: {os.path.basename(match.instance.path)}{view}{how}")
        _log.info("prior compare opened (same view: %s, layout %s)", match.same_view, hanging.layout)  # no dates: PHI
        return self.last

    def _opened(self, index: int, img) -> None:
        if index > 0 and img.path in self._pending:
            self._pending.discard(img.path)
            # it arrives after sync was turned on: give it the current view's zoom/pan
            self.grid.set_sync(wl=True, zoom=True)
        if self._hang_next and index == self.grid.active and not self.window.scanner.running():
            self.hang_study()

    # ------------------------------------------------------------ hanging protocols
    def protocols(self) -> list[dict]:
        """The hanging protocols: the settings' ``viewer/hanging_protocols`` (JSON), else the
        built-in ones; a bad setting is said once in the status bar and the built-in ones used."""
        from cxrviewer.viewer import protocols as hp

        text = self.window.settings.get("viewer/hanging_protocols", "")
        try:
            return hp.loads(text if isinstance(text, str) else "")
        except ValueError as e:
            self.window.show_message(f"settings viewer/hanging_protocols: {e}; using the built-in ones", error=True)
            return hp.loads(None)

    def _hanging(self, scan, path: str, prior_study=None):
        """The first protocol that applies to ``path`` (and, comparing, ``prior_study``)."""
        from cxrviewer.viewer import ImageRef
        from cxrviewer.viewer.protocols import hang

        found = _study_of(scan, path)
        if found is None:
            return None
        pid, study = found

        def refs(st):
            return [ImageRef.from_instance(i, st, pid) for se in st.series for i in se.instances]

        current = refs(study)
        selected = next((r for r in current if r.path == path), None)
        if selected is None:
            return None
        prior = refs(prior_study) if prior_study is not None else []
        return hang(self.protocols(), selected, current, prior, compare=prior_study is not None)

    def hang_study(self):
        """Hang the current image's study by the first protocol that applies (a frontal and a
        lateral: 1×2); a protocol of one image leaves the reader's layout alone."""
        self._hang_next = False
        w = self.window
        img = w.current_image
        if img is None or w.last_scan is None:
            return None
        h = self._hanging(w.last_scan, w.current_path or img.path)
        if h is None or len(h.images) < 2:
            return h
        w.model.set_layout(h.layout)
        for i, ref in enumerate(h.images):
            if i == 0 and ref.path == (w.current_path or img.path):
                continue
            w.model.request_open(i, ref.path)
        w.show_message(f"Hanging protocol: {h.name}")
        return h

    def _scan_finished(self, _res) -> None:
        if self._hang_next and self.window.current_image is not None:
            self.hang_study()


def _study_of(scan, path: str):
    """``(patient id, StudyInfo)`` of the scanned image ``path``, or ``None``."""
    if scan is None:
        return None
    for p in scan.patients:
        for st in p.studies:
            if any(i.path == path for se in st.series for i in se.instances):
                return p.patient_id, st
    return None


def install(window) -> PriorCompare:
    """Add *Compare with prior* to ``window`` (after its viewport grid exists)."""
    return PriorCompare(window)
