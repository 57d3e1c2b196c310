"""Many writer processes at once, and many openers of a new boot at once."""
import multiprocessing as mp
import os
import uuid

import persistlog
from persistlog import _binding
from persistlog.boot import parse_boot_id

WRITERS, PER_WRITER = 8, 20_000


def _writer(region, w, start):
    start.wait()
    with persistlog.open(region) as ring:
        for i in range(PER_WRITER):
            ring.append(f"w{w} i{i}", identifier=f"w{w}", w=w, i=i)


def test_8_processes_x_20000_records_every_record_once_seq_dense(region, boot_env):
    with persistlog.open(region, size=64 << 20):
        pass
    ctx = mp.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(region, w, start)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0, f"writer {p.pid} exited with {p.exitcode}"

    with persistlog.open(region, readonly=True) as ring:
        recs = list(ring.records())
        st = ring.stats()
    total = WRITERS * PER_WRITER
    assert [r.seq for r in recs] == list(range(1, total + 1)), "seq not dense from 1"
    seen = {(r.fields["w"], r.fields["i"]) for r in recs}
    assert len(seen) == total
    assert all(r.message == f"w{r.fields['w']} i{r.fields['i']}" for r in recs)
    for w in range(WRITERS):  # each writer's records appear in its own order
        mine = [r.fields["i"] for r in recs if r.fields["w"] == w]
        assert mine == list(range(PER_WRITER)), f"writer {w} out of order"
    assert len({r.pid for r in recs}) == WRITERS
    assert (st["lost"], st["torn"], st["corrupt"]) == (0, 0, 0)


def _opener(region, start, out):
    start.wait()
    with persistlog.open(region) as ring:
        out.put(ring.append("hello"))


def _raw_registrar(region, boot_hex, start, out):
    # bypasses open()'s flock, to test the compare-and-swap protocol alone
    import mmap
    fd = os.open(region, os.O_RDWR)
    mm = mmap.mmap(fd, os.fstat(fd).st_size)
    view = _binding.View(mm, len(mm))
    view.attach(bytes.fromhex(boot_hex))
    start.wait()
    out.put(view.register_boot(1, 10**9))
    view.release()


def _race(n, target, *args):
    """Start *n* processes running target(*args, start, out) at one instant;
    returns what each put on *out*."""
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, start, out)) for _ in range(n)]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    return results


def _table_entries(region, boot_id):
    with persistlog.open(region, readonly=True) as ring:
        return [b for b in ring._view.boots() if b[0] == parse_boot_id(boot_id)]


def test_new_boot_is_registered_exactly_once_by_concurrent_openers(region, boot_env):
    with persistlog.open(region, size=1 << 20) as ring:
        ring.append("first boot")
    new = boot_env()
    _race(16, _opener, region)
    assert len(_table_entries(region, new)) == 1


def test_boot_claim_protocol_alone_has_one_winner(region, boot_env):
    with persistlog.open(region, size=1 << 20):
        pass
    for _ in range(5):
        boot = uuid.uuid4()
        started = _race(12, _raw_registrar, region, boot.hex)
        assert started.count(True) == 1, "exactly one process starts the boot"
        assert len(_table_entries(region, str(boot))) == 1
