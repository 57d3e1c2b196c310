"""Build scripts of the two C extensions.

``ffibuilder``: the C core, persistlog._core, by cffi (API mode, out of
line), its declarations from persistlog/_ring.h.  ``fast_extension()``:
persistlog._fast (persistlog/_fast.c), Ring.append's fast path, a CPython
extension against the stable ABI that calls the core through the addresses
persistlog._core gives it (so the process holds one copy of the core).

Build switches, for both, come from the environment:

``PERSISTLOG_SANITIZE``
    comma-separated sanitizers, for example ``address,undefined``: the core is
    built with ``-fsanitize=...`` and frame pointers (tests then need the
    runtime preloaded, see .ci/run).
``PERSISTLOG_CFLAGS``
    extra compiler flags, split on white space.
"""
import os
import pathlib
import re

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent


def _cdef():
    """The declarations of _ring.h, without its preprocessor lines, which cffi
    cannot parse; its integer constants are declared for cffi to read back."""
    header = (HERE / "_ring.h").read_text()
    consts = re.findall(r"^#define\s+(PLR_\w+)\s", header, re.M)
    decls = [line for line in header.splitlines() if not line.lstrip().startswith("#")]
    return "\n".join([f"#define {name} ..." for name in consts] + decls)


def _flags():
    cflags = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-fno-strict-aliasing"]
    ldflags = []
    sanitize = os.environ.get("PERSISTLOG_SANITIZE", "").strip()
    if sanitize:
        cflags += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer", "-g", "-O1"]
        ldflags += [f"-fsanitize={sanitize}"]
    cflags += os.environ.get("PERSISTLOG_CFLAGS", "").split()
    return cflags, ldflags


ffibuilder = FFI()
ffibuilder.cdef(_cdef())
_cflags, _ldflags = _flags()
ffibuilder.set_source(
    "persistlog._core",
    '#include "_ring.h"',
    sources=["persistlog/_ring.c"],
    include_dirs=[str(HERE)],
    extra_compile_args=_cflags,
    extra_link_args=_ldflags,
)


def fast_extension():
    """The setuptools Extension of persistlog._fast: stable ABI (abi3, the
    limited API of Python 3.9, set in _fast.c), the core's flags."""
    from setuptools import Extension

    return Extension(
        "persistlog._fast",
        sources=["persistlog/_fast.c"],
        depends=["persistlog/_ring.h", "persistlog/_msgpack.h"],
        include_dirs=["persistlog"],
        py_limited_api=True,
        extra_compile_args=_cflags,
        extra_link_args=_ldflags,
    )


if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
