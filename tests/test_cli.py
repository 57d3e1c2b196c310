"""The command line end to end, through subprocesses, errors included."""
import json
import os
import uuid

import msgpack
import pytest

BOOT_A = str(uuid.UUID(int=0xA))
BOOT_B = str(uuid.UUID(int=0xB))
BOOT_C = str(uuid.UUID(int=0xC))


def test_previous_boot_shows_what_the_last_boot_wrote(cli, region):
    for i in range(3):
        assert cli("append", "-p", "err", "-t", "app", f"boot A line {i}",
                   region=region, boot_id=BOOT_A).returncode == 0
    assert cli("append", "boot B line", region=region, boot_id=BOOT_B).returncode == 0
    r = cli("dump", "--previous-boot", "-o", "json-persistlog", region=region, boot_id=BOOT_B)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["message"] for x in recs] == [f"boot A line {i}" for i in range(3)]
    assert {x["boot_id"] for x in recs} == {BOOT_A}
    assert all(x["priority"] == 3 and x["identifier"] == "app" for x in recs)
    assert set(recs[0]) == {"seq", "boot_id", "realtime_ns", "monotonic_ns", "pid", "tid",
                            "priority", "identifier", "message", "fields"}
    # the same boot by offset, by ID, and the current boot by default
    assert cli("dump", "-b", "-1", "-o", "cat", region=region, boot_id=BOOT_B).stdout == \
        "".join(f"boot A line {i}\n" for i in range(3))
    assert cli("dump", "--boot", BOOT_A, "-o", "cat", region=region,
               boot_id=BOOT_B).stdout.count("\n") == 3
    assert cli("dump", "-o", "cat", region=region, boot_id=BOOT_B).stdout == "boot B line\n"
    # from a third boot, -1 is B and -2 is A; a boot that writes nothing still moves on
    assert cli("dump", "-b", "-2", "-o", "cat", region=region,
               boot_id=BOOT_C).stdout.count("boot A") == 3


def test_cat_turns_stdin_lines_into_records(cli, region):
    lines = "".join(f"line {i} \u00e9\n" for i in range(500))
    r = cli("cat", "-t", "feeder", "-p", "warning", region=region, boot_id=BOOT_A, input=lines)
    assert r.returncode == 0, r.stderr
    out = cli("dump", "-o", "json-persistlog", region=region, boot_id=BOOT_A).stdout.splitlines()
    recs = [json.loads(x) for x in out]
    assert [x["message"] for x in recs] == [f"line {i} \u00e9" for i in range(500)]
    assert {(x["identifier"], x["priority"]) for x in recs} == {("feeder", 4)}


def test_cat_runs_a_command_and_keeps_its_exit_status(cli, region):
    r = cli("cat", "--stderr-priority", "err", "--", "sh", "-c",
            "echo to-out; echo to-err >&2; exit 7", region=region, boot_id=BOOT_A)
    assert r.returncode == 7
    recs = [json.loads(x) for x in
            cli("dump", "-o", "json-persistlog", region=region, boot_id=BOOT_A).stdout.splitlines()]
    got = {(x["message"], x["priority"], x["identifier"]) for x in recs}
    assert got == {("to-out", 6, "sh"), ("to-err", 3, "sh")}
    r = cli("cat", "--", "/no/such/program", region=region, boot_id=BOOT_A)
    assert r.returncode == 127 and "cannot run" in r.stderr


def test_dump_filters_and_formats(cli, region):
    for prio in range(8):
        cli("append", "-p", str(prio), "-t", "f", f"p{prio}", region=region, boot_id=BOOT_A)
    dump = lambda *a: cli("dump", *a, region=region, boot_id=BOOT_A)  # noqa: E731
    assert dump("-o", "cat", "-p", "err").stdout.split() == ["p0", "p1", "p2", "p3"]
    assert dump("-o", "cat", "-p", "warning..err").stdout.split() == ["p3", "p4"]
    assert dump("-o", "cat", "-n", "2").stdout.split() == ["p6", "p7"]
    assert dump("-o", "cat", "--since=-1h").stdout.split() == [f"p{i}" for i in range(8)]
    assert dump("-o", "cat", "--since", "1 hour ago").stdout.count("\n") == 8; assert dump("-o", "cat", "--since", "+1h").stdout == ""
    short = dump().stdout.splitlines()
    assert len(short) == 8 and short[0].endswith(" f[" + short[0].split("[")[1].split("]")[0]
                                                  + "]: p0")
    iso = dump("-o", "short-iso").stdout.splitlines()[0]
    assert iso[:4].isdigit() and "T" in iso.split()[0]
    packed = list(msgpack.Unpacker(
        __import__("io").BytesIO(
            __import__("subprocess").run(
                [__import__("sys").executable, "-m", "persistlog", "--region", region, "dump",
                 "-o", "msgpack"], capture_output=True,
                env={**os.environ, "PERSISTLOG_BOOT_ID": BOOT_A}).stdout)))
    assert [p["message"] for p in packed] == [f"p{i}" for i in range(8)]
    assert cli("dump", "--all", "-o", "cat", region=region, boot_id=BOOT_B).stdout.count("\n") == 8


def test_list_boots_and_stat(cli, region):
    cli("append", "a", region=region, boot_id=BOOT_A)
    cli("append", "b1", region=region, boot_id=BOOT_B)
    cli("append", "b2", region=region, boot_id=BOOT_B)
    r = cli("list-boots", "-o", "json", "--archive-dir", os.path.dirname(region) + "/none",
            region=region, boot_id=BOOT_B)
    boots = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(b["offset"], b["boot_id"], b["records"], b["where"]) for b in boots] == [
        (-1, BOOT_A, 1, "ring"), (0, BOOT_B, 2, "ring")]
    text = cli("list-boots", "--archive-dir", "/nonexistent", region=region,
               boot_id=BOOT_B).stdout
    assert BOOT_A in text and text.splitlines()[0].split()[0] == "IDX"
    st = json.loads(cli("stat", "-o", "json", region=region, boot_id=BOOT_B).stdout)
    assert (st["records"], st["first_seq"], st["last_seq"], st["boots"]) == (3, 1, 3, 2)
    st = json.loads(cli("stat", "-o", "json", "-b", "-1", region=region, boot_id=BOOT_B).stdout)
    assert (st["records"], st["boot_id"]) == (1, BOOT_A)
    assert "capacity: " in cli("stat", region=region, boot_id=BOOT_B).stdout


def test_format_needs_force_over_records(cli, region):
    cli("append", "keep me", region=region, boot_id=BOOT_A)
    r = cli("format", region=region, boot_id=BOOT_A)
    assert r.returncode == 1 and "--force" in r.stderr
    assert cli("dump", "-o", "cat", region=region, boot_id=BOOT_A).stdout == "keep me\n"
    r = cli("format", "--force", "--size", "1M", region=region, boot_id=BOOT_A)
    assert r.returncode == 0 and os.path.getsize(region) == 1 << 20
    assert cli("dump", "--all", "-o", "cat", region=region, boot_id=BOOT_A).stdout == ""


def test_follow_prints_new_records(cli, region):
    import subprocess
    import sys
    cli("append", "old", region=region, boot_id=BOOT_A)
    env = {**os.environ, "PERSISTLOG_BOOT_ID": BOOT_A}
    p = subprocess.Popen([sys.executable, "-m", "persistlog", "--region", region, "dump", "-f",
                          "-o", "cat"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline() == "old\n"
        # whenever they come after it, the follower shows them: no pause needed
        cli("append", "new 1", region=region, boot_id=BOOT_A)
        cli("append", "new 2", region=region, boot_id=BOOT_A)
        assert p.stdout.readline() == "new 1\n"
        assert p.stdout.readline() == "new 2\n"
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("args,code,needle", [
    (["append", "-p", "loud", "x"], 2, "bad priority"),
    (["dump", "--since", "someday"], 2, "not a time"),
    (["dump", "-b", "-3"], 4, "no boot -3"),
    (["dump", "--boot", "nonsense"], 2, "not a boot ID"),
    (["format", "--size", "lots"], 2, "not a size"),
    (["format", "--force", "--size", "16K"], 3, "smaller than"),
    (["frobnicate"], 2, "invalid choice"),
    (["dump", "-o", "xml"], 2, "invalid choice"),
    ([], 2, "usage"),
])
def test_bad_input_gives_one_line_and_an_exit_code(cli, region, args, code, needle):
    cli("append", "x", region=region, boot_id=BOOT_A)
    r = cli(*args, region=region, boot_id=BOOT_A)
    assert r.returncode == code, r.stderr
    assert needle in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2
    assert cli("dump", "-o", "cat", region=region, boot_id=BOOT_A).stdout == "x\n"


def test_region_errors(cli, tmp_path):
    r = cli("dump", region=str(tmp_path / "absent"), boot_id=BOOT_A)
    assert r.returncode == 3 and "no region" in r.stderr
    foreign = tmp_path / "foreign"
    foreign.write_bytes(b"#!/bin/sh\n" * 20000)
    r = cli("append", "x", region=str(foreign), boot_id=BOOT_A)
    assert r.returncode == 3 and "not a persistlog region" in r.stderr
    assert foreign.read_bytes().startswith(b"#!/bin/sh")
    r = cli("append", "x", region=str(tmp_path), boot_id=BOOT_A)
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert cli("format", "--size", "128K", region=str(tmp_path / "r")).returncode == 0
    r = cli("append", "x" * 40_000, region=str(tmp_path / "r"), boot_id=BOOT_A)
    assert r.returncode == 1 and "larger than" in r.stderr
    r = cli("append", "x", region=str(tmp_path / "r"), env={**os.environ,
                                                            "PERSISTLOG_BOOT_ID": "zzz"})
    assert r.returncode == 2 and "not a boot ID" in r.stderr


def test_damaged_region_is_recovered_by_the_cli(cli, region):
    for i in range(20):
        cli("append", f"r{i}", region=region, boot_id=BOOT_A)
    with open(region, "r+b") as f:
        f.write(b"\0" * 64)
    r = cli("dump", "--all", "-o", "cat", region=region, boot_id=BOOT_B)
    assert r.returncode == 0 and r.stdout.split() == [f"r{i}" for i in range(20)]
    r = cli("append", "after", region=region, boot_id=BOOT_B)
    assert r.returncode == 0
    assert any(n.startswith("ring.damaged-") for n in os.listdir(os.path.dirname(region)))
    r = cli("dump", "--previous-boot", "-o", "cat", region=region, boot_id=BOOT_B)
    assert r.stdout.split() == [f"r{i}" for i in range(20)]


def test_terminal_escapes_in_messages_are_shown_not_obeyed(cli, region, boot_env):
    import persistlog
    boot_env(BOOT_A)
    env = dict(os.environ)
    with persistlog.open(region) as ring:
        ring.append("red \x1b[31malert\x07\nNov 21 00:00:00 forged[1]: line", identifier="e\x1b")
    out = cli("dump", region=region, env=env).stdout
    assert "\x1b" not in out and "\x07" not in out
    assert "red \\x1b[31malert\\x07" in out and "e\\x1b[" in out
    first, second = out.splitlines()
    assert second.startswith(" " * 20) and second.strip().startswith("Nov 21 00:00:00 forged")
    assert cli("dump", "-o", "cat", region=region, env=env).stdout.count("\x1b") == 0
    raw = json.loads(cli("dump", "-o", "json-persistlog", region=region, env=env).stdout)
    assert raw["message"].startswith("red \x1b[31m")  # JSON keeps the bytes, escaped by JSON
