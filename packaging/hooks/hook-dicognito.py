"""PyInstaller hook: dicognito reads its version from ``dicognito/release_notes.md`` at import.

That file is package data, which import analysis does not see; without it ``import dicognito``
raises FileNotFoundError in the frozen app, so de-identified DICOM exports fail there only
(the selftest's ``dicom`` step de-identifies an SR, so a bundle missing it fails there).
"""

from PyInstaller.utils.hooks import collect_data_files

datas = collect_data_files("dicognito", includes=["release_notes.md"])
