"""The shortcuts dialog's content, generated from the window's actual ``QAction`` objects.

Help → Keyboard Shortcuts used to list a hand-kept list of actions, which drifted (the AI
layer's H, Ctrl+Shift+A and Ctrl+Shift+F were missing). Now it walks the menu bar (every
menu and submenu, by title), then the actions added to the window itself and its toolbars, so
anything a layer adds to a menu or the window is listed under the menu it lives in.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtGui, QtWidgets

_NATIVE = QtGui.QKeySequence.SequenceFormat.NativeText


@dataclass(frozen=True)
class ActionRow:
    """One line of the dialog."""

    group: str  # the menu path, e.g. "View › Panels"; "Window" for actions in no menu
    text: str
    shortcut: str  # "" when the action has none
    action: QtGui.QAction


def _clean(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip(".…").strip()


def shortcut_text(a: QtGui.QAction) -> str:
    """Every shortcut of ``a`` in the platform's notation, comma-separated."""
    return ", ".join(s.toString(_NATIVE) for s in a.shortcuts() if not s.isEmpty())


def action_rows(window: QtWidgets.QMainWindow) -> list[ActionRow]:
    """Every action of ``window``: menu actions grouped by menu path (in menu order), then the
    window's and toolbars' own actions that are in no menu. Separators, submenu entries and
    actions without text are skipped; an action is listed once (its first menu)."""
    rows: list[ActionRow] = []
    seen: set[int] = set()

    def walk(menu: QtWidgets.QMenu, path: str) -> None:
        for a in menu.actions():
            if a.isSeparator():
                continue
            sub = a.menu()
            if sub is not None:
                walk(sub, f"{path} › {_clean(sub.title())}")
                continue
            add(a, path)

    def add(a: QtGui.QAction, group: str) -> None:
        if id(a) in seen or a.isSeparator() or not _clean(a.text()):
            return
        seen.add(id(a))
        rows.append(ActionRow(group, _clean(a.text()), shortcut_text(a), a))

    mb = window.menuBar()
    for top in mb.actions():
        m = top.menu()
        if m is not None:
            walk(m, _clean(m.title()))
    extra = list(window.actions())
    for tb in window.findChildren(QtWidgets.QToolBar):
        extra.extend(tb.actions())
    for a in extra:
        if a.menu() is None:
            add(a, "Window")
    return rows


def key_rows(window: QtWidgets.QMainWindow) -> list[ActionRow]:
    """The rows that have a keyboard shortcut."""
    return [r for r in action_rows(window) if r.shortcut]
