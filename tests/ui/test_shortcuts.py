"""Help → Keyboard Shortcuts lists every action, generated from the window's real QActions;
every action sits in a menu with a shortcut, no two share one; Help → About names the library
versions. One window, no image (these were six window tests, three from test_viewer.py)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui

from cxrviewer.ui.shell.shortcuts import action_rows, shortcut_text


def test_menus_shortcuts_dialog_and_about_of_one_window(viewer):
    # every action of the window is in a menu and has a shortcut
    in_menus = set()
    for m in viewer.menuBar().findChildren(type(viewer.menus["file"])):
        in_menus.update(m.actions())
    missing_shortcut = [a.text() for a in viewer.actions_list if a.shortcut().isEmpty()]
    assert missing_shortcut == []
    assert all(a in in_menus for a in viewer.actions_list)

    # the dialog lists every action with a shortcut (checked against the window's own actions)
    dlg = viewer.show_shortcuts()
    assert ("View", "Rotate 90° Clockwise", "R") in dlg.rows
    mouse = dlg.tree.topLevelItem(0)
    assert any("wider" in mouse.child(i).text(1) for i in range(mouse.childCount()))
    listed = {(text, sc) for _group, text, sc in dlg.rows}
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

    # no two actions share a shortcut: by the rows, and by every QAction of the window
    seen: dict[str, str] = {}
    clashes = []
    for r in action_rows(viewer):
        for sc in r.action.shortcuts():
            key = sc.toString()
            if key in seen and seen[key] != r.text:
                clashes.append((key, seen[key], r.text))
            seen.setdefault(key, r.text)
    assert clashes == []
    seen = {}
    for a in viewer.findChildren(QtGui.QAction):
        for s in a.shortcuts():
            k = s.toString()
            assert k not in seen or seen[k] == a.text(), f"{k} is bound to {seen.get(k)!r} and {a.text()!r}"
            seen[k] = a.text()

    # Help → About lists the library versions and what the viewer is not
    import numpy
    import pydicom

    from cxrviewer.ui.shell.dialogs import show_about

    box = show_about(viewer)
    text = box.text()
    assert QtCore.qVersion() in text and pydicom.__version__ in text and numpy.__version__ in text
    assert "Not a diagnostic device" in text
    box.close()

    # an action added later is listed without editing the dialog (last: it joins the window)
    a = QtGui.QAction("Brand-new tool", viewer)
    a.setShortcut(QtGui.QKeySequence("Ctrl+Alt+J"))
    viewer.menus["tools"].addAction(a)
    rows = action_rows(viewer)
    assert [(r.group, r.shortcut) for r in rows if r.text == "Brand-new tool"] == [("Tools", "Ctrl+Alt+J")]
    assert len({id(r.action) for r in rows}) == len(rows)  # each action once
