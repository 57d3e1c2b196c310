"""Records and their msgpack payloads.

A payload is a msgpack map (https://github.com/msgpack/msgpack/blob/master/spec.md)
with journald's names for the well-known fields and the caller's own fields
beside them (docs/FORMAT.md, "Payload")::

    {"MESSAGE": str, "PRIORITY": int 0-7, "SYSLOG_IDENTIFIER": str, ...fields}

A payload that is not such a map (``Ring.append_bytes`` takes any bytes) is
shown with its bytes as the message, decoded as UTF-8 with replacement.
"""
from dataclasses import dataclass, field

import msgpack

from .errors import InvalidRecord

PRIORITY_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
DEFAULT_PRIORITY = 6
MESSAGE, PRIORITY, IDENTIFIER = "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER"
_RESERVED = frozenset((MESSAGE, PRIORITY, IDENTIFIER))
_RESERVED_OR_EMPTY = _RESERVED | {""}
_PACKER_BUF = 4096  # grows on demand; a Packer keeps what it grew to
_idle_packers = []  # Packers not in use by any thread (encode_named)


@dataclass(frozen=True)
class Record:
    """One log record read back from a region.

    Attributes:
        seq (int): sequence number, dense per region from 1.
        boot_id (str): the boot that wrote it (UUID text, as /proc prints it).
        realtime_ns (int): CLOCK_REALTIME at append, ns since the epoch.
        monotonic_ns (int): CLOCK_MONOTONIC at append, ns since that boot.
        pid (int), tid (int): the writer's process and thread IDs.
        priority (int): syslog priority, 0 (emerg) to 7 (debug).
        identifier (str | None): syslog identifier (the program), if given.
        message (str): the message.
        fields (dict): the other fields, ``str -> str | bytes | int | ...``.
    """

    seq: int
    boot_id: str
    realtime_ns: int
    monotonic_ns: int
    pid: int
    tid: int
    priority: int
    identifier: "str | None"
    message: str
    fields: dict = field(default_factory=dict)

    def to_dict(self):
        """Return the record as a plain dict (the shape of ``dump -o json``)."""
        return {
            "seq": self.seq, "boot_id": self.boot_id,
            "realtime_ns": self.realtime_ns, "monotonic_ns": self.monotonic_ns,
            "pid": self.pid, "tid": self.tid, "priority": self.priority,
            "identifier": self.identifier, "message": self.message, "fields": self.fields,
        }


def check_priority(priority):
    """Return *priority* as an int in 0..7, or raise InvalidRecord."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 7:
        raise InvalidRecord(f"priority must be an integer from 0 to 7, not {priority!r}")
    return priority


def encode(message, priority=DEFAULT_PRIORITY, identifier=None, fields=None):
    """Encode a record's payload.

    Args:
        message (str | bytes): the message.
        priority (int): syslog priority 0-7.
        identifier (str | None): syslog identifier.
        fields (dict | None): more fields; names are non-empty strings other
            than MESSAGE, PRIORITY and SYSLOG_IDENTIFIER; values anything
            msgpack encodes.

    Returns:
        bytes: the msgpack payload.

    Raises:
        InvalidRecord: for a bad priority, field name or value.
    """
    check_priority(priority)
    if fields:
        for name in fields:
            if not isinstance(name, str):
                raise InvalidRecord(f"bad field name {name!r}")
    return encode_named(message, priority, identifier, fields)


def encode_named(message, priority, identifier, fields):
    """``encode()`` for *fields* whose names are known to be strings (keyword
    arguments): the append path, which skips a loop over the names."""
    if priority.__class__ is not int or not 0 <= priority <= 7:
        priority = check_priority(priority)
    if identifier is None:
        d = {MESSAGE: message, PRIORITY: priority}
    else:
        d = {MESSAGE: message, PRIORITY: priority, IDENTIFIER: identifier}
    if fields:
        if not _RESERVED_OR_EMPTY.isdisjoint(fields):
            name = next(n for n in fields if n in _RESERVED_OR_EMPTY)
            raise InvalidRecord(f"bad field name {name!r}")
        d.update(fields)
    # msgpack.packb() allocates a fresh 256 KiB buffer per call (an mmap and
    # munmap); an idle Packer is borrowed instead.  list.pop/append are
    # atomic, so each Packer has one user at a time, whatever the threads.
    try:
        packer = _idle_packers.pop()
    except IndexError:
        packer = msgpack.Packer(use_bin_type=True, buf_size=_PACKER_BUF)
    try:
        return packer.pack(d)
    except (TypeError, ValueError, OverflowError) as e:
        raise InvalidRecord(f"cannot encode record: {e}") from None
    finally:
        _idle_packers.append(packer)


def decode(payload):
    """Decode a payload into (priority, identifier, message, fields).

    Never raises: a payload that is not a msgpack map of the expected shape
    becomes a message of its own bytes (UTF-8, invalid bytes replaced).
    """
    try:
        d = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception:  # msgpack raises several types for malformed input
        d = None
    if not isinstance(d, dict):
        return DEFAULT_PRIORITY, None, payload.decode("utf-8", "replace"), {}
    message = d.pop(MESSAGE, "")
    if isinstance(message, (bytes, bytearray)):
        message = bytes(message).decode("utf-8", "replace")
    elif not isinstance(message, str):
        message = str(message)
    priority = d.pop(PRIORITY, DEFAULT_PRIORITY)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 7:
        priority = DEFAULT_PRIORITY
    identifier = d.pop(IDENTIFIER, None)
    if identifier is not None and not isinstance(identifier, str):
        identifier = str(identifier)
    fields = {str(k): v for k, v in d.items()}
    return priority, identifier, message, fields
