"""The current boot ID.

Linux gives every boot a random 128-bit ID in
``/proc/sys/kernel/random/boot_id`` (Documentation/admin-guide/sysctl/kernel.rst,
"random"); containers and tests override it with ``$PERSISTLOG_BOOT_ID``.
"""
import os
import uuid

from .errors import InvalidBootId, PersistlogError

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


def parse_boot_id(text):
    """Parse a boot ID.

    Args:
        text (str): a UUID, with or without dashes, in any case.

    Returns:
        bytes: the 16 bytes of the ID.

    Raises:
        InvalidBootId: if *text* is not a UUID.
    """
    try:
        return uuid.UUID(text.strip()).bytes
    except (ValueError, AttributeError):
        raise InvalidBootId(f"not a boot ID (a 128-bit UUID): {text!r}") from None


def format_boot_id(raw):
    """Return the 16-byte boot ID *raw* as the dashed lower-case text the kernel prints."""
    return str(uuid.UUID(bytes=bytes(raw)))


def current_boot_id():
    """Return this boot's ID as 16 bytes.

    ``$PERSISTLOG_BOOT_ID`` wins when set, else the kernel's boot_id.

    Raises:
        InvalidBootId: if ``$PERSISTLOG_BOOT_ID`` is not a UUID.
        PersistlogError: if neither source can be read.
    """
    env = os.environ.get("PERSISTLOG_BOOT_ID")
    if env:
        return parse_boot_id(env)
    try:
        with open(BOOT_ID_PATH) as f:
            return parse_boot_id(f.read())
    except OSError as e:
        raise PersistlogError(
            f"cannot read the boot ID from {BOOT_ID_PATH} ({e.strerror}); "
            "set PERSISTLOG_BOOT_ID") from None
