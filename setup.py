"""Package layout only; every other setting is in pyproject.toml.

The top-level ``resources/`` folder (theme, icons, the sample study, the bundled models, the
.desktop file) installs as the package-data subpackage ``cxrviewer._resources``, so a wheel,
an sdist and a non-editable ``pip install .`` carry it and ``importlib.resources`` finds it
(``cxrviewer.paths.resources_dir``). pyproject.toml's ``packages.find`` cannot add a package
whose folder lies outside the discovered tree, hence this file: discovery (new subpackages are
picked up without editing a list) plus the one mapping.
"""

from setuptools import find_namespace_packages, find_packages, setup

RESOURCES_PACKAGE = "cxrviewer._resources"
# resources/'s subfolders with importable names (icons, styles, sample, models) listed as
# packages too: setuptools warns about data folders that Python could import but that are not
# listed. Their files are still picked up by the one glob below.
RESOURCE_FOLDERS = [
    f"{RESOURCES_PACKAGE}.{p}"
    for p in find_namespace_packages(where="resources")
    if all(part.isidentifier() and part != "__pycache__" for part in p.split("."))
]

setup(
    packages=find_packages(include=["cxrviewer", "cxrviewer.*", "training", "training.*"])
    + [RESOURCES_PACKAGE, *RESOURCE_FOLDERS],
    package_dir={RESOURCES_PACKAGE: "resources"},
    # everything under resources/, in subfolders too (models/<name>/, sample/, icons/, styles/)
    package_data={RESOURCES_PACKAGE: ["**/*"]},
    exclude_package_data={RESOURCES_PACKAGE: ["**/__pycache__/*", "**/*.pyc", "**/*.tmp"]},
)
