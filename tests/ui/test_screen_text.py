"""The corner text over the image, as the X server shows it (issue 20: "black rectangles cover
the image under the corner text in the second and third viewports").

A widget's ``grab()`` renders it again through Qt, not what the screen composited, so this test
runs the real window in a child process on a real X server (Xvfb, Qt's xcb platform), hangs a
current and a prior study 2x2 with *Compare with prior*, and reads the screen itself
(``QScreen.grabWindow(0)``) with the text on and off. Under each corner label the image must
still show between the glyphs: a box is black where the screen is black with the text on and
bright with it off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cxrviewer.core.synthetic import write_study_image

CHILD = r"""
import json, sys, time
import numpy as np
from PySide6 import QtGui
from cxrviewer.ui.app import create_window, get_app

folder, current = sys.argv[1], sys.argv[2]
app = get_app()
w = create_window(None)
w.show()

def pump(sec):
    end = time.time() + sec
    while time.time() < end:
        app.processEvents()
        time.sleep(0.01)

def until(cond, limit=60.0):
    end = time.time() + limit
    while not cond():
        if time.time() > end:
            raise SystemExit("timed out")
        pump(0.05)

def screen():
    im = app.primaryScreen().grabWindow(0).toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
    wd, h, bpl = im.width(), im.height(), im.bytesPerLine()
    a = np.frombuffer(bytes(im.constBits()), np.uint8).reshape(h, bpl)[:, : wd * 3].reshape(h, wd, 3)
    return a.astype(int).sum(axis=2)

w.open_path(folder)
until(lambda: not w.scanner.running() and w.current_image is not None)
if w.current_image.path != current:
    w.browser.select_path(current)
    until(lambda: w.current_image is not None and w.current_image.path == current)
w.prior_compare.action.trigger()
g = w.viewports
until(lambda: g.layout_name() == "2x2" and all(g.canvas(i).img is not None for i in range(4)))
pump(1.0)
w.repaint()  # painted and flushed to the X server now (its image requests are answered in order)
on = screen()
for i in range(4):
    g.canvas(i).set_overlay_visible(False)
pump(0.3)
w.repaint()
off = screen()
out = {"screen": list(on.shape), "window": [w.width(), w.height()], "boxes": []}
for i in range(4):
    c = g.canvas(i)
    for name in ("tl", "tr", "bl", "br"):
        lab = c._labels[name]
        if not lab.text():
            continue
        r = lab.geometry()
        p = c.mapToGlobal(r.topLeft())
        a = on[p.y():p.y() + r.height(), p.x():p.x() + r.width()]
        b = off[p.y():p.y() + r.height(), p.x():p.x() + r.width()]
        bright = b > 300
        out["boxes"].append({
            "viewport": i, "corner": name, "bright": int(bright.sum()),
            "black": float(((a < 40) & bright).sum() / max(int(bright.sum()), 1)),
            "changed": float((np.abs(a - b) > 60).mean()),
        })
print("RESULT " + json.dumps(out))
w.close()
"""


def _study(root: Path) -> str:
    """A current (2024) and a prior (2019) study of one patient, each a PA and a lateral, bright
    images (near white but for a dark band down the middle, which sets the window) so the text lies
    over image, not over black."""
    ramp = (4000 + np.random.default_rng(20).integers(0, 96, (160, 160))).astype(np.uint16)
    ramp[:, 74:86] = 0
    paths = {}
    for uid, date in (("1.2.826.0.1.3680043.8.498.1", "20240611"), ("1.2.826.0.1.3680043.8.498.2", "20190314")):
        for inst, view in ((1, "PA"), (2, "LL")):
            paths[date, view] = write_study_image(root, f"{date}_{view}.dcm", patient_id="P20", study_uid=uid,
                                                  date=date, view=view, instance=inst, pixels=ramp)
    return paths["20240611", "PA"]


@pytest.mark.parametrize("size", ["1920x1080", "1280x720"])
def test_the_image_shows_under_the_corner_text_of_every_viewport_on_a_real_screen(tmp_path, tool, size):
    import shutil

    xvfb = shutil.which("Xvfb")
    tool(xvfb, "Xvfb (a real X server for the on-screen check)", "xvfb")
    current = _study(tmp_path / "study")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
                              pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as f:
            display = f.readline().strip()
        assert display, "Xvfb did not start"
        env = {**os.environ, "DISPLAY": f":{display}", "QT_QPA_PLATFORM": "xcb",
               "CXRVIEWER_DATA_DIR": str(tmp_path / "data")}  # a first start: no remembered geometry
        proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "study"), current], env=env,
                              capture_output=True, text=True, timeout=240)
    finally:
        server.terminate()
        server.wait(timeout=30)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, (proc.returncode, proc.stdout[-2000:], proc.stderr[-4000:])
    res = json.loads(line[len("RESULT "):])
    boxes = res["boxes"]
    assert {b["viewport"] for b in boxes} == {0, 1, 2, 3}, res
    over_image = [b for b in boxes if b["bright"] >= 200]
    assert len(over_image) >= 12, res  # the text lies over the image in most corners
    for b in over_image:
        assert b["black"] < 0.35, b  # a black box: the image hidden under the text
        assert b["changed"] > 0.02, b  # and the text is there (its glyphs changed the screen)
