"""CLI behaviour its tests left open, found by the mutation run (bench/mutants/py_run.py)."""

import os
import select
import subprocess
import sys
import syslog

import pytest

import persistlog
from persistlog.cli import UsageError, parse_facility_priority

# glibc's <syslog.h> through Python's syslog module (LOG_* are facility << 3); ftp (11, RFC
# 5424 6.2.1) is not in Python 3.11's module
FACILITIES = {name: getattr(syslog, "LOG_" + name.upper()) >> 3 for name in (
    "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    *(f"local{i}" for i in range(8)))}
FACILITIES.update(security=FACILITIES["auth"], ftp=11, kern=FACILITIES["user"])  # as logger


@pytest.mark.parametrize("name", sorted(FACILITIES))
def test_every_facility_name_has_syslog_h_s_number(name):
    assert parse_facility_priority(f"{name}.notice") == (FACILITIES[name], 5)


def test_a_facility_number_or_unknown_name_is_refused():
    for text in ("16.err", "clock.err", ".err"):
        with pytest.raises(UsageError):
            parse_facility_priority(text)


def test_json_pretty_keeps_non_ascii_text_as_journalctl_does(region, cli):
    assert cli("append", "ünïcode ✓", region=region).returncode == 0
    out = cli("dump", "-o", "json-pretty", region=region)
    assert out.returncode == 0, out.stderr
    assert '\n\t"MESSAGE" : "ünïcode ✓",\n' in out.stdout


def line_of(proc, timeout=60):
    """The next line of ``proc``'s stdout; fails (rather than hangs) if none comes."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no line from dump -f in {timeout} s"
    return proc.stdout.readline()


def test_follow_of_one_boot_leaves_other_boots_records_out(region, cli, boot_env):
    # dump -f -b 0 (this boot); another boot's record, then this boot's, are appended while
    # it follows: only this boot's comes out (in seq order, so the other's would be first)
    this = boot_env()
    with persistlog.open(region, size=1 << 20) as ring:
        ring.append("start")
    proc = subprocess.Popen([sys.executable, "-m", "persistlog", "--region", region, "dump",
                             "-f", "-b", "0", "-o", "cat"], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PERSISTLOG_BOOT_ID=this))
    try:
        assert line_of(proc) == "start\n"
        boot_env()
        with persistlog.open(region) as ring:
            ring.append("from another boot")
        boot_env(this)
        with persistlog.open(region) as ring:
            ring.append("from this boot")
        assert line_of(proc) == "from this boot\n"
    finally:
        proc.kill()
        proc.wait()
