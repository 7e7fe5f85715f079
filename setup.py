"""The optional C extension: built where a compiler is, skipped (pure-Python fallback) where none is."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("pipdelta.native._scan", ["pipdelta/native/_scan.c"], optional=True)])
