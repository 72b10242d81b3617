"""The reader's call in the viewer (issue 22): real keystrokes on the real main window, the
real feedback store in a temporary user data folder, the call on the browser's and the
worklist's rows, a window restart; Agree/Disagree and per-finding verdicts against an AI result
on screen; the model card's agreement section; the Train dialog's "Reader feedback" source."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")

from PySide6 import QtCore  # noqa: E402
from test_ai_support import StandInEngine, StandInPrediction  # noqa: E402

K = QtCore.Qt.Key
SHIFT = QtCore.Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def user_data(tmp_path, monkeypatch):
    """A fresh user data folder (settings, feedback.sqlite) and a named reader."""
    monkeypatch.setenv("CXRVIEWER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXRVIEWER_READER", "alice")
    return tmp_path / "data"


def _window(qtbot):
    from cxrviewer.ui.app import create_window

    w = create_window()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    return w


def _open(qtbot, w, path, first: str):
    """Open ``path`` and wait until ``first`` is on screen with its feedback key known."""
    fb = w.feedback
    with qtbot.waitSignals([w.scanFinished, fb.keyReady], timeout=20000, order="none"):
        w.open_path(path)
    assert Path(fb.image.path) == Path(first) and fb.key is not None


def _key(qtbot, w, key, mod=QtCore.Qt.KeyboardModifier.NoModifier):
    """A keystroke the way a reader types it: on the canvas of the active window."""
    w.activateWindow()
    w.canvas.setFocus()
    qtbot.keyClick(w.canvas, key, mod)


def _row(w, path) -> str:
    from cxrviewer.ui.browser.worklist import W_CALL

    text, _tip = w.browser.call_text(str(path))
    wl = w.browser.worklist_model
    assert wl.item(wl.by_path[str(path)].row(), W_CALL).text() == text  # the worklist says the same
    return text


def test_keys_record_change_withdraw_and_survive_a_restart(qtbot, user_data, study_dir):
    from cxrviewer.feedback import FeedbackStore
    from cxrviewer.ui.shell.shortcuts import key_rows

    img1, img2 = study_dir / "img1.dcm", study_dir / "img2.dcm"
    w = _window(qtbot)
    _open(qtbot, w, study_dir, img1)
    fb = w.feedback
    assert fb.panel.call_label.text().endswith("No call yet</span>") and _row(w, img1) == ""
    # the keys are listed by Help -> Keyboard Shortcuts, under Reading, and clash with nothing
    rows = {r.text: r.shortcut for r in key_rows(w) if r.group == "Reading"}
    assert rows["Call Normal"] == "N" and rows["Call Abnormal"] == "B" and rows["Agree with AI"] == "Y"
    every = [s for r in key_rows(w) for s in r.shortcut.split(", ")]
    assert len(every) == len(set(every)), sorted(s for s in every if every.count(s) > 1)

    with qtbot.waitSignal(fb.callChanged) as blk:
        _key(qtbot, w, K.Key_N)
    assert blk.args[0].label == "normal" and blk.args[0].reader == "alice"
    assert "Normal" in fb.panel.call_label.text() and _row(w, img1) == "N"
    # changed: B records a new call, the latest wins and the history keeps both
    with qtbot.waitSignal(fb.callChanged):
        _key(qtbot, w, K.Key_B)
    assert _row(w, img1) == "A" and "alice: Abnormal" in w.browser.call_text(str(img1))[1]
    # a note (Shift+N, typed, Enter) is kept with the call
    _key(qtbot, w, K.Key_N, SHIFT)
    assert fb.panel.note_edit.hasFocus()
    qtbot.keyClicks(fb.panel.note_edit, "left base")
    with qtbot.waitSignal(fb.callChanged):
        qtbot.keyClick(fb.panel.note_edit, K.Key_Return)
    # Export as DICOM -> SR carries the call (a Person observer beside the AI's device)
    import pydicom

    from cxrviewer.dicom.sr_reader import read_reader_calls

    w.dicom.export("sr", user_data / "call_sr.dcm")
    (sr_call,) = read_reader_calls(pydicom.dcmread(user_data / "call_sr.dcm"))
    assert (sr_call.reader, sr_call.label) == ("alice", "abnormal")
    # withdrawn: Shift+Backspace; the row empties
    with qtbot.waitSignal(fb.callChanged) as blk:
        _key(qtbot, w, K.Key_Backspace, SHIFT)
    assert blk.args[0] is None and _row(w, img1) == "" and not fb.actions["withdraw"].isEnabled()
    with FeedbackStore() as store:
        hist = store.history(fb.key, "alice")
        assert [(c.label, c.withdrawn) for c in hist] == [("normal", False), ("abnormal", False),
                                                          ("abnormal", False), (None, True)]
        assert hist[2].note == "left base" and hist[2].path == str(img1)
    # the next image (PgDown) gets its own call; the first row keeps nothing
    with qtbot.waitSignal(fb.keyReady, timeout=20000):
        _key(qtbot, w, K.Key_PageDown)
    assert Path(fb.image.path) == img2
    with qtbot.waitSignal(fb.callChanged):
        _key(qtbot, w, K.Key_B)
    assert _row(w, img2) == "A" and _row(w, img1) == ""
    # the worklist always shows the column; the tree once its dock is wide enough for it
    from cxrviewer.ui.browser.study_browser import COL_CALL
    from cxrviewer.ui.browser.worklist import W_CALL

    assert not w.browser.worklist.isColumnHidden(W_CALL)
    w.resizeDocks([w.browser_dock], [120], QtCore.Qt.Orientation.Horizontal)
    qtbot.waitUntil(lambda: w.browser.width() < 340 and w.browser.view.isColumnHidden(COL_CALL))
    w.resizeDocks([w.browser_dock], [420], QtCore.Qt.Orientation.Horizontal)
    qtbot.waitUntil(lambda: not w.browser.view.isColumnHidden(COL_CALL))
    w.close()

    # a restart: the rows show the calls when the folder is scanned, the panel once keyed
    w2 = _window(qtbot)
    _open(qtbot, w2, study_dir, img1)
    assert _row(w2, img2) == "A" and _row(w2, img1) == ""
    with qtbot.waitSignal(w2.feedback.keyReady, timeout=20000):
        _key(qtbot, w2, K.Key_PageDown)
    assert w2.feedback.call is not None and w2.feedback.call.label == "abnormal"
    assert "Abnormal" in w2.feedback.panel.call_label.text()
    w2.close()


@dataclasses.dataclass(frozen=True)
class MultiPrediction(StandInPrediction):
    """A multi-finding model's answer: per-finding probabilities and those flagged."""

    findings: dict = dataclasses.field(default_factory=dict)
    flagged: tuple = ()


class MultiEngine(StandInEngine):
    """The stand-in with three findings: Effusion flagged, Nodule and Pneumothorax not."""

    def predict(self, img, cam: bool = True, target_class=None):
        p = super().predict(img, cam=cam, target_class=target_class)
        return MultiPrediction(**{f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
                               findings={"Effusion": 0.81, "Nodule": 0.12, "Pneumothorax": 0.05},
                               flagged=("Effusion",))


def test_agree_disagree_and_findings_follow_the_ai_result_on_screen(qtbot, user_data, tmp_path):
    from test_ai_support import write_pngs

    (png,) = write_pngs(tmp_path / "pngs", 1)
    eng = MultiEngine()
    w = _window(qtbot)
    w.ai.controller.worker._factory = lambda model_dir: eng
    with qtbot.waitSignal(w.ai.controller.modelChanged, timeout=10000):
        w.ai.start()
    fb = w.feedback
    _open(qtbot, w, png, png)
    assert not fb.actions["agree"].isEnabled()  # no AI result on screen yet: nothing to agree with
    with qtbot.waitSignal(w.ai.controller.resultReady, timeout=15000):
        _key(qtbot, w, K.Key_A, QtCore.Qt.KeyboardModifier.ControlModifier | SHIFT)  # Analyze image
    qtbot.waitUntil(lambda: fb.actions["agree"].isEnabled(), timeout=5000)
    model_label = w.model.active.ai.label.lower()
    assert fb.panel.findings_table.isVisibleTo(fb.panel) and set(fb.panel.combos) == {"Effusion", "Nodule", "Pneumothorax"}
    # Y: the label is the model's; the flagged finding is agreed with
    with qtbot.waitSignal(fb.callChanged) as blk:
        _key(qtbot, w, K.Key_Y)
    call = blk.args[0]
    assert call.label == model_label and dict(call.findings) == {"Effusion": "agree"}
    assert call.model is not None and call.model.name == "standin" and call.model.flagged == ("Effusion",)
    assert call.model.content_key == w.ai.panel.result.key  # the results cache's key of what was on screen
    # the reader's own finding from the model's list: recorded at once, as a new call
    combo = fb.panel.combos["Nodule"]
    with qtbot.waitSignal(fb.callChanged) as blk:
        combo.setCurrentIndex(combo.findData("added"))
    assert dict(blk.args[0].findings) == {"Effusion": "agree", "Nodule": "added"}
    assert blk.args[0].finding_present() == {"Effusion": 1, "Nodule": 1}
    # Shift+Y: the opposite label; the verdicts stay as the reader set them
    with qtbot.waitSignal(fb.callChanged) as blk:
        _key(qtbot, w, K.Key_Y, SHIFT)
    other = "normal" if model_label == "abnormal" else "abnormal"
    assert blk.args[0].label == other and dict(blk.args[0].findings) == {"Effusion": "agree", "Nodule": "added"}
    assert "disagrees with AI standin" in fb.panel.detail_label.text()
    w.shutdown()
    w.close()


def _calls_on_pngs(data: Path, n_each: int):
    """Record alice's calls on a synthetic labelled set (the store's API, as the keys do), half
    with a model output that agrees with her."""
    from cxrviewer.feedback import FeedbackStore, ModelOutput, load_keyed

    with FeedbackStore() as store:
        for label in ("normal", "abnormal"):
            for i, p in enumerate(sorted((data / label).glob("*.png"))[:n_each]):
                key, _img = load_keyed(p)
                agree = i % 2 == 0
                m_label = label if agree else ("abnormal" if label == "normal" else "normal")
                mo = ModelOutput("standin", "1", probability=0.8 if m_label == "abnormal" else 0.2,
                                 label=m_label, threshold=0.5)
                store.record(key, "alice", label, path=str(p), patient_id=p.stem.split("_")[0], model=mo)


def test_model_card_and_train_dialog_use_the_readers_calls(qtbot, user_data, tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="the training process needs torch")
    from cxrviewer.ui.ai.model_dialogs import ModelCardDialog
    from cxrviewer.ui.train.train_dialog import TrainDialog
    from training.synthetic import make_dataset

    data = make_dataset(tmp_path / "syn", n_patients=8, size=32, seed=5, images_per_patient=1)
    _calls_on_pngs(data, 4)
    w = _window(qtbot)
    card = {"name": "standin", "version": "1", "metrics": {"auc": 0.9}}
    dlg = ModelCardDialog(card, w, extra=w.feedback.agreement_sections(card))
    titles = dlg.section_titles()
    i = titles.index("Agreement with this site's readers")
    assert titles[i - 1].startswith("Metrics")  # next to the validation figures
    rows = dict(dict(dlg.sections)["Agreement with this site's readers"])
    # 8 calls, 4 agree: sensitivity 2/4 and specificity 2/4, kappa 0 (hand-computed)
    assert rows["Reader calls"].startswith("n = 8 ") and rows["Agreement"].startswith("50 %")
    assert rows["Cohen's kappa"].startswith("0.00") and rows["Sensitivity"].startswith("50 % (95 % CI")
    assert "2 of 4 reader-Normal" in rows["Specificity"]
    dlg.close()

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    train = TrainDialog(None, w, feedback=w.feedback.data_source)
    qtbot.addWidget(train)
    assert train.feedback_button.text() == "Reader feedback (8 labelled images)"
    out = tmp_path / "run"
    train.out_edit.setText(str(out))
    train.epochs_spin.setValue(1)
    train.batch_spin.setValue(4)
    train.size_spin.setValue(32)
    train.init_combo.setCurrentIndex(train.init_combo.findData("scratch"))
    train.device_combo.setCurrentText("cpu")
    train.extra_edit.setText("--arch tiny --bootstrap 20 --split 0.5,0.25,0.25 --no-tensorboard --workers 0")
    with qtbot.waitSignal(train.checker.result, timeout=120_000) as checked:
        qtbot.mouseClick(train.feedback_button, QtCore.Qt.MouseButton.LeftButton)
        train._check_timer.stop()
        train._check_data()
    assert checked.args[0].get("ok"), checked.args[0]
    assert train.data_edit.text() == "Reader feedback (8 labelled images)" and train.data_edit.isReadOnly()
    with qtbot.waitSignal(train.runFinished, timeout=180_000) as blk:
        assert train.start()
    assert blk.args[0] == "done", train.log.toPlainText()[-2000:]
    csv = out / "feedback_labels.csv"
    args = train.process.arguments()
    assert args[args.index("--data") + 1] == str(csv)
    assert csv.read_text().splitlines()[0].startswith("path,label,patient_id,content_key,reader")
    report = (out / "report.md").read_text()
    assert "Labels from reader feedback: 8 of 8" in report and "alice (8)" in report
    train.shutdown()
    train.close()
    w.close()


def test_row_text_names_readers_and_times():
    from cxrviewer.feedback import Call
    from cxrviewer.ui.feedback.text import row_cell

    a = Call(1, "i:x", "alice", "2026-12-07T03:10:00+00:00", "abnormal")
    b = Call(2, "i:x", "bob", "2026-12-07T03:11:00+00:00", "normal", note="apex")
    assert row_cell([], "alice") == ("", "", None)
    text, tip, label = row_cell([a, b], "alice")
    assert (text, label) == ("A+1", "abnormal")
    assert tip.splitlines()[1].startswith("alice: Abnormal, 2026-12-07") and "bob: Normal" in tip and "note: apex" in tip
    assert row_cell([b], "alice")[:1] == ("(N)",)
    assert row_cell([a, b], "carol")[0] == "(A/N)" and row_cell([a, b], "carol")[2] is None
    c = Call(3, "i:x", "carol", "2026-12-07T03:12:00+00:00", "abnormal")
    assert row_cell([a, c], "bob")[::2] == ("(A×2)", "abnormal")
