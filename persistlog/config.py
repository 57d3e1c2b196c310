"""The drain daemon's settings: defaults, then /etc/persistlog.conf (TOML), then the command line.

Example /etc/persistlog.conf (every key optional)::

    region = "/dev/persistlog0"          # the ring; default: persistlog's default region
    state_dir = "/var/lib/persistlog"    # the drain cursor lives here
    archive_dir = "/var/lib/persistlog/boots"
    archive_keep = 32                    # archived boots kept, newest first
    archive_max_bytes = 268435456        # and at most this many bytes of archives
    sync_every = 10000                   # records sent between two journal syncs
    forward = false                      # also forward the current boot as it is written
    forward_rate = 1000                  # records per second at most while forwarding
    forward_poll = 0.5                   # seconds between two looks at the ring
    journal_files = true                 # each recovered boot as a journal file of its own
                                         # (false: sent to journald, stamped as received)
    journal_dir = "/var/log/journal"     # the files go to <journal_dir>/<machine-id>/
    journal_remote = ""                  # systemd-journal-remote ("": /lib/systemd/ or /usr/lib/systemd/)
    journal_keep = 32                    # recovered-boot journal files kept, newest first
    journal_max_bytes = 536870912        # and at most this many bytes of them on disk
    pstore_dirs = ["/sys/fs/pstore", "/var/lib/systemd/pstore"]  # the kernel's last words
    sink = "auto"                        # where drained records go: "journald", "syslog",
                                         # "archive" (only), or "auto": journald when it runs
                                         # (its socket exists), else syslog when syslog_socket
                                         # exists, else archive (docs/DAEMON.md, "Without systemd")
    syslog_socket = "/dev/log"           # the syslog daemon's socket (sink "syslog")
    syslog_format = "rfc5424"            # or "rfc3164" (busybox syslogd): no fields, seconds

    # persistlog mirror (docs/MIRROR.md): journal entries copied into the ring as they arrive
    mirror_max_priority = 7              # mirror entries of this priority (0-7) or more urgent
    mirror_units = []                    # only these units (_SYSTEMD_UNIT, shell patterns);
                                         # "kernel" names the kernel's own entries; [] = all
    mirror_exclude_units = []            # never these units (patterns as above)
    mirror_fields = ["SYSLOG_FACILITY", "MESSAGE_ID", "_TRANSPORT", "_UID", "_HOSTNAME",
                     "ERRNO"]            # fields kept besides the ones always kept
    mirror_directory = "/var/log/journal/<machine-id>"  # follow only this directory
                                         # (default: the local journal, as journalctl reads it)
    mirror_start = "tail"                # with no cursor for this boot: "tail" (new entries
                                         # only) or "boot" (the whole boot so far)
    mirror_save_interval = 1.0           # seconds between two saves of the mirror's cursor
    mirror_poll = 0.05                   # seconds between two looks at the journal besides
                                         # journald's notifications (which come 250 ms late)
"""

from dataclasses import dataclass, replace
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

from .errors import PersistlogError

DEFAULT_CONFIG = "/etc/persistlog.conf"
SINKS = ("auto", "journald", "syslog", "archive")


class ConfigError(PersistlogError):
    """The configuration file cannot be read, is not TOML, or holds a bad setting."""


@dataclass(frozen=True)
class Config:
    """Daemon settings; see the module docstring for the file form of each."""

    region: "str | None" = None
    state_dir: str = "/var/lib/persistlog"
    archive_dir: str = "/var/lib/persistlog/boots"
    archive_keep: int = 32
    archive_max_bytes: int = 256 * 1024 * 1024
    sync_every: int = 10000
    forward: bool = False
    forward_rate: float = 1000.0
    forward_poll: float = 0.5
    journal_files: bool = True
    journal_dir: str = "/var/log/journal"
    journal_remote: str = ""
    journal_keep: int = 32
    journal_max_bytes: int = 512 * 1024 * 1024
    pstore_dirs: tuple = ("/sys/fs/pstore", "/var/lib/systemd/pstore")
    sink: str = "auto"
    syslog_socket: str = "/dev/log"
    syslog_format: str = "rfc5424"
    mirror_max_priority: int = 7
    mirror_units: tuple = ()
    mirror_exclude_units: tuple = ()
    mirror_fields: tuple = ("SYSLOG_FACILITY", "MESSAGE_ID", "_TRANSPORT", "_UID", "_HOSTNAME",
                            "ERRNO")
    mirror_directory: "str | None" = None
    mirror_start: str = "tail"
    mirror_save_interval: float = 1.0
    mirror_poll: float = 0.05

    def with_overrides(self, **overrides):
        """A copy with the given settings replaced; None values leave a setting as it is."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_TYPES = {"region": (str,), "state_dir": (str,), "archive_dir": (str,),
          "archive_keep": (int,), "archive_max_bytes": (int,), "sync_every": (int,),
          "forward": (bool,), "forward_rate": (int, float), "forward_poll": (int, float),
          "journal_files": (bool,), "journal_dir": (str,), "journal_remote": (str,),
          "journal_keep": (int,), "journal_max_bytes": (int,), "pstore_dirs": (list,),
          "sink": (str,), "syslog_socket": (str,), "syslog_format": (str,),
          "mirror_max_priority": (int,), "mirror_units": (list,),
          "mirror_exclude_units": (list,), "mirror_fields": (list,),
          "mirror_directory": (str,), "mirror_start": (str,),
          "mirror_save_interval": (int, float), "mirror_poll": (int, float)}

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "a list of strings"}


def load(path=None):
    """Read settings from the TOML file ``path`` over the defaults.

    Args:
        path (str | None): the file; None means /etc/persistlog.conf, which may be absent
            (defaults then). A file named explicitly must exist.

    Returns:
        Config: the settings.

    Raises:
        ConfigError: unreadable file, bad TOML, unknown key, wrong type or out-of-range value.
    """
    explicit = path is not None
    path = Path(path or DEFAULT_CONFIG)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: no such configuration file") from None
        return Config()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    for key, value in data.items():
        if key not in _TYPES:
            raise ConfigError(f"{path}: unknown setting {key!r} (known: {', '.join(_TYPES)})")
        ok = isinstance(value, _TYPES[key]) and not (isinstance(value, bool) and bool not in _TYPES[key])
        if not ok:
            names = " or ".join(_TYPE_NAMES[t] for t in _TYPES[key])
            raise ConfigError(f"{path}: {key} must be {names}, not {value!r}")
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{path}: {key} must be a list of strings, not {value!r}")
            data[key] = tuple(value)
    config = Config(**data)
    check(config, str(path))
    return config


def check(config, where="settings"):
    """Raise ConfigError if a numeric setting of ``config`` is out of range."""
    if config.journal_keep < 1:
        raise ConfigError(f"{where}: journal_keep must be at least 1")
    if config.journal_max_bytes <= 0:
        raise ConfigError(f"{where}: journal_max_bytes must be positive")
    for key in ("archive_keep", "sync_every"):
        if getattr(config, key) < 1:
            raise ConfigError(f"{where}: {key} must be at least 1")
    for key in ("archive_max_bytes", "forward_rate", "forward_poll", "mirror_save_interval",
                "mirror_poll"):
        if getattr(config, key) <= 0:
            raise ConfigError(f"{where}: {key} must be positive")
    if not 0 <= config.mirror_max_priority <= 7:
        raise ConfigError(f"{where}: mirror_max_priority must be a priority from 0 to 7")
    if config.sink not in SINKS:
        raise ConfigError(f"{where}: sink must be one of {', '.join(SINKS)}, not {config.sink!r}")
    if config.syslog_format not in ("rfc5424", "rfc3164"):
        raise ConfigError(f"{where}: syslog_format must be \"rfc5424\" or \"rfc3164\", "
                          f"not {config.syslog_format!r}")
    if config.mirror_start not in ("tail", "boot"):
        raise ConfigError(f"{where}: mirror_start must be \"tail\" or \"boot\", "
                          f"not {config.mirror_start!r}")
