"""CLI behaviour its tests left open, found by the mutation run (bench/mutants/py_run.py)."""

import syslog

import pytest

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
