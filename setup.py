"""setuptools shim: cffi_modules has no pyproject.toml spelling yet."""
from setuptools import setup

setup(cffi_modules=["persistlog/_build.py:ffibuilder"])
