"""The kernel's last words: the crashed boot's kernel log kept by pstore, as journal entries.

pstore (Documentation/admin-guide/ramoops.rst, Documentation/ABI/testing/pstore) shows what a
backend such as ramoops kept across the reboot as files under /sys/fs/pstore; systemd-pstore
moves them to /var/lib/systemd/pstore (pstore.conf(5)). The files read here:

``dmesg-<backend>-<id>``
    The kernel log at an oops or panic, written by kmsg_dump: a header line such as
    ``Oops#1 Part1`` or ``Panic#2 Part1`` (reason, count, and which part: a long log is split
    into parts, Part1 the newest), then the log in syslog form, one line per record::

        <4>[   12.345678] Kernel panic - not syncing: sysrq triggered crash

    ``<N>`` is the facility times 8 plus the level (0-7) of the record, ``[sec.usec]`` its
    printk time (local_clock(): since boot, like CLOCK_MONOTONIC), possibly followed by a
    caller ID (``[    T1]``, CONFIG_PRINTK_CALLER). A line without that prefix continues the
    message above it. Files ending in ``.enc.z`` are compressed parts pstore could not
    decompress: skipped.
``console-<backend>-<id>``
    The console output of the last boot, ``[sec.usec] message`` lines without a level: kept
    only where no dmesg line has the same time and text, at level 6 (info).
``dmesg.txt``
    What systemd-pstore rebuilt from the parts: the same syslog form.

Each line becomes an entry of the boot that wrote it: ``_TRANSPORT=kernel``, ``PRIORITY`` and
``SYSLOG_FACILITY`` from ``<N>``, ``__MONOTONIC_TIMESTAMP`` the printk time, and
``__REALTIME_TIMESTAMP`` that plus the boot's realtime-minus-monotonic offset, which the boot's
own records give (each holds both clocks; ``offset_us`` takes the last record's: the one nearest
the crash, after any clock step). printk's clock and CLOCK_MONOTONIC may differ by the NTP
slew: the interleaving is as exact as that.

Which boot a dump belongs to: the newest earlier boot that had started (its first record)
before the dump's files were made -- their mtime is the crash time ramoops recorded; a copy
systemd-pstore made later still points at the newest earlier boot, the likely one. See
``owner``.
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .export import boot_id_hex, timestamps

# Level of console lines, which carry none.
CONSOLE_PRIORITY = 6

_SYSLOG_LINE = re.compile(r"^<(\d{1,3})>\[\s*(\d+)\.(\d{6})\](?:\[\s*[TC]\d+\])? ?(.*)$")
_CONSOLE_LINE = re.compile(r"^\[\s*(\d+)\.(\d{6})\](?:\[\s*[TC]\d+\])? ?(.*)$")
_HEADER = re.compile(r"^[A-Za-z]+#\d+ Part\d+$")
_MAX_DEPTH = 3


@dataclass(frozen=True)
class KernelRecord:
    """One line of the kernel log from pstore, placed in a boot's time.

    Attributes mirror ``Record`` where they mean the same, so the CLI prints both alike:
        boot_id (str): the boot it belongs to (UUID text).
        realtime_ns (int): CLOCK_REALTIME estimated from the boot's offset, ns.
        monotonic_ns (int): the printk time, ns since that boot.
        priority (int): 0-7. facility (int): syslog facility (0 = kern).
        message (str): the text.
        source (str): the pstore file it came from.
    """

    boot_id: str
    realtime_ns: int
    monotonic_ns: int
    priority: int
    facility: int
    message: str
    source: str
    seq: int = 0
    pid: int = 0
    tid: int = 0
    identifier: str = "kernel"
    fields: dict = field(default_factory=dict)

    def to_dict(self):
        """The line as a plain dict (``dump -o json-persistlog``)."""
        return {"boot_id": self.boot_id, "realtime_ns": self.realtime_ns,
                "monotonic_ns": self.monotonic_ns, "priority": self.priority,
                "facility": self.facility, "identifier": self.identifier,
                "message": self.message, "transport": "kernel", "source": self.source}

    def journal_fields(self, host):
        """The journal entry, (name, bytes) pairs, timestamps first (as
        ``export.record_fields``); ``host`` an ``export.Host``."""
        return [
            *timestamps(self.realtime_ns // 1000, self.monotonic_ns // 1000),
            ("_BOOT_ID", boot_id_hex(self.boot_id).encode()),
            *([("_MACHINE_ID", host.machine_id.encode())] if host.machine_id else []),
            ("_HOSTNAME", host.hostname.encode("utf-8", "surrogateescape")),
            ("_TRANSPORT", b"kernel"),
            ("MESSAGE", self.message.encode("utf-8", "surrogateescape")),
            ("PRIORITY", b"%d" % self.priority),
            ("SYSLOG_FACILITY", b"%d" % self.facility),
            ("SYSLOG_IDENTIFIER", b"kernel"),
            ("PERSISTLOG_PSTORE", os.fsencode(self.source)),
        ]


@dataclass(frozen=True)
class Line:
    """A parsed kernel log line: printk time (µs), priority, facility, text, file."""

    monotonic_us: int
    priority: int
    facility: int
    message: str
    source: str


def parse(text, source="", console=False):
    """The lines of one pstore file's text (str), in file order.

    Args:
        text (str): the file's content.
        source (str): its name, kept in each line.
        console (bool): a console file: ``[sec.usec] text`` lines, priority CONSOLE_PRIORITY.

    Returns:
        list of Line. Header lines (``Oops#1 Part1``) are dropped; a line that is neither a
        header nor a log line continues the previous message (or is dropped, before any).
    """
    lines = []
    for raw in text.splitlines():
        m = (_CONSOLE_LINE if console else _SYSLOG_LINE).match(raw)
        if m and console:
            secs, usecs, message = m.groups()
            lines.append(Line(int(secs) * 1_000_000 + int(usecs), CONSOLE_PRIORITY, 0,
                              message, source))
        elif m:
            prefix, secs, usecs, message = m.groups()
            lines.append(Line(int(secs) * 1_000_000 + int(usecs), int(prefix) & 7,
                              int(prefix) >> 3, message, source))
        elif _HEADER.match(raw.strip()) and not console:
            continue
        elif lines and raw.strip():
            last = lines[-1]
            lines[-1] = Line(last.monotonic_us, last.priority, last.facility,
                             last.message + "\n" + raw, last.source)
    return lines


def find(dirs):
    """The pstore files with a kernel log under ``dirs`` (paths; missing ones skipped),
    searched a few levels deep (systemd-pstore makes subdirectories). Returns Paths, sorted."""
    found = []

    def walk(d, depth):
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if e.is_dir(follow_symlinks=False) and depth < _MAX_DEPTH:
                walk(e.path, depth + 1)
            elif e.is_file() and not e.name.endswith(".enc.z") and (
                    e.name.startswith(("dmesg-", "console-")) or e.name == "dmesg.txt"):
                found.append(Path(e.path))

    for d in dirs:
        walk(d, 0)
    return sorted(set(found))


def read(dirs):
    """Every kernel log line pstore holds under ``dirs``, oldest first, each once.

    Returns:
        (list of Line, int | None): the lines (dmesg parts merged, duplicates between parts
        and with the console log dropped), and the newest file's mtime in ns (None if none).
    """
    lines, newest = [], None
    for path in find(dirs):
        try:
            text = path.read_text(errors="replace")
            mtime = path.stat().st_mtime_ns
        except OSError:
            continue
        newest = mtime if newest is None else max(newest, mtime)
        lines.extend(parse(text, str(path), console=path.name.startswith("console-")))
    seen, unique = set(), []
    # dmesg lines first, so a console line with the same time and text is the one dropped
    for line in sorted(lines, key=lambda x: Path(x.source).name.startswith("console-")):
        key = (line.monotonic_us, line.message)
        if key not in seen:
            seen.add(key)
            unique.append(line)
    unique.sort(key=lambda x: x.monotonic_us)
    return unique, newest


def offset_us(records):
    """A boot's CLOCK_REALTIME minus CLOCK_MONOTONIC in µs, from its last record (``Record``s
    of one boot, seq order), or None when there are none."""
    last = None
    for r in records:
        last = r
    return None if last is None else (last.realtime_ns - last.monotonic_ns) // 1000


def owner(newest_mtime_ns, boots):
    """The boot a dump whose newest file has mtime ``newest_mtime_ns`` (ns) belongs to.

    Args:
        newest_mtime_ns (int | None): see ``read``.
        boots (iterable of (str, int)): the earlier boots (not the current one: pstore shows
            what an earlier boot left) as (boot ID, CLOCK_REALTIME of its first record, ns).

    Returns:
        str | None: the ID of the newest boot that started before that time, or None.
    """
    if newest_mtime_ns is None:
        return None
    started = [(first, boot_id) for boot_id, first in boots if first and first <= newest_mtime_ns]
    return max(started)[1] if started else None


def kernel_records(lines, boot_id, offset):
    """``lines`` as ``KernelRecord``s of ``boot_id``, whose realtime-minus-monotonic offset is
    ``offset`` µs."""
    return [KernelRecord(boot_id, (offset + x.monotonic_us) * 1000, x.monotonic_us * 1000,
                         x.priority, x.facility, x.message, x.source) for x in lines]


def for_boot(dirs, boot_id, records, boots):
    """The kernel records pstore holds for the earlier boot ``boot_id``.

    Args:
        dirs (iterable of str): where pstore files are (``pstore_dirs``).
        boot_id (str): the boot.
        records (list of Record): its records, seq order (they give the clock offset).
        boots (iterable of (str, int)): the earlier boots, as ``owner`` takes them.

    Returns:
        list of KernelRecord: empty when pstore holds nothing, the dump is another boot's
        (``owner``), or the boot has no records (no offset to place the lines with).
    """
    if not records:
        return []
    lines, newest = read(dirs)
    if not lines or owner(newest, boots) != boot_id:
        return []
    return kernel_records(lines, boot_id, offset_us(records))
