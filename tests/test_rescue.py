"""The rescue (persistlog/rescue.py): entries the mirror kept in the ring that a crashed
journal's disk lacks come back, each once, with their own fields and times.

A real, isolated journald (tests/journald.py) and a real ``persistlog mirror``. The crash is
simulated on journald's own file: journald is SIGKILLed, and its file is put back as the disk
would hold it after a power cut -- the pages the kernel had written back carry the new content,
the others their content at the last sync -- then journald starts again over it, finds it dirty
and archives it, as it does at the next boot. (The test cannot change the kernel's boot ID, so
the "next boot" journald writes under the same _BOOT_ID; the rescue only looks at entries the
ring mirrored.)"""

import json
import random
import subprocess
import uuid
from pathlib import Path

import pytest
from journald import field_bytes, journald  # noqa: F401  (fixture)
from test_mirror_helpers import MirrorProc, journal_entries, mirrored, sender, wait_for

import persistlog
from persistlog.mirror import kernel_boot_id, parse_cursor
from persistlog.record import Record
from persistlog.rescue import journal_entry, missing, rescue_boot

PAGE = 4096


def as_bytes(v):
    if isinstance(v, list):
        return [as_bytes(x) for x in v]
    return v.encode() if isinstance(v, str) else v


def journal_file(j):
    files = list(j.journal_dir.rglob("system.journal"))
    assert len(files) == 1, files
    return files[0]


def run_rescue(region, directory, boot=None):
    with persistlog.open(region, readonly=True) as ring:
        return rescue_boot(ring.records(), boot or kernel_boot_id(), directory)


def mirror_two_batches(j, tmp_path, first=50, second=40):
    """Mirror ``first`` entries, sync, keep a copy of journald's file (the disk at the last
    sync), then ``second`` more; returns (region, tag, the copy's bytes, every entry)."""
    region = tmp_path / "ring"
    m = MirrorProc(j, region, tmp_path / "m").start()
    tag = uuid.uuid4().hex
    try:
        assert sender(j, tag, "synced", first).wait(60) == 0
        j.sync()
        synced = journal_file(j).read_bytes()
        assert sender(j, tag, "unsynced", second).wait(60) == 0
        j.sync()
        entries = journal_entries(j.journal_dir, MIRRORTEST=tag)
        assert len(entries) == first + second
        want = {e[0] for e in entries}
        wait_for(lambda: want <= {r.fields["__CURSOR"] for r in mirrored(region, tag)},
                 what="every entry mirrored")
    finally:
        assert m.stop() == 0, m.err()
    return region, tag, synced, entries


def crash(j, disk_bytes):
    """SIGKILL journald, put ``disk_bytes`` in place of its file, start journald again."""
    path = journal_file(j)
    j.proc.kill()
    j.proc.wait()
    path.write_bytes(disk_bytes)
    j.start()


def check_entry(got, cursor, fields, realtime, monotonic):
    for name, value in fields.items():
        assert as_bytes(got[name]) == value, name
    assert got["__REALTIME_TIMESTAMP"] == str(realtime)
    assert got["__MONOTONIC_TIMESTAMP"] == str(monotonic)
    assert got["__CURSOR"] == cursor
    assert got["_BOOT_ID"] == kernel_boot_id()


@pytest.mark.journald
def test_nothing_is_rescued_when_the_disk_has_everything(journald, tmp_path):
    region, tag, _, _ = mirror_two_batches(journald, tmp_path, 20, 20)
    assert run_rescue(region, journald.journal_dir) == []


@pytest.mark.journald
def test_the_unsynced_tail_comes_back_once_with_its_fields(journald, tmp_path):
    region, tag, synced, entries = mirror_two_batches(journald, tmp_path)
    crash(journald, synced)  # no page of the unsynced writes reached the disk
    assert sender(journald, tag, "next boot", 5).wait(60) == 0
    journald.sync()
    assert len(list(journald.journal_dir.rglob("system@*.journal~"))) == 1  # archived dirty
    on_disk = {e[0] for e in journal_entries(journald.journal_dir, MIRRORTEST=tag)}
    lost = [e for e in entries if e[0] not in on_disk]
    assert [e[1]["CLIENT"] for e in lost] == [b"unsynced"] * 40
    got = run_rescue(region, journald.journal_dir)
    assert [g["__CURSOR"] for g in got] == [e[0] for e in lost]
    for g, e in zip(got, lost):
        check_entry(g, *e)
    # the boot asked for only
    assert run_rescue(region, journald.journal_dir, boot=uuid.uuid4().hex) == []


@pytest.mark.journald
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pages_partly_written_back(journald, tmp_path, seed):
    """Each page that changed after the sync reached the disk or not, at random (the header
    page too): the rescue returns exactly the mirrored entries journalctl cannot show."""
    region, tag, synced, entries = mirror_two_batches(journald, tmp_path)
    now = journal_file(journald).read_bytes()
    rng = random.Random(seed)
    disk = bytearray(now)
    old = synced.ljust(len(now), b"\0")
    changed = [p for p in range(0, len(now), PAGE) if now[p:p + PAGE] != old[p:p + PAGE]]
    assert len(changed) >= 2
    for p in changed:
        if rng.random() < 0.5:
            disk[p:p + PAGE] = old[p:p + PAGE]
    crash(journald, bytes(disk))
    journald.sync()
    # What the disk holds is what `journalctl -b BOOT` shows: a damaged file is read through
    # the boot's match, and another path through it (a match on another field, or none) may
    # see a few entries more or less.
    shown = subprocess.run(["journalctl", "-D", str(journald.journal_dir), "-o", "json",
                            "-b", kernel_boot_id()], capture_output=True, text=True).stdout
    shown = {e["__CURSOR"]: e for e in map(json.loads, filter(str.strip, shown.splitlines()))}
    by_cursor = {e[0]: e for e in entries}
    on_disk = set(shown) & set(by_cursor)
    # An entry shown without its MESSAGE, or with another (the crash damaged its data), is
    # as good as lost: the rescue gives it back too.
    intact = {c for c in on_disk if "MESSAGE" in shown[c] and field_bytes(
        shown[c]["MESSAGE"]) == by_cursor[c][1]["MESSAGE"]}
    got = run_rescue(region, journald.journal_dir)
    cursors = [g["__CURSOR"] for g in got]
    assert len(cursors) == len(set(cursors))
    assert set(cursors) == set(by_cursor) - intact
    for g in got:
        check_entry(g, *by_cursor[g["__CURSOR"]])


def test_each_entry_once_and_a_copied_entry_matched_by_content():
    """The pure core, on cursors of the form sd-journal gives: a record twice in the ring comes
    back once; an entry the disk holds under another sequence (journald copied it into another
    file, as the flush to /var/log/journal does: same boot, times and hash) is not rescued; an
    other entry under a lost one's seqnum does not hide it; one whose MESSAGE is unreadable or
    differs is given back; records of other boots and records that are not mirrored are left
    alone."""
    boot = "101a7ca23dfd4bc9a5c639882121e854"

    def cursor(n, x, seqnum=None, sid="a" * 32, b=boot):
        """The cursor of entry ``n`` (its times), with hash ``x``, numbered ``seqnum``."""
        return f"s={sid};i={seqnum or n:x};b={b};m={n:x};t={n + 100:x};x={x:x}"

    def rec(seq, seqnum, x, b=boot):
        return Record(seq, "b", 0, 0, 0, 0, 6, "svc", f"m{seqnum}",
                      {"_BOOT_ID": b, "__CURSOR": cursor(seqnum, x, b=b), "__SEQNUM": seqnum,
                       "__SEQNUM_ID": "a" * 32, "__MONOTONIC_TIMESTAMP": seqnum,
                       "__REALTIME_TIMESTAMP": seqnum + 100, "PERSISTLOG_MIRROR": "journal"})

    records = [rec(1, 1, 1), rec(2, 2, 2), rec(3, 3, 3), rec(4, 3, 3), rec(5, 4, 4),
               rec(6, 5, 5, b="f" * 32),
               Record(7, "b", 0, 0, 0, 0, 6, "app", "not mirrored", {})]
    disk = [(cursor(1, 1), b"m1"),  # as it was
            (cursor(2, 2, seqnum=99, sid="b" * 32), b"m2")]  # copied into another file
    got = missing(records, disk, boot)
    assert [g["MESSAGE"] for g in got] == ["m3", "m4"]
    # a new entry under a lost one's seqnum (a journald started over a dirty file) hides nothing
    other = (cursor(9, 0xbad, seqnum=3), b"other")
    assert [g["MESSAGE"] for g in missing(records, disk + [other], boot)] == ["m3", "m4"]
    moved = (cursor(3, 3, seqnum=77, sid="c" * 32), b"m3")
    assert [g["MESSAGE"] for g in missing(records, disk + [moved], boot)] == ["m4"]
    # there, but its MESSAGE unreadable or not the same (damaged data): given back
    for damaged in (None, b"m3 but cut"):
        got = missing(records, disk + [(cursor(3, 3), damaged)], boot)
        assert [g["MESSAGE"] for g in got] == ["m3", "m4"]
    assert [g["MESSAGE"] for g in missing(records, [], "f" * 32)] == ["m5"]


@pytest.mark.journald
def test_rescued_entries_written_through_journal_remote_complete_the_boot(journald, tmp_path):
    """What the daemon does with the rescue: the entries, in the export format
    (persistlog.export.encode_entry), through the real systemd-journal-remote into a journal
    file beside the crashed boot's; then `journalctl -b BOOT` shows every entry once, with its
    own time, PID and fields."""
    from persistlog import export
    from persistlog.rescue import export_fields
    remote = next((p for p in ("/lib/systemd/systemd-journal-remote",
                               "/usr/lib/systemd/systemd-journal-remote") if Path(p).exists()),
                  None)
    if remote is None:
        pytest.skip("systemd-journal-remote not installed (run .ci/daemon-deps.sh)")
    region, tag, synced, entries = mirror_two_batches(journald, tmp_path)
    crash(journald, synced)
    journald.sync()
    got = run_rescue(region, journald.journal_dir)
    assert len(got) == 40
    stream = b"".join(export.encode_entry(export_fields(g)) for g in got)
    machine_dir = journal_file(journald).parent
    out = machine_dir / "persistlog-rescued.journal"
    proc = subprocess.run([remote, "-o", str(out), "-"], input=stream, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert b"Unknown dunder" not in proc.stderr  # no position field went in
    shown = subprocess.run(["journalctl", "-D", str(journald.journal_dir), "-o", "json",
                            "-b", kernel_boot_id(), f"MIRRORTEST={tag}"],
                           capture_output=True, text=True, check=True).stdout
    shown = [json.loads(x) for x in shown.splitlines() if x.strip()]
    assert len(shown) == len(entries)  # all 90, each once, in order
    for s, (cursor, fields, realtime, monotonic) in zip(shown, entries):
        assert s["__REALTIME_TIMESTAMP"] == str(realtime)
        assert s["__MONOTONIC_TIMESTAMP"] == str(monotonic)
        for name, value in fields.items():
            assert field_bytes(s[name]) == value, name
    # every field kept, so journald hashes the rescued entry as it hashed the original: it is
    # the same entry to a reader, and a second rescue finds nothing missing
    assert run_rescue(region, journald.journal_dir) == []


@pytest.mark.journald
def test_entries_flushed_to_var_are_not_rescued_again(tmp_path, monkeypatch):
    """With persistent storage journald writes to /run/log/journal until the flush, which copies
    those entries into /var/log/journal under another seqnum ID. After a reboot only /var is
    left: the entries mirrored from /run are there (copies), and must not come back twice."""
    import journald as jd
    reason = jd.missing_requirements()
    if reason:
        pytest.skip(reason)
    monkeypatch.setattr(jd, "_CONF", jd._CONF.replace("Storage=volatile", "Storage=persistent"))
    with jd.Journald(tmp_path / "journald") as j:
        region = tmp_path / "ring"
        m = MirrorProc(j, region, tmp_path / "m").start()
        tag = uuid.uuid4().hex
        try:
            assert sender(j, tag, "before flush", 10).wait(60) == 0
            wait_for(lambda: len(mirrored(region, tag)) == 10, what="the first 10")
            j.run(["journalctl", "--flush"], capture_output=True)
            assert sender(j, tag, "after flush", 10).wait(60) == 0
            j.sync()
            wait_for(lambda: len(mirrored(region, tag)) == 20, what="all 20")
        finally:
            assert m.stop() == 0, m.err()
        var = Path(f"/proc/{j.pid}/root/var/log/journal")  # what a reboot leaves
        on_var = journal_entries(var, MIRRORTEST=tag)
        first_ids = {parse_cursor(r.fields["__CURSOR"])["seqnum_id"]
                     for r in mirrored(region, tag) if r.fields["CLIENT"] == "before flush"}
        copies = [e for e in on_var if e[1]["CLIENT"] == b"before flush"]
        assert len(copies) == 10
        assert {parse_cursor(e[0])["seqnum_id"] for e in copies}.isdisjoint(first_ids)
        got = [g for g in run_rescue(region, var) if g.get("MIRRORTEST") == tag]
    kept = {(parse_cursor(e[0])["monotonic_usec"], e[1]["MESSAGE"]) for e in on_var}
    assert [g["CLIENT"] for g in got] == [
        r.fields["CLIENT"] for r in mirrored(region, tag)
        if (r.fields["__MONOTONIC_TIMESTAMP"], as_bytes(journal_entry(r)["MESSAGE"])) not in kept]
    assert "before flush" not in [g["CLIENT"] for g in got]
    print(f"rescued: {len(got)} of {len(mirrored(region, tag))}")


def daemon_of_the_next_boot(journald, tmp_path, region):
    """Run ``persistlog daemon --once`` over ``region`` as a later boot (BOOT_D: the
    kernel's boot, which the mirror's records belong to, is then an earlier one), writing
    journal files into tmp_path/recovered and rescuing from journald's directory; returns
    (Setup, that directory, the finished process), having checked it exited 0."""
    from test_daemon import BOOT_D, Setup
    out = tmp_path / "recovered"
    out.mkdir()
    setup = Setup(tmp_path, journald, journal_files=True, journal_dir=out)
    setup.region = region
    setup.conf.write_text(f'mirror_directory = "{journald.journal_dir}"\n')
    proc = setup.run(BOOT_D)
    assert proc.returncode == 0, proc.stderr
    return setup, out, proc


@pytest.mark.journald
def test_the_daemon_writes_the_rescued_tail_into_the_crashed_boots_file(journald, tmp_path,
                                                                        monkeypatch):
    """The whole path: the mirror kept 90 entries, the crash took the last 40 from journald's
    disk, and the daemon of the next boot writes those 40 into the crashed boot's recovered
    journal file, marked PERSISTLOG_RESCUED=1, with the count in the boot's summary; a second
    run writes nothing again."""
    from persistlog import journalfile
    from test_daemon import BOOT_D, SUMMARY_ID
    if journalfile.find_remote() is None:
        pytest.skip("systemd-journal-remote not installed (run .ci/daemon-deps.sh)")
    # the mirror's ring boot is the kernel's, as on a real machine (conftest sets another)
    monkeypatch.setenv("PERSISTLOG_BOOT_ID", str(uuid.UUID(kernel_boot_id())))
    region, tag, synced, entries = mirror_two_batches(journald, tmp_path)
    crash(journald, synced)
    journald.sync()
    on_disk = journal_entries(journald.journal_dir, MIRRORTEST=tag)
    assert len(on_disk) < len(entries)

    setup, out, proc = daemon_of_the_next_boot(journald, tmp_path, region)
    assert "rescued from the mirror" in proc.stderr, proc.stderr

    def recovered(*match):
        got = subprocess.run(["journalctl", "-D", str(out), "-o", "json", "--all",
                              "-b", kernel_boot_id(), *match],
                             capture_output=True, text=True, check=True).stdout
        return [json.loads(x) for x in got.splitlines() if x.strip()]

    rescued = recovered(f"MIRRORTEST={tag}")
    assert len(on_disk) + len(rescued) == len(entries)
    assert {e["PERSISTLOG_RESCUED"] for e in rescued} == {"1"}
    disk_times = {e[2] for e in on_disk}
    want = [e for e in entries if e[2] not in disk_times]
    assert [int(e["__REALTIME_TIMESTAMP"]) for e in rescued] == [e[2] for e in want]
    assert [field_bytes(e["MESSAGE"]) for e in rescued] == [e[1]["MESSAGE"] for e in want]
    summary = recovered(f"MESSAGE_ID={SUMMARY_ID}")
    assert [s["PERSISTLOG_RESCUED"] for s in summary] == [str(len(rescued))]

    again = setup.run(BOOT_D)
    assert again.returncode == 0, again.stderr
    assert len(recovered(f"MIRRORTEST={tag}")) == len(rescued)


@pytest.mark.journald
def test_a_boot_with_nothing_to_rescue_keeps_its_place_among_the_boots(journald, tmp_path,
                                                                      monkeypatch):
    """Every record of the boot was mirrored and the disk has every entry: the recovered
    file holds only the summary, timed 1 us after the boot's last record in the ring (it
    was stamped with the drain's time and monotonic 0, which put the crashed boot after the
    current one in journalctl --list-boots: seen in the QEMU rescue test)."""
    from persistlog import journalfile
    from test_daemon import SUMMARY_ID
    if journalfile.find_remote() is None:
        pytest.skip("systemd-journal-remote not installed (run .ci/daemon-deps.sh)")
    monkeypatch.setenv("PERSISTLOG_BOOT_ID", str(uuid.UUID(kernel_boot_id())))
    region, tag, _, entries = mirror_two_batches(journald, tmp_path, 10, 10)
    with persistlog.open(region, readonly=True) as ring:
        last = max((r for r in ring.records() if r.boot_id == str(uuid.UUID(kernel_boot_id()))),
                   key=lambda r: r.monotonic_ns)
    _, out, _ = daemon_of_the_next_boot(journald, tmp_path, region)
    got = subprocess.run(["journalctl", "-D", str(out), "-o", "json", "--all",
                          "-b", kernel_boot_id()], capture_output=True, text=True,
                         check=True).stdout
    (summary,) = [json.loads(x) for x in got.splitlines() if x.strip()]
    assert summary["MESSAGE_ID"] == SUMMARY_ID and summary["PERSISTLOG_RESCUED"] == "0"
    assert summary["__REALTIME_TIMESTAMP"] == str(last.realtime_ns // 1000 + 1)
    assert summary["__MONOTONIC_TIMESTAMP"] == str(last.monotonic_ns // 1000 + 1)
