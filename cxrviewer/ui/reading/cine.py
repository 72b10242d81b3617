"""Cine for multi-frame images: View → Play / Pause Frames (Ctrl+Shift+P) steps through the
frames at the chosen speed (View → Cine Speed), wrapping, keeping the window and orientation
as Ctrl+PgDown does. On screen, under the viewports, a cine bar (shown only for a multi-frame
image) has play/pause, a frame slider, the frame number and the frames per second. A frame is requested only when the previous one is on screen, so a slow
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
    fpsChanged = QtCore.Signal(float)

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
        fps = max(0.5, float(fps))
        if fps == self.fps:
            return
        self.fps = fps
        self._timer.setInterval(round(1000 / self.fps))
        self.fpsChanged.emit(self.fps)

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


class CineBar(QtWidgets.QToolBar):
    """The on-screen cine controls: play/pause, a frame slider, "Frame n / N" and frames per
    second. Shown only while the image on screen has more than one frame."""

    def __init__(self, player: CinePlayer, window) -> None:
        super().__init__("Cine", window)
        self.setObjectName("toolbar_cine")
        self.setMovable(False)
        self.player, self.window = player, window
        self.play_button = QtWidgets.QToolButton(self)
        self.play_button.setObjectName("cinePlay")
        self.play_button.setCheckable(True)
        self.play_button.setText("▶ Play")
        self.play_button.setToolTip("Play / pause the frames (Ctrl+Shift+P)")
        self.play_button.toggled.connect(self._play_toggled)
        self.addWidget(self.play_button)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal, self)
        self.slider.setObjectName("cineFrame")
        self.slider.setMinimumWidth(160)
        self.slider.setToolTip("Frame (the wheel over the image steps frames; Ctrl+wheel zooms)")
        self.slider.valueChanged.connect(self._slider_moved)
        self.addWidget(self.slider)
        self.frame_label = QtWidgets.QLabel("", self)
        self.frame_label.setObjectName("cineFrameLabel")
        self.frame_label.setMinimumWidth(self.frame_label.fontMetrics().horizontalAdvance("Frame 000 / 000") + 8)
        self.addWidget(self.frame_label)
        self.fps = QtWidgets.QSpinBox(self)
        self.fps.setObjectName("cineFps")
        self.fps.setRange(1, 60)
        self.fps.setSuffix(" fps")
        self.fps.setValue(int(player.fps))
        self.fps.setToolTip("Frames per second")
        self.fps.valueChanged.connect(player.set_fps)
        self.addWidget(self.fps)
        player.playingChanged.connect(self._playing_changed)
        player.fpsChanged.connect(lambda f: self.fps.setValue(round(f)))
        window.imageLoaded.connect(self._image)
        window.imageCleared.connect(lambda: self._image(None))
        self._image(window.current_image)

    def sync(self) -> None:
        """Show or hide for the image on screen (after the window restored its toolbars)."""
        self._image(self.window.current_image)

    def _image(self, img) -> None:
        multi = img is not None and img.n_frames > 1
        self.setVisible(multi)
        if not multi:
            return
        blocker = QtCore.QSignalBlocker(self.slider)
        self.slider.setRange(0, img.n_frames - 1)
        self.slider.setValue(img.frame)
        del blocker
        self.frame_label.setText(f"Frame {img.frame + 1} / {img.n_frames}")

    def _slider_moved(self, value: int) -> None:
        if not self.player.playing():
            self.window.show_frame(value)

    def _play_toggled(self, on: bool) -> None:
        if on != self.player.playing():
            ok = self.player.play() if on else (self.player.stop() or False)
            if on and not ok:
                self._playing_changed(False)

    def _playing_changed(self, on: bool) -> None:
        blocker = QtCore.QSignalBlocker(self.play_button)
        self.play_button.setChecked(on)
        del blocker
        self.play_button.setText("❚❚ Pause" if on else "▶ Play")


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
    # the bar's fps box and the menu show the same speed
    player.fpsChanged.connect(lambda f: [a.setChecked(a.text() == f"{f:g} frames/s") for a in speed.actions()])
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
    player.bar = CineBar(player, window)
    window.addToolBar(QtCore.Qt.ToolBarArea.BottomToolBarArea, player.bar)
    return player
