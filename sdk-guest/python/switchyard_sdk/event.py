"""The event a plugin sees: a view into the batch that reads lazily.

The gateway sends a batch as three byte strings (contract 0.3.0, see
``schemas/wit/plugin.wit``): ``data`` holds every text and payload back to
back, ``events`` a 56-byte record of ranges per event, ``fields`` a 16-byte
entry per header and attribute. An :class:`Event` holds its record's ranges
(one ``struct`` unpack) and decodes a text, the payload or the headers only
when the plugin asks, once: a plugin that routes on one JSON field never
pays for the headers it does not read.
"""

import json
import struct

_MISSING = object()

#: One event's record: received-at-ms, then (offset, length) of id, topic,
#: content type and payload in ``data``, and (first, count) of headers and
#: attributes in ``fields``. Little-endian.
RECORD = struct.Struct("<Q12I")
#: One header or attribute entry: name offset and length, value offset and
#: length, in ``data``.
FIELD = struct.Struct("<4I")


class Event:
    """One event, as the plugins before this one in the chain left it."""

    __slots__ = ("_data", "_fields", "_rec", "_cache")

    def __init__(self, data, fields, rec):
        # `data` is the batch's bytes, `fields` its header and attribute
        # entries, `rec` this event's record, unpacked (RECORD's 13 ints).
        self._data = data
        self._fields = fields
        self._rec = rec
        self._cache = {}

    def _slice(self, at, what):
        offset, length = self._rec[at], self._rec[at + 1]
        end = offset + length
        # Slicing never fails in Python: a range past the end would read
        # short instead, so it is checked.
        if end > len(self._data):
            raise ValueError(f"the host sent a malformed {what} range")
        return offset, end

    def _text(self, at, what):
        offset, end = self._slice(at, what)
        return str(self._data[offset:end], "utf-8")

    def _cached(self, key, make):
        value = self._cache.get(key, _MISSING)
        if value is _MISSING:
            value = make()
            self._cache[key] = value
        return value

    def _pairs(self, at, what):
        first, count = self._rec[at], self._rec[at + 1]
        if (first + count) * FIELD.size > len(self._fields):
            raise ValueError(f"the host sent a malformed {what} range")
        data, out = self._data, []
        for j in range(first, first + count):
            no, nl, vo, vl = FIELD.unpack_from(self._fields, j * FIELD.size)
            if no + nl > len(data) or vo + vl > len(data):
                continue  # a pair out of range is skipped, as in the Rust SDK
            out.append((str(data[no : no + nl], "utf-8"), str(data[vo : vo + vl], "utf-8")))
        return out

    def _headers(self):
        return self._cached("headers", lambda: self._pairs(9, "headers"))

    def _attributes(self):
        return self._cached("attributes", lambda: self._pairs(11, "attributes"))

    @property
    def id(self):
        """The event's id (a ULID), stable across retries and replays."""
        return self._cached("id", lambda: self._text(1, "id"))

    @property
    def topic(self):
        """The topic the event was published to."""
        return self._cached("topic", lambda: self._text(3, "topic"))

    @property
    def received_at_ms(self):
        """When the gateway accepted the event, in ms since the Unix epoch."""
        return self._rec[0]

    @property
    def content_type(self):
        """The payload's media type, e.g. ``application/json``."""
        return self._cached("content_type", lambda: self._text(5, "content-type"))

    @property
    def payload(self):
        """The payload, as bytes."""
        def cut():
            offset, end = self._slice(7, "payload")
            return bytes(self._data[offset:end])

        return self._cached("payload", cut)

    def text(self):
        """The payload as UTF-8 text, or None if it is not UTF-8."""
        try:
            return self.payload.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def headers(self):
        """Every sender header as ``(name, value)`` pairs, names in lower case."""
        return list(self._headers())

    def header(self, name, default=None):
        """The first header called ``name`` (any case), or ``default``."""
        name = name.lower()
        for k, v in self._headers():
            if k == name:
                return v
        return default

    def attributes(self):
        """Every attribute set by earlier plugins, as ``(key, value)`` pairs."""
        return list(self._attributes())

    def attribute(self, key, default=None):
        """The attribute ``key`` set by an earlier plugin, or ``default``."""
        for k, v in self._attributes():
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
