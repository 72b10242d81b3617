"""The prediction panel: P(Abnormal) as a bar with the operating threshold, the label it
implies, which model said so, where it ran and how long it took, and the caution line.

Beside the probability it shows the model's *validated* performance from its card (test AUC
with its 95 % interval, the training data in one line) and a button to the card. An image the
out-of-distribution gate refuses shows "Not scored: <reason>" and *Score anyway*; a result
scored anyway carries its caution in red.

Never oversold (:func:`cxrviewer.ml.policy.verdict_policy`): without a validation on this
site's cases (or a test split) whose AUC interval starts at 0.70 or above, the number is a
*research score*: neutral colour, no Normal/Abnormal word, and one line saying why.

A multi-finding model (``Prediction.findings``) gets a findings list instead of one
P(Abnormal): every finding by probability, those at or above their operating point marked,
those without one marked as such (their number is the plain sigmoid, not on the 0.5 scale).
The policy is applied per finding. Clicking a finding chooses it (``findingChosen``): the
integration then shows its heatmap and names it in the legend, the corner text and the
viewer model's AI result.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from cxrviewer.ml.card_text import performance_line, training_data_line
from cxrviewer.ml.policy import VerdictPolicy, verdict_policy
from cxrviewer.render.colormaps import prediction_text

#: the list's item role holding the finding's name
FINDING_ROLE = QtCore.Qt.ItemDataRole.UserRole
#: marks a finding at or above its operating point (a research score: neutral, no verdict word)
AT_OP_MARK = "▲"
NO_OP_TEXT = "no operating point"


def is_multi(pred) -> bool:
    """Whether ``pred`` is a multi-finding :class:`~cxrviewer.ml.inference.Prediction`
    (its ``findings`` are ``FindingScore`` entries, ranked by ``ranked_findings``)."""
    return bool(getattr(pred, "findings", ())) and callable(getattr(pred, "ranked_findings", None))


def top_finding(pred):
    """The finding a multi-finding prediction leads with: the most probable among those with
    an operating point (what ``probability_abnormal`` and the browser's sort read), else the
    most probable. ``None`` for a two-class prediction."""
    ranked = list(pred.ranked_findings()) if is_multi(pred) else []
    if not ranked:
        return None
    with_op = [f for f in ranked if f.op_point is not None]
    return with_op[0] if with_op else ranked[0]


def finding_text(f, policy: VerdictPolicy) -> str:
    """One finding in words (list row, corner text, badge): its number, and what may be said of
    it by ``policy`` (the finding's own). Without an operating point: says so, never a verdict."""
    if f.op_point is None:
        return f"{f.name} {f.probability:.2f} ({NO_OP_TEXT})"
    if policy.verdict:
        return f"{f.name} {f.probability:.2f} → {'present' if f.positive else 'absent'}"
    return f"{f.name} {f.probability:.2f}" + (f" {AT_OP_MARK}" if f.positive else "")

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

    def set_values(self, probability: float | None, threshold: float | None, what: str = "P(Abnormal)") -> None:
        """``threshold`` None: no operating point (no tick is drawn: the number is not on its scale)."""
        self.probability = None if probability is None else min(max(float(probability), 0.0), 1.0)
        self.threshold = None if threshold is None else min(max(float(threshold), 0.0), 1.0)
        tip = "no result" if probability is None else f"{what} = {self.probability:.3f}"
        self.setToolTip(f"{tip}; " + ("no operating point" if self.threshold is None
                                      else f"operating threshold {self.threshold:.3f}"))
        self.update()

    def paintEvent(self, ev) -> None:  # noqa: N802 - Qt name
        p = QtGui.QPainter(self)
        try:
            p.setRenderHint(QtGui.QPainter.Antialiasing, False)
            w, h = self.width() - 2, 18
            rect = QtCore.QRectF(1, 1, w, h)
            p.fillRect(rect, QtGui.QColor(45, 45, 48))
            if self.probability is not None:
                above = self.threshold is not None and self.probability >= self.threshold
                color = QtGui.QColor(214, 96, 77) if above else QtGui.QColor(90, 160, 110)
                if self.neutral:
                    color = QtGui.QColor(120, 140, 170)
                p.fillRect(QtCore.QRectF(1, 1, w * self.probability, h), color)
            p.setPen(QtGui.QPen(QtGui.QColor(140, 140, 140), 1))
            p.drawRect(rect)
            if self.threshold is not None:
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
    #: the reader chose a finding of a multi-finding model (its name)
    findingChosen = QtCore.Signal(str)

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
        self.value_label.setWordWrap(True)  # a finding's name and words must not widen the dock
        lay.addWidget(self.value_label)
        #: a multi-finding model's findings by probability (hidden for a two-class model)
        self.findings_list = QtWidgets.QListWidget()
        self.findings_list.setObjectName("aiFindings")
        self.findings_list.setToolTip(
            f"Findings by probability. {AT_OP_MARK}: at or above the finding's operating point. "
            f"'{NO_OP_TEXT}': the plain probability, not on the operating-point scale. "
            "Click a finding to see its heatmap.")
        self.findings_list.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.findings_list.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.findings_list.setTextElideMode(QtCore.Qt.TextElideMode.ElideRight)
        self.findings_list.setMinimumHeight(120)
        self.findings_list.currentItemChanged.connect(self._on_finding_item)
        # the dock decides the width: long rows elide instead of widening the panel past it
        self.findings_list.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Expanding)
        self.findings_list.hide()
        lay.addWidget(self.findings_list)
        self.findings_key = QtWidgets.QLabel(
            f"{AT_OP_MARK}: at/above its operating point · grey: no operating point (plain probability) · "
            "click a finding to see its heatmap")
        self.findings_key.setObjectName("findingsKey")
        self.findings_key.setWordWrap(True)
        self.findings_key.hide()
        lay.addWidget(self.findings_key)
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
        #: the out-of-distribution check in force (said only while it is the header rules alone)
        self.gate_label = QtWidgets.QLabel("")
        self.gate_label.setObjectName("gateMode")
        self.gate_label.setWordWrap(True)
        self.gate_label.setStyleSheet("color: #e0b050;")
        self.gate_label.hide()
        lay.addWidget(self.gate_label)
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
        self.card: dict = {}
        self.multi_model = False
        #: the finding shown (multi-finding model), ``None`` for a two-class model
        self.chosen: str | None = None
        self._filling = False
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
        self.card = card
        self.multi_model = bool(card.get("findings"))
        self._set_multi(False)
        self.policy = verdict_policy(card)
        self._model_perf()
        mode_text = str(getattr(info, "gate_mode_text", "") or "")
        # said while only the header rules run (no learned check fitted for this model yet)
        self.gate_label.setText(mode_text[:1].upper() + mode_text[1:] + "." if "header rules only" in mode_text else "")
        self.gate_label.setVisible(bool(self.gate_label.text()))
        self.card_button.setEnabled(True)
        self.analyze_button.setEnabled(True)
        self.state_label.setText("")
        self.bar.set_values(None, self.threshold)

    def _model_perf(self) -> None:
        """The model's validation line (no finding shown: the model's own basis)."""
        self.perf_label.setText(f"{performance_line(self.card)}.\n{training_data_line(self.card)}.\n"
                                f"Behind the number{'s' if self.multi_model else ''}: {self.policy.basis_text}.")

    def set_no_model(self, reason: str | None = None) -> None:
        self.result = None
        self.model_label.setText("Model: none — the viewer works without one")
        self.perf_label.setText("")
        self.gate_label.hide()
        self.chosen = None
        self.multi_model = False
        self._set_multi(False)
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
        self.chosen = None  # the next image leads with its own top finding
        if self.multi_model:
            self._model_perf()
        self._set_multi(False)
        self.value_label.setText("—")
        self.detail_label.setText("")
        self._set_ood(None)
        self.bar.set_values(None, self.threshold)

    def set_error(self, message: str) -> None:
        self.result = None
        self.forced = False
        self.chosen = None
        self._set_multi(False)
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
            self._set_multi(False)  # no finding's number either
            self.policy_label.hide()
            if self.multi_model:
                self._model_perf()
            self.bar.set_values(None, None if self.multi_model else self.threshold)
            self.value_label.setText("Not scored")
            self.detail_label.setText("")
            self._set_ood(f"Not scored: {gate.reason}", severe=False, button=True)
            return
        if is_multi(pred):
            self._show_findings(pred, refused, when)
        else:
            self._show_binary(pred, refused, when)
        if refused:
            self._set_ood(f"CAUTION — scored anyway although out of distribution: {gate.reason}", severe=True)
        elif gate is not None and gate.caution:
            self._set_ood(f"Caution: {gate.caution}")
        else:
            self._set_ood(None)

    def _show_binary(self, pred, refused: bool, when: str) -> None:
        self._set_multi(False)
        self.chosen = None
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

    # -- multi-finding models
    def _set_multi(self, on: bool) -> None:
        self.findings_list.setVisible(on)
        self.findings_key.setVisible(on)
        # a multi-finding model never reads "P(Abnormal)", not even for an image it did not score
        self.title.setText("<b>Findings</b>" if on or self.multi_model else "<b>P(Abnormal)</b>")
        if not on:
            self._filling = True
            self.findings_list.clear()
            self._filling = False

    def finding_policy(self, name: str) -> VerdictPolicy:
        """The verdict policy of one finding (the rule applies per finding)."""
        return verdict_policy(self.card, name)

    def _show_findings(self, pred, refused: bool, when: str, chosen: str | None = None) -> None:
        names = [f.name for f in pred.findings]
        if chosen is None:
            chosen = self.chosen if self.chosen in names else None
        if chosen is None:
            chosen = top_finding(pred).name
        self._set_multi(True)
        self._filling = True
        self.findings_list.clear()
        neutral = QtGui.QColor(150, 170, 200)
        present = QtGui.QColor(255, 120, 100)
        dim = QtGui.QColor(150, 150, 150)
        for f in pred.ranked_findings():
            pol = self.finding_policy(f.name)
            item = QtWidgets.QListWidgetItem(finding_text(f, pol))
            item.setData(FINDING_ROLE, f.name)
            if f.op_point is None:
                item.setForeground(dim)
            elif f.positive:
                item.setForeground(present if pol.verdict else neutral)
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            item.setToolTip(f"{finding_text(f, pol)} — " + (pol.basis_text if pol.verdict else pol.reason)
                            + ("" if f.op_point is None else f"; operating point {f.op_point:.3f}"))
            self.findings_list.addItem(item)
            if f.name == chosen:
                self.findings_list.setCurrentItem(item)
        self._filling = False
        n_pos = sum(1 for f in pred.findings if f.positive)
        self.title.setText(f"<b>Findings</b> ({len(names)}; {n_pos} at/above operating point)")
        self.detail_label.setText(f"{pred.device} ({pred.backend}) · {when}")
        self._show_chosen(chosen, emit=False)

    def _on_finding_item(self, cur, prev=None) -> None:
        if self._filling or cur is None:
            return
        self._show_chosen(str(cur.data(FINDING_ROLE)), emit=True)

    def choose_finding(self, name: str) -> None:
        """Choose finding ``name`` (as a click in the list does)."""
        for i in range(self.findings_list.count()):
            it = self.findings_list.item(i)
            if it.data(FINDING_ROLE) == name:
                self.findings_list.setCurrentItem(it)
                return
        raise KeyError(name)

    def chosen_score(self):
        """The chosen finding's :class:`~cxrviewer.ml.inference.FindingScore` (or None)."""
        if self.result is None or self.chosen is None or not is_multi(self.result.prediction):
            return None
        return next((f for f in self.result.prediction.findings if f.name == self.chosen), None)

    def _show_chosen(self, name: str, emit: bool) -> None:
        self.chosen = name
        f = self.chosen_score()
        if f is None:
            return
        pol = self.finding_policy(name)
        refused = self.forced
        self.bar.neutral = not pol.verdict
        self.bar.set_values(f.probability, 0.5 if f.op_point is not None else None, what=name)
        word = "" if pol.verdict or f.op_point is None else " research score"
        self.value_label.setText(finding_text(f, pol) + word + (" ⚠" if refused else ""))
        if pol.verdict:
            self.policy_label.hide()
        else:
            self.policy_label.setText(pol.reason)
            self.policy_label.show()
        self.perf_label.setText(f"{performance_line(self.card)}.\n{training_data_line(self.card)}.\n"
                                f"Behind the numbers ({name}): {pol.basis_text}.")
        if emit:
            self.findingChosen.emit(name)

    def text_lines(self) -> list[str]:
        """The prediction as burned into an export (empty without a result)."""
        if self.result is None:
            return []
        pred = self.result.prediction
        f = self.chosen_score() if is_multi(pred) else None
        gate = getattr(pred, "gate", None)
        refused = gate is not None and not gate.ok
        if f is not None and not (refused and not self.forced):
            pol = self.finding_policy(f.name)
            if pol.verdict or f.op_point is None:
                lines = [f"AI: {finding_text(f, pol)}".replace("→", "->")]
            else:  # a research score: the number, whether it reached the operating point, why
                lines = [f"AI: {f.name} {f.probability:.2f} research score"
                         + (" (>= op. point)" if f.positive else ""), pol.reason]
            lines += [f"Heatmap: evidence for {f.name}", f"{pred.model_name} {pred.model_version}",
                      "Research model - not a diagnosis"]
            if refused:
                lines.insert(1, f"CAUTION: scored anyway, out of distribution: {gate.reason}")
            elif gate is not None and gate.caution:
                lines.insert(1, f"Caution: {gate.caution}")
            return lines
        lines = prediction_text(pred, forced=self.forced)
        if not self.policy.verdict and lines and lines[0].startswith("AI: P(Abnormal)"):
            lines[0] = f"AI: research score {float(pred.probability_abnormal):.2f} ({self.policy.reason})"
        return lines
