"""Model layer (torch/torchvision, never Qt): preprocessing, model files, inference, Grad-CAM.

torch is imported lazily by the modules that need it, so ``cxrviewer.ml.preprocess`` is
usable (and fast to import) without torch, e.g. by the ONNX Runtime backend.
"""
