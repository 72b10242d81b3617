"""Training module: data, patient-wise splits, the ResNet-50 recipe, metrics and reports.

Entry point: ``python -m training`` (= ``cxrviewer train``), see :mod:`training.train`.
Never imports Qt; torch is imported by the functions that need it.
"""

import time as _time

#: when this process started training work (``--time-budget`` counts from here: the imports
#: of torch and of the data code are part of the run's time)
STARTED: float | None = _time.monotonic()
