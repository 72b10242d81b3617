"""Model layer (torch/torchvision, never Qt): preprocessing, model files, inference, Grad-CAM.

torch is imported lazily by the modules that need it, so ``cxrviewer.ml.preprocess`` is
usable (and fast to import) without torch, e.g. by the ONNX Runtime backend.

Where things are: the typed model card (``card``), one module per architecture (``arch``),
the registry of installed models (``registry``), preprocessing incl. torchxrayvision's
pipeline (``preprocess``), the engine (``inference``), Grad-CAM (``cam``), the
out-of-distribution gate (``ood``), published torchxrayvision models (``xrv``), finding codes
(``findings``), the site's own validations (``validation``) and the rule deciding whether a
number may carry a verdict (``policy``).
"""
