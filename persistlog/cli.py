"""``persistlog``: the command line, shaped like journalctl and systemd-cat.

Usage: ``persistlog [--region PATH] COMMAND [ARGS]``; ``persistlog --help``.

Exit codes:
    0   success
    1   the operation failed (a record too large, I/O error, ...)
    2   bad usage: an unknown option, a bad priority, size or time
    3   the region cannot be used: missing, not a persistlog region,
        a newer format version, too small, or cannot be opened
    4   the boot asked for is not in the region
    130 interrupted (SIGINT), except ``dump -f``, which ends with 0
    ``cat -- COMMAND`` exits with COMMAND's status (127 if it cannot run).
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import warnings
from datetime import datetime, timezone

import msgpack

from . import __version__
from .errors import (BootNotFound, InvalidBootId, NotARegion, PersistlogError, RegionTooSmall,
                     RegionUnavailable, UnsupportedVersion)
from .record import PRIORITY_NAMES
from .region import parse_size
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


def _parse_boot_offset(text):
    try:
        return int(text)
    except ValueError:
        return text  # a boot ID; checked when resolved


# ---------------------------------------------------------------- output

def _jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return list(v)  # journalctl's JSON shows binary fields as arrays of bytes
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _stamp(ns, iso):
    dt = datetime.fromtimestamp(ns / 1e9, timezone.utc).astimezone()
    if iso:
        return dt.isoformat(timespec="seconds")
    return dt.strftime("%b %d %H:%M:%S")


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7f) if c not in (9, 10)}


def _printable(text, indent=None):
    """Escape control characters (a terminal escape sequence in a message is
    shown, not obeyed); with *indent*, continuation lines are indented as
    journalctl indents them, so a newline cannot forge a record line."""
    text = text.translate(_CONTROL)
    if indent is not None:
        text = text.replace("\n", "\n" + " " * indent)
    return text


def format_record(rec, output):
    """Return *rec* rendered in *output* (short, short-iso, json, cat) as a str,
    or msgpack as bytes."""
    if output == "json":
        # default=str: a writer may store msgpack types JSON lacks (a Timestamp)
        return json.dumps(_jsonable(rec.to_dict()), ensure_ascii=False, default=str)
    if output == "msgpack":
        return msgpack.packb(rec.to_dict(), use_bin_type=True)
    if output == "cat":
        return _printable(rec.message)
    prefix = f"{_stamp(rec.realtime_ns, output == 'short-iso')} " \
             f"{_printable(rec.identifier or 'unknown')}[{rec.pid}]: "
    return prefix + _printable(rec.message, indent=len(prefix))


class Printer:
    """Writes records to stdout, with journalctl's "-- Boot ID --" separators."""

    def __init__(self, output):
        self.output = output
        self.boot = None
        self.out = sys.stdout.buffer if output == "msgpack" else sys.stdout

    def __call__(self, rec):
        if self.output in ("short", "short-iso") and rec.boot_id != self.boot:
            if self.boot is not None:
                self.out.write(f"-- Boot {rec.boot_id} --\n")
            self.boot = rec.boot_id
        text = format_record(rec, self.output)
        self.out.write(text if self.output == "msgpack" else text + "\n")

    def flush(self):
        self.out.flush()


# -------------------------------------------------------------- commands

def cmd_append(args):
    """``append``: one record from the words of MESSAGE; returns the exit code."""
    prio = parse_priority(args.priority)
    with open_ring(args.region) as ring:
        seq = ring.append(" ".join(args.message), priority=prio, identifier=args.identifier)
    if args.verbose:
        print(seq)
    return EXIT_OK


def _chunks(line, limit):
    """Split a line of bytes into pieces of at most *limit* bytes, as text."""
    if not line:
        return [""]
    return [line[i:i + limit].decode("utf-8", "replace") for i in range(0, len(line), limit)]


def cmd_cat(args):
    """``cat``: a record per line of stdin or of COMMAND's output; returns the exit code."""
    prio = parse_priority(args.priority)
    err_prio = parse_priority(args.stderr_priority) if args.stderr_priority else prio
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    ident = args.identifier
    if ident is None and command:
        ident = os.path.basename(command[0])
    with open_ring(args.region) as ring:
        limit = ring.stats()["max_record"] - 1024

        def pump(stream, priority):
            for line in iter(stream.readline, b""):
                for piece in _chunks(line.rstrip(b"\n"), limit):
                    ring.append(piece, priority=priority, identifier=ident)

        if not command:
            pump(sys.stdin.buffer, prio)
            return EXIT_OK
        try:
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            raise CommandFailed(f"cannot run {command[0]}: {e.strerror}", 127) from None
        t = threading.Thread(target=pump, args=(child.stderr, err_prio), daemon=True)
        t.start()
        pump(child.stdout, prio)
        t.join()
        rc = child.wait()
        return rc if rc >= 0 else 128 - rc


class CommandFailed(Exception):
    """``cat -- COMMAND`` could not run COMMAND."""

    def __init__(self, msg, code):
        super().__init__(msg)
        self.code = code


def _selection(args):
    if args.all:
        return None
    if args.boot_id is not None:
        return args.boot_id
    if args.previous_boot:
        return -1
    if args.boot is not None:
        return _parse_boot_offset(args.boot)
    return 0


def cmd_dump(args):
    """``dump``: print the selected records, then follow with ``-f``; returns the exit code."""
    lo, hi = parse_priority_range(args.priority) if args.priority else (0, 7)
    since = parse_time(args.since) if args.since else None
    if args.lines is not None and args.lines < 0:
        raise UsageError("-n takes a number >= 0")
    boot = _selection(args)

    def wanted(rec):
        return lo <= rec.priority <= hi and (since is None or rec.realtime_ns >= since)

    printer = Printer(args.output)
    if isinstance(boot, str):
        archived = _archived_records(args, boot)
        if archived is not None:
            return _print_selection(printer, [r for r in archived if wanted(r)], args.lines)
    with open_ring(args.region, readonly=True) as ring:
        recs = [r for r in ring.records(boot=boot) if wanted(r)]
        n = args.lines if args.lines is not None else (10 if args.follow else None)
        if n is not None:
            recs = recs[-n:] if n else []
        for rec in recs:
            printer(rec)
        printer.flush()
        if not args.follow:
            return EXIT_OK
        last = recs[-1].seq if recs else ring.stats()["last_seq"]
        follow_boot = None if boot is None else ring.resolve_boot(boot)
        try:
            for rec in ring.follow(boot=follow_boot, since_seq=last):
                if wanted(rec):
                    printer(rec)
                    printer.flush()
        except KeyboardInterrupt:
            return EXIT_OK
    return EXIT_OK


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


def _print_selection(printer, recs, lines):
    if lines is not None:
        recs = recs[-lines:] if lines else []
    for rec in recs:
        printer(rec)
    printer.flush()
    return EXIT_OK


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
    boot = _parse_boot_offset(args.boot) if args.boot is not None else None
    with open_ring(args.region, readonly=True) as ring:
        st = ring.stats(boot=boot)
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


def _daemon_argv(argv):
    """If *argv* runs ``[--region PATH] daemon ARGS``, the daemon's own argv
    (its options are its own, ``--help`` included), else None."""
    region = []
    if argv[:1] == ["--region"] and len(argv) > 2:
        region, argv = argv[:2], argv[2:]
    elif argv and argv[0].startswith("--region="):
        region, argv = argv[:1], argv[1:]
    if argv[:1] != ["daemon"]:
        return None
    return region + argv[1:]


# ---------------------------------------------------------------- parser

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

    a = sub.add_parser("append", parents=[region], help="append one record")
    a.add_argument("-p", "--priority", default="info", help="priority (name or 0-7)")
    a.add_argument("-t", "--identifier", help="syslog identifier")
    a.add_argument("-v", "--verbose", action="store_true", help="print the record's seq")
    a.add_argument("message", nargs="+", help="the message (words are joined by spaces)")
    a.set_defaults(func=cmd_append)

    c = sub.add_parser("cat", parents=[region],
                       help="append each line of stdin (or of a command's output)")
    c.add_argument("-p", "--priority", default="info", help="priority (name or 0-7)")
    c.add_argument("--stderr-priority", help="priority of the command's stderr lines")
    c.add_argument("-t", "--identifier", help="syslog identifier (default: the command)")
    c.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND ARGS",
                   help="run COMMAND and append each line of its stdout and stderr")
    c.set_defaults(func=cmd_cat)

    d = sub.add_parser("dump", parents=[region], help="print records (default: this boot)")
    g = d.add_mutually_exclusive_group()
    g.add_argument("--previous-boot", action="store_true", help="the previous boot (-b -1)")
    g.add_argument("-b", "--boot-offset", dest="boot", metavar="N",
                   help="boot offset: 0 this boot, -1 the previous, 1 the oldest")
    g.add_argument("--boot", dest="boot_id", metavar="ID", help="a boot ID")
    g.add_argument("--all", action="store_true", help="every boot")
    d.add_argument("-o", "--output", default="short",
                   choices=["short", "short-iso", "json", "cat", "msgpack"])
    d.add_argument("-n", "--lines", type=int, metavar="N", help="only the last N records")
    d.add_argument("-p", "--priority", help="priority or range FROM..TO (err = 0..3)")
    d.add_argument("--since", metavar="TIME", help="records at or after TIME")
    d.add_argument("-f", "--follow", action="store_true", help="then print new records")
    d.add_argument("--archive-dir", metavar="DIR",
                   help="where the daemon archives drained boots (default from "
                        "/etc/persistlog.conf, else /var/lib/persistlog/boots)")
    d.set_defaults(func=cmd_dump)

    lb = sub.add_parser("list-boots", parents=[region], help="list the boots in the region")
    lb.add_argument("-o", "--output", default="short", choices=["short", "json"])
    lb.add_argument("--archive-dir", metavar="DIR", help="where drained boots are archived")
    lb.set_defaults(func=cmd_list_boots)

    s = sub.add_parser("stat", parents=[region], help="figures about the region")
    s.add_argument("-o", "--output", default="short", choices=["short", "json"])
    s.add_argument("-b", "--boot", metavar="N|ID", help="figures for one boot")
    s.set_defaults(func=cmd_stat)

    f = sub.add_parser("format", parents=[region], help="format a region (erases it)")
    f.add_argument("--size", help="bytes for a file region, e.g. 8M")
    f.add_argument("--force", action="store_true", help="format over existing content")
    f.set_defaults(func=cmd_format)

    sub.add_parser("daemon", help="drain earlier boots into journald "
                                  "(see persistlog daemon --help)")
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
    parser = build_parser()
    args = parser.parse_args(argv)
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
