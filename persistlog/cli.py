"""``persistlog``: the command line, shaped like journalctl and systemd-cat.

Usage: ``persistlog [--region PATH] COMMAND [ARGS]``; ``persistlog --help``.

Exit codes:
    0   success
    1   the operation failed (a record too large, I/O error, ...), or
        ``dump -g`` matched nothing (as journalctl and grep say so)
    2   bad usage: an unknown option, a bad priority, size or time
    3   the region cannot be used: missing, not a persistlog region,
        a newer format version, too small, or cannot be opened
    4   the boot asked for is not in the region (``dump -b``, ``stat -b``)
    130 interrupted (SIGINT), except ``dump -f``, which ends with 0
    ``cat -- COMMAND`` exits with COMMAND's status (127 if it cannot run),
    or, when a signal killed COMMAND, dies of that signal (as systemd-cat,
    which execs COMMAND; a shell shows 128+N).
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import warnings
from datetime import datetime, timezone

import msgpack

from . import __version__, export
from .errors import (BootNotFound, InvalidBootId, NotARegion, PersistlogError, RegionTooSmall,
                     RegionUnavailable, UnsupportedVersion)
from .pager import paged
from .record import IDENTIFIER, MESSAGE, PRIORITY, PRIORITY_NAMES
from .region import default_region, parse_size
from .ring import RegionRecovered, format_region, open as open_ring
from .timespec import parse_time

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_REGION, EXIT_NO_BOOT, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class UsageError(Exception):
    """Bad command-line input; exit 2."""


def parse_priority(text):
    """Parse a syslog priority, by name (``err``) or number (``3``).

    Returns:
        int: 0 to 7.

    Raises:
        UsageError: not a priority.
    """
    t = text.strip().lower()
    aliases = {"error": "err", "warn": "warning", "panic": "emerg", "critical": "crit"}
    t = aliases.get(t, t)
    if t.isdigit() and 0 <= int(t) <= 7:
        return int(t)
    if t in PRIORITY_NAMES:
        return PRIORITY_NAMES.index(t)
    raise UsageError(f"bad priority {text!r}: use 0-7 or one of {', '.join(PRIORITY_NAMES)}")


def parse_priority_range(text):
    """Parse ``-p`` of dump: ``err`` means 0..3; ``warning..err`` a range.

    Returns:
        tuple[int, int]: lowest and highest priority number shown.
    """
    if ".." in text:
        a, b = text.split("..", 1)
        lo, hi = parse_priority(a or "0"), parse_priority(b or "7")
        return min(lo, hi), max(lo, hi)
    return 0, parse_priority(text)


#: syslog facilities by the names logger takes (glibc's <syslog.h>), with the
#: numbers journald stores in SYSLOG_FACILITY (RFC 5424, 6.2.1).
FACILITY_NAMES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "security": 4, "syslog": 5,
    "lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}
FACILITY = "SYSLOG_FACILITY"


def parse_facility_priority(text):
    """Parse ``-p`` of append as logger takes it: ``err``, ``3``, ``user.err``,
    ``local0.notice``.  ``kern`` becomes ``user``, as logger makes it (a
    program is not the kernel).  A facility is named, not numbered: logger
    reads ``16.err`` as a raw code (mail), not as SYSLOG_FACILITY 16.

    Returns:
        tuple[int | None, int]: the facility's SYSLOG_FACILITY number (None
        when not given) and the priority.

    Raises:
        UsageError: an unknown facility or priority.
    """
    if "." not in text:
        return None, parse_priority(text)
    fac, level = text.split(".", 1)
    facility = FACILITY_NAMES.get(fac.strip().lower())
    if facility is None:
        raise UsageError(f"unknown facility {fac!r}: use one of {', '.join(FACILITY_NAMES)}")
    return (facility or FACILITY_NAMES["user"]), parse_priority(level)


_FIELD_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_OWN_FIELDS = {MESSAGE: "the message", PRIORITY: "-p", IDENTIFIER: "-t"}


def parse_fields(items):
    """Parse ``--field NAME=VALUE`` items into a dict of str.

    Names are as journald keeps them: upper-case letters, digits and ``_``,
    starting with a letter, at most 64 characters; MESSAGE, PRIORITY and
    SYSLOG_IDENTIFIER have their own options.

    Raises:
        UsageError: an item without ``=``, a bad, reserved or repeated name.
    """
    fields = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"--field takes NAME=VALUE, not {item!r}")
        if name in _OWN_FIELDS:
            raise UsageError(f"field {name} is set by {_OWN_FIELDS[name]}, not --field")
        if not _FIELD_NAME.fullmatch(name):
            raise UsageError(f"bad field name {name!r}: upper-case letters, digits and '_', "
                             "starting with a letter, at most 64 (as journald keeps them)")
        if name in fields:
            raise UsageError(f"field {name} given twice")
        fields[name] = value
    return fields


def _parse_lines(text):
    """``-n`` as journalctl takes it: ``N`` the newest N, ``+N`` the oldest N,
    ``all``.  Returns (from_the_oldest, N or None for all)."""
    t = text.strip().lower()
    if t == "all":
        return False, None
    head = t.startswith("+")
    try:
        n = int(t[1:] if head else t)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"-n takes N, +N or all, not {text!r}")
    return head, n


def _parse_bool(text):
    t = text.strip().lower()
    if t in ("1", "yes", "y", "true", "t", "on"):
        return True
    if t in ("0", "no", "n", "false", "f", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")


def compile_grep(pattern, case_sensitive=None):
    """Compile ``-g PATTERN`` (Python ``re`` syntax).  Unless *case_sensitive*
    says otherwise, it ignores case when the pattern has no upper-case letter
    (one after a backslash, as in ``\\S``, does not count), as journalctl does.

    Raises:
        UsageError: the pattern does not compile.
    """
    if case_sensitive is None:
        case_sensitive = any(c.isupper() and (i == 0 or pattern[i - 1] != "\\")
                             for i, c in enumerate(pattern))
    try:
        return re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)
    except re.error as e:
        raise UsageError(f"bad --grep pattern {pattern!r}: {e}") from None


# ---------------------------------------------------------------- output

def _jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return list(v)  # journalctl's JSON shows binary fields as arrays of bytes
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


SHORT_OUTPUTS = ("short", "short-precise", "short-iso", "short-iso-precise",
                 "short-monotonic", "short-unix")
OUTPUTS = SHORT_OUTPUTS + ("json", "json-pretty", "json-persistlog", "export", "verbose", "cat",
                           "msgpack")
# Outputs that show a record as the journal entry it becomes (persistlog/export.py).
ENTRY_OUTPUTS = ("json", "json-pretty", "export")
# Outputs that --output-fields narrows, as journalctl's do.
FIELD_OUTPUTS = ENTRY_OUTPUTS + ("verbose", "cat")
# Fields journalctl keeps in json and export whatever --output-fields says.
ALWAYS_FIELDS = frozenset(("__CURSOR", "__REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP",
                           "_BOOT_ID"))


def _stamp(ns, iso=False, *, output=None, utc=False):
    """A CLOCK_REALTIME instant (ns) as journalctl's *output* mode prints it
    (microseconds truncated), in local time unless *utc*."""
    output = output or ("short-iso" if iso else "short")
    secs, usec = divmod(ns // 1000, 1_000_000)
    if output == "short-unix":
        return f"{secs:10d}.{usec:06d}"
    try:
        dt = datetime.fromtimestamp(secs, timezone.utc)
        if not utc:
            dt = dt.astimezone()
    except (OverflowError, OSError, ValueError):  # a time no calendar holds
        return f"@{secs}.{usec:06d}"
    if output == "short-iso":
        return dt.isoformat(timespec="seconds")
    if output == "short-iso-precise":
        return dt.replace(microsecond=usec).isoformat(timespec="microseconds")
    text = dt.strftime("%b %d %H:%M:%S")
    return f"{text}.{usec:06d}" if output == "short-precise" else text


def _monotonic(ns):
    secs, usec = divmod(ns // 1000, 1_000_000)
    return f"[{secs:5d}.{usec:06d}]"


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7f) if c not in (9, 10)}


def _printable(text, indent=None):
    """Escape control characters (a terminal escape sequence in a message is
    shown, not obeyed); with *indent*, continuation lines are indented as
    journalctl indents them, so a newline cannot forge a record line."""
    text = text.translate(_CONTROL)
    if indent is not None:
        text = text.replace("\n", "\n" + " " * indent)
    return text


def parse_output_fields(text):
    """``--output-fields=A,B``: the set of field names (journal names, as
    ``-o verbose`` shows them).

    Raises:
        UsageError: an empty or malformed name.
    """
    names = [n.strip() for n in text.split(",")]
    for n in names:
        if not _MATCH_NAME.fullmatch(n):
            raise UsageError(f"bad field name {n!r} in --output-fields: upper-case letters, "
                             "digits and '_', as journald names fields")
    return frozenset(names)


def format_bytes(n):
    """*n* bytes as systemd's format_bytes() writes a size: ``4B``, ``1.5K``, ``2.0M``
    (1024-based, one decimal truncated)."""
    for i, suffix in reversed(list(enumerate("KMGTPE", 1))):
        factor = 1024 ** i
        if n >= factor:
            return f"{n // factor}.{n * 10 // factor % 10}{suffix}"
    return f"{n}B"


def _shown_value(value):
    """A field value (bytes) as journalctl shows it: the text when it is
    UTF-8 with no control character but tab and newline, else None (shown
    as a blob)."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(c in _BLOB_CHARS for c in text):
        return None
    return text


_BLOB_CHARS = frozenset(chr(c) for c in (*range(0x20), *range(0x7f, 0xa0)) if c not in (9, 10))
_ADDRESS_FIELDS = frozenset(("__REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP"))


def _verbose_stamp(ns, utc):
    """A verbose header's time: ``Mon 2026-11-30 00:07:54.500614 UTC``."""
    secs, usec = divmod(ns // 1000, 1_000_000)
    try:
        dt = datetime.fromtimestamp(secs, timezone.utc)
        if not utc:
            dt = dt.astimezone()
    except (OverflowError, OSError, ValueError):  # a time no calendar holds
        return f"@{secs}.{usec:06d}"
    return dt.strftime("%a %Y-%m-%d %H:%M:%S") + f".{usec:06d} " + (dt.strftime("%Z") or "UTC")


def format_verbose(rec, fields, *, utc=False, output_fields=None, color=None):
    """*rec* as ``journalctl -o verbose`` shows an entry.

    A header line with the time (microseconds, local unless *utc*) and a
    cursor-like ``[i=SEQ;b=BOOT;m=MONOTONIC;t=REALTIME]`` (hexadecimal: the
    seq, the boot ID, microseconds), then each of *fields* (the journal
    entry, ``export.record_fields``; the two timestamps are in the header)
    four spaces in as NAME=value, continuation lines under the value, a
    value that is not printable UTF-8 as ``NAME=[4B blob data]``.  Only
    *output_fields* (a set of names) when given; MESSAGE bold with *color*.
    """
    boot = rec.boot_id.replace("-", "")
    lines = [f"{_verbose_stamp(rec.realtime_ns, utc)} [i={rec.seq:x};b={boot};"
             f"m={rec.monotonic_ns // 1000:x};t={rec.realtime_ns // 1000:x}]"]
    for name, value in fields:
        if name in _ADDRESS_FIELDS or (output_fields is not None and name not in output_fields):
            continue
        text = _shown_value(value)
        if text is None:
            text = f"[{format_bytes(len(value))} blob data]"
        text = text.replace("\n", "\n" + " " * (4 + len(name) + 1))
        on, off = (_HIGHLIGHT, _NORMAL) if color and name == MESSAGE else ("", "")
        lines.append(f"    {on}{name}={text}{off}")
    return "\n".join(lines)


def _cat_fields(fields, output_fields):
    """``-o cat --output-fields=``: the value of each listed field the entry
    has, one a line (control characters escaped); None when it has none of
    them, as journalctl then prints nothing for the entry.  journalctl
    walks the fields in its set's hash order; this in the entry's order."""
    values = [_printable(v.decode("utf-8", "replace")) for n, v in fields if n in output_fields]
    return "\n".join(values) if values else None


# Colours by priority, as journalctl 252 sets them (get_log_colors(),
# ansi-color.h): err and above bold red, warning bold yellow, notice bold,
# debug grey, info plain; a --grep match in the "highlight" colour, which is
# bold for err and warning, red for notice and debug.
_NORMAL, _HIGHLIGHT, _RED = "\x1b[0m", "\x1b[0;1;39m", "\x1b[0;1;31m"
_YELLOW = {"256": "\x1b[0;1;38;5;185m", "16": "\x1b[0;1;33m"}
_GREY = {"256": "\x1b[0;38;5;245m", "16": "\x1b[0;90m"}


def priority_colors(priority, mode):
    """The (on, highlight) escape sequences of a message of *priority* in
    colour *mode* ("16" or "256"); None for plain text (info, or no mode)."""
    if not mode:
        return None
    if priority <= 3:
        return _RED, _HIGHLIGHT
    if priority == 4:
        return _YELLOW[mode], _HIGHLIGHT
    if priority == 5:
        return _HIGHLIGHT, _RED
    if priority == 7:
        return _GREY[mode], _RED
    return None


def color_mode(env=None, tty=None):
    """Whether and how to colour, as systemd 252 decides: ``$SYSTEMD_COLORS``
    first (a boolean, ``16`` or ``256``; any other value is ignored), else
    none when ``$NO_COLOR`` is set (even empty), when ``$TERM`` is unset or
    ``dumb``, or when stdout and stderr are not both terminals (checked
    against journalctl 252 on a pseudo-terminal).

    Args:
        env (dict | None): the environment (default: os.environ).
        tty (bool | None): whether stdout and stderr are terminals (default: ask).

    Returns:
        str | None: "256", "16", or None for no colour.
    """
    env = os.environ if env is None else env
    forced = env.get("SYSTEMD_COLORS")
    if forced is not None:
        t = forced.strip().lower()
        if t in ("16", "256"):
            return t
        try:
            return "256" if _parse_bool(t) else None
        except argparse.ArgumentTypeError:
            pass
    if "NO_COLOR" in env or env.get("TERM", "dumb") == "dumb":
        return None
    if tty is None:
        tty = os.isatty(1) and os.isatty(2)
    return "256" if tty else None


_TAB = " " * 8  # journalctl's short modes write a tab as 8 spaces (strip_tab_ansi)


def _colored_lines(message, colors, span, indent):
    """A short mode's message in *colors* as journalctl 252 writes it
    (print_multiline): each line in the colour, continuation lines indented
    by *indent*, the --grep match *span* highlighted when it starts in the
    first line (journalctl mis-places a later one; this leaves it out)."""
    on, hl = colors
    lines = message.split("\n")
    out = []
    for i, line in enumerate(lines):
        if i == 0 and span[0] < len(line):
            s, e = span[0], min(len(line), span[1])
            text = (on + _short_text(line[:s]) + hl + _short_text(line[s:e])
                    + (on + _short_text(line[e:]) if len(line) > e else ""))
        else:
            text = on + _short_text(line)
        out.append((" " * indent if i else "") + text + _NORMAL)
    return "\n".join(out)


def _short_text(text):
    return _printable(text.replace("\t", _TAB))


def _colored(message, colors, span, indent=None):
    """*message* escaped as _printable does, in *colors* (on, highlight), the
    --grep match *span* (start, end) in the highlight colour, written as
    journalctl 252 writes it: on, text, highlight, match, on, rest, off."""
    s, e = span
    return (colors[0] + _printable(message[:s], indent) + colors[1]
            + _printable(message[s:e], indent) + colors[0] + _printable(message[e:], indent)
            + _NORMAL)


def format_record(rec, output, *, utc=False, hostname=None, region="", host=None,
                  output_fields=None, color=None, grep=None):
    """Return *rec* rendered in *output* (one of OUTPUTS) as a str, or msgpack
    and export as bytes.  The short modes print *hostname* after the time when
    given, as journalctl prints the entry's host.  json, json-pretty, export
    and verbose show the journal entry of *rec* from *region* on *host* (an
    export.Host, this machine when None), as journalctl -o json/json-pretty/
    export/verbose would; json-persistlog shows ``Record.to_dict()``.

    *output_fields* (a set of journal field names) narrows json, json-pretty,
    export (which keep ALWAYS_FIELDS too), verbose and cat, as journalctl's
    --output-fields does.  With *color* ("16" or "256", see color_mode) the
    message of the short modes and cat is coloured by priority and the match
    of *grep* (a compiled pattern) highlighted, as journalctl does on a
    terminal.
    """
    if output in ENTRY_OUTPUTS or output == "verbose" or (output == "cat" and output_fields):
        fields = export.record_fields(rec, region, host or export.Host())
        if output == "verbose":
            return format_verbose(rec, fields, utc=utc, output_fields=output_fields,
                                  color=color)
        if output == "cat":
            return _cat_fields(fields, output_fields)
        if output_fields is not None:
            fields = [(n, v) for n, v in fields if n in output_fields or n in ALWAYS_FIELDS]
        if output == "export":
            return export.encode_entry(fields)
        if output == "json":
            return json.dumps(export.json_entry(fields), ensure_ascii=False)
        return json.dumps(export.json_entry(fields), ensure_ascii=False,
                          indent="\t", separators=(",", " : "))  # journalctl's layout
    if output == "json-persistlog":
        # default=str: a writer may store msgpack types JSON lacks (a Timestamp)
        return json.dumps(_jsonable(rec.to_dict()), ensure_ascii=False, default=str)
    if output == "msgpack":
        return msgpack.packb(rec.to_dict(), use_bin_type=True)
    colors = priority_colors(rec.priority, color)
    if colors:
        m = grep.search(rec.message) if grep is not None else None
        span = m.span() if m else (0, 0)
    if output == "cat":
        return _colored(rec.message, colors, span) if colors else _printable(rec.message)
    if output == "short-monotonic":
        stamp = _monotonic(rec.monotonic_ns)
    else:
        stamp = _stamp(rec.realtime_ns, output=output, utc=utc)
    host = f" {_printable(hostname)}" if hostname else ""
    pid = f"[{rec.pid}]" if rec.pid else ""  # none for the kernel's lines, as journalctl
    prefix = f"{stamp}{host} {_printable(rec.identifier or 'unknown')}{pid}: "
    if colors:
        return prefix + _colored_lines(rec.message, colors, span, len(prefix))
    return prefix + _printable(rec.message.replace("\t", _TAB), indent=len(prefix))


class Printer:
    """Writes records to stdout, with journalctl's "-- Boot ID --" separators
    in the short modes and verbose (not with *quiet*); the other arguments
    as format_record takes them."""

    def __init__(self, output, *, utc=False, hostname=None, quiet=False, region="",
                 output_fields=None, color=None, grep=None):
        self.output = output
        self.utc = utc
        self.hostname = hostname
        self.region = region
        self.output_fields = output_fields if output in FIELD_OUTPUTS else None
        self.color = color if output in SHORT_OUTPUTS + ("cat", "verbose") else None
        self.grep = grep
        self.host = (export.Host() if output in ENTRY_OUTPUTS or output == "verbose"
                     or self.output_fields else None)
        self.separators = output in SHORT_OUTPUTS + ("verbose",) and not quiet
        self.boot = None
        self.binary = output in ("msgpack", "export")
        self.out = sys.stdout.buffer if self.binary else sys.stdout

    def __call__(self, rec):
        if self.separators and rec.boot_id != self.boot:
            if self.boot is not None:
                # as journalctl 252: 32 hex digits, bold when coloured
                on, off = (_HIGHLIGHT, _NORMAL) if self.color else ("", "")
                self.out.write(f"{on}-- Boot {rec.boot_id.replace('-', '')} --{off}\n")
            self.boot = rec.boot_id
        text = format_record(rec, self.output, utc=self.utc, hostname=self.hostname,
                             region=self.region, host=self.host,
                             output_fields=self.output_fields, color=self.color, grep=self.grep)
        if text is not None:  # None: cat of fields the record lacks
            self.out.write(text if self.binary else text + "\n")

    def flush(self):
        self.out.flush()


# -------------------------------------------------------------- commands

def cmd_append(args):
    """``append``: one record from the words of MESSAGE, or from all of stdin
    when there are none; returns the exit code."""
    facility, prio = parse_facility_priority(args.priority)
    fields = parse_fields(args.field or ())
    if facility is not None:
        if FACILITY in fields:
            raise UsageError(f"{FACILITY} given by -p and by --field")
        fields[FACILITY] = facility
    if args.message:
        message = " ".join(args.message)
    else:
        data = sys.stdin.buffer.read()
        if not data:
            return EXIT_OK  # nothing to log, as logger does with empty input
        message = data[:-1] if data.endswith(b"\n") else data
        message = message.decode("utf-8", "replace")
    with open_ring(args.region) as ring:
        seq = ring.append(message, priority=prio, identifier=args.identifier, **fields)
    if args.verbose:
        print(seq)
    return EXIT_OK


def _chunks(line, limit):
    """Split a line of bytes into pieces of at most *limit* bytes, as text."""
    if not line:
        return [""]
    return [line[i:i + limit].decode("utf-8", "replace") for i in range(0, len(line), limit)]


_LEVEL_PREFIX = re.compile(rb"<0{0,2}([0-7])>")


def split_level_prefix(line):
    """Take a ``<N>`` priority prefix off *line* (bytes), as journald reads
    one on a stream with level prefixes on (syslog_parse_priority() without
    a facility): ``<0>`` to ``<7>``, also written ``<03>`` or ``<003>``;
    anything else (``<8>``, ``<13>``, `` <3>``) is part of the message.

    Returns:
        tuple[int | None, bytes]: the priority (None without a prefix) and the rest.
    """
    m = _LEVEL_PREFIX.match(line)
    if m is None:
        return None, line
    return int(m.group(1)), line[m.end():]


#: Signals ``cat -- COMMAND`` passes on to COMMAND (systemd-cat execs COMMAND, so
#: every signal sent to it reaches the command).
FORWARDED_SIGNALS = tuple(getattr(signal, n) for n in (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGWINCH",
    "SIGCONT", "SIGPIPE"))


def _foreground_of_terminal():
    """Whether this process group is the foreground one of a controlling
    terminal (then the terminal's SIGINT and SIGQUIT reach COMMAND, which is
    in the group, without us)."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _die_like(signum):
    """End this process by *signum*, as COMMAND ended (its parent sees the
    same death as with systemd-cat, which is COMMAND), with core dumps off
    (COMMAND dumped its own); 128+N if the signal does not end us."""
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    sys.stdout.flush()
    if signum not in (signal.SIGKILL, signal.SIGSTOP):  # those have no handler to reset
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)
    return 128 + signum


_WHITESPACE = b" \t\n\r"


def cmd_cat(args):
    """``cat``: a record per line of stdin or of COMMAND's output, as
    systemd-cat's lines reach the journal (journald's stdout_stream_line()):
    a NUL ends a line as a newline does; trailing white space goes (unless
    the line is all white space); a ``<N>`` prefix sets a line's priority
    (unless ``--level-prefix=no``); a line left empty is dropped.  COMMAND
    keeps our stdin; the signals of FORWARDED_SIGNALS sent to us are passed
    on to it; its exit status becomes ours, and when a signal kills it we
    die of that signal too.  Returns the exit code."""
    prio = parse_priority(args.priority)
    err_prio = parse_priority(args.stderr_priority) if args.stderr_priority else prio
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    ident = args.identifier
    if ident is None and command:
        ident = os.path.basename(command[0])
    with open_ring(args.region) as ring:
        limit = ring.stats()["max_record"] - 1024

        def pump(stream, priority, pid=None):
            for chunk in iter(stream.readline, b""):
                for line in chunk.rstrip(b"\n").split(b"\0"):
                    p = priority
                    if line.strip(_WHITESPACE):
                        line = line.rstrip(_WHITESPACE)
                    if args.level_prefix:
                        p, line = split_level_prefix(line)
                        p = priority if p is None else p
                    if not line:
                        continue
                    for piece in _chunks(line, limit):
                        if pid is None:
                            ring.append(piece, priority=p, identifier=ident)
                        else:  # COMMAND's line: its PID, as systemd-cat's exec gives it
                            ring.append_as(pid, piece, priority=p, identifier=ident)

        if not command:
            pump(sys.stdin.buffer, prio)
            return EXIT_OK
        try:
            child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            raise CommandFailed(f"cannot run {command[0]}: {e.strerror}", 127) from None
        terminal = _foreground_of_terminal()

        def forward(signum, _frame):
            if terminal and signum in (signal.SIGINT, signal.SIGQUIT):
                return  # the terminal sent it to COMMAND's group as well
            try:
                child.send_signal(signum)
            except OSError:
                pass

        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, forward)
        t = threading.Thread(target=pump, args=(child.stderr, err_prio, child.pid), daemon=True)
        t.start()
        pump(child.stdout, prio, child.pid)
        t.join()
        rc = child.wait()
    if rc < 0:
        return _die_like(-rc)
    return rc


class CommandFailed(Exception):
    """``cat -- COMMAND`` could not run COMMAND."""

    def __init__(self, msg, code):
        super().__init__(msg)
        self.code = code


_MATCH_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")


def parse_matches(words):
    """Parse dump's ``FIELD=VALUE`` arguments as journalctl takes them: values
    of one field are ORed, different fields ANDed, and ``+`` between two
    groups ORs the groups.  Field names are journal names (as ``-o verbose``
    shows them); a ``_BOOT_ID`` value may have dashes.

    Returns:
        list[dict[str, frozenset[bytes]]]: the groups; empty when no words.

    Raises:
        UsageError: a word that is not FIELD=VALUE, or a ``+`` not between
        two matches.
    """
    groups, group = [], {}
    for w in words:
        if w == "+":
            if not group:
                raise UsageError('"+" can only be used between matches')
            groups.append(group)
            group = {}
            continue
        name, eq, value = w.partition("=")
        if not eq or not _MATCH_NAME.fullmatch(name):
            raise UsageError(f"bad match {w!r}: use FIELD=VALUE, FIELD as journald names "
                             "fields (upper-case letters, digits, '_')")
        if name == "_BOOT_ID" and len(value.replace("-", "")) == 32:
            value = value.replace("-", "").lower()
        group.setdefault(name, set()).add(value.encode("utf-8", "surrogateescape"))
    if group:
        groups.append(group)
    elif groups:
        raise UsageError('"+" can only be used between matches')
    return [{k: frozenset(v) for k, v in g.items()} for g in groups]


def match_entry(groups, fields):
    """Whether an entry's *fields* ((name, bytes) pairs) pass *groups*
    (parse_matches): some group has, for each of its fields, one of its values."""
    have = {}
    for name, value in fields:
        have.setdefault(name, set()).add(value)
    return any(all(not values.isdisjoint(have.get(name, ())) for name, values in g.items())
               for g in groups)


_BOOT_DESCRIPTOR = re.compile(
    r"(?P<id>[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})"
    r"(?P<off>[+-]\d+)?|(?P<n>[+-]?\d+)")


def parse_boot_descriptor(text):
    """Parse ``-b`` as journalctl takes it: ``ID``, ``ID+N``, ``ID-N`` (the
    boot N after or before ID), or ``N``: 0 this boot, -1 the previous, 1
    the oldest, +2 the second oldest.  IDs with or without dashes.

    Returns:
        tuple[str | None, int]: the boot ID (None for an offset alone) and
        the offset.

    Raises:
        UsageError: anything else.
    """
    m = _BOOT_DESCRIPTOR.fullmatch(text.strip())
    if not m:
        raise UsageError(f"not a boot ID or offset: {text!r} (an ID with or without dashes, "
                         "ID+N, ID-N, or N: 0 this boot, -1 the previous, 1 the oldest)")
    if m.group("n") is not None:
        return None, int(m.group("n"))
    return m.group("id"), int(m.group("off") or 0)


def _selection(args):
    """The boot dump shows: None (every boot), an offset (int), a boot ID
    (str), or (boot ID, offset) for ``-b ID±N``."""
    if args.all:
        return None
    if args.previous_boot:
        return -1
    if args.boot is not None:
        boot_id, offset = parse_boot_descriptor(args.boot)
        if boot_id is None:
            return offset
        return (boot_id, offset) if offset else boot_id
    return 0


def _resolve(ring, selection, text):
    """The selector ``Ring.records`` takes for *selection* (from _selection);
    an ID must name a boot the region has (or this boot), ``ID±N`` one N
    boots away from it.

    Raises:
        BootNotFound: no such boot; *text* is what the user typed.
    """
    if selection is None or isinstance(selection, int):
        return selection
    boot_id, offset = selection if isinstance(selection, tuple) else (selection, 0)
    boot_id = ring.resolve_boot(boot_id)
    boots = [b.boot_id for b in ring.boots()]
    if offset == 0 and (boot_id in boots or boot_id == ring.current_boot_id):
        return boot_id
    if boot_id in boots and 0 <= boots.index(boot_id) + offset < len(boots):
        return boots[boots.index(boot_id) + offset]
    what = f"boot {text}" if boot_id in boots else f"boot {boot_id}"
    raise BootNotFound(f"no {what} in {ring.path} ({len(boots)} boot(s) known; "
                       "persistlog list-boots shows them)")


def _filter(args, entry=None):
    """The test a record must pass to be shown, from dump's options; *entry*
    gives a record's journal fields for the FIELD=VALUE matches."""
    lo, hi = parse_priority_range(args.priority) if args.priority else (0, 7)
    since = parse_time(args.since) if args.since else None
    until = parse_time(args.until) if args.until else None
    if since is not None and until is not None and since > until:
        raise UsageError("--since is after --until")
    idents = frozenset(args.identifier) if args.identifier else None
    grep = compile_grep(args.grep, args.case_sensitive) if args.grep is not None else None
    groups = parse_matches(args.matches)

    def wanted(rec):
        return (lo <= rec.priority <= hi
                and (since is None or rec.realtime_ns >= since)
                and (until is None or rec.realtime_ns <= until)
                and (idents is None or rec.identifier in idents)
                and (grep is None or grep.search(rec.message) is not None)
                and (not groups or match_entry(groups, entry(rec))))
    return wanted


def _pick(recs, lines, reverse):
    """The records -n and -r select from *recs* (a list, oldest first)."""
    if lines is not None:
        head, n = lines
        if n is not None:
            recs = recs[:n] if head else (recs[-n:] if n else [])
    return recs[::-1] if reverse else recs


def cmd_dump(args):
    """``dump``: print the selected records, then follow with ``-f``; returns the exit code."""
    if args.follow and args.reverse:
        raise UsageError("-f and -r cannot be used together")
    region = os.path.abspath(args.region or default_region())
    host = []

    def entry(rec):
        if not host:
            host.append(export.Host())
        return export.record_fields(rec, region, host[0])

    wanted = _filter(args, entry)
    lines = args.lines
    if lines is None and (args.follow or args.pager_end):
        lines = (False, 10 if args.follow else 1000)  # as journalctl -f and -e
    boot = _selection(args)
    output_fields = parse_output_fields(args.output_fields) if args.output_fields else None
    grep = compile_grep(args.grep, args.case_sensitive) if args.grep is not None else None
    printer = Printer(args.output, utc=args.utc, quiet=args.quiet,
                      hostname=None if args.no_hostname else socket.gethostname(),
                      region=region, output_fields=output_fields, color=color_mode(),
                      grep=grep)
    archived = _archived_records(args, boot) if isinstance(boot, str) else None
    if archived is not None:
        return _show(args, printer, _pick([r for r in archived if wanted(r)], lines,
                                         args.reverse))
    with open_ring(args.region, readonly=True) as ring:
        boot = _resolve(ring, boot, args.boot)
        recs = list(ring.records(boot=boot))
        if args.kernel:
            recs = _with_kernel(args, ring, boot, recs)
        recs = _pick([r for r in recs if wanted(r)], lines, args.reverse)
        if not args.follow:
            return _show(args, printer, recs)
        for rec in recs:
            printer(rec)
        printer.flush()
        # after the newest shown; with -n +N, after what the region held
        last = recs[-1].seq if recs and not (lines and lines[0]) else ring.stats()["last_seq"]
        follow_boot = None if boot is None else ring.resolve_boot(boot)
        try:
            for rec in ring.follow(boot=follow_boot, since_seq=last):
                if wanted(rec):
                    printer(rec)
                    printer.flush()
        except KeyboardInterrupt:
            return EXIT_OK
    return EXIT_OK


def _with_kernel(args, ring, boot, recs):
    """*recs* (one earlier boot's records) with the kernel's lines pstore kept for that boot
    (persistlog/pstore.py), in time order: ``dump --kernel``."""
    from . import pstore
    if args.follow or boot is None:
        raise UsageError("--kernel shows one earlier boot: give -b or --previous-boot, no -f")
    boot_id = ring.resolve_boot(boot)
    dirs = args.pstore_dir or _config_setting("pstore_dirs")
    earlier = [(b.boot_id, b.first_realtime_ns) for b in ring.boots()
               if b.boot_id != ring.current_boot_id]
    kernel = pstore.for_boot(dirs, boot_id, recs, earlier)
    return sorted(recs + kernel, key=lambda r: r.monotonic_ns)


def _config_setting(name):
    from . import config
    return getattr(config.load(), name)


def _show(args, printer, recs):
    """Print *recs* (through the pager on a terminal) and journalctl's
    ``-- No entries --`` when there are none; returns the exit code: 1 when
    ``-g`` matched nothing, as journalctl and grep say so."""
    with paged(enabled=not args.no_pager and not printer.binary,
               jump_to_end=args.pager_end):
        for rec in recs:
            printer(rec)
        if not recs and not args.quiet and args.output in SHORT_OUTPUTS:
            printer.out.write("-- No entries --\n")
        printer.flush()
    return EXIT_FAIL if args.grep is not None and not recs else EXIT_OK


def _archive_dir(args):
    if args.archive_dir:
        return args.archive_dir
    from . import config
    return config.load().archive_dir


def _archived_records(args, boot_id):
    """The records of *boot_id* from its archive, if the ring has none of them.

    The daemon archives each drained boot (docs/DAEMON.md), so a boot stays
    readable after the ring has wrapped over it.  Returns None when the ring
    still holds the boot or no archive exists.
    """
    from . import archive
    from .boot import format_boot_id, parse_boot_id

    boot_id = format_boot_id(parse_boot_id(boot_id))
    try:
        with open_ring(args.region, readonly=True) as ring:
            if any(b.boot_id == boot_id and b.records for b in ring.boots()):
                return None
    except (RegionUnavailable, NotARegion, UnsupportedVersion, RegionTooSmall):
        pass
    path = archive.find(_archive_dir(args), boot_id)
    return None if path is None else list(archive.open_archive(path))


def _fmt_time(ns):
    return _stamp(ns, True) if ns else "-"


def cmd_list_boots(args):
    """``list-boots``: the boots in the region and in the archive; returns the exit code."""
    from . import archive

    with open_ring(args.region, readonly=True) as ring:
        rows = [dict(offset=b.offset, boot_id=b.boot_id, first_seq=b.first_seq,
                     last_seq=b.last_seq, records=b.records,
                     first_realtime_ns=b.first_realtime_ns,
                     last_realtime_ns=b.last_realtime_ns, where="ring")
                for b in ring.boots()]
    in_ring = {r["boot_id"] for r in rows if r["records"]}
    archived = [dict(offset=None, boot_id=a.boot_id, first_seq=a.first_seq,
                     last_seq=a.last_seq, records=a.records,
                     first_realtime_ns=a.first_realtime_ns,
                     last_realtime_ns=a.last_realtime_ns, where="archive")
                for a in archive.list_archives(_archive_dir(args)) if a.boot_id not in in_ring]
    rows = [r for r in rows if r["records"] or r["boot_id"] not in
            {a["boot_id"] for a in archived}]
    rows = archived + rows
    if args.output == "json":
        for r in rows:
            print(json.dumps(r))
        return EXIT_OK
    print(f"{'IDX':>4} {'BOOT ID':36} {'FIRST SEQ':>10} {'LAST SEQ':>10} {'RECORDS':>8} "
          f"{'FIRST ENTRY':25} {'LAST ENTRY':25} WHERE")
    for r in rows:
        idx = "-" if r["offset"] is None else r["offset"]
        print(f"{idx:>4} {r['boot_id']:36} {r['first_seq']:>10} {r['last_seq']:>10} "
              f"{r['records']:>8} {_fmt_time(r['first_realtime_ns']):25} "
              f"{_fmt_time(r['last_realtime_ns']):25} {r['where']}")
    return EXIT_OK


def cmd_stat(args):
    """``stat``: the figures of ``Ring.stats()``; returns the exit code."""
    selection = None
    if args.boot is not None:  # as dump -b takes it: N, ID, ID+N, ID-N
        boot_id, offset = parse_boot_descriptor(args.boot)
        selection = offset if boot_id is None else (boot_id, offset) if offset else boot_id
    with open_ring(args.region, readonly=True) as ring:
        st = ring.stats(boot=_resolve(ring, selection, args.boot))
        st["report"] = ring.report
    if args.output == "json":
        print(json.dumps(st))
    else:
        for k, v in st.items():
            print(f"{k}: {v}")
    return EXIT_OK


def cmd_format(args):
    """``format``: a fresh region; returns the exit code."""
    size = None
    if args.size:
        try:
            size = parse_size(args.size)
        except ValueError as e:
            raise UsageError(str(e)) from None
    print(format_region(args.region, size=size, force=args.force))
    return EXIT_OK


def _daemon_argv(argv, command="daemon"):
    """If *argv* runs ``[--region PATH] COMMAND ARGS`` (COMMAND: ``daemon`` or
    ``mirror``), that program's own argv (its options are its own, ``--help``
    included), else None."""
    region = []
    if argv[:1] == ["--region"] and len(argv) > 2:
        region, argv = argv[:2], argv[2:]
    elif argv and argv[0].startswith("--region="):
        region, argv = argv[:1], argv[1:]
    if argv[:1] != [command]:
        return None
    return region + argv[1:]


# ---------------------------------------------------------------- parser

# dump's options that take a value that may start with '-' (--since -1h).
_DASH_VALUE_OPTIONS = frozenset(("-S", "--since", "-U", "--until", "-g", "--grep",
                                 "-t", "--identifier"))


_BOOT_OPTIONS = frozenset(("-b", "--boot", "--boot-offset"))


class _Words:
    """An iterator over a list of words that can look at the next one."""

    def __init__(self, words):
        self.words, self.i = list(words), 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.i >= len(self.words):
            raise StopIteration
        self.i += 1
        return self.words[self.i - 1]

    def peek(self):
        return self.words[self.i] if self.i < len(self.words) else None


def next_is_match(words):
    """Whether the next of *words* (a _Words) is a match (FIELD=VALUE or +)."""
    w = words.peek()
    return w is not None and (w == "+" or ("=" in w and not w.startswith("-")))


def _attach_dash_values(argv):
    """Return *argv* with ``--since -1h`` written ``--since=-1h``.

    getopt, and so journalctl, takes the word after an option that needs a
    value whatever it looks like; argparse takes a word starting with '-'
    for another option.  And ``-b`` before a match (``-b FOO=x``) is ``-b``
    alone, as journalctl reads it.  Only dump's words are touched, up to
    ``--``.
    """
    i = 0
    if argv[:1] == ["--region"]:
        i = 2
    elif argv and argv[0].startswith("--region="):
        i = 1
    if argv[i:i + 1] != ["dump"]:
        return argv
    out = argv[:i + 1]
    words = _Words(argv[i + 1:])
    for w in words:
        if w == "--":
            out.append(w)
            out.extend(words)
            break
        if w in _BOOT_OPTIONS and next_is_match(words):
            w = "--boot=0"  # -b alone before a match, as journalctl reads it
        elif w in _DASH_VALUE_OPTIONS:
            value = next(words, None)
            if value is not None and value.startswith("-"):
                w = f"{w}={value}" if w.startswith("--") else w + value
            elif value is not None:
                out.append(w)
                w = value
        out.append(w)
    return out


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_USAGE, f"persistlog: {message}\n")


def build_parser():
    """Return the argparse parser of the ``persistlog`` command."""
    region = argparse.ArgumentParser(add_help=False)
    region.add_argument("--region", metavar="PATH", default=argparse.SUPPRESS,
                        help="region file or device (default: $PERSISTLOG_REGION, "
                             "/dev/persistlog0, /var/lib/persistlog/ring or "
                             "~/.local/state/persistlog/ring)")
    p = _Parser(prog="persistlog", parents=[region],
                description="Crash-surviving log ring: append records, read them back "
                            "after a crash or a reboot.",
                epilog="Exit codes: 0 ok, 1 failed, 2 usage, 3 region unusable, "
                       "4 no such boot, 130 interrupted.")
    p.add_argument("--version", action="version", version=f"persistlog {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    a = sub.add_parser("append", parents=[region], help="append one record",
                       description="Append one record: the words of MESSAGE joined by "
                                   "spaces, or all of stdin (one trailing newline dropped) "
                                   "when no MESSAGE is given.")
    a.add_argument("-p", "--priority", default="info", metavar="[FACILITY.]LEVEL",
                   help="priority, a name or 0-7, with a facility as logger takes it "
                        "(user.err, local0.notice), kept in SYSLOG_FACILITY")
    a.add_argument("-t", "--identifier", help="syslog identifier")
    a.add_argument("--field", action="append", metavar="NAME=VALUE",
                   help="a field of the record (repeatable); NAME as journald keeps it: "
                        "upper case, digits, _")
    a.add_argument("-v", "--verbose", action="store_true", help="print the record's seq")
    a.add_argument("message", nargs="*", help="the message (default: read stdin)")
    a.set_defaults(func=cmd_append)

    c = sub.add_parser("cat", parents=[region],
                       help="append each line of stdin (or of a command's output)",
                       description="Append each line of stdin, or of COMMAND's stdout and "
                                   "stderr, as systemd-cat does.  COMMAND keeps our stdin, "
                                   "gets the signals sent to us, and its exit status is "
                                   "ours (killed by a signal, we die of it too; 127 if it "
                                   "cannot run).")
    c.add_argument("-p", "--priority", default="info", help="priority (name or 0-7)")
    c.add_argument("--stderr-priority", help="priority of the command's stderr lines")
    c.add_argument("--level-prefix", type=_parse_bool, nargs="?", const=True, default=True,
                   metavar="BOOL", help="read a <N> prefix (0-7) at a line's start as its "
                   "priority, as systemd-cat does (default: yes)")
    c.add_argument("-t", "--identifier", help="syslog identifier (default: the command)")
    c.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND ARGS",
                   help="run COMMAND and append each line of its stdout and stderr")
    c.set_defaults(func=cmd_cat)

    d = sub.add_parser("dump", parents=[region], help="print records (default: this boot)",
                       usage="%(prog)s [OPTIONS] [FIELD=VALUE ...] [+ FIELD=VALUE ...]",
                       epilog="FIELD=VALUE: only records whose journal entry (-o verbose "
                              "shows it) has that value; values of one field are ORed, "
                              "different fields ANDed, '+' ORs the groups around it, as "
                              "journalctl's matches.")
    g = d.add_mutually_exclusive_group()
    g.add_argument("--previous-boot", action="store_true", help="the previous boot (-b -1)")
    g.add_argument("-b", "--boot", "--boot-offset", dest="boot", nargs="?", const="0",
                   metavar="ID[±N]|N", help="a boot: its ID (with or without dashes), "
                   "ID+N/ID-N the boot N after/before it, or an offset, 0 this boot (-b "
                   "alone), -1 the previous, 1 the oldest")
    g.add_argument("--all", action="store_true", help="every boot")
    d.add_argument("-o", "--output", default="short", choices=OUTPUTS,
                   help="json, json-pretty, export: the journal entry as journalctl prints "
                        "it (export feeds systemd-journal-remote); json-persistlog: the record")
    d.add_argument("--output-fields", metavar="FIELD,...",
                   help="only these fields in json, json-pretty, export, verbose and cat "
                        "(journal names, as -o verbose shows them)")
    d.add_argument("-n", "--lines", type=_parse_lines, nargs="?", const=(False, 10),
                   metavar="N|+N|all", help="the newest N records (-n alone: 10), +N the "
                   "oldest N")
    d.add_argument("-r", "--reverse", action="store_true", help="newest first")
    d.add_argument("-p", "--priority", help="priority or range FROM..TO (err = 0..3)")
    d.add_argument("-t", "--identifier", action="append", metavar="ID",
                   help="only records of this syslog identifier (repeatable)")
    d.add_argument("-g", "--grep", metavar="PATTERN",
                   help="only records whose message matches PATTERN (Python re); case "
                        "is ignored when PATTERN has no upper-case letter")
    d.add_argument("--case-sensitive", type=_parse_bool, nargs="?", const=True,
                   metavar="BOOL", help="make -g match case (or, =no, ignore it)")
    d.add_argument("-S", "--since", metavar="TIME", help="records at or after TIME")
    d.add_argument("-U", "--until", metavar="TIME", help="records at or before TIME")
    d.add_argument("-f", "--follow", action="store_true", help="then print new records")
    d.add_argument("-q", "--quiet", action="store_true",
                   help="no '-- No entries --' and no boot separators")
    d.add_argument("--utc", action="store_true", help="times in UTC")
    d.add_argument("--no-hostname", action="store_true",
                   help="no host name column in the short outputs")
    d.add_argument("--no-pager", action="store_true",
                   help="never pipe into a pager (one runs only when stdout is a terminal)")
    d.add_argument("-e", "--pager-end", action="store_true",
                   help="start the pager at the end (implies -n 1000)")
    d.add_argument("--kernel", action="store_true",
                   help="with the kernel's last words of that boot, as pstore kept them "
                        "(ramoops, systemd-pstore), in time order")
    d.add_argument("--pstore-dir", action="append", metavar="DIR",
                   help="where pstore files are (repeatable; default /sys/fs/pstore and "
                        "/var/lib/systemd/pstore, or pstore_dirs in /etc/persistlog.conf)")
    d.add_argument("--archive-dir", metavar="DIR",
                   help="where the daemon archives drained boots (default from "
                        "/etc/persistlog.conf, else /var/lib/persistlog/boots)")
    d.set_defaults(func=cmd_dump, matches=[])

    lb = sub.add_parser("list-boots", parents=[region], help="list the boots in the region")
    lb.add_argument("-o", "--output", default="short", choices=["short", "json"])
    lb.add_argument("--archive-dir", metavar="DIR", help="where drained boots are archived")
    lb.set_defaults(func=cmd_list_boots)

    s = sub.add_parser("stat", parents=[region], help="figures about the region")
    s.add_argument("-o", "--output", default="short", choices=["short", "json"])
    s.add_argument("-b", "--boot", metavar="ID[±N]|N", help="figures for one boot (as dump -b)")
    s.set_defaults(func=cmd_stat)

    f = sub.add_parser("format", parents=[region], help="format a region (erases it)")
    f.add_argument("--size", help="bytes for a file region, e.g. 8M")
    f.add_argument("--force", action="store_true", help="format over existing content")
    f.set_defaults(func=cmd_format)

    sub.add_parser("daemon", help="drain earlier boots into journald "
                                  "(see persistlog daemon --help)")
    sub.add_parser("mirror", help="copy the journal's entries into the ring as they arrive "
                                  "(see persistlog mirror --help)")
    return p


def _error(msg, code):
    print(f"persistlog: {msg}", file=sys.stderr)
    return code


def main(argv=None):
    """Run the command line; returns the exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    daemon_argv = _daemon_argv(argv)
    if daemon_argv is not None:
        from . import daemon
        return daemon.main(daemon_argv)
    mirror_argv = _daemon_argv(argv, "mirror")
    if mirror_argv is not None:
        from . import mirror
        return mirror.main(mirror_argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(_attach_dash_values(argv))
    if extra:
        # dump's FIELD=VALUE matches, anywhere among its options as journalctl takes them
        if getattr(args, "command", None) != "dump" or any(w.startswith("-") for w in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.matches = extra
    if not getattr(args, "command", None):
        parser.print_usage(sys.stderr)
        return EXIT_USAGE
    args.region = getattr(args, "region", None)
    warnings.simplefilter("ignore", RegionRecovered)
    try:
        return args.func(args)
    except (UsageError, InvalidBootId) as e:
        return _error(str(e), EXIT_USAGE)
    except BootNotFound as e:
        return _error(str(e), EXIT_NO_BOOT)
    except (RegionUnavailable, NotARegion, UnsupportedVersion, RegionTooSmall) as e:
        return _error(str(e), EXIT_REGION)
    except PersistlogError as e:
        return _error(str(e), EXIT_FAIL)
    except ValueError as e:  # a time or size that does not parse
        return _error(str(e), EXIT_USAGE)
    except CommandFailed as e:
        return _error(str(e), e.code)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except OSError as e:
        return _error(f"{e.filename or ''}{': ' if e.filename else ''}{e.strerror or e}",
                      EXIT_FAIL)



if __name__ == "__main__":
    sys.exit(main())
