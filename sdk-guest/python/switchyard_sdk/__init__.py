"""Switchyard plugin SDK for Python: write a routing plugin as a class.

A plugin subclasses :class:`Plugin`: ``init`` reads the plugin's ``config``
table from the gateway's TOML (a :class:`Config`), and ``handle`` decides one
:class:`Event` at a time, returning a :class:`Verdict`. :func:`export` turns
the class into what componentize-py builds into a WebAssembly component
implementing the ``switchyard:plugin@0.3.0`` contract
(``schemas/wit/plugin.wit``)::

    from switchyard_sdk import Plugin, Verdict, export

    class ByType(Plugin):
        def handle(self, event):
            if event.json_at("/type") == "refund":
                return Verdict.route("refunds").priority(7)
            return Verdict.keep()

    Handler = export(ByType)

The SDK's loop runs ``handle`` over each batch the gateway sends; an
exception fails that event only, with its type and message as the error.
Everything here is plain Python: ``switchyard_sdk.testing`` runs a plugin
natively (pytest, no Wasm), and only the component glue needs componentize-py.

Files: ``event.py`` (the lazy event view and JSON pointers), ``verdict.py``,
``config.py``, ``log.py``, ``_export.py`` (the loop and the component glue),
``testing.py`` (batches for native tests), ``build.py`` (the build command).
"""

from .config import Config, ConfigError
from .event import Event, json_pointer
from .verdict import Verdict
from ._export import Plugin, export
from . import log

#: The contract version this SDK builds plugins for.
CONTRACT_VERSION = "0.3.0"

__all__ = [
    "CONTRACT_VERSION",
    "Config",
    "ConfigError",
    "Event",
    "Plugin",
    "Verdict",
    "export",
    "json_pointer",
    "log",
]
