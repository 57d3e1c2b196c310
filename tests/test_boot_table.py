"""The boot table (docs/FORMAT.md, "Boot table entry", "Figures"): it keeps
the last 16 boots, numbered 1, 2, 3 ..., each in slot (n - 1) mod 16; an
entry is valid only with its crc; a loser of the registration race waits for
the winner's entry; a boot's overwritten count is its own, even where a
chunk once counted records of the boot 16 before it in the same slot.
"""
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import persistlog
from persistlog import _binding

SLOTS = 16
BOOT_TABLE_OFF = 256
ENTRY_SIZE = 64


def _boots(n):
    return [str(uuid.UUID(int=0xB0070000 + i)) for i in range(1, n + 1)]


def _register(region, boot_env, boot, records=0):
    """Open the region as boot *boot* (a registration) and append *records*;
    returns the seqs appended."""
    boot_env(boot)
    with persistlog.open(region, size=64 << 10) as ring:
        return [ring.append(f"{boot[:8]} {i}", n=i) for i in range(records)]


def _table(region):
    with persistlog.open(region, readonly=True) as ring:
        return ring._view.boots()


def test_the_table_keeps_the_last_16_boots_numbered_one_by_one(region, boot_env):
    boots = _boots(SLOTS + 1)
    for b in boots[:SLOTS]:
        _register(region, boot_env, b)
    with persistlog.open(region, readonly=True) as ring:
        listed = [b.boot_id for b in ring.boots()]
        table = ring._view.boots()
    assert listed == boots[:SLOTS], "16 boots without records: each is known by its entry alone"
    assert [no for _id, no, *_ in table] == list(range(1, SLOTS + 1))
    _register(region, boot_env, boots[SLOTS])
    with persistlog.open(region, readonly=True) as ring:
        listed = [b.boot_id for b in ring.boots()]
        table = ring._view.boots()
        counters = ring._view.counters()
    assert listed == boots[1:], "the 17th boot takes the oldest boot's slot"
    assert [no for _id, no, *_ in table] == list(range(2, SLOTS + 2))
    assert counters["boot_word"] >> 32 == SLOTS + 1


def test_a_boot_entry_whose_crc_fails_is_not_used(region, boot_env):
    a, b, c = _boots(3)
    seqs_a = _register(region, boot_env, a, 5)
    _register(region, boot_env, b)  # no records: only its entry names it
    seqs_c = _register(region, boot_env, c, 3)
    with persistlog.open(region, readonly=True) as ring:
        assert [x.boot_id for x in ring.boots()] == [a, b, c]
        good_a = ring.stats(boot=a)
    with open(region, "r+b") as f:  # boot b (number 2, slot 1): first_seq changed, crc not
        at = BOOT_TABLE_OFF + ENTRY_SIZE * 1 + 24
        f.seek(at)
        first_seq = int.from_bytes(f.read(8), "little")
        f.seek(at)
        f.write((first_seq + 2).to_bytes(8, "little"))
    with persistlog.open(region, readonly=True) as ring:
        assert ring.outcome == "valid", "the boot table is outside the header's crcs"
        assert [x.boot_id for x in ring.boots()] == [a, c], "a damaged entry names no boot"
        assert [e[0] for e in ring._view.boots()] == [uuid.UUID(x).bytes for x in (a, c)]
        st_a = ring.stats(boot=a)
        st_c = ring.stats(boot=c)
    # without b's entry, a's seqs run to c's first_seq - 1: the same five
    assert st_a == dict(good_a, boots=2)
    assert (st_a["records"], st_a["first_seq"], st_a["last_seq"]) == (5, seqs_a[0], seqs_a[-1])
    assert st_a["lost"] == 0 and st_a["overwritten"] == 0
    assert (st_c["records"], st_c["lost"], st_c["overwritten"]) == (3, 0, 0)
    assert st_c["first_seq"] == seqs_c[0]


def test_a_boot_slot_reused_16_boots_later_counts_only_the_new_boot(region, boot_env):
    """Boot 1 and boot 17 share boot slot 0 of every chunk's boot_evicted
    words; both lap the ring (15 chunks of 4 KiB), so each chunk is recycled
    holding boot 1's records and again holding boot 17's.  Boot 17's
    overwritten count must not include boot 1's."""
    boots = _boots(SLOTS + 1)
    n = 2000  # about four laps of the ring
    first = _register(region, boot_env, boots[0], n)
    for b in boots[1:SLOTS]:
        _register(region, boot_env, b)
    last = _register(region, boot_env, boots[SLOTS], n)
    with persistlog.open(region, readonly=True) as ring:
        st = ring.stats(boot=boots[SLOTS])
        st_all = ring.stats()
        st_first = ring.stats(boot=boots[0])
    assert st["records"] > 0 and st["overwritten"] > 0, st
    assert st["first_seq"] == last[-st["records"]] and st["last_seq"] == last[-1]
    assert (st["torn"], st["lost"]) == (0, 0), st
    assert st["records"] + st["overwritten"] == n, \
        f"boot 17: {st['records']} shown + {st['overwritten']} overwritten != {n} appended"
    assert st_first["records"] == 0 and st_first["overwritten"] is None, \
        "boot 1 left the table: its overwritten count is unknown"
    assert st_all["records"] + st_all["overwritten"] == len(first) + len(last)
    assert (st_all["torn"], st_all["lost"], st_all["corrupt"]) == (0, 0, 0)


LOSER = r"""
import mmap, sys, uuid
from persistlog import _binding
region, boot, rt, spin = sys.argv[1], uuid.UUID(sys.argv[2]).bytes, int(sys.argv[3]), int(sys.argv[4])
f = open(region, "r+b")
mm = mmap.mmap(f.fileno(), 0)
view = _binding.View(mm, len(mm))
view.attach(boot)
print("attached", flush=True)
started = view.register_boot(rt, spin)
print("registered", int(started), view.ring.boot_no, flush=True)
view.release()
"""


def _cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (stat fields 14 and 15)


def _state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_a_registration_loser_waits_for_the_winners_entry(region, boot_env, c_writer_testpoints,
                                                          tmp_path):
    """The winner (the C writer, realtime 0) is stopped at its test point
    boot_won: it has won the compare-and-swap on boot_word but not yet filled
    its entry.  A loser of the same boot with another realtime must wait
    (here up to 120 s) rather than fill the entry with its own fields, and
    once the winner goes on, take the winner's entry as its boot's."""
    _register(region, boot_env, _boots(1)[0], 3)  # boot number 1
    boot = str(uuid.uuid4())
    ack = tmp_path / "ack"
    with open(ack, "wb") as f:
        f.truncate(8 * 64)
    env = dict(os.environ, PLR_STOP_AT="boot_won")
    winner = subprocess.Popen([c_writer_testpoints, region, uuid.UUID(boot).hex, "0", str(ack),
                               "0", "10"], env=env)
    loser = None
    try:
        deadline = time.monotonic() + 30
        while _state(winner.pid) != "T":
            assert winner.poll() is None and time.monotonic() < deadline, \
                "the winner never reached boot_won"
            time.sleep(0.001)
        loser = subprocess.Popen([sys.executable, "-c", LOSER, region, boot, "123456789",
                                  str(120 * 10**9)], stdout=subprocess.PIPE, text=True)
        assert loser.stdout.readline().strip() == "attached"
        # the loser is in plr_boot_register now or soon; it spins (sched_yield)
        # until the winner's entry is READY: wait until it has spent 0.3 s of
        # CPU time there, which it could not while returning at once
        t0 = _cpu_ticks(loser.pid)
        hz = os.sysconf("SC_CLK_TCK")
        deadline = time.monotonic() + 60
        while loser.poll() is None and _cpu_ticks(loser.pid) - t0 < 0.3 * hz:
            assert time.monotonic() < deadline, "the loser neither spun nor returned"
            time.sleep(0.01)
        assert loser.poll() is None, \
            "the loser returned while the winner had not yet filled the boot's entry"
        winner.send_signal(signal.SIGCONT)
        assert winner.wait(30) == 0
        out = loser.stdout.readline().split()
        assert loser.wait(30) == 0
    finally:
        for p in (winner, loser):
            if p and p.poll() is None:
                p.kill()
                p.wait()
    entries = [e for e in _table(region) if e[0] == uuid.UUID(boot).bytes]
    assert out == ["registered", "0", "2"], f"the loser: {out}"
    assert len(entries) == 1
    _id, no, first_seq, rt = entries[0]
    assert (no, first_seq, rt) == (2, 4, 0), "the entry is the winner's (realtime 0)"


def _entry_words(region, no):
    """The raw state word of boot number *no*'s slot."""
    with open(region, "rb") as f:
        f.seek(BOOT_TABLE_OFF + ENTRY_SIZE * ((no - 1) % SLOTS))
        raw = f.read(ENTRY_SIZE)
    return int.from_bytes(raw[40:44], "little")


def _claim(no, pid):
    """The state that says process *pid* fills boot *no*'s entry (docs/FORMAT.md)."""
    return 0xC1000000 | ((no >> 4) & 3) << 22 | pid


def _stopped_winner(writer, region, boot, tmp_path, point, kill=False):
    """The C writer (realtime 0) registering *boot*, stopped, or killed, at
    test point *point* of plr_boot_register()."""
    ack = tmp_path / "ack"
    with open(ack, "wb") as f:
        f.truncate(8 * 64)
    env = dict(os.environ, PLR_STOP_AT=point)
    if kill:
        env["PLR_STOP_KILL"] = "1"
    return subprocess.Popen([writer, region, uuid.UUID(boot).hex, "0", str(ack), "0", "3"],
                            env=env)


def _wait_for(winner, state, what):
    deadline = time.monotonic() + 30
    while True:
        if state == "dead":
            if winner.poll() is not None:
                return
        elif _state(winner.pid) == state:
            return
        assert winner.poll() is None and time.monotonic() < deadline, what
        time.sleep(0.001)


def _entries_of(region, boot):
    """(boot_no, first_seq, realtime_ns) of each valid table entry of *boot*."""
    return [e[1:] for e in _table(region) if e[0] == uuid.UUID(boot).bytes]


@contextlib.contextmanager
def _winner_stopped_at(writer, region, boot, tmp_path, point):
    """The C writer registering *boot*, stopped at *point* for the body of
    the with statement, then continued; it must finish cleanly."""
    winner = _stopped_winner(writer, region, boot, tmp_path, point)
    try:
        _wait_for(winner, "T", f"the winner never reached {point}")
        yield winner
        winner.send_signal(signal.SIGCONT)
        assert winner.wait(30) == 0
    finally:
        if winner.poll() is None:
            winner.kill()
            winner.wait()


def _lose(region, boot, rt, spin_ns):
    """Register *boot* in a process of its own, realtime *rt*, waiting at most
    *spin_ns*; returns what it printed: ["registered", started, boot_no]."""
    out = subprocess.run([sys.executable, "-c", LOSER, region, boot, str(rt), str(spin_ns)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return out.splitlines()[-1].split()


def test_a_loser_never_writes_beside_a_live_but_slow_winner(region, boot_env,
                                                           c_writer_testpoints, tmp_path):
    """The winner has claimed its entry and is stopped before the fields (as
    a process preempted, swapped out or stopped for longer than the 200 ms a
    loser waits).  A loser that stops waiting must not fill the entry beside
    it: both would store fields and each its own crc, and the entry could end
    with one's fields and the other's crc, dropping the boot from the table
    (GenMC's third finding, docs/MODELCHECK.md).  It goes on without the
    entry; the winner, when it runs again, completes it with its own fields."""
    _register(region, boot_env, _boots(1)[0], 3)  # boot number 1, seqs 1..3
    boot = str(uuid.uuid4())
    with _winner_stopped_at(c_writer_testpoints, region, boot, tmp_path,
                            "boot_claimed") as winner:
        assert _entry_words(region, 2) == _claim(2, winner.pid), "the claim names the winner"
        out = _lose(region, boot, 123456789, 20 * 10**6)
        assert out == ["registered", "0", "2"], f"the loser: {out}"
        assert _entry_words(region, 2) == _claim(2, winner.pid), \
            "the loser stored into the entry while its live filler was stopped"
        assert [e[1] for e in _table(region)] == [1], "boot 2's entry is not complete yet"
    assert _entries_of(region, boot) == [(2, 4, 0)], "one entry, the winner's (realtime 0)"


def test_a_dead_winners_claim_is_taken_over(region, boot_env, c_writer_testpoints, tmp_path):
    """The winner claimed its entry and was killed before the fields: the
    next process of the boot to open the region waits 20 ms, finds the
    claim's process gone, claims the entry itself and fills it."""
    _register(region, boot_env, _boots(1)[0], 3)
    boot = str(uuid.uuid4())
    winner = _stopped_winner(c_writer_testpoints, region, boot, tmp_path, "boot_claimed", kill=True)
    _wait_for(winner, "dead", "the winner did not die at boot_claimed")
    assert winner.returncode == -signal.SIGKILL
    assert _entry_words(region, 2) == _claim(2, winner.pid)
    out = _lose(region, boot, 123456789, 20 * 10**6)
    assert out == ["registered", "0", "2"], f"the loser: {out}"
    assert _entries_of(region, boot) == [(2, 4, 123456789)], "the loser's entry"


def test_an_entry_a_loser_completed_is_not_rewritten_by_a_late_winner(region, boot_env,
                                                                     c_writer_testpoints,
                                                                     tmp_path):
    """The winner is stopped after winning boot_word, before it claims the
    entry; a loser that stops waiting claims and fills it.  When the winner
    runs again it finds the entry complete and leaves it: an entry, once
    READY for its boot, does not change under a reader that has used it."""
    _register(region, boot_env, _boots(1)[0], 3)
    boot = str(uuid.uuid4())
    with _winner_stopped_at(c_writer_testpoints, region, boot, tmp_path, "boot_won"):
        out = _lose(region, boot, 123456789, 20 * 10**6)
        assert out == ["registered", "0", "2"], f"the loser: {out}"
        before = _entries_of(region, boot)
        assert before == [(2, 4, 123456789)]
    assert _entries_of(region, boot) == before, "the late winner rewrote a complete entry"
    with persistlog.open(region, readonly=True) as ring:
        st = ring.stats(boot=boot)
    assert (st["records"], st["first_seq"], st["lost"]) == (3, 4, 0), st


def test_a_late_winner_that_looked_before_a_waiter_completed_the_entry_leaves_it(
        region, boot_env, c_writer_testpoints, tmp_path):
    """The table has wrapped: boot 17's slot holds boot 1's READY entry.  The
    winner looks (READY, another boot's) and is stopped before its claim; a
    waiter claims, fills and completes the entry, READY again.  The winner's
    compare-and-swap from READY then succeeds, as READY is READY whichever
    boot's; it must see that the fields are now its boot's and put the entry
    back as it was, not fill it again."""
    for b in _boots(SLOTS):
        _register(region, boot_env, b)
    boot = str(uuid.uuid4())
    with _winner_stopped_at(c_writer_testpoints, region, boot, tmp_path, "boot_looked"):
        assert _entry_words(region, 17) == 0x59444552, "the slot still holds boot 1's entry"
        out = _lose(region, boot, 123456789, 20 * 10**6)
        assert out == ["registered", "0", "17"], f"the loser: {out}"
        before = _entries_of(region, boot)
        assert before == [(17, 1, 123456789)]
    assert _entries_of(region, boot) == before, "the late winner rewrote a complete entry"
    assert _entry_words(region, 17) == 0x59444552
