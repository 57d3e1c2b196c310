"""The drain daemon: puts earlier boots' records from the ring into the journal, exactly once.

Run as ``persistlog daemon`` or ``python -m persistlog.daemon``; see docs/DAEMON.md.

Journal files (the default, ``journal_files = true``)
    For each boot in the ring other than the current one (oldest first) not yet marked drained,
    its records (``persistlog.export.record_fields``: each with its own boot, time and PID), the
    kernel's last words that pstore kept for it (``persistlog.pstore``) and one summary entry
    with its lost, torn and overwritten counts become one journal file, written by
    systemd-journal-remote under a temporary name and renamed into the machine's journal
    directory (``persistlog.journalfile``), where ``journalctl -b -1`` reads it. Then the boot is
    archived and marked drained, and retention applied to archives and journal files.

    Exactly once: the file's final name is fixed by boot and region, and it appears by a
    rename, complete or not at all. A boot whose file exists is not written again; a daemon
    killed before the rename leaves a temporary file, removed when the boot is written again.
    A record the journal already holds because ``--forward`` sent it while its boot was
    running (the cursor and the journal say up to which seq) is left out of the file.

    Records carrying ``PERSISTLOG_MIRROR`` are journal entries the mirror copied into the ring
    (journald has them): they are neither written nor sent back.

    When systemd-journal-remote is missing, the daemon says so once and drains as below.

Drain to journald (``journal_files = false``, or no systemd-journal-remote)
    For each boot in the ring other than the current one (oldest first) not yet marked drained,
    every record is sent to journald in seq order (``persistlog.journal.entry`` lists the
    fields), then the boot is archived (``persistlog.archive``), one summary entry with its lost
    and torn counts is sent, and the boot is marked drained.

Exactly once
    journald has no transactions: a sent entry cannot be taken back, and journald cannot say
    "entry N and nothing after it". Two facts are combined instead:

    * The drain cursor, ``<state-dir>/drain-<region, quoted>.json``, holds per boot the last
      seq known durable in the journal, and whether the boot is drained. It is advanced only
      after ``journalctl --sync`` (journald's Synchronize call) returned, and written
      atomically (write, fsync, rename, fsync the directory). It can lag the journal, never
      lead it.
    * Before resuming a boot, the daemon syncs journald -- which first processes every entry
      still queued on its socket, such as those a SIGKILLed predecessor sent just before it
      died -- and then asks the journal itself (``systemd.journal.Reader``) for the highest
      PERSISTLOG_SEQ it holds for that region and boot. Entries are sent in seq order over one
      socket, so everything up to that seq is in the journal and nothing after it is.

    Sending resumes after the larger of the two. So a daemon killed at any instant -- between a
    send and a sync, during a sync, before the cursor rename -- sends no record twice and skips
    none when started again. The cursor alone covers a journal that has since been rotated
    away or vacuumed; the journal alone covers a cursor that lags. The archive is rewritten
    whole if the kill came before the boot was marked drained, and the summary entry is sent
    only if the journal does not hold one for that boot yet.

    What it cannot cover: journald itself losing entries it had not synced (a second crash of
    the machine mid-drain). Those are sent again on the next start, as they are missing.

Without systemd (``sink``, ``--sink``)
    The sink is where drained records go: ``journald`` (all of the above), ``syslog`` or
    ``archive``; ``auto`` (the default) takes journald when its socket
    /run/systemd/journal/socket exists, else syslog when ``syslog_socket`` (/dev/log) exists,
    else archive. Neither syslog nor archive needs systemd-python.

    ``archive``: each pending boot is archived (the archive's header holds its summary:
    records, first and last seq, lost and torn counts) and marked drained; the daemon says
    where the archives went. This always works.

    ``syslog``: each record is sent over /dev/log (``persistlog.syslog``: RFC 5424 with the
    record's time, PID, identifier and fields as structured data, or RFC 3164), in seq order,
    then the boot is archived, one summary message sent and the boot marked drained. A syslog
    daemon cannot be asked what it holds, so the daemon keeps that itself: right after each
    send returns (unix(7): a datagram send on a local socket is reliable: once it returns the
    message is queued at the receiver) the record's seq is stored in a small file mapped
    shared, ``<cursor>.sent`` (``syslog.SentMark``), which survives the daemon being killed
    and is fsynced at every cursor advance. The resume point is the larger of the cursor's
    seq and that mark's. A record is never skipped. A SIGKILL landing in the instant between
    a send returning and the store into the mapping (a few bytecodes, no system call) sends
    that one record again on the next start: at most one duplicate per kill, never a loss.
    A crash of the machine loses the mark back to its last fsync, as the syslog daemon loses
    what it had not written out; those records are sent again.

Forwarding (``--forward``)
    After the drain, the current boot's records are sent as they are written, at most
    ``forward_rate`` per second, through the same cursor: the next boot's drain then sends only
    what forwarding had not.

systemd
    READY=1 once the drain is done, STATUS= with progress, WATCHDOG=1 at half of WatchdogSec,
    STOPPING=1 on SIGTERM (or SIGINT), after which the cursor is saved and the daemon exits 0.

Exit status: 0 success (or stopped by SIGTERM); 1 other persistlog error; 2 bad usage;
3 bad configuration; 4 the region cannot be opened; 5 journald unreachable or failed to sync
(nothing after the last sync is marked drained), or the syslog socket refused a message; 6 the state, archive or journal directory
cannot be written, or systemd-journal-remote failed; 7 another daemon is draining the same
region.
"""

import argparse
import os
import signal
import socket
import sys
import time
from pathlib import Path
from urllib.parse import quote

from . import archive, config as _config, export, journalfile, pstore, statefile, syslog
from .archive import ArchiveError
from .statefile import StateError
from .journalfile import JournalFileError
from .config import ConfigError
from .syslog import SyslogUnavailable
from .errors import (NotARegion, PersistlogError, RegionTooSmall, RegionUnavailable,
                     UnsupportedVersion)

try:
    from systemd import daemon as sd_daemon

    from . import journal
    from .journal import JournalUnavailable
except ImportError as e:  # systemd-python is an extra: run() says so in one line if needed
    _NO_SYSTEMD = e
    sd_daemon = None

    class JournalUnavailable(PersistlogError):
        pass
else:
    _NO_SYSTEMD = None

(EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CONFIG, EXIT_REGION, EXIT_JOURNAL, EXIT_STATE,
 EXIT_BUSY) = range(8)

# journald's socket: the sink "auto" takes journald when it exists (persistlog.journal.SOCKET).
JOURNAL_SOCKET = "/run/systemd/journal/socket"


#: ``$PERSISTLOG_TEST_KILL_AT``: the daemon SIGKILLs itself at a test point, so that a
#: test kills it at an instant its seed reproduces, not one the machine's speed picks
#: (tests/test_daemon.py): ``N`` at the Nth test point of the run, ``NAME:N`` at the Nth
#: of that name.  The names: ``delivered`` (a record handed to the sink), ``synced``
#: (the sink synced, the cursor not yet advanced), ``advanced`` (the cursor advanced),
#: ``archived``, ``summary_sent`` (not yet synced), ``summary_synced`` (the boot not yet
#: marked drained).  Unset: no test point does anything.
_KILL_NAME, _, _kill_n = (os.environ.get("PERSISTLOG_TEST_KILL_AT") or "").rpartition(":")
_KILL_AT = int(_kill_n) if _kill_n.isdigit() else 0
_points = {}


def _testpoint(name):
    """Count test point ``name``; SIGKILL this process if it is the one asked for.
    Unarmed (the variable unset), it returns at once."""
    if not _KILL_AT:
        return
    n = _points[name] = _points.get(name, 0) + 1
    total = _points[""] = _points.get("", 0) + 1
    if (n if _KILL_NAME else total) == _KILL_AT and _KILL_NAME in ("", name):
        os.kill(os.getpid(), signal.SIGKILL)


def choose_sink(cfg):
    """The sink of settings ``cfg``: its ``sink``, or for "auto" journald when journald's
    socket exists, else syslog when ``cfg.syslog_socket`` exists, else archive."""
    if cfg.sink != "auto":
        return cfg.sink
    if os.path.exists(JOURNAL_SOCKET):
        return "journald"
    if os.path.exists(cfg.syslog_socket):
        return "syslog"
    return "archive"


def _monotonic(fields):
    """Sort key of an entry's fields: its __MONOTONIC_TIMESTAMP (one boot: one clock)."""
    return int(fields[1][1])


class _Stop(Exception):
    """Raised by the SIGTERM handler to end ``Drainer.forward`` while it waits for records."""


class DaemonBusy(PersistlogError):
    """Another daemon is already draining the same region."""


def cursor_path(state_dir, region):
    """The drain cursor file of ``region`` (its absolute path, quoted) under ``state_dir``."""
    return Path(state_dir) / f"drain-{quote(str(region), safe='')}.json"


class Cursor:
    """The durable drain cursor of one region: per boot, the last seq known to be in the
    journal (synced) and whether the boot is drained. See the module docstring.

    Holds an exclusive lock (``<cursor>.lock``) while open: two daemons draining one region
    would each send every record.
    """

    def __init__(self, state_dir, region):
        self.path = cursor_path(state_dir, region)
        self._lock = statefile.lock(self.path, lambda lock: DaemonBusy(
            f"another persistlog daemon is draining {region} (it holds {lock})"))
        self._boots = statefile.load(self.path, "the drain cursor")
        if self._boots is None:
            self._boots = {}
        elif not isinstance(self._boots, dict):
            raise StateError(f"cannot read the drain cursor {self.path}: not a JSON object")

    def last_seq(self, boot_id):
        """The last seq of ``boot_id`` known durable in the journal, 0 if none."""
        return self._boots.get(boot_id, {}).get("last_seq", 0)

    def drained(self, boot_id):
        """Whether ``boot_id`` was drained completely (records, archive, summary)."""
        return self._boots.get(boot_id, {}).get("drained", False)

    def advance(self, boot_id, seq):
        """Record that every seq of ``boot_id`` up to ``seq`` is durable in the journal; saved."""
        if seq > self.last_seq(boot_id):
            self._boots.setdefault(boot_id, {})["last_seq"] = seq
            self.save()

    def flag(self, boot_id, name):
        """Whether flag ``name`` (str) of ``boot_id`` is set (see ``set_flag``)."""
        return self._boots.get(boot_id, {}).get(name, False)

    def set_flag(self, boot_id, name):
        """Set flag ``name`` of ``boot_id`` (such as "summary_sent"); saved."""
        self._boots.setdefault(boot_id, {})[name] = True
        self.save()

    def mark_drained(self, boot_id, keep):
        """Mark ``boot_id`` drained and forget boots no longer in ``keep`` (IDs); saved."""
        self._boots.setdefault(boot_id, {})["drained"] = True
        for b in [b for b in self._boots if b not in keep]:
            del self._boots[b]
        self.save()

    def save(self):
        """Write the cursor atomically and durably (``persistlog.statefile``)."""
        statefile.save(self.path, self._boots, "the drain cursor", indent=1, sort_keys=True)


class Notifier:
    """sd_notify messages: STATUS= at most once a second, WATCHDOG=1 at half of WatchdogSec.
    Does nothing when not started by systemd (no $NOTIFY_SOCKET)."""

    def __init__(self):
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET")) and sd_daemon is not None
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        ok = usec and usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.watchdog_s = int(usec) / 2e6 if ok else None
        self._last_ping = self._last_status = 0.0

    def send(self, *lines):
        if self.enabled:
            sd_daemon.notify("\n".join(lines))

    def status(self, text, force=False):
        now = time.monotonic()
        if force or now - self._last_status >= 1.0:
            self._last_status = now
            self.send(f"STATUS={text}")
        self.tick()

    def tick(self):
        """Ping the watchdog if half its interval has passed."""
        if self.watchdog_s is not None:
            now = time.monotonic()
            if now - self._last_ping >= self.watchdog_s:
                self._last_ping = now
                self.send("WATCHDOG=1")


class Progress:
    """Drain progress on stderr: a line redrawn in place on a terminal, otherwise one line
    per boot at its start and end."""

    def __init__(self, stream=sys.stderr, quiet=False):
        self.stream = stream
        self.quiet = quiet
        self.tty = stream.isatty()
        self._last = 0.0

    def say(self, text):
        if not self.quiet:
            if self.tty:
                self.stream.write("\r\033[K")
            print(text, file=self.stream, flush=True)

    def update(self, boot_id, done, total):
        if self.quiet or not self.tty or not total:
            return
        now = time.monotonic()
        if now - self._last >= 0.1 or done == total:
            self._last = now
            width = 30
            fill = width * done // total
            self.stream.write(f"\r{boot_id[:8]} [{'#' * fill}{'.' * (width - fill)}] "
                              f"{done}/{total}")
            self.stream.flush()


class Drainer:
    """Drains one open ring; see the module docstring for the protocol."""

    def __init__(self, ring, cfg, notifier=None, progress=None, remote=None, sink="journald"):
        self.ring = ring
        self.cfg = cfg
        self.sink = sink  # "journald", "syslog" or "archive" (choose_sink)
        # systemd-journal-remote when recovered boots become journal files, else None
        self.remote = remote
        self.host = export.Host(strict=True) if remote else None
        self.journal_dir = journalfile.directory(cfg.journal_dir, _config.Config.journal_dir)
        self.region = os.path.abspath(ring.path)
        self.region_field = os.fsencode(self.region)  # as journal.region_field
        self.cursor = Cursor(cfg.state_dir, self.region)
        self.sender = self.mark = None
        if sink == "syslog":
            self.sender = syslog.Sender(cfg.syslog_socket)
            self.mark = syslog.SentMark(self.cursor.path.with_name(self.cursor.path.name + ".sent"))
            self.hostname = socket.gethostname()
        self.notify = notifier or Notifier()
        self.progress = progress or Progress(quiet=True)
        self.stopping = False
        self._interruptible = False  # True only while waiting for the ring in forward()
        self.sent = 0  # records sent by this process, all boots

    def stop(self, *_):
        """Signal handler: finish the record in hand, sync, save the cursor, return."""
        self.stopping = True
        if self._interruptible:
            raise _Stop

    def resume_point(self, boot_id):
        """The seq after which ``boot_id`` resumes: the larger of the cursor's and the
        journal's (journald synced first, so a killed predecessor's queued entries count), or
        for the syslog sink the sent mark's."""
        if self.sink == "syslog":
            return max(self.cursor.last_seq(boot_id), self.mark.seq(boot_id))
        if self.sink != "journald":
            return self.cursor.last_seq(boot_id)
        in_journal = journal.last_seq(boot_id, self.region) or 0
        return max(self.cursor.last_seq(boot_id), in_journal)

    def earlier_boots(self):
        """The ring's boots but the current one, as ``pstore.owner`` takes them."""
        current = self.ring.current_boot_id
        return [(b.boot_id, b.first_realtime_ns) for b in self.ring.boots()
                if b.boot_id != current]

    def pending_boots(self):
        """Earlier boots of the ring not yet drained, oldest first."""
        current = self.ring.current_boot_id
        return [b for b in self.ring.boots()
                if b.boot_id != current and not self.cursor.drained(b.boot_id)]

    def drain(self):
        """Drain every pending boot; returns how many were drained completely (stops early
        if ``stopping``)."""
        if self.sink == "journald" and self.remote is None:
            journal.check_reachable()
        drained = 0
        for boot in self.pending_boots():
            if self.stopping:
                break
            if self.sink == "archive":
                pass
            elif self.remote is not None:
                if not self.write_boot_file(boot.boot_id):
                    break
            elif not self.send_boot(boot.boot_id, boot.records):
                break
            self.finish_boot(boot.boot_id)
            drained += 1
        return drained

    def journal_file(self, boot_id):
        """The path of the journal file of an earlier boot ``boot_id`` from this region."""
        return journalfile.final_path(self.journal_dir, self.host.machine_id, boot_id,
                                      self.region)

    def write_boot_file(self, boot_id):
        """Write an earlier boot as one journal file (see the module docstring), unless its
        file is already there. Returns False if stopped by a signal (nothing is renamed then);
        raises JournalFileError."""
        final = self.journal_file(boot_id)
        if final.exists():
            self.progress.say(f"persistlog: boot {boot_id}: {final} already written")
            return True
        resume = self.resume_point(boot_id)
        every = list(self.ring.records(boot=boot_id))
        records = [r for r in every if r.seq > resume]
        self.notify.tick()
        entries = [export.record_fields(r, self.region, self.host) for r in records
                   if not export.is_mirrored(r)]
        kernel = pstore.for_boot(self.cfg.pstore_dirs, boot_id, every, self.earlier_boots())
        entries.extend(k.journal_fields(self.host) for k in kernel)
        mirrored = any(export.is_mirrored(r) for r in every)
        rescued = self.rescued_entries(every, boot_id) if mirrored else []
        entries.extend(rescued)
        entries.sort(key=_monotonic)
        self.notify.tick()
        entries.append(self.summary_entry(boot_id, entries,
                                          rescued=len(rescued) if mirrored else None,
                                          records=every))
        self.progress.say(f"persistlog: writing boot {boot_id} after seq {resume} to {final}")
        started = time.monotonic()
        try:
            journalfile.write(final, map(export.encode_entry, entries), self.remote,
                              expect=len(entries), tick=self.notify.tick)
        except JournalFileError:
            if self.stopping:  # SIGTERM reached journal-remote too: it stopped short
                return False
            raise
        if records:
            self.cursor.advance(boot_id, records[-1].seq)
        self.sent += len(entries) - 1 - len(kernel) - len(rescued)
        elapsed = time.monotonic() - started
        self.progress.say(f"persistlog: boot {boot_id}: {len(entries)} entries written"
                          + (f" ({len(kernel)} from pstore)" if kernel else "")
                          + (f" ({len(rescued)} rescued from the mirror)" if rescued else "")
                          + (f", {len(entries) / elapsed:.0f} entries/s" if elapsed else ""))
        self.notify.status(f"Wrote boot {boot_id}: {len(entries)} entries")
        return True

    def rescued_entries(self, records, boot_id):
        """The journal entries of ``boot_id`` that the mirror kept in the ring and the on-disk
        journal lacks (``persistlog.rescue``), as export-format pairs marked
        ``PERSISTLOG_RESCUED=1`` (so the mirror never mirrors them again). A journal that cannot
        be read costs the rescue, never the drain: the daemon says so and writes the rest."""
        from . import rescue
        from .mirror import JournalError
        try:
            found = rescue.rescue_boot(records, boot_id, self.cfg.mirror_directory)
        except (ImportError, JournalError, OSError) as e:
            self.progress.say(f"persistlog: boot {boot_id}: cannot compare the mirror's "
                              f"records with the journal on disk ({e}); none rescued")
            return []
        return [rescue.export_fields(e, self.host.machine_id) + [("PERSISTLOG_RESCUED", b"1")]
                for e in found]

    def summary_entry(self, boot_id, entries, rescued=None, records=()):
        """The boot's summary entry, timed 1 µs after the last of ``entries`` (its
        ``record_fields``, sorted by time) so it comes last; the fields of
        ``export.summary_fields``.  With no entry to write (every record of the boot
        mirrored from a journal that has them, or drained before), 1 µs after the last of
        the boot's ``records`` in the ring; with none of those either, at the boot's
        registration in the boot table.  Never "now": a summary stamped at the drain's time
        would put the crashed boot after the current one in ``journalctl --list-boots``."""
        if entries:
            last = dict(entries[-1][:2])
            realtime = int(last["__REALTIME_TIMESTAMP"]) + 1
            monotonic = int(last["__MONOTONIC_TIMESTAMP"]) + 1
        elif records:
            last = max(records, key=lambda r: r.monotonic_ns)
            realtime, monotonic = last.realtime_ns // 1000 + 1, last.monotonic_ns // 1000 + 1
        else:
            boot = next((b for b in self.ring.boots() if b.boot_id == boot_id), None)
            start = boot.first_realtime_ns if boot is not None else 0
            realtime, monotonic = (start or time.time_ns()) // 1000, 0
        return [("__REALTIME_TIMESTAMP", b"%d" % realtime),
                ("__MONOTONIC_TIMESTAMP", b"%d" % monotonic),
                ("_BOOT_ID", export.boot_id_hex(boot_id).encode()),
                ("_MACHINE_ID", self.host.machine_id.encode()),
                ("_HOSTNAME", self.host.hostname.encode("utf-8", "surrogateescape")),
                ("_TRANSPORT", export.TRANSPORT.encode()),
                *export.summary_fields(boot_id, self.region, self.ring.stats(boot=boot_id),
                                       rescued)]

    def send_boot(self, boot_id, total=None):
        """Send an earlier boot's records after its resume point. Returns False if stopped by
        a signal (what was sent is synced and in the cursor either way)."""
        resume = self.resume_point(boot_id)
        self.progress.say(f"persistlog: draining boot {boot_id} after seq {resume}")
        if self.mark is not None:
            self.mark.begin(boot_id, resume)
        started = time.monotonic()
        done, last = self._send(boot_id, self.ring.records(boot=boot_id, since_seq=resume),
                                resume, total=total)
        elapsed = time.monotonic() - started
        self.progress.say(f"persistlog: boot {boot_id}: {done} records sent, up to seq {last}"
                          + (f", {done / elapsed:.0f} records/s" if done and elapsed else ""))
        return not self.stopping

    def _send(self, boot_id, records, after, total=None, rate=None):
        """Send ``records`` of ``boot_id`` with a seq above ``after`` in order, at most ``rate``
        per second; sync and advance the cursor every ``sync_every`` records and at the end,
        also when stopped or failing. Returns (records sent, last seq sent or ``after``)."""
        last = after
        pending = done = 0
        started = time.monotonic()
        try:
            for rec in records:
                self._interruptible = False
                if self.stopping:
                    break
                if rec.seq <= last:
                    continue
                if export.is_mirrored(rec):  # journald has it: the mirror copied it from there
                    last = rec.seq
                    continue
                if rate:
                    delay = started + done / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                self.deliver(rec)
                _testpoint("delivered")
                last = rec.seq
                pending += 1
                done += 1
                if pending >= self.cfg.sync_every:
                    self.commit(boot_id, last)
                    pending = 0
                if done % 256 == 0:
                    self.progress.update(boot_id, done, total)
                    self.notify.status(f"Sending boot {boot_id}: {done} records sent")
                self._interruptible = rate is not None
        except _Stop:
            pass
        finally:
            self._interruptible = False
            self.sent += done
            if pending:
                self.commit(boot_id, last)
        return done, last

    def deliver(self, rec):
        """Send one record to the sink: an entry to journald, or a message to syslog after
        which its seq is stored in the sent mark at once (module docstring)."""
        if self.sender is None:
            journal.send(rec, self.region_field)
            return
        message = syslog.record_message(rec, self.region, self.hostname, self.cfg.syslog_format)
        self.sender.send(message, self.mark.set, rec.seq)

    def commit(self, boot_id, seq):
        """Make what was sent durable in the journal (or the syslog sent mark), then advance
        the cursor to ``seq``."""
        if self.mark is not None:
            self.mark.flush()
        else:
            journal.sync()
        _testpoint("synced")
        self.cursor.advance(boot_id, seq)
        _testpoint("advanced")
        self.notify.tick()

    def finish_boot(self, boot_id):
        """Archive the boot, send its summary entry once, mark it drained, apply retention."""
        st = self.ring.stats(boot=boot_id)
        archive.write(self.cfg.archive_dir, boot_id, self.ring.records(boot=boot_id),
                      lost=st["lost"], torn=st["torn"], overwritten=st["overwritten"],
                      region=self.region)
        _testpoint("archived")
        path = archive.path_for(self.cfg.archive_dir, boot_id)
        if self.sink == "archive":
            self.progress.say(f"persistlog: boot {boot_id}: archived in {path}")
        elif self.sink == "syslog":
            if not self.cursor.flag(boot_id, "summary_sent"):
                self.sender.send(syslog.summary_message_bytes(
                    boot_id, st, self.region, self.hostname, self.cfg.syslog_format))
                self.cursor.set_flag(boot_id, "summary_sent")
        elif self.remote is None and not journal.summary_sent(boot_id, self.region):
            journal.send_summary(boot_id, st["records"], st["first_seq"], st["last_seq"],
                                 st["lost"], st["torn"], self.region, st["overwritten"])
            _testpoint("summary_sent")
            journal.sync()
        _testpoint("summary_synced")
        self.cursor.mark_drained(boot_id, keep={b.boot_id for b in self.ring.boots()})
        for p in archive.prune(self.cfg.archive_dir, self.cfg.archive_keep,
                               self.cfg.archive_max_bytes):
            self.progress.say(f"persistlog: removed old archive {p}")
        if self.remote is not None:
            for p in journalfile.prune(self.journal_file(boot_id).parent, self.cfg.journal_keep,
                                       self.cfg.journal_max_bytes):
                self.progress.say(f"persistlog: removed old journal file {p}")

    def forward(self):
        """Send the current boot's records as they are written, until stopped.

        ``Ring.follow`` yields them in seq order and waits a moment for a seq that a writer
        has reserved but not yet committed, so a record is not passed over for good (the
        cursor could then never go back for it). While it waits, SIGTERM ends it with _Stop
        (raised only there, never mid-send), and SIGALRM keeps the watchdog fed.
        """
        current = self.ring.current_boot_id
        if self.sink == "journald" and self.remote is not None:
            journal.check_reachable()  # the drain wrote files and has not asked yet
        after = self.resume_point(current)
        if self.mark is not None:
            self.mark.begin(current, after)
        self.progress.say(f"persistlog: forwarding boot {current} after seq {after}")
        if self.notify.watchdog_s:
            signal.signal(signal.SIGALRM, lambda *_: self.notify.tick())
            signal.setitimer(signal.ITIMER_REAL, self.notify.watchdog_s, self.notify.watchdog_s)
        self.notify.status(f"Forwarding boot {current}", force=True)
        self._interruptible = True
        try:
            self._send(current, self.ring.follow(boot=current, since_seq=after,
                                                 interval=self.cfg.forward_poll),
                       after, rate=self.cfg.forward_rate)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def idle(self):
        """Wait for SIGTERM, pinging the watchdog."""
        while not self.stopping:
            self._idle(0.5)

    def _idle(self, seconds):
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            self.notify.tick()
            time.sleep(min(0.1, seconds))


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="persistlog daemon",
        description="Put earlier boots' records from the ring into the journal exactly once "
                    "(each boot a journal file of its own, or sent to systemd-journald), "
                    "archive them, and optionally forward the current boot.",
        epilog="Exit status: 0 ok, 1 error, 2 usage, 3 configuration, 4 region, "
               "5 journald or syslog unreachable, 6 state, archive or journal directory, 7 region busy.")
    p.add_argument("--config", metavar="PATH",
                   help=f"TOML settings file (default {_config.DEFAULT_CONFIG}, if present)")
    p.add_argument("--region", metavar="PATH", help="the ring (default: persistlog's default)")
    p.add_argument("--archive-dir", metavar="DIR", help="where drained boots are archived")
    p.add_argument("--state-dir", metavar="DIR", help="where the drain cursor is kept")
    p.add_argument("--once", action="store_true", help="drain, then exit")
    p.add_argument("--forward", action="store_true", default=None,
                   help="after the drain, forward the current boot's records as they arrive")
    p.add_argument("--sync-every", type=int, metavar="N", help="records between journal syncs")
    p.add_argument("--journal-files", action=argparse.BooleanOptionalAction, default=None,
                   help="write each earlier boot as a journal file of its own through "
                        "systemd-journal-remote (default), or send its records to journald")
    p.add_argument("--sink", choices=_config.SINKS,
                   help="where drained records go (default auto: journald when it runs, else "
                        "syslog when /dev/log exists, else archive only)")
    p.add_argument("--journal-dir", metavar="DIR",
                   help="where journal files go, in DIR/<machine-id>/ (default /var/log/journal)")
    p.add_argument("--pstore-dir", action="append", metavar="DIR",
                   help="where pstore files are (repeatable; default /sys/fs/pstore and "
                        "/var/lib/systemd/pstore)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p.parse_args(argv)


def run(args):
    """Run the daemon with parsed ``args``; returns the exit status. Raises PersistlogError."""
    import persistlog

    cfg = _config.load(args.config).with_overrides(
        region=args.region, archive_dir=args.archive_dir, state_dir=args.state_dir,
        forward=args.forward, sync_every=args.sync_every, journal_files=args.journal_files,
        journal_dir=args.journal_dir, sink=args.sink,
        pstore_dirs=tuple(args.pstore_dir) if args.pstore_dir else None)
    _config.check(cfg)
    sink = choose_sink(cfg)
    if sink == "journald" and _NO_SYSTEMD is not None:
        raise PersistlogError(f"systemd-python is not installed ({_NO_SYSTEMD}); pip install "
                              "systemd-python (or 'persistlog[daemon]'), or use --sink syslog "
                              "or archive")
    if sink == "archive" and cfg.forward:
        raise ConfigError("forward needs a sink that takes records (journald or syslog), "
                          "not archive")
    notifier = Notifier()
    remote = None
    if sink == "journald" and cfg.journal_files:
        remote = journalfile.find_remote(cfg.journal_remote or None)
        if remote is None:
            print(f"persistlog daemon: systemd-journal-remote not found "
                  f"({cfg.journal_remote or ' or '.join(journalfile.REMOTE_PATHS)}): earlier "
                  f"boots are sent to journald instead, stamped with this boot and time; install "
                  f"it (Debian: systemd-journal-remote) for journal files of their own",
                  file=sys.stderr, flush=True)
    with persistlog.open(cfg.region, readonly=True) as ring:
        drainer = Drainer(ring, cfg, notifier, Progress(quiet=args.quiet), remote, sink)
        signal.signal(signal.SIGTERM, drainer.stop)
        signal.signal(signal.SIGINT, drainer.stop)
        notifier.status("Draining earlier boots", force=True)
        drained = drainer.drain()
        if drainer.stopping:
            notifier.send("STOPPING=1")
            return EXIT_OK
        summary = f"Drained {drained} boot(s), {drainer.sent} records"
        if sink == "archive" and not args.quiet:
            print(f"persistlog daemon: no journald or syslog to drain to (sink archive): "
                  f"{drained} boot(s) archived in {cfg.archive_dir}", file=sys.stderr, flush=True)
        notifier.send("READY=1", f"STATUS={summary}")
        if args.once:
            return EXIT_OK
        if cfg.forward:
            drainer.forward()
        else:
            drainer.idle()
        notifier.send("STOPPING=1")
    return EXIT_OK


def main(argv=None):
    """Entry point of ``persistlog daemon``; ``argv`` without the program name. Returns the
    exit status (see the module docstring) after printing any error as one line."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except ConfigError as e:
        code, msg = EXIT_CONFIG, str(e)
    except (RegionUnavailable, NotARegion, RegionTooSmall, UnsupportedVersion) as e:
        code, msg = EXIT_REGION, str(e)
    except JournalUnavailable as e:
        code, msg = EXIT_JOURNAL, f"{e}; nothing after the last sync is marked drained"
    except SyslogUnavailable as e:
        code, msg = EXIT_JOURNAL, f"{e}; nothing unsent is marked drained"
    except (StateError, ArchiveError, JournalFileError, export.ExportError) as e:
        code, msg = EXIT_STATE, str(e)
    except DaemonBusy as e:
        code, msg = EXIT_BUSY, str(e)
    except PersistlogError as e:
        code, msg = EXIT_ERROR, str(e)
    print(f"persistlog daemon: error: {msg}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
