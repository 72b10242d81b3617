"""Help → Keyboard Shortcuts lists every action, generated from the window's real QActions."""

from __future__ import annotations

from PySide6 import QtGui

from cxrviewer.ui.shell.shortcuts import action_rows, shortcut_text


def test_dialog_lists_every_action_with_a_shortcut(viewer):
    dlg = viewer.show_shortcuts()
    listed = {(text, sc) for _group, text, sc in dlg.rows}
    # independently of the dialog: every action object in the window that has a shortcut
    with_keys = [a for a in viewer.findChildren(QtGui.QAction) if not a.shortcut().isEmpty()]
    assert len(with_keys) > 30
    missing = [(a.text(), shortcut_text(a)) for a in with_keys
               if (a.text().replace("&", "").rstrip(".…").strip(), shortcut_text(a)) not in listed]
    assert missing == []
    # the three the old hand-kept list missed, under the menu they live in
    groups = {(text, sc): group for group, text, sc in dlg.rows}
    assert groups[("Show heatmap", "H")] == "Model"
    assert groups[("Analyze image", "Ctrl+Shift+A")] == "Model"
    assert groups[("Analyze study/folder", "Ctrl+Shift+F")] == "Model"
    assert groups[("Studies", "Ctrl+Shift+B")] == "View › Panels"
    # every menu entry is listed, also those without a shortcut (e.g. Model → Models…)
    assert any(text == "Models" for _g, text, _sc in dlg.rows)
    # and the tree shows them
    tops = [dlg.tree.topLevelItem(i).text(0) for i in range(dlg.tree.topLevelItemCount())]
    assert {"Mouse", "File", "View", "Model", "Help"} <= set(tops)
    dlg.close()


def test_an_action_added_later_is_listed_without_editing_the_dialog(viewer):
    a = QtGui.QAction("Brand-new tool", viewer)
    a.setShortcut(QtGui.QKeySequence("Ctrl+Alt+J"))
    viewer.menus["tools"].addAction(a)
    rows = action_rows(viewer)
    assert [(r.group, r.shortcut) for r in rows if r.text == "Brand-new tool"] == [("Tools", "Ctrl+Alt+J")]
    assert len({id(r.action) for r in rows}) == len(rows)  # each action once


def test_no_two_actions_share_a_shortcut(viewer):
    seen: dict[str, str] = {}
    clashes = []
    for r in action_rows(viewer):
        for sc in r.action.shortcuts():
            key = sc.toString()
            if key in seen and seen[key] != r.text:
                clashes.append((key, seen[key], r.text))
            seen.setdefault(key, r.text)
    assert clashes == []
