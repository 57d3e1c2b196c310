"""Talking to systemd-journald: turning records into journal entries, sending, syncing, and
asking the journal what it already holds.

journald sets ``_BOOT_ID`` itself (to the boot that *received* an entry) and clients cannot
send fields starting with ``_``, so a drained record carries the boot that wrote it in
``PERSISTLOG_BOOT_ID``: ``journalctl PERSISTLOG_BOOT_ID=<id>`` finds a recovered boot. This is
the fallback drain; the daemon normally writes a recovered boot as a journal file of its own
(``persistlog.journalfile``), where the entries keep their own boot, time and PID.
"""

import os
import subprocess

from systemd import journal

from .errors import PersistlogError
from .export import NO_IDENTIFIER, SUMMARY_MESSAGE_ID, field_name, summary_message
from .export import field_value as _value

# libsystemd sends here and nowhere else. If the file is missing, sd_journal_sendv returns
# success and the entry is lost, so reachability is checked before anything is sent.
SOCKET = "/run/systemd/journal/socket"


class JournalUnavailable(PersistlogError):
    """journald cannot be reached, refused an entry, or could not sync."""


def entry(record, region):
    """The ``FIELD=value`` items (bytes) of the journal entry for ``record`` from ``region``.

    MESSAGE, PRIORITY, SYSLOG_IDENTIFIER ("persistlog" if the record has none); PERSISTLOG_SEQ, PERSISTLOG_BOOT_ID,
    PERSISTLOG_REGION (seqs are per region: two rings of one boot are told apart), the original
    times PERSISTLOG_REALTIME_USEC / PERSISTLOG_MONOTONIC_USEC (microseconds),
    PERSISTLOG_PID, PERSISTLOG_TID; then the record's own fields (see ``field_name``).
    """
    items = [
        b"MESSAGE=" + record.message.encode("utf-8", "surrogateescape"),
        b"PRIORITY=%d" % record.priority,
        b"PERSISTLOG_SEQ=%d" % record.seq,
        b"PERSISTLOG_BOOT_ID=" + record.boot_id.encode(),
        b"PERSISTLOG_REGION=" + region,
        b"PERSISTLOG_REALTIME_USEC=%d" % (record.realtime_ns // 1000),
        b"PERSISTLOG_MONOTONIC_USEC=%d" % (record.monotonic_ns // 1000),
        b"PERSISTLOG_PID=%d" % record.pid,
        b"PERSISTLOG_TID=%d" % record.tid,
    ]
    # Without one, libsystemd would fill in the drain daemon's own name ("python3").
    identifier = record.identifier if record.identifier is not None else NO_IDENTIFIER
    items.append(b"SYSLOG_IDENTIFIER=" + identifier.encode("utf-8", "surrogateescape"))
    for name, value in record.fields.items():
        items.append(field_name(name).encode() + b"=" + _value(value))
    return items


def sendv(items):
    """Send one entry given as ``FIELD=value`` items; raise JournalUnavailable on refusal.

    Success means journald has it queued, not that it is on disk: see ``sync``.
    """
    while True:
        try:
            journal.sendv(*items)
            return
        except InterruptedError:
            continue  # a signal (SIGTERM) came while blocked: the datagram was not sent
        except OSError as e:
            raise JournalUnavailable(f"journald refused an entry: {e.strerror or e}") from None


def send(record, region):
    """Send ``record`` of ``region`` (bytes, see ``region_field``) as one journal entry."""
    sendv(entry(record, region))


def region_field(region):
    """A region's name as the bytes of its PERSISTLOG_REGION field."""
    return os.fsencode(str(region))


def sync(timeout=60):
    """Make everything journald has received durable (``journalctl --sync``).

    journald processes all entries already queued on its socket before it answers, so after
    this returns the journal holds every entry sent before the call. ``timeout`` in seconds.
    """
    try:
        proc = subprocess.run(["journalctl", "--sync"], capture_output=True, text=True,
                              timeout=timeout)
    except FileNotFoundError:
        raise JournalUnavailable("journalctl not found: cannot sync the journal") from None
    except subprocess.TimeoutExpired:
        raise JournalUnavailable(f"journalctl --sync did not finish within {timeout} s") from None
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise JournalUnavailable(f"journalctl --sync failed: {why}")


def check_reachable():
    """Raise JournalUnavailable unless journald's socket exists and journald answers a sync."""
    if not os.path.exists(SOCKET):
        raise JournalUnavailable(f"journald is not running ({SOCKET} does not exist)")
    sync()


def _reader(**match):
    try:
        reader = journal.Reader()
    except OSError as e:
        raise JournalUnavailable(f"cannot open the journal for reading: {e.strerror or e}") from None
    reader.add_match(**match)
    return reader


def last_seq(boot_id, region, look_back=64):
    """The highest PERSISTLOG_SEQ the journal holds for ``boot_id`` from ``region``, or None.

    Entries are sent in seq order, so the answer is among the last entries of that boot; the
    last ``look_back`` are read in case entries from different journal files interleave.
    Call ``sync`` first, so that entries still queued on the socket are counted.
    """
    reader = _reader(PERSISTLOG_BOOT_ID=boot_id, PERSISTLOG_REGION=str(region))
    reader.seek_tail()
    best = None
    for _ in range(look_back):
        e = reader.get_previous()
        if not e:
            break
        try:
            seq = int(e["PERSISTLOG_SEQ"])
        except (KeyError, TypeError, ValueError):
            continue
        best = seq if best is None else max(best, seq)
    return best


def summary_sent(boot_id, region):
    """Whether the journal already holds the drain summary entry for ``boot_id`` of ``region``."""
    reader = _reader(PERSISTLOG_DRAINED_BOOT_ID=boot_id, PERSISTLOG_REGION=str(region))
    return bool(reader.get_next())


def send_summary(boot_id, records, first_seq, last_seq, lost, torn, region, overwritten=None):
    """Send the one summary entry of a drained boot: counts of records, lost,
    torn and (when the region knows it for the boot) overwritten ones; the
    figures are defined in docs/FORMAT.md, "Figures"."""
    message = summary_message(boot_id, records, first_seq, last_seq, lost, torn, overwritten)
    fields = [
        b"MESSAGE=" + message.encode(),
        b"PRIORITY=%d" % (4 if lost or torn else 6),
        b"SYSLOG_IDENTIFIER=persistlog",
        b"MESSAGE_ID=" + SUMMARY_MESSAGE_ID.encode(),
        b"PERSISTLOG_DRAINED_BOOT_ID=" + boot_id.encode(),
        b"PERSISTLOG_REGION=" + region_field(region),
        b"PERSISTLOG_RECORDS=%d" % records,
        b"PERSISTLOG_LOST=%d" % lost,
        b"PERSISTLOG_TORN=%d" % torn,
    ]
    if overwritten is not None:
        fields.append(b"PERSISTLOG_OVERWRITTEN=%d" % overwritten)
    sendv(fields)
