"""PyInstaller hook: pylibjpeg finds its codec plugins through entry points.

``pylibjpeg.utils.get_pixel_data_decoders()`` (which pydicom's pylibjpeg plugin calls) reads
the ``pylibjpeg.*`` entry-point groups from installed package metadata, then imports the
module each entry names (``openjpeg``, ``libjpeg``, ...). A frozen app has neither unless the
hook adds them: without the ``*.dist-info`` folders every compressed DICOM fails to decode
while uncompressed files work, which is easy to miss. Both lists are derived from the
installed entry points, so a new plugin package is picked up without editing this file.
"""

from importlib.metadata import distributions

from PyInstaller.utils.hooks import collect_submodules, copy_metadata

datas = copy_metadata("pylibjpeg")
hiddenimports = []
_seen = set()
for dist in distributions():
    name = dist.metadata["Name"]
    for ep in dist.entry_points:
        if not ep.group.startswith("pylibjpeg."):
            continue
        top = ep.value.split(":")[0].strip().split(".")[0]
        if top not in _seen:
            _seen.add(top)
            hiddenimports += collect_submodules(top, filter=lambda n: ".tests" not in n)
        if name not in _seen:
            _seen.add(name)
            datas += copy_metadata(name)
