"""Every single bit of a small region flipped, one at a time (fuzz/bitflip.c).

The region (64 KiB, 600 records of known content written over two boots, so
it has wrapped and holds a PAD word and stale bytes) is read back after each
of its 524,288 possible single-bit flips, as persistlog's reader reads it.
For every flip: the reader terminates, every record it emits equals the one
written with that seq, at most one record is lost (the one whose bytes hold
the bit: its CRC32C catches every single-bit error), none for a flip in the
header page (a damaged header makes the reader scan, and the scan does not
need the header), and a damaged header is rebuilt into a valid, flagged one
that yields the same records.
"""
import os
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
REGION_BYTES, RECORDS = 65536, 600


def test_every_single_bit_flip_of_a_small_region(tmp_path):
    exe = tmp_path / "bitflip"
    cc = os.environ.get("CC", "gcc")
    subprocess.run([cc, "-O2", "-std=gnu11", "-Wall", "-I", str(ROOT / "persistlog"),
                    str(ROOT / "fuzz/bitflip.c"), str(ROOT / "persistlog/_ring.c"),
                    "-o", str(exe), "-lpthread"], check=True)
    jobs = max(1, len(os.sched_getaffinity(0)))
    p = subprocess.run([str(exe), str(REGION_BYTES), str(RECORDS), str(jobs)],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr[-4000:]}"
    fig = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", p.stdout)}
    print(f"\n{p.stdout.strip()}")

    assert fig["flips"] == REGION_BYTES * 8
    assert fig["wrong_records"] == 0, "a record was emitted that differs from what was written"
    assert fig["over_budget"] == 0, "a flip lost more records than it can explain"
    assert fig["max_lost_per_flip"] <= 1
    assert fig["rebuild_mismatch"] == 0
    assert 300 <= fig["records_readable"] < RECORDS, "the region should have wrapped"
    # every flip in the 64-byte geometry (magic, sizes, crc) makes the header invalid
    assert fig["invalid_headers"] == fig["rebuilt"] == 64 * 8
    # each readable record is lost exactly once per bit of its own bytes
    assert fig["records_lost"] == fig["flips_losing_1"]
    assert fig["records_emitted"] + fig["records_lost"] == fig["flips"] * fig["records_readable"]
