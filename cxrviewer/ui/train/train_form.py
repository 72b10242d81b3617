"""The form of the Train / Refresh model… dialog (a mixin of :class:`~cxrviewer.ui.train.train_dialog.TrainDialog`):
data, output folder, recipe fields, the data check that gates Start, the estimate shown before
Start, and the training command the form stands for."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from PySide6 import QtWidgets

from cxrviewer.ui.train.feedback_data import FeedbackDataMixin
from cxrviewer.ui.train.train_support import (
    _timestamp,
    default_run_dir,
    estimate_text,
    valid_duration,
)

#: the checkpoint the training writes after every epoch (training.checkpoint.CHECKPOINT)
CHECKPOINT = "checkpoint.pt"


class TrainFormMixin(FeedbackDataMixin):
    """Widgets and checks of the dialog's "Run" box; the dialog provides ``running``,
    ``start_button``, ``checker``, ``estimator``, ``_check_timer``, ``_estimate_timer`` and
    ``feedback_provider``."""

    def _build_form(self, lay: QtWidgets.QVBoxLayout) -> None:
        form_box = QtWidgets.QGroupBox("Run")
        form = QtWidgets.QFormLayout(form_box)

        self.data_edit = QtWidgets.QLineEdit()
        self.data_edit.setPlaceholderText("labelled set: class folders (normal/, abnormal/), NIH layout, or a CSV")
        b_folder = QtWidgets.QPushButton("Folder…")
        b_folder.clicked.connect(self._pick_data_folder)
        b_csv = QtWidgets.QPushButton("CSV…")
        b_csv.clicked.connect(self._pick_data_csv)
        # "Reader feedback (N labelled images)": the viewer's own calls (ui/train/feedback_data.py)
        self.feedback_button = QtWidgets.QPushButton("Reader feedback")
        self.feedback_button.setToolTip("Train from the calls readers recorded in this viewer (Reading menu)")
        self.feedback_button.clicked.connect(lambda _=False: self.use_feedback())
        self.feedback_button.setVisible(self.feedback_provider is not None)
        if self.feedback_provider is not None:
            self.refresh_feedback_source()
        form.addRow("Data", self._row(self.data_edit, b_folder, b_csv, self.feedback_button))
        self.data_info = QtWidgets.QLabel("")
        self.data_info.setWordWrap(True)
        form.addRow("", self.data_info)

        self.out_edit = QtWidgets.QLineEdit()
        self.out_edit.setToolTip("Run folder: checkpoints, report, the trained model/. A folder holding an "
                                 "unfinished run is continued (--resume).")
        b_out = QtWidgets.QPushButton("Browse…")
        b_out.clicked.connect(self._pick_out)
        form.addRow("Output folder", self._row(self.out_edit, b_out))

        self.name_edit = QtWidgets.QLineEdit()
        self.name_edit.setToolTip("Model name in the card and the registry")
        form.addRow("Model name", self.name_edit)
        self._defaults: tuple[str, str] = ("", "")
        self._fresh_defaults()

        self.epochs_spin = QtWidgets.QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        self.epochs_spin.setValue(10)
        self.batch_spin = QtWidgets.QSpinBox()
        self.batch_spin.setRange(1, 4096)
        self.batch_spin.setValue(32)
        self.lr_edit = QtWidgets.QLineEdit("auto")
        self.lr_edit.setToolTip("auto: 1e-3 from random weights, 1e-4 when starting from a model (fine-tuning)")
        self.lr_edit.setMaximumWidth(90)
        self.size_spin = QtWidgets.QSpinBox()
        self.size_spin.setRange(16, 2048)
        self.size_spin.setSingleStep(32)
        self.size_spin.setValue(224)
        self.budget_edit = QtWidgets.QLineEdit()
        self.budget_edit.setPlaceholderText("time budget, e.g. 20m")
        self.budget_edit.setToolTip("--time-budget: as many epochs as fit (at most Epochs), measured on this machine")
        self.budget_edit.setMaximumWidth(150)
        form.addRow("Epochs / batch / LR / image size / budget",
                    self._row(self.epochs_spin, self.batch_spin, self.lr_edit, self.size_spin, self.budget_edit,
                              stretch=True))

        self.init_combo = QtWidgets.QComboBox()
        self.init_combo.addItem("the active model" + (f" ({Path(self.init_model).name})" if self.init_model else ""),
                                "active")
        self.init_combo.addItem("scratch (random weights)", "scratch")
        self.init_combo.addItem("ImageNet weights (local torch cache only)", "imagenet")
        if self.init_model is None:
            self.init_combo.model().item(0).setEnabled(False)
            self.init_combo.setCurrentIndex(1)
        self.device_combo = QtWidgets.QComboBox()
        self.device_combo.setEditable(True)
        self.device_combo.addItems(["auto", "cpu", "cuda", "mps"])
        form.addRow("Initialise from / device", self._row(self.init_combo, self.device_combo, stretch=True))

        self.extra_edit = QtWidgets.QLineEdit()
        self.extra_edit.setPlaceholderText("more options of `cxrviewer train`, e.g. --max-images 2000 --patience 5")
        form.addRow("Extra arguments", self.extra_edit)
        lay.addWidget(form_box)
        self.form_box = form_box
        self.estimate_label = QtWidgets.QLabel("")
        self.estimate_label.setWordWrap(True)
        lay.addWidget(self.estimate_label)
        self.data_edit.textChanged.connect(lambda _t: self._check_timer.start())
        self.extra_edit.textChanged.connect(lambda _t: self._check_timer.start())
        for sig in (self.epochs_spin.valueChanged, self.batch_spin.valueChanged, self.size_spin.valueChanged,
                    self.budget_edit.textChanged, self.device_combo.currentTextChanged, self.lr_edit.textChanged):
            sig.connect(lambda *_: self._schedule_estimate())

    # ------------------------------------------------------------------ data check, estimate
    def _check_data(self) -> None:
        """Gate Start on the data: ``training --check-data`` reads the data lists as the training
        will (with the extra arguments' --class-map, --format, --val-data...) in a child process."""
        self.data_ok = False
        self.start_button.setEnabled(False)
        self.estimate = None
        self.estimate_label.setText("")
        self._estimate_timer.stop()
        self.estimator.stop()
        text = self.data_edit.text().strip()
        try:
            args = self.arguments()
        except ValueError as e:
            self.checker.stop()
            self._show_data_info(str(e) if text else "", error=bool(text))
            return
        self._show_data_info("Checking the data…")
        self.checker.run(args)

    def _show_data_info(self, text: str, error: bool = False) -> None:
        self.data_info.setText(text)
        self.data_info.setStyleSheet("color: #ff6b6b;" if error else "")

    def _on_data_checked(self, ev: dict) -> None:
        self.data_ok = bool(ev.get("ok"))
        self._show_data_info(str(ev.get("message", "")), error=not self.data_ok)
        self.start_button.setEnabled(self.data_ok and not self.running)
        if self.data_ok:
            self._schedule_estimate()

    def _schedule_estimate(self) -> None:
        if self.data_ok and not self.running:
            self._estimate_timer.start()

    def _run_estimate(self) -> None:
        if not self.data_ok or self.running:
            return
        try:
            args = self.arguments()
        except ValueError as e:
            self.estimate_label.setText(f"Estimate unavailable: {e}")
            return
        self.estimate_label.setText("Estimating the duration on this machine (a few training steps)…")
        self.estimator.run(args)

    def _on_estimate(self, ev: dict) -> None:
        self.estimate = ev
        self.estimate_label.setText(estimate_text(ev))

    def _fresh_defaults(self) -> None:
        """A new timestamped run folder and model name, where the user kept the defaults
        (a second run must not resume the finished one nor clash with its name)."""
        out, name = str(default_run_dir()), f"cxr-resnet50-{_timestamp()}"
        if self.out_edit.text() in ("", self._defaults[0]):
            self.out_edit.setText(out)
        if self.name_edit.text() in ("", self._defaults[1]):
            self.name_edit.setText(name)
        self._defaults = (out, name)

    @staticmethod
    def _row(*widgets: QtWidgets.QWidget, stretch: bool = False) -> QtWidgets.QWidget:
        w = QtWidgets.QWidget()
        h = QtWidgets.QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        for x in widgets:
            h.addWidget(x)
        if stretch:
            h.addStretch(1)
        return w

    def _pick_data_folder(self) -> None:
        d = QtWidgets.QFileDialog.getExistingDirectory(self, "Training data folder", self.data_edit.text())
        if d:
            self.use_feedback(False)
            self.data_edit.setText(d)

    def _pick_data_csv(self) -> None:
        f, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Training data CSV", self.data_edit.text(),
                                                     "CSV files (*.csv);;All files (*)")
        if f:
            self.use_feedback(False)
            self.data_edit.setText(f)

    def _pick_out(self) -> None:
        d = QtWidgets.QFileDialog.getExistingDirectory(self, "Output folder", str(Path(self.out_edit.text()).parent))
        if d:
            self.out_edit.setText(d)

    # ------------------------------------------------------------------ command
    def arguments(self) -> list[str]:
        """The training CLI's arguments for the current form (raises ValueError with a
        message for the user when a field is wrong)."""
        data = str(self.feedback_csv) if self.feedback is not None else self.data_edit.text().strip()
        if not data:
            raise ValueError("Choose the training data (a folder or a CSV).")
        if not Path(data).exists():
            raise ValueError(f"{data}: no such file or folder")
        budget = self.budget_edit.text().strip()
        if budget:
            if not valid_duration(budget):
                raise ValueError(f"time budget {budget!r}: expected a duration like 20m, 1h30m or 90s")
        out = self.out_edit.text().strip()
        if not out:
            raise ValueError("Choose an output folder.")
        lr_text = self.lr_edit.text().strip().lower() or "auto"
        if lr_text != "auto":
            try:
                lr = float(lr_text)
            except ValueError:
                raise ValueError(f"learning rate {self.lr_edit.text()!r}: expected a number like 1e-4, or auto") from None
            if not lr > 0:
                raise ValueError("the learning rate must be > 0")
            lr_text = repr(lr)
        try:
            extra = shlex.split(self.extra_edit.text(), posix=os.name != "nt")
        except ValueError as e:
            raise ValueError(f"extra arguments: {e}") from None
        out_p = Path(out).absolute()
        args = ["--data", str(Path(data).absolute()), "--out", str(out_p),
                "--epochs", str(self.epochs_spin.value()), "--batch-size", str(self.batch_spin.value()),
                "--lr", lr_text, "--image-size", str(self.size_spin.value()),
                "--device", self.device_combo.currentText().strip() or "auto", "--json-progress"]
        if budget:
            args += ["--time-budget", budget]
        name = self.name_edit.text().strip()
        if name:
            args += ["--name", name]
        init = self.init_combo.currentData()
        if init == "active" and self.init_model:
            args += ["--init", self.init_model]
        elif init == "imagenet":
            args += ["--pretrained", "imagenet"]
        if (out_p / CHECKPOINT).is_file() and "--resume" not in extra:
            # an interrupted (e.g. cancelled) run in this folder: continue it
            args += ["--resume", str(out_p)]
        return args + extra

