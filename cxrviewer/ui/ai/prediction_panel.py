"""The prediction panel: P(Abnormal) as a bar with the operating threshold, the label it
implies, which model said so, where it ran and how long it took, and the caution line.

Beside the probability it shows the model's *validated* performance from its card (test AUC
with its 95 % interval, the training data in one line) and a button to the card. An image the
out-of-distribution gate refuses shows "Not scored: <reason>" and *Score anyway*; a result
scored anyway carries its caution in red.

Never oversold (:func:`cxrviewer.ml.policy.verdict_policy`): without a validation on this
site's cases (or a test split) whose AUC interval starts at 0.70 or above, the number is a
*research score*: neutral colour, no Normal/Abnormal word, and one line saying why.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.ml.card_text import performance_line, training_data_line
from cxrviewer.ml.policy import VerdictPolicy, verdict_policy
from cxrviewer.render.colormaps import prediction_text

CAUTION = (
    "Research model — not a diagnosis. The heatmap shows where the model looked, "
    "not where disease is."
)


class ProbabilityBar(QtWidgets.QWidget):
    """A 0–1 bar filled to the probability, with the threshold drawn as a tick."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.probability: float | None = None
        self.threshold: float = 0.5
        #: a research score: one neutral colour whatever side of the threshold
        self.neutral = False
        self.setMinimumSize(120, 30)
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)

    def set_values(self, probability: float | None, threshold: float) -> None:
        self.probability = None if probability is None else min(max(float(probability), 0.0), 1.0)
        self.threshold = min(max(float(threshold), 0.0), 1.0)
        tip = "no result" if probability is None else f"P(Abnormal) = {self.probability:.3f}"
        self.setToolTip(f"{tip}; operating threshold {self.threshold:.3f}")
        self.update()

    def paintEvent(self, ev) -> None:  # noqa: N802 - Qt name
        p = QtGui.QPainter(self)
        try:
            p.setRenderHint(QtGui.QPainter.Antialiasing, False)
            w, h = self.width() - 2, 18
            rect = QtCore.QRectF(1, 1, w, h)
            p.fillRect(rect, QtGui.QColor(45, 45, 48))
            if self.probability is not None:
                above = self.probability >= self.threshold
                color = QtGui.QColor(214, 96, 77) if above else QtGui.QColor(90, 160, 110)
                if self.neutral:
                    color = QtGui.QColor(120, 140, 170)
                p.fillRect(QtCore.QRectF(1, 1, w * self.probability, h), color)
            p.setPen(QtGui.QPen(QtGui.QColor(140, 140, 140), 1))
            p.drawRect(rect)
            # the threshold tick, drawn through the bar so it reads even when filled
            x = 1 + w * self.threshold
            p.setPen(QtGui.QPen(QtGui.QColor(255, 255, 255), 2))
            p.drawLine(QtCore.QPointF(x, 0), QtCore.QPointF(x, h + 6))
            p.setPen(self.palette().color(QtGui.QPalette.WindowText))
            font = p.font()
            font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
            p.setFont(font)
            p.drawText(QtCore.QRectF(1, h + 1, w, 12), QtCore.Qt.AlignLeft, "0")
            p.drawText(QtCore.QRectF(1, h + 1, w, 12), QtCore.Qt.AlignRight, "1")
        finally:
            p.end()


class PredictionPanel(QtWidgets.QWidget):
    """What the model says about the image on screen.

    States: no model (with the reason when loading failed), loading, analysing, a result,
    an error for this image.
    """

    analyzeRequested = QtCore.Signal()
    cardRequested = QtCore.Signal()
    scoreAnywayRequested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.title = QtWidgets.QLabel("<b>P(Abnormal)</b>")
        lay.addWidget(self.title)
        self.bar = ProbabilityBar()
        lay.addWidget(self.bar)
        self.value_label = QtWidgets.QLabel("—")
        self.value_label.setObjectName("predictionValue")
        f = self.value_label.font()
        f.setPointSizeF(f.pointSizeF() * 1.3)
        f.setBold(True)
        self.value_label.setFont(f)
        lay.addWidget(self.value_label)
        self.ood_label = QtWidgets.QLabel("")
        self.ood_label.setObjectName("oodCaution")
        self.ood_label.setWordWrap(True)
        self.ood_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.ood_label.hide()
        lay.addWidget(self.ood_label)
        self.score_anyway_button = QtWidgets.QPushButton("Score anyway")
        self.score_anyway_button.setToolTip(
            "Show the model's score although the image is unlike its training images; "
            "the score then carries a caution wherever it is shown")
        self.score_anyway_button.clicked.connect(self.scoreAnywayRequested)
        self.score_anyway_button.hide()
        lay.addWidget(self.score_anyway_button)
        self.model_label = QtWidgets.QLabel("Model: none")
        self.model_label.setWordWrap(True)
        lay.addWidget(self.model_label)
        #: the model's validated performance, from its card, beside every verdict
        self.perf_label = QtWidgets.QLabel("")
        self.perf_label.setObjectName("validatedPerformance")
        self.perf_label.setWordWrap(True)
        self.perf_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        lay.addWidget(self.perf_label)
        self.policy_label = QtWidgets.QLabel("")
        self.policy_label.setObjectName("researchReason")
        self.policy_label.setWordWrap(True)
        self.policy_label.hide()
        lay.addWidget(self.policy_label)
        self.card_button = QtWidgets.QPushButton("Model card…")
        self.card_button.setToolTip("Intended use, warnings, data, splits and every metric with its interval")
        self.card_button.clicked.connect(self.cardRequested)
        self.card_button.setEnabled(False)
        lay.addWidget(self.card_button)
        self.detail_label = QtWidgets.QLabel("")
        self.detail_label.setWordWrap(True)
        lay.addWidget(self.detail_label)
        self.state_label = QtWidgets.QLabel("")
        self.state_label.setWordWrap(True)
        self.state_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        lay.addWidget(self.state_label)
        self.analyze_button = QtWidgets.QPushButton("Analyze image")
        self.analyze_button.clicked.connect(self.analyzeRequested)
        lay.addWidget(self.analyze_button)
        self.caution = QtWidgets.QLabel(CAUTION)
        self.caution.setWordWrap(True)
        self.caution.setStyleSheet("color: #e0b050;")
        lay.addWidget(self.caution)
        self.extra = QtWidgets.QVBoxLayout()  # heatmap controls go here
        lay.addLayout(self.extra)
        lay.addStretch(1)
        self.threshold = 0.5
        self.result = None
        self.forced = False
        self.policy: VerdictPolicy = verdict_policy({})
        self.set_no_model()

    # -- model state
    def set_model(self, info) -> None:
        """``info``: a ModelInfo, or ``None`` for "no model"."""
        if info is None:
            self.set_no_model()
            return
        self.threshold = float(info.threshold)
        self.model_label.setText(f"Model: {info.name} {info.version} · {info.device} ({info.backend})")
        card = dict(getattr(info, "card", {}) or {})
        self.policy = verdict_policy(card)
        self.perf_label.setText(f"{performance_line(card)}.\n{training_data_line(card)}.\n"
                                f"Behind the number: {self.policy.basis_text}.")
        self.card_button.setEnabled(True)
        self.analyze_button.setEnabled(True)
        self.state_label.setText("")
        self.bar.set_values(None, self.threshold)

    def set_no_model(self, reason: str | None = None) -> None:
        self.result = None
        self.model_label.setText("Model: none — the viewer works without one")
        self.perf_label.setText("")
        self.card_button.setEnabled(False)
        self._set_ood(None)
        self.value_label.setText("No model")
        self.detail_label.setText("")
        self.state_label.setText(reason or "")
        self.analyze_button.setEnabled(False)
        self.bar.set_values(None, self.threshold)

    def set_loading(self) -> None:
        self.model_label.setText("Model: loading…")

    # -- per image
    def set_pending(self) -> None:
        self.value_label.setText("Analyzing…")
        self.state_label.setText("")
        self._set_ood(None)

    def clear_result(self) -> None:
        self.result = None
        self.forced = False
        self.value_label.setText("—")
        self.detail_label.setText("")
        self._set_ood(None)
        self.bar.set_values(None, self.threshold)

    def set_error(self, message: str) -> None:
        self.result = None
        self.forced = False
        self.value_label.setText("No result")
        self.state_label.setText(message)
        self._set_ood(None)
        self.bar.set_values(None, self.threshold)

    def _set_ood(self, text: str | None, severe: bool = False, button: bool = False) -> None:
        self.ood_label.setVisible(bool(text))
        self.ood_label.setText(text or "")
        self.ood_label.setStyleSheet("color: #ff6b5a; font-weight: bold;" if severe else "color: #e0b050;")
        self.score_anyway_button.setVisible(button)

    def show_result(self, result, forced: bool = False) -> None:
        """Show an :class:`~cxrviewer.ui.ai.workers.AnalyzeResult`; ``forced``: the reader chose
        *Score anyway* for an image the out-of-distribution gate refused."""
        pred = result.prediction
        self.result = result
        self.forced = bool(forced)
        self.threshold = float(pred.threshold)
        gate = getattr(pred, "gate", None)
        refused = gate is not None and not gate.ok
        when = f"{pred.elapsed_ms:.0f} ms" + (" (cached)" if result.from_cache else "")
        self.model_label.setText(f"Model: {pred.model_name} {pred.model_version}")
        self.state_label.setText("")
        if refused and not forced:
            self.bar.set_values(None, self.threshold)
            self.value_label.setText("Not scored")
            self.detail_label.setText("")
            self._set_ood(f"Not scored: {gate.reason}", severe=False, button=True)
            return
        p = float(pred.probability_abnormal)
        self.bar.neutral = not self.policy.verdict
        self.bar.set_values(p, self.threshold)
        if self.policy.verdict:
            self.value_label.setText(f"{p:.2f} → {pred.label}" + (" ⚠" if refused else ""))
            self.policy_label.hide()
        else:  # a research score: the number only, no verdict word, no red
            self.value_label.setText(f"{p:.2f} research score" + (" ⚠" if refused else ""))
            self.policy_label.setText(self.policy.reason)
            self.policy_label.show()
        cal = getattr(pred, "temperature", 1.0)
        self.detail_label.setText(
            f"Threshold {self.threshold:.2f} · {pred.device} ({pred.backend}) · {when}"
            + (f" · calibrated (T = {cal:.2f})" if cal and cal != 1.0 else "")
        )
        if refused:
            self._set_ood(f"CAUTION — scored anyway although out of distribution: {gate.reason}", severe=True)
        elif gate is not None and gate.caution:
            self._set_ood(f"Caution: {gate.caution}")
        else:
            self._set_ood(None)

    def text_lines(self) -> list[str]:
        """The prediction as burned into an export (empty without a result)."""
        if self.result is None:
            return []
        lines = prediction_text(self.result.prediction, forced=self.forced)
        pred = self.result.prediction
        if not self.policy.verdict and lines and lines[0].startswith("AI: P(Abnormal)"):
            lines[0] = f"AI: research score {float(pred.probability_abnormal):.2f} ({self.policy.reason})"
        return lines
