"""persistlog: a crash-surviving log ring in reserved RAM or a shared file.

Public API: ``open()``, ``Ring``, ``Record``, ``Boot``, ``Handler`` and the
exceptions under ``PersistlogError``.
"""
from .errors import (BootNotFound, InvalidBootId, InvalidRecord, NotARegion,
                     PersistlogError, RecordTooLarge, RegionBusy, RegionMissing, RegionTooSmall,
                     RegionUnavailable, UnsupportedVersion)
from .handler import Handler
from .record import Record
from .ring import Boot, RegionConverted, RegionRecovered, Ring, open

__all__ = [
    "open", "Ring", "Record", "Boot", "Handler", "RegionRecovered",
    "PersistlogError", "RegionUnavailable", "RegionMissing", "RegionTooSmall",
    "NotARegion", "UnsupportedVersion", "RecordTooLarge", "InvalidRecord",
    "BootNotFound", "InvalidBootId", "RegionBusy", "RegionConverted",
]
__version__ = "0.1.0"
