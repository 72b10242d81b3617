"""Windows and dialogs that fit the screen they open on (a 1280x720 laptop included)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

#: room left for the window manager's title bar and borders, which ``availableGeometry`` does
#: not subtract
FRAME_MARGIN = QtCore.QSize(16, 48)


def available(widget: QtWidgets.QWidget | None = None) -> QtCore.QRect:
    """The available geometry (without task bars) of ``widget``'s screen, else the primary's."""
    screen = widget.screen() if widget is not None else None
    screen = screen or QtGui.QGuiApplication.primaryScreen()
    return screen.availableGeometry() if screen is not None else QtCore.QRect(0, 0, 1280, 720)


def fitted(want: QtCore.QSize, avail: QtCore.QRect, minimum: QtCore.QSize | None = None) -> QtCore.QSize:
    """``want`` shrunk to ``avail`` less :data:`FRAME_MARGIN` (never below ``minimum``)."""
    w = min(want.width(), avail.width() - FRAME_MARGIN.width())
    h = min(want.height(), avail.height() - FRAME_MARGIN.height())
    if minimum is not None:
        w, h = max(w, minimum.width()), max(h, minimum.height())
    return QtCore.QSize(w, h)


def fit_to_screen(widget: QtWidgets.QWidget, want: QtCore.QSize, avail: QtCore.QRect | None = None) -> QtCore.QSize:
    """Resize ``widget`` to ``want`` or what the screen has room for, centred on it."""
    avail = avail if avail is not None else available(widget)
    size = fitted(want, avail, widget.minimumSizeHint())
    widget.resize(size)
    widget.move(avail.center() - QtCore.QPoint(size.width() // 2, (size.height() + FRAME_MARGIN.height()) // 2 - 8))
    return size


def side_dock_width(avail: QtCore.QRect, minimum: int = 240, share: float = 0.19, maximum: int = 480) -> int:
    """The first width of a side dock such as the Studies browser: ``share`` of the screen's
    available width, never under ``minimum`` (what a 1280x720 screen gets, so the image keeps
    its room) nor over ``maximum``. A wide screen thus reads names, dates and the AI column
    where a fixed width showed "(s...y)" at 1920x1080."""
    return int(min(max(round(avail.width() * share), minimum), maximum))


def on_screen(geometry: QtCore.QRect, avail: QtCore.QRect) -> bool:
    """Whether a remembered window ``geometry`` still lies mostly on ``avail`` (a second monitor
    that is gone, or a smaller screen, must not put the window out of reach)."""
    inter = geometry.intersected(avail)
    return (not inter.isEmpty() and inter.width() >= geometry.width() * 0.5
            and inter.height() >= geometry.height() * 0.5 and geometry.height() <= avail.height())


def scrolling_dock(window: QtWidgets.QMainWindow, title: str, object_name: str,
                   panel: QtWidgets.QWidget) -> tuple[QtWidgets.QDockWidget, QtWidgets.QScrollArea]:
    """A right-hand dock holding ``panel`` in a vertical scroll area, added to ``window``.

    Scrolls rather than squeezes or grows: a panel pressed below its minimum height draws its
    controls over each other (the AI panel at 1280x720), and one whose minimum is tall pushes
    the main window past the screen (a multi-finding model's 18 rows in the Reader call panel)."""
    dock = QtWidgets.QDockWidget(title, window)
    dock.setObjectName(object_name)
    scroll = QtWidgets.QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(panel)
    dock.setWidget(scroll)
    window.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, dock)
    return dock, scroll
