"""Benchmarks behind ``cxrviewer bench``."""
