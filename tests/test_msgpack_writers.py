"""persistlog/_msgpack.h writes the bytes the msgpack library writes.

C writers (libpersistlog, the Python fast path) build record payloads with
_msgpack.h; a reader must not be able to tell their records from the ones
``msgpack.Packer(use_bin_type=True)`` makes.  A small C program
(tests/c/msgpack_echo.c) encodes values given on its stdin; each encoding is
compared with msgpack's, at every boundary between two forms and for random
values.
"""
import pathlib
import shutil
import struct
import subprocess

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

ROOT = pathlib.Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    exe = tmp_path_factory.mktemp("mp") / "msgpack_echo"
    subprocess.run(["gcc", "-O1", "-Wall", "-Wextra", "-Werror", "-I", str(ROOT / "persistlog"),
                    "-o", str(exe), str(ROOT / "tests/c/msgpack_echo.c")], check=True)

    def run(lines):
        out = subprocess.run([str(exe)], input="".join(l + "\n" for l in lines),
                             capture_output=True, text=True, check=True).stdout
        return [bytes.fromhex(h) for h in out.splitlines()]
    return run


def packed(value):
    return msgpack.packb(value, use_bin_type=True)


def line_for(value):
    if value is None:
        return "n"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, int):
        return f"u {value}" if value >= 0 else f"i {value}"
    if isinstance(value, float):
        return "d " + struct.pack(">d", value).hex()
    if isinstance(value, str):
        return "s " + value.encode().hex()
    return "b " + bytes(value).hex()


EDGES = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
         -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63]
LENGTHS = [0, 1, 31, 32, 255, 256, 65535, 65536]


def test_scalars_at_every_boundary(echo):
    values = EDGES + [None, True, False, 0.0, -0.0, 1.5, float("inf"), 1e300]
    values += ["x" * n for n in LENGTHS] + [b"y" * n for n in LENGTHS]
    got = echo([line_for(v) for v in values])
    for value, enc in zip(values, got):
        assert enc == packed(value), (type(value), len(value) if hasattr(value, "__len__") else value)


def test_headers_match_msgpack(echo):
    lines = [f"S {n}" for n in LENGTHS] + [f"B {n}" for n in LENGTHS]
    lines += [f"m {n}" for n in (0, 15, 16, 65535, 65536)]
    got = echo(lines)
    want = [packed("x" * n)[:len(packed("x" * n)) - n] for n in LENGTHS]
    want += [packed(b"x" * n)[:len(packed(b"x" * n)) - n] for n in LENGTHS]
    want += [msgpack.Packer().pack_map_header(n) for n in (0, 15, 16, 65535, 65536)]
    assert got == want


def test_too_small_a_buffer_writes_nothing(echo):
    assert echo(["c"]) == [b""]


scalars = (st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1)
           | st.floats(allow_nan=False) | st.text(max_size=300) | st.binary(max_size=300))


@settings(max_examples=200, deadline=None)
@given(st.lists(scalars, min_size=1, max_size=40))
def test_random_values(echo, values):
    assert echo([line_for(v) for v in values]) == [packed(v) for v in values]
