"""The syslog sink: records sent to the local syslog daemon over ``/dev/log``.

For systems without systemd-journald (busybox init with syslogd, sysvinit with rsyslog or
syslog-ng). Each record becomes one message with the record's own time, PID, identifier and
fields; see docs/DAEMON.md, "Without systemd".

RFC 5424 (``syslog_format = "rfc5424"``, the default)::

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [persistlog@32473 seq=".." ...] MSG

* PRI = facility * 8 + priority; the facility is the record's SYSLOG_FACILITY field (0-23),
  else 1 (user), as syslog(3) does (RFC 5424 section 6.2.1).
* TIMESTAMP: the record's CLOCK_REALTIME as RFC 3339 local time with microseconds and the UTC
  offset, e.g. ``2026-11-30T01:10:13.123456+01:00`` (section 6.2.3).
* HOSTNAME: this machine's name; APP-NAME: the identifier ("persistlog" if none); PROCID: the
  record's PID; MSGID: its MESSAGE_ID field if that is printable ASCII of at most 32
  characters, else ``-``. Characters outside printable ASCII become ``_`` and each is cut to
  its length limit (48, 128 and 32; section 6).
* STRUCTURED-DATA: one element, SD-ID ``persistlog@32473`` (32473 is the enterprise number RFC
  5612 reserves for documentation: persistlog has none of its own). Its parameters: ``seq``,
  ``boot`` (the boot that wrote the record), ``region``, ``tid``, ``monotonic_ns``, then each
  field of the record. A PARAM-NAME is at most 32 printable ASCII characters without ``=``,
  space, ``]`` and ``"`` (section 6.3.3): others become ``_``, and a name that would clash with
  the ones above gets ``f.`` in front. Values are UTF-8 with ``"``, ``\\`` and ``]`` escaped by
  a backslash (section 6.3.3). A value that is not valid UTF-8 (binary bytes) is sent as base64
  under the name ``b64.<name>``, so nothing of it is lost and a reader knows to decode it.
* MSG: the message as UTF-8, without the BOM (many receivers show it as junk).

RFC 3164 (``syslog_format = "rfc3164"``, for busybox syslogd, which reads no RFC 5424)::

    <PRI>Mmm dd hh:mm:ss APP-NAME[PID]: MSG

with the record's own local time to the second, no hostname (the local form syslog(3) sends)
and no fields.

Reliability: ``/dev/log`` is an AF_UNIX socket, datagram as syslogd makes it (a stream socket
is used when the daemon made one, each message then ended by a NUL byte as glibc's syslog(3)
frames it). unix(7): "For datagram sockets, [...] the sending of a datagram is reliable on a
local socket": a send that returns has queued the whole datagram at the receiver, and one that
cannot blocks until it can (the receiver's queue is full) instead of dropping it. So a message
whose send returned is the syslog daemon's, and one whose send did not return was not sent.
"""

import base64
import functools
import mmap
import os
import socket
import struct
import time
from datetime import datetime, timezone
from pathlib import Path

from .errors import PersistlogError
from .export import NO_IDENTIFIER, SUMMARY_MESSAGE_ID, field_value, summary_message

SOCKET = "/dev/log"
SD_ID = "persistlog@32473"
FORMATS = ("rfc5424", "rfc3164")
DEFAULT_FACILITY = 1  # user, as syslog(3)
_OWN_PARAMS = frozenset(("seq", "boot", "region", "tid", "monotonic_ns"))
_SEQ = struct.Struct("<Q")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class SyslogUnavailable(PersistlogError):
    """The syslog socket is missing, refuses messages, or is not a socket."""


def _printable(text, limit, bad=""):
    """``text`` in printable US-ASCII (33-126) without ``bad``, others as ``_``, cut to
    ``limit`` characters; ``-`` (the NILVALUE) if empty."""
    out = "".join(c if 33 <= ord(c) <= 126 and c not in bad else "_" for c in text)[:limit]
    return out or "-"


def param_name(name):
    """The SD PARAM-NAME of a record field ``name`` (str): see the module docstring."""
    n = _printable(name, 32, '= ]"')
    return "f." + n[:30] if n in _OWN_PARAMS or n.startswith("b64.") else n


def escape(value):
    """An SD PARAM-VALUE (str) with ``\\``, ``"`` and ``]`` escaped (RFC 5424 section 6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def timestamp(realtime_ns):
    """RFC 3339 local time of ``realtime_ns`` (CLOCK_REALTIME ns) with µs and UTC offset."""
    sec, ns = divmod(realtime_ns, 1_000_000_000)
    t = datetime.fromtimestamp(sec, timezone.utc).astimezone()
    return t.replace(microsecond=ns // 1000).isoformat(timespec="microseconds")


def facility(fields):
    """The facility (0-23) of a record's ``fields`` (dict): SYSLOG_FACILITY, else user (1)."""
    v = fields.get("SYSLOG_FACILITY")
    try:
        f = int(v)
    except (TypeError, ValueError):
        return DEFAULT_FACILITY
    return f if 0 <= f <= 23 and not isinstance(v, bool) else DEFAULT_FACILITY


def structured_data(params):
    """One SD-ELEMENT ``[persistlog@32473 name="value" ...]`` of ``params`` ((name, value)
    pairs, values any record field value): names through ``param_name``, values not valid
    UTF-8 as base64 under ``b64.<name>``."""
    out = [SD_ID]
    for name, value in params:
        raw = field_value(value)
        try:
            text = raw.decode("utf-8")
            pname = name if name in _OWN_PARAMS else param_name(name)
        except UnicodeDecodeError:
            text = base64.b64encode(raw).decode()
            pname = "b64." + param_name(name)[:28]
        out.append(f'{pname}="{escape(text)}"')
    return "[" + " ".join(out) + "]"


def format_rfc5424(pri, realtime_ns, hostname, app, pid, msgid, params, message):
    """One RFC 5424 message (bytes); see the module docstring. ``params`` as for
    ``structured_data``; ``message`` str."""
    head = (f"<{pri}>1 {timestamp(realtime_ns)} {_printable(hostname, 255)} "
            f"{_printable(app, 48)} {_printable(str(pid), 128)} {_printable(msgid or '', 32)} "
            f"{structured_data(params)}")
    return head.encode() + b" " + message.encode("utf-8", "surrogateescape")


def format_rfc3164(pri, realtime_ns, app, pid, message):
    """One RFC 3164 message (bytes) as busybox syslogd parses it: ``<PRI>Mmm dd hh:mm:ss
    APP[PID]: MSG``, local time to the second."""
    t = time.localtime(realtime_ns // 1_000_000_000)
    stamp = f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    app = _printable(app, 48, "[]:")
    return f"<{pri}>{stamp} {app}[{pid}]: ".encode() + message.encode("utf-8", "surrogateescape")


def record_message(record, region, hostname, fmt="rfc5424"):
    """The syslog message (bytes) of ``record`` (persistlog.record.Record) from ``region``
    (str) in format ``fmt`` ("rfc5424" or "rfc3164")."""
    pri = facility(record.fields) * 8 + record.priority
    app = record.identifier if record.identifier is not None else NO_IDENTIFIER
    if fmt == "rfc3164":
        return format_rfc3164(pri, record.realtime_ns, app, record.pid, record.message)
    msgid = record.fields.get("MESSAGE_ID")
    msgid = msgid if isinstance(msgid, str) and _printable(msgid, 32) == msgid else None
    params = [("seq", record.seq), ("boot", record.boot_id), ("region", region),
              ("tid", record.tid), ("monotonic_ns", record.monotonic_ns),
              *((k, v) for k, v in record.fields.items()
                if k not in ("SYSLOG_FACILITY", "MESSAGE_ID"))]
    return format_rfc5424(pri, record.realtime_ns, hostname, app, record.pid, msgid, params,
                          record.message)


def summary_message_bytes(boot_id, stats, region, hostname, fmt="rfc5424"):
    """The drain summary of ``boot_id`` as a syslog message (bytes): the journald summary's
    text, MSGID the summary MESSAGE_ID, parameters ``drained_boot``, ``records``, ``lost``,
    ``torn`` (and ``overwritten`` when known); facility user, priority warning if records
    were lost or torn, else info. ``stats`` as ``Ring.stats(boot=...)`` returns it."""
    text = summary_message(boot_id, stats["records"], stats["first_seq"], stats["last_seq"],
                           stats["lost"], stats["torn"], stats.get("overwritten"))
    pri = DEFAULT_FACILITY * 8 + (4 if stats["lost"] or stats["torn"] else 6)
    now = time.time_ns()
    if fmt == "rfc3164":
        return format_rfc3164(pri, now, NO_IDENTIFIER, os.getpid(), text)
    params = [("drained_boot", boot_id), ("region", region), ("records", stats["records"]),
              ("lost", stats["lost"]), ("torn", stats["torn"])]
    if stats.get("overwritten") is not None:
        params.append(("overwritten", stats["overwritten"]))
    return format_rfc5424(pri, now, hostname, NO_IDENTIFIER, os.getpid(), SUMMARY_MESSAGE_ID,
                          params, text)


class Sender:
    """A connection to the syslog socket (``path``, default /dev/log): datagram, or stream
    when the syslog daemon made a stream socket."""

    def __init__(self, path=SOCKET):
        self.path = str(path)
        self.sock = None
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_UNIX, kind)
            try:
                s.connect(self.path)
            except OSError as e:
                s.close()
                if e.errno == getattr(socket, "EPROTOTYPE", 91) and kind == socket.SOCK_DGRAM:
                    continue  # a stream socket: try again as stream
                raise SyslogUnavailable(f"cannot connect to the syslog socket {self.path}: "
                                        f"{e.strerror or e}") from None
            self.sock, self.stream = s, kind == socket.SOCK_STREAM
            break

    def send(self, message, then=None, arg=None):
        """Send one message (bytes); returns once the syslog daemon has it queued (module
        docstring), having called ``then(arg)`` right after the send returned (the sent
        mark's store: nothing runs between the two but the return). Raises
        SyslogUnavailable."""
        data = message.replace(b"\0", b"\\0") + b"\0" if self.stream else message
        send = self.sock.sendall if self.stream else self.sock.send
        while True:
            try:
                send(data)
                if then is not None:
                    then(arg)
                return
            except InterruptedError:
                continue
            except OSError as e:
                raise SyslogUnavailable(f"the syslog socket {self.path} refused a message: "
                                        f"{e.strerror or e}") from None

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class SentMark:
    """The boot and seq of the last record whose send returned, kept in a small file mapped
    shared (``path``): the mark is stored into the page cache with no system call right after
    each send, so a daemon killed at any instant leaves it at most one record behind the
    syslog daemon (see docs/DAEMON.md, "Without systemd"); ``flush`` makes it durable.

    ``set(seq)`` stores ``seq`` as the last sent (of the boot of ``begin``).

    Layout: 8-byte little-endian seq, then the boot ID (36 ASCII bytes). Seq 0 first, then the
    boot, then the seq is written, so a half-written mark never names a seq of another boot.
    """

    _SIZE = 64

    def __init__(self, path):
        self.path = Path(path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            if os.fstat(fd).st_size < self._SIZE:
                os.ftruncate(fd, self._SIZE)
            self.map = mmap.mmap(fd, self._SIZE)
        finally:
            os.close(fd)
        # set(seq): one C call, the store that follows a send (Sender.send's ``then``)
        self.set = functools.partial(_SEQ.pack_into, self.map, 0)

    def seq(self, boot_id):
        """The last sent seq of ``boot_id`` (str), 0 if the mark names another boot."""
        if bytes(self.map[8:44]) != boot_id.encode():
            return 0
        return struct.unpack_from("<Q", self.map, 0)[0]

    def begin(self, boot_id, seq):
        """Point the mark at ``boot_id`` at ``seq``, before the boot's first send."""
        if self.seq(boot_id) != seq or bytes(self.map[8:44]) != boot_id.encode():
            struct.pack_into("<Q", self.map, 0, 0)
            self.map[8:44] = boot_id.encode()[:36].ljust(36, b"\0")
            struct.pack_into("<Q", self.map, 0, seq)

    def flush(self):
        """Write the mark to disk (msync)."""
        self.map.flush()

    def close(self):
        self.map.close()
