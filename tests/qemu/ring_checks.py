"""Host-side checks shared by the QEMU tests that run the real ring in a
guest (test_qemu_ring.py with the module, test_qemu_backends.py without):
what the guest writers acknowledged against what ``dump --previous-boot``
printed after the crash."""

import json
import os
import shutil
import sys
from collections import defaultdict

import pytest
from guest_ring import expected


def require_persistlog_cli():
    """Fail unless this Python has the ``persistlog`` command: the guest runs both."""
    bindir = os.path.dirname(sys.executable)
    if not shutil.which("persistlog", path=bindir):
        pytest.fail(f"no persistlog command in {bindir}: pip install the project into "
                    f"{sys.executable} first (the guest runs this Python and its CLI)")


def same(rec, want):
    """True if dumped record *rec* carries what the writer wrote (*want*)."""
    return all(rec[k] == want[k] for k in ("message", "priority", "identifier", "fields"))


def read_acked(run, boot, writers, prefix=""):
    """{writer: [(i, seq), ...]} acknowledged in *boot*, from the guest's
    ``{prefix}acked-{boot}-{w}.jsonl`` files."""
    out = defaultdict(list)
    for w in range(writers):
        path = run.state / f"{prefix}acked-{boot}-{w}.jsonl"
        err = run.state / f"{prefix}writer-{boot}-{w}.err"
        assert path.exists(), (f"{prefix}writer {w} of boot {boot} never started: "
                               f"{err.read_text() if err.exists() else ''}\n{run.tail()}")
        for line in path.read_text().splitlines():
            a = json.loads(line)
            out[a["w"]].append((a["i"], a["seq"]))
    return out


def split_records(recs, boot, writers, what):
    """Split dumped records of *boot* into ({writer: [(i, seq), ...]}, cli records),
    asserting that each writer record is exactly one the writers wrote."""
    by_writer = defaultdict(list)
    cli = []
    for r in recs:
        if r["identifier"] == "cli":
            cli.append(r)
            continue
        w, i = int(r["fields"].get("WRITER", -1)), int(r["fields"].get("I", -1))
        assert 0 <= w < writers and same(r, expected(boot, w, i)), (
            f"{what}: record seq {r['seq']} is not one the writers wrote (torn?): {r}")
        by_writer[w].append((i, r["seq"]))
    return by_writer, cli


def check_writer(got, acks, what):
    """A writer's dumped records (*got*) hold every acknowledged one (*acks*),
    as a gap-free prefix of what it wrote with at most one record more: the
    append that returned after its last acknowledgement reached the host."""
    missing = [(i, s) for i, s in acks if (i, s) not in got]
    assert not missing, (f"{what} lost acknowledged records (i, seq) {missing[:10]} "
                         f"of {len(acks)}; the dump has {len(got)}")
    indices = [i for i, _ in got]
    assert indices == list(range(len(indices))), f"{what}: gaps or reordering in {indices}"
    assert len(acks) <= len(got) <= len(acks) + 1, (
        f"{what} has {len(got)} records for {len(acks)} acknowledged")
