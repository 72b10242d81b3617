"""PyInstaller hook: highdicom reads its tables of the standard with ``pkgutil.get_data``.

``highdicom/_standard/*.json`` (SOP class -> IOD -> module -> attribute maps, checked when an
SC, SR or presentation state is built) and ``_icc_profiles/*.icc`` are package data, which
import analysis does not see; without them *Export as DICOM...* fails in the frozen app only.
The selftest's ``dicom`` step builds all three objects, so a bundle missing them fails there.
"""

from PyInstaller.utils.hooks import collect_data_files, copy_metadata

datas = collect_data_files("highdicom") + copy_metadata("highdicom")
