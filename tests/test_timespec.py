"""persistlog.timespec to the microsecond, at a fixed instant and in fixed
time zones: every unit of systemd.time(7), each bound of a date and a clock,
two-digit years, weekdays, zones.  The comparison with systemd-analyze
(test_cli_journalctl.py) allows a second of slack for relative times and
runs at the real now; this one pins both, and the expected values come from
calendar.timegm and the man page's unit lengths, not from the module.
"""
import calendar
import time

import pytest

from persistlog.timespec import parse_span, parse_time

NOW = 1795892400  # 2026-11-28 19:00:00 UTC, a Saturday; 14:00 in New York (EST)
NS = 1_000_000_000


@pytest.fixture
def tz(monkeypatch):
    """Set the process's time zone; returns the setter."""
    def set_tz(name):
        monkeypatch.setenv("TZ", name)
        time.tzset()
    yield set_tz
    monkeypatch.undo()
    time.tzset()


def utc(*fields):
    """ns since the epoch of a UTC calendar time (year, month, day, h, m, s)."""
    return calendar.timegm(fields + (0,) * (6 - len(fields))) * NS


# systemd.time(7): usec, us, µs / msec, ms / seconds, second, sec, s / minutes,
# minute, min, m / hours, hour, hr, h / days, day, d / weeks, week, w /
# months, month, M (30.44 days) / years, year, y (365.25 days)
UNITS = [
    (("us", "usec", "µs", "μs"), 1),
    (("ms", "msec"), 1_000),
    (("s", "sec", "second", "seconds"), 1_000_000),
    (("m", "min", "minute", "minutes"), 60_000_000),
    (("h", "hr", "hour", "hours"), 3_600_000_000),
    (("d", "day", "days"), 86_400_000_000),
    (("w", "week", "weeks"), 604_800_000_000),
    (("M", "month", "months"), 2_629_800_000_000),
    (("y", "year", "years"), 31_557_600_000_000),
]


@pytest.mark.parametrize("names,usec", UNITS, ids=lambda v: v[0] if isinstance(v, tuple) else "")
def test_every_unit_has_its_length(names, usec):
    for name in names:
        assert parse_span(f"1{name}") == usec, name
        assert parse_span(f"3 {name}") == 3 * usec, name
    upper = names[0].upper()
    if upper not in sum((n for n, _ in UNITS), ()):  # "MS" is ms; "M" stays months
        assert parse_span(f"2{upper}") == 2 * usec


def test_spans_add_their_parts():
    assert parse_span("1h30min") == parse_span("1 hour 30 min") == 5_400_000_000
    assert parse_span("1w2d") == (7 + 2) * 86_400_000_000
    assert parse_span("1.5h") == 5_400_000_000
    assert parse_span(".5s") == 500_000
    assert parse_span("2ms 3us") == 2_003


def test_a_lone_number_is_seconds():
    assert parse_span("90") == 90_000_000
    assert parse_span("1.5") == 1_500_000
    assert parse_span(".25") == 250_000
    assert parse_span(" 7 ") == 7_000_000


@pytest.mark.parametrize("text", ["", " ", "h", "1x", "1h30", "1h x", "ago", "1..5s", "-1h"])
def test_not_a_span(text):
    assert parse_span(text) is None


def test_relative_times_count_from_now():
    now = NOW * NS
    assert parse_time("now", now=NOW) == now
    assert parse_time("NOW", now=NOW) == now
    assert parse_time("-1h30min", now=NOW) == now - 5_400 * NS
    assert parse_time("+5min", now=NOW) == now + 300 * NS
    assert parse_time("-0", now=NOW) == now
    assert parse_time("1 hour 30 min ago", now=NOW) == now - 5_400 * NS
    assert parse_time("1 hour  30 min   AGO", now=NOW) == now - 5_400 * NS
    assert parse_time("2ms ago", now=NOW) == now - 2_000_000
    assert parse_time("5 ago", now=NOW) == now - 5 * NS
    assert parse_time("5min left", now=NOW) == now + 300 * NS
    assert parse_time("5min LEFT", now=NOW) == now + 300 * NS
    assert parse_time("1 hour 30 min left", now=NOW) == now + 5_400 * NS
    assert parse_time("1y ago", now=NOW) == now - 31_557_600 * NS
    assert parse_time("3 months ago", now=NOW) == now - 3 * 2_629_800 * NS


def test_epoch_seconds():
    assert parse_time("@1795892400", now=0) == NOW * NS
    assert parse_time("@1795892400.25", now=0) == NOW * NS + 250_000_000
    assert parse_time("@0", now=NOW) == 0


def test_midnights_are_local(tz):
    tz("America/New_York")  # 14:00 EST on the 28th: local midnight is 05:00 UTC
    assert parse_time("today", now=NOW) == utc(2026, 11, 28, 5)
    assert parse_time("yesterday", now=NOW) == utc(2026, 11, 27, 5)
    assert parse_time("tomorrow", now=NOW) == utc(2026, 11, 29, 5)
    assert parse_time("Today", now=NOW) == utc(2026, 11, 28, 5)
    tz("UTC")  # an instant before 1970: midnight is counted down, not up
    assert parse_time("today", now=-1) == -86_400 * NS
    assert parse_time("tomorrow", now=-1) == 0


def test_a_clock_in_a_zone_is_on_that_zones_date(tz):
    tz("America/New_York")
    late = NOW + 8 * 3600  # 2026-11-29 03:00 UTC, still the 28th (22:00) in New York
    assert parse_time("19:00 UTC", now=late) == utc(2026, 11, 29, 19)
    assert parse_time("19:00", now=late) == utc(2026, 11, 29, 0)  # 19:00 EST on the 28th


def test_dates_and_clocks_in_utc(tz):
    tz("UTC")
    assert parse_time("2026-11-28", now=NOW) == utc(2026, 11, 28)
    assert parse_time("2026-11-28 19:00", now=NOW) == utc(2026, 11, 28, 19)
    assert parse_time("2026-11-28 19:00:07", now=NOW) == utc(2026, 11, 28, 19, 0, 7)
    assert parse_time("2026-11-28 19:00:07.25", now=NOW) == utc(2026, 11, 28, 19, 0, 7) + 250_000_000
    assert parse_time("2026-11-28 00:00:00", now=NOW) == utc(2026, 11, 28)
    assert parse_time("2026-11-28 23:59:59", now=NOW) == utc(2026, 11, 28, 23, 59, 59)
    assert parse_time("2026-1-5 9:05", now=NOW) == utc(2026, 1, 5, 9, 5)
    assert parse_time("2026-12-31", now=NOW) == utc(2026, 12, 31)
    assert parse_time("2026-01-01", now=NOW) == utc(2026, 1, 1)
    assert parse_time("2026-01-31", now=NOW) == utc(2026, 1, 31)
    assert parse_time("19:00", now=NOW) == utc(2026, 11, 28, 19)
    assert parse_time("07:30:15", now=NOW) == utc(2026, 11, 28, 7, 30, 15)
    # clock-only and weekday forms, which datetime.fromisoformat does not take
    assert parse_time("23:59:59", now=NOW) == utc(2026, 11, 28, 23, 59, 59)
    assert parse_time("Sat 2026-11-28 23:59:59", now=NOW) == utc(2026, 11, 28, 23, 59, 59)
    assert parse_time("00:00", now=NOW) == utc(2026, 11, 28)
    assert parse_time("2026-11-28 19:00:07.999999", now=NOW) == \
        utc(2026, 11, 28, 19, 0, 7) + 999_999_000
    assert parse_time("19:00:07.000001", now=NOW) == utc(2026, 11, 28, 19, 0, 7) + 1_000


def test_the_30th_of_february_is_the_2nd_of_march(tz):
    tz("UTC")
    assert parse_time("2026-02-30", now=NOW) == utc(2026, 3, 2)
    assert parse_time("2024-02-30", now=NOW) == utc(2024, 3, 1)  # a leap year


def test_two_digit_years_are_1969_to_2068(tz):
    tz("UTC")
    assert parse_time("69-01-01", now=NOW) == utc(1969, 1, 1)
    assert parse_time("70-06-01", now=NOW) == utc(1970, 6, 1)
    assert parse_time("68-12-31", now=NOW) == utc(2068, 12, 31)
    assert parse_time("26-11-28 19:00", now=NOW) == utc(2026, 11, 28, 19)
    assert parse_time("00-01-01", now=NOW) == utc(2000, 1, 1)


def test_local_time_and_zones(tz):
    tz("America/New_York")
    assert parse_time("2026-11-28 19:00", now=NOW) == utc(2026, 11, 29, 0)  # EST, -5
    assert parse_time("2026-07-01 12:00", now=NOW) == utc(2026, 7, 1, 16)   # EDT, -4
    assert parse_time("2026-11-28 19:00 UTC", now=NOW) == utc(2026, 11, 28, 19)
    assert parse_time("2026-11-28 19:00:00.5 utc", now=NOW) == utc(2026, 11, 28, 19) + NS // 2
    assert parse_time("2026-11-28 19:00 Europe/Berlin", now=NOW) == utc(2026, 11, 28, 18)
    assert parse_time("2026-11-28 19:00 Asia/Kolkata", now=NOW) == \
        utc(2026, 11, 28, 13, 30)
    assert parse_time("14:00", now=NOW) == NOW * NS          # today, local
    assert parse_time("19:00 UTC", now=NOW) == NOW * NS      # today in UTC
    assert parse_time("2026-11-21T17:00+01:00", now=NOW) == utc(2026, 11, 21, 16)
    assert parse_time("2026-11-21T17:00:00.5+00:00", now=NOW) == utc(2026, 11, 21, 17) + NS // 2
    # before 1970: whole seconds counted down, the fraction added up
    assert parse_time("1969-12-31T23:59:00+00:00", now=NOW) == -60 * NS
    assert parse_time("1969-12-31T23:59:00.5+00:00", now=NOW) == -60 * NS + NS // 2
    assert parse_time("1969-12-31 23:59:00.5 UTC", now=NOW) == -60 * NS + NS // 2


def test_a_weekday_must_be_the_dates(tz):
    tz("UTC")
    for day in ("Sat", "sat", "Saturday", "SATURDAY"):
        assert parse_time(f"{day} 2026-11-28 19:00", now=NOW) == utc(2026, 11, 28, 19), day
    assert parse_time("Sat 2026-11-28 19:00 UTC", now=NOW) == utc(2026, 11, 28, 19)
    assert parse_time("Mon 2026-11-30", now=NOW) == utc(2026, 11, 30)
    assert parse_time("Sun 2026-11-29", now=NOW) == utc(2026, 11, 29)
    for wrong in ("Sun 2026-11-28 19:00", "Fri 2026-11-28", "Monday 2026-11-28"):
        with pytest.raises(ValueError):
            parse_time(wrong, now=NOW)


@pytest.mark.parametrize("text", [
    "", "someday", "left", "ago", "1h30", "2026-13-01", "2026-00-10", "2026-01-32",
    "2026-01-00", "2026-11-28 24:00", "2026-11-28 23:60", "2026-11-28 23:59:60",
    "24:00", "23:60", "23:59:60", "Sat 2026-11-28 24:00",
    "0000-01-01", "12345-01-01", "@x", "+", "5min left ago",
])
def test_not_a_time(text, tz):
    tz("UTC")
    with pytest.raises(ValueError, match="not a time"):
        parse_time(text, now=NOW)


def test_a_date_and_a_bare_hour_is_not_a_time(tz):
    tz("UTC")
    with pytest.raises(ValueError, match="not a time"):
        parse_time("2026-11-28 19", now=NOW)
