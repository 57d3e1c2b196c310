"""setuptools shim: cffi_modules has no pyproject.toml spelling yet.

cffi builds the core against the stable ABI (persistlog/_core.abi3.so: cffi's
default, py_limited_api=True), so the wheel is tagged cp39-abi3 (the oldest
Python of requires-python) instead of the building interpreter's cp3X-cp3X.
"""
from setuptools import setup

setup(
    cffi_modules=["persistlog/_build.py:ffibuilder"],
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)
