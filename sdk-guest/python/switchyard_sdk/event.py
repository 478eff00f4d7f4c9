"""The event a plugin sees: a view into the batch that reads lazily.

The gateway sends a batch as one byte string (``data``), one list of
name/value ranges (``fields``) and per event only ranges into those two
(see ``schemas/wit/plugin.wit``). An :class:`Event` decodes a text, the
payload or the headers only when the plugin asks, once: a plugin that routes
on one JSON field never pays for the headers it does not read.
"""

import json

_MISSING = object()


class Event:
    """One event, as the plugins before this one in the chain left it."""

    __slots__ = ("_data", "_fields", "_raw", "_cache")

    def __init__(self, data, fields, raw):
        # `data` is the batch's bytes, `fields` its header and attribute
        # ranges, `raw` this event's record of ranges.
        self._data = data
        self._fields = fields
        self._raw = raw
        self._cache = {}

    def _text(self, span):
        return bytes(self._data[span.offset : span.offset + span.len]).decode("utf-8")

    def _cached(self, key, make):
        value = self._cache.get(key, _MISSING)
        if value is _MISSING:
            value = make()
            self._cache[key] = value
        return value

    def _pairs(self, span):
        return [
            (self._text(f.name), self._text(f.value))
            for f in self._fields[span.offset : span.offset + span.len]
        ]

    @property
    def id(self):
        """The event's id (a ULID), stable across retries and replays."""
        return self._cached("id", lambda: self._text(self._raw.id))

    @property
    def topic(self):
        """The topic the event was published to."""
        return self._cached("topic", lambda: self._text(self._raw.topic))

    @property
    def received_at_ms(self):
        """When the gateway accepted the event, in ms since the Unix epoch."""
        return self._raw.received_at_ms

    @property
    def content_type(self):
        """The payload's media type, e.g. ``application/json``."""
        return self._cached("content_type", lambda: self._text(self._raw.content_type))

    @property
    def payload(self):
        """The payload, as bytes."""
        span = self._raw.payload

        def cut():
            return bytes(self._data[span.offset : span.offset + span.len])

        return self._cached("payload", cut)

    def text(self):
        """The payload as UTF-8 text, or None if it is not UTF-8."""
        try:
            return self.payload.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def headers(self):
        """Every sender header as ``(name, value)`` pairs, names in lower case."""
        return list(self._cached("headers", lambda: self._pairs(self._raw.headers)))

    def header(self, name, default=None):
        """The first header called ``name`` (any case), or ``default``."""
        name = name.lower()
        for k, v in self._cached("headers", lambda: self._pairs(self._raw.headers)):
            if k == name:
                return v
        return default

    def attributes(self):
        """Every attribute set by earlier plugins, as ``(key, value)`` pairs."""
        return list(self._cached("attributes", lambda: self._pairs(self._raw.attributes)))

    def attribute(self, key, default=None):
        """The attribute ``key`` set by an earlier plugin, or ``default``."""
        for k, v in self._cached("attributes", lambda: self._pairs(self._raw.attributes)):
            if k == key:
                return v
        return default

    def json(self):
        """The payload parsed as JSON (once), or None if it is not JSON."""

        def parse():
            try:
                return json.loads(self.payload)
            except ValueError:
                return None

        return self._cached("json", parse)

    def json_at(self, pointer, default=None):
        """The value at a JSON pointer (RFC 6901, e.g. ``/order/items/0``),
        or ``default`` when the payload is not JSON or has nothing there."""
        return json_pointer(self.json(), pointer, default)

    def __repr__(self):
        return f"Event(id={self.id!r}, topic={self.topic!r}, content_type={self.content_type!r})"


def json_pointer(document, pointer, default=None):
    """Looks ``pointer`` (RFC 6901) up in a parsed JSON ``document``.

    ``""`` is the whole document; ``~1`` in a token stands for ``/`` and
    ``~0`` for ``~``; arrays take decimal indices. Anything missing, or a
    pointer that does not start with ``/``, gives ``default``.
    """
    if pointer == "":
        return document if document is not None else default
    if not pointer.startswith("/"):
        return default
    node = document
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            if token not in node:
                return default
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
                return default
            i = int(token)
            if i >= len(node):
                return default
            node = node[i]
        else:
            return default
    return node
