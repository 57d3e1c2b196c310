"""Parsing the times that ``dump --since`` takes, in journalctl's spirit
(systemd.time(7)): absolute local times, ``@EPOCH``, ``now``, ``today``,
``yesterday``, and relative offsets such as ``-1h`` or ``30min ago``."""
import re
import time
from datetime import datetime, timedelta

_UNITS = {
    "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3,
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_REL = re.compile(r"^([+-]?)\s*(\d+(?:\.\d+)?)\s*([a-z]+)(\s+ago)?$")


def parse_time(text, now=None):
    """Parse *text* into a CLOCK_REALTIME instant in ns since the epoch.

    Args:
        text (str): ``2026-11-21 17:00:00`` or ``2026-11-21T17:00`` (local
            time unless it carries an offset), ``17:00`` (today),
            ``@1795280000``, ``now``, ``today``, ``yesterday``, ``-1h``,
            ``2 days ago``.
        now (float | None): seconds since the epoch to count from (tests).

    Returns:
        int: ns since the epoch.

    Raises:
        ValueError: if *text* is not a time.
    """
    s = text.strip().lower()
    now = time.time() if now is None else now
    midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    if s == "now":
        return int(now * 1e9)
    if s == "today":
        return int(midnight.timestamp() * 1e9)
    if s == "yesterday":
        return int((midnight - timedelta(days=1)).timestamp() * 1e9)
    if s.startswith("@"):
        try:
            return int(float(s[1:]) * 1e9)
        except ValueError:
            pass
    m = _REL.match(s)
    if m and m.group(3) in _UNITS:
        sign = -1 if m.group(1) == "-" or m.group(4) else 1
        return int((now + sign * float(m.group(2)) * _UNITS[m.group(3)]) * 1e9)
    try:
        if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", s):
            t = datetime.strptime(s if s.count(":") == 2 else s + ":00", "%H:%M:%S")
            dt = midnight.replace(hour=t.hour, minute=t.minute, second=t.second)
        else:
            dt = datetime.fromisoformat(text.strip())
        return int(dt.timestamp() * 1e9)
    except ValueError:
        raise ValueError(f"not a time: {text!r} (try '2026-11-21 17:00', '-1h' or "
                         "'yesterday')") from None
