"""The log line format: the event name, then the fields passed as `extra=`.

Amanah logs events by name (`logger.info("imports.job_failed", extra={...})`) with ids,
counts and exception types as their fields, never personal data (docs/ARCHITECTURE.md).
Python's format strings cannot name fields that vary per event, so this formatter
appends every field a call added, as `key=value`, sorted by key.
"""

import logging
from uuid import UUID

# What every LogRecord has, whatever the call passed.
_STANDARD = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))
) | {"message", "asctime", "color_message", "taskName"}
# Only plain values are printed: Django's own loggers attach the request (whose
# repr holds the path and query string) and the like, which must not reach a log.
_PLAIN = (str, int, float, bool, UUID, type(None))


class EventFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = sorted(
            (key, value)
            for key, value in vars(record).items()
            if key not in _STANDARD
            and not key.startswith("_")
            and isinstance(value, _PLAIN)
        )
        if not fields:
            return line
        extras = " ".join(f"{key}={value!r}" for key, value in fields)
        head, newline, rest = line.partition("\n")  # a traceback stays below
        return f"{head} {extras}{newline}{rest}"
