"""The canvas's corner and edge text (``QLabel`` children, so ``grab()`` includes them) and its
export: native-resolution through :func:`cxrviewer.render.compose.compose_export`, or a grab of
what is on screen. A mixin of :class:`cxrviewer.ui.canvas.canvas.ImageCanvas`, whose attributes it uses.
"""

from __future__ import annotations

import numpy as np

from cxrviewer.core.orientation import EDGES
from cxrviewer.render.compose import compose_export
from cxrviewer.render.overlay_text import CornerText, corner_text
from cxrviewer.ui.canvas.canvas_items import qimage_to_rgb


class CanvasOverlay:
    """Text overlay and export of :class:`~cxrviewer.ui.canvas.canvas.ImageCanvas`."""

    def export_layers(self) -> list[np.ndarray]:
        """The visible overlay layers as RGBA arrays in original geometry, bottom to top."""
        out = []
        img = self.img
        if img is None:
            return out
        for la in sorted(self._layers, key=lambda la: la.item.zValue()):
            if not la.item.isVisible() or la.item is self._pad_item:
                continue
            if la.export_fn is not None:
                arr = la.export_fn(img)
            else:
                data = getattr(la.item, "image", None)
                if data is None or data.ndim != 3 or data.shape[2] != 4:
                    continue
                arr = data.astype(np.float32) / 255.0
                arr[..., 3] *= float(la.item.opacity())
            if arr is not None and arr.size:
                out.append(arr)
        return out

    def set_overlay_visible(self, on: bool) -> None:
        self._overlay_visible = bool(on)
        for lab in self._labels.values():
            lab.setVisible(self._overlay_visible)

    def overlay_visible(self) -> bool:
        return self._overlay_visible

    def set_extra_text(self, lines: list[str]) -> None:
        """Extra bottom-right lines (the AI result); shown and exported with the corner text."""
        self._extra_text = list(lines)
        self._update_text()

    def corner_text(self, anonymize: bool = False, with_zoom: bool = True) -> CornerText:
        assert self.img is not None
        name = self._preset.name if self._preset is not None else ""
        return corner_text(
            self.img,
            center=self._center,
            width=self._width,
            window_name=name,
            zoom=self.zoom() if with_zoom else None,
            anonymize=anonymize,
            extra_br=self._extra_text,
            view=self._view,
        )

    def _set_label_text(self, ct: CornerText) -> None:
        # Fitted to the canvas in _place_labels (elided / fewer lines), so corners never overlap.
        self._corner_lines = {c: list(lines) for c, lines in ct.corners().items()}
        for edge in EDGES:
            self._labels[edge].setText(ct.edges.get(edge, ""))
        self._place_labels()

    def _update_text(self) -> None:
        if self.img is None:
            return
        self._set_label_text(self.corner_text())

    def _place_labels(self) -> None:
        w, h = self.width(), self.height()
        m = 8
        lines = getattr(self, "_corner_lines", {})
        if lines:
            from cxrviewer.render.text_fit import corner_boxes, fit_lines

            ref = self._labels["tl"]
            ref.ensurePolished()
            fm = ref.fontMetrics()
            big = self._labels["top"]
            big.ensurePolished()
            room = 2 * big.fontMetrics().height() if any(self._labels[e].text() for e in EDGES) else 0
            max_w, max_n = corner_boxes(w, h, fm.lineSpacing(), m, room)
            for corner, ls in lines.items():
                self._labels[corner].setText("\n".join(fit_lines(ls, fm.horizontalAdvance, max_w, max_n)))
        for corner, lab in self._labels.items():
            lab.adjustSize()
            lw, lh = lab.width(), lab.height()
            if corner in EDGES:
                x = {"left": m, "right": w - m - lw}.get(corner, (w - lw) // 2)
                y = {"top": m, "bottom": h - m - lh}.get(corner, (h - lh) // 2)
            else:
                x = m if corner[1] == "l" else w - m - lw
                y = m if corner[0] == "t" else h - m - lh
            lab.move(x, y)
            lab.raise_()
        self._placeholder.setGeometry(0, 0, w, h)

    # -------------------------------------------------------------- export
    def render_array(self, native: bool = False, anonymize: bool = False, annotations: bool = True) -> np.ndarray:
        """What is on screen (``native=False``) or the whole image at native resolution, with
        the visible layers, the measurements (rulers included) and (unless ``annotations`` is False) corner text burned in.

        Returns an RGB ``uint8`` array ``(height, width, 3)``; saving is separate.
        """
        if self.img is None:
            raise ValueError("no image is shown")
        show_text = annotations and self._overlay_visible
        if native:
            arr = compose_export(
                self.img,
                self._preset,
                view=self._view,
                layers=self.export_layers(),
                rulers=self.annotation_specs() if annotations else [],
                annotations=show_text,
                anonymize=anonymize,
                ai_lines=self._extra_text,
                native=True,
            )
            if arr.ndim == 2:
                arr = np.repeat(arr[..., None], 3, axis=2)
            return arr
        # On screen: grab the widget (image, layers, measurements, labels) after putting the
        # requested text in the labels, so an anonymized grab never shows PHI.
        hidden = []
        if not annotations:
            for it in (it for f in self.annotation_items for it in f()):  # measure_tools' shapes
                if it.isVisible():
                    it.hide()
                    hidden.append(it)
        self._set_label_text(self.corner_text(anonymize=anonymize))
        for lab in self._labels.values():
            lab.setVisible(show_text)
        self._probe_marker_was = self._probe_marker.isVisible()
        self._probe_marker.hide()
        try:
            qimg = self.grab().toImage()
        finally:
            for it in hidden:
                it.show()
            if self._probe_marker_was:
                self._probe_marker.show()
            for lab in self._labels.values():
                lab.setVisible(self._overlay_visible)
            self._update_text()
        return qimage_to_rgb(qimg)
