"""The drain daemon against a real, isolated systemd-journald (tests/journald.py).

Earlier boots are simulated by writing records with $PERSISTLOG_BOOT_ID set to one UUID and
running the daemon with another. The daemon runs in journald's mount namespace via nsenter.
"""

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import persistlog
from persistlog import archive
from persistlog.daemon import cursor_path
from journald import field_bytes, journald  # noqa: F401  (fixture)

pytestmark = pytest.mark.journald

BOOT_A = "aaaaaaaa-0000-4000-8000-000000000001"
BOOT_B = "bbbbbbbb-0000-4000-8000-000000000002"
BOOT_C = "cccccccc-0000-4000-8000-000000000003"
BOOT_D = "dddddddd-0000-4000-8000-000000000004"
SUMMARY_ID = "565d24199742480086ac357f415a7e25"
# The directory that holds the persistlog package under test, for the daemon's subprocess.
PKG_PARENT = str(Path(persistlog.__file__).resolve().parent.parent)


@contextlib.contextmanager
def booted(boot_id):
    """Make persistlog believe this is boot ``boot_id`` inside the block."""
    old = os.environ.get("PERSISTLOG_BOOT_ID")
    os.environ["PERSISTLOG_BOOT_ID"] = boot_id
    try:
        yield
    finally:
        if old is None:
            del os.environ["PERSISTLOG_BOOT_ID"]
        else:
            os.environ["PERSISTLOG_BOOT_ID"] = old


class Setup:
    """A ring file, state and archive directories and a config file under tmp_path, and ways
    to write a boot's records and run the daemon next to the journald fixture."""

    def __init__(self, tmp_path, journald, ring_size=8 << 20, journal_files=False,
                 journal_dir=None):
        self.journald = journald
        # False: the drain to journald (sendv), which these tests check; True: journal files
        # (tests/test_journal_files.py), in journal_dir (default: /var/log/journal, a tmpfs in
        # journald's namespace).
        self.journal_files = journal_files
        self.journal_dir = journal_dir
        # The host's own pstore (/sys/fs/pstore) is no business of these tests.
        self.pstore_dir = tmp_path / "no-pstore"
        self.region = tmp_path / "ring"
        self.state = tmp_path / "state"
        self.archives = tmp_path / "boots"
        self.conf = tmp_path / "persistlog.conf"
        self.conf.write_text("")
        self.ring_size = ring_size

    def write_boot(self, boot_id, n, make=None):
        """Append ``n`` records as boot ``boot_id``; ``make(i)`` gives (message, kwargs)."""
        with booted(boot_id), persistlog.open(self.region, size=self.ring_size) as ring:
            for i in range(n):
                message, kwargs = make(i) if make else (f"record {i} of {boot_id}", {})
                ring.append(message, **kwargs)

    def ring_records(self, boot_id):
        with booted(BOOT_D), persistlog.open(self.region, readonly=True) as ring:
            return list(ring.records(boot=boot_id))

    def argv(self, *args, once=True):
        return [sys.executable, "-m", "persistlog.daemon", "--config", str(self.conf),
                "--region", str(self.region), "--state-dir", str(self.state),
                "--archive-dir", str(self.archives), *(["--once"] if once else []),
                "--journal-files" if self.journal_files else "--no-journal-files",
                *(["--journal-dir", str(self.journal_dir)] if self.journal_dir else []),
                "--pstore-dir", str(self.pstore_dir), "--sink", "journald", *args]

    def env(self, boot_id, **extra):
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        env.update(PERSISTLOG_BOOT_ID=boot_id, **extra)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [PKG_PARENT, env.get("PYTHONPATH")]))
        return env

    def run(self, boot_id, *args, **kwargs):
        """Run ``persistlog.daemon --once`` as boot ``boot_id``; returns CompletedProcess."""
        return self.journald.run(self.argv(*args), env=self.env(boot_id), check=False,
                                 capture_output=True, text=True, **kwargs)

    def popen(self, boot_id, *args, once=True, env=None, **kwargs):
        return self.journald.popen(self.argv(*args, once=once), env=env or self.env(boot_id),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, **kwargs)

    def cursor(self):
        path = cursor_path(self.state, self.region)
        return json.loads(path.read_text()) if path.exists() else {}

    def drained(self, boot_id):
        """The journal's entries for ``boot_id``, in journal order."""
        return self.journald.entries(f"PERSISTLOG_BOOT_ID={boot_id}")

    def summaries(self, boot_id):
        return self.journald.entries(f"MESSAGE_ID={SUMMARY_ID}",
                                     f"PERSISTLOG_DRAINED_BOOT_ID={boot_id}")


@pytest.fixture
def setup(tmp_path, journald):
    return Setup(tmp_path, journald)


def seqs_of(entries):
    return [int(e["PERSISTLOG_SEQ"]) for e in entries]


def assert_exactly_once(entries, expected_seqs, boot_id):
    seen = seqs_of(entries)
    twice = sorted({s for s in seen if seen.count(s) > 1})
    missing = sorted(set(expected_seqs) - set(seen))
    assert not twice, f"boot {boot_id}: seqs sent twice: {twice[:20]}"
    assert not missing, f"boot {boot_id}: seqs never sent: {missing[:20]}"
    assert len(seen) == len(expected_seqs)


def mixed_record(i):
    """Record i of the field round-trip test: priorities 0-7, identifiers (some absent),
    text, integer and binary fields, and field names journald would not accept as they are."""
    kwargs = {"priority": i % 8, "identifier": None if i % 5 == 0 else f"app{i % 3}",
              "request_id": f"req-{i}", "count": i, "payload": bytes([i % 256, 0, 10, 255]),
              "weird.name-é": "x" * (i % 7)}
    return f"message {i}: ünïcode\nsecond line", kwargs


def test_previous_boot_drains_completely_every_field_round_trips(setup):
    setup.write_boot(BOOT_A, 10_000, mixed_record)
    written = {r.seq: r for r in setup.ring_records(BOOT_A)}
    assert len(written) == 10_000

    proc = setup.run(BOOT_B)
    assert proc.returncode == 0, proc.stderr

    entries = setup.drained(BOOT_A)
    assert_exactly_once(entries, written, BOOT_A)
    assert seqs_of(entries) == sorted(written), "records were not sent in seq order"
    for e in entries:
        r = written[int(e["PERSISTLOG_SEQ"])]
        where = f"record seq {r.seq}"
        assert e["MESSAGE"] == r.message, where
        assert e["PRIORITY"] == str(r.priority), where
        assert e["SYSLOG_IDENTIFIER"] == (r.identifier or "persistlog"), where
        assert e["PERSISTLOG_BOOT_ID"] == BOOT_A, where
        assert e["PERSISTLOG_REALTIME_USEC"] == str(r.realtime_ns // 1000), where
        assert e["PERSISTLOG_MONOTONIC_USEC"] == str(r.monotonic_ns // 1000), where
        assert (e["PERSISTLOG_PID"], e["PERSISTLOG_TID"]) == (str(r.pid), str(r.tid)), where
        assert e["REQUEST_ID"] == r.fields["request_id"], where
        assert e["COUNT"] == str(r.fields["count"]), where
        assert field_bytes(e["PAYLOAD"]) == r.fields["payload"], where
        assert e["WEIRD_NAME__"] == r.fields["weird.name-é"], where
        assert "_BOOT_ID" in e and e["_BOOT_ID"].replace("-", "") != BOOT_A.replace("-", "")

    summary = setup.summaries(BOOT_A)
    assert len(summary) == 1
    assert (summary[0]["PERSISTLOG_RECORDS"], summary[0]["PERSISTLOG_LOST"],
            summary[0]["PERSISTLOG_TORN"]) == ("10000", "0", "0")
    assert setup.cursor()[BOOT_A] == {"last_seq": 10_000, "drained": True}


def test_sigkill_at_random_instants_sends_every_record_exactly_once(tmp_path, journald):
    setup = Setup(tmp_path, journald)
    setup.write_boot(BOOT_A, 15_000)
    setup.write_boot(BOOT_B, 15_000)
    expected = {b: [r.seq for r in setup.ring_records(b)] for b in (BOOT_A, BOOT_B)}
    rng = random.Random(20240521)
    kills = runs = 0
    while True:
        runs += 1
        assert runs < 500, "the drain never completed"
        proc = setup.popen(BOOT_C, "--sync-every", "1000")
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0, 0.4))       # anywhere, start-up included
        else:
            proc.stderr.readline()                 # "draining boot ...": sending has begun
            # Mostly a little later, mid-send; sometimes long enough for a boot's archive
            # and summary (a few hundred ms), or the drain would never get past them.
            time.sleep(rng.uniform(0, 0.05) if rng.random() < 0.7 else rng.uniform(0, 0.8))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += proc.wait() == -signal.SIGKILL
            continue
        err = proc.stderr.read()
        assert proc.returncode == 0, err
        if kills >= 20:
            break
        # Finished before enough kills: add another boot and go on killing.
        boot = f"eeeeeeee-0000-4000-8000-{runs:012d}"
        setup.write_boot(boot, 10_000)
        expected[boot] = [r.seq for r in setup.ring_records(boot)]
    print(f"{kills} SIGKILLs in {runs} runs")
    assert kills >= 20
    for boot, seqs in expected.items():
        assert_exactly_once(setup.drained(boot), seqs, boot)
        assert len(setup.summaries(boot)) == 1, f"boot {boot}: summary not sent exactly once"
        assert archive.find(setup.archives, boot), f"boot {boot}: not archived"
        assert setup.cursor()[boot]["drained"]


BOOT_END_POINTS = ("archived", "summary_sent", "summary_synced")


def test_sigkill_at_seeded_test_points_sends_every_record_exactly_once(tmp_path, journald):
    """As above, but each kill lands at the daemon's Nth test point
    ($PERSISTLOG_TEST_KILL_AT: after a record is delivered, between journald's sync and the
    cursor's advance and after it, after the archive, between the summary's send and its
    sync, before the drained mark), or at the Nth point of one name, both drawn from a fixed
    seed: the instants are the same on every machine and every run, so a failure
    reproduces from the seed."""
    setup = Setup(tmp_path, journald)
    setup.write_boot(BOOT_A, 1000)
    setup.write_boot(BOOT_B, 1000)
    expected = {b: [r.seq for r in setup.ring_records(b)] for b in (BOOT_A, BOOT_B)}
    rng = random.Random(20261130)
    points = []
    for runs in range(1, 300):
        # mostly early in a run (each resumes from its cursor), so the kills step through
        # the whole drain, boot ends included; now and then late, or past the end
        # (or at a named point: a boot's end has few points among a thousand deliveries)
        pick = rng.random()
        if pick < 0.3:
            n = f"{rng.choice(BOOT_END_POINTS)}:{rng.randint(1, 2)}"
        elif pick < 0.4:
            n = f"{rng.choice(('synced', 'advanced'))}:{rng.randint(1, 10)}"
        else:
            n = str(rng.randint(1, 150) if pick < 0.9 else rng.randint(1, 3000))
        proc = journald.run(setup.argv("--sync-every", "100"), check=False,
                            env=setup.env(BOOT_C, PERSISTLOG_TEST_KILL_AT=n),
                            capture_output=True, text=True)
        if proc.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL):
            points.append(n)
            continue
        assert proc.returncode == 0, proc.stderr
        if len(points) >= 20:
            break
        # finished before enough kills: another boot to drain, as in the test above
        boot = f"eeeeeeee-0000-4000-8000-{runs:012d}"
        setup.write_boot(boot, 1000)
        expected[boot] = [r.seq for r in setup.ring_records(boot)]
    else:
        pytest.fail("the drain never completed")
    print(f"{len(points)} SIGKILLs at test points {points} in {runs} runs")
    for boot, seqs in expected.items():
        assert_exactly_once(setup.drained(boot), seqs, boot)
        assert len(setup.summaries(boot)) == 1, f"boot {boot}: summary not sent exactly once"
        assert archive.find(setup.archives, boot), f"boot {boot}: not archived"
        assert setup.cursor()[boot]["drained"], boot


def test_two_boots_drain_in_order_and_a_drained_boot_is_not_sent_again(setup):
    setup.write_boot(BOOT_A, 300)
    setup.write_boot(BOOT_B, 200)
    assert setup.run(BOOT_C).returncode == 0

    order = [e["PERSISTLOG_BOOT_ID"] for e in setup.journald.entries() if "PERSISTLOG_SEQ" in e]
    assert order == [BOOT_A] * 300 + [BOOT_B] * 200

    setup.write_boot(BOOT_C, 100)
    proc = setup.run(BOOT_D)
    assert proc.returncode == 0, proc.stderr
    assert len(setup.drained(BOOT_A)) == 300 and len(setup.drained(BOOT_B)) == 200
    assert len(setup.drained(BOOT_C)) == 100
    assert [len(setup.summaries(b)) for b in (BOOT_A, BOOT_B, BOOT_C)] == [1, 1, 1]
    assert "draining boot " + BOOT_A not in proc.stderr


def test_drained_boot_is_not_resent_even_without_the_cursor(setup):
    # The journal itself is the second witness: losing the state directory resends nothing.
    setup.write_boot(BOOT_A, 500)
    assert setup.run(BOOT_B).returncode == 0
    cursor_path(setup.state, setup.region).unlink()
    assert setup.run(BOOT_B).returncode == 0
    assert_exactly_once(setup.drained(BOOT_A), range(1, 501), BOOT_A)
    assert len(setup.summaries(BOOT_A)) == 1


@pytest.mark.parametrize("how", ["stopped", "socket removed"])
def test_unreachable_journald_is_a_clear_error_and_nothing_is_marked_drained(setup, how):
    setup.write_boot(BOOT_A, 100)
    setup.journald.stop()
    if how == "socket removed":
        setup.journald.socket.unlink()
    proc = setup.run(BOOT_B)
    assert proc.returncode == 5, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("persistlog daemon: error: "), proc.stderr
    assert "journal" in lines[-1] and "Traceback" not in proc.stderr
    assert not setup.cursor().get(BOOT_A, {}).get("drained")
    assert not archive.find(setup.archives, BOOT_A)


def test_journald_back_later_drains_everything_once(setup):
    setup.write_boot(BOOT_A, 100)
    setup.journald.stop()
    assert setup.run(BOOT_B).returncode == 5
    setup.journald.start()
    assert setup.run(BOOT_B).returncode == 0
    assert_exactly_once(setup.drained(BOOT_A), range(1, 101), BOOT_A)


def test_archive_keeps_a_boot_readable_after_the_ring_wrapped(tmp_path, journald):
    setup = Setup(tmp_path, journald, ring_size=256 << 10)
    setup.write_boot(BOOT_A, 200, mixed_record)
    original = setup.ring_records(BOOT_A)
    assert setup.run(BOOT_B).returncode == 0
    setup.write_boot(BOOT_B, 5000)     # overwrites every record of boot A
    assert setup.ring_records(BOOT_A) == []

    path = archive.find(setup.archives, BOOT_A)
    assert path == setup.archives / f"{BOOT_A}.plog"
    assert list(archive.open_archive(path)) == original


def test_summary_counts_a_lapped_boots_overwritten_records_exactly(tmp_path, journald):
    setup = Setup(tmp_path, journald, ring_size=256 << 10)
    setup.write_boot(BOOT_A, 5000)  # laps the ring: boot A overwrites most of itself
    assert setup.run(BOOT_B).returncode == 0
    (summary,) = setup.summaries(BOOT_A)
    records, overwritten = int(summary["PERSISTLOG_RECORDS"]), int(summary["PERSISTLOG_OVERWRITTEN"])
    assert records + overwritten == 5000 and overwritten > records
    assert (summary["PERSISTLOG_LOST"], summary["PERSISTLOG_TORN"]) == ("0", "0")
    assert f"{overwritten} overwritten, 0 lost, 0 torn" in summary["MESSAGE"]
    head = archive.read_header(archive.find(setup.archives, BOOT_A))
    assert (head.records, head.overwritten, head.lost, head.torn) == (records, overwritten, 0, 0)


def test_dump_prints_an_archived_boot_after_the_ring_wrapped(tmp_path, journald):
    setup = Setup(tmp_path, journald, ring_size=256 << 10)
    setup.write_boot(BOOT_A, 200, mixed_record)
    original = setup.ring_records(BOOT_A)
    assert setup.run(BOOT_B).returncode == 0
    setup.write_boot(BOOT_B, 5000)
    proc = subprocess.run([sys.executable, "-m", "persistlog.cli", "dump", "--region",
                           str(setup.region), "--archive-dir", str(setup.archives),
                           "--boot", BOOT_A, "-o", "json-persistlog"],
                          capture_output=True, text=True, env=setup.env(BOOT_C))
    assert proc.returncode == 0, proc.stderr
    printed = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(p["seq"], p["message"]) for p in printed] == [(r.seq, r.message) for r in original]


def test_retention_removes_the_oldest_archives(setup):
    setup.conf.write_text("archive_keep = 2\n")
    boots = [BOOT_A, BOOT_B, BOOT_C]
    for i, boot in enumerate(boots):
        setup.write_boot(boot, 50)
        assert setup.run(boots[i + 1] if i + 1 < len(boots) else BOOT_D).returncode == 0
    assert sorted(p.name for p in setup.archives.iterdir()) == [f"{BOOT_B}.plog", f"{BOOT_C}.plog"]


def test_retention_by_bytes_keeps_only_what_fits(setup):
    setup.write_boot(BOOT_A, 400)
    assert setup.run(BOOT_B).returncode == 0
    one = (setup.archives / f"{BOOT_A}.plog").stat().st_size
    setup.conf.write_text(f"archive_max_bytes = {one + one // 2}\n")
    setup.write_boot(BOOT_B, 400)
    assert setup.run(BOOT_C).returncode == 0
    assert [p.name for p in setup.archives.iterdir()] == [f"{BOOT_B}.plog"]


def test_sigterm_stops_cleanly_with_the_cursor_saved(tmp_path, journald):
    setup = Setup(tmp_path, journald, ring_size=16 << 20)
    setup.write_boot(BOOT_A, 60_000)
    proc = setup.popen(BOOT_B, "--sync-every", "100000", once=False)
    proc.stderr.readline()
    # SIGTERM once the journal holds some of the boot's records: mid-drain whatever the
    # machine's speed (60,000 records take seconds; a look at the journal, milliseconds)
    deadline = time.monotonic() + 60
    while not setup.journald.run(["journalctl", f"PERSISTLOG_BOOT_ID={BOOT_A}", "-n", "1",
                                  "-q", "-o", "cat"], capture_output=True).stdout:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no record reached the journal in 60 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0, proc.stderr.read()
    sent = seqs_of(setup.drained(BOOT_A))
    assert 0 < len(sent) < 60_000, "SIGTERM came too late to test a stop mid-drain"
    assert setup.cursor()[BOOT_A] == {"last_seq": max(sent)}
    assert setup.run(BOOT_B).returncode == 0
    assert_exactly_once(setup.drained(BOOT_A), range(1, 60_001), BOOT_A)


def test_sd_notify_ready_status_watchdog_and_stopping(tmp_path, setup):
    setup.write_boot(BOOT_A, 100)
    sock_path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(10)
    env = setup.env(BOOT_B, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="200000")
    proc = setup.popen(BOOT_B, once=False, env=env)
    messages = []
    try:
        while not any("READY=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        assert len(setup.drained(BOOT_A)) == 100, "READY=1 came before the drain was done"
        while sum("WATCHDOG=1" in m for m in messages) < 3:
            messages.append(sock.recv(4096).decode())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        while not any("STOPPING=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
    finally:
        proc.kill()
        proc.wait()
        sock.close()
    assert any(m.startswith("STATUS=") or "\nSTATUS=" in m for m in messages), messages


def test_forward_sends_the_current_boot_and_the_next_drain_does_not_repeat_it(setup):
    setup.write_boot(BOOT_B, 10)       # the "current" boot, before the daemon starts
    proc = setup.popen(BOOT_B, "--forward", once=False)
    try:
        setup.write_boot(BOOT_B, 20)   # and while it runs
        deadline = time.monotonic() + 20
        while len(setup.drained(BOOT_B)) < 30:
            assert time.monotonic() < deadline, "forwarded records did not arrive"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    setup.write_boot(BOOT_B, 5)        # written after the forwarder stopped
    assert setup.run(BOOT_C).returncode == 0
    assert_exactly_once(setup.drained(BOOT_B), range(1, 36), BOOT_B)


@pytest.mark.parametrize("conf, why", [
    ("archive_keep = ", "not valid TOML"),
    ("archive_kepe = 3\n", "unknown setting"),
    ("sync_every = \"lots\"\n", "sync_every must be an integer"),
    ("sync_every = 0\n", "at least 1"),
])
def test_bad_config_is_one_line_and_exit_3(setup, conf, why):
    setup.conf.write_text(conf)
    proc = setup.run(BOOT_B)
    assert proc.returncode == 3
    assert why in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_missing_region_is_exit_4(setup):
    proc = setup.run(BOOT_B)
    assert proc.returncode == 4, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_drains_as_root_without_capabilities_like_the_unit(setup):
    # persistlog.service runs as root with an empty capability bounding set: journald's
    # Synchronize call must still answer, and the ring and state must still be usable.
    setup.write_boot(BOOT_A, 500)
    proc = setup.journald.run(
        ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs",
         *setup.argv()], env=setup.env(BOOT_B), check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert_exactly_once(setup.drained(BOOT_A), range(1, 501), BOOT_A)
    assert setup.cursor()[BOOT_A]["drained"]


def test_persistlog_daemon_subcommand_passes_its_options_through(setup):
    # `persistlog daemon --once ...` is how scripts and ExecStartPre= run the drain.
    setup.write_boot(BOOT_A, 50)
    cli = [sys.executable, "-c", "import sys; from persistlog.cli import main; sys.exit(main())"]
    daemon_argv = setup.argv()[3:]  # drop "python -m persistlog.daemon"
    proc = setup.journald.run([*cli, "daemon", *daemon_argv], env=setup.env(BOOT_B),
                              check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(setup.drained(BOOT_A)) == 50


def test_a_second_daemon_on_the_same_region_refuses(setup):
    setup.write_boot(BOOT_A, 50)
    first = setup.popen(BOOT_B, once=False)
    try:
        first.stderr.readline()
        second = setup.run(BOOT_B)
        assert second.returncode == 7, second.stderr
        assert "another persistlog daemon is draining" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(10) == 0
    assert_exactly_once(setup.drained(BOOT_A), range(1, 51), BOOT_A)
