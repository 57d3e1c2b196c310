"""setuptools shim: cffi_modules has no pyproject.toml spelling yet.

Two extensions, both against the stable ABI, so the wheel is tagged
cp39-abi3 (the oldest Python of requires-python) instead of the building
interpreter's cp3X-cp3X: the C core, persistlog/_core.abi3.so, built by
cffi (whose default is py_limited_api=True), and Ring.append's fast path,
persistlog/_fast.abi3.so (persistlog/_build.py, fast_extension()).
"""
import runpy
from pathlib import Path

from setuptools import setup

_build = runpy.run_path(str(Path(__file__).resolve().parent / "persistlog" / "_build.py"))

setup(
    cffi_modules=["persistlog/_build.py:ffibuilder"],
    ext_modules=[_build["fast_extension"]()],
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)
