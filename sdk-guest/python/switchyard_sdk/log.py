"""Logging into the gateway's log, tagged with the plugin's name and
rate-limited by the gateway. Fields are keyword arguments:
``log.info("Routed.", destination="billing")``.

Inside the component the lines go through the contract's ``log`` import;
natively (tests) they are kept in :data:`records` and printed to stderr.
"""

import sys

#: Natively, every line logged: ``(level, message, fields)``.
records = []

_LEVELS = ("trace", "debug", "info", "warn", "error")
_sink = None


def _set_sink(sink):
    # The component glue installs the contract's `log` import here.
    global _sink
    _sink = sink


def log(level, message, **fields):
    """Writes one line at ``level`` (trace, debug, info, warn, error)."""
    if level not in _LEVELS:
        raise ValueError(f"log level must be one of {', '.join(_LEVELS)}, not {level!r}")
    pairs = [(str(k), str(v)) for k, v in fields.items()]
    if _sink is not None:
        _sink(level, str(message), pairs)
        return
    records.append((level, str(message), dict(pairs)))
    text = " ".join(f"{k}={v!r}" for k, v in pairs)
    print(f"[{level}] {message} {text}".rstrip(), file=sys.stderr)


def trace(message, **fields):
    log("trace", message, **fields)


def debug(message, **fields):
    log("debug", message, **fields)


def info(message, **fields):
    log("info", message, **fields)


def warn(message, **fields):
    log("warn", message, **fields)


def error(message, **fields):
    log("error", message, **fields)
