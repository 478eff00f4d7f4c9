"""The SDK's loop: the contract's ``init``/``handle`` over a plugin class.

Inside a componentize-py build, the generated ``wit_world`` bindings exist
and the contract's records and ``Ok``/``Err`` come from there; natively they
come from ``testing.py``, so the same loop runs under pytest.
"""

from .config import Config, ConfigError
from .event import Event
from .verdict import Verdict
from . import log as _log


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
        from wit_world.imports import types, log  # noqa: F401 (componentize-py only)
        from componentize_py_types import Ok, Err

        def sink(level, message, fields):
            log.log(getattr(log.Level, level.upper()), message, fields)

        _log._set_sink(sink)
        return types.Verdict, Ok, Err
    except ImportError:
        from .testing import WitVerdict, Ok, Err

        return WitVerdict, Ok, Err


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
    WitVerdict, Ok, Err = _bindings()

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
            if plugin is None:
                error = Err("handle was called before init succeeded")
                return [error for _ in batch.events]
            data, fields = batch.data, batch.fields
            out = []
            for raw in batch.events:
                event = Event(data, fields, raw)
                try:
                    verdict = plugin.handle(event)
                    if verdict is None:
                        verdict = Verdict.keep()
                    elif not isinstance(verdict, Verdict):
                        raise TypeError(
                            f"handle returned {type(verdict).__name__}, not a Verdict"
                        )
                    out.append(Ok(_to_wit(WitVerdict, verdict, event)))
                except Exception as exc:  # fails this event only
                    out.append(Err(describe(exc)))
            return out

    Handler.__name__ = Handler.__qualname__ = "Handler"
    Handler.plugin_class = plugin_class
    return Handler


def _to_wit(WitVerdict, v, event):
    return WitVerdict(
        routes=v._routes,
        priority=v._priority,
        payload=v._payload,
        headers=v.get_headers(event),
        content_type=v._content_type,
        delay_ms=v._delay_ms,
        ordering_key=v._ordering_key,
        attributes=v._attributes,
    )
