"""The exceptions persistlog raises: one hierarchy under PersistlogError.

The CLI maps each class to an exit code (see ``persistlog.cli``).
"""


class PersistlogError(Exception):
    """Base class of every error persistlog raises on purpose."""


class RegionUnavailable(PersistlogError):
    """The region's path cannot be opened, created, sized or mapped."""


class RegionMissing(RegionUnavailable):
    """The region does not exist or was never formatted, and creating it was not asked for."""


class RegionTooSmall(PersistlogError):
    """The region cannot hold a header page and the smallest data area (64 KiB in all)."""


class NotARegion(PersistlogError):
    """The bytes are not a persistlog region; formatting it needs ``force=True``."""


class UnsupportedVersion(PersistlogError):
    """The region was written by a newer format version than this persistlog reads."""


class RegionBusy(PersistlogError):
    """Every chunk of the region is held by a live writer, so a record was
    dropped (counted in ``stats()["busy_drops"]``); see docs/FORMAT.md, Chunks."""


class RecordTooLarge(PersistlogError, ValueError):
    """A record exceeds the region's maximum record size; nothing was written."""


class InvalidRecord(PersistlogError, ValueError):
    """A record's fields cannot be encoded (bad priority, field name or value)."""


class BootNotFound(PersistlogError, LookupError):
    """The boot asked for (an offset or a boot ID) is not in the region."""


class InvalidBootId(PersistlogError, ValueError):
    """A boot ID (for example ``$PERSISTLOG_BOOT_ID``) is not a 128-bit UUID."""
