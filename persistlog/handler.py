"""A ``logging.Handler`` that appends to a persistlog region."""
import logging

from .ring import open as _open

#: logging levels to syslog priorities (RFC 5424 section 6.2.1), as
#: systemd.journal.JournalHandler maps them.
LEVEL_TO_PRIORITY = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
                     (logging.INFO, 6))


def priority_for(levelno):
    """Return the syslog priority (0-7) for a logging level number."""
    for level, priority in LEVEL_TO_PRIORITY:
        if levelno >= level:
            return priority
    return 7


#: priority_for() of the standard levels, looked up once.
_PRIORITY = {level: priority_for(level) for level in
             (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG)}


class Handler(logging.Handler):
    """Append each ``logging`` record to a region.

    Each record's fields: the formatted message, the priority from its
    level (CRITICAL 2, ERROR 3, WARNING 4, INFO 6, DEBUG and below 7), the
    identifier, and CODE_FILE, CODE_LINE, CODE_FUNC, LOGGER (journald's
    names), plus THREAD_NAME.

    Args:
        region (str | None): region name, as for ``persistlog.open()``.
        ring (Ring | None): an open ring to use instead (not closed by
            ``close()``).
        identifier (str | None): syslog identifier; default the logger's name.
        level (int): the handler's level.
    """

    def __init__(self, region=None, *, ring=None, identifier=None, level=logging.NOTSET):
        super().__init__(level)
        self._own = ring is None
        self.ring = ring if ring is not None else _open(region)
        self.identifier = identifier

    def emit(self, record):
        """Append *record*; errors go to ``handleError`` as logging expects."""
        try:
            if self.formatter is None and not (record.exc_info or record.exc_text
                                               or record.stack_info):
                # what logging's default Formatter ("%(message)s") makes of
                # such a record, without its calls
                message = record.getMessage()
            else:
                message = self.format(record)
            levelno = record.levelno
            priority = _PRIORITY.get(levelno)
            if priority is None:
                priority = priority_for(levelno)
            name = record.name
            self.ring._append_fields(message, priority, self.identifier or name, {
                "CODE_FILE": record.pathname,
                "CODE_LINE": record.lineno,
                "CODE_FUNC": record.funcName,
                "LOGGER": name,
                "THREAD_NAME": record.threadName,
            })
        except Exception:
            self.handleError(record)

    def close(self):
        """Close the region if this handler opened it."""
        try:
            if self._own:
                self.ring.close()
        finally:
            super().close()
