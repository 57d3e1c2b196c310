"""The drain's exactly-once rests on one order: records are sent, journald is asked to sync
(``journalctl --sync``: it first processes every entry queued on its socket, then writes them
out), and only then does the cursor move (docs/DAEMON.md, "Exactly once").

Here journald itself is SIGKILLed at random instants of a drain -- what a journald crash or
an OOM kill does -- which throws away the entries still queued on its socket. The daemon then
fails (journald unreachable) and is started again once journald is back. Every record must
reach the journal exactly once: a cursor moved before the sync would say "sent" for entries
that died in the queue, and they would never be sent again (tests/test_daemon.py kills the
daemon instead, which such a cursor survives).
"""
import random
import signal
import time

import pytest

from journald import journald  # noqa: F401  (fixture)
from test_daemon import BOOT_A, BOOT_B, Setup, assert_exactly_once

pytestmark = pytest.mark.journald


def test_journald_killed_mid_drain_loses_and_repeats_no_record(tmp_path, journald):
    setup = Setup(tmp_path, journald)
    setup.write_boot(BOOT_A, 40_000)
    expected = [r.seq for r in setup.ring_records(BOOT_A)]
    rng = random.Random(20261130)
    kills = 0
    while kills < 8:
        proc = setup.popen(BOOT_B, "--sync-every", "500")
        proc.stderr.readline()                      # "draining boot ...": sending has begun
        time.sleep(rng.uniform(0, 0.6))
        if proc.poll() is not None:                 # the drain finished first
            assert proc.returncode == 0, proc.stderr.read()
            break
        journald.proc.send_signal(signal.SIGKILL)   # its socket queue dies with it
        journald.proc.wait()
        kills += 1
        try:
            proc.wait(60)                           # the daemon fails: journald unreachable
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode != 0, "the daemon did not notice journald was gone"
        journald.start()
    final = setup.run(BOOT_B)
    assert final.returncode == 0, final.stderr
    print(f"journald SIGKILLed {kills} times during the drain")
    assert kills >= 3, "journald was never killed mid-drain: the test proved nothing"
    assert_exactly_once(setup.drained(BOOT_A), expected, BOOT_A)
    assert len(setup.summaries(BOOT_A)) == 1
    assert setup.cursor()[BOOT_A]["drained"]
