"""The SDK's loop: the contract's ``init``/``handle`` over a plugin class,
and the verdict buffer it hands back (contract 0.3.0, the encoding is in
``schemas/wit/plugin.wit``: a u32 count, then per event a tag and either an
error text or a flags byte and the fields it names).

Inside a componentize-py build, the generated ``wit_world`` bindings exist
and ``Err`` (to refuse ``init``) comes from there; natively it comes from
``testing.py``, so the same loop runs under pytest.
"""

import struct

from .config import Config, ConfigError
from .event import RECORD, Event
from .verdict import Verdict
from . import log as _log

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
# The flags of an `ok` verdict, in the order its fields follow.
ROUTES, PRIORITY, PAYLOAD, HEADERS, CONTENT_TYPE, DELAY_MS, ORDERING_KEY, ATTRIBUTES = (
    1, 2, 4, 8, 16, 32, 64, 128)


class Plugin:
    """Base class of a plugin. Override :meth:`handle`, and :meth:`init` if
    the plugin has config. One instance serves many batches."""

    def init(self, config):
        """Reads ``config`` (a :class:`Config`). Raising refuses the plugin,
        with the exception's message (raise :class:`ConfigError` for a bad
        key). The default accepts no config keys at all."""
        config.deny_unknown()

    def handle(self, event):
        """Decides one :class:`Event`, returning a :class:`Verdict` (``None``
        means :meth:`Verdict.keep`). Raising fails this event only."""
        raise NotImplementedError(f"{type(self).__name__} must define handle(self, event)")


def _bindings():
    try:
        from wit_world.imports import log  # noqa: F401 (componentize-py only)
        from componentize_py_types import Err

        def sink(level, message, fields):
            log.log(getattr(log.Level, level.upper()), message, fields)

        _log._set_sink(sink)
        return Err
    except ImportError:
        from .testing import Err

        return Err


def describe(exc):
    """An exception as an event's error: its type and message."""
    message = str(exc)
    if isinstance(exc, ConfigError):
        return message
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


def export(plugin_class):
    """The class componentize-py exports as the contract's ``handler``:
    assign it to ``Handler`` in the plugin's module."""
    if not (isinstance(plugin_class, type) and issubclass(plugin_class, Plugin)):
        raise TypeError(f"export() takes a Plugin subclass, not {plugin_class!r}")
    Err = _bindings()

    # componentize-py makes a new `Handler` for every call, so the plugin
    # lives here, one per component instance, from `init` on.
    state = {"plugin": None}

    class Handler:
        def init(self, config):
            plugin = plugin_class()
            try:
                plugin.init(Config(dict(config)))
            except Exception as exc:  # the plugin refuses its config
                raise Err(describe(exc)) from None
            state["plugin"] = plugin

        def handle(self, batch):
            plugin = state["plugin"]
            data, events, fields = batch.data, batch.events, batch.fields
            whole, cut = divmod(len(events), RECORD.size)
            out = bytearray(_U32.pack(whole + (1 if cut else 0)))
            if plugin is None:
                for _ in range(whole + (1 if cut else 0)):
                    _put_error(out, "handle was called before init succeeded")
                return bytes(out)
            records = RECORD.iter_unpack(events[: whole * RECORD.size]) if whole else ()
            for rec in records:
                event = Event(data, fields, rec)
                try:
                    verdict = plugin.handle(event)
                    if verdict is None:
                        out += b"\0\0"
                        continue
                    if not isinstance(verdict, Verdict):
                        raise TypeError(
                            f"handle returned {type(verdict).__name__}, not a Verdict"
                        )
                    _put_verdict(out, verdict, event)
                except Exception as exc:  # fails this event only
                    _put_error(out, describe(exc))
            if cut:
                _put_error(out, f"the host sent a cut-off record for event {whole}")
            return bytes(out)

    Handler.__name__ = Handler.__qualname__ = "Handler"
    Handler.plugin_class = plugin_class
    return Handler


def _put_text(out, text):
    b = text.encode("utf-8")
    out += _U32.pack(len(b))
    out += b


def _put_pairs(out, pairs):
    out += _U32.pack(len(pairs))
    for k, v in pairs:
        _put_text(out, k)
        _put_text(out, v)


def _put_error(out, message):
    out.append(1)
    _put_text(out, message)


def _put_verdict(out, v, event):
    """Appends an ``ok`` result: a flags byte, then the fields it names."""
    at = len(out) + 1
    out += b"\0\0"
    flags = 0
    if v._routes is not None:
        flags |= ROUTES
        out += _U32.pack(len(v._routes))
        for r in v._routes:
            _put_text(out, r)
    if v._priority is not None:
        flags |= PRIORITY
        out.append(v._priority)
    if v._payload is not None:
        flags |= PAYLOAD
        out += _U32.pack(len(v._payload))
        out += v._payload
    headers = v.get_headers(event)
    if headers is not None:
        flags |= HEADERS
        _put_pairs(out, headers)
    if v._content_type is not None:
        flags |= CONTENT_TYPE
        _put_text(out, v._content_type)
    if v._delay_ms is not None:
        flags |= DELAY_MS
        out += _U64.pack(v._delay_ms)
    if v._ordering_key is not None:
        flags |= ORDERING_KEY
        _put_text(out, v._ordering_key)
    if v._attributes is not None:
        flags |= ATTRIBUTES
        _put_pairs(out, v._attributes)
    out[at] = flags
