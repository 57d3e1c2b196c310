"""Every input a fuzzer ever reported (tests/fuzz_corpus/) is replayed on every
run, so a fixed finding stays fixed: the C reader's inputs through
fuzz/fuzz_reader.c built with ASan and UBSan (no libFuzzer needed), the Python
layer's through fuzz/fuzz_python.py's one_input()."""
import os
import pathlib
import subprocess
import sys
import uuid

import msgpack
import pytest

import persistlog
from persistlog import cli, record

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fuzz_corpus"
sys.path.insert(0, str(ROOT / "fuzz"))
import fuzz_python  # noqa: E402


@pytest.fixture(autouse=True)
def _boot_id_restored(monkeypatch):
    """The code under test sets $PERSISTLOG_BOOT_ID; put it back afterwards."""
    monkeypatch.setenv("PERSISTLOG_BOOT_ID", str(uuid.UUID(int=0xF1)))


def _inputs(target):
    return sorted(p for p in (CORPUS / target).iterdir() if p.is_file())


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    """fuzz/replay.c + fuzz/fuzz_reader.c + the C core, with ASan and UBSan if the compiler has them."""
    out = tmp_path_factory.mktemp("replay") / "replay"
    cc = os.environ.get("CC", "gcc")
    src = [str(ROOT / "fuzz/replay.c"), str(ROOT / "fuzz/fuzz_reader.c"),
           str(ROOT / "persistlog/_ring.c")]
    base = [cc, "-g", "-O1", "-std=gnu11", "-I", str(ROOT / "persistlog"), *src, "-o", str(out),
            "-lpthread"]
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
           "-fno-omit-frame-pointer"]
    if subprocess.run(base + san, capture_output=True).returncode != 0:
        subprocess.run(base, check=True)
    return str(out)


@pytest.mark.parametrize("path", _inputs("reader"), ids=lambda p: p.name)
def test_reader_finding_stays_fixed(replay, path):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    p = subprocess.run([replay, str(path)], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, f"{path.name}:\n{p.stderr[-3000:]}"


@pytest.mark.parametrize("path", _inputs("python"), ids=lambda p: p.name)
def test_python_finding_stays_fixed(path):
    fuzz_python.one_input(path.read_bytes())


def test_seed_corpus_passes_both_targets(tmp_path, replay):
    """The seeds the fuzzers start from are themselves sound inputs."""
    import seeds

    seeds.main("python", str(tmp_path))
    files = sorted(tmp_path.iterdir())
    p = subprocess.run([replay, *map(str, files)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    for f in files:
        fuzz_python.one_input(f.read_bytes())
        fuzz_python.one_input(bytes([fuzz_python.WRITABLE]) + f.read_bytes()[1:])


def test_dump_json_renders_a_timestamp_field(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSISTLOG_BOOT_ID", str(uuid.UUID(int=1)))
    path = str(tmp_path / "ring")
    with persistlog.open(path, size=1 << 16) as ring:
        ring.append_bytes(msgpack.packb({"MESSAGE": "t", "when": msgpack.Timestamp(5, 6)}))
        rec = next(ring.records())
    line = cli.format_record(rec, "json-persistlog")
    assert '"when": "Timestamp(seconds=5, nanoseconds=6)"' in line


def test_journal_entry_renders_a_map_with_bytes_keys():
    journal = pytest.importorskip("persistlog.journal")
    _p, _i, msg, fields = record.decode(msgpack.packb(
        {"MESSAGE": "m", "m": {b"\x01k": 1, msgpack.ExtType(1, b"x"): [b"v"]}},
        use_bin_type=True))
    rec = record.Record(1, str(uuid.UUID(int=1)), 0, 0, 1, 1, 6, None, msg, fields)
    items = journal.entry(rec, b"/r")
    assert b'M={"016b": 1, "ExtType(code=1, data=b\'x\')": ["76"]}' in items
