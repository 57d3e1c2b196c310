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
    boots = {}

    def add_boot(boot):
        setup.write_boot(boot, 40_000)
        boots[boot] = [r.seq for r in setup.ring_records(boot)]

    add_boot(BOOT_A)
    rng = random.Random(20261130)
    kills = runs = 0
    while kills < 8:
        runs += 1
        assert runs < 100, "the drain could not be caught mid-way"
        proc = setup.popen(BOOT_B, "--sync-every", "500")
        proc.stderr.readline()                      # "draining boot ...": sending has begun
        time.sleep(rng.uniform(0, 0.6))
        killed = proc.poll() is None
        if killed:
            journald.proc.send_signal(signal.SIGKILL)   # its socket queue dies with it
            journald.proc.wait()
            kills += 1
            try:
                proc.wait(60)                       # the daemon fails: journald unreachable
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            journald.start()
        assert killed or proc.returncode == 0, proc.stderr.read()
        if proc.returncode == 0 and kills < 8:
            # the drain ended (synced) before the kill could land: one more boot, go on
            add_boot(f"eeeeeeee-0000-4000-8000-{runs:012d}")
    final = setup.run(BOOT_B)
    assert final.returncode == 0, final.stderr
    print(f"journald SIGKILLed {kills} times during the drain of {len(boots)} boot(s)")
    for boot, expected in boots.items():
        assert_exactly_once(setup.drained(boot), expected, boot)
        assert len(setup.summaries(boot)) == 1
        assert setup.cursor()[boot]["drained"]
