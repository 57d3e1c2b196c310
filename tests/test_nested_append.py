"""An append from a signal handler when the interrupted append's chunk is full.

The interrupted append has reserved its space (test point space_reserved) but
stored nothing yet.  The nested one does not fit in what is left of the
chunk: it must be dropped (PLR_EBUSY, busy_drops counted), not seal the chunk
and take another, because the interrupted append goes on to store its record
through the lane afterwards, at the offset it reserved.  Had the lane moved
to a new chunk, that record would land in the new chunk at an offset the
lane has already passed over, and the appends after it would overwrite it: an
acknowledged record lost.
"""
import os
import signal
import struct
import subprocess
import time
import uuid

import persistlog
from test_stopped_and_killed_writers import _acks, _check_region
from writers import writer_message

REC_HDR, CHUNK_HDR = 80, 192


def _need(w, i):
    """Bytes record i of writer w takes in a chunk (tests/c/writer.c's msgpack map)."""
    payload = 11 + len(writer_message(w, i).encode())
    return (REC_HDR + payload + 7) & ~7


def _first_append_leaving_no_room_for(nested_need, chunk_size, w=0):
    """The 1-based append of writer w after whose reservation the rest of its
    chunk is too small for nested_need bytes (writer.c's appends are all the
    same size order, so lanes fill deterministically)."""
    off = CHUNK_HDR
    for i in range(10000):
        need = _need(w, i)
        if off + need > chunk_size:
            off = CHUNK_HDR
        off += need
        if chunk_size - off < nested_need and i > 0:
            return i + 1
    raise AssertionError("no such append")


def test_a_nested_append_that_does_not_fit_is_dropped_not_moved_to_a_new_chunk(
        region, boot_env, c_writer_testpoints, tmp_path):
    boot = os.environ["PERSISTLOG_BOOT_ID"]
    with persistlog.open(region, size=256 << 10):
        pass
    with open(region, "rb") as f:
        chunk_size = struct.unpack_from("<I", f.read(128), 64)[0]
    nth = _first_append_leaving_no_room_for(_need(1000, 0), chunk_size)
    count = nth + 200  # well short of a lap: every acknowledged record stays
    ack = tmp_path / "ack0"
    with open(ack, "wb") as f:
        f.truncate(8 * (count + 1))
    env = dict(os.environ, PLR_STOP_AT="space_reserved", PLR_STOP_AFTER=str(nth),
               PLR_STOP_NESTED="1")
    p = subprocess.Popen([c_writer_testpoints, region, uuid.UUID(boot).hex, "0", str(ack), "0",
                          str(count)], env=env)
    try:
        # the hook appends the nested record, then SIGSTOPs the writer there
        deadline = time.monotonic() + 10
        while _state(p.pid) != "T":
            assert p.poll() is None, "the writer ended before its test point"
            assert time.monotonic() < deadline, "the writer never reached space_reserved"
            time.sleep(0.001)
        p.send_signal(signal.SIGCONT)
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    acked = _acks(ack)
    assert len(acked) == count
    st = _check_region(region, {0: ack}, 0)  # every acknowledged record, byte for byte
    assert st["records"] == count and st["overwritten"] == 0, st
    assert st["busy_drops"] == 1, "the nested append that did not fit was not dropped"
    with persistlog.open(region, readonly=True) as ring:
        assert [r.seq for r in ring.records()] == list(acked)


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]
