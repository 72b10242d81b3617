"""Run-time data of cxrviewer, installed as the package ``cxrviewer._resources`` (setup.py).

Not code: this file only makes the folder a regular package so that ``importlib.resources``
finds it in every kind of install. Look files up through ``cxrviewer.paths.resource()``.
"""
