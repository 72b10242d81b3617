"""Cine for multi-frame images: View → Play / Pause Frames (Ctrl+Shift+P) steps through the
frames at the chosen speed (View → Cine Speed), wrapping, keeping the window and orientation
as Ctrl+PgDown does. A frame is requested only when the previous one is on screen, so a slow
decoder lowers the frame rate instead of building a backlog. Another image, or one with a
single frame, stops it.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

SPEEDS = (2, 5, 10, 15, 25, 30)
DEFAULT_FPS = 10


class CinePlayer(QtCore.QObject):
    """Plays the frames of the main window's current image."""

    playingChanged = QtCore.Signal(bool)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.fps = DEFAULT_FPS
        self._timer = QtCore.QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._waiting = False
        self._path: str | None = None
        window.imageLoaded.connect(self._loaded)
        window.imageCleared.connect(self.stop)

    def playing(self) -> bool:
        return self._timer.isActive()

    def set_fps(self, fps: float) -> None:
        self.fps = max(0.5, float(fps))
        self._timer.setInterval(round(1000 / self.fps))

    def play(self) -> bool:
        img = self.window.current_image
        if img is None or img.n_frames <= 1:
            return False
        self._path = img.path
        self._waiting = False
        self._timer.start(round(1000 / self.fps))
        self.playingChanged.emit(True)
        return True

    def stop(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self.playingChanged.emit(False)

    def toggle(self) -> bool:
        if self.playing():
            self.stop()
            return False
        return self.play()

    def _tick(self) -> None:
        if self._waiting:
            return  # the last frame is not on screen yet
        img = self.window.current_image
        if img is None or img.path != self._path or img.n_frames <= 1:
            self.stop()
            return
        self._waiting = self.window.step_frame(1) is not None

    def _loaded(self, img) -> None:
        self._waiting = False
        if self.playing() and (img.path != self._path or img.n_frames <= 1):
            self.stop()


def install(window) -> CinePlayer:
    """The View menu's Play / Pause Frames and Cine Speed."""
    player = CinePlayer(window)
    menu = window.menus["view"]
    anchor = window.act_prev_frame
    act = QtGui.QAction("&Play / Pause Frames", window)
    act.setCheckable(True)
    act.setShortcut(QtGui.QKeySequence("Ctrl+Shift+P"))
    act.setStatusTip("Multi-frame images: play the frames (cine)")

    def triggered(on: bool) -> None:
        if on:
            act.setChecked(player.play())  # stays unchecked on a single-frame image
        else:
            player.stop()

    act.triggered.connect(triggered)
    player.playingChanged.connect(act.setChecked)
    speed = QtGui.QActionGroup(window)
    sub = QtWidgets.QMenu("Cine &Speed", window)
    for fps in SPEEDS:
        a = sub.addAction(f"{fps} frames/s")
        a.setCheckable(True)
        a.setChecked(fps == DEFAULT_FPS)
        a.triggered.connect(lambda _=False, f=fps: player.set_fps(f))
        speed.addAction(a)
    # right after the frame steps
    actions = menu.actions()
    idx = actions.index(anchor) if anchor in actions else len(actions) - 1
    after = actions[idx + 1] if idx + 1 < len(actions) else None
    menu.insertAction(after, act)
    menu.insertMenu(after, sub)
    window.addAction(act)
    window.actions_list.append(act)

    def enable(img=None) -> None:
        cur = window.current_image
        act.setEnabled(cur is not None and cur.n_frames > 1)

    window.imageLoaded.connect(enable)
    window.imageCleared.connect(enable)
    enable()
    player.action = act
    return player
