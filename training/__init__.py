"""Training module: data, patient-wise splits, the ResNet-50 recipe, metrics and reports.

Entry point: ``python -m training`` (= ``cxrviewer train``), see :mod:`training.train`.
Never imports Qt; torch is imported by the functions that need it.
"""
