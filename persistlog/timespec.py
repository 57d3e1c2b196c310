"""Parsing the times that ``dump --since``/``--until`` take, as systemd.time(7)
describes them and ``systemd-analyze timestamp`` parses them:

- ``now``, ``today``, ``yesterday``, ``tomorrow`` (midnights, local time);
- ``@EPOCH`` (seconds, fractions allowed);
- a span relative to now: ``-1h30min``, ``+5min``, ``1 hour 30 min ago``,
  ``5min left``; units ``us``/``usec``/``µs``, ``ms``/``msec``, ``s``/``sec``/
  ``second(s)``, ``m``/``min``/``minute(s)``, ``h``/``hr``/``hour(s)``,
  ``d``/``day(s)``, ``w``/``week(s)``, ``M``/``month(s)`` (30.44 days),
  ``y``/``year(s)`` (365.25 days); a lone number is seconds;
- an absolute time ``[WEEKDAY] YYYY-MM-DD [HH:MM[:SS[.FRAC]]] [UTC]``, the
  year also as two digits, or ``HH:MM[:SS]`` (today); local time unless it
  ends in ``UTC`` (or another tz database name such as ``Europe/Berlin``,
  which newer systemd takes too); a weekday must be the date's;
- beyond systemd: ISO 8601 with ``T`` and an offset, ``2026-11-21T17:00+01:00``.
"""
import re
import time
from datetime import datetime, timedelta, timezone

_USEC = {
    "us": 1, "usec": 1, "µs": 1, "μs": 1,
    "ms": 1_000, "msec": 1_000,
    "s": 1_000_000, "sec": 1_000_000, "second": 1_000_000, "seconds": 1_000_000,
    "m": 60_000_000, "min": 60_000_000, "minute": 60_000_000, "minutes": 60_000_000,
    "h": 3_600_000_000, "hr": 3_600_000_000, "hour": 3_600_000_000, "hours": 3_600_000_000,
    "d": 86_400_000_000, "day": 86_400_000_000, "days": 86_400_000_000,
    "w": 604_800_000_000, "week": 604_800_000_000, "weeks": 604_800_000_000,
    "M": 2_629_800_000_000, "month": 2_629_800_000_000, "months": 2_629_800_000_000,
    "y": 31_557_600_000_000, "year": 31_557_600_000_000, "years": 31_557_600_000_000,
}
_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([^\d\s.]*)")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DATE = re.compile(r"(\d{4}|\d{2})-(\d{1,2})-(\d{1,2})(?:\s+(.*))?$")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(\.\d+)?)?$")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}.*)?")  # what fromisoformat() may be given


def parse_span(text):
    """Parse a systemd time span (``1h30min``, ``1 hour 30 min``, ``90``) into
    microseconds, or return None if *text* is not one."""
    t = text.strip()
    if not t:
        return None
    if re.fullmatch(r"\d+(\.\d*)?|\.\d+", t):
        return round(float(t) * 1_000_000)  # a lone number: seconds
    total, pos = 0, 0
    while pos < len(t):
        m = _PART.match(t, pos)
        if not m or m.end() == pos:
            return None
        unit = m.group(2)
        factor = _USEC.get(unit) or _USEC.get(unit.lower())  # "M" months, "m" minutes
        if not factor:
            return None
        total += round(float(m.group(1)) * factor)
        pos = m.end()
        while pos < len(t) and t[pos].isspace():
            pos += 1
    return total


def _zone(name):
    if name.lower() == "utc":
        return timezone.utc
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    except ImportError:  # pragma: no cover - Python < 3.9
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _absolute(text, now):
    """Parse an absolute time into ns, or return None."""
    words = text.split()
    zone = None
    if len(words) > 1:
        zone = _zone(words[-1])
        if zone is not None:
            words = words[:-1]
    weekday = None
    if words and words[0].lower().rstrip(",") in _WEEKDAYS + tuple(w[:3] for w in _WEEKDAYS):
        name = words.pop(0).lower().rstrip(",")
        weekday = next(i for i, w in enumerate(_WEEKDAYS) if w.startswith(name))
    rest = " ".join(words)
    today = (datetime.fromtimestamp(now, zone) if zone else datetime.fromtimestamp(now))
    m = _DATE.match(rest)
    if m:
        year = int(m.group(1))
        if len(m.group(1)) == 2:
            year += 1900 if year >= 69 else 2000  # as strptime's %y, and systemd
        clock = m.group(4) or "00:00:00"
        month, mday = int(m.group(2)), int(m.group(3))
        if not (1 <= month <= 12 and 1 <= mday <= 31):
            return None
        # the 30th of February is 2 March, as mktime() makes it for systemd
        try:
            day = datetime(year, month, 1) + timedelta(days=mday - 1)
        except (ValueError, OverflowError):  # year 0, or past 9999
            return None
    else:
        clock, day = rest, today.replace(hour=0, minute=0, second=0, microsecond=0,
                                         tzinfo=None)
    c = _CLOCK.match(clock)
    if not c:
        return None
    hour, minute, sec = int(c.group(1)), int(c.group(2)), int(c.group(3) or 0)
    usec = round(float(c.group(4)) * 1_000_000) if c.group(4) else 0
    if hour > 23 or minute > 59 or sec > 59:
        return None
    dt = day.replace(hour=hour, minute=minute, second=sec, microsecond=usec)
    if weekday is not None and dt.weekday() != weekday:
        return None
    if zone is not None:
        dt = dt.replace(tzinfo=zone)
    return int(dt.replace(microsecond=0).timestamp()) * 1_000_000_000 + usec * 1000


def parse_time(text, now=None):
    """Parse *text* into a CLOCK_REALTIME instant in ns since the epoch.

    Args:
        text (str): a systemd.time(7) timestamp (see the module docstring):
            ``2026-11-21 17:00:00``, ``Sat 2026-11-21 17:00 UTC``, ``17:00``,
            ``@1795280000``, ``now``, ``today``, ``yesterday``, ``tomorrow``,
            ``-1h30min``, ``2 days ago``, ``5min left``.
        now (float | None): seconds since the epoch to count from (tests).

    Returns:
        int: ns since the epoch.

    Raises:
        ValueError: if *text* is not a time.
    """
    s = " ".join(text.split())
    now = time.time() if now is None else now
    now_ns = int(now * 1e9)
    low = s.lower()
    if low == "now":
        return now_ns
    if low in ("today", "yesterday", "tomorrow"):
        midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0,
                                                       microsecond=0)
        midnight += timedelta(days={"today": 0, "yesterday": -1, "tomorrow": 1}[low])
        return int(midnight.timestamp()) * 1_000_000_000
    if s.startswith("@"):
        try:
            return round(float(s[1:]) * 1e6) * 1000
        except ValueError:
            pass
    sign, span = 0, None
    if s and s[0] in "+-":
        sign, span = (1 if s[0] == "+" else -1), parse_span(s[1:])
    elif low.endswith(" ago"):
        sign, span = -1, parse_span(s[:-4])
    elif low.endswith(" left"):
        sign, span = 1, parse_span(s[:-5])
    if sign and span is not None:
        return now_ns + sign * span * 1000
    if not sign:
        ns = _absolute(s, now)
        if ns is not None:
            return ns
        try:
            # ISO 8601 as systemd.time(7) takes it: a date, or a date and at least HH:MM;
            # fromisoformat() would also take a bare hour ("2026-11-28 19"), which systemd
            # refuses (systemd-analyze timestamp, systemd 252)
            if not _ISO.fullmatch(s):
                raise ValueError(s)
            dt = datetime.fromisoformat(s)
            return int(dt.replace(microsecond=0).timestamp()) * 1_000_000_000 \
                + dt.microsecond * 1000
        except ValueError:
            pass
    raise ValueError(f"not a time: {text!r} (try '2026-11-21 17:00', '-1h30min', "
                     "'2 hours ago' or 'yesterday')")
