"""The drain daemon: sends earlier boots' records from the ring to systemd-journald, exactly once.

Run as ``persistlog daemon`` or ``python -m persistlog.daemon``; see docs/DAEMON.md.

Drain
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

Forwarding (``--forward``)
    After the drain, the current boot's records are sent as they are written, at most
    ``forward_rate`` per second, through the same cursor: the next boot's drain then sends only
    what forwarding had not.

systemd
    READY=1 once the drain is done, STATUS= with progress, WATCHDOG=1 at half of WatchdogSec,
    STOPPING=1 on SIGTERM (or SIGINT), after which the cursor is saved and the daemon exits 0.

Exit status: 0 success (or stopped by SIGTERM); 1 other persistlog error; 2 bad usage;
3 bad configuration; 4 the region cannot be opened; 5 journald unreachable or failed to sync
(nothing after the last sync is marked drained); 6 the state or archive directory cannot be
written; 7 another daemon is draining the same region.
"""

import argparse
import fcntl
import json
import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import quote

from . import archive, config as _config
from .archive import ArchiveError
from .config import ConfigError
from .errors import (NotARegion, PersistlogError, RegionTooSmall, RegionUnavailable,
                     UnsupportedVersion)

try:
    from systemd import daemon as sd_daemon

    from . import journal
    from .journal import JournalUnavailable
except ImportError as e:  # systemd-python is an extra: main() says so in one line
    _NO_SYSTEMD = e

    class JournalUnavailable(PersistlogError):
        pass
else:
    _NO_SYSTEMD = None

(EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CONFIG, EXIT_REGION, EXIT_JOURNAL, EXIT_STATE,
 EXIT_BUSY) = range(8)


class _Stop(Exception):
    """Raised by the SIGTERM handler to end ``Drainer.forward`` while it waits for records."""


class StateError(PersistlogError):
    """The drain cursor cannot be read or written."""


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
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            os.makedirs(self.path.parent, mode=0o750, exist_ok=True)
            self._lock = open(lock, "a")
        except OSError as e:
            raise StateError(f"cannot open {lock}: {e.strerror or e}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise DaemonBusy(f"another persistlog daemon is draining {region} "
                             f"(it holds {lock})") from None
        try:
            self._boots = json.loads(self.path.read_text())
        except FileNotFoundError:
            self._boots = {}
        except (OSError, ValueError) as e:
            raise StateError(f"cannot read the drain cursor {self.path}: {e}") from None

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

    def mark_drained(self, boot_id, keep):
        """Mark ``boot_id`` drained and forget boots no longer in ``keep`` (IDs); saved."""
        self._boots.setdefault(boot_id, {})["drained"] = True
        for b in [b for b in self._boots if b not in keep]:
            del self._boots[b]
        self.save()

    def save(self):
        """Write the cursor atomically and durably."""
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            with open(tmp, "w") as f:
                json.dump(self._boots, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            archive.fsync_dir(self.path.parent)
        except OSError as e:
            raise StateError(f"cannot write the drain cursor {self.path}: {e.strerror or e}") from None


class Notifier:
    """sd_notify messages: STATUS= at most once a second, WATCHDOG=1 at half of WatchdogSec.
    Does nothing when not started by systemd (no $NOTIFY_SOCKET)."""

    def __init__(self):
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
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

    def __init__(self, ring, cfg, notifier=None, progress=None):
        self.ring = ring
        self.cfg = cfg
        self.region = os.path.abspath(ring.path)
        self.region_field = journal.region_field(self.region)
        self.cursor = Cursor(cfg.state_dir, self.region)
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
        journal's (journald synced first, so a killed predecessor's queued entries count)."""
        in_journal = journal.last_seq(boot_id, self.region) or 0
        return max(self.cursor.last_seq(boot_id), in_journal)

    def pending_boots(self):
        """Earlier boots of the ring not yet drained, oldest first."""
        current = self.ring.current_boot_id
        return [b for b in self.ring.boots()
                if b.boot_id != current and not self.cursor.drained(b.boot_id)]

    def drain(self):
        """Drain every pending boot; returns how many were drained completely (stops early
        if ``stopping``)."""
        journal.check_reachable()
        drained = 0
        for boot in self.pending_boots():
            if not self.send_boot(boot.boot_id, boot.records):
                break
            self.finish_boot(boot.boot_id)
            drained += 1
        return drained

    def send_boot(self, boot_id, total=None):
        """Send an earlier boot's records after its resume point. Returns False if stopped by
        a signal (what was sent is synced and in the cursor either way)."""
        resume = self.resume_point(boot_id)
        self.progress.say(f"persistlog: draining boot {boot_id} after seq {resume}")
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
                if rate:
                    delay = started + done / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                journal.send(rec, self.region_field)
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

    def commit(self, boot_id, seq):
        """Make what was sent durable in the journal, then advance the cursor to ``seq``."""
        journal.sync()
        self.cursor.advance(boot_id, seq)
        self.notify.tick()

    def finish_boot(self, boot_id):
        """Archive the boot, send its summary entry once, mark it drained, apply retention."""
        st = self.ring.stats(boot=boot_id)
        archive.write(self.cfg.archive_dir, boot_id, self.ring.records(boot=boot_id),
                      lost=st["lost"], torn=st["torn"], region=self.region)
        if not journal.summary_sent(boot_id, self.region):
            journal.send_summary(boot_id, st["records"], st["first_seq"], st["last_seq"],
                                 st["lost"], st["torn"], self.region, st["overwritten"])
            journal.sync()
        self.cursor.mark_drained(boot_id, keep={b.boot_id for b in self.ring.boots()})
        for p in archive.prune(self.cfg.archive_dir, self.cfg.archive_keep,
                               self.cfg.archive_max_bytes):
            self.progress.say(f"persistlog: removed old archive {p}")

    def forward(self):
        """Send the current boot's records as they are written, until stopped.

        ``Ring.follow`` yields them in seq order and waits a moment for a seq that a writer
        has reserved but not yet committed, so a record is not passed over for good (the
        cursor could then never go back for it). While it waits, SIGTERM ends it with _Stop
        (raised only there, never mid-send), and SIGALRM keeps the watchdog fed.
        """
        current = self.ring.current_boot_id
        after = self.resume_point(current)
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
        description="Drain earlier boots' records from the ring into systemd-journald, exactly "
                    "once, archive them, and optionally forward the current boot.",
        epilog="Exit status: 0 ok, 1 error, 2 usage, 3 configuration, 4 region, "
               "5 journald unreachable, 6 state or archive directory, 7 region busy.")
    p.add_argument("--config", metavar="PATH",
                   help=f"TOML settings file (default {_config.DEFAULT_CONFIG}, if present)")
    p.add_argument("--region", metavar="PATH", help="the ring (default: persistlog's default)")
    p.add_argument("--archive-dir", metavar="DIR", help="where drained boots are archived")
    p.add_argument("--state-dir", metavar="DIR", help="where the drain cursor is kept")
    p.add_argument("--once", action="store_true", help="drain, then exit")
    p.add_argument("--forward", action="store_true", default=None,
                   help="after the drain, forward the current boot's records as they arrive")
    p.add_argument("--sync-every", type=int, metavar="N", help="records between journal syncs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p.parse_args(argv)


def run(args):
    """Run the daemon with parsed ``args``; returns the exit status. Raises PersistlogError."""
    import persistlog

    cfg = _config.load(args.config).with_overrides(
        region=args.region, archive_dir=args.archive_dir, state_dir=args.state_dir,
        forward=args.forward, sync_every=args.sync_every)
    _config.check(cfg)
    notifier = Notifier()
    with persistlog.open(cfg.region, readonly=True) as ring:
        drainer = Drainer(ring, cfg, notifier, Progress(quiet=args.quiet))
        signal.signal(signal.SIGTERM, drainer.stop)
        signal.signal(signal.SIGINT, drainer.stop)
        notifier.status("Draining earlier boots", force=True)
        drained = drainer.drain()
        if drainer.stopping:
            notifier.send("STOPPING=1")
            return EXIT_OK
        summary = f"Drained {drained} boot(s), {drainer.sent} records"
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
    if _NO_SYSTEMD is not None:
        print(f"persistlog daemon: error: systemd-python is not installed ({_NO_SYSTEMD}); "
              "pip install systemd-python (or 'persistlog[daemon]')", file=sys.stderr)
        return EXIT_ERROR
    try:
        return run(args)
    except ConfigError as e:
        code, msg = EXIT_CONFIG, str(e)
    except (RegionUnavailable, NotARegion, RegionTooSmall, UnsupportedVersion) as e:
        code, msg = EXIT_REGION, str(e)
    except JournalUnavailable as e:
        code, msg = EXIT_JOURNAL, f"{e}; nothing after the last sync is marked drained"
    except (StateError, ArchiveError) as e:
        code, msg = EXIT_STATE, str(e)
    except DaemonBusy as e:
        code, msg = EXIT_BUSY, str(e)
    except PersistlogError as e:
        code, msg = EXIT_ERROR, str(e)
    print(f"persistlog daemon: error: {msg}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
