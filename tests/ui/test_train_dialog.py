"""Model → Train / Refresh model…: a real training in a child process (QProcess) reports its
epochs live, ends with the report and Activate (registry + AI worker reload); bad data shows
the training's error line; Cancel stops the process and the viewer keeps working."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")
pytest.importorskip("torch", reason="the training process needs torch")

from PySide6 import QtCore, QtWidgets  # noqa: E402
from test_ai_support import StandInEngine  # noqa: E402

from training.synthetic import make_dataset  # noqa: E402

#: the child's output is JSON lines; keep its reporting cheap on the shared test cores
FAST = "--bootstrap 20 --split 0.5,0.25,0.25 --no-tensorboard --workers 0"


@pytest.fixture
def ai(qtbot, tmp_path, monkeypatch):
    """The viewer's AI integration in a real main window, with a stand-in engine that records
    which model directory the worker was asked to load."""
    import cxrviewer.ui  # noqa: F401  (the PySide6 refcount guard, before any emit)
    from cxrviewer.ui.ai.integration import AiIntegration
    from cxrviewer.ui.canvas.canvas import ImageCanvas
    from cxrviewer.ui.train.train_dialog import TrainOpener

    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # inherited by the training process
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    loaded: list = []

    def factory(model_dir):
        loaded.append(model_dir)
        name = json.loads((Path(model_dir) / "card.json").read_text())["name"] if model_dir else "standin"
        return StandInEngine(name=name)

    win = QtWidgets.QMainWindow()
    canvas = ImageCanvas()
    win.setCentralWidget(canvas)
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    integ = AiIntegration(win, canvas, None, engine_factory=factory, settings=settings,
                          open_train=TrainOpener())
    integ.loaded = loaded
    qtbot.addWidget(win)
    win.show()
    yield integ
    integ.open_train.shutdown()
    integ.shutdown()


def _fill(dlg, data: Path, out: Path, epochs: int, batch: int, size: int, extra: str, name: str = "") -> None:
    dlg.data_edit.setText(str(data))
    dlg.out_edit.setText(str(out))
    dlg.epochs_spin.setValue(epochs)
    dlg.batch_spin.setValue(batch)
    dlg.lr_edit.setText("2e-3")
    dlg.size_spin.setValue(size)
    dlg.init_combo.setCurrentIndex(dlg.init_combo.findData("scratch"))
    dlg.device_combo.setCurrentText("cpu")
    dlg.extra_edit.setText(extra)
    if name:
        dlg.name_edit.setText(name)


def test_menu_opens_dialog_training_runs_live_and_activate_loads_the_model(qtbot, ai, tmp_path):
    from cxrviewer.ml.registry import Registry

    assert ai.act_train in ai.menu.actions()
    ai.act_train.trigger()
    dlg = ai.open_train.dialog
    assert dlg.isVisible() and not dlg.isModal()
    # the default run folder lives in the user data dir
    assert Path(dlg.out_edit.text()).parent == tmp_path / "data" / "runs"

    data = make_dataset(tmp_path / "syn", n_patients=12, size=32, seed=8)
    out = Path(dlg.out_edit.text())
    _fill(dlg, data, out, epochs=2, batch=8, size=32, extra=FAST, name="dialog-test")
    seen: list[tuple[str, object]] = []
    dlg.epochReceived.connect(lambda ev: seen.append(("epoch", ev["epoch"])))
    dlg.runFinished.connect(lambda status, info: seen.append(("finished", status)))
    with qtbot.waitSignal(dlg.runFinished, timeout=150_000) as blk:
        assert dlg.start()
        assert dlg.running and not dlg.start_button.isEnabled() and dlg.cancel_button.isEnabled()
    assert blk.args[0] == "done", (dlg.status_label.text(), dlg.log.toPlainText()[-2000:])
    # both epochs reached the dialog while the process ran, before it ended
    assert seen == [("epoch", 1), ("epoch", 2), ("finished", "done")], seen
    assert dlg.table.rowCount() == 2 and dlg.table.item(1, 1).text() == "2/2"
    assert float(dlg.table.item(0, 2).text()) > 0  # train loss
    assert dlg.progress.value() == dlg.progress.maximum() == 2
    # the report is rendered from the run's report.md
    report = Path(blk.args[1]["report"])
    assert report == out / "report.md" and report.is_file()
    assert dlg.tabs.currentWidget() is dlg.report
    assert "dialog-test" in dlg.report.toPlainText()
    assert dlg.activate_button.isEnabled() and not dlg.running
    # a second Start would be a new run: a fresh default folder (the user's name is kept)
    assert Path(dlg.out_edit.text()) != out and Path(dlg.out_edit.text()).parent == out.parent
    assert dlg.name_edit.text() == "dialog-test"

    with qtbot.waitSignal(ai.controller.modelChanged, timeout=60_000) as loaded:
        dlg.activate_button.click()
    assert loaded.args[0] is not None and loaded.args[0].name == "dialog-test"
    reg = Registry()
    active = reg.active()
    assert active is not None and active.name == "dialog-test" and not active.bundled
    assert active.path == tmp_path / "data" / "models" / "dialog-test"
    assert Path(ai.loaded[-1]) == active.path  # the AI worker loaded the installed copy
    assert "Installed dialog-test" in dlg.status_label.text()


def test_bad_data_shows_the_error_line_and_the_dialog_is_usable_again(qtbot, ai, tmp_path):
    from cxrviewer.ui.train.train_dialog import TrainDialog

    dlg = TrainDialog(None, ai.window)
    qtbot.addWidget(dlg)
    # no active model: "the active model" is not offered
    assert dlg.init_combo.currentData() == "scratch"
    # before any data: Start, Cancel and Activate are all disabled
    assert not dlg.start_button.isEnabled() and not dlg.cancel_button.isEnabled()
    assert not dlg.activate_button.isEnabled()
    assert not dlg.start(), "no data chosen: nothing starts"
    assert "Choose the training data" in dlg.status_label.text()
    empty = tmp_path / "empty"
    empty.mkdir()
    _fill(dlg, empty, tmp_path / "run", epochs=1, batch=4, size=32, extra="--arch tiny " + FAST)
    qtbot.waitUntil(lambda: "no class folders" in dlg.data_info.text(), timeout=60_000)
    assert not dlg.start_button.isEnabled() and not dlg.start()
    # one class, and a folder that matches no class: named, and Start stays disabled
    syn = make_dataset(tmp_path / "syn", n_patients=8, size=32, seed=1)
    (syn / "abnormal").rename(syn / "BACTERIA")
    dlg.data_edit.setText(str(syn))
    qtbot.waitUntil(lambda: "BACTERIA" in dlg.data_info.text(), timeout=60_000)
    assert "only Normal images" in dlg.data_info.text() and not dlg.start_button.isEnabled()
    # mapped with --class-map: usable, Start enabled
    dlg.extra_edit.setText("--arch tiny --class-map abnormal=BACTERIA " + FAST)
    qtbot.waitUntil(dlg.start_button.isEnabled, timeout=60_000)
    assert dlg.data_info.text().startswith("train 8 images (4 normal / 4 abnormal)"), dlg.data_info.text()
    # usable data that the training itself refuses: its error line is shown
    dlg.extra_edit.setText("--arch tiny --class-map abnormal=BACTERIA --folds 1 " + FAST)
    with qtbot.waitSignal(dlg.runFinished, timeout=60_000) as blk:
        assert dlg.start()
    status, info = blk.args
    assert status == "error" and info["exit_code"] == 2
    assert info["message"].startswith("training: error: ") and "--folds" in info["message"]
    assert "--folds needs at least 2" in dlg.status_label.text()
    assert info["message"] in dlg.log.toPlainText()
    assert not dlg.running and dlg.start_button.isEnabled() and dlg.form_box.isEnabled()
    assert not dlg.activate_button.isEnabled() and not dlg.cancel_button.isEnabled()
    # nothing running: Close closes (the close box goes through the same reject())
    assert dlg.close() and not dlg.isVisible()


def test_cancel_stops_the_process_and_the_viewer_keeps_working(qtbot, ai, tmp_path, monkeypatch):
    dlg = ai.show_train()
    data = make_dataset(tmp_path / "syn", n_patients=24, size=32, seed=3)
    out = tmp_path / "run"
    _fill(dlg, data, out, epochs=500, batch=4, size=32, extra="--arch tiny --patience 0 " + FAST)
    with qtbot.waitSignal(dlg.epochReceived, timeout=60_000):
        assert dlg.start()
    proc = dlg.process
    # closing the viewer while it trains asks first; "No" keeps both open and running
    asked = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "question",
                        lambda *a, **k: asked.append(a[1]) or QtWidgets.QMessageBox.StandardButton.No)
    assert not ai.window.close()
    assert asked == ["Training is running"] and ai.window.isVisible() and dlg.running
    with qtbot.waitSignal(dlg.runFinished, timeout=30_000) as blk:
        dlg.cancel()
    assert blk.args[0] == "cancelled"
    assert proc.state() == QtCore.QProcess.ProcessState.NotRunning and not dlg.running
    assert len(dlg.epochs) < 500
    # the checkpoint of the last finished epoch is kept, and Start would continue it
    assert (out / "checkpoint.pt").is_file() and "checkpoint.pt" in dlg.status_label.text()
    args = dlg.arguments()
    assert args[args.index("--resume") + 1] == str(out)
    assert dlg.start_button.isEnabled() and not dlg.activate_button.isEnabled()

    # the viewer's AI is unaffected: it still loads a model through its worker
    with qtbot.waitSignal(ai.controller.modelChanged, timeout=30_000) as loaded:
        ai.start()
    assert loaded.args[0] is not None and ai.controller.ready


def test_estimate_shows_before_start_and_buttons_follow_the_run(qtbot, ai, tmp_path):
    """Valid data enables Start and an estimate measured on this machine appears before Start;
    Cancel is enabled only while training; Activate only after a run that ended with a model."""
    from cxrviewer.ui.train.train_dialog import TrainDialog

    dlg = TrainDialog(None, ai.window)
    qtbot.addWidget(dlg)
    data = make_dataset(tmp_path / "syn", n_patients=12, size=32, seed=8)
    _fill(dlg, data, tmp_path / "run", epochs=3, batch=8, size=32, extra="--arch tiny " + FAST)
    qtbot.waitUntil(dlg.start_button.isEnabled, timeout=60_000)
    assert dlg.data_info.text().startswith("train 12 images (6 normal / 6 abnormal)"), dlg.data_info.text()
    with qtbot.waitSignal(dlg.estimator.result, timeout=120_000) as est:
        pass
    ev = est.args[0]
    assert ev["epochs"] == 3 and ev["epoch_seconds"] > 0 and ev["run_seconds"] > ev["epoch_seconds"]
    text = dlg.estimate_label.text()
    assert text.startswith("Estimate: about ") and " per epoch on cpu" in text and "3 epochs" in text, text
    assert not (tmp_path / "run").exists(), "the estimate writes nothing"
    assert not dlg.cancel_button.isEnabled() and not dlg.activate_button.isEnabled()
    with qtbot.waitSignal(dlg.runFinished, timeout=150_000) as blk:
        assert dlg.start()
        assert dlg.cancel_button.isEnabled() and not dlg.start_button.isEnabled()
        assert not dlg.activate_button.isEnabled()
    # a tiny network makes no model directory: finished, but nothing to activate
    assert blk.args[0] == "done" and not blk.args[1].get("model_dir")
    assert not dlg.cancel_button.isEnabled() and not dlg.activate_button.isEnabled()
    assert dlg.start_button.isEnabled()


def test_the_shell_keeps_the_train_dialog_not_the_ai_object(qtbot, viewer):
    # cross-feature links go through the shell: the train feature wrote its dialog onto the AI's
    # object (ai._train_dialog); now the shell's opener keeps it and hands it the reader feedback
    pytest.importorskip("torch", reason="the Train dialog needs torch (the train extra)")
    w = viewer
    assert w.ai.open_train is w.train
    w.ai.act_train.trigger()
    dlg = w.train.dialog
    assert dlg is not None and dlg.isVisible()
    assert dlg.feedback_provider == w.feedback.data_source
    assert all(v is not dlg for v in vars(w.ai).values()), "the AI object holds the Train dialog"
    w.ai.act_train.trigger()  # opening again raises the same dialog
    assert w.train.dialog is dlg
