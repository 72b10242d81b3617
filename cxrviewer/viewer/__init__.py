"""The Qt-free viewer model (napari's ``ViewerModel`` in small): viewports, layout, each
viewport's image, window, view, measurements, AI result and derived captions, evented with
psygnal; hanging protocols and export defaults as plain data. Imports neither Qt nor pyqtgraph
(an import-linter contract), so the reading workflow is tested without a display."""

from cxrviewer.viewer.model import (
    LAYOUTS,
    AiResult,
    ImageRef,
    Measurement,
    ModelSnapshot,
    ViewerModel,
    ViewportModel,
    ViewTransform,
    Window,
)

__all__ = ["LAYOUTS", "AiResult", "ImageRef", "Measurement", "ModelSnapshot", "ViewTransform", "ViewerModel",
           "ViewportModel", "Window"]
