"""Qt-free rendering: export composition, corner text, heatmap colours.

Used by the canvas (:mod:`cxrviewer.ui`), the headless ``cxrviewer export`` and ``selftest``
alike, so what is exported is what is on screen. Imports numpy, Pillow and :mod:`cxrviewer.core`
only: no Qt, no torch, no onnxruntime (the model runs in :mod:`cxrviewer.ml`; callers pass its
prediction in).
"""
