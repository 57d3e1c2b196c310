"""Model-based test: random sequences of append, reopen, boot change, wrap
and header loss, run against a real region and against a small Python model
of the ring (hypothesis stateful testing), compared after every step.

The model (tests/ringmodel.py) lays records out as docs/FORMAT.md says a
single writer does and says which records survive.  The reader must show exactly those, with the
content, boot and seq they were written with, and the figures of stats()
must be exact: overwritten counts the evicted records, lost and corrupt are
zero.
"""
import os
import uuid

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import persistlog
import ringmodel
from persistlog import _binding, record

pytestmark = pytest.mark.filterwarnings("ignore::persistlog.RegionRecovered")

SIZE = 64 * 1024
DATA = (SIZE - _binding.HEADER_SIZE) & ~7
MAX_RECORD = ringmodel.chunk_size(DATA) - ringmodel.CHUNK_HDR


@pytest.fixture(autouse=True)
def _boot_id_restored(monkeypatch):
    """The code under test sets $PERSISTLOG_BOOT_ID; put it back afterwards."""
    monkeypatch.setenv("PERSISTLOG_BOOT_ID", str(uuid.UUID(int=0xF1)))


def _message_with_stride(stride):
    return next(n for n in range(1, stride)
                if ringmodel.stride(len(record.encode("a" * n, 6))) == stride)


_ALIGNED = {k: _message_with_stride(128 * k) for k in (1, 2, 4)}


class RingMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.model = ringmodel.RingModel(DATA)
        self.ring = None
        self.trusted = True
        self.boots = []

    @initialize()
    def create(self):
        self.dir = _tmpdir()
        self.path = os.path.join(self.dir, "ring")
        self._new_boot()
        self.ring = persistlog.open(self.path, size=SIZE)
        assert self.ring.outcome == "missing"

    def _new_boot(self):
        boot = str(uuid.uuid4())
        os.environ["PERSISTLOG_BOOT_ID"] = boot
        self.boots.append(boot)

    def _append(self, message, priority):
        payload_len = len(record.encode(message, priority))
        seq = self.ring.append(message, priority=priority)
        want = self.model.append(self.boots[-1], message, payload_len)
        assert seq == want, f"append returned seq {seq}, the model expected {want}"

    @rule(n=st.integers(0, 300), priority=st.integers(0, 7), reps=st.integers(1, 20))
    def append(self, n, priority, reps):
        for i in range(reps):
            self._append(f"r{i} " + "x" * n, priority)

    @rule(n=st.integers(MAX_RECORD // 4, MAX_RECORD - 200))
    def append_large(self, n):
        """Records of up to max_record: a few of them wrap the ring."""
        self._append("L" * n, 3)

    @rule(reps=st.integers(1, 500), k=st.sampled_from([1, 2, 4]))
    def append_aligned(self, reps, k):
        """Records of one stride: in every lap a record starts exactly where a
        record of the generation before started (its stale header is then
        one of an earlier generation, which the reader must not take)."""
        message = "a" * _ALIGNED[k]
        for _ in range(reps):
            self._append(message, 6)

    @rule()
    def reopen(self):
        self.ring.close()
        self.model.release()
        self.ring = persistlog.open(self.path)
        assert self.ring.outcome == "valid", self.ring.report

    @rule()
    def reboot(self):
        """A new boot: the next open registers it; records stay."""
        self.ring.close()
        self.model.release()
        self._new_boot()
        self.ring = persistlog.open(self.path)
        assert self.ring.outcome == "valid"

    @precondition(lambda self: self.model.alive())
    @rule()
    def lose_header(self):
        """The header page zeroed: the next open rebuilds it from the records, flags it,
        and the ring carries on exactly where it was (cursor, next_seq)."""
        self.ring.close()
        self.model.release()
        with open(self.path, "r+b") as f:
            f.write(bytes(_binding.HEADER_SIZE))
        self.ring = persistlog.open(self.path)
        assert self.ring.outcome == "invalid", self.ring.report
        os.unlink(self.ring.damaged_copy)
        self.trusted = False

    @invariant()
    def reader_shows_what_the_model_says(self):
        if self.ring is None:
            return
        alive = self.model.alive()
        got = {r.seq: (r.boot_id, r.message) for r in self.ring.records()}
        assert got == alive, _diff(got, alive)
        st = self.ring.stats()
        seqs = sorted(alive)
        assert st["records"] == len(seqs)
        assert st["trusted_header"] is self.trusted
        if seqs:
            assert (st["first_seq"], st["last_seq"]) == (seqs[0], seqs[-1])
        assert (st["overwritten"], st["lost"], st["torn"], st["corrupt"]) == \
            (self.model.overwritten, 0, 0, 0)
        if self.trusted:
            assert st["next_seq"] == self.model.next_seq
        current = self.boots[-1]
        mine = [s for s, (b, _m) in alive.items() if b == current]
        assert [r.seq for r in self.ring.records(boot=0)] == mine
        shown = {b.boot_id for b in self.ring.boots()}
        assert {b for b, _m in alive.values()} <= shown <= set(self.boots)

    def teardown(self):
        if self.ring is not None:
            self.ring.close()
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)


def _diff(got, want):
    extra = sorted(set(got) - set(want))[:10]
    missing = sorted(set(want) - set(got))[:10]
    wrong = [s for s in set(got) & set(want) if got[s] != want[s]][:10]
    return f"shown but dead: {extra}; alive but not shown: {missing}; differ: {wrong}"


def _tmpdir():
    import tempfile
    return tempfile.mkdtemp(prefix="persistlog-model-")


RingMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("PERSISTLOG_MODEL_EXAMPLES", "60")), stateful_step_count=40,
    deadline=None, suppress_health_check=list(HealthCheck))
test_ring_against_model = RingMachine.TestCase
