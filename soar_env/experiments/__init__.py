"""Experiments run on the library (``soar-env stones``, ``benchmarks/``); the library never
imports them (tests/test_imports.py checks it)."""
